import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { rpcs } from './fixtures/rpcs';
import { createEnv, eventually, exitOf, spawnApiProcess, spawnWorkerProcess, type Env } from './support/harness';

/**
 * Hostile graphs, expressions and messages against the real worker and API
 * processes (issue 11, items 7-10): each fails its step (or is refused)
 * cleanly, the worker process never exits, the API answers /health within a
 * second throughout, and an ordinary run beside them completes.
 */
describe('hostile input', function () {
  this.timeout(600_000);
  let env: Env;
  let worker: ChildProcess & { output: string[] };
  let api: ChildProcess & { output: string[]; url: string; key: string };
  let workerExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const health = { answers: 0, slowest: 0, failures: [] as string[] };
  let polling = true;
  let poller: Promise<void> | undefined;

  // Response bodies are read field by field and asserted on; `any` keeps that terse.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Body = Record<string, any>;
  const http = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: Body }> => {
    const res = await fetch(`${api.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${api.key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Body) : {} };
  };

  before(async () => {
    env = await createEnv('hostile', rpcs);
    worker = spawnWorkerProcess(env, 'rpcs');
    void exitOf(worker).then((e) => (workerExit = e));
    api = await spawnApiProcess(env, 'rpcs');
    // /health every 250 ms for the whole suite; each answer must arrive within 1 s.
    poller = (async () => {
      while (polling) {
        const t = Date.now();
        try {
          const res = await fetch(`${api.url}/health`, { signal: AbortSignal.timeout(5_000) });
          await res.text();
          health.answers++;
        } catch (err) {
          health.failures.push(`${new Date().toISOString()}: ${(err as Error).message}`);
        }
        health.slowest = Math.max(health.slowest, Date.now() - t);
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
  });

  after(async () => {
    polling = false;
    await poller;
    for (const c of [worker, api]) if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await env?.stop();
  });

  const publish = (name: string, graph: unknown) => http('POST', `/definitions/${name}/versions`, graph);
  const start = async (definition: string, input: unknown): Promise<string> => {
    const res = await http('POST', '/runs', { definition, input });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.runId as string;
  };
  const closed = (runId: string) =>
    eventually(
      async () => {
        const r = await env.pinflow.getRun(runId);
        return r.status === 'COMPLETED' || r.status === 'FAILED' ? r : undefined;
      },
      { timeoutMs: 120_000, what: `run ${runId} to close (worker output: ${worker.output.join('').slice(-2000)})` },
    );
  const ordinary = { entry: 'add', steps: [{ id: 'add', type: 'rpc', rpc: 'math.add', input: { a: 'input.a', b: '1' }, next: 'done' }, { id: 'done', type: 'return', output: 'steps.add.sum' }] };
  const timeOrdinary = async (a: number): Promise<number> => {
    const t = Date.now();
    const runId = await start('ordinary', { a });
    const run = await closed(runId);
    assert.equal(run.status, 'COMPLETED');
    assert.equal(run.output, a + 1);
    return Date.now() - t;
  };
  let alone = 0;

  it('the API process has auth on: no key, no runs; the suite key works', async () => {
    const anon = await fetch(`${api.url}/runs`);
    assert.equal(anon.status, 401);
    assert.match(anon.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.equal((await http('GET', '/runs')).status, 200);
  });

  it('publishes an ordinary graph and times one run of it alone', async () => {
    assert.equal((await publish('ordinary', ordinary)).status, 201);
    await timeOrdinary(1); // warms the worker's caches
    alone = await timeOrdinary(2);
    console.log(`      ordinary run alone: ${alone} ms`);
  });

  it('fails each hostile step cleanly while the worker stays up and an ordinary run beside them completes', async () => {
    const one = (id: string, step: Record<string, unknown>) => ({ entry: id, steps: [{ id, ...step, next: 'done' }, { id: 'done', type: 'return', output: "'unreachable'" }] });
    const assign = (expression: string) => one('compute', { type: 'assign', set: { x: expression } });
    const cases: Array<{ name: string; graph: unknown; input: unknown; type: string; code?: string; step: string; message: RegExp }> = [
      { name: 'recursion-on-input', graph: assign('($f := function($x){ $f($x) }; $f(input.x))'), input: { x: 1 }, type: 'ExpressionBudgetExceeded', code: 'EXPRESSION_BUDGET_EXCEEDED', step: 'compute', message: /more than 5000 evaluation steps/ },
      { name: 'reduce-3m', graph: assign('$reduce([1..input.n], function($a, $b){ $a + $b })'), input: { n: 3_000_000 }, type: 'ExpressionBudgetExceeded', code: 'EXPRESSION_BUDGET_EXCEEDED', step: 'compute', message: /item budget/ },
      { name: 'recursion-200k', graph: assign('($f := function($n){ $n = 0 ? 0 : 1 + $f($n - 1) }; $f(input.n))'), input: { n: 200_000 }, type: 'ExpressionBudgetExceeded', code: 'EXPRESSION_BUDGET_EXCEEDED', step: 'compute', message: /depth budget/ },
      { name: 'pad-4e8', graph: assign('$pad("", input.n)'), input: { n: 4e8 }, type: 'ExpressionBudgetExceeded', code: 'EXPRESSION_BUDGET_EXCEEDED', step: 'compute', message: /\$pad to width 400000000/ },
      { name: 'regex-long-input', graph: assign('$contains(input.s, /a+b/)'), input: { s: 'a'.repeat(20_000) }, type: 'ExpressionBudgetExceeded', code: 'EXPRESSION_BUDGET_EXCEEDED', step: 'compute', message: /regex input budget of 10000/ },
      {
        name: 'foreach-20k',
        graph: one('each', { type: 'forEach', items: '[1..input.n]', body: { entry: 'b', steps: [{ id: 'b', type: 'assign', set: { y: 'item * 2' } }] } }),
        input: { n: 20_000 },
        type: 'ForEachTooManyItems',
        step: 'each',
        message: /"items" has 20000 items; allowed: at most 1000/,
      },
      { name: 'nul-assign', graph: assign('$decodeUrlComponent("%00")'), input: {}, type: 'ValueNotStorable', code: 'VALUE_NOT_STORABLE', step: 'compute', message: /set\.x cannot be stored: contains a NUL character/ },
      { name: 'nul-rpc-input', graph: one('add', { type: 'rpc', rpc: 'math.add', input: { a: '1', b: '1', note: '"a" & $decodeUrlComponent("%00")' } }), input: {}, type: 'ValueNotStorable', code: 'VALUE_NOT_STORABLE', step: 'add', message: /input\.note cannot be stored: contains a NUL character/ },
      { name: 'nul-return', graph: { entry: 'done', steps: [{ id: 'done', type: 'return', output: { ok: 'true', bad: ['1', '$decodeUrlComponent("%00")'] } }] }, input: {}, type: 'ValueNotStorable', code: 'VALUE_NOT_STORABLE', step: 'done', message: /output\.bad\[1\] cannot be stored/ },
      { name: 'nul-wait-key', graph: one('w', { type: 'wait', event: 'x.y', correlationKey: '$decodeUrlComponent("%00")', timeout: '1h' }), input: {}, type: 'WaitKeyInvalid', step: 'w', message: /NUL/ },
    ];
    for (const c of cases) {
      const res = await publish(c.name, c.graph);
      assert.equal(res.status, 201, `${c.name}: ${JSON.stringify(res.body)}`);
    }
    const t0 = Date.now();
    const started = await Promise.all(cases.map(async (c) => ({ c, runId: await start(c.name, c.input) })));
    const ordinaryTook = await timeOrdinary(3);
    console.log(`      ordinary run beside ${cases.length} hostile runs: ${ordinaryTook} ms (alone: ${alone} ms)`);
    assert.ok(ordinaryTook < 60_000, `the ordinary run took ${ordinaryTook} ms`);
    for (const { c, runId } of started) {
      const run = await closed(runId);
      assert.equal(run.status, 'FAILED', `${c.name}: ${JSON.stringify(run.error)}`);
      assert.equal(run.error?.type, c.type, `${c.name}: ${JSON.stringify(run.error)}`);
      assert.equal(run.error?.stepId, c.step, c.name);
      assert.match(run.error?.message ?? '', c.message, c.name);
      if (c.code) assert.equal((run.error?.details as { jsonataCode?: string } | undefined)?.jsonataCode, c.code, c.name);
      // The failed step is in the projection with the same error (an rpc step
      // that fails before its dispatch has no row: its activity writes it).
      if (c.step === 'add') continue;
      const failedStep = run.steps.find((s) => s.stepId === c.step && s.status === 'FAILED');
      assert.equal(failedStep?.error?.type, c.type, `${c.name}: steps ${JSON.stringify(run.steps.map((s) => [s.stepId, s.status]))}`);
    }
    console.log(`      all ${cases.length} hostile runs closed ${Date.now() - t0} ms after they started`);
    assert.equal(workerExit, undefined, `the worker exited: ${worker.output.join('').slice(-3000)}`);
    assert.doesNotMatch(worker.output.join(''), /async hook stack has become corrupted|Script execution timed out/);
  });

  it('refuses at publish an unsafe regex and constant forms over the budget, naming step and field', async () => {
    for (const [expression, code] of [
      ['$match(input.s, /^(a+)+$/)', 'REGEX_UNSAFE'],
      ['$contains(input.s, /(a|aa)*b/)', 'REGEX_UNSAFE'],
      ['($f := function($x){ $f($x) }; $f(1))', 'EXPRESSION_TOO_COMPLEX'],
      ['$pad("", 400000000)', 'EXPRESSION_TOO_COMPLEX'],
      ['$reduce([1..3000000], function($a, $b){ $a + $b })', 'EXPRESSION_TOO_COMPLEX'],
    ] as const) {
      const t = Date.now();
      const res = await publish('refused', { entry: 'compute', steps: [{ id: 'compute', type: 'assign', set: { x: expression } }] });
      assert.equal(res.status, 422, `${expression}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'GRAPH_INVALID');
      const issue = res.body.error.details.issues[0] as { code: string; path: string; stepId: string; message: string };
      assert.deepEqual([issue.code, issue.path, issue.stepId], [code, 'steps[0].set.x', 'compute'], expression);
      assert.ok(Date.now() - t < 10_000, `publish answered after ${Date.now() - t} ms`);
    }
  });

  it('refuses unsafe correlation rules at creation, and an event whose rule runs over budget, while /health stays responsive', async () => {
    for (const expression of ['$match(payload.s, /^(a+)+$/).match', '($f := function($x){ $f($x) }; $f(1))']) {
      const res = await http('PUT', '/correlation-rules/order.paid', { expression, by: 'test' });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'RULE_INVALID');
      assert.match(res.body.error.details.expression.jsonataCode, /^(REGEX_UNSAFE|EVALUATION_TOO_EXPENSIVE)$/);
    }
    const ok = await http('PUT', '/correlation-rules/order.paid', { expression: '($f := function($x){ $f($x) }; $f(payload.x))', by: 'test' });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const before = health.answers;
    const t = Date.now();
    const res = await http('POST', '/events', { name: 'order.paid', eventId: 'hostile-1', payload: { x: 1 } });
    console.log(`      event with a runaway rule refused in ${Date.now() - t} ms`);
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'CORRELATION_KEY_INVALID');
    assert.match(res.body.error.message, /ran over its evaluation budget: it took more than 5000 evaluation steps/);
    // The poller kept getting answers meanwhile.
    await eventually(() => Promise.resolve(health.answers > before + 2), { timeoutMs: 60_000, what: '/health answers after the event' });
  });

  it('answers /deploy/check with a catastrophic pattern promptly with 422 REGEX_UNSAFE', async () => {
    const t = Date.now();
    const res = await http('POST', '/deploy/check', {
      contracts: { 'math.add': { hash: 'a'.repeat(64), input: { type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' } } }, output: { type: 'object' } } },
    });
    assert.ok(Date.now() - t < 5_000, `answered after ${Date.now() - t} ms`);
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'REGEX_UNSAFE');
    assert.equal(res.body.error.details.path, '/properties/s/pattern');
    assert.equal(res.body.error.details.field, 'contracts.math.add.input');
  });

  it('kept /health answering within 1 s throughout, and the worker process running', async () => {
    // A fast machine runs the suite in a few seconds: let the poller reach a meaningful count first.
    await eventually(() => Promise.resolve(health.answers > 10), { timeoutMs: 60_000, what: 'more than 10 /health answers' });
    console.log(`      /health: ${health.answers} answers, slowest ${health.slowest} ms`);
    assert.deepEqual(health.failures, []);
    assert.ok(health.slowest < 1_000, `the slowest /health answer took ${health.slowest} ms`);
    assert.equal(workerExit, undefined, `the worker exited: ${worker.output.join('').slice(-3000)}`);
    assert.equal(api.exitCode, null);
  });
});
