/**
 * Opening the database: `pg` for DATABASE_URL, PGlite in the data dir
 * otherwise, migrated on open. It holds the catalog (authoritative) and the
 * projection (derived), as two stores over one database.
 *
 * A Postgres that is not up yet (refused, starting, shutting down, its name
 * not resolving yet) is waited for with capped backoff, one log line per
 * attempt, instead of exiting: a process started before its database, or
 * during an outage, goes on once the database answers. Errors no wait fixes
 * (a bad password, a database that does not exist, a schema migrated by a
 * newer pinflow) fail at once.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import { waitForDatabase } from '../db/availability';
import { connectPg, openPglite, type Db } from '../db/connection';
import { migrate } from '../db/migrate';
import { ProjectionStore } from '../projection/store';
import { VersionStore } from '../catalog/versions';

export interface OpenStoreOptions {
  databaseUrl: string | undefined;
  dataDir: string;
  /** One line per failed connection attempt at start. @default no logging */
  log?: (line: string) => void;
  /** Give up waiting for Postgres after this long; 0 waits forever. @default 0 */
  startupTimeoutMs?: number;
  /** How long one connection attempt may take. @default 10000 */
  connectTimeoutMs?: number;
  /** Stop waiting (e.g. on SIGTERM): the last error is thrown. */
  signal?: AbortSignal;
}

export async function openStore(opts: OpenStoreOptions): Promise<{ store: ProjectionStore; catalog: VersionStore; db: Db; applied: number[] }> {
  let db: Db;
  if (opts.databaseUrl) db = connectPg(opts.databaseUrl, { ...(opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}) });
  else {
    const dir = join(opts.dataDir, 'pglite');
    mkdirSync(dir, { recursive: true });
    db = await openPglite(dir);
  }
  try {
    const applied = await waitForDatabase('projection database (migrations)', () => migrate(db), {
      log: opts.log ?? (() => undefined),
      timeoutMs: opts.startupTimeoutMs ?? 0,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return { store: new ProjectionStore(db), catalog: new VersionStore(db), db, applied };
  } catch (err) {
    await db.close();
    throw refusedClearly(err);
  }
}

/** SQLSTATE classes of a connection Postgres refuses for good: 28 invalid authorization (bad user or password), 3D invalid catalog name (no such database). */
const REFUSED_CLASSES = new Set(['28', '3D']);

/** A refused login or a missing database as a CONFIG_INVALID naming DATABASE_URL (never its value, which may hold a password). */
function refusedClearly(err: unknown): unknown {
  const e = err as { code?: unknown; severity?: unknown; message?: unknown };
  if (typeof e?.code === 'string' && typeof e.severity === 'string' && REFUSED_CLASSES.has(e.code.slice(0, 2))) {
    return new PinflowError(
      ERROR_CODES.CONFIG_INVALID,
      `DATABASE_URL: Postgres refused the connection (SQLSTATE ${e.code}: ${String(e.message)}); waiting does not fix this: check the user, password and database name in DATABASE_URL`,
      { sqlstate: e.code },
    );
  }
  return err;
}
