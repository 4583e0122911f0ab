/**
 * The batch action table: one entry per action a batch can apply to each run
 * it selected (graph/terminology BATCH_ACTIONS). An entry says
 * - `params`: the zod schema of its parameters (checked at creation);
 * - `appliesTo`: the run statuses (as the projection shows them when the
 *   item's turn comes) it applies to; any other run is SKIPPED with the
 *   reason, nothing is sent to Temporal;
 * - `check`: what is refused at creation, before any run is touched (a skip
 *   output that does not satisfy a selected run's pinned contract, a target
 *   version that does not exist);
 * - `apply`: the action on one run, through the library (`Pinflow`), so it
 *   goes to Temporal first like every operator action;
 * - `appliedBefore`: on an item claimed again (its first claim ended with
 *   the process, mid-call), whether this batch already acted on the run,
 *   answered by Temporal (the run's history), so a restart never acts twice.
 *
 * Idempotence at Temporal: every update a batch sends carries the update id
 * `ctx.updateId` (`batch:<batch id>`): on an open run Temporal answers a
 * repeated update with the first outcome instead of applying it again, and
 * the id in the run's history is how `appliedBefore` knows the batch did it.
 * An action that starts a new run (rerun, replay) must start it under
 * `ctx.newRunId(source)`, derived from the batch id and the source run id.
 */
import { createHash } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { z } from 'zod';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import { RUN_STATUSES, type BatchAction, type RunStatus } from '../graph/terminology';
import { checkSkipOutput } from '../catalog/contracts';
import type { VersionRecord } from '../catalog/versions';
import type { RunSummary } from '../projection/store';
import { decisionBody, migrateBody, replayBody, rerunBody } from './api-schemas';
import type { Pinflow } from './pinflow';

/** What an entry knows about the batch it acts for. */
export interface BatchActionContext {
  batchId: string;
  /** The batch's `by`: recorded as who decided on every run. */
  by: string;
  /** The batch's reason, with the batch id: `<reason> (batch <id>)`. */
  reason: string;
  /** The Temporal update id of every update this batch sends: `batch:<batch id>`. */
  updateId: string;
  /** The id of a run this batch starts from `sourceRunId` (rerun, replay): the same on every attempt. */
  newRunId(sourceRunId: string): string;
}

/** The run an item stands for, as snapshot at creation. */
export interface BatchItemRun {
  runId: string;
  /** The Temporal execution the projection knew at creation. */
  temporalRunId: string | null;
}

export interface BatchActionEntry<P> {
  params: z.ZodType<P>;
  appliesTo: readonly RunStatus[];
  /** In words, for the skipped reason: "skip applies to STALLED runs". */
  appliesToText: string;
  check?(pinflow: Pinflow, params: P, runs: readonly RunSummary[]): Promise<void>;
  apply(pinflow: Pinflow, run: BatchItemRun, params: P, ctx: BatchActionContext): Promise<Record<string, unknown>>;
  appliedBefore(pinflow: Pinflow, run: BatchItemRun, params: P, ctx: BatchActionContext): Promise<Record<string, unknown> | undefined>;
}

const OPEN: readonly RunStatus[] = ['RUNNING', 'STALLED', 'PAUSED'];
const STALLED: readonly RunStatus[] = ['STALLED'];

/** The update id a batch's updates carry. */
export const batchUpdateId = (batchId: string): string => `batch:${batchId}`;

/**
 * A deterministic run id for a run a batch starts from `sourceRunId`: the
 * source id (cut to leave room) plus a hash of batch and source, so it is the
 * same after a restart and distinct across batches. Matches RUN_ID_PATTERN.
 */
export function batchRunId(batchId: string, sourceRunId: string, kind: string): string {
  const h = createHash('sha256').update(`${batchId}\u0000${sourceRunId}`).digest('hex').slice(0, 16);
  return `${sourceRunId.slice(0, 160)}.${kind}-${h}`;
}

/** The executions of a run to look at: the latest, and the one snapshot at creation if it differs (a migration continues as new). */
function executions(pinflow: Pinflow, run: BatchItemRun): WorkflowHandle[] {
  const handles = [pinflow.client.workflow.getHandle(run.runId)];
  if (run.temporalRunId) handles.push(pinflow.client.workflow.getHandle(run.runId, run.temporalRunId));
  return handles;
}

/** Whether an update with this id was accepted in one of the run's executions (Temporal's history, the authority). */
async function updateInHistory(pinflow: Pinflow, run: BatchItemRun, updateId: string): Promise<boolean> {
  for (const handle of executions(pinflow, run)) {
    let history;
    try {
      history = await handle.fetchHistory();
    } catch {
      continue; // gone (retention) or never existed: nothing accepted there
    }
    for (const e of history.events ?? []) {
      if (e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.updateId === updateId) return true;
    }
  }
  return false;
}

