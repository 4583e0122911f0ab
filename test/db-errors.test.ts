/**
 * Permanent database errors in activities: the activities built by
 * createActivities run against a real Postgres (called directly, outside a
 * worker), and a write Postgres refuses for good fails non-retryably as
 * ProjectionWriteRejected, while a transient error is rethrown untouched so
 * Temporal retries it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { createActivities, createProjectionWriter, type Activities } from '../activities';
import {
  FOREIGN_KEY_VIOLATION,
  INDEX_ROW_TOO_LARGE,
  isPermanentDbError,
  isPermanentSqlState,
  RACE_RETRIES,
  UNIQUE_VIOLATION,
  withDbErrors,
} from '../activities/db-errors';
import { FAILURE_TYPES } from '../graph/errors';
import type { Graph } from '../graph/schema';
import type { WaitOpening } from '../graph/wire';
import { connectPg, type Db, type Query } from '../db/connection';
import { migrate } from '../db/migrate';
import { VersionStore } from '../catalog/versions';
import { ProjectionStore } from '../projection/store';
import { defineRpc, RpcRegistry } from '../rpc/registry';
import { createDatabase, createEnv, eventually, type Env } from './support/harness';

const VERSION = 'a'.repeat(64);
const RUN = 'r1';

/** The error an activity rejected with (fails the test if it resolved). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail('the activity resolved; it was expected to fail');
}

function opening(correlationKey: string): WaitOpening {
  return {
    runId: RUN,
    tenant: 'default',
    waitId: 'w@3',
    stepId: 'w',
    stepInstance: 'w',
    seq: 3,
    event: 'order.paid',
    correlationKey,
    hasFilter: false,
    reachedAt: new Date().toISOString(),
    timeoutAt: null,
    trail: [],
  };
}

/** A Db that delegates to another and keeps the last error it threw, to check it is rethrown as is. */
class RecordingDb implements Db {
  readonly kind = 'pg' as const;
  lastError: unknown;
  constructor(
    private readonly inner: Db,
    private readonly rewrite: (q: Query) => Query = (q) => q,
  ) {}
  private async record<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      this.lastError = err;
      throw err;
    }
  }
  query<T = Record<string, unknown>>(q: Query): Promise<T[]> {
    return this.record(this.inner.query<T>(this.rewrite(q)));
  }
  exec(sql: string): Promise<void> {
    return this.record(this.inner.exec(sql));
  }
  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    return this.record(this.inner.transaction((tx) => fn(new RecordingDb(tx, this.rewrite))));
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function activitiesOn(db: Db): Activities {
  return createActivities({ store: new ProjectionStore(db), registry: new RpcRegistry([]) });
}

