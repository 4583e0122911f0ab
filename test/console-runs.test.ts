/**
 * The console's Runs, Run detail and Attention views in a real Chromium
 * against the real stack: what each page shows is checked against what the
 * API and the projection say.
 */
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { Pinflow } from '../client/pinflow';
import { rpcs } from './fixtures/rpcs';
import { eventually, keyFetch } from './support/harness';
import { graphStates, pageText, shows, snapshot, startConsoleStack, type ConsoleStack } from './support/console';
import { brokenAdd, pinnedAdd, STALL_GRAPH } from './support/story';

/** Two rpc steps, a branch never taken (`big`) and a forEach of three items (nested step `hi`). */
const OK_GRAPH = {
  entry: 'sum',
  steps: [
    { id: 'sum', type: 'rpc', rpc: 'math.add', input: { a: 'input.a', b: 'input.b' }, next: 'pick' },
    { id: 'pick', type: 'if', condition: 'steps.sum.sum > 100', then: 'big', else: 'each' },
    { id: 'big', type: 'rpc', rpc: 'text.greet', input: { name: "'big'" }, next: 'each' },
    { id: 'each', type: 'forEach', items: 'input.names', body: { entry: 'hi', steps: [{ id: 'hi', type: 'rpc', rpc: 'text.greet', input: { name: 'item' } }] }, next: 'done' },
    { id: 'done', type: 'return', output: 'steps.sum.sum' },
  ],
};

interface ApiRun {
  id: string;
  status: string;
  stall: { id: string; stepInstance: string; reason: string; rpc: string } | null;
  steps: Array<{ stepId: string; stepInstance: string; status: string; notes?: Array<{ kind: string }> }>;
  decisions: Array<{ action: string; by: string; reason: string | null; output: unknown }>;
}

