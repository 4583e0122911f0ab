/**
 * Metrics (issue #13, section 3): `/metrics` scraped over HTTP from the API
 * and from a real standalone worker process, before and after a small
 * workload, with every value checked to move exactly as the workload implies.
 * Other suites in the same process share the registry, so in-process checks
 * are deltas, on labels only this suite uses (its own definitions, RPCs and
 * event name) or on gauges read from this suite's own database.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { createClient } from 'redis';
import { createApi } from '../client/http';
import { RedisIngress } from '../client/redis-ingress';
import { defineRpc } from '../rpc/registry';
import { add } from './fixtures/rpcs';
import { createEnv, createKey, type Env, eventually, exitOf, freePort, keyFetch, spawnWorkerProcess, withKey } from './support/harness';

/** Every request of this suite sends the suite's admin key (auth is on). */
let fetch: typeof globalThis.fetch = globalThis.fetch;

/** Samples of one scrape, by `name{label="value",...}` with labels sorted. */
type Samples = Map<string, number>;

function sampleKey(name: string, labels: Record<string, string>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`);
  return parts.length ? `${name}{${parts.join(',')}}` : name;
}

/** Parse the Prometheus text format (what prom-client and the Temporal SDK write). */
function parseMetrics(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    assert.ok(m, `unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = JSON.parse(`"${l[2]!}"`) as string;
    out.set(sampleKey(m[1]!, labels), Number(m[3]));
  }
  return out;
}

/** A sample's value; an absent series counts as 0 (a counter not incremented yet, a gauge with nothing open). */
const value = (s: Samples, name: string, labels: Record<string, string> = {}): number => s.get(sampleKey(name, labels)) ?? 0;

async function scrape(url: string): Promise<Samples> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `GET ${url}`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseMetrics(await res.text());
}

let seq = 0;
const uniq = (p: string) => `${p}-${Date.now().toString(36)}-${++seq}`;

// RPCs only this suite uses, so their counters move only with its workload.
const mAdd = defineRpc('metrics.add', {
  input: z.object({ a: z.number(), b: z.number() }),
  output: z.object({ sum: z.number() }),
  handler: ({ a, b }) => ({ sum: a + b }),
});
/** Fails its first attempt with a retryable error. */
const mFlaky = defineRpc('metrics.flaky', {
  input: z.object({}),
  output: z.object({ attempt: z.number() }),
  handler: (_input, ctx) => {
    if (ctx.attempt < 2) throw new Error('transient');
    return { attempt: ctx.attempt };
  },
  retry: { maximumAttempts: 3, initialInterval: '100ms', backoffCoefficient: 1 },
});
/** Published, never registered on the worker: a run reaching it stalls with rpc_missing. */
const mGone = defineRpc('metrics.gone', {
  input: z.object({}),
  output: z.object({}),
  handler: () => ({}),
});
const mRecord = defineRpc('metrics.record', {
  input: z.object({ ticket: z.string() }),
  output: z.object({ ok: z.boolean() }),
  handler: () => ({ ok: true }),
});
const workerRpcs = [mAdd, mFlaky, mRecord, add];

