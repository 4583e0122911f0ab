import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import { createApi } from '../client/http';
import type { Pinflow } from '../client/pinflow';
import { VersionGc, type VersionGcResult } from '../client/version-gc';
import { projectRoot } from '../db/paths';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import { SEARCH_ATTRIBUTES } from '../graph/terminology';
import { rpcs } from './fixtures/rpcs';
import { createEnv, createKey, eventually, spawnApiProcess, withKey, type Env } from './support/harness';

// Version garbage collection (issue 17) against the real Temporal dev server and Postgres.

/** A graph that adds `tag` to the input and returns the sum: each tag is its own version. */
const addGraph = (tag: number) => ({
  entry: 'prep',
  steps: [
    { id: 'prep', type: 'assign', set: { tag: String(tag) }, next: 'call' },
    { id: 'call', type: 'rpc', rpc: 'math.add', input: { a: 'input.a', b: 'vars.tag' }, saveAs: 'sum', next: 'done' },
    { id: 'done', type: 'return', output: { sum: 'vars.sum.sum' } },
  ],
});
/** A graph whose runs stay open for an hour (a sleep): open runs to keep a version. */
const holdGraph = (tag: number) => ({
  entry: 'prep',
  steps: [
    { id: 'prep', type: 'assign', set: { tag: String(tag) }, next: 'hold' },
    { id: 'hold', type: 'sleep', duration: '1h' },
  ],
});

type Kept = VersionGcResult['kept'][number];

