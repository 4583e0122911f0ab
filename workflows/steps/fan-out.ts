/**
 * Fan-out steps: forEach (a body per item, in lanes) and parallel (named
 * branches). Each iteration and branch walks its subgraph in its own frame.
 */
import { CancellationScope, isCancellation } from '@temporalio/workflow';
import { FAILURE_TYPES } from '../../graph/errors';
import { isThenable } from '../../graph/expression';
import type { ErrorInfo } from '../../graph/wire';
import { StepFailure, type Frame, type RunContext, type StepAt } from '../context';
import { FLAGS } from '../flags';
import { runSubgraph } from '../run-graph';
import type { StepHandler, StepOf, StepOutcome } from './types';

async function runForEach(ctx: RunContext, step: StepOf<'forEach'>, f: Frame, at: StepAt): Promise<StepOutcome> {
  // FLAGS.SYNC_EXPRESSIONS: a value evaluated synchronously is used as it is, not awaited.
  const rawNow = ctx.evaluate(step.items, ctx.scope(f), { stepId: step.id, field: 'items' });
  const raw = isThenable(rawNow) ? await rawNow : rawNow;
  const items = raw === null ? [] : raw;
  if (!Array.isArray(items)) {
    throw new StepFailure({
      type: FAILURE_TYPES.FOREACH_ITEMS_NOT_ARRAY,
      message: `step "${step.id}": "items" evaluated to ${typeof items}, not an array`,
      stepId: step.id,
      stepInstance: at.instance,
    });
  }
  // Checked before the first item: a loop runs in workflow tasks and history
  // that one run shares, so it is bounded up front rather than cut midway.
  const limit = ctx.limits.maxForEachItems;
  if (items.length > limit && ctx.flag(FLAGS.FOREACH_LIMIT)) {
    throw new StepFailure({
      type: FAILURE_TYPES.FOREACH_TOO_MANY_ITEMS,
      message: `step "${step.id}": "items" has ${items.length} items; allowed: at most ${limit} (this run's maxForEachItems); split the work across child runs or batches`,
      stepId: step.id,
      stepInstance: at.instance,
      details: { field: 'items', received: items.length, allowed: limit },
    });
  }
  const results: unknown[] = items.map(() => null);
  const errors: Array<{ index: number; error: ErrorInfo }> = [];
  let firstFailure: StepFailure | undefined;
  let nextIndex = 0;
  const lane = async (): Promise<void> => {
    while (nextIndex < items.length && !firstFailure) {
      const i = nextIndex++;
      const frame: Frame = { vars: { ...f.vars }, steps: { ...f.steps }, suffix: `${f.suffix}[${i}]`, item: items[i], index: i };
      try {
        results[i] = (await runSubgraph(ctx, step.body, frame)).value;
      } catch (err) {
        if (!(err instanceof StepFailure)) throw err;
        if (step.onItemError === 'continue') errors.push({ index: i, error: err.info });
        else firstFailure ??= err;
      }
    }
  };
  const lanes = Math.max(1, Math.min(step.concurrency ?? 1, items.length));
  await Promise.all(Array.from({ length: lanes }, lane));
  if (firstFailure) {
    throw new StepFailure({
      type: FAILURE_TYPES.ITEM_FAILED,
      message: `step "${step.id}": item failed: ${firstFailure.info.message}`,
      stepId: step.id,
      stepInstance: at.instance,
      details: firstFailure.info,
    });
  }
  errors.sort((a, b) => a.index - b.index);
  return { kind: 'next', output: { results, errors }, next: step.next };
}

export const forEachStep: StepHandler<'forEach'> = function* (ctx, step, f, at) {
  return (yield runForEach(ctx, step, f, at)) as StepOutcome;
};

async function runParallel(ctx: RunContext, step: StepOf<'parallel'>, f: Frame, at: StepAt): Promise<StepOutcome> {
  const names = Object.keys(step.branches).sort();
  const results: Record<string, unknown> = {};
  const failures: Array<{ branch: string; error: ErrorInfo }> = [];
  const runBranch = async (name: string) => {
    try {
      results[name] = (await runSubgraph(ctx, step.branches[name]!, { vars: { ...f.vars }, steps: { ...f.steps }, suffix: f.suffix })).value;
    } catch (err) {
      if (err instanceof StepFailure) failures.push({ branch: name, error: err.info });
      throw err;
    }
  };
  if (step.mode === 'failFast') {
    // The first failing branch cancels its siblings. allSettled: wait until
    // the cancelled siblings have settled (and recorded themselves CANCELLED)
    // before the step fails with that branch's error.
    const branchScope = new CancellationScope();
    const settled = await branchScope.run(() =>
      Promise.allSettled(
        names.map((n) =>
          runBranch(n).catch((err: unknown) => {
            if (err instanceof StepFailure) branchScope.cancel();
            throw err;
          }),
        ),
      ),
    );
    const other = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected' && !(r.reason instanceof StepFailure));
    // A cancellation from outside, or an internal error, wins over branch failures.
    if (other && (!failures.length || !isCancellation(other.reason))) throw other.reason;
  } else {
    const settled = await Promise.allSettled(names.map(runBranch));
    const internal = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected' && !(r.reason instanceof StepFailure));
    if (internal) throw internal.reason;
  }
  if (failures.length) {
    const first = failures[0]!;
    throw new StepFailure({
      type: FAILURE_TYPES.BRANCH_FAILED,
      message: `step "${step.id}": branch "${first.branch}" failed: ${first.error.message}`,
      stepId: step.id,
      stepInstance: at.instance,
      details: { failures },
    });
  }
  return { kind: 'next', output: results, next: step.next };
}

export const parallelStep: StepHandler<'parallel'> = function* (ctx, step, f, at) {
  return (yield runParallel(ctx, step, f, at)) as StepOutcome;
};
