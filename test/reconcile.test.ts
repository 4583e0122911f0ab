import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { createApi } from '../client/http';
import { Pinflow } from '../client/pinflow';
import { NOT_FOUND_GUARD_MIN, Reconciler, totalCorrected, type ReconcileTotals } from '../client/reconcile';
import { projectRoot } from '../db/paths';
import { defineRpc } from '../rpc/registry';
import { rpcs } from './fixtures/rpcs';
import { claimNamespace, createEnv, createKey, type Env, eventually, exitOf, spawnApiProcess, temporalAddress, withKey } from './support/harness';

// Runs changed from Temporal (terminate, cancel, reset, delete) and the
// reconciler that makes the projection and the correlation index follow.

/** Registered for publish only: the worker lacks it, so a run calling it stalls (rpc_missing). */
const missing = defineRpc('reconcile.missing', {
  input: z.object({ a: z.number() }),
  output: z.object({ a: z.number() }),
  handler: ({ a }) => ({ a }),
});

const waitGraph = {
  entry: 'closed',
  steps: [
    { id: 'closed', type: 'wait', event: 'ticket.closed', correlationKey: 'input.ticket', timeout: '1h', onTimeout: 'late', saveAs: 'closed', next: 'done' },
    { id: 'done', type: 'return', output: 'vars.closed.payload' },
    { id: 'late', type: 'return', output: { timedOut: true } },
  ],
};
const stallGraph = {
  entry: 'call',
  steps: [
    { id: 'call', type: 'rpc', rpc: 'reconcile.missing', input: { a: 'input.a' }, next: 'done' },
    { id: 'done', type: 'return', output: 'steps.call.a' },
  ],
};
const quickGraph = {
  entry: 'call',
  steps: [
    { id: 'call', type: 'rpc', rpc: 'math.add', input: { a: 'input.a', b: 'input.b' }, next: 'done' },
    { id: 'done', type: 'return', output: 'steps.call.sum' },
  ],
};

let seq = 0;
const uniq = (p: string) => `${p}-${Date.now().toString(36)}-${++seq}`;
const corrected = (t: ReconcileTotals, runId: string) => t.corrections.filter((c) => c.runId === runId).map((c) => c.kind);