describe('permanent database errors in activities', () => {
  let database: Awaited<ReturnType<typeof createDatabase>>;
  let db: Db;
  let activities: Activities;

  before(async () => {
    database = await createDatabase('db_errors');
    db = connectPg(database.url);
    await migrate(db);
    await new VersionStore(db).publishVersion({ definition: 'orders', hash: VERSION, graph: { steps: [] } as unknown as Graph, contracts: {} });
    activities = activitiesOn(db);
    await activities.projectRunStarted({
      runId: RUN,
      definition: 'orders',
      version: VERSION,
      tenant: 'default',
      temporalRunId: 'temporal-r1',
      startedAt: new Date().toISOString(),
      input: {},
      metadata: {},
    });
  });

  after(async () => {
    await db?.close();
    await database?.drop();
  });

  it('openWait with a 10,000-character correlation key fails non-retryably as ProjectionWriteRejected naming the run, the wait and SQLSTATE 54000, and opens no wait', async () => {
    const key = randomBytes(7_500).toString('base64'); // incompressible, so the index cannot shrink it
    assert.equal(key.length, 10_000);
    const err = await rejection(activities.openWait(opening(key)));
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    assert.equal(err.nonRetryable, true);
    assert.equal(err.type, FAILURE_TYPES.PROJECTION_WRITE_REJECTED);
    assert.equal(err.type, 'ProjectionWriteRejected');
    // Over a page even before the btree limit (2704 bytes), so Postgres words it this way.
    assert.equal(err.message, `openWait for run r1, wait w@3: the projection refused the write permanently (SQLSTATE ${INDEX_ROW_TOO_LARGE}: index row requires 10032 bytes, maximum size is 8191)`);
    const info = err.details?.[0] as { type: string; message: string; stepInstance: string; details: Record<string, unknown> };
    assert.equal(info.type, 'ProjectionWriteRejected');
    assert.equal(info.message, err.message);
    assert.equal(info.stepInstance, 'w');
    assert.deepEqual(
      { activity: info.details.activity, runId: info.details.runId, waitId: info.details.waitId, sqlstate: info.details.sqlstate },
      { activity: 'openWait', runId: 'r1', waitId: 'w@3', sqlstate: '54000' },
    );
    const waits = await db.query({ text: 'SELECT wait_id FROM run_waits WHERE run_id = $1', values: [RUN] });
    assert.deepEqual(waits, []);
  });

  it('a run output carrying a NUL inside its JSON never fails projectRunClosed: the run is closed without its output, and the refusal is logged with the run id', async () => {
    const logged: string[] = [];
    const store = new ProjectionStore(db);
    const closing = createActivities({ store, registry: new RpcRegistry([]), writer: createProjectionWriter(store, { log: (m) => logged.push(m) }) });
    await closing.projectRunClosed({ runId: RUN, status: 'COMPLETED', output: { note: 'a\u0000b' }, closedAt: new Date().toISOString(), trail: [] });
    const [run] = await db.query<{ status: string; output: unknown }>({ text: 'SELECT status, d.output FROM runs JOIN run_details d ON d.run_id = runs.id WHERE id = $1', values: [RUN] });
    assert.equal(run?.status, 'COMPLETED');
    assert.deepEqual(run?.output, { projectionRejected: 'unsupported Unicode escape sequence' });
    assert.deepEqual(logged, [
      `the projection refused a write for run ${RUN} (runClosed) permanently: unsupported Unicode escape sequence; writing it without its payloads`,
    ]);
    // Later tests open waits on this run: reopen it.
    await db.query({ text: `UPDATE runs SET status = 'RUNNING', closed_at = NULL WHERE id = $1`, values: [RUN] });
  });

  it('a step output carrying a NUL fails closeWait (which projects the trail) with ProjectionWriteRejected naming the wait', async () => {
    const now = new Date().toISOString();
    const err = await rejection(
      activities.closeWait({
        runId: RUN,
        waitId: 'w@3',
        status: 'RESOLVED',
        closedAt: now,
        trail: [{ stepInstance: 'calc', attempt: 1, stepId: 'calc', stepType: 'assign', seq: 2, status: 'COMPLETED', startedAt: now, finishedAt: now, output: { v: '\u0000' } }],
      } as Parameters<Activities['closeWait']>[0]),
    );
    assert.ok(err instanceof ApplicationFailure);
    assert.equal(err.nonRetryable, true);
    assert.equal(err.type, 'ProjectionWriteRejected');
    assert.equal(err.message, 'closeWait for run r1, wait w@3: the projection refused the write permanently (SQLSTATE 22P05: unsupported Unicode escape sequence)');
  });

  it('a connection the server terminated (SQLSTATE 57P01) is rethrown as is, so Temporal retries it', async () => {
    // Every statement is replaced by the server terminating its own backend: a real 57P01.
    // (Outside a transaction; inside one, see test/db-connection.test.ts.)
    const terminating = connectPg(database.url, { max: 1 });
    const recording = new RecordingDb(terminating, () => ({ text: 'SELECT pg_terminate_backend(pg_backend_pid())' }));
    const err = await rejection(activitiesOn(recording).resolveChildVersion({ definition: 'orders', version: undefined }).finally(() => terminating.close()));
    assert.ok(recording.lastError, 'the database raised nothing');
    assert.equal(err, recording.lastError);
    assert.equal((err as { code?: string }).code, '57P01');
    assert.equal(err instanceof ApplicationFailure, false);
  });

  it('an unreachable server (ECONNREFUSED) and a closed pool are rethrown as is', async () => {
    const unreachable = connectPg('postgres://postgres@127.0.0.1:1/none', { max: 1 });
    const closed = connectPg(database.url, { max: 1 });
    await closed.close();
    try {
      for (const [what, inner, code] of [
        ['unreachable', unreachable, 'ECONNREFUSED'],
        ['closed pool', closed, undefined],
      ] as const) {
        const recording = new RecordingDb(inner);
        const err = await rejection(activitiesOn(recording).openWait(opening('k-1')));
        assert.ok(recording.lastError, `${what}: the database raised nothing`);
        assert.equal(err, recording.lastError, what);
        assert.equal(err instanceof ApplicationFailure, false, what);
        assert.equal((err as { code?: string }).code, code, what);
      }
    } finally {
      await unreachable.close();
    }
  });

  it('an ApplicationFailure an activity raises on purpose (a stall) passes through the wrapper untouched', async () => {
    const stall = ApplicationFailure.create({ message: 'RPC "x" is not registered', type: FAILURE_TYPES.RPC_STALL, nonRetryable: true });
    const wrapped = withDbErrors('invokeRpc', () => Promise.reject(stall));
    assert.equal(await rejection(wrapped()), stall);
  });

  it('classifies SQLSTATEs: data, integrity, syntax, limit, cardinality and unsupported-feature classes are permanent; connection, resource, shutdown, serialization, deadlock, lock and the two race codes are retryable', () => {
    const table: Array<[string, boolean, string]> = [
      ['54000', true, 'program_limit_exceeded (index row too large)'],
      ['54001', true, 'statement_too_complex'],
      ['22P05', true, 'untranslatable_character / unsupported Unicode escape'],
      ['22021', true, 'character_not_in_repertoire (invalid byte sequence)'],
      ['22001', true, 'string_data_right_truncation'],
      ['22003', true, 'numeric_value_out_of_range'],
      ['22007', true, 'invalid_datetime_format'],
      ['22008', true, 'datetime_field_overflow'],
      ['22P02', true, 'invalid_text_representation'],
      ['23502', true, 'not_null_violation'],
      ['23514', true, 'check_violation'],
      ['23P01', true, 'exclusion_violation'],
      ['42601', true, 'syntax_error'],
      ['42P01', true, 'undefined_table'],
      ['42703', true, 'undefined_column'],
      ['42501', true, 'insufficient_privilege'],
      ['21000', true, 'cardinality_violation'],
      ['0A000', true, 'feature_not_supported'],
      ['23505', false, 'unique_violation: a race between writers (until RACE_RETRIES attempts)'],
      [FOREIGN_KEY_VIOLATION, false, 'foreign_key_violation: a child row before its parent row'],
      ['08000', false, 'connection_exception'],
      ['08006', false, 'connection_failure'],
      ['08003', false, 'connection_does_not_exist'],
      ['57P01', false, 'admin_shutdown'],
      ['57P02', false, 'crash_shutdown'],
      ['57P03', false, 'cannot_connect_now'],
      ['57014', false, 'query_canceled (statement timeout)'],
      ['40001', false, 'serialization_failure'],
      ['40P01', false, 'deadlock_detected'],
      ['53000', false, 'insufficient_resources'],
      ['53100', false, 'disk_full'],
      ['53300', false, 'too_many_connections'],
      ['55P03', false, 'lock_not_available'],
      ['XX000', false, 'internal_error (unknown: retried)'],
    ];
    for (const [code, permanent, name] of table) {
      assert.equal(isPermanentSqlState(code), permanent, `${code} ${name}`);
      assert.equal(isPermanentDbError(Object.assign(new Error(name), { code, severity: 'ERROR' })), permanent, `${code} ${name} as a pg error`);
    }
    // The two race codes settle within a few retries; one that persists is a statement that can never succeed.
    for (const code of [UNIQUE_VIOLATION, FOREIGN_KEY_VIOLATION]) {
      assert.equal(isPermanentSqlState(code, 1), false, `${code} at attempt 1`);
      assert.equal(isPermanentSqlState(code, RACE_RETRIES - 1), false, `${code} at attempt ${RACE_RETRIES - 1}`);
      assert.equal(isPermanentSqlState(code, RACE_RETRIES), true, `${code} at attempt ${RACE_RETRIES}`);
    }
    // Without a SQLSTATE (node socket errors, plain errors, non-errors): never permanent.
    for (const err of [
      Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      Object.assign(new Error('ETIMEDOUT'), { code: 'ETIMEDOUT' }),
      Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }),
      Object.assign(new Error('looks like a SQLSTATE, is not a pg error'), { code: '54000' }),
      new Error('Connection terminated unexpectedly'),
      'a string',
      undefined,
    ]) {
      assert.equal(isPermanentDbError(err), false, String(err));
    }
    // A permanent pg error wrapped as the cause of another error is still found.
    assert.equal(isPermanentDbError(new Error('wrapped', { cause: Object.assign(new Error('x'), { code: '22P05', severity: 'ERROR' }) })), true);
  });
});

