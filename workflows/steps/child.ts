/**
 * The child step: a child run of the same workflow type, pinned to the
 * version the resolveChildVersion activity returned (so it is in history).
 */
import { ApplicationFailure, ChildWorkflowFailure, executeChild, isCancellation, ParentClosePolicy } from '@temporalio/workflow';
import { FAILURE_TYPES } from '../../graph/errors';
import { isThenable } from '../../graph/expression';
import { SA } from '../../graph/search-attributes';
import { TASK_QUEUE, WORKFLOW_TYPE } from '../../graph/terminology';
import type { ErrorInfo, RunInput } from '../../graph/wire';
import { StepFailure, type Frame, type RunContext, type StepAt } from '../context';
import { projectionWith } from '../proxies';
import type { StepHandler, StepOf, StepOutcome } from './types';

async function runChild(ctx: RunContext, step: StepOf<'child'>, f: Frame, at: StepAt): Promise<StepOutcome> {
  const run = ctx.run;
  const instance = at.instance;
  // FLAGS.SYNC_EXPRESSIONS: a value evaluated synchronously is used as it is, not awaited.
  const inputNow = step.input === undefined ? {} : ctx.evaluateMapping(step.input, ctx.scope(f), { stepId: step.id, field: 'input' }, { stored: true });
  const input = isThenable(inputNow) ? await inputNow : inputNow;
  const target = await projectionWith(`child ${at.instance} · ${step.definition}`).resolveChildVersion({ definition: step.definition, version: step.version === 'latest' ? undefined : step.version });
  const childRunId = `${run.runId}:${instance.replace(/\[/g, '.').replace(/\]/g, '').replace(/#/g, ':')}`;
  try {
    const output = await executeChild(WORKFLOW_TYPE, {
      workflowId: childRunId,
      taskQueue: TASK_QUEUE,
      args: [
        {
          runId: childRunId,
          definition: step.definition,
          version: target.version,
          graph: target.graph,
          contracts: target.contracts,
          input,
          tenant: run.tenant,
          metadata: { ...run.metadata, parentRunId: run.runId, parentStep: instance },
          parent: { runId: run.runId, stepInstance: instance },
          // A child inherits its parent's limits (runs from before 0.6.0 have none to pass).
          ...(run.limits ? { limits: run.limits } : {}),
        } satisfies RunInput,
      ],
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      typedSearchAttributes: [
        { key: SA.definition, value: step.definition },
        { key: SA.version, value: target.version },
        { key: SA.tenant, value: run.tenant },
      ],
      memo: { definition: step.definition, version: target.version, versionSeq: target.seq, tenant: run.tenant, parentRunId: run.runId },
      staticSummary: `${step.definition} v${target.seq} (${target.version.slice(0, 12)}), child of ${run.runId}`,
    });
    return { kind: 'next', output, next: step.next };
  } catch (err) {
    if (err instanceof ChildWorkflowFailure && !isCancellation(err)) {
      const cause = err.cause instanceof ApplicationFailure ? err.cause : undefined;
      const childError = cause?.details?.[0] as ErrorInfo | undefined;
      throw new StepFailure({
        type: FAILURE_TYPES.CHILD_FAILED,
        message: `step "${step.id}": child run ${childRunId} failed: ${cause?.message ?? err.message}`,
        stepId: step.id,
        stepInstance: instance,
        details: { childRunId, error: childError ?? { type: cause?.type ?? 'ChildFailed', message: cause?.message ?? err.message } },
      });
    }
    throw err;
  }
}

export const childStep: StepHandler<'child'> = function* (ctx, step, f, at) {
  return (yield runChild(ctx, step, f, at)) as StepOutcome;
};
