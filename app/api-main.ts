/**
 * Standalone HTTP API process (production / docker compose). It needs the RPC
 * module too: publish validates graphs against, and pins, the RPC contracts.
 *
 * It outlives its database: at start it waits for Postgres with backoff
 * (logging each attempt; PINFLOW_DB_STARTUP_TIMEOUT_MS bounds the wait), and
 * during an outage it keeps serving: `/health` reports the database as down,
 * and a request that needs the database answers `503 DATABASE_UNAVAILABLE`.
 */
import { Client, Connection } from '@temporalio/client';
import type { Logger } from 'pino';
import { createLogger, lineLogger } from '../observability/logging';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import { configureRunLimits } from '../graph/limits';
import { loadConfig } from './config';
import { startEventServices } from './event-services';
import { loadRpcModule } from './rpc-module';
import { openStore } from './store';
import { createApi } from '../client/http';
import { Pinflow } from '../client/pinflow';
import { clientInterceptors, startTracing, stopTracing } from '../observability/tracing';
import { codecFromKeys, dataConverterFor } from '../codec/encryption';

/** Until the configuration is read: JSON at info. */
let logger: Logger = createLogger({ level: 'info', format: 'json', name: 'pinflow-api' });
let log = lineLogger(logger);

async function main(): Promise<void> {
  const config = loadConfig();
  logger = createLogger({ level: config.log.level, format: config.log.format, name: 'pinflow-api' });
  log = lineLogger(logger);
  // Traces only when a collector is configured (OTEL_EXPORTER_OTLP_ENDPOINT); before the Temporal client is created.
  if (config.tracing.otlpEndpoint) {
    startTracing({ serviceName: config.tracing.serviceName ?? 'pinflow-api' });
    log(`tracing: spans go to ${config.tracing.otlpEndpoint} (OTLP/HTTP)`);
  }
  configureRunLimits(config.limits);
  if (!config.temporal.address) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, 'the standalone API needs TEMPORAL_ADDRESS');
  if (!config.databaseUrl) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, 'the standalone API needs DATABASE_URL');
  if (!config.rpcModule) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, 'the standalone API needs PINFLOW_RPC_MODULE, the module exporting the RPCs');
  const { registry, correlationRules } = loadRpcModule(config.rpcModule);
  const { store, catalog, db } = await openStore({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    log,
    startupTimeoutMs: config.database.startupTimeoutMs,
    connectTimeoutMs: config.database.connectTimeoutMs,
  });
  const connection = await Connection.connect({ address: config.temporal.address });
  const codec = codecFromKeys(config.encryption.keys);
  const client = new Client({ connection, namespace: config.temporal.namespace, interceptors: clientInterceptors(), ...dataConverterFor(codec) });
  const pinflow = new Pinflow({ client, store, catalog, rpcs: registry, temporalUiUrl: config.temporal.uiUrl, searchableMetadata: config.temporal.searchableMetadata, correlationRules, events: { ttlMaxMs: config.events.ttlMaxMs }, reconcile: { concurrency: config.reconcile.concurrency, log }, attention: { thresholds: config.attention, concurrency: config.reconcile.concurrency, log }, batches: { defaultRatePerSecond: config.batches.ratePerSecond, defaultConcurrency: config.batches.concurrency, leaseMs: config.batches.leaseMs, pollMs: config.batches.pollMs, log }, retention: { batchSize: config.retention.batchSize, pauseMs: config.retention.pauseMs, log }, versionGc: config.versionGc });
  // The sweeper, the Redis stream door (REDIS_URL) and the reconciler run next to the HTTP door.
  const events = await startEventServices(config, pinflow, log);
  // Auth is always on: every route but /health, /openapi.json, /docs and /metrics needs an API key (`pinflow keys create`).
  const api = createApi({ pinflow, logger, authCacheMs: config.auth.cacheMs, rateLimit: { max: config.auth.rateLimitPerMinute, timeWindowMs: 60_000 }, codec: { codec, corsOrigins: config.encryption.corsOrigins } });
  await api.listen({ host: config.api.host, port: config.api.port });
  const stop = async () => {
    await api.close();
    await events.stop();
    await connection.close();
    await db.close();
    await stopTracing();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

main().catch((err: unknown) => {
  if (err instanceof PinflowError) logger.fatal({ code: err.code }, `${err.code}: ${err.message}`);
  else logger.fatal({ err }, 'the API failed');
  process.exit(1);
});
