import assert from 'node:assert/strict';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { createClient } from 'redis';
import { EventIngress, EventRejectedError } from '../client/events';
import { createApi } from '../client/http';
import { RedisIngress } from '../client/redis-ingress';
import { projectRoot } from '../db/paths';
import { defineRpc } from '../rpc/registry';
import type { InterpreterState } from '../graph/wire';
import { temporal } from '@temporalio/proto';
import { migrateUpdate } from '../workflows/definitions';
import { WAIT_STATUSES } from '../graph/terminology';
import { createEnv, createKey, type Env, eventually, exitOf, temporalAddress, withKey } from './support/harness';

const REDIS_URL = process.env.PINFLOW_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Calls of the step after each wait, per ticket: a run resumed twice would call it twice. */
const calls = new Map<string, number>();
const record = defineRpc('ticket.record', {
  input: z.object({ ticket: z.string(), by: z.string().nullable() }),
  output: z.object({ recorded: z.boolean() }),
  handler: ({ ticket }) => {
    calls.set(ticket, (calls.get(ticket) ?? 0) + 1);
    return { recorded: true };
  },
});
const rpcs = [record];

const waitGraph = (extra: Record<string, unknown> = {}) => ({
  entry: 'closed',
  steps: [
    { id: 'closed', type: 'wait', event: 'ticket.closed', correlationKey: 'input.ticket', timeout: '1h', onTimeout: 'late', saveAs: 'closed', next: 'record', ...extra },
    { id: 'record', type: 'rpc', rpc: 'ticket.record', input: { ticket: 'input.ticket', by: 'vars.closed.payload.by' }, next: 'done' },
    { id: 'done', type: 'return', output: { eventId: 'vars.closed.eventId', by: 'vars.closed.payload.by', key: 'vars.closed.correlationKey' } },
    { id: 'late', type: 'return', output: { timedOut: true } },
  ],
});

/** The text of every marker's details in a history: patch markers carry their id there. */
const markerTexts = (history: Awaited<ReturnType<ReturnType<Env['client']['workflow']['getHandle']>['fetchHistory']>>): string[] =>
  (history.events ?? []).flatMap((e) =>
    Object.values(e.markerRecordedEventAttributes?.details ?? {}).flatMap((d) => (d.payloads ?? []).map((p) => Buffer.from(p.data ?? []).toString('utf8'))),
  );

let seq = 0;
const uniq = (p: string) => `${p}-${Date.now().toString(36)}-${++seq}`;