describe('version garbage collection (tombstones, the rules, rerun and replay of a removed version)', function () {
  this.timeout(240_000);
  let env: Env;
  let pinflow: Pinflow;
  let api: ReturnType<typeof createApi>;
  let tag = 0;
  const openRuns: string[] = [];

  const call = (method: 'GET' | 'POST', url: string, body?: unknown, key?: string) =>
    api.inject({ method, url, ...(body !== undefined ? { payload: body as object } : {}), ...(key ? { headers: { authorization: `Bearer ${key}` } } : {}) });
  const gc = async (body: Record<string, unknown>): Promise<VersionGcResult> => {
    const res = await call('POST', '/versions/gc', { reason: 'test cleanup', ...body });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<VersionGcResult>();
  };
  /** Publishes n new versions of `definition` (each a new graph); the last is its latest. */
  const publish = async (definition: string, n: number, make: (t: number) => unknown = addGraph): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push((await pinflow.publish(definition, make(++tag))).version);
    return out;
  };
  const keptFor = (r: VersionGcResult, hash: string): Kept | undefined => r.kept.find((k) => k.hash === hash);
  const isCandidate = (r: VersionGcResult, hash: string) => r.candidates.some((c) => c.hash === hash);
  const rulesOf = (r: VersionGcResult, hash: string) => (keptFor(r, hash)?.reasons ?? []).map((k) => k.rule).sort();
  const row = async (hash: string) =>
    (await env.db.query<{ graph: unknown; removed_at: Date | null; removed_by: string | null; removed_reason: string | null }>({ text: 'SELECT graph, removed_at, removed_by, removed_reason FROM versions WHERE hash = $1', values: [hash] }))[0];
  const closed = (runId: string) =>
    eventually(async () => {
      const r = await pinflow.getRun(runId);
      return r.closedAt ? r : undefined;
    }, { timeoutMs: 60_000, what: `run ${runId} to close` });
  const startHold = async (version: string) => {
    const { runId } = await pinflow.start({ version, input: {} });
    openRuns.push(runId);
    return runId;
  };

  before(async () => {
    env = await createEnv('version_gc', rpcs);
    pinflow = env.pinflow;
    await env.startWorker(rpcs);
    api = withKey(createApi({ pinflow }), await createKey(env));
    await api.ready();
  });
  after(async () => {
    for (const id of openRuns) await env.client.workflow.getHandle(id).terminate('test over').catch(() => undefined);
    await api?.close();
    await env?.stop();
  });

  it('dry run: an older unused version is a candidate, the latest is kept, and nothing changes', async () => {
    const [old, latest] = await publish('gc-basic', 2);
    const r = await gc({ dryRun: true, olderThan: '0s' });
    assert.equal(r.dryRun, true);
    assert.equal(r.olderThan, '0s');
    assert.ok(isCandidate(r, old!), `candidate ${old}: ${JSON.stringify(r)}`);
    assert.match(r.candidates.find((c) => c.hash === old)!.eligible, /not the latest of any definition, no open run/);
    assert.deepEqual(r.candidates.find((c) => c.hash === old)!.definitions, [{ definition: 'gc-basic', seq: 1 }]);
    assert.deepEqual(keptFor(r, latest!)?.reasons, [{ rule: 'latest', message: 'the latest version of gc-basic', refs: ['gc-basic'] }]);
    assert.deepEqual(r.removed, []);
    // Nothing changed: the graph is still there and readable.
    assert.ok((await row(old!))!.graph);
    assert.equal((await row(old!))!.removed_at, null);
    assert.equal((await call('GET', `/versions/${old}`)).statusCode, 200);
  });

  it('removes it, keeps a tombstone, answers 410 for it, lists it as removed, refuses a start on it, and audits the removal', async () => {
    const [old, latest] = await publish('gc-remove', 2);
    const r = await gc({ olderThan: '0s', by: 'ops-alice', reason: 'spring cleaning' });
    assert.equal(r.dryRun, false);
    const removed = r.removed.find((v) => v.hash === old);
    assert.ok(removed, `removed ${old}: ${JSON.stringify(r.removed)}`);
    assert.ok(!r.removed.some((v) => v.hash === latest), 'the latest stays');
    const tomb = (await row(old!))!;
    assert.equal(tomb.graph, null, 'the graph went');
    assert.equal(tomb.removed_by, 'ops-alice');
    assert.equal(tomb.removed_reason, 'spring cleaning');
    assert.equal(tomb.removed_at?.toISOString(), removed.removedAt);

    const get = await call('GET', `/versions/${old}`);
    assert.equal(get.statusCode, 410, get.body);
    const err = get.json<{ error: { code: string; message: string; details: { hash: string; removedBy: string; reason: string; definitions: Array<{ definition: string; seq: number; publishedAt: string }> } } }>().error;
    assert.equal(err.code, ERROR_CODES.VERSION_REMOVED);
    assert.match(err.message, /was removed from the catalog by the version GC .* \(by ops-alice: spring cleaning\); runs of it keep their graph in their Temporal history/);
    assert.equal(err.details.hash, old);
    assert.deepEqual(err.details.definitions.map((d) => [d.definition, d.seq]), [['gc-remove', 1]]);

    // The console's per-step counts answer the same.
    assert.equal((await call('GET', `/versions/${old}/step-counts`)).statusCode, 410);

    const list = (await call('GET', '/definitions/gc-remove/versions')).json<{ versions: Array<{ hash: string; seq: number; removed: { by: string; reason: string } | null }> }>();
    assert.deepEqual(
      list.versions.map((v) => [v.seq, v.removed?.by ?? null]),
      [
        [2, null],
        [1, 'ops-alice'],
      ],
    );

    const start = await call('POST', '/runs', { version: old, input: { a: 1 } });
    assert.equal(start.statusCode, 410, start.body);
    assert.equal(start.json<{ error: { code: string } }>().error.code, ERROR_CODES.VERSION_REMOVED);
    // A batch migrating runs onto it is refused the same way, before anything is created.
    const batch = await call('POST', '/batches', { action: 'migrate', filter: { definition: 'gc-remove' }, params: { targetVersion: old }, by: 'ops', reason: 'move' });
    assert.equal(batch.statusCode, 410, batch.body);
    assert.equal(batch.json<{ error: { code: string } }>().error.code, ERROR_CODES.VERSION_REMOVED);
    // Starting by definition runs the latest, as ever.
    const ok = await call('POST', '/runs', { definition: 'gc-remove', input: { a: 1 } });
    assert.equal(ok.statusCode, 201, ok.body);

    const audit = (await call('GET', '/audit?action=version.gc')).json<{ entries: Array<{ outcome: string; reason: string; targetIds: string[]; targetKind: string }> }>();
    const entry = audit.entries.find((e) => e.reason === 'spring cleaning');
    assert.ok(entry, JSON.stringify(audit.entries));
    assert.equal(entry.outcome, 'accepted');
    assert.equal(entry.targetKind, 'version');
    assert.ok(entry.targetIds.includes(old!));
  });

  it('keeps a version younger than olderThan (the default is 30d)', async () => {
    const [young] = await publish('gc-young', 2);
    const r = await gc({ dryRun: true, olderThan: '1d' });
    assert.deepEqual(rulesOf(r, young!), ['tooYoung']);
    assert.match(keptFor(r, young!)!.reasons[0]!.message, /less than 1d ago/);
    const byDefault = await gc({ dryRun: true });
    assert.equal(byDefault.olderThan, '30d');
    assert.deepEqual(rulesOf(byDefault, young!), ['tooYoung']);
    // An old publish time makes it eligible under the default.
    await env.db.query({ text: `UPDATE definition_versions SET published_at = now() - interval '31 days' WHERE version = $1`, values: [young] });
    assert.ok(isCandidate(await gc({ dryRun: true }), young!));
  });

  it('keeps a version with an open run in the projection', async () => {
    const [held] = await publish('gc-open', 1, holdGraph);
    const runId = await startHold(held!);
    await publish('gc-open', 1, holdGraph);
    await eventually(async () => (await pinflow.getRun(runId)).status === 'RUNNING');
    const r = await gc({ dryRun: true, olderThan: '0s' });
    const open = keptFor(r, held!)?.reasons.find((k) => k.rule === 'openRuns');
    assert.ok(open, JSON.stringify(keptFor(r, held!)));
    assert.equal(open.projection, 1);
    // The real pass keeps it too.
    const real = await gc({ olderThan: '0s' });
    assert.ok(!real.removed.some((v) => v.hash === held));
    assert.ok((await row(held!))!.graph);
  });

  it('keeps a version whose open run only Temporal knows (the projection lags), in the dry run and in the real pass', async () => {
    const [held] = await publish('gc-lag', 1, holdGraph);
    const runId = await startHold(held!);
    await publish('gc-lag', 1, holdGraph);
    await eventually(async () => (await pinflow.getRun(runId)).status === 'RUNNING');
    const query = `${SEARCH_ATTRIBUTES.version} = "${held}" AND ExecutionStatus = "Running"`;
    await eventually(async () => (await env.client.workflow.count(query)).count > 0, { what: 'visibility to list the run' });
    // The projection says the run is over (as if its row were behind or wrong).
    await env.db.query({ text: `UPDATE runs SET status = 'COMPLETED', closed_at = now() WHERE id = $1`, values: [runId] });
    const r = await gc({ dryRun: true, olderThan: '0s' });
    assert.deepEqual(
      keptFor(r, held!)?.reasons.map((k) => [k.rule, k.projection, k.temporal]),
      [['openRuns', 0, 1]],
    );
    assert.match(keptFor(r, held!)!.reasons[0]!.message, /1 open run\(s\) in Temporal/);
    const real = await gc({ olderThan: '0s' });
    assert.ok(!real.removed.some((v) => v.hash === held));
    assert.ok((await row(held!))!.graph, 'still in the catalog');
  });

  it('keeps a version pinned by a child step of a version that stays, and removes both once the referrer may go (referrer first)', async () => {
    const [child] = await publish('gc-child', 2);
    const parentGraph = {
      entry: 'kid',
      steps: [
        { id: 'kid', type: 'child', definition: 'gc-child', version: child, input: { a: '1' }, saveAs: 'out', next: 'done' },
        { id: 'done', type: 'return', output: { v: 'vars.out' } },
      ],
    };
    const { version: parent } = await pinflow.publish('gc-parent', parentGraph);
    let r = await gc({ dryRun: true, olderThan: '0s' });
    assert.deepEqual(keptFor(r, child!)?.reasons, [{ rule: 'childReference', message: `pinned by a child step of version(s) ${parent}`, refs: [parent] }]);
    // The parent is no longer latest: it may go, so its child may go with it.
    await publish('gc-parent', 1);
    r = await gc({ dryRun: true, olderThan: '0s' });
    assert.ok(isCandidate(r, parent) && isCandidate(r, child!), JSON.stringify({ parent: keptFor(r, parent), child: keptFor(r, child!) }));
    const real = await gc({ olderThan: '0s' });
    const order = real.removed.map((v) => v.hash);
    assert.ok(order.includes(parent) && order.includes(child!));
    assert.ok(order.indexOf(parent) < order.indexOf(child!), 'the referrer goes first');
  });

  it('keeps the target of an unfinished batch, and lets it go once the batch is cancelled', async () => {
    const [target, , latest] = await publish('gc-batch', 3, holdGraph);
    const runId = await startHold(latest!);
    await eventually(async () => (await pinflow.getRun(runId)).status === 'RUNNING');
    const batch = await pinflow.batches.create({ action: 'migrate', filter: { definition: 'gc-batch' }, params: { targetVersion: target }, by: 'test', reason: 'move them' });
    assert.ok(!('dryRun' in batch));
    let r = await gc({ dryRun: true, olderThan: '0s' });
    assert.deepEqual(keptFor(r, target!)?.reasons.map((k) => [k.rule, k.refs]), [['migrationTarget', [batch.id]]]);
    await pinflow.batches.cancel(batch.id, { by: 'test', reason: 'changed my mind' });
    r = await gc({ dryRun: true, olderThan: '0s' });
    assert.ok(isCandidate(r, target!), JSON.stringify(keptFor(r, target!)));
  });

  it('reruns and replays a run whose version was removed: the graph comes from its Temporal history and the version is restored', async () => {
    const [v1] = await publish('gc-rerun', 1);
    const { runId: source } = await pinflow.start({ version: v1!, input: { a: 5 } });
    const expected = { sum: 5 + tag };
    assert.deepEqual(await pinflow.result(source), expected);
    await closed(source);
    await publish('gc-rerun', 1);
    const r1 = await gc({ olderThan: '0s' });
    assert.ok(r1.removed.some((v) => v.hash === v1), 'v1 removed');
    // The old run still says what it ran.
    const run = (await call('GET', `/runs/${source}`)).json<{ version: string; definition: string }>();
    assert.deepEqual([run.version, run.definition], [v1, 'gc-rerun']);

    const rerun = await call('POST', `/runs/${source}/rerun`, { fromStep: 'call', by: 'ops', reason: 'again' });
    assert.equal(rerun.statusCode, 201, rerun.body);
    const rr = rerun.json<{ runId: string; version: string; versionRestored?: boolean }>();
    assert.equal(rr.version, v1);
    assert.equal(rr.versionRestored, true);
    assert.deepEqual(await pinflow.result(rr.runId), expected);
    assert.equal((await call('GET', `/versions/${v1}`)).statusCode, 200, 'restored into the catalog');
    await closed(rr.runId);

    // Removed again once its runs are over; then replayed.
    const r2 = await gc({ olderThan: '0s' });
    assert.ok(r2.removed.some((v) => v.hash === v1), 'v1 removed again');
    const replay = await call('POST', `/runs/${source}/replay`, { by: 'ops', reason: 'from the start' });
    assert.equal(replay.statusCode, 201, replay.body);
    const rp = replay.json<{ runId: string; version: string; versionRestored?: boolean }>();
    assert.equal(rp.version, v1);
    assert.equal(rp.versionRestored, true);
    assert.deepEqual(await pinflow.result(rp.runId), expected);
    const detail = await closed(rp.runId);
    assert.equal(detail.status, 'COMPLETED');
  });

  it('publishing the same graph again brings a removed version back, under its old number, and clears the tombstone', async () => {
    const t = ++tag;
    const { version: v1 } = await pinflow.publish('gc-republish', addGraph(t));
    await publish('gc-republish', 1);
    assert.ok((await gc({ olderThan: '0s' })).removed.some((v) => v.hash === v1));
    const again = await pinflow.publish('gc-republish', addGraph(t));
    assert.deepEqual(again, { definition: 'gc-republish', version: v1, seq: 1, created: true });
    const tomb = (await row(v1))!;
    assert.ok(tomb.graph);
    assert.equal(tomb.removed_at, null);
    assert.equal((await call('GET', `/versions/${v1}`)).statusCode, 200);
    const defs = await pinflow.listDefinitions();
    assert.equal(defs.find((d) => d.name === 'gc-republish')?.latestVersion, v1);
    // Published again: idempotent as ever.
    assert.equal((await pinflow.publish('gc-republish', addGraph(t))).created, false);
  });

  it('a publish of the same graph racing a GC pass leaves the version in the catalog and latest, whichever goes first', async () => {
    for (let i = 0; i < 5; i++) {
      const t = ++tag;
      const { version: v1 } = await pinflow.publish(`gc-race-${i}`, addGraph(t));
      await publish(`gc-race-${i}`, 1);
      const [, again] = await Promise.all([gc({ olderThan: '0s' }), pinflow.publish(`gc-race-${i}`, addGraph(t))]);
      assert.equal(again.version, v1);
      const r = (await row(v1))!;
      assert.ok(r.graph, `round ${i}: the version is in the catalog`);
      assert.equal(r.removed_at, null);
      assert.equal((await pinflow.listDefinitions()).find((d) => d.name === `gc-race-${i}`)?.latestVersion, v1);
      assert.equal((await call('GET', `/versions/${v1}`)).statusCode, 200);
    }
  });

  it('the catalog refuses a tombstone for a latest version, and a tombstone as a latest version', async () => {
    const [latest] = await publish('gc-guard', 1);
    await assert.rejects(
      env.db.query({ text: `UPDATE versions SET graph = NULL, contracts = NULL, removed_at = now(), removed_by = 'x' WHERE hash = $1`, values: [latest] }),
      /is the latest version of a definition; it cannot be removed/,
    );
    const [gone] = await publish('gc-guard2', 2);
    assert.ok((await gc({ olderThan: '0s' })).removed.some((v) => v.hash === gone));
    await assert.rejects(env.db.query({ text: `UPDATE definitions SET latest_version = $1 WHERE name = 'gc-guard2'`, values: [gone] }), /was removed from the catalog; it cannot be the latest version/);
  });

  it('refuses when Temporal cannot be asked, and removes nothing', async () => {
    const [old] = await publish('gc-down', 2);
    // A namespace Temporal does not have: every visibility query fails.
    const client = new Client({ connection: env.client.connection, namespace: 'pinflow-gc-no-such-namespace' });
    const versionGc = new VersionGc({ db: env.db, client, defaultMinAge: '30d' });
    await assert.rejects(versionGc.run({ olderThan: '0s', reason: 'x' }), (err: unknown) => {
      assert.ok(err instanceof PinflowError);
      assert.equal(err.code, ERROR_CODES.TEMPORAL_UNAVAILABLE);
      assert.match(err.message, /version GC refused: Temporal could not be asked which runs are open on version/);
      return true;
    });
    assert.ok((await row(old!))!.graph, 'nothing removed');
  });

  it('is admin only: read, operate and publish keys are refused (and the refusal audited)', async () => {
    for (const scope of ['read', 'operate', 'publish'] as const) {
      const key = await createKey(env, { scopes: [scope], name: `gc-${scope}` });
      const res = await call('POST', '/versions/gc', { dryRun: true, reason: 'try' }, key);
      assert.equal(res.statusCode, 403, `${scope}: ${res.body}`);
      assert.equal(res.json<{ error: { code: string } }>().error.code, ERROR_CODES.FORBIDDEN);
    }
    const audit = (await call('GET', '/audit?action=version.gc&outcome=denied')).json<{ entries: unknown[] }>();
    assert.ok(audit.entries.length >= 3);
  });

  it('refuses bad input with a code naming the field: olderThan malformed, reason missing or empty, unknown fields, a non-boolean dryRun', async () => {
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ olderThan: 'soon', reason: 'x' }, 'body.olderThan', 'REQUEST_INVALID'],
      [{ olderThan: '30', reason: 'x' }, 'body.olderThan', 'REQUEST_INVALID'],
      [{ olderThan: '1w', reason: 'x' }, 'body.olderThan', 'REQUEST_INVALID'],
      [{ olderThan: 30, reason: 'x' }, 'body.olderThan', 'REQUEST_INVALID'],
      [{ dryRun: true }, 'body.reason', 'REQUEST_INVALID'],
      [{ dryRun: true, reason: '' }, 'body.reason', 'REQUEST_INVALID'],
      [{ dryRun: 'yes', reason: 'x' }, 'body.dryRun', 'REQUEST_INVALID'],
      [{ reason: 'x', force: true }, 'body', 'REQUEST_INVALID'],
    ];
    for (const [body, field, code] of cases) {
      const res = await call('POST', '/versions/gc', body);
      assert.equal(res.statusCode, 400, `${JSON.stringify(body)}: ${res.body}`);
      const e = res.json<{ error: { code: string; details: { issues: Array<{ field: string; allowed?: unknown }> } } }>().error;
      assert.equal(e.code, code, JSON.stringify(body));
      assert.ok(e.details.issues.some((i) => i.field === field), `${JSON.stringify(body)} names ${field}: ${JSON.stringify(e.details.issues)}`);
    }
    const bad = await call('POST', '/versions/gc', { olderThan: 'soon', reason: 'x' });
    assert.match(bad.body, /a whole number and a unit \(ms, s, m, h, d\)/);
    // The library door checks the same way.
    await assert.rejects(pinflow.gcVersions({ olderThan: '2 weeks', reason: 'x' }), (err: unknown) => err instanceof PinflowError && err.code === ERROR_CODES.REQUEST_INVALID && /olderThan/.test(err.message));
  });

  it('pinflow versions gc: --dry-run, a real pass, --json, and usage errors (against a real API process)', async () => {
    const [old] = await publish('gc-cli', 2);
    const proc = await spawnApiProcess(env, 'rpcs');
    try {
      const cli = (args: string[]) =>
        new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
          execFile(
            process.execPath,
            [join(projectRoot(), 'dist', 'cli', 'pinflow.js'), ...args],
            { env: { ...process.env, PINFLOW_API_URL: proc.url, PINFLOW_API_KEY: proc.key, USER: 'gc-test' }, encoding: 'utf8', timeout: 120_000 },
            (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
          );
        });
      const dry = await cli(['versions', 'gc', '--dry-run', '--older-than', '0s', '--reason', 'cli test']);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /^would remove \d+ version\(s\) published before/);
      assert.ok(dry.stdout.includes(old!), dry.stdout);
      assert.match(dry.stdout, /kept:[\s\S]*latest: the latest version of gc-cli/);
      assert.ok((await row(old!))!.graph, 'a dry run changes nothing');

      const real = await cli(['versions', 'gc', '--older-than', '0s', '--reason', 'cli test', '--by', 'ops-bob', '--json']);
      assert.equal(real.code, 0, real.stderr);
      const res = JSON.parse(real.stdout) as VersionGcResult;
      assert.equal(res.dryRun, false);
      assert.ok(res.removed.some((v) => v.hash === old));
      assert.equal((await row(old!))!.removed_by, 'ops-bob');

      const ls = await cli(['versions', 'ls', 'gc-cli']);
      assert.equal(ls.code, 0, ls.stderr);
      assert.match(ls.stdout, /removed /);

      const noReason = await cli(['versions', 'gc', '--dry-run']);
      assert.equal(noReason.code, 64, noReason.stderr);
      assert.match(noReason.stderr, /--reason is required/);
      const badAge = await cli(['versions', 'gc', '--older-than', 'soon', '--reason', 'x']);
      assert.equal(badAge.code, 64, badAge.stderr);
      assert.match(badAge.stderr, /--older-than "soon" is not an age; allowed: a whole number and a unit/);
      const readKey = await createKey(env, { scopes: ['read'], name: 'gc-cli-read' });
      const denied = await new Promise<{ code: number; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [join(projectRoot(), 'dist', 'cli', 'pinflow.js'), 'versions', 'gc', '--dry-run', '--reason', 'x'],
          { env: { ...process.env, PINFLOW_API_URL: proc.url, PINFLOW_API_KEY: readKey }, encoding: 'utf8', timeout: 120_000 },
          (err, _stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr }),
        );
      });
      assert.equal(denied.code, 2, denied.stderr);
      assert.match(denied.stderr, /FORBIDDEN/);
    } finally {
      proc.kill('SIGTERM');
    }
  });
});
