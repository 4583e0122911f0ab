/**
 * The `pruning` scenario of bench/run.ts (issue 17): a retention sweep over
 * `due` closed runs (3 step rows, details and metadata each; closed long past
 * every default policy) while a client asks the real HTTP API for the
 * console's run lists at a steady rate. Reports the sweep's duration, runs
 * and step rows deleted per second, and the list queries' p50/p95 before the
 * sweep and during it, side by side in the same run.
 *
 * The rows are written in SQL with the count triggers on (what the
 * projection pays too); the sweep runs with them on, as in production.
 */
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { createApi } from '../client/http';
import { ApiKeys } from '../client/keys';
import type { Pinflow } from '../client/pinflow';
import { RetentionService, type SweepView } from '../client/retention';
import type { Db } from '../db/connection';
import { median, percentile, round } from './stats';

export interface PruningSize {
  /** Closed runs past their policy (3 step rows each). */
  due: number;
  /** Runs that stay: closed recently, or open. */
  kept: number;
  /** Seconds of list queries before the sweep. */
  baselineSeconds: number;
}

/** Console-like list queries per second, from 2 clients. */
const LIST_RATE = 20;
const LIST_CLIENTS = 2;
const DEFINITIONS = 10;
const CHUNK = 100_000;
/** List queries run this long, their latencies discarded, before the measured windows. */
const WARM_UP_SECONDS = 15;

async function seed(db: Db, size: PruningSize, log: (line: string) => void): Promise<number> {
  const t0 = performance.now();
  await db.exec(`INSERT INTO versions (hash, graph, contracts)
    SELECT lpad(to_hex(100 + v), 64, '0'), '{"entry":"s1","steps":[]}', '{}' FROM generate_series(1, 3) v ON CONFLICT DO NOTHING`);
  // Due: closed 120 to 400 days ago (past FAILED's 90 days too); 1 in 1000 carries metadata retain=true (exempt).
  // Kept: the newest tenth, closed within the last 20 days or still RUNNING; these are what the lists show.
  const rows = (from: number, to: number, due: boolean) => `
    INSERT INTO runs (id, definition, version, tenant, status, current_step, started_at, updated_at, closed_at)
      SELECT 'p-' || i, 'prune-def-' || (i % ${DEFINITIONS}), lpad(to_hex(101 + i % 3), 64, '0'), 'tenant-' || (i % 10), st,
             NULL, closed - interval '5 minutes', closed, CASE WHEN st = 'RUNNING' THEN NULL ELSE closed END
      FROM (SELECT i,
              ${due ? `CASE WHEN i % 10 < 7 THEN 'COMPLETED' WHEN i % 10 < 9 THEN 'FAILED' ELSE 'CANCELLED' END` : `CASE WHEN i % 10 < 6 THEN 'COMPLETED' WHEN i % 10 < 8 THEN 'RUNNING' ELSE 'FAILED' END`} AS st,
              ${due ? `now() - interval '400 days' + (i::double precision / ${size.due}) * interval '280 days'` : `now() - interval '20 days' + ((i - ${size.due})::double precision / ${Math.max(1, size.kept)}) * interval '20 days'`} AS closed
            FROM generate_series(${from}, ${to}) i) g;
    INSERT INTO run_details (run_id, input, metadata)
      SELECT 'p-' || i, jsonb_build_object('n', i), jsonb_build_object('customer', 'c' || (i % 10000)) || CASE WHEN i % 1000 = 7 THEN '{"retain": true}'::jsonb ELSE '{}'::jsonb END
      FROM generate_series(${from}, ${to}) i;
    INSERT INTO run_steps (run_id, step_instance, attempt, step_id, step_type, seq, status, started_at, finished_at, input, output)
      SELECT 'p-' || i, 's' || s, 1, 's' || s, 'rpc', s, 'COMPLETED', r.started_at, r.started_at + interval '1 second', jsonb_build_object('i', i), jsonb_build_object('ok', true)
      FROM generate_series(${from}, ${to}) i JOIN runs r ON r.id = 'p-' || i, generate_series(1, 3) s;`;
  for (let from = 1; from <= size.due; from += CHUNK) await db.exec(rows(from, Math.min(size.due, from + CHUNK - 1), true));
  if (size.kept > 0) await db.exec(rows(size.due + 1, size.due + size.kept, false));
  // Settled before anything is measured: the seed's dead tuples vacuumed, its dirty pages written out.
  await db.exec('VACUUM ANALYZE');
  await db.exec('CHECKPOINT');
  const seconds = (performance.now() - t0) / 1000;
  log(`pruning: seeded ${size.due} due runs and ${size.kept} kept ones (${(size.due + size.kept) * 3} step rows) in ${round(seconds, 1)} s`);
  return seconds;
}

