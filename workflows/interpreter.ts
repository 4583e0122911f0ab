/**
 * The one interpreter workflow. It walks the graph pinned in its own start
 * input (so the graph lives in the run's history) and never reads a database
 * to decide anything. Control steps (assign, if, return, fail) are pure
 * workflow code and add no Temporal events; their projection records ride
 * along with the next activity. An `rpc` step is one activity.
 *
 * Determinism: no Node APIs, no I/O. Any change to the command sequence this
 * produces for an existing history must be gated with `patched()` and pass the
 * replay corpus in test/histories.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { FAILURE_TYPES } from '../graph/errors';
import { evaluateExpression, evaluateMapping, ExpressionError, isTruthy, type ExpressionScope } from '../graph/expression';
import type { PinnedContract, Step } from '../graph/schema';
import { stateQuery } from './definitions';
import type { ErrorInfo, InterpreterState, RunInput, StepRecord } from './types';

/**
 * Projection activities are idempotent upserts, so Temporal may retry them
 * without limit: a database blip delays the run instead of failing it.
 */
const projection = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

/** Failure types the RPC activity raises that retrying cannot fix. */
const NEVER_RETRY = [FAILURE_TYPES.RPC_MISSING, FAILURE_TYPES.RPC_INPUT_INVALID, FAILURE_TYPES.RPC_OUTPUT_INVALID];

function rpcActivity(contract: PinnedContract | undefined): Activities['invokeRpc'] {
  const r = contract?.retry ?? {};
  return proxyActivities<Activities>({
    startToCloseTimeout: contract?.timeoutMs ?? 30_000,
    retry: {
      maximumAttempts: r.maximumAttempts ?? 5,
      initialInterval: r.initialIntervalMs ?? 1_000,
      backoffCoefficient: r.backoffCoefficient ?? 2,
      maximumInterval: r.maximumIntervalMs ?? 60_000,
      nonRetryableErrorTypes: [...NEVER_RETRY, ...(r.nonRetryableErrorTypes ?? [])],
    },
  }).invokeRpc;
}

/** Raised inside the interpreter to end the run as FAILED with a typed error. */
class RunFailure extends Error {
  constructor(readonly info: ErrorInfo) {
    super(info.message);
  }
}

