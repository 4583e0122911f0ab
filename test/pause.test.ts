import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { createApi } from '../client/http';
import { defineRpc } from '../rpc/registry';
import { rpcs } from './fixtures/rpcs';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../db/paths';
import { createEnv, createKey, eventually, temporalAddress, withKey, type Env } from './support/harness';
import { currentDetailsOf } from './support/story';

// The first step's handler holds until the test opens its gate; the second counts its calls.
const gates = new Map<string, () => void>();
const secondCalls: string[] = [];
const first = defineRpc('pause.first', {
  input: z.object({ key: z.string() }),
  output: z.object({ key: z.string() }),
  handler: async ({ key }) => {
    if (key.startsWith('gated')) await new Promise<void>((resolve) => gates.set(key, resolve));
    return { key };
  },
});
const second = defineRpc('pause.second', {
  input: z.object({ key: z.string() }),
  output: z.object({ done: z.boolean() }),
  handler: ({ key }) => {
    secondCalls.push(key);
    return { done: true };
  },
});
const pauseRpcs = [...rpcs, first, second];

const twoSteps = {
  entry: 'one',
  steps: [
    { id: 'one', type: 'rpc', rpc: 'pause.first', input: { key: 'input.key' }, next: 'two' },
    { id: 'two', type: 'rpc', rpc: 'pause.second', input: { key: 'input.key' }, next: 'done' },
    { id: 'done', type: 'return', output: 'steps.two.done' },
  ],
};

interface Reply {
  status: number;
  body: Record<string, unknown> & { error?: { code: string; message: string } };
}

