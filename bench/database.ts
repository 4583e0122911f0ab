/**
 * The benchmark's own database. By default a unique name per run
 * (`pinflow_bench_<yyyymmddhhmmss>_<pid>`), created by the run and dropped at
 * its end; `PINFLOW_BENCH_DB` names one explicitly, and the run refuses it if
 * it exists already. A database is dropped only because this run created it
 * (never with `--keep-db`), so the benchmark never drops anything it did not
 * make and can run beside anything else on the same server.
 */
import { Client as PgClient } from 'pg';

export const BENCH_ADMIN_URL = process.env.PINFLOW_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A unique default name: `<prefix>_<yyyymmddhhmmss>_<pid>`. */
export function uniqueDbName(prefix: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `${prefix}_${stamp}_${process.pid}`;
}

/** The bench database's name: `PINFLOW_BENCH_DB`, else a unique one. Throws on a name that is not a plain identifier. */
export function benchDbName(prefix = 'pinflow_bench'): string {
  const name = process.env.PINFLOW_BENCH_DB ?? uniqueDbName(prefix);
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
    throw new Error(`PINFLOW_BENCH_DB must be a plain lower-case identifier ([a-z_][a-z0-9_]*, at most 63 characters), got ${JSON.stringify(name)}`);
  }
  return name;
}

export function dbUrl(name: string, adminUrl = BENCH_ADMIN_URL): string {
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

async function admin<T>(adminUrl: string, fn: (pg: PgClient) => Promise<T>): Promise<T> {
  const pg = new PgClient({ connectionString: adminUrl });
  pg.on('error', () => undefined); // a lost connection fails the awaited query; the event must not kill the process
  await pg.connect();
  try {
    return await fn(pg);
  } finally {
    await pg.end();
  }
}

/**
 * Creates `name`, refusing one that exists (`CREATE DATABASE` fails on an
 * existing name too, so a race with another creator cannot make this run own
 * a database it did not create). Returns the function that drops it: call it
 * only to drop what this run created.
 */
export async function createBenchDatabase(name: string, adminUrl = BENCH_ADMIN_URL): Promise<() => Promise<void>> {
  await admin(adminUrl, async (pg) => {
    const { rows } = await pg.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rows.length > 0) {
      throw new Error(
        `the benchmark database ${JSON.stringify(name)} exists already on ${new URL(adminUrl).host}: the benchmark uses only a database it creates, ` +
          'and never drops one it did not create. Unset PINFLOW_BENCH_DB (a unique name is the default) or name a database that does not exist.',
      );
    }
    await pg.query(`CREATE DATABASE "${name}"`);
  });
  // FORCE is safe here: the name is one this run has just created, so every backend on it is this run's.
  return () => admin(adminUrl, async (pg) => void (await pg.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)));
}
