/**
 * `node dist/bench/step-counts.js [--runs=1000000]`: the step-counts query
 * alone, without Temporal. Synthesizes the projection benchmark's rows (runs
 * with 3 step rows and one open wait each, through the counting triggers) in
 * a database of its own (bench/database.ts: `PINFLOW_BENCH_DB`, refused if it
 * exists, else `pinflow_bench_steps_<yyyymmddhhmmss>_<pid>`; dropped at the
 * end unless `--keep-db`) on `PINFLOW_BENCH_PG_URL`, and prints p50/p95 of
 * `GET /versions/:hash/step-counts` as the API computes it.
 */
import { performance } from 'node:perf_hooks';
import { ConsoleReads } from '../client/console';
import { VersionStore } from '../catalog/versions';
import { connectPg } from '../db/connection';
import { migrate } from '../db/migrate';
import { ProjectionStore } from '../projection/store';
import { round } from './stats';
import { measureStepCounts, synthesize } from './synthetic';
import { benchDbName, createBenchDatabase, dbUrl } from './database';

const runsArg = process.argv.find((a) => a.startsWith('--runs='));
const RUNS = runsArg ? Number(runsArg.slice('--runs='.length)) : 1_000_000;
const DB_NAME = benchDbName('pinflow_bench_steps');
const log = (line: string) => console.log(`[step-counts ${new Date().toISOString().slice(11, 19)}] ${line}`);

async function main(): Promise<void> {
  const dropDb = await createBenchDatabase(DB_NAME);
  const db = connectPg(dbUrl(DB_NAME));
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
    if (process.argv.includes('--keep-db')) log(`--keep-db: kept the database ${DB_NAME}`);
    else await dropDb();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
