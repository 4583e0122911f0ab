/**
 * The console's definition views in a real Chromium against the real stack:
 * the per-step counts of a version equal what the database holds (runs
 * completed, failed, stalled, skipped, waiting and running), a count opens
 * exactly its runs, the version diff names and classes what changed, and the
 * deploy check shows the runs POST /deploy/check finds.
 */
import assert from 'node:assert/strict';
import { z } from 'zod';
import type { Page } from 'playwright-core';
import { Pinflow } from '../client/pinflow';
import { manifestOf } from '../client/check-deploy';
import { defineRpc, RpcRegistry } from '../rpc/registry';
import { rpcs } from './fixtures/rpcs';
import { eventually, keyFetch } from './support/harness';
import { brokenAdd, pinnedAdd } from './support/story';
import { snapshot, shows, startConsoleStack, type ConsoleStack } from './support/console';

/** A step that runs until the test lets it go: a run RUNNING at a step for as long as the test needs. */
let release: () => void = () => undefined;
const released = new Promise<void>((r) => (release = r));
const holdOn = defineRpc('defs.hold', {
  input: z.object({}),
  output: z.object({ held: z.boolean() }),
  handler: async (_input, ctx) => {
    await Promise.race([released, new Promise((r) => ctx.signal.addEventListener('abort', r))]);
    return { held: true };
  },
  timeout: '30m',
});
/** The deploy the check is about: text.greet takes a number now. */
const greetChanged = defineRpc('text.greet', {
  input: z.object({ name: z.number() }),
  output: z.object({ greeting: z.string() }),
  handler: ({ name }) => ({ greeting: `hello ${name}` }),
});

const DEFINITION = 'defs-shop';
/** v1: a switch sends each run to the step where the test wants it. */
const V1 = {
  entry: 'route',
  steps: [
    {
      id: 'route',
      type: 'switch',
      cases: [
        { when: "input.kind = 'fail'", next: 'charge' },
        { when: "input.kind = 'stall'", next: 'reserve' },
        { when: "input.kind = 'wait'", next: 'hold' },
        { when: "input.kind = 'run'", next: 'slow' },
      ],
      default: 'done',
    },
    { id: 'charge', type: 'rpc', rpc: 'test.decline', input: { reason: "'card'" }, next: 'done' },
    { id: 'reserve', type: 'rpc', rpc: 'story.add', input: { a: 'input.a', b: 'input.b' }, next: 'done' },
    { id: 'hold', type: 'wait', event: 'defs.go', correlationKey: 'input.id', timeout: '1h', next: 'greet' },
    { id: 'greet', type: 'rpc', rpc: 'text.greet', input: { name: "'shop'" }, next: 'done' },
    { id: 'slow', type: 'rpc', rpc: 'defs.hold', next: 'done' },
    { id: 'done', type: 'return', output: "'ok'" },
  ],
};
/** v2: `slow` removed, `audit` inserted, `hold` changed (its timeout); published with story.add's changed contract. */
const V2 = {
  entry: 'route',
  steps: [
    {
      id: 'route',
      type: 'switch',
      cases: [
        { when: "input.kind = 'fail'", next: 'charge' },
        { when: "input.kind = 'stall'", next: 'reserve' },
        { when: "input.kind = 'wait'", next: 'hold' },
      ],
      default: 'audit',
    },
    { id: 'charge', type: 'rpc', rpc: 'test.decline', input: { reason: "'card'" }, next: 'done' },
    { id: 'reserve', type: 'rpc', rpc: 'story.add', input: { a: 'input.a', b: 'input.b' }, next: 'done' },
    { id: 'hold', type: 'wait', event: 'defs.go', correlationKey: 'input.id', timeout: '2h', next: 'greet' },
    { id: 'greet', type: 'rpc', rpc: 'text.greet', input: { name: "'shop'" }, next: 'done' },
    { id: 'audit', type: 'assign', set: { audited: 'true' }, next: 'done' },
    { id: 'done', type: 'return', output: "'ok'" },
  ],
};

type CountState = 'running' | 'waiting' | 'stalled' | 'passed' | 'failed' | 'skipped';
type Counts = Record<string, Record<CountState, number>>;

