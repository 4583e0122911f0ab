/**
 * `pinflow batch create|show|list|pause|resume|cancel`: durable bulk actions,
 * through the library on the projection's database (DATABASE_URL); the API
 * process works through them. These write their own audit rows.
 */
import { Client, Connection } from '@temporalio/client';
import type { Command } from 'commander';
import { loadCliEnvironment, loadConfig } from '../../app/config';
import { openStore } from '../../app/store';
import { AuditLog } from '../../client/audit';
import type { BatchDryRun, BatchView, CreateBatchRequest } from '../../client/batches';
import { Pinflow } from '../../client/pinflow';
import { BATCH_ACTIONS } from '../../graph/terminology';
import { act, jsonOption } from '../command';
import { UsageError } from '../exit';
import { collect, intOption, pairs, printJson } from '../format';

function printBatch(b: BatchView): void {
  const p = b.progress;
  console.log(`batch ${b.id}: ${b.action} ${b.state}, by ${b.by}: ${b.reason}`);
  console.log(`  selected ${p.selected}: done ${p.done}, skipped ${p.skipped}, failed ${p.failed}, pending ${p.pending}, applying ${p.applying}; ${b.ratePerSecond}/s, concurrency ${b.concurrency}`);
  for (const r of b.skippedByReason) console.log(`  skipped ${r.count} ${r.code}${r.example ? `: ${r.example}` : ''}`);
  for (const r of b.failedByReason) console.log(`  failed ${r.count} ${r.code}${r.example ? `: ${r.example}` : ''}`);
}

function show(b: BatchView | BatchDryRun, json: boolean | undefined): void {
  if (json) printJson(b);
  else if ('dryRun' in b) {
    console.log(`dry run: ${b.action} would act on ${b.count} run(s); nothing was created`);
    for (const r of b.sample) console.log(`  ${r.runId}  ${r.status}  ${r.definition}@${r.version.slice(0, 12)}  ${r.tenant}`);
  } else printBatch(b);
}

/** The library on the projection's database; creating and steering a batch needs no Temporal (the runner in the API process talks to it). */
async function withBatches<T>(fn: (pinflow: Pinflow, audit: AuditLog) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const { store, catalog, db } = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  const connection = Connection.lazy({ address: config.temporal.address ?? '127.0.0.1:7233' });
  try {
    const pinflow = new Pinflow({ client: new Client({ connection, namespace: config.temporal.namespace }), store, catalog, rpcs: {} });
    return await fn(pinflow, new AuditLog(db));
  } finally {
    await connection.close().catch(() => undefined);
    await db.close();
  }
}

const byOf = (by: string | undefined) => by ?? loadCliEnvironment().user ?? 'cli';

interface CreateOptions {
  action: string;
  filter: string[];
  reason?: string;
  by?: string;
  params?: string;
  rate?: string;
  concurrency?: string;
  dryRun?: boolean;
  json?: boolean;
}

export function registerBatch(program: Command): void {
  const batch = program.command('batch').description('durable bulk actions by run filter (DATABASE_URL; the API process does the work)');

  jsonOption(
    batch
      .command('create')
      .description('act on every run the filter selects; --dry-run prints the count and a sample and creates nothing')
      .requiredOption('--action <action>', BATCH_ACTIONS.join(' | '))
      .option('--filter <field=value>', 'status, definition, version, tenant or meta.<key> (repeatable)', collect, [])
      .option('--reason <why>', 'why (required)')
      .option('--by <who>', 'who (default $USER)')
      .option('--params <json>', 'the action\'s parameters as JSON (skip: {"output":...}; migrate: {"targetVersion":...})')
      .option('--rate <n>', 'runs per second')
      .option('--concurrency <n>', 'runs at a time')
      .option('--dry-run', 'count and sample only; create nothing'),
  ).action(
    act(async (o: CreateOptions) => {
      const filter: Record<string, unknown> = {};
      const metadata: Record<string, string> = {};
      for (const [key, value] of Object.entries(pairs('--filter', o.filter))) {
        if (key.startsWith('meta.')) metadata[key.slice(5)] = value;
        else filter[key] = value;
      }
      if (Object.keys(metadata).length) filter.metadata = metadata;
      let params: unknown;
      try {
        params = o.params === undefined ? undefined : JSON.parse(o.params);
      } catch (err) {
        throw new UsageError(`--params is not JSON: ${(err as Error).message}`);
      }
      const rate = o.rate === undefined ? undefined : Number(o.rate);
      const concurrency = intOption('--concurrency', o.concurrency);
      const by = byOf(o.by);
      const request = {
        action: o.action,
        filter,
        by,
        reason: o.reason,
        ...(params !== undefined ? { params } : {}),
        ...(rate !== undefined ? { ratePerSecond: rate } : {}),
        ...(concurrency !== undefined ? { concurrency } : {}),
        ...(o.dryRun ? { dryRun: true } : {}),
      } as CreateBatchRequest;
      await withBatches(async (pinflow, audit) => {
        const created = await pinflow.batches.create(request);
        // The CLI acts on the database directly: it writes the audit row the API would (no key: `by` says who).
        if (!('dryRun' in created)) {
          await audit.append({ keyId: null, by, action: 'batch.create', route: 'cli', targetKind: 'batch', targetIds: [created.id], reason: request.reason ?? null, outcome: 'accepted', request: { action: created.action, filter: created.filter } });
        }
        show(created, o.json);
      });
    }),
  );

  jsonOption(batch.command('show').description("a batch's progress: selected, done, skipped and failed with reasons").argument('<id>')).action(
    act((id: string, o: { json?: boolean }) => withBatches(async (pinflow) => show(await pinflow.batches.get(id), o.json))),
  );

  jsonOption(batch.command('list').description('the batches')).action(
    act((o: { json?: boolean }) =>
      withBatches(async (pinflow) => {
        const { batches } = await pinflow.batches.list();
        if (o.json) printJson(batches);
        else for (const b of batches) printBatch(b);
      }),
    ),
  );

  for (const sub of ['pause', 'resume', 'cancel'] as const) {
    jsonOption(batch.command(sub).description(`${sub} a batch`).argument('<id>').option('--reason <why>', 'why').option('--by <who>', 'who (default $USER)')).action(
      act((id: string, o: { reason?: string; by?: string; json?: boolean }) =>
        withBatches(async (pinflow, audit) => {
          const by = byOf(o.by);
          const changed = await pinflow.batches[sub](id, { by, reason: o.reason as string });
          await audit.append({ keyId: null, by, action: `batch.${sub}`, route: 'cli', targetKind: 'batch', targetIds: [id], reason: o.reason ?? null, outcome: 'accepted' });
          show(changed, o.json);
        }),
      ),
    );
  }
}
