/**
 * Run limits: the deterministic evaluation budget of every expression and
 * the largest forEach. They are counted in evaluation steps, items and
 * characters, never in time, so a replay reaches the same verdict on any
 * machine. A run carries the limits it started with in its own start input
 * (`RunInput.limits`, set by the client and kept across continue-as-new), so
 * changing a deployment's settings never changes what a running run decides;
 * a run started before 0.6.0 has none and uses {@link DEFAULT_RUN_LIMITS}.
 *
 * The process-wide setting ({@link configureRunLimits}) is for the client and
 * the API (publish, correlation rules, the limits stamped on new runs).
 * Workflow code never reads it: it reads `RunInput.limits`.
 *
 * Pure: importable by the workflow bundle.
 */

/** What one expression evaluation may spend. */
export interface ExpressionBudget {
  /** Evaluation steps: syntax-tree nodes visited, each function-body node of each call included. */
  maxSteps: number;
  /** Nesting of evaluation (recursion): one user-function call is about five levels. */
  maxDepth: number;
  /** Items in one sequence or array built during the evaluation. */
  maxItems: number;
  /** Longest string built during the evaluation, in UTF-16 units. */
  maxStringLength: number;
  /** Longest string a regular expression may run on (`$match`, `$replace`, `$split`, `$contains`), in UTF-16 units. */
  maxRegexInput: number;
}

export interface RunLimits {
  expression: ExpressionBudget;
  /** Most items a forEach step accepts, checked before its first item (since FLAGS.FOREACH_LIMIT). */
  maxForEachItems: number;
}

/**
 * The defaults. maxSteps: inside the workflow sandbox one evaluation step
 * costs about 140 µs on the busy 2-core test machine (measured: 10,000 steps
 * took a 1.47 s workflow task, 20,000 steps 2.89 s; the sandbox records a
 * stack trace for every promise, and JSONata makes several per step; plain
 * Node is about 20 times faster). 5,000 steps stay under a second there, far
 * below the SDK's 5 s workflow-task deadline, and cover real expressions (a
 * mapping over a 1,000-item array takes about 3,000 steps). maxForEachItems:
 * 1,000 items with one RPC each add about 3,000 history events, below the
 * 10,240-event warning, and a small control-only body stays within one
 * workflow task.
 */
export const DEFAULT_RUN_LIMITS: Readonly<RunLimits> = Object.freeze({
  expression: Object.freeze({
    maxSteps: 5_000,
    maxDepth: 1_000,
    maxItems: 200_000,
    maxStringLength: 1_048_576,
    maxRegexInput: 10_000,
  }),
  maxForEachItems: 1_000,
});

/** The most a deployment may configure; above these one evaluation or loop could reach the workflow-task deadline. */
export const RUN_LIMIT_CAPS: Readonly<{ maxSteps: number; maxForEachItems: number }> = Object.freeze({
  maxSteps: 20_000,
  maxForEachItems: 2_000,
});

let processLimits: RunLimits = DEFAULT_RUN_LIMITS;

/**
 * Set this process's limits (the API and the library: publish checks,
 * correlation rules, and the limits new runs are started with). Values above
 * {@link RUN_LIMIT_CAPS} are refused by app/config.ts before they get here.
 */
export function configureRunLimits(settings: { maxSteps?: number; maxForEachItems?: number }): RunLimits {
  processLimits = Object.freeze({
    expression: Object.freeze({ ...DEFAULT_RUN_LIMITS.expression, ...(settings.maxSteps !== undefined ? { maxSteps: settings.maxSteps } : {}) }),
    maxForEachItems: settings.maxForEachItems ?? DEFAULT_RUN_LIMITS.maxForEachItems,
  });
  return processLimits;
}

/** This process's limits (never called by workflow code: a run uses the limits in its start input). */
export function currentRunLimits(): RunLimits {
  return processLimits;
}
