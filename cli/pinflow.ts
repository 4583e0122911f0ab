#!/usr/bin/env node
/**
 * The pinflow CLI.
 *
 *   pinflow check-deploy --rpcs <module> [--json] [--certain-only]
 *     Which open runs would stall under the RPC registry in <module> (the code
 *     about to be deployed). Changes nothing. Exit 1 when any run would (or,
 *     unless --certain-only, may) stall; 0 otherwise.
 *
 *   pinflow contracts --rpcs <module>
 *     Print the contract manifest of <module>, the body POST /deploy/check takes.
 *
 *   pinflow events dead-letters list [--stream <stream>] [--json] [--limit <n>]
 *     The stream door's dead letters (<stream>:dead): id, reason, attempts, fields.
 *
 *   pinflow events dead-letters replay (--id <dead-letter id> ... | --all) [--stream <stream>]
 *     Put dead letters back on their stream once their cause is fixed; the
 *     running stream door submits them again. Each keeps the eventId it was
 *     first given, so an event already submitted is deduplicated.
 *
 *   pinflow reconcile [--json]
 *     One reconcile pass: every open run of the projection is compared with
 *     Temporal, and what Temporal closed (terminated, cancelled, timed out,
 *     deleted) is closed in the projection; a reset run's row follows its new
 *     execution. Prints one line per correction and the totals (checked,
 *     corrected by kind, errors). Needs TEMPORAL_ADDRESS. Exit 0 once the
 *     pass ran (runs it could not compare are counted in `errors`).
 *
 *   pinflow pause <runId> --by <who> [--reason <why>] [--json]
 *   pinflow pause --definition <name> --by <who> [--reason <why>] [--json]
 *   pinflow resume <runId> --by <who> [--reason <why>] [--json]
 *   pinflow resume --definition <name> --by <who> [--reason <why>] [--json]
 *     Pause a run at its next top-level step boundary, or a whole definition
 *     (its open runs pause, its new runs start paused); resume lifts it.
 *     Idempotent: says when the run or definition already was paused (or was
 *     not). Needs TEMPORAL_ADDRESS. Exit 0 when done; 1 when a run of a
 *     definition could not be paused or resumed (listed).
 *
 * Reads the projection from DATABASE_URL (or PGlite in PINFLOW_DATA_DIR);
 * check-deploy asks each open run where it is through TEMPORAL_ADDRESS (and
 * TEMPORAL_NAMESPACE) when set, else analyses every run with its position unknown;
 * the events commands read REDIS_URL and PINFLOW_EVENTS_STREAM.
 */
import { Client, Connection } from '@temporalio/client';
import { checkDeploy, manifestOf, temporalStateReader, type DeployReport } from '../client/check-deploy';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import { loadConfig } from '../app/config';
import { loadRpcModule } from '../app/rpc-module';
import { openStore } from '../app/store';
import { Pinflow } from '../client/pinflow';
import { describeTotals, Reconciler } from '../client/reconcile';
import { listDeadLetters, replayDeadLetters } from '../client/redis-ingress';
import { clientInterceptors } from '../observability/tracing';

function usage(): never {
  console.error(
    [
      'usage: pinflow check-deploy --rpcs <module> [--json] [--certain-only]',
      '       pinflow contracts --rpcs <module>',
      '       pinflow reconcile [--json]',
      '       pinflow pause|resume (<runId> | --definition <name>) --by <who> [--reason <why>] [--json]',
      '       pinflow events dead-letters list [--stream <stream>] [--json] [--limit <n>]',
      '       pinflow events dead-letters replay (--id <dead-letter id> ... | --all) [--stream <stream>]',
    ].join('\n'),
  );
  process.exit(64);
}

/** `pinflow events dead-letters list|replay`. */
async function deadLetters(rest: string[]): Promise<number> {
  const [sub, action, ...args] = rest;
  if (sub !== 'dead-letters' || (action !== 'list' && action !== 'replay')) usage();
  const values = (name: string) => args.flatMap((a, i) => (a === name && args[i + 1] !== undefined ? [args[i + 1]!] : []));
  const config = loadConfig();
  if (!config.events.redisUrl) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, 'the events commands need REDIS_URL (the Redis of the stream door)');
  const stream = values('--stream')[0] ?? config.events.stream;
  if (action === 'list') {
    const limit = Number(values('--limit')[0] ?? 1000);
    const letters = await listDeadLetters({ url: config.events.redisUrl, stream, limit });
    if (args.includes('--json')) console.log(JSON.stringify(letters, null, 2));
    else {
      console.log(`${letters.length} dead letter(s) in ${stream}:dead`);
      for (const d of letters) console.log(`  ${d.id}  from ${d.sourceStream}/${d.sourceId}  ${d.code} after ${d.attempts} attempt(s): ${d.error}`);
    }
    return 0;
  }
  const ids = values('--id');
  if (ids.length === 0 && !args.includes('--all')) usage();
  const replayed = await replayDeadLetters({ url: config.events.redisUrl, stream, ...(ids.length > 0 ? { ids } : {}) });
  for (const r of replayed) console.log(`replayed ${r.deadLetterId} (first ${r.sourceId}) as ${r.messageId}`);
  console.log(`${replayed.length} dead letter(s) replayed to ${stream}`);
  return 0;
}

