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
  | 'maxConcurrentWorkflowTaskPolls'
  | 'maxCachedWorkflows'
  | 'stickyQueueScheduleToStartTimeout'
  | 'identity'
  | 'shutdownGraceTime'
>;

/**
 * pinflow's defaults. `maxCachedWorkflows` is left to the SDK (sized from the
 * heap limit: about 2,300 runs at Node's default 4 GB heap); size it to the
 * memory you have (BENCHMARKS.md, "Memory").
 */
export const WORKER_TUNING_DEFAULTS = {
  /**
   * Workflow tasks in flight (SDK default 40). The workflow thread runs them
   * one at a time, so more in flight only makes each wait longer; 10 keeps a
   * task's wait at a few hundred ms even when every task is a cache miss,
   * far inside the 10 s workflow-task timeout.
   */
  maxConcurrentWorkflowTaskExecutions: 10,
  /** Half the tasks in flight, as the SDK's documentation advises (its default would be 10). */
  maxConcurrentWorkflowTaskPolls: 5,
  shutdownGraceTime: '10s',
} as const satisfies WorkerTuning;

/**
 * The options a worker gets: the defaults, then `overrides`. When only the
 * tasks in flight are overridden, the pollers follow (half of them, at least
 * 2, as the SDK requires; never more than the tasks in flight).
 */
export function workerTuning(overrides: WorkerTuning = {}): WorkerTuning {
  const tasks = overrides.maxConcurrentWorkflowTaskExecutions ?? WORKER_TUNING_DEFAULTS.maxConcurrentWorkflowTaskExecutions;
  const polls = overrides.maxConcurrentWorkflowTaskPolls ?? Math.min(tasks, Math.max(2, Math.floor(tasks / 2)));
  return { ...WORKER_TUNING_DEFAULTS, ...overrides, maxConcurrentWorkflowTaskPolls: polls };
}
