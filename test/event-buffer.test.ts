/**
 * Issue 11, events: one signal per (event, run, wait) under concurrent
 * duplicates and the sweeper; events buffered with a time to live for waits
 * that open later; a stream door that never blocks on one message, with
 * dead letters and their replay.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createClient } from 'redis';
import { Client as PgClient } from 'pg';
import { EventIngress } from '../client/events';
import { createApi } from '../client/http';
import { RedisIngress } from '../client/redis-ingress';
import { connectPg, type Db } from '../db/connection';
import { projectRoot } from '../db/paths';
import { PinflowError } from '../graph/errors';
import type { InterpreterState } from '../graph/wire';
import { createEnv, createKey, type Env, eventually, exitOf, spawnApiProcess, temporalAddress, withKey } from './support/harness';

const REDIS_URL = process.env.PINFLOW_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const LONG = { timeoutMs: 120_000 };

let seq = 0;
const uniq = (p: string) => `${p}-${Date.now().toString(36)}-${++seq}`;

/** A gate wait the test releases (by sending `gate.open`), then the wait under test. */
const gatedGraph = (extra: Record<string, unknown> = {}) => ({
  entry: 'gate',
  steps: [
    { id: 'gate', type: 'wait', event: 'gate.open', correlationKey: 'input.gate', timeout: '1h', next: 'closed' },
    { id: 'closed', type: 'wait', event: 'ticket.closed', correlationKey: 'input.ticket', timeout: '1h', saveAs: 'closed', next: 'done', ...extra },
    { id: 'done', type: 'return', output: { eventId: 'vars.closed.eventId', by: 'vars.closed.payload.by' } },
  ],
});

type History = Awaited<ReturnType<ReturnType<Env['client']['workflow']['getHandle']>['fetchHistory']>>;

/** `pinflow.event` signals in a history, counted per event id. */
function signalsPerEvent(history: History): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of history.events ?? []) {
    const a = e.workflowExecutionSignaledEventAttributes;
    if (!a || a.signalName !== 'pinflow.event') continue;
    const payload = a.input?.payloads?.[0]?.data;
    const eventId = (JSON.parse(Buffer.from(payload ?? []).toString('utf8')) as { eventId: string }).eventId;
    counts.set(eventId, (counts.get(eventId) ?? 0) + 1);
  }
  return counts;
}

const markerTexts = (history: History): string[] =>
  (history.events ?? []).flatMap((e) =>
    Object.values(e.markerRecordedEventAttributes?.details ?? {}).flatMap((d) => (d.payloads ?? []).map((p) => Buffer.from(p.data ?? []).toString('utf8'))),
  );

