/**
 * The RPC activity: the only place a user's handler runs. It checks the call
 * against the live registry, runs the handler and validates the output; its
 * outcome depends on nothing else. Its projection rows (keyed by run + step
 * instance + dispatch + attempt, so a retried or re-delivered attempt never
 * duplicates a row) go through the projection writer (projection/writer.ts),
 * which waits for them only briefly: a slow, locked or refusing projection
 * delays the rows, never the step.
 *
 * It heartbeats from its first line, before anything that can block: an
 * attempt that Temporal has already timed out (or cancelled) learns it from
 * the heartbeat's answer, and one past its own start-to-close deadline knows
 * it locally; either way it does not run the handler, since Temporal has
 * started, or will start, another attempt of the same dispatch.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { FAILURE_TYPES } from '../graph/errors';
import { validatePinned } from '../catalog/contracts';
import type { VersionRecord, VersionStore } from '../catalog/versions';
import type { ProjectionWriter } from '../projection/writer';
import { rpcAttemptBase } from '../projection/derive';
import type { RpcError, RpcRegistry } from '../rpc/registry';
import type { ErrorInfo, RpcCall, StallReason, StepRecord } from '../graph/wire';
import { rpcDispatches, safely, type RpcOutcome } from '../observability/metrics';
import { scrubStrings, sensitiveStrings } from '../graph/redact';


/**
 * How long an attempt's RUNNING row waits (ms): an attempt that ends sooner
 * writes only its outcome row. Short enough that a step that takes time shows
 * RUNNING at once to a person watching; long enough that a quick handler
 * costs the projection one statement instead of two.
 */
export const RUNNING_ROW_AFTER_MS = 100;

function zodIssues(error: { issues: Array<{ path: PropertyKey[]; message: string; code: string }> }) {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.') || '(root)', code: i.code, message: i.message }));
}

function isRpcError(err: unknown): err is RpcError {
  return err instanceof Error && err.name === 'RpcError' && typeof (err as RpcError).type === 'string';
}

/** Test-only hooks around the handler (never set in production; see worker/worker.ts). */
export interface RpcHooks {
  /** Runs after the attempt's RUNNING row was submitted, before the liveness check and the handler. */
  beforeHandler?: (call: RpcCall, attempt: number) => Promise<void>;
  /** Runs after the handler returned and its COMPLETED row was submitted, before the result goes back to Temporal. */
  afterHandler?: (call: RpcCall, attempt: number) => Promise<void>;
}

