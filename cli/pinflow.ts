#!/usr/bin/env node
/**
 * The pinflow CLI (package `bin`). The commands live in cli/commands/, built
 * into one tree in cli/program.ts; `pinflow --help` and README "CLI" document
 * them. This entry maps every way a command ends to the exit codes of
 * cli/exit.ts: a usage error 64, a coded error 2 (`CODE: message` on
 * stderr), anything else 70.
 */
import { CommanderError } from 'commander';
import { PinflowError } from '../graph/errors';
import { EXIT, UsageError } from './exit';
import { ApiError } from './http';
import { outcome } from './command';
import { buildProgram } from './program';

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return outcome.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0; every other commander error is a usage error (already printed).
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    if (err instanceof UsageError) {
      console.error(`usage: ${err.usage ?? 'pinflow <command> [options]'}\nerror: ${err.message}\n(see ${err.usage?.split(' [')[0]?.split(' <')[0] ?? 'pinflow'} --help)`);
      return EXIT.USAGE;
    }
    if (err instanceof ApiError || err instanceof PinflowError) {
      console.error(`pinflow: ${err.code}: ${err.message}`);
      printDetails(err);
      return EXIT.ERROR;
    }
    console.error(err);
    return EXIT.INTERNAL;
  }
}

/** The issues a GRAPH_INVALID carries, one a line under the message (which lists them on one line). */
function printDetails(err: ApiError | PinflowError): void {
  const issues = (err.details as { issues?: unknown } | undefined)?.issues;
  if (!Array.isArray(issues)) return;
  for (const i of issues as Array<{ path?: unknown; code?: unknown; message?: unknown }>) {
    if (typeof i.path === 'string' && typeof i.message === 'string') console.error(`  ${i.path}: ${i.message}${typeof i.code === 'string' ? ` (${i.code})` : ''}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(EXIT.INTERNAL);
  },
);