describe('console: runs, run detail and attention views', function () {
  this.timeout(300_000);
  let stack: ConsoleStack;
  let get: <T>(path: string) => Promise<T>;
  const okRuns: string[] = [];
  const stalledRuns: string[] = [];

  before(async () => {
    // The worker serves story.add with a changed input contract: runs pinned to the published one stall.
    stack = await startConsoleStack('console-runs', [...rpcs, brokenAdd]);
    const f = keyFetch(stack.key);
    get = async <T>(path: string) => {
      const res = await f(`${stack.url}${path}`);
      assert.equal(res.status, 200, `GET ${path}: ${res.status} ${await res.clone().text()}`);
      return (await res.json()) as T;
    };
    const publisher = new Pinflow({ client: stack.env.client, store: stack.env.store, rpcs: [...rpcs, pinnedAdd] });
    await publisher.publish('console-ok', OK_GRAPH);
    await publisher.publish('console-stall', STALL_GRAPH);
    for (let i = 0; i < 3; i++) {
      const r = await stack.env.pinflow.start({ definition: 'console-ok', input: { a: i, b: 1, names: ['ann', 'bob', 'cy'] }, metadata: { team: i === 0 ? 'blue' : 'red' }, runId: `console-ok-${i}` });
      okRuns.push(r.runId);
    }
    for (let i = 0; i < 2; i++) {
      const r = await stack.env.pinflow.start({ definition: 'console-stall', input: { a: 2, b: 3 }, metadata: { team: 'red' }, runId: `console-stall-${i}` });
      stalledRuns.push(r.runId);
    }
    await eventually(
      async () => {
        const all = await Promise.all([...okRuns, ...stalledRuns].map((id) => get<ApiRun>(`/runs/${id}`)));
        return all.every((r) => (okRuns.includes(r.id) ? r.status === 'COMPLETED' : r.status === 'STALLED'));
      },
      { timeoutMs: 120_000, what: 'the runs to complete or stall' },
    );
  });
  after(async () => stack?.stop());

  /** The run ids the page's table shows, in order. */
  const rowsOf = (page: Page) => page.$$eval('[data-testid="runs-table"] tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-row') ?? ''));
  /** The counts the page shows, by status. */
  const countsOf = (page: Page) =>
    page.$$eval('[data-testid="run-counts"] a', (as) => Object.fromEntries(as.map((a) => [a.getAttribute('data-status') ?? '', Number(a.querySelector('.n')?.textContent ?? NaN)])));

  /** The page's table and counts equal GET /runs and GET /runs/counts for the same filters. */
  async function listMatchesApi(page: Page, filters: Record<string, string>) {
    const q = new URLSearchParams(filters);
    const counted = new URLSearchParams(filters);
    counted.delete('status');
    const expected = await get<{ runs: Array<{ id: string }> }>(`/runs?${q.toString()}`);
    const counts = await get<{ counts: Record<string, number>; total: number }>(`/runs/counts?${counted.toString()}`);
    assert.ok(expected.runs.length > 0, `the API lists runs for ${q.toString()}`);
    await eventually(async () => JSON.stringify(await rowsOf(page)) === JSON.stringify(expected.runs.map((r) => r.id)), { timeoutMs: 45_000, what: `the table to list ${expected.runs.map((r) => r.id).join(', ')}` });
    const shown = await countsOf(page);
    assert.deepEqual(shown, { ALL: counts.total, ...counts.counts });
    return { ids: expected.runs.map((r) => r.id), counts };
  }

  it('lists runs filtered by status: the rows are the API\u2019s runs and the counts per status are GET /runs/counts', async () => {
    const page = await stack.open('#/runs?status=COMPLETED');
    await shows(page, 'runs-completed', ['Runs', 'console-ok-0', 'completed']);
    const { ids, counts } = await listMatchesApi(page, { status: 'COMPLETED' });
    assert.deepEqual([...ids].sort(), [...okRuns].sort());
    assert.equal(counts.counts.COMPLETED, 3);
    assert.equal(counts.counts.STALLED, 2);

    // A click on the STALLED count sets the status filter in the URL, and the table follows.
    await page.click('[data-testid="run-counts"] a[data-status="STALLED"]');
    await page.waitForFunction('window.location.hash.includes("status=STALLED")');
    const stalled = await listMatchesApi(page, { status: 'STALLED' });
    assert.deepEqual([...stalled.ids].sort(), [...stalledRuns].sort());
    await shows(page, 'runs-stalled', ['input_incompatible · story.add']);
    await page.close();
  });

  it('lists runs filtered by metadata (added in the filter form), with the counts of that filter', async () => {
    const page = await stack.open('#/runs');
    await shows(page, 'runs-all', ['console-stall-1', 'console-ok-2']);
    await page.fill('input[name="meta"]', 'team=red');
    await page.click('form[aria-label="Run filters"] button[type="submit"]');
    await page.waitForFunction('window.location.hash.includes("meta.team=red")');
    const { ids, counts } = await listMatchesApi(page, { 'meta.team': 'red' });
    assert.deepEqual([...ids].sort(), ['console-ok-1', 'console-ok-2', 'console-stall-0', 'console-stall-1']);
    assert.deepEqual({ total: counts.total, COMPLETED: counts.counts.COMPLETED, STALLED: counts.counts.STALLED }, { total: 4, COMPLETED: 2, STALLED: 2 });
    await shows(page, 'runs-meta', ['team = red', 'Clear all filters']);

    // Both filters at once: the URL carries them and the page asks the API for both.
    await page.click('[data-testid="run-counts"] a[data-status="COMPLETED"]');
    await page.waitForFunction('window.location.hash.includes("status=COMPLETED") && window.location.hash.includes("meta.team=red")');
    const both = await listMatchesApi(page, { status: 'COMPLETED', 'meta.team': 'red' });
    assert.deepEqual([...both.ids].sort(), ['console-ok-1', 'console-ok-2']);

    // No match: the empty state says so and offers to clear.
    await page.goto(`${stack.url}/#/runs?meta.team=green`);
    await shows(page, 'runs-empty', ['No runs match these filters', 'Clear the filters']);
    await page.close();
  });

  it('colours a completed run\u2019s graph by its step rows: completed where a row completed, not reached where there is none', async () => {
    const run = await get<ApiRun>(`/runs/${okRuns[1]}`);
    const page = await stack.open(`#/runs/${okRuns[1]}`);
    await shows(page, 'run-detail-completed', ['Pinned graph', 'Step timeline', 'COMPLETED', '3 done']);
    const states = await graphStates(page);
    const withRows = new Set(run.steps.map((s) => s.stepId));
    for (const [step, state] of Object.entries(states)) {
      if (!withRows.has(step)) assert.equal(state, 'not-reached', `step ${step} has no row`);
      else {
        assert.ok(run.steps.filter((s) => s.stepId === step).every((s) => s.status === 'COMPLETED'), `step ${step}'s rows are COMPLETED`);
        assert.equal(state, 'completed', `step ${step} completed`);
      }
    }
    assert.equal(states.big, 'not-reached');
    assert.equal(states.sum, 'completed');
    assert.equal(states.hi, 'completed');
    assert.equal(run.steps.filter((s) => s.stepId === 'hi').length, 3);
    // Every row of the projection is a row of the timeline.
    const timeline = await page.$$eval('[data-testid="timeline"] tbody tr', (trs) => trs.length);
    assert.equal(timeline, run.steps.length);
    // A click on a node highlights its rows in the timeline.
    await page.click('[data-step="hi"]');
    await eventually(async () => (await page.$$eval('[data-testid="timeline"] tbody tr.selected', (trs) => trs.length)) === 3, { timeoutMs: 15_000, what: 'the three rows of hi highlighted' });
    await page.close();
  });

  it('shows a stalled run, refuses an invalid skip output in the browser, then resolves the stall with a valid one', async () => {
    const id = stalledRuns[0]!;
    const before = await get<ApiRun>(`/runs/${id}`);
    assert.equal(before.status, 'STALLED');
    const page = await stack.open(`#/runs/${id}`);
    await shows(page, 'run-detail-stalled', ['Stalled', 'input_incompatible', 'story.add', 'Skip with this output']);
    const states = await graphStates(page);
    assert.equal(before.stall!.stepInstance, 'reserve');
    assert.equal(states.reserve, 'stalled', 'the stalled node is the stall step');
    for (const [step, state] of Object.entries(states)) {
      if (step === 'reserve') continue;
      const rows = before.steps.filter((s) => s.stepId === step);
      assert.equal(state, rows.length === 0 ? 'not-reached' : 'completed', `step ${step}`);
    }
    assert.equal(states.done, 'not-reached');

    // An output the pinned contract refuses: the page names the field, nothing is sent.
    await page.fill('#skip-output', '{ "sum": "five" }');
    await page.click('[data-testid="skip-check"]');
    const refused = await shows(page, 'run-detail-skip-refused', ['output.sum']);
    assert.match(refused, /output\.sum expected number, received string "five"/);
    assert.match(refused, /A reason is required/);
    assert.equal(await page.$('[data-testid="skip-confirm"]'), null, 'no confirm for an invalid output');
    await page.fill('#decision-reason', 'ledger says 42');
    await page.fill('#skip-output', '{}');
    await page.click('[data-testid="skip-check"]');
    await shows(page, 'run-detail-skip-missing', [/output\.sum is required \(number\), missing/]);
    assert.doesNotMatch(await pageText(page), /A reason is required/);
    const still = await get<ApiRun>(`/runs/${id}`);
    assert.equal(still.status, 'STALLED');
    assert.deepEqual(still.decisions, []);

    // A valid output: confirm, the stall resolves and the run completes with it.
    await page.fill('#skip-output', '{ "sum": 42 }');
    await page.click('[data-testid="skip-check"]');
    await page.click('[data-testid="skip-confirm"]');
    // The answer shows in the stall panel until the run moves on (the live refresh then drops the panel); the decision stays in the decisions list.
    await shows(page, 'run-detail-skip-sent', [/Skipped: stall reserve\/1 resolved|ledger says 42/]);
    const done = await eventually(
      async () => {
        const r = await get<ApiRun & { output: unknown }>(`/runs/${id}`);
        return r.status === 'COMPLETED' ? r : undefined;
      },
      { timeoutMs: 60_000, what: 'the skipped run to complete' },
    );
    assert.equal(done.output, 42);
    assert.deepEqual(
      done.decisions.map((d) => ({ action: d.action, by: d.by, reason: d.reason, output: d.output })),
      [{ action: 'skip', by: 'console-test', reason: 'ledger says 42', output: { sum: 42 } }],
    );
    const temporal = await stack.env.client.workflow.getHandle(id).result();
    assert.equal(temporal, 42);
    // The page follows (live refresh): completed, the step shown as skipped.
    await eventually(async () => (await page.textContent('[data-testid="run-status"]'))?.includes('COMPLETED'), { timeoutMs: 45_000, what: 'the page to show COMPLETED' });
    await eventually(async () => (await graphStates(page)).reserve === 'skipped', { timeoutMs: 45_000, what: 'reserve shown as skipped' });
    await shows(page, 'run-detail-skipped', ['SKIPPED', 'skip', 'console-test']);
    await page.close();
  });

  it('shows the attention counts per reason as GET /attention has them, each linking to its runs', async () => {
    const counts = (await get<{ counts: Record<string, number> }>('/attention')).counts;
    const page = await stack.open('#/attention');
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    await shows(page, 'attention', ['Needs attention', 'No worker', 'Wait overdue', ...(total === 0 ? ['Nothing needs attention'] : [])]);
    const shown = await page.$$eval('[data-reason]', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-reason') ?? '', Number(e.getAttribute('data-count'))])));
    for (const [reason, n] of Object.entries(shown)) assert.equal(n, counts[reason] ?? 0, reason);
    const link = await page.getAttribute('[data-reason="NO_PROGRESS"] h2 a', 'href');
    assert.equal(link, '#/runs?attention=NO_PROGRESS');
    await snapshot(page, 'attention-final');
    await page.close();
  });
});
