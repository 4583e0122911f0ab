import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { createApi } from '../client/http';
import { Pinflow } from '../client/pinflow';
import { PinflowError } from '../graph/errors';
import { defineRpc } from '../rpc/registry';
import { rpcs } from './fixtures/rpcs';
import { createEnv, createKey, type Env, eventually, keyFetch, withKey } from './support/harness';

/** Every request of this suite sends the suite's admin key (auth is on). */
let fetch: typeof globalThis.fetch = globalThis.fetch;

// Operator calls on runs that are over (closed in Temporal) or that never existed:
// 404 RUN_NOT_FOUND and 409 RUN_CLOSED, through the library and over HTTP, whatever optional fields are given.
const add = defineRpc('closed.add', {
  input: z.object({ a: z.number(), b: z.number() }),
  output: z.object({ sum: z.number() }),
  handler: ({ a, b }) => ({ sum: a + b }),
});

const v1 = {
  entry: 'call',
  steps: [
    { id: 'call', type: 'rpc', rpc: 'closed.add', input: { a: 'input.a', b: 'input.b' }, next: 'done' },
    { id: 'done', type: 'return', output: 'steps.call.sum' },
  ],
};
const v2 = {
  entry: 'call',
  steps: [
    { id: 'call', type: 'rpc', rpc: 'closed.add', input: { a: 'input.a', b: 'input.b' }, next: 'done' },
    { id: 'done', type: 'return', output: { sum: 'steps.call.sum' } },
  ],
};

type Call = { name: string; lib: (p: Pinflow, runId: string) => Promise<unknown>; http: (runId: string) => [string, unknown] };