export function createRpcActivity({ writer, catalog, registry, hooks = {} }: { writer: ProjectionWriter; catalog: VersionStore; registry: RpcRegistry; hooks?: RpcHooks }) {
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
    // Heartbeat first, before anything that can block (the projection, the
    // catalog): its answer carries a timeout or cancellation to this attempt.
    ctx.heartbeat();
    const heartbeat = setInterval(() => ctx.heartbeat(), 1_000);
    const seen = { drift: false };
    let outcome: RpcOutcome = 'retry';
    try {
      const value = await attemptRpc(ctx, call, Date.now(), seen);
      outcome = seen.drift ? 'contract_drift' : 'ok';
      return value;
    } catch (err) {
      outcome = dispatchOutcome(err, ctx.cancellationSignal.aborted);
      throw err;
    } finally {
      clearInterval(heartbeat);
      safely(() => rpcDispatches.inc({ rpc: call.rpc, outcome }));
    }
  };

  async function attemptRpc(ctx: Context, call: RpcCall, startedLocally: number, seen: { drift: boolean }): Promise<unknown> {
    const attempt = ctx.info.attempt;
    const startedAt = new Date(startedLocally).toISOString();
    const base = rpcAttemptBase(call, attempt, startedAt);
    const deadline = attemptDeadline(ctx, startedLocally);
    /**
     * Submit rows to the projection writer, never failing the step. It waits
     * for the write at most the writer's sync wait and a tenth of what is
     * left of the attempt, so a slow projection never eats a short timeout.
     */
    const project = async (steps: StepRecord[], currentStep?: string): Promise<void> => {
      const waitMs = Math.min(writer.syncWaitMs, Math.max(0, (deadline - Date.now()) / 10));
      await writer.submit({ kind: 'steps', runId: call.runId, steps, currentStep, version: call.version }, { signal: ctx.cancellationSignal, waitMs });
    };
    // A handler's error may echo the values it was given: the sensitive ones
    // (by the live contract's marks, graph/redact.ts) never leave in a message,
    // so no log line, projection row or failure in history carries them.
    const contract = registry.get(call.rpc)?.contract;
    const secrets = contract ? sensitiveStrings(call.input, contract.input) : [];
    const fail = async (raw: ErrorInfo, nonRetryable: boolean): Promise<never> => {
      const error = scrubStrings(raw, secrets);
      await outcome({ ...base, status: 'FAILED', finishedAt: new Date().toISOString(), error });
      throw ApplicationFailure.create({ message: error.message, type: error.type, nonRetryable, details: [error] });
    };
    const where = { stepId: call.stepId, stepInstance: call.stepInstance, attempt };
    /** The live deployment cannot serve the pinned graph here: the run stalls for an operator. */
    const stall = (reason: StallReason, message: string, details?: unknown): Promise<never> =>
      fail({ type: FAILURE_TYPES.RPC_STALL, message, ...where, details: { reason, rpc: call.rpc, ...(details !== undefined ? { detail: details } : {}) } }, true);

    // The control steps before this one ride along (they add no events), with
    // this attempt's RUNNING row and the run's cursor, in one statement. That
    // RUNNING row waits RUNNING_ROW_AFTER_MS: an attempt that ends sooner
    // writes its outcome instead, with the trail and the cursor (one
    // statement per step instead of two); one that takes longer, or leaves
    // without an outcome row (cancelled, timed out, a throw), writes it then.
    let opening: StepRecord[] | undefined = [...call.trail];
    const writeRunning = async (): Promise<void> => {
      if (!opening) return;
      const trail = opening;
      opening = undefined;
      clearTimeout(runningTimer);
      await project([...trail, { ...base, status: 'RUNNING' }], call.stepInstance);
    };
    const runningTimer = setTimeout(() => void writeRunning(), RUNNING_ROW_AFTER_MS);
    try {
      return await attemptBody();
    } finally {
      await writeRunning();
    }

    async function attemptBody(): Promise<unknown> {
      // A test hook stands for a handler that takes time: the RUNNING row is written before it (as the hook promises).
      if (hooks.beforeHandler) {
        await writeRunning();
        await hooks.beforeHandler(call, attempt);
      }

      const rpc = registry.get(call.rpc);
      if (!rpc) {
        return stall('rpc_missing', `RPC ${JSON.stringify(call.rpc)} (step ${JSON.stringify(call.stepId)}) is not registered in this deployment`);
      }
      // The contract check: the live contract against the one the run was pinned with.
      const drift = call.pinnedContractHash !== '' && rpc.contract.hash !== call.pinnedContractHash;
      seen.drift = drift;
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

      // Is this attempt still the live one? Temporal started another attempt if
      // it timed this one out, so running the handler now would run it twice.
      if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
      if (Date.now() >= deadline) {
        throw ApplicationFailure.retryable(
          `attempt ${attempt} of step ${JSON.stringify(call.stepInstance)} outlived its timeout before its handler started; the handler was not run`,
          FAILURE_TYPES.ATTEMPT_TIMED_OUT,
        );
      }

      let raw: unknown;
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
        if (pinned) return complete(value);
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
      return complete(output.data === undefined ? null : JSON.parse(JSON.stringify(output.data)));

      async function complete(value: unknown): Promise<unknown> {
        await outcome({ ...base, status: 'COMPLETED', finishedAt: new Date().toISOString(), output: value, ...(notes ? { notes } : {}) });
        await hooks.afterHandler?.(call, attempt);
        return value;
      }
    }

    /** The attempt's outcome row: with the trail and the cursor when its RUNNING row was never written. */
    async function outcome(record: StepRecord): Promise<void> {
      const trail = opening;
      if (!trail) return project([record]);
      opening = undefined;
      clearTimeout(runningTimer);
      return project([...trail, record], call.stepInstance);
    }
  }
}

/** The `outcome` label of pinflow_rpc_dispatches_total for an attempt that threw `err`. */
function dispatchOutcome(err: unknown, cancelled: boolean): RpcOutcome {
  if (cancelled) return 'cancelled';
  if (err instanceof ApplicationFailure) {
    if (err.type === FAILURE_TYPES.RPC_STALL) {
      const reason = ((err.details?.[0] as ErrorInfo | undefined)?.details as { reason?: StallReason } | undefined)?.reason;
      return reason ?? 'failed';
    }
    return err.nonRetryable ? 'failed' : 'retry';
  }
  return 'retry';
}

/**
 * When Temporal times this attempt out: its start-to-close deadline, counted
 * from when it started here (a little after the server's start, so this errs
 * towards running), or its schedule-to-close deadline if that comes first.
 */
function attemptDeadline(ctx: Context, startedLocally: number): number {
  const { startToCloseTimeoutMs, scheduleToCloseTimeoutMs, scheduledTimestampMs } = ctx.info;
  let deadline = startToCloseTimeoutMs > 0 ? startedLocally + startToCloseTimeoutMs : Infinity;
  if (scheduleToCloseTimeoutMs > 0) deadline = Math.min(deadline, scheduledTimestampMs + scheduleToCloseTimeoutMs);
  return deadline;
}
