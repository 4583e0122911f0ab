/**
 * Browser tests of the operator console: a real stack (Temporal dev server,
 * Postgres, an in-process worker, the HTTP API serving the built console on a
 * real port) and Debian's Chromium driven by playwright-core (no browser is
 * ever downloaded). Screenshots of every view go to test-artifacts/console/.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { projectRoot } from '../../db/paths';
import { createApi } from '../../client/http';
import type { RpcDefinition } from '../../rpc/registry';
import type { PinflowOptions } from '../../client/pinflow';
import { createEnv, createKey, eventually, type Env } from './harness';

export const CHROMIUM = process.env.PINFLOW_TEST_CHROMIUM ?? '/usr/bin/chromium';
export const CONSOLE_ARTIFACTS = join(projectRoot(), 'test-artifacts', 'console');
const CONSOLE_DIR = join(projectRoot(), 'dist', 'console');

export interface ConsoleStack {
  env: Env;
  api: FastifyInstance;
  /** The API's base address, which serves the console at `/`. */
  url: string;
  /** An admin key for every tenant. */
  key: string;
  browser: Browser;
  /** A new page logged in with `key` (default the admin key) at `#<hashPath>`. */
  open(hashPath: string, opts?: { key?: string }): Promise<Page>;
  stop(): Promise<void>;
}

/** Chromium as the machine can run it: no sandbox (root), no background traffic to a closed network. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set PINFLOW_TEST_CHROMIUM)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export async function startConsoleStack(label: string, rpcs: RpcDefinition[], pinflowOptions: Pick<PinflowOptions, 'correlationRules' | 'events' | 'searchableMetadata'> = {}): Promise<ConsoleStack> {
  if (!existsSync(join(CONSOLE_DIR, 'index.html'))) throw new Error(`the console is not built (${CONSOLE_DIR}): npm run build`);
  mkdirSync(CONSOLE_ARTIFACTS, { recursive: true });
  const env = await createEnv(label, rpcs, pinflowOptions);
  await env.startWorker(rpcs);
  const api = createApi({ pinflow: env.pinflow, consoleDir: CONSOLE_DIR, rateLimit: { max: 1_000_000, timeWindowMs: 60_000 } });
  const url = await api.listen({ host: '127.0.0.1', port: 0 });
  const key = await createKey(env, { name: 'console-test' });
  const browser = await launchChromium();
  return {
    env,
    api,
    url,
    key,
    browser,
    async open(hashPath, opts = {}) {
      const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
      // The link `npm start` prints: it stores the key and drops it from the URL.
      await page.goto(`${url}/#/login?key=${encodeURIComponent(opts.key ?? key)}`);
      await page.waitForFunction('!window.location.hash.includes("key=")', undefined, { timeout: 30_000 });
      await page.goto(`${url}/#${hashPath.replace(/^#/, '')}`);
      return page;
    },
    async stop() {
      await browser.close().catch(() => undefined);
      await api.close();
      await env.stop();
    },
  };
}

/** The page's visible text. */
export async function pageText(page: Page): Promise<string> {
  return page.locator('body').innerText().catch(() => '');
}

/**
 * Wait until the page shows every one of `texts` (generous deadline: a busy
 * machine), then save a screenshot and the text as `<shot>.png/.txt` (also on
 * failure, which is when they are needed). Returns the text.
 */
export async function shows(page: Page, shot: string, texts: Array<string | RegExp>, timeoutMs = 45_000): Promise<string> {
  let body = '';
  try {
    await eventually(
      async () => {
        body = await pageText(page);
        return texts.every((t) => (typeof t === 'string' ? body.includes(t) : t.test(body)));
      },
      { timeoutMs, what: `the console to show ${texts.map(String).join(', ')}` },
    );
  } finally {
    await snapshot(page, shot, body);
  }
  return body;
}

export async function snapshot(page: Page, shot: string, text?: string): Promise<void> {
  mkdirSync(CONSOLE_ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(CONSOLE_ARTIFACTS, `${shot}.png`), fullPage: true }).catch(() => undefined);
  writeFileSync(join(CONSOLE_ARTIFACTS, `${shot}.txt`), text ?? (await pageText(page)));
}

/** The states the run-detail graph shows, by step id (`data-step` / `data-state` of each node). */
export async function graphStates(page: Page): Promise<Record<string, string>> {
  await page.waitForSelector('[data-testid="graph"][data-ready="true"] [data-step]', { timeout: 45_000 });
  return page.$$eval('[data-step]', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-step') ?? '', e.getAttribute('data-state') ?? ''])));
}
