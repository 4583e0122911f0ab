/**
 * The operator console's API (issue 15) against the real Temporal dev server,
 * the real Postgres and an in-process worker: the run list's new filters and
 * counts, per-step counts of a version (checked against counts computed from
 * the rows), stall groups, the diff of two versions, and whoami.
 */
import assert from 'node:assert/strict';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { z } from 'zod';
import { SCOPES, type Scope } from '../client/api-schemas';
import { createApi } from '../client/http';
import type { VersionDiff } from '../client/console';
import { Pinflow } from '../client/pinflow';
import { STEP_COUNT_STATES } from '../graph/terminology';
import { defineRpc } from '../rpc/registry';
import { rpcs } from './fixtures/rpcs';
import { createEnv, createKey, eventually, type Env } from './support/harness';

/** Held open until the test releases it (in-process worker): a run "running" at its step. */
const held = { release: false };
const hold = defineRpc('console.hold', {
  input: z.object({}),
  output: z.object({ held: z.boolean() }),
  handler: async (_input, ctx) => {
    while (!held.release && !ctx.signal.aborted) await new Promise((r) => setTimeout(r, 50));
    return { held: true };
  },
  timeout: '10m',
});
/** Published, never deployed to the worker: runs reaching it stall (rpc_missing). */
const gone = defineRpc('console.gone', {
  input: z.object({ n: z.number() }),
  output: z.object({ ok: z.boolean() }),
  handler: () => ({ ok: true }),
});
/** Version 2 of it: a new required nested field, `n` now optional. */
const goneV2 = defineRpc('console.gone', {
  input: z.object({ n: z.number().optional(), customer: z.object({ email: z.string() }) }),
  output: z.object({ ok: z.boolean() }),
  handler: () => ({ ok: true }),
});

/** The router of both versions: one path per state a run can be in. */
const route = (cases: Record<string, string>) => ({
  id: 'route',
  type: 'switch',
  cases: Object.entries(cases).map(([path, next]) => ({ when: `input.path = '${path}'`, next })),
  default: 'a',
});
const bad = { id: 'bad', type: 'rpc', rpc: 'test.boom', input: { why: "'on purpose'" }, next: 'done' };
const done = { id: 'done', type: 'return', output: "'done'" };
const waitAt = (id: string) => ({ id, type: 'wait', event: 'console.go', correlationKey: 'input.key', timeout: '1h', next: 'done' });

const v1Graph = {
  entry: 'route',
  steps: [
    route({ fail: 'bad', stall: 'gone', wait: 'w', hold: 'hold' }),
    { id: 'a', type: 'rpc', rpc: 'math.add', input: { a: '1', b: '2' }, next: 'done' },
    bad,
    { id: 'gone', type: 'rpc', rpc: 'console.gone', input: { n: '1' }, next: 'done' },
    waitAt('w'),
    { id: 'hold', type: 'rpc', rpc: 'console.hold', input: {}, next: 'done' },
    done,
  ],
};

/** v2: `a` changed, `w` renamed `w2` (a wait: the obvious mapping), `hold` removed, `extra` added. */
const v2Graph = {
  entry: 'route',
  steps: [
    route({ fail: 'bad', stall: 'gone', wait: 'w2' }),
    { id: 'a', type: 'rpc', rpc: 'math.add', input: { a: '10', b: '2' }, next: 'extra' },
    { id: 'extra', type: 'rpc', rpc: 'text.greet', input: { name: "'x'" }, next: 'done' },
    bad,
    { id: 'gone', type: 'rpc', rpc: 'console.gone', input: { n: '1', customer: { email: "'a@b.c'" } }, next: 'done' },
    waitAt('w2'),
    done,
  ],
};

interface ErrorBody {
  error: { code: string; message: string; details: { field?: string; issues?: Array<{ field: string; received: unknown; allowed?: string }> } & Record<string, unknown> };
}

type Counts = Record<string, Record<string, number>>;

