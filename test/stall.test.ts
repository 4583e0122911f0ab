import assert from 'node:assert/strict';
import { z } from 'zod';
import { Pinflow } from '../client/pinflow';
import { defineRpc } from '../rpc/registry';
import { rpcs } from './fixtures/rpcs';
import { createEnv, eventually, type Env } from './support/harness';

// The contract a run is pinned with (v1), and the ways a deploy can change it.
const v1 = defineRpc('contract.add', {
  input: z.object({ a: z.number(), b: z.number() }),
  output: z.object({ sum: z.number() }),
  handler: ({ a, b }) => ({ sum: a + b }),
});
const inputBroken = defineRpc('contract.add', {
  input: z.object({ a: z.string(), b: z.string() }),
  output: z.object({ sum: z.number() }),
  handler: ({ a, b }) => ({ sum: Number(a) + Number(b) }),
});
const compatible = defineRpc('contract.add', {
  input: z.object({ a: z.number(), b: z.number(), c: z.number().optional() }),
  output: z.object({ sum: z.number() }),
  handler: ({ a, b, c }) => ({ sum: a + b + (c ?? 0) }),
});
const outputBroken = defineRpc('contract.add', {
  input: z.object({ a: z.number(), b: z.number() }),
  output: z.object({ total: z.number() }),
  handler: ({ a, b }) => ({ total: a + b }),
});

const graph = {
  entry: 'call',
  steps: [
    { id: 'call', type: 'rpc', rpc: 'contract.add', input: { a: 'input.a', b: 'input.b' }, next: 'done' },
    { id: 'done', type: 'return', output: 'steps.call.sum' },
  ],
};

