import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { z } from 'zod';
import { Pinflow } from '../client/pinflow';
import { defineRpc } from '../rpc/registry';
import { rpcs } from './fixtures/rpcs';
import { eventually, keyFetch } from './support/harness';
import { shows, snapshot, startConsoleStack, type ConsoleStack } from './support/console';
import { brokenAdd, pinnedAdd, publishStory } from './support/story';

/**
 * The operator views of the console in a real Chromium against the real
 * stack: the stalls inbox (a bulk retry after a fixing deploy), events (an
 * unmatched event and its reason, who waits on a key), batches, audit and keys
 * (a read-only key is offered no operator action).
 */
/** Published with, never deployed: runs calling it stall with rpc_missing. */
const goneRpc = defineRpc('ops.gone', { input: z.object({ n: z.number() }), output: z.object({}), handler: () => ({}) });

describe('console: stalls inbox, events, batches, audit and keys', function () {
  this.timeout(300_000);
  let stack: ConsoleStack;
  let get: (path: string) => Promise<unknown>;
  const stalledIds = ['ops-stall-1', 'ops-stall-2', 'ops-stall-3', 'ops-stall-4'];
  let readOnlyKey = '';

  const statusOf = async (runId: string) => (await stack.env.pinflow.getRun(runId)).status;
  const dbStalled = async () =>
    (await stack.env.db.query<{ n: number }>({ text: `SELECT count(*)::int AS n FROM runs WHERE status = 'STALLED' AND definition = 'order-fulfilment' AND stall_rpc = 'story.add'`, values: [] }))[0]!.n;

  before(async () => {
    // The deployed story.add no longer takes the pinned input: every run of order-fulfilment stalls on it.
    stack = await startConsoleStack('console-ops', [...rpcs, brokenAdd]);
    const fetchWithKey = keyFetch(stack.key);
    get = async (path) => {
      const res = await fetchWithKey(`${stack.url}${path}`);
      assert.equal(res.status, 200, `GET ${path}: ${res.status} ${await res.clone().text()}`);
      return res.json();
    };
    await publishStory(stack.env, rpcs);
    for (const runId of stalledIds) await stack.env.pinflow.start({ definition: 'order-fulfilment', input: { a: 2, b: 3 }, runId });
    await eventually(async () => (await Promise.all(stalledIds.map(statusOf))).every((s) => s === 'STALLED'), { timeoutMs: 120_000, what: 'the four runs to stall' });
  });
  after(async () => {
    await stack?.env.pinflow.batches.stop();
    await stack?.stop();
  });

  const groupRow = (page: Page) => page.locator('[data-testid="stall-groups"] tbody tr', { hasText: 'story.add' });

  it('the stalls inbox shows the group with the count the database has, and its runs', async () => {
    const page = await stack.open('#/stalls');
    await shows(page, 'stalls-inbox', ['order-fulfilment', 'story.add', 'input_incompatible']);
    assert.equal(await dbStalled(), stalledIds.length);
    assert.equal((await groupRow(page).locator('[data-testid="group-count"]').innerText()).trim(), String(await dbStalled()));
    await groupRow(page).locator('[data-testid="open-group"]').click();
    await eventually(async () => (await page.locator('[data-testid="group-runs"] tbody tr').count()) === stalledIds.length, { timeoutMs: 45_000, what: 'the group to list its runs' });
    const text = await shows(page, 'stalls-group', stalledIds);
    assert.match(text, /This will retry 4 runs of order-fulfilment v1 stalled on story\.add \(input_incompatible\)/);
    assert.ok(page.url().includes('group='), 'the selected group is in the URL');

    // A skip's output is checked against story.add's pinned output contract ({ sum: number }) before anything is sent.
    await page.selectOption('#stall-action', 'skip');
    const problems = page.locator('[data-testid="output-problems"]');
    const skipButton = page.locator('[data-testid="decide"] button:has-text("Skip 4 runs")');
    await page.fill('#skip-output', '{"sum": "five"}');
    assert.match(await problems.innerText(), /sum: is string, must be number/);
    assert.equal(await skipButton.isDisabled(), true);
    await page.fill('#skip-output', '{}');
    assert.match(await problems.innerText(), /sum: is missing \(required\)/);
    await page.fill('#skip-output', '{"sum": 5');
    assert.match(await problems.innerText(), /not JSON/);
    await page.fill('#skip-output', '{"sum": 5}');
    assert.equal(await problems.count(), 0);
    await shows(page, 'stalls-skip', ['A skip needs a reason', 'This will skip the step of 4 runs of order-fulfilment v1']);
    assert.equal(await skipButton.isDisabled(), true, 'a skip needs a reason');
    await page.fill('#stall-note', 'compensated by hand');
    assert.equal(await skipButton.isDisabled(), false);
    assert.deepEqual(await Promise.all(stalledIds.map(statusOf)), stalledIds.map(() => 'STALLED'), 'nothing was sent');
    await page.close();
  });

  it('keys: an admin creates a read-only key in the page; logged in with it, no operator action is offered', async () => {
    const page = await stack.open('#/keys');
    await shows(page, 'keys', ['Create a key', 'console-test']);
    await page.fill('#key-name', 'auditor');
    // read is ticked by default; nothing else.
    await page.click('button:has-text("Create key")');
    const secretEl = page.locator('[data-testid="new-key-secret"]');
    await secretEl.waitFor({ timeout: 45_000 });
    readOnlyKey = (await secretEl.innerText()).trim();
    assert.match(readOnlyKey, /^pf_/);
    await shows(page, 'keys-created', ['shown this once', 'auditor']);
    const listed = (await get('/keys')) as { keys: Array<{ name: string; scopes: string[]; tenant: string | null }> };
    const auditor = listed.keys.find((k) => k.name === 'auditor');
    assert.deepEqual(auditor && { scopes: auditor.scopes, tenant: auditor.tenant }, { scopes: ['read'], tenant: null });
    await page.close();

    const readOnly = await stack.open('#/stalls', { key: readOnlyKey });
    await shows(readOnly, 'stalls-read-only', ['story.add', 'auditor · read']);
    await groupRow(readOnly).locator('[data-testid="open-group"]').click();
    await shows(readOnly, 'stalls-group-read-only', ['Your key may read only', ...stalledIds]);
    assert.equal(await readOnly.locator('[data-testid="decide"]').count(), 0, 'no decide form');
    assert.equal(await readOnly.locator('[data-testid="run-check"]').count(), 0, 'no run checkboxes');
    assert.equal(await readOnly.locator('nav a', { hasText: 'Keys' }).count(), 0, 'no Keys link for a read key');
    await readOnly.goto(`${stack.url}/#/events`);
    await shows(readOnly, 'events-read-only', ['Event log']);
    assert.equal(await readOnly.locator('[data-testid="send-event"]').count(), 0, 'no send-event form for a read key');
    await readOnly.close();

    // Revoked in the page (a reason is required): the key is refused from then on.
    const admin = await stack.open('#/keys');
    const row = admin.locator('[data-testid="keys"] tbody tr', { hasText: 'auditor' });
    await row.waitFor({ timeout: 45_000 });
    await row.locator('input').fill('test over');
    await row.locator('button:has-text("Revoke")').click();
    assert.match(await row.locator('.confirm').innerText(), /Revoke \S+ \(auditor, read\)\?/);
    await row.locator('button:has-text("Confirm")').click();
    await eventually(async () => (await admin.locator('[data-testid="keys"] tbody tr', { hasText: 'auditor' }).count()) === 0, { timeoutMs: 45_000, what: 'the revoked key to leave the list' });
    const all = (await get('/keys?revoked=true')) as { keys: Array<{ name: string; revokedAt: string | null }> };
    assert.ok(all.keys.find((k) => k.name === 'auditor')?.revokedAt, 'revoked');
    const refused = await fetch(`${stack.url}/whoami`, { headers: { authorization: `Bearer ${readOnlyKey}` } });
    assert.equal(refused.status, 401);
    await admin.goto(`${stack.url}/#/keys?revoked=true`);
    await shows(admin, 'keys-revoked', ['auditor', 'Hide revoked keys']);
    await admin.close();
  });

  it('a bulk retry from the inbox after a fixing deploy: preview, confirm, per-run results, every run completes', async () => {
    await stack.env.startWorker([...rpcs, pinnedAdd]); // the deploy that fixes story.add
    const page = await stack.open('#/stalls');
    await shows(page, 'stalls-before-retry', ['story.add']);
    await groupRow(page).locator('[data-testid="open-group"]').click();
    await eventually(async () => (await page.locator('[data-testid="group-runs"] tbody tr').count()) === stalledIds.length, { timeoutMs: 45_000, what: 'the group to list its runs' });
    await page.fill('#stall-note', 'story.add fixed in the deploy');
    await page.click('button:has-text("Retry 4 runs")');
    const confirm = page.locator('.confirm');
    assert.match(await confirm.innerText(), /This will retry 4 runs of order-fulfilment v1 stalled on story\.add \(input_incompatible\)/);
    await snapshot(page, 'stalls-preview');
    await confirm.locator('button:has-text("Confirm")').click();
    const text = await shows(page, 'stalls-results', ['4 ok', '0 failed', ...stalledIds]);
    assert.match(text, /4 \/ 4 runs done/);
    const rows = await page.locator('[data-testid="results-table"] tbody tr').allInnerTexts();
    assert.equal(rows.length, 4);
    for (const id of stalledIds) assert.ok(rows.some((r) => r.includes(id) && /\bok\b/.test(r)), `${id}: ok`);
    await eventually(async () => (await Promise.all(stalledIds.map(statusOf))).every((s) => s === 'COMPLETED'), { timeoutMs: 120_000, what: 'every retried run to complete' });
    for (const id of stalledIds) assert.deepEqual((await stack.env.pinflow.getRun(id)).status, 'COMPLETED');
    // The group leaves the inbox; the results stay on the page.
    await shows(page, 'stalls-empty', ['No stalled runs. A run stalls when the deployed RPC no longer fits', 'Results: retry', '4 ok', 'no run stalled now']);
    await page.close();
  });

  it('ticked runs of a group are cancelled run by run, with a progress counter and per-run results', async () => {
    const publisher = new Pinflow({ client: stack.env.client, store: stack.env.store, rpcs: [...rpcs, goneRpc] });
    await publisher.publish('ops-gone', { entry: 'call', steps: [{ id: 'call', type: 'rpc', rpc: 'ops.gone', input: { n: 'input.n' }, next: 'done' }, { id: 'done', type: 'return', output: 'steps.call' }] });
    const ids = ['ops-gone-1', 'ops-gone-2'];
    for (const runId of ids) await stack.env.pinflow.start({ definition: 'ops-gone', input: { n: 1 }, runId });
    await eventually(async () => (await Promise.all(ids.map(statusOf))).every((st) => st === 'STALLED'), { timeoutMs: 120_000, what: 'the ops-gone runs to stall' });
    const page = await stack.open('#/stalls?rpc=ops.gone');
    await shows(page, 'stalls-rpc-missing', ['ops-gone', 'ops.gone', 'rpc_missing']);
    await page.locator('[data-testid="stall-groups"] [data-testid="open-group"]').click();
    const row = page.locator('[data-testid="group-runs"] tbody tr', { hasText: 'ops-gone-1' });
    await row.waitFor({ timeout: 45_000 });
    await row.locator('[data-testid="run-check"]').check();
    await page.selectOption('#stall-action', 'cancel');
    await page.fill('#stall-note', 'not needed any more');
    await shows(page, 'stalls-ticked', ['This will cancel 1 selected run of ops-gone v1 stalled on ops.gone (rpc_missing).']);
    await page.click('[data-testid="decide"] button:has-text("Cancel 1 run")');
    await page.locator('.confirm button:has-text("Confirm")').click();
    await shows(page, 'stalls-cancelled', ['1 / 1 runs done', '1 ok', '0 failed', 'ops-gone-1']);
    await eventually(async () => (await statusOf('ops-gone-1')) === 'CANCELLED', { timeoutMs: 90_000, what: 'the ticked run to be cancelled' });
    assert.equal(await statusOf('ops-gone-2'), 'STALLED', 'the run not ticked is left alone');
    await eventually(async () => (await page.locator('[data-testid="group-count"]').innerText()).trim() === '1', { timeoutMs: 45_000, what: 'the group count to drop to 1' });
    await page.close();
  });

  it('the audit view shows the rows the bulk retry wrote, with its runs', async () => {
    const api = (await get('/audit?action=stalls.resolve')) as { entries: Array<{ runIds: string[]; outcome: string; reason: string | null }> };
    assert.equal(api.entries.length, 1);
    assert.deepEqual([...api.entries[0]!.runIds].sort(), stalledIds);
    const page = await stack.open('#/audit?action=stalls.resolve');
    const text = await shows(page, 'audit', ['stalls.resolve', 'accepted', 'story.add fixed in the deploy', ...stalledIds]);
    assert.equal(await page.locator('[data-testid="audit"] tbody tr').count(), api.entries.length);
    assert.match(text, /POST \/stalls\/resolve/);
    await page.close();
  });

  it('an event no wait matches is shown UNMATCHED with its reason; its detail has no deliveries', async () => {
    const page = await stack.open('#/events');
    await shows(page, 'events-empty', ['No events yet']);
    await page.click('[data-testid="send-event"] summary');
    await page.fill('#ev-name', 'payment.received');
    await page.fill('#ev-key', 'nobody-waits');
    await page.fill('#ev-payload', '{"by": "ada"}');
    await page.click('[data-testid="send-event"] button:has-text("Send")');
    await shows(page, 'events-sent', [/Sent: \S+ is [A-Z]+/]);
    type Listed = { events: Array<{ eventId: string; status: string; error: { code: string; message: string } | null; tenant: string }> };
    const ev = await eventually(
      async () => {
        const api = (await get('/events?key=nobody-waits')) as Listed;
        assert.ok(api.events.length <= 1, 'one event');
        return api.events[0]?.status === 'UNMATCHED' ? api.events[0] : undefined;
      },
      { timeoutMs: 60_000, what: 'the event to be UNMATCHED' },
    );
    await page.goto(`${stack.url}/#/events?status=UNMATCHED`);
    // The reason: the API's error when it gives one, else what UNMATCHED means.
    const reason = ev.error ? ev.error.message : 'no run waited on its name and correlation key';
    const text = await shows(page, 'events', ['payment.received', 'UNMATCHED', 'nobody-waits', reason]);
    assert.equal(await page.locator('[data-testid="events"] tbody tr').count(), 1, text);

    const detail = (await get(`/events/${encodeURIComponent(ev.eventId)}?tenant=${ev.tenant}`)) as { deliveries: unknown[] };
    assert.deepEqual(detail.deliveries, []);
    await page.click(`[data-testid="events"] a:has-text("payment.received")`);
    await shows(page, 'event-detail', ['UNMATCHED', 'No deliveries: no run took this event', 'nobody-waits', reason]);
    assert.equal(await page.locator('[data-testid="deliveries"]').count(), 0);
    await page.close();
  });

  it('"who waits on key K" lists the run waiting on that key', async () => {
    const started = await stack.env.pinflow.start({ definition: 'order-payment', input: { orderId: 'o-77' }, runId: 'ops-wait-1' });
    const waits = await eventually(
      async () => {
        const w = (await get('/waits?key=o-77')) as { waits: Array<{ runId: string; waitId: string; stepInstance: string; event: string }> };
        return w.waits.length > 0 ? w.waits : undefined;
      },
      { timeoutMs: 90_000, what: 'the run to wait on o-77' },
    );
    assert.equal(waits[0]!.runId, started.runId);
    const page = await stack.open('#/events?tab=waits&key=o-77');
    await shows(page, 'events-waits', [started.runId, waits[0]!.waitId, waits[0]!.stepInstance, 'payment.received', 'OPEN']);
    assert.equal(await page.locator('[data-testid="waits"] tbody tr').count(), waits.length);
    await page.goto(`${stack.url}/#/events?tab=rules`);
    await shows(page, 'events-rules', ['No correlation rules']);
    await page.close();
  });

  it('batches: a dry run shows the count, the batch is created and its detail shows it done; the run is cancelled', async () => {
    stack.env.pinflow.batches.start(); // the runner, as `npm start` runs it in the API process
    const page = await stack.open('#/batches');
    await shows(page, 'batches-empty', ['No batches']);
    await page.click('a:has-text("New batch")');
    await page.selectOption('#b-action', 'cancel');
    await page.selectOption('#b-status', 'RUNNING');
    await page.fill('#b-definition', 'order-payment');
    await page.fill('#b-reason', 'console test: cancel the waiting payment');
    await page.click('button:has-text("Dry run")');
    await shows(page, 'batches-dry-run', ['This batch would cancel 1 run', 'ops-wait-1']);
    await page.click('button:has-text("Create the batch (1 run)")');
    await shows(page, 'batch-detail', ['Batch ', 'COMPLETED', '1/1', '1 done', 'ops-wait-1']);
    const item = page.locator('[data-testid="batch-items"] tbody tr', { hasText: 'ops-wait-1' });
    await eventually(async () => /\bDONE\b/.test(await item.innerText()), { timeoutMs: 45_000, what: 'the item to show DONE' });
    await snapshot(page, 'batch-detail');
    await eventually(async () => (await statusOf('ops-wait-1')) === 'CANCELLED', { timeoutMs: 90_000, what: 'the batch to cancel the run' });
    const list = (await get('/batches')) as { batches: Array<{ id: string; action: string; state: string; progress: { done: number } }> };
    assert.equal(list.batches.length, 1);
    assert.deepEqual({ action: list.batches[0]!.action, state: list.batches[0]!.state, done: list.batches[0]!.progress.done }, { action: 'cancel', state: 'COMPLETED', done: 1 });
    assert.ok(page.url().includes(`#/batches/${list.batches[0]!.id}`));
    await page.goto(`${stack.url}/#/batches`);
    await shows(page, 'batches', ['cancel', 'COMPLETED', '1/1', 'console test: cancel the waiting payment']);
    await page.close();
  });
});