describe('reconciler: runs changed from Temporal are closed in the projection', function () {
  this.timeout(240_000);
  let env: Env;
  /** A run nobody touches: waiting throughout, it must stay RUNNING with its wait OPEN. */
  let bystander: string;
  let bystanderTicket: string;
  /** A run that completed normally before any pass. */
  let completed: string;
  let completedClosedAt: string | null;

  before(async () => {
    env = await createEnv('reconcile', rpcs);
    const publisher = new Pinflow({ client: env.client, store: env.store, rpcs: [...rpcs, missing] });
    await publisher.publish('reconcile-wait', waitGraph);
    await publisher.publish('reconcile-stall', stallGraph);
    await publisher.publish('reconcile-quick', quickGraph);
    await env.startWorker(rpcs); // without reconcile.missing
    completed = (await env.pinflow.start({ definition: 'reconcile-quick', input: { a: 1, b: 2 } })).runId;
    assert.equal(await env.pinflow.result(completed), 3);
    completedClosedAt = (await eventually(async () => {
      const r = await env.pinflow.getRun(completed);
      return r.status === 'COMPLETED' ? r : undefined;
    }, { what: 'the completed run projected' })).closedAt;
    bystanderTicket = uniq('T-bystander');
    bystander = await startWaiting(bystanderTicket);
  });
  after(async () => env?.stop());

  /** Start a waiting run; returns once its wait is OPEN in the correlation index. */
  async function startWaiting(ticket: string): Promise<string> {
    const { runId } = await env.pinflow.start({ definition: 'reconcile-wait', input: { ticket } });
    await eventually(async () => (await env.pinflow.events.listWaits({ runId })).length === 1, { what: `the wait of ${runId} to open`, timeoutMs: 60_000 });
    return runId;
  }
  async function startStalled(): Promise<string> {
    const { runId } = await env.pinflow.start({ definition: 'reconcile-stall', input: { a: 1 } });
    await eventually(async () => (await env.pinflow.getRun(runId)).status === 'STALLED', { what: `run ${runId} to stall`, timeoutMs: 60_000 });
    return runId;
  }
  const stallColumns = async (runId: string) =>
    (await env.db.query<{ n: number }>({ text: `SELECT count(*)::int AS n FROM runs WHERE id = $1 AND (stall_id IS NOT NULL OR stall_reason IS NOT NULL OR stalled_at IS NOT NULL)`, values: [runId] }))[0]!.n;
  const waitsOf = async (runId: string, status: string) => (await env.pinflow.events.listWaits({ runId, status: status as 'OPEN' })).length;
  const terminated = async (runId: string) =>
    eventually(async () => ((await env.client.workflow.getHandle(runId).describe()).status.name === 'TERMINATED' ? true : undefined), { what: `${runId} terminated in Temporal` });

  it('closes a terminated waiting run and a terminated stalled run in one pass: TERMINATED, closed-at, no open wait, stall cleared; a later event does not route to them', async () => {
    const ticket = uniq('T-term');
    const waiting = await startWaiting(ticket);
    const stalled = await startStalled();
    await env.client.workflow.getHandle(waiting).terminate('ops: closed by hand');
    await env.client.workflow.getHandle(stalled).terminate('ops: abandoned');
    await terminated(waiting);
    await terminated(stalled);

    // Before the pass the projection lies, as it did before the reconciler existed.
    assert.equal((await env.pinflow.getRun(waiting)).status, 'RUNNING');
    assert.equal(await waitsOf(waiting, 'OPEN'), 1);
    assert.equal((await env.pinflow.getRun(stalled)).status, 'STALLED');

    const totals = await env.pinflow.reconcile();
    assert.deepEqual(corrected(totals, waiting), ['terminated']);
    assert.deepEqual(corrected(totals, stalled), ['terminated']);
    assert.equal(totals.corrected.terminated, 2, JSON.stringify(totals));
    assert.equal(totalCorrected(totals), 2, 'nothing else is corrected: the completed and the running run are left alone');
    assert.equal(totals.errors, 0);
    assert.ok(totals.checked >= 3, `checked ${totals.checked}: the two terminated runs and the bystander at least`);

    for (const runId of [waiting, stalled]) {
      const run = await env.pinflow.getRun(runId);
      assert.equal(run.status, 'TERMINATED', runId);
      assert.ok(run.closedAt, `${runId} has a closed-at`);
      assert.equal(run.stall, null);
      assert.equal(run.currentStep, null);
      assert.match(run.errorSummary ?? '', /^Terminated: terminated in Temporal/);
      assert.equal(run.error?.type, 'Terminated');
      assert.equal(await stallColumns(runId), 0, 'the stall columns are cleared');
      assert.deepEqual(run.steps.filter((s) => s.status === 'RUNNING').map((s) => s.stepInstance), [], 'no step attempt is left open');
      assert.equal(await waitsOf(runId, 'OPEN'), 0, 'no open wait in the correlation index');
    }
    assert.match((await env.pinflow.getRun(waiting)).errorSummary ?? '', /ops: closed by hand/, 'the termination reason is kept');
    assert.equal(await waitsOf(waiting, 'CANCELLED'), 1);
    assert.equal((await env.pinflow.getRun(waiting)).steps.find((s) => s.stepId === 'closed')?.status, 'CANCELLED');

    // The event for the terminated run's key finds no open wait: UNMATCHED, routed to nobody.
    const outcome = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: { by: 'ann' }, eventId: uniq('evt') });
    assert.equal(outcome.status, 'UNMATCHED');
    assert.deepEqual(outcome.runIds, []);
    // With a time to live it is buffered, still for nobody.
    const buffered = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: {}, eventId: uniq('evt'), ttl: '1h' });
    assert.equal(buffered.status, 'BUFFERED');
    assert.deepEqual(buffered.runIds, []);

    // The running run and the completed run are untouched.
    const b = await env.pinflow.getRun(bystander);
    assert.equal(b.status, 'RUNNING');
    assert.equal(await waitsOf(bystander, 'OPEN'), 1);
    const c = await env.pinflow.getRun(completed);
    assert.equal(c.status, 'COMPLETED');
    assert.equal(c.closedAt, completedClosedAt);
    assert.equal(c.errorSummary, null);
  });

  it('is idempotent: a second pass corrects nothing', async () => {
    const totals = await env.pinflow.reconcile();
    assert.equal(totalCorrected(totals), 0, JSON.stringify(totals));
    assert.equal(totals.errors, 0);
    assert.equal((await env.pinflow.getRun(bystander)).status, 'RUNNING');
    // In pages of one, two describes at a time: every open run is checked once.
    const open = (await env.db.query<{ n: number }>({ text: `SELECT count(*)::int AS n FROM runs WHERE status IN ('RUNNING', 'STALLED')` }))[0]!.n;
    const paged = await new Reconciler({ client: env.client, store: env.store, pageSize: 1, concurrency: 2 }).pass();
    assert.equal(paged.checked, open);
    assert.equal(totalCorrected(paged), 0);
  });

  it('a run cancelled from Temporal closes itself CANCELLED; a lost close write is filled in after the grace period, never before', async () => {
    const runId = await startWaiting(uniq('T-cancel'));
    await env.client.workflow.getHandle(runId).cancel();
    const run = await eventually(async () => {
      const r = await env.pinflow.getRun(runId);
      return r.status === 'CANCELLED' ? r : undefined;
    }, { what: 'the run to write its own CANCELLED', timeoutMs: 60_000 });
    assert.equal(await waitsOf(runId, 'OPEN'), 0);
    const first = await env.pinflow.reconcile();
    assert.deepEqual(corrected(first, runId), [], 'a closed row is not looked at');
    assert.equal((await env.pinflow.getRun(runId)).closedAt, run.closedAt);

    // The run's close write lost (a worker died with it queued): the row and its wait are open again.
    await env.db.query({ text: `UPDATE runs SET status = 'RUNNING', closed_at = NULL, error_summary = NULL WHERE id = $1`, values: [runId] });
    await env.db.query({ text: `UPDATE run_details SET error = NULL WHERE run_id = $1`, values: [runId] });
    await env.db.query({ text: `UPDATE run_waits SET status = 'OPEN', closed_at = NULL WHERE run_id = $1`, values: [runId] });
    // Its step writes too may still be on their way: the wait step's row is back to RUNNING.
    await env.db.query({ text: `UPDATE run_steps SET status = 'RUNNING', finished_at = NULL WHERE run_id = $1 AND step_id = 'closed'`, values: [runId] });
    // Inside the grace period a write may be on its way: left alone.
    const early = await env.pinflow.reconcile();
    assert.deepEqual(corrected(early, runId), []);
    assert.equal((await env.pinflow.getRun(runId)).status, 'RUNNING');
    const prompt = new Reconciler({ client: env.client, store: env.store, graceMs: 0 });
    const late = await prompt.pass();
    assert.deepEqual(corrected(late, runId), ['cancelled']);
    const fixed = await env.pinflow.getRun(runId);
    assert.equal(fixed.status, 'CANCELLED');
    assert.ok(fixed.closedAt);
    assert.equal(await waitsOf(runId, 'OPEN'), 0);
    assert.equal(fixed.steps.find((s) => s.stepId === 'closed')?.status, 'RUNNING', "a run that closed itself keeps its step rows for its own writes (a CANCELLED row would refuse them)");
    assert.equal(totalCorrected(await prompt.pass()), 0);
  });

  it('never closes a run Temporal says is running, even with no grace period; a reset run follows its new execution', async () => {
    const ticket = uniq('T-reset');
    const runId = await startWaiting(ticket);
    const before = await env.pinflow.getRun(runId);
    const prompt = new Reconciler({ client: env.client, store: env.store, graceMs: 0 });
    assert.equal(totalCorrected(await prompt.pass()), 0, 'running runs are not corrected');
    assert.equal((await env.pinflow.getRun(bystander)).status, 'RUNNING');

    // Reset to its last completed workflow task, as `temporal workflow reset` does.
    const handle = env.client.workflow.getHandle(runId);
    const history = await handle.fetchHistory();
    const EventType = temporal.api.enums.v1.EventType;
    const lastTask = [...(history.events ?? [])].reverse().find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED);
    assert.ok(lastTask?.eventId, 'a completed workflow task to reset to');
    const reset = await env.client.workflowService.resetWorkflowExecution({
      namespace: env.namespace,
      workflowExecution: { workflowId: runId, runId: before.temporalRunId! },
      reason: 'ops: reset from the test',
      workflowTaskFinishEventId: lastTask.eventId,
      requestId: uniq('reset'),
    });
    const newRunId = reset.runId;
    assert.notEqual(newRunId, before.temporalRunId);
    await eventually(async () => ((await handle.describe()).runId === newRunId ? true : undefined), { what: 'Temporal to run the new execution' });

    const totals = await prompt.pass();
    assert.deepEqual(corrected(totals, runId), ['followed']);
    const after = await env.pinflow.getRun(runId);
    assert.equal(after.status, 'RUNNING', 'a reset run whose new execution runs stays open');
    assert.equal(after.temporalRunId, newRunId);
    assert.equal(after.closedAt, null);
    assert.deepEqual(corrected(await prompt.pass(), runId), [], 'followed once');

    // The new execution still resumes on its event.
    const outcome = await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: ticket, payload: { by: 'reset' }, eventId: uniq('evt') });
    assert.deepEqual(outcome.runIds, [runId]);
    assert.deepEqual(await env.client.workflow.getHandle(runId).result(), { by: 'reset' });
  });

  it('closes a run Temporal no longer knows (deleted, as namespace retention does) TERMINATED, once it is older than the grace period', async () => {
    const runId = await startWaiting(uniq('T-deleted'));
    const { temporalRunId } = await env.pinflow.getRun(runId);
    await env.client.workflowService.deleteWorkflowExecution({ namespace: env.namespace, workflowExecution: { workflowId: runId, runId: temporalRunId! } });
    await eventually(
      async () =>
        env.client.workflow
          .getHandle(runId)
          .describe()
          .then(
            () => undefined,
            (err: unknown) => err instanceof WorkflowNotFoundError || undefined,
          ),
      { what: 'Temporal to forget the run', timeoutMs: 60_000 },
    );
    // Started moments ago: inside the default grace period it is left alone.
    assert.deepEqual(corrected(await env.pinflow.reconcile(), runId), []);
    const totals = await new Reconciler({ client: env.client, store: env.store, graceMs: 0 }).pass();
    assert.deepEqual(corrected(totals, runId), ['notFound']);
    const run = await env.pinflow.getRun(runId);
    assert.equal(run.status, 'TERMINATED');
    assert.equal(run.error?.type, 'NotFoundInTemporal');
    assert.ok(run.closedAt);
    assert.equal(await waitsOf(runId, 'OPEN'), 0);
  });

  it('pointed at the wrong namespace (every open run unknown there), a pass closes none of them and says why', async () => {
    const ids: string[] = [];
    for (let i = 0; i < NOT_FOUND_GUARD_MIN; i++) ids.push(await startWaiting(uniq(`T-wrong-ns-${i}`)));
    const elsewhere = new Client({ connection: env.client.connection, namespace: claimNamespace() });
    const lines: string[] = [];
    const totals = await new Reconciler({ client: elsewhere, store: env.store, graceMs: 0, log: (l) => lines.push(l) }).pass();
    assert.equal(totalCorrected(totals), 0, JSON.stringify(totals.corrections));
    assert.ok(totals.errors >= NOT_FOUND_GUARD_MIN, `errors ${totals.errors}`);
    assert.ok(lines.some((l) => /are unknown to Temporal; not closing them: is this process pointed at the right Temporal server and namespace/.test(l)), lines.join('\n'));
    for (const id of ids) assert.equal((await env.pinflow.getRun(id)).status, 'RUNNING');
    // The right namespace: they run, nothing to correct.
    const right = await new Reconciler({ client: env.client, store: env.store, graceMs: 0 }).pass();
    assert.deepEqual(ids.flatMap((id) => corrected(right, id)), []);
  });

  it('POST /reconcile runs a pass and answers its totals; `pinflow reconcile` prints the corrections and totals and exits 0', async () => {
    const viaHttp = await startWaiting(uniq('T-http'));
    await env.client.workflow.getHandle(viaHttp).terminate('ops: http');
    await terminated(viaHttp);
    const api = withKey(createApi({ pinflow: env.pinflow }), await createKey(env));
    try {
      const res = await api.inject({ method: 'POST', url: '/reconcile' });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json<ReconcileTotals>();
      assert.equal(body.corrected.terminated, 1);
      assert.deepEqual(corrected(body, viaHttp), ['terminated']);
      assert.equal(body.errors, 0);
      assert.equal(typeof body.checked, 'number');
      assert.equal(body.corrected.followed, 0, 'every kind is listed');
      const bad = await api.inject({ method: 'POST', url: '/reconcile?all=1' });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json<{ error: { code: string } }>().error.code, 'REQUEST_INVALID');
    } finally {
      await api.close();
    }
    assert.equal((await env.pinflow.getRun(viaHttp)).status, 'TERMINATED');

    const viaCli = await startWaiting(uniq('T-cli'));
    await env.client.workflow.getHandle(viaCli).terminate('ops: cli');
    await terminated(viaCli);
    const cli = join(projectRoot(), 'dist', 'cli', 'pinflow.js');
    const cliEnv = { ...process.env, DATABASE_URL: env.databaseUrl, TEMPORAL_ADDRESS: temporalAddress(), TEMPORAL_NAMESPACE: env.namespace };
    const res = await promisify(execFile)(process.execPath, [cli, 'reconcile'], { env: cliEnv, encoding: 'utf8' });
    assert.match(res.stdout, new RegExp(`reconciler: run ${viaCli}: RUNNING → TERMINATED \\(terminated\\): Terminated: terminated in Temporal.*ops: cli`));
    assert.match(res.stdout, /reconciler: checked \d+, corrected 1 \(terminated 1\), errors 0 in \d+ ms/);
    assert.equal((await env.pinflow.getRun(viaCli)).status, 'TERMINATED');
    const again = await promisify(execFile)(process.execPath, [cli, 'reconcile', '--json'], { env: cliEnv, encoding: 'utf8' });
    const json = JSON.parse(again.stdout) as ReconcileTotals;
    assert.equal(totalCorrected(json), 0);
    // Without TEMPORAL_ADDRESS it says what it needs (exit 2 with the code).
    const withoutTemporal: NodeJS.ProcessEnv = { ...cliEnv };
    delete withoutTemporal.TEMPORAL_ADDRESS;
    const noTemporal = await promisify(execFile)(process.execPath, [cli, 'reconcile'], { env: withoutTemporal, encoding: 'utf8' }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(noTemporal.code, 2);
    assert.match(noTemporal.stderr, /CONFIG_INVALID: pinflow reconcile needs TEMPORAL_ADDRESS/);
  });
  it('the API process reconciles on its own every PINFLOW_RECONCILE_INTERVAL_MS, logging each correction', async () => {
    const api = await spawnApiProcess(env, 'rpcs', { PINFLOW_RECONCILE_INTERVAL_MS: '1000' });
    try {
      assert.match(api.output.join(''), /reconciler: a pass over the open runs every 1000 ms/);
      const runId = await startWaiting(uniq('T-periodic'));
      await env.client.workflow.getHandle(runId).terminate('ops: periodic');
      await eventually(async () => (await env.pinflow.getRun(runId)).status === 'TERMINATED', { what: 'the API process to reconcile the run', timeoutMs: 60_000 });
      assert.equal(await waitsOf(runId, 'OPEN'), 0);
      await eventually(() => Promise.resolve(api.output.join('').includes(`reconciler: run ${runId}: RUNNING → TERMINATED (terminated)`)), { what: 'the correction logged' });
      assert.equal((await env.pinflow.getRun(bystander)).status, 'RUNNING');
    } finally {
      api.kill('SIGTERM');
      await exitOf(api);
    }
  });
});
