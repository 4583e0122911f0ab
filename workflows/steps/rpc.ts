/**
 * The rpc step: one activity that checks the live contract against the
 * pinned one and calls the handler, with the pending trail riding along. A
 * contract the live deployment cannot serve stalls the run until an operator
 * decides (FLAGS.STALL_ON_CONTRACT_MISMATCH).
 */
import { ActivityFailure, ApplicationFailure, isCancellation } from '@temporalio/workflow';
import { FAILURE_TYPES } from '../../graph/errors';
import type { ErrorInfo, StallDecision, StallReason } from '../../graph/wire';
import { StepFailure, type Frame, type RunContext, type StepAt } from '../context';
import { FLAGS } from '../flags';
import { rpcActivity } from '../proxies';
import { rpcSummary } from '../story';
import type { StepHandler, StepOf, StepOutcome, StepProgram } from './types';

/** The ErrorInfo an activity failure carries (its first detail), placed on the step. */
export function errorFromActivity(err: ActivityFailure, stepId: string, stepInstance: string): ErrorInfo {
  const cause = err.cause;
  if (cause instanceof ApplicationFailure) {
    // The RPC activity attaches its ErrorInfo (with attempt and details) as the first detail.
    const info = cause.details?.[0] as Partial<ErrorInfo> | undefined;
    if (info && typeof info === 'object' && typeof info.type === 'string' && typeof info.message === 'string') {
      return { ...(info as ErrorInfo), stepId, stepInstance };
    }
    return { type: cause.type ?? FAILURE_TYPES.RPC_HANDLER_ERROR, message: cause.message, stepId, stepInstance };
  }
  return { type: cause?.name ?? 'ActivityFailure', message: cause?.message ?? err.message, stepId, stepInstance };
}

/**
 * The rpc step's program: it yields the input evaluation, the activity and a
 * stall's decision, and the activity projects the step itself, so the walk
 * does not record it.
 */
function* rpcProgram(ctx: RunContext, step: StepOf<'rpc'>, f: Frame, at: StepAt): StepProgram {
  const run = ctx.run;
  const instance = at.instance;
  const input: unknown = step.input === undefined ? {} : yield ctx.evaluateMapping(step.input, ctx.scope(f), { stepId: step.id, field: 'input' }, { stored: true });
  const key: unknown = step.idempotencyKey ? yield ctx.evaluate(step.idempotencyKey, ctx.scope(f), { stepId: step.id, field: 'idempotencyKey' }, { stored: true }) : undefined;
  const contract = run.contracts[step.rpc];
  for (let dispatch = ctx.nextDispatch.get(instance) ?? 1; ; dispatch++) {
    const pending = ctx.takeTrail();
    try {
      const output: unknown = yield rpcActivity(contract, step, rpcSummary(instance, step.rpc, dispatch))({
        runId: run.runId,
        tenant: run.tenant,
        rpc: step.rpc,
        stepId: step.id,
        stepInstance: instance,
        seq: at.seq,
        input,
        pinnedContractHash: contract?.hash ?? '',
        trail: pending,
        version: run.version,
        ...(dispatch > 1 ? { dispatch } : {}),
        ...(key !== undefined && key !== null ? { idempotencyKey: typeof key === 'string' ? key : JSON.stringify(key) } : {}),
      });
      return { kind: 'next', output, next: step.next, record: false };
    } catch (err) {
      // Re-queue what this activity carried: upserts are idempotent, so projecting twice is harmless.
      ctx.requeueTrail(pending);
      if (isCancellation(err)) {
        ctx.pushRecord({ stepInstance: instance, attempt: 1, dispatch, stepId: step.id, stepType: 'rpc', seq: at.seq, status: 'CANCELLED', startedAt: ctx.now(), finishedAt: ctx.now() });
        throw err;
      }
      if (!(err instanceof ActivityFailure)) throw err;
      const info = errorFromActivity(err, step.id, instance);
      if (info.type === FAILURE_TYPES.RPC_STALL && ctx.flag(FLAGS.STALL_ON_CONTRACT_MISMATCH)) {
        const d = (info.details ?? {}) as { reason?: StallReason; detail?: unknown };
        const decision = (yield ctx.stallFor({
          id: `${instance}/${dispatch}`,
          reason: d.reason ?? 'rpc_missing',
          rpc: step.rpc,
          stepId: step.id,
          stepInstance: instance,
          message: info.message,
          ...(d.detail !== undefined ? { details: d.detail } : {}),
          since: ctx.now(),
        })) as StallDecision;
        const action = decision.action;
        switch (action) {
          case 'retry':
            continue; // dispatch the step again against the live deployment
          case 'skip':
            ctx.pushRecord({
              stepInstance: instance,
              attempt: 1,
              dispatch: dispatch + 1,
              stepId: step.id,
              stepType: 'rpc',
              seq: at.seq,
              status: 'COMPLETED',
              startedAt: ctx.now(),
              finishedAt: ctx.now(),
              output: decision.output,
              notes: [{ kind: 'skipped', by: decision.by, ...(decision.reason ? { reason: decision.reason } : {}) }],
            });
            return { kind: 'next', output: decision.output, next: step.next, record: false };
          default: {
            const never: never = action;
            throw new Error(`unhandled stall decision ${JSON.stringify(never)}`);
          }
        }
      }
      throw new StepFailure(info);
    }
  }
}

/**
 * Run a step program as the async function it was before FLAGS.DIRECT_RPC_STEP:
 * one await per yield, and one promise for the whole, which the walk awaits.
 * The walk (run-graph.ts) drives programs the same way, inline: an async
 * helper there would add a promise to every step.
 */
async function asAsync(program: StepProgram): Promise<StepOutcome> {
  let next = program.next();
  while (!next.done) {
    let failed = false;
    let value: unknown;
    try {
      value = await next.value;
    } catch (err) {
      failed = true;
      value = err;
    }
    next = failed ? program.throw(value) : program.next(value);
  }
  return next.value;
}

export const rpcStep: StepHandler<'rpc'> = function* (ctx, step, f, at) {
  // FLAGS.DIRECT_RPC_STEP: the walk awaits what the step yields; before it, the step's own async function.
  if (ctx.directRpc) return yield* rpcProgram(ctx, step, f, at);
  return (yield asAsync(rpcProgram(ctx, step, f, at))) as StepOutcome;
};
