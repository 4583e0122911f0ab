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
 *   pinflow batch create --action <cancel|retry|skip|migrate> --filter <field>=<value> ... --reason <why>
 *                        [--by <who>] [--params <json>] [--rate <per second>] [--concurrency <n>] [--dry-run] [--json]
 *     Act on every run the filter selects (the fields of GET /runs: status,
 *     definition, version, tenant, meta.<key>), as a durable batch that the
 *     API process works through in the background; --dry-run prints the count
 *     and a sample and creates nothing. --by defaults to $USER.
 *
 *   pinflow batch show <id> [--json] | pinflow batch list [--json]
 *     A batch's progress: selected, done, skipped and failed with reasons.
 *
 *   pinflow batch pause|resume|cancel <id> --reason <why> [--by <who>]
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
import { describeTotals, Reconciler } from '../client/reconcile';
import type { BatchDryRun, BatchView, CreateBatchRequest } from '../client/batches';
import { Pinflow } from '../client/pinflow';
import { listDeadLetters, replayDeadLetters } from '../client/redis-ingress';
import { clientInterceptors } from '../observability/tracing';

function usage(): never {
  console.error(
    [
      'usage: pinflow check-deploy --rpcs <module> [--json] [--certain-only]',
      '       pinflow contracts --rpcs <module>',
      '       pinflow reconcile [--json]',
      '       pinflow batch create --action <action> --filter <field>=<value> ... --reason <why> [--by <who>] [--params <json>] [--rate <n>] [--concurrency <n>] [--dry-run] [--json]',
      '       pinflow batch show <id> [--json] | pinflow batch list [--json]',
      '       pinflow batch pause|resume|cancel <id> --reason <why> [--by <who>]',
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

function printBatch(b: BatchView): void {
  const p = b.progress;
  console.log(`batch ${b.id}: ${b.action} ${b.state}, by ${b.by}: ${b.reason}`);
  console.log(`  selected ${p.selected}: done ${p.done}, skipped ${p.skipped}, failed ${p.failed}, pending ${p.pending}, applying ${p.applying}; ${b.ratePerSecond}/s, concurrency ${b.concurrency}`);
  for (const r of b.skippedByReason) console.log(`  skipped ${r.count} ${r.code}${r.example ? `: ${r.example}` : ''}`);
  for (const r of b.failedByReason) console.log(`  failed ${r.count} ${r.code}${r.example ? `: ${r.example}` : ''}`);
}

/** `pinflow batch ...`: through the library on the projection's database; the API process does the work. */
async function batch(rest: string[]): Promise<number> {
  const [sub, ...args] = rest;
  const values = (name: string) => args.flatMap((a, i) => (a === name && args[i + 1] !== undefined ? [args[i + 1]!] : []));
  const one = (name: string) => values(name)[0];
  const json = args.includes('--json');
  const config = loadConfig();
  const { store, catalog, db } = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  // Creating and steering a batch needs only the database; the runner in the API process talks to Temporal.
  const connection = Connection.lazy({ address: config.temporal.address ?? '127.0.0.1:7233' });
  try {
    const pinflow = new Pinflow({ client: new Client({ connection, namespace: config.temporal.namespace }), store, catalog, rpcs: {} });
    const by = one('--by') ?? process.env.USER ?? 'cli';
    const show = (b: BatchView | BatchDryRun) => {
      if (json) console.log(JSON.stringify(b, null, 2));
      else if ('dryRun' in b) {
        console.log(`dry run: ${b.action} would act on ${b.count} run(s); nothing was created`);
        for (const r of b.sample) console.log(`  ${r.runId}  ${r.status}  ${r.definition}@${r.version.slice(0, 12)}  ${r.tenant}`);
      } else printBatch(b);
    };
    switch (sub) {
      case 'create': {
        const filter: Record<string, unknown> = {};
        const metadata: Record<string, string> = {};
        for (const f of values('--filter')) {
          const eq = f.indexOf('=');
          if (eq <= 0) throw new PinflowError(ERROR_CODES.REQUEST_INVALID, `--filter ${JSON.stringify(f)} is not <field>=<value>`, { field: 'filter', received: f });
          const key = f.slice(0, eq);
          if (key.startsWith('meta.')) metadata[key.slice(5)] = f.slice(eq + 1);
          else filter[key] = f.slice(eq + 1);
        }
        if (Object.keys(metadata).length) filter.metadata = metadata;
        const rate = one('--rate');
        const concurrency = one('--concurrency');
        const params = one('--params');
        const request = {
          action: one('--action'),
          filter,
          by,
          reason: one('--reason'),
          ...(params ? { params: JSON.parse(params) as unknown } : {}),
          ...(rate ? { ratePerSecond: Number(rate) } : {}),
          ...(concurrency ? { concurrency: Number(concurrency) } : {}),
          ...(args.includes('--dry-run') ? { dryRun: true } : {}),
        } as CreateBatchRequest;
        show(await pinflow.batches.create(request));
        return 0;
      }
      case 'show':
        show(await pinflow.batches.get(args[0] ?? usage()));
        return 0;
      case 'list': {
        const { batches } = await pinflow.batches.list();
        if (json) console.log(JSON.stringify(batches, null, 2));
        else for (const b of batches) printBatch(b);
        return 0;
      }
      case 'pause':
      case 'resume':
      case 'cancel': {
        const id = args[0] ?? usage();
        show(await pinflow.batches[sub](id, { by, reason: one('--reason') as string }));
        return 0;
      }
      default:
        return usage();
    }
  } finally {
    await connection.close().catch(() => undefined);
    await db.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'events') return deadLetters(rest);
  if (command === 'reconcile') return reconcile(rest);
  if (command === 'batch') return batch(rest);
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
