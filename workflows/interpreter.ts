/**
 * The one interpreter workflow. It walks the graph pinned in its own start
 * input (so the graph lives in the run's history) and never reads a database
 * to decide anything. Control steps (assign, if, switch, return, fail) are
 * pure workflow code and add no Temporal events; their projection records
 * ride along with the next activity. An `rpc` step is one activity; `sleep`
 * and `wait` timeouts are timers; `child` is a child workflow of the same type.
 *
 * Determinism: no Node APIs, no I/O. Any change to the command sequence this
 * produces for an existing history must be gated with `patched()` and pass the
 * replay corpus in test/histories.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  continueAsNew,
  executeChild,
  isCancellation,
  ParentClosePolicy,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { FAILURE_TYPES } from '../graph/errors';
import { evaluateExpression, evaluateMapping, ExpressionError, isTruthy, type ExpressionScope } from '../graph/expression';
import { durationMs, type ChildStep, type ForEachStep, type ParallelStep, type PinnedContract, type RpcStep, type Step, type Subgraph, type WaitStep } from '../graph/schema';
import { SA } from '../graph/search-attributes';
import { TASK_QUEUE, WORKFLOW_TYPE } from '../graph/terminology';
import { eventSignal, migrateUpdate, resolveStallUpdate, stateQuery } from './definitions';
import { FLAGS } from './flags';
import type { ActiveWaitState, ErrorInfo, EventSignal, InterpreterState, MigrateRequest, RunInput, StallDecision, StallInfo, StallReason, StepRecord, WaitOutput } from '../graph/wire';

/**
 * Projection activities are idempotent upserts, so Temporal may retry them
 * without limit: a database blip delays the run instead of failing it.
 */
const projection = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

/**
 * The same run-level projection writes as local activities (FLAGS.LOCAL_RUN_PROJECTION):
 * executed by the worker inside the workflow task, recorded as one marker.
 */
const localProjection = proxyLocalActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

/** Failure types the RPC activity raises that retrying cannot fix. */
const NEVER_RETRY = [FAILURE_TYPES.RPC_STALL, FAILURE_TYPES.RPC_MISSING, FAILURE_TYPES.RPC_INPUT_INVALID, FAILURE_TYPES.RPC_OUTPUT_INVALID];


function rpcActivity(contract: PinnedContract | undefined, step: RpcStep): Activities['invokeRpc'] {
  const r = contract?.retry ?? {};
  const o = step.retry ?? {};
  return proxyActivities<Activities>({
    startToCloseTimeout: step.timeout !== undefined ? durationMs(step.timeout) : (contract?.timeoutMs ?? 30_000),
    retry: {
      maximumAttempts: o.maximumAttempts ?? r.maximumAttempts ?? 5,
      initialInterval: o.initialInterval !== undefined ? durationMs(o.initialInterval) : (r.initialIntervalMs ?? 1_000),
      backoffCoefficient: o.backoffCoefficient ?? r.backoffCoefficient ?? 2,
      maximumInterval: o.maximumInterval !== undefined ? durationMs(o.maximumInterval) : (r.maximumIntervalMs ?? 60_000),
      nonRetryableErrorTypes: [...NEVER_RETRY, ...(r.nonRetryableErrorTypes ?? []), ...(o.nonRetryableErrorTypes ?? [])],
    },
  }).invokeRpc;
}

/** A step failed: catchable by `onError`, or it fails the enclosing (sub)graph. */
class StepFailure extends Error {
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

/** Unwinds the interpreter to the top, where the run continues as new on the target version. */
class MigrateNow extends Error {}

/** Unwinds to the top at a top-level step boundary: Temporal suggested continue-as-new. */
class ContinueNow extends Error {
  constructor(readonly at: string) {
    super(`continue as new at ${at}`);
  }
}

/** Unconsumed event signals kept at most (oldest dropped first); carried at continue-as-new. */
const INBOX_LIMIT = 100;
/** Consumed event ids carried at continue-as-new, so a run never consumes one twice. */
const CONSUMED_CARRIED = 1_000;
/** Ignored events remembered per open wait, for the state query. */
const IGNORED_SHOWN = 20;

/** A signal payload from outside the sandbox: check its shape before trusting it. */
function isEventSignal(e: unknown): e is EventSignal {
  const x = e as Partial<EventSignal> | null;
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.eventId === 'string' &&
    typeof x.tenant === 'string' &&
    typeof x.name === 'string' &&
    typeof x.correlationKey === 'string' &&
    typeof x.receivedAt === 'string' &&
    typeof x.waitId === 'string'
  );
}

/** An open wait: its queryable state, and the inbox entries it has already looked at. */
interface ActiveWait {
  state: ActiveWaitState;
  offered: Set<EventSignal>;
}

/** Where a (sub)graph walk keeps its data. Loop iterations and branches get their own. */
interface Frame {
  vars: Record<string, unknown>;
  steps: Record<string, unknown>;
  /** Appended to step ids to name instances: `[3]` inside item 3 of a forEach. */
  suffix: string;
  item?: unknown;
  index?: number;
  error?: ErrorInfo;
}

