/**
 * Runs never fail because of the projection, and the projection keeps one
 * COMPLETED row per step dispatch whatever Temporal retries (issue #11). Real
 * faults against real processes: the projection tables locked for 60 s under
 * load, a worker process SIGKILLed between its handler's return and the
 * completion reaching Temporal, a private Temporal dev server SIGKILLed
 * mid-step and restarted on its SQLite file; and an attempt Temporal timed out
 * before its handler started does not run it.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { Client, Connection } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import { z } from 'zod';
import { loadConfig } from '../app/config';
import { startStack } from '../app/stack';
import { processAlive, startDevServer, type DevServer } from '../app/dev-server';
import { ensureSearchAttributes } from '../app/namespace';
import { findConfiguredTemporalCli } from '../app/temporal-cli';
import { Pinflow } from '../client/pinflow';
import { connectPg, type Db } from '../db/connection';
import { migrate } from '../db/migrate';
import { ProjectionStore } from '../projection/store';
import type { ProjectionLag } from '../projection/writer';
import { defineRpc } from '../rpc/registry';
import { rpcs } from './fixtures/projection-rpcs';
import { createDatabase, createEnv, eventually, exitOf, freePort, spawnWorkerProcess, temporalAddress, type Env } from './support/harness';

/** A gated step, then three RPC steps whose handlers never touch the database. */
const CHAIN = {
  entry: 'gate',
  steps: [
    { id: 'gate', type: 'rpc', rpc: 'pf.gated', input: { gate: 'input.gate' }, next: 's1' },
    { id: 's1', type: 'rpc', rpc: 'pf.work', input: { n: '1' }, next: 's2' },
    { id: 's2', type: 'rpc', rpc: 'pf.work', input: { n: 'steps.s1.n' }, next: 's3' },
    { id: 's3', type: 'rpc', rpc: 'pf.work', input: { n: 'steps.s2.n' }, next: 'done' },
    { id: 'done', type: 'return', output: { n: 'steps.s3.n' } },
  ],
};
const CHAIN_RPC_STEPS = 4;

interface DispatchCount {
  runId: string;
  stepInstance: string;
  dispatch: number;
  attempts: number;
  completed: number;
  superseded: number;
  running: number;
}

