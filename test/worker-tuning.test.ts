import assert from 'node:assert/strict';
import { NativeConnection } from '@temporalio/worker';
import { createWorker } from '../worker/worker';
import { WORKER_TUNING_DEFAULTS, workerTuning } from '../worker/tuning';
import { noop } from '../bench/rpcs';
import { createEnv, temporalAddress, type Env } from './support/harness';
import { getHeapStatistics } from 'node:v8';

/** The SDK's own cache default (from the heap limit, reuseV8Context on): pinflow leaves it. */
const WORKER_DEFAULT_CACHE = Math.max(Math.floor((Math.max(getHeapStatistics().heap_size_limit / 1024 / 1024 - 200, 0) * 600) / 1024), 10);

/** The worker's tuning defaults (worker/tuning.ts; BENCHMARKS.md, "Events burst"), as the SDK compiled them. */
describe('worker tuning defaults', function () {
  this.timeout(60_000);
  let env: Env;
  let conn: NativeConnection;
  before(async () => {
    env = await createEnv('worker-tuning', [noop]);
    conn = await NativeConnection.connect({ address: temporalAddress() });
  });
  after(async () => {
    await conn?.close();
    await env?.stop();
  });

  /** What the SDK made of the options: the workflow-task slots and pollers it will use (the worker is run and stopped, so the next can register). */
  const compiled = async (tuning?: Parameters<typeof createWorker>[0]['tuning']) => {
    const w = await createWorker({ rpcs: [noop], store: env.store, connection: conn, namespace: env.namespace, ...(tuning ? { tuning } : {}) });
    const running = w.run();
    w.shutdown();
    await running;
    const slots = w.options.tuner.workflowTaskSlotSupplier;
    const polls = w.options.workflowTaskPollerBehavior;
    return {
      maxConcurrentWorkflowTaskExecutions: slots.type === 'fixed-size' ? slots.numSlots : `not fixed: ${slots.type}`,
      workflowTaskPolls: polls.type === 'simple-maximum' ? polls.maximum : `not simple: ${polls.type}`,
      maxCachedWorkflows: w.options.maxCachedWorkflows,
      shutdownGraceTimeMs: w.options.shutdownGraceTimeMs,
    };
  };

  it('a worker gets 10 workflow tasks in flight (not the SDK default of 40), 10 pollers, a 10 s shutdown grace', async () => {
    assert.deepEqual(await compiled(), { maxConcurrentWorkflowTaskExecutions: 10, workflowTaskPolls: 10, maxCachedWorkflows: WORKER_DEFAULT_CACHE, shutdownGraceTimeMs: 10_000 });
  });

  it('tuning overrides a default; the SDK caps the pollers at the tasks in flight', async () => {
    assert.deepEqual(await compiled({ maxConcurrentWorkflowTaskExecutions: 3, maxCachedWorkflows: 123 }), {
      maxConcurrentWorkflowTaskExecutions: 3,
      workflowTaskPolls: 3,
      maxCachedWorkflows: 123,
      shutdownGraceTimeMs: 10_000,
    });
    const p = await compiled({ maxConcurrentWorkflowTaskExecutions: 30, workflowTaskPollerBehavior: { type: 'simple-maximum', maximum: 7 }, shutdownGraceTime: '1s' });
    assert.equal(p.workflowTaskPolls, 7);
    assert.equal(p.shutdownGraceTimeMs, 1_000);
  });

  it('workerTuning: the defaults, then the overrides', () => {
    assert.deepEqual(workerTuning(), WORKER_TUNING_DEFAULTS);
    assert.equal(workerTuning({ maxConcurrentWorkflowTaskExecutions: 2 }).maxConcurrentWorkflowTaskExecutions, 2);
  });
});
