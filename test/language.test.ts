import assert from 'node:assert/strict';
import { WorkflowFailedError, type ApplicationFailure } from '@temporalio/client';
import { rpcs, tracker } from './fixtures/rpcs';
import { createEnv, eventually, type Env } from './support/harness';

type G = Record<string, unknown>;

describe('the graph language on a real Temporal server', function () {
  this.timeout(120_000);
  let env: Env;
  let n = 0;

  before(async () => {
    env = await createEnv('language', rpcs);
    await env.startWorker(rpcs);
  });
  after(async () => env?.stop());

  /** Publish a graph under a fresh definition and run it. */
  async function run(graph: G, input: unknown = {}) {
    const definition = `lang-${++n}`;
    await env.pinflow.publish(definition, graph);
    const started = await env.pinflow.start({ definition, input });
    const outcome = await env.pinflow.result(started.runId).then(
      (output) => ({ ok: true as const, output }),
      (err: unknown) => ({ ok: false as const, err }),
    );
    const detail = await eventually(async () => {
      const r = await env.pinflow.getRun(started.runId);
      return r.status !== 'RUNNING' ? r : undefined;
    });
    return { runId: started.runId, outcome, detail };
  }

  function failure(o: { ok: boolean; err?: unknown }): ApplicationFailure {
    assert.equal(o.ok, false, 'the run should fail');
    assert.ok(o.err instanceof WorkflowFailedError);
    return o.err.cause as ApplicationFailure;
  }

  describe('switch', () => {
    const graph = {
      entry: 'pick',
      steps: [
        {
          id: 'pick',
          type: 'switch',
          cases: [
            { when: 'input.amount > 1000', next: 'big' },
            { when: 'input.amount > 100', next: 'medium' },
          ],
          default: 'small',
        },
        { id: 'big', type: 'return', output: "'big'" },
        { id: 'medium', type: 'return', output: "'medium'" },
        { id: 'small', type: 'return', output: "'small'" },
      ],
    };
    it('takes the first matching case, and the default when none matches', async () => {
      assert.deepEqual((await run(graph, { amount: 5000 })).outcome, { ok: true, output: 'big' });
      const medium = await run(graph, { amount: 500 });
      assert.deepEqual(medium.outcome, { ok: true, output: 'medium' });
      assert.deepEqual(medium.detail.steps[0]!.output, { case: 1 });
      assert.deepEqual((await run(graph, { amount: 5 })).outcome, { ok: true, output: 'small' });
    });
    it('fails the run when a case expression errors at run time', async () => {
      const r = await run({ ...graph, steps: [{ ...graph.steps[0], cases: [{ when: "$number('x') > 1", next: 'big' }, { when: 'false', next: 'medium' }] }, ...graph.steps.slice(1)] });
      const f = failure(r.outcome);
      assert.equal(f.type, 'ExpressionError');
      assert.match(f.message, /^step "pick" field "cases\[0\]\.when"/);
    });
  });

  describe('forEach', () => {
    it('runs 20 items with concurrency 3, keeps results in item order, and never runs more than 3 at once', async () => {
      tracker.maxInFlight = 0;
      tracker.calls = 0;
      const r = await run(
        {
          entry: 'each',
          steps: [
            {
              id: 'each',
              type: 'forEach',
              items: 'input.numbers',
              concurrency: 3,
              body: { entry: 'call', steps: [{ id: 'call', type: 'rpc', rpc: 'test.track', input: { n: 'item' } }] },
              next: 'done',
            },
            { id: 'done', type: 'return', output: 'steps.each.results.value' },
          ],
        },
        { numbers: Array.from({ length: 20 }, (_, i) => i + 1) },
      );
      assert.deepEqual(r.outcome, { ok: true, output: Array.from({ length: 20 }, (_, i) => (i + 1) * 10) });
      assert.equal(tracker.calls, 20);
      assert.equal(tracker.maxInFlight, 3);
      const calls = r.detail.steps.filter((s) => s.stepId === 'call');
      assert.deepEqual(
        calls.map((s) => s.stepInstance).sort(),
        Array.from({ length: 20 }, (_, i) => `call[${i}]`).sort(),
      );
    });

    it('fails the step on the first item error by default', async () => {
      const r = await run(
        {
          entry: 'each',
          steps: [
            {
              id: 'each',
              type: 'forEach',
              items: 'input.words',
              body: {
                entry: 'check',
                steps: [
                  { id: 'check', type: 'if', condition: "item = 'bad'", then: 'explode', else: 'ok' },
                  { id: 'explode', type: 'rpc', rpc: 'test.boom', input: { why: 'item' } },
                  { id: 'ok', type: 'return', output: '$uppercase(item)' },
                ],
              },
            },
          ],
        },
        { words: ['a', 'bad', 'c'] },
      );
      const f = failure(r.outcome);
      assert.equal(f.type, 'ItemFailed');
      assert.equal(f.message, 'step "each": item failed: boom: bad');
      assert.equal(r.detail.error?.stepInstance, 'each');
    });

    it('collects item errors and continues with onItemError continue', async () => {
      const r = await run(
        {
          entry: 'each',
          steps: [
            {
              id: 'each',
              type: 'forEach',
              items: 'input.words',
              onItemError: 'continue',
              concurrency: 2,
              body: {
                entry: 'check',
                steps: [
                  { id: 'check', type: 'if', condition: "item = 'bad'", then: 'explode', else: 'ok' },
                  { id: 'explode', type: 'fail', code: 'BAD_WORD', message: "'bad word at ' & index" },
                  { id: 'ok', type: 'return', output: '$uppercase(item)' },
                ],
              },
              next: 'done',
            },
            { id: 'done', type: 'return', output: 'steps.each' },
          ],
        },
        { words: ['a', 'bad', 'c', 'bad'] },
      );
      assert.equal(r.outcome.ok, true);
      const out = (r.outcome as { output: { results: unknown[]; errors: Array<{ index: number; error: { type: string; message: string; stepInstance: string } }> } }).output;
      assert.deepEqual(out.results, ['A', null, 'C', null]);
      assert.deepEqual(
        out.errors.map((e) => [e.index, e.error.type, e.error.message, e.error.stepInstance]),
        [
          [1, 'BAD_WORD', 'bad word at 1', 'explode[1]'],
          [3, 'BAD_WORD', 'bad word at 3', 'explode[3]'],
        ],
      );
    });

    it('fails when items is not an array', async () => {
      const r = await run({ entry: 'each', steps: [{ id: 'each', type: 'forEach', items: 'input.x', body: { entry: 'r', steps: [{ id: 'r', type: 'return' }] } }] }, { x: 'nope' });
      assert.equal(failure(r.outcome).type, 'ForEachItemsNotArray');
    });
  });

  describe('parallel', () => {
    it('joins named branches and returns their results by name', async () => {
      const r = await run({
        entry: 'both',
        steps: [
          {
            id: 'both',
            type: 'parallel',
            branches: {
              left: { entry: 'l', steps: [{ id: 'l', type: 'rpc', rpc: 'math.add', input: { a: '1', b: '2' } }] },
              right: { entry: 'r', steps: [{ id: 'r', type: 'rpc', rpc: 'text.greet', input: { name: "'par'" } }] },
            },
            next: 'done',
          },
          { id: 'done', type: 'return', output: 'steps.both' },
        ],
      });
      assert.deepEqual(r.outcome, { ok: true, output: { left: { sum: 3 }, right: { greeting: 'hello par' } } });
    });

    it('with failFast, cancels the sibling branches on the first failure and the projection shows them cancelled', async () => {
      const r = await run({
        entry: 'race',
        steps: [
          {
            id: 'race',
            type: 'parallel',
            mode: 'failFast',
            branches: {
              fails: { entry: 'wait-a-bit', steps: [{ id: 'wait-a-bit', type: 'rpc', rpc: 'test.slow', input: { ms: '300' }, next: 'explode' }, { id: 'explode', type: 'rpc', rpc: 'test.boom', input: { why: "'fast'" } }] },
              slow: { entry: 'long', steps: [{ id: 'long', type: 'rpc', rpc: 'test.slow', input: { ms: '20000' }, next: 'after' }, { id: 'after', type: 'return' }] },
            },
          },
        ],
      });
      const f = failure(r.outcome);
      assert.equal(f.type, 'BranchFailed');
      assert.equal(f.message, 'step "race": branch "fails" failed: boom: fast');
      const byInstance = new Map(r.detail.steps.map((s) => [s.stepInstance, s.status]));
      assert.equal(byInstance.get('long'), 'CANCELLED');
      assert.equal(byInstance.get('explode'), 'FAILED');
      assert.equal(byInstance.has('after'), false);
    });

    it('in mode all, lets every branch finish and then fails with the failures', async () => {
      const r = await run({
        entry: 'all',
        steps: [
          {
            id: 'all',
            type: 'parallel',
            branches: {
              bad: { entry: 'x', steps: [{ id: 'x', type: 'rpc', rpc: 'test.boom', input: { why: "'all'" } }] },
              good: { entry: 'y', steps: [{ id: 'y', type: 'rpc', rpc: 'test.slow', input: { ms: '200' } }] },
            },
          },
        ],
      });
      assert.equal(failure(r.outcome).type, 'BranchFailed');
      assert.equal(r.detail.steps.find((s) => s.stepInstance === 'y')?.status, 'COMPLETED');
    });
  });

  describe('onError', () => {
    it('routes a failure to its handler, which sees the error', async () => {
      const r = await run({
        entry: 'risky',
        steps: [
          { id: 'risky', type: 'rpc', rpc: 'test.boom', input: { why: "'handled'" }, onError: 'handler', next: 'unused' },
          { id: 'unused', type: 'return', output: "'not here'" },
          { id: 'handler', type: 'return', output: { type: 'error.type', message: 'error.message', step: 'error.stepId' } },
        ],
      });
      assert.deepEqual(r.outcome, { ok: true, output: { type: 'Boom', message: 'boom: handled', step: 'risky' } });
      assert.equal(r.detail.status, 'COMPLETED');
      assert.equal(r.detail.steps.find((s) => s.stepInstance === 'risky')?.status, 'FAILED');
    });

    it('catches expression errors of control steps too', async () => {
      const r = await run({
        entry: 'calc',
        steps: [
          { id: 'calc', type: 'assign', set: { x: "$number('abc')" }, onError: 'fallback', next: 'done' },
          { id: 'done', type: 'return', output: 'vars.x' },
          { id: 'fallback', type: 'return', output: 'error.type' },
        ],
      });
      assert.deepEqual(r.outcome, { ok: true, output: 'ExpressionError' });
    });
  });

  describe('sleep', () => {
    it('sleeps on a durable timer for a duration, and until a computed time', async () => {
      const r = await run({
        entry: 'nap',
        steps: [
          { id: 'nap', type: 'sleep', duration: '300ms', next: 'until' },
          { id: 'until', type: 'sleep', until: '$fromMillis($toMillis($nowIso()) + 200)', next: 'done' },
          { id: 'done', type: 'return', output: 'steps.nap.sleptMs' },
        ],
      });
      assert.deepEqual(r.outcome, { ok: true, output: 300 });
      const history = await env.client.workflow.getHandle(r.runId).fetchHistory();
      assert.equal((history.events ?? []).filter((e) => e.timerStartedEventAttributes).length, 2);
    });
    it('fails when until is not a timestamp', async () => {
      const r = await run({ entry: 'nap', steps: [{ id: 'nap', type: 'sleep', until: "'tomorrow-ish'" }] });
      assert.equal(failure(r.outcome).type, 'SleepUntilInvalid');
    });
  });

  describe('wait', () => {
    it('takes the timeout edge when no event arrives in time', async () => {
      const r = await run(
        {
          entry: 'await',
          steps: [
            { id: 'await', type: 'wait', event: 'ticket.closed', correlationKey: 'input.ticket', timeout: '300ms', onTimeout: 'late' },
            { id: 'late', type: 'return', output: "'timed out'" },
          ],
        },
        { ticket: 'T-1' },
      );
      assert.deepEqual(r.outcome, { ok: true, output: 'timed out' });
    });
    it('rejects a null correlation key instead of treating it as a wildcard', async () => {
      const r = await run({ entry: 'await', steps: [{ id: 'await', type: 'wait', event: 'ticket.closed', correlationKey: 'input.missing', timeout: '1s' }] });
      const f = failure(r.outcome);
      assert.equal(f.type, 'WaitKeyInvalid');
      assert.equal(f.message, 'step "await": correlation key must be a non-empty string or a number; got null');
    });
    it('fails the step on timeout when there is no timeout edge', async () => {
      const r = await run({ entry: 'await', steps: [{ id: 'await', type: 'wait', event: 'payment.settled', correlationKey: "'P-1'", timeout: '200ms' }] });
      assert.equal(failure(r.outcome).type, 'WaitTimedOut');
    });
  });

  describe('child', () => {
    it('starts a child pinned to the latest version at that moment, links it to its parent, and returns its output', async () => {
      const v1 = await env.pinflow.publish('child-adder', { entry: 'add', steps: [{ id: 'add', type: 'rpc', rpc: 'math.add', input: { a: 'input.a', b: '1' }, next: 'r' }, { id: 'r', type: 'return', output: 'steps.add.sum' }] });
      const v2 = await env.pinflow.publish('child-adder', { entry: 'add', steps: [{ id: 'add', type: 'rpc', rpc: 'math.add', input: { a: 'input.a', b: '1000' }, next: 'r' }, { id: 'r', type: 'return', output: 'steps.add.sum' }] });
      const parentGraph = {
        entry: 'latest',
        steps: [
          { id: 'latest', type: 'child', definition: 'child-adder', input: { a: 'input.a' }, next: 'pinned' },
          { id: 'pinned', type: 'child', definition: 'child-adder', version: v1.version, input: { a: 'input.a' }, next: 'done' },
          { id: 'done', type: 'return', output: { latest: 'steps.latest', pinned: 'steps.pinned' } },
        ],
      };
      const r = await run(parentGraph, { a: 5 });
      assert.deepEqual(r.outcome, { ok: true, output: { latest: 1005, pinned: 6 } });
      assert.deepEqual(
        r.detail.children.map((c) => [c.id, c.definition, c.version, c.parentRunId, c.parentStep, c.status]),
        [
          [`${r.runId}:latest`, 'child-adder', v2.version, r.runId, 'latest', 'COMPLETED'],
          [`${r.runId}:pinned`, 'child-adder', v1.version, r.runId, 'pinned', 'COMPLETED'],
        ],
      );
    });

    it('fails the parent step with ChildFailed when the child fails', async () => {
      await env.pinflow.publish('child-fails', { entry: 'f', steps: [{ id: 'f', type: 'fail', code: 'CHILD_SAYS_NO', message: "'no'" }] });
      const r = await run({ entry: 'kid', steps: [{ id: 'kid', type: 'child', definition: 'child-fails' }] });
      const f = failure(r.outcome);
      assert.equal(f.type, 'ChildFailed');
      assert.match(f.message, /^step "kid": child run .*:kid failed: no$/);
    });

    it('refuses at publish a child definition that does not exist', async () => {
      await assert.rejects(env.pinflow.publish('orphan-parent', { entry: 'kid', steps: [{ id: 'kid', type: 'child', definition: 'never-published' }] }), (err: Error & { issues?: Array<{ code: string }> }) => {
        assert.deepEqual(err.issues?.map((i) => i.code), ['UNKNOWN_CHILD_DEFINITION']);
        return true;
      });
    });
  });

  describe('failure paths of the control steps', () => {
    for (const [type, step] of [
      ['assign', { id: 'x', type: 'assign', set: { v: "$number('nope')" } }],
      ['if', { id: 'x', type: 'if', condition: "$number('nope')", then: 'y', else: 'y' }],
      ['return', { id: 'x', type: 'return', output: "$number('nope')" }],
    ] as const) {
      it(`fails the run with ExpressionError when a ${type} step's expression fails, naming step and field`, async () => {
        const r = await run({ entry: 'x', steps: [step, { id: 'y', type: 'return' }].slice(0, type === 'if' ? 2 : 1) });
        const f = failure(r.outcome);
        assert.equal(f.type, 'ExpressionError');
        assert.match(f.message, /^step "x" field "(set\.v|condition|output)": expression "\$number\('nope'\)" failed/);
        assert.equal(r.detail.steps.find((s) => s.stepInstance === 'x')?.status, 'FAILED');
      });
    }
  });

  describe('cancellation', () => {
    it('is never caught by onError: a cancelled run ends CANCELLED in Temporal and in the projection', async () => {
      await env.pinflow.publish('cancel-me', {
        entry: 'hold',
        steps: [
          { id: 'hold', type: 'wait', event: 'never.happens', correlationKey: "'k'", onError: 'caught' },
          { id: 'caught', type: 'return', output: "'caught'" },
        ],
      });
      const started = await env.pinflow.start({ definition: 'cancel-me' });
      const state = await eventually(async () => {
        const s = await env.pinflow.state(started.runId);
        return s.waiting ? s : undefined;
      });
      assert.deepEqual(state.waiting, { stepInstance: 'hold', event: 'never.happens', correlationKey: 'k' });
      await env.client.workflow.getHandle(started.runId).cancel();
      await assert.rejects(env.pinflow.result(started.runId), (err: Error) => {
        assert.ok(err instanceof WorkflowFailedError);
        assert.equal((err.cause as Error).name, 'CancelledFailure');
        return true;
      });
      const run = await eventually(async () => {
        const r = await env.pinflow.getRun(started.runId);
        return r.status !== 'RUNNING' ? r : undefined;
      });
      assert.equal(run.status, 'CANCELLED');
      assert.equal(run.error?.type, 'Cancelled');
      assert.equal(run.steps.some((s) => s.stepInstance === 'caught'), false);
    });
  });

  describe('rpc step options', () => {
    it('passes the default idempotency key, or the one its expression computes', async () => {
      const r = await run(
        {
          entry: 'plain',
          steps: [
            { id: 'plain', type: 'rpc', rpc: 'test.echoKey', next: 'custom' },
            { id: 'custom', type: 'rpc', rpc: 'test.echoKey', idempotencyKey: "'order-' & input.orderId", next: 'done' },
            { id: 'done', type: 'return', output: { plain: 'steps.plain.key', custom: 'steps.custom.key' } },
          ],
        },
        { orderId: 'o-7' },
      );
      assert.deepEqual(r.outcome, { ok: true, output: { plain: `${r.runId}:plain`, custom: 'order-o-7' } });
    });

    it('honours a per-step retry override', async () => {
      const r = await run({
        entry: 'call',
        steps: [{ id: 'call', type: 'rpc', rpc: 'test.flaky', input: { succeedOnAttempt: '3' }, retry: { maximumAttempts: 2, initialInterval: '100ms' } }],
      });
      assert.equal(failure(r.outcome).type, 'RpcHandlerError');
      assert.deepEqual(r.detail.steps.map((s) => s.attempt), [1, 2]);
    });
  });
});
