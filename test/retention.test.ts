import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createApi } from '../client/http';
import { Pinflow } from '../client/pinflow';
import { RetentionService, type SweepView } from '../client/retention';
import { projectRoot } from '../db/paths';
import { rpcs } from './fixtures/rpcs';
import { createEnv, createKey, eventually, spawnApiProcess, withKey, type Env } from './support/harness';

// Retention and pruning (issue 17, client/retention.ts), against the real dev server and Postgres.

const OK_GRAPH = {
  entry: 'add',
  steps: [
    { id: 'add', type: 'rpc', rpc: 'math.add', input: { a: 'input.a', b: 2 }, next: 'done' },
    { id: 'done', type: 'return', output: 'steps.add' },
  ],
};
const FAIL_GRAPH = {
  entry: 'add',
  steps: [
    { id: 'add', type: 'rpc', rpc: 'math.add', input: { a: 1, b: 2 }, next: 'boom' },
    { id: 'boom', type: 'rpc', rpc: 'test.boom', input: { why: "'retention test'" }, next: 'done' },
    { id: 'done', type: 'return', output: { ok: true } },
  ],
};
/** Waits for ret.go on its key; an event whose payload.ok is not true is refused (the wait stays open). */
const WAIT_GRAPH = {
  entry: 'w',
  steps: [
    { id: 'w', type: 'wait', event: 'ret.go', correlationKey: 'input.k', match: 'event.payload.ok = true', timeout: '1h', next: 'add' },
    { id: 'add', type: 'rpc', rpc: 'math.add', input: { a: 1, b: 1 }, next: 'done' },
    { id: 'done', type: 'return', output: { ok: true } },
  ],
};

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Every table that holds rows of a run, and the column naming it. */
const RUN_TABLES: Array<[string, string]> = [
  ['runs', 'id'],
  ['run_details', 'run_id'],
  ['run_steps', 'run_id'],
  ['run_waits', 'run_id'],
  ['run_decisions', 'run_id'],
  ['run_origins', 'run_id'],
  ['run_attention', 'run_id'],
  ['event_deliveries', 'run_id'],
];

