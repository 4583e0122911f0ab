/**
 * The activity proxies the interpreter calls. Creating a proxy adds no
 * commands; only calling one does.
 */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { FAILURE_TYPES } from '../graph/errors';
import { durationMs } from '../graph/duration';
import type { PinnedContract, RpcStep } from '../graph/schema';
import { captureActivity, capturingCalls } from './capture';

/**
 * Projection activities are idempotent upserts, so Temporal may retry them
 * without limit: a database blip delays the run instead of failing it. A
 * permanent database error fails them once, non-retryably
 * (`ProjectionWriteRejected`, activities/db-errors.ts).
 */
const PROJECTION_OPTIONS = {
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
} as const;

export const projection = capturingCalls(proxyActivities<Activities>(PROJECTION_OPTIONS));

/**
 * The same run-level projection writes as local activities (FLAGS.LOCAL_RUN_PROJECTION):
 * executed by the worker inside the workflow task, recorded as one marker.
 */
export const localProjection = capturingCalls(proxyLocalActivities<Activities>(PROJECTION_OPTIONS));

/**
 * The projection activities (or local activities) with a one-line summary
 * the Temporal UI shows on the event. The summary is user metadata on the
 * command, not compared on replay: the command sequence is the one of
 * {@link projection} / {@link localProjection}.
 */
export function projectionWith(summary: string, local = false): typeof projection {
  return capturingCalls(local ? proxyLocalActivities<Activities>({ ...PROJECTION_OPTIONS, summary }) : proxyActivities<Activities>({ ...PROJECTION_OPTIONS, summary }));
}

/** Failure types the RPC activity raises that retrying cannot fix. */
const NEVER_RETRY = [FAILURE_TYPES.RPC_STALL, FAILURE_TYPES.RPC_MISSING, FAILURE_TYPES.RPC_INPUT_INVALID, FAILURE_TYPES.RPC_OUTPUT_INVALID];

/** The RPC activity with the step's retry policy over the pinned contract's. */
export function rpcActivity(contract: PinnedContract | undefined, step: RpcStep, summary: string): Activities['invokeRpc'] {
  const r = contract?.retry ?? {};
  const o = step.retry ?? {};
  const invoke = proxyActivities<Activities>({
    summary,
    startToCloseTimeout: step.timeout !== undefined ? durationMs(step.timeout) : (contract?.timeoutMs ?? 30_000),
    retry: {
      maximumAttempts: o.maximumAttempts ?? r.maximumAttempts ?? 5,
      initialInterval: o.initialInterval !== undefined ? durationMs(o.initialInterval) : (r.initialIntervalMs ?? 1_000),
      backoffCoefficient: o.backoffCoefficient ?? r.backoffCoefficient ?? 2,
      maximumInterval: o.maximumInterval !== undefined ? durationMs(o.maximumInterval) : (r.maximumIntervalMs ?? 60_000),
      nonRetryableErrorTypes: [...NEVER_RETRY, ...(r.nonRetryableErrorTypes ?? []), ...(o.nonRetryableErrorTypes ?? [])],
    },
  }).invokeRpc;
  return (call) => {
    captureActivity('invokeRpc', [call]);
    return invoke(call);
  };
}