const skipParams = decisionBody.pick({ output: true }).required();
const migrateParams = migrateBody.pick({ targetVersion: true, mapping: true });
const rerunParams = rerunBody.pick({ fromStep: true, occurrence: true, targetVersion: true, mapping: true });
const replayParams = replayBody.pick({ input: true, targetVersion: true });
/** Every status: a run that finished (or failed) is what one reruns or replays most. */
const ANY: readonly RunStatus[] = RUN_STATUSES;

/** The run this batch started from the source before a restart, if Temporal has it. */
async function startedBefore(pinflow: Pinflow, run: BatchItemRun, ctx: BatchActionContext): Promise<Record<string, unknown> | undefined> {
  const runId = ctx.newRunId(run.runId);
  try {
    await pinflow.client.workflow.getHandle(runId).describe();
    return { runId, created: false, note: 'started by this batch before a restart (found in Temporal)' };
  } catch {
    return undefined;
  }
}

/** Every stalled run's skip output against its pinned output contract, one version read per version. */
async function checkSkipOutputs(pinflow: Pinflow, output: unknown, runs: readonly RunSummary[]): Promise<void> {
  const versions = new Map<string, VersionRecord | undefined>();
  const problems: Array<{ runId: string; rpc: string; summary: string }> = [];
  for (const r of runs) {
    if (r.status !== 'STALLED' || !r.stall) continue;
    if (!versions.has(r.version)) versions.set(r.version, await pinflow.catalog.getVersion(r.version));
    const version = versions.get(r.version);
    const check = version ? checkSkipOutput(version, r.stall.id, output) : undefined;
    if (check && !check.ok) problems.push({ runId: r.id, rpc: check.rpc, summary: check.summary });
  }
  if (problems.length) {
    const first = problems[0]!;
    throw new PinflowError(
      ERROR_CODES.SKIP_OUTPUT_INVALID,
      `params.output does not satisfy the pinned output contract of RPC ${JSON.stringify(first.rpc)} for ${problems.length} selected run(s) (e.g. ${first.runId}): ${first.summary}; nothing was created`,
      { field: 'params.output', runs: problems.slice(0, 20), count: problems.length },
    );
  }
}

const decide = (action: 'retry' | 'skip') =>
  async (pinflow: Pinflow, run: BatchItemRun, params: { output?: unknown }, ctx: BatchActionContext): Promise<Record<string, unknown>> => {
    const res = await pinflow.resolveStall(run.runId, { action, by: ctx.by, reason: ctx.reason, ...(params.output !== undefined ? { output: params.output } : {}) }, { updateId: ctx.updateId });
    return { stallId: res.stallId, action: res.action };
  };

const decidedBefore = async (pinflow: Pinflow, run: BatchItemRun, _params: unknown, ctx: BatchActionContext) =>
  (await updateInHistory(pinflow, run, ctx.updateId)) ? { note: 'decided by this batch before a restart (found in the run history)' } : undefined;

/** The table. Adding an action: its name in BATCH_ACTIONS and one entry here. */
type ParamsOf<A extends BatchAction> = A extends 'skip'
  ? z.output<typeof skipParams>
  : A extends 'migrate'
    ? z.output<typeof migrateParams>
    : A extends 'pause' | 'resume'
      ? Record<string, never>
      : A extends 'rerun'
      ? z.output<typeof rerunParams>
      : A extends 'replay'
        ? z.output<typeof replayParams>
        : Record<string, never>;

