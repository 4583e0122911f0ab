/**
 * `npm run bench [-- --quick] [-- --only=overhead,throughput,...] [-- --merge] [-- --keep-db]
 *  [-- --profile[=scenario]] [-- --shared-bundle]`
 *
 * Measures pinflow against its physical limit, the same work written by hand
 * as Temporal workflows, on a real Temporal dev server (started here, on its
 * own port, in memory) and the real Postgres of this machine (a database the
 * run creates and drops: bench/database.ts). Comparisons run side by side in one process,
 * interleaved, and are reported as ratios: absolute times on a shared
 * machine are noisy. The interpreter runs on a worker with the production
 * workflow bundle (dist/workflow-bundle.js) on pinflow's task queue; the
 * hand-written baseline on a worker of its own, with a bundle of only
 * bench/baseline.ts, on its own task queue, so neither pays for the other's
 * modules (`--shared-bundle`: the old single worker and bundle, to compare).
 * Writes bench/results/latest.json and the results block
 * of BENCHMARKS.md; a run with --only writes its own file, and with --merge
 * also merges its scenarios into both, keeping every other scenario's figures.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { Client as PgClient } from 'pg';
import { createActivities } from '../activities';
import { createApi } from '../client/http';
import { ApiKeys } from '../client/keys';
import { Pinflow } from '../client/pinflow';
import { currentRunLimits } from '../graph/limits';
import { SA } from '../graph/search-attributes';
import { TASK_QUEUE } from '../graph/terminology';
import { connectPg, type Db } from '../db/connection';
import { hasPrebuiltBundle, workflowBundlePath } from '../worker/bundle';
import { workerTuning } from '../worker/tuning';
import { workerTracingOptions } from '../observability/tracing';
import { migrate } from '../db/migrate';
import { ProjectionStore } from '../projection/store';
import { loadConfig } from '../app/config';
import { startDevServer } from '../app/dev-server';
import { ensureSearchAttributes } from '../app/namespace';
import { projectRoot } from '../db/paths';
import { findConfiguredTemporalCli } from '../app/temporal-cli';
import { toRegistry, type RpcRegistry } from '../rpc/registry';
import { manifestOf, type DeployReport } from '../client/check-deploy';
import { CONTROL_RPC_EVERY, CONTROL_STEPS, controlGraph, sequentialGraph } from './graphs';
import { benchRpcs, deployed, noopHandler, whenMarked } from './rpcs';
import { median, percentile, pool, round } from './stats';
import { measureStepCounts, synthesize } from './synthetic';
import { analyseBundle } from './bundle-info';
import { countingDb, type CountingDb } from './counting-db';
import { CpuMeter } from './cpu';
import { BENCH_ADMIN_URL, benchDbName, createBenchDatabase, dbUrl } from './database';
import { ScenarioProfiler } from './profile';
import { pruning } from './pruning';

/** In the order they run: the CPU-sensitive ratios first, on a fresh server and database. */
const SCENARIOS = ['bundle', 'overhead', 'throughput', 'control', 'replay', 'deploy', 'projection', 'events', 'pruning'] as const;
type Scenario = (typeof SCENARIOS)[number];

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const MERGE = argv.includes('--merge');
const onlyArg = argv.find((a) => a.startsWith('--only='));
const profileArg = argv.find((a) => a === '--profile' || a.startsWith('--profile='));
/** `--profile[=scenario]` (default throughput): CPU profiles of that scenario (bench/profile.ts); without --only, only it runs. */
const PROFILE = profileArg ? ((profileArg.split('=')[1] || 'throughput') as Scenario) : undefined;
const ONLY = new Set<Scenario>(onlyArg ? (onlyArg.slice('--only='.length).split(',') as Scenario[]) : PROFILE ? [PROFILE] : SCENARIOS);
for (const s of ONLY) if (!SCENARIOS.includes(s)) throw new Error(`--only: unknown scenario ${s}; known: ${SCENARIOS.join(', ')}`);
const KEEP_DB = argv.includes('--keep-db');
/** The old measurement: one worker, one bundle with the interpreter and the baselines, one task queue. */
const SHARED_BUNDLE = argv.includes('--shared-bundle');
/**
 * `--decompose`: the throughput scenario also runs two variants, to show where pinflow's extra CPU per run goes:
 * the hand-written workflow started as pinflow starts a run (its search attributes, memo, summaries and the
 * pinned start input as an extra argument), and pinflow's runs with the projection's count triggers off.
 */
const DECOMPOSE = argv.includes('--decompose');
if (PROFILE && (!SCENARIOS.includes(PROFILE) || PROFILE === 'bundle')) throw new Error(`--profile: unknown scenario ${PROFILE}; known: ${SCENARIOS.filter((s) => s !== 'bundle').join(', ')}`);
if (PROFILE && !ONLY.has(PROFILE)) throw new Error(`--profile=${PROFILE}: the scenario is not in --only=${[...ONLY].join(',')}`);
// A profiled run is slowed by the profiler, and the old shared bundle is not the measurement: neither replaces the recorded figures.
if ((PROFILE || SHARED_BUNDLE || DECOMPOSE) && MERGE) throw new Error('--merge: not with --profile, --shared-bundle or --decompose, whose figures are not comparable with a plain run');
const KNOWN_FLAGS = ['--quick', '--merge', '--keep-db', '--shared-bundle', '--decompose'];
for (const a of argv) {
  if (!KNOWN_FLAGS.includes(a) && !a.startsWith('--only=') && a !== '--profile' && !a.startsWith('--profile=')) {
    throw new Error(`unknown option ${a}; known: ${KNOWN_FLAGS.join(', ')}, --only=<scenarios>, --profile[=<scenario>]`);
  }
}
/** The hand-written baselines' own task queue (the benchmark's alone; pinflow's TASK_QUEUE has no override). */
const BASELINE_TASK_QUEUE = 'pinflow-bench-baseline';

/** Sizes: the issue's numbers in a full run; smaller in --quick (under 5 minutes). */
const SIZE = QUICK
  ? { overheadRuns: 30, throughputRuns: 150, throughputRounds: 2, controlHistories: 12, waitingRuns: 500, openRuns: 500, syntheticRows: 100_000, resumeSamples: 50, querySamples: 100, replaySteps: 250, replayRepeats: 3, deployRuns: 500, pruning: { due: 20_000, kept: 2_000, baselineSeconds: 10 } }
  : { overheadRuns: 200, throughputRuns: 1_000, throughputRounds: 5, controlHistories: 30, waitingRuns: 10_000, openRuns: 1_000, syntheticRows: 1_000_000, resumeSamples: 200, querySamples: 200, replaySteps: 1_000, replayRepeats: 5, deployRuns: 10_000, pruning: { due: 1_000_000, kept: 100_000, baselineSeconds: 60 } };

const OVERHEAD_STEPS = 20;
const OVERHEAD_CONCURRENCY = 4;
const THROUGHPUT_STEPS = 5;
const THROUGHPUT_CONCURRENCY = 50;
const INGRESS_CONCURRENCY = 32;
const RSS_OPEN_RUNS = SIZE.openRuns;

const log = (line: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);
const MB = 1024 * 1024;

const waitGraph = {
  entry: 'await',
  steps: [
    { id: 'await', type: 'wait', event: 'bench.event', correlationKey: 'input.k', timeout: '1h', next: 'resumed' },
    { id: 'resumed', type: 'rpc', rpc: 'bench.mark', input: { k: 'input.k' }, next: 'done' },
    { id: 'done', type: 'return', output: 'true' },
  ],
};