describe('pause and resume (FLAGS.PAUSE)', function () {
  this.timeout(180_000);
  let env: Env;
  let api: FastifyInstance;

  before(async () => {
    env = await createEnv('pause', pauseRpcs);
    await env.pinflow.publish('pausable', twoSteps);
    await env.pinflow.publish('pausable-fleet', twoSteps);
    await env.startWorker(pauseRpcs);
    api = withKey(createApi({ pinflow: env.pinflow }), await createKey(env));
  });
  after(async () => {
    await api?.close();
    await env?.stop();
  });

  /** Every HTTP request of this suite goes through here (auth headers are added in one place). */
  const call = async (method: 'GET' | 'POST', url: string, body?: unknown): Promise<Reply> => {
    const res = await api.inject({ method, url, ...(body !== undefined ? { payload: body as Record<string, unknown> } : {}) });
    return { status: res.statusCode, body: res.json() };
  };
  const projected = (runId: string, status: string) =>
    eventually(async () => {
      const r = await env.pinflow.getRun(runId);
      return r.status === status ? r : undefined;
    }, { timeoutMs: 60_000, what: `run ${runId} ${status} in the projection` });
  const statusAttribute = async (runId: string) => (await env.client.workflow.getHandle(runId).describe()).searchAttributes.PinflowStatus;
  const openGate = (key: string) =>
    eventually(() => {
      const open = gates.get(key);
      if (open) open();
      return Promise.resolve(open !== undefined);
    }, { timeoutMs: 60_000, what: `the first handler of ${key} to be called` });

  it('pauses a running run at the next step boundary: the second step waits, PAUSED everywhere; resume completes it', async () => {
    const { runId } = await env.pinflow.start({ definition: 'pausable', input: { key: 'gated-1' } });
    await eventually(() => Promise.resolve(gates.has('gated-1')), { timeoutMs: 60_000, what: 'step one to run' });
    const paused = await call('POST', `/runs/${runId}/pause`, { by: 'ops@example.com', reason: 'upstream maintenance' });
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    assert.equal(paused.body.alreadyPaused, false);
    assert.equal((paused.body.pause as { by: string }).by, 'ops@example.com');
    // Pending, not held: step one is still in flight, and the details say when it takes effect.
    assert.match(await currentDetailsOf(env, runId), /\*\*Pause requested\*\* .* by ops@example\.com: upstream maintenance; takes effect at the next top-level step boundary/);

    await openGate('gated-1');
    const row = await projected(runId, 'PAUSED');
    assert.equal(row.pause?.by, 'ops@example.com');
    assert.equal(row.pause?.reason, 'upstream maintenance');
    assert.equal(row.pause?.before, 'two');
    await eventually(async () => (await statusAttribute(runId))?.[0] === 'PAUSED', { timeoutMs: 30_000, what: 'PinflowStatus=PAUSED' });
    const state = await env.pinflow.state(runId);
    assert.equal(state.status, 'PAUSED');
    assert.deepEqual(state.completed, ['one']);
    assert.match(await currentDetailsOf(env, runId), /\*\*PAUSED\*\*[\s\S]*\*\*Paused\*\* since .* by ops@example\.com: upstream maintenance; holds before step `two`/);
    // The list filter finds it.
    const list = await call('GET', '/runs?status=PAUSED&definition=pausable');
    assert.deepEqual((list.body.runs as Array<{ id: string }>).map((r) => r.id), [runId]);
    // Held durably: the second handler is not called while paused (checked after the projection, the SA and a query answered).
    assert.ok(!secondCalls.includes('gated-1'), 'the second step ran while the run was paused');

    // Pausing again is idempotent: it says it already was.
    const again = await call('POST', `/runs/${runId}/pause`, { by: 'someone-else' });
    assert.equal(again.status, 200);
    assert.equal(again.body.alreadyPaused, true);
    assert.equal((again.body.pause as { by: string }).by, 'ops@example.com');

    const resumed = await call('POST', `/runs/${runId}/resume`, { by: 'ops@example.com', reason: 'maintenance over' });
    assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
    assert.equal(resumed.body.wasPaused, true);
    assert.equal(await env.pinflow.result(runId), true);
    assert.ok(secondCalls.includes('gated-1'));
    const done = await projected(runId, 'COMPLETED');
    assert.equal(done.pause, null);
    assert.deepEqual(await statusAttribute(runId), ['COMPLETED']);

    // Each accepted pause and resume is in the audit log, with the run and the reason.
    const audit = await env.db.query<{ action: string; run_ids: string[]; reason: string | null; outcome: string }>({
      text: `SELECT action, run_ids, reason, outcome FROM audit_log WHERE $1 = ANY (run_ids) ORDER BY id`,
      values: [runId],
    });
    assert.deepEqual(
      audit.map((a) => [a.action, a.reason, a.outcome]),
      [
        ['run.pause', 'upstream maintenance', 'accepted'],
        ['run.pause', null, 'accepted'],
        ['run.resume', 'maintenance over', 'accepted'],
      ],
    );

    // A closed run cannot be paused: 409 RUN_CLOSED, with the reason.
    const closed = await call('POST', `/runs/${runId}/pause`, { by: 'ops' });
    assert.equal(closed.status, 409);
    assert.equal(closed.body.error?.code, 'RUN_CLOSED');
  });

  it('a pause that reaches a run before its first workflow task is accepted (the flags are decided before the handlers)', async () => {
    await env.stopWorker();
    const { runId } = await env.pinflow.start({ definition: 'pausable', input: { key: 'gated-early' } });
    // No worker: the update waits in Temporal and reaches the run with its first workflow task.
    const pausing = env.pinflow.pause(runId, { by: 'ops', reason: 'before it began' });
    await env.startWorker(pauseRpcs);
    const paused = await pausing;
    assert.equal(paused.alreadyPaused, false);
    const row = await projected(runId, 'PAUSED');
    assert.equal(row.pause?.before, 'one', 'it holds before its first step');
    assert.ok(!gates.has('gated-early'), 'the first step did not run');
    await env.pinflow.resume(runId, { by: 'ops' });
    await openGate('gated-early');
    assert.equal(await env.pinflow.result(runId), true);
  });

  it('resume of a run that is not paused says so; cancel ends a paused run', async () => {
    const { runId } = await env.pinflow.start({ definition: 'pausable', input: { key: 'gated-2' } });
    await eventually(() => Promise.resolve(gates.has('gated-2')), { timeoutMs: 60_000, what: 'step one to run' });
    const notPaused = await env.pinflow.resume(runId, { by: 'ops' });
    assert.deepEqual(notPaused, { runId, wasPaused: false });

    await env.pinflow.pause(runId, { by: 'ops', reason: 'hold it' });
    await openGate('gated-2');
    await projected(runId, 'PAUSED');
    await env.pinflow.cancel(runId, { by: 'ops', reason: 'no longer needed' });
    const run = await projected(runId, 'CANCELLED');
    assert.equal(run.pause, null);
    assert.ok(!secondCalls.includes('gated-2'), 'the second step ran after a cancel of the paused run');
    assert.deepEqual(await statusAttribute(runId), ['CANCELLED']);
  });

  it('pauses a definition: its open runs pause, a new run holds before its first step, resume runs them all', async () => {
    const open = await env.pinflow.start({ definition: 'pausable-fleet', input: { key: 'gated-3' } });
    await eventually(() => Promise.resolve(gates.has('gated-3')), { timeoutMs: 60_000, what: 'step one to run' });
    // Temporal visibility lists the open run (the dev server's visibility is near-immediate; wait for it).
    await eventually(async () => {
      for await (const wf of env.client.workflow.list({ query: `PinflowDefinition = "pausable-fleet" AND ExecutionStatus = "Running"` })) if (wf.workflowId === open.runId) return true;
      return false;
    }, { timeoutMs: 30_000, what: 'the run in visibility' });

    const paused = await call('POST', '/definitions/pausable-fleet/pause', { by: 'ops', reason: 'bad partner data' });
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    assert.equal(paused.body.alreadyPaused, false);
    assert.deepEqual(paused.body.runs, [{ runId: open.runId, ok: true, changed: true }]);
    // Idempotent.
    const again = await call('POST', '/definitions/pausable-fleet/pause', { by: 'ops2' });
    assert.equal(again.body.alreadyPaused, true);
    assert.equal((again.body.pause as { by: string }).by, 'ops');
    assert.deepEqual(again.body.runs, [{ runId: open.runId, ok: true, changed: false }]);

    await openGate('gated-3');
    await projected(open.runId, 'PAUSED');

    // A new run of the paused definition starts and holds before its first step.
    const fresh = await env.pinflow.start({ definition: 'pausable-fleet', input: { key: 'fresh-4' } });
    const row = await projected(fresh.runId, 'PAUSED');
    assert.equal(row.pause?.before, 'one');
    assert.match(row.pause?.reason ?? '', /definition pausable-fleet is paused: bad partner data/);
    assert.deepEqual((await env.pinflow.state(fresh.runId)).completed, []);

    const resumed = await call('POST', '/definitions/pausable-fleet/resume', { by: 'ops' });
    assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
    assert.equal(resumed.body.wasPaused, true);
    assert.deepEqual(
      (resumed.body.runs as Array<{ runId: string; changed: boolean }>).map((r) => [r.runId, r.changed]).sort(),
      [
        [fresh.runId, true],
        [open.runId, true],
      ].sort(),
    );
    assert.equal(await env.pinflow.result(open.runId), true);
    assert.equal(await env.pinflow.result(fresh.runId), true);
    // Resumed definition: a new run starts normally.
    const later = await env.pinflow.start({ definition: 'pausable-fleet', input: { key: 'later-5' } });
    assert.equal(await env.pinflow.result(later.runId), true);
    const resumedAgain = await call('POST', '/definitions/pausable-fleet/resume', { by: 'ops' });
    assert.equal(resumedAgain.body.wasPaused, false);
  });

  it('the CLI pauses and resumes a run: pinflow pause|resume <runId>', async () => {
    const cli = async (...args: string[]) => {
      const { stdout } = await promisify(execFile)(process.execPath, [join(projectRoot(), 'dist', 'cli', 'pinflow.js'), ...args], {
        env: { ...process.env, TEMPORAL_ADDRESS: temporalAddress(), TEMPORAL_NAMESPACE: env.namespace, DATABASE_URL: env.databaseUrl },
      });
      return stdout.trim();
    };
    const { runId } = await env.pinflow.start({ definition: 'pausable', input: { key: 'gated-6' } });
    await eventually(() => Promise.resolve(gates.has('gated-6')), { timeoutMs: 60_000, what: 'step one to run' });
    assert.equal(await cli('pause', runId, '--by', 'cli-ops', '--reason', 'from the shell'), `run ${runId} pauses at its next top-level step boundary`);
    assert.match(await cli('pause', runId, '--by', 'cli-ops'), new RegExp(`run ${runId} was already paused \\(since .* by cli-ops\\)`));
    await openGate('gated-6');
    const row = await projected(runId, 'PAUSED');
    assert.equal(row.pause?.reason, 'from the shell');
    assert.equal(await cli('resume', runId, '--by', 'cli-ops'), `run ${runId} resumed`);
    assert.equal(await env.pinflow.result(runId), true);
    assert.equal(await cli('resume', runId, '--by', 'cli-ops').catch((e: Error) => e.message).then((m) => /RUN_CLOSED/.test(m)), true);
    // The CLI acts without the API, and writes the audit rows itself (who: --by, no key).
    const audit = await env.db.query<{ action: string; by: string; key_id: string | null; reason: string | null }>({
      text: `SELECT action, by, key_id, reason FROM audit_log WHERE $1 = ANY (run_ids) ORDER BY id`,
      values: [runId],
    });
    assert.deepEqual(
      audit.map((a) => [a.action, a.by, a.key_id, a.reason]),
      [
        ['run.pause', 'cli-ops', null, 'from the shell'],
        ['run.pause', 'cli-ops', null, null],
        ['run.resume', 'cli-ops', null, null],
      ],
    );
  });

  it('refuses bad input with a stable code: unknown run, missing by, unknown definition', async () => {
    const unknown = await call('POST', '/runs/no-such-run/pause', { by: 'ops' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error?.code, 'RUN_NOT_FOUND');
    const noBy = await call('POST', '/runs/no-such-run/pause', { reason: 'x' });
    assert.equal(noBy.status, 400);
    assert.equal(noBy.body.error?.code, 'REQUEST_INVALID');
    assert.match(noBy.body.error?.message ?? '', /by/);
    const noByResume = await call('POST', '/runs/no-such-run/resume', {});
    assert.equal(noByResume.status, 400);
    const noDef = await call('POST', '/definitions/no-such-definition/pause', { by: 'ops' });
    assert.equal(noDef.status, 404);
    assert.equal(noDef.body.error?.code, 'DEFINITION_NOT_FOUND');
  });
});
