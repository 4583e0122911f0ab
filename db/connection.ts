/**
 * The projection database: real Postgres through `pg` when a URL is given,
 * embedded PGlite otherwise. Both speak the same SQL; this adapter hides the
 * client differences (pool vs single connection, exec vs query).
 */
import { Pool, type PoolClient } from 'pg';
import { isDatabaseUnavailable } from './availability';

/** A parameterised statement, pg-boss style: one small function builds each. */
export interface Query {
  text: string;
  values?: unknown[];
  /**
   * A hot statement of constant text (a run's start, step and close writes): on Postgres a named prepared
   * statement, parsed and planned once per connection instead of at every call. PGlite ignores it.
   */
  prepare?: boolean;
}

/** Names of the prepared statements, by text: the same name on every connection. Bounded: past it, unnamed. */
const preparedNames = new Map<string, string>();
const MAX_PREPARED = 64;

function preparedName(text: string): string | undefined {
  let name = preparedNames.get(text);
  if (name === undefined && preparedNames.size < MAX_PREPARED) {
    name = `pinflow_${preparedNames.size + 1}`;
    preparedNames.set(text, name);
  }
  return name;
}

/** A JSON value as a statement parameter (cast with `::jsonb` in the SQL), so `pg` and PGlite behave alike. */
export const json = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));

/** A timestamp from either driver (Date or text) as ISO 8601, or null. */
export const iso = (v: unknown): string | null => (v === null || v === undefined ? null : v instanceof Date ? v.toISOString() : new Date(v as string).toISOString());

export interface Db {
  readonly kind: 'pg' | 'pglite';
  query<T = Record<string, unknown>>(q: Query): Promise<T[]>;
  /** Run several statements (no parameters), e.g. a migration file. */
  exec(sql: string): Promise<void>;
  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * The first error each pooled client emitted, if any. Every client gets a
 * permanent 'error' listener when the pool creates it: `pg` emits 'error' on
 * a client whose connection ends (a Postgres restart, a reset socket) even
 * while it is checked out between statements, and an 'error' event with no
 * listener kills the process. The pool's own listener covers idle clients
 * only.
 */
const lostConnection = new WeakMap<PoolClient, Error>();

class PgDb implements Db {
  readonly kind = 'pg' as const;
  constructor(
    private readonly pool: Pool,
    private readonly client?: PoolClient,
  ) {}

  async query<T>(q: Query): Promise<T[]> {
    const name = q.prepare ? preparedName(q.text) : undefined;
    const on = this.client ?? this.pool;
    const res = name ? await on.query({ name, text: q.text, ...(q.values ? { values: q.values } : {}) }) : await on.query(q.text, q.values);
    return res.rows as T[];
  }

  async exec(sql: string): Promise<void> {
    await (this.client ?? this.pool).query(sql);
  }

  async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    if (this.client) return fn(this); // already inside one
    const client = await this.pool.connect();
    // A client whose connection broke goes back with the error, so the pool
    // discards it instead of handing a dead connection to the next caller.
    let discard: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(new PgDb(this.pool, client));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      discard = lostConnection.get(client) ?? (isDatabaseUnavailable(err) ? (err as Error) : undefined);
      if (!discard) {
        await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
          discard = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
        });
      }
      throw err;
    } finally {
      client.release(discard ?? lostConnection.get(client));
    }
  }

  async close(): Promise<void> {
    if (!this.client) await this.pool.end();
  }
}

export interface PgOptions {
  /** Pool size. @default 10 */
  max?: number;
  /** How long to wait for a new connection before the statement fails as unavailable. @default 10000 */
  connectTimeoutMs?: number;
}

/**
 * Connect to a real Postgres. A lost connection never takes the process
 * down: the statement on it fails with the driver's error (a socket error,
 * `Connection terminated unexpectedly`, or SQLSTATE 57P01; see
 * `isDatabaseUnavailable`), which callers retry; the broken client is
 * discarded and the next statement connects again.
 */
export function connectPg(connectionString: string, opts: PgOptions = {}): Db {
  const pool = new Pool({
    connectionString,
    max: opts.max ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
    // A connection whose peer vanished without a reset (a partition) is noticed by keepalive probes.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  // An idle client erroring (server restart) must not crash the process; the
  // pool discards it and the next query reconnects.
  pool.on('error', () => undefined);
  // Checked-out clients too: see lostConnection.
  pool.on('connect', (client: PoolClient) => {
    client.on('error', (err: Error) => {
      if (!lostConnection.has(client)) lostConnection.set(client, err);
    });
  });
  return new PgDb(pool);
}

interface PGliteLike {
  query<T>(text: string, values?: unknown[]): Promise<{ rows: T[] }>;
  exec(sql: string): Promise<unknown>;
  transaction<T>(fn: (tx: PGliteTx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
interface PGliteTx {
  query<T>(text: string, values?: unknown[]): Promise<{ rows: T[] }>;
  exec(sql: string): Promise<unknown>;
}

class PgliteDb implements Db {
  readonly kind = 'pglite' as const;
  // PGlite is one connection: serialise top-level work so a transaction never
  // interleaves with another caller's statements.
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: PGliteLike,
    private readonly tx?: PGliteTx,
  ) {}

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.tx) return fn();
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  query<T>(q: Query): Promise<T[]> {
    return this.serial(async () => (await (this.tx ?? this.db).query<T>(q.text, q.values)).rows);
  }

  exec(sql: string): Promise<void> {
    return this.serial(async () => {
      await (this.tx ?? this.db).exec(sql);
    });
  }

  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    if (this.tx) return fn(this);
    return this.serial(() => this.db.transaction((tx) => fn(new PgliteDb(this.db, tx))));
  }

  async close(): Promise<void> {
    if (!this.tx) await this.db.close();
  }
}

/** Open (or create) an embedded PGlite database in `dataDir`. */
export async function openPglite(dataDir: string): Promise<Db> {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = (await PGlite.create(dataDir)) as unknown as PGliteLike;
  return new PgliteDb(db);
}