describe('retention: policies, preview, sweeps, exemptions, the event log and the namespace retention', function () {
  this.timeout(300_000);
  let env: Env;
  let pinflow: Pinflow;
  let api: FastifyInstance;
  let seq = 0;

  async function call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown, key?: string): Promise<{ status: number; json: Json }> {
    const res = await api.inject({ method, url, ...(body !== undefined ? { payload: body as object } : {}), ...(key ? { headers: { authorization: `Bearer ${key}` } } : {}) });
    return { status: res.statusCode, json: res.body ? res.json<Json>() : {} };
  }
  const q = async <T = Json>(text: string, values: unknown[] = []) => env.db.query<T>({ text, values });
  const status = async (id: string) => (await q<{ status: string }>('SELECT status FROM runs WHERE id = $1', [id]))[0]?.status;
  const reaches = (id: string, want: string) => eventually(async () => (await status(id)) === want, { timeoutMs: 90_000, what: `${id} ${want}` });
  const start = async (definition: string, input: Json, metadata: Json = {}) => (await env.pinflow.start({ definition, input, metadata, runId: `ret-${definition}-${++seq}` })).runId;
  const completed = async (metadata: Json = {}) => {
    const id = await start('ret-ok', { a: seq }, metadata);
    await reaches(id, 'COMPLETED');
    return id;
  };
  /** Test setup: the run closed `days` ago in the projection (what makes it due). */
  const backdate = (ids: string[], days: number) => q(`UPDATE runs SET closed_at = now() - make_interval(days => $2) WHERE id = ANY($1::text[])`, [ids, days]);
  const rowsOf = async (id: string) => {
    const out: Record<string, number> = {};
    for (const [t, c] of RUN_TABLES) out[t] = (await q<{ n: number }>(`SELECT count(*)::int AS n FROM ${t} WHERE ${c} = $1`, [id]))[0]!.n;
    return out;
  };
  /** The count tables agree with the rows (the backfill of migration 000013, recomputed). */
  const countsAgree = async () => {
    const runCounts = await q(`
      SELECT * FROM (SELECT version, tenant, status, sum(runs)::int AS n FROM run_counts GROUP BY 1, 2, 3) c WHERE n <> 0
      EXCEPT SELECT version, tenant, status, count(*)::int FROM runs GROUP BY 1, 2, 3`);
    const missing = await q(`
      SELECT version, tenant, status, count(*)::int FROM runs GROUP BY 1, 2, 3
      EXCEPT SELECT * FROM (SELECT version, tenant, status, sum(runs)::int AS n FROM run_counts GROUP BY 1, 2, 3) c WHERE n <> 0`);
    const stepCounts = await q(`
      WITH actual AS (
        SELECT r.version, r.tenant, b.step_id, b.bucket, count(*)::int AS n
        FROM (SELECT DISTINCT run_id, step_id, pinflow_step_bucket(status, step_type, error, notes) AS bucket FROM run_steps
              UNION SELECT DISTINCT run_id, pinflow_step_of(step_instance), 'waiting' FROM run_waits WHERE status = 'OPEN') b
        JOIN runs r ON r.id = b.run_id WHERE b.bucket IS NOT NULL GROUP BY 1, 2, 3, 4
        UNION ALL SELECT version, tenant, pinflow_step_of(stall_step), 'stalled', count(*)::int FROM runs WHERE status = 'STALLED' AND stall_step IS NOT NULL GROUP BY 1, 2, 3, 4),
      counted AS (SELECT version, tenant, step_id, bucket, sum(runs)::int AS n FROM step_counts GROUP BY 1, 2, 3, 4 HAVING sum(runs) <> 0)
      (SELECT * FROM actual EXCEPT SELECT * FROM counted) UNION ALL (SELECT * FROM counted EXCEPT SELECT * FROM actual)`);
    assert.deepEqual({ runCounts, missing, stepCounts }, { runCounts: [], missing: [], stepCounts: [] });
  };
  const sweepDone = (id: string, timeoutMs = 120_000) =>
    eventually(async () => {
      const s = (await call('GET', `/retention/sweeps/${id}`)).json as SweepView;
      return s.state !== 'RUNNING' ? s : undefined;
    }, { timeoutMs, what: `sweep ${id} to finish` });

  before(async () => {
    env = await createEnv('retention', rpcs);
    await env.pinflow.publish('ret-ok', OK_GRAPH);
    await env.pinflow.publish('ret-fail', FAIL_GRAPH);
    await env.pinflow.publish('ret-wait', WAIT_GRAPH);
    await env.startWorker(rpcs);
    pinflow = new Pinflow({ client: env.client, store: env.store, rpcs, retention: { batchSize: 2, pauseMs: 20, leaseMs: 1_500 } });
    api = withKey(createApi({ pinflow }), await createKey(env));
  });
  after(async () => {
    await pinflow?.retention.stop();
    await api?.close();
    await env?.stop();
  });

  it('policies: the defaults, set and unset per definition and status, every bad input refused naming the field; admin only, audited', async () => {
    const initial = (await call('GET', '/retention/policies')).json;
    assert.deepEqual(
      initial.policies.map((p: Json) => [p.subject, p.definition, p.status, p.days]),
      [
        ['runs', null, null, 30],
        ['runs', null, 'FAILED', 90],
        ['events', null, null, 30],
      ],
    );
    const set = await call('PUT', '/retention/policies', { definition: 'ret-ok', status: 'COMPLETED', days: 7, by: 'ops', reason: 'short-lived' });
    assert.equal(set.status, 200, JSON.stringify(set.json));
    assert.deepEqual([set.json.definition, set.json.status, set.json.days, set.json.updatedBy], ['ret-ok', 'COMPLETED', 7, 'ops']);
    // Set again: replaced, not duplicated; null keeps forever.
    assert.equal((await call('PUT', '/retention/policies', { definition: 'ret-ok', status: 'COMPLETED', days: null })).json.days, null);
    assert.equal((await call('GET', '/retention/policies')).json.policies.length, 4);
    const audit = await q<{ action: string; outcome: string; reason: string | null }>(`SELECT action, outcome, reason FROM audit_log WHERE action = 'retention.policy.set' ORDER BY id`);
    assert.deepEqual(audit[0], { action: 'retention.policy.set', outcome: 'accepted', reason: 'short-lived' });

    const refused = async (body: Json, code: string, field: string) => {
      const r = await call('PUT', '/retention/policies', body);
      assert.equal(r.json.error?.code, code, `${JSON.stringify(body)}: ${JSON.stringify(r.json)}`);
      const named = JSON.stringify(r.json.error.details);
      assert.ok(named.includes(field), `${JSON.stringify(body)} names ${field}: ${named}`);
      return r;
    };
    for (const days of [0, -3, 1.5, '30', 36_501]) await refused({ days }, 'REQUEST_INVALID', 'body.days');
    await refused({}, 'REQUEST_INVALID', 'body.days');
    const running = await refused({ status: 'RUNNING', days: 5 }, 'REQUEST_INVALID', 'body.status');
    assert.match(JSON.stringify(running.json.error.details), /COMPLETED.*FAILED.*CANCELLED.*TERMINATED/);
    await refused({ subject: 'events', definition: 'ret-ok', days: 5 }, 'REQUEST_INVALID', 'definition');
    await refused({ subject: 'logs', days: 5 }, 'REQUEST_INVALID', 'body.subject');
    const unknown = await refused({ definition: 'no-such-definition', days: 5 }, 'DEFINITION_NOT_FOUND', 'definition');
    assert.equal(unknown.status, 404);
    // The library door checks the same.
    await assert.rejects(pinflow.retention.setPolicy({ days: 0, by: 'lib' }), (e: Json) => e.code === 'REQUEST_INVALID' && e.details.field === 'days');
    await assert.rejects(pinflow.retention.setPolicy({ status: 'PAUSED' as never, days: 3, by: 'lib' }), (e: Json) => e.code === 'REQUEST_INVALID' && e.details.field === 'status');

    // Unset: a rule goes; the defaults cannot; an unknown rule is 404.
    const unset = await call('DELETE', '/retention/policies?definition=ret-ok&status=COMPLETED&reason=done');
    assert.equal(unset.status, 200, JSON.stringify(unset.json));
    assert.equal((await call('GET', '/retention/policies')).json.policies.length, 3);
    assert.equal((await call('DELETE', '/retention/policies?definition=ret-ok')).json.error.code, 'RETENTION_POLICY_NOT_FOUND');
    assert.equal((await call('DELETE', '/retention/policies')).json.error.code, 'RETENTION_DEFAULT_REQUIRED');
    assert.equal((await call('DELETE', '/retention/policies?subject=events')).json.error.code, 'RETENTION_DEFAULT_REQUIRED');
    assert.equal((await call('DELETE', '/retention/policies?status=OPEN')).json.error.code, 'REQUEST_INVALID');

    // Scopes: reading needs read; writing needs admin (an operate key, or a tenant key, is refused).
    const read = await createKey(env, { scopes: ['read'] });
    const operate = await createKey(env, { scopes: ['operate'] });
    assert.equal((await call('GET', '/retention/policies', undefined, read)).status, 200);
    const denied = await call('PUT', '/retention/policies', { days: 3 }, operate);
    assert.equal(denied.status, 403);
    assert.equal(denied.json.error.details.needed, 'admin');
    assert.equal((await call('POST', '/retention/sweeps', {}, read)).json.error.code, 'FORBIDDEN');
    assert.equal((await call('POST', '/retention/namespace', {}, operate)).json.error.code, 'FORBIDDEN');
    const tenantKey = await createKey(env, { scopes: ['read'], tenant: 'acme' });
    assert.equal((await call('GET', '/retention/preview', undefined, tenantKey)).status, 403, 'the preview counts runs of every tenant');
    const deniedRows = await q<{ n: number }>(`SELECT count(*)::int AS n FROM audit_log WHERE action IN ('retention.policy.set', 'retention.sweep.start', 'retention.namespace.apply') AND outcome = 'denied'`);
    assert.equal(deniedRows[0]!.n, 3);
  });

  it('the preview counts what is due per definition and status with its exemptions; the sweep deletes exactly the rest, every row of it, and the counts follow', async () => {
    // Due (closed 40 days ago, past 30): two completed, one cancelled, one that took an event; and the exempt ones.
    const okA = await completed();
    const okB = await completed();
    const cancelled = await start('ret-wait', { k: `c-${seq}` });
    await reaches(cancelled, 'RUNNING');
    await eventually(async () => (await q('SELECT 1 FROM run_waits WHERE run_id = $1 AND status = $2', [cancelled, 'OPEN'])).length > 0, { what: 'the wait to open' });
    await env.pinflow.cancel(cancelled, { by: 'test', reason: 'cancelled for retention' });
    await reaches(cancelled, 'CANCELLED');
    const deliveredKey = `d-${seq}`;
    const delivered = await start('ret-wait', { k: deliveredKey });
    await eventually(async () => (await q('SELECT 1 FROM run_waits WHERE run_id = $1 AND status = $2', [delivered, 'OPEN'])).length > 0, { what: 'the wait to open' });
    await env.pinflow.submitEvent({ name: 'ret.go', correlationKey: deliveredKey, payload: { ok: true } });
    await reaches(delivered, 'COMPLETED');
    const retained = await completed({ retain: true });
    const retainedText = await completed({ retain: 'true' });
    const held = await completed();
    const parent = await completed();
    // An open child of `parent` (the link is the projection's parent_run_id; set here as test setup).
    const child = await start('ret-wait', { k: `child-${seq}` });
    await reaches(child, 'RUNNING');
    await q('UPDATE runs SET parent_run_id = $1, parent_step = $2 WHERE id = $3', [parent, 'spawn', child]);
    // FAILED keeps 90 days: one at 100 (due), one at 60 (not due).
    const failOld = await start('ret-fail', {});
    const failYoung = await start('ret-fail', {});
    await reaches(failOld, 'FAILED');
    await reaches(failYoung, 'FAILED');
    const young = await completed();
    // Rows of the due runs in tables without a foreign key (test setup: an origin and a cleared attention flag).
    await q(`INSERT INTO run_origins (run_id, source_run_id, kind, source_version, by) SELECT $1, $2, 'replay', version, 'test' FROM runs WHERE id = $1`, [okA, young]);
    await q(`INSERT INTO run_attention (run_id, reason, cleared_at) VALUES ($1, 'NO_PROGRESS', now())`, [okA]);
    await backdate([okA, okB, cancelled, delivered, retained, retainedText, held, parent], 40);
    await backdate([failOld], 100);
    await backdate([failYoung], 60);
    await backdate([young], 10);
    const hold = await call('PUT', `/runs/${held}/legal-hold`, { by: 'legal', reason: 'litigation 2026-17' });
    assert.equal(hold.status, 200, JSON.stringify(hold.json));
    assert.equal((await call('GET', `/runs/${held}`)).json.legalHold.reason, 'litigation 2026-17');
    assert.equal((await call('GET', `/runs/${okA}`)).json.legalHold, null);

    const due = [okA, okB, cancelled, delivered, failOld];
    const exempt = [retained, retainedText, held, parent];
    const kept = [...exempt, failYoung, young, child];
    const before: Record<string, Record<string, number>> = {};
    for (const id of [...due, ...kept]) before[id] = await rowsOf(id);
    assert.ok(before[delivered]!.event_deliveries! > 0 && before[cancelled]!.run_decisions! > 0 && before[okA]!.run_origins === 1 && before[okA]!.run_attention === 1, JSON.stringify(before));
    await countsAgree();

    const preview = (await call('GET', '/retention/preview')).json;
    assert.equal(preview.runs.due, 9, JSON.stringify(preview));
    assert.deepEqual(preview.runs.exempt, { legalHold: 1, openChildren: 1, retain: 2 });
    assert.equal(preview.runs.prunable, 5);
    const group = (d: string, st: string) => preview.runs.groups.find((g: Json) => g.definition === d && g.status === st);
    assert.deepEqual([group('ret-ok', 'COMPLETED').due, group('ret-ok', 'COMPLETED').exempt], [6, 4]);
    assert.equal(group('ret-fail', 'FAILED').due, 1, 'FAILED at 60 days is kept (90)');
    assert.equal(group('ret-wait', 'CANCELLED').due, 1);
    assert.ok(Date.parse(group('ret-fail', 'FAILED').oldestClosedAt) < Date.now() - 99 * 86_400_000);
    // The preview changed nothing.
    assert.equal((await q('SELECT 1 FROM runs WHERE id = ANY($1::text[])', [due])).length, due.length);

    const started = await call('POST', '/retention/sweeps', { by: 'ops', reason: 'monthly', batchSize: 2, pauseMs: 0 });
    assert.equal(started.status, 202, JSON.stringify(started.json));
    const done = await sweepDone(started.json.id);
    assert.equal(done.state, 'DONE', JSON.stringify(done));
    assert.equal(done.progress.runsDeleted, 5);
    assert.deepEqual(done.progress.exempt, { legalHold: 1, openChildren: 1, retain: 2 });
    assert.equal(done.progress.stepsDeleted, due.reduce((s, id) => s + before[id]!.run_steps!, 0));
    assert.ok(done.progress.batches >= 5, `batches of 2: ${done.progress.batches}`);
    for (const id of due) assert.deepEqual(await rowsOf(id), Object.fromEntries(RUN_TABLES.map(([t]) => [t, 0])), `${id}: every row deleted`);
    for (const id of kept) assert.deepEqual(await rowsOf(id), before[id], `${id}: kept with every row`);
    await countsAgree();
    // The audit row names the sweep; the list shows it.
    const audit = await q<{ target_ids: string[]; by: string; reason: string }>(`SELECT target_ids, by, reason FROM audit_log WHERE action = 'retention.sweep.start' AND outcome = 'accepted'`);
    assert.deepEqual(audit, [{ target_ids: [done.id], by: 'ops', reason: 'monthly' }]);
    assert.equal((await call('GET', '/retention/sweeps')).json.sweeps[0].id, done.id);
    assert.equal((await call('GET', '/retention/sweeps/no-such-sweep')).json.error.code, 'RETENTION_SWEEP_NOT_FOUND');
    // Nothing is due now but the exempt runs.
    assert.equal((await call('GET', '/retention/preview')).json.runs.prunable, 0);
    // Released, the held run goes with the next sweep.
    const released = await call('DELETE', `/runs/${held}/legal-hold?reason=case%20closed&by=legal`);
    assert.equal(released.json.released.reason, 'litigation 2026-17');
    const next = await sweepDone((await call('POST', '/retention/sweeps', { pauseMs: 0 })).json.id);
    assert.equal(next.progress.runsDeleted, 1);
    assert.equal(await status(held), undefined);
    await countsAgree();
  });

  it('legal holds: operate scope, a reason, the run\'s tenant, audited', async () => {
    const id = await completed();
    const read = await createKey(env, { scopes: ['read'] });
    const operate = await createKey(env, { scopes: ['operate'] });
    const otherTenant = await createKey(env, { scopes: ['operate'], tenant: 'acme' });
    assert.equal((await call('PUT', `/runs/${id}/legal-hold`, { reason: 'x' }, read)).status, 403);
    assert.equal((await call('PUT', `/runs/${id}/legal-hold`, { reason: 'x' }, otherTenant)).json.error.code, 'RUN_NOT_FOUND');
    const noReason = await call('PUT', `/runs/${id}/legal-hold`, { by: 'legal' }, operate);
    assert.equal(noReason.json.error.code, 'REASON_REQUIRED');
    assert.equal(noReason.json.error.details.field, 'body.reason');
    assert.equal((await call('PUT', `/runs/${id}/legal-hold`, { reason: '   ' }, operate)).json.error.code, 'REASON_REQUIRED');
    assert.equal((await call('PUT', '/runs/no-such-run/legal-hold', { reason: 'x' }, operate)).json.error.code, 'RUN_NOT_FOUND');
    assert.equal((await call('PUT', `/runs/${id}/legal-hold`, { reason: 'audit 7' }, operate)).status, 200);
    assert.equal((await call('DELETE', `/runs/${id}/legal-hold`, undefined, operate)).json.error.code, 'REASON_REQUIRED');
    const cleared = await call('DELETE', `/runs/${id}/legal-hold?reason=over`, undefined, operate);
    assert.equal(cleared.status, 200);
    assert.equal((await call('DELETE', `/runs/${id}/legal-hold?reason=again`, undefined, operate)).json.released, null);
    const rows = await q<{ action: string; outcome: string; run_ids: string[] }>(`SELECT action, outcome, run_ids FROM audit_log WHERE action LIKE 'run.legal-hold.%' AND $1 = ANY(run_ids) ORDER BY id`, [id]);
    assert.deepEqual(
      rows.map((r) => `${r.action} ${r.outcome}`),
      // read key: denied; another tenant's key: 404, refused; no reason, a blank one: refused
      ['run.legal-hold.set denied', 'run.legal-hold.set refused', 'run.legal-hold.set refused', 'run.legal-hold.set refused', 'run.legal-hold.set accepted', 'run.legal-hold.clear refused', 'run.legal-hold.clear accepted', 'run.legal-hold.clear accepted'],
    );
  });

  it('a sweep whose process stopped is continued by the next tick of another, to the same final state; one sweep at a time', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await completed());
    await backdate(ids, 45);
    const a = new RetentionService({ db: env.db, catalog: pinflow.catalog, connection: env.client.connection, namespace: env.namespace, batchSize: 1, pauseMs: 400, leaseMs: 1_000 });
    const s = await a.startSweep({ by: 'a' });
    await eventually(async () => (await a.sweep(s.id)).progress.runsDeleted >= 1, { what: 'the first batch' });
    const second = await call('POST', '/retention/sweeps', {});
    assert.equal(second.status, 409);
    assert.equal(second.json.error.code, 'RETENTION_SWEEP_RUNNING');
    assert.equal(second.json.error.details.sweepId, s.id);
    await a.stop({ release: false }); // as if its process died: the sweep stays RUNNING with its lease
    const stopped = await a.sweep(s.id);
    assert.equal(stopped.state, 'RUNNING');
    assert.ok(stopped.progress.runsDeleted < 6, JSON.stringify(stopped.progress));
    const b = new RetentionService({ db: env.db, catalog: pinflow.catalog, connection: env.client.connection, namespace: env.namespace, pauseMs: 0, leaseMs: 1_000 });
    try {
      const finished = await eventually(async () => b.tick(), { what: 'the next tick to take the sweep over' });
      assert.equal(finished.id, s.id);
      assert.equal(finished.state, 'DONE');
      assert.equal(finished.progress.runsDeleted, 6);
      assert.equal((await q('SELECT 1 FROM runs WHERE id = ANY($1::text[])', [ids])).length, 0);
      await countsAgree();
      // With nothing due, a tick starts no sweep.
      const count = (await a.sweeps(500)).length;
      assert.equal(await b.tick(), undefined);
      assert.equal((await a.sweeps(500)).length, count);
      // A process that stops gracefully (a deploy) hands its lease back: the next tick continues at once, however long the lease.
      const more = [await completed(), await completed(), await completed()];
      await backdate(more, 45);
      const c = new RetentionService({ db: env.db, catalog: pinflow.catalog, connection: env.client.connection, namespace: env.namespace, batchSize: 1, pauseMs: 400, leaseMs: 600_000 });
      const s2 = await c.startSweep({ by: 'c' });
      await eventually(async () => (await c.sweep(s2.id)).progress.runsDeleted >= 1, { what: 'the first batch' });
      await c.stop();
      assert.equal((await c.sweep(s2.id)).state, 'RUNNING');
      const handedOver = await b.tick();
      assert.equal(handedOver?.id, s2.id);
      assert.equal(handedOver.state, 'DONE');
      assert.equal(handedOver.progress.runsDeleted, 3);
    } finally {
      await b.stop();
    }
  });

  it('the event log: old events and their deliveries go, except buffered ones, ones still routing, and ones an open wait could look back to', async () => {
    const key = `ev-${seq}`;
    // An open wait on `key` (it refuses payload.ok false, so it stays open); it reached the wait 50 days ago (test setup).
    const waiting = await start('ret-wait', { k: key });
    await eventually(async () => (await q('SELECT 1 FROM run_waits WHERE run_id = $1 AND status = $2', [waiting, 'OPEN'])).length > 0, { what: 'the wait to open' });
    const lookback = await env.pinflow.submitEvent({ name: 'ret.go', correlationKey: key, payload: { ok: false }, eventId: `lb-${seq}` });
    const unmatched = await env.pinflow.submitEvent({ name: 'ret.go', correlationKey: `nobody-${seq}`, payload: {}, eventId: `um-${seq}` });
    const buffered = await env.pinflow.submitEvent({ name: 'ret.go', correlationKey: `later-${seq}`, payload: {}, eventId: `bf-${seq}`, ttl: '1h' });
    const young = await env.pinflow.submitEvent({ name: 'ret.go', correlationKey: `young-${seq}`, payload: {}, eventId: `yg-${seq}` });
    // An event that resumed a run (a delivery row), for a run that is itself kept.
    const doneKey = `done-${seq}`;
    const resumed = await start('ret-wait', { k: doneKey });
    await eventually(async () => (await q('SELECT 1 FROM run_waits WHERE run_id = $1 AND status = $2', [resumed, 'OPEN'])).length > 0, { what: 'the wait to open' });
    const deliveredEv = await env.pinflow.submitEvent({ name: 'ret.go', correlationKey: doneKey, payload: { ok: true }, eventId: `dl-${seq}` });
    await reaches(resumed, 'COMPLETED');
    await eventually(async () => (await q(`SELECT status FROM events WHERE event_id = $1`, [lookback.eventId]))[0]?.status !== 'RECEIVED', { what: 'the look-back event routed' });
    assert.equal((await q(`SELECT status FROM events WHERE event_id = $1`, [buffered.eventId]))[0]?.status, 'BUFFERED');
    const old = [lookback.eventId, unmatched.eventId, buffered.eventId, deliveredEv.eventId];
    await q(`UPDATE events SET received_at = now() - interval '40 days' WHERE event_id = ANY($1::text[])`, [old]);
    await q(`UPDATE run_waits SET reached_at = now() - interval '50 days' WHERE run_id = $1`, [waiting]);
    const deliveries = (await q<{ n: number }>(`SELECT count(*)::int AS n FROM event_deliveries WHERE event_id = $1`, [deliveredEv.eventId]))[0]!.n;
    assert.ok(deliveries > 0);

    const preview = (await call('GET', '/retention/preview')).json;
    assert.deepEqual([preview.events.due, preview.events.exempt], [4, 2], JSON.stringify(preview.events));
    const done = await sweepDone((await call('POST', '/retention/sweeps', { pauseMs: 0 })).json.id);
    assert.equal(done.state, 'DONE');
    assert.equal(done.progress.eventsDeleted, 2);
    assert.equal(done.progress.eventsExempt, 2);
    assert.ok(done.progress.deliveriesDeleted >= deliveries);
    const left = (await q<{ event_id: string }>(`SELECT event_id FROM events WHERE event_id = ANY($1::text[]) ORDER BY event_id`, [[...old, young.eventId]])).map((r) => r.event_id);
    assert.deepEqual(left, [buffered.eventId, lookback.eventId, young.eventId].sort());
    assert.equal((await q(`SELECT 1 FROM event_deliveries WHERE event_id = $1`, [deliveredEv.eventId])).length, 0);
    // Once the wait closed, nothing holds the look-back event: the next sweep takes it.
    await env.pinflow.cancel(waiting, { by: 'test', reason: 'done' });
    await reaches(waiting, 'CANCELLED');
    const next = await sweepDone((await call('POST', '/retention/sweeps', { pauseMs: 0 })).json.id);
    assert.equal(next.progress.eventsDeleted, 1);
    assert.equal((await q(`SELECT 1 FROM events WHERE event_id = $1`, [lookback.eventId])).length, 0);
  });

  it("the namespace's retention: read from the real dev server, compared with the policies, updated and read back; a forever policy warns", async () => {
    const describeDays = async () => {
      const res = await env.client.connection.workflowService.describeNamespace({ namespace: env.namespace });
      return Number(res.config?.workflowExecutionRetentionTtl?.seconds ?? 0) / 86_400;
    };
    const initial = await describeDays();
    const ns = (await call('GET', '/retention/namespace')).json;
    assert.equal(ns.days, initial);
    assert.equal(ns.neededDays, 91, 'FAILED keeps 90 days, + 1 day of margin');
    assert.equal(ns.ok, initial >= 91);
    if (!ns.ok) assert.match(ns.message, /shorter than the 91/);
    const applied = await call('POST', '/retention/namespace', { by: 'ops', reason: 'match the policies' });
    assert.equal(applied.status, 200, JSON.stringify(applied.json));
    assert.deepEqual([applied.json.previousDays, applied.json.days, applied.json.ok], [initial, 91, true]);
    assert.equal(await describeDays(), 91);
    assert.equal((await q(`SELECT target_ids FROM audit_log WHERE action = 'retention.namespace.apply' AND outcome = 'accepted'`))[0]?.target_ids[0], env.namespace);
    // A longer policy makes it too short again.
    await call('PUT', '/retention/policies', { definition: 'ret-ok', days: 200 });
    const short = (await call('GET', '/retention/namespace')).json;
    assert.deepEqual([short.days, short.neededDays, short.ok], [91, 201, false]);
    // Forever: Temporal's retention cannot follow; said clearly.
    await call('PUT', '/retention/policies', { definition: 'ret-ok', days: null });
    const forever = (await call('GET', '/retention/namespace')).json;
    assert.deepEqual([forever.forever, forever.ok], [true, false]);
    assert.match(forever.message, /cannot be infinite/);
    const health = (await call('GET', '/health')).json;
    assert.equal(health.retention.namespace.forever, true);
    await call('DELETE', '/retention/policies?definition=ret-ok');
  });
});

