/**
 * The whole pinflow stack in one process: Temporal (embedded or external),
 * the projection store, the worker, the library client and the HTTP API.
 * `npm start` runs this; so does the PGlite smoke test. Its metrics (worker
 * and API alike, one registry) are served by the API at `GET /metrics`.
 */
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { createApi } from '../client/http';
import { ApiKeys } from '../client/keys';
import { ensureLocalAdminKey } from './admin-key';
import { configureRunLimits } from '../graph/limits';
import type { RedisIngress } from '../client/redis-ingress';
import { Pinflow } from '../client/pinflow';
import type { CodeRule } from '../client/events';
import { publishAll, type PublishResult } from '../catalog/publish';
import type { Db } from '../db/connection';
import { toRegistry, type RpcDefinition, type RpcRegistry } from '../rpc/registry';
import { createWorker } from '../worker/worker';
import type { PinflowConfig } from './config';
import { applyNamespaceRetention, startEventServices } from './event-services';
import { openProjectionWriter } from './projection-writer';
import { openStore } from './store';
import { installRuntime, runtimeInstalled } from './metrics-server';
import { resolveTemporal, type TemporalHandle } from './temporal';
import { clientInterceptors } from '../observability/tracing';
import { codecFromKeys, dataConverterFor } from '../codec/encryption';

export interface Stack {
  pinflow: Pinflow;
  apiUrl: string;
  temporalAddress: string;
  temporalUiUrl: string;
  db: Db;
  worker: Worker;
  /** The Redis stream door, when REDIS_URL is set. */
  stream: RedisIngress | undefined;
  api: FastifyInstance;
  /** The local admin API key (created on the first start, kept in PINFLOW_ADMIN_KEY_FILE). */
  adminKey: string;
  /** Publish code definitions in order (unchanged ones keep their version). */
  publish(definitions: ReadonlyArray<{ definition: string; graph: unknown }>): Promise<PublishResult[]>;
  /** Stops API, worker, connections, store and (if embedded) Temporal, in that order. */
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Correlation rules configured in code: event name → JSONata over the event. */
  correlationRules?: Record<string, CodeRule>;
  /** Abort the start (e.g. SIGTERM while waiting for the database): what started is stopped and the start throws. */
  signal?: AbortSignal;
  /** The process's pino logger, for the HTTP API's request logs (observability/logging.ts). @default no request logs */
  logger?: FastifyBaseLogger;
}

export async function startStack(
  config: PinflowConfig,
  rpcs: RpcRegistry | Iterable<RpcDefinition> | Record<string, unknown>,
  log: (line: string) => void = () => undefined,
  options: StackOptions = {},
): Promise<Stack> {
  const registry = toRegistry(rpcs);
  configureRunLimits(config.limits);
  const cleanups: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => log(`shutdown: ${(err as Error).message}`));
    cleanups.length = 0;
  };
  try {
    const temporal: TemporalHandle = await resolveTemporal(config, log);
    cleanups.push(() => temporal.stop());

    // A Postgres that is not up yet is waited for (one log line per attempt), not fatal.
    const { store, catalog, db, applied } = await openStore({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      log,
      startupTimeoutMs: config.database.startupTimeoutMs,
      connectTimeoutMs: config.database.connectTimeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    cleanups.push(() => db.close());
    log(`projection store: ${db.kind === 'pg' ? 'Postgres (DATABASE_URL)' : `PGlite in ${config.dataDir}/pglite`}; migrations applied: ${applied.length ? applied.join(', ') : 'none pending'}`);

    const projection = openProjectionWriter(config, db, log);
    cleanups.push(() => projection.close());

    // The runtime (with the SDK's own Prometheus metrics, PINFLOW_SDK_METRICS_ADDRESS) is installed by the process
    // before the stack starts (scripts/start.ts); a caller that did not is given one with the metrics only.
    if (!runtimeInstalled()) installRuntime(config.metrics.sdkAddress, {}, log);
    const codec = codecFromKeys(config.encryption.keys);
    const nativeConnection = await NativeConnection.connect({ address: temporal.address });
    cleanups.push(() => nativeConnection.close());
    const worker = await createWorker({ rpcs: registry, store, catalog, writer: projection.writer, connection: nativeConnection, namespace: config.temporal.namespace, searchableMetadata: config.temporal.searchableMetadata, production: config.production, ...(codec ? { codec } : {}) });
    const running = worker.run();
    cleanups.push(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    });

    const connection = await Connection.connect({ address: temporal.address });
    cleanups.push(() => connection.close());
    const client = new Client({ connection, namespace: config.temporal.namespace, interceptors: clientInterceptors(), ...dataConverterFor(codec) });
    const pinflow = new Pinflow({
      client,
      store,
      catalog,
      rpcs: registry,
      temporalUiUrl: temporal.uiUrl,
      searchableMetadata: config.temporal.searchableMetadata,
      events: { ttlMaxMs: config.events.ttlMaxMs },
      projectionLag: () => projection.writer.lag(),
      reconcile: { concurrency: config.reconcile.concurrency, log },
      attention: { thresholds: config.attention, concurrency: config.reconcile.concurrency, log },
      batches: { defaultRatePerSecond: config.batches.ratePerSecond, defaultConcurrency: config.batches.concurrency, leaseMs: config.batches.leaseMs, pollMs: config.batches.pollMs, log },
      versionGc: config.versionGc,
      retention: { batchSize: config.retention.batchSize, pauseMs: config.retention.pauseMs, log },
      ...(options.correlationRules ? { correlationRules: options.correlationRules } : {}),
    });
    const events = await startEventServices(config, pinflow, log);
    cleanups.push(() => events.stop());
    // The embedded dev server's namespace keeps histories as long as the retention policies need (no one else uses it).
    if (temporal.devServer) await applyNamespaceRetention(pinflow, log);

    // Auth is on: the local admin key is created on the first start (printed once, kept in a 0600 file).
    const keys = new ApiKeys(db, { cacheMs: config.auth.cacheMs });
    const admin = await ensureLocalAdminKey(keys, config.auth.adminKeyFile, log);
    const api = createApi({ pinflow, keys, rateLimit: { max: config.auth.rateLimitPerMinute, timeWindowMs: 60_000 }, ...(options.logger ? { logger: options.logger } : {}), codec: { codec, corsOrigins: config.encryption.corsOrigins } });
    await api.listen({ host: config.api.host, port: config.api.port });
    cleanups.push(() => api.close());
    // Aborted while starting (the waits above end early on it): undo everything.
    options.signal?.throwIfAborted();
    const addr = api.server.address() as AddressInfo;
    const host = config.api.host === '0.0.0.0' || config.api.host === '::' ? 'localhost' : config.api.host;
    return {
      pinflow,
      apiUrl: `http://${host}:${addr.port}`,
      temporalAddress: temporal.address,
      temporalUiUrl: temporal.uiUrl,
      db,
      worker,
      stream: events.stream,
      api,
      adminKey: admin.key,
      publish: (defs) => publishAll({ catalog, registry }, defs),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
