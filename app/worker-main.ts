/**
 * Standalone worker process (production / docker compose): connects to
 * TEMPORAL_ADDRESS and DATABASE_URL, loads the RPCs from PINFLOW_RPC_MODULE,
 * polls the one task queue, and shuts down gracefully on SIGTERM/SIGINT.
 */
import { NativeConnection, Runtime } from '@temporalio/worker';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import { configureRunLimits } from '../graph/limits';
import { loadConfig } from './config';
import { ensureSearchAttributes } from './namespace';
import { loadRpcModule } from './rpc-module';
import { openStore } from './store';
import { Connection } from '@temporalio/client';
import { publishAll } from '../catalog/publish';
import { createWorker } from '../worker/worker';

async function main(): Promise<void> {
  const config = loadConfig();
  // For publish-on-start; the workflow reads each run's own limits.
  configureRunLimits(config.limits);
  if (!config.temporal.address) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, 'the standalone worker needs TEMPORAL_ADDRESS');
  if (!config.databaseUrl) {
    throw new PinflowError(ERROR_CODES.CONFIG_INVALID, 'the standalone worker needs DATABASE_URL (PGlite is single-process; use `npm start` for the embedded stack)');
  }
  if (!config.rpcModule) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, 'the standalone worker needs PINFLOW_RPC_MODULE, the module exporting its RPCs');
  const { registry, definitions } = loadRpcModule(config.rpcModule);
  // Temporal's runtime installs SIGINT/SIGTERM handlers that shut the worker down gracefully.
  Runtime.install({ shutdownSignals: ['SIGINT', 'SIGTERM'] });
  const admin = await Connection.connect({ address: config.temporal.address });
  try {
    await ensureSearchAttributes(admin, config.temporal.namespace);
  } finally {
    await admin.close();
  }
  const { store, catalog, db } = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  // Code definitions are published on start; an unchanged one keeps its hash, so no new version appears.
  for (const r of await publishAll({ catalog, registry }, definitions)) {
    console.log(`[pinflow] published ${r.definition} v${r.seq} (${r.version.slice(0, 12)}${r.created ? '' : ', unchanged'})`);
  }
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  try {
    const worker = await createWorker({ rpcs: registry, store, catalog, connection, namespace: config.temporal.namespace, production: config.production });
    console.log(`[pinflow] worker polling task queue on ${config.temporal.address} (namespace ${config.temporal.namespace}); RPCs: ${[...registry.names()].join(', ')}`);
    await worker.run();
  } finally {
    await connection.close();
    await db.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    if (err instanceof PinflowError) console.error(`[pinflow] ${err.code}: ${err.message}`);
    else console.error(err);
    process.exit(1);
  },
);
