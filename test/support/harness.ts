/**
 * Test harness: one real Temporal dev server per test run (started by the
 * root hooks in test/support/setup), and for each suite its own Temporal
 * namespace and its own real Postgres database. The task queue is the one
 * constant, so namespaces are what isolate suites from each other.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { Client as PgClient } from 'pg';
import type { ActivityHooks } from '../../activities';
import { Pinflow, type PinflowOptions } from '../../client/pinflow';
import { connectPg, type Db } from '../../db/connection';
import { migrate } from '../../db/migrate';
import { ProjectionStore } from '../../projection/store';
import { ensureSearchAttributes } from '../../app/namespace';
import { projectRoot } from '../../db/paths';
import type { RpcDefinition } from '../../rpc/registry';
import { createWorker } from '../../worker/worker';
import { clientInterceptors } from '../../observability/tracing';
import { ApiKeys } from '../../client/keys';
import type { Scope } from '../../client/api-schemas';
import { dataConverterFor } from '../../codec/encryption';
import type { PayloadCodec } from '@temporalio/common';

/** Admin connection used to create per-suite databases. */
export const PG_ADMIN_URL = process.env.PINFLOW_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Namespaces pre-created at dev server start (registering later waits on a cache refresh). */
export const TEST_NAMESPACES = Array.from({ length: 80 }, (_, i) => `pinflow-test-${i + 1}`);

interface Shared {
  address: string;
  uiUrl: string | undefined;
  nextNamespace: number;
}
const shared: Shared = { address: '', uiUrl: undefined, nextNamespace: 0 };

export function setTemporalAddress(address: string, uiUrl?: string): void {
  shared.address = address;
  shared.uiUrl = uiUrl;
}

/** The Temporal UI of the test server (PINFLOW_TEST_TEMPORAL_UI_URL with an external server), if it serves one. */
export function temporalUiUrl(): string | undefined {
  return shared.uiUrl;
}

export function temporalAddress(): string {
  if (!shared.address) throw new Error('the test Temporal server is not running (root hooks not loaded?)');
  return shared.address;
}

/** Claim a namespace no other suite uses in this run. */
export function claimNamespace(): string {
  const ns = TEST_NAMESPACES[shared.nextNamespace++];
  if (!ns) throw new Error(`more than ${TEST_NAMESPACES.length} suites claimed a namespace; raise TEST_NAMESPACES`);
  return ns;
}

