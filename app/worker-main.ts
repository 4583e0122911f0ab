/**
 * Standalone worker process (production / docker compose): connects to
 * TEMPORAL_ADDRESS and DATABASE_URL, loads the RPCs from PINFLOW_RPC_MODULE,
 * polls the one task queue, and shuts down gracefully on SIGTERM/SIGINT.
 *
 * It outlives its database: at start it waits for Postgres with backoff
 * (logging each attempt; PINFLOW_DB_STARTUP_TIMEOUT_MS bounds the wait), and
 * once running, a lost connection fails only the statement on it (the
 * activity is retried by Temporal), never the process.
 *
 * It does not run the reconciler: the API process does (app/event-services.ts
 * says why), so scaling workers out adds no describe calls.
 * Metrics: `GET /metrics` on PINFLOW_METRICS_PORT (off when 0 or unset), and
 * the Temporal SDK's own on PINFLOW_SDK_METRICS_ADDRESS (off when unset).
 */
import { makeTelemetryFilterString, NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import { coreLogLevel, createLogger, lineLogger, TemporalPinoLogger } from '../observability/logging';
import { startTracing, stopTracing } from '../observability/tracing';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import { waitForDatabase } from '../db/availability';
import { configureRunLimits } from '../graph/limits';
import { loadConfig, type PinflowConfig } from './config';
import { installRuntime, startMetricsServer, type MetricsServer } from './metrics-server';
import { loadRpcModule } from './rpc-module';
import { describeLag, openProjectionWriter } from './projection-writer';
import { openStore } from './store';
import { publishAll } from '../catalog/publish';
import { createWorker } from '../worker/worker';
import type { ActivityHooks } from '../activities';
import type { ProjectionWriter } from '../projection/writer';
import { EncryptionCodec } from '../codec/encryption';

/** Until the configuration is read: JSON at info. */
let logger: Logger = createLogger({ level: 'info', format: 'json', name: 'pinflow-worker' });
let log = lineLogger(logger);

async function main(): Promise<void> {
  const config = loadConfig();
  logger = createLogger({ level: config.log.level, format: config.log.format, name: 'pinflow-worker' });
  log = lineLogger(logger);
  // Traces only when a collector is configured (OTEL_EXPORTER_OTLP_ENDPOINT); before the worker is created.
  if (config.tracing.otlpEndpoint) {
    startTracing({ serviceName: config.tracing.serviceName ?? 'pinflow-worker' });
    log(`tracing: spans go to ${config.tracing.otlpEndpoint} (OTLP/HTTP)`);
  }
  try {
    await runWorker(config);
  } finally {
    await stopTracing();
  }
}

async function runWorker(config: PinflowConfig): Promise<void> {
  // For publish-on-start; the workflow reads each run's own limits.
  configureRunLimits(config.limits);
  if (!config.temporal.address) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, 'the standalone worker needs TEMPORAL_ADDRESS');
  if (!config.databaseUrl) {
    throw new PinflowError(ERROR_CODES.CONFIG_INVALID, 'the standalone worker needs DATABASE_URL (PGlite is single-process; use `npm start` for the embedded stack)');
  }
  if (!config.rpcModule) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, 'the standalone worker needs PINFLOW_RPC_MODULE, the module exporting its RPCs');
  const { registry, definitions } = loadRpcModule(config.rpcModule);
  // The namespace and search attributes are ensured by createWorker (or it fails saying how to create them).
  // Until the worker runs, SIGTERM/SIGINT keep their default action (exit), so
  // a worker waiting for its database can be stopped.
  const startupTimeoutMs = config.database.startupTimeoutMs;
  const { store, catalog, db } = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, log, startupTimeoutMs, connectTimeoutMs: config.database.connectTimeoutMs });
  try {
    // Code definitions are published on start; an unchanged one keeps its hash, so no new version appears.
    const published = await waitForDatabase('publishing code definitions', () => publishAll({ catalog, registry }, definitions), { log, timeoutMs: startupTimeoutMs });
    for (const r of published) log(`published ${r.definition} v${r.seq} (${r.version.slice(0, 12)}${r.created ? '' : ', unchanged'})`);
    const projection = openProjectionWriter(config, db, lineLogger(logger, 'warn'));
    // No HTTP server here: the lag is logged every 10 s while it is non-zero.
    const lagLog = setInterval(() => {
      const line = describeLag(projection.writer.lag());
      if (line) logger.warn(line);
    }, 10_000);
    lagLog.unref();
    let metrics: MetricsServer | undefined;
    try {
      // Temporal's runtime installs SIGINT/SIGTERM handlers that shut the worker down gracefully.
      // The SDK's logs (workflow, activity and worker lines, and core's, forwarded) go through the same pino logger;
      // with PINFLOW_SDK_METRICS_ADDRESS it also exports the SDK's own Prometheus metrics.
      installRuntime(
        config.metrics.sdkAddress,
        {
          shutdownSignals: ['SIGINT', 'SIGTERM'],
          logger: new TemporalPinoLogger(logger),
          telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: coreLogLevel(config.log.level) }), forward: {} } },
        },
        log,
      );
      if (config.metrics.port > 0) {
        metrics = await startMetricsServer(config.metrics.host, config.metrics.port);
        log(`metrics on ${metrics.url}`);
      }
      const connection = await NativeConnection.connect({ address: config.temporal.address });
      try {
        const worker = await createWorker({
          rpcs: registry,
          store,
          catalog,
          writer: projection.writer,
          connection,
          namespace: config.temporal.namespace,
          searchableMetadata: config.temporal.searchableMetadata,
          ...(config.encryption.keys ? { codec: new EncryptionCodec(config.encryption.keys) } : {}),
          production: config.production,
          ...(config.testHooks.killAfterHandler ? { testHooks: killAfterHandler(config.testHooks.killAfterHandler, projection.writer) } : {}),
        });
        log(`worker polling task queue on ${config.temporal.address} (namespace ${config.temporal.namespace}); RPCs: ${[...registry.names()].join(', ')}`);
        await worker.run();
      } finally {
        await connection.close();
      }
    } finally {
      clearInterval(lagLog);
      await metrics?.close();
      await projection.close();
    }
  } finally {
    await db.close();
  }
}

/**
 * TEST ONLY (PINFLOW_TEST_KILL_AFTER_HANDLER): once a handler of `rpc` has
 * returned and its COMPLETED row is in the projection, the process SIGKILLs
 * itself, so the completion never reaches Temporal (issue #11's lost
 * completion). Never set in production.
 */
function killAfterHandler(rpc: string, writer: ProjectionWriter): ActivityHooks {
  logger.warn(`TEST HOOK: this worker kills itself after the first handler of ${rpc} returns`);
  return {
    afterHandler: async (call) => {
      if (call.rpc !== rpc) return;
      await writer.drain(30_000);
      logger.warn({ runId: call.runId, rpc }, `TEST HOOK: ${rpc} returned for run ${call.runId}; SIGKILL before the completion is sent`);
      process.kill(process.pid, 'SIGKILL');
    },
  };
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    if (err instanceof PinflowError) logger.fatal({ code: err.code }, `${err.code}: ${err.message}`);
    else logger.fatal({ err }, 'the worker failed');
    process.exit(1);
  },
);
