/**
 * Capture: what a run had at each top-level step boundary, told to a replay
 * worker (worker/history.ts) through a sink. Rerun from a step and replay
 * read a run's state and start input this way, from its Temporal history
 * (the authority), by replaying that history through this interpreter.
 *
 * A sink call is not a command: capturing changes no history. It happens
 * only while a capture worker replays (its task queue starts with
 * CAPTURE_QUEUE_PREFIX), so live runs, and live workers replaying after a
 * cache eviction, pay nothing for it.
 */
import { proxySinks, workflowInfo, type Sinks } from '@temporalio/workflow';
import type { RunInput } from '../graph/wire';

/** The replay name of a capture worker: its task queue starts with it. */
export const CAPTURE_QUEUE_PREFIX = 'pinflow-capture';

/** What the run had when it reached a top-level step (before entering it). */
export interface BoundarySnapshot {
  /** The top-level step id about to run. */
  stepId: string;
  /** The run's step sequence number before the step. */
  seq: number;
  vars: Record<string, unknown>;
  steps: Record<string, unknown>;
}

export interface CaptureSinks extends Sinks {
  pinflowCapture: {
    /** The execution's start input, decoded. */
    started(run: RunInput): void;
    boundary(snapshot: BoundarySnapshot): void;
  };
}

const { pinflowCapture } = proxySinks<CaptureSinks>();

function capturing(): boolean {
  const info = workflowInfo();
  return info.unsafe.isReplaying && info.taskQueue.startsWith(CAPTURE_QUEUE_PREFIX);
}

/** Tell a capture worker the start input. */
export function captureStarted(run: RunInput): void {
  if (capturing()) pinflowCapture.started(run);
}

/**
 * Tell a capture worker the state before top-level step `stepId`. The
 * values are copied now: a sink call is delivered after the activation,
 * when the walk may have changed them.
 */
export function captureBoundary(stepId: string, seq: number, vars: Record<string, unknown>, steps: Record<string, unknown>): void {
  if (!capturing()) return;
  pinflowCapture.boundary(JSON.parse(JSON.stringify({ stepId, seq, vars, steps })) as BoundarySnapshot);
}
