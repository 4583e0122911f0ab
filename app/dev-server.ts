/**
 * The embedded Temporal dev server: `temporal server start-dev` on a SQLite
 * file under `.pinflow/`, so runs survive a restart. Health is awaited by
 * polling the frontend, never by sleeping a fixed time. The server is stopped
 * (SIGTERM, then SIGKILL) on the way out; a pid file lets the next start kill
 * a server orphaned by a hard crash of the parent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { dirname, join } from 'node:path';
import { Connection } from '@temporalio/client';
import { ERROR_CODES, PinflowError } from '../graph/errors';

export interface DevServerOptions {
  cliPath: string;
  /** SQLite file; created if missing, reused otherwise. */
  dbFile: string;
  /**
   * Keep the server's state in memory instead of in `dbFile` (which then only
   * names the pid and log files). The benchmarks use this. @default false
   */
  inMemory?: boolean;
  /** @default 7233 */
  port: number;
  /** @default 8233 */
  uiPort: number;
  /** @default '127.0.0.1' */
  ip?: string;
  /** Extra namespaces to create at start (the `default` namespace always exists). */
  namespaces?: string[];
  /** Disable the web UI (tests). @default false */
  headless?: boolean;
  /** The UI's remote codec endpoint (`--ui-codec-endpoint`): pinflow's `/codec` when payloads are encrypted. */
  uiCodecEndpoint?: string;
  /** Where server output goes. @default next to dbFile */
  logFile?: string;
  /** Extra `KEY=VALUE` dynamic config (tests lower thresholds with it). */
  dynamicConfig?: string[];
  /** Give up waiting for health after this long. @default 120000 */
  startTimeoutMs?: number;
  /**
   * SQLite pragmas for the server's store (`--sqlite-pragma`, `NAME=VALUE`),
   * for the file store only (an in-memory store never touches a disk).
   * @default {@link DEV_SERVER_SQLITE_PRAGMAS}
   */
  sqlitePragmas?: readonly string[];
}

export interface DevServer {
  readonly address: string;
  readonly uiUrl: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/**
 * Dynamic config the dev server needs: operator decisions use Temporal
 * Updates (as @temporalio/testing configures it).
 */
export const DEV_SERVER_DYNAMIC_CONFIG = [
  'frontend.enableUpdateWorkflowExecution=true',
  'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true',
  'frontend.workerVersioningDataAPIs=true',
  'system.forceSearchAttributesCacheRefreshOnRead=true',
] as const;

/**
 * The dev server's SQLite file store, tuned for a development machine. The
 * store has one connection: every write of every run waits its turn on it,
 * and with SQLite's defaults (a rollback journal, `synchronous=FULL`) each
 * commit waits for fsyncs. Under a burst of events the persistence calls
 * then outlive their deadlines (`context deadline exceeded` in the server
 * log), workflow tasks queue, and resumes take minutes (BENCHMARKS.md,
 * "Events burst"). A write-ahead log with `synchronous=NORMAL` commits
 * without an fsync and stays consistent after a crash (the last commits
 * may be lost on a power cut, which a development server can afford).
 * Production runs a real Temporal cluster, not this server.
 */
export const DEV_SERVER_SQLITE_PRAGMAS = ['journal_mode=WAL', 'synchronous=NORMAL'] as const;

function portInUse(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = netConnect({ port, host });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

/** Whether a process with this pid exists (signal 0 probes without signalling). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killStale(pidFile: string): void {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return;
  }
  if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('start-dev')) return; // the pid was reused by something else
    } catch {
      // no /proc (macOS): trust the pid file
    }
    process.kill(pid, 'SIGKILL');
  }
  rmSync(pidFile, { force: true });
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Poll until the frontend answers a real RPC, or throw TEMPORAL_UNAVAILABLE. */
export async function waitForTemporal(address: string, opts: { timeoutMs: number; isDead?: () => string | undefined }): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  let delay = 100;
  for (;;) {
    const dead = opts.isDead?.();
    if (dead) throw new PinflowError(ERROR_CODES.TEMPORAL_UNAVAILABLE, dead);
    try {
      const conn = await Connection.connect({ address, connectTimeout: 2_000 });
      try {
        await conn.workflowService.getSystemInfo({});
        await conn.workflowService.describeNamespace({ namespace: 'default' });
        return;
      } finally {
        await conn.close();
      }
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new PinflowError(
        ERROR_CODES.TEMPORAL_UNAVAILABLE,
        `Temporal at ${address} did not become healthy within ${opts.timeoutMs} ms: ${(lastError as Error)?.message ?? lastError}`,
      );
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 1_000);
  }
}

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const address = `${ip}:${opts.port}`;
  mkdirSync(dirname(opts.dbFile), { recursive: true });
  const pidFile = `${opts.dbFile}.pid`;
  const logFile = opts.logFile ?? `${opts.dbFile}.log`;
  killStale(pidFile);
  if (await portInUse(opts.port, ip)) {
    throw new PinflowError(
      ERROR_CODES.TEMPORAL_UNAVAILABLE,
      `port ${opts.port} on ${ip} is already in use, so the embedded Temporal dev server cannot start; ` +
        `set PINFLOW_TEMPORAL_PORT to a free port, or TEMPORAL_ADDRESS=${address} if a Temporal server already runs there`,
      { port: opts.port },
    );
  }
  const args = [
    'server',
    'start-dev',
    ...(opts.inMemory ? [] : ['--db-filename', opts.dbFile, ...(opts.sqlitePragmas ?? DEV_SERVER_SQLITE_PRAGMAS).flatMap((p) => ['--sqlite-pragma', p])]),
    '--ip',
    ip,
    '--port',
    String(opts.port),
    '--log-level',
    'warn',
    ...[...DEV_SERVER_DYNAMIC_CONFIG, ...(opts.dynamicConfig ?? [])].flatMap((v) => ['--dynamic-config-value', v]),
    ...(opts.namespaces ?? []).flatMap((n) => ['--namespace', n]),
    ...(opts.headless ? ['--headless'] : ['--ui-port', String(opts.uiPort)]),
    ...(!opts.headless && opts.uiCodecEndpoint ? ['--ui-codec-endpoint', opts.uiCodecEndpoint] : []),
  ];
  const out = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(opts.cliPath, args, { stdio: ['ignore', out, out] });
  } finally {
    closeSync(out);
  }
  let exited: string | undefined;
  child.on('exit', (code, signal) => {
    exited = `the Temporal dev server exited (code ${code}, signal ${signal}) before it became healthy; its log (${logFile}) ends with:\n${tail(logFile)}`;
  });
  child.on('error', (err) => {
    exited = `could not start ${opts.cliPath}: ${err.message}`;
  });
  // Last resort if the parent exits without calling stop(): never leave an orphan.
  const onExit = () => child.kill('SIGKILL');
  process.on('exit', onExit);
  if (child.pid) writeFileSync(pidFile, String(child.pid));

  const stop = async (): Promise<void> => {
    process.off('exit', onExit);
    if (child.exitCode === null && child.signalCode === null) {
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await done;
      clearTimeout(timer);
    }
    rmSync(pidFile, { force: true });
  };

  try {
    await waitForTemporal(address, { timeoutMs: opts.startTimeoutMs ?? 120_000, isDead: () => exited });
  } catch (err) {
    await stop();
    throw err;
  }
  return { address, uiUrl: `http://localhost:${opts.uiPort}`, pid: child.pid!, stop };
}

/** Default SQLite location inside the data dir. */
export function devServerDbFile(dataDir: string): string {
  return join(dataDir, 'temporal.sqlite');
}
