/**
 * The worker's tuning defaults: what `createWorker` passes to Temporal's
 * `Worker.create` unless `tuning` overrides it, and what the benchmark's
 * workers use too (bench/run.ts), so the benchmark measures these settings.
 *
 * Why these values (BENCHMARKS.md, "Events burst"): the SDK's default of 40
 * workflow tasks in flight shares the one workflow thread. When an event burst
 * resumes more runs than the cache holds, most tasks are cache misses (a new
 * workflow context, the whole history fetched and replayed); 40 of those in
 * flight made each wait 7 to 10.7 s on a 2-core machine, past the 10 s
 * workflow-task timeout, so the server timed them out and the work was redone:
 * a feedback loop. With few tasks in flight, a task's time on the worker stays
 * a few of its own costs, and the rest of the burst waits in the server's
 * queue, where waiting costs nothing.
 */
import type { WorkerOptions } from '@temporalio/worker';

/** The options `createWorker({ tuning })` accepts. */
export type WorkerTuning = Pick<
  WorkerOptions,
  | 'maxConcurrentActivityTaskExecutions'
  | 'maxConcurrentWorkflowTaskExecutions'
  | 'workflowTaskPollerBehavior'
  | 'maxCachedWorkflows'
  | 'stickyQueueScheduleToStartTimeout'
  | 'identity'
  | 'shutdownGraceTime'
>;

/**
 * pinflow's defaults. The workflow-task pollers stay the SDK's (at most
 * min(10, tasks in flight), `workflowTaskPollerBehavior`): SDK 1.24 ignores
 * `maxConcurrentWorkflowTaskPolls`. `maxCachedWorkflows` is left to the SDK
 * (sized from the heap limit: about 2,300 runs at Node's default 4 GB heap);
 * size it to the memory you have (BENCHMARKS.md, "Memory").
 */
export const WORKER_TUNING_DEFAULTS = {
  /**
   * Workflow tasks in flight (SDK default 40). The workflow thread runs them
   * one at a time, so more in flight only makes each wait longer; with 10, an
   * event burst over more runs than the cache holds ran with no task over 5 s
   * (40: tasks of 5 to 10.7 s, near and past the 10 s workflow-task timeout).
   */
  maxConcurrentWorkflowTaskExecutions: 10,
  shutdownGraceTime: '10s',
} as const satisfies WorkerTuning;

/** The options a worker gets: the defaults, then `overrides`. */
export function workerTuning(overrides: WorkerTuning = {}): WorkerTuning {
  return { ...WORKER_TUNING_DEFAULTS, ...overrides };
}