describe('console: definitions, live per-step counts, version diff and deploy check', function () {
  this.timeout(300_000);
  let stack: ConsoleStack;
  let v1: string;
  let v2: string;
  const runs: { done: string[]; fail: string[]; stall: string[]; wait: string[]; run: string[] } = { done: [], fail: [], stall: [], wait: [], run: [] };

  /** The runs of `version` by step and state, from the tables themselves (the meaning of each count, README "Step counts"). */
  async function countsFromDb(version: string): Promise<{ counts: Counts; runIds: Record<string, Record<string, string[]>> }> {
    const rows = await stack.env.db.query<{ step: string; state: string; ids: string[] }>({
      text: `SELECT step, state, array_agg(DISTINCT run_id ORDER BY run_id) AS ids FROM (
               SELECT s.run_id, s.step_id AS step,
                      CASE WHEN s.status = 'RUNNING' AND s.step_type <> 'wait' THEN 'running'
                           WHEN s.status = 'COMPLETED' AND s.notes @> '[{"kind":"skipped"}]' THEN 'skipped'
                           WHEN s.status = 'COMPLETED' THEN 'passed'
                           WHEN s.status = 'FAILED' AND coalesce(s.error->>'type', '') <> 'RpcStall' THEN 'failed' END AS state
                 FROM run_steps s JOIN runs r ON r.id = s.run_id WHERE r.version = $1
               UNION ALL
               SELECT w.run_id, substring(w.step_instance from '^[A-Za-z][A-Za-z0-9_-]*'), 'waiting' FROM run_waits w JOIN runs r ON r.id = w.run_id WHERE r.version = $1 AND w.status = 'OPEN'
               UNION ALL
               SELECT id, substring(stall_step from '^[A-Za-z][A-Za-z0-9_-]*'), 'stalled' FROM runs WHERE version = $1 AND status = 'STALLED'
             ) x WHERE state IS NOT NULL GROUP BY step, state`,
      values: [version],
    });
    const counts: Counts = {};
    const runIds: Record<string, Record<string, string[]>> = {};
    for (const step of V1.steps.map((s) => s.id)) counts[step] = { running: 0, waiting: 0, stalled: 0, passed: 0, failed: 0, skipped: 0 };
    for (const r of rows) {
      counts[r.step]![r.state as CountState] = r.ids.length;
      (runIds[r.step] ??= {})[r.state] = r.ids;
    }
    return { counts, runIds };
  }

  /** What the page shows: the counts of the table under the graph and of each graph node, and each node's colour. */
  async function countsOnPage(page: Page): Promise<{ table: Counts; nodes: Counts; states: Record<string, string> }> {
    type Read = { key: string; state: string; counts: Array<[string, string]> };
    const read = (selector: string, key: string) =>
      page.$$eval(
        selector,
        (els, key) => els.map((e) => ({ key: e.getAttribute(key) ?? '', state: e.getAttribute('data-state') ?? '', counts: [...e.querySelectorAll('[data-count]')].map((c) => [c.getAttribute('data-count') ?? '', c.textContent ?? '']) })),
        key,
      ) as Promise<Read[]>;
    const toCounts = (rows: Read[]): Counts =>
      Object.fromEntries(rows.map((r) => [r.key, Object.fromEntries(r.counts.map(([st, t]) => [st, Number(t.replace(/[^0-9]/g, ''))]))])) as Counts;
    const nodes = await read('[data-testid="graph"] [data-step]', 'data-step');
    return { table: toCounts(await read('[data-testid="step-counts"] tbody tr', 'data-row')), nodes: toCounts(nodes), states: Object.fromEntries(nodes.map((n) => [n.key, n.state])) };
  }

  before(async () => {
    // The worker runs the deploy that changed story.add: runs of v1 (pinned to the old contract) stall at reserve.
    stack = await startConsoleStack('console-defs', [...rpcs, holdOn, brokenAdd]);
    const { env } = stack;
    v1 = (await new Pinflow({ client: env.client, store: env.store, rpcs: [...rpcs, holdOn, pinnedAdd] }).publish(DEFINITION, V1)).version;
    const start = async (kind: keyof typeof runs, n: number) => {
      for (let i = 0; i < n; i++) {
        const runId = `defs-${kind}-${i + 1}`;
        await env.pinflow.start({ definition: DEFINITION, runId, input: { kind, id: runId, a: 1, b: 2 } });
        runs[kind].push(runId);
      }
    };
    await start('done', 2);
    await start('fail', 1);
    await start('stall', 3);
    await start('wait', 2);
    await start('run', 1);
    const status = async (id: string) => (await env.db.query<{ status: string }>({ text: 'SELECT status FROM runs WHERE id = $1', values: [id] }))[0]?.status;
    await eventually(async () => (await Promise.all(runs.stall.map(status))).every((s) => s === 'STALLED'), { timeoutMs: 90_000, what: 'the stall runs to stall' });
    // One stalled run skipped by an operator: its reserve step counts as skipped.
    await env.pinflow.resolveStall(runs.stall[0]!, { action: 'skip', by: 'test', reason: 'covered by hand', output: { sum: 3 } });
    await eventually(
      async () => {
        const st = await Promise.all([...runs.done, ...runs.fail, runs.stall[0]!].map(status));
        const open = await env.db.query<{ n: number }>({
          text: `SELECT (SELECT count(*) FROM run_waits WHERE status = 'OPEN' AND run_id = ANY($1))::int
                      + (SELECT count(*) FROM run_steps WHERE status = 'RUNNING' AND step_id = 'slow' AND run_id = ANY($2))::int AS n`,
          values: [runs.wait, runs.run],
        });
        return st.join() === 'COMPLETED,COMPLETED,FAILED,COMPLETED' && open[0]?.n === 3;
      },
      { timeoutMs: 90_000, what: 'runs completed, failed, skipped, waiting and running' },
    );
    v2 = (await new Pinflow({ client: env.client, store: env.store, rpcs: [...rpcs, holdOn, brokenAdd] }).publish(DEFINITION, V2)).version;
  });
  after(async () => {
    release();
    await stack?.stop();
  });

  it('lists the definitions with their latest version and open runs', async () => {
    const page = await stack.open('#/definitions');
    const text = await shows(page, 'definitions', [DEFINITION, `v2 ${v2.slice(0, 12)}`]);
    // 5 open runs: 2 stalled, 2 waiting, 1 running (GET /runs/counts).
    await eventually(async () => (await page.locator(`[data-testid="open-${DEFINITION}"]`).innerText().catch(() => '')).startsWith('5'), { timeoutMs: 45_000, what: 'the open run count' });
    assert.match(text, /Versions/);
    await page.close();
  });

  it("shows a version's per-step counts as the database has them, on the graph and in the table", async () => {
    const { counts } = await countsFromDb(v1);
    // What the test set up, so the comparison is not of two empty sets.
    assert.deepEqual(counts.reserve, { running: 0, waiting: 0, stalled: 2, passed: 0, failed: 0, skipped: 1 });
    assert.deepEqual(counts.charge, { running: 0, waiting: 0, stalled: 0, passed: 0, failed: 1, skipped: 0 });
    // A wait step's row is RUNNING while its wait is open: both counts.
    // A wait step's RUNNING row counts it as waiting, not running (README "Step counts").
    assert.deepEqual(counts.hold, { running: 0, waiting: 2, stalled: 0, passed: 0, failed: 0, skipped: 0 });
    assert.deepEqual(counts.slow, { running: 1, waiting: 0, stalled: 0, passed: 0, failed: 0, skipped: 0 });
    assert.equal(counts.done?.passed, 3);

    const page = await stack.open(`#/definitions/${DEFINITION}?version=${v1}`);
    await shows(page, 'definition', ['Runs by step', 'Versions', '9 run(s)', '5 open']);
    await page.waitForSelector('[data-testid="graph"][data-ready="true"] [data-step="reserve"] [data-count]', { timeout: 45_000 });
    const shown = await countsOnPage(page);
    assert.deepEqual(shown.table, counts);
    assert.deepEqual(shown.nodes, counts);
    // Each node coloured by its most urgent state.
    assert.deepEqual(
      { reserve: shown.states.reserve, charge: shown.states.charge, hold: shown.states.hold, slow: shown.states.slow, done: shown.states.done, greet: shown.states.greet },
      { reserve: 'stalled', charge: 'failed', hold: 'waiting', slow: 'running', done: 'completed', greet: 'not-reached' },
    );
    await snapshot(page, 'definition');
    await page.close();
  });

  it('opens exactly the runs of a count from its number', async () => {
    const { runIds } = await countsFromDb(v1);
    const page = await stack.open(`#/definitions/${DEFINITION}?version=${v1}`);
    const link = page.locator('[data-testid="step-counts"] tr[data-row="reserve"] a[data-count="stalled"]');
    await link.waitFor({ timeout: 45_000 });
    await link.click();
    await eventually(() => Promise.resolve(new URL(page.url()).hash.startsWith('#/runs?')), { timeoutMs: 30_000, what: 'the run list to open' });
    const query = new URLSearchParams(new URL(page.url()).hash.split('?')[1]);
    assert.deepEqual(Object.fromEntries(query), { version: v1, step: 'reserve', stepState: 'stalled', status: 'STALLED' });
    const expected = runIds.reserve!.stalled!;
    assert.deepEqual(expected, [runs.stall[1], runs.stall[2]].sort());
    const rows = await eventually(
      async () => {
        const ids = await page.$$eval('[data-testid="runs-table"] tbody tr[data-row]', (trs) => trs.map((t) => t.getAttribute('data-row') ?? '').sort());
        return ids.length > 0 ? ids : undefined;
      },
      { timeoutMs: 45_000, what: 'the run list rows' },
    );
    assert.deepEqual(rows, expected);
    // The API the list reads answers the same.
    const res = (await (await keyFetch(stack.key)(`${stack.url}/runs?${query.toString()}`)).json()) as { runs: Array<{ id: string }> };
    assert.deepEqual(res.runs.map((r) => r.id).sort(), expected);
    await snapshot(page, 'definition-count-runs');
    await page.close();
  });

  it('compares two versions: steps inserted, removed and changed, the contract change, classed on the graph', async () => {
    const page = await stack.open(`#/definitions/${DEFINITION}/diff`);
    const diff = (await (await keyFetch(stack.key)(`${stack.url}/definitions/${DEFINITION}/diff?from=${v1}&to=${v2}`)).json()) as {
      steps: { added: string[]; removed: string[]; changed: Array<{ stepId: string; fields: string[] }> };
      contracts: Array<{ rpc: string; change: string; input: { typeChanged: string[] } }>;
      openRuns: { runs: Array<{ runId: string }> };
    };
    assert.deepEqual(diff.steps.added, ['audit']);
    assert.deepEqual(diff.steps.removed, ['slow']);
    assert.ok(diff.steps.changed.some((c) => c.stepId === 'hold'));
    const contract = diff.contracts.find((c) => c.rpc === 'story.add');
    assert.equal(contract?.change, 'changed');
    const text = await shows(page, 'diff', ['Added steps (1)', 'Removed steps (1)', `Changed steps (${diff.steps.changed.length})`, 'story.add', 'type changed', `Open runs on v1 (${diff.openRuns.runs.length}`]);
    // Both selects default to the previous and the latest version.
    assert.equal(await page.locator('[data-testid="diff-from"]').inputValue(), v1);
    assert.equal(await page.locator('[data-testid="diff-to"]').inputValue(), v2);
    const listed = (testId: string) => page.locator(`[data-testid="${testId}"] li code`).allInnerTexts();
    assert.deepEqual(await listed('steps-added'), ['audit']);
    assert.deepEqual(await listed('steps-removed'), ['slow']);
    assert.deepEqual((await listed('steps-changed')).sort(), diff.steps.changed.map((c) => c.stepId).sort());
    for (const f of contract.input.typeChanged) assert.ok(text.includes(f), `the contract change names ${f}`);
    await page.waitForSelector('[data-testid="graph"][data-ready="true"] [data-step="slow"]', { timeout: 45_000 });
    const classes = await page.$$eval('[data-testid="graph"] [data-step]', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-step'), e.getAttribute('data-state')])));
    assert.equal(classes.audit, 'added');
    assert.equal(classes.slow, 'removed');
    assert.equal(classes.hold, 'changed');
    assert.equal(classes.done, 'unchanged');
    assert.ok(await page.locator('[data-step="audit"].diff-added').count(), 'audit is drawn as added');
    assert.ok(await page.locator('[data-step="slow"].diff-removed').count(), 'slow is drawn as removed');
    // The open runs of v1, as the API lists them.
    const shownRuns = await page.$$eval('[data-testid="open-runs"] tbody tr[data-row]', (trs) => trs.map((t) => t.getAttribute('data-row')).sort());
    assert.deepEqual(shownRuns, diff.openRuns.runs.map((r) => r.runId).sort());
    await page.close();
  });

  it('checks a deploy: refuses bad JSON with its position, then shows the runs that would stall as POST /deploy/check does', async () => {
    const page = await stack.open('#/deploy-check');
    await shows(page, 'deploy-check-empty', ['pinflow contracts --rpcs']);
    await page.locator('[data-testid="manifest"]').fill('{ "contracts": { "x": 1, } }');
    await page.locator('[data-testid="check"]').click();
    await shows(page, 'deploy-check-bad-json', ['JSON_INVALID', /line 1 column \d+/]);

    const manifest = { contracts: manifestOf(new RpcRegistry([...rpcs.filter((r) => r.name !== 'text.greet'), greetChanged, holdOn, brokenAdd])) };
    const api = (await (await keyFetch(stack.key)(`${stack.url}/deploy/check`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(manifest) })).json()) as {
      wouldStall: number;
      impacts: Array<{ runId: string; rpc: string; certain: boolean }>;
    };
    const greetRuns = [...new Set(api.impacts.filter((i) => i.rpc === 'text.greet' && i.certain).map((i) => i.runId))].sort();
    // The waiting runs call text.greet next: the changed input stalls them.
    assert.deepEqual(greetRuns, [...runs.wait].sort());
    await page.locator('[data-testid="manifest"]').fill(JSON.stringify(manifest, null, 2));
    await page.locator('[data-testid="check"]').click();
    const text = await shows(page, 'deploy-check', [`${api.wouldStall} run(s) would stall`, 'text.greet', 'input_incompatible']);
    const shownGreet = await page.$$eval('[data-testid="runs-text.greet"] a', (as) => as.map((a) => a.textContent ?? '').sort());
    assert.deepEqual(shownGreet, greetRuns);
    const certain = [...new Set(api.impacts.filter((i) => i.certain).map((i) => i.runId))];
    for (const id of certain) assert.ok(text.includes(id), `the page names ${id}`);
    await page.close();
  });
});
