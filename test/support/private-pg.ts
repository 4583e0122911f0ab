/**
 * A private Postgres cluster for tests that stop, kill or restart their
 * database (never the shared server on 5432): `initdb` in a temp dir, started
 * and stopped with `pg_ctl` on a free port, its unix socket in the same dir.
 * As root the binaries run as the `postgres` user (Postgres refuses to run as
 * root). `destroy()` stops the cluster and deletes its dir; call it in an
 * `after` hook so a failing test cleans up too.
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client as PgClient } from 'pg';
import { freePort } from './harness';

const run = promisify(execFile);

/** Where initdb and pg_ctl live: PINFLOW_TEST_PG_BIN, else the newest /usr/lib/postgresql/<n>/bin, else PATH. */
function binDir(): string | undefined {
  if (process.env.PINFLOW_TEST_PG_BIN) return process.env.PINFLOW_TEST_PG_BIN;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

export interface PrivatePg {
  readonly port: number;
  /** The temp dir: `data/` (the cluster), `postgres.log`, and the unix socket. */
  readonly dir: string;
  /** A connection URL for `database` (over TCP, 127.0.0.1). */
  url(database?: string): string;
  /** Whether the cluster is up (as far as this handle started and stopped it). */
  readonly running: boolean;
  /** Start the (stopped) cluster on the same port and wait until it accepts connections. */
  start(): Promise<void>;
  /** Stop it: `fast` disconnects clients and shuts down cleanly; `immediate` is a crash (recovery on the next start). */
  stop(mode?: 'smart' | 'fast' | 'immediate'): Promise<void>;
  /** Create a database in the cluster. */
  createDatabase(name: string): Promise<string>;
  /** The cluster's server log (for failure messages). */
  log(): string;
  /** Stop (immediate) if running and delete the dir. Never throws. */
  destroy(): Promise<void>;
}

/** initdb a new cluster in a temp dir and start it on a free port. */
export async function startPrivatePg(label: string): Promise<PrivatePg> {
  const bin = binDir();
  const exe = (name: string) => (bin ? join(bin, name) : name);
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), `pinflow-pg-${label}-`));
  const data = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  /** Run a Postgres binary, as the postgres user when we are root. */
  const pgExec = (name: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', exe(name), ...args], { cwd: dir }) : run(exe(name), args, { cwd: dir });

  const port = await freePort();
  let running = false;
  const handle: PrivatePg = {
    port,
    dir,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    get running() {
      return running;
    },
    async start() {
      const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100`;
      await pgExec('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '120', '-o', opts, 'start']);
      running = true;
    },
    async stop(mode = 'fast') {
      await pgExec('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '120', 'stop']);
      running = false;
    },
    async createDatabase(name) {
      const c = new PgClient({ connectionString: handle.url() });
      c.on('error', () => undefined);
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return handle.url(name);
    },
    log() {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
    async destroy() {
      if (existsSync(join(data, 'postmaster.pid'))) await pgExec('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await pgExec('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
    await handle.start();
  } catch (err) {
    await handle.destroy();
    throw err;
  }
  return handle;
}
