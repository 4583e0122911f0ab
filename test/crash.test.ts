import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rpcs } from './fixtures/rpcs';
import { createEnv, eventually, exitOf, spawnWorkerProcess, type Env } from './support/harness';

describe('worker crash and restart', function () {
  this.timeout(180_000);
  let env: Env;
  let dir: string;
  const children: ChildProcess[] = [];

  before(async () => {
    env = await createEnv('crash', rpcs);
    dir = mkdtempSync(join(tmpdir(), 'pinflow-crash-'));
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await env?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('completes a run after its worker process is SIGKILLed mid-step and a new worker starts', async () => {
    const gate = join(dir, 'gate');
    await env.pinflow.publish('crashy', {
      entry: 'add',
      steps: [
        { id: 'add', type: 'rpc', rpc: 'math.add', input: { a: '1', b: '2' }, next: 'wait' },
        { id: 'wait', type: 'rpc', rpc: 'test.gate', input: { file: 'input.gate' }, next: 'done' },
        { id: 'done', type: 'return', output: { sum: 'steps.add.sum', gate: 'steps.wait' } },
      ],
    });
    const first = spawnWorkerProcess(env, 'rpcs');
    children.push(first);
    const run = await env.pinflow.start({ definition: 'crashy', input: { gate } });

    // The first worker is inside the gate handler (attempt 1) when it dies.
    await eventually(() => Promise.resolve(existsSync(`${gate}.started-1`)), { timeoutMs: 60_000, what: `attempt 1 of the gate step (worker output: ${first.output.join('')})` });
    // Its RUNNING row (written once an attempt outlives RUNNING_ROW_AFTER_MS, activities/rpc.ts) shows the step in flight.
    await eventually(async () => (await env.pinflow.getRun(run.runId)).currentStep === 'wait', { timeoutMs: 60_000, what: 'the gate step projected as running' });
    first.kill('SIGKILL');
    assert.deepEqual(await exitOf(first), { code: null, signal: 'SIGKILL' });
    const mid = await env.pinflow.getRun(run.runId);
    assert.equal(mid.status, 'RUNNING');
    assert.equal(mid.currentStep, 'wait');

    const second = spawnWorkerProcess(env, 'rpcs');
    children.push(second);
    // Attempt 1 times out (4s start-to-close); Temporal hands attempt 2 to the new worker.
    await eventually(() => Promise.resolve(existsSync(`${gate}.started-2`)), { timeoutMs: 60_000, what: `attempt 2 on the new worker (output: ${second.output.join('')})` });
    writeFileSync(gate, 'open');

    assert.deepEqual(await env.pinflow.result(run.runId), { sum: 3, gate: { passed: true, attempt: 2 } });
    const done = await eventually(async () => {
      const r = await env.pinflow.getRun(run.runId);
      return r.status === 'COMPLETED' ? r : undefined;
    });
    assert.deepEqual(
      done.steps.map((s) => [s.stepInstance, s.attempt, s.status, s.error?.type ?? null]),
      [
        ['add', 1, 'COMPLETED', null],
        ['wait', 1, 'SUPERSEDED', 'AttemptSuperseded'],
        ['wait', 2, 'COMPLETED', null],
        ['done', 1, 'COMPLETED', null],
      ],
    );

    // Code definitions were published when each worker started; the second
    // start found the same hash, so no new version appeared.
    assert.match(first.output.join(''), /published code-sum v1 \([0-9a-f]{12}\)"/);
    assert.match(second.output.join(''), /published code-sum v1 \([0-9a-f]{12}, unchanged\)/);
    assert.equal((await env.pinflow.listVersions('code-sum')).length, 1);
    const codeRun = await env.pinflow.start({ definition: 'code-sum', input: { a: 2, b: 40 } });
    assert.equal(await env.pinflow.result(codeRun.runId), 42);

    // SIGTERM is a graceful shutdown with exit code 0.
    second.kill('SIGTERM');
    assert.deepEqual(await exitOf(second), { code: 0, signal: null });
  });
});
