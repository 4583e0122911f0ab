/**
 * The Temporal UI tells a run's story: headless Chromium (from Debian,
 * driven by playwright-core; no browser is downloaded) opens the test
 * server's UI for a stalled run and a waiting run and checks that the
 * activity and timer summaries, the current details and the search
 * attributes are shown. Screenshots go to test-artifacts/ (git-ignored).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { projectRoot } from '../db/paths';
import { rpcs } from './fixtures/rpcs';
import { createEnv, eventually, temporalUiUrl, type Env } from './support/harness';
import { brokenAdd, pinnedAdd, publishStory, searchAttributes } from './support/story';

const CHROMIUM = process.env.PINFLOW_TEST_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(projectRoot(), 'test-artifacts');

describe('Temporal UI (headless Chromium): a stalled and a waiting run tell their story', function () {
  this.timeout(180_000);
  let env: Env;
  let browser: Browser;
  let ui: string;

  before(async function () {
    const url = temporalUiUrl();
    if (!url) throw new Error('the test Temporal server serves no UI; with PINFLOW_TEST_TEMPORAL_ADDRESS set PINFLOW_TEST_TEMPORAL_UI_URL too');
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set PINFLOW_TEST_CHROMIUM)`);
    ui = url;
    mkdirSync(ARTIFACTS, { recursive: true });
    env = await createEnv('temporal-ui', [...rpcs, pinnedAdd], { searchableMetadata: ['orderId'] });
    await publishStory(env, rpcs);
    await env.startWorker([...rpcs, brokenAdd]); // story.add's input changed: the pinned call stalls
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
  });
  after(async () => {
    await browser?.close();
    await env?.stop();
  });

  /** The text the page shows, including its frames (the UI renders markdown, such as the current details, in a sandboxed frame). */
  async function pageText(page: Page): Promise<string> {
    const parts: string[] = [];
    for (const frame of page.frames()) parts.push(await frame.locator('body').innerText().catch(() => ''));
    return parts.join('\n');
  }

  /** Wait until the page shows every one of `texts`, then screenshot it (also on failure); returns the page text. */
  async function shows(page: Page, shot: string, texts: Array<string | RegExp>): Promise<string> {
    let body = '';
    try {
      await eventually(
        async () => {
          body = await pageText(page);
          return texts.every((t) => (typeof t === 'string' ? body.includes(t) : t.test(body)));
        },
        { timeoutMs: 30_000, what: `the UI to show ${texts.map(String).join(', ')}` },
      );
    } finally {
      await page.screenshot({ path: join(ARTIFACTS, `${shot}.png`) });
      writeFileSync(join(ARTIFACTS, `${shot}.txt`), body);
    }
    return body;
  }

  /**
   * Open a run's page: the event history's timeline shows the activity and
   * timer summaries; the User Metadata tab the current details; the Search
   * Attributes tab the attributes.
   */
  async function openRun(runId: string, shot: string, expect: { summaries: string[]; details: Array<string | RegExp>; attributes: Array<string | RegExp> }): Promise<void> {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    try {
      // The page keeps polling a running workflow: wait for its content, not for an idle network.
      await page.goto(`${ui}/namespaces/${encodeURIComponent(env.namespace)}/workflows/${encodeURIComponent(runId)}`, { waitUntil: 'domcontentloaded' });
      await shows(page, `${shot}-history`, expect.summaries);
      await page.getByText('User Metadata', { exact: true }).first().click();
      await shows(page, `${shot}-details`, expect.details);
      await page.getByText('Search Attributes', { exact: true }).first().click();
      await shows(page, `${shot}-search-attributes`, expect.attributes);
    } finally {
      await page.close();
    }
  }

  it('shows a stalled run: its summaries, its current details (why, how to decide) and its search attributes', async () => {
    const run = await env.pinflow.start({ definition: 'order-fulfilment', input: { a: 1, b: 2 }, runId: 'order-7001', metadata: { orderId: 'o-7001' } });
    await eventually(async () => (await searchAttributes(env, run.runId)).PinflowStatus === 'STALLED', { what: 'STALLED' });
    await openRun(run.runId, 'stalled-run', {
      summaries: ['reserve · story.add', 'stall reserve · story.add · input_incompatible'],
      details: ['STALLED', 'input_incompatible', 'story.add', `POST /runs/${run.runId}/decisions`, 'pinflow.resolveStall'],
      attributes: ['PinflowStatus', 'STALLED', 'PinflowStallReason', 'input_incompatible', 'PinflowCurrentStep', 'reserve', 'PinflowDefinition', 'order-fulfilment', 'PinflowMeta_orderId', 'o-7001'],
    });
  });

  it('shows a waiting run: the wait activity and timer summaries and the event and key it waits for', async () => {
    const run = await env.pinflow.start({ definition: 'order-payment', input: { orderId: 'o-7002' }, runId: 'order-7002', metadata: { orderId: 'o-7002' } });
    await eventually(async () => (await searchAttributes(env, run.runId)).PinflowStatus === 'WAITING', { what: 'WAITING' });
    await openRun(run.runId, 'waiting-run', {
      summaries: ['sleep nap', 'open wait payment.received o-7002', 'wait payment.received o-7002 (timeout)'],
      details: ['WAITING', 'payment.received', 'o-7002', /since \d{4}-\d\d-\d\dT/],
      attributes: ['PinflowStatus', 'WAITING', 'PinflowCurrentStep', 'paid', 'PinflowDefinition', 'order-payment', 'PinflowMeta_orderId', 'o-7002'],
    });
  });

  it('the workflow list finds runs by status and definition', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
    try {
      const query = 'PinflowStatus = "STALLED" AND PinflowDefinition = "order-fulfilment"';
      await page.goto(`${ui}/namespaces/${encodeURIComponent(env.namespace)}/workflows?query=${encodeURIComponent(query)}`, { waitUntil: 'domcontentloaded' });
      let body = '';
      try {
        await eventually(async () => {
          body = await page.locator('body').innerText();
          return body.includes('order-7001');
        }, { timeoutMs: 30_000, what: 'the list to show order-7001' });
        assert.ok(!body.includes('order-7002'), 'the waiting run is not STALLED');
      } finally {
        await page.screenshot({ path: join(ARTIFACTS, 'list-stalled.png') });
        writeFileSync(join(ARTIFACTS, 'list-stalled.txt'), body);
      }
    } finally {
      await page.close();
    }
  });
});
