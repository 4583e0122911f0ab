import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { diffRuns, dumpRun, projectionPass, type RunResult } from '../client/projection-rebuild';
import { Pinflow } from '../client/pinflow';
import { connectPg, type Db } from '../db/connection';
import { migrate } from '../db/migrate';
import { ProjectionStore } from '../projection/store';
import { loadConfig } from '../app/config';
import { startDevServer, type DevServer } from '../app/dev-server';
import { ensureSearchAttributes } from '../app/namespace';
import { findConfiguredTemporalCli } from '../app/temporal-cli';
import { createWorker } from '../worker/worker';
import { rpcs } from './fixtures/rpcs';
import { createDatabase, eventually } from './support/harness';

/**
 * A chain of `n` RPC steps ending in a return that names the graph. The
 * return step is `done` for the default prefix and `<prefix>done` otherwise,
 * so two chains with different prefixes have no step id in common (with a
 * shared `done`, a continue-as-new that happened to fall on it moved the run).
 */
function chain(n: number, label: string, policy: 'pinned' | 'latest', prefix = 's') {
  const done = prefix === 's' ? 'done' : `${prefix}done`;
  const steps: unknown[] = Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${i}`,
    type: 'rpc',
    rpc: 'math.add',
    input: { a: i === 0 ? '0' : `steps.${prefix}${i - 1}.sum`, b: '1' },
    next: i === n - 1 ? done : `${prefix}${i + 1}`,
  }));
  steps.push({ id: done, type: 'return', output: { graph: `'${label}'`, total: `steps.${prefix}${n - 1}.sum` } });
  return { entry: `${prefix}0`, onContinueAsNew: policy, steps };
}

describe('continue-as-new for long runs', function () {
  this.timeout(180_000);
  let server: DevServer;
  let dir: string;
  let db: Db;
  let dropDb: () => Promise<void>;
  let connection: Connection;
  let native: NativeConnection;
  let worker: Worker;
  let running: Promise<void>;
  let pinflow: Pinflow;

  before(async () => {
    // Its own server: Temporal suggests continue-as-new after 40 events here.
    const config = loadConfig({ ...process.env, TEMPORAL_ADDRESS: undefined });
    const cli = await findConfiguredTemporalCli(config);
    dir = mkdtempSync(join(tmpdir(), 'pinflow-can-'));
    const port = Number(process.env.PINFLOW_TEST_TEMPORAL_PORT ?? 17233) + 150;
    server = await startDevServer({ cliPath: cli.path, dbFile: join(dir, 't.sqlite'), port, uiPort: port + 1000, headless: true, dynamicConfig: ['limit.historyCount.suggestContinueAsNew=40'] });
    const database = await createDatabase('can');
    dropDb = database.drop;
    db = connectPg(database.url);
    await migrate(db);
    const store = new ProjectionStore(db);
    connection = await Connection.connect({ address: server.address });
    await ensureSearchAttributes(connection, 'default');
    pinflow = new Pinflow({ client: new Client({ connection, namespace: 'default' }), store, rpcs });
    native = await NativeConnection.connect({ address: server.address });
    worker = await createWorker({ rpcs, store, connection: native });
    running = worker.run();
  });
  after(async () => {
    worker?.shutdown();
    await running;
    await native?.close();
    await connection?.close();
    await db?.close();
    await dropDb?.();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const executions = async (runId: string) => {
    const ids: string[] = [];
    for await (const w of pinflow.client.workflow.list({ query: `WorkflowId = '${runId}'` })) ids.push(w.runId);
    return ids.length;
  };

  it('continues as new when Temporal suggests it, carrying the state, and stays pinned by default', async () => {
    const v1 = await pinflow.publish('long-pinned', chain(15, 'v1', 'pinned'));
    await pinflow.publish('long-pinned', chain(15, 'v2', 'pinned'));
    const run = await pinflow.start({ version: v1.version });
    assert.deepEqual(await pinflow.result(run.runId), { graph: 'v1', total: 15 });
    assert.ok((await eventually(() => executions(run.runId).then((n) => (n > 1 ? n : undefined)))) > 1);
    const detail = await pinflow.getRun(run.runId);
    assert.equal(detail.version, v1.version);
    assert.deepEqual(detail.lineage, []);
    assert.deepEqual(
      detail.steps.map((s) => s.stepInstance),
      [...Array.from({ length: 15 }, (_, i) => `s${i}`), 'done'],
    );
  });

  it('moves to the latest version at the boundary with onContinueAsNew: latest', async () => {
    const v1 = await pinflow.publish('long-latest', chain(15, 'v1', 'latest'));
    const v2 = await pinflow.publish('long-latest', chain(15, 'v2', 'latest'));
    const run = await pinflow.start({ version: v1.version });
    assert.deepEqual(await pinflow.result(run.runId), { graph: 'v2', total: 15 });
    const detail = await eventually(async () => {
      const d = await pinflow.getRun(run.runId);
      return d.status === 'COMPLETED' ? d : undefined;
    });
    assert.equal(detail.version, v2.version);
    assert.equal(detail.lineage[0]?.version, v1.version);
    assert.equal(detail.lineage[0]?.by, 'onContinueAsNew: latest');
  });

  it('stays pinned when the latest version cannot take the state, instead of looping', async () => {
    const v1 = await pinflow.publish('long-misfit', chain(15, 'v1', 'latest'));
    await pinflow.publish('long-misfit', chain(15, 'v2', 'latest', 'x')); // no step ids in common
    // v1's content equals long-latest's v1, so the version is shared: name the definition.
    const run = await pinflow.start({ definition: 'long-misfit', version: v1.version });
    assert.deepEqual(await pinflow.result(run.runId), { graph: 'v1', total: 15 });
    const detail = await pinflow.getRun(run.runId);
    assert.equal(detail.version, v1.version);
    assert.deepEqual(detail.lineage, []);
    assert.ok((await eventually(() => executions(run.runId).then((n) => (n > 1 ? n : undefined)))) > 1, 'it did continue as new, on v1');
  });

  it('the projection of runs that continued as new (pinned, moved to the latest, stayed) is what their histories say; a rebuild of deleted rows gives them back', async () => {
    const ids: string[] = [];
    for await (const w of pinflow.client.workflow.list({ query: `ExecutionStatus = 'Completed'` })) if (!ids.includes(w.workflowId)) ids.push(w.workflowId);
    assert.ok(ids.length >= 3, `the three runs above: ${ids.join(', ')}`);
    const results: RunResult[] = [];
    const verify = await projectionPass({ client: pinflow.client, db }, { runIds: ids }, { write: false, onRun: (r) => results.push(r) });
    assert.deepEqual(results.filter((r) => r.outcome !== 'ok'), [], 'no drift');
    assert.equal(verify.checked, ids.length);
    const before = await Promise.all(ids.map((id) => dumpRun(db, id)));
    for (const id of ids) await db.query({ text: `DELETE FROM runs WHERE id = $1`, values: [id] });
    const rebuild = await projectionPass({ client: pinflow.client, db }, { runIds: ids }, { write: true });
    assert.equal(rebuild.errors, 0);
    assert.equal(rebuild.drifted, ids.length);
    for (const [i, id] of ids.entries()) assert.deepEqual(diffRuns(id, before[i]!, await dumpRun(db, id)), [], `run ${id} rebuilt as it was`);
  });
});
