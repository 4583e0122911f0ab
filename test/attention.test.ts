import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AttentionChecker } from '../client/attention';
import { TASK_QUEUE, WORKFLOW_TYPE } from '../graph/terminology';
import { createApi } from '../client/http';
import { defineRpc } from '../rpc/registry';
import { rpcs } from './fixtures/rpcs';
import { createEnv, createKey, eventually, withKey, type Env } from './support/harness';

// A handler that fails retryably until told otherwise, and one that blocks until its gate opens.
let failing = true;
let release: (() => void) | undefined;
const flaky = defineRpc('attention.flaky', {
  input: z.object({}),
  output: z.object({ ok: z.boolean() }),
  handler: () => {
    if (failing) throw new Error('partner API answered 503');
    return { ok: true };
  },
});
const blocking = defineRpc('attention.blocking', {
  input: z.object({}),
  output: z.object({ ok: z.boolean() }),
  handler: async () => {
    await new Promise<void>((resolve) => (release = resolve));
    return { ok: true };
  },
});
const attentionRpcs = [...rpcs, flaky, blocking];

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

describe('runs that need attention (client/attention.ts)', function () {
  this.timeout(240_000);
  let env: Env;
  let api: FastifyInstance;
  let checker: AttentionChecker;

  before(async () => {
    env = await createEnv('attention', attentionRpcs);
    await env.pinflow.publish('att-flaky', {
      entry: 'call',
      steps: [{ id: 'call', type: 'rpc', rpc: 'attention.flaky', input: {}, retry: { maximumAttempts: 100, initialInterval: '200ms', backoffCoefficient: 1 } }],
    });
    await env.pinflow.publish('att-blocking', { entry: 'call', steps: [{ id: 'call', type: 'rpc', rpc: 'attention.blocking', input: {} }] });
    await env.pinflow.publish('att-wait', { entry: 'w', steps: [{ id: 'w', type: 'wait', event: 'parcel.delivered', correlationKey: 'input.parcel', sla: '1s' }] });
    await env.startWorker(attentionRpcs);
    api = withKey(createApi({ pinflow: env.pinflow }), await createKey(env));
    checker = new AttentionChecker({
      client: env.client,
      store: env.store,
      catalog: env.pinflow.catalog,
      thresholds: { rpcAttempts: 3, noProgressMs: 3_000, pollerFreshMs: 5_000 },
    });
  });
  after(async () => {
    await api?.close();
    await env?.stop();
  });

  /** Every HTTP request of this suite goes through here (auth headers are added in one place). */
  const call = async (method: 'GET' | 'POST', url: string, body?: unknown): Promise<Reply> => {
    const res = await api.inject({ method, url, ...(body !== undefined ? { payload: body as Record<string, unknown> } : {}) });
    return { status: res.statusCode, body: res.json() };
  };
  /** Pass until the run is flagged with `reason`; returns the flag. */
  const flagged = (runId: string, reason: string) =>
    eventually(async () => {
      await checker.pass();
      return (await checker.ofRun(runId)).find((f) => f.reason === reason);
    }, { timeoutMs: 90_000, what: `run ${runId} flagged ${reason}` });
  /** Pass until the run is no longer flagged with `reason`. */
  const cleared = (runId: string, reason: string) =>
    eventually(async () => {
      await checker.pass();
      return !(await checker.ofRun(runId)).some((f) => f.reason === reason);
    }, { timeoutMs: 90_000, what: `run ${runId} no longer flagged ${reason}` });
  const listed = async (reason: string) => ((await call('GET', `/runs?attention=${reason}`)).body.runs as Array<{ id: string }>).map((r) => r.id);

  it('RPC_RETRYING: a handler failing retryably on its Nth attempt, with its last failure; cleared when it succeeds', async () => {
    failing = true;
    const { runId } = await env.pinflow.start({ definition: 'att-flaky' });
    const flag = await flagged(runId, 'RPC_RETRYING');
    assert.ok((flag.detail.attempt as number) >= 3, JSON.stringify(flag.detail));
    assert.match(String(flag.detail.lastFailure), /partner API answered 503/);
    assert.ok((await listed('RPC_RETRYING')).includes(runId));
    const counts = await call('GET', '/attention');
    assert.equal(counts.status, 200);
    assert.ok(((counts.body.counts as Record<string, number>).RPC_RETRYING ?? 0) >= 1);
    const detail = await call('GET', `/runs/${runId}`);
    assert.ok((detail.body.attention as Array<{ reason: string }>).some((a) => a.reason === 'RPC_RETRYING'));

    failing = false;
    await env.pinflow.result(runId);
    await eventually(async () => (await env.pinflow.getRun(runId)).status === 'COMPLETED', { timeoutMs: 30_000 });
    await cleared(runId, 'RPC_RETRYING');
    assert.ok(!(await listed('RPC_RETRYING')).includes(runId));
    const rows = await env.db.query<{ cleared: boolean }>({ text: `SELECT cleared_at IS NOT NULL AS cleared FROM run_attention WHERE run_id = $1 AND reason = 'RPC_RETRYING'`, values: [runId] });
    assert.deepEqual(rows.map((r) => r.cleared), [true]);
  });

  it('WAIT_OVERDUE: a wait open past its sla; cleared when the event arrives', async () => {
    const { runId } = await env.pinflow.start({ definition: 'att-wait', input: { parcel: 'P-1' } });
    const flag = await flagged(runId, 'WAIT_OVERDUE');
    assert.equal(flag.detail.stepInstance, 'w');
    assert.equal(flag.detail.sla, '1s');
    assert.ok((await listed('WAIT_OVERDUE')).includes(runId));
    // A waiting run is not "without progress".
    assert.ok(!(await checker.ofRun(runId)).some((f) => f.reason === 'NO_PROGRESS'));
    await env.pinflow.submitEvent({ name: 'parcel.delivered', correlationKey: 'P-1' });
    await env.pinflow.result(runId);
    await eventually(async () => (await env.pinflow.getRun(runId)).status === 'COMPLETED', { timeoutMs: 30_000 });
    await cleared(runId, 'WAIT_OVERDUE');
  });

  it('NO_PROGRESS: a handler blocked longer than the threshold (its heartbeats are liveness, not progress); cleared when it returns', async () => {
    release = undefined;
    const { runId } = await env.pinflow.start({ definition: 'att-blocking' });
    const flag = await flagged(runId, 'NO_PROGRESS');
    assert.equal(flag.detail.currentStep, 'call');
    assert.equal(flag.detail.thresholdMs, 3_000);
    release!();
    await env.pinflow.result(runId);
    await eventually(async () => (await env.pinflow.getRun(runId)).status === 'COMPLETED', { timeoutMs: 30_000 });
    await cleared(runId, 'NO_PROGRESS');
  });

  it('WORKFLOW_TASK_FAILING: a run whose workflow task the worker fails (an interpreter crash on a corrupt start input), retried by Temporal; cleared when it is terminated', async () => {
    // Started past the library (no publish validation): a graph without steps makes the interpreter throw a
    // TypeError after its run-started write, which fails the workflow task; Temporal retries it forever.
    const runId = `att-wft-${Date.now()}`;
    const published = await env.pinflow.publish('att-corrupt', { entry: 'a', steps: [{ id: 'a', type: 'return', output: '1' }] });
    await env.client.workflow.start(WORKFLOW_TYPE, {
      taskQueue: TASK_QUEUE,
      workflowId: runId,
      args: [{ runId, definition: 'att-corrupt', version: published.version, graph: { entry: 'a' }, contracts: {}, input: {}, tenant: 'default', metadata: {} }],
    });
    await eventually(async () => (await env.store.getRun(runId)) !== undefined, { timeoutMs: 30_000, what: 'the run-started write' });
    const flag = await flagged(runId, 'WORKFLOW_TASK_FAILING');
    assert.ok((flag.detail.attempt as number) >= 2, JSON.stringify(flag.detail));
    assert.ok((await listed('WORKFLOW_TASK_FAILING')).includes(runId));
    await env.client.workflow.getHandle(runId).terminate('test cleanup');
    await cleared(runId, 'WORKFLOW_TASK_FAILING');
  });

  it('NO_WORKER: no poller on the task queue flags every open run (one global row with the count); cleared when a worker polls again', async () => {
    const { runId } = await env.pinflow.start({ definition: 'att-wait', input: { parcel: 'P-2' } });
    await eventually(async () => (await env.pinflow.getRun(runId)).waits.length > 0, { timeoutMs: 30_000 });
    await env.stopWorker();
    const flag = await flagged(runId, 'NO_WORKER');
    assert.ok((flag.detail.openRuns as number) >= 1);
    assert.ok((await listed('NO_WORKER')).includes(runId));
    const counts = (await call('GET', '/attention')).body.counts as Record<string, number>;
    assert.ok(counts.NO_WORKER! >= 1);
    // The health output carries the same counts (informative).
    const health = await call('GET', '/health');
    assert.ok(((health.body.attention as Record<string, number>).NO_WORKER ?? 0) >= 1, JSON.stringify(health.body));
    await env.startWorker(attentionRpcs);
    await cleared(runId, 'NO_WORKER');
    await env.pinflow.cancel(runId, { by: 'test', reason: 'cleanup' });
  });
});
