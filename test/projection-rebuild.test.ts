import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { z } from 'zod';
import { Pinflow } from '../client/pinflow';
import { diffRuns, dumpRun, projectionPass, type Drift, type RunResult, type RunRows } from '../client/projection-rebuild';
import { defineRpc } from '../rpc/registry';
import { rpcs } from './fixtures/rpcs';
import { projectRoot } from '../db/paths';
import { createEnv, type Env, eventually, temporalAddress } from './support/harness';

// The projection verified against Temporal history and rebuilt from it
// (client/projection-rebuild.ts): runs of every shape are compared with what
// their history says (no drift), then their rows are deleted and corrupted,
// verify finds each corruption, and rebuild gives back the rows from before.

/** Registered for publish only: the worker lacks it, so a run calling it stalls (rpc_missing). */
const missing = defineRpc('rebuild.missing', {
  input: z.object({ a: z.number() }),
  output: z.object({ sum: z.number() }),
  handler: ({ a }) => ({ sum: a }),
});

const graphs = {
  quick: {
    entry: 'prep',
    steps: [
      { id: 'prep', type: 'assign', set: { b: 'input.a * 2' }, next: 'call' },
      { id: 'call', type: 'rpc', rpc: 'math.add', input: { a: 'input.a', b: 'vars.b' }, next: 'each' },
      {
        id: 'each',
        type: 'forEach',
        items: '[1, 2, 3]',
        concurrency: 2,
        body: { entry: 'inner', steps: [{ id: 'inner', type: 'rpc', rpc: 'math.add', input: { a: 'item', b: 1 } }] },
        next: 'done',
      },
      { id: 'done', type: 'return', output: 'steps.call.sum' },
    ],
  },
  flaky: {
    entry: 'call',
    steps: [
      { id: 'call', type: 'rpc', rpc: 'test.flaky', input: { succeedOnAttempt: 3 }, next: 'done' },
      { id: 'done', type: 'return', output: 'steps.call.attempt' },
    ],
  },
  slow: {
    entry: 'call',
    steps: [
      { id: 'call', type: 'rpc', rpc: 'test.slow', input: { ms: 'input.ms' }, next: 'done' },
      { id: 'done', type: 'return', output: 'steps.call.sleptMs' },
    ],
  },
  boom: {
    entry: 'call',
    steps: [{ id: 'call', type: 'rpc', rpc: 'test.boom', input: { why: 'input.why' } }],
  },
  wait: {
    entry: 'closed',
    steps: [
      { id: 'closed', type: 'wait', event: 'ticket.closed', correlationKey: 'input.ticket', timeout: '1h', onTimeout: 'late', saveAs: 'closed', next: 'done' },
      { id: 'done', type: 'return', output: 'vars.closed.payload' },
      { id: 'late', type: 'return', output: { timedOut: true } },
    ],
  },
  stallV1: {
    entry: 'call',
    steps: [
      { id: 'call', type: 'rpc', rpc: 'rebuild.missing', input: { a: 'input.a' }, next: 'done' },
      { id: 'done', type: 'return', output: 'steps.call.sum' },
    ],
  },
  stallV2: {
    entry: 'call',
    steps: [
      { id: 'call', type: 'rpc', rpc: 'math.add', input: { a: 'input.a', b: 100 }, next: 'done' },
      { id: 'done', type: 'return', output: 'steps.call.sum' },
    ],
  },
};

let seq = 0;
const uniq = (p: string) => `${p}-${Date.now().toString(36)}-${++seq}`;

