/**
 * Permanent database errors in activities. The interpreter retries projection
 * activities without limit, which is right for a database blip and wrong for
 * a write Postgres will refuse every time (an index row over the btree limit,
 * a NUL in JSON, a check constraint): that retried forever and wedged the run.
 *
 * `isPermanentDbError` classifies an error by its SQLSTATE; `withDbErrors`
 * wraps an activity so a permanent one fails it non-retryably as
 * `ProjectionWriteRejected`, naming the activity, the run, the step or wait,
 * the SQLSTATE and Postgres's message. Everything else (connection loss,
 * serialization failures, deadlocks, anything without a SQLSTATE, and every
 * `ApplicationFailure` an activity raises on purpose) is rethrown untouched.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { FAILURE_TYPES } from '../graph/errors';

/**
 * SQLSTATE classes (the first two characters) whose errors no retry can fix:
 * 22 data exception (a NUL in JSON, an invalid byte sequence, a value too
 * long), 23 integrity violation (not null, check, exclusion), 42 syntax or
 * access rule violation, 54 program limit exceeded (an index row over the
 * btree limit), 21 cardinality violation, 0A feature not supported. Every
 * other code is retried: 08 connection, 53 insufficient resources, 57P01-03
 * shutdowns, 40001 serialization failure, 40P01 deadlock, 55P03 lock not
 * available, and anything unknown.
 */
const PERMANENT_CLASSES = new Set(['22', '23', '42', '54', '21', '0A']);

/** Named codes (the tests assert on them). */
export const INDEX_ROW_TOO_LARGE = '54000';
export const UNSUPPORTED_UNICODE_ESCAPE = '22P05';

/**
 * Class 23 codes that can be expected races between writers, not bad data:
 * two writers inserting the same key, or a child row written while its parent
 * row (the run, the event) is being written or rebuilt. A retry settles such a
 * race within a few attempts; one that persists is a statement that can never
 * succeed (a missing ON CONFLICT, a parent row that will never come), so after
 * {@link RACE_RETRIES} attempts it is permanent. Without an attempt number
 * (a caller that cannot count) they stay retryable.
 */
export const UNIQUE_VIOLATION = '23505';
export const FOREIGN_KEY_VIOLATION = '23503';
const RETRYABLE_IN_PERMANENT_CLASS = new Set([UNIQUE_VIOLATION, FOREIGN_KEY_VIOLATION]);
/** Attempts after which a race code is treated as permanent. */
export const RACE_RETRIES = 5;

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** A Postgres error as `pg` and PGlite raise it: a five-character SQLSTATE `code` and a `severity`. */
interface PgErrorLike {
  code: string;
  severity: string;
  message: string;
  table?: string;
  column?: string;
  constraint?: string;
}

/**
 * The Postgres error inside `err` (itself or a `cause`, a few levels deep), or
 * undefined. Node socket errors (ECONNRESET, ECONNREFUSED, ETIMEDOUT) carry no
 * SQLSTATE and no severity, so they are never one.
 */
function postgresError(err: unknown): PgErrorLike | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    const o = e as Partial<PgErrorLike> & { cause?: unknown };
    if (typeof o.code === 'string' && SQLSTATE.test(o.code) && typeof o.severity === 'string') return o as PgErrorLike;
    e = o.cause;
  }
  return undefined;
}

/** Whether a SQLSTATE names an error no retry can fix (at the given attempt, counting from 1). */
export function isPermanentSqlState(sqlstate: string, attempt?: number): boolean {
  if (RETRYABLE_IN_PERMANENT_CLASS.has(sqlstate)) return attempt !== undefined && attempt >= RACE_RETRIES;
  return PERMANENT_CLASSES.has(sqlstate.slice(0, 2));
}

/** Whether `err` is a Postgres error that a retry cannot fix (at the given attempt). Without a SQLSTATE: never. */
export function isPermanentDbError(err: unknown, attempt?: number): boolean {
  const pg = postgresError(err);
  return pg !== undefined && isPermanentSqlState(pg.code, attempt);
}

/** The current activity's attempt, or undefined outside an activity. */
function currentAttempt(): number | undefined {
  try {
    return Context.current().info.attempt;
  } catch {
    return undefined;
  }
}

/** Where an activity was in its run, read from its argument (or the activity context). */
interface Place {
  runId?: string;
  stepInstance?: string;
  waitId?: string;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function placeOf(arg: unknown): Place {
  const a = (arg && typeof arg === 'object' ? arg : {}) as Record<string, unknown>;
  const stall = (a.stall && typeof a.stall === 'object' ? a.stall : {}) as Record<string, unknown>;
  let runId = str(a.runId) ?? str(a.id);
  if (!runId) {
    try {
      runId = Context.current().info.workflowExecution?.workflowId; // pinflow's run id is the workflow id
    } catch {
      // called outside an activity (tests, scripts): no context
    }
  }
  const stepInstance = str(a.stepInstance) ?? str(stall.stepInstance) ?? str(a.at) ?? str(a.stepId);
  const waitId = str(a.waitId);
  return { ...(runId ? { runId } : {}), ...(stepInstance ? { stepInstance } : {}), ...(waitId ? { waitId } : {}) };
}

const MAX_PG_MESSAGE = 500;

/**
 * The non-retryable failure for a permanent database error. Its first detail
 * is an ErrorInfo (type, message, step), as the RPC activity's are, so the
 * interpreter reports it on the step like any other activity failure.
 * Postgres's `detail` (which can quote row contents) is left out.
 */
function projectionWriteRejected(activity: string, arg: unknown, pg: PgErrorLike): ApplicationFailure {
  const place = placeOf(arg);
  const where = [place.runId ? `run ${place.runId}` : 'an unknown run', place.waitId ? `wait ${place.waitId}` : place.stepInstance ? `step ${place.stepInstance}` : undefined]
    .filter(Boolean)
    .join(', ');
  const pgMessage = pg.message.length > MAX_PG_MESSAGE ? `${pg.message.slice(0, MAX_PG_MESSAGE)}…` : pg.message;
  const message = `${activity} for ${where}: the projection refused the write permanently (SQLSTATE ${pg.code}: ${pgMessage})`;
  const info = {
    type: FAILURE_TYPES.PROJECTION_WRITE_REJECTED,
    message,
    ...(place.stepInstance ? { stepInstance: place.stepInstance } : {}),
    details: {
      activity,
      ...place,
      sqlstate: pg.code,
      pgMessage,
      ...(pg.table ? { table: pg.table } : {}),
      ...(pg.column ? { column: pg.column } : {}),
      ...(pg.constraint ? { constraint: pg.constraint } : {}),
    },
  };
  return ApplicationFailure.nonRetryable(message, FAILURE_TYPES.PROJECTION_WRITE_REJECTED, info);
}

/** Wrap one activity: a permanent database error fails it non-retryably; anything else is rethrown as is. */
export function withDbErrors<A extends unknown[], R>(activity: string, fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A): Promise<R> => {
    try {
      return await fn(...args);
    } catch (err) {
      const pg = err instanceof ApplicationFailure ? undefined : postgresError(err);
      if (pg && isPermanentSqlState(pg.code, currentAttempt())) throw projectionWriteRejected(activity, args[0], pg);
      throw err;
    }
  };
}

/** Wrap every activity of a factory's result, so a new activity gets the rule for free. */
export function withDbErrorsAll<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities)) out[name] = withDbErrors(name, fn as (...args: unknown[]) => Promise<unknown>);
  return out as T;
}