describe('events: waits resumed through the correlation index', function () {
  this.timeout(120_000);
  let env: Env;
  let api: FastifyInstance;

  before(async () => {
    env = await createEnv('events', rpcs, { correlationRules: { 'order.paid': 'payload.order.id' } });
    await env.startWorker(rpcs);
    api = withKey(createApi({ pinflow: env.pinflow }), await createKey(env));
    await env.pinflow.publish('ticket-wait', waitGraph());
    await env.pinflow.publish('ticket-wait-filtered', waitGraph({ match: "event.payload.resolution = 'fixed'" }));
    await env.pinflow.publish('ticket-wait-short', waitGraph({ timeout: '1s' }));
  });
  after(async () => {
    await api?.close();
    await env?.stop();
  });

  /** Start a run and return once its wait is in the correlation index. */
  async function startWaiting(definition: string, ticket: string, tenant = 'default'): Promise<string> {
    const { runId } = await env.pinflow.start({ definition, input: { ticket }, tenant });
    await eventually(async () => (await env.pinflow.events.listWaits({ runId })).length === 1, { what: `the wait of ${runId} to open` });
    return runId;
  }

  it('the library door resumes a wait; the projection shows the wait opened, then resolved with the event id', async () => {
    const ticket = uniq('T');
    const runId = await startWaiting('ticket-wait', ticket);
    const [open] = await env.pinflow.events.listWaits({ event: 'ticket.closed', correlationKey: ticket });
    assert.equal(open!.runId, runId);
    assert.equal(open!.status, 'OPEN');
    assert.equal(open!.stepInstance, 'closed');
    assert.ok(open!.timeoutAt, 'the timeout is in the index');
    const running = await env.pinflow.getRun(runId);
    assert.equal(running.steps.find((s) => s.stepId === 'closed')?.status, 'RUNNING', 'the wait step shows as running while it waits');

    const outcome = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: { by: 'ann' }, eventId: uniq('evt') });
    assert.equal(outcome.status, 'ROUTED');
    assert.equal(outcome.keySource, 'explicit');
    assert.equal(outcome.source, 'library');
    assert.deepEqual(outcome.runIds, [runId]);
    assert.equal(outcome.duplicate, false);

    assert.deepEqual(await env.pinflow.result(runId), { eventId: outcome.eventId, by: 'ann', key: ticket });
    const detail = await eventually(async () => {
      const r = await env.pinflow.getRun(runId);
      return r.status === 'COMPLETED' ? r : undefined;
    });
    assert.deepEqual(
      detail.waits.map((w) => [w.stepInstance, w.status, w.resolvedEventId, w.correlationKey]),
      [['closed', 'RESOLVED', outcome.eventId, ticket]],
      'the run detail lists its waits',
    );
    const step = detail.steps.find((s) => s.stepId === 'closed')!;
    assert.equal(step.status, 'COMPLETED');
    assert.equal((step.output as { eventId: string }).eventId, outcome.eventId);
    assert.deepEqual((step.input as { correlationKey: string }).correlationKey, ticket);
    const [resolved] = await env.pinflow.events.listWaits({ runId, status: 'RESOLVED' });
    assert.equal(resolved!.resolvedEventId, outcome.eventId);
    assert.equal((await env.pinflow.events.listWaits({ runId })).length, 0, 'no open wait is left in the index');
    const logged = await env.pinflow.events.getEvent('default', outcome.eventId);
    assert.equal(logged.deliveries.length, 1);
    assert.equal(logged.deliveries[0]!.consumed, true);
    assert.equal(logged.deliveries[0]!.via, 'signal');
    assert.equal(calls.get(ticket), 1);
  });

  it('the HTTP door resumes a wait, with the key derived by a rule set through the API', async () => {
    const put = await api.inject({ method: 'PUT', url: '/correlation-rules/ticket.closed', payload: { expression: 'payload.ticket.id', by: 'ops' } });
    assert.equal(put.statusCode, 200, put.body);
    try {
      const ticket = uniq('H');
      const runId = await startWaiting('ticket-wait', ticket);
      const waits = await api.inject({ method: 'GET', url: `/waits?event=ticket.closed&key=${ticket}&tenant=default` });
      assert.deepEqual(
        waits.json<{ waits: Array<{ runId: string }> }>().waits.map((w) => w.runId),
        [runId],
        'GET /waits answers which runs wait on the key',
      );
      const res = await api.inject({ method: 'POST', url: '/events', payload: { name: 'ticket.closed', payload: { ticket: { id: ticket }, by: 'bob' } } });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json<{ eventId: string; status: string; correlationKey: string; keySource: string; source: string; runIds: string[] }>();
      assert.equal(body.status, 'ROUTED');
      assert.equal(body.correlationKey, ticket, 'the resolved key is stored with the event');
      assert.equal(body.keySource, 'rule');
      assert.equal(body.source, 'api');
      assert.deepEqual(body.runIds, [runId]);
      assert.deepEqual(await env.pinflow.result(runId), { eventId: body.eventId, by: 'bob', key: ticket });
      const shown = await api.inject({ method: 'GET', url: `/events/${body.eventId}` });
      assert.equal(shown.statusCode, 200);
      assert.equal(shown.json<{ correlationKey: string }>().correlationKey, ticket);
    } finally {
      const del = await api.inject({ method: 'DELETE', url: '/correlation-rules/ticket.closed' });
      assert.equal(del.statusCode, 204);
    }
  });

  it('a code rule derives keys too, is listed, and cannot be changed through the API', async () => {
    const rules = (await api.inject({ method: 'GET', url: '/correlation-rules' })).json<{ rules: Array<{ eventName: string; source: string }> }>().rules;
    assert.ok(rules.some((r) => r.eventName === 'order.paid' && r.source === 'code'));
    const put = await api.inject({ method: 'PUT', url: '/correlation-rules/order.paid', payload: { expression: 'payload.x', by: 'ops' } });
    assert.equal(put.statusCode, 409);
    assert.equal(put.json<{ error: { code: string } }>().error.code, 'RULE_DEFINED_IN_CODE');
    const outcome = await env.pinflow.submitEvent({ name: 'order.paid', payload: { order: { id: 4711 } } });
    assert.equal(outcome.correlationKey, '4711', 'a numeric key is stored as its string form');
    assert.equal(outcome.keySource, 'rule');
    assert.equal(outcome.status, 'UNMATCHED');
  });

  it('the stream door resumes a wait, and acknowledges only after routing', async () => {
    const stream = uniq('pf-test-stream');
    const redis = createClient({ url: REDIS_URL });
    await redis.connect();
    const door = new RedisIngress({ url: REDIS_URL, ingress: env.pinflow.events, stream, group: 'pinflow', consumer: 'c1', blockMs: 200 });
    try {
      await door.start();
      const ticket = uniq('S');
      const runId = await startWaiting('ticket-wait', ticket);
      const id = await redis.xAdd(stream, '*', { event: JSON.stringify({ name: 'ticket.closed', correlationKey: ticket, payload: { by: 'stream' } }) });
      const out = (await env.pinflow.result(runId)) as { eventId: string; by: string };
      assert.equal(out.by, 'stream');
      assert.equal(out.eventId, `${stream}/${id}`, 'without an eventId the message id is the dedup id');
      const logged = await env.pinflow.events.getEvent('default', out.eventId);
      assert.equal(logged.source, 'stream');
      await eventually(async () => Number((await redis.xPending(stream, 'pinflow')).pending) === 0, { what: 'the message to be acknowledged' });

      // A malformed message goes to the dead-letter stream with its error, and is acknowledged.
      await redis.xAdd(stream, '*', { event: '{not json' });
      await eventually(async () => (await redis.xLen(`${stream}:dead`)) === 1, { what: 'the dead letter' });
      const [dead] = (await redis.xRange(`${stream}:dead`, "-", "+")) ?? [];
      assert.equal(dead!.message.code, 'EVENT_INVALID', JSON.stringify(dead));
    } finally {
      await door.stop();
      await redis.del([stream, `${stream}:dead`]);
      await redis.quit();
    }
  });

  it('a stream consumer killed mid-batch: its messages are redelivered, and no run is resumed twice', async () => {
    const stream = uniq('pf-test-crash');
    const redis = createClient({ url: REDIS_URL });
    await redis.connect();
    const tickets = Array.from({ length: 10 }, () => uniq('C'));
    const runIds = await Promise.all(tickets.map((t) => startWaiting('ticket-wait', t)));
    // The group exists before the messages, so the first consumer reads them all in one batch.
    await redis.sendCommand(['XGROUP', 'CREATE', stream, 'pinflow', '0', 'MKSTREAM']);
    for (const t of tickets) await redis.xAdd(stream, '*', { name: 'ticket.closed', correlationKey: t, payload: JSON.stringify({ by: 'stream' }) });
    const child = spawn(process.execPath, [join(projectRoot(), 'dist', 'test', 'fixtures', 'stream-consumer.js')], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: temporalAddress(),
        TEMPORAL_NAMESPACE: env.namespace,
        DATABASE_URL: env.databaseUrl,
        REDIS_URL,
        PINFLOW_EVENTS_STREAM: stream,
        CONSUMER: 'doomed',
        ACK_DELAY_MS: '400',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const routed: string[] = [];
    child.stdout.on('data', (d: Buffer) => routed.push(...d.toString().split('\n').filter((l) => l.startsWith('routed '))));
    let survivor: RedisIngress | undefined;
    try {
      await eventually(() => Promise.resolve(routed.length >= 3), { what: 'the doomed consumer to route 3 messages', timeoutMs: 30_000 });
      child.kill('SIGKILL');
      await exitOf(child);
      const pending = await redis.xPending(stream, 'pinflow');
      assert.ok(Number(pending.pending) >= 8, `the killed consumer left its batch pending (${pending.pending})`);

      survivor = new RedisIngress({ url: REDIS_URL, ingress: env.pinflow.events, stream, consumer: 'survivor', blockMs: 200, claimIdleMs: 500 });
      await survivor.start();
      const outputs = await Promise.all(runIds.map((id) => env.pinflow.result(id)));
      for (const o of outputs) assert.equal((o as { by: string }).by, 'stream');
      await eventually(async () => Number((await redis.xPending(stream, 'pinflow')).pending) === 0, { what: 'every message acknowledged' });
      for (const t of tickets) assert.equal(calls.get(t), 1, `ticket ${t} resumed exactly once`);
      for (const id of runIds) {
        const history = await env.client.workflow.getHandle(id).fetchHistory();
        const signals = (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes).length;
        assert.equal(signals, 1, `run ${id} was signalled once although messages were redelivered`);
      }
      const logged = await env.pinflow.events.listEvents({ name: 'ticket.closed' }, { limit: 500 });
      assert.equal(logged.events.filter((e) => e.eventId.startsWith(`${stream}/`)).length, 10, 'one event per message, redelivery made no second one');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await survivor?.stop();
      await redis.del(stream);
      await redis.quit();
    }
  });

  it('takes the timeout edge when no event arrives; the projection shows the wait timed out', async () => {
    const ticket = uniq('O');
    const { runId } = await env.pinflow.start({ definition: 'ticket-wait-short', input: { ticket } });
    assert.deepEqual(await env.pinflow.result(runId), { timedOut: true });
    const [timedOut] = await eventually(async () => {
      const w = await env.pinflow.events.listWaits({ runId, status: 'TIMED_OUT' });
      return w.length ? w : undefined;
    });
    assert.equal(timedOut!.resolvedEventId, null);
    const detail = await env.pinflow.getRun(runId);
    assert.deepEqual(detail.steps.find((s) => s.stepId === 'closed')?.output, { timedOut: true });
    // An event after the run closed reaches nothing.
    const late = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket });
    assert.equal(late.status, 'UNMATCHED');
  });

  it('fails a wait whose correlation key is over the limit, non-retryably: no index row, no openWait retried forever', async () => {
    const key = 'K'.repeat(600);
    const started = Date.now();
    const { runId } = await env.pinflow.start({ definition: 'ticket-wait', input: { ticket: key } });
    const err = await env.pinflow.result(runId).then(
      () => assert.fail('the run should fail'),
      (e: unknown) => e,
    );
    assert.ok(Date.now() - started < 30_000, 'the run fails promptly');
    assert.ok(err instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${String(err)}`);
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, 'WaitKeyInvalid');
    assert.equal(err.cause.nonRetryable, true);
    assert.equal(err.cause.message, 'step "closed": correlation key is 600 characters long, over the limit of 512');
    for (const status of WAIT_STATUSES) assert.deepEqual(await env.pinflow.events.listWaits({ runId, status }), [], `no ${status} run_waits row`);
    const history = await env.client.workflow.getHandle(runId).fetchHistory();
    const activities = (history.events ?? []).flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name] : []));
    assert.ok(!activities.includes('openWait'), `openWait was never scheduled (activities: ${activities.join(', ')})`);
    // Since 0.7.0 the behaviour is decided by the run's start marker (since 0.9.0 one, flag 16); the 0.5.0 marker path is in the replay corpus.
    assert.ok(markerTexts(history).some((m) => m.includes('pinflow-16-flags-at-start-0.9')), 'the new behaviour is behind the start marker');
    assert.ok(!markerTexts(history).some((m) => m.includes('pinflow-5-correlation-key-rule')), 'and no marker of its own');
    const detail = await eventually(async () => {
      const r = await env.pinflow.getRun(runId);
      return r.status === 'FAILED' ? r : undefined;
    });
    assert.equal(detail.steps.find((s) => s.stepId === 'closed')?.status, 'FAILED');
  });

  it('a wait whose key is exactly at the limit opens and resumes, and records no new patch marker', async () => {
    const key = `${uniq('L')}-`.padEnd(512, 'x');
    const runId = await startWaiting('ticket-wait', key);
    const outcome = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: key, payload: { by: 'limit' } });
    assert.deepEqual(outcome.runIds, [runId]);
    assert.deepEqual(await env.pinflow.result(runId), { eventId: outcome.eventId, by: 'limit', key });
    const history = await env.client.workflow.getHandle(runId).fetchHistory();
    const markers = markerTexts(history);
    assert.ok(markers.some((m) => m.includes('pinflow-16-flags-at-start-0.9')), `the patch markers are readable (${markers.join(' | ')})`);
    assert.ok(!markers.some((m) => m.includes('pinflow-3-event-waits')), 'the wait asks no patched() of its own since flag 9');
    assert.ok(!markers.some((m) => m.includes('pinflow-5-correlation-key-rule')), 'no pinflow-5 marker in an ordinary run');
  });

  it('ignores an event the match filter rejects and keeps waiting; the state query says why', async () => {
    const ticket = uniq('F');
    const runId = await startWaiting('ticket-wait-filtered', ticket);
    const wontfix = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: { resolution: 'wontfix', by: 'x' } });
    assert.equal(wontfix.status, 'ROUTED', 'routing hands it to the run; the run decides');
    const state = await eventually(async () => {
      const s: InterpreterState = await env.pinflow.state(runId);
      return s.waits?.[0]?.ignored.length ? s : undefined;
    });
    assert.deepEqual(state.waits![0]!.ignored, [{ eventId: wontfix.eventId, reason: 'the match filter is false' }]);
    assert.equal(state.status, 'RUNNING');
    assert.equal((await env.pinflow.events.listWaits({ runId })).length, 1, 'still waiting');
    assert.equal((await env.pinflow.events.getEvent('default', wontfix.eventId)).deliveries[0]!.consumed, false);

    const fixed = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: { resolution: 'fixed', by: 'y' } });
    assert.deepEqual(await env.pinflow.result(runId), { eventId: fixed.eventId, by: 'y', key: ticket });
  });

  it('the mailbox: an event that arrives after the run decided to wait but before the wait row exists is delivered', async () => {
    const ticket = uniq('R');
    let windowOpen!: () => void;
    const opened = new Promise<void>((r) => (windowOpen = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    await env.startWorker(rpcs, {
      testHooks: {
        beforeOpenWait: async (w) => {
          if (w.correlationKey !== ticket) return;
          windowOpen();
          await released;
        },
      },
    });
    try {
      const { runId } = await env.pinflow.start({ definition: 'ticket-wait', input: { ticket } });
      await opened;
      assert.equal((await env.pinflow.events.listWaits({ runId })).length, 0, 'no wait row yet: the window is open');
      const early = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: { by: 'early' } });
      assert.equal(early.status, 'UNMATCHED', 'routing found no candidate');
      release();
      assert.deepEqual(await env.pinflow.result(runId), { eventId: early.eventId, by: 'early', key: ticket });
      const logged = await env.pinflow.events.getEvent('default', early.eventId);
      assert.equal(logged.status, 'ROUTED', 'the look-back routed it');
      assert.deepEqual(
        logged.deliveries.map((d) => ({ runId: d.runId, via: d.via, consumed: d.consumed })),
        [{ runId, via: 'lookback', consumed: true }],
      );
    } finally {
      release();
      await env.startWorker(rpcs);
    }
  });

  it('deduplicates by eventId: the same event twice resumes the run once; other content under the same id is refused', async () => {
    const ticket = uniq('D');
    const runId = await startWaiting('ticket-wait', ticket);
    const eventId = uniq('dup');
    const first = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, eventId, payload: { by: 'once' } });
    const second = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, eventId, payload: { by: 'once' } });
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(second.status, first.status);
    assert.deepEqual(second.runIds, first.runIds);
    await env.pinflow.result(runId);
    assert.equal(calls.get(ticket), 1);
    const history = await env.client.workflow.getHandle(runId).fetchHistory();
    const signals = (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes).map((e) => e.workflowExecutionSignaledEventAttributes!.signalName);
    assert.deepEqual(signals, ['pinflow.event'], 'exactly one signal reached the run');

    const res = await api.inject({ method: 'POST', url: '/events', payload: { name: 'ticket.closed', correlationKey: ticket, eventId, payload: { by: 'someone else' } } });
    assert.equal(res.statusCode, 409);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'EVENT_ID_CONFLICT');
  });

  it('fans one event out to 50 runs waiting on the same key', async function () {
    // 50 runs through two activities each: on a busy 2-core machine this takes minutes, not seconds.
    this.timeout(360_000);
    const ticket = uniq('FAN');
    const runIds = await Promise.all(Array.from({ length: 50 }, async () => (await env.pinflow.start({ definition: 'ticket-wait', input: { ticket } })).runId));
    await eventually(async () => (await env.pinflow.events.listWaits({ event: 'ticket.closed', correlationKey: ticket }, 1000)).length === 50, {
      what: '50 open waits',
      timeoutMs: 240_000,
    });
    const outcome = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: { by: 'all' } });
    assert.equal(outcome.status, 'ROUTED');
    assert.deepEqual([...outcome.runIds].sort(), [...runIds].sort());
    const results = await Promise.all(runIds.map((id) => env.pinflow.result(id)));
    for (const r of results) assert.deepEqual(r, { eventId: outcome.eventId, by: 'all', key: ticket });
    assert.equal(calls.get(ticket), 50, 'each run resumed exactly once');
  });

  it("isolates tenants: the same key in two tenants resumes only the submitting tenant's run", async () => {
    const ticket = uniq('TEN');
    const runA = await startWaiting('ticket-wait', ticket, 'acme');
    const runB = await startWaiting('ticket-wait', ticket, 'globex');
    const outcome = await env.pinflow.submitEvent({ tenant: 'acme', name: 'ticket.closed', correlationKey: ticket, payload: { by: 'acme' } });
    assert.deepEqual(outcome.runIds, [runA]);
    assert.deepEqual(await env.pinflow.result(runA), { eventId: outcome.eventId, by: 'acme', key: ticket });
    const b: InterpreterState = await env.pinflow.state(runB);
    assert.equal(b.waits?.length, 1, 'the other tenant still waits');
    assert.equal((await env.pinflow.events.listWaits({ runId: runB })).length, 1);

    // Even a signal forged with the other tenant's event is dropped by the run itself.
    await env.client.workflow.getHandle(runB).signal('pinflow.event', {
      eventId: outcome.eventId,
      tenant: 'acme',
      name: 'ticket.closed',
      correlationKey: ticket,
      payload: { by: 'forged' },
      receivedAt: new Date().toISOString(),
      waitId: 'closed@1',
    });
    const after: InterpreterState = await env.pinflow.state(runB);
    assert.equal(after.waits?.length, 1, 'a foreign-tenant signal does not resume it');
    const own = await env.pinflow.submitEvent({ tenant: 'globex', name: 'ticket.closed', correlationKey: ticket, payload: { by: 'globex' } });
    assert.deepEqual(await env.pinflow.result(runB), { eventId: own.eventId, by: 'globex', key: ticket });
  });

  it('rejects an event with no key and no rule (422, recorded), and every other bad event with its code', async () => {
    const eventId = uniq('nokey');
    const res = await api.inject({ method: 'POST', url: '/events', payload: { name: 'ticket.reopened', eventId, payload: { id: 1 } } });
    assert.equal(res.statusCode, 422, res.body);
    const err = res.json<{ error: { code: string; message: string; details: { recorded: boolean } } }>().error;
    assert.equal(err.code, 'CORRELATION_KEY_MISSING');
    assert.match(err.message, /ticket\.reopened/);
    // The hint names the real route.
    assert.match(err.message, /define a rule \(PUT \/correlation-rules\/ticket\.reopened\)/);
    assert.equal(err.details.recorded, true);
    const logged = await api.inject({ method: 'GET', url: `/events/${eventId}?tenant=default` });
    assert.equal(logged.statusCode, 200);
    assert.equal(logged.json<{ status: string }>().status, 'REJECTED');
    assert.equal(logged.json<{ error: { code: string } }>().error.code, 'CORRELATION_KEY_MISSING');
    const listed = (await api.inject({ method: 'GET', url: '/events?status=REJECTED&name=ticket.reopened' })).json<{ events: Array<{ eventId: string }> }>();
    assert.ok(listed.events.some((e) => e.eventId === eventId));
    // The library door refuses it the same way.
    await assert.rejects(env.pinflow.submitEvent({ name: 'ticket.reopened', payload: {} }), (e: unknown) => e instanceof EventRejectedError && e.code === 'CORRELATION_KEY_MISSING');

    const cases: Array<{ payload: unknown; status: number; code: string; field?: RegExp }> = [
      { payload: { name: 'ticket.closed', correlationKey: '' }, status: 422, code: 'CORRELATION_KEY_INVALID' },
      { payload: { name: 'ticket.closed', correlationKey: 'x'.repeat(600) }, status: 422, code: 'CORRELATION_KEY_INVALID' },
      { payload: { name: 'ticket.closed', correlationKey: { id: 1 } }, status: 400, code: 'REQUEST_INVALID', field: /body\.correlationKey/ },
      { payload: { name: '9 bad name', correlationKey: 'k' }, status: 400, code: 'EVENT_INVALID', field: /name/ },
      { payload: { name: 'ticket.closed', tenant: 'no spaces', correlationKey: 'k' }, status: 400, code: 'EVENT_INVALID', field: /tenant/ },
      { payload: { name: 'ticket.closed', eventId: 'has spaces', correlationKey: 'k' }, status: 400, code: 'EVENT_INVALID', field: /eventId/ },
      { payload: { name: 'ticket.closed', correlationKey: 'k', payload: 'x'.repeat(300 * 1024) }, status: 400, code: 'EVENT_INVALID', field: /payload/ },
      { payload: { correlationKey: 'k' }, status: 400, code: 'REQUEST_INVALID', field: /body\.name/ },
      { payload: { name: 'ticket.closed', correlationKey: 'k', extra: 1 }, status: 400, code: 'REQUEST_INVALID', field: /extra/ },
    ];
    for (const c of cases) {
      const r = await api.inject({ method: 'POST', url: '/events', payload: c.payload as object });
      assert.equal(r.statusCode, c.status, `${JSON.stringify(c.payload).slice(0, 80)} → ${r.body.slice(0, 300)}`);
      const e = r.json<{ error: { code: string; message: string } }>().error;
      assert.equal(e.code, c.code);
      if (c.field) assert.match(e.message, c.field);
    }
    // A rule whose result is not a key rejects the event with CORRELATION_KEY_INVALID.
    await env.pinflow.events.putRule('ticket.moved', 'payload.missing', 'test');
    await assert.rejects(env.pinflow.submitEvent({ name: 'ticket.moved', payload: {} }), (e: unknown) => e instanceof EventRejectedError && e.code === 'CORRELATION_KEY_INVALID');
    // Bad rules and bad queries.
    const badRule = await api.inject({ method: 'PUT', url: '/correlation-rules/ticket.closed', payload: { expression: '$eval("1")', by: 'ops' } });
    assert.equal(badRule.statusCode, 400);
    assert.equal(badRule.json<{ error: { code: string } }>().error.code, 'RULE_INVALID');
    const unparsable = await api.inject({ method: 'PUT', url: '/correlation-rules/ticket.closed', payload: { expression: 'payload.(', by: 'ops' } });
    assert.equal(unparsable.json<{ error: { code: string } }>().error.code, 'RULE_INVALID');
    assert.equal((await api.inject({ method: 'GET', url: '/events/nope-not-here' })).json<{ error: { code: string } }>().error.code, 'EVENT_NOT_FOUND');
    assert.equal((await api.inject({ method: 'GET', url: '/waits?status=SLEEPING' })).statusCode, 400);
    assert.equal((await api.inject({ method: 'GET', url: '/events?cursor=garbage' })).json<{ error: { code: string } }>().error.code, 'CURSOR_INVALID');
    assert.equal((await api.inject({ method: 'DELETE', url: '/correlation-rules/never.set' })).statusCode, 404);
  });

  it('a rejected event can be submitted again once a rule exists', async () => {
    const eventId = uniq('later');
    await assert.rejects(env.pinflow.submitEvent({ name: 'invoice.sent', eventId, payload: { invoice: 'I-1' } }), EventRejectedError);
    await env.pinflow.events.putRule('invoice.sent', 'payload.invoice', 'ops');
    const again = await env.pinflow.submitEvent({ name: 'invoice.sent', eventId, payload: { invoice: 'I-1' } });
    assert.equal(again.status, 'UNMATCHED');
    assert.equal(again.correlationKey, 'I-1');
  });

  it('the sweeper retries a failed delivery; the event is not routed before the delivery succeeded', async () => {
    let failures = 0;
    const ingress = new EventIngress({
      client: env.client,
      db: env.db,
      hooks: {
        beforeSignal: () => (failures++ === 0 ? Promise.reject(new Error('injected: Temporal unreachable')) : Promise.resolve()),
      },
    });
    const ticket = uniq('SW');
    const runId = await startWaiting('ticket-wait', ticket);
    const first = await ingress.submit({ name: 'ticket.closed', correlationKey: ticket, payload: { by: 'retry' } }, { source: 'api' });
    assert.equal(first.status, 'FAILED');
    assert.equal(first.deliveries[0]!.status, 'FAILED');
    assert.match(first.deliveries[0]!.lastError ?? '', /injected/);
    assert.ok(first.nextAttemptAt, 'a retry is scheduled');
    await eventually(
      async () => {
        await ingress.sweep();
        return (await ingress.getEvent('default', first.eventId)).status === 'ROUTED';
      },
      { what: 'the sweeper to deliver', timeoutMs: 10_000 },
    );
    assert.deepEqual(await env.pinflow.result(runId), { eventId: first.eventId, by: 'retry', key: ticket });
    const done = await ingress.getEvent('default', first.eventId);
    assert.equal(done.deliveries[0]!.status, 'DELIVERED');
    assert.equal(done.deliveries[0]!.attempts, 2);
  });

  it('an event buffered when the run moves on (a migration at the wait) is carried into the next execution', async () => {
    const ticket = uniq('CAN');
    const v1 = await env.pinflow.publish('ticket-carry', waitGraph());
    const runId = await startWaiting('ticket-carry', ticket);
    const v2 = await env.pinflow.publish('ticket-carry', { ...waitGraph(), steps: [...waitGraph().steps.slice(0, 2), { id: 'done', type: 'return', output: { v: "'2'", by: 'vars.closed.payload.by' } }, waitGraph().steps[3]] });
    assert.notEqual(v1.version, v2.version);
    const firstExecution = (await env.client.workflow.getHandle(runId).describe()).runId;
    // With no worker, the event signal and the migrate update land in the same workflow task. The
    // update is sent as is: the library's pre-check queries the run, which needs a worker.
    const target = await env.pinflow.getVersion(v2.version);
    await env.stopWorker();
    const updateId = `carry-${runId}`;
    const migrating = env.client.workflow
      .getHandle(runId)
      .executeUpdate(migrateUpdate, { updateId, args: [{ targetVersion: target.hash, graph: target.graph, contracts: target.contracts, by: 'ops' }] });
    const outcome = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: { by: 'carried' } });
    assert.equal(outcome.status, 'ROUTED');
    // The update must be admitted by the server before a worker polls, so both land in one task.
    await eventually(
      async () => {
        const polled = await env.client.workflowService.pollWorkflowExecutionUpdate({
          namespace: env.namespace,
          updateRef: { workflowExecution: { workflowId: runId }, updateId },
          waitPolicy: { lifecycleStage: temporal.api.enums.v1.UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED },
        });
        return (polled.stage ?? 0) >= temporal.api.enums.v1.UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED;
      },
      { what: 'the migrate update admitted by the server', timeoutMs: 60_000 },
    );
    await env.startWorker(rpcs);
    await migrating;
    assert.deepEqual(await env.pinflow.result(runId), { v: '2', by: 'carried' });
    assert.equal(calls.get(ticket), 1);
    const [wait] = await env.pinflow.events.listWaits({ runId, status: 'RESOLVED' });
    assert.equal(wait!.resolvedEventId, outcome.eventId, 'the same wait (same id) resolved on the new version');
    // The first execution handed the unconsumed signal over in its continue-as-new input.
    const first = await env.client.workflow.getHandle(runId, firstExecution).fetchHistory();
    const can = (first.events ?? []).find((e) => e.workflowExecutionContinuedAsNewEventAttributes)?.workflowExecutionContinuedAsNewEventAttributes;
    assert.ok(can, 'the run continued as new');
    const input = JSON.parse(Buffer.from(can.input!.payloads![0]!.data!).toString('utf8')) as { resume: { inbox?: Array<{ eventId: string }>; wait?: { waitId: string } } };
    assert.deepEqual(input.resume.inbox?.map((e) => e.eventId), [outcome.eventId]);
    assert.equal(input.resume.wait?.waitId, wait!.waitId);
  });
});