describe('stalls: the contract check at every dispatch, and operator decisions', function () {
  this.timeout(120_000);
  let env: Env;
  let publisher: Pinflow;

  before(async () => {
    env = await createEnv('stall', [...rpcs, v1]);
    publisher = new Pinflow({ client: env.client, store: env.store, rpcs: [...rpcs, v1] });
    await publisher.publish('pinned-add', graph);
  });
  after(async () => env?.stop());

  const stalledRun = (runId: string) =>
    eventually(async () => {
      const r = await env.pinflow.getRun(runId);
      return r.status === 'STALLED' ? r : undefined;
    });
  const closedRun = (runId: string) =>
    eventually(async () => {
      const r = await env.pinflow.getRun(runId);
      return r.status !== 'RUNNING' && r.status !== 'STALLED' ? r : undefined;
    });

  it('stalls a run whose pinned RPC was removed, shows why, and resumes it after retry', async () => {
    await env.startWorker(rpcs); // the deploy removed contract.add
    const started = await env.pinflow.start({ definition: 'pinned-add', input: { a: 2, b: 3 } });
    const run = await stalledRun(started.runId);
    assert.deepEqual({ ...run.stall, since: 'x', details: undefined }, { id: 'call/1', reason: 'rpc_missing', rpc: 'contract.add', stepInstance: 'call', since: 'x', details: undefined });
    assert.match((run.stall!.details as { message: string }).message, /RPC "contract.add" \(step "call"\) is not registered in this deployment/);
    assert.equal(run.currentStep, 'call');
    const desc = await env.client.workflow.getHandle(started.runId).describe();
    assert.deepEqual(desc.searchAttributes.PinflowStatus, ['STALLED']);
    const state = await env.pinflow.state(started.runId);
    assert.equal(state.status, 'STALLED');

    // A decision for another stall is refused synchronously, with the reason.
    await assert.rejects(env.pinflow.resolveStall(started.runId, { action: 'retry', by: 'ops', stallId: 'nope' }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'DECISION_REJECTED');
      assert.match(err.message, /stall "nope" is not open; open stalls: call\/1/);
      return true;
    });

    await env.startWorker([...rpcs, v1]); // the fix is deployed
    assert.deepEqual(await env.pinflow.resolveStall(started.runId, { action: 'retry', by: 'ops@example.com', reason: 'restored contract.add' }), { stallId: 'call/1', action: 'retry' });
    assert.equal(await env.pinflow.result(started.runId), 5);
    const done = await closedRun(started.runId);
    assert.equal(done.status, 'COMPLETED');
    assert.equal(done.stall, null);
    assert.deepEqual(
      done.steps.filter((s) => s.stepInstance === 'call').map((s) => [s.dispatch, s.attempt, s.status, s.error?.type ?? null]),
      [
        [1, 1, 'FAILED', 'RpcStall'],
        [2, 1, 'COMPLETED', null],
      ],
    );
    assert.deepEqual(
      done.decisions.map((d) => [d.stallId, d.action, d.by, d.reason, d.outcome]),
      [['call/1', 'retry', 'ops@example.com', 'restored contract.add', 'step call dispatched again']],
    );
    const after = await env.client.workflow.getHandle(started.runId).describe();
    // Since 0.7.0 (flag 10) the status follows the run to its close; before, a resolved run kept RUNNING.
    assert.deepEqual(after.searchAttributes.PinflowStatus, ['COMPLETED']);
  });

  it('refuses a decision for a run that is not stalled', async () => {
    await env.startWorker([...rpcs, v1]);
    await env.pinflow.publish('holds', { entry: 'w', steps: [{ id: 'w', type: 'wait', event: 'x.y', correlationKey: "'k'" }] });
    const started = await env.pinflow.start({ definition: 'holds' });
    await eventually(async () => (await env.pinflow.state(started.runId)).waiting);
    await assert.rejects(env.pinflow.resolveStall(started.runId, { action: 'retry', by: 'ops' }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'RUN_NOT_STALLED');
      return true;
    });
    await env.pinflow.cancel(started.runId, { by: 'ops', reason: 'test cleanup' });
    const run = await closedRun(started.runId);
    assert.equal(run.status, 'CANCELLED');
    assert.deepEqual(
      run.decisions.map((d) => [d.action, d.by, d.reason]),
      [['cancel', 'ops', 'test cleanup']],
    );
  });

  it('stalls with input_incompatible when the live input schema changed and the actual input no longer fits; skip continues with a validated output', async () => {
    await env.startWorker([...rpcs, inputBroken]);
    const started = await env.pinflow.start({ definition: 'pinned-add', input: { a: 1, b: 1 } });
    const run = await stalledRun(started.runId);
    assert.equal(run.stall?.reason, 'input_incompatible');
    const details = run.stall.details as { issues: Array<{ path: string }>; pinnedHash: string; liveHash: string };
    assert.deepEqual(details.issues.map((i) => i.path).sort(), ['a', 'b']);
    assert.equal(details.pinnedHash, v1.contract.hash);
    assert.equal(details.liveHash, inputBroken.contract.hash);

    await assert.rejects(env.pinflow.resolveStall(started.runId, { action: 'skip', by: 'ops', output: { sum: 'two' } }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'SKIP_OUTPUT_INVALID');
      assert.match(err.message, /does not satisfy the pinned output contract of RPC "contract.add": \/sum must be number/);
      return true;
    });
    await env.pinflow.resolveStall(started.runId, { action: 'skip', by: 'ops', output: { sum: 2 } });
    assert.equal(await env.pinflow.result(started.runId), 2);
    const done = await closedRun(started.runId);
    const skipped = done.steps.find((s) => s.stepInstance === 'call' && s.status === 'COMPLETED');
    assert.deepEqual(skipped?.output, { sum: 2 });
    assert.deepEqual(skipped?.notes, [{ kind: 'skipped', by: 'ops' }]);
  });

  it('proceeds on a changed but compatible contract and records contract_drift on the step', async () => {
    await env.startWorker([...rpcs, compatible]);
    const started = await env.pinflow.start({ definition: 'pinned-add', input: { a: 4, b: 4 } });
    assert.equal(await env.pinflow.result(started.runId), 8);
    const done = await closedRun(started.runId);
    assert.deepEqual(done.steps[0]!.notes, [{ kind: 'contract_drift', rpc: 'contract.add', pinnedHash: v1.contract.hash, liveHash: compatible.contract.hash }]);
  });

  it('stalls with output_incompatible when the output breaks the pinned output contract, and cancel ends it', async () => {
    await env.startWorker([...rpcs, outputBroken]);
    const started = await env.pinflow.start({ definition: 'pinned-add', input: { a: 1, b: 2 } });
    const run = await stalledRun(started.runId);
    assert.equal(run.stall?.reason, 'output_incompatible');
    await env.pinflow.cancel(started.runId, { by: 'ops' });
    const done = await closedRun(started.runId);
    assert.equal(done.status, 'CANCELLED');
  });

  it('resolves every run stalled on the same RPC and reason in one call, reporting each run', async () => {
    await env.startWorker(rpcs);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await env.pinflow.start({ definition: 'pinned-add', input: { a: i, b: 10 } })).runId);
    for (const id of ids) await stalledRun(id);
    await env.startWorker([...rpcs, v1]);
    const results = await env.pinflow.resolveStalled({ rpc: 'contract.add', reason: 'rpc_missing' }, { action: 'retry', by: 'bulk' });
    assert.deepEqual(results.map((r) => [r.runId, r.ok]).sort(), ids.map((id) => [id, true]).sort());
    assert.deepEqual(await Promise.all(ids.map((id) => env.pinflow.result(id))), [10, 11, 12]);
  });

  describe('migrate', () => {
    const v1Graph = {
      entry: 'greet',
      steps: [
        { id: 'greet', type: 'rpc', rpc: 'text.greet', input: { name: 'input.name' }, next: 'call' },
        { id: 'call', type: 'rpc', rpc: 'contract.add', input: { a: 'input.a', b: 'input.b' }, next: 'done' },
        { id: 'done', type: 'return', output: { greeting: 'steps.greet.greeting', sum: 'steps.call.sum' } },
      ],
    };
    // v2: steps renamed and reordered, one inserted, and the removed RPC replaced.
    const v2Graph = {
      entry: 'hello',
      steps: [
        { id: 'done', type: 'return', output: { greeting: 'steps.hello.greeting', sum: 'steps."add-numbers".sum', note: 'vars.note' } },
        { id: 'hello', type: 'rpc', rpc: 'text.greet', input: { name: 'input.name' }, next: 'annotate' },
        { id: 'annotate', type: 'assign', set: { note: "'v2'" }, next: 'add-numbers' },
        { id: 'add-numbers', type: 'rpc', rpc: 'math.add', input: { a: 'input.a', b: 'input.b' }, next: 'done' },
      ],
    };

    it('moves a stalled run to a newer version with a step mapping, carrying completed outputs, and records lineage', async () => {
      const p1 = await publisher.publish('migrating', v1Graph);
      const p2 = await publisher.publish('migrating', v2Graph);
      await env.startWorker(rpcs); // contract.add is gone
      const started = await env.pinflow.start({ version: p1.version, input: { name: 'ada', a: 20, b: 22 } });
      await stalledRun(started.runId);

      await assert.rejects(env.pinflow.migrate(started.runId, { targetVersion: p2.version, by: 'ops' }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'MIGRATION_REFUSED');
        assert.match(err.message, /the run's position call is not a top-level step of version [0-9a-f]{64}; map it with "mapping": \{ "call": "<step id in the target>" \}/);
        return true;
      });

      const res = await env.pinflow.migrate(started.runId, { targetVersion: p2.version, mapping: { greet: 'hello', call: 'add-numbers' }, by: 'ops', reason: 'contract.add retired' });
      assert.deepEqual(res, { at: 'add-numbers', carried: ['hello'], dropped: [] });
      // The carried greeting comes from v1's run; the rest ran on v2. The assign before
      // the resume point did not run, so vars.note is null.
      assert.deepEqual(await env.pinflow.result(started.runId), { greeting: 'hello ada', sum: 42, note: null });
      const done = await closedRun(started.runId);
      assert.equal(done.status, 'COMPLETED');
      assert.equal(done.version, p2.version);
      assert.deepEqual(
        done.lineage.map((l) => [l.version, l.upTo, l.by]),
        [[p1.version, 'call', 'ops']],
      );
      assert.deepEqual(
        done.decisions.map((d) => [d.action, d.by, d.reason]),
        [['migrate', 'ops', 'contract.add retired']],
      );
      assert.deepEqual(
        done.steps.map((s) => [s.stepInstance, s.dispatch, s.status]),
        [
          ['greet', 1, 'COMPLETED'],
          ['call', 1, 'FAILED'],
          ['add-numbers', 1, 'COMPLETED'],
          ['done', 1, 'COMPLETED'],
        ],
      );
      const desc = await env.client.workflow.getHandle(started.runId).describe();
      assert.deepEqual(desc.searchAttributes.PinflowVersion, [p2.version]);
    });

    it('moves a waiting run, and refuses a run that is not at a safe point', async () => {
      await env.startWorker([...rpcs, v1]);
      const a = await env.pinflow.publish('waiter', { entry: 'hold', steps: [{ id: 'hold', type: 'wait', event: 'go', correlationKey: "'k'", timeout: '1h', onTimeout: 'late' }, { id: 'late', type: 'return', output: "'v1'" }] });
      const b = await env.pinflow.publish('waiter', { entry: 'hold', steps: [{ id: 'hold', type: 'wait', event: 'go', correlationKey: "'k'", timeout: '100ms', onTimeout: 'late' }, { id: 'late', type: 'return', output: "'v2'" }] });
      const started = await env.pinflow.start({ version: a.version });
      await eventually(async () => (await env.pinflow.state(started.runId)).waiting);
      await env.pinflow.migrate(started.runId, { targetVersion: b.version, by: 'ops' });
      assert.equal(await env.pinflow.result(started.runId), 'v2');

      const loopy = await env.pinflow.publish('loopy', { entry: 'each', steps: [{ id: 'each', type: 'forEach', items: '[1]', body: { entry: 'nap', steps: [{ id: 'nap', type: 'sleep', duration: '1h' }] } }] });
      const other = await env.pinflow.publish('loopy', { entry: 'each', steps: [{ id: 'each', type: 'forEach', items: '[2]', body: { entry: 'nap', steps: [{ id: 'nap', type: 'sleep', duration: '1h' }] } }] });
      const looping = await env.pinflow.start({ version: loopy.version });
      await eventually(async () => (await env.pinflow.state(looping.runId)).cursor === 'nap[0]');
      await assert.rejects(env.pinflow.migrate(looping.runId, { targetVersion: other.version, by: 'ops' }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'MIGRATION_REFUSED');
        assert.match(err.message, /is not at a safe point; it must be stalled, waiting, or running a top-level step \(it is RUNNING at nap\[0\]\)/);
        return true;
      });
      await env.pinflow.cancel(looping.runId, { by: 'test' });
    });

    it('migrates a running run between steps, at the next top-level boundary, or refuses with the reason there', async () => {
      await env.startWorker([...rpcs, v1]);
      const g = (label: string, nap: string) => ({
        entry: 'nap',
        steps: [
          { id: 'nap', type: 'sleep', duration: nap, next: 'after' },
          { id: 'after', type: 'rpc', rpc: 'math.add', input: { a: '1', b: '1' }, next: 'done' },
          { id: 'done', type: 'return', output: `'${label}'` },
        ],
      });
      const a = await env.pinflow.publish('between', g('v1', '1500ms'));
      // v2 drops the sleep: the run picks up at `after`.
      const b = await env.pinflow.publish('between', {
        entry: 'after',
        steps: [
          { id: 'after', type: 'rpc', rpc: 'math.add', input: { a: '2', b: '2' }, next: 'done' },
          { id: 'done', type: 'return', output: "'v2'" },
        ],
      });
      const run1 = await env.pinflow.start({ version: a.version });
      await eventually(async () => (await env.pinflow.state(run1.runId)).cursor === 'nap');
      const res = await env.pinflow.migrate(run1.runId, { targetVersion: b.version, by: 'ops' });
      assert.deepEqual(res, { at: 'after', carried: [], dropped: ['nap'] });
      assert.equal(await env.pinflow.result(run1.runId), 'v2');

      const run2 = await env.pinflow.start({ version: a.version });
      await eventually(async () => (await env.pinflow.state(run2.runId)).cursor === 'nap');
      await assert.rejects(env.pinflow.migrate(run2.runId, { targetVersion: b.version, mapping: { after: 'gone' }, by: 'ops' }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'MIGRATION_REFUSED');
        assert.match(err.message, /the run's next step after \(mapped to gone\) is not a top-level step of version [0-9a-f]{64}/);
        return true;
      });
      assert.equal(await env.pinflow.result(run2.runId), 'v1');
    });
  });
});
