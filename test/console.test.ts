/**
 * The operator console is built by `npm run build` and served by the API:
 * its page and assets (public, strict CSP), a clear answer when it was not
 * built, no file outside it, and in real Chromium the login by the link
 * `npm start` prints and the refusal of a bad key.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApi } from '../client/http';
import { projectRoot } from '../db/paths';
import { rpcs } from './fixtures/rpcs';
import { shows, snapshot, startConsoleStack, type ConsoleStack } from './support/console';

describe('operator console: built, served at / and logged in with a key', function () {
  this.timeout(300_000);
  let stack: ConsoleStack;

  before(async () => {
    stack = await startConsoleStack('console', rpcs);
  });
  after(async () => {
    await stack?.stop();
  });

  it('serves the page and its hashed assets without a key, with a strict Content-Security-Policy', async () => {
    const page = await fetch(`${stack.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'.*script-src 'self'/);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    const html = await page.text();
    assert.match(html, /<div id="root"><\/div>/);
    const scripts = [...html.matchAll(/src="(\/assets\/[^"]+\.js)"/g)].map((m) => m[1]!);
    assert.ok(scripts.length >= 1, `the page loads its script from /assets: ${html}`);
    const built = readdirSync(join(projectRoot(), 'dist', 'console', 'assets'));
    for (const s of scripts) {
      assert.ok(built.includes(s.slice('/assets/'.length)), `${s} is a built asset`);
      const res = await fetch(`${stack.url}${s}`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /javascript/);
      assert.match(res.headers.get('cache-control') ?? '', /immutable/);
    }
    // The API around it is unchanged: still a key for the data.
    assert.equal((await fetch(`${stack.url}/runs`)).status, 401);
  });

  it('serves nothing but the built files: a missing asset is 404 in the API error shape, a path out of the folder is refused', async () => {
    const missing = await fetch(`${stack.url}/assets/nope-123.js`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'NOT_FOUND');
    for (const path of ['/assets/..%2F..%2Fpackage.json', '/assets/%2e%2e/%2e%2e/package.json', '/assets/../index.html']) {
      const res = await fetch(`${stack.url}${path}`);
      const body = await res.text();
      assert.ok(res.status >= 400 || !body.includes('"name": "pinflow"'), `${path}: ${res.status} ${body.slice(0, 200)}`);
      assert.ok(!body.includes('"dependencies"'), `${path} leaked a file outside the console: ${body.slice(0, 200)}`);
    }
  });

  it('says how to build the console when it was not built', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'pinflow-console-'));
    const api = createApi({ pinflow: stack.env.pinflow, consoleDir: empty });
    try {
      const res = await api.inject({ method: 'GET', url: '/' });
      assert.equal(res.statusCode, 404);
      const body = res.json<{ error: { code: string; message: string } }>();
      assert.equal(body.error.code, 'NOT_FOUND');
      assert.match(body.error.message, /the operator console is not built .*run npm run build/);
    } finally {
      await api.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('logs in with the link npm start prints (the key leaves the URL), and refuses a bad key with its code', async () => {
    const page = await stack.open('/runs');
    try {
      const text = await shows(page, 'login-link', ['console-test', 'admin', 'Runs', 'Log out']);
      assert.ok(!page.url().includes('key='), `the key is dropped from the URL: ${page.url()}`);
      assert.match(text, /Stalls/);
      // Log out, then a key that does not exist: the API's code and message are shown.
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.getByLabel('API key').fill('pf_nope_0000000000000000000000000000');
      await page.getByRole('button', { name: 'Log in' }).click();
      const refused = await shows(page, 'login-refused', ['UNAUTHENTICATED', 'The key was refused']);
      assert.match(refused, /unknown, revoked or malformed/);
    } finally {
      await snapshot(page, 'login-final');
      await page.close();
    }
  });
});
