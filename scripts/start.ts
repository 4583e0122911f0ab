/**
 * `npm start`: the whole pinflow stack on embedded defaults (Temporal dev
 * server + PGlite) or on TEMPORAL_ADDRESS / DATABASE_URL, with the examples
 * published. Ctrl-C stops everything.
 */
import { examples, exampleRpcs } from '../examples';
import { PinflowError } from '../graph/errors';
import { loadConfig } from '../app/config';
import { loadRpcModule } from '../app/rpc-module';
import { startStack } from '../app/stack';

const log = (line: string) => console.log(`[pinflow] ${line}`);
const starting = new AbortController();

async function main(): Promise<void> {
  const config = loadConfig();
  const mod = config.rpcModule ? loadRpcModule(config.rpcModule) : undefined;
  // A signal while the stack starts (it may be waiting for its database) stops what started and exits.
  const abortStart = (signal: string) => {
    log(`${signal} received while starting, stopping...`);
    starting.abort();
  };
  process.once('SIGINT', abortStart);
  process.once('SIGTERM', abortStart);
  const stack = await startStack(config, mod?.registry ?? exampleRpcs, log, { ...(mod?.correlationRules ? { correlationRules: mod.correlationRules } : {}), signal: starting.signal });
  process.off('SIGINT', abortStart);
  process.off('SIGTERM', abortStart);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal} received, stopping...`);
    stack.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
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
  }
  log(`API:         ${stack.apiUrl}`);
  log(`Temporal UI: ${stack.temporalUiUrl}`);
  log(`Temporal:    ${stack.temporalAddress}`);
  if (config.publishExamples && !config.rpcModule) {
    const ex = examples[0]!;
    log(`try:  curl -s -X POST ${stack.apiUrl}/runs -H 'content-type: application/json' \\`);
    log(`        -d '${JSON.stringify({ definition: ex.definition, input: ex.sampleInput })}'`);
  }
  log('ready; Ctrl-C stops everything');
}

main().catch((err: unknown) => {
  if (starting.signal.aborted) process.exit(0);
  if (err instanceof PinflowError) console.error(`[pinflow] ${err.code}: ${err.message}`);
  else console.error(err);
  process.exit(1);
});