export const BATCH_ACTION_TABLE: { [A in BatchAction]: BatchActionEntry<ParamsOf<A>> } = {
  cancel: {
    params: z.strictObject({}),
    appliesTo: OPEN,
    appliesToText: 'cancel applies to open (RUNNING, STALLED or PAUSED) runs',
    async apply(pinflow, run, _params, ctx) {
      await pinflow.cancel(run.runId, { by: ctx.by, reason: ctx.reason });
      return { cancellation: 'requested' };
    },
    // Cancel is idempotent at Temporal (one cancel request per execution); a request already in the history counts as ours.
    async appliedBefore(pinflow, run) {
      for (const handle of executions(pinflow, run).slice(0, 1)) {
        try {
          const history = await handle.fetchHistory();
          if ((history.events ?? []).some((e) => e.workflowExecutionCancelRequestedEventAttributes)) return { note: 'cancellation already requested (found in the run history)' };
        } catch {
          return undefined;
        }
      }
      return undefined;
    },
  },
  retry: {
    params: z.strictObject({}),
    appliesTo: STALLED,
    appliesToText: 'retry applies to STALLED runs',
    apply: decide('retry'),
    appliedBefore: decidedBefore,
  },
  skip: {
    params: skipParams,
    appliesTo: STALLED,
    appliesToText: 'skip applies to STALLED runs',
    check: (pinflow, params, runs) => checkSkipOutputs(pinflow, params.output, runs),
    apply: decide('skip'),
    appliedBefore: decidedBefore,
  },
  migrate: {
    params: migrateParams,
    appliesTo: OPEN,
    appliesToText: 'migrate applies to open (RUNNING, STALLED or PAUSED) runs',
    async check(pinflow, params) {
      await pinflow.getVersion(params.targetVersion);
    },
    async apply(pinflow, run, params, ctx) {
      const res = await pinflow.migrate(run.runId, { targetVersion: params.targetVersion, ...(params.mapping ? { mapping: params.mapping } : {}), by: ctx.by, reason: ctx.reason }, { updateId: ctx.updateId });
      return { at: res.at, carried: res.carried, dropped: res.dropped };
    },
    appliedBefore: decidedBefore,
  },
  // Pause and resume are idempotent at the run (a paused run answers "already paused"); a run this batch
  // paused before a restart holds a pause whose reason names the batch.
  pause: {
    params: z.strictObject({}),
    appliesTo: ['RUNNING', 'STALLED'],
    appliesToText: 'pause applies to RUNNING or STALLED runs (a PAUSED run already is)',
    async apply(pinflow, run, _params, ctx) {
      const res = await pinflow.pause(run.runId, { by: ctx.by, reason: ctx.reason });
      return { alreadyPaused: res.alreadyPaused };
    },
    async appliedBefore(pinflow, run, _params, ctx) {
      const state = await pinflow.state(run.runId).catch(() => undefined);
      return state?.pause?.reason === ctx.reason ? { note: 'paused by this batch before a restart (the run holds its pause)' } : undefined;
    },
  },
  resume: {
    params: z.strictObject({}),
    // A pause is pending (not yet PAUSED in the projection) until the run reaches a step boundary: resume lifts either.
    appliesTo: OPEN,
    appliesToText: 'resume applies to open runs (it lifts a held or a pending pause)',
    async apply(pinflow, run, _params, ctx) {
      const res = await pinflow.resume(run.runId, { by: ctx.by, reason: ctx.reason });
      return { wasPaused: res.wasPaused };
    },
    // Resuming twice is harmless. An item claimed again whose run is no longer paused counts as done:
    // it was resumed before the restart (by this batch, or by someone else: the note says so).
    async appliedBefore(pinflow, run) {
      const state = await pinflow.state(run.runId).catch(() => undefined);
      return state && !state.pause ? { note: 'no longer paused when claimed again after a restart (resumed before it)' } : undefined;
    },
  },
  // Rerun and replay start one new run per source run, with an id derived from the batch and the source,
  // so a restart finds the run it started instead of starting a second one.
  rerun: {
    params: rerunParams,
    appliesTo: ANY,
    appliesToText: 'rerun applies to runs of any status',
    async check(pinflow, params) {
      if (params.targetVersion) await pinflow.getVersion(params.targetVersion);
    },
    async apply(pinflow, run, params, ctx) {
      const res = await pinflow.rerun(run.runId, { ...params, runId: ctx.newRunId(run.runId), by: ctx.by, reason: ctx.reason });
      return { runId: res.runId, created: res.created, fromStep: res.fromStep };
    },
    appliedBefore: (pinflow, run, _params, ctx) => startedBefore(pinflow, run, ctx),
  },
  replay: {
    params: replayParams,
    appliesTo: ANY,
    appliesToText: 'replay applies to runs of any status',
    async check(pinflow, params) {
      if (params.targetVersion) await pinflow.getVersion(params.targetVersion);
    },
    async apply(pinflow, run, params, ctx) {
      const res = await pinflow.replay(run.runId, { ...params, runId: ctx.newRunId(run.runId), by: ctx.by, reason: ctx.reason });
      return { runId: res.runId, created: res.created };
    },
    appliedBefore: (pinflow, run, _params, ctx) => startedBefore(pinflow, run, ctx),
  },
};

export type AnyBatchActionEntry = BatchActionEntry<unknown>;

export function actionEntry(action: BatchAction): AnyBatchActionEntry {
  return BATCH_ACTION_TABLE[action] as unknown as AnyBatchActionEntry;
}
