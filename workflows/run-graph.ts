/**
 * The walk: run one (sub)graph from its entry, one step instance at a time,
 * dispatching each step through the handler table. At each top-level step
 * boundary a pending migration, a pause (held until resumed) or
 * continue-as-new takes over
 * (workflows/migration.ts). A step failure goes to the step's `onError`, or
 * fails the (sub)graph.
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import { FAILURE_TYPES } from '../graph/errors';
import { EXPRESSION_ERROR_CODES, ExpressionError, isThenable } from '../graph/expression';
import { setMember } from '../graph/expression-size';
import type { Step, Subgraph } from '../graph/schema';
import { ContinueNow, MigrateNow, StepFailure, type Frame, type RunContext } from './context';
import { captureBoundary } from './capture';
import { continueAsNewDue, migrateAtBoundary } from './migration';
import { STEP_HANDLERS } from './steps';
import { errorFromActivity } from './steps/rpc';
import type { StepHandler } from './steps/types';

/** The failure type of an expression error: the guards of FLAGS.EXPRESSION_GUARDS have their own. */
function failureTypeOf(err: ExpressionError): string {
  switch (err.jsonataCode) {
    case EXPRESSION_ERROR_CODES.EXPRESSION_BUDGET_EXCEEDED:
      return FAILURE_TYPES.EXPRESSION_BUDGET_EXCEEDED;
    case EXPRESSION_ERROR_CODES.VALUE_NOT_STORABLE:
      return FAILURE_TYPES.VALUE_NOT_STORABLE;
    default:
      return FAILURE_TYPES.EXPRESSION_ERROR;
  }
}

/** Walk one (sub)graph from its entry. Returns its `return` output, else the last step's output. */
export async function runSubgraph(ctx: RunContext, graph: Subgraph, f: Frame): Promise<{ value: unknown; returned: boolean }> {
  const run = ctx.run;
  const topLevel = graph === run.graph;
  const byId = new Map<string, Step>(graph.steps.map((s) => [s.id, s]));
  let cursor: string | undefined = topLevel && run.resume ? run.resume.at : graph.entry;
  let last: unknown = null;
  while (cursor !== undefined) {
    if (topLevel && ctx.boundaryRequest && !ctx.boundaryOutcome) {
      const boundary = migrateAtBoundary(ctx, cursor);
      await boundary.settled;
      if (boundary.migrate) throw new MigrateNow();
    }
    // FLAGS.PAUSE: a pending pause holds here, at a top-level boundary (a step
    // inside a forEach or parallel finishes its top-level step first). Only
    // awaited when a pause is pending, so no other run's schedule changes.
    if (topLevel && ctx.pausing) await ctx.holdIfPaused(cursor);
    // Long runs: at a top-level boundary (nothing else in flight, no open stall),
    // continue as new when Temporal suggests it, carrying the state.
    if (topLevel && continueAsNewDue(ctx)) throw new ContinueNow(cursor);
    const step = byId.get(cursor);
    if (!step) {
      // Publish validation makes this unreachable; fail loudly rather than guess.
      throw new StepFailure({ type: 'GraphCorrupt', message: `step ${JSON.stringify(cursor)} is not in the pinned graph`, stepId: cursor });
    }
    // Rerun and replay read this from history by replaying it (capture.ts); nothing for live runs.
    if (topLevel) captureBoundary(step.id, ctx.seq, f.vars, f.steps);
    const at = ctx.enterStep(step.id, f);
    ctx.stepTypes.set(at.instance, step.type);
    if (topLevel) ctx.topLevelStep(step, at);
    try {
      // The table is exhaustive per type; the cast only joins the union back up.
      const handler = STEP_HANDLERS[step.type] as StepHandler<Step['type']> | undefined;
      // Publish validation makes an unknown type unreachable.
      if (!handler) throw new StepFailure({ type: 'GraphCorrupt', message: `unknown step type ${(step as { type: string }).type}` });
      // The handler yields what it waits on; awaiting here, and only here, keeps
      // the microtask schedule of the inline interpreter (see StepProgram).
      const program = handler(ctx, step as never, f, at);
      let next = program.next();
      while (!next.done) {
        let value: unknown;
        try {
          // FLAGS.SYNC_EXPRESSIONS: an expression's value evaluated synchronously goes straight back in.
          const yielded = next.value;
          value = ctx.syncExpressions && !isThenable(yielded) ? yielded : await yielded;
        } catch (err) {
          next = program.throw(err);
          continue;
        }
        next = program.next(value);
      }
      const outcome = next.value;
      switch (outcome.kind) {
        case 'next':
          setMember(f.steps, step.id, outcome.output);
          if ('saveAs' in step && step.saveAs) setMember(f.vars, step.saveAs, outcome.output);
          if (outcome.record !== false) ctx.record(step, at, { status: 'COMPLETED', output: outcome.output });
          last = outcome.output;
          cursor = outcome.next;
          if (outcome.after) await outcome.after();
          break;
        case 'branch':
          setMember(f.steps, step.id, outcome.taken);
          ctx.record(step, at, { status: 'COMPLETED', output: outcome.output });
          cursor = outcome.next;
          break;
        case 'return':
          ctx.record(step, at, { status: 'COMPLETED', output: outcome.value });
          ctx.completeStep(at.instance);
          return { value: outcome.value, returned: true };
        default: {
          const never: never = outcome;
          throw new Error(`unknown step outcome ${JSON.stringify(never)}`);
        }
      }
    } catch (err) {
      let failure: StepFailure | undefined;
      if (err instanceof MigrateNow || err instanceof ContinueNow) throw err;
      if (err instanceof StepFailure) failure = err;
      else if (err instanceof ExpressionError) {
        failure = new StepFailure({ type: failureTypeOf(err), message: err.message, stepId: step.id, stepInstance: at.instance, details: err.toJSON() });
      } else if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === FAILURE_TYPES.PROJECTION_WRITE_REJECTED) {
        // A projection or wait activity of this step hit a permanent database error
        // (it fails once, non-retryably): the step fails with it, catchable by onError.
        // No earlier history has such a failure (these activities retried forever).
        failure = new StepFailure(errorFromActivity(err, step.id, at.instance));
      }
      ctx.leaveStep(at.instance);
      if (!failure) throw err; // cancellation and internal errors are never caught
      if (step.type !== 'rpc' && step.type !== 'fail') ctx.record(step, at, { status: 'FAILED', error: failure.info });
      if (step.type !== 'fail' && step.onError) {
        // Route to the handler with the error in scope.
        f.error = failure.info;
        setMember(f.steps, step.id, null);
        cursor = step.onError;
        continue;
      }
      throw failure;
    }
    ctx.completeStep(at.instance);
  }
  return { value: last, returned: false };
}