describe('events (issue 11): one signal per delivery, buffered events with a ttl, a stream door that never blocks', function () {
  this.timeout(600_000);
  let env: Env;
  let api: FastifyInstance;

  before(async () => {
    env = await createEnv('event-buffer', []);
    await env.startWorker([]);
    api = withKey(createApi({ pinflow: env.pinflow }), await createKey(env));
    await env.pinflow.publish('watch', {
      entry: 'notes',
      steps: [
        { id: 'notes', type: 'wait', event: 'ticket.note', correlationKey: 'input.ticket', match: 'event.payload.last = true', timeout: '1h', saveAs: 'last', next: 'done' },
        { id: 'done', type: 'return', output: { eventId: 'vars.last.eventId' } },
      ],
    });
    await env.pinflow.publish('gated', gatedGraph());
    await env.pinflow.publish('gated-fresh', gatedGraph({ acceptBuffered: false }));
    await env.pinflow.publish('gated-filtered', gatedGraph({ match: "event.payload.by = 'ann'" }));
    await env.pinflow.publish('plain', {
      entry: 'closed',
      steps: [
        { id: 'closed', type: 'wait', event: 'ticket.closed', correlationKey: 'input.ticket', timeout: '1h', saveAs: 'closed', next: 'done' },
        { id: 'done', type: 'return', output: { eventId: 'vars.closed.eventId', by: 'vars.closed.payload.by' } },
      ],
    });
  });
  after(async () => {
    await api?.close();
    await env?.stop();
  });

  async function startWaiting(definition: string, input: Record<string, unknown>): Promise<string> {
    const { runId } = await env.pinflow.start({ definition, input });
    await eventually(async () => (await env.pinflow.events.listWaits({ runId })).length === 1, { ...LONG, what: `the wait of ${runId} to open` });
    return runId;
  }

  /** A gated run waiting at its gate; `release()` sends the gate event. */
  async function gatedRun(definition: string, ticket: string): Promise<{ runId: string; release: () => Promise<unknown> }> {
    const gate = uniq('G');
    const runId = await startWaiting(definition, { ticket, gate });
    return { runId, release: () => env.pinflow.submitEvent({ name: 'gate.open', correlationKey: gate }) };
  }

  /** The run's n-th openWait activity completed (the wait under test looked at the buffer), and nothing else is in flight. */
  async function openWaitDone(runId: string, n: number): Promise<void> {
    await eventually(
      async () => {
        const history = await env.client.workflow.getHandle(runId).fetchHistory();
        const scheduled = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes);
        const opened = scheduled.filter((e) => e.activityTaskScheduledEventAttributes!.activityType?.name === 'openWait').length;
        const completed = (history.events ?? []).filter((e) => e.activityTaskCompletedEventAttributes).length;
        return opened === n && completed === scheduled.length;
      },
      { ...LONG, what: `openWait #${n} of ${runId} to complete` },
    );
  }

  async function stillWaiting(runId: string): Promise<void> {
    const state: InterpreterState = await env.pinflow.state(runId);
    assert.equal(state.status, 'RUNNING');
    assert.equal(state.waits?.length, 1, 'the run still waits');
    assert.equal(state.waits[0]!.event, 'ticket.closed');
  }

  it('5 concurrent submissions (HTTP to an API process, and the library) of each of 50 events, with a sweeper running: one pinflow.event signal per event per run', async function () {
    this.timeout(900_000);
    // The API process runs its own sweeper (every 200 ms); a second ingress
    // in this process sweeps too, and inserts events already due for a sweep.
    const apiProc = await spawnApiProcess(env, 'rpcs', { PINFLOW_EVENT_SWEEP_MS: '200' });
    const lib = new EventIngress({ client: env.client, db: env.db, routingLeaseMs: 0 });
    lib.startSweeper(50);
    try {
      const ticket = uniq('N');
      const runIds: string[] = [];
      for (let i = 0; i < 5; i++) runIds.push(await startWaiting('watch', { ticket }));
      const eventIds = Array.from({ length: 50 }, (_, i) => `${ticket}-e${i}`);
      const submitOnce = async (eventId: string, way: number, last = false): Promise<{ duplicate: boolean; status: string }> => {
        const body = { name: 'ticket.note', correlationKey: ticket, eventId, payload: { last } };
        if (way < 2) {
          const res = await fetch(`${apiProc.url}/events`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${apiProc.key}` }, body: JSON.stringify(body) });
          const text = await res.text();
          assert.ok(res.status === 200 || res.status === 202, `HTTP ${res.status}: ${text}`);
          return JSON.parse(text) as { duplicate: boolean; status: string };
        }
        return way < 4 ? lib.submit(body, { source: 'library' }) : env.pinflow.submitEvent(body);
      };
      for (let b = 0; b < eventIds.length; b += 10) {
        await Promise.all(
          eventIds.slice(b, b + 10).map(async (eventId) => {
            const outcomes = await Promise.all([0, 1, 2, 3, 4].map((way) => submitOnce(eventId, way)));
            assert.equal(outcomes.filter((o) => !o.duplicate).length, 1, `one submission of ${eventId} recorded it, the others were duplicates`);
          }),
        );
      }
      const last = `${ticket}-last`;
      await submitOnce(last, 4, true);
      for (const id of runIds) assert.deepEqual(await env.pinflow.result(id), { eventId: last });
      for (const eventId of [...eventIds, last]) {
        const e = await eventually(async () => {
          const got = await env.pinflow.events.getEvent('default', eventId);
          return got.status === 'ROUTED' ? got : undefined;
        }, { ...LONG, what: `${eventId} settled` });
        assert.equal(e.deliveries.length, 5);
        for (const d of e.deliveries) assert.equal(d.status, 'DELIVERED', `${eventId} → ${d.runId}`);
      }
      for (const id of runIds) {
        const counts = signalsPerEvent(await env.client.workflow.getHandle(id).fetchHistory());
        for (const eventId of [...eventIds, last]) assert.equal(counts.get(eventId), 1, `run ${id}: ${counts.get(eventId) ?? 0} pinflow.event signal(s) for ${eventId}`);
        assert.equal([...counts.values()].reduce((a, b) => a + b, 0), 51, `run ${id}: 51 signals in all`);
      }
    } finally {
      await lib.stopSweeper();
      apiProc.kill('SIGTERM');
      await exitOf(apiProc);
    }
  });

  it('a router killed between claim and signal: the sweeper takes the claim over after the claim timeout, and the run is signalled once', async () => {
    const ticket = uniq('K');
    const runId = await startWaiting('plain', { ticket });
    const eventId = uniq('claimed');
    const child = spawn(process.execPath, [join(projectRoot(), 'dist', 'test', 'fixtures', 'submit-and-die.js')], {
      env: { ...process.env, TEMPORAL_ADDRESS: temporalAddress(), TEMPORAL_NAMESPACE: env.namespace, DATABASE_URL: env.databaseUrl, EVENT_NAME: 'ticket.closed', EVENT_KEY: ticket, EVENT_ID: eventId },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = await exitOf(child);
    assert.equal(exited.signal, 'SIGKILL', 'the router died in its beforeSignal hook');
    const stuck = await env.pinflow.events.getEvent('default', eventId);
    assert.equal(stuck.status, 'RECEIVED');
    assert.deepEqual(stuck.deliveries.map((d) => d.status), ['SENDING'], 'the delivery is held by the dead router');
    const claimOf = async () => {
      const [row] = await env.db.query<{ claimedBy: string; claimedAt: Date }>({
        text: `SELECT claimed_by AS "claimedBy", claimed_at AS "claimedAt" FROM event_deliveries WHERE event_id = $1`,
        values: [eventId],
      });
      return row!;
    };
    const first = await claimOf();
    // A sweeper whose claim timeout is 3 s: it leaves the claim alone until then, and takes it over after.
    const sweeper = new EventIngress({ client: env.client, db: env.db, claimTimeoutMs: 3_000 });
    await eventually(
      async () => {
        await sweeper.sweep();
        return (await env.pinflow.events.getEvent('default', eventId)).status === 'ROUTED';
      },
      { ...LONG, what: 'the sweeper to take the claim over' },
    );
    const taken = await claimOf();
    assert.notEqual(taken.claimedBy, first.claimedBy, 'another router sent it');
    assert.ok(taken.claimedAt.getTime() - first.claimedAt.getTime() >= 3_000, `taken over only after the claim timeout (${taken.claimedAt.getTime() - first.claimedAt.getTime()} ms)`);
    assert.deepEqual(await env.pinflow.result(runId), { eventId, by: 'reclaimed' });
    assert.equal(signalsPerEvent(await env.client.workflow.getHandle(runId).fetchHistory()).get(eventId), 1);
  });

  it('an event with a ttl sent before its run reaches the wait is BUFFERED, and resumes the run once when the wait opens', async () => {
    const ticket = uniq('B');
    const { runId, release } = await gatedRun('gated', ticket);
    const early = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: { by: 'early' }, ttl: '10m' });
    assert.equal(early.status, 'BUFFERED');
    assert.equal(early.ttlMs, 600_000);
    assert.ok(early.expiresAt && Date.parse(early.expiresAt) > Date.now() + 500_000, `expires in about 10 minutes (${early.expiresAt})`);
    assert.deepEqual(early.deliveries, []);
    const listed = await api.inject({ method: 'GET', url: `/events?status=BUFFERED&key=${ticket}` });
    assert.equal(listed.statusCode, 200, listed.body);
    assert.deepEqual(listed.json<{ events: Array<{ eventId: string }> }>().events.map((e) => e.eventId), [early.eventId]);
    // Submitting it again changes nothing.
    const again = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: { by: 'early' }, ttl: '10m', eventId: early.eventId });
    assert.deepEqual([again.status, again.duplicate], ['BUFFERED', true]);

    await release();
    assert.deepEqual(await env.pinflow.result(runId), { eventId: early.eventId, by: 'early' });
    const routed = await env.pinflow.events.getEvent('default', early.eventId);
    assert.equal(routed.status, 'ROUTED');
    const closedWait = await eventually(async () => (await env.pinflow.events.listWaits({ runId, status: 'RESOLVED' })).find((w) => w.event === 'ticket.closed'), LONG);
    assert.deepEqual(
      routed.deliveries.map((d) => ({ runId: d.runId, waitId: d.waitId, via: d.via, status: d.status })),
      [{ runId, waitId: closedWait.waitId, via: 'buffer', status: 'DELIVERED' }],
    );
    assert.equal(closedWait.resolvedEventId, early.eventId);
    const history = await env.client.workflow.getHandle(runId).fetchHistory();
    assert.equal(signalsPerEvent(history).get(early.eventId), undefined, 'a buffered event is consumed, never signalled');
    // Since 0.9.0 a new run's behaviour is decided by its one release marker (flag 16); earlier marker paths are in the replay corpus.
    const markers = markerTexts(history).filter((m) => m.includes('"id":"pinflow-'));
    assert.deepEqual(markers.map((m) => (JSON.parse(m) as { id: string }).id), ['pinflow-16-flags-at-start-0.9'], 'the start marker only (flag 16)');
    const consumes = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'consumeBuffered').length;
    assert.equal(consumes, 1);
  });

  it('without a ttl the same early event is UNMATCHED, and the wait that opens later does not take it', async () => {
    const ticket = uniq('U');
    const { runId, release } = await gatedRun('gated', ticket);
    const early = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: { by: 'early' } });
    assert.equal(early.status, 'UNMATCHED');
    assert.equal(early.expiresAt, null);
    await release();
    await openWaitDone(runId, 2);
    await stillWaiting(runId);
    assert.equal((await env.pinflow.events.getEvent('default', early.eventId)).status, 'UNMATCHED');
    const fresh = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: { by: 'fresh' } });
    assert.deepEqual(await env.pinflow.result(runId), { eventId: fresh.eventId, by: 'fresh' });
    const history = await env.client.workflow.getHandle(runId).fetchHistory();
    assert.ok(!markerTexts(history).some((m) => m.includes('pinflow-8-event-buffer')), 'no buffer marker when nothing was buffered');
  });

  it('two waits opening for the same key: only one consumes the buffered event', async () => {
    const ticket = uniq('T');
    const a = await gatedRun('gated', ticket);
    const b = await gatedRun('gated', ticket);
    const early = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: { by: 'early' }, ttl: 600_000 });
    assert.equal(early.status, 'BUFFERED');
    await Promise.all([a.release(), b.release()]);
    await Promise.all([openWaitDone(a.runId, 2), openWaitDone(b.runId, 2)]);
    const done = await eventually(async () => {
      const d = await env.pinflow.events.getEvent('default', early.eventId);
      return d.deliveries.length > 0 && d.deliveries.every((x) => x.waitStatus === 'RESOLVED') ? d : undefined;
    }, LONG);
    assert.equal(done.status, 'ROUTED');
    assert.equal(done.deliveries.length, 1, 'one delivery: one wait consumed it');
    const winner = done.deliveries[0]!.runId;
    const loser = winner === a.runId ? b.runId : a.runId;
    assert.deepEqual(await env.pinflow.result(winner), { eventId: early.eventId, by: 'early' });
    await eventually(async () => {
      const history = await env.client.workflow.getHandle(loser).fetchHistory();
      const completed = (history.events ?? []).filter((e) => e.activityTaskCompletedEventAttributes).length;
      const scheduled = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes).length;
      return completed === scheduled;
    }, LONG);
    await stillWaiting(loser);
    const next = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: { by: 'next' } });
    assert.deepEqual(next.runIds, [loser]);
    assert.deepEqual(await env.pinflow.result(loser), { eventId: next.eventId, by: 'next' });
  });

  it('an expired event is EXPIRED (the sweeper) and not consumed', async () => {
    const ticket = uniq('X');
    const { runId, release } = await gatedRun('gated', ticket);
    const early = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: { by: 'early' }, ttl: '3s' });
    // EXPIRED already when the machine took over 3 s to route it.
    assert.ok(['BUFFERED', 'EXPIRED'].includes(early.status), early.status);
    await eventually(
      async () => {
        await env.pinflow.events.sweep();
        return (await env.pinflow.events.getEvent('default', early.eventId)).status === 'EXPIRED';
      },
      { ...LONG, what: 'the sweeper to expire it' },
    );
    await release();
    await openWaitDone(runId, 2);
    await stillWaiting(runId);
    const expired = await env.pinflow.events.getEvent('default', early.eventId);
    assert.deepEqual([expired.status, expired.deliveries.length], ['EXPIRED', 0]);
    const fresh = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: { by: 'fresh' } });
    assert.deepEqual(await env.pinflow.result(runId), { eventId: fresh.eventId, by: 'fresh' });
  });

  it('acceptBuffered: false ignores the buffer; a match filter leaves a buffered event it rejects for another wait', async () => {
    const ticket = uniq('F');
    const fresh = await gatedRun('gated-fresh', ticket);
    const early = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: { by: 'bob' }, ttl: '10m' });
    await fresh.release();
    await openWaitDone(fresh.runId, 2);
    await stillWaiting(fresh.runId);
    assert.equal((await env.pinflow.events.getEvent('default', early.eventId)).status, 'BUFFERED', 'still buffered for a wait that accepts it');

    // A filtered wait that rejects it ('bob' is not 'ann') leaves it buffered too, and says why.
    const filtered = await gatedRun('gated-filtered', ticket);
    await filtered.release();
    await openWaitDone(filtered.runId, 2);
    await stillWaiting(filtered.runId);
    const state: InterpreterState = await env.pinflow.state(filtered.runId);
    assert.deepEqual(state.waits![0]!.ignored, [{ eventId: early.eventId, reason: 'buffered: the match filter is false' }]);
    assert.equal((await env.pinflow.events.getEvent('default', early.eventId)).status, 'BUFFERED');

    // A wait that accepts buffered events takes it.
    const plain = await gatedRun('gated', ticket);
    await plain.release();
    assert.deepEqual(await env.pinflow.result(plain.runId), { eventId: early.eventId, by: 'bob' });
    for (const id of [fresh.runId, filtered.runId]) await env.pinflow.cancel(id, { by: 'test' });

    const bad = await api.inject({ method: 'POST', url: '/definitions/bad-accept/versions', payload: gatedGraph({ acceptBuffered: 'no' }) });
    assert.equal(bad.statusCode, 422, bad.body);
    assert.match(bad.body, /acceptBuffered/);
  });

  it('validates ttl (field, received, allowed; capped by the maximum), takes a default ttl from the rule, and refuses NUL and lone surrogates at the library and HTTP doors', async () => {
    for (const ttl of ['soon', 0, -5, 1.5, '30d', 8 * 24 * 3600 * 1000]) {
      await assert.rejects(
        env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: 'k', ttl: ttl as string }),
        (e: unknown) => e instanceof PinflowError && e.code === 'EVENT_INVALID' && (e.details as { field: string }).field === 'ttl' && /at most 604800000 ms \(PINFLOW_EVENT_TTL_MAX\)/.test(e.message),
        `ttl ${JSON.stringify(ttl)}`,
      );
      const res = await api.inject({ method: 'POST', url: '/events', payload: { name: 'ticket.closed', correlationKey: 'k', ttl } });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json<{ error: { code: string } }>().error.code, 'EVENT_INVALID');
    }
    const small = new EventIngress({ client: env.client, db: env.db, ttlMaxMs: 60_000 });
    await assert.rejects(small.submit({ name: 'ticket.closed', correlationKey: 'k', ttl: '2m' }), (e: unknown) => e instanceof PinflowError && /at most 60000 ms/.test(e.message));

    const put = await api.inject({ method: 'PUT', url: '/correlation-rules/ticket.filed', payload: { expression: 'payload.id', by: 'ops', ttl: '5m' } });
    assert.equal(put.statusCode, 200, put.body);
    assert.equal(put.json<{ ttlMs: number }>().ttlMs, 300_000);
    const filed = await env.pinflow.submitEvent({ name: 'ticket.filed', payload: { id: uniq('R') } });
    assert.deepEqual([filed.status, filed.ttlMs], ['BUFFERED', 300_000], 'the rule gives the default ttl');
    const own = await env.pinflow.submitEvent({ name: 'ticket.filed', payload: { id: uniq('R') }, ttl: '1m' });
    assert.equal(own.ttlMs, 60_000, "the event's own ttl wins");
    // The maximum caps a rule's default when it is applied.
    const capped = await small.submit({ name: 'ticket.filed', payload: { id: uniq('R') } });
    assert.equal(capped.ttlMs, 60_000);
    const badRule = await api.inject({ method: 'PUT', url: '/correlation-rules/ticket.filed', payload: { expression: 'payload.id', by: 'ops', ttl: '8d' } });
    assert.equal(badRule.statusCode, 400, badRule.body);
    assert.equal(badRule.json<{ error: { code: string } }>().error.code, 'RULE_INVALID');

    const refused: Array<[Record<string, unknown>, string]> = [
      [{ payload: { note: 'a\u0000b' } }, 'payload.note'],
      [{ correlationKey: 'k\ud800' }, 'correlationKey'],
      [{ payload: { ['x\u0000']: 1 } }, 'payload'],
    ];
    for (const [extra, field] of refused) {
      const event = { name: 'ticket.closed', correlationKey: 'k', ...extra };
      await assert.rejects(
        env.pinflow.submitEvent(event as never),
        (e: unknown) => e instanceof PinflowError && e.code === 'EVENT_INVALID' && (e.details as { field: string }).field === field,
        `library: ${field}`,
      );
      const res = await api.inject({ method: 'POST', url: '/events', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(event) });
      assert.equal(res.statusCode, 400, res.body);
      const err = res.json<{ error: { code: string; message: string } }>().error;
      assert.equal(err.code, 'STRING_INVALID');
      assert.match(err.message, new RegExp(field.split('.')[0]!));
    }
  });

  it('the stream door: a poison message and a message failing transiently do not block the ones behind them, across a consumer restart; the dead letters carry the reason and replay once fixed', async () => {
    const stream = uniq('pf-test-poison');
    const dead = `${stream}:dead`;
    const redis = createClient({ url: REDIS_URL });
    await redis.connect();
    const tickets = Array.from({ length: 4 }, () => uniq('P'));
    const runIds = await Promise.all(tickets.map((ticket) => startWaiting('plain', { ticket })));
    // The transient fault: a transaction holds an uncommitted events row under
    // the stuck message's eventId, so its insert waits on the lock until the
    // door's statement timeout (3 s) cancels it. Every attempt fails the same way.
    const stuckId = uniq('stuck');
    const locker = new PgClient({ connectionString: env.databaseUrl });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query(`INSERT INTO events (tenant, event_id, name, fingerprint, source, status) VALUES ('default', $1, 'ticket.closed', 'x', 'api', 'REJECTED')`, [stuckId]);
    const timeoutUrl = `${env.databaseUrl}${env.databaseUrl.includes('?') ? '&' : '?'}options=${encodeURIComponent('-c statement_timeout=3000')}`;
    await redis.sendCommand(['XGROUP', 'CREATE', stream, 'pinflow', '0', 'MKSTREAM']);
    const poisonId = await redis.xAdd(stream, '*', { name: 'ticket.closed', correlationKey: tickets[0]!, payload: JSON.stringify({ by: 'nul\u0000' }) });
    const stuckMsg = await redis.xAdd(stream, '*', { name: 'ticket.closed', correlationKey: tickets[1]!, eventId: stuckId, payload: JSON.stringify({ by: 'replayed' }) });
    await redis.xAdd(stream, '*', { name: 'ticket.closed', correlationKey: tickets[2]!, payload: JSON.stringify({ by: 'behind-1' }) });
    await redis.xAdd(stream, '*', { name: 'ticket.closed', correlationKey: tickets[3]!, payload: JSON.stringify({ by: 'behind-2' }) });

    const child = spawn(process.execPath, [join(projectRoot(), 'dist', 'test', 'fixtures', 'stream-consumer.js')], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: temporalAddress(),
        TEMPORAL_NAMESPACE: env.namespace,
        DATABASE_URL: timeoutUrl,
        REDIS_URL,
        PINFLOW_EVENTS_STREAM: stream,
        CONSUMER: 'c1',
        ACK_DELAY_MS: '0',
        MAX_ATTEMPTS: '100',
        RETRY_BACKOFF_MS: '200',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    child.stdout.on('data', (d: Buffer) => output.push(d.toString()));
    child.stderr.on('data', (d: Buffer) => output.push(d.toString()));
    let survivor: RedisIngress | undefined;
    let timeoutDb: Db | undefined;
    try {
      // The messages behind the poison and the stuck one flow.
      for (const i of [2, 3]) assert.equal((await env.pinflow.result(runIds[i]!) as { by: string }).by, `behind-${i - 1}`);
      await eventually(async () => (await redis.xLen(dead)) === 1, { ...LONG, what: 'the poison message dead-lettered' });
      const [poison] = (await redis.xRange(dead, '-', '+')) ?? [];
      assert.equal(poison!.message.sourceId, poisonId);
      assert.equal(poison!.message.code, 'EVENT_INVALID');
      assert.match(poison!.message.error ?? '', /payload\.by contains a NUL character/);
      assert.equal(poison!.message.payload, JSON.stringify({ by: 'nul\u0000' }), 'the message is kept verbatim');
      // The stuck one is retried, left pending between attempts.
      await eventually(
        async () => {
          const [p] = (await redis.sendCommand(['XPENDING', stream, 'pinflow', stuckMsg, stuckMsg, '1'])) as unknown as Array<[string, string, number, number]>;
          return p !== undefined && Number(p[3]) >= 2;
        },
        { ...LONG, what: 'the stuck message delivered twice' },
      );
      child.kill('SIGKILL');
      await exitOf(child);

      // Restart (same consumer name): the attempts Redis counted carry over; at 3 it is dead-lettered.
      timeoutDb = connectPg(timeoutUrl);
      survivor = new RedisIngress({
        url: REDIS_URL,
        ingress: new EventIngress({ client: env.client, db: timeoutDb }),
        stream,
        consumer: 'c1',
        blockMs: 200,
        maxAttempts: 3,
        retryBackoffMs: 200,
      });
      await survivor.start();
      await eventually(async () => (await redis.xLen(dead)) === 2, { ...LONG, what: 'the stuck message dead-lettered' });
      await eventually(async () => Number((await redis.xPending(stream, 'pinflow')).pending) === 0, { ...LONG, what: 'every message acknowledged' });
      const letters = (await redis.xRange(dead, '-', '+')) ?? [];
      const stuck = letters.find((l) => l.message.sourceId === stuckMsg)!;
      assert.equal(stuck.message.code, 'ATTEMPTS_EXHAUSTED');
      assert.ok(Number(stuck.message.attempts) >= 3, `attempts counted across the restart (${stuck.message.attempts})`);
      assert.match(stuck.message.error ?? '', /statement timeout/);

      // The CLI lists both; the cause is fixed (the lock released); replaying the stuck one resumes its run.
      const cli = (args: string[]) =>
        spawnSync(process.execPath, [join(projectRoot(), 'dist', 'cli', 'pinflow.js'), 'events', 'dead-letters', ...args], {
          env: { ...process.env, REDIS_URL, PINFLOW_EVENTS_STREAM: stream },
          encoding: 'utf8',
        });
      const listed = cli(['list', '--json']);
      assert.equal(listed.status, 0, listed.stderr);
      assert.deepEqual(
        (JSON.parse(listed.stdout) as Array<{ sourceId: string; code: string }>).map((l) => [l.sourceId, l.code]),
        [
          [poisonId, 'EVENT_INVALID'],
          [stuckMsg, 'ATTEMPTS_EXHAUSTED'],
        ],
      );
      await locker.query('ROLLBACK');
      const replayed = cli(['replay', '--id', stuck.id]);
      assert.equal(replayed.status, 0, replayed.stderr);
      assert.match(replayed.stdout, /1 dead letter\(s\) replayed/);
      assert.deepEqual(await env.pinflow.result(runIds[1]!), { eventId: stuckId, by: 'replayed' });
      assert.equal(await redis.xLen(dead), 1, 'only the poison message is left');
      assert.equal((await env.pinflow.events.getEvent('default', stuckId)).source, 'stream');
      assert.equal(cli(['replay']).status, 64, 'replay needs --id or --all');
      await env.pinflow.cancel(runIds[0]!, { by: 'test' });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await survivor?.stop();
      await timeoutDb?.close();
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
      await redis.del([stream, dead]);
      await redis.quit();
      if (output.some((l) => /Error/.test(l) && !/dead-lettered|failed \(attempt/.test(l))) console.log(output.join(''));
    }
  });
});