function printReport(report: DeployReport): void {
  console.log(`checked ${report.checkedRuns} open run(s): ${report.wouldStall} would stall, ${report.mayStall} may stall`);
  console.log(`  positions: ${report.liveRuns} live, ${report.unknownPositionRuns} unknown, ${report.unaffectedRuns} not asked (their version calls no changed RPC); ${report.durationMs} ms`);
  for (const i of report.impacts) {
    console.log(`  ${i.certain ? 'WOULD STALL' : 'may stall  '}  ${i.runId}  ${i.definition}@${i.version.slice(0, 12)}  step ${i.stepInstance}  ${i.reason}: ${i.message}${i.position === 'unknown' ? ' (position unknown)' : ''}`);
  }
}

/** `pinflow reconcile`: one pass, its corrections and totals printed. */
async function reconcile(rest: string[]): Promise<number> {
  const json = rest.includes('--json');
  const config = loadConfig();
  if (!config.temporal.address) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, 'pinflow reconcile needs TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE unless it is "default"): it asks Temporal about every open run');
  const { store, db } = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    const connection = await Connection.connect({ address: config.temporal.address });
    try {
      const client = new Client({ connection, namespace: config.temporal.namespace });
      const reconciler = new Reconciler({ client, store, concurrency: config.reconcile.concurrency, ...(json ? {} : { log: (line: string) => console.log(line) }) });
      const totals = await reconciler.pass();
      console.log(json ? JSON.stringify(totals, null, 2) : `reconciler: ${describeTotals(totals)}`);
      return 0;
    } finally {
      await connection.close();
    }
  } finally {
    await db.close();
  }
}

/** `pinflow pause|resume <runId>` and `pinflow pause|resume --definition <name>`. */
async function pauseOrResume(command: 'pause' | 'resume', rest: string[]): Promise<number> {
  const value = (name: string) => {
    const i = rest.indexOf(name);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  const definition = value('--definition');
  const runId = rest.find((a, i) => !a.startsWith('--') && (i === 0 || !['--definition', '--by', '--reason'].includes(rest[i - 1]!)));
  const by = value('--by') ?? process.env.USER;
  const reason = value('--reason');
  if ((definition === undefined) === (runId === undefined) || !by) usage();
  const config = loadConfig();
  if (!config.temporal.address) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, `pinflow ${command} needs TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE unless it is "default"): the run is paused in Temporal`);
  const { store, catalog, db } = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    const connection = await Connection.connect({ address: config.temporal.address });
    try {
      const client = new Client({ connection, namespace: config.temporal.namespace, interceptors: clientInterceptors() });
      const pinflow = new Pinflow({ client, store, catalog, rpcs: {} });
      const request = { by, ...(reason ? { reason } : {}) };
      const json = rest.includes('--json');
      if (runId !== undefined) {
        if (command === 'pause') {
          const res = await pinflow.pause(runId, request);
          console.log(json ? JSON.stringify(res, null, 2) : res.alreadyPaused ? `run ${runId} was already paused (since ${res.pause.since} by ${res.pause.by})` : `run ${runId} pauses at its next top-level step boundary`);
        } else {
          const res = await pinflow.resume(runId, request);
          console.log(json ? JSON.stringify(res, null, 2) : res.wasPaused ? `run ${runId} resumed` : `run ${runId} was not paused`);
        }
        return 0;
      }
      const res = command === 'pause' ? await pinflow.pauseDefinition(definition!, request) : await pinflow.resumeDefinition(definition!, request);
      if (json) console.log(JSON.stringify(res, null, 2));
      else {
        const was = 'alreadyPaused' in res ? (res.alreadyPaused ? 'was already paused' : 'paused') : res.wasPaused ? 'resumed' : 'was not paused';
        console.log(`definition ${definition} ${was}; ${res.runs.length} open run(s):`);
        for (const r of res.runs) console.log(`  ${r.runId}  ${r.ok ? (r.changed ? `${command}d` : `already ${command === 'pause' ? 'paused' : 'running'}`) : `FAILED ${r.error?.code}: ${r.error?.message}`}`);
      }
      return res.runs.every((r) => r.ok) ? 0 : 1;
    } finally {
      await connection.close();
    }
  } finally {
    await db.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'events') return deadLetters(rest);
  if (command === 'reconcile') return reconcile(rest);
  if (command === 'pause' || command === 'resume') return pauseOrResume(command, rest);
  const flag = (name: string) => rest.includes(name);
  const value = (name: string) => {
    const i = rest.indexOf(name);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  const rpcsPath = value('--rpcs');
  if (!rpcsPath || (command !== 'check-deploy' && command !== 'contracts')) usage();
  const { registry } = loadRpcModule(rpcsPath);
  const manifest = manifestOf(registry);
  if (command === 'contracts') {
    console.log(JSON.stringify({ contracts: manifest }, null, 2));
    return 0;
  }
  const config = loadConfig();
  const { store, catalog, db } = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    // With TEMPORAL_ADDRESS each run is asked where it is; without, every position is unknown.
    const connection = config.temporal.address ? await Connection.connect({ address: config.temporal.address }) : undefined;
    const client = connection ? new Client({ connection, namespace: config.temporal.namespace, interceptors: clientInterceptors() }) : undefined;
    let report: DeployReport;
    try {
      report = await checkDeploy({ store, catalog, ...(client ? { queryState: temporalStateReader(client) } : {}) }, manifest);
    } finally {
      await connection?.close();
    }
    if (flag('--json')) console.log(JSON.stringify(report, null, 2));
    else printReport(report);
    return report.wouldStall > 0 || (!flag('--certain-only') && report.mayStall > 0) ? 1 : 0;
  } finally {
    await db.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof PinflowError ? `pinflow: ${err.code}: ${err.message}` : err);
    process.exit(70);
  },
);