function errorFromActivity(err: ActivityFailure, stepId: string, stepInstance: string): ErrorInfo {
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

export async function pinflowInterpreter(run: RunInput): Promise<unknown> {
  const info = workflowInfo();
  const state: InterpreterState = { status: 'RUNNING', cursor: null, completed: [], vars: {}, steps: {} };
  setHandler(stateQuery, () => state);

  const byId = new Map<string, Step>(run.graph.steps.map((s) => [s.id, s]));
  const occurrences = new Map<string, number>();
  let seq = 0;
  /** Control-step records waiting for the next activity to project them. */
  let trail: StepRecord[] = [];

  const scope = (): ExpressionScope => ({
    input: run.input,
    steps: state.steps,
    vars: state.vars,
    run: { runId: run.runId, tenant: run.tenant, version: run.version, definition: run.definition, startedAt: info.startTime.toISOString() },
  });
  const now = () => new Date().toISOString();

  await projection.projectRunStarted({
    runId: run.runId,
    temporalRunId: info.runId,
    definition: run.definition,
    version: run.version,
    tenant: run.tenant,
    input: run.input,
    metadata: run.metadata,
    startedAt: info.startTime.toISOString(),
  });

  const close = async (status: 'COMPLETED' | 'FAILED' | 'CANCELLED', fields: { output?: unknown; error?: ErrorInfo }) => {
    state.status = status;
    state.cursor = null;
    if (fields.output !== undefined) state.output = fields.output;
    if (fields.error) state.error = fields.error;
    const pending = trail;
    trail = [];
    await projection.projectRunClosed({ runId: run.runId, status, ...fields, closedAt: now(), trail: pending });
  };

  let cursor: string | undefined = run.graph.entry;
  let output: unknown = null;
  try {
    while (cursor !== undefined) {
      const step = byId.get(cursor);
      if (!step) {
        // Publish validation makes this unreachable; fail loudly rather than guess.
        throw new RunFailure({ type: 'GraphCorrupt', message: `step ${JSON.stringify(cursor)} is not in the pinned graph`, stepId: cursor });
      }
      const n = (occurrences.get(step.id) ?? 0) + 1;
      occurrences.set(step.id, n);
      const instance = n === 1 ? step.id : `${step.id}#${n}`;
      const stepSeq = ++seq;
      const startedAt = now();
      state.cursor = instance;

      const record = (fields: Partial<StepRecord> & Pick<StepRecord, 'status'>) =>
        trail.push({ stepInstance: instance, attempt: 1, stepId: step.id, stepType: step.type, seq: stepSeq, startedAt, finishedAt: now(), ...fields });

      try {
        switch (step.type) {
          case 'assign': {
            const base = scope();
            const values: Record<string, unknown> = {};
            for (const name of Object.keys(step.set).sort()) {
              values[name] = await evaluateMapping(step.set[name], base, { stepId: step.id, field: `set.${name}` });
            }
            Object.assign(state.vars, values);
            state.steps[step.id] = values;
            record({ status: 'COMPLETED', output: values });
            cursor = step.next;
            break;
          }
          case 'if': {
            const value = await evaluateExpression(step.condition, scope(), { stepId: step.id, field: 'condition' });
            const branch = isTruthy(value) ? 'then' : 'else';
            state.steps[step.id] = { branch };
            record({ status: 'COMPLETED', output: { branch, value } });
            cursor = branch === 'then' ? step.then : step.else;
            break;
          }
          case 'return': {
            output = await evaluateMapping(step.output, scope(), { stepId: step.id, field: 'output' });
            record({ status: 'COMPLETED', output });
            cursor = undefined;
            break;
          }
          case 'fail': {
            const message = await evaluateExpression(step.message, scope(), { stepId: step.id, field: 'message' });
            const error: ErrorInfo = {
              type: step.code,
              message: typeof message === 'string' ? message : JSON.stringify(message),
              stepId: step.id,
              stepInstance: instance,
            };
            record({ status: 'FAILED', error });
            throw new RunFailure(error);
          }
          case 'rpc': {
            const input = step.input === undefined ? {} : await evaluateMapping(step.input, scope(), { stepId: step.id, field: 'input' });
            const contract = run.contracts[step.rpc];
            const pending = trail;
            let result: unknown;
            try {
              result = await rpcActivity(contract)({
                runId: run.runId,
                tenant: run.tenant,
                rpc: step.rpc,
                stepId: step.id,
                stepInstance: instance,
                seq: stepSeq,
                input,
                pinnedContractHash: contract?.hash ?? '',
                trail: pending,
              });
            } catch (err) {
              if (err instanceof ActivityFailure && !isCancellation(err)) throw new RunFailure(errorFromActivity(err, step.id, instance));
              throw err;
            }
            // The activity projected the trail; drop exactly what it carried.
            trail = trail.slice(pending.length);
            state.steps[step.id] = result;
            if (step.saveAs) state.vars[step.saveAs] = result;
            cursor = step.next;
            break;
          }
          default: {
            const never: never = step;
            throw new RunFailure({ type: 'GraphCorrupt', message: `unknown step type ${(never as { type: string }).type}` });
          }
        }
      } catch (err) {
        if (err instanceof ExpressionError) {
          const error: ErrorInfo = { type: FAILURE_TYPES.EXPRESSION_ERROR, message: err.message, stepId: step.id, stepInstance: instance, details: err.toJSON() };
          record({ status: 'FAILED', error });
          throw new RunFailure(error);
        }
        throw err;
      }
      state.completed.push(instance);
    }
  } catch (err) {
    if (err instanceof RunFailure) {
      await close('FAILED', { error: err.info });
      throw ApplicationFailure.create({ message: err.info.message, type: err.info.type, nonRetryable: true, details: [err.info] });
    }
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() =>
        close('CANCELLED', { error: { type: 'Cancelled', message: 'the run was cancelled', ...(state.cursor ? { stepInstance: state.cursor } : {}) } }),
      );
    }
    throw err;
  }
  await close('COMPLETED', { output });
  return output;
}
