import assert from 'node:assert/strict';
import { z } from 'zod';
import { createApi } from '../client/http';
import type { Pinflow } from '../client/pinflow';
import { defineRpc, RpcError } from '../rpc/registry';
import { createEnv, createKey, eventually, withKey, type Env } from './support/harness';

/** Calls per (rpc, n): what a rerun must not call again. */
const calls: string[] = [];
let chargeFails = true;

const add = defineRpc('rr.add', {
  input: z.object({ n: z.number() }),
  output: z.object({ v: z.number() }),
  handler: ({ n }) => {
    calls.push(`add:${n}`);
    return { v: n + 1 };
  },
});
const charge = defineRpc('rr.charge', {
  input: z.object({ amount: z.number() }),
  output: z.object({ charged: z.number() }),
  handler: ({ amount }) => {
    calls.push(`charge:${amount}`);
    if (chargeFails) throw new RpcError('card declined', 'CardDeclined', { nonRetryable: true });
    return { charged: amount };
  },
});
/** The same RPC with an output another version pins differently. */
const RPCS = [add, charge];

// prep (assign) → first (rpc) → second (rpc, uses the var and the first output) → done (return)
const GRAPH = {
  entry: 'prep',
  steps: [
    { id: 'prep', type: 'assign', set: { factor: 'input.a * 10' }, next: 'first' },
    { id: 'first', type: 'rpc', rpc: 'rr.add', input: { n: 'input.a' }, saveAs: 'one', next: 'each' },
    {
      id: 'each',
      type: 'forEach',
      items: '[1, 2]',
      body: { entry: 'inner', steps: [{ id: 'inner', type: 'assign', set: { seen: 'item' } }] },
      next: 'second',
    },
    { id: 'second', type: 'rpc', rpc: 'rr.charge', input: { amount: 'vars.one.v + vars.factor' }, saveAs: 'paid', next: 'done' },
    { id: 'done', type: 'return', output: { paid: 'vars.paid.charged', first: 'steps.first.v' } },
  ],
};
// The same flow with `second` renamed to `pay` (a compatible version for a rerun with a mapping).
const RENAMED = {
  ...GRAPH,
  steps: GRAPH.steps.map((s) => (s.id === 'second' ? { ...s, id: 'pay' } : s.id === 'each' ? { ...s, next: 'pay' } : s)),
};
// A version whose `second` is a wait step: a rerun from `second` cannot land on it.
const INCOMPATIBLE = {
  ...GRAPH,
  steps: GRAPH.steps.map((s) => (s.id === 'second' ? { id: 'second', type: 'sleep', duration: '1s', next: 'done' } : s)),
};

