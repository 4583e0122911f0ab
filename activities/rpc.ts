/**
 * The RPC activity: the only place a user's handler runs. It checks the call
 * against the live registry, runs the handler, validates the output and
 * upserts its own projection rows keyed by run + step instance + attempt, so
 * a retried or re-delivered attempt never duplicates a row.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { FAILURE_TYPES } from '../graph/errors';
import { validatePinned } from '../catalog/contracts';
import type { VersionRecord, VersionStore } from '../catalog/versions';
import { isPermanentDbError } from './db-errors';
import type { ProjectionStore } from '../projection/store';
import type { RpcError, RpcRegistry } from '../rpc/registry';
import type { ErrorInfo, RpcCall, StallReason, StepRecord } from '../graph/wire';


function zodIssues(error: { issues: Array<{ path: PropertyKey[]; message: string; code: string }> }) {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.') || '(root)', code: i.code, message: i.message }));
}

function isRpcError(err: unknown): err is RpcError {
  return err instanceof Error && err.name === 'RpcError' && typeof (err as RpcError).type === 'string';
}

export function createRpcActivity({ store, catalog, registry }: { store: ProjectionStore; catalog: VersionStore; registry: RpcRegistry }) {
  /** Versions are immutable: each is read from the catalog once per process. */
  const versions = new Map<string, VersionRecord>();
  const pinnedVersion = async (hash: string | undefined): Promise<VersionRecord | undefined> => {
    if (!hash) return undefined;
    let v = versions.get(hash);
    if (!v) {
      v = await catalog.getVersion(hash);
      if (v) versions.set(hash, v);
    }
    return v;
  };

  return async function invokeRpc(call: RpcCall): Promise<unknown> {
    const ctx = Context.current();
    const attempt = ctx.info.attempt;
    const startedAt = new Date().toISOString();
    const base: Omit<StepRecord, 'status'> = {
      stepInstance: call.stepInstance,
      attempt,
      dispatch: call.dispatch ?? 1,
      stepId: call.stepId,
      stepType: 'rpc',
      seq: call.seq,
      startedAt,
      input: call.input,
    };
    const fail = async (error: ErrorInfo, nonRetryable: boolean): Promise<never> => {
      try {
        await store.recordSteps(call.runId, [{ ...base, status: 'FAILED', finishedAt: new Date().toISOString(), error }]);
      } catch (err) {
        // The projection refusing this row for good (e.g. a NUL in the error)
        // must not replace the step's own failure (a stall stays a stall).
        if (!isPermanentDbError(err)) throw err;
        ctx.log.warn('the projection refused the failed step row permanently; the failure is reported without it', { stepInstance: call.stepInstance, error: String(err) });
      }
      throw ApplicationFailure.create({ message: error.message, type: error.type, nonRetryable, details: [error] });
    };
    const where = { stepId: call.stepId, stepInstance: call.stepInstance, attempt };
    /** The live deployment cannot serve the pinned graph here: the run stalls for an operator. */
    const stall = (reason: StallReason, message: string, details?: unknown): Promise<never> =>
      fail({ type: FAILURE_TYPES.RPC_STALL, message, ...where, details: { reason, rpc: call.rpc, ...(details !== undefined ? { detail: details } : {}) } }, true);

    // The control steps before this one ride along (they add no events), then
    // this attempt's RUNNING row and the run's cursor, in one transaction.
    await store.recordSteps(call.runId, [...call.trail, { ...base, status: 'RUNNING' }], call.stepInstance);

    const rpc = registry.get(call.rpc);
    if (!rpc) {
      return stall('rpc_missing', `RPC ${JSON.stringify(call.rpc)} (step ${JSON.stringify(call.stepId)}) is not registered in this deployment`);
    }
    // The contract check: the live contract against the one the run was pinned with.
    const drift = call.pinnedContractHash !== '' && rpc.contract.hash !== call.pinnedContractHash;
    const notes = drift ? [{ kind: 'contract_drift', rpc: call.rpc, pinnedHash: call.pinnedContractHash, liveHash: rpc.contract.hash }] : undefined;
    const input = rpc.input.safeParse(call.input);
    if (!input.success && drift) {
      return stall(
        'input_incompatible',
        `the live contract of RPC ${JSON.stringify(call.rpc)} changed since this run was pinned, and the step's input does not satisfy it`,
        { issues: zodIssues(input.error), pinnedHash: call.pinnedContractHash, liveHash: rpc.contract.hash },
      );
    }
    if (!input.success) {
      return fail(
        {
          type: FAILURE_TYPES.RPC_INPUT_INVALID,
          message: `input of RPC ${JSON.stringify(call.rpc)} at step ${JSON.stringify(call.stepId)} does not match its contract`,
          ...where,
          details: { issues: zodIssues(input.error) },
        },
        true,
      );
    }

    let raw: unknown;
    // Heartbeats carry cancellation to the handler (ctx.signal): a failFast
    // sibling or a cancelled run stops the handler instead of letting it run on.
    const heartbeat = setInterval(() => ctx.heartbeat(), 1_000);
    try {
      raw = await rpc.handler(input.data, {
        runId: call.runId,
        tenant: call.tenant,
        stepId: call.stepId,
        stepInstance: call.stepInstance,
        attempt,
        idempotencyKey: call.idempotencyKey ?? `${call.runId}:${call.stepInstance}`,
        signal: ctx.cancellationSignal,
      });
    } catch (err) {
      const e = err as Error;
      const type = isRpcError(err) ? err.type : FAILURE_TYPES.RPC_HANDLER_ERROR;
      const nonRetryable = isRpcError(err) ? Boolean(err.options.nonRetryable) : false;
      const details = isRpcError(err) ? err.options.details : undefined;
      if (ctx.cancellationSignal.aborted) throw err;
      return fail({ type, message: e?.message ?? String(err), ...where, ...(details !== undefined ? { details } : {}) }, nonRetryable);
    } finally {
      clearInterval(heartbeat);
    }
    // Cancelled while the handler ran: report the cancellation, record nothing.
    if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;

    const output = rpc.output.safeParse(raw);
    if (drift) {
      // Later steps of the pinned graph rely on the pinned output contract, not the live one.
      const version = await pinnedVersion(call.version);
      const value: unknown = JSON.parse(JSON.stringify(output.success ? output.data : (raw ?? null)));
      const pinned = version ? validatePinned(version, call.rpc, 'output', value) : undefined;
      if (pinned && !pinned.ok) {
        return stall(
          'output_incompatible',
          `the output of RPC ${JSON.stringify(call.rpc)} no longer satisfies the contract this run was pinned with`,
          { issues: pinned.issues, pinnedHash: call.pinnedContractHash, liveHash: rpc.contract.hash },
        );
      }
      if (pinned) {
        await store.recordSteps(call.runId, [{ ...base, status: 'COMPLETED', finishedAt: new Date().toISOString(), output: value, ...(notes ? { notes } : {}) }]);
        return value;
      }
    }
    if (!output.success) {
      return fail(
        {
          type: FAILURE_TYPES.RPC_OUTPUT_INVALID,
          message: `output of RPC ${JSON.stringify(call.rpc)} at step ${JSON.stringify(call.stepId)} does not match its contract`,
          ...where,
          details: { issues: zodIssues(output.error) },
        },
        true,
      );
    }
    const value: unknown = output.data === undefined ? null : JSON.parse(JSON.stringify(output.data));
    await store.recordSteps(call.runId, [{ ...base, status: 'COMPLETED', finishedAt: new Date().toISOString(), output: value, ...(notes ? { notes } : {}) }]);
    return value;
  };
}