/** Parked at a wait, then an rpc step calling bench.deployed: the RPC the deploy scenario removes. */
const deployGraph = {
  entry: 'await',
  steps: [
    // Long enough that no wait times out while 10,000 runs start and are checked.
    { id: 'await', type: 'wait', event: 'bench.deploy', correlationKey: 'input.k', timeout: '24h', next: 'call' },
    { id: 'call', type: 'rpc', rpc: 'bench.deployed', input: { k: 'input.k' }, next: 'done' },
    { id: 'done', type: 'return', output: 'true' },
  ],
};

interface Env {
  serverPid: number;
  cpu: CpuMeter;
  /** The projection's Db, counting the statements it sends (throughput.pgRoundTripsPerRun). */
  counting: CountingDb;
  /** The baseline's task queue and bundle (the interpreter's in --shared-bundle). */
  baselineQueue: string;
  baselineBundle: WorkflowBundleOption;
  registry: RpcRegistry;
  client: Client;
  pinflow: Pinflow;
  store: ProjectionStore;
  db: Db;
  /** The interpreter's: the production bundle. */
  workflowBundle: WorkflowBundleOption;
  worker: Worker;
}

type WorkflowBundleOption = WorkflowBundleWithSourceMap | { codePath: string };

function historyStats(history: temporal.api.history.v1.IHistory): { events: number; bytes: number } {
  return { events: history.events?.length ?? 0, bytes: temporal.api.history.v1.History.encode(history).finish().length };
}

let handSeq = 0;
/** Counts the baselineWait runs that reached their wait. */
const noopCalls = { waits: 0 };
async function runHand(env: Env, workflow: 'baselineSequential' | 'baselineControl', args: unknown[]): Promise<string> {
  const workflowId = `bench-hand-${process.pid}-${++handSeq}`;
  await env.client.workflow.execute(workflow, { taskQueue: env.baselineQueue, workflowId, args });
  return workflowId;
}

async function runGraph(env: Env, definition: string, input: unknown = {}): Promise<string> {
  const { runId } = await env.pinflow.start({ definition, input });
  await env.pinflow.result(runId);
  return runId;
}

async function overhead(env: Env) {
  await env.pinflow.publish('bench-overhead', sequentialGraph(OVERHEAD_STEPS));
  const kinds = ['graph', 'hand'] as const;
  const one = (kind: (typeof kinds)[number]) => (kind === 'graph' ? runGraph(env, 'bench-overhead') : runHand(env, 'baselineSequential', [OVERHEAD_STEPS]));
  await pool(Array.from({ length: 10 }, (_, i) => kinds[i % 2]!), OVERHEAD_CONCURRENCY, one); // warm-up
  const latency = { graph: [] as number[], hand: [] as number[] };
  const ids = { graph: [] as string[], hand: [] as string[] };
  const order = Array.from({ length: SIZE.overheadRuns * 2 }, (_, i) => kinds[i % 2]!);
  await pool(order, OVERHEAD_CONCURRENCY, async (kind) => {
    const t0 = performance.now();
    const id = await one(kind);
    latency[kind].push(performance.now() - t0);
    ids[kind].push(id);
  });
  const hist = { graph: [] as Array<{ events: number; bytes: number }>, hand: [] as Array<{ events: number; bytes: number }> };
  for (const kind of kinds) {
    for (const id of ids[kind].slice(0, 10)) hist[kind].push(historyStats(await env.client.workflow.getHandle(id).fetchHistory()));
  }
  const perRun = (kind: (typeof kinds)[number], f: 'events' | 'bytes') => median(hist[kind].map((h) => h[f]));
  return {
    runsEach: SIZE.overheadRuns,
    steps: OVERHEAD_STEPS,
    concurrency: OVERHEAD_CONCURRENCY,
    graph: { medianMs: round(median(latency.graph), 1), p95Ms: round(percentile(latency.graph, 95), 1), historyEvents: perRun('graph', 'events'), historyBytes: perRun('graph', 'bytes') },
    hand: { medianMs: round(median(latency.hand), 1), p95Ms: round(percentile(latency.hand, 95), 1), historyEvents: perRun('hand', 'events'), historyBytes: perRun('hand', 'bytes') },
    latencyRatio: round(median(latency.graph) / median(latency.hand)),
    p95Ratio: round(percentile(latency.graph, 95) / percentile(latency.hand, 95)),
    historyEventsRatio: round(perRun('graph', 'events') / perRun('hand', 'events')),
    historyBytesRatio: round(perRun('graph', 'bytes') / perRun('hand', 'bytes')),
  };
}

/** The start options pinflow gives a run (client/pinflow.ts launch), for the --decompose variant of the hand-written run. */
function pinflowShapedStart(workflowId: string) {
  return {
    typedSearchAttributes: [
      { key: SA.definition, value: 'bench-throughput' },
      { key: SA.version, value: 'f'.repeat(64) },
      { key: SA.tenant, value: 'default' },
      { key: SA.status, value: 'RUNNING' },
    ],
    memo: { definition: 'bench-throughput', version: 'f'.repeat(64), versionSeq: 1, tenant: 'default' },
    staticSummary: `bench-throughput v1 (${'f'.repeat(12)})`,
    staticDetails: `**definition** bench-throughput\n\n**version** v1 \`${'f'.repeat(64)}\`\n\n**tenant** default`,
    workflowId,
  };
}

type ThroughputKind = 'graph' | 'hand' | 'handShaped' | 'graphNoCounters';

