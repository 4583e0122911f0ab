import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { batchRunId } from '../client/batch-actions';
import type { BatchView } from '../client/batches';
import { createApi } from '../client/http';
import { Pinflow } from '../client/pinflow';
import { projectRoot } from '../db/paths';
import { defineRpc } from '../rpc/registry';
import { rpcs } from './fixtures/rpcs';
import { createEnv, createKey, eventually, exitOf, spawnApiProcess, temporalAddress, withKey, type Env } from './support/harness';

// Bulk actions by run filter, as durable batches (client/batches.ts).

/** Registered for publish only: the worker lacks it, so a run calling it stalls (rpc_missing). */
const missing = defineRpc('batch.missing', {
  input: z.object({ n: z.number() }),
  output: z.object({ ok: z.boolean() }),
  handler: () => ({ ok: true }),
});

const stallGraph = {
  entry: 'call',
  steps: [
    { id: 'call', type: 'rpc', rpc: 'batch.missing', input: { n: 'input.n' }, next: 'done' },
    { id: 'done', type: 'return', output: 'steps.call' },
  ],
};
const waitGraph = {
  entry: 'w',
  steps: [
    { id: 'w', type: 'wait', event: 'batch.go', correlationKey: "'k'", timeout: '1h', onTimeout: 'done', next: 'done' },
    { id: 'done', type: 'return', output: { ok: true } },
  ],
};

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('batches: bulk actions by run filter, durable and idempotent per run', function () {
  this.timeout(300_000);
  let env: Env;
  let pinflow: Pinflow;
  let api: FastifyInstance;

  /** Every HTTP request of this suite goes through here (one place for headers such as Authorization). */
  async function call(method: 'GET' | 'POST', url: string, body?: unknown): Promise<{ status: number; json: Json }> {
    const res = await api.inject({ method, url, ...(body !== undefined ? { payload: body as object } : {}) });
    return { status: res.statusCode, json: res.json() };
  }

  const batch = async (id: string): Promise<BatchView> => (await call('GET', `/batches/${id}`)).json as BatchView;
  const finished = (id: string, timeoutMs = 60_000) =>
    eventually(async () => {
      const b = await batch(id);
      return b.state === 'COMPLETED' || b.state === 'CANCELLED' ? b : undefined;
    }, { timeoutMs, what: `batch ${id} to finish` });

  async function startRuns(definition: string, tenant: string, n: number, metadata: Record<string, unknown> = {}): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await env.pinflow.start({ definition, tenant, input: { n: i }, metadata })).runId);
    return ids;
  }
  const projected = (tenant: string, status: string, n: number) =>
    eventually(async () => {
      const rows = await env.db.query<{ count: number }>({ text: 'SELECT count(*)::int AS count FROM runs WHERE tenant = $1 AND status = $2', values: [tenant, status] });
      return rows[0]!.count === n;
    }, { timeoutMs: 120_000, what: `${n} ${status} runs of tenant ${tenant} in the projection` });
  const temporalStatus = async (runId: string) => (await env.client.workflow.getHandle(runId).describe()).status.name;

  before(async () => {
    env = await createEnv('batches', [...rpcs, missing]);
    await env.pinflow.publish('batch-stall', stallGraph);
    await env.pinflow.publish('batch-wait', waitGraph);
    await env.startWorker(rpcs); // without batch.missing
    pinflow = new Pinflow({ client: env.client, store: env.store, rpcs: [...rpcs, missing], batches: { pollMs: 200, leaseMs: 2_000 } });
    api = withKey(createApi({ pinflow }), await createKey(env));
  });
  after(async () => {
    await pinflow?.batches.stop();
    await api?.close();
    await env?.stop();
  });

  it('a dry run counts the selected runs and shows a sample, and creates nothing', async () => {
    const stalled = await startRuns('batch-stall', 't-dry', 3);
    await startRuns('batch-wait', 't-dry', 2);
    await projected('t-dry', 'STALLED', 3);
    await projected('t-dry', 'RUNNING', 2);
    const before = (await call('GET', '/batches')).json.batches.length;
    const res = await call('POST', '/batches', { action: 'retry', filter: { tenant: 't-dry', status: 'STALLED' }, dryRun: true, by: 'ops', reason: 'dry' });
    assert.equal(res.status, 200);
    assert.equal(res.json.dryRun, true);
    assert.equal(res.json.count, 3);
    assert.deepEqual(new Set(res.json.sample.map((s: Json) => s.runId)), new Set(stalled));
    assert.ok(res.json.sample.every((s: Json) => s.status === 'STALLED' && s.definition === 'batch-stall' && s.tenant === 't-dry'));
    assert.equal((await call('GET', '/batches')).json.batches.length, before);
    const count = await env.db.query<{ n: number }>({ text: 'SELECT count(*)::int AS n FROM batch_items', values: [] });
    assert.equal(count[0]!.n, 0);
  });

  it('a cancel batch cancels exactly the runs its filter selects, in Temporal', async () => {
    pinflow.batches.start();
    const a = await startRuns('batch-wait', 't-cancel', 3, { group: 'a' });
    const b = await startRuns('batch-wait', 't-cancel', 2, { group: 'b' });
    await projected('t-cancel', 'RUNNING', 5);
    const res = await call('POST', '/batches', { action: 'cancel', filter: { tenant: 't-cancel', metadata: { group: 'a' } }, by: 'ops@example.com', reason: 'group a is obsolete', ratePerSecond: 50 });
    assert.equal(res.status, 201, JSON.stringify(res.json));
    assert.equal(res.json.state, 'RUNNING');
    assert.equal(res.json.progress.selected, 3);
    const done = await finished(res.json.id);
    assert.equal(done.state, 'COMPLETED');
    assert.deepEqual(done.progress, { selected: 3, pending: 0, applying: 0, done: 3, skipped: 0, failed: 0 });
    for (const id of a) await eventually(async () => (await temporalStatus(id)) === 'CANCELLED', { what: `${id} cancelled` });
    for (const id of b) assert.equal(await temporalStatus(id), 'RUNNING');
    // The decision names the batch.
    const run = await eventually(async () => {
      const r = await env.pinflow.getRun(a[0]!);
      return r.decisions.length ? r : undefined;
    });
    assert.equal(run.decisions[0]!.by, 'ops@example.com');
    assert.equal(run.decisions[0]!.reason, `group a is obsolete (batch ${res.json.id})`);
    const items = (await call('GET', `/batches/${res.json.id}/items?status=DONE`)).json;
    assert.deepEqual(new Set(items.items.map((i: Json) => i.runId)), new Set(a));
    // The batch is in the audit log: who, why, and its id as the target.
    const audit = await env.db.query<{ action: string; target_ids: string[]; reason: string | null; outcome: string }>({
      text: `SELECT action, target_ids, reason, outcome FROM audit_log WHERE action = 'batch.create' AND $1 = ANY (target_ids)`,
      values: [res.json.id],
    });
    assert.deepEqual(audit.map((x) => [x.action, x.reason, x.outcome]), [['batch.create', 'group a is obsolete', 'accepted']]);
    for (const id of b) await env.pinflow.cancel(id, { by: 'test', reason: 'cleanup' });
  });

  it('a pause batch pauses the running runs it selects, and a resume batch resumes them', async () => {
    pinflow.batches.start();
    const runs = await startRuns('batch-wait', 't-pausing', 2);
    await projected('t-pausing', 'RUNNING', 2);
    const paused = await call('POST', '/batches', { action: 'pause', filter: { tenant: 't-pausing' }, by: 'ops', reason: 'freeze', ratePerSecond: 50 });
    assert.equal(paused.status, 201, JSON.stringify(paused.json));
    const p = await finished(paused.json.id);
    assert.deepEqual(p.progress, { selected: 2, pending: 0, applying: 0, done: 2, skipped: 0, failed: 0 }, JSON.stringify(p.failedByReason));
    for (const id of runs) assert.equal((await env.pinflow.state(id)).pause?.reason, `freeze (batch ${paused.json.id})`);
    // The runs wait on an event: the pause is pending (it holds at the next step boundary), and resume lifts it.
    const resumed = await call('POST', '/batches', { action: 'resume', filter: { tenant: 't-pausing' }, by: 'ops', reason: 'thaw', ratePerSecond: 50 });
    assert.equal(resumed.status, 201, JSON.stringify(resumed.json));
    const r = await finished(resumed.json.id);
    assert.deepEqual(r.progress, { selected: 2, pending: 0, applying: 0, done: 2, skipped: 0, failed: 0 }, JSON.stringify(r.failedByReason));
    for (const id of runs) assert.equal((await env.pinflow.state(id)).pause, undefined);
    assert.deepEqual(((await call('GET', `/batches/${resumed.json.id}/items`)).json.items as Json[]).map((i) => i.result.wasPaused), [true, true]);
    for (const id of runs) await env.pinflow.cancel(id, { by: 'test', reason: 'cleanup' });
  });

  it('a skip batch validates the output at creation, skips runs it does not apply to, and completes the stalled runs', async () => {
    const stalled = await startRuns('batch-stall', 't-skip', 3);
    const [waiting] = await startRuns('batch-wait', 't-skip', 1);
    await projected('t-skip', 'STALLED', 3);
    await projected('t-skip', 'RUNNING', 1);
    const bad = await call('POST', '/batches', { action: 'skip', filter: { tenant: 't-skip' }, params: { output: { ok: 'yes' } }, by: 'ops', reason: 'skip' });
    assert.equal(bad.status, 422);
    assert.equal(bad.json.error.code, 'SKIP_OUTPUT_INVALID');
    assert.match(bad.json.error.message, /params\.output does not satisfy the pinned output contract of RPC "batch\.missing" for 3 selected run\(s\)/);
    assert.equal(bad.json.error.details.count, 3);
    const res = await call('POST', '/batches', { action: 'skip', filter: { tenant: 't-skip' }, params: { output: { ok: true } }, by: 'ops', reason: 'batch.missing is gone for good', ratePerSecond: 50 });
    assert.equal(res.status, 201, JSON.stringify(res.json));
    const done = await finished(res.json.id);
    assert.deepEqual(done.progress, { selected: 4, pending: 0, applying: 0, done: 3, skipped: 1, failed: 0 });
    assert.deepEqual(done.skippedByReason, [{ code: 'NOT_APPLICABLE', count: 1, example: 'run is RUNNING; skip applies to STALLED runs' }]);
    const skippedItem = (await call('GET', `/batches/${res.json.id}/items?status=SKIPPED`)).json.items;
    assert.deepEqual(skippedItem.map((i: Json) => i.runId), [waiting]);
    for (const id of stalled) assert.deepEqual(await env.pinflow.result(id), { ok: true });
    await env.pinflow.cancel(waiting!, { by: 'test', reason: 'cleanup' });
  });

  it('pauses, resumes and cancels a batch; a cancelled batch skips the rest with "batch cancelled"', async () => {
    await startRuns('batch-wait', 't-pause', 6);
    await projected('t-pause', 'RUNNING', 6);
    const res = await call('POST', '/batches', { action: 'cancel', filter: { tenant: 't-pause' }, by: 'ops', reason: 'slowly', ratePerSecond: 1, concurrency: 1 });
    assert.equal(res.status, 201);
    const id = res.json.id as string;
    const paused = await call('POST', `/batches/${id}/pause`, { by: 'ops', reason: 'wait' });
    assert.equal(paused.status, 200);
    assert.equal(paused.json.state, 'PAUSED');
    assert.equal(paused.json.stateReason, 'wait');
    const settled = await eventually(async () => {
      const b = await batch(id);
      return b.progress.applying === 0 ? b : undefined;
    });
    await pinflow.batches.tick(); // the runner looks: nothing is claimed while PAUSED
    assert.equal((await batch(id)).progress.done, settled.progress.done);
    assert.ok(settled.progress.pending >= 4, JSON.stringify(settled.progress));
    assert.equal((await call('POST', `/batches/${id}/pause`, { by: 'ops', reason: 'again' })).json.error.code, 'BATCH_STATE_CONFLICT');
    const resumed = await call('POST', `/batches/${id}/resume`, { by: 'ops', reason: 'go on' });
    assert.equal(resumed.json.state, 'RUNNING');
    await eventually(async () => (await batch(id)).progress.done > settled.progress.done, { what: 'progress after resume' });
    const cancelled = await call('POST', `/batches/${id}/cancel`, { by: 'ops', reason: 'enough' });
    assert.equal(cancelled.json.state, 'CANCELLED');
    const end = await eventually(async () => {
      const b = await batch(id);
      return b.progress.applying === 0 ? b : undefined;
    });
    const p = end.progress;
    assert.equal(p.selected, 6);
    assert.equal(p.pending, 0);
    assert.equal(p.done + p.skipped + p.failed, 6);
    assert.ok(p.skipped >= 1, JSON.stringify(p));
    assert.deepEqual(end.skippedByReason.map((r) => [r.code, r.example]), [['BATCH_CANCELLED', 'batch cancelled']]);
    const resumeCancelled = await call('POST', `/batches/${id}/resume`, { by: 'ops', reason: 'no' });
    assert.equal(resumeCancelled.status, 409);
    assert.equal(resumeCancelled.json.error.code, 'BATCH_STATE_CONFLICT');
    assert.match(resumeCancelled.json.error.message, /is CANCELLED; resume needs a batch that is PAUSED/);
    // Only the runs the batch acted on are cancelled in Temporal.
    const items = (await call('GET', `/batches/${id}/items`)).json.items as Json[];
    for (const it of items) {
      const s = await temporalStatus(it.runId);
      if (it.status === 'DONE') await eventually(async () => (await temporalStatus(it.runId)) === 'CANCELLED');
      else assert.equal(s, 'RUNNING');
    }
    for (const it of items) if (it.status !== 'DONE') await env.pinflow.cancel(it.runId, { by: 'test', reason: 'cleanup' });
  });

  it('a migrate batch moves the waiting runs with a mapping, once each, and fails the runs it cannot move with the reason', async () => {
    const a = await env.pinflow.publish('batch-mig', { entry: 'hold', steps: [{ id: 'hold', type: 'wait', event: 'go', correlationKey: "'k'", timeout: '1h', onTimeout: 'late' }, { id: 'late', type: 'return', output: "'v1'" }] });
    const b = await env.pinflow.publish('batch-mig', { entry: 'pause', steps: [{ id: 'pause', type: 'wait', event: 'go', correlationKey: "'k'", timeout: '100ms', onTimeout: 'late' }, { id: 'late', type: 'return', output: "'v2'" }] });
    const waiting: string[] = [];
    for (let i = 0; i < 2; i++) waiting.push((await env.pinflow.start({ version: a.version, tenant: 't-mig' })).runId);
    const [stalled] = await startRuns('batch-stall', 't-mig', 1);
    await projected('t-mig', 'STALLED', 1);
    for (const id of waiting) await eventually(async () => (await env.pinflow.state(id)).waiting);
    const res = await call('POST', '/batches', { action: 'migrate', filter: { tenant: 't-mig' }, params: { targetVersion: b.version, mapping: { hold: 'pause' } }, by: 'ops', reason: 'shorter timeout', ratePerSecond: 50 });
    assert.equal(res.status, 201, JSON.stringify(res.json));
    const done = await finished(res.json.id);
    assert.deepEqual(done.progress, { selected: 3, pending: 0, applying: 0, done: 2, skipped: 0, failed: 1 });
    assert.equal(done.failedByReason.length, 1);
    assert.equal(done.failedByReason[0]!.code, 'MIGRATION_REFUSED');
    assert.match(done.failedByReason[0]!.example!, /is not a version of "batch-stall"/);
    const failed = (await call('GET', `/batches/${res.json.id}/items?status=FAILED`)).json.items as Json[];
    assert.deepEqual(failed.map((i) => i.runId), [stalled]);
    for (const id of waiting) {
      assert.equal(await env.pinflow.result(id), 'v2');
      // The item keeps what the migration answered (the wait step carries no output).
      const item = ((await call('GET', `/batches/${res.json.id}/items?status=DONE`)).json.items as Json[]).find((i) => i.runId === id)!;
      assert.deepEqual(item.result.carried, []);
    }
    await env.pinflow.cancel(stalled!, { by: 'test', reason: 'cleanup' });
  });

  it('the CLI creates (and dry-runs), shows and cancels a batch', async () => {
    await startRuns('batch-wait', 't-cli', 2);
    await projected('t-cli', 'RUNNING', 2);
    const cli = join(projectRoot(), 'dist', 'cli', 'pinflow.js');
    const cliEnv = { ...process.env, DATABASE_URL: env.databaseUrl, TEMPORAL_ADDRESS: temporalAddress(), TEMPORAL_NAMESPACE: env.namespace, USER: 'cli-user' };
    const run = (...args: string[]) => promisify(execFile)(process.execPath, [cli, 'batch', ...args], { env: cliEnv, encoding: 'utf8' });
    const dry = await run('create', '--action', 'cancel', '--filter', 'tenant=t-cli', '--filter', 'status=RUNNING', '--reason', 'look', '--dry-run');
    assert.match(dry.stdout, /dry run: cancel would act on 2 run\(s\); nothing was created/);
    await pinflow.batches.stop(); // keep this batch PENDING: the CLI steers it, nothing drives it
    try {
      const created = JSON.parse((await run('create', '--action', 'cancel', '--filter', 'tenant=t-cli', '--reason', 'cli test', '--rate', '2', '--json')).stdout) as BatchView;
      assert.equal(created.by, 'cli-user');
      assert.equal(created.ratePerSecond, 2);
      assert.equal(created.progress.selected, 2);
      assert.match((await run('show', created.id)).stdout, new RegExp(`batch ${created.id}: cancel RUNNING, by cli-user: cli test\n  selected 2: done 0`));
      assert.match((await run('cancel', created.id, '--reason', 'changed my mind')).stdout, /cancel CANCELLED[\s\S]*skipped 2 BATCH_CANCELLED: batch cancelled/);
      const refused = await run('resume', created.id, '--reason', 'x').then(() => ({ code: 0, stderr: '' }), (err: { code: number; stderr: string }) => err);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /BATCH_STATE_CONFLICT/);
    } finally {
      pinflow.batches.start();
    }
    for (const r of (await env.pinflow.listRuns({ tenant: 't-cli', status: 'RUNNING' })).runs) await env.pinflow.cancel(r.id, { by: 'test', reason: 'cleanup' });
  });

  it('refuses bad input with a stable code naming the field', async () => {
    const cases: Array<[unknown, number, string, RegExp]> = [
      [{ action: 'explode', filter: { tenant: 'x' }, by: 'ops', reason: 'r' }, 400, 'REQUEST_INVALID', /body\.action/],
      [{ action: 'cancel', filter: {}, by: 'ops', reason: 'r' }, 400, 'REQUEST_INVALID', /body\.filter: an empty filter would select every run/],
      [{ action: 'cancel', filter: { status: 'SLEEPING' }, by: 'ops', reason: 'r' }, 400, 'REQUEST_INVALID', /body\.filter\.status/],
      [{ action: 'cancel', filter: { tenant: 'x', metadata: { 'bad key': 1 } }, by: 'ops', reason: 'r' }, 400, 'REQUEST_INVALID', /metadata key "bad key" is invalid/],
      [{ action: 'cancel', filter: { tenant: 'x' }, by: 'ops' }, 400, 'REQUEST_INVALID', /body\.reason/],
      [{ action: 'cancel', filter: { tenant: 'x' }, reason: 'r' }, 400, 'REQUEST_INVALID', /body\.by/],
      [{ action: 'skip', filter: { tenant: 'x' }, by: 'ops', reason: 'r' }, 400, 'REQUEST_INVALID', /body\.params\.output/],
      [{ action: 'cancel', filter: { tenant: 'x' }, params: { force: true }, by: 'ops', reason: 'r' }, 400, 'REQUEST_INVALID', /body\.params: unknown field\(s\) force/],
      [{ action: 'migrate', filter: { tenant: 'x' }, params: { targetVersion: '0'.repeat(64) }, by: 'ops', reason: 'r' }, 404, 'VERSION_NOT_FOUND', /does not exist/],
      [{ action: 'cancel', filter: { tenant: 'x' }, ratePerSecond: 0, by: 'ops', reason: 'r' }, 400, 'REQUEST_INVALID', /body\.ratePerSecond/],
    ];
    for (const [body, status, code, message] of cases) {
      const res = await call('POST', '/batches', body);
      assert.equal(res.status, status, JSON.stringify({ body, got: res.json }));
      assert.equal(res.json.error.code, code);
      assert.match(res.json.error.message, message);
    }
    const unknown = await call('GET', '/batches/batch-nope');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error.code, 'BATCH_NOT_FOUND');
    assert.equal((await call('POST', '/batches/batch-nope/cancel', { by: 'ops', reason: 'r' })).json.error.code, 'BATCH_NOT_FOUND');
    assert.equal((await call('GET', '/batches/batch-nope/items')).json.error.code, 'BATCH_NOT_FOUND');
    assert.equal((await call('POST', '/batches/batch-nope/pause', { by: 'ops' })).json.error.code, 'REQUEST_INVALID');
    assert.equal((await call('GET', '/batches?state=DONE')).json.error.code, 'REQUEST_INVALID');
    // The new run id of a rerun/replay batch is a function of batch and source run.
    assert.equal(batchRunId('batch-1', 'run-a', 'rerun'), batchRunId('batch-1', 'run-a', 'rerun'));
    assert.notEqual(batchRunId('batch-1', 'run-a', 'rerun'), batchRunId('batch-2', 'run-a', 'rerun'));
  });

  it('survives a SIGKILL of the API process halfway through 500 runs: every run is acted on exactly once', async function () {
    this.timeout(420_000);
    await pinflow.batches.stop(); // only the API processes drive batches in this test
    const tenant = 't-restart';
    const ids: string[] = [];
    const queue = Array.from({ length: 500 }, (_, i) => i);
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
          ids.push((await env.pinflow.start({ definition: 'batch-stall', tenant, input: { n: i }, runId: `restart-${i}` })).runId);
        }
      }),
    );
    await projected(tenant, 'STALLED', 500);
    const startedAt = Date.now();
    const apiEnv = { PINFLOW_BATCH_POLL_MS: '300', PINFLOW_BATCH_LEASE_MS: '3000', PINFLOW_RECONCILE_INTERVAL_MS: '0', PINFLOW_EVENT_SWEEP_MS: '0' };
    const first = await spawnApiProcess(env, 'rpcs', apiEnv);
    let second: Awaited<ReturnType<typeof spawnApiProcess>> | undefined;
    const http = async (base: string, method: string, path: string, body?: unknown) => {
      const auth = { authorization: `Bearer ${first.key}` };
      const res = await fetch(`${base}${path}`, { method, headers: body !== undefined ? { ...auth, 'content-type': 'application/json' } : auth, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      return { status: res.status, json: (await res.json()) as Json };
    };
    try {
      const created = await http(first.url, 'POST', '/batches', { action: 'skip', filter: { tenant, status: 'STALLED' }, params: { output: { ok: true } }, by: 'ops', reason: 'restart test', ratePerSecond: 20, concurrency: 4 });
      assert.equal(created.status, 201, JSON.stringify(created.json));
      const id = created.json.id as string;
      assert.equal(created.json.progress.selected, 500);
      await eventually(async () => (await batch(id)).progress.done >= 200, { timeoutMs: 120_000, what: 'half of the batch done' });
      first.kill('SIGKILL');
      await exitOf(first);
      const atKill = await batch(id);
      assert.equal(atKill.state, 'RUNNING');
      assert.ok(atKill.progress.done < 500, JSON.stringify(atKill.progress));
      second = await spawnApiProcess(env, 'rpcs', apiEnv);
      const end = await eventually(async () => {
        const b = (await http(second!.url, 'GET', `/batches/${id}`)).json as BatchView;
        return b.state === 'COMPLETED' ? b : undefined;
      }, { timeoutMs: 180_000, what: 'the batch to complete after the restart' });
      const p = end.progress;
      assert.equal(p.selected, 500);
      assert.equal(p.done + p.skipped + p.failed, p.selected);
      assert.deepEqual({ done: p.done, skipped: p.skipped, failed: p.failed }, { done: 500, skipped: 0, failed: 0 }, JSON.stringify(end));
      // Temporal, not only Postgres: exactly one stall decision per run, carrying this batch's update id.
      const counts = new Map<number, number>();
      const pending = [...ids];
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          for (let runId = pending.shift(); runId !== undefined; runId = pending.shift()) {
            const history = await env.client.workflow.getHandle(runId).fetchHistory();
            const accepted = (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'pinflow.resolveStall');
            assert.ok(accepted.every((e) => e.workflowExecutionUpdateAcceptedEventAttributes!.acceptedRequest!.meta!.updateId === `batch:${id}`));
            counts.set(accepted.length, (counts.get(accepted.length) ?? 0) + 1);
          }
        }),
      );
      assert.deepEqual([...counts], [[1, 500]]);
      const restarted = (await http(second.url, 'GET', `/batches/${id}/items?status=DONE&limit=1000`)).json.items as Json[];
      assert.equal(restarted.length, 500);
      console.log(`      restart: killed at ${atKill.progress.done} done / ${atKill.progress.applying} applying; ${restarted.filter((i) => i.attempts > 1).length} item(s) claimed again, ${restarted.filter((i) => i.code === 'APPLIED_BEFORE_RESTART').length} found already applied in the history; batch took ${Math.round((Date.now() - startedAt) / 1000)} s`);
    } finally {
      if (first.exitCode === null && first.signalCode === null) first.kill('SIGKILL');
      if (second) {
        second.kill('SIGTERM');
        await exitOf(second);
      }
    }
  });
});
