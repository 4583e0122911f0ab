/**
 * `npm start`: the whole pinflow stack on embedded defaults (Temporal dev
 * server + PGlite) or on TEMPORAL_ADDRESS / DATABASE_URL, with the examples
 * published. Ctrl-C stops everything.
 */
import { examples, exampleRpcs } from '../examples';
import { startDemoRuns } from '../examples/demo';
import { PinflowError } from '../graph/errors';
import { loadConfig } from '../app/config';
import { loadRpcModule } from '../app/rpc-module';
import { startStack } from '../app/stack';
import { makeTelemetryFilterString } from '@temporalio/worker';
import { installRuntime } from '../app/metrics-server';
import type { Logger } from 'pino';
import { coreLogLevel, createLogger, lineLogger, TemporalPinoLogger } from '../observability/logging';
import { startTracing, stopTracing } from '../observability/tracing';

/** Until the configuration is read: JSON at info. */
let logger: Logger = createLogger({ level: 'info', format: 'json', name: 'pinflow' });
let log = lineLogger(logger);
const starting = new AbortController();

async function main(): Promise<void> {
  const config = loadConfig();
  logger = createLogger({ level: config.log.level, format: config.log.format, name: 'pinflow' });
  log = lineLogger(logger);
  // One Temporal runtime per process, installed before any connection: its logs go through pino.
  // With PINFLOW_SDK_METRICS_ADDRESS it also exports the SDK's own Prometheus metrics.
  installRuntime(
    config.metrics.sdkAddress,
    {
      logger: new TemporalPinoLogger(logger),
      telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: coreLogLevel(config.log.level) }), forward: {} } },
    },
    log,
  );
  // Traces only when a collector is configured (OTEL_EXPORTER_OTLP_ENDPOINT); before the client and the worker are created.
  if (config.tracing.otlpEndpoint) {
    startTracing({ serviceName: config.tracing.serviceName ?? 'pinflow' });
    log(`tracing: spans go to ${config.tracing.otlpEndpoint} (OTLP/HTTP)`);
  }
  const mod = config.rpcModule ? loadRpcModule(config.rpcModule) : undefined;
  // A signal while the stack starts (it may be waiting for its database) stops what started and exits.
  const abortStart = (signal: string) => {
    log(`${signal} received while starting, stopping...`);
    starting.abort();
  };
  process.once('SIGINT', abortStart);
  process.once('SIGTERM', abortStart);
  const stack = await startStack(config, mod?.registry ?? exampleRpcs, log, { ...(mod?.correlationRules ? { correlationRules: mod.correlationRules } : {}), signal: starting.signal, logger });
  process.off('SIGINT', abortStart);
  process.off('SIGTERM', abortStart);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal} received, stopping...`);
    stack
      .stop()
      .then(() => stopTracing())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.fatal({ err }, 'stopping failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  for (const r of await stack.publish(mod?.definitions ?? [])) {
    log(`published ${r.definition} v${r.seq} (${r.version.slice(0, 12)}${r.created ? '' : ', unchanged'})`);
  }
  if (config.publishExamples && !config.rpcModule) {
    for (const ex of examples) {
      const r = await stack.pinflow.publish(ex.definition, ex.graph);
      log(`published example ${ex.definition} v${r.seq} (${r.version.slice(0, 12)}${r.created ? '' : ', unchanged'})`);
    }
    // One run at every state for the console to show (fixed ids: a second start finds them).
    if (config.demoRuns) for (const line of await startDemoRuns(stack.pinflow)) log(`demo run ${line}`);
  }
  // The key travels in the URL's fragment, which a browser never sends to a server; the console stores it and drops it from the URL.
  log(`Console:     ${stack.apiUrl}/#/login?key=${encodeURIComponent(stack.adminKey)}`);
  log(`API:         ${stack.apiUrl}  (auth on: Authorization: Bearer <the admin key in ${config.auth.adminKeyFile}>)`);
  log(`Temporal UI: ${stack.temporalUiUrl}`);
  log(`Temporal:    ${stack.temporalAddress}`);
  if (config.publishExamples && !config.rpcModule) {
    const ex = examples[0]!;
    log(`try:  curl -s -X POST ${stack.apiUrl}/runs -H "authorization: Bearer $(cat ${config.auth.adminKeyFile})" -H 'content-type: application/json' \\`);
    log(`        -d '${JSON.stringify({ definition: ex.definition, input: ex.sampleInput })}'`);
  }
  log('ready; Ctrl-C stops everything');
}

main().catch((err: unknown) => {
  if (starting.signal.aborted) process.exit(0);
  if (err instanceof PinflowError) logger.fatal({ code: err.code }, `${err.code}: ${err.message}`);
  else logger.fatal({ err }, 'pinflow failed to start');
  process.exit(1);
});