async function throughput(env: Env) {
  const published = await env.pinflow.publish('bench-throughput', sequentialGraph(THROUGHPUT_STEPS));
  const per = SIZE.throughputRuns / SIZE.throughputRounds;
  const kinds: ThroughputKind[] = DECOMPOSE ? ['graph', 'hand', 'handShaped', 'graphNoCounters'] : ['graph', 'hand'];
  const total = Object.fromEntries(kinds.map((k) => [k, 0])) as Record<ThroughputKind, number>;
  const cpu = Object.fromEntries(kinds.map((k) => [k, { node: 0, temporal: 0, postgres: 0 }])) as Record<ThroughputKind, { node: number; temporal: number; postgres: number }>;
  const statements = Object.fromEntries(kinds.map((k) => [k, 0])) as Record<ThroughputKind, number>;
  // --decompose: a run's pinned start input (client/pinflow.ts prepareStart), carried by the shaped hand-written runs.
  const pinned = DECOMPOSE ? await env.pinflow.catalog.getVersion(published.version) : undefined;
  const pinnedInput = pinned
    ? { runId: 'bench-shaped', definition: 'bench-throughput', version: pinned.hash, graph: pinned.graph, contracts: pinned.contracts, input: {}, tenant: 'default', metadata: {}, limits: currentRunLimits() }
    : undefined;
  const one = (kind: ThroughputKind) => {
    if (kind === 'graph' || kind === 'graphNoCounters') return runGraph(env, 'bench-throughput');
    if (kind === 'hand') return runHand(env, 'baselineSequential', [THROUGHPUT_STEPS]);
    const workflowId = `bench-shaped-${process.pid}-${++handSeq}`;
    return env.client.workflow.execute('baselineSequential', { taskQueue: env.baselineQueue, args: [THROUGHPUT_STEPS, pinnedInput], ...pinflowShapedStart(workflowId) }).then(() => workflowId);
  };
  const counters = async (on: boolean) => {
    for (const t of ['runs', 'run_steps', 'run_waits']) await env.db.exec(`ALTER TABLE ${t} ${on ? 'ENABLE' : 'DISABLE'} TRIGGER USER`);
  };
  const batch = async (kind: ThroughputKind) => {
    await quiet(env.counting); // the previous batch's last projection writes land before this one is counted
    if (kind === 'graphNoCounters') await counters(false);
    try {
      const s0 = env.counting.statements;
      const c0 = await env.cpu.sample();
      const lastSample = env.cpu.every(1_000); // often, so a backend that exits loses at most a second
      const t0 = performance.now();
      await pool(Array.from({ length: per }), THROUGHPUT_CONCURRENCY, () => one(kind));
      total[kind] += performance.now() - t0;
      const c1 = await lastSample();
      for (const k of ['node', 'temporal', 'postgres'] as const) cpu[kind][k] += c1[k] - c0[k];
      await quiet(env.counting);
      statements[kind] += env.counting.statements - s0;
    } finally {
      if (kind === 'graphNoCounters') await counters(true);
    }
  };
  for (let r = 0; r < SIZE.throughputRounds; r++) {
    // Rotate which goes first, so none always runs on a warmer (or more loaded) server.
    for (let i = 0; i < kinds.length; i++) await batch(kinds[(i + r) % kinds.length]!);
  }
  const rate = (kind: ThroughputKind) => SIZE.throughputRuns / (total[kind] / 1000);
  const perRun = (kind: ThroughputKind) => Object.fromEntries(Object.entries(cpu[kind]).map(([k, v]) => [k, round((v * 1000) / SIZE.throughputRuns, 1)]));
  return {
    runsEach: SIZE.throughputRuns,
    steps: THROUGHPUT_STEPS,
    concurrency: THROUGHPUT_CONCURRENCY,
    graphRunsPerSec: round(rate('graph'), 1),
    handRunsPerSec: round(rate('hand'), 1),
    ratio: round(rate('graph') / rate('hand')),
    // Statements through the projection's Db (BEGIN and COMMIT included) per graph run; the hand-written runs send none.
    pgRoundTripsPerRun: round(statements.graph / SIZE.throughputRuns, 1),
    pgStatementsHand: statements.hand,
    // Where the CPU went, in ms per run: this process (client + both workers), the bench's Temporal server, its Postgres backends.
    cpuMsPerRun: Object.fromEntries(kinds.map((kind) => [kind, perRun(kind)])),
    ...(DECOMPOSE ? { decomposed: Object.fromEntries(kinds.map((kind) => [kind, { runsPerSec: round(rate(kind), 1), ratioToHand: round(rate(kind) / rate('hand')) }])) } : {}),
  };
}

/**
 * Workflow-task CPU: replaying a history re-executes every workflow task of
 * the run, and nothing else. The marginal CPU per history, (cpu(3k) - cpu(k)) / 2k,
 * cancels the replay worker's fixed start-up cost.
 */
async function control(env: Env) {
  await env.pinflow.publish('bench-control', controlGraph());
  const graphIds: string[] = [];
  const handIds: string[] = [];
  for (let i = 0; i < SIZE.controlHistories; i++) {
    graphIds.push(await runGraph(env, 'bench-control'));
    handIds.push(await runHand(env, 'baselineControl', [{ steps: CONTROL_STEPS, rpcEvery: CONTROL_RPC_EVERY }]));
  }
  const load = async (ids: string[]) => Promise.all(ids.map(async (workflowId) => ({ workflowId, history: await env.client.workflow.getHandle(workflowId).fetchHistory() })));
  const graphH = await load(graphIds);
  const handH = await load(handIds);
  const cpuOf = async (workflowBundle: WorkflowBundleOption, list: typeof graphH) => {
    const before = process.cpuUsage();
    for await (const r of Worker.runReplayHistories({ workflowBundle, replayName: 'bench-replay' }, list)) {
      if (r.error) throw r.error;
    }
    const d = process.cpuUsage(before);
    return (d.user + d.system) / 1000;
  };
  const k = Math.max(1, Math.floor(SIZE.controlHistories / 3));
  const marginal = { graph: [] as number[], hand: [] as number[] };
  // The hand-written figure is a few ms per history: more histories and repeats (full size) keep noise
  // (a GC, another thread) from swamping the difference; a difference at or below zero is noise, not a figure.
  const repeats = QUICK ? 3 : 5;
  for (let rep = 0; rep < repeats; rep++) {
    for (const [kind, list] of rep % 2 === 0 ? ([['graph', graphH], ['hand', handH]] as const) : ([['hand', handH], ['graph', graphH]] as const)) {
      const bundle = kind === 'graph' ? env.workflowBundle : env.baselineBundle;
      const small = await cpuOf(bundle, list.slice(0, k));
      const large = await cpuOf(bundle, list.slice(0, k * 3));
      const m = (large - small) / (2 * k);
      if (m > 0) marginal[kind].push(m);
      else log(`control: a ${kind} repeat measured ${round(m, 2)} ms per history (noise), left out`);
    }
  }
  if (marginal.graph.length === 0 || marginal.hand.length === 0) throw new Error('control: every repeat of one kind measured no marginal CPU; the machine is too noisy for this scenario');
  const events = (h: typeof graphH) => median(h.map((x) => x.history.events?.length ?? 0));
  return {
    controlSteps: CONTROL_STEPS,
    rpcSteps: CONTROL_STEPS / CONTROL_RPC_EVERY,
    graph: { workflowTaskCpuMs: round(median(marginal.graph), 2), historyEvents: events(graphH) },
    hand: { workflowTaskCpuMs: round(median(marginal.hand), 2), historyEvents: events(handH) },
    cpuRatio: round(median(marginal.graph) / median(marginal.hand), 2),
    historyEventsRatio: round(events(graphH) / events(handH)),
  };
}

