/**
 * The deploy acceptance test (issue: deploy safety). Several worker processes,
 * the real Temporal server and Postgres:
 * 1. worker A (code v1, RPCs r1..r4) runs 20 runs that pause on a sleep;
 * 2. A is SIGKILLed; v2 is published (steps reordered and renamed, one
 *    inserted, one removed);
 * 3. worker B (r3 removed, r4's input changed) serves them: untouched runs
 *    complete on v1's graph, the others stall with the right reason, and new
 *    runs use v2;
 * 4. worker C (fix deployed): retry completes the stalls, one run is skipped
 *    and one migrated;
 * 5. no duplicate projection rows, and every history replays cleanly.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { Worker } from '@temporalio/worker';
import { Pinflow } from '../client/pinflow';
import { workflowBundlePath } from '../worker/bundle';
import { v1Rpcs, v2Rpcs } from './fixtures/deploy-rpcs';
import { createEnv, eventually, exitOf, spawnWorkerProcess, type Env } from './support/harness';

const v1Graph = {
  entry: 'check',
  steps: [
    { id: 'check', type: 'rpc', rpc: 'acme.r1', input: { orderId: 'input.orderId' }, next: 'pause' },
    { id: 'pause', type: 'sleep', duration: '6s', next: 'route' },
    {
      id: 'route',
      type: 'switch',
      cases: [
        { when: "input.path = 'a'", next: 'via-r2' },
        { when: "input.path = 'b'", next: 'via-r3' },
      ],
      default: 'via-r4',
    },
    { id: 'via-r2', type: 'rpc', rpc: 'acme.r2', input: { orderId: 'input.orderId' }, next: 'done' },
    { id: 'via-r3', type: 'rpc', rpc: 'acme.r3', input: { orderId: 'input.orderId' }, next: 'done' },
    { id: 'via-r4', type: 'rpc', rpc: 'acme.r4', input: { amount: 'input.amount' }, next: 'done' },
    { id: 'done', type: 'return', output: { graph: "'v1'", path: 'input.path', via: '$join([steps."via-r2".via, steps."via-r3".via, steps."via-r4".via])' } },
  ],
};

// v2: reordered and renamed, `audit` inserted, the r3 path removed.
const v2Graph = {
  entry: 'validate',
  steps: [
    { id: 'end', type: 'return', output: { graph: "'v2'", path: 'input.path', via: '$join([steps."r2-call".via, steps."r4-call".via])' } },
    { id: 'r4-call', type: 'rpc', rpc: 'acme.r4', input: { amount: '$string(input.amount)' }, next: 'end' },
    { id: 'route2', type: 'switch', cases: [{ when: "input.path = 'a'", next: 'r2-call' }], default: 'r4-call' },
    { id: 'validate', type: 'rpc', rpc: 'acme.r1', input: { orderId: 'input.orderId' }, next: 'audit' },
    { id: 'audit', type: 'assign', set: { audited: 'true' }, next: 'wait-a-bit' },
    { id: 'wait-a-bit', type: 'sleep', duration: '100ms', next: 'route2' },
    { id: 'r2-call', type: 'rpc', rpc: 'acme.r2', input: { orderId: 'input.orderId' }, next: 'end' },
  ],
};

describe('acceptance: runs survive a deploy that renames, removes and changes RPCs', function () {
  this.timeout(300_000);
  let env: Env;
  const workers: ChildProcess[] = [];

  function startWorker(module: 'deploy-v1' | 'deploy-v2' | 'deploy-v3') {
    const child = spawnWorkerProcess(env, module);
    workers.push(child);
    return child;
  }
  const exited = exitOf;
  const runOf = (id: string) => env.pinflow.getRun(id);

  before(async () => {
    env = await createEnv('acceptance', v1Rpcs);
  });
  after(async () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    await env?.stop();
  });

  it('completes, stalls and resolves runs exactly as the pinned graphs and the live code dictate', async () => {
    const publishV1 = new Pinflow({ client: env.client, store: env.store, rpcs: v1Rpcs });
    const publishV2 = new Pinflow({ client: env.client, store: env.store, rpcs: v2Rpcs });
    const p1 = await publishV1.publish('deploy-flow', v1Graph);

    // 1. Worker A (v1) runs 20 runs into their sleep.
    const a = startWorker('deploy-v1');
    const paths = [...Array<string>(8).fill('a'), ...Array<string>(6).fill('b'), ...Array<string>(6).fill('c')];
    const runs = await Promise.all(paths.map((path, i) => env.pinflow.start({ definition: 'deploy-flow', input: { orderId: `o-${i}`, path, amount: 10 + i }, runId: `deploy-${path}-${i}` })));
    for (const r of runs) await eventually(async () => (await env.pinflow.state(r.runId)).cursor === 'pause', { timeoutMs: 60_000, what: `${r.runId} paused (A: ${a.output.join('')})` });

    // 2. Kill A hard; publish v2.
    a.kill('SIGKILL');
    assert.deepEqual(await exited(a), { code: null, signal: 'SIGKILL' });
    const p2 = await publishV2.publish('deploy-flow', v2Graph);
    assert.notEqual(p2.version, p1.version);

    // 3. Worker B: r3 removed, r4's input changed.
    const b = startWorker('deploy-v2');
    const ids = (path: string) => runs.filter((r) => r.runId.startsWith(`deploy-${path}-`)).map((r) => r.runId);
    for (const id of ids('a')) {
      const r = await eventually(async () => ((await runOf(id)).status === 'COMPLETED' ? runOf(id) : undefined), { timeoutMs: 90_000, what: `${id} completed (B: ${b.output.join('')})` });
      assert.deepEqual(r.output, { graph: 'v1', path: 'a', via: 'r2' });
      assert.equal(r.version, p1.version);
    }
    for (const id of ids('b')) {
      const r = await eventually(async () => ((await runOf(id)).status === 'STALLED' ? runOf(id) : undefined), { timeoutMs: 90_000, what: `${id} stalled` });
      assert.deepEqual([r.stall?.reason, r.stall?.rpc, r.stall?.stepInstance], ['rpc_missing', 'acme.r3', 'via-r3']);
    }
    for (const id of ids('c')) {
      const r = await eventually(async () => ((await runOf(id)).status === 'STALLED' ? runOf(id) : undefined), { timeoutMs: 90_000, what: `${id} stalled` });
      assert.deepEqual([r.stall?.reason, r.stall?.rpc, r.stall?.stepInstance], ['input_incompatible', 'acme.r4', 'via-r4']);
    }
    const fresh = await env.pinflow.start({ definition: 'deploy-flow', input: { orderId: 'o-new', path: 'a', amount: 1 }, runId: 'deploy-new' });
    assert.equal(fresh.version, p2.version);
    assert.deepEqual(await env.pinflow.result('deploy-new'), { graph: 'v2', path: 'a', via: 'r2' });

    // 4. Worker C: the fix is deployed. One skip, one migrate, retry for the rest.
    b.kill('SIGTERM');
    assert.deepEqual(await exited(b), { code: 0, signal: null });
    startWorker('deploy-v3');
    const [skipId] = ids('c');
    const [migrateId] = ids('b');
    await env.pinflow.resolveStall(skipId!, { action: 'skip', by: 'ops', output: { ok: true, via: 'skipped' } });
    const migrated = await env.pinflow.migrate(migrateId!, { targetVersion: p2.version, mapping: { check: 'validate', 'via-r3': 'r2-call' }, by: 'ops' });
    assert.deepEqual(migrated, { at: 'r2-call', carried: ['validate'], dropped: ['pause', 'route'] });
    // Bulk decisions read the projection: let it catch up with the two decisions above.
    for (const id of [skipId!, migrateId!]) await eventually(async () => (await runOf(id)).status !== 'STALLED');
    const bulk = [
      ...(await env.pinflow.resolveStalled({ rpc: 'acme.r3', reason: 'rpc_missing' }, { action: 'retry', by: 'ops' })),
      ...(await env.pinflow.resolveStalled({ rpc: 'acme.r4', reason: 'input_incompatible' }, { action: 'retry', by: 'ops' })),
    ];
    assert.deepEqual(bulk.map((r) => [r.runId, r.ok, r.error?.message]).filter((r) => !r[1]), []);
    assert.equal(bulk.length, 10);

    for (const id of [...ids('b'), ...ids('c')]) {
      const out = await env.pinflow.result(id);
      if (id === skipId) assert.deepEqual(out, { graph: 'v1', path: 'c', via: 'skipped' });
      else if (id === migrateId) assert.deepEqual(out, { graph: 'v2', path: 'b', via: 'r2' });
      else assert.deepEqual(out, { graph: 'v1', path: id.split('-')[1], via: id.includes('-b-') ? 'r3' : 'r4' });
    }
    const closed = await eventually(async () => {
      const page = await env.pinflow.listRuns({ definition: 'deploy-flow', limit: 100 });
      return page.runs.every((r) => r.status === 'COMPLETED') && page.runs.length === 21 ? page : undefined;
    });
    assert.equal(closed.runs.length, 21);
    const migratedRun = await runOf(migrateId!);
    assert.equal(migratedRun.version, p2.version);
    assert.deepEqual(migratedRun.lineage.map((l) => [l.version, l.upTo]), [[p1.version, 'via-r3']]);

    // 5. Aftermath: no duplicate rows; every history replays against the current code.
    const dupes = await env.db.query({
      text: `SELECT run_id, step_instance, dispatch FROM run_steps WHERE status = 'COMPLETED' GROUP BY 1, 2, 3 HAVING count(*) > 1`,
    });
    assert.deepEqual(dupes, []);
    const runDupes = await env.db.query({ text: `SELECT id FROM runs GROUP BY id HAVING count(*) > 1` });
    assert.deepEqual(runDupes, []);
    const histories = [];
    for (const r of [...runs, fresh]) {
      histories.push({ workflowId: r.runId, history: await env.client.workflow.getHandle(r.runId, r.temporalRunId).fetchHistory() });
    }
    histories.push({ workflowId: migrateId!, history: await env.client.workflow.getHandle(migrateId!).fetchHistory() });
    let replayed = 0;
    for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: workflowBundlePath() } }, histories)) {
      assert.equal(result.error, undefined, `${result.workflowId}: ${String(result.error)}`);
      replayed++;
    }
    assert.equal(replayed, 22);
  });
});