/** Per RPC step dispatch of these runs: how many attempts, COMPLETED, SUPERSEDED and RUNNING rows. */
async function dispatchCounts(db: Db, runIds: string[]): Promise<DispatchCount[]> {
  const rows = await db.query<Record<string, unknown>>({
    text: `SELECT run_id AS "runId", step_instance AS "stepInstance", dispatch, count(*) AS attempts,
              count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
              count(*) FILTER (WHERE status = 'SUPERSEDED') AS superseded,
              count(*) FILTER (WHERE status = 'RUNNING') AS running
           FROM run_steps WHERE run_id = ANY($1) AND step_type = 'rpc' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    values: [runIds],
  });
  return rows.map((r) => ({
    runId: String(r.runId),
    stepInstance: String(r.stepInstance),
    dispatch: Number(r.dispatch),
    attempts: Number(r.attempts),
    completed: Number(r.completed),
    superseded: Number(r.superseded),
    running: Number(r.running),
  }));
}

/**
 * Whether the projection equals Temporal for these runs: each run's status is
 * what Temporal says, every run has `rpcSteps` RPC dispatches, each with
 * exactly one COMPLETED attempt and none left RUNNING. Returns the counts
 * when it does, undefined otherwise (for `eventually`).
 */
async function projectionEqualsTemporal(client: Client, db: Db, runIds: string[], rpcSteps: number) {
  const runs = await db.query<{ id: string; status: string }>({ text: 'SELECT id, status FROM runs WHERE id = ANY($1)', values: [runIds] });
  if (runs.length !== runIds.length) return undefined;
  for (const r of runs) {
    const temporalStatus = (await client.workflow.getHandle(r.id).describe()).status.name;
    if (temporalStatus !== r.status) return undefined;
  }
  const counts = await dispatchCounts(db, runIds);
  if (counts.length !== runIds.length * rpcSteps) return undefined;
  if (counts.some((c) => c.completed !== 1 || c.running !== 0)) return undefined;
  return {
    runs: runs.length,
    statuses: [...new Set(runs.map((r) => r.status))],
    dispatches: counts.length,
    attempts: counts.reduce((n, c) => n + c.attempts, 0),
    completed: counts.reduce((n, c) => n + c.completed, 0),
    superseded: counts.reduce((n, c) => n + c.superseded, 0),
  };
}

/** `p`, or a clear failure naming what did not happen after `ms`. */
async function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

describe('projection faults: runs never fail because of the projection', function () {
  this.timeout(600_000);
  let dir: string;
  const children: ChildProcess[] = [];
  const envs: Env[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pinflow-projection-faults-'));
  });
  after(async () => {
    for (const c of children) if (alive(c)) c.kill('SIGKILL');
    for (const e of envs) await e.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('20 runs go on and complete while the projection tables are locked for 60 s, none fails, and afterwards the projection equals Temporal with one COMPLETED row per dispatch', async () => {
    const env = await createEnv('pf_lock', rpcs);
    envs.push(env);
    await env.pinflow.publish('pf-chain', CHAIN);
    const worker = spawnWorkerProcess(env, 'projection-rpcs');
    children.push(worker);
    const gate = join(dir, 'lock-gate');
    const runIds: string[] = [];
    for (let i = 0; i < 20; i++) runIds.push((await env.pinflow.start({ definition: 'pf-chain', input: { gate } })).runId);
    // Every run is inside its first step (its RUNNING row written) before the lock.
    await eventually(() => Promise.resolve(runIds.every((id) => existsSync(`${gate}.${id}.1`))), {
      timeoutMs: 120_000,
      what: `all 20 runs inside the gated step (worker output: ${worker.output.join('')})`,
    });

    const locker = new PgClient({ connectionString: env.databaseUrl });
    await locker.connect();
    let lockedAt = 0;
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE run_steps, runs, run_waits IN ACCESS EXCLUSIVE MODE');
      lockedAt = Date.now();
      writeFileSync(gate, 'open');
      // Temporal is the authority: every run completes while the projection cannot take a single write.
      // (The lock is held until they have: before the fix, each RPC step blocked on its RUNNING row and none could.)
      const results = await withDeadline(Promise.all(runIds.map((id) => env.pinflow.result(id))), 300_000, 'the 20 runs to complete while the projection is locked');
      assert.deepEqual(results, runIds.map(() => ({ n: 4 })));
      console.log(`      all 20 runs completed in Temporal ${Date.now() - lockedAt} ms into the lock`);
      // The standalone worker reports its lag while writes are queued.
      await eventually(() => Promise.resolve(/projection lag: \d+ writes queued/.test(worker.output.join(''))), { timeoutMs: 60_000, what: 'the worker to log its projection lag' });
      // The fault lasts at least 60 s, whatever the runs do.
      await new Promise((r) => setTimeout(r, Math.max(0, lockedAt + 60_000 - Date.now())));
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }
    const lockedForMs = Date.now() - lockedAt;

    const counts = await eventually(() => projectionEqualsTemporal(env.client, env.db, runIds, CHAIN_RPC_STEPS), {
      timeoutMs: 180_000,
      what: 'the projection to catch up with Temporal',
    });
    console.log(`      lock held ${lockedForMs} ms; afterwards: ${JSON.stringify(counts)}`);
    assert.deepEqual({ runs: counts.runs, statuses: counts.statuses, dispatches: counts.dispatches, completed: counts.completed }, { runs: 20, statuses: ['COMPLETED'], dispatches: 80, completed: 80 });
    assert.ok(alive(worker), 'the worker is still up');
  });

  it('a worker SIGKILLed after its handler returned (COMPLETED written, completion never sent): a new worker completes the runs, the first attempt is SUPERSEDED, one COMPLETED per dispatch', async () => {
    const env = await createEnv('pf_kill_after', rpcs);
    envs.push(env);
    await env.pinflow.publish('pf-once', {
      entry: 's1',
      steps: [
        // A short timeout: the lost attempt is retried 4 s after it started.
        { id: 's1', type: 'rpc', rpc: 'pf.work', input: { n: '1' }, timeout: '4s', retry: { maximumAttempts: 5, initialInterval: '100ms' }, next: 's2' },
        { id: 's2', type: 'rpc', rpc: 'pf.work', input: { n: 'steps.s1.n' }, next: 'done' },
        { id: 'done', type: 'return', output: { n: 'steps.s2.n' } },
      ],
    });
    const runIds: string[] = [];
    for (let i = 0; i < 5; i++) runIds.push((await env.pinflow.start({ definition: 'pf-once' })).runId);
    // Test hook (app/config.ts, testHooks.killAfterHandler): SIGKILL after the first pf.work handler returned and its row landed.
    const doomed = spawnWorkerProcess(env, 'projection-rpcs', { PINFLOW_TEST_KILL_AFTER_HANDLER: 'pf.work' });
    children.push(doomed);
    assert.deepEqual(await exitOf(doomed), { code: null, signal: 'SIGKILL' });
    const killedFor = /TEST HOOK: pf\.work returned for run (\S+);/.exec(doomed.output.join(''))?.[1];
    assert.ok(killedFor && runIds.includes(killedFor), `the hook named the run (output: ${doomed.output.join('')})`);
    // The defect's precondition: the projection says COMPLETED for an attempt Temporal never heard back from.
    const before = await env.store.getRun(killedFor);
    assert.deepEqual(
      before?.steps.filter((s) => s.stepInstance === 's1').map((s) => [s.attempt, s.status]),
      [[1, 'COMPLETED']],
    );

    const next = spawnWorkerProcess(env, 'projection-rpcs');
    children.push(next);
    for (const id of runIds) assert.deepEqual(await env.pinflow.result(id), { n: 3 });
    const counts = await eventually(() => projectionEqualsTemporal(env.client, env.db, runIds, 2), { timeoutMs: 60_000, what: 'the projection to equal Temporal' });
    console.log(`      after the kill: ${JSON.stringify(counts)}`);
    assert.deepEqual({ runs: counts.runs, statuses: counts.statuses, dispatches: counts.dispatches, completed: counts.completed }, { runs: 5, statuses: ['COMPLETED'], dispatches: 10, completed: 10 });
    const run = await env.pinflow.getRun(killedFor);
    assert.deepEqual(
      run.steps.map((s) => [s.stepInstance, s.attempt, s.status, s.error?.type ?? null, (s.error?.details as { wrote?: string } | undefined)?.wrote ?? null]),
      [
        ['s1', 1, 'SUPERSEDED', 'AttemptSuperseded', 'COMPLETED'],
        ['s1', 2, 'COMPLETED', null, null],
        ['s2', 1, 'COMPLETED', null, null],
        ['done', 1, 'COMPLETED', null, null],
      ],
    );
    const superseded = run.steps[0]!;
    assert.deepEqual(superseded.output, { n: 2 }, 'the superseded attempt keeps what it wrote');
    assert.equal(superseded.error?.message, 'attempt 1 completed, but its completion never reached Temporal; attempt 2 of the same dispatch replaced it');
    next.kill('SIGTERM');
    assert.deepEqual(await exitOf(next), { code: 0, signal: null });
  });

  it('an attempt Temporal timed out before its handler started learns it by heartbeat and does not run its handler', async () => {
    const calls: number[] = [];
    const hooked: number[] = [];
    let toldBeforeHandler = false;
    let attempt1Decided = false;
    const counted = defineRpc('pf.counted', {
      input: z.object({}),
      output: z.object({ attempt: z.number() }),
      handler: (_in, ctx) => {
        calls.push(ctx.attempt);
        return { attempt: ctx.attempt };
      },
    });
    const env = await createEnv('pf_heartbeat', [counted]);
    envs.push(env);
    await env.startWorker([counted], {
      testHooks: {
        // Attempt 1 is held between its RUNNING row and its handler (where a
        // slow projection write used to hold it) until Temporal has timed it
        // out and started attempt 2, then until attempt 1 is told so.
        beforeHandler: async (_call, attempt) => {
          hooked.push(attempt);
          if (attempt !== 1) return;
          await eventually(() => Promise.resolve(hooked.includes(2)), { timeoutMs: 60_000, what: 'attempt 2 to start' });
          const signal = Context.current().cancellationSignal;
          toldBeforeHandler = await eventually(() => Promise.resolve(signal.aborted), { timeoutMs: 60_000, what: 'attempt 1 to learn it timed out' }).catch(() => false);
          // Runs after the microtasks that follow this hook, where the activity
          // would call the handler: attempt 1 has then decided.
          setImmediate(() => (attempt1Decided = true));
        },
      },
    });
    await env.pinflow.publish('pf-timeout', {
      entry: 'call',
      steps: [
        { id: 'call', type: 'rpc', rpc: 'pf.counted', input: {}, timeout: '3s', retry: { maximumAttempts: 3, initialInterval: '100ms' }, next: 'done' },
        { id: 'done', type: 'return', output: 'steps.call' },
      ],
    });
    const started = await env.pinflow.start({ definition: 'pf-timeout' });
    assert.deepEqual(await env.pinflow.result(started.runId), { attempt: 2 });
    await eventually(() => Promise.resolve(attempt1Decided), { timeoutMs: 60_000, what: 'attempt 1 to leave its hook and decide' });
    await eventually(async () => (await env.pinflow.getRun(started.runId)).status === 'COMPLETED', { what: 'the run closed in the projection' });
    assert.equal(toldBeforeHandler, true, 'attempt 1 was told (heartbeat) that Temporal timed it out');
    assert.deepEqual(calls, [2], 'only attempt 2 ran the handler');
    const run = await env.pinflow.getRun(started.runId);
    assert.deepEqual(
      run.steps.map((s) => [s.stepInstance, s.attempt, s.status, s.error?.type ?? null]),
      [
        ['call', 1, 'SUPERSEDED', 'AttemptSuperseded'],
        ['call', 2, 'COMPLETED', null],
        ['done', 1, 'COMPLETED', null],
      ],
    );
    assert.equal(run.steps[0]!.error?.message, 'attempt 1 never reported back (worker lost or timed out); attempt 2 of the same dispatch replaced it');
  });

  it('/health of the single-process stack shows the projection lag while run_steps is locked, and none once the projection caught up', async () => {
    const env = await createEnv('pf_health', rpcs);
    envs.push(env);
    const stack = await startStack(
      loadConfig({ TEMPORAL_ADDRESS: temporalAddress(), TEMPORAL_NAMESPACE: env.namespace, DATABASE_URL: env.databaseUrl, PINFLOW_DATA_DIR: dir, PINFLOW_API_PORT: '0' }),
      rpcs,
    );
    const health = async () => (await (await fetch(`${stack.apiUrl}/health`)).json()) as { ok: boolean; projection?: ProjectionLag };
    const locker = new PgClient({ connectionString: env.databaseUrl });
    await locker.connect();
    try {
      await stack.pinflow.publish('pf-one', { entry: 's1', steps: [{ id: 's1', type: 'rpc', rpc: 'pf.work', input: { n: '1' }, next: 'done' }, { id: 'done', type: 'return', output: 'steps.s1' }] });
      assert.deepEqual((await health()).projection, { queued: 0, oldestAgeMs: 0, dropped: 0, rejected: 0, lastError: null });
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE run_steps IN ACCESS EXCLUSIVE MODE');
      const run = await stack.pinflow.start({ definition: 'pf-one' });
      assert.deepEqual(await stack.pinflow.result(run.runId), { n: 2 });
      const during = await eventually(async () => {
        const h = await health();
        return h.projection && h.projection.queued >= 1 && h.projection.oldestAgeMs > 0 ? h : undefined;
      }, { timeoutMs: 60_000, what: '/health to show the lag' });
      assert.equal(during.ok, true, 'the lag informs; it does not make the service unhealthy');
      console.log(`      /health while locked: ${JSON.stringify(during.projection)}`);
      await locker.query('ROLLBACK');
      await eventually(async () => (await health()).projection?.queued === 0, { timeoutMs: 60_000, what: 'the lag to drain' });
      const done = await stack.pinflow.getRun(run.runId);
      assert.equal(done.status, 'COMPLETED');
      assert.deepEqual(done.steps.map((st) => [st.stepInstance, st.attempt, st.status]), [['s1', 1, 'COMPLETED'], ['done', 1, 'COMPLETED']]);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
      await stack.stop();
    }
  });

  it('30 runs mid-step while a private Temporal dev server is SIGKILLed and restarted on its SQLite file: all complete, one COMPLETED per dispatch', async () => {
    const config = loadConfig({ ...process.env, TEMPORAL_ADDRESS: undefined });
    const cli = await findConfiguredTemporalCli(config);
    const dbFile = join(dir, 'private-temporal.sqlite');
    const port = await freePort();
    const uiPort = await freePort();
    const namespace = 'pf-private';
    let server: DevServer | undefined = await startDevServer({ cliPath: cli.path, dbFile, port, uiPort, headless: true, namespaces: [namespace] });
    const database = await createDatabase('pf_temporal_kill');
    const db = connectPg(database.url);
    let connection: Connection | undefined;
    try {
      await migrate(db);
      const store = new ProjectionStore(db);
      connection = await Connection.connect({ address: server.address });
      await ensureSearchAttributes(connection, namespace);
      const client = new Client({ connection, namespace });
      const pinflow = new Pinflow({ client, store, rpcs });
      await pinflow.publish('pf-chain', CHAIN);
      const worker = spawnWorkerProcess({ namespace, databaseUrl: database.url } as Env, 'projection-rpcs', { TEMPORAL_ADDRESS: server.address });
      children.push(worker);
      const gate = join(dir, 'temporal-gate');
      const runIds: string[] = [];
      for (let i = 0; i < 30; i++) runIds.push((await pinflow.start({ definition: 'pf-chain', input: { gate } })).runId);
      await eventually(() => Promise.resolve(runIds.every((id) => existsSync(`${gate}.${id}.1`))), {
        timeoutMs: 120_000,
        what: `all 30 runs inside the gated step (worker output: ${worker.output.join('')})`,
      });

      // Kill Temporal while every run is inside a handler; the handlers then
      // return while it is down, so their completions cannot reach it.
      const killedPid = server.pid;
      process.kill(killedPid, 'SIGKILL');
      server = undefined;
      await eventually(() => Promise.resolve(!processAlive(killedPid)), { timeoutMs: 60_000, what: 'the dev server to die' });
      const killedAt = Date.now();
      // The handlers return while Temporal is down, so their completions cannot reach it.
      writeFileSync(gate, 'open');
      await eventually(() => Promise.resolve(runIds.every((id) => existsSync(`${gate}.${id}.1.done`))), {
        timeoutMs: 60_000,
        what: 'the 30 gated handlers to return while Temporal is down',
      });
      // The fault lasts 15 s, longer than the gated step's 10 s timeout: Temporal
      // times those attempts out when it is back, and retries them.
      await new Promise((r) => setTimeout(r, Math.max(0, killedAt + 15_000 - Date.now())));
      server = await startDevServer({ cliPath: cli.path, dbFile, port, uiPort, headless: true });
      const downForMs = Date.now() - killedAt;

      const results = await Promise.all(runIds.map((id) => pinflow.result(id)));
      assert.deepEqual(results, runIds.map(() => ({ n: 4 })));
      const counts = await eventually(() => projectionEqualsTemporal(client, db, runIds, CHAIN_RPC_STEPS), { timeoutMs: 120_000, what: 'the projection to equal Temporal' });
      console.log(`      Temporal down ${downForMs} ms; afterwards: ${JSON.stringify(counts)}`);
      assert.deepEqual({ runs: counts.runs, statuses: counts.statuses, dispatches: counts.dispatches, completed: counts.completed }, { runs: 30, statuses: ['COMPLETED'], dispatches: 120, completed: 120 });
      // Lost completions happened (each a second COMPLETED row before the fix), and each lost one is SUPERSEDED.
      assert.ok(counts.superseded >= 1, `some gated attempts were retried after the outage: ${JSON.stringify(counts)}`);
      assert.equal(counts.completed + counts.superseded, counts.attempts);
      assert.ok(alive(worker), `the worker survived the Temporal outage (output: ${worker.output.join('')})`);
      worker.kill('SIGKILL');
      await exitOf(worker);
    } finally {
      await connection?.close();
      await server?.stop();
      await db.close();
      await database.drop();
    }
  });
});
