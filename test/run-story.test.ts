import assert from 'node:assert/strict';
import { NativeConnection } from '@temporalio/worker';
import { createApi } from '../client/http';
import type { PinflowError } from '../graph/errors';
import { createWorker } from '../worker/worker';
import { rpcs } from './fixtures/rpcs';
import { createEnv, createKey, type Env, eventually, temporalAddress, withKey } from './support/harness';
import { brokenAdd, currentDetailsOf, pinnedAdd, publishStory, searchAttributes, summariesOf } from './support/story';

const listIds = async (env: Env, query: string) => {
  const ids: string[] = [];
  for await (const w of env.client.workflow.list({ query })) ids.push(w.workflowId);
  return ids;
};

describe('run story: what the Temporal UI shows of a run (search attributes, current details, summaries), caller-chosen ids', function () {
  this.timeout(120_000);
  let env: Env;

  before(async () => {
    env = await createEnv('story', [...rpcs, pinnedAdd], { searchableMetadata: ['orderId', 'customer'] });
    await publishStory(env, rpcs);
  });
  after(async () => env?.stop());

  it('a stalled run: STALLED with its reason and step, details that say why and how to decide; COMPLETED after the decision', async () => {
    await env.startWorker([...rpcs, brokenAdd]); // the deploy changed story.add's input
    const run = await env.pinflow.start({ definition: 'order-fulfilment', input: { a: 1, b: 2 }, runId: 'order-1001', metadata: { orderId: 'o-1001', customer: 'acme', note: { nested: true } } });
    await eventually(async () => (await env.pinflow.getRun(run.runId)).status === 'STALLED', { what: 'the stall' });
    const sa = await eventually(async () => {
      const a = await searchAttributes(env, run.runId);
      return a.PinflowStallReason ? a : undefined;
    });
    assert.equal(sa.PinflowStatus, 'STALLED');
    assert.equal(sa.PinflowStallReason, 'input_incompatible');
    assert.equal(sa.PinflowCurrentStep, 'reserve');
    assert.equal(sa.PinflowDefinition, 'order-fulfilment');
    assert.equal(sa.PinflowTenant, 'default');
    assert.equal(sa.PinflowMeta_orderId, 'o-1001');
    assert.equal(sa.PinflowMeta_customer, 'acme');
    assert.equal(sa.PinflowMeta_note, undefined, 'only declared keys are search attributes');
    const details = await currentDetailsOf(env, run.runId);
    assert.match(details, /\*\*STALLED\*\*/);
    assert.match(details, /input_incompatible/);
    assert.match(details, /RPC `story\.add`/);
    assert.match(details, /`a`: /, 'the validation issues in short');
    assert.match(details, /POST \/runs\/order-1001\/decisions/);
    assert.match(details, /temporal workflow update execute --workflow-id order-1001 --name pinflow\.resolveStall/);
    assert.deepEqual(await listIds(env, `PinflowStatus = "STALLED" AND PinflowDefinition = "order-fulfilment"`), ['order-1001']);
    assert.deepEqual(await listIds(env, `PinflowMeta_orderId = "o-1001"`), ['order-1001']);
    const summaries = await summariesOf(env, run.runId);
    assert.ok(summaries.includes('reserve · story.add'), summaries.join(' | '));
    assert.ok(summaries.includes('run started · order-fulfilment'), summaries.join(' | '));

    await env.pinflow.resolveStall(run.runId, { action: 'skip', by: 'ops@example.com', output: { sum: 3 } });
    assert.equal(await env.pinflow.result(run.runId), 3);
    const closed = await searchAttributes(env, run.runId);
    assert.equal(closed.PinflowStatus, 'COMPLETED');
    assert.equal(closed.PinflowStallReason, undefined, 'the reason is cleared once decided');
    assert.match(await currentDetailsOf(env, run.runId), /\*\*COMPLETED\*\*/);
  });

  it('a waiting run: WAITING on its step, details with the event, key and since when; timer and wait activities named', async () => {
    await env.startWorker(rpcs);
    const run = await env.pinflow.start({ definition: 'order-payment', input: { orderId: 'o-2002' }, metadata: { orderId: 'o-2002' } });
    assert.match(run.runId, /^order-payment-[0-9a-f-]{36}$/, 'the default id names the definition');
    const sa = await eventually(async () => {
      const a = await searchAttributes(env, run.runId);
      return a.PinflowStatus === 'WAITING' ? a : undefined;
    });
    assert.equal(sa.PinflowCurrentStep, 'paid');
    const details = await eventually(async () => {
      const d = await currentDetailsOf(env, run.runId);
      return d.includes('Waiting') ? d : undefined;
    });
    assert.match(details, /^\*\*WAITING\*\* · order-payment/);
    assert.match(details, /event `payment\.received` with key `o-2002` since \d{4}-\d\d-\d\dT/);
    assert.match(details, /timeout \d{4}-/);
    const summaries = await eventually(async () => {
      const s = await summariesOf(env, run.runId);
      return s.some((x) => x.startsWith('wait payment.received')) ? s : undefined;
    });
    assert.ok(summaries.includes('sleep nap'), summaries.join(' | '));
    assert.ok(summaries.includes('open wait payment.received o-2002'), summaries.join(' | '));
    assert.ok(summaries.includes('wait payment.received o-2002 (timeout)'), summaries.join(' | '));

    await env.pinflow.submitEvent({ name: 'payment.received', correlationKey: 'o-2002', payload: { by: 'ada' } });
    assert.equal(await env.pinflow.result(run.runId), 'hello ada');
    const closed = await searchAttributes(env, run.runId);
    assert.equal(closed.PinflowStatus, 'COMPLETED');
    // Flag 15: the run rested at the wait 'paid'; the rpc step after it cleared the attribute (it names resting steps only).
    assert.equal(closed.PinflowCurrentStep, undefined);
    const after = await summariesOf(env, run.runId);
    assert.ok(after.includes('close wait payment.received o-2002 (resolved)'), after.join(' | '));
    assert.ok(after.includes('greet · text.greet'), after.join(' | '));
  });

  it('a cancelled run ends CANCELLED: the status follows the run to its close', async () => {
    await env.startWorker(rpcs);
    const run = await env.pinflow.start({ definition: 'order-payment', input: { orderId: 'o-3003' } });
    await eventually(async () => (await searchAttributes(env, run.runId)).PinflowStatus === 'WAITING');
    await env.client.workflow.getHandle(run.runId).cancel();
    await eventually(async () => (await searchAttributes(env, run.runId)).PinflowStatus === 'CANCELLED', { what: 'CANCELLED' });
  });

  it('ifExists: "return" makes a start idempotent (library and HTTP); the default refuses with 409 RUN_ALREADY_EXISTS', async () => {
    await env.startWorker(rpcs);
    const first = await env.pinflow.start({ definition: 'order-payment', input: { orderId: 'o-4004' }, runId: 'order-4004' });
    assert.equal(first.existing, undefined);
    const again = await env.pinflow.start({ definition: 'order-payment', input: { orderId: 'other' }, runId: 'order-4004', ifExists: 'return' });
    assert.deepEqual({ ...again, temporalUiUrl: '' }, { ...first, temporalUiUrl: '', existing: true });
    await assert.rejects(env.pinflow.start({ definition: 'order-payment', input: { orderId: 'o-4004' }, runId: 'order-4004' }), (e: PinflowError) => e.code === 'RUN_ALREADY_EXISTS');

    const api = withKey(createApi({ pinflow: env.pinflow }), await createKey(env));
    try {
      const body = { definition: 'order-payment', input: { orderId: 'o-5005' }, runId: 'order-5005', ifExists: 'return' };
      const created = await api.inject({ method: 'POST', url: '/runs', payload: body });
      assert.equal(created.statusCode, 201, created.body);
      const existing = await api.inject({ method: 'POST', url: '/runs', payload: body });
      assert.equal(existing.statusCode, 200, existing.body);
      assert.equal(existing.json<{ existing: boolean; runId: string }>().existing, true);
      assert.equal(existing.json<{ temporalRunId: string }>().temporalRunId, created.json<{ temporalRunId: string }>().temporalRunId);
      const refused = await api.inject({ method: 'POST', url: '/runs', payload: { ...body, ifExists: undefined } });
      assert.equal(refused.statusCode, 409);
      assert.equal(refused.json<{ error: { code: string } }>().error.code, 'RUN_ALREADY_EXISTS');
      const badMode = await api.inject({ method: 'POST', url: '/runs', payload: { ...body, ifExists: 'replace' } });
      assert.equal(badMode.statusCode, 400);
      assert.match(badMode.body, /ifExists/);
      for (const bad of ['-leading-dash', 'has space', 'x'.repeat(201), 'slash/inside', 'ünïcode']) {
        const res = await api.inject({ method: 'POST', url: '/runs', payload: { definition: 'order-payment', runId: bad } });
        assert.equal(res.statusCode, 400, bad);
        const err = res.json<{ error: { code: string; message: string } }>().error;
        assert.equal(err.code, 'REQUEST_INVALID');
        assert.match(err.message, /runId/);
      }
      await assert.rejects(env.pinflow.start({ definition: 'order-payment', runId: 'has space' }), (e: PinflowError) => e.code === 'REQUEST_INVALID' && /1 to 200 characters/.test(e.message) && (e.details as { field: string }).field === 'runId');
    } finally {
      await api.close();
    }
    for (const id of ['order-4004', 'order-5005']) await env.client.workflow.getHandle(id).terminate('test cleanup');
  });

  it('createWorker ensures the namespace and the search attributes, or fails with TEMPORAL_SETUP_MISSING and the commands that create them', async () => {
    const conn = await NativeConnection.connect({ address: temporalAddress() });
    try {
      const namespace = `pinflow-setup-${Date.now()}`;
      const worker = await createWorker({ rpcs, store: env.store, connection: conn, namespace, searchableMetadata: ['orderId'] });
      const listed = await conn.operatorService.listSearchAttributes({ namespace });
      for (const name of ['PinflowStatus', 'PinflowStallReason', 'PinflowCurrentStep', 'PinflowMeta_orderId']) assert.ok(name in (listed.customAttributes ?? {}), name);
      const running = worker.run();
      await eventually(() => Promise.resolve(worker.getState() === 'RUNNING'));
      worker.shutdown();
      await running;
    } finally {
      // The worker lets go of the connection shortly after run() returns.
      await eventually(async () => (await conn.close(), true), { what: 'the connection to close' });
    }
    // Search attributes the server refuses to create: SQL visibility (the dev server's SQLite) has
    // 10 Keyword attributes per namespace, and pinflow's 6 plus 5 metadata keys are 11. The error
    // says what is missing and how to create it; no worker is created, so none holds the connection.
    const bad = await NativeConnection.connect({ address: temporalAddress() });
    const refused = `pinflow-refused-${Date.now()}`;
    let error: PinflowError | undefined;
    try {
      await createWorker({ rpcs, store: env.store, connection: bad, namespace: refused, searchableMetadata: ['m1', 'm2', 'm3', 'm4', 'm5'] });
    } catch (err) {
      error = err as PinflowError;
    } finally {
      await bad.close();
    }
    assert.ok(error, 'createWorker refused');
    assert.equal(error.code, 'TEMPORAL_SETUP_MISSING', error.message);
    assert.match(error.message, new RegExp(`temporal operator namespace create --namespace ${refused}`));
    assert.match(error.message, /temporal operator search-attribute create .*--name PinflowStatus --type Keyword.*--name PinflowMeta_m5 --type Keyword/);
    assert.deepEqual((error.details as { commands: string[] }).commands.length, 2);
  });
});
