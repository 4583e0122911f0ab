/**
 * The pinflow worker: one process, the one task queue, the interpreter
 * workflow plus the RPC and projection activities.
 */
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, createProjectionWriter, type ActivityHooks } from '../activities';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import { TASK_QUEUE } from '../graph/terminology';
import type { VersionStore } from '../catalog/versions';
import type { ProjectionStore } from '../projection/store';
import type { ProjectionWriter } from '../projection/writer';
import { ensureTemporalSetup } from './temporal-setup';
import { prebuiltBundle, workflowInterceptorModules, workflowsEntry } from './bundle';
import { workerTracingOptions } from '../observability/tracing';
import { activityLogFields } from '../observability/logging';
import { toRegistry, type RpcDefinition, type RpcRegistry } from '../rpc/registry';
import type { PayloadCodec } from '@temporalio/common';
import { dataConverterFor } from '../codec/encryption';
import { workerTuning, type WorkerTuning } from './tuning';

export interface CreateWorkerOptions {
  /** The live RPCs: an array, a registry or a module namespace of `defineRpc` results. */
  rpcs: RpcRegistry | Iterable<RpcDefinition> | Record<string, unknown>;
  store: ProjectionStore;
  /** @default a catalog on the projection's database */
  catalog?: VersionStore;
  connection: NativeConnection;
  /** @default 'default' */
  namespace?: string;
  /**
   * Metadata keys the starters set as `PinflowMeta_<key>` search attributes
   * (PINFLOW_SEARCHABLE_METADATA): registered with pinflow's own at start.
   * @default []
   */
  searchableMetadata?: readonly string[];
  /**
   * Ensure the namespace and the search attributes exist before polling,
   * creating them when the server allows it, else failing with
   * TEMPORAL_SETUP_MISSING and the commands that create them.
   * @default true
   */
  ensureSetup?: boolean;
  /**
   * Require the prebuilt bundle (production). When false, the prebuilt bundle
   * is still preferred, and the workflows are bundled at start if it is missing.
   * Either way a prebuilt bundle built with another `@temporalio/workflow` than
   * the installed `@temporalio/worker` is not loaded: the workflows are bundled
   * at start, with a warning (worker/bundle.ts, `prebuiltBundle`).
   * @default false
   */
  production?: boolean;
  /**
   * The bounded path of the worker's projection writes (projection/writer.ts),
   * ideally on its own small pool. Whoever passes one drains and closes it.
   * @default a writer on `store`'s pool, drained (up to 10 s) and closed when `run()` ends
   */
  writer?: ProjectionWriter;
  /**
   * Encrypts payloads in Temporal history (codec/encryption.ts, PINFLOW_ENCRYPTION_KEY).
   * Every client and worker of a namespace must share it.
   * @default none: payloads in clear
   */
  codec?: PayloadCodec;
  /** Test hooks inside activities (e.g. widening the mailbox race window). Never set in production. */
  testHooks?: ActivityHooks;
  /**
   * Temporal worker options (concurrency limits, cache size, identity, ...),
   * each over its default (worker/tuning.ts, `workerTuning`).
   * @default WORKER_TUNING_DEFAULTS
   */
  tuning?: WorkerTuning;
}

export async function createWorker(opts: CreateWorkerOptions): Promise<Worker> {
  const registry = toRegistry(opts.rpcs);
  let workflows: Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'>;
  const bundle = prebuiltBundle();
  if (bundle.usable) workflows = { workflowBundle: { codePath: bundle.path } };
  else if (bundle.reason === 'missing' && opts.production) {
    throw new PinflowError(
      ERROR_CODES.CONFIG_INVALID,
      `production mode requires the prebuilt workflow bundle at ${bundle.path}; run \`npm run build\` first`,
    );
  } else {
    // A bundle built with another SDK than the installed worker's must not be
    // loaded, in production either: bundling the same interpreter with the
    // installed SDK is the combination the SDK supports (it takes seconds, once per start).
    if (bundle.reason === 'sdk-mismatch') {
      Runtime.instance().logger.warn(
        `the prebuilt workflow bundle was built with @temporalio/workflow ${bundle.builtWith}, the installed @temporalio/worker is ${bundle.worker}: ` +
          `bundling the workflows at start instead (install the @temporalio/* packages at ${bundle.builtWith} to use the prebuilt bundle)`,
        { bundle: bundle.path, builtWith: bundle.builtWith, worker: bundle.worker },
      );
    }
    workflows = { workflowsPath: workflowsEntry() };
  }
  const namespace = opts.namespace ?? 'default';
  if (opts.ensureSetup !== false) await ensureTemporalSetup(opts.connection, namespace, { metadataKeys: opts.searchableMetadata ?? [] });
  const writer = opts.writer ?? createProjectionWriter(opts.store);
  // Activity tracing while tracing is on; the workflow span sink always (observability/tracing.ts).
  const tracing = workerTracingOptions();
  const worker = await Worker.create({
    connection: opts.connection,
    namespace,
    taskQueue: TASK_QUEUE,
    ...workflows,
    activities: createActivities({ store: opts.store, writer, ...(opts.catalog ? { catalog: opts.catalog } : {}), registry, ...(opts.testHooks ? { hooks: opts.testHooks } : {}) }),
    ...dataConverterFor(opts.codec),
    // RPC activities heartbeat every second so cancellation reaches handlers
    // promptly; without a heartbeat timeout the SDK would throttle to 30s.
    defaultHeartbeatThrottleInterval: '1s',
    sinks: tracing.sinks,
    // The workflow modules matter only when bundling at start; the prebuilt bundle has them baked in.
    interceptors: {
      // Log fields from the call envelope first, so every later interceptor's logs carry them.
      activity: [activityLogFields, ...(tracing.interceptors?.activity ?? [])],
      ...('workflowsPath' in workflows ? { workflowModules: workflowInterceptorModules() } : {}),
    },
    ...workerTuning(opts.tuning),
  });
  if (!opts.writer) {
    // The writer created here is ours to finish: when the worker stops, give
    // queued projection writes a moment to land, then stop retrying them, so
    // nothing writes to a pool its owner is about to close.
    const run = worker.run.bind(worker);
    worker.run = async () => {
      try {
        await run();
      } finally {
        await writer.drain(10_000);
        writer.close();
      }
    };
  }
  return worker;
}