/** Waits (up to 30 s) until no statement has been sent for 300 ms: the projection writer's queue has drained. */
async function quiet(db: CountingDb): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (let last = -1; db.statements !== last && Date.now() < deadline; ) {
    last = db.statements;
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function timed<T>(fn: () => Promise<T>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const rand = (n: number) => Math.floor(Math.random() * n);

async function projection(env: Env, n: number) {
  const versionOf = (k: number) => (1 + (k % 3)).toString(16).padStart(64, '0');
  const samples = SIZE.querySamples;
  const kinds: Record<string, () => Promise<unknown>> = {
    byStatus: () => env.store.listRuns({ status: ['FAILED', 'STALLED', 'RUNNING', 'COMPLETED'][rand(4)]! }, { limit: 50 }),
    byDefinitionVersion: () => {
      const d = rand(20);
      return env.store.listRuns({ definition: `syn-def-${d}`, version: versionOf(d + rand(3)) }, { limit: 50 });
    },
    byMetadata: () => env.store.listRuns({ metadata: { customer: `c${rand(10_000)}` } }, { limit: 50 }),
    keysetPage: () => {
      const i = 1 + rand(n);
      const cursor = Buffer.from(JSON.stringify({ s: new Date(Date.parse('2026-01-01T00:00:00Z') + i * 1000).toISOString(), i: `syn-${i}` })).toString('base64url');
      return env.store.listRuns({}, { cursor, limit: 50 });
    },
  };
  const lists: Record<string, { p50Ms: number; p95Ms: number }> = {};
  for (const [name, fn] of Object.entries(kinds)) {
    for (let w = 0; w < 10; w++) await fn(); // warm-up
    const t: number[] = [];
    for (let s = 0; s < samples; s++) t.push(await timed(fn));
    lists[name] = { p50Ms: round(median(t), 2), p95Ms: round(percentile(t, 95), 2) };
  }
  const detail: number[] = [];
  for (let s = 0; s < samples; s++) detail.push(await timed(() => env.store.getRun(`syn-${1 + rand(n)}`)));
  const stepCounts = await measureStepCounts(env.pinflow.console, env.db, samples);
  return {
    runs: n,
    steps: n * 3,
    samples,
    lists,
    listP95Ms: Math.max(...Object.values(lists).map((l) => l.p95Ms)),
    detailP50Ms: round(median(detail), 2),
    detailP95Ms: round(percentile(detail, 95), 2),
    stepCountsP50Ms: stepCounts.p50Ms,
    stepCountsP95Ms: stepCounts.p95Ms,
  };
}

function rssMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss / MB;
}

async function openWaits(db: Db, event: string, keyPrefix = ''): Promise<number> {
  const [r] = await db.query<{ n: string }>({
    text: `SELECT count(*) AS n FROM run_waits WHERE event_name = $1 AND status = 'OPEN' AND correlation_key LIKE $2`,
    values: [event, `${keyPrefix}%`],
  });
  return Number(r!.n);
}

/** Until `n` waits on `event` (with keys starting `keyPrefix-`, when given) are open. */
async function waitForOpen(db: Db, n: number, event = 'bench.event', keyPrefix?: string): Promise<void> {
  const deadline = Date.now() + 30 * 60_000;
  const prefix = keyPrefix === undefined ? '' : `${keyPrefix}-`;
  while ((await openWaits(db, event, prefix)) < n) {
    if (Date.now() > deadline) throw new Error(`only ${await openWaits(db, event, prefix)} of ${n} ${event} waits opened`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** `host:port` for the worker's Prometheus metrics (PINFLOW_BENCH_METRICS): the events progress log then shows cache hits and misses. */
const BENCH_METRICS = process.env.PINFLOW_BENCH_METRICS;

/** The quick run's events sizes: the full run measures them too, first, on runs of their own, as `events.quickSize`. */
const EVENTS_QUICK = { waitingRuns: 500, resumeSamples: 50 };

/**
 * Every 10 s while runs are resumed: how many resumed, the worker's cache and
 * in-flight work, the workflow-task backlog, and the CPU each process used
 * since the last line. This is how the full-size burst's stall was found
 * (BENCHMARKS.md, "Events burst"); the log lines stay as its evidence.
 */
function startProgressLog(env: Env, label: string, done: () => number): () => void {
  let last = { at: performance.now(), cpu: { node: 0, temporal: 0, postgres: 0 }, done: done() };
  void env.cpu.sample().then((cpu) => (last.cpu = cpu), () => undefined);
  const tick = async () => {
    const now = { at: performance.now(), cpu: await env.cpu.sample(), done: done() };
    const secs = (now.at - last.at) / 1000;
    const pct = (k: 'node' | 'temporal') => round(((now.cpu[k] - last.cpu[k]) / secs) * 100, 0);
    const status = env.worker.getStatus();
    let backlog = '?';
    try {
      const d = await env.client.workflowService.describeTaskQueue({
        namespace: 'default',
        taskQueue: { name: TASK_QUEUE, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        includeTaskQueueStatus: true,
      });
      backlog = String(d.taskQueueStatus?.backlogCountHint ?? '?');
    } catch (err) {
      backlog = `error: ${(err as Error).message}`;
    }
    let cache = '';
    if (BENCH_METRICS) {
      // The SDK's own counters (Prometheus text): whether a workflow task found its run in the cache.
      const text = await (await fetch(`http://${BENCH_METRICS}/metrics`)).text();
      const sum = (name: string) => text.split('\n').filter((l) => l.startsWith(name)).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
      cache = `; cache hits ${sum('temporal_sticky_cache_hit')}, misses ${sum('temporal_sticky_cache_miss')}, evictions ${sum('temporal_sticky_cache_total_forced_eviction')}`;
    }
    log(
      `${label}: ${now.done} resumed (+${round((now.done - last.done) / secs, 1)}/s); worker cache ${status.numCachedWorkflows}, ` +
        `activations in flight ${status.numInFlightWorkflowActivations}, activities ${status.numInFlightActivities}; ` +
        `workflow backlog ${backlog}; cpu worker ${pct('node')}% server ${pct('temporal')}%${cache}`,
    );
    last = now;
  };
  const timer = setInterval(() => void tick(), 10_000);
  return () => clearInterval(timer);
}

/**
 * One burst: `n` runs each waiting on its own key (started in waves of 500:
 * 10,000 first workflow tasks at once swamp one worker on a small machine),
 * resume latency one event at a time, then every other event through
 * POST /events, 32 in flight. `opened` runs of `prefix` already wait.
 */
async function eventsBurst(
  env: Env,
  post: (k: string) => Promise<void>,
  o: { prefix: string; n: number; resumeSamples: number; opened: number; beforeResume?: () => Promise<void> },
) {
  const key = (i: number) => `${o.prefix}-${i}`;
  const t0 = performance.now();
  for (let from = o.opened; from < o.n; from += 500) {
    const to = Math.min(o.n, from + 500);
    await pool(Array.from({ length: to - from }, (_, j) => from + j), 50, (i) =>
      env.pinflow.start({ definition: 'bench-wait', input: { k: key(i) }, runId: `bench-wait-${o.prefix}-${i}` }),
    );
    await waitForOpen(env.db, to, 'bench.event', o.prefix);
  }
  log(`${o.n} ${o.prefix} runs waiting (${round((performance.now() - t0) / 1000, 1)} s for the last ${o.n - o.opened})`);
  await o.beforeResume?.();
  let resumed = 0;
  const marked = (k: string) => whenMarked(k).then((at) => (resumed++, at));
  const stopLog = startProgressLog(env, `${o.prefix} burst`, () => resumed);
  try {
    // Resume latency, one event at a time: from the POST to the step after the wait running.
    const resume: number[] = [];
    for (let i = 0; i < o.resumeSamples; i++) {
      const mark = marked(key(i));
      const t = Date.now();
      await post(key(i));
      resume.push((await mark) - t);
    }
    const rest = Array.from({ length: o.n - o.resumeSamples }, (_, j) => key(o.resumeSamples + j));
    const burstMarks = rest.map((k) => marked(k));
    const tb = performance.now();
    const sent = new Map<string, number>();
    await pool(rest, INGRESS_CONCURRENCY, async (k) => {
      sent.set(k, Date.now());
      await post(k);
    });
    const ingressSecs = (performance.now() - tb) / 1000;
    const burstResume = (await Promise.all(burstMarks)).map((at, j) => at - sent.get(rest[j]!)!);
    log(`${o.prefix}: all ${o.n} resumed, ${round((performance.now() - tb) / 1000, 1)} s after the burst's first event`);
    return {
      waitingRuns: o.n,
      resumeP50Ms: round(median(resume), 1),
      resumeP99Ms: round(percentile(resume, 99), 1),
      ingressPerSec: round(rest.length / ingressSecs, 1),
      burstResumeP50Ms: round(median(burstResume), 1),
      burstResumeP99Ms: round(percentile(burstResume, 99), 1),
      burstSecs: round((performance.now() - tb) / 1000, 1),
    };
  } finally {
    stopLog();
  }
}

async function events(env: Env, syntheticWaits: number) {
  await env.pinflow.publish('bench-wait', waitGraph);
  // The ingress is measured, not the per-key rate limit (1,200 a minute by default, which a burst of
  // 10,000 events at 32 in flight passes in seconds: 429 RATE_LIMITED).
  const api = createApi({ pinflow: env.pinflow, rateLimit: { max: 1_000_000, timeWindowMs: 60_000 } });
  await api.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(api.server.address() as { port: number }).port}/events`;
  const { key: apiKey } = await new ApiKeys(env.db).create({ scopes: ['operate'], name: 'bench events', by: 'bench' });
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` };
  const post = async (k: string) => {
    const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ name: 'bench.event', correlationKey: k, payload: { k } }) });
    if (res.status !== 200) throw new Error(`POST /events ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
  };
  try {
    // The full run measures the quick size first, on its own runs, so both sizes are compared in one run.
    const quickSize = QUICK ? undefined : await eventsBurst(env, post, { prefix: 'quick', n: EVENTS_QUICK.waitingRuns, resumeSamples: EVENTS_QUICK.resumeSamples, opened: 0 });

    // Worker RSS with 1,000 open runs cached (reported under replay), hand-written first, then graph runs.
    const rssHand0 = rssMb();
    const handStarted = noopCalls.waits;
    await pool(Array.from({ length: RSS_OPEN_RUNS }), 50, () =>
      env.client.workflow.start('baselineWait', { taskQueue: env.baselineQueue, workflowId: `bench-hand-wait-${process.pid}-${++handSeq}` }),
    );
    while (noopCalls.waits - handStarted < RSS_OPEN_RUNS) await new Promise((r) => setTimeout(r, 250));
    const rssHandPer1000 = ((rssMb() - rssHand0) / RSS_OPEN_RUNS) * 1000;
    const rss0 = rssMb();
    await pool(Array.from({ length: RSS_OPEN_RUNS }, (_, i) => i), 50, (i) => env.pinflow.start({ definition: 'bench-wait', input: { k: `bench-${i}` }, runId: `bench-wait-bench-${i}` }));
    await waitForOpen(env.db, RSS_OPEN_RUNS, 'bench.event', 'bench');
    const rssPer1000 = ((rssMb() - rss0) / RSS_OPEN_RUNS) * 1000;

    // The candidate lookup, as routing runs it, over real and synthetic keys (while the full size waits).
    const lookups: number[] = [];
    const lookup = async () => {
      const pg = new PgClient({ connectionString: benchDbUrl() });
      // A lost connection fails the awaited query; the 'error' event must not also kill the process.
      pg.on('error', () => undefined);
      await pg.connect();
      try {
        for (let s = 0; s < 2_000; s++) {
          const real = s % 2 === 0;
          const args = real ? ['default', 'bench.event', `bench-${rand(SIZE.waitingRuns)}`] : [`tenant-${rand(50)}`, `syn.event.${rand(100)}`, `k-${1 + rand(syntheticWaits)}`];
          const t = performance.now();
          await pg.query(`SELECT run_id, wait_id FROM run_waits WHERE tenant = $1 AND event_name = $2 AND correlation_key = $3 AND status = 'OPEN'`, args);
          lookups.push(performance.now() - t);
        }
        lookups.splice(0, 100); // warm-up
      } finally {
        await pg.end();
      }
    };
    const full = await eventsBurst(env, post, { prefix: 'bench', n: SIZE.waitingRuns, resumeSamples: SIZE.resumeSamples, opened: RSS_OPEN_RUNS, beforeResume: lookup });

    // The ingress path alone: events no run waits on (validate, record, look up, settle; no signal).
    const unmatched = Array.from({ length: Math.min(2_000, SIZE.waitingRuns) }, (_, j) => `nobody-${j}`);
    const tu = performance.now();
    await pool(unmatched, INGRESS_CONCURRENCY, (k) => post(k));
    const unmatchedSecs = (performance.now() - tu) / 1000;
    const { waitingRuns, ...fullFigures } = full;
    return {
      waitingRuns,
      syntheticOpenWaits: syntheticWaits,
      lookupP50Ms: round(median(lookups), 3),
      lookupP99Ms: round(percentile(lookups, 99), 3),
      ...fullFigures,
      ingressConcurrency: INGRESS_CONCURRENCY,
      ingressUnmatchedPerSec: round(unmatched.length / unmatchedSecs, 1),
      ...(quickSize ? { quickSize } : {}),
      rssMbPer1000Open: round(rssPer1000, 1),
      rssMbPer1000OpenHand: round(rssHandPer1000, 1),
    };
  } finally {
    await api.close();
  }
}

/** The production workflow bundle the interpreter's worker loads: size, modules, packages, forbidden modules. */
function bundleFigures(bundle: WorkflowBundleOption) {
  const info = analyseBundle('codePath' in bundle ? readFileSync(bundle.codePath, 'utf8') : bundle.code);
  for (const f of info.forbidden) log(`bundle: forbidden module ${f.module}: ${f.why}`);
  log(`bundle packages: ${Object.entries(info.packages).map(([p, n]) => `${p} ${n}`).join(', ')}`);
  return {
    bytes: info.bytes,
    codeBytes: info.codeBytes,
    sourceMapBytes: info.sourceMapBytes,
    modules: info.modules.length,
    packages: Object.keys(info.packages).length,
    forbiddenModules: info.forbidden.length,
  };
}

async function replay(env: Env) {
  const steps = SIZE.replaySteps;
  await env.pinflow.publish('bench-replay', sequentialGraph(steps));
  const t0 = performance.now();
  // Both at once: each is `steps` sequential activity round trips.
  const [runId, handId] = await Promise.all([runGraph(env, 'bench-replay'), runHand(env, 'baselineSequential', [steps])]);
  log(`a ${steps}-step run and its hand-written form took ${round((performance.now() - t0) / 1000, 1)} s`);
  const history = await env.client.workflow.getHandle(runId).fetchHistory();
  const handHistory = await env.client.workflow.getHandle(handId).fetchHistory();
  const times = { graph: [] as number[], hand: [] as number[] };
  // Interleaved, each with its own bundle, alternating which goes first.
  for (let i = 0; i < SIZE.replayRepeats; i++) {
    const graph = () => timed(() => Worker.runReplayHistory({ workflowBundle: env.workflowBundle, replayName: 'bench-replay' }, history, runId)).then((t) => times.graph.push(t));
    const hand = () => timed(() => Worker.runReplayHistory({ workflowBundle: env.baselineBundle, replayName: 'bench-replay-hand' }, handHistory, handId)).then((t) => times.hand.push(t));
    if (i % 2 === 0) await graph().then(hand);
    else await hand().then(graph);
  }
  // --quick replays a shorter run and scales to 1,000 steps (replay time is linear in the steps).
  return {
    steps,
    historyEvents: history.events?.length ?? 0,
    handHistoryEvents: handHistory.events?.length ?? 0,
    thousandStepMs: round((median(times.graph) * 1_000) / steps, 1),
    handThousandStepMs: round((median(times.hand) * 1_000) / steps, 1),
    ratio: round(median(times.graph) / median(times.hand)),
    repeats: SIZE.replayRepeats,
  };
}

/**
 * Check-deploy over N open runs parked at a wait, with the RPC their next step calls removed from the
 * manifest: the report must list every run as certain to stall, from its live position. Runs before
 * the synthetic rows exist, so the open runs are this scenario's only.
 */
async function deploy(env: Env) {
  const n = SIZE.deployRuns;
  await env.pinflow.publish('bench-deploy', deployGraph);
  const runId = (i: number) => `bench-deploy-${i}`;
  const ids = Array.from({ length: n }, (_, i) => runId(i));
  let started = 0;
  try {
    const t0 = performance.now();
    // In waves, as in events: a burst of first workflow tasks swamps one worker on a small machine.
    for (let from = 0; from < n; from += 500) {
      const to = Math.min(n, from + 500);
      await pool(ids.slice(from, to), 50, async (id, j) => {
        await env.pinflow.start({ definition: 'bench-deploy', input: { k: `deploy-${from + j}` }, runId: id });
        started++;
      });
      await waitForOpen(env.db, to, 'bench.deploy');
    }
    const startSecs = (performance.now() - t0) / 1000;
    log(`${n} runs waiting at 'await' (${round(startSecs, 1)} s)`);

    // The plain projection listing check-deploy pages through: the floor under its time.
    const listTimes: number[] = [];
    for (let r = 0; r < 3; r++) {
      let listed = 0;
      const list = () =>
        env.store.forEachOpenRun((page) => {
          listed += page.length;
          return Promise.resolve();
        });
      listTimes.push(await timed(list));
      if (listed !== n) throw new Error(`deploy: the projection lists ${listed} open runs, expected ${n}`);
    }

    const removed = manifestOf(toRegistry(benchRpcs.filter((r) => r.name !== deployed.name)));
    const unchanged = manifestOf(env.registry);
    let report!: DeployReport;
    const checkMs = await timed(async () => (report = await env.pinflow.checkDeploy(removed)));
    log(`check-deploy, ${deployed.name} removed: ${round(checkMs / 1000, 1)} s; checked ${report.checkedRuns}, live ${report.liveRuns}, unknown ${report.unknownPositionRuns}, would stall ${report.wouldStall}, may stall ${report.mayStall}`);
    const stalling = new Set(report.impacts.filter((i) => i.certain && i.reason === 'rpc_missing' && i.rpc === deployed.name && i.position === 'live').map((i) => i.runId));
    const missed = ids.filter((id) => !stalling.has(id));
    if (report.unknownPositionRuns !== 0) throw new Error(`deploy: ${report.unknownPositionRuns} runs with their position unknown (state query failed or timed out)`);
    if (missed.length > 0) throw new Error(`deploy: ${missed.length} of ${n} runs not listed as certain to stall, e.g. ${missed.slice(0, 3).join(', ')}`);
    if (report.checkedRuns !== n || report.wouldStall !== n) throw new Error(`deploy: checked ${report.checkedRuns}, would stall ${report.wouldStall}; expected ${n} each`);

    let same!: DeployReport;
    const checkUnchangedMs = await timed(async () => (same = await env.pinflow.checkDeploy(unchanged)));
    log(`check-deploy, unchanged: ${round(checkUnchangedMs / 1000, 1)} s; checked ${same.checkedRuns}, impacts ${same.impacts.length}, unknown ${same.unknownPositionRuns}`);
    if (same.impacts.length !== 0) throw new Error(`deploy: the unchanged manifest lists ${same.impacts.length} impacts, e.g. ${JSON.stringify(same.impacts[0])}`);
    if (same.checkedRuns !== n) throw new Error(`deploy: the unchanged check saw ${same.checkedRuns} runs, expected ${n}`);

    const listMs = median(listTimes);
    return {
      openRuns: n,
      startSecs: round(startSecs, 1),
      checkMs: round(checkMs, 0),
      reportDurationMs: report.durationMs,
      checkUnchangedMs: round(checkUnchangedMs, 0),
      runsPerSecond: round(n / (checkMs / 1000), 1),
      unchangedRunsPerSecond: round(n / (checkUnchangedMs / 1000), 1),
      liveRuns: report.liveRuns,
      wouldStall: report.wouldStall,
      unknownPositionRuns: report.unknownPositionRuns,
      listMs: round(listMs, 1),
      checkToListRatio: round(checkMs / listMs, 1),
    };
  } finally {
    // Terminated, not cancelled: a cancellation is a workflow task per run (a replay for an evicted
    // one); termination is the server's alone. Their projection rows stay RUNNING, their waits OPEN
    // under bench.deploy, which no other scenario reads.
    const t = performance.now();
    await pool(ids.slice(0, started), 50, (id) => env.client.workflow.getHandle(id).terminate('bench: deploy scenario done').catch(() => undefined));
    log(`terminated ${started} deploy runs (${round((performance.now() - t) / 1000, 1)} s)`);
  }
}

/** The bench database: `PINFLOW_BENCH_DB`, else `pinflow_bench_<yyyymmddhhmmss>_<pid>`; created by this run (bench/database.ts). */
const BENCH_DB = benchDbName();

function benchDbUrl(): string {
  return dbUrl(BENCH_DB);
}

interface Target {
  key: string;
  op: '<=' | '>=';
  value: number;
  note: string;
}
/** Issue 16's table. */
const TARGETS: Target[] = [
  { key: 'overhead.latencyRatio', op: '<=', value: 1.05, note: 'with the projection on' },
  { key: 'overhead.historyEventsRatio', op: '<=', value: 1.05, note: '' },
  { key: 'throughput.ratio', op: '>=', value: 0.9, note: 'against the baseline on its own bundle and worker, projection on' },
  { key: 'throughput.pgRoundTripsPerRun', op: '<=', value: 12, note: 'statements for a 5-step run' },
  { key: 'control.cpuRatio', op: '<=', value: 2, note: 'workflow-task CPU, 200 control steps' },
  { key: 'replay.ratio', op: '<=', value: 1.15, note: '1,000-step replay, graph over hand-written' },
  { key: 'bundle.bytes', op: '<=', value: 3_000_000, note: 'the production workflow bundle, source map included' },
  { key: 'bundle.forbiddenModules', op: '<=', value: 0, note: 'no zod, no ajv, no Node-only module' },
  // The events helper's (issue 16, item 6): the full-size burst completes, and its resume p99 is at most 2× the quick size's.
  // events.quickSize.resumeP99Ms is the quick-size figure measured in the same run; the target is computed in targetRows.
  { key: 'events.resumeP99Ms', op: '<=', value: Number.NaN, note: '≤ 2 × `events.quickSize.resumeP99Ms`' },
  { key: 'events.lookupP99Ms', op: '<=', value: 5, note: 'at 1M open waits' },
  { key: 'projection.listP95Ms', op: '<=', value: 20, note: 'at 1M runs' },
  { key: 'projection.stepCountsP95Ms', op: '<=', value: 50, note: 'at 1M runs, 3M step rows' },
];

/** A target's goal in this run: fixed, or (events.resumeP99Ms) twice the quick-size figure measured alongside. */
function goalOf(t: Target, results: Record<string, unknown>): number | undefined {
  if (t.key === 'events.resumeP99Ms') {
    const quick = get(results, 'events.quickSize.resumeP99Ms');
    return quick === undefined ? undefined : 2 * quick;
  }
  return t.value;
}

function get(results: Record<string, unknown>, path: string): number | undefined {
  let v: unknown = results;
  for (const part of path.split('.')) v = (v as Record<string, unknown> | undefined)?.[part];
  return typeof v === 'number' ? v : undefined;
}

/** Every numeric leaf as `scenario.key.subkey`, in order. */
function flatten(results: Record<string, unknown>): Array<[string, number]> {
  const flat: Array<[string, number]> = [];
  const walk = (v: unknown, path: string) => {
    if (typeof v === 'number') flat.push([path, v]);
    else if (v !== null && typeof v === 'object' && !Array.isArray(v)) for (const [k, c] of Object.entries(v)) walk(c, `${path}.${k}`);
  };
  for (const [scenario, r] of Object.entries(results)) walk(r, scenario);
  return flat;
}

const RESULTS_BLOCK = /<!-- results:start[\s\S]*?<!-- results:end -->/;

/**
 * --only --merge: this run's scenarios replace theirs in latest.json (the run's meta under
 * `meta.partialRuns`), and the results block is written again from the merged figures: the target table
 * over every scenario, and a list of which run each scenario's figures come from.
 */
function mergeReport(dir: string, results: Record<string, unknown>, meta: Record<string, unknown>): void {
  const latestFile = join(dir, 'latest.json');
  const latest = existsSync(latestFile) ? (JSON.parse(readFileSync(latestFile, 'utf8')) as Record<string, unknown>) : {};
  const prevMeta = (latest.meta ?? {}) as Record<string, unknown>;
  const partial = { ...((prevMeta.partialRuns ?? {}) as Record<string, Record<string, unknown>>), ...Object.fromEntries(Object.keys(results).map((s) => [s, meta])) };
  const mergedMeta = { ...prevMeta, partialRuns: partial };
  const merged: Record<string, unknown> = { ...latest, ...results };
  delete merged.meta;
  writeFileSync(latestFile, `${JSON.stringify({ meta: mergedMeta, ...merged }, null, 2)}\n`);
  const origin = (m: Record<string, unknown>) => `${String(m.date)}, \`${String(m.command)}\`${m.quick ? ' (quick sizes)' : ''}, pinflow ${String(m.pinflow)}, ${String(m.cpuModel)}`;
  const header = [
    'Assembled from more than one run (`--merge`); each scenario\'s figures come from:',
    '',
    ...Object.keys(merged).map((s) => `- \`${s}\`: ${origin(partial[s] ?? prevMeta)}`),
    ...(typeof prevMeta.note === 'string' && Object.keys(merged).some((s) => !partial[s]) ? ['', `Of the base run: ${prevMeta.note}`] : []),
  ];
  writeResultsBlock(merged, header, meta);
  log(`merged ${Object.keys(results).join(', ')} into bench/results/latest.json and the results block of BENCHMARKS.md`);
}

/** The results block of BENCHMARKS.md: `header`, the machine, the target table and every figure. */
function writeResultsBlock(results: Record<string, unknown>, header: string[], meta: Record<string, unknown>): void {
  const flat = flatten(results);
  const lines = [
    '<!-- results:start (written by npm run bench; edit outside these markers) -->',
    ...header,
    '',
    `Machine (this run): ${meta.cpuModel}, ${meta.cpus} CPUs, ${meta.memGb} GB RAM (shared, noisy). Node ${meta.node}, Temporal CLI ${meta.temporalCli}` +
      ` (dev server, ${meta.temporalPersistence}), ${meta.postgres}, @temporalio/* ${meta.temporalSdk}, pinflow ${meta.pinflow}.`,
    '',
    '| target | value | goal | met |',
    '|---|---|---|---|',
    ...TARGETS.map((t) => {
      const v = get(results, t.key);
      const goal = goalOf(t, results);
      const met = v === undefined || goal === undefined ? 'not measured' : (t.op === '<=' ? v <= goal : v >= goal) ? 'yes' : '**no**';
      const shown = Number.isNaN(t.value) ? (goal === undefined ? t.note : `${goal} (${t.note})`) : `${t.value}${t.note ? ` (${t.note})` : ''}`;
      return `| \`${t.key}\` | ${v ?? '-'} | ${t.op === '<=' ? '≤' : '≥'} ${shown} | ${met} |`;
    }),
    '',
    '| key | value |',
    '|---|---|',
    ...flat.map(([k, v]) => `| \`${k}\` | ${v} |`),
    '<!-- results:end -->',
  ];
  const file = join(projectRoot(), 'BENCHMARKS.md');
  const block = lines.join('\n');
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\n<!-- results:start --><!-- results:end -->\n';
  writeFileSync(file, RESULTS_BLOCK.test(current) ? current.replace(RESULTS_BLOCK, () => block) : `${current.trimEnd()}\n\n${block}\n`);
}

function writeReport(results: Record<string, unknown>, meta: Record<string, unknown>): void {
  const dir = join(projectRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  if (onlyArg || PROFILE || SHARED_BUNDLE || DECOMPOSE) {
    // A partial, profiled, decomposed or shared-bundle run never replaces the full picture: it gets its own file, and is merged in only when asked.
    const tags = [...(PROFILE ? ['profiled'] : []), ...(SHARED_BUNDLE ? ['shared-bundle'] : []), ...(DECOMPOSE ? ['decomposed'] : [])];
    const file = join(dir, `${[QUICK ? 'quick' : 'full', ...(onlyArg ? [...ONLY] : ['all']), ...tags].join('-')}.json`);
    writeFileSync(file, `${JSON.stringify({ meta, ...results }, null, 2)}\n`);
    if (MERGE) mergeReport(dir, results, meta);
    else log(`wrote ${file} (latest.json and BENCHMARKS.md are left as they are: only a plain full run, or --only with --merge, writes them)`);
    return;
  }
  writeFileSync(join(dir, 'latest.json'), `${JSON.stringify({ meta, ...results }, null, 2)}\n`);
  writeResultsBlock(results, [`Measured ${meta.date} with \`${meta.command}\`${meta.quick ? ' (quick sizes)' : ''}.`], meta);
  log(`wrote bench/results/latest.json and the results block of BENCHMARKS.md`);
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN'), ...(BENCH_METRICS ? { telemetryOptions: { metrics: { prometheus: { bindAddress: BENCH_METRICS } } } } : {}) });
  const config = loadConfig({ ...process.env, TEMPORAL_ADDRESS: undefined });
  const cli = await findConfiguredTemporalCli(config, log);
  const tmp = mkdtempSync(join(tmpdir(), 'pinflow-bench-'));
  const port = Number(process.env.PINFLOW_BENCH_TEMPORAL_PORT ?? 17633);
  const uiPort = Number(process.env.PINFLOW_BENCH_UI_PORT ?? port + 1);
  const server = await startDevServer({
    cliPath: cli.path,
    dbFile: join(tmp, 'temporal.sqlite'),
    // In memory by default: with the SQLite file, fsyncs bound the server at about 40 activities a
    // second here, and that, not the interpreter, is what would be measured.
    inMemory: process.env.PINFLOW_BENCH_TEMPORAL_DB !== 'file',
    port,
    uiPort,
    headless: true,
    // The 1000-step replay case needs one execution; nothing else comes near this.
    dynamicConfig: ['limit.historyCount.suggestContinueAsNew=100000'],
  });
  const cleanups: Array<() => Promise<unknown>> = [() => server.stop(), () => Promise.resolve(rmSync(tmp, { recursive: true, force: true }))];
  try {
    const connection = await Connection.connect({ address: server.address });
    cleanups.unshift(() => connection.close());
    await ensureSearchAttributes(connection, 'default');
    const dropDb = await createBenchDatabase(BENCH_DB);
    // Dropped at the very end (cleanups run last-registered first), after every pool on it closed.
    cleanups.push(async () => {
      if (KEEP_DB) return log(`--keep-db: kept the database ${BENCH_DB} (drop it with: DROP DATABASE "${BENCH_DB}")`);
      await dropDb();
      log(`dropped the database ${BENCH_DB}, which this run created`);
    });
    log(`database ${BENCH_DB} (created by this run${KEEP_DB ? ', kept with --keep-db' : ', dropped at the end'})`);
    const rawDb = connectPg(benchDbUrl(), { max: 40 });
    cleanups.unshift(() => rawDb.close());
    await migrate(rawDb);
    const db = countingDb(rawDb);
    const cpu = new CpuMeter(server.pid, BENCH_DB, BENCH_ADMIN_URL);
    cleanups.unshift(() => cpu.close());
    const store = new ProjectionStore(db);
    const registry = toRegistry(benchRpcs);
    const quietLogger = new DefaultLogger('WARN');
    // The interpreter's worker: the production bundle (worker/bundle.ts's entry and interceptors, prebuilt by npm run build).
    // --shared-bundle: the old measurement, the interpreter and the baselines in one bundle (bench/workflows.ts).
    const sharedBundle = SHARED_BUNDLE ? await bundleWorkflowCode({ workflowsPath: require.resolve('./workflows'), logger: quietLogger }) : undefined;
    if (!SHARED_BUNDLE && !hasPrebuiltBundle()) throw new Error(`no production workflow bundle at ${workflowBundlePath()}: run \`npm run build\` first`);
    const workflowBundle: WorkflowBundleOption = sharedBundle ?? { codePath: workflowBundlePath() };
    // The baseline's own bundle: bench/baseline.ts alone, no interpreter, no jsonata.
    const baselineBundle: WorkflowBundleOption = sharedBundle ?? (await bundleWorkflowCode({ workflowsPath: require.resolve('./baseline'), logger: quietLogger }));
    const baselineQueue = SHARED_BUNDLE ? TASK_QUEUE : BASELINE_TASK_QUEUE;
    const nativeConnection = await NativeConnection.connect({ address: server.address });
    cleanups.unshift(() => nativeConnection.close());
    const baselineActivities = {
      benchNoop: (input: { i: number }) => {
        if (input.i === -1) noopCalls.waits++;
        return Promise.resolve(noopHandler(input));
      },
    };
    // The same worker settings for both (those of createWorker, plus a cache big enough for the
    // memory measurement's open runs; beyond that, runs are evicted and replayed when their event
    // arrives, as on a production worker).
    const settings = {
      connection: nativeConnection,
      namespace: 'default',
      defaultHeartbeatThrottleInterval: '1s',
      ...workerTuning({ maxCachedWorkflows: 2 * SIZE.openRuns + 500 }),
    } as const;
    const worker = await Worker.create({
      ...settings,
      taskQueue: TASK_QUEUE,
      workflowBundle,
      // The production bundle carries the tracing interceptor, which reports to this sink.
      sinks: workerTracingOptions().sinks,
      activities: { ...createActivities({ store, registry }), ...(SHARED_BUNDLE ? baselineActivities : {}) },
    });
    const workers = [worker];
    if (!SHARED_BUNDLE) workers.push(await Worker.create({ ...settings, taskQueue: baselineQueue, workflowBundle: baselineBundle, activities: baselineActivities }));
    for (const w of workers) {
      const running = w.run();
      cleanups.unshift(async () => {
        w.shutdown();
        await running;
      });
    }
    const client = new Client({ connection, namespace: 'default' });
    const pinflow = new Pinflow({ client, store, rpcs: registry, events: { signalConcurrency: 16 } });
    const env: Env = { serverPid: server.pid, cpu, counting: db, baselineQueue, baselineBundle, registry, client, pinflow, store, db, workflowBundle, worker };

    const results: Record<string, unknown> = {};
    const runScenario = async (name: Scenario, fn: () => Promise<unknown>) => {
      if (!ONLY.has(name)) return;
      log(`${name}...`);
      const profiler = PROFILE === name ? new ScenarioProfiler() : undefined;
      await profiler?.start();
      const t0 = performance.now();
      results[name] = await fn();
      log(`${name}: ${JSON.stringify(results[name])} (${round((performance.now() - t0) / 1000, 1)} s)`);
      if (profiler) {
        const label = `${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}-${name}${QUICK ? '-quick' : ''}`;
        for (const summary of await profiler.stop(join(projectRoot(), 'bench', 'results', 'profiles'), label)) log(`profile ${summary}`);
      }
    };
    await runScenario('bundle', () => Promise.resolve(bundleFigures(env.workflowBundle)));
    await runScenario('overhead', () => overhead(env));
    await runScenario('throughput', () => throughput(env));
    await runScenario('control', () => control(env));
    await runScenario('replay', () => replay(env));
    // Before the synthetic rows: check-deploy reads every open run, and 160,000 synthetic ones would be checked too.
    await runScenario('deploy', () => deploy(env));
    if (ONLY.has('events') || ONLY.has('projection')) await synthesize(db, SIZE.syntheticRows, log);
    await runScenario('projection', () => projection(env, SIZE.syntheticRows));
    if (ONLY.has('events')) {
      await runScenario('events', () => events(env, SIZE.syntheticRows));
      const ev = results.events as Record<string, number>;
      results.replay = { ...(results.replay as object | undefined), rssMbPer1000Open: ev.rssMbPer1000Open!, rssMbPer1000OpenHand: ev.rssMbPer1000OpenHand! };
      delete ev.rssMbPer1000Open;
      delete ev.rssMbPer1000OpenHand;
    }
    // Last: it deletes rows; on rows of its own (prefix p-), through the real HTTP API.
    await runScenario('pruning', () => pruning(pinflow, rawDb, SIZE.pruning, log));

    const pkg = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
    const [pgVersion] = await db.query<{ v: string }>({ text: `SELECT current_setting('server_version') AS v` });
    const meta = {
      date: new Date().toISOString(),
      command: `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`,
      quick: QUICK,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      cpus: cpus().length,
      memGb: round(totalmem() / 1024 ** 3, 1),
      node: process.version,
      temporalCli: execFileSync(cli.path, ['--version'], { encoding: 'utf8' }).trim(),
      temporalPersistence: process.env.PINFLOW_BENCH_TEMPORAL_DB === 'file' ? 'SQLite file' : 'in memory',
      database: BENCH_DB,
      baseline: SHARED_BUNDLE ? 'shared bundle and worker (--shared-bundle)' : `own bundle (bench/baseline.ts) and worker, task queue ${BASELINE_TASK_QUEUE}`,
      ...(PROFILE ? { profiled: PROFILE } : {}),
      postgres: `PostgreSQL ${pgVersion?.v ?? '?'}`,
      temporalSdk: pkg.dependencies['@temporalio/worker'],
      pinflow: pkg.version,
      sizes: SIZE,
    };
    writeReport(results, meta);
  } finally {
    for (const fn of cleanups) await fn().catch((err: unknown) => log(`cleanup: ${(err as Error).message}`));
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
