/**
 * The one signature every step handler has, and what it tells the walk.
 */
import type { Step, StepType } from '../../graph/schema';
import type { Frame, RunContext, StepAt } from '../context';

/** The step of one type: `StepOf<'rpc'>` is `RpcStep`. */
export type StepOf<T extends StepType> = Extract<Step, { type: T }>;

/**
 * What executing a step instance came to. A failure is not an outcome: the
 * handler throws a `StepFailure` (or lets a cancellation through), and the
 * walk routes it to `onError` or fails the (sub)graph.
 */
export type StepOutcome =
  /**
   * The step completed with `output`: the walk stores it in `steps.<id>` (and
   * `vars.<saveAs>`), records the step COMPLETED unless `record` is false
   * (the handler's activity already projected it), then runs `after` (if
   * any) and goes on at `next` (the end of the (sub)graph when undefined).
   */
  | { kind: 'next'; output: unknown; next: string | undefined; record?: false; after?: () => Promise<void> }
  /**
   * A branching step chose `next`: `steps.<id>` is `taken`, the record shows
   * `output`, and the (sub)graph's last output is left as it was.
   */
  | { kind: 'branch'; taken: unknown; output: unknown; next: string | undefined }
  /** A `return` step: the walk records the step COMPLETED with `value`, and the (sub)graph ends with it. */
  | { kind: 'return'; value: unknown };

/**
 * A step program: a generator that yields every promise the step waits on
 * and returns the step's outcome. The walk (`run-graph.ts`) is the only place
 * that awaits: it awaits each yielded promise and resumes the program with
 * the result (or throws the rejection into it).
 *
 * Why not an async function: an async handler adds one microtask between the
 * step's last await and the walk going on. Concurrent branches (forEach
 * lanes, parallel branches) interleave by microtasks, so one extra tick per
 * control step can reorder the commands two branches issue in one workflow
 * task, and a history recorded by an earlier release would replay with its
 * activities swapped between branches. Yielding keeps the schedule exactly
 * that of the inline interpreter every recorded history came from.
 */
export type StepProgram = Generator<unknown, StepOutcome, unknown>;

/** Executes one step instance of type T against the run context, in frame `frame`. */
export type StepHandler<T extends StepType> = (ctx: RunContext, step: StepOf<T>, frame: Frame, at: StepAt) => StepProgram;
