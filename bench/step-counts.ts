/**
 * `node dist/bench/step-counts.js [--runs=1000000]`: the step-counts query
 * alone, without Temporal. Synthesizes the projection benchmark's rows (runs
 * with 3 step rows and one open wait each, through the counting triggers) in
 * a fresh database, `PINFLOW_BENCH_DB` (default `pinflow_bench_steps`; dropped
 * and recreated) on `PINFLOW_BENCH_PG_URL`, and prints p50/p95 of
 * `GET /versions/:hash/step-counts` as the API computes it.
 */
import { Client as PgClient } from 'pg';
import { performance } from 'node:perf_hooks';
import { ConsoleReads } from '../client/console';
import { VersionStore } from '../catalog/versions';
import { connectPg } from '../db/connection';
import { migrate } from '../db/migrate';
import { ProjectionStore } from '../projection/store';
import { round } from './stats';
import { measureStepCounts, synthesize } from './synthetic';

const runsArg = process.argv.find((a) => a.startsWith('--runs='));
const RUNS = runsArg ? Number(runsArg.slice('--runs='.length)) : 1_000_000;
const ADMIN_URL = process.env.PINFLOW_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DB_NAME = process.env.PINFLOW_BENCH_DB ?? 'pinflow_bench_steps';
const log = (line: string) => console.log(`[step-counts ${new Date().toISOString().slice(11, 19)}] ${line}`);

async function main(): Promise<void> {
  const admin = new PgClient({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${DB_NAME}" WITH (FORCE)`);
  await admin.query(`CREATE DATABASE "${DB_NAME}"`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${DB_NAME}`;
  const db = connectPg(url.toString());
  try {
    await migrate(db);
    const t0 = performance.now();
    await synthesize(db, RUNS, log);
    log(`rows written through the counting triggers in ${round((performance.now() - t0) / 1000, 1)} s`);
    const store = new ProjectionStore(db);
    const result = await measureStepCounts(new ConsoleReads(store, new VersionStore(db)), db, 200);
    console.log(JSON.stringify({ runs: RUNS, steps: RUNS * 3, samples: 200, stepCountsP50Ms: result.p50Ms, stepCountsP95Ms: result.p95Ms }));
  } finally {
    await db.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