export function pgUrl(database: string): string {
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Create an empty database named after the suite. */
export async function createDatabase(label: string): Promise<{ name: string; url: string; drop: () => Promise<void> }> {
  const name = `pinflow_t_${label.replace(/[^a-z0-9]+/gi, '_').toLowerCase().slice(0, 30)}_${randomBytes(3).toString('hex')}`;
  const admin = new PgClient({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    name,
    url: pgUrl(name),
    drop: async () => {
      const a = new PgClient({ connectionString: PG_ADMIN_URL });
      await a.connect();
      try {
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}

export interface Env {
  namespace: string;
  db: Db;
  databaseUrl: string;
  store: ProjectionStore;
  client: Client;
  pinflow: Pinflow;
  /** Start an in-process worker with these RPCs; stopped by `stop()`. */
  startWorker(rpcs: RpcDefinition[], opts?: { testHooks?: ActivityHooks }): Promise<Worker>;
  stopWorker(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A fully isolated environment: own namespace, own migrated database, real Temporal.
 * `opts.databaseUrl` uses that (empty) database instead of creating one on the
 * shared server, e.g. one in a private cluster (support/private-pg.ts); it is
 * not dropped by `stop()`.
 */
export async function createEnv(
  label: string,
  rpcs: RpcDefinition[],
  pinflowOptions: Pick<PinflowOptions, 'correlationRules' | 'events' | 'searchableMetadata'> = {},
  opts: { databaseUrl?: string; codec?: PayloadCodec } = {},
): Promise<Env> {
  const namespace = claimNamespace();
  const database = opts.databaseUrl ? { url: opts.databaseUrl, drop: () => Promise.resolve() } : await createDatabase(label);
  const db = connectPg(database.url);
  await migrate(db);
  const store = new ProjectionStore(db);
  const connection = await Connection.connect({ address: temporalAddress() });
  await ensureSearchAttributes(connection, namespace, { metadataKeys: pinflowOptions.searchableMetadata ?? [] });
  const client = new Client({ connection, namespace, interceptors: clientInterceptors(), ...dataConverterFor(opts.codec) });
  const pinflow = new Pinflow({ client, store, rpcs, temporalUiUrl: 'http://localhost:8233', ...pinflowOptions });
  const codec = opts.codec;
  let worker: { worker: Worker; running: Promise<void>; conn: NativeConnection } | undefined;

  const stopWorker = async () => {
    if (!worker) return;
    const w = worker;
    worker = undefined;
    if (w.worker.getState() === 'RUNNING') w.worker.shutdown();
    await w.running;
    await w.conn.close();
  };
  return {
    namespace,
    db,
    databaseUrl: database.url,
    store,
    client,
    pinflow,
    async startWorker(workerRpcs, opts = {}) {
      await stopWorker();
      const conn = await NativeConnection.connect({ address: temporalAddress() });
      const w = await createWorker({ rpcs: workerRpcs, store, connection: conn, namespace, searchableMetadata: pinflowOptions.searchableMetadata ?? [], ...(opts.testHooks ? { testHooks: opts.testHooks } : {}), ...(codec ? { codec } : {}) });
      worker = { worker: w, running: w.run(), conn };
      return w;
    },
    stopWorker,
    async stop() {
      await stopWorker();
      await connection.close();
      await db.close();
      await database.drop();
    },
  };
}

/** Poll until `fn` returns a truthy value (for the projection catching up). */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false>, opts: { timeoutMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.what ?? 'condition'}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

type Spawned = ChildProcess & { output: string[] };

/** A pinflow entry point (`dist/app/<main>.js`) as a child process on an env, its output collected. */
function spawnPinflowProcess(main: 'worker-main' | 'api-main', env: Env, fixtureModule: string, extraEnv: Record<string, string>): Spawned {
  const child = spawn(process.execPath, [join(projectRoot(), 'dist', 'app', `${main}.js`)], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: temporalAddress(),
      TEMPORAL_NAMESPACE: env.namespace,
      DATABASE_URL: env.databaseUrl,
      PINFLOW_RPC_MODULE: join(projectRoot(), 'dist', 'test', 'fixtures', `${fixtureModule}.js`),
      NODE_ENV: 'production',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as Spawned;
  child.output = [];
  child.stdout!.on('data', (d: Buffer) => child.output.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => child.output.push(d.toString()));
  return child;
}

/** A real worker process (`node dist/app/worker-main.js`, as production runs it) on an env, loading an RPC module from dist/test/fixtures. */
export function spawnWorkerProcess(env: Env, fixtureModule: string, extraEnv: Record<string, string> = {}): Spawned {
  return spawnPinflowProcess('worker-main', env, fixtureModule, extraEnv);
}

/** A TCP port that was free a moment ago on 127.0.0.1 (for child processes and private servers). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A real API process (`node dist/app/api-main.js`, as production runs it) on
 * an env, loading an RPC module from dist/test/fixtures, not yet waited for
 * (e.g. one started while its database is down). `url` is its base address.
 */
export async function spawnApiProcessUnready(
  env: Env,
  fixtureModule: string,
  extraEnv: Record<string, string> = {},
): Promise<ChildProcess & { output: string[]; url: string }> {
  const port = await freePort();
  const child = spawnPinflowProcess('api-main', env, fixtureModule, { PINFLOW_API_HOST: '127.0.0.1', PINFLOW_API_PORT: String(port), PINFLOW_RATE_LIMIT_PER_MINUTE: '1000000', ...extraEnv }) as Spawned & { url: string };
  child.url = `http://127.0.0.1:${port}`;
  return child;
}

/** {@link spawnApiProcessUnready}, resolved once `/health` answers. */
export async function spawnApiProcess(
  env: Env,
  fixtureModule: string,
  extraEnv: Record<string, string> = {},
): Promise<ChildProcess & { output: string[]; url: string; key: string }> {
  const child = (await spawnApiProcessUnready(env, fixtureModule, extraEnv)) as Awaited<ReturnType<typeof spawnApiProcessUnready>> & { key: string };
  await eventually(
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the API process exited: ${child.output.join('')}`);
      const res = await fetch(`${child.url}/health`);
      return res.ok;
    },
    { timeoutMs: 60_000, what: `the API process on ${child.url} to answer /health` },
  );
  child.key = await createKey(env);
  return child;
}

/** Resolves with the exit code and signal of a child process (at once if it already exited). */
export function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

// ---------------------------------------------------------------------------
// API keys (auth is on by default): one key per test API, sent by default.

/** Creates an API key in the env's database (admin, every tenant, unless told) and returns it (`pf_<id>_<secret>`). */
export async function createKey(env: { db: Db }, opts: { scopes?: Scope[]; tenant?: string | null; name?: string } = {}): Promise<string> {
  const created = await new ApiKeys(env.db).create({ scopes: opts.scopes ?? ['admin'], tenant: opts.tenant ?? null, name: opts.name ?? 'test', by: 'test harness' });
  return created.key;
}

/** Makes `api.inject` send `Authorization: Bearer <key>` unless the request sets its own authorization header. */
export function withKey<T extends { inject: unknown }>(api: T, key: string): T {
  const inject = (api.inject as (...a: unknown[]) => unknown).bind(api);
  (api as { inject: unknown }).inject = (opts?: unknown, cb?: unknown) => {
    if (opts === undefined) return inject();
    const o = (typeof opts === 'string' ? { url: opts } : opts) as { headers?: Record<string, unknown> };
    const headers = o.headers ?? {};
    const has = Object.keys(headers).some((h) => h.toLowerCase() === 'authorization');
    return inject({ ...o, headers: has ? headers : { ...headers, authorization: `Bearer ${key}` } }, ...(cb ? [cb] : []));
  };
  return api;
}

/** `fetch` that sends `Authorization: Bearer <key>` unless the call sets its own authorization header. */
export function keyFetch(key: string): typeof fetch {
  return (input, init = {}) => {
    const headers = new Headers(init.headers);
    if (!headers.has('authorization')) headers.set('authorization', `Bearer ${key}`);
    return fetch(input, { ...init, headers });
  };
}
