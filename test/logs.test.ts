import assert from 'node:assert/strict';
import { z } from 'zod';
import { defineRpc } from '../rpc/registry';
import { decline, add } from './fixtures/rpcs';
import { singleRpcGraph } from './fixtures/graphs';
import { createEnv, eventually, exitOf, spawnWorkerProcess, type Env } from './support/harness';

/** Known to the publishing side only: the worker process does not serve it, so a run calling it stalls. */
const missing = defineRpc('logs.missing', {
  input: z.object({}),
  output: z.object({}),
  handler: () => ({}),
});

interface Line {
  level: string;
  time: string;
  msg: string;
  name: string;
  [field: string]: unknown;
}

describe('logs: a standalone worker process writes JSON lines; business failures are one line without a stack', function () {
  this.timeout(180_000);
  let env: Env;
  let worker: ReturnType<typeof spawnWorkerProcess> | undefined;

  before(async () => {
    env = await createEnv('logs', [add, decline, missing]);
    await env.pinflow.publish('logs-decline', singleRpcGraph('test.decline', { reason: "'insufficient funds'" }));
    await env.pinflow.publish('logs-fail', {
      entry: 'reject',
      steps: [{ id: 'reject', type: 'fail', code: 'ORDER_REJECTED', message: "'order ' & input.order & ' rejected'" }],
    });
    await env.pinflow.publish('logs-stall', singleRpcGraph('logs.missing'));
    worker = spawnWorkerProcess(env, 'rpcs', { LOG_LEVEL: 'info' });
    await eventually(() => Promise.resolve(worker!.output.join('').includes('worker polling task queue')), {
      timeoutMs: 120_000,
      what: `the worker process to poll (output: ${worker.output.join('')})`,
    });
  });
  after(async () => {
    if (worker && worker.exitCode === null && worker.signalCode === null) {
      worker.kill('SIGTERM');
      await exitOf(worker);
    }
    await env?.stop();
  });

  /** Every line the process wrote, each parsed as JSON (a line that is not JSON fails the test). */
  const lines = (): Line[] =>
    worker!.output
      .join('')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        try {
          return JSON.parse(l) as Line;
        } catch {
          assert.fail(`a worker output line is not JSON: ${l}`);
        }
      });

  const STACK_FRAME = /\n\s+at |\bat [^\s]+ \(.*:\d+:\d+\)/;

  it('every line is JSON with level, time, msg and the process name; the startup lines are there', () => {
    const all = lines();
    assert.ok(all.length > 0);
    for (const l of all) {
      assert.equal(typeof l.level, 'string', JSON.stringify(l));
      assert.ok(!Number.isNaN(Date.parse(l.time)), `time is ISO: ${JSON.stringify(l)}`);
      assert.equal(typeof l.msg, 'string', JSON.stringify(l));
      assert.equal(l.name, 'pinflow-worker');
    }
    assert.ok(all.some((l) => l.level === 'info' && l.msg.startsWith('worker polling task queue')));
  });

  it('a non-retryable RPC error and the run it fails are one line each, with code, runId, rpc, definition and no stack', async () => {
    const { runId } = await env.pinflow.start({ definition: 'logs-decline' });
    await assert.rejects(env.pinflow.result(runId));
    const failed = await eventually(() => Promise.resolve(lines().find((l) => l.msg.startsWith('Workflow failed') && l.runId === runId)), {
      what: `the "Workflow failed" line of ${runId} (output: ${worker!.output.join('').slice(-3000)})`,
    });
    const activity = lines().filter((l) => l.msg.startsWith('Activity failed') && l.runId === runId);
    assert.equal(activity.length, 1, `one activity failure line (non-retryable: one attempt): ${JSON.stringify(activity)}`);
    const a = activity[0]!;
    assert.equal(a.level, 'warn');
    assert.equal(a.code, 'CardDeclined', JSON.stringify(a));
    assert.equal(a.rpc, 'test.decline');
    assert.equal(a.stepInstance, 'call');
    assert.equal(typeof a.version, 'string', 'the activity line carries the run version');
    assert.match(a.msg, /^Activity failed: CardDeclined: declined: insufficient funds$/);
    assert.equal(a.err, undefined, 'no error object (and so no stack)');

    assert.equal(failed.level, 'warn');
    assert.equal(failed.code, 'CardDeclined', JSON.stringify(failed));
    assert.equal(failed.definition, 'logs-decline');
    assert.equal(typeof failed.version, 'string');
    assert.equal(failed.err, undefined);
    for (const l of [a, failed]) assert.doesNotMatch(JSON.stringify(l), STACK_FRAME, 'no stack frame in a business failure line');
  });

  it('a fail step is one line with its own code', async () => {
    const { runId } = await env.pinflow.start({ definition: 'logs-fail', input: { order: 'A-1' } });
    await assert.rejects(env.pinflow.result(runId));
    const failed = await eventually(() => Promise.resolve(lines().find((l) => l.msg.startsWith('Workflow failed') && l.runId === runId)), {
      what: `the "Workflow failed" line of ${runId}`,
    });
    assert.equal(failed.code, 'ORDER_REJECTED');
    assert.equal(failed.msg, 'Workflow failed: ORDER_REJECTED: order A-1 rejected');
    assert.equal((failed.failure as { stepInstance?: string }).stepInstance, 'reject');
    assert.equal(failed.definition, 'logs-fail');
    assert.doesNotMatch(JSON.stringify(failed), STACK_FRAME);
  });

  it('a stall (an RPC this worker does not serve) is one line with its reason', async () => {
    const { runId } = await env.pinflow.start({ definition: 'logs-stall' });
    await eventually(async () => (await env.pinflow.getRun(runId)).status === 'STALLED', { timeoutMs: 60_000, what: `${runId} to stall` });
    const stalled = await eventually(() => Promise.resolve(lines().find((l) => l.msg.startsWith('Activity failed') && l.runId === runId)), {
      what: `the activity failure line of ${runId}`,
    });
    assert.equal(stalled.code, 'RpcStall');
    assert.equal(typeof (stalled.failure as { reason?: string }).reason, 'string');
    assert.equal(stalled.rpc, 'logs.missing');
    assert.doesNotMatch(JSON.stringify(stalled), STACK_FRAME);
    await env.pinflow.cancel(runId, { by: 'logs-test' }).catch(() => undefined);
  });

  it('nothing the worker wrote has a stack trace', () => {
    for (const l of lines()) assert.doesNotMatch(JSON.stringify(l), STACK_FRAME, `a line with a stack: ${JSON.stringify(l)}`);
  });
});