describe('rerun from a step and replay, read from Temporal history', function () {
  this.timeout(180_000);
  let env: Env;
  let pinflow: Pinflow;
  let api: ReturnType<typeof createApi>;
  let v1: string;
  let renamed: string;
  let incompatible: string;

  /** Every HTTP call of this suite goes through here. */
  const call = (method: 'GET' | 'POST', url: string, body?: unknown) => api.inject({ method, url, ...(body !== undefined ? { payload: body as object } : {}) });

  before(async () => {
    env = await createEnv('rerun', RPCS);
    pinflow = env.pinflow;
    await env.startWorker(RPCS);
    v1 = (await pinflow.publish('rr-flow', GRAPH)).version;
    renamed = (await pinflow.publish('rr-flow', RENAMED)).version;
    incompatible = (await pinflow.publish('rr-flow', INCOMPATIBLE)).version;
    api = withKey(createApi({ pinflow }), await createKey(env));
    await api.ready();
  });
  after(async () => {
    await api?.close();
    await env?.stop();
  });

  const closed = (runId: string) =>
    eventually(async () => {
      const r = await pinflow.getRun(runId);
      return r.status !== 'RUNNING' && r.status !== 'STALLED' ? r : undefined;
    });

  async function failedRun(): Promise<string> {
    chargeFails = true;
    const { runId } = await pinflow.start({ version: v1, input: { a: 2 } });
    const r = await closed(runId);
    assert.equal(r.status, 'FAILED');
    return runId;
  }

  it('reruns a failed run from the failed step with the state it had there: earlier steps are not called again', async () => {
    const source = await failedRun();
    assert.deepEqual(calls.splice(0), ['add:2', 'charge:23']);
    chargeFails = false; // the fix is deployed
    const res = await call('POST', `/runs/${source}/rerun`, { fromStep: 'second', by: 'ops', reason: 'card fixed' });
    assert.equal(res.statusCode, 201, res.body);
    const rerun = res.json<{ runId: string; kind: string; created: boolean; version: string; fromStep: string }>();
    assert.equal(rerun.kind, 'rerun');
    assert.equal(rerun.created, true);
    assert.equal(rerun.version, v1);
    // vars.factor (assign before X) and vars.one (first's output) came from the source's history.
    assert.deepEqual(await pinflow.result(rerun.runId), { paid: 23, first: 3 });
    assert.deepEqual(calls.splice(0), ['charge:23'], 'only the step rerun from and after it are called');
    const detail = await closed(rerun.runId);
    assert.equal(detail.status, 'COMPLETED');
    assert.deepEqual(
      detail.steps.map((s) => s.stepId),
      ['second', 'done'],
    );
    // Lineage on both runs.
    const mine = (await call('GET', `/runs/${rerun.runId}`)).json<{ origin: Record<string, unknown> }>();
    assert.deepEqual({ ...mine.origin, createdAt: undefined }, { kind: 'rerun', sourceRunId: source, sourceVersion: v1, fromStep: 'second', occurrence: 1, by: 'ops', reason: 'card fixed', createdAt: undefined });
    const theirs = (await call('GET', `/runs/${source}`)).json<{ reruns: Array<{ runId: string; kind: string; fromStep: string; status: string }> }>();
    assert.deepEqual(
      theirs.reruns.map((x) => [x.runId, x.kind, x.fromStep, x.status]),
      [[rerun.runId, 'rerun', 'second', 'COMPLETED']],
    );
    // The audit log names both runs, who (the key) and why.
    const audit = await env.db.query<{ action: string; run_ids: string[]; reason: string | null; outcome: string; key_id: string | null }>({
      text: `SELECT action, run_ids, reason, outcome, key_id FROM audit_log WHERE action = 'run.rerun' AND $1 = ANY (run_ids)`,
      values: [source],
    });
    assert.equal(audit.length, 1);
    assert.deepEqual([audit[0]!.run_ids, audit[0]!.reason, audit[0]!.outcome], [[source, rerun.runId], 'card fixed', 'accepted']);
    assert.ok(audit[0]!.key_id);
    // The Temporal UI shows it too (memo and summary).
    const desc = await env.client.workflow.getHandle(rerun.runId).describe();
    assert.deepEqual((desc.memo as { origin: unknown }).origin, { kind: 'rerun', sourceRunId: source, fromStep: 'second' });
    assert.match(String(await desc.staticSummary()), new RegExp(`rerun of ${source}`));
  });

  it('reads the state from history, not from the projection', async () => {
    chargeFails = false;
    const { runId } = await pinflow.start({ version: v1, input: { a: 5 } });
    await closed(runId);
    calls.splice(0);
    // Corrupt what the projection says about the run's input and the first step's output.
    await env.db.query({ text: `UPDATE run_details SET input = '{"a": 999}'::jsonb WHERE run_id = $1`, values: [runId] }).catch(() => undefined);
    await env.db.query({ text: `UPDATE run_steps SET output = '{"v": 999}'::jsonb WHERE run_id = $1`, values: [runId] });
    const res = await pinflow.rerun(runId, { fromStep: 'second', by: 'ops' });
    assert.deepEqual(await pinflow.result(res.runId), { paid: 56, first: 6 });
    // Replay: the original input comes from history, whatever the projection row says.
    const replay = await pinflow.replay(runId, { by: 'ops', reason: 'again' });
    assert.deepEqual(await pinflow.result(replay.runId), { paid: 56, first: 6 });
    assert.deepEqual(calls.splice(0), ['charge:56', 'add:5', 'charge:56']);
  });

  it('replays with an edited input, and refuses an invalid one before anything starts', async () => {
    chargeFails = false;
    const source = await failedRun().catch(() => '');
    chargeFails = false;
    calls.splice(0);
    const res = await call('POST', `/runs/${source}/replay`, { input: { a: 1 }, by: 'ops', reason: 'corrected amount' });
    assert.equal(res.statusCode, 201, res.body);
    const replay = res.json<{ runId: string; kind: string }>();
    assert.equal(replay.kind, 'replay');
    assert.deepEqual(await pinflow.result(replay.runId), { paid: 12, first: 2 });
    assert.deepEqual(calls.splice(0), ['add:1', 'charge:12']);
    const origin = (await pinflow.getRun(replay.runId)).origin;
    assert.equal(origin?.kind, 'replay');
    assert.equal(origin?.sourceRunId, source);

    const before = (await pinflow.listRuns({ definition: 'rr-flow' })).runs.length;
    const bad = await call('POST', `/runs/${source}/replay`, { input: { a: 'x'.repeat(10) }, extra: 1, by: 'ops' });
    assert.equal(bad.statusCode, 400, bad.body);
    assert.equal(bad.json<{ error: { code: string } }>().error.code, 'REQUEST_INVALID');
    assert.match(bad.body, /extra/);
    assert.equal((await pinflow.listRuns({ definition: 'rr-flow' })).runs.length, before, 'nothing started');
  });

  it('refuses a nested step (naming the enclosing one), an unknown step, and a step the run never reached', async () => {
    const source = await failedRun();
    const nested = await call('POST', `/runs/${source}/rerun`, { fromStep: 'inner', by: 'ops' });
    assert.equal(nested.statusCode, 422, nested.body);
    const n = nested.json<{ error: { code: string; message: string; details: { nearest: string } } }>().error;
    assert.equal(n.code, 'RERUN_POINT_INVALID');
    assert.equal(n.details.nearest, 'each');
    assert.match(n.message, /inside forEach step "each".*rerun from "each", the nearest valid step/);

    const unknown = await call('POST', `/runs/${source}/rerun`, { fromStep: 'nope', by: 'ops' });
    assert.equal(unknown.statusCode, 422, unknown.body);
    assert.match(unknown.json<{ error: { message: string } }>().error.message, /"nope" is not a step of version .*top-level steps: prep, first, each, second, done/);

    const notReached = await call('POST', `/runs/${source}/rerun`, { fromStep: 'done', by: 'ops' });
    assert.equal(notReached.statusCode, 409, notReached.body);
    const e = notReached.json<{ error: { code: string; message: string; details: { reached: string[] } } }>().error;
    assert.equal(e.code, 'RERUN_POINT_NOT_REACHED');
    assert.deepEqual(e.details.reached, ['prep', 'first', 'each', 'second']);

    const twice = await call('POST', `/runs/${source}/rerun`, { fromStep: 'second', occurrence: 2, by: 'ops' });
    assert.equal(twice.statusCode, 409, twice.body);
    assert.match(twice.body, /occurrence 2 does not exist/);

    const missing = await call('POST', `/runs/no-such-run/rerun`, { fromStep: 'second', by: 'ops' });
    assert.equal(missing.statusCode, 404, missing.body);
    assert.equal(missing.json<{ error: { code: string } }>().error.code, 'RUN_NOT_FOUND');

    const noBy = await call('POST', `/runs/${source}/rerun`, { fromStep: 'second' });
    assert.equal(noBy.statusCode, 400, noBy.body);
    assert.match(noBy.body, /by/);
  });

  it('reruns onto another version with a mapping, and refuses an incompatible one before anything starts', async () => {
    const source = await failedRun();
    chargeFails = false;
    calls.splice(0);
    const before = (await pinflow.listRuns({ definition: 'rr-flow' })).runs.length;
    const refused = await call('POST', `/runs/${source}/rerun`, { fromStep: 'second', targetVersion: incompatible, by: 'ops' });
    assert.equal(refused.statusCode, 409, refused.body);
    assert.equal(refused.json<{ error: { code: string } }>().error.code, 'RERUN_INCOMPATIBLE');
    assert.match(refused.body, /step second is a rpc step but second in the target is a sleep step/);
    const unmapped = await call('POST', `/runs/${source}/rerun`, { fromStep: 'second', targetVersion: renamed, by: 'ops' });
    assert.equal(unmapped.statusCode, 409, unmapped.body);
    assert.match(unmapped.body, /map it with/);
    assert.equal((await pinflow.listRuns({ definition: 'rr-flow' })).runs.length, before, 'nothing started');
    assert.deepEqual(calls, []);

    const moved = await pinflow.rerun(source, { fromStep: 'second', targetVersion: renamed, mapping: { second: 'pay' }, by: 'ops' });
    assert.equal(moved.version, renamed);
    assert.deepEqual(await pinflow.result(moved.runId), { paid: 23, first: 3 });
    assert.deepEqual(calls.splice(0), ['charge:23']);
  });

  it('is idempotent with a run id: a repeated request returns the run it started', async () => {
    const source = await failedRun();
    chargeFails = false;
    calls.splice(0);
    const id = `${source}-rerun-1`;
    const first = await pinflow.rerun(source, { fromStep: 'second', runId: id, by: 'batch' });
    const again = await call('POST', `/runs/${source}/rerun`, { fromStep: 'second', runId: id, by: 'batch' });
    assert.equal(again.statusCode, 200, again.body);
    assert.deepEqual({ ...again.json<Record<string, unknown>>(), temporalUiUrl: undefined, temporalRunId: undefined }, { ...first, created: false, temporalUiUrl: undefined, temporalRunId: undefined });
    await pinflow.result(id);
    assert.deepEqual(calls.splice(0), ['charge:23'], 'one rerun, one call');
    // The same id for a replay, or for another source, is a conflict.
    const conflict = await call('POST', `/runs/${source}/replay`, { runId: id, by: 'batch' });
    assert.equal(conflict.statusCode, 409, conflict.body);
    assert.equal(conflict.json<{ error: { code: string } }>().error.code, 'RUN_ALREADY_EXISTS');
  });

  it('a batch reruns every failed run once from a step, with ids that survive a restart', async () => {
    const sources = [await failedRun(), await failedRun()];
    chargeFails = false;
    calls.splice(0);
    pinflow.batches.start();
    try {
      const created = await pinflow.batches.create({ action: 'rerun', filter: { definition: 'rr-flow', status: 'FAILED', metadata: { wave: 'b' } }, params: { fromStep: 'second' }, by: 'ops', reason: 'card fixed' });
      // The filter selects nothing yet (no run has that metadata): a bad filter changes nothing.
      assert.ok(!('dryRun' in created));
      assert.equal(created.progress.selected, 0);
      const batch = await pinflow.batches.create({ action: 'rerun', filter: { definition: 'rr-flow', status: 'FAILED' }, params: { fromStep: 'second' }, by: 'ops', reason: 'card fixed', ratePerSecond: 50 });
      assert.ok(!('dryRun' in batch));
      const done = await eventually(async () => {
        const b = await pinflow.batches.get(batch.id);
        return b.state === 'COMPLETED' ? b : undefined;
      }, { timeoutMs: 120_000, what: 'the rerun batch to complete' });
      assert.equal(done.progress.failed, 0, JSON.stringify(done.failedByReason));
      assert.equal(done.progress.done, done.progress.selected);
      const items = (await pinflow.batches.items(batch.id, {})).items;
      for (const source of sources) {
        const item = items.find((i) => i.runId === source)!;
        const newRun = (item.result as { runId: string }).runId;
        assert.equal((await pinflow.getRun(newRun).catch(() => undefined))?.origin?.sourceRunId ?? (await eventually(async () => (await pinflow.getRun(newRun)).origin)).sourceRunId, source);
        // Asked again (as after a restart), the same id returns the same run: nothing new starts.
        const again = await pinflow.rerun(source, { fromStep: 'second', runId: newRun, by: 'ops' });
        assert.equal(again.created, false);
      }
    } finally {
      await pinflow.batches.stop();
    }
  });

  it('reads earlier executions: a run migrated to another version reruns from a step it passed before the migration', async () => {
    chargeFails = false;
    await env.startWorker([add]); // rr.charge is missing: the run stalls at `second`
    const { runId } = await pinflow.start({ version: v1, input: { a: 4 } });
    await eventually(async () => (await pinflow.getRun(runId)).status === 'STALLED');
    await env.startWorker(RPCS);
    await pinflow.migrate(runId, { targetVersion: renamed, mapping: { second: 'pay' }, by: 'ops', reason: 'rename' });
    assert.deepEqual(await pinflow.result(runId), { paid: 45, first: 5 });
    calls.splice(0);
    // `first` ran in the first execution (v1); the latest execution (renamed) started at `pay`.
    const rerun = await pinflow.rerun(runId, { fromStep: 'first', by: 'ops' });
    assert.equal(rerun.version, v1, 'the version the run was on at that step');
    assert.deepEqual(await pinflow.result(rerun.runId), { paid: 45, first: 5 });
    assert.deepEqual(calls.splice(0), ['add:4', 'charge:45']);
    // A step only the earlier version has (`second` became `pay`): read from the first execution.
    const older = await pinflow.rerun(runId, { fromStep: 'second', by: 'ops' });
    assert.equal(older.version, v1);
    assert.deepEqual(await pinflow.result(older.runId), { paid: 45, first: 5 });
    // A step of the latest execution: its version.
    const latest = await pinflow.rerun(runId, { fromStep: 'pay', by: 'ops' });
    assert.equal(latest.version, renamed);
    assert.deepEqual(await pinflow.result(latest.runId), { paid: 45, first: 5 });
  });

  it('reruns an open run too (a stalled one keeps stalling, the rerun goes its own way)', async () => {
    chargeFails = false;
    // A run that stalls at `second` because the deployment lacks rr.charge.
    await env.startWorker([add]);
    const { runId } = await pinflow.start({ version: v1, input: { a: 3 } });
    await eventually(async () => (await pinflow.getRun(runId)).status === 'STALLED');
    await env.startWorker(RPCS);
    calls.splice(0);
    const rerun = await pinflow.rerun(runId, { fromStep: 'second', by: 'ops' });
    assert.deepEqual(await pinflow.result(rerun.runId), { paid: 34, first: 4 });
    assert.equal((await pinflow.getRun(runId)).status, 'STALLED');
    await pinflow.cancel(runId, { by: 'ops' });
  });
});
