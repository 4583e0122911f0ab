/**
 * The CLI's command tree (commander): every command module registers its
 * commands here, and usage errors are printed with the failing command's
 * usage line. `pinflow <command> --help` documents each level.
 */
import { Command, Option } from 'commander';
import { registerAdmin } from './commands/admin';
import { registerBatch } from './commands/batch';
import { registerCatalog } from './commands/definitions';
import { registerEvents } from './commands/events';
import { registerOperator } from './commands/operator';
import { registerProjection } from './commands/projection';
import { registerRetention } from './commands/retention';
import { registerRuns } from './commands/runs';
import { registerStalls } from './commands/stalls';
import { EXIT_CODES_HELP } from './exit';
import { pathOf } from './command';

const ENVIRONMENT_HELP = [
  'Environment:',
  '  PINFLOW_API_URL     the HTTP API (default http://127.0.0.1:8080); --api overrides it',
  '  PINFLOW_API_KEY     the API key (pf_<id>_<secret>); --key-file reads it from a file instead.',
  '                      A secret is never taken as an argument (ps would show it).',
  '  DATABASE_URL        for keys, audit, batch, pause, resume, check-deploy, reconcile, projection (else PGlite in PINFLOW_DATA_DIR)',
  '  TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE   for pause, resume, reconcile, check-deploy, projection verify|rebuild',
  '  REDIS_URL, PINFLOW_EVENTS_STREAM       for events dead-letters',
].join('\n');

/** Every command in the tree, depth first. */
function walk(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(walk)];
}

export function buildProgram(): Command {
  const program = new Command('pinflow')
    .description('The pinflow operator CLI: runs, stalls, events and versions over the HTTP API; keys, audit, batches, deploy checks on the database and Temporal.')
    .addOption(new Option('--api <url>', 'the pinflow HTTP API (default: PINFLOW_API_URL, else http://127.0.0.1:8080)'))
    .addOption(new Option('--key-file <file>', 'read the API key from this file (default: PINFLOW_API_KEY)'))
    .showSuggestionAfterError(true)
    .addHelpText('after', `\n${ENVIRONMENT_HELP}\n\n${EXIT_CODES_HELP}\n\nTimes are shown in local time with the zone; --json prints what the API answered.`)
    .exitOverride();
  registerRuns(program);
  registerStalls(program);
  registerEvents(program);
  registerCatalog(program);
  registerOperator(program);
  registerBatch(program);
  registerAdmin(program);
  registerProjection(program);
  registerRetention(program);
  for (const cmd of walk(program)) {
    cmd.exitOverride();
    // A usage error starts with the command's usage line, then says what was wrong.
    cmd.configureOutput({ outputError: (str, write) => write(`usage: ${pathOf(cmd)} ${cmd.usage()}\n${str}(see ${pathOf(cmd)} --help)\n`) });
    if (cmd !== program) cmd.addHelpText('after', '\nExit codes: 0 ok, 1 a problem reported, 2 an error (CODE: message), 64 usage (pinflow --help)');
  }
  return program;
}
