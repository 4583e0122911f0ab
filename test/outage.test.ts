/**
 * A real database outage under load: a private Postgres cluster (initdb +
 * pg_ctl, never the shared server) behind a real worker process and a real
 * API process. The cluster is stopped for 30 s while runs are in flight and
 * new runs keep arriving, then started again. Both processes must stay up
 * throughout, the API must keep answering /health (database down while it
 * is), starts during the outage are refused cleanly (nothing half-started),
 * every run completes in Temporal, and the projection converges.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { WorkflowNotFoundError } from '@temporalio/client';
import { PinflowError } from '../graph/errors';
import { rpcs } from './fixtures/rpcs';
import { createEnv, createKey, type Env, eventually, exitOf, keyFetch, spawnApiProcess, spawnApiProcessUnready, spawnWorkerProcess } from './support/harness';

/** Every request of this suite sends an admin key (auth is on). */
let fetch: typeof globalThis.fetch = globalThis.fetch;
import { startPrivatePg, type PrivatePg } from './support/private-pg';

type Child = ChildProcess & { output: string[] };

/** Default retry budgets: a projection that is down must not cost a step its attempts. */
const RPC_STEPS = ['a', 's1', 'b', 's2', 'c'];
const loadGraph = {
  entry: 'a',
  steps: [
    { id: 'a', type: 'rpc', rpc: 'math.add', input: { a: 'input.n', b: '1' }, next: 's1' },
    { id: 's1', type: 'rpc', rpc: 'test.slow', input: { ms: '1500' }, next: 'b' },
    { id: 'b', type: 'rpc', rpc: 'math.add', input: { a: 'steps.a.sum', b: '1' }, next: 's2' },
    { id: 's2', type: 'rpc', rpc: 'test.slow', input: { ms: '1500' }, next: 'c' },
    { id: 'c', type: 'rpc', rpc: 'math.add', input: { a: 'steps.b.sum', b: '1' }, next: 'done' },
    { id: 'done', type: 'return', output: { n: 'input.n', sum: 'steps.c.sum' } },
  ],
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Watches a child process: whether (and how) it exited. */
function watchExit(child: ChildProcess): { exited: boolean; how?: string } {
  const w: { exited: boolean; how?: string } = { exited: false };
  child.once('exit', (code, signal) => {
    w.exited = true;
    w.how = `code ${code} signal ${signal}`;
  });
  return w;
}

interface HealthSample {
  at: number;
  status?: number;
  databaseOk?: boolean;
  error?: string;
}

/** Polls /health every 500 ms until stopped (each call bounded at 10 s), recording every answer or failure. */
function pollHealth(url: string): { samples: HealthSample[]; stop: () => Promise<void> } {
  const samples: HealthSample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const at = Date.now();
      try {
        const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(10_000) });
        const body = (await res.json()) as { database?: { ok?: boolean } };
        samples.push({ at, status: res.status, databaseOk: body.database?.ok });
      } catch (err) {
        samples.push({ at, error: (err as Error).message });
      }
      await sleep(500);
    }
  })();
  return {
    samples,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

async function post(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function notInTemporal(env: Env, runId: string): Promise<boolean> {
  try {
    await env.client.workflow.getHandle(runId).describe();
    return false;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return true;
    throw err;
  }
}

describe('database outage: the worker and the API survive a stopped Postgres', function () {
  this.timeout(15 * 60_000);
  let pg: PrivatePg;
  let env: Env;
  const children: Child[] = [];
  /** Killed in `after` if still running; returns its exit watch. */
  const own = (c: Child) => {
    children.push(c);
    return watchExit(c);
  };

  before(async function () {
    this.timeout(5 * 60_000);
    pg = await startPrivatePg('outage');
    const url = await pg.createDatabase('pinflow_outage');
    env = await createEnv('outage', rpcs, {}, { databaseUrl: url });
    await env.pinflow.publish('outage-load', loadGraph);
  });

  after(async function () {
    this.timeout(5 * 60_000);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map((c) => exitOf(c)));
    // The env's own pool may still be reconnecting: give its close a bound.
    await env?.stop().catch(() => undefined);
    await pg?.destroy();
  });

  it('keeps both processes up through a 30 s stop under load; starts during it are refused with 503 DATABASE_UNAVAILABLE; every run completes and the projection converges', async () => {
    const worker = spawnWorkerProcess(env, 'rpcs');
    const workerExit = own(worker);
    const api = await spawnApiProcess(env, 'rpcs');
    fetch = keyFetch(api.key);
    const apiExit = own(api);
    await eventually(() => Promise.resolve(worker.output.join('').includes('worker polling task queue')), { timeoutMs: 120_000, what: `the worker to poll (output: ${worker.output.join('')})` });
    const health = pollHealth(api.url);

    const started: string[] = [];
    let n = 0;
    /** One start, alternating between the library and the HTTP API. */
    const startOne = async (): Promise<{ ok: true; runId: string } | { ok: false; code: string; status?: number; runId: string }> => {
      n++;
      const runId = `outage-${String(n).padStart(3, '0')}`;
      if (n % 2 === 0) {
        const res = await post(`${api.url}/runs`, { definition: 'outage-load', runId, input: { n } });
        if (res.status === 201) return { ok: true, runId };
        return { ok: false, code: String((res.body.error as { code?: string })?.code), status: res.status, runId };
      }
      try {
        await env.pinflow.start({ definition: 'outage-load', runId, input: { n } });
        return { ok: true, runId };
      } catch (err) {
        return { ok: false, code: err instanceof PinflowError ? err.code : `not a PinflowError: ${String(err)}`, runId };
      }
    };

    // 1. Load before the outage: 20 runs, one every 300 ms; the last ones are mid-flight when Postgres stops.
    for (let i = 0; i < 20; i++) {
      const r = await startOne();
      assert.ok(r.ok, `start ${r.runId} before the outage failed: ${JSON.stringify(r)}`);
      started.push(r.runId);
      await sleep(300);
    }
    const inFlight = (await env.client.workflow.count(`WorkflowId STARTS_WITH "outage-" AND ExecutionStatus = "Running"`)).count;

    // 2. The outage: 30 s with the cluster stopped (fast shutdown: backends are terminated under their clients).
    const stoppedAt = Date.now();
    await pg.stop('fast');
    const refused: Array<{ runId: string; code: string; status?: number }> = [];
    let listDuringOutage: { status: number; body: Record<string, unknown> } | undefined;
    while (Date.now() - stoppedAt < 30_000) {
      const r = await startOne();
      assert.equal(r.ok, false, `start ${r.runId} succeeded while Postgres was stopped`);
      if (!r.ok) refused.push(r);
      if (!listDuringOutage) {
        const res = await fetch(`${api.url}/runs`, { signal: AbortSignal.timeout(30_000) });
        listDuringOutage = { status: res.status, body: (await res.json()) as Record<string, unknown> };
      }
      await sleep(1_000);
    }
    assert.equal(workerExit.exited, false, `the worker exited during the outage (${workerExit.how}): ${worker.output.join('').slice(-3000)}`);
    assert.equal(apiExit.exited, false, `the API exited during the outage (${apiExit.how}): ${api.output.join('').slice(-3000)}`);
    await pg.start();
    const restartedAt = Date.now();
    const outageSeconds = (restartedAt - stoppedAt) / 1000;

    // Starts during the outage were refused, cleanly: a stable code, 503 over HTTP, and nothing started in Temporal.
    assert.ok(refused.length >= 10, `only ${refused.length} starts were tried during the outage`);
    for (const r of refused) {
      assert.equal(r.code, 'DATABASE_UNAVAILABLE', `start ${r.runId} during the outage: ${JSON.stringify(r)}`);
      if (r.status !== undefined) assert.equal(r.status, 503, r.runId);
      assert.ok(await notInTemporal(env, r.runId), `refused start ${r.runId} exists in Temporal`);
    }
    assert.ok(refused.some((r) => r.status === 503) && refused.some((r) => r.status === undefined), 'both doors were tried during the outage');
    assert.equal(listDuringOutage?.status, 503, JSON.stringify(listDuringOutage));
    assert.equal((listDuringOutage?.body.error as { code?: string })?.code, 'DATABASE_UNAVAILABLE');

    // 3. Load after the restart: 20 more runs as soon as Postgres answers (retrying a start the restart still refuses).
    for (let i = 0; i < 20; i++) {
      const r = await eventually(
        async () => {
          const x = await startOne();
          if (x.ok) return x;
          if (x.code !== 'DATABASE_UNAVAILABLE') throw new Error(`start ${x.runId} after the restart: ${JSON.stringify(x)}`);
          return undefined;
        },
        { timeoutMs: 120_000, what: 'a start after the restart' },
      );
      started.push(r.runId);
    }

    // 4. Every run completes in Temporal, with its output.
    for (const runId of started) {
      const out = (await env.pinflow.result(runId)) as { n: number; sum: number };
      assert.equal(out.sum, out.n + 3, runId);
    }
    const completedInTemporalAt = Date.now();

    // 5. The projection converges: every run COMPLETED in the run list (through the API process), each with its step rows.
    const listed = await eventually(
      async () => {
        const res = await fetch(`${api.url}/runs?definition=outage-load&status=COMPLETED&limit=500`, { signal: AbortSignal.timeout(30_000) });
        if (res.status !== 200) return undefined;
        const page = (await res.json()) as { runs: Array<{ id: string }> };
        return page.runs.length === started.length ? page.runs : undefined;
      },
      { timeoutMs: 300_000, what: `all ${started.length} runs COMPLETED in the run list` },
    );
    assert.deepEqual(listed.map((r) => r.id).sort(), [...started].sort());
    let stepRows = 0;
    let attemptRows = 0;
    for (const runId of started) {
      const detail = await eventually(
        async () => {
          const res = await fetch(`${api.url}/runs/${runId}`, { signal: AbortSignal.timeout(30_000) });
          const d = (await res.json()) as { status: string; steps: Array<{ stepInstance: string; status: string; attempt: number }> };
          const done = [...RPC_STEPS, 'done'].every((id) => d.steps.some((s) => s.stepInstance === id && s.status === 'COMPLETED'));
          const open = d.steps.some((s) => s.status === 'RUNNING');
          return done && !open ? d : undefined;
        },
        { timeoutMs: 120_000, what: `the step rows of ${runId}` },
      );
      assert.equal(detail.status, 'COMPLETED', runId);
      stepRows += [...RPC_STEPS, 'done'].length;
      attemptRows += detail.steps.length;
    }
    const convergedAt = Date.now();
    await health.stop();

    // 6. Both processes stayed up; /health answered throughout, reporting the database down while it was.
    assert.equal(workerExit.exited, false, `the worker exited (${workerExit.how})`);
    assert.equal(apiExit.exited, false, `the API exited (${apiExit.how})`);
    const all = `${worker.output.join('')}\n${api.output.join('')}`;
    assert.doesNotMatch(all, /Unhandled 'error' event/);
    const failures = health.samples.filter((s) => s.error !== undefined);
    assert.deepEqual(failures, [], '/health did not answer every poll');
    const during = health.samples.filter((s) => s.at > stoppedAt + 1_000 && s.at < restartedAt - 1_000);
    assert.ok(during.length >= 10, `only ${during.length} /health answers during the outage`);
    assert.ok(
      during.every((s) => s.status === 503 && s.databaseOk === false),
      `/health during the outage: ${JSON.stringify(during.filter((s) => !(s.status === 503 && s.databaseOk === false)))}`,
    );
    const last = health.samples[health.samples.length - 1]!;
    assert.deepEqual([last.status, last.databaseOk], [200, true], 'healthy again at the end');

    console.log(
      `      outage: ${started.length} runs (${inFlight} in flight when Postgres stopped), ${stepRows} steps (${attemptRows} attempt rows), ` +
        `Postgres stopped ${outageSeconds.toFixed(1)} s, ${refused.length} starts refused during it (DATABASE_UNAVAILABLE), ` +
        `${health.samples.length} /health answers (${during.length} reporting the database down), process exits 0; ` +
        `all runs completed in Temporal ${((completedInTemporalAt - restartedAt) / 1000).toFixed(1)} s after the restart, ` +
        `projection converged ${((convergedAt - restartedAt) / 1000).toFixed(1)} s after it`,
    );
  });

  it('a worker and an API started while Postgres is down wait, logging each attempt, and go on once it is up; a wrong database fails fast', async () => {
    // The first test's processes leave gracefully.
    for (const c of children.splice(0)) {
      c.kill('SIGTERM');
      assert.deepEqual(await exitOf(c), { code: 0, signal: null }, `graceful stop: ${c.output.join('').slice(-2000)}`);
    }

    // Errors no wait fixes fail at once, with a clear message: a database that does not exist.
    const wrong = new URL(env.databaseUrl);
    wrong.pathname = '/pinflow_no_such_database';
    const missing = spawnWorkerProcess(env, 'rpcs', { DATABASE_URL: wrong.toString() });
    own(missing);
    assert.deepEqual(await exitOf(missing), { code: 1, signal: null });
    assert.match(missing.output.join(''), /CONFIG_INVALID: DATABASE_URL: Postgres refused the connection \(SQLSTATE 3D000: database \\?"pinflow_no_such_database\\?" does not exist\)/, 'the JSON line carries the message');
    assert.doesNotMatch(missing.output.join(''), /attempt \d+ failed/);

    await pg.stop('immediate');
    const downAt = Date.now();
    // A bounded wait gives up (PINFLOW_DB_STARTUP_TIMEOUT_MS) after logging its attempts.
    const bounded = spawnWorkerProcess(env, 'rpcs', { PINFLOW_DB_STARTUP_TIMEOUT_MS: '3000' });
    own(bounded);
    const worker = spawnWorkerProcess(env, 'rpcs');
    const workerExit = own(worker);
    const api = await spawnApiProcessUnready(env, 'rpcs');
    const apiExit = own(api);

    assert.deepEqual(await exitOf(bounded), { code: 1, signal: null });
    assert.match(bounded.output.join(''), /attempt 2 failed \(connect ECONNREFUSED/);
    assert.match(bounded.output.join(''), /giving up after \d+\.\d s \(PINFLOW_DB_STARTUP_TIMEOUT_MS=3000\)/);

    // The unbounded ones wait, logging attempt number, error and next delay.
    const attempts = /projection database \(migrations\): attempt (\d+) failed \(connect ECONNREFUSED[^)]*\); the database is unavailable, next attempt in (\d+) ms/g;
    const count = (c: Child) => [...c.output.join('').matchAll(attempts)].length;
    await eventually(() => Promise.resolve(count(worker) >= 4 && count(api) >= 4), {
      timeoutMs: 120_000,
      what: `4 logged attempts each (worker: ${worker.output.join('')}; api: ${api.output.join('')})`,
    });
    const delays = [...worker.output.join('').matchAll(attempts)].map((m) => Number(m[2]));
    assert.deepEqual(delays.slice(0, 4), [500, 1000, 2000, 4000], 'capped exponential backoff');
    assert.equal(workerExit.exited, false, `the worker exited while waiting: ${worker.output.join('')}`);
    assert.equal(apiExit.exited, false, `the API exited while waiting: ${api.output.join('')}`);
    assert.doesNotMatch(worker.output.join(''), /worker polling/);
    const waitedSeconds = (Date.now() - downAt) / 1000;

    await pg.start();
    fetch = keyFetch(await createKey(env));
    await eventually(() => Promise.resolve(/the database answered after \d+ attempts/.test(worker.output.join('')) && worker.output.join('').includes('worker polling task queue')), {
      timeoutMs: 120_000,
      what: `the worker to go on (output: ${worker.output.join('')})`,
    });
    const apiUrl = api.url;
    await eventually(
      async () => {
        const res = await fetch(`${apiUrl}/health`);
        return res.status === 200;
      },
      { timeoutMs: 120_000, what: `the API to answer /health 200 (output: ${api.output.join('').slice(-3000)})` },
    );
    const res = await post(`${apiUrl}/runs`, { definition: 'outage-load', runId: 'outage-after-wait', input: { n: 1000 } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual(await env.pinflow.result('outage-after-wait'), { n: 1000, sum: 1003 });
    await eventually(
      async () => {
        const r = await fetch(`${apiUrl}/runs/outage-after-wait`);
        return r.status === 200 && ((await r.json()) as { status: string }).status === 'COMPLETED';
      },
      { timeoutMs: 120_000, what: 'the run COMPLETED in the projection' },
    );
    assert.equal(workerExit.exited, false);
    assert.equal(apiExit.exited, false);
    console.log(`      start-up wait: worker and API waited ${waitedSeconds.toFixed(1)} s with Postgres down (${count(worker)} and ${count(api)} logged attempts), then went on`);
  });
});
