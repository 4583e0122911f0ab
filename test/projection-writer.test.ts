/**
 * The projection writer and the step-attempt SQL against a real Postgres
 * (no Temporal): one COMPLETED attempt per dispatch whatever order the writes
 * arrive in, the cancelled-step insert racing a sibling's write, and the
 * writer's order per run, retries, refusals, bound and lag.
 */
import assert from 'node:assert/strict';
import { Client as PgClient } from 'pg';
import { createProjectionWriter } from '../activities';
import { VersionStore } from '../catalog/versions';
import type { Graph } from '../graph/schema';
import { connectPg, type Db } from '../db/connection';
import { migrate } from '../db/migrate';
import type { StepRecord } from '../graph/wire';
import * as sql from '../projection/sql';
import { ProjectionStore } from '../projection/store';
import { createDatabase, eventually } from './support/harness';

const T0 = '2026-11-30T12:00:00.000Z';
const VERSION = 'a'.repeat(64);

function attempt(runId: string, n: number, status: StepRecord['status'], extra: Partial<StepRecord> = {}): StepRecord {
  return { stepInstance: 'call', attempt: n, dispatch: 1, stepId: 'call', stepType: 'rpc', seq: 1, status, startedAt: T0, ...extra };
}

describe('projection writer and step attempts (real Postgres)', function () {
  this.timeout(120_000);
  let database: Awaited<ReturnType<typeof createDatabase>>;
  let db: Db;
  let store: ProjectionStore;
  let runSeq = 0;

  const newRun = async (): Promise<string> => {
    const id = `pw-${++runSeq}`;
    await store.recordRunStarted({ id, definition: 'd', version: VERSION, tenant: 'default', temporalRunId: null, startedAt: T0, input: {}, metadata: {} });
    return id;
  };
  const rows = async (runId: string) =>
    (await store.getRun(runId))!.steps.map((s) => [s.attempt, s.status, s.error?.type ?? null, (s.error?.details as { wrote?: string } | undefined)?.wrote ?? null]);

  before(async () => {
    database = await createDatabase('projection_writer');
    db = connectPg(database.url);
    await migrate(db);
    await new VersionStore(db).publishVersion({ definition: 'd', hash: VERSION, graph: { steps: [] } as unknown as Graph, contracts: {} });
    store = new ProjectionStore(db);
  });
  after(async () => {
    await db?.close();
    await database?.drop();
  });

  it('a later attempt supersedes the earlier RUNNING or COMPLETED attempts of its dispatch; a FAILED one keeps its failure', async () => {
    const a = await newRun();
    await store.recordSteps(a, [attempt(a, 1, 'RUNNING')]);
    await store.recordSteps(a, [attempt(a, 1, 'COMPLETED', { output: { v: 1 } })]);
    await store.recordSteps(a, [attempt(a, 2, 'RUNNING')]);
    await store.recordSteps(a, [attempt(a, 2, 'COMPLETED', { output: { v: 2 } })]);
    assert.deepEqual(await rows(a), [
      [1, 'SUPERSEDED', 'AttemptSuperseded', 'COMPLETED'],
      [2, 'COMPLETED', null, null],
    ]);
    assert.deepEqual((await store.getRun(a))!.steps[0]!.output, { v: 1 }, 'the superseded attempt keeps what it wrote');

    const b = await newRun();
    await store.recordSteps(b, [attempt(b, 1, 'RUNNING')]);
    await store.recordSteps(b, [attempt(b, 1, 'FAILED', { error: { type: 'RpcHandlerError', message: 'boom' } })]);
    await store.recordSteps(b, [attempt(b, 2, 'RUNNING')]);
    await store.recordSteps(b, [attempt(b, 3, 'RUNNING')]);
    assert.deepEqual(await rows(b), [
      [1, 'FAILED', 'RpcHandlerError', null],
      [2, 'SUPERSEDED', 'AttemptSuperseded', 'RUNNING'],
      [3, 'RUNNING', null, null],
    ]);
  });

  it("an old attempt's late COMPLETED write never overwrites a newer attempt's supersession, nor adds a second COMPLETED row", async () => {
    // Late after the supersession: stays SUPERSEDED.
    const a = await newRun();
    await store.recordSteps(a, [attempt(a, 1, 'RUNNING')]);
    await store.recordSteps(a, [attempt(a, 2, 'RUNNING')]);
    await store.recordSteps(a, [attempt(a, 1, 'COMPLETED', { output: { late: true } })]);
    await store.recordSteps(a, [attempt(a, 2, 'COMPLETED')]);
    // Late before its own RUNNING row ever landed (its writer was slow): written SUPERSEDED.
    const b = await newRun();
    await store.recordSteps(b, [attempt(b, 2, 'RUNNING')]);
    await store.recordSteps(b, [attempt(b, 1, 'COMPLETED', { output: { late: true } })]);
    await store.recordSteps(b, [attempt(b, 1, 'RUNNING')]);
    await store.recordSteps(b, [attempt(b, 2, 'COMPLETED')]);
    for (const id of [a, b]) {
      assert.deepEqual(await rows(id), [
        [1, 'SUPERSEDED', 'AttemptSuperseded', id === a ? 'RUNNING' : 'COMPLETED'],
        [2, 'COMPLETED', null, null],
      ], id);
    }
    // A finished attempt never goes back to RUNNING (a re-delivered write).
    const c = await newRun();
    await store.recordSteps(c, [attempt(c, 1, 'COMPLETED')]);
    await store.recordSteps(c, [attempt(c, 1, 'RUNNING')]);
    assert.deepEqual(await rows(c), [[1, 'COMPLETED', null, null]]);
  });

  it("cancelOpenAttempts racing a sibling's uncommitted insert of the same attempt cancels that row instead of failing with run_steps_pkey", async () => {
    const id = await newRun();
    const sibling = new PgClient({ connectionString: database.url });
    const canceller = new PgClient({ connectionString: database.url });
    await sibling.connect();
    await canceller.connect();
    try {
      // The sibling's insert is in flight (uncommitted): the cancel's NOT EXISTS guards cannot see it.
      await sibling.query('BEGIN');
      const up = sql.upsertStep(id, attempt(id, 1, 'RUNNING'));
      await sibling.query(up.text, up.values);
      const cancel = sql.cancelOpenAttempts(id, attempt(id, 1, 'CANCELLED', { finishedAt: T0 }));
      const cancelling = canceller.query(cancel.text, cancel.values); // waits on the sibling's row
      await eventually(
        async () => {
          const r = await sibling.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`);
          return (r.rows[0] as { n: number }).n >= 1;
        },
        { timeoutMs: 60_000, what: 'the cancel to wait on the sibling' },
      );
      await sibling.query('COMMIT');
      await cancelling; // with a plain NOT EXISTS guard: duplicate key value violates unique constraint "run_steps_pkey"
    } finally {
      await sibling.end();
      await canceller.end();
    }
    assert.deepEqual(await rows(id), [[1, 'CANCELLED', null, null]]);
  });

  it('the writer retries transient errors (lock timeouts) with backoff, reports its lag while it waits, then applies a run’s writes in order', async () => {
    const id = await newRun();
    const locker = new PgClient({ connectionString: database.url });
    await locker.connect();
    // The writer's own pool gives up on a lock after 300 ms: real, transient 55P03 errors while the table is locked.
    const writerDb = connectPg(`${database.url}?options=${encodeURIComponent('-c lock_timeout=300')}`, { max: 2 });
    const writer = createProjectionWriter(new ProjectionStore(writerDb), { syncWaitMs: 50, initialBackoffMs: 20, maxBackoffMs: 200 });
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE run_steps IN ACCESS EXCLUSIVE MODE');
      assert.equal(await writer.submit({ kind: 'steps', runId: id, steps: [attempt(id, 1, 'RUNNING')], currentStep: 'call' }), 'queued');
      assert.equal(await writer.submit({ kind: 'steps', runId: id, steps: [attempt(id, 1, 'COMPLETED', { output: { ok: 1 } })] }), 'queued');
      assert.equal(await writer.submit({ kind: 'runClosed', runId: id, closed: { runId: id, status: 'COMPLETED', output: { ok: 1 }, closedAt: T0, trail: [] } }), 'queued');
      const lag = await eventually(() => Promise.resolve(writer.lag().lastError ? writer.lag() : undefined), { timeoutMs: 60_000, what: 'a lock timeout' });
      assert.equal(lag.queued, 3);
      assert.ok(lag.oldestAgeMs > 0);
      assert.equal(lag.lastError?.runId, id);
      assert.match(lag.lastError?.message ?? '', /^steps: canceling statement due to lock timeout$/);
      await locker.query('ROLLBACK');
      assert.equal(await writer.drain(60_000), true);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
      writer.close();
      await writerDb.close();
    }
    const run = await store.getRun(id);
    assert.equal(run?.status, 'COMPLETED');
    assert.deepEqual(await rows(id), [[1, 'COMPLETED', null, null]]);
    assert.deepEqual([writer.lag().queued, writer.lag().dropped, writer.lag().rejected], [0, 0, 0]);
  });

  it('the writer writes a refused write without its payloads, drops what the queue cannot hold, and logs both with the run id', async () => {
    const id = await newRun();
    const logged: string[] = [];
    const writer = createProjectionWriter(store, { maxQueued: 1, syncWaitMs: 60_000, log: (m) => logged.push(m) });
    try {
      const outcome = await writer.submit({ kind: 'steps', runId: id, steps: [attempt(id, 1, 'COMPLETED', { input: { a: 'x' }, output: { bad: 'a\u0000b' } })] });
      assert.equal(outcome, 'degraded');
      const [step] = (await store.getRun(id))!.steps;
      assert.deepEqual([step!.status, step!.input, step!.output], ['COMPLETED', { projectionRejected: 'unsupported Unicode escape sequence' }, { projectionRejected: 'unsupported Unicode escape sequence' }]);

      // A run whose input Postgres refuses still appears in the run list (without its input).
      const nulRun = { id: 'pw-nul-input', definition: 'd', version: VERSION, tenant: 'default', temporalRunId: null, startedAt: T0, input: { x: 'a\u0000b' }, metadata: {} };
      assert.equal(await writer.submit({ kind: 'runStarted', runId: nulRun.id, run: nulRun }), 'degraded');
      const listed = await store.getRun(nulRun.id);
      assert.deepEqual([listed?.status, listed?.input], ['RUNNING', { projectionRejected: 'unsupported Unicode escape sequence' }]);

      // The queue holds one write: while one waits, the next is dropped.
      const locker = new PgClient({ connectionString: database.url });
      await locker.connect();
      try {
        await locker.query('BEGIN');
        await locker.query('LOCK TABLE run_steps IN ACCESS EXCLUSIVE MODE');
        assert.equal(await writer.submit({ kind: 'steps', runId: id, steps: [attempt(id, 2, 'RUNNING')] }, { waitMs: 0 }), 'queued');
        assert.equal(await writer.submit({ kind: 'steps', runId: id, steps: [attempt(id, 2, 'COMPLETED')] }, { waitMs: 0 }), 'dropped');
        await locker.query('ROLLBACK');
      } finally {
        await locker.end();
      }
      assert.equal(await writer.drain(60_000), true);
      const lag = writer.lag();
      assert.deepEqual([lag.queued, lag.dropped, lag.rejected, lag.lastError?.runId], [0, 1, 2, 'pw-nul-input']);
      assert.deepEqual(logged, [
        `the projection refused a write for run ${id} (steps) permanently: unsupported Unicode escape sequence; writing it without its payloads`,
        `the projection refused a write for run pw-nul-input (runStarted) permanently: unsupported Unicode escape sequence; writing it without its payloads`,
        `projection write dropped for run ${id} (steps): 1 writes are already queued; the projection misses it until it is rebuilt`,
      ]);
    } finally {
      writer.close();
    }
  });
});