const EVENT = 'metrics.closed';
const REDIS_URL = process.env.PINFLOW_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const sumGraph = {
  entry: 'flaky',
  steps: [
    { id: 'flaky', type: 'rpc', rpc: 'metrics.flaky', input: {}, next: 'add' },
    { id: 'add', type: 'rpc', rpc: 'metrics.add', input: { a: 'input.a', b: 'input.b' }, next: 'done' },
    { id: 'done', type: 'return', output: 'steps.add.sum' },
  ],
};
const stallGraph = {
  entry: 'gone',
  steps: [
    { id: 'gone', type: 'rpc', rpc: 'metrics.gone', input: {}, next: 'done' },
    { id: 'done', type: 'return', output: {} },
  ],
};
const waitGraph = {
  entry: 'closed',
  steps: [
    { id: 'closed', type: 'wait', event: EVENT, correlationKey: 'input.ticket', timeout: '1h', onTimeout: 'late', next: 'record' },
    { id: 'record', type: 'rpc', rpc: 'metrics.record', input: { ticket: 'input.ticket' }, next: 'done' },
    { id: 'done', type: 'return', output: {} },
    { id: 'late', type: 'return', output: { timedOut: true } },
  ],
};
/** A parent whose child step starts a run of the kid definition. */
const kidGraph = {
  entry: 'add',
  steps: [
    { id: 'add', type: 'rpc', rpc: 'metrics.add', input: { a: 'input.a', b: 'input.b' }, next: 'done' },
    { id: 'done', type: 'return', output: { v: 'steps.add.sum' } },
  ],
};
const parentGraph = (kid: string) => ({
  entry: 'kid',
  steps: [
    { id: 'kid', type: 'child', definition: kid, input: { a: 'input.a', b: 'input.b' }, next: 'end' },
    { id: 'end', type: 'return', output: 'steps.kid.v' },
  ],
});
const plainSumGraph = {
  entry: 'add',
  steps: [
    { id: 'add', type: 'rpc', rpc: 'math.add', input: { a: 'input.a', b: 'input.b' }, next: 'done' },
    { id: 'done', type: 'return', output: 'steps.add.sum' },
  ],
};