describe('closed and unknown runs: operator calls answer 404 RUN_NOT_FOUND / 409 RUN_CLOSED', function () {
  this.timeout(180_000);
  let env: Env;
  let api: FastifyInstance;
  let base: string;
  let target: string;
  let completed: string;
  let pinnedVersion: string;
  const unknown = 'closed-runs-no-such-run';

  before(async () => {
    env = await createEnv('closed', [...rpcs, add]);
    const key = await createKey(env);
    fetch = keyFetch(key);
    api = withKey(createApi({ pinflow: env.pinflow }), key);
    await api.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
    const publisher = new Pinflow({ client: env.client, store: env.store, rpcs: [...rpcs, add] });
    const pinned = (await publisher.publish('closed-add', v1)).version;
    target = (await publisher.publish('closed-add', v2)).version;
    pinnedVersion = pinned;
    await env.startWorker([...rpcs, add]);
    completed = (await env.pinflow.start({ version: pinnedVersion, input: { a: 1, b: 2 } })).runId;
    assert.equal(await env.pinflow.result(completed), 3);
    await eventually(async () => ((await env.pinflow.getRun(completed)).status === 'COMPLETED' ? true : undefined), { timeoutMs: 60_000, what: 'the projection shows the run COMPLETED' });
  });
  after(async () => {
    await api?.close();
    await env?.stop();
  });

  const post = (path: string, body: unknown) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const decisionsOf = async (runId: string) => (await env.db.query<{ n: number }>({ text: 'SELECT count(*)::int AS n FROM run_decisions WHERE run_id = $1', values: [runId] }))[0]!.n;

  // Each operator call, with and without its optional fields (over HTTP a destructive one always carries its required reason).
  const calls: Call[] = [
    { name: 'retry decision', lib: (p, id) => p.resolveStall(id, { action: 'retry', by: 'ops' }), http: (id) => [`/runs/${id}/decisions`, { action: 'retry', by: 'ops' }] },
    {
      name: 'retry decision with stallId and reason',
      lib: (p, id) => p.resolveStall(id, { action: 'retry', by: 'ops', stallId: 'call/1', reason: 'fixed' }),
      http: (id) => [`/runs/${id}/decisions`, { action: 'retry', by: 'ops', stallId: 'call/1', reason: 'fixed' }],
    },
    {
      name: 'skip decision with stallId and output',
      lib: (p, id) => p.resolveStall(id, { action: 'skip', by: 'ops', stallId: 'call/1', output: { sum: 0 } }),
      http: (id) => [`/runs/${id}/decisions`, { action: 'skip', by: 'ops', stallId: 'call/1', output: { sum: 0 }, reason: 'skip it' }],
    },
    { name: 'skip decision without stallId', lib: (p, id) => p.resolveStall(id, { action: 'skip', by: 'ops', output: { sum: 0 } }), http: (id) => [`/runs/${id}/decisions`, { action: 'skip', by: 'ops', output: { sum: 0 }, reason: 'skip it' }] },
    { name: 'migrate', lib: (p, id) => p.migrate(id, { targetVersion: target, by: 'ops' }), http: (id) => [`/runs/${id}/migrate`, { targetVersion: target, by: 'ops', reason: 'upgrade' }] },
    {
      name: 'migrate with mapping and reason',
      lib: (p, id) => p.migrate(id, { targetVersion: target, by: 'ops', mapping: { call: 'call' }, reason: 'upgrade' }),
      http: (id) => [`/runs/${id}/migrate`, { targetVersion: target, by: 'ops', mapping: { call: 'call' }, reason: 'upgrade' }],
    },
    { name: 'cancel', lib: (p, id) => p.cancel(id, { by: 'ops' }), http: (id) => [`/runs/${id}/cancel`, { by: 'ops', reason: 'not needed' }] },
    { name: 'cancel with reason', lib: (p, id) => p.cancel(id, { by: 'ops', reason: 'done anyway' }), http: (id) => [`/runs/${id}/cancel`, { by: 'ops', reason: 'done anyway' }] },
  ];

  const rejectsWith = (code: string, status?: string) => (err: unknown) => {
    assert.ok(err instanceof PinflowError, `a PinflowError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (status) {
      assert.equal((err.details as { status?: string }).status, status);
      assert.match(err.message, new RegExp(`status ${status}`));
    }
    return true;
  };

  for (const c of calls) {
    it(`${c.name} on an unknown run: library RUN_NOT_FOUND, HTTP 404`, async () => {
      await assert.rejects(c.lib(env.pinflow, unknown), rejectsWith('RUN_NOT_FOUND'));
      const [path, body] = c.http(unknown);
      const res = await post(path, body);
      const json = (await res.json()) as { error: { code: string; details: { runId: string } } };
      assert.equal(res.status, 404, JSON.stringify(json));
      assert.equal(json.error.code, 'RUN_NOT_FOUND');
      assert.equal(json.error.details.runId, unknown);
    });

    it(`${c.name} on a completed run: library RUN_CLOSED, HTTP 409 with the status`, async () => {
      await assert.rejects(c.lib(env.pinflow, completed), rejectsWith('RUN_CLOSED', 'COMPLETED'));
      const [path, body] = c.http(completed);
      const res = await post(path, body);
      const json = (await res.json()) as { error: { code: string; message: string; details: { runId: string; status: string } } };
      assert.equal(res.status, 409, JSON.stringify(json));
      assert.equal(json.error.code, 'RUN_CLOSED');
      assert.deepEqual(json.error.details, { runId: completed, status: 'COMPLETED' });
      assert.match(json.error.message, /is closed \(status COMPLETED\)/);
    });
  }

  it('cancel on a completed run records nothing and changes nothing', async () => {
    await assert.rejects(env.pinflow.cancel(completed, { by: 'ops', reason: 'r' }), rejectsWith('RUN_CLOSED', 'COMPLETED'));
    assert.equal((await post(`/runs/${completed}/cancel`, { by: 'ops', reason: 'not needed' })).status, 409);
    assert.equal(await decisionsOf(completed), 0, 'no run_decisions row for a refused cancel');
    assert.equal((await env.client.workflow.getHandle(completed).describe()).status.name, 'COMPLETED');
    assert.equal((await env.pinflow.getRun(completed)).status, 'COMPLETED');
  });

  it('the state query: 404 RUN_NOT_FOUND for an unknown run, the final state for a completed one', async () => {
    await assert.rejects(env.pinflow.state(unknown), rejectsWith('RUN_NOT_FOUND'));
    const res = await fetch(`${base}/runs/${unknown}/state`);
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'RUN_NOT_FOUND');
    assert.equal((await env.pinflow.state(completed)).status, 'COMPLETED');
  });

  it('a stalled run that closed before the bulk resolve is reported as skipped, not failed, with its reason', async () => {
    await env.startWorker(rpcs); // closed.add is gone: new runs stall
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push((await env.pinflow.start({ version: pinnedVersion, input: { a: i, b: 1 } })).runId);
    for (const id of ids) await eventually(async () => ((await env.pinflow.getRun(id)).status === 'STALLED' ? true : undefined), { timeoutMs: 60_000, what: `${id} stalled` });
    // One run is terminated behind pinflow's back: Temporal says TERMINATED, the projection still lists it stalled.
    const [gone, open] = ids as [string, string];
    await env.client.workflow.getHandle(gone).terminate('closed behind the projection');
    assert.equal((await env.pinflow.getRun(gone)).status, 'STALLED', 'the projection lags');

    const res = await post('/stalls/resolve', { rpc: 'closed.add', action: 'retry', by: 'bulk' });
    const body = (await res.json()) as { results: Array<{ runId: string; ok: boolean; skipped?: boolean; reason?: string; error?: { code: string } }>; summary: { applied: number; skipped: number; failed: number } };
    assert.equal(res.status, 200, JSON.stringify(body));
    const byId = new Map(body.results.map((r) => [r.runId, r]));
    assert.equal(byId.get(open)?.ok, true);
    assert.deepEqual({ ...byId.get(gone), reason: undefined, error: { code: byId.get(gone)?.error?.code } }, { runId: gone, ok: false, skipped: true, reason: undefined, stallId: 'call/1', error: { code: 'RUN_CLOSED' } });
    assert.match(byId.get(gone)!.reason!, /is closed \(status TERMINATED\)/);
    assert.deepEqual(body.summary, { applied: 1, skipped: 1, failed: 0 });

    // Through the library: the same shape, the terminated run skipped again.
    const again = await env.pinflow.resolveStalled({ rpc: 'closed.add' }, { action: 'retry', by: 'bulk' });
    const mine = again.find((r) => r.runId === gone);
    assert.deepEqual([mine?.ok, mine?.skipped, mine?.error?.code], [false, true, 'RUN_CLOSED']);
    assert.equal(await decisionsOf(gone), 0, 'nothing recorded for the skipped run');
  });

  it('a run Temporal runs but the projection does not list yet: migrate reads its definition from Temporal, cancel waits for the row or refuses with 503 RUN_NOT_PROJECTED, doing nothing', async () => {
    const publisher = new Pinflow({ client: env.client, store: env.store, rpcs: [...rpcs, add] });
    await publisher.publish('closed-gate', { entry: 'gate', steps: [{ id: 'gate', type: 'wait', event: 'closed.go', correlationKey: 'input.key', timeout: '1h', next: 'done' }, { id: 'done', type: 'return', output: "'done'" }] });
    const other = (await publisher.publish('closed-other', v1)).version;
    await env.stopWorker();
    const runId = (await env.pinflow.start({ definition: 'closed-gate', input: { key: 'late-row' } })).runId;
    // As if the client's write was lost (the database blinked): only the run's own run-started write, not yet run, would add it.
    await env.db.query({ text: 'DELETE FROM runs WHERE id = $1', values: [runId] });

    // migrate: the definition comes from Temporal's memo, so the answer is the real refusal, not 404.
    await assert.rejects(env.pinflow.migrate(runId, { targetVersion: other, by: 'ops' }), (err: unknown) => {
      assert.ok(err instanceof PinflowError && err.code === 'MIGRATION_REFUSED', String(err));
      assert.match(err.message, /is not a version of "closed-gate"/);
      return true;
    });

    // cancel: the row does not come (no worker runs the run's first task): refused, nothing done.
    await assert.rejects(env.pinflow.cancel(runId, { by: 'ops' }), rejectsWith('RUN_NOT_PROJECTED'));
    const res = await post(`/runs/${runId}/cancel`, { by: 'ops', reason: 'not needed' });
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'RUN_NOT_PROJECTED');
    assert.equal((await env.client.workflow.getHandle(runId).describe()).status.name, 'RUNNING');

    // A worker runs the first task: the run-started write adds the row, and cancel goes through.
    await env.startWorker([...rpcs, add]);
    await eventually(async () => (await env.store.getRun(runId)) !== null, { timeoutMs: 60_000, what: 'the run-started write' });
    await env.pinflow.cancel(runId, { by: 'ops', reason: 'late row' });
    await eventually(async () => (await env.client.workflow.getHandle(runId).describe()).status.name === 'CANCELLED', { timeoutMs: 60_000, what: 'cancelled in Temporal' });
    assert.equal(await decisionsOf(runId), 1);
  });

  it('a Temporal workflow that is not a pinflow run: cancel answers 404 RUN_NOT_FOUND and leaves it alone', async () => {
    const handle = await env.client.workflow.start('notPinflow', { taskQueue: 'closed-runs-elsewhere', workflowId: 'closed-runs-foreign', args: [] });
    try {
      await assert.rejects(env.pinflow.cancel(handle.workflowId, { by: 'ops' }), (err: unknown) => {
        assert.ok(err instanceof PinflowError && err.code === 'RUN_NOT_FOUND', String(err));
        assert.match(err.message, /is not a pinflow run/);
        return true;
      });
      assert.equal((await post(`/runs/${handle.workflowId}/cancel`, { by: 'ops', reason: 'not needed' })).status, 404);
      assert.equal((await handle.describe()).status.name, 'RUNNING');
    } finally {
      await handle.terminate('test cleanup');
    }
  });
});