export async function pinflowInterpreter(run: RunInput): Promise<unknown> {
  const info = workflowInfo();
  const root: Frame = { vars: { ...run.resume?.vars }, steps: { ...run.resume?.steps }, suffix: '' };
  const state: InterpreterState = { status: 'RUNNING', cursor: null, completed: [], vars: root.vars, steps: root.steps, active: [] };
  setHandler(stateQuery, () => state);

  /** Open stalls by id, each waiting for its decision. Several can be open inside forEach/parallel. */
  const openStalls = new Map<string, { info: StallInfo; decision?: StallDecision }>();
  setHandler(
    resolveStallUpdate,
    (decision) => {
      openStalls.get(decision.stallId)!.decision = decision;
      return { accepted: true as const, stallId: decision.stallId, action: decision.action };
    },
    {
      // Runs before anything is written to history: an invalid decision is refused with its reason.
      validator: (d) => {
        if (openStalls.size === 0) throw new Error(`RUN_NOT_STALLED: run ${run.runId} is not stalled`);
        const open = openStalls.get(d?.stallId);
        if (!open) throw new Error(`DECISION_REJECTED: stall ${JSON.stringify(d?.stallId)} is not open; open stalls: ${[...openStalls.keys()].join(', ')}`);
        if (open.decision) throw new Error(`DECISION_REJECTED: stall ${d.stallId} already has a decision (${open.decision.action})`);
        if (d.action !== 'retry' && d.action !== 'skip') throw new Error(`DECISION_REJECTED: action ${JSON.stringify(d.action)} is not one of retry, skip (cancel the run to cancel)`);
        if (typeof d.by !== 'string' || d.by.length === 0) throw new Error('DECISION_REJECTED: "by" must name who decided');
        if (d.action === 'skip' && d.output === undefined) throw new Error('DECISION_REJECTED: skip needs an "output" for the skipped step');
      },
    },
  );

  // Events (since 0.4.0). Signals are buffered in the inbox; each open wait
  // takes the first entry that passes its checks. Registering the handler adds
  // no commands, so histories recorded before events replay unchanged.
  const inbox: EventSignal[] = [...(run.resume?.inbox ?? [])];
  const consumed = new Set<string>(run.resume?.consumed ?? []);
  /** Waits that resolved, timed out or were cancelled in this execution: signals for them are stale. */
  const closedWaits = new Set<string>();
  const activeWaits = new Map<string, ActiveWait>();
  /** The wait a migration (at that wait) carried over: it keeps its id and look-back point. */
  let resumedWait = run.resume?.wait;
  setHandler(eventSignal, (e) => {
    if (!isEventSignal(e) || e.tenant !== run.tenant) return; // not an event for this run
    if (consumed.has(e.eventId) || closedWaits.has(e.waitId)) return; // a duplicate, or meant for a wait that is over
    if (inbox.some((x) => x.eventId === e.eventId && x.waitId === e.waitId)) return; // sent again
    inbox.push(e);
    if (inbox.length > INBOX_LIMIT) inbox.splice(0, inbox.length - INBOX_LIMIT);
  });
  const consume = (e: EventSignal) => {
    consumed.add(e.eventId);
    for (let i = inbox.length - 1; i >= 0; i--) if (inbox[i]!.eventId === e.eventId) inbox.splice(i, 1);
  };
  /** What the next execution inherits: unconsumed signals (never lost) and the consumed ids (never consumed twice). */
  const carriedEvents = (): { inbox?: EventSignal[]; consumed?: string[] } => ({
    ...(inbox.length > 0 ? { inbox: [...inbox] } : {}),
    ...(consumed.size > 0 ? { consumed: [...consumed].slice(-CONSUMED_CARRIED) } : {}),
  });
  const publishWaits = () => {
    const open = [...activeWaits.values()].map((w) => w.state);
    if (open.length > 0) state.waits = open;
    else delete state.waits;
  };

  const occurrences = new Map<string, number>();
  let seq = run.resume?.seq ?? 0;
  const nextDispatch = new Map(Object.entries(run.resume?.nextDispatch ?? {}));
  /** Set by the migrate update; the run continues as new at the next safe point. */
  let migration: { request: MigrateRequest; at: string; from: string; dispatch: number; wait?: { waitId: string; reachedAt: string } } | undefined;
  /** Where the run is safe to migrate: a top-level step it is stalled or waiting on. */
  const safePoint = (): { instance: string; stepId: string; dispatch: number } | undefined => {
    const stall = state.stall;
    if (stall && run.graph.steps.some((s) => s.id === stall.stepInstance)) return { instance: stall.stepInstance, stepId: stall.stepId, dispatch: Number(stall.id.split('/')[1] ?? 1) };
    const waiting = state.waiting;
    if (waiting && run.graph.steps.some((s) => s.id === waiting.stepInstance)) return { instance: waiting.stepInstance, stepId: waiting.stepInstance, dispatch: 0 };
    return undefined;
  };
  /** A migration requested while a top-level step runs: applied at the next step boundary. */
  let boundaryRequest: MigrateRequest | undefined;
  let boundaryOutcome: { result: { accepted: true; at: string; carried: string[]; dropped: string[] } } | { refused: string } | undefined;
  const migrationSummary = (request: MigrateRequest, at: string) => {
    const map = request.mapping ?? {};
    const targetIds = new Set(request.graph.steps.map((st: Step) => st.id));
    const done = Object.keys(root.steps);
    return {
      accepted: true as const,
      at,
      carried: done.filter((id) => targetIds.has(map[id] ?? id)).map((id) => map[id] ?? id),
      dropped: done.filter((id) => !targetIds.has(map[id] ?? id)),
    };
  };
  /** Settle a pending between-steps migration (the run ended, or refused it) and let its handler finish. */
  const settleBoundary = async (refused: string) => {
    if (!boundaryRequest) return;
    boundaryOutcome ??= { refused };
    await condition(() => boundaryRequest === undefined);
  };
  setHandler(
    migrateUpdate,
    async (request) => {
      const point = safePoint();
      if (point) {
        const at = request.mapping?.[point.stepId] ?? point.stepId;
        const waiting = [...activeWaits.values()].find((w) => w.state.stepInstance === point.instance);
        migration = { request, at, from: point.instance, dispatch: point.dispatch, ...(waiting ? { wait: { waitId: waiting.state.waitId, reachedAt: waiting.state.reachedAt } } : {}) };
        return migrationSummary(request, at);
      }
      // Between steps: wait for the next top-level step boundary, where the
      // position is checked and the run continues as new (or the request is refused).
      boundaryRequest = request;
      await condition(() => boundaryOutcome !== undefined);
      const outcome = boundaryOutcome!;
      boundaryOutcome = undefined;
      boundaryRequest = undefined;
      if ('refused' in outcome) throw ApplicationFailure.nonRetryable(`MIGRATION_REFUSED: ${outcome.refused}`, 'MigrationRefused');
      return outcome.result;
    },
    {
      validator: (request) => {
        if (migration || boundaryRequest) throw new Error('MIGRATION_REFUSED: a migration is already under way');
        const point = safePoint();
        const betweenSteps = !point && state.status === 'RUNNING' && state.cursor !== null && run.graph.steps.some((st) => st.id === state.cursor);
        if (!point && !betweenSteps) {
          throw new Error(
            `MIGRATION_REFUSED: run ${run.runId} is not at a safe point; it must be stalled, waiting, or running a top-level step (it is ${state.status}${state.cursor ? ` at ${state.cursor}` : ''})`,
          );
        }
        if (!request?.graph || !Array.isArray(request.graph.steps)) throw new Error('MIGRATION_REFUSED: the target graph is missing');
        if (request.targetVersion === run.version) throw new Error(`MIGRATION_REFUSED: the run is already on version ${run.version}`);
        if (typeof request.by !== 'string' || !request.by) throw new Error('MIGRATION_REFUSED: "by" must name who decided');
        if (!point) return; // between steps: the position is checked at the boundary
        const at = request.mapping?.[point.stepId] ?? point.stepId;
        const target = request.graph.steps.find((s: Step) => s.id === at);
        if (!target) {
          throw new Error(
            `MIGRATION_REFUSED: the run's position ${point.stepId}${at !== point.stepId ? ` (mapped to ${at})` : ''} is not a top-level step of version ${request.targetVersion}; map it with "mapping": { "${point.stepId}": "<step id in the target>" }`,
          );
        }
        const current = run.graph.steps.find((s) => s.id === point.stepId);
        if (current && target.type !== current.type) {
          throw new Error(`MIGRATION_REFUSED: step ${point.stepId} is a ${current.type} step but ${at} in the target is a ${target.type} step`);
        }
      },
    },
  );
  /** Step records waiting for the next activity to project them. */
  const trail: StepRecord[] = [];
  const takeTrail = () => trail.splice(0);
  const now = () => new Date().toISOString();

  const scope = (f: Frame): ExpressionScope => {
    const s: ExpressionScope & Record<string, unknown> = {
      input: run.input,
      steps: f.steps,
      vars: f.vars,
      run: { runId: run.runId, tenant: run.tenant, version: run.version, definition: run.definition, startedAt: info.startTime.toISOString() },
    };
    if (f.index !== undefined) {
      s.item = f.item;
      s.index = f.index;
    }
    if (f.error) s.error = f.error;
    return s;
  };

  // Decided once per execution: a run started before 0.4.0 keeps its activities on replay.
  const runProjection = patched(FLAGS.LOCAL_RUN_PROJECTION) ? localProjection : projection;
  await runProjection.projectRunStarted({
    runId: run.runId,
    temporalRunId: info.runId,
    definition: run.definition,
    version: run.version,
    tenant: run.tenant,
    input: run.input,
    metadata: run.metadata,
    startedAt: info.startTime.toISOString(),
    ...(run.parent ? { parent: run.parent } : {}),
  });

  const close = async (status: 'COMPLETED' | 'FAILED' | 'CANCELLED', fields: { output?: unknown; error?: ErrorInfo }) => {
    state.status = status;
    state.cursor = null;
    state.active = [];
    if (fields.output !== undefined) state.output = fields.output;
    if (fields.error) state.error = fields.error;
    await runProjection.projectRunClosed({ runId: run.runId, status, ...fields, closedAt: now(), trail: takeTrail() });
  };

  /** Stall until an operator decides (retry or skip). Durable: a condition, no polling activities. */
  const stallFor = async (info: StallInfo): Promise<StallDecision> => {
    openStalls.set(info.id, { info });
    state.stall = info;
    state.status = 'STALLED';
    upsertSearchAttributes([{ key: SA.status, value: 'STALLED' }]);
    await projection.projectStall({ runId: run.runId, stall: info, trail: takeTrail() });
    await condition(() => openStalls.get(info.id)!.decision !== undefined || migration !== undefined);
    if (migration) throw new MigrateNow();
    const decision = openStalls.get(info.id)!.decision!;
    openStalls.delete(info.id);
    const next = openStalls.values().next();
    if (next.done) {
      delete state.stall;
      state.status = 'RUNNING';
      upsertSearchAttributes([{ key: SA.status, value: 'RUNNING' }]);
    } else state.stall = next.value.info;
    const decidedAt = now();
    (state.decisions ??= []).push({ ...decision, decidedAt });
    await projection.projectDecision({
      runId: run.runId,
      decision,
      decidedAt,
      outcome: decision.action === 'retry' ? `step ${info.stepInstance} dispatched again` : `step ${info.stepInstance} skipped with the operator's output`,
    });
    return decision;
  };

  /** Run one rpc step: one activity, with the pending trail riding along; stalls wait for a decision. */
  const runRpc = async (step: RpcStep, instance: string, stepSeq: number, f: Frame): Promise<unknown> => {
    const input = step.input === undefined ? {} : await evaluateMapping(step.input, scope(f), { stepId: step.id, field: 'input' });
    const key = step.idempotencyKey ? await evaluateExpression(step.idempotencyKey, scope(f), { stepId: step.id, field: 'idempotencyKey' }) : undefined;
    const contract = run.contracts[step.rpc];
    for (let dispatch = nextDispatch.get(instance) ?? 1; ; dispatch++) {
      const pending = takeTrail();
      try {
        return await rpcActivity(contract, step)({
          runId: run.runId,
          tenant: run.tenant,
          rpc: step.rpc,
          stepId: step.id,
          stepInstance: instance,
          seq: stepSeq,
          input,
          pinnedContractHash: contract?.hash ?? '',
          trail: pending,
          version: run.version,
          ...(dispatch > 1 ? { dispatch } : {}),
          ...(key !== undefined && key !== null ? { idempotencyKey: typeof key === 'string' ? key : JSON.stringify(key) } : {}),
        });
      } catch (err) {
        // Re-queue what this activity carried: upserts are idempotent, so projecting twice is harmless.
        trail.unshift(...pending);
        if (isCancellation(err)) {
          trail.push({ stepInstance: instance, attempt: 1, dispatch, stepId: step.id, stepType: 'rpc', seq: stepSeq, status: 'CANCELLED', startedAt: now(), finishedAt: now() });
          throw err;
        }
        if (!(err instanceof ActivityFailure)) throw err;
        const info = errorFromActivity(err, step.id, instance);
        if (info.type === FAILURE_TYPES.RPC_STALL && patched(FLAGS.STALL_ON_CONTRACT_MISMATCH)) {
          const d = (info.details ?? {}) as { reason?: StallReason; detail?: unknown };
          const decision = await stallFor({
            id: `${instance}/${dispatch}`,
            reason: d.reason ?? 'rpc_missing',
            rpc: step.rpc,
            stepId: step.id,
            stepInstance: instance,
            message: info.message,
            ...(d.detail !== undefined ? { details: d.detail } : {}),
            since: now(),
          });
          if (decision.action === 'retry') continue;
          trail.push({
            stepInstance: instance,
            attempt: 1,
            dispatch: dispatch + 1,
            stepId: step.id,
            stepType: 'rpc',
            seq: stepSeq,
            status: 'COMPLETED',
            startedAt: now(),
            finishedAt: now(),
            output: decision.output,
            notes: [{ kind: 'skipped', by: decision.by, ...(decision.reason ? { reason: decision.reason } : {}) }],
          });
          return decision.output;
        }
        throw new StepFailure(info);
      }
    }
  };

  const runForEach = async (step: ForEachStep, instance: string, f: Frame): Promise<unknown> => {
    const raw = await evaluateExpression(step.items, scope(f), { stepId: step.id, field: 'items' });
    const items = raw === null ? [] : raw;
    if (!Array.isArray(items)) {
      throw new StepFailure({
        type: FAILURE_TYPES.FOREACH_ITEMS_NOT_ARRAY,
        message: `step "${step.id}": "items" evaluated to ${typeof items}, not an array`,
        stepId: step.id,
        stepInstance: instance,
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
          results[i] = (await runSubgraph(step.body, frame)).value;
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
        stepInstance: instance,
        details: firstFailure.info,
      });
    }
    errors.sort((a, b) => a.index - b.index);
    return { results, errors };
  };

  const runParallel = async (step: ParallelStep, instance: string, f: Frame): Promise<unknown> => {
    const names = Object.keys(step.branches).sort();
    const results: Record<string, unknown> = {};
    const failures: Array<{ branch: string; error: ErrorInfo }> = [];
    const runBranch = async (name: string) => {
      try {
        results[name] = (await runSubgraph(step.branches[name]!, { vars: { ...f.vars }, steps: { ...f.steps }, suffix: f.suffix })).value;
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
        stepInstance: instance,
        details: { failures },
      });
    }
    return results;
  };

  const runChild = async (step: ChildStep, instance: string, f: Frame): Promise<unknown> => {
    const input = step.input === undefined ? {} : await evaluateMapping(step.input, scope(f), { stepId: step.id, field: 'input' });
    const target = await projection.resolveChildVersion({ definition: step.definition, version: step.version === 'latest' ? undefined : step.version });
    const childRunId = `${run.runId}:${instance.replace(/\[/g, '.').replace(/\]/g, '').replace(/#/g, ':')}`;
    try {
      return await executeChild(WORKFLOW_TYPE, {
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
  };

  /**
   * Why an inbox entry does not resume this wait, or undefined when it may
   * (subject to the match filter). `other-wait` entries belong to another
   * open wait of this run and are left for it.
   */
  const rejectReason = (e: EventSignal, w: ActiveWaitState): string | undefined => {
    if (e.waitId !== w.waitId && activeWaits.has(e.waitId)) return 'other-wait';
    if (consumed.has(e.eventId)) return 'already consumed by this run';
    if (e.name !== w.event) return `event ${e.name} is not ${w.event}`;
    if (e.correlationKey !== w.correlationKey) return `correlation key ${JSON.stringify(e.correlationKey)} is not ${JSON.stringify(w.correlationKey)}`;
    if (e.waitId !== w.waitId && e.receivedAt < w.reachedAt) return `routed to wait ${e.waitId}, and received before this wait was reached`;
    return undefined;
  };

  /** The first inbox entry this wait accepts (checks, then the match filter), consumed; else undefined. */
  const takeEvent = async (step: WaitStep, w: ActiveWait, f: Frame): Promise<EventSignal | undefined> => {
    const note = (e: EventSignal, reason: string) => {
      w.state.ignored.push({ eventId: e.eventId, reason });
      if (w.state.ignored.length > IGNORED_SHOWN) w.state.ignored.shift();
    };
    for (const e of [...inbox]) {
      if (w.offered.has(e)) continue;
      w.offered.add(e);
      const why = rejectReason(e, w.state);
      if (why === 'other-wait') continue;
      if (why) {
        note(e, why);
        continue;
      }
      if (step.match !== undefined) {
        const view: WaitOutput = { eventId: e.eventId, name: e.name, correlationKey: e.correlationKey, payload: e.payload, receivedAt: e.receivedAt };
        const value = await evaluateExpression(step.match, { ...scope(f), event: view } as ExpressionScope, { stepId: step.id, field: 'match' });
        if (!isTruthy(value)) {
          note(e, 'the match filter is false');
          continue;
        }
        // Another wait of this run may have consumed it while the filter ran.
        if (consumed.has(e.eventId)) continue;
      }
      consume(e);
      return e;
    }
    return undefined;
  };

  interface WaitResult {
    timedOut: boolean;
    /** Set when an event resumed the wait. */
    event?: WaitOutput;
    /** Set when the wait is in the correlation index (since FLAGS.EVENT_WAITS): close it. */
    waitId?: string;
  }

  /**
   * A wait step. Since 0.4.0 it registers in the correlation index (openWait,
   * which also hands over the mailbox), then blocks until a matching event is
   * in the inbox, its timer fires, or a migration moves it.
   */
  const runWait = async (step: WaitStep, instance: string, stepSeq: number, f: Frame): Promise<WaitResult> => {
    const key = await evaluateExpression(step.correlationKey, scope(f), { stepId: step.id, field: 'correlationKey' });
    if (!((typeof key === 'string' && key.length > 0) || (typeof key === 'number' && Number.isFinite(key)))) {
      throw new StepFailure({
        type: FAILURE_TYPES.WAIT_KEY_INVALID,
        message: `step "${step.id}": correlation key must be a non-empty string or a number; got ${JSON.stringify(key)}`,
        stepId: step.id,
        stepInstance: instance,
      });
    }
    let untilMs: number | undefined;
    if (step.timeoutUntil !== undefined) {
      const until = await evaluateExpression(step.timeoutUntil, scope(f), { stepId: step.id, field: 'timeoutUntil' });
      untilMs = typeof until === 'string' ? Date.parse(until) : Number.NaN;
      if (Number.isNaN(untilMs)) {
        throw new StepFailure({ type: FAILURE_TYPES.SLEEP_UNTIL_INVALID, message: `step "${step.id}": timeoutUntil is not a timestamp: ${JSON.stringify(until)}`, stepId: step.id, stepInstance: instance });
      }
    }
    if (!patched(FLAGS.EVENT_WAITS)) {
      // Before 0.4.0: no correlation index; the wait ended only by its timeout.
      const timeoutMs = step.timeout !== undefined ? durationMs(step.timeout) : untilMs !== undefined ? Math.max(0, untilMs - Date.now()) : undefined;
      state.waiting = { stepInstance: instance, event: step.event, correlationKey: key };
      try {
        const done = timeoutMs === undefined ? (await condition(() => migration !== undefined), true) : await condition(() => migration !== undefined, timeoutMs);
        if (migration) throw new MigrateNow();
        return { timedOut: !done };
      } finally {
        delete state.waiting;
      }
    }

    const correlationKey = String(key);
    const resumed = resumedWait && instance === run.resume?.at ? resumedWait : undefined;
    if (resumed) resumedWait = undefined;
    const waitId = resumed?.waitId ?? `${instance}@${stepSeq}`;
    const reachedAt = resumed?.reachedAt ?? now();
    // A duration counts from when the run reached the step, so a migration at the wait does not extend it.
    const deadline = step.timeout !== undefined ? Date.parse(reachedAt) + durationMs(step.timeout) : untilMs;
    const w: ActiveWait = {
      state: { waitId, stepInstance: instance, event: step.event, correlationKey, reachedAt, timeoutAt: deadline !== undefined ? new Date(deadline).toISOString() : null, ignored: [] },
      offered: new Set(),
    };
    activeWaits.set(waitId, w);
    publishWaits();
    state.waiting = { stepInstance: instance, event: step.event, correlationKey: key };
    let outcome: 'RESOLVED' | 'TIMED_OUT' | 'CANCELLED' | undefined;
    let taken: EventSignal | undefined;
    const timer = new CancellationScope();
    try {
      const mailbox = await projection.openWait({
        runId: run.runId,
        tenant: run.tenant,
        waitId,
        stepId: step.id,
        stepInstance: instance,
        seq: stepSeq,
        event: step.event,
        correlationKey,
        hasFilter: step.match !== undefined,
        reachedAt,
        timeoutAt: w.state.timeoutAt,
        trail: takeTrail(),
      });
      for (const e of mailbox) if (!consumed.has(e.eventId) && !inbox.some((x) => x.eventId === e.eventId && x.waitId === e.waitId)) inbox.push(e);
      let timedOut = deadline !== undefined && deadline <= Date.now();
      if (deadline !== undefined && !timedOut) {
        void timer.run(() => sleep(deadline - Date.now())).then(
          () => (timedOut = true),
          () => undefined,
        );
      }
      for (;;) {
        // A migration wins over an event in the same activation: the event is carried to the new version.
        if (migration) throw new MigrateNow();
        taken = await takeEvent(step, w, f);
        if (taken) {
          outcome = 'RESOLVED';
          break;
        }
        if (timedOut) {
          outcome = 'TIMED_OUT';
          break;
        }
        await condition(() => migration !== undefined || timedOut || inbox.some((e) => !w.offered.has(e)));
      }
    } catch (err) {
      if (!(err instanceof MigrateNow)) outcome = 'CANCELLED';
      throw err;
    } finally {
      timer.cancel();
      activeWaits.delete(waitId);
      publishWaits();
      if (outcome) {
        closedWaits.add(waitId);
        for (let i = inbox.length - 1; i >= 0; i--) if (inbox[i]!.waitId === waitId) inbox.splice(i, 1);
      }
      if (state.waiting?.stepInstance === instance) {
        const other = [...activeWaits.values()].pop();
        if (other) state.waiting = { stepInstance: other.state.stepInstance, event: other.state.event, correlationKey: other.state.correlationKey };
        else delete state.waiting;
      }
      if (outcome === 'CANCELLED') {
        // Cancelled (a failFast sibling, the run) or failed (the match filter threw): leave the index now.
        await CancellationScope.nonCancellable(() => projection.closeWait({ runId: run.runId, waitId, status: 'CANCELLED', closedAt: now(), trail: [] }));
      }
    }
    if (!taken) return { timedOut: true, waitId };
    return {
      timedOut: false,
      waitId,
      event: { eventId: taken.eventId, name: taken.name, correlationKey: taken.correlationKey, payload: taken.payload, receivedAt: taken.receivedAt },
    };
  };

  /** Walk one (sub)graph from its entry. Returns its `return` output, else the last step's output. */
  async function runSubgraph(graph: Subgraph, f: Frame): Promise<{ value: unknown; returned: boolean }> {
    const byId = new Map<string, Step>(graph.steps.map((s) => [s.id, s]));
    let cursor: string | undefined = graph === run.graph && run.resume ? run.resume.at : graph.entry;
    let last: unknown = null;
    while (cursor !== undefined) {
      if (graph === run.graph && boundaryRequest && !boundaryOutcome) {
        const request = boundaryRequest;
        const at = request.mapping?.[cursor] ?? cursor;
        const target = request.graph.steps.find((st: Step) => st.id === at);
        const current = byId.get(cursor);
        if (!target) {
          await settleBoundary(
            `the run's next step ${cursor}${at !== cursor ? ` (mapped to ${at})` : ''} is not a top-level step of version ${request.targetVersion}; map it with "mapping": { "${cursor}": "<step id in the target>" }`,
          );
        } else if (current && current.type !== target.type) {
          await settleBoundary(`step ${cursor} is a ${current.type} step but ${at} in the target is a ${target.type} step`);
        } else {
          migration = { request, at, from: cursor, dispatch: 0 };
          boundaryOutcome = { result: migrationSummary(request, at) };
          await condition(() => boundaryRequest === undefined);
          throw new MigrateNow();
        }
      }
      // Long runs: at a top-level boundary (nothing else in flight, no open stall),
      // continue as new when Temporal suggests it, carrying the state.
      if (graph === run.graph && openStalls.size === 0 && workflowInfo().continueAsNewSuggested && patched(FLAGS.CONTINUE_AS_NEW_WHEN_SUGGESTED)) {
        throw new ContinueNow(cursor);
      }
      const step = byId.get(cursor);
      if (!step) {
        // Publish validation makes this unreachable; fail loudly rather than guess.
        throw new StepFailure({ type: 'GraphCorrupt', message: `step ${JSON.stringify(cursor)} is not in the pinned graph`, stepId: cursor });
      }
      const key = `${step.id}${f.suffix}`;
      const n = (occurrences.get(key) ?? 0) + 1;
      occurrences.set(key, n);
      const instance = n === 1 ? key : `${key}#${n}`;
      const stepSeq = ++seq;
      const startedAt = now();
      state.cursor = instance;
      state.active.push(instance);
      const record = (fields: Partial<StepRecord> & Pick<StepRecord, 'status'>) =>
        trail.push({ stepInstance: instance, attempt: 1, stepId: step.id, stepType: step.type, seq: stepSeq, startedAt, finishedAt: now(), ...fields });
      const done = (output: unknown, nextStep: string | undefined, recordIt = true) => {
        f.steps[step.id] = output;
        if ('saveAs' in step && step.saveAs) f.vars[step.saveAs] = output;
        if (recordIt) record({ status: 'COMPLETED', output });
        last = output;
        cursor = nextStep;
      };

      try {
        switch (step.type) {
          case 'assign': {
            const base = scope(f);
            const values: Record<string, unknown> = {};
            for (const name of Object.keys(step.set).sort()) {
              values[name] = await evaluateMapping(step.set[name], base, { stepId: step.id, field: `set.${name}` });
            }
            Object.assign(f.vars, values);
            done(values, step.next);
            break;
          }
          case 'if': {
            const value = await evaluateExpression(step.condition, scope(f), { stepId: step.id, field: 'condition' });
            const branch = isTruthy(value) ? 'then' : 'else';
            f.steps[step.id] = { branch };
            record({ status: 'COMPLETED', output: { branch, value } });
            cursor = branch === 'then' ? step.then : step.else;
            break;
          }
          case 'switch': {
            let chosen = -1;
            for (let i = 0; i < step.cases.length && chosen < 0; i++) {
              if (isTruthy(await evaluateExpression(step.cases[i]!.when, scope(f), { stepId: step.id, field: `cases[${i}].when` }))) chosen = i;
            }
            const output = { case: chosen >= 0 ? chosen : 'default' };
            f.steps[step.id] = output;
            record({ status: 'COMPLETED', output });
            cursor = chosen >= 0 ? step.cases[chosen]!.next : step.default;
            break;
          }
          case 'return': {
            const output = await evaluateMapping(step.output, scope(f), { stepId: step.id, field: 'output' });
            record({ status: 'COMPLETED', output });
            state.completed.push(instance);
            state.active = state.active.filter((a) => a !== instance);
            return { value: output, returned: true };
          }
          case 'fail': {
            const message = await evaluateExpression(step.message, scope(f), { stepId: step.id, field: 'message' });
            const error: ErrorInfo = { type: step.code, message: typeof message === 'string' ? message : JSON.stringify(message), stepId: step.id, stepInstance: instance };
            record({ status: 'FAILED', error });
            // Not catchable by this step; an enclosing forEach/parallel sees it as an item/branch failure.
            throw new StepFailure(error);
          }
          case 'rpc':
            done(await runRpc(step, instance, stepSeq, f), step.next, false);
            break;
          case 'forEach':
            done(await runForEach(step, instance, f), step.next);
            break;
          case 'parallel':
            done(await runParallel(step, instance, f), step.next);
            break;
          case 'child':
            done(await runChild(step, instance, f), step.next);
            break;
          case 'sleep': {
            let ms: number;
            if (step.duration !== undefined) ms = durationMs(step.duration);
            else {
              const until = await evaluateExpression(step.until!, scope(f), { stepId: step.id, field: 'until' });
              const at = typeof until === 'string' ? Date.parse(until) : Number.NaN;
              if (Number.isNaN(at)) {
                throw new StepFailure({ type: FAILURE_TYPES.SLEEP_UNTIL_INVALID, message: `step "${step.id}": "until" is not a timestamp: ${JSON.stringify(until)}`, stepId: step.id, stepInstance: instance });
              }
              ms = Math.max(0, at - Date.now());
            }
            if (ms > 0) await sleep(ms);
            done({ sleptMs: ms }, step.next);
            break;
          }
          case 'wait': {
            const result = await runWait(step, instance, stepSeq, f);
            const closeIndex = async () => {
              if (result.waitId === undefined) return;
              await projection.closeWait({
                runId: run.runId,
                waitId: result.waitId,
                status: result.timedOut ? 'TIMED_OUT' : 'RESOLVED',
                ...(result.event ? { eventId: result.event.eventId } : {}),
                closedAt: now(),
                trail: takeTrail(),
              });
            };
            if (result.timedOut && step.onTimeout) done({ timedOut: true }, step.onTimeout);
            else if (result.timedOut) {
              const failure = new StepFailure({ type: FAILURE_TYPES.WAIT_TIMED_OUT, message: `step "${step.id}": no ${step.event} event arrived before the timeout`, stepId: step.id, stepInstance: instance });
              await closeIndex();
              throw failure;
            } else done(result.event ?? null, step.next);
            await closeIndex();
            break;
          }
          default: {
            const never: never = step;
            throw new StepFailure({ type: 'GraphCorrupt', message: `unknown step type ${(never as { type: string }).type}` });
          }
        }
      } catch (err) {
        let failure: StepFailure | undefined;
        if (err instanceof MigrateNow || err instanceof ContinueNow) throw err;
        if (err instanceof StepFailure) failure = err;
        else if (err instanceof ExpressionError) {
          failure = new StepFailure({ type: FAILURE_TYPES.EXPRESSION_ERROR, message: err.message, stepId: step.id, stepInstance: instance, details: err.toJSON() });
        }
        state.active = state.active.filter((a) => a !== instance);
        if (!failure) throw err; // cancellation and internal errors are never caught
        if (step.type !== 'rpc' && step.type !== 'fail') record({ status: 'FAILED', error: failure.info });
        if (step.type !== 'fail' && step.onError) {
          // Route to the handler with the error in scope.
          f.error = failure.info;
          f.steps[step.id] = null;
          cursor = step.onError;
          continue;
        }
        throw failure;
      }
      state.completed.push(instance);
      state.active = state.active.filter((a) => a !== instance);
    }
    return { value: last, returned: false };
  }

  let output: unknown;
  try {
    const result = await runSubgraph(run.graph, root);
    // Top level: a run that ends without a `return` step has a null output.
    output = result.returned ? result.value : null;
  } catch (err) {
    if (err instanceof ContinueNow) {
      const plan = await projection.planContinueAsNew({
        runId: run.runId,
        definition: run.definition,
        version: run.version,
        policy: run.graph.onContinueAsNew ?? 'pinned',
        at: err.at,
        steps: root.steps,
        trail: takeTrail(),
        lineage: run.lineage ?? [],
      });
      if (plan.moved) upsertSearchAttributes([{ key: SA.version, value: plan.version! }]);
      return await continueAsNew<typeof pinflowInterpreter>({
        ...run,
        ...(plan.moved ? { version: plan.version!, graph: plan.graph!, contracts: plan.contracts! } : {}),
        resume: { at: err.at, steps: root.steps, vars: root.vars, seq, nextDispatch: {}, ...carriedEvents() },
        lineage: plan.lineage,
      });
    }
    if (err instanceof MigrateNow && migration) {
      const m = migration;
      const map = m.request.mapping ?? {};
      const targetIds = new Set(m.request.graph.steps.map((st) => st.id));
      const steps: Record<string, unknown> = {};
      for (const [id, out] of Object.entries(root.steps)) if (targetIds.has(map[id] ?? id)) steps[map[id] ?? id] = out;
      const migratedAt = now();
      const lineage = [...(run.lineage ?? []), { version: run.version, upTo: m.from, migratedAt, by: m.request.by }];
      await projection.projectMigration({
        runId: run.runId,
        from: run.version,
        to: m.request.targetVersion,
        upTo: m.from,
        at: m.at,
        by: m.request.by,
        ...(m.request.reason ? { reason: m.request.reason } : {}),
        stallId: state.stall?.id ?? null,
        decidedAt: migratedAt,
        lineage,
        trail: takeTrail(),
      });
      upsertSearchAttributes([
        { key: SA.version, value: m.request.targetVersion },
        { key: SA.status, value: 'RUNNING' },
      ]);
      return await continueAsNew<typeof pinflowInterpreter>({
        ...run,
        version: m.request.targetVersion,
        graph: m.request.graph,
        contracts: m.request.contracts,
        resume: {
          at: m.at,
          steps,
          vars: root.vars,
          seq,
          nextDispatch: m.dispatch > 0 && m.at === m.from ? { [m.at]: m.dispatch + 1 } : {},
          ...carriedEvents(),
          ...(m.wait ? { wait: m.wait } : {}),
        },
        lineage,
      });
    }
    if (err instanceof StepFailure) {
      await settleBoundary(`the run failed before a step boundary: ${err.info.message}`);
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
  await settleBoundary('the run reached its end before a step boundary');
  await close('COMPLETED', { output });
  return output;
}
