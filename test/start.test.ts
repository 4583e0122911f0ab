import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '../app/dev-server';
import { projectRoot } from '../db/paths';
import { eventually, keyFetch } from './support/harness';

/**
 * The main job as users run it (`npm start` runs `node dist/scripts/start.js`
 * after building), on embedded defaults: its own Temporal dev server and PGlite.
 */
describe('npm start: the main job on embedded defaults', function () {
  this.timeout(180_000);
  let dir: string;
  let child: ChildProcess | undefined;
  const port = Number(process.env.PINFLOW_TEST_TEMPORAL_PORT ?? 17233) + 100;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pinflow-start-'));
  });
  after(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    // A failed test leaves no dev server behind on its port (a SIGKILLed npm start cannot stop it): the next run needs the port.
    const pidFile = join(dir, 'temporal.sqlite.pid');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8'));
      if (pid > 0 && processAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts Temporal, PGlite, worker and API, publishes the example, runs it, and Ctrl-C stops everything', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, PINFLOW_DATA_DIR: dir, PINFLOW_TEMPORAL_PORT: String(port), PINFLOW_TEMPORAL_UI_PORT: String(port + 1000), PINFLOW_API_PORT: '0' };
    delete env.TEMPORAL_ADDRESS;
    delete env.DATABASE_URL;
    child = spawn(process.execPath, [join(projectRoot(), 'dist', 'scripts', 'start.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exit = new Promise<{ code: number | null; signal: string | null }>((r) => child!.once('exit', (code, signal) => r({ code, signal })));

    await eventually(() => Promise.resolve(out.includes('ready; Ctrl-C stops everything')), { timeoutMs: 120_000, what: `the ready line; output so far:\n${out}` });
    assert.match(out, /published example order-fulfilment v1 \([0-9a-f]{12}\)/);
    assert.match(out, new RegExp(`Temporal UI: http://localhost:${port + 1000}`));
    assert.match(out, new RegExp(`Temporal:    127\\.0\\.0\\.1:${port}`));
    const apiUrl = /API:\s+(http:\/\/[^\s"]+)/.exec(out)?.[1];
    assert.ok(apiUrl, `API URL printed:\n${out}`);
    assert.ok(existsSync(join(dir, 'temporal.sqlite')), 'dev server persists to .pinflow/temporal.sqlite');
    assert.ok(existsSync(join(dir, 'pglite')), 'PGlite lives in .pinflow/pglite');
    const serverPid = Number(readFileSync(join(dir, 'temporal.sqlite.pid'), 'utf8'));
    // Auth is on: the first start created a local admin key, printed it once and keeps it in a 0600 file.
    const keyFile = join(dir, 'admin-key');
    const key = readFileSync(keyFile, 'utf8').trim();
    assert.match(out, new RegExp(`admin API key created \\(shown once; kept in ${keyFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, mode 0600\\): ${key}`));
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    const fetch = keyFetch(key);
    assert.equal((await globalThis.fetch(`${apiUrl}/runs`)).status, 401, 'no key, no runs');
    // The console: its link logs in with the admin key (in the fragment, never sent to the server); its page is served.
    const consoleUrl = /Console:\s+(http:\/\/[^\s"]+)/.exec(out)?.[1];
    assert.equal(consoleUrl, `${apiUrl}/#/login?key=${encodeURIComponent(key)}`);
    const consolePage = await globalThis.fetch(consoleUrl);
    assert.equal(consolePage.status, 200);
    assert.match(await consolePage.text(), /<title>pinflow console<\/title>/);
    // The demo runs: one at every state, for the console to show.
    for (const [id, status] of [
      ['demo-order-completed', 'COMPLETED'],
      ['demo-order-failed', 'FAILED'],
      ['demo-ticket-waiting', 'RUNNING'],
      ['demo-digest-running', 'RUNNING'],
      ['demo-refund-stalled', 'STALLED'],
    ] as const) {
      assert.match(out, new RegExp(`demo run ${id}: `));
      await eventually(async () => ((await (await fetch(`${apiUrl}/runs/${id}`)).json()) as { status?: string }).status === status, { timeoutMs: 60_000, what: `${id} to be ${status}` });
    }
    // RUNNING comes before the run reaches its wait: the open wait row follows when the run rests there.
    let waits: Array<{ status: string; event: string }> = [];
    await eventually(
      async () => {
        waits = ((await (await fetch(`${apiUrl}/runs/demo-ticket-waiting`)).json()) as { waits: typeof waits }).waits;
        return waits.some((w) => w.status === 'OPEN' && w.event === 'ticket.replied');
      },
      { timeoutMs: 60_000, what: 'demo-ticket-waiting to hold an open ticket.replied wait' },
    );
    const stalled = (await (await fetch(`${apiUrl}/runs/demo-refund-stalled`)).json()) as { stall: { reason: string; rpc: string } };
    assert.deepEqual([stalled.stall.reason, stalled.stall.rpc], ['rpc_missing', 'billing.refund-v1']);
    assert.ok(processAlive(serverPid));

    const input = JSON.parse(readFileSync(join(projectRoot(), 'examples', 'order-fulfilment', 'input.json'), 'utf8')) as unknown;
    const res = await fetch(`${apiUrl}/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ definition: 'order-fulfilment', input, runId: 'start-order-1' }),
    });
    assert.equal(res.status, 201);
    const run = await eventually(async () => {
      const r = (await (await fetch(`${apiUrl}/runs/start-order-1`)).json()) as { status: string; output: { total: number } };
      return r.status === 'COMPLETED' ? r : undefined;
    }, { timeoutMs: 60_000, what: 'start-order-1 to complete' });
    assert.equal(run.output.total, 138);
    assert.equal((await fetch(`${apiUrl}/health`)).status, 200);

    child.kill('SIGINT');
    assert.deepEqual(await exit, { code: 0, signal: null });
    assert.equal(processAlive(serverPid), false, 'the dev server is stopped with the main job');
    assert.equal(existsSync(join(dir, 'temporal.sqlite.pid')), false);
  });
});