/** A steady stream of list queries through the HTTP API; `stop()` returns every latency measured. */
function listLoad(url: string, key: string): { stop: () => Promise<number[]>; errors: () => number } {
  const paths = ['/runs?limit=50', `/runs?definition=prune-def-3&limit=50`, '/runs?status=FAILED&limit=50', '/runs?status=COMPLETED&limit=50', '/runs?tenant=tenant-4&limit=50'];
  const latencies: number[] = [];
  let errors = 0;
  let stopped = false;
  let n = 0;
  const interval = (1000 * LIST_CLIENTS) / LIST_RATE;
  const client = async () => {
    while (!stopped) {
      const t0 = performance.now();
      const res = await fetch(`${url}${paths[n++ % paths.length]}`, { headers: { authorization: `Bearer ${key}` } }).catch(() => undefined);
      if (res?.ok) {
        await res.arrayBuffer();
        latencies.push(performance.now() - t0);
      } else errors++;
      const spent = performance.now() - t0;
      if (spent < interval) await new Promise((r) => setTimeout(r, interval - spent));
    }
  };
  const running = Promise.all(Array.from({ length: LIST_CLIENTS }, client));
  return {
    stop: async () => {
      stopped = true;
      await running;
      return latencies;
    },
    errors: () => errors,
  };
}

const stats = (t: number[]) => ({ samples: t.length, p50Ms: round(median(t), 2), p95Ms: round(percentile(t, 95), 2) });

export async function pruning(pinflow: Pinflow, db: Db, size: PruningSize, log: (line: string) => void): Promise<Record<string, unknown>> {
  const seedSeconds = await seed(db, size, log);
  const key = (await new ApiKeys(db).create({ scopes: ['read'], tenant: null, name: 'bench pruning', by: 'bench' })).key;
  const api = createApi({ pinflow, rateLimit: { max: 1_000_000, timeWindowMs: 60_000 } });
  await api.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
  const retention = new RetentionService({ db, catalog: pinflow.catalog, connection: pinflow.client.connection, namespace: pinflow.namespace, log });
  try {
    const preview = await retention.preview();
    log(`pruning: preview: ${preview.runs.due} due, ${preview.runs.prunable} prunable (exempt ${JSON.stringify(preview.runs.exempt)})`);
    // Warm-up (discarded): the first queries after the seed read cold pages.
    const warm = listLoad(url, key);
    await new Promise((r) => setTimeout(r, WARM_UP_SECONDS * 1000));
    await warm.stop();
    // Before: the list queries alone.
    const before = listLoad(url, key);
    await new Promise((r) => setTimeout(r, size.baselineSeconds * 1000));
    const beforeT = await before.stop();
    // During: the same load while the sweep runs.
    const during = listLoad(url, key);
    const t0 = performance.now();
    const started = await retention.startSweep({ by: 'bench', reason: 'pruning benchmark' });
    let done: SweepView | undefined;
    let lastLog = 0;
    for (;;) {
      const v = await retention.sweep(started.id);
      if (v.state !== 'RUNNING') {
        done = v;
        break;
      }
      if (performance.now() - lastLog > 30_000) {
        lastLog = performance.now();
        log(`pruning: ${v.progress.runsDeleted} runs deleted after ${round((performance.now() - t0) / 1000, 1)} s`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const seconds = (performance.now() - t0) / 1000;
    const duringT = await during.stop();
    if (done.state !== 'DONE') throw new Error(`the sweep ended ${done.state}: ${done.error}`);
    // The sweep deleted exactly what the preview called prunable, and the counts follow the rows.
    const [left] = await db.query<{ runs: number; counted: number; steps: number }>({
      text: `SELECT (SELECT count(*)::int FROM runs WHERE id LIKE 'p-%') AS runs, (SELECT sum(runs)::int FROM run_counts WHERE version IN (SELECT lpad(to_hex(100 + v), 64, '0') FROM generate_series(1, 3) v)) AS counted, (SELECT count(*)::int FROM run_steps WHERE run_id LIKE 'p-%') AS steps`,
    });
    if (done.progress.runsDeleted !== preview.runs.prunable) throw new Error(`the sweep deleted ${done.progress.runsDeleted} runs; the preview said ${preview.runs.prunable}`);
    if (left!.runs !== size.due + size.kept - preview.runs.prunable) throw new Error(`${left!.runs} runs left; expected ${size.due + size.kept - preview.runs.prunable}`);
    if (left!.counted !== left!.runs) throw new Error(`run_counts sums to ${left!.counted}; ${left!.runs} runs are left`);
    const b = stats(beforeT);
    const d = stats(duringT);
    return {
      dueRuns: size.due,
      keptRuns: size.kept,
      runsDeleted: done.progress.runsDeleted,
      stepsDeleted: done.progress.stepsDeleted,
      exemptRetain: done.progress.exempt.retain,
      batchSize: done.batchSize,
      pauseMs: done.pauseMs,
      batches: done.progress.batches,
      seedSeconds: round(seedSeconds, 1),
      sweepSeconds: round(seconds, 1),
      runsPerSecond: round(done.progress.runsDeleted / seconds, 1),
      stepRowsPerSecond: round(done.progress.stepsDeleted / seconds, 1),
      listRatePerSecond: LIST_RATE,
      listBefore: b,
      listDuring: d,
      listP95Ratio: round(d.p95Ms / b.p95Ms, 2),
      listP50Ratio: round(d.p50Ms / b.p50Ms, 2),
      listErrors: before.errors() + during.errors(),
      runCountsLeft: left!.counted,
    };
  } finally {
    await retention.stop();
    await api.close();
  }
}