describe('projection verify and rebuild from Temporal history', function () {
  this.timeout(600_000);
  let env: Env;
  const runs: Record<string, string> = {};
  let baseline: Map<string, RunRows>;

  const statusOf = async (runId: string) => (await env.pinflow.getRun(runId).catch(() => undefined))?.status;
  const settled = (runId: string, status: string) => eventually(async () => (await statusOf(runId)) === status, { what: `run ${runId} ${status} in the projection`, timeoutMs: 120_000 });
  const dumpAll = async () => new Map(await Promise.all(Object.values(runs).map(async (id) => [id, await dumpRun(env.db, id)] as const)));
  const pass = async (write: boolean, runIds = Object.values(runs), now?: number) => {
    const results: RunResult[] = [];
    const totals = await projectionPass({ client: env.client, db: env.db }, { runIds }, { write, onRun: (r) => results.push(r), ...(now !== undefined ? { now } : {}) });
    return { totals, results, byRun: new Map(results.map((r) => [r.runId, r])) };
  };
  const fields = (drift: Drift[]) => drift.map((d) => `${d.table}:${d.key}:${d.field}`);

  before(async () => {
    env = await createEnv('rebuild', rpcs);
    const publisher = new Pinflow({ client: env.client, store: env.store, rpcs: [...rpcs, missing] });
    await publisher.publish('rb-quick', graphs.quick);
    await publisher.publish('rb-flaky', graphs.flaky);
    await publisher.publish('rb-boom', graphs.boom);
    await publisher.publish('rb-slow', graphs.slow);
    await publisher.publish('rb-wait', graphs.wait);
    await publisher.publish('rb-stall', graphs.stallV1);
    await publisher.publish('rb-skip', graphs.stallV1);
    const v2 = (await publisher.publish('rb-stall', graphs.stallV2)).version;
    await env.startWorker(rpcs); // without rebuild.missing

    runs.completed = (await env.pinflow.start({ definition: 'rb-quick', input: { a: 1 }, metadata: { customer: 'c-1' } })).runId;
    runs.retried = (await env.pinflow.start({ definition: 'rb-flaky', input: {} })).runId;
    runs.failed = (await env.pinflow.start({ definition: 'rb-boom', input: { why: 'bad card' } })).runId;
    const ticket = uniq('T-open');
    runs.waiting = (await env.pinflow.start({ definition: 'rb-wait', input: { ticket } })).runId;
    const resolvedTicket = uniq('T-resolved');
    runs.resolved = (await env.pinflow.start({ definition: 'rb-wait', input: { ticket: resolvedTicket } })).runId;
    runs.cancelled = (await env.pinflow.start({ definition: 'rb-wait', input: { ticket: uniq('T-cancel') } })).runId;
    runs.terminated = (await env.pinflow.start({ definition: 'rb-wait', input: { ticket: uniq('T-term') } })).runId;
    runs.stalled = (await env.pinflow.start({ definition: 'rb-skip', input: { a: 1 } })).runId;
    runs.skipped = (await env.pinflow.start({ definition: 'rb-skip', input: { a: 2 } })).runId;
    runs.migrated = (await env.pinflow.start({ definition: 'rb-stall', version: (await env.pinflow.listVersions('rb-stall')).find((v) => v.hash !== v2)!.hash, input: { a: 3 } })).runId;

    const waitOpen = (runId: string) => eventually(async () => (await env.pinflow.events.listWaits({ runId, status: 'OPEN' })).length === 1, { what: `the wait of ${runId} open`, timeoutMs: 120_000 });
    await Promise.all([runs['waiting'], runs['resolved'], runs['cancelled'], runs['terminated']].map(waitOpen));
    await env.pinflow.submitEvent({ name: 'ticket.closed', correlationKey: resolvedTicket, payload: { by: 'ann' }, eventId: uniq('evt') });
    await env.pinflow.cancel(runs['cancelled'], { by: 'ops', reason: 'duplicate ticket' });
    await env.client.workflow.getHandle(runs['terminated']).terminate('ops: closed by hand');
    await Promise.all([runs['stalled'], runs['skipped'], runs['migrated']].map((id) => settled(id, 'STALLED')));
    await env.pinflow.resolveStall(runs['skipped'], { action: 'skip', by: 'ops', reason: 'paid by hand', output: { sum: 7 } });
    await env.pinflow.migrate(runs['migrated'], { targetVersion: v2, by: 'ops', reason: 'rpc replaced' });

    await Promise.all([
      settled(runs['completed'], 'COMPLETED'),
      settled(runs['retried'], 'COMPLETED'),
      settled(runs['failed'], 'FAILED'),
      settled(runs['resolved'], 'COMPLETED'),
      settled(runs['cancelled'], 'CANCELLED'),
      settled(runs['skipped'], 'COMPLETED'),
      settled(runs['migrated'], 'COMPLETED'),
    ]);
    // The terminated run is closed in the projection by the reconciler, as in production.
    await eventually(async () => {
      await env.pinflow.reconcile();
      return (await statusOf(runs['terminated']!)) === 'TERMINATED';
    }, { what: 'the terminated run reconciled', timeoutMs: 120_000 });
    // Let every run's writes land (the cancelled run's close, the resolved wait): the rows no longer change.
    // Four reads in a row (eventually's polls) that agree: the rows no longer change.
    let last: Map<string, RunRows> | undefined;
    let agreeing = 0;
    await eventually(async () => {
      const now = await dumpAll();
      const still = last !== undefined && [...now].every(([id, rows]) => diffRuns(id, rows, last!.get(id)!).length === 0);
      agreeing = still ? agreeing + 1 : 0;
      last = now;
      return agreeing >= 3;
    }, { what: 'the projection at rest', timeoutMs: 60_000 });
    baseline = await dumpAll();
  });
  after(async () => env?.stop());

  it('the live projection of runs of every shape is what their histories say: verify finds no drift', async () => {
    // Sanity: the shapes are there.
    assert.equal(baseline.get(runs['retried']!)!.steps['call#1.1']?.status, 'FAILED');
    assert.equal(baseline.get(runs['retried']!)!.steps['call#1.3']?.status, 'COMPLETED');
    assert.equal(baseline.get(runs['waiting']!)!.waits[Object.keys(baseline.get(runs['waiting']!)!.waits)[0]!]?.status, 'OPEN');
    assert.equal(baseline.get(runs['stalled']!)!.run?.status, 'STALLED');
    assert.ok(Object.keys(baseline.get(runs['skipped']!)!.decisions).some((k) => k.endsWith('/skip')));
    assert.ok(Object.keys(baseline.get(runs['migrated']!)!.decisions).some((k) => k.endsWith('/migrate')));
    assert.ok(Object.keys(baseline.get(runs['cancelled']!)!.decisions).some((k) => k.endsWith('/cancel')));
    assert.equal(Object.keys(baseline.get(runs['completed']!)!.steps).filter((k) => k.startsWith('each#') || k.startsWith('inner[')).length, 4, 'the forEach and its three items');

    const { totals, results } = await pass(false);
    const drifted = results.filter((r) => r.outcome !== 'ok');
    assert.deepEqual(drifted.map((r) => ({ runId: r.runId, outcome: r.outcome, error: r.error, drift: r.drift })), [], 'no drift');
    assert.equal(totals.checked, Object.keys(runs).length);
    assert.equal(totals.errors, 0);
    // Verify changed nothing.
    const now = await dumpAll();
    for (const [id, rows] of baseline) assert.deepEqual(now.get(id), rows, `run ${id} untouched by verify`);
  });

  it('verify finds each kind of corruption, and rebuild gives back the rows from before; a second rebuild changes nothing', async () => {
    const q = (text: string, ...values: unknown[]) => env.db.query({ text, values });
    // Deleted: the completed run's step rows, the waiting run's wait row, the whole row of the failed run (with its cascade).
    await q(`DELETE FROM run_steps WHERE run_id = $1`, runs['completed']!);
    await q(`DELETE FROM run_waits WHERE run_id = $1`, runs['waiting']!);
    await q(`DELETE FROM runs WHERE id = $1`, runs['failed']!);
    // Corrupted: a status, a closed-at, an attempt's status, a stall, a decision, a migrated run's version and lineage, an output.
    await q(`UPDATE runs SET status = 'RUNNING', closed_at = NULL WHERE id = $1`, runs['resolved']!);
    await q(`UPDATE runs SET closed_at = closed_at - interval '3 days' WHERE id = $1`, runs['cancelled']!);
    await q(`UPDATE run_steps SET status = 'COMPLETED' WHERE run_id = $1 AND step_instance = 'call' AND attempt = 1`, runs['retried']!);
    await q(`UPDATE runs SET status = 'RUNNING', stall_id = NULL, stall_reason = NULL, stall_rpc = NULL, stall_step = NULL, stall_details = NULL, stalled_at = NULL WHERE id = $1`, runs['stalled']!);
    await q(`DELETE FROM run_decisions WHERE run_id = $1`, runs['skipped']!);
    await q(`UPDATE run_details SET lineage = '[]'::jsonb WHERE run_id = $1`, runs['migrated']!);
    await q(`UPDATE run_details SET output = '{"forged":true}'::jsonb WHERE run_id = $1`, runs['completed']!);
    await q(`UPDATE run_waits SET status = 'OPEN', closed_at = NULL WHERE run_id = $1`, runs['terminated']!);

    const verify = await pass(false);
    const found = (name: string) => fields(verify.byRun.get(runs[name]!)!.drift);
    assert.ok(found('completed').filter((f) => f.startsWith('step:') && f.endsWith(':missing')).length >= 6, found('completed').join(' '));
    assert.ok(found('completed').includes('details::output'), found('completed').join(' '));
    assert.ok(found('waiting').some((f) => f.startsWith('wait:') && f.endsWith(':missing')), found('waiting').join(' '));
    assert.ok(found('failed').includes('run::missing') && found('failed').includes('details::missing'), found('failed').join(' '));
    assert.ok(found('resolved').includes('run::status') && found('resolved').includes('run::closed_at'), found('resolved').join(' '));
    assert.deepEqual(found('cancelled'), ['run::closed_at']);
    assert.deepEqual(found('retried'), ['step:call#1.1:status']);
    assert.ok(['run::status', 'run::stall_id', 'run::stall_reason', 'run::stall_step'].every((f) => found('stalled').includes(f)), found('stalled').join(' '));
    assert.ok(found('skipped').some((f) => f.startsWith('decision:') && f.endsWith('/skip:missing')), found('skipped').join(' '));
    assert.deepEqual(found('migrated'), ['details::lineage']);
    assert.ok(found('terminated').some((f) => f.startsWith('wait:') && f.endsWith(':status')), found('terminated').join(' '));
    assert.equal(verify.totals.drifted, 10, JSON.stringify(verify.totals));
    assert.equal(verify.totals.errors, 0);
    assert.equal(verify.byRun.get(runs['migrated']!)!.outcome, 'drift');

    const rebuild = await pass(true);
    assert.equal(rebuild.totals.errors, 0, JSON.stringify(rebuild.results.filter((r) => r.error)));
    assert.equal(rebuild.totals.drifted, 10);
    const after = await dumpAll();
    for (const [id, rows] of baseline) {
      const name = Object.keys(runs).find((k) => runs[k] === id);
      assert.deepEqual(diffRuns(id, rows, after.get(id)!), [], `run ${name} rebuilt as it was`);
      // Every column compared exactly, except the clock columns (history's time of the same moment).
      assert.deepEqual(Object.keys(after.get(id)!.steps).sort(), Object.keys(rows.steps).sort(), `run ${name}: the same step rows`);
    }
    // The counts the console reads follow the rebuilt rows (maintained by triggers).
    const counts = await env.db.query<{ n: number }>({ text: `SELECT count(*)::int AS n FROM step_counts WHERE runs < 0` });
    assert.equal(counts[0]!.n, 0);

    const again = await pass(true);
    assert.equal(again.totals.drifted, 0, JSON.stringify(again.results.filter((r) => r.drift.length)));
    assert.equal((await pass(false)).totals.drifted, 0);
  });

  it('pinflow projection verify|rebuild: exit 1 on drift with the differences named, rebuild audited, then verify is clean; bad options are usage errors', async () => {
    const cli = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        execFile(
          process.execPath,
          [join(projectRoot(), 'dist', 'cli', 'pinflow.js'), 'projection', ...args],
          { env: { ...process.env, DATABASE_URL: env.databaseUrl, TEMPORAL_ADDRESS: temporalAddress(), TEMPORAL_NAMESPACE: env.namespace, USER: 'cli-test' }, encoding: 'utf8', timeout: 180_000 },
          (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
        );
      });
    const target = runs['resolved']!;
    await env.db.query({ text: `UPDATE runs SET status = 'FAILED' WHERE id = $1`, values: [target] });
    await env.db.query({ text: `DELETE FROM run_waits WHERE run_id = $1`, values: [target] });

    const verify = await cli('verify', '--run', target);
    assert.equal(verify.code, 1, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /run: status is FAILED, history says COMPLETED/);
    assert.match(verify.stdout, /wait closed@\d+: missing from the projection/);
    assert.match(verify.stdout, /projection verify: checked 1 run\(s\): drift in 1 \(run 1, wait 1\), errors 0/);
    const asJson = JSON.parse((await cli('verify', '--run', target, '--json')).stdout) as { totals: { drifted: number }; runs: Array<{ runId: string; drift: Drift[] }> };
    assert.equal(asJson.totals.drifted, 1);
    assert.deepEqual(asJson.runs[0]!.drift.map((d) => `${d.table}:${d.field}`).sort(), ['run:status', 'wait:missing']);

    const rebuild = await cli('rebuild', '--run', target, '--by', 'ops@example.com', '--reason', 'restore after a bad manual fix');
    assert.equal(rebuild.code, 0, rebuild.stdout + rebuild.stderr);
    assert.match(rebuild.stdout, /rebuilt 1 with drift/);
    assert.equal((await env.pinflow.getRun(target)).status, 'COMPLETED');
    const audit = await env.db.query<{ by: string; reason: string; run_ids: string[] }>({ text: `SELECT by, reason, run_ids FROM audit_log WHERE action = 'projection.rebuild' ORDER BY id DESC LIMIT 1` });
    assert.deepEqual(audit[0], { by: 'ops@example.com', reason: 'restore after a bad manual fix', run_ids: [target] });

    // Through Temporal's visibility: every run of a definition since a time.
    const byDefinition = await cli('verify', '--definition', 'rb-wait', '--since', '1d');
    assert.equal(byDefinition.code, 0, byDefinition.stdout + byDefinition.stderr);
    assert.match(byDefinition.stdout, /checked 4 run\(s\): drift in 0, errors 0, pruned by retention 0, unknown to Temporal 0/);

    for (const bad of [['--since', 'yesterday'], ['--run', target, '--since', '7d'], ['--concurrency', '0']]) {
      const r = await cli('verify', ...bad);
      assert.equal(r.code, 64, `${bad.join(' ')}: ${r.stdout}${r.stderr}`);
    }
    const noTemporal = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(process.execPath, [join(projectRoot(), 'dist', 'cli', 'pinflow.js'), 'projection', 'verify'], { env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'TEMPORAL_ADDRESS')), DATABASE_URL: env.databaseUrl }, encoding: 'utf8' }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, out: stdout + stderr }),
      ),
    );
    assert.equal(noTemporal.code, 2, noTemporal.out);
    assert.match(noTemporal.out, /CONFIG_INVALID: pinflow projection verify needs TEMPORAL_ADDRESS/);
  });

  it('a run whose version the version GC removed is rebuilt from its history, redacted by the graph it pinned', async () => {
    const secret = 'SECRET-4111-1111';
    const sensitiveGraph = { ...graphs.quick, inputSchema: { type: 'object', properties: { a: { type: 'number' }, card: { type: 'string', sensitive: true } } } };
    const v1 = (await env.pinflow.publish('rb-sensitive', sensitiveGraph)).version;
    const { runId } = await env.pinflow.start({ definition: 'rb-sensitive', input: { a: 5, card: secret } });
    await settled(runId, 'COMPLETED');
    await env.pinflow.publish('rb-sensitive', { ...sensitiveGraph, description: 'v2' , steps: graphs.quick.steps.map((st) => (st.id === 'done' ? { ...st, output: 'steps.call' } : st)) });
    const gc = await env.pinflow.gcVersions({ olderThan: '0s', by: 'test', reason: 'rebuild of a removed version' });
    assert.ok(gc.removed.some((r) => r.hash === v1), JSON.stringify(gc.removed));
    const live = await dumpRun(env.db, runId);
    assert.ok(!JSON.stringify(live).includes(secret), 'the live rows are redacted');

    await env.db.query({ text: `DELETE FROM runs WHERE id = $1`, values: [runId] });
    const rebuilt = await pass(true, [runId]);
    assert.equal(rebuilt.totals.errors, 0, JSON.stringify(rebuilt.results));
    const after = await dumpRun(env.db, runId);
    assert.ok(!JSON.stringify(after).includes(secret), `no sensitive value in the rebuilt rows: ${JSON.stringify(after.details)}`);
    assert.deepEqual(diffRuns(runId, live, after), []);
    assert.equal(after.run?.version, v1, 'the row still says which version it ran');
    assert.equal((await pass(false, [runId])).totals.drifted, 0);
  });

  it('a run retention pruned is not drift and is not written back; one under a legal hold or kept by retain is', async () => {
    const days = 86_400_000;
    const ids = await Promise.all([1, 2, 3].map(async (a) => (await env.pinflow.start({ definition: 'rb-quick', input: { a }, metadata: a === 3 ? { retain: true } : {} })).runId));
    await Promise.all(ids.map((id) => settled(id, 'COMPLETED')));
    const [pruned, held, kept] = ids as [string, string, string];
    await env.pinflow.retention.hold(held, 'legal', 'case 42');
    for (const id of ids) await env.db.query({ text: `DELETE FROM runs WHERE id = $1`, values: [id] });

    // Today none is due (COMPLETED: 30 days): all three are missing, drift.
    const today = await pass(false, ids);
    assert.equal(today.totals.drifted, 3);
    // 31 days on, the one neither held nor retained is what the sweep would have pruned.
    const later = await pass(true, ids, Date.now() + 31 * days);
    assert.equal(later.byRun.get(pruned)!.outcome, 'pruned');
    assert.equal(later.totals.pruned, 1);
    assert.equal(later.byRun.get(held)!.outcome, 'rebuilt');
    assert.equal(later.byRun.get(kept)!.outcome, 'rebuilt');
    assert.equal((await dumpRun(env.db, pruned)).run, null, 'not written back');
    assert.equal((await dumpRun(env.db, held)).run?.status, 'COMPLETED');
    assert.equal((await dumpRun(env.db, kept)).run?.status, 'COMPLETED');
  });

  it('an open run with an RPC attempt in flight: its RUNNING row is what history and the pending activity say, no drift', async () => {
    const { runId } = await env.pinflow.start({ definition: 'rb-slow', input: { ms: 25_000 } });
    await eventually(async () => (await dumpRun(env.db, runId)).steps['call#1.1']?.status === 'RUNNING', { what: 'the attempt in flight projected', timeoutMs: 60_000 });
    const live = await dumpRun(env.db, runId);
    const verify = await pass(false, [runId]);
    assert.deepEqual(verify.results[0]!.drift, [], JSON.stringify(verify.results[0]));
    assert.equal(verify.results[0]!.outcome, 'ok');
    await env.db.query({ text: `DELETE FROM run_steps WHERE run_id = $1`, values: [runId] });
    await pass(true, [runId]);
    const rebuilt = await dumpRun(env.db, runId);
    assert.equal(rebuilt.steps['call#1.1']?.status, 'RUNNING');
    assert.deepEqual(diffRuns(runId, live, rebuilt), []);
    await env.pinflow.cancel(runId, { by: 'test', reason: 'cleanup' });
    await settled(runId, 'CANCELLED');
  });
});