describe('retention from the CLI and the API process (pinflow retention …, pinflow runs hold|release, the periodic sweeper)', function () {
  this.timeout(300_000);
  let env: Env;
  let api: Awaited<ReturnType<typeof spawnApiProcess>>;
  interface Ran {
    code: number;
    stdout: string;
    stderr: string;
  }
  const cli = (args: string[]): Promise<Ran> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [join(projectRoot(), 'dist', 'cli', 'pinflow.js'), ...args],
        { env: { ...process.env, PINFLOW_API_URL: api.url, PINFLOW_API_KEY: api.key, USER: 'cli-test' }, encoding: 'utf8', timeout: 120_000 },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
      );
    });
  const ok = async (...args: string[]) => {
    const r = await cli(args);
    assert.equal(r.code, 0, `pinflow ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const completed = async (n: number) => {
    const id = (await env.pinflow.start({ definition: 'ret-ok', input: { a: n } })).runId;
    await eventually(async () => (await env.pinflow.getRun(id).catch(() => undefined))?.status === 'COMPLETED', { timeoutMs: 90_000, what: `${id} completed` });
    return id;
  };
  const backdate = (ids: string[]) => env.db.query({ text: `UPDATE runs SET closed_at = now() - interval '40 days' WHERE id = ANY($1::text[])`, values: [ids] });

  before(async () => {
    env = await createEnv('retention-cli', rpcs);
    await env.pinflow.publish('ret-ok', OK_GRAPH);
    await env.startWorker(rpcs);
    // The periodic sweeper ticks every 2 s in this API process.
    api = await spawnApiProcess(env, 'rpcs', { PINFLOW_RETENTION_INTERVAL_MS: '2000', PINFLOW_RETENTION_PAUSE_MS: '0' });
  });
  after(async () => {
    api?.kill('SIGTERM');
    await env?.stop();
  });

  it('sets, lists, previews, sweeps, holds and releases; refuses bad options with exit 64 and API refusals with exit 2', async () => {
    assert.match(await ok('retention', 'set', '--status', 'CANCELLED', '--days', '45', '--reason', 'cli test'), /CANCELLED: 45 days/);
    const policies = JSON.parse(await ok('retention', 'policies', '--json')) as Json;
    assert.ok(policies.policies.some((p: Json) => p.status === 'CANCELLED' && p.days === 45));
    assert.match(await ok('retention', 'list'), /CANCELLED\s+45/);
    assert.match(await ok('retention', 'set', '--events', '--days', 'forever'), /forever/);
    assert.match(await ok('retention', 'unset', '--status', 'CANCELLED'), /removed/);
    const bad = await cli(['retention', 'set', '--days', '0']);
    assert.equal(bad.code, 64, bad.stderr);
    assert.match(bad.stderr, /--days "0" is not allowed/);
    const badStatus = await cli(['retention', 'set', '--days', '3', '--status', 'RUNNING']);
    assert.equal(badStatus.code, 64);
    const unknown = await cli(['retention', 'set', '--days', '3', '--definition', 'nope']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /DEFINITION_NOT_FOUND/);
    assert.equal((await cli(['retention', 'unset'])).code, 2);

    // A held run survives the sweeps (the periodic one and one started from the CLI); released, it goes.
    const held = await completed(1);
    const due = await completed(2);
    assert.match(await ok('runs', 'hold', held, '--reason', 'legal'), /legal hold since/);
    await backdate([held, due]);
    // (the periodic sweeper may already have pruned `due`: the preview's figures are asserted in the suite above)
    assert.match(await ok('retention', 'preview'), /runs: \d+ due, \d+ to delete; exempt \d legal hold/);
    // The API process's sweeper finds the due run by itself (no sweep started here).
    await eventually(async () => (await env.pinflow.getRun(due).catch(() => undefined)) === undefined, { timeoutMs: 60_000, what: 'the periodic sweeper to prune the due run' });
    const sweeps = JSON.parse(await ok('retention', 'sweeps', '--json')) as { sweeps: SweepView[] };
    assert.ok(sweeps.sweeps.some((s) => s.by === 'sweeper' && s.progress.runsDeleted === 1 && s.progress.exempt.legalHold === 1), JSON.stringify(sweeps));
    assert.ok(await env.pinflow.getRun(held));
    assert.match(await ok('runs', 'release', held, '--reason', 'case closed'), /legal hold cleared/);
    // Started from the CLI, followed to the end (or the periodic sweeper takes it first: then the CLI's start is refused).
    const ran = await cli(['retention', 'sweep', '--wait', '--json', '--reason', 'cli']);
    if (ran.code === 0) assert.equal((JSON.parse(ran.stdout) as SweepView).state, 'DONE');
    else assert.match(ran.stderr, /RETENTION_SWEEP_RUNNING/);
    await eventually(async () => (await env.pinflow.getRun(held).catch(() => undefined)) === undefined, { timeoutMs: 60_000, what: 'the released run to be pruned' });
    const one = sweeps.sweeps[0]!;
    assert.match(await ok('retention', 'sweeps', one.id), new RegExp(`sweep:\\s+${one.id} DONE`));
    assert.match(await ok('retention', 'sweeps'), /sweeper/);
    const ns = await cli(['retention', 'namespace']);
    assert.ok(ns.code === 0 || ns.code === 1, ns.stderr);
    assert.match(ns.stdout, /keeps histories [\d.]+ days; the policies need 91/);
    assert.match(await ok('retention', 'namespace', '--apply', '--json'), /"ok": true/);
  });
});
