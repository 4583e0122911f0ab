import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { Pinflow } from '../client/pinflow';
import { projectRoot } from '../db/paths';
import { contractAdd, rpcs } from './fixtures/rpcs';
import { createEnv, createKey, eventually, freePort, spawnApiProcess, type Env } from './support/harness';

// The operator CLI (cli/pinflow.ts) as a child process against a real API process, real Temporal and Postgres.

const ADD_GRAPH = {
  entry: 'call',
  steps: [
    { id: 'call', type: 'rpc', rpc: 'contract.add', input: { a: 'input.a', b: 'input.b' }, next: 'done' },
    { id: 'done', type: 'return', output: 'steps.call.sum' },
  ],
};
const WAIT_GRAPH = {
  entry: 'approval',
  steps: [
    { id: 'approval', type: 'wait', event: 'cli.approved', correlationKey: 'input.order', saveAs: 'approval', next: 'done' },
    { id: 'done', type: 'return', output: 'vars.approval.payload.by' },
  ],
};

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

describe('the operator CLI (pinflow … against a real API process)', function () {
  this.timeout(240_000);
  let env: Env;
  let api: Awaited<ReturnType<typeof spawnApiProcess>>;
  const dir = mkdtempSync(join(tmpdir(), 'pinflow-cli-'));
  const file = (name: string, value: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
    return path;
  };

  /** Runs the CLI; never rejects: the exit code is part of what is asserted. */
  const cli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Ran> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [join(projectRoot(), 'dist', 'cli', 'pinflow.js'), ...args],
        { env: { ...process.env, PINFLOW_API_URL: api.url, PINFLOW_API_KEY: api.key, USER: 'cli-test', ...extraEnv }, encoding: 'utf8', timeout: 120_000 },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
      );
    });
  const ok = async (...args: string[]) => {
    const r = await cli(args);
    assert.equal(r.code, 0, `pinflow ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const json = async <T>(...args: string[]) => JSON.parse(await ok(...args, '--json')) as T;

  const status = async (runId: string) => (await env.pinflow.getRun(runId)).status;
  const stalled = (runId: string) => eventually(async () => (await status(runId)) === 'STALLED', { timeoutMs: 90_000, what: `${runId} to stall` });
  const startAdd = async (tenant: string, n: number, metadata: Record<string, string> = {}) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await env.pinflow.start({ definition: 'cli-add', tenant, input: { a: 2, b: i }, metadata })).runId);
    for (const id of ids) await stalled(id);
    return ids;
  };

  before(async () => {
    env = await createEnv('cli', [...rpcs, contractAdd]);
    // Published with contract.add; the worker runs without it, so every run of cli-add stalls (rpc_missing).
    await new Pinflow({ client: env.client, store: env.store, rpcs: [...rpcs, contractAdd] }).publish('cli-add', ADD_GRAPH);
    await env.pinflow.publish('cli-wait', WAIT_GRAPH);
    await env.startWorker(rpcs);
    api = await spawnApiProcess(env, 'rpcs');
  });
  after(async () => {
    api?.kill('SIGTERM');
    await env?.stop();
  });

  it('has a --help at every level (exit 0) that documents the exit codes and the environment', async () => {
    const top = await ok('--help');
    assert.match(top, /^Usage: pinflow \[options\] \[command\]/);
    for (const c of ['runs', 'stalls', 'events', 'waits', 'definitions', 'versions', 'publish', 'batch', 'keys', 'check-deploy']) assert.match(top, new RegExp(`\\n  ${c}\\b`), c);
    assert.match(top, /Exit codes:\n {2}0 {3}success\n {2}1 {3}/);
    assert.match(top, /64 {2}usage error/);
    assert.match(top, /PINFLOW_API_KEY/);
    assert.match(await ok('runs', '--help'), /Commands:\n {2}ls \[options\][\s\S]*show \[options\] <runId>[\s\S]*cancel[\s\S]*migrate/);
    const ls = await ok('runs', 'ls', '--help');
    for (const flag of ['--status', '--definition', '--version', '--tenant', '--meta', '--since', '--until', '--search', '--attention', '--stall-rpc', '--stall-reason', '--step ', '--step-state', '--limit', '--all', '--json']) assert.ok(ls.includes(flag), flag);
    assert.match(await ok('stalls', 'resolve', '--help'), /--dry-run/);
    assert.match(await ok('events', 'dead-letters', '--help'), /replay/);
    assert.match(await ok('help', 'waits'), /Usage: pinflow waits/);
  });

  it('refuses a usage error with exit 64, the usage line and what was wrong', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['runs', 'ls', '--bogus'], /^usage: pinflow runs ls \[options\]\nerror: unknown option '--bogus'/],
      [['runs', 'show'], /^usage: pinflow runs show \[options\] <runId>\nerror: missing required argument 'runId'/],
      [['nope'], /error: unknown command 'nope'/],
      [['runs', 'ls', '--status', 'SLEEPING'], /^usage: pinflow runs ls \[options\]\nerror: --status "SLEEPING" is not allowed; allowed: RUNNING, STALLED, PAUSED/],
      [['runs', 'ls', '--since', 'yesterday'], /error: --since "yesterday" is not a time; allowed: an ISO 8601 date-time/],
      [['runs', 'ls', '--step', 'call'], /error: --step and --step-state go together/],
      [['runs', 'ls', '--meta', 'team'], /error: --meta "team" is not <key>=<value>/],
      [['runs', 'ls', '--limit', '0'], /error: --limit "0" is not allowed; allowed: an integer from 1 to 500/],
      [['stalls', 'resolve', 'r1'], /error: required option '--action <action>' not specified/],
      [['stalls', 'resolve', '--action', 'retry'], /error: say which runs: a <runId>, or --rpc <rpc>/],
      [['stalls', 'resolve', 'r1', '--action', 'explode'], /error: --action "explode" is not allowed; allowed: retry, skip, cancel/],
      [['stalls', 'resolve', 'r1', '--action', 'retry', '--output-file', 'x.json'], /error: --output-file is the skipped step's output: it goes with --action skip, not retry/],
      [['publish', join(dir, 'missing.json'), '--definition', 'x'], /error: <graph\.json> .*missing\.json: cannot read it \(ENOENT\)/],
      [['versions', 'diff', 'abc', 'cli-add@1'], /error: <a> "abc" is not a version; allowed: a version hash \(64 lowercase hex digits\) or <definition>@<seq>/],
      [['runs'], /Usage: pinflow runs/],
    ];
    for (const [args, stderr] of cases) {
      const r = await cli(args);
      assert.equal(r.code, 64, `pinflow ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, stderr, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    }
  });

  it('exits 2 with CODE: message when the API cannot be reached or refuses the key; --key-file reads the key', async () => {
    const unreachable = await cli(['runs', 'ls'], { PINFLOW_API_URL: `http://127.0.0.1:${await freePort()}` });
    assert.equal(unreachable.code, 2);
    assert.match(unreachable.stderr, /^pinflow: API_UNREACHABLE: could not reach the pinflow API at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    const badKey = await cli(['definitions', 'ls'], { PINFLOW_API_KEY: `pf_${'0'.repeat(16)}_${'x'.repeat(43)}` });
    assert.equal(badKey.code, 2);
    assert.match(badKey.stderr, /^pinflow: UNAUTHENTICATED: /);
    const noKey = await cli(['definitions', 'ls'], { PINFLOW_API_KEY: '' });
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /^pinflow: UNAUTHENTICATED: /);
    // A read-only key: refused a write with FORBIDDEN; through --key-file (the environment has none).
    const readKey = file('read.key', `${await createKey(env, { scopes: ['read'] })}\n`);
    const listed = await cli(['--key-file', readKey, 'definitions', 'ls'], { PINFLOW_API_KEY: '' });
    assert.equal(listed.code, 0, listed.stderr);
    const forbidden = await cli(['runs', 'cancel', 'whatever', '--key-file', readKey], { PINFLOW_API_KEY: '' });
    assert.equal(forbidden.code, 2);
    assert.match(forbidden.stderr, /^pinflow: FORBIDDEN: /);
    const unknownRun = await cli(['runs', 'show', 'no-such-run']);
    assert.equal(unknownRun.code, 2);
    assert.match(unknownRun.stderr, /^pinflow: RUN_NOT_FOUND: /);
  });

  it('publishes a graph (idempotent), lists definitions and versions, and refuses an invalid graph with exit 2 and its code', async () => {
    const graph = file('sum.json', { entry: 'add', steps: [{ id: 'add', type: 'rpc', rpc: 'math.add', input: { a: 'input.a', b: 'input.b' }, next: 'done' }, { id: 'done', type: 'return', output: 'steps.add.sum' }] });
    const first = await ok('publish', graph, '--definition', 'cli-sum');
    const hash = /^published: cli-sum version 1 ([0-9a-f]{64})$/m.exec(first)?.[1];
    assert.ok(hash, first);
    assert.equal(await ok('publish', graph, '--definition', 'cli-sum'), `already published: cli-sum version 1 ${hash}\n`);
    const invalid = await cli(['publish', file('bad.json', { entry: 'nowhere', steps: [{ id: 'a', type: 'return', output: '1', next: 'b' }] }), '--definition', 'cli-bad']);
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /^pinflow: GRAPH_INVALID: graph is invalid/);
    assert.equal(invalid.stdout, '');
    const defs = await ok('definitions', 'ls');
    assert.match(defs, /^DEFINITION\s+LATEST\s+VERSION\s+VERSIONS\s+UPDATED/);
    assert.match(defs, new RegExp(`\\ncli-sum\\s+1\\s+${hash.slice(0, 12)}\\s+1\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d \\S+`));
    assert.ok(!defs.includes('cli-bad'));
    const asJson = await json<{ definitions: Array<{ name: string }> }>('definitions', 'ls');
    assert.deepEqual(asJson.definitions.map((d) => d.name).sort(), ['cli-add', 'cli-sum', 'cli-wait']);
    assert.match(await ok('versions', 'ls', 'cli-sum'), new RegExp(`^SEQ\\s+VERSION\\s+PUBLISHED\\s+OPEN RUNS\\s+LATEST\\n1\\s+${hash}\\s.*\\s0\\s+latest$`, 'm'));
    const missing = await cli(['versions', 'ls', 'no-such-definition']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^pinflow: DEFINITION_NOT_FOUND: /);
  });

  it('runs ls filters (table and --json, --all across pages) and runs show a stalled run', async () => {
    const [a, b] = await startAdd('t-ls', 2, { team: 'blue' });
    const [c] = await startAdd('t-ls', 1, { team: 'red' });
    const table = await ok('runs', 'ls', '--tenant', 't-ls', '--status', 'STALLED');
    assert.match(table, /^RUN\s+STATUS\s+DEFINITION\s+VERSION\s+TENANT\s+STEP\s+STARTED\s+NOTE\n/);
    for (const id of [a, b, c]) assert.match(table, new RegExp(`^${id}\\s+STALLED\\s+cli-add\\s+[0-9a-f]{12}\\s+t-ls\\s+call\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d \\S+\\s+rpc_missing contract\\.add$`, 'm'));
    const blue = await json<{ runs: Array<{ id: string }>; nextCursor: string | null }>('runs', 'ls', '--tenant', 't-ls', '--meta', 'team=blue');
    assert.deepEqual(blue.runs.map((r) => r.id).sort(), [a, b].sort());
    assert.equal((await json<{ runs: unknown[] }>('runs', 'ls', '--tenant', 't-ls', '--status', 'COMPLETED')).runs.length, 0);
    assert.match(await ok('runs', 'ls', '--tenant', 't-ls', '--status', 'COMPLETED'), /^\(no runs match\)$/m);
    // One run a page: without --all the first page and a hint on stderr; with --all every page.
    const page = await cli(['runs', 'ls', '--tenant', 't-ls', '--limit', '1', '--json']);
    assert.equal((JSON.parse(page.stdout) as { runs: unknown[] }).runs.length, 1);
    const paged = await cli(['runs', 'ls', '--tenant', 't-ls', '--limit', '1']);
    assert.match(paged.stderr, /^more: --all, or --cursor \S+/);
    const all = await json<{ runs: Array<{ id: string }>; nextCursor: string | null }>('runs', 'ls', '--tenant', 't-ls', '--limit', '1', '--all');
    assert.deepEqual(all.runs.map((r) => r.id).sort(), [a, b, c].sort());
    assert.equal(all.nextCursor, null);
    // --version takes <definition>@<seq>.
    assert.equal((await json<{ runs: unknown[] }>('runs', 'ls', '--tenant', 't-ls', '--version', 'cli-add@1')).runs.length, 3);
    const noSeq = await cli(['runs', 'ls', '--version', 'cli-add@9']);
    assert.equal(noSeq.code, 2);
    assert.match(noSeq.stderr, /^pinflow: VERSION_NOT_FOUND: --version cli-add@9: definition cli-add has no version 9; it has 1\.\.1/);

    const shown = await ok('runs', 'show', a!);
    assert.match(shown, new RegExp(`^run: +${a}\\nstatus: +STALLED\\ndefinition: +cli-add @ [0-9a-f]{64}\\ntenant: +t-ls\\ncurrent step: +call`));
    assert.match(shown, /\nSTALLED since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+: rpc_missing on RPC contract\.add at step call \(stall call\/1\)\n {2}RPC "contract\.add" \(step "call"\) is not registered/);
    assert.match(shown, /\nsteps:\nINSTANCE\s+TYPE\s+STATUS\s+ATTEMPT\s+STARTED\s+FINISHED\s+ERROR\ncall\s+rpc\s+/);
    const detail = await json<{ id: string; steps: unknown[]; stall: { rpc: string } }>('runs', 'show', a!);
    assert.equal(detail.id, a);
    assert.equal(detail.stall.rpc, 'contract.add');
  });

  it('stalls resolve one run: --dry-run changes nothing, then skip with --output-file completes it', async () => {
    const [id] = await startAdd('t-one', 1);
    const dry = await cli(['stalls', 'resolve', id!, '--action', 'skip', '--output-file', file('out.json', { sum: 41 }), '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`^dry run: would skip run ${id} \\(STALLED: rpc_missing contract\\.add\\); nothing changed`));
    const after = await env.pinflow.getRun(id!);
    assert.equal(after.status, 'STALLED');
    assert.deepEqual(after.decisions, []);
    assert.match(await ok('stalls', 'resolve', id!, '--action', 'skip', '--output-file', file('out.json', { sum: 41 }), '--note', 'paid by hand'), new RegExp(`^run ${id}: skip decided \\(stall call/1\\)`));
    assert.equal(await env.pinflow.result(id!), 41);
    const decided = await env.pinflow.getRun(id!);
    assert.deepEqual(decided.decisions.map((d) => [d.action, d.by, d.reason]), [['skip', `cli:${userInfo().username}`, 'paid by hand']]);
    // The run is no longer stalled: the API refuses, exit 2 with its code.
    const again = await cli(['stalls', 'resolve', id!, '--action', 'retry']);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /^pinflow: RUN_CLOSED: /);
  });

  it('stalls resolve in bulk by RPC: --dry-run lists and changes nothing; failures exit 1 with per-run results on stderr; cancel applies', async () => {
    const ids = await startAdd('t-bulk', 3);
    const other = (await startAdd('t-other', 1))[0]!;
    const dry = await cli(['stalls', 'resolve', '--rpc', 'contract.add', '--reason', 'rpc_missing', '--tenant', 't-bulk', '--action', 'cancel', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^dry run: would cancel 3 run\(s\) stalled on contract\.add \(rpc_missing\); nothing changed\nRUN\s+STATUS/);
    for (const id of ids) assert.ok(dry.stdout.includes(id), id);
    const dryJson = JSON.parse((await cli(['stalls', 'resolve', '--rpc', 'contract.add', '--tenant', 't-bulk', '--action', 'retry', '--dry-run', '--json'])).stdout) as { dryRun: boolean; count: number };
    assert.deepEqual([dryJson.dryRun, dryJson.count], [true, 3]);
    for (const id of [...ids, other]) {
      const run = await env.pinflow.getRun(id);
      assert.equal(run.status, 'STALLED');
      assert.deepEqual(run.decisions, []);
    }
    // No stall for this reason: nothing to do.
    assert.match(await ok('stalls', 'resolve', '--rpc', 'contract.add', '--reason', 'input_incompatible', '--tenant', 't-bulk', '--action', 'retry'), /^retry on 0 run\(s\) stalled on contract\.add: applied 0, skipped 0, failed 0$/m);

    // A skip output that breaks the pinned contract fails for every run: exit 1, each run on stderr.
    const bad = await cli(['stalls', 'resolve', '--rpc', 'contract.add', '--tenant', 't-bulk', '--action', 'skip', '--output-file', file('bad-out.json', { total: 1 }), '--note', 'done by hand']);
    assert.equal(bad.code, 1, bad.stderr);
    for (const id of ids) assert.match(bad.stderr, new RegExp(`\\[\\d/3\\] ${id}: FAILED SKIP_OUTPUT_INVALID: `), bad.stderr);
    assert.match(bad.stdout, /^skip on 3 run\(s\) stalled on contract\.add: applied 0, skipped 0, failed 3$/m);

    const cancelled = await cli(['stalls', 'resolve', '--rpc', 'contract.add', '--tenant', 't-bulk', '--action', 'cancel', '--note', 'offboarded', '--json']);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    const out = JSON.parse(cancelled.stdout) as { results: Array<{ runId: string; ok: boolean }>; summary: { applied: number; failed: number } };
    assert.deepEqual(out.summary, { applied: 3, skipped: 0, failed: 0 });
    assert.deepEqual(out.results.map((r) => r.runId).sort(), [...ids].sort());
    assert.match(cancelled.stderr, /\[3\/3\] \S+: cancel ok/);
    for (const id of ids) await eventually(async () => (await status(id)) === 'CANCELLED', { timeoutMs: 60_000, what: `${id} cancelled` });
    assert.equal(await status(other), 'STALLED', 'a run of another tenant is left alone');
  });

  it('runs cancel; events send, ls and show; waits ls', async () => {
    const { runId: waiting } = await env.pinflow.start({ definition: 'cli-wait', tenant: 'default', input: { order: 'o-1' } });
    const { runId: doomed } = await env.pinflow.start({ definition: 'cli-wait', tenant: 'default', input: { order: 'o-2' } });
    const waits = await eventually(async () => {
      const out = await ok('waits', 'ls', '--event', 'cli.approved');
      return out.includes(waiting) && out.includes(doomed) ? out : undefined;
    }, { timeoutMs: 60_000, what: 'both runs waiting' });
    assert.match(waits, /^RUN\s+WAIT\s+STEP\s+TENANT\s+EVENT\s+KEY\s+STATUS\n/);
    assert.match(waits, new RegExp(`^${waiting}\\s+\\S+\\s+approval\\s+default\\s+cli\\.approved\\s+o-1\\s+OPEN$`, 'm'));
    assert.deepEqual((await json<{ waits: Array<{ runId: string }> }>('waits', 'ls', '--key', 'o-2')).waits.map((w) => w.runId), [doomed]);
    assert.deepEqual((await json<{ waits: Array<{ runId: string }> }>('waits', 'ls', '--run', waiting)).waits.map((w) => w.runId), [waiting]);

    assert.match(await ok('runs', 'cancel', doomed, '--reason', 'duplicate order'), new RegExp(`^run ${doomed}: cancellation requested`));
    await eventually(async () => (await status(doomed)) === 'CANCELLED', { timeoutMs: 60_000, what: 'the cancelled run closed' });
    assert.deepEqual((await env.pinflow.getRun(doomed)).decisions.map((d) => [d.action, d.reason]), [['cancel', 'duplicate order']]);

    const sent = await ok('events', 'send', '--name', 'cli.approved', '--key', 'o-1', '--payload-file', file('payload.json', { by: 'alice' }), '--event-id', 'ev-cli-1');
    assert.match(sent, new RegExp(`^event ev-cli-1: ROUTED; resumed ${waiting}$`, 'm'));
    assert.equal(await env.pinflow.result(waiting), 'alice');
    assert.match(await ok('events', 'send', '--name', 'cli.approved', '--key', 'o-1', '--payload-file', file('payload.json', { by: 'alice' }), '--event-id', 'ev-cli-1'), /^event ev-cli-1: ROUTED \(duplicate: sent before\)/);
    const listed = await ok('events', 'ls', '--name', 'cli.approved');
    assert.match(listed, /^EVENT\s+TENANT\s+NAME\s+KEY\s+STATUS\s+SOURCE\s+RECEIVED\s+ERROR\nev-cli-1\s+default\s+cli\.approved\s+o-1\s+ROUTED\s+api\s/);
    const shown = await ok('events', 'show', 'ev-cli-1');
    assert.match(shown, /^event ev-cli-1 \(default\): cli\.approved, key o-1 \(explicit\), ROUTED, from api/);
    assert.match(shown, new RegExp(`\\ndeliveries:\\nRUN\\s+WAIT[\\s\\S]*\\n${waiting}\\s`));
    const missing = await cli(['events', 'show', 'ev-nope']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^pinflow: EVENT_NOT_FOUND: /);
    const invalid = await cli(['events', 'send', '--name', 'cli.approved', '--payload-file', file('p2.json', {})]);
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /^pinflow: CORRELATION_KEY_MISSING: /);
  });

  describe('(needs the issue 15 API)', () => {
    it('runs ls --search, --since/--until, --stall-rpc/--stall-reason and --step/--step-state', async () => {
      const [id] = await startAdd('t-new', 1);
      const byId = await json<{ runs: Array<{ id: string }> }>('runs', 'ls', '--search', id!.slice(-8).toUpperCase());
      assert.deepEqual(byId.runs.map((r) => r.id), [id]);
      assert.deepEqual((await json<{ runs: Array<{ id: string }> }>('runs', 'ls', '--tenant', 't-new', '--since', '1h')).runs.map((r) => r.id), [id]);
      assert.deepEqual((await json<{ runs: unknown[] }>('runs', 'ls', '--tenant', 't-new', '--until', '2000-01-01')).runs, []);
      assert.deepEqual((await json<{ runs: Array<{ id: string }> }>('runs', 'ls', '--tenant', 't-new', '--stall-rpc', 'contract.add', '--stall-reason', 'rpc_missing')).runs.map((r) => r.id), [id]);
      assert.deepEqual((await json<{ runs: Array<{ id: string }> }>('runs', 'ls', '--tenant', 't-new', '--step', 'call', '--step-state', 'stalled')).runs.map((r) => r.id), [id]);
      assert.deepEqual((await json<{ runs: unknown[] }>('runs', 'ls', '--tenant', 't-new', '--step', 'call', '--step-state', 'passed')).runs, []);
    });

    it('stalls ls groups stalled runs by cause', async () => {
      await startAdd('t-groups', 2);
      const out = await ok('stalls', 'ls', '--tenant', 't-groups');
      assert.match(out, /^DEFINITION\s+VERSION\s+RPC\s+REASON\s+RUNS\s+OLDEST\s+NEWEST\s+SAMPLE\ncli-add\s+1 [0-9a-f]{12}\s+contract\.add\s+rpc_missing\s+2\s/);
      assert.match(out, /\n2 stalled run\(s\)\n$/);
      const res = await json<{ groups: Array<{ count: number }>; total: number }>('stalls', 'ls', '--tenant', 't-groups', '--rpc', 'contract.add');
      assert.deepEqual([res.groups.map((g) => g.count), res.total], [[2], 2]);
    });

    it('versions diff <definition>@<seq> <hash>, and whoami', async () => {
      const graph = file('sum2.json', { entry: 'add', steps: [{ id: 'add', type: 'rpc', rpc: 'math.add', input: { a: 'input.a', b: 'input.b' }, next: 'twice' }, { id: 'twice', type: 'assign', set: { x: '1' }, next: 'done' }, { id: 'done', type: 'return', output: 'steps.add.sum' }] });
      await ok('publish', file('sum1.json', { entry: 'add', steps: [{ id: 'add', type: 'rpc', rpc: 'math.add', input: { a: 'input.a', b: 'input.b' }, next: 'done' }, { id: 'done', type: 'return', output: 'steps.add.sum' }] }), '--definition', 'cli-diff');
      const hash2 = /([0-9a-f]{64})/.exec(await ok('publish', graph, '--definition', 'cli-diff'))![1]!;
      const diff = await ok('versions', 'diff', 'cli-diff@1', hash2);
      assert.match(diff, /^cli-diff: version 1 \([0-9a-f]{12}\) -> version 2 \([0-9a-f]{12}\)\n\nsteps:\n {2}\+ twice\n/);
      const asJson = await json<{ steps: { added: string[] } }>('versions', 'diff', 'cli-diff@1', 'cli-diff@2');
      assert.deepEqual(asJson.steps.added, ['twice']);
      assert.match(await ok('whoami'), /^key [0-9a-f]{16} \(test\): scopes admin, tenant all$/m);
    });
  });
});
