/**
 * Synthetic projection rows for the projection benchmarks (bench/run.ts
 * `projection` and `events`, and bench/step-counts.ts), and the step-counts
 * measurement both report.
 */
import { performance } from 'node:perf_hooks';
import type { ConsoleReads } from '../client/console';
import type { Db } from '../db/connection';
import { median, percentile, round } from './stats';

/** Synthetic projection rows, written in SQL: runs, details, 3 steps each, and one open wait each. */
export async function synthesize(db: Db, n: number, log: (line: string) => void): Promise<void> {
  const t0 = performance.now();
  await db.exec(`
    INSERT INTO versions (hash, graph, contracts)
      SELECT lpad(to_hex(v), 64, '0'), '{"entry":"s1","steps":[]}', '{}' FROM generate_series(1, 3) v ON CONFLICT DO NOTHING;
    INSERT INTO runs (id, definition, version, tenant, status, current_step, started_at, updated_at, closed_at)
      SELECT 'syn-' || i, 'syn-def-' || (i % 20), lpad(to_hex(1 + i % 3), 64, '0'), 'tenant-' || (i % 50),
             CASE WHEN i % 100 < 80 THEN 'COMPLETED' WHEN i % 100 < 95 THEN 'RUNNING' WHEN i % 100 < 99 THEN 'FAILED' ELSE 'STALLED' END,
             's3', timestamptz '2026-01-01' + i * interval '1 second', timestamptz '2026-01-01' + i * interval '1 second' + interval '5 seconds',
             CASE WHEN i % 100 < 80 THEN timestamptz '2026-01-01' + i * interval '1 second' + interval '5 seconds' END
      FROM generate_series(1, ${n}) i;
    INSERT INTO run_details (run_id, input, metadata)
      SELECT 'syn-' || i, jsonb_build_object('n', i), jsonb_build_object('customer', 'c' || (i % 10000), 'region', (ARRAY['eu', 'us', 'apac'])[1 + i % 3])
      FROM generate_series(1, ${n}) i;
    INSERT INTO run_steps (run_id, step_instance, attempt, step_id, step_type, seq, status, started_at, finished_at, input, output)
      SELECT 'syn-' || i, 's' || s, 1, 's' || s, 'rpc', s, 'COMPLETED', timestamptz '2026-01-01' + i * interval '1 second',
             timestamptz '2026-01-01' + i * interval '1 second' + interval '1 second', jsonb_build_object('i', i), jsonb_build_object('ok', true)
      FROM generate_series(1, ${n}) i, generate_series(1, 3) s;
    INSERT INTO run_waits (run_id, wait_id, step_instance, tenant, event_name, correlation_key, status, reached_at)
      SELECT 'syn-' || i, 'w@4', 'w', 'tenant-' || (i % 50), 'syn.event.' || (i % 100), 'k-' || i, 'OPEN', timestamptz '2026-01-01' + i * interval '1 second'
      FROM generate_series(1, ${n}) i;
    ANALYZE;
  `);
  log(`synthesized ${n} runs (+ details, ${n * 3} steps, ${n} open waits) in ${round((performance.now() - t0) / 1000, 1)} s`);
}

/** The synthetic versions (3) and tenants (50). */
const versionOf = (k: number) => (1 + (k % 3)).toString(16).padStart(64, '0');

/**
 * `GET /versions/:hash/step-counts` as the API answers it (catalog read,
 * outline, the step_counts and run_counts sums), half for every tenant and
 * half for one tenant (a tenant key), after a warm-up and a vacuum of the
 * counter tables.
 */
export async function measureStepCounts(reads: ConsoleReads, db: Db, samples: number): Promise<{ p50Ms: number; p95Ms: number }> {
  // What autovacuum does to the counter tables after every 1000 dead rows
  // (their settings in migrations/000013_console.sql): the synthesis just
  // updated them once per run.
  await db.exec('VACUUM ANALYZE step_counts, run_counts');
  const once = async (i: number) => {
    const t0 = performance.now();
    await reads.stepCounts(versionOf(i), i % 2 === 0 ? undefined : `tenant-${i % 50}`);
    return performance.now() - t0;
  };
  for (let w = 0; w < 10; w++) await once(w);
  const t: number[] = [];
  for (let s = 0; s < samples; s++) t.push(await once(Math.floor(Math.random() * 1_000)));
  return { p50Ms: round(median(t), 2), p95Ms: round(percentile(t, 95), 2) };
}
