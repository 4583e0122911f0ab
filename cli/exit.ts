/**
 * The CLI's exit codes, the contract scripts rely on (README: CLI), and the
 * one error class for a usage mistake.
 */
export const EXIT = {
  /** The command did what it was asked and found nothing to report as a problem. */
  OK: 0,
  /** The command ran and reports a problem: check-deploy found runs that would stall, a bulk resolve had failures. Never for a dry run. */
  PROBLEM: 1,
  /** pinflow refused or failed with a coded error (printed `CODE: message`): the API answered an error, or could not be reached; or the database or Temporal did, for a command that works on them directly. */
  ERROR: 2,
  /** A usage error: an unknown command or option, a missing argument, a bad option value (sysexits EX_USAGE). */
  USAGE: 64,
  /** A bug: an error without a pinflow code (sysexits EX_SOFTWARE). */
  INTERNAL: 70,
} as const;

/** The exit-code paragraph of `pinflow --help` (and the README's). */
export const EXIT_CODES_HELP = [
  'Exit codes:',
  '  0   success',
  '  1   the command ran and found a problem it reports (check-deploy: a run would stall;',
  '      stalls resolve in bulk: a run failed; pause/resume --definition: a run failed;',
  '      projection verify: drift; projection rebuild: a run not rebuilt); never for --dry-run',
  '  2   an error with a code, printed as CODE: message: the API answered an error or could not be',
  '      reached (API_UNREACHABLE), or the database/Temporal refused a command that uses them directly',
  '  64  usage error: unknown command or option, missing argument, bad option value',
  '  70  internal error (a bug: please report it)',
].join('\n');

/** A mistake in how the CLI was called: printed with the command's usage line, exit 64. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  /** The command's path and usage line (`pinflow runs ls [options]`), set by the action wrapper. */
  usage?: string;
}
