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
 *
 * The projection's rebuild (client/projection-rebuild.ts) also captures every
 * activity call the interpreter makes, with its arguments, in call order: the
 * run-level projection writes are often local activities, whose arguments no
 * history event holds.
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

/** One activity call of the interpreter, as it was made (local or not). */
export interface CapturedActivity {
  /** The activity's name, e.g. `invokeRpc`, `projectRunClosed`, `openWait`. */
  type: string;
  args: unknown[];
}

export interface CaptureSinks extends Sinks {
  pinflowCapture: {
    /** The execution's start input, decoded. */
    started(run: RunInput): void;
    boundary(snapshot: BoundarySnapshot): void;
    /** An activity call, in call order (commands are emitted in this order). */
    activity(call: CapturedActivity): void;
  };
}

const { pinflowCapture } = proxySinks<CaptureSinks>();

function capturing(): boolean {
  const info = workflowInfo();
  return info.taskQueue.startsWith(CAPTURE_QUEUE_PREFIX) && info.unsafe.isReplaying;
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

/** Tell a capture worker an activity call (its arguments copied now, as for a boundary). */
export function captureActivity(type: string, args: unknown[]): void {
  if (!capturing()) return;
  pinflowCapture.activity({ type, args: JSON.parse(JSON.stringify(args)) as unknown[] });
}

/**
 * `acts` with each call told to a capture worker first. A call adds the same
 * command as before (the wrapped proxy's), so histories replay unchanged.
 */
export function capturingCalls<T extends object>(acts: T): T {
  return new Proxy(acts, {
    get(target, prop, receiver) {
      const fn = Reflect.get(target, prop, receiver) as unknown;
      if (typeof fn !== 'function' || typeof prop !== 'string') return fn;
      return (...args: unknown[]) => {
        captureActivity(prop, args);
        return (fn as (...a: unknown[]) => unknown)(...args);
      };
    },
  });
}