describe('console API: run filters and counts, step counts, stalls, diff, whoami', function () {
  this.timeout(300_000);
  let env: Env;
  let api: FastifyInstance;
  let v1: string;
  let v2: string;
  const keys = {} as Record<Scope | 'acme' | 'globex', string>;
  const started: Record<string, string> = {};

  /** GET with a key (the read key by default; `null`: no key at all). */
  function get(url: string, key: string | null = keys.read): Promise<LightMyRequestResponse> {
    return api.inject({ method: 'GET', url, ...(key !== null ? { headers: { authorization: `Bearer ${key}` } } : {}) });
  }
  async function ok<T>(url: string, key?: string): Promise<T> {
    const res = await get(url, key);
    assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
    return res.json<T>();
  }
  async function refused(url: string, status: number, code: string, field: string, key?: string): Promise<ErrorBody['error']> {
    const res = await get(url, key);
    assert.equal(res.statusCode, status, `${url}: ${res.body}`);
    const e = res.json<ErrorBody>().error;
    assert.equal(e.code, code, res.body);
    const fields = [e.details.field, ...(e.details.issues ?? []).map((i) => i.field)];
    assert.ok(fields.includes(field), `${url}: expected field ${field}, got ${JSON.stringify(e.details)}`);
    return e;
  }
  const listIds = async (query: string, key?: string): Promise<string[]> => {
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { runs: Array<{ id: string }>; nextCursor: string | null } = await ok(`/runs?${query}&limit=2${cursor ? `&cursor=${cursor}` : ''}`, key);
      ids.push(...page.runs.map((r) => r.id));
      cursor = page.nextCursor;
    } while (cursor);
    return ids.sort();
  };

  /** Counts computed from the rows themselves (not the step_counts table): runs per step and state. */
  async function countsFromRows(version: string, tenant?: string): Promise<{ counts: Counts; runs: Record<string, Record<string, string[]>> }> {
    const rows = await env.db.query<{ stepId: string; state: string; runId: string }>({
      text: `SELECT s.step_id AS "stepId", CASE
                 WHEN s.status = 'RUNNING' AND s.step_type <> 'wait' THEN 'running'
                 WHEN s.status = 'COMPLETED' AND s.notes @> '[{"kind":"skipped"}]' THEN 'skipped'
                 WHEN s.status = 'COMPLETED' THEN 'passed'
                 WHEN s.status = 'FAILED' AND COALESCE(s.error->>'type', '') <> 'RpcStall' THEN 'failed' END AS state, r.id AS "runId"
               FROM run_steps s JOIN runs r ON r.id = s.run_id WHERE r.version = $1 AND ($2::text IS NULL OR r.tenant = $2)
             UNION SELECT split_part(split_part(w.step_instance, '#', 1), '[', 1), 'waiting', r.id
               FROM run_waits w JOIN runs r ON r.id = w.run_id WHERE w.status = 'OPEN' AND r.version = $1 AND ($2::text IS NULL OR r.tenant = $2)
             UNION SELECT split_part(split_part(r.stall_step, '#', 1), '[', 1), 'stalled', r.id
               FROM runs r WHERE r.status = 'STALLED' AND r.version = $1 AND ($2::text IS NULL OR r.tenant = $2)`,
      values: [version, tenant ?? null],
    });
    const runs: Record<string, Record<string, string[]>> = {};
    for (const r of rows) {
      if (r.state === null) continue;
      const set = ((runs[r.stepId] ??= {})[r.state] ??= []);
      if (!set.includes(r.runId)) set.push(r.runId);
    }
    const counts: Counts = {};
    for (const [step, states] of Object.entries(runs)) counts[step] = Object.fromEntries(Object.entries(states).map(([s, ids]) => [s, ids.length]));
    return { counts, runs };
  }

  const asCounts = (steps: Array<Record<string, unknown> & { stepId: string }>): Counts => {
    const out: Counts = {};
    for (const s of steps) {
      const nonZero = Object.fromEntries(STEP_COUNT_STATES.filter((st) => (s[st] as number) > 0).map((st) => [st, s[st] as number]));
      if (Object.keys(nonZero).length) out[s.stepId] = nonZero;
    }
    return out;
  };

  before(async () => {
    env = await createEnv('console_api', [...rpcs, hold, gone]);
    await env.startWorker([...rpcs, hold]); // console.gone is not deployed
    api = createApi({ pinflow: env.pinflow, rateLimit: { max: 100_000, timeWindowMs: 60_000 } });
    await api.ready();
    for (const s of SCOPES) keys[s] = await createKey(env, { scopes: [s], name: `console-${s}` });
    keys.acme = await createKey(env, { scopes: ['read'], tenant: 'acme', name: 'console-acme' });
    keys.globex = await createKey(env, { scopes: ['read'], tenant: 'globex', name: 'console-globex' });

    v1 = (await env.pinflow.publish('console-steps', v1Graph)).version;
    const publisherV2 = new Pinflow({ client: env.client, store: env.store, rpcs: [...rpcs, hold, goneV2] });
    v2 = (await publisherV2.publish('console-steps', v2Graph)).version;
    await env.pinflow.publish('console-other', { entry: 'done', steps: [{ id: 'done', type: 'return', output: "'x'" }] });

    const runs: Array<[string, string, string]> = [
      ['cs-ok-1', 'ok', 'acme'],
      ['cs-ok-2', 'ok', 'globex'],
      ['cs-fail-1', 'fail', 'acme'],
      ['cs-stall-1', 'stall', 'acme'],
      ['cs-stall-2', 'stall', 'acme'],
      ['cs-wait-1', 'wait', 'acme'],
      ['cs-hold-1', 'hold', 'acme'],
    ];
    for (const [runId, path, tenant] of runs) {
      started[runId] = (await env.pinflow.start({ version: v1, runId, tenant, input: { path, key: runId } })).runId;
    }
    await eventually(
      async () => {
        const page = await env.pinflow.listRuns({ version: v1, limit: 50 });
        const by = new Map(page.runs.map((r) => [r.id, r]));
        const settled =
          by.get('cs-ok-1')?.status === 'COMPLETED' &&
          by.get('cs-ok-2')?.status === 'COMPLETED' &&
          by.get('cs-fail-1')?.status === 'FAILED' &&
          by.get('cs-stall-1')?.status === 'STALLED' &&
          by.get('cs-stall-2')?.status === 'STALLED';
        const waiting = (await env.pinflow.events.listWaits({ runId: 'cs-wait-1' }, 10)).length === 1;
        const holding = (await env.pinflow.getRun('cs-hold-1')).steps.some((s) => s.stepId === 'hold' && s.status === 'RUNNING');
        return settled && waiting && holding;
      },
      { timeoutMs: 120_000, what: 'every run at its step' },
    );
  });
  after(async () => {
    held.release = true;
    await api?.close();
    await env?.stop();
  });

  it('whoami answers any valid key, whatever its scopes, and 401 without one', async () => {
    for (const s of SCOPES) {
      const me = await ok<{ keyId: string; name: string; scopes: string[]; tenant: string | null }>('/whoami', keys[s]);
      assert.deepEqual(me, { keyId: keys[s].split('_')[1], name: `console-${s}`, scopes: [s], tenant: null });
    }
    assert.equal((await ok<{ tenant: string }>('/whoami', keys.acme)).tenant, 'acme');
    const none = await get('/whoami', null);
    assert.equal(none.statusCode, 401);
    assert.equal(none.json<ErrorBody>().error.code, 'UNAUTHENTICATED');
    const bad = await get('/whoami', 'pf_nope_nope');
    assert.equal(bad.statusCode, 401);
  });

  it('groups open stalls by version, RPC and reason; a tenant key sees its tenant only; the group lists its runs', async () => {
    const all = await ok<{ groups: Array<Record<string, unknown>>; total: number }>('/stalls');
    const group = all.groups.find((g) => g.version === v1 && g.rpc === 'console.gone');
    assert.ok(group, JSON.stringify(all));
    assert.deepEqual({ ...group, oldestSince: typeof group.oldestSince, newestSince: typeof group.newestSince, sampleRunIds: [...(group.sampleRunIds as string[])].sort() }, {
      definition: 'console-steps',
      version: v1,
      versionSeq: 1,
      rpc: 'console.gone',
      reason: 'rpc_missing',
      count: 2,
      oldestSince: 'string',
      newestSince: 'string',
      sampleRunIds: ['cs-stall-1', 'cs-stall-2'],
    });
    assert.ok(Date.parse(group.oldestSince as string) <= Date.parse(group.newestSince as string));
    assert.equal(all.total, 2);
    assert.deepEqual(await listIds(`status=STALLED&version=${v1}&stallRpc=console.gone&stallReason=rpc_missing`), ['cs-stall-1', 'cs-stall-2']);
    assert.deepEqual(await listIds(`status=STALLED&stallReason=input_incompatible`), []);
    assert.equal((await ok<{ total: number }>('/stalls?reason=rpc_missing&definition=console-steps')).total, 2);
    assert.equal((await ok<{ total: number }>('/stalls?rpc=other.rpc')).total, 0);
    assert.equal((await ok<{ total: number }>('/stalls', keys.acme)).total, 2);
    assert.deepEqual(await ok('/stalls', keys.globex), { groups: [], total: 0 });
    assert.deepEqual(await ok('/stalls?tenant=acme', keys.globex), { groups: [], total: 0 });
    await refused('/stalls?reason=nope', 400, 'REQUEST_INVALID', 'query.reason');
  });

  it('counts every step of the version as the rows say, and each count opens exactly its runs', async () => {
    // Skip one stalled run (its step completes with the operator's output), so every state is present.
    await env.pinflow.resolveStall('cs-stall-2', { action: 'skip', by: 'ops', reason: 'test', output: { ok: true } });
    await eventually(async () => (await env.pinflow.getRun('cs-stall-2')).status === 'COMPLETED', { what: 'skipped run completed' });

    const body = await ok<{ version: string; definitions: unknown; totalRuns: number; openRuns: number; asOf: string; steps: Array<Record<string, number> & { stepId: string }> }>(
      `/versions/${v1}/step-counts`,
    );
    assert.equal(body.version, v1);
    assert.deepEqual(body.definitions, [{ definition: 'console-steps', seq: 1 }]);
    assert.equal(body.totalRuns, 7);
    assert.equal(body.openRuns, 3); // stalled, waiting, holding
    assert.deepEqual(body.steps.map((s) => s.stepId), ['route', 'a', 'bad', 'gone', 'w', 'hold', 'done']);
    for (const s of body.steps) assert.deepEqual(Object.keys(s).sort(), ['stepId', ...STEP_COUNT_STATES].sort());

    const fromRows = await countsFromRows(v1);
    assert.deepEqual(asCounts(body.steps), fromRows.counts);
    // What the design promises, by hand: every state is present.
    assert.deepEqual(fromRows.counts.a, { passed: 2 });
    assert.deepEqual(fromRows.counts.bad, { failed: 1 });
    assert.deepEqual(fromRows.counts.gone, { stalled: 1, skipped: 1 });
    assert.deepEqual(fromRows.counts.w, { waiting: 1 });
    assert.deepEqual(fromRows.counts.hold, { running: 1 });

    for (const [step, states] of Object.entries(fromRows.runs)) {
      for (const [state, ids] of Object.entries(states)) {
        assert.deepEqual(await listIds(`version=${v1}&step=${step}&stepState=${state}`), [...ids].sort(), `${step} ${state}`);
      }
    }
    assert.deepEqual(await listIds(`version=${v1}&step=hold&stepState=passed`), []);

    // A tenant key counts its tenant's runs only.
    const acme = await ok<{ totalRuns: number; steps: Array<Record<string, number> & { stepId: string }> }>(`/versions/${v1}/step-counts`, keys.acme);
    assert.equal(acme.totalRuns, 6);
    assert.deepEqual(asCounts(acme.steps), (await countsFromRows(v1, 'acme')).counts);
    assert.equal(asCounts(acme.steps).a?.passed, 1);

    await refused(`/versions/${'f'.repeat(64)}/step-counts`, 404, 'VERSION_NOT_FOUND', 'params.hash');
  });

  it('keeps the counts right when a step row is written again, and when a run is deleted', async () => {
    const before = asCounts((await env.pinflow.console.stepCounts(v1, undefined)).steps);
    const run = await env.pinflow.getRun('cs-ok-1');
    const a = run.steps.find((s) => s.stepId === 'a' && s.status === 'COMPLETED')!;
    // A redelivered write of the same attempt, and a replayed older RUNNING write: no count moves.
    await env.store.recordSteps('cs-ok-1', [{ ...a }]);
    await env.store.recordSteps('cs-ok-1', [{ ...a, status: 'RUNNING' }]);
    assert.deepEqual(asCounts((await env.pinflow.console.stepCounts(v1, undefined)).steps), before);
    assert.deepEqual(asCounts((await env.pinflow.console.stepCounts(v1, undefined)).steps), (await countsFromRows(v1)).counts);

    // A run written and then deleted (retention, a cleanup): its counts come and go with it.
    await env.db.query({ text: `INSERT INTO runs (id, definition, version, tenant, status, started_at, updated_at) VALUES ('cs-tmp', 'console-steps', $1, 'acme', 'RUNNING', now(), now())`, values: [v1] });
    await env.db.query({
      text: `INSERT INTO run_steps (run_id, step_instance, attempt, step_id, step_type, seq, status, started_at)
             VALUES ('cs-tmp', 'a', 1, 'a', 'rpc', 1, 'FAILED', now()), ('cs-tmp', 'a', 2, 'a', 'rpc', 1, 'COMPLETED', now()), ('cs-tmp', 'hold', 1, 'hold', 'rpc', 2, 'RUNNING', now())`,
    });
    const withTmp = await env.pinflow.console.stepCounts(v1, undefined);
    assert.deepEqual(asCounts(withTmp.steps), (await countsFromRows(v1)).counts);
    assert.equal(asCounts(withTmp.steps).a?.passed, (before.a?.passed ?? 0) + 1);
    assert.equal(asCounts(withTmp.steps).a?.failed, 1);
    assert.equal(withTmp.totalRuns, 8);
    await env.db.query({ text: `DELETE FROM runs WHERE id = 'cs-tmp'` });
    const after = await env.pinflow.console.stepCounts(v1, undefined);
    assert.deepEqual(asCounts(after.steps), before);
    assert.equal(after.totalRuns, 7);
  });

  it('filters the run list by start time, id text and state, with keyset pages, and counts it by status', async () => {
    const all = await listIds(`version=${v1}`);
    assert.equal(all.length, 7);
    assert.deepEqual(await listIds(`version=${v1}&q=STALL`), ['cs-stall-1', 'cs-stall-2']);
    assert.deepEqual(await listIds(`version=${v1}&startedAfter=2999-01-01T00:00:00Z`), []);
    assert.deepEqual(await listIds(`version=${v1}&startedBefore=2000-01-01T00:00:00%2B01:00`), []);
    const first = (await env.pinflow.listRuns({ version: v1, limit: 500 })).runs.at(-1)!;
    assert.deepEqual(await listIds(`version=${v1}&startedAfter=${encodeURIComponent(first.startedAt)}`), all);
    assert.deepEqual(
      (await listIds(`version=${v1}&startedBefore=${encodeURIComponent(first.startedAt)}`)),
      [],
    );

    const counts = await ok<{ counts: Record<string, number>; total: number }>(`/runs/counts?version=${v1}`);
    assert.deepEqual(counts, { counts: { RUNNING: 2, STALLED: 1, PAUSED: 0, COMPLETED: 3, FAILED: 1, CANCELLED: 0, TERMINATED: 0 }, total: 7 });
    assert.deepEqual(await ok(`/runs/counts?version=${v1}&q=ok`), { counts: { RUNNING: 0, STALLED: 0, PAUSED: 0, COMPLETED: 2, FAILED: 0, CANCELLED: 0, TERMINATED: 0 }, total: 2 });
    assert.equal((await ok<{ total: number }>(`/runs/counts?version=${v1}&step=gone&stepState=skipped`)).total, 1);
    assert.equal((await ok<{ total: number }>(`/runs/counts?version=${v1}`, keys.globex)).total, 1);
    assert.equal((await ok<{ total: number }>(`/runs/counts?tenant=acme`, keys.globex)).total, 0);
    assert.deepEqual(await env.pinflow.countRuns({ version: v1, stallRpc: 'console.gone' }), { counts: { RUNNING: 0, STALLED: 1, PAUSED: 0, COMPLETED: 0, FAILED: 0, CANCELLED: 0, TERMINATED: 0 }, total: 1 });
  });

  it('refuses bad run-list filters naming the field, what was received and what is allowed', async () => {
    for (const base of ['/runs', '/runs/counts']) {
      const e = await refused(`${base}?startedAfter=yesterday`, 400, 'REQUEST_INVALID', 'query.startedAfter');
      const issue = e.details.issues!.find((i) => i.field === 'query.startedAfter')!;
      assert.equal(issue.received, 'yesterday');
      assert.match(issue.allowed!, /ISO 8601 date-time/);
      await refused(`${base}?startedBefore=2026-02-30T00:00:00Z`, 400, 'REQUEST_INVALID', 'query.startedBefore');
      await refused(`${base}?startedBefore=2026-01-01`, 400, 'REQUEST_INVALID', 'query.startedBefore');
      await refused(`${base}?stepState=passed`, 400, 'REQUEST_INVALID', 'query.step');
      await refused(`${base}?step=a`, 400, 'REQUEST_INVALID', 'query.stepState');
      await refused(`${base}?step=a&stepState=done`, 400, 'REQUEST_INVALID', 'query.stepState');
      await refused(`${base}?q=${'x'.repeat(257)}`, 400, 'REQUEST_INVALID', 'query.q');
      await refused(`${base}?stallReason=broken`, 400, 'REQUEST_INVALID', 'query.stallReason');
    }
    await refused('/runs/counts?status=RUNNING', 400, 'REQUEST_INVALID', 'query');
    await assert.rejects(env.pinflow.listRuns({ step: 'a' }), (err: Error & { code?: string }) => err.code === 'REQUEST_INVALID' && /options\.stepState/.test(err.message));
  });

  it('diffs two versions: steps, edges, contracts, and which open runs could migrate', async () => {
    const d = await ok<VersionDiff>(`/definitions/console-steps/diff?from=${v1}&to=${v2}`);
    assert.deepEqual(d.from, { version: v1, seq: 1 });
    assert.deepEqual(d.to, { version: v2, seq: 2 });
    assert.deepEqual(d.steps.added.sort(), ['extra', 'w2']);
    assert.deepEqual(d.steps.removed.sort(), ['hold', 'w']);
    assert.deepEqual(d.steps.changed, [
      { stepId: 'route', fields: ['cases'] },
      { stepId: 'a', fields: ['input', 'next'] },
      { stepId: 'gone', fields: ['input'] },
    ]);
    assert.deepEqual(d.steps.unchanged.sort(), ['bad', 'done']);
    assert.ok(d.edges.added.some((e) => e.from === 'a' && e.to === 'extra' && e.kind === 'next'));
    assert.ok(d.edges.removed.some((e) => e.from === 'route' && e.to === 'hold' && e.kind === 'case'));
    const goneC = d.contracts.find((c) => c.rpc === 'console.gone');
    assert.deepEqual(goneC, {
      rpc: 'console.gone',
      change: 'changed',
      input: { added: ['customer', 'customer.email'], removed: [], madeRequired: [], madeOptional: ['n'], typeChanged: [] },
      output: { added: [], removed: [], madeRequired: [], madeOptional: [], typeChanged: [] },
    });
    assert.equal(d.contracts.find((c) => c.rpc === 'console.hold')?.change, 'removed');
    assert.equal(d.contracts.find((c) => c.rpc === 'text.greet')?.change, 'added');
    assert.equal(d.contracts.find((c) => c.rpc === 'math.add')?.change, 'unchanged');

    assert.equal(d.openRuns.total, 3);
    const byId = Object.fromEntries(d.openRuns.runs.map((r) => [r.runId, r]));
    assert.deepEqual(Object.keys(byId).sort(), ['cs-hold-1', 'cs-stall-1', 'cs-wait-1']);
    assert.equal(byId['cs-wait-1']!.migratable, true, JSON.stringify(byId['cs-wait-1']));
    assert.equal(byId['cs-wait-1']!.mapping?.w, 'w2');
    assert.equal(byId['cs-wait-1']!.currentStep, 'w');
    assert.equal(byId['cs-stall-1']!.migratable, true, JSON.stringify(byId['cs-stall-1']));
    assert.equal(byId['cs-stall-1']!.mapping?.gone, 'gone');
    assert.equal(byId['cs-stall-1']!.pastChanges, false);
    assert.equal(byId['cs-hold-1']!.migratable, false);
    assert.equal(byId['cs-hold-1']!.mapping, null);
    assert.equal(byId['cs-hold-1']!.problem?.code, 'POSITION_NOT_IN_TARGET');
    assert.match(byId['cs-hold-1']!.problem?.message ?? '', /hold is not a top-level step of version/);

    const unknown = await refused(`/definitions/console-steps/diff?from=${v1}&to=${'e'.repeat(64)}`, 404, 'VERSION_NOT_FOUND', 'query.to');
    assert.match(unknown.message, /^query\.to: version/);
    await refused(`/definitions/console-steps/diff?from=${'e'.repeat(64)}&to=${v2}`, 404, 'VERSION_NOT_FOUND', 'query.from');
    const other = (await env.pinflow.listVersions('console-other'))[0]!.hash;
    const foreign = await refused(`/definitions/console-steps/diff?from=${other}&to=${v2}`, 422, 'REQUEST_INVALID', 'query.from');
    assert.equal(foreign.details.received, other);
    await refused(`/definitions/console-steps/diff?from=nope&to=${v2}`, 400, 'REQUEST_INVALID', 'query.from');
    await refused(`/definitions/console-steps/diff?to=${v2}`, 400, 'REQUEST_INVALID', 'query.from');
    const missing = await get(`/definitions/no-such/diff?from=${v1}&to=${v2}`);
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json<ErrorBody>().error.code, 'DEFINITION_NOT_FOUND');
  });
});
