import assert from 'node:assert/strict';
import { NativeConnection } from '@temporalio/worker';
import { createWorker } from '../worker/worker';
import { WORKER_TUNING_DEFAULTS, workerTuning } from '../worker/tuning';
import { noop } from '../bench/rpcs';
import { createEnv, temporalAddress, type Env } from './support/harness';

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

  /** What the SDK made of the options: the workflow-task slots and pollers it will use. */
  const compiled = async (tuning?: Parameters<typeof createWorker>[0]['tuning']) => {
    const w = await createWorker({ rpcs: [noop], store: env.store, connection: conn, namespace: env.namespace, ...(tuning ? { tuning } : {}) });
    const slots = w.options.tuner.workflowTaskSlotSupplier;
    const polls = w.options.workflowTaskPollerBehavior;
    return {
      maxConcurrentWorkflowTaskExecutions: slots.type === 'fixed-size' ? slots.numSlots : `not fixed: ${slots.type}`,
      maxConcurrentWorkflowTaskPolls: polls.type === 'simple-maximum' ? polls.maximum : `not simple: ${polls.type}`,
      maxCachedWorkflows: w.options.maxCachedWorkflows,
      shutdownGraceTimeMs: w.options.shutdownGraceTimeMs,
    };
  };

  it('a worker gets 10 workflow tasks in flight and 5 pollers, not the SDK default of 40 and 10', async () => {
    const o = await compiled();
    assert.equal(o.maxConcurrentWorkflowTaskExecutions, 10);
    assert.equal(o.maxConcurrentWorkflowTaskPolls, 5);
    assert.equal(o.shutdownGraceTimeMs, 10_000);
  });

  it('tuning overrides a default; the pollers follow the tasks in flight unless set', async () => {
    const o = await compiled({ maxConcurrentWorkflowTaskExecutions: 3, maxCachedWorkflows: 123 });
    assert.equal(o.maxConcurrentWorkflowTaskExecutions, 3);
    assert.equal(o.maxConcurrentWorkflowTaskPolls, 2);
    assert.equal(o.maxCachedWorkflows, 123);
    const p = await compiled({ maxConcurrentWorkflowTaskExecutions: 30, maxConcurrentWorkflowTaskPolls: 7 });
    assert.equal(p.maxConcurrentWorkflowTaskPolls, 7);
  });

  it('workerTuning derives the pollers: half the tasks, at least 2, at most the tasks', () => {
    assert.equal(workerTuning().maxConcurrentWorkflowTaskPolls, WORKER_TUNING_DEFAULTS.maxConcurrentWorkflowTaskPolls);
    assert.equal(workerTuning({ maxConcurrentWorkflowTaskExecutions: 2 }).maxConcurrentWorkflowTaskPolls, 2);
    assert.equal(workerTuning({ maxConcurrentWorkflowTaskExecutions: 21 }).maxConcurrentWorkflowTaskPolls, 10);
  });
});
