import assert from 'node:assert/strict';
import { z } from 'zod';
import { canonicalJson, versionHash } from '../graph/canonical';
import { REDACTED, redactBySchema, redactionPlan, redactRunState, redactStepRecord, scrubStrings } from '../graph/redact';
import { schemaIncludes } from '../graph/schema-inclusion';
import { defineRpc } from '../rpc/registry';
import { sumGraph } from './fixtures/graphs';
import { CARD, charge, EMAIL, paymentGraph, refundRpc, SECRETS, TOKEN } from './fixtures/sensitive';
import { createEnv, eventually, exitOf, spawnApiProcess, spawnWorkerProcess, type Env } from './support/harness';

/** Every secret found in `text`. */
const leaked = (text: string): string[] => SECRETS.filter((s) => text.includes(s));

describe('redaction: graph/redact.ts walks values along sensitive marks', () => {
  it('redacts marked properties, items, $ref/$defs, anyOf branches and additionalProperties; leaves the rest', () => {
    const schema = {
      type: 'object',
      $defs: { secret: { type: 'string', sensitive: true } },
      properties: {
        card: { $ref: '#/$defs/secret' },
        amount: { type: 'number' },
        cards: { type: 'array', items: { type: 'object', properties: { pan: { type: 'string', sensitive: true }, brand: { type: 'string' } } } },
        either: { anyOf: [{ type: 'string' }, { type: 'object', properties: { pin: { type: 'string', sensitive: true } } }] },
        extra: { type: 'object', additionalProperties: { type: 'string', sensitive: true } },
      },
    };
    const value = { card: CARD, amount: 3, cards: [{ pan: CARD, brand: 'visa' }], either: { pin: '1234', other: 'x' }, extra: { a: EMAIL }, free: 'kept' };
    assert.deepEqual(redactBySchema(value, schema), {
      card: REDACTED,
      amount: 3,
      cards: [{ pan: REDACTED, brand: 'visa' }],
      either: { pin: REDACTED, other: 'x' },
      extra: { a: REDACTED },
      free: 'kept',
    });
    // The value itself is untouched, and a schema without marks returns it as is.
    assert.equal(value.card, CARD);
    const plain = { type: 'object', properties: { a: { type: 'string' } } };
    assert.equal(redactBySchema(value, plain), value);
  });

  it('when unsure (a $ref it cannot resolve in a schema that marks something), it redacts the whole value', () => {
    const schema = { type: 'object', properties: { a: { $ref: 'https://elsewhere/x.json' }, b: { type: 'string', sensitive: true } } };
    assert.deepEqual(redactBySchema({ a: { deep: CARD }, b: 'x' }, schema), { a: REDACTED, b: REDACTED });
  });

  it("a version's plan: the run input, an rpc step's input/output/error, an assign step's sensitive variables, the state query", () => {
    const plan = redactionPlan({ graph: paymentGraph, contracts: { 'pay.charge': charge.contract, 'pay.refund': refundRpc().contract } });
    assert.equal(plan.any, true);
    const step = redactStepRecord(plan, {
      stepId: 'charge',
      stepType: 'rpc',
      input: { card: CARD, email: EMAIL, amount: 5 },
      output: { receipt: 'r-5', token: TOKEN, holder: { email: EMAIL, country: 'FR' } },
      error: { type: 'CardDeclined', message: `card ${CARD} of ${EMAIL} declined` },
    });
    assert.deepEqual(step.input, { card: REDACTED, email: REDACTED, amount: 5 });
    assert.deepEqual(step.output, { receipt: 'r-5', token: REDACTED, holder: { email: REDACTED, country: 'FR' } });
    assert.equal(step.error.message, `card ${REDACTED} of ${REDACTED} declined`);
    const assign = redactStepRecord(plan, { stepId: 'note', stepType: 'assign', output: { copy: CARD, seen: 5 } });
    assert.deepEqual(assign.output, { copy: REDACTED, seen: 5 });
    const state = redactRunState(plan, {
      vars: { copy: CARD, seen: 5, charged: { receipt: 'r-5', token: TOKEN, holder: { email: EMAIL, country: 'FR' } } },
      steps: { charge: { receipt: 'r-5', token: TOKEN, holder: { email: EMAIL, country: 'FR' } }, note: { copy: 'not tracked by step id' } },
    });
    assert.deepEqual(leaked(JSON.stringify(state)), []);
    assert.equal(state.vars.seen, 5);
    assert.equal(state.steps.charge.receipt, 'r-5');
    assert.deepEqual(scrubStrings({ m: 'no', n: ['x1234y'] }, ['no', '1234']), { m: 'no', n: [`x${REDACTED}y`] });
    // A skip decision's output stands for the stalled step's output.
    const decided = redactRunState(plan, { vars: {}, steps: {}, decisions: [{ stallId: 'charge/1', action: 'skip', output: { receipt: 'r', token: TOKEN, holder: { email: EMAIL, country: 'FR' } } }] });
    assert.deepEqual(decided.decisions[0]!.output, { receipt: 'r', token: REDACTED, holder: { email: REDACTED, country: 'FR' } });
    // A forEach whose body calls a marked RPC: its aggregated output is withheld whole (unsure).
    const looped = redactionPlan({
      graph: { steps: [{ id: 'each', type: 'forEach', items: 'input.cards', body: { entry: 'c', steps: [{ id: 'c', type: 'rpc', rpc: 'pay.charge' }] } }] },
      contracts: { 'pay.charge': charge.contract },
    });
    assert.equal(redactRunState(looped, { vars: {}, steps: { each: { results: [{ token: TOKEN }] } } }).steps.each, REDACTED);
    assert.equal(redactStepRecord(looped, { stepId: 'each', stepType: 'forEach', output: [{ token: TOKEN }] }).output, REDACTED);
  });

  it("zod's .meta({ sensitive: true }) is `sensitive: true` in the contract; it changes the contract hash, never its compatibility", () => {
    const props = (charge.contract.input as { properties: Record<string, { sensitive?: boolean }> }).properties;
    assert.equal(props.card!.sensitive, true);
    assert.equal(props.amount!.sensitive, undefined);
    const unmarked = defineRpc('pay.charge', { input: z.object({ card: z.string(), email: z.email(), amount: z.number() }), output: charge.output, handler: () => ({ receipt: '', token: '', holder: { email: '', country: '' } }) });
    assert.notEqual(unmarked.contract.hash, charge.contract.hash);
    assert.equal(schemaIncludes(unmarked.contract.input, charge.contract.input).verdict, 'yes');
    assert.equal(schemaIncludes(charge.contract.input, unmarked.contract.input).verdict, 'yes');
  });

  it('a graph without inputSchema or sensitiveVars hashes as before (absent fields are not in the canonical JSON)', () => {
    assert.equal(canonicalJson({ ...sumGraph, inputSchema: undefined, sensitiveVars: undefined }), canonicalJson(sumGraph));
    assert.equal(versionHash({ ...sumGraph, inputSchema: undefined } as never, {}), versionHash(sumGraph as never, {}));
  });
});

