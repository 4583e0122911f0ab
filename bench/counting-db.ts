/**
 * A `Db` that counts the statements it sends to Postgres: every `query` and
 * `exec`, and a transaction's `BEGIN` and `COMMIT` (or `ROLLBACK`) around the
 * statements inside it (db/connection.ts sends those on the transaction's
 * client). The benchmark's `throughput.pgRoundTripsPerRun` is its count
 * during the graph batches divided by the runs.
 */
import type { Db, Query } from '../db/connection';

export interface CountingDb extends Db {
  /** Statements sent so far. */
  readonly statements: number;
}

export function countingDb(inner: Db): CountingDb {
  const counter = { n: 0 };
  const wrap = (db: Db, top: boolean): CountingDb => ({
    kind: db.kind,
    get statements() {
      return counter.n;
    },
    query<T = Record<string, unknown>>(q: Query): Promise<T[]> {
      counter.n++;
      return db.query<T>(q);
    },
    exec(sql: string): Promise<void> {
      counter.n++;
      return db.exec(sql);
    },
    async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
      if (!top) return fn(wrap(db, false)); // already inside one: db/connection.ts sends no BEGIN
      counter.n++; // BEGIN
      try {
        const result = await db.transaction((tx) => fn(wrap(tx, false)));
        counter.n++; // COMMIT
        return result;
      } catch (err) {
        counter.n++; // ROLLBACK (or the statement that found the connection gone)
        throw err;
      }
    },
    close: () => db.close(),
  });
  return wrap(inner, true);
}
