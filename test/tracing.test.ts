import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { z } from 'zod';
import { Worker } from '@temporalio/worker';
import { createApi } from '../client/http';
import { workflowBundlePath } from '../worker/bundle';
import { defineRpc } from '../rpc/registry';
import { startTracing, stopTracing } from '../observability/tracing';
import { createEnv, createKey, type Env, eventually, keyFetch, withKey } from './support/harness';

/** Every request of this suite sends the suite's admin key (auth is on). */
let fetch: typeof globalThis.fetch = globalThis.fetch;

const ship = defineRpc('order.ship', {
  input: z.object({ order: z.string() }),
  output: z.object({ shipped: z.boolean() }),
  handler: () => ({ shipped: true }),
});
const rpcs = [ship];

const graph = {
  entry: 'paid',
  steps: [
    { id: 'paid', type: 'wait', event: 'order.paid', correlationKey: 'input.order', timeout: '1h', saveAs: 'paid', next: 'ship' },
    { id: 'ship', type: 'rpc', rpc: 'order.ship', input: { order: 'input.order' }, next: 'done' },
    { id: 'done', type: 'return', output: { shipped: true } },
  ],
};

describe('tracing: one trace from POST /events to the next RPC step (real Temporal, Postgres, HTTP)', function () {
  this.timeout(120_000);
  const spans = new InMemorySpanExporter();
  let env: Env;
  let api: FastifyInstance;
  let url: string;

  before(async () => {
    // Tracing first: the client and the worker pick their interceptors up when created.
    startTracing({ serviceName: 'pinflow-test', exporter: spans, simple: true });
    env = await createEnv('tracing', rpcs);
    await env.startWorker(rpcs);
    const key = await createKey(env);
    fetch = keyFetch(key);
    api = withKey(createApi({ pinflow: env.pinflow }), key);
    await api.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
    await env.pinflow.publish('order-traced', graph);
  });
  after(async () => {
    await api?.close();
    await env?.stop();
    await stopTracing();
  });

  it('the HTTP span, routing, the signal, the workflow handling it and the next RPC activity share the caller trace, parent by parent', async () => {
    const order = `O-${Date.now().toString(36)}`;
    const { runId } = await env.pinflow.start({ definition: 'order-traced', input: { order } });
    await eventually(async () => (await env.pinflow.events.listWaits({ runId })).length === 1, { what: `the wait of ${runId} to open` });

    // The caller's own trace context: the whole chain continues it.
    const traceId = randomBytes(16).toString('hex');
    const callerSpanId = randomBytes(8).toString('hex');
    const res = await fetch(`${url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${callerSpanId}-01` },
      body: JSON.stringify({ name: 'order.paid', correlationKey: order, payload: { amount: 12 } }),
    });
    assert.equal(res.status, 200, await res.text());
    assert.deepEqual(await env.pinflow.result(runId), { shipped: true });

    const inTrace = () => spans.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    const one = (name: string, list: ReadableSpan[] = inTrace()): ReadableSpan => {
      const found = list.filter((s) => s.name === name);
      assert.equal(found.length, 1, `one ${name} span in the trace; the trace has: ${list.map((s) => s.name).join(', ')}`);
      return found[0]!;
    };
    // Workflow spans arrive through the sink after their workflow task; wait for the last link.
    await eventually(() => Promise.resolve(inTrace().some((s) => s.name === 'RunActivity:invokeRpc')), {
      what: `the RPC activity span in trace ${traceId} (spans so far: ${spans.getFinishedSpans().map((s) => `${s.name}@${s.spanContext().traceId.slice(0, 6)}`).join(', ')})`,
    });

    const http = one('POST /events');
    const submit = one('pinflow.event.submit');
    const route = one('pinflow.event.route');
    const signal = one('SignalWorkflow:pinflow.event');
    const handle = one('HandleSignal:pinflow.event');
    const startRpc = one('StartActivity:invokeRpc');
    const runRpc = one('RunActivity:invokeRpc');
    const parentOf = (s: ReadableSpan) => s.parentSpanId;
    const id = (s: ReadableSpan) => s.spanContext().spanId;

    assert.equal(parentOf(http), callerSpanId, 'the HTTP span continues the caller traceparent');
    assert.equal(http.attributes['http.response.status_code'], 200);
    assert.equal(parentOf(submit), id(http), 'the ingress runs inside the request');
    assert.equal(submit.attributes['pinflow.event.source'], 'api');
    assert.equal(parentOf(route), id(submit), 'routing is part of the submit');
    assert.equal(route.attributes['pinflow.event.deliveries'], 1);
    assert.equal(parentOf(signal), id(route), 'the Temporal signal is sent by the routing');
    assert.equal(signal.attributes.temporalWorkflowId, runId);
    assert.equal(parentOf(handle), id(signal), 'the workflow continues the signal header');
    assert.equal(parentOf(startRpc), id(handle), 'the step after the wait is caused by the event');
    assert.equal(parentOf(runRpc), id(startRpc), 'the activity continues the header of its schedule');
    assert.equal(runRpc.attributes.temporalWorkflowId, runId);
    assert.ok(handle.startTime[0] * 1e9 + handle.startTime[1] <= startRpc.startTime[0] * 1e9 + startRpc.startTime[1], 'the wait resumed before the RPC was scheduled');

    // The run's start is its own trace: the RunWorkflow span continues StartWorkflow, and the wait's openWait comes before the event.
    const start = spans.getFinishedSpans().find((s) => s.name === 'StartWorkflow:pinflowInterpreter' && s.attributes.temporalWorkflowId === runId);
    assert.ok(start, 'the client start is traced');
    const startTraceOf = () => spans.getFinishedSpans().filter((s) => s.spanContext().traceId === start.spanContext().traceId);
    // RunWorkflow ends with the run; its span comes through the sink of the last workflow task.
    await eventually(() => Promise.resolve(startTraceOf().some((s) => s.name === 'RunWorkflow:pinflowInterpreter')), { what: 'the RunWorkflow span' });
    const startTrace = startTraceOf();
    const runWorkflow = one('RunWorkflow:pinflowInterpreter', startTrace);
    assert.equal(runWorkflow.parentSpanId, start.spanContext().spanId);
    assert.ok(
      startTrace.some((s) => s.name === 'RunActivity:openWait'),
      `the wait's openWait activity is in the start trace: ${startTrace.map((s) => s.name).join(', ')}`,
    );
    assert.ok(!inTrace().some((s) => s.name === 'RunActivity:openWait'), 'nothing before the event is in its trace');

    // The traced history replays on the bundle with no tracing set up (the replay worker has no interceptors or sinks):
    // the workflow side follows the history's headers, not the worker's setting.
    const history = await env.client.workflow.getHandle(runId).fetchHistory();
    const headers = (history.events ?? []).filter((e) => e.workflowExecutionStartedEventAttributes?.header?.fields?.['_tracer-data']);
    assert.equal(headers.length, 1, 'the start carries the trace header');
    await Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath() } }, history, runId);
  });
});