describe('redaction: no sensitive value in the projection, the API or the logs (real worker and API processes)', function () {
  this.timeout(240_000);
  let env: Env;
  let worker: ReturnType<typeof spawnWorkerProcess> | undefined;
  let api: Awaited<ReturnType<typeof spawnApiProcess>> | undefined;
  const runs: Record<'completed' | 'failed' | 'stalled', string> = { completed: '', failed: '', stalled: '' };
  const responses: string[] = [];

  /** Every HTTP request of this suite goes through here (auth headers are added in one place). */
  async function call(method: 'GET' | 'POST', url: string, body?: unknown): Promise<{ status: number; body: unknown; text: string }> {
    const res = await fetch(`${api!.url}${url}`, {
      method,
      headers: { authorization: `Bearer ${api!.key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    responses.push(`${method} ${url} -> ${res.status} ${text}`);
    const json = (res.headers.get('content-type') ?? '').includes('json');
    return { status: res.status, body: text && json ? (JSON.parse(text) as unknown) : null, text };
  }

  before(async () => {
    env = await createEnv('redaction', [charge, refundRpc()]);
    await env.pinflow.publish('payment', paymentGraph);
    worker = spawnWorkerProcess(env, 'sensitive', { LOG_LEVEL: 'debug' });
    api = await spawnApiProcess(env, 'sensitive', { LOG_LEVEL: 'debug', PINFLOW_RECONCILE_INTERVAL_MS: '0' });
    await eventually(() => Promise.resolve(worker!.output.join('').includes('worker polling task queue')), { timeoutMs: 120_000, what: 'the worker process to poll' });
    const start = async (input: Record<string, unknown>) => {
      const res = await call('POST', '/runs', { definition: 'payment', input });
      assert.equal(res.status, 201, res.text);
      return (res.body as { runId: string }).runId;
    };
    runs.completed = await start({ card: CARD, email: EMAIL, amount: 5 });
    runs.failed = await start({ card: CARD, email: EMAIL, amount: -1 });
    runs.stalled = await start({ card: CARD, email: EMAIL, amount: 7, refund: true });
    await eventually(async () => (await env.pinflow.getRun(runs.completed)).status === 'COMPLETED', { timeoutMs: 90_000, what: 'the completed run' });
    await eventually(async () => (await env.pinflow.getRun(runs.failed)).status === 'FAILED', { timeoutMs: 90_000, what: 'the failed run' });
    await eventually(async () => (await env.pinflow.getRun(runs.stalled)).status === 'STALLED', { timeoutMs: 90_000, what: 'the stalled run' });
  });

  after(async () => {
    for (const child of [worker, api]) {
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exitOf(child);
      }
    }
    await env?.stop();
  });

  it('the runs did what they should, and Temporal history keeps the real values (rerun and replay use them)', async () => {
    assert.deepEqual(await env.pinflow.result(runs.completed), { receipt: 'r-5', country: 'FR', amount: 5 });
    const history = await env.client.workflow.getHandle(runs.completed).fetchHistory();
    const startInput = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!.data!;
    assert.ok(Buffer.from(startInput).toString('utf8').includes(`"card":"${CARD}"`), 'the start input in history holds the real card');
  });

  it('no projection table holds a sensitive value in any column; the non-sensitive ones are there', async () => {
    const tables = await env.db.query<{ name: string }>({ text: `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`, values: [] });
    assert.ok(tables.length >= 8, `tables: ${tables.map((t) => t.name).join(', ')}`);
    let rows = 0;
    for (const { name } of tables) {
      const found = await env.db.query<{ row: string }>({ text: `SELECT row_to_json(t)::text AS row FROM "${name}" t`, values: [] });
      rows += found.length;
      for (const { row } of found) assert.deepEqual(leaked(row), [], `${name}: ${row}`);
    }
    assert.ok(rows > 0);
    const detail = await env.pinflow.getRun(runs.completed);
    assert.deepEqual(detail.input, { card: REDACTED, email: REDACTED, amount: 5 });
    const chargeRow = detail.steps.find((s) => s.stepId === 'charge' && s.status === 'COMPLETED')!;
    assert.deepEqual(chargeRow.input, { card: REDACTED, email: REDACTED, amount: 5 });
    assert.deepEqual(chargeRow.output, { receipt: 'r-5', token: REDACTED, holder: { email: REDACTED, country: 'FR' } });
    assert.deepEqual(detail.steps.find((s) => s.stepId === 'note')!.output, { copy: REDACTED, seen: 5 });
    // The handler's error echoed the card and the e-mail: scrubbed in the message.
    const failed = await env.pinflow.getRun(runs.failed);
    assert.match(JSON.stringify(failed.error), /card \[redacted\] of \[redacted\] declined for -1/);
    const stalled = await env.pinflow.getRun(runs.stalled);
    assert.equal(stalled.stall?.reason, 'rpc_missing');
    assert.deepEqual(stalled.steps.find((s) => s.stepId === 'refund')!.input, { token: REDACTED, email: REDACTED });
  });

  it('no API response carries a sensitive value: runs, run details, live state, stalls, events, waits, versions', async () => {
    // /metrics too: its labels carry names (definition, rpc, step type, status), never values.
    const gets = ['/runs', '/runs?status=STALLED', '/events', '/waits', '/definitions', '/definitions/payment/versions', '/metrics'];
    for (const id of Object.values(runs)) gets.push(`/runs/${id}`, `/runs/${id}/state`);
    for (const url of gets) {
      const res = await call('GET', url);
      assert.equal(res.status, 200, `${url}: ${res.text}`);
    }
    const state = (await call('GET', `/runs/${runs.stalled}/state`)).body as { vars: Record<string, unknown>; steps: Record<string, unknown> };
    assert.equal(state.vars.copy, REDACTED);
    assert.equal(state.vars.seen, 7);
    assert.deepEqual(state.steps.charge, { receipt: 'r-7', token: REDACTED, holder: { email: REDACTED, country: 'FR' } });
    for (const r of responses) assert.deepEqual(leaked(r), [], r);
  });

  it('start refuses an input its inputSchema refuses (422 INPUT_INVALID naming the field), without echoing a sensitive value', async () => {
    const bad = await call('POST', '/runs', { definition: 'payment', input: { card: `x${CARD}`, email: EMAIL } });
    assert.equal(bad.status, 422, bad.text);
    const err = (bad.body as { error: { code: string; message: string; details: { issues: Array<{ field: string; received: unknown; allowed: string }> } } }).error;
    assert.equal(err.code, 'INPUT_INVALID');
    const fields = err.details.issues.map((i) => i.field).sort();
    assert.deepEqual(fields, ['(root)', 'input.card']);
    assert.equal(err.details.issues.find((i) => i.field === 'input.card')!.received, REDACTED);
    assert.match(err.details.issues.find((i) => i.field === '(root)')!.allowed, /required.*amount/);
    assert.deepEqual(leaked(bad.text), []);
    // A value of the wrong type: the field, what came and what is allowed.
    const wrongType = await call('POST', '/runs', { definition: 'payment', input: { card: CARD, email: EMAIL, amount: 'five' } });
    assert.equal(wrongType.status, 422);
    const issue = (wrongType.body as { error: { details: { issues: Array<{ field: string; received: unknown; allowed: string }> } } }).error.details.issues[0]!;
    assert.deepEqual([issue.field, issue.received], ['input.amount', 'five']);
    assert.match(issue.allowed, /type.*number/);
    assert.deepEqual(leaked(wrongType.text), []);
  });

  it('publish refuses an inputSchema that does not compile, and a sensitiveVars entry that is not a variable name (422 GRAPH_INVALID)', async () => {
    const small = { entry: 'done', steps: [{ id: 'done', type: 'return', output: '1' }] };
    const notSchema = await call('POST', '/definitions/payment-bad/versions', { ...small, inputSchema: { type: 'object', properties: { a: { type: 'strnig' } } } });
    assert.equal(notSchema.status, 422, notSchema.text);
    assert.match(notSchema.text, /inputSchema/);
    const typo = await call('POST', '/definitions/payment-bad/versions', { ...small, inputSchema: { type: 'object', propertys: {} } });
    assert.equal(typo.status, 422, typo.text);
    assert.match(typo.text, /inputSchema.*propertys/);
    const badVar = await call('POST', '/definitions/payment-bad/versions', { ...small, sensitiveVars: ['not a name'] });
    assert.equal(badVar.status, 422, badVar.text);
    assert.match(badVar.text, /sensitiveVars/);
  });

  it('check-deploy reads redacted inputs as unknown (never a certain verdict on "[redacted]"), and its report shows no secret', async () => {
    const tightened = defineRpc('pay.refund', {
      input: z.object({ token: z.string().regex(/^tok-[0-9]+$/).meta({ sensitive: true }), email: z.string().meta({ sensitive: true }) }),
      output: z.object({ refunded: z.boolean() }),
      handler: () => ({ refunded: true }),
    });
    // pay.charge stays out: its z.email() pattern is one check-deploy refuses (REGEX_UNSAFE); the run is past it.
    const contracts = Object.fromEntries([tightened].map((r) => [r.name, { hash: r.contract.hash, input: r.contract.input, output: r.contract.output }]));
    const res = await call('POST', '/deploy/check', { contracts });
    assert.equal(res.status, 200, res.text);
    const impacts = (res.body as { impacts: Array<{ runId: string; rpc: string; certain: boolean; evidence: { input?: unknown } }> }).impacts.filter((i) => i.runId === runs.stalled);
    assert.ok(impacts.length > 0, res.text);
    for (const i of impacts) {
      assert.equal(i.certain, false, JSON.stringify(i));
      assert.equal(i.evidence.input, undefined, JSON.stringify(i));
    }
    assert.deepEqual(leaked(res.text), []);
  });

  it('no log line of the worker or the API process carries a sensitive value (at debug level)', () => {
    const workerLog = worker!.output.join('');
    const apiLog = api!.output.join('');
    // The logs are there: the run ids and the failure appear.
    assert.ok(workerLog.includes(runs.failed), 'the worker logged the failed run');
    assert.ok(apiLog.includes('/runs'), 'the API logged its requests');
    for (const line of `${workerLog}\n${apiLog}`.split('\n')) assert.deepEqual(leaked(line), [], line);
  });
});
