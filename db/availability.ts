/**
 * Telling "the database is not there right now" from "the database refuses
 * this": the first is retried (statements fail with a retryable
 * {@link DatabaseUnavailableError}, start-up waits with backoff), the second
 * fails at once with Postgres's own error.
 *
 * Unavailable means the connection was refused, reset, timed out or ended,
 * or the server said it is shutting down or starting up. A bad password, a
 * database that does not exist, a syntax error or a refused value are not:
 * no wait fixes them.
 */
import { ERROR_CODES, PinflowError } from '../graph/errors';

/** SQLSTATE class 08: connection exception (08000, 08003, 08006, 08001, 08004, ...). */
const CONNECTION_EXCEPTION_CLASS = '08';
/** 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up, shutting down, recovering). */
const SHUTDOWN_CODES = new Set(['57P01', '57P02', '57P03']);
/** 53300 too_many_connections: the server is there but has no slot for us now. */
const TOO_MANY_CONNECTIONS = '53300';

/** Node socket and resolver errors that a server coming back (or a network healing) fixes. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  // DNS: in a compose stack the database's name resolves only once its container runs.
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** What `pg` says when a connection ends under it or cannot be made in time. */
const PG_CONNECTION_MESSAGES = [
  /^Connection terminated/,
  /^timeout exceeded when trying to connect/,
  /^Client has encountered a connection error and is not queryable/,
  /^Client was closed and is not queryable/,
];

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** Whether `err` (or a cause of it, a few levels deep) says the database is unreachable right now. */
export function isDatabaseUnavailable(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e && typeof e === 'object'; depth++) {
    if (e instanceof DatabaseUnavailableError) return true;
    const o = e as { code?: unknown; severity?: unknown; message?: unknown; errors?: unknown; cause?: unknown };
    if (typeof o.code === 'string') {
      if (SQLSTATE.test(o.code) && typeof o.severity === 'string') {
        return o.code.startsWith(CONNECTION_EXCEPTION_CLASS) || SHUTDOWN_CODES.has(o.code) || o.code === TOO_MANY_CONNECTIONS;
      }
      if (NETWORK_CODES.has(o.code)) return true;
    }
    if (typeof o.message === 'string' && PG_CONNECTION_MESSAGES.some((re) => re.test(o.message as string))) return true;
    // Node's happy-eyeballs connect (localhost as ::1 and 127.0.0.1) fails with an AggregateError.
    if (Array.isArray(o.errors) && o.errors.length > 0 && o.errors.every((x) => isDatabaseUnavailable(x))) return true;
    e = o.cause;
  }
  return false;
}

/** The short reason of a database error for a log line: code and message, never row contents. */
export function describeDbError(err: unknown): string {
  let e: unknown = err;
  // Unwrap our own wrapper: the driver's error says what happened.
  for (let depth = 0; depth < 5 && e instanceof DatabaseUnavailableError; depth++) e = e.cause;
  if (!e || typeof e !== 'object') return String(e);
  const o = e as { code?: unknown; message?: unknown; errors?: unknown };
  const msg =
    typeof o.message === 'string' && o.message !== ''
      ? o.message
      : Array.isArray(o.errors)
        ? o.errors.map((x) => describeDbError(x)).join('; ')
        : 'unknown error';
  return typeof o.code === 'string' && !msg.includes(o.code) ? `${o.code}: ${msg}` : msg;
}

/**
 * A statement failed because the database could not be reached (refused,
 * reset, ended, shutting down). Retryable: the same statement succeeds once
 * the database is back. Its message names no host; `cause` is the driver's
 * error. The HTTP API answers it with `503 DATABASE_UNAVAILABLE`.
 */
export class DatabaseUnavailableError extends PinflowError {
  constructor(cause: unknown) {
    super(ERROR_CODES.DATABASE_UNAVAILABLE, 'the database is unavailable (the connection was refused or lost); retry once it is back', { retryable: true });
    this.name = 'DatabaseUnavailableError';
    this.cause = cause;
  }
}

/** `err` itself, or a {@link DatabaseUnavailableError} around it when it says the database is unreachable. */
export function asUnavailable(err: unknown): unknown {
  return !(err instanceof DatabaseUnavailableError) && isDatabaseUnavailable(err) ? new DatabaseUnavailableError(err) : err;
}

export interface WaitOptions {
  /** One line per failed attempt. */
  log: (line: string) => void;
  /** Give up after this long (then the last error is thrown); 0 waits forever. @default 0 */
  timeoutMs?: number;
  /** @default 500 */
  initialDelayMs?: number;
  /** @default 10000 */
  maxDelayMs?: number;
  /** Stop waiting (the last error is thrown) when this aborts, e.g. on SIGTERM. */
  signal?: AbortSignal;
}

/**
 * Run `fn` until it succeeds, waiting with capped exponential backoff while
 * it fails because the database is unavailable; any other error is thrown at
 * once (a bad password, a database that does not exist, a newer schema).
 * Each failed attempt is logged with its number, the error and the next delay.
 */
export async function waitForDatabase<T>(what: string, fn: () => Promise<T>, opts: WaitOptions): Promise<T> {
  const initial = opts.initialDelayMs ?? 500;
  const max = Math.max(initial, opts.maxDelayMs ?? 10_000);
  const timeoutMs = opts.timeoutMs ?? 0;
  const started = Date.now();
  let delay = initial;
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await fn();
      if (attempt > 1) opts.log(`${what}: the database answered after ${attempt} attempts (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      return result;
    } catch (err) {
      if (!isDatabaseUnavailable(err)) throw err;
      const elapsed = Date.now() - started;
      if (opts.signal?.aborted) throw err;
      if (timeoutMs > 0 && elapsed + delay > timeoutMs) {
        opts.log(`${what}: attempt ${attempt} failed (${describeDbError(err)}); giving up after ${(elapsed / 1000).toFixed(1)} s (PINFLOW_DB_STARTUP_TIMEOUT_MS=${timeoutMs})`);
        throw err;
      }
      opts.log(`${what}: attempt ${attempt} failed (${describeDbError(err)}); the database is unavailable, next attempt in ${delay} ms`);
      await sleep(delay, opts.signal);
      delay = Math.min(max, delay * 2);
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