describe('metrics: Prometheus /metrics on the API and the standalone worker', function () {
  this.timeout(180_000);
  let env: Env;
  let api: FastifyInstance;
  let url: string;
  const children: ChildProcess[] = [];

  before(async () => {
    env = await createEnv('metrics', [...workerRpcs, mGone]);
    const key = await createKey(env);
    fetch = keyFetch(key);
    api = withKey(createApi({ pinflow: env.pinflow }), key);
    await api.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}/metrics`;
  });
  after(async () => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGTERM');
        await exitOf(c);
      }
    }
    await api?.close();
    await env?.stop();
  });

  it('counts a completed run, a child run, a stalled run, a routed, an unmatched and a rejected event exactly, over HTTP from the API', async () => {
    await env.startWorker(workerRpcs);
    const defs = { sum: uniq('m-sum'), stall: uniq('m-stall'), wait: uniq('m-wait'), kid: uniq('m-kid'), parent: uniq('m-parent') };
    const versions = {
      sum: (await env.pinflow.publish(defs.sum, sumGraph)).version.slice(0, 12),
      stall: (await env.pinflow.publish(defs.stall, stallGraph)).version.slice(0, 12),
      wait: (await env.pinflow.publish(defs.wait, waitGraph)).version.slice(0, 12),
      kid: (await env.pinflow.publish(defs.kid, kidGraph)).version.slice(0, 12),
      parent: (await env.pinflow.publish(defs.parent, parentGraph(defs.kid))).version.slice(0, 12),
    };
    const before = await scrape(url);
    // The gauges read this suite's own database: nothing is stalled or waiting yet.
    assert.equal(value(before, 'pinflow_stalls_open', { reason: 'rpc_missing' }), 0);
    assert.equal(value(before, 'pinflow_stalls_open', { reason: 'input_incompatible' }), 0, 'every stall reason is reported, 0 included');
    assert.ok(before.has(sampleKey('pinflow_stalls_open', { reason: 'output_incompatible' })));
    assert.equal(value(before, 'pinflow_waits_open', { event: EVENT }), 0);
    assert.ok([...before.keys()].some((k) => k.startsWith('process_cpu_')), 'the default process metrics are there');

    // A completed run: metrics.flaky fails once (retry), then ok; metrics.add ok.
    const done = await env.pinflow.start({ definition: defs.sum, input: { a: 2, b: 3 } });
    assert.equal(await env.pinflow.result(done.runId), 5);
    // A run with a child run: the client counts the parent's start, the worker the child's.
    const parent = await env.pinflow.start({ definition: defs.parent, input: { a: 4, b: 5 } });
    assert.equal(await env.pinflow.result(parent.runId), 9);
    // A stalled run.
    const stalled = await env.pinflow.start({ definition: defs.stall, input: {} });
    await eventually(async () => (await env.pinflow.getRun(stalled.runId)).status === 'STALLED', { what: 'the run to stall' });
    // A waiting run, resumed by an event through the HTTP door.
    const ticket = uniq('T');
    const waiting = await env.pinflow.start({ definition: defs.wait, input: { ticket } });
    await eventually(async () => (await env.pinflow.events.listWaits({ runId: waiting.runId })).length === 1, { what: 'the wait to open' });

    const mid = await scrape(url);
    assert.equal(value(mid, 'pinflow_stalls_open', { reason: 'rpc_missing' }), 1, 'one run is stalled');
    assert.equal(value(mid, 'pinflow_waits_open', { event: EVENT }), 1, 'one wait is open');

    const post = (body: unknown) => fetch(url.replace('/metrics', '/events'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const routed = await post({ name: EVENT, correlationKey: ticket, payload: {}, eventId: uniq('e') });
    assert.equal(routed.status, 200);
    assert.equal(((await routed.json()) as { status: string }).status, 'ROUTED');
    const unmatched = await post({ name: EVENT, correlationKey: uniq('nobody'), payload: {}, eventId: uniq('e') });
    assert.equal(((await unmatched.json()) as { status: string }).status, 'UNMATCHED');
    const rejected = await post({ name: EVENT, payload: {}, eventId: uniq('e') });
    assert.equal(rejected.status, 422, 'no key and no rule: rejected');
    await env.pinflow.result(waiting.runId);
    // The stalled run is cancelled by an operator: it closes, and leaves the gauge.
    await env.pinflow.cancel(stalled.runId, { by: 'metrics-test' });
    await eventually(async () => (await env.pinflow.getRun(stalled.runId)).status === 'CANCELLED', { what: 'the stalled run to be cancelled' });

    // Runs closed and step durations are counted when the worker's projection writes land.
    const closed = (s: Samples, def: keyof typeof defs, status: string) => value(s, 'pinflow_runs_closed_total', { definition: defs[def], version: versions[def], status });
    const after = await eventually(
      async () => {
        const s = await scrape(url);
        const all = closed(s, 'sum', 'COMPLETED') + closed(s, 'wait', 'COMPLETED') + closed(s, 'stall', 'CANCELLED') + closed(s, 'kid', 'COMPLETED') + closed(s, 'parent', 'COMPLETED');
        return all === 5 ? s : undefined;
      },
      { what: 'the five closes to be counted' },
    );
    const delta = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);

    for (const def of ['sum', 'stall', 'wait', 'kid', 'parent'] as const) {
      assert.equal(delta('pinflow_runs_started_total', { definition: defs[def], version: versions[def] }), 1, `one ${def} run started`);
    }
    assert.equal(closed(after, 'sum', 'FAILED') + closed(after, 'stall', 'COMPLETED'), 0, 'no other close');

    assert.equal(delta('pinflow_rpc_dispatches_total', { rpc: 'metrics.flaky', outcome: 'retry' }), 1);
    assert.equal(delta('pinflow_rpc_dispatches_total', { rpc: 'metrics.flaky', outcome: 'ok' }), 1);
    assert.equal(delta('pinflow_rpc_dispatches_total', { rpc: 'metrics.add', outcome: 'ok' }), 2, 'the sum run and the child run');
    assert.equal(delta('pinflow_rpc_dispatches_total', { rpc: 'metrics.gone', outcome: 'rpc_missing' }), 1);
    assert.equal(delta('pinflow_rpc_dispatches_total', { rpc: 'metrics.record', outcome: 'ok' }), 1);
    assert.equal(delta('pinflow_rpc_dispatches_total', { rpc: 'metrics.gone', outcome: 'failed' }), 0);

    // Step attempts of the completed run: flaky's failed attempt, its completed retry, add; the return step.
    const stepCount = (def: keyof typeof defs, stepType: string, status: string) =>
      value(after, 'pinflow_step_duration_seconds_count', { definition: defs[def], step_type: stepType, status });
    assert.equal(stepCount('sum', 'rpc', 'COMPLETED'), 2);
    assert.equal(stepCount('sum', 'rpc', 'FAILED'), 1);
    assert.equal(stepCount('wait', 'wait', 'COMPLETED'), 1, 'the resolved wait is one step');
    assert.equal(stepCount('wait', 'rpc', 'COMPLETED'), 1);
    assert.equal(stepCount('kid', 'rpc', 'COMPLETED'), 1);
    assert.ok(value(after, 'pinflow_step_duration_seconds_bucket', { definition: defs.sum, step_type: 'rpc', status: 'COMPLETED', le: '+Inf' }) === 2);
    assert.ok(value(after, 'pinflow_step_duration_seconds_sum', { definition: defs.sum, step_type: 'rpc', status: 'COMPLETED' }) >= 0);

    assert.equal(delta('pinflow_events_ingested_total', { door: 'http', status: 'routed' }), 1);
    assert.equal(delta('pinflow_events_ingested_total', { door: 'http', status: 'unmatched' }), 1);
    assert.equal(delta('pinflow_events_ingested_total', { door: 'http', status: 'rejected' }), 1);
    assert.equal(delta('pinflow_event_routing_duration_seconds_count', { status: 'routed' }), 1);
    assert.equal(delta('pinflow_event_routing_duration_seconds_count', { status: 'unmatched' }), 1);

    // Every run wrote its start and its close through the writer (other suites' writers may add more).
    assert.ok(delta('pinflow_projection_write_duration_seconds_count', { kind: 'runStarted', outcome: 'written' }) >= 5);
    assert.ok(delta('pinflow_projection_write_duration_seconds_count', { kind: 'runClosed', outcome: 'written' }) >= 5);
    assert.ok(delta('pinflow_projection_write_duration_seconds_count', { kind: 'stall', outcome: 'written' }) >= 1);

    // The gauges went back down: nothing stalled, nothing waiting.
    assert.equal(value(after, 'pinflow_stalls_open', { reason: 'rpc_missing' }), 0);
    assert.equal(value(after, 'pinflow_waits_open', { event: EVENT }), 0);

    // No run id, event id or correlation key is ever a label.
    const text = await (await fetch(url)).text();
    for (const secret of [done.runId, stalled.runId, waiting.runId, parent.runId, ticket]) assert.ok(!text.includes(secret), `${secret} appears in /metrics`);
    assert.ok(text.includes('# HELP pinflow_reconciler_corrections_total'), 'the reconciler counter is defined');
  });

  it('counts the Redis stream door: a routed message, an unmatched one and an unreadable one', async () => {
    await env.startWorker(workerRpcs);
    const def = uniq('m-wait');
    await env.pinflow.publish(def, waitGraph);
    const stream = uniq('pf-metrics-stream');
    const redis = createClient({ url: REDIS_URL });
    await redis.connect();
    const door = new RedisIngress({ url: REDIS_URL, ingress: env.pinflow.events, stream, group: 'pinflow', consumer: 'metrics', blockMs: 200 });
    try {
      await door.start();
      const ticket = uniq('R');
      const run = await env.pinflow.start({ definition: def, input: { ticket } });
      await eventually(async () => (await env.pinflow.events.listWaits({ runId: run.runId })).length === 1, { what: 'the wait to open' });
      const before = await scrape(url);
      await redis.xAdd(stream, '*', { event: JSON.stringify({ name: EVENT, correlationKey: ticket, payload: {} }) });
      await env.pinflow.result(run.runId);
      await redis.xAdd(stream, '*', { event: JSON.stringify({ name: EVENT, correlationKey: uniq('nobody'), payload: {} }) });
      await redis.xAdd(stream, '*', { event: '{not json' });
      await eventually(async () => (await redis.xLen(`${stream}:dead`)) === 1 && Number((await redis.xPending(stream, 'pinflow')).pending) === 0, { what: 'all three messages handled' });
      const after = await scrape(url);
      const delta = (status: string) => value(after, 'pinflow_events_ingested_total', { door: 'redis', status }) - value(before, 'pinflow_events_ingested_total', { door: 'redis', status });
      assert.deepEqual({ routed: delta('routed'), unmatched: delta('unmatched'), invalid: delta('invalid'), rejected: delta('rejected') }, { routed: 1, unmatched: 1, invalid: 1, rejected: 0 });
      assert.equal(value(after, 'pinflow_events_ingested_total', { door: 'http', status: 'routed' }) - value(before, 'pinflow_events_ingested_total', { door: 'http', status: 'routed' }), 0);
    } finally {
      await door.stop();
      await redis.del([stream, `${stream}:dead`]);
      await redis.quit();
    }
  });

  it('serves /metrics and the Temporal SDK metrics from a standalone worker process', async () => {
    await env.stopWorker();
    const [port, sdkPort] = [await freePort(), await freePort()];
    const worker = spawnWorkerProcess(env, 'rpcs', { PINFLOW_METRICS_PORT: String(port), PINFLOW_SDK_METRICS_ADDRESS: `127.0.0.1:${sdkPort}` });
    children.push(worker);
    const workerUrl = `http://127.0.0.1:${port}/metrics`;
    const before = await eventually(
      async () => {
        if (worker.exitCode !== null) throw new Error(`the worker exited: ${worker.output.join('')}`);
        return scrape(workerUrl);
      },
      { timeoutMs: 60_000, what: `the worker's /metrics (output: ${worker.output.join('')})` },
    );
    const def = uniq('m-plain');
    const version = (await env.pinflow.publish(def, plainSumGraph)).version.slice(0, 12);
    const run = await env.pinflow.start({ definition: def, input: { a: 1, b: 2 } });
    assert.equal(await env.pinflow.result(run.runId), 3);

    const after = await eventually(
      async () => {
        const s = await scrape(workerUrl);
        return value(s, 'pinflow_runs_closed_total', { definition: def, version, status: 'COMPLETED' }) === 1 ? s : undefined;
      },
      { what: 'the close to be counted by the worker process' },
    );
    // A fresh process: its counters are this workload's only.
    assert.equal(value(before, 'pinflow_rpc_dispatches_total', { rpc: 'math.add', outcome: 'ok' }), 0);
    assert.equal(value(after, 'pinflow_rpc_dispatches_total', { rpc: 'math.add', outcome: 'ok' }), 1);
    assert.equal(value(after, 'pinflow_step_duration_seconds_count', { definition: def, step_type: 'rpc', status: 'COMPLETED' }), 1);
    assert.equal(value(after, 'pinflow_runs_started_total', { definition: def, version }), 0, 'runs are started (and counted) by the client, not the worker');
    assert.ok(value(after, 'pinflow_projection_write_duration_seconds_count', { kind: 'runStarted', outcome: 'written' }) >= 1);

    const notFound = await fetch(`http://127.0.0.1:${port}/other`);
    assert.equal(notFound.status, 404);

    // The SDK runtime's own exporter, on its own address.
    const sdk = await eventually(
      async () => {
        const res = await fetch(`http://127.0.0.1:${sdkPort}/metrics`);
        const text = await res.text();
        return res.ok && /^temporal_/m.test(text) ? text : undefined;
      },
      { what: 'the Temporal SDK metrics' },
    );
    assert.match(sdk, /^temporal_\w+/m);

    worker.kill('SIGTERM');
    assert.equal((await exitOf(worker)).code, 0, worker.output.join(''));
  });
});
