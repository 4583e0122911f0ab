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

/** Executes one step instance of type T against the run context, in frame `frame`. */
export type StepHandler<T extends StepType> = (ctx: RunContext, step: StepOf<T>, frame: Frame, at: StepAt) => Promise<StepOutcome>;