describe('permanent database errors in a run on a real Temporal server', function () {
  this.timeout(120_000);
  let env: Env;
  let calls = 0;
  /** Its output is valid JSON for Temporal, but Postgres refuses the NUL in jsonb (22P05) when the step row is written. */
  const nul = defineRpc('test.nulOutput', {
    input: z.object({}),
    output: z.object({ text: z.string() }),
    handler: () => {
      calls++;
      return { text: 'a\u0000b' };
    },
  });

  before(async () => {
    env = await createEnv('db_errors_run', [nul]);
    await env.startWorker([nul]);
  });
  after(async () => env?.stop());

  it('an RPC step whose output the projection refuses completes anyway: the step row lands without the payload, the handler ran once, and the refusal is logged with the run id', async () => {
    // The handler's output holds a NUL; the graph returns only its length (a
    // NUL produced by an expression that is stored fails its step instead:
    // ValueNotStorable, the hostile-input suite).
    await env.pinflow.publish('nul-output', {
      entry: 'call',
      steps: [
        { id: 'call', type: 'rpc', rpc: 'test.nulOutput', input: {}, next: 'done' },
        { id: 'done', type: 'return', output: { length: '$length(steps.call.text)' } },
      ],
    });
    const warned: string[] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => void warned.push(args.map(String).join(' '));
    try {
      const started = await env.pinflow.start({ definition: 'nul-output' });
      // The run's outcome is the handler's: the projection decides nothing.
      assert.deepEqual(await env.pinflow.result(started.runId), { length: 3 });
      assert.equal(calls, 1, 'the handler ran once: no retry');
      const run = await eventually(async () => {
        const r = await env.pinflow.getRun(started.runId);
        return r.status === 'COMPLETED' ? r : undefined;
      });
      const refused = { projectionRejected: 'unsupported Unicode escape sequence' };
      assert.deepEqual(run.output, { length: 3 });
      assert.deepEqual(
        run.steps.map((s) => [s.stepInstance, s.attempt, s.status, s.output]),
        [
          ['call', 1, 'COMPLETED', refused],
          ['done', 1, 'COMPLETED', { length: 3 }],
        ],
      );
      await eventually(() =>
        Promise.resolve(warned.some((w) => w.includes(`the projection refused a write for run ${started.runId} (steps) permanently: unsupported Unicode escape sequence`))),
        { what: `the steps refusal logged with the run id; logged: ${warned.join(' | ')}` },
      );
    } finally {
      console.warn = warn;
    }
  });

  it('a NUL produced before a wait never reaches openWait: the assign fails with ValueNotStorable (catchable by onError) and no wait is opened', async () => {
    // Before 0.6.0 the assign's record (a NUL in its output) rode along with
    // openWait, whose write Postgres refused (22P05) on every retry.
    await env.pinflow.publish('nul-before-wait', {
      entry: 'make',
      steps: [
        { id: 'make', type: 'assign', set: { bad: '$decodeUrlComponent("a%00b")' }, onError: 'handled', next: 'w' },
        { id: 'w', type: 'wait', event: 'never.sent', correlationKey: "'k-1'", timeout: '1h', next: 'done' },
        { id: 'done', type: 'return', output: "'resumed'" },
        { id: 'handled', type: 'return', output: { type: 'error.type', step: 'error.stepId' } },
      ],
    });
    const started = await env.pinflow.start({ definition: 'nul-before-wait' });
    assert.deepEqual(await env.pinflow.result(started.runId), { type: 'ValueNotStorable', step: 'make' });
    const history = await env.client.workflow.getHandle(started.runId).fetchHistory();
    const scheduled = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes).map((e) => e.activityTaskScheduledEventAttributes!.activityType?.name);
    assert.ok(!scheduled.includes('openWait'), `no openWait was scheduled; scheduled: ${scheduled.join(', ')}`);
    const run = await eventually(async () => {
      const r = await env.pinflow.getRun(started.runId);
      return r.status === 'COMPLETED' ? r : undefined;
    });
    assert.equal(run.steps.find((st) => st.stepInstance === 'handled')?.status, 'COMPLETED');
    assert.equal(run.steps.find((st) => st.stepInstance === 'w'), undefined, 'the wait was never reached');
  });
});
