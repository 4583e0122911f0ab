/**
 * Profiling aid for the interpreter's workflow-task CPU (the `control` and
 * `replay` scenarios of bench/run.ts), in two steps:
 *
 *   node dist/bench/interp-profile.js record <dir>
 *     starts a dev server (PINFLOW_PROFILE_TEMPORAL_PORT, default 28233, in
 *     memory) and a worker on a fresh projection database
 *     (PINFLOW_PROFILE_DB, default pinflow_interp_profile: dropped and created
 *     here, so name none you keep), runs the control graph and the
 *     250-rpc-step graph (PINFLOW_PROFILE_STEPS) and their hand-written forms
 *     (PINFLOW_PROFILE_ONLY=sequential: only those), and saves their
 *     histories as JSON in <dir>.
 *   node --cpu-prof --cpu-prof-dir=<out> dist/bench/interp-profile.js replay <dir> [graph|hand|all] [repeats] [control|sequential]
 *     replays the saved histories (no server) and prints the CPU and wall
 *     time of each kind; workflow code runs in the replay worker's workflow
 *     thread, which --cpu-prof profiles in a file of its own.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promiseHooks } from 'node:v8';
import { Client, Connection } from '@temporalio/client';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { Client as PgClient } from 'pg';
import { createActivities } from '../activities';
import { loadConfig } from '../app/config';
import { startDevServer } from '../app/dev-server';
import { ensureSearchAttributes } from '../app/namespace';
import { findConfiguredTemporalCli } from '../app/temporal-cli';
import { Pinflow } from '../client/pinflow';
import { connectPg } from '../db/connection';
import { migrate } from '../db/migrate';
import { TASK_QUEUE } from '../graph/terminology';
import { ProjectionStore } from '../projection/store';
import { toRegistry } from '../rpc/registry';
import { CONTROL_RPC_EVERY, CONTROL_STEPS, controlGraph, sequentialGraph } from './graphs';
import { benchRpcs, noopHandler } from './rpcs';

const SEQUENTIAL_STEPS = Number(process.env.PINFLOW_PROFILE_STEPS ?? 250);
const RUNS = 6;

async function record(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const config = loadConfig({ ...process.env, TEMPORAL_ADDRESS: undefined });
  const cli = await findConfiguredTemporalCli(config, console.log);
  const port = Number(process.env.PINFLOW_PROFILE_TEMPORAL_PORT ?? 28233);
  // As bench/run.ts: no continue-as-new suggestion, so a long run's history is one execution's.
  const server = await startDevServer({
    cliPath: cli.path,
    dbFile: join(dir, 'temporal.sqlite'),
    inMemory: true,
    port,
    uiPort: port + 1,
    headless: true,
    dynamicConfig: ['limit.historyCount.suggestContinueAsNew=100000'],
  });
  const dbName = process.env.PINFLOW_PROFILE_DB ?? 'pinflow_interp_profile';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(dbName)) throw new Error(`PINFLOW_PROFILE_DB must be a plain lower-case identifier, got ${JSON.stringify(dbName)}`);
  const admin = new PgClient({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  await admin.query(`CREATE DATABASE "${dbName}"`);
  const db = connectPg(`postgres://postgres@127.0.0.1:5432/${dbName}`, { max: 10 });
  try {
    await migrate(db);
    const connection = await Connection.connect({ address: server.address });
    await ensureSearchAttributes(connection, 'default');
    const store = new ProjectionStore(db);
    const registry = toRegistry(benchRpcs);
    const workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve('./workflows'), logger: new DefaultLogger('WARN') });
    const nativeConnection = await NativeConnection.connect({ address: server.address });
    const worker = await Worker.create({
      connection: nativeConnection,
      namespace: 'default',
      taskQueue: TASK_QUEUE,
      workflowBundle,
      activities: { ...createActivities({ store, registry }), benchNoop: (input: { i: number }) => Promise.resolve(noopHandler(input)) },
    });
    const client = new Client({ connection, namespace: 'default' });
    const pinflow = new Pinflow({ client, store, rpcs: registry });
    await worker.runUntil(async () => {
      await pinflow.publish('profile-control', controlGraph());
      await pinflow.publish('profile-sequential', sequentialGraph(SEQUENTIAL_STEPS));
      const save = async (name: string, workflowId: string) => {
        const history = await client.workflow.getHandle(workflowId).fetchHistory();
        writeFileSync(join(dir, `${name}.json`), JSON.stringify({ workflowId, history: JSON.parse(historyToJSON(history)) as unknown }));
      };
      const graph = async (definition: string) => {
        const { runId } = await pinflow.start({ definition, input: {} });
        await pinflow.result(runId);
        return runId;
      };
      // PINFLOW_PROFILE_ONLY=sequential records only the sequential pair.
      for (let i = 0; i < (process.env.PINFLOW_PROFILE_ONLY === 'sequential' ? 0 : RUNS); i++) {
        await save(`control-graph-${i}`, await graph('profile-control'));
        const id = `profile-hand-control-${i}-${Date.now()}`;
        await client.workflow.execute('baselineControl', { taskQueue: TASK_QUEUE, workflowId: id, args: [{ steps: CONTROL_STEPS, rpcEvery: CONTROL_RPC_EVERY }] });
        await save(`control-hand-${i}`, id);
      }
      // Both at once: each is SEQUENTIAL_STEPS activity round trips.
      const id = `profile-hand-sequential-${Date.now()}`;
      const [graphId] = await Promise.all([
        graph('profile-sequential'),
        client.workflow.execute('baselineSequential', { taskQueue: TASK_QUEUE, workflowId: id, args: [SEQUENTIAL_STEPS] }),
      ]);
      await save('sequential-graph-0', graphId);
      await save('sequential-hand-0', id);
    });
    await nativeConnection.close();
    await connection.close();
  } finally {
    await db.close();
    await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await admin.end();
    await server.stop();
  }
}

async function replay(dir: string, only: string | undefined, repeats: number, scenarios: string[]): Promise<void> {
  const workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve('./workflows'), logger: new DefaultLogger('WARN') });
  const load = (prefix: string) =>
    readdirSync(dir)
      .filter((f) => f.startsWith(prefix) && f.endsWith('.json'))
      .sort()
      .map((f) => {
        const { workflowId, history } = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { workflowId: string; history: unknown };
        return { workflowId, history: historyFromJSON(history) };
      });
  const kinds = (only ? [only] : ['graph', 'hand']) as Array<'graph' | 'hand'>;
  for (const scenario of scenarios) {
    for (const kind of kinds) {
      const list = load(`${scenario}-${kind}-`);
      // Promises created while replaying (all of the process's, so compare kinds and builds, not absolute counts).
      let promises = 0;
      const stop = promiseHooks.onInit(() => void promises++);
      const cpu: number[] = [];
      const wall: number[] = [];
      for (let r = 0; r < repeats; r++) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        for await (const res of Worker.runReplayHistories({ workflowBundle, replayName: 'interp-profile' }, list)) if (res.error) throw res.error;
        const d = process.cpuUsage(c0);
        cpu.push((d.user + d.system) / 1000 / list.length);
        wall.push((performance.now() - t0) / list.length);
      }
      stop();
      const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!.toFixed(1);
      console.log(`${scenario} ${kind}: ${list.length} histories × ${repeats}: cpu ms/history median ${med(cpu)} [${cpu.map((x) => x.toFixed(0)).join(' ')}], wall ms/history median ${med(wall)}, promises/history ${Math.round(promises / repeats / list.length)}`);
    }
  }
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const [mode, dir, only, repeats, scenario] = process.argv.slice(2);
  if (!dir) throw new Error('usage: interp-profile.js record <dir> | replay <dir> [graph|hand|all] [repeats] [control|sequential]');
  if (mode === 'record') await record(dir);
  else if (mode === 'replay') await replay(dir, only === 'all' ? undefined : only, Number(repeats ?? 3), scenario ? [scenario] : ['control', 'sequential']);
  else throw new Error(`unknown mode ${JSON.stringify(mode)}: record or replay`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
