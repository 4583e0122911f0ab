/**
 * The projection checked against Temporal history, and rebuilt from it
 * (DESIGN.md: the projection is a derived view that can be rebuilt).
 *
 * For one run: read every execution of it (the latest, then back along
 * continue-as-new), replay each through the interpreter bundle with a
 * capture worker (worker/history.ts), which tells the activity calls the
 * interpreter made, with their arguments, in order; read each RPC
 * activity's outcome from the history's events. Those become the same
 * writes the live activities make (projection/derive.ts) and are applied with
 * the same store methods, inside one transaction that first clears the run's
 * derived rows. `verify` does exactly that and rolls back, comparing the rows
 * before and after: what differs is the drift. So there is one definition of
 * what a row means, and verify and rebuild cannot disagree with each other.
 *
 * Which runs: those Temporal's visibility lists (the interpreter's workflow
 * type, `StartTime >= since`, `PinflowDefinition`), or the ones named. The
 * rows a run has that no history holds are kept: the run's origin (rerun,
 * replay), its `cancel` decisions (the API records who asked), its
 * attention flags (the next check rewrites them).
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { decodeFromPayloadsAtIndex, decodeOptionalFailureToOptionalError } from '@temporalio/common/lib/internal-non-workflow';
import { ApplicationFailure, TimeoutFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { Db, Query } from '../db/connection';
import { SEARCH_ATTRIBUTES, WORKFLOW_TYPE } from '../graph/terminology';
import type { ContinueAsNewPlan, ErrorInfo, RpcCall, RunInput, RunStarted, WaitClosing, WaitOpening } from '../graph/wire';
import {
  continueAsNewMigration,
  continueAsNewTrailWrite,
  decisionWrite,
  ERROR_NOT_IN_HISTORY,
  errorInfoOf,
  migrationWrite,
  pauseWrite,
  resumeWrite,
  rpcWrite,
  runClosedWrite,
  runStartedWrite,
  stallWrite,
  type DerivedWrite,
  type RpcOutcome,
} from '../projection/derive';
import { EventStore } from '../projection/events';
import { ProjectionStore } from '../projection/store';
import { applyWrite } from '../projection/writer';
import { readExecution, type ExecutionRead } from '../worker/history';
import { endedWithoutGraph } from './reconcile';
import { runPolicies, runPolicyDays, type RunPolicy } from './retention';

/**
 * Columns written from a process clock (the client's start, an RPC
 * attempt's own start and end) rather than from history: the rebuild writes
 * history's time of the same moment, so they are compared within this much.
 */
export const CLOCK_TOLERANCE_MS = 60_000;

/** A run's derived rows, as compared: one canonical form for the projection and for history. */
export interface RunRows {
  run: Record<string, unknown> | null;
  details: Record<string, unknown> | null;
  steps: Record<string, Record<string, unknown>>;
  waits: Record<string, Record<string, unknown>>;
  decisions: Record<string, Record<string, unknown>>;
}

/** One difference between the projection and what history says. */
export interface Drift {
  runId: string;
  /** `run`, `details`, `step`, `wait` or `decision`. */
  table: 'run' | 'details' | 'step' | 'wait' | 'decision';
  /** The row's key within the run (step `instance#dispatch.attempt`, wait id, decision `stallId/action`); `` for the run. */
  key: string;
  /** `missing` (history has it, the projection not), `extra` (the projection has it, history not), or the column that differs. */
  field: string;
  projection: unknown;
  history: unknown;
}

export const DRIFT_TABLES = ['run', 'details', 'step', 'wait', 'decision'] as const;

const TIME_COLUMNS = new Set(['started_at', 'closed_at', 'stalled_at', 'paused_at', 'finished_at', 'reached_at', 'timeout_at', 'decided_at']);
const CLOCK_COLUMNS: Record<string, Set<string>> = {
  run: new Set(['started_at']),
  step: new Set(['started_at', 'finished_at']),
};

const DUMP = {
  run: (runId: string): Query => ({
    text: `SELECT definition, version, tenant, status, temporal_run_id, current_step, error_summary, started_at, closed_at, parent_run_id, parent_step,
                  stall_id, stall_reason, stall_rpc, stall_step, stall_details, stalled_at, paused_at, paused_by, paused_reason, paused_before
             FROM runs WHERE id = $1`,
    values: [runId],
  }),
  details: (runId: string): Query => ({ text: `SELECT input, output, error, metadata, lineage FROM run_details WHERE run_id = $1`, values: [runId] }),
  steps: (runId: string): Query => ({
    text: `SELECT step_instance, dispatch, attempt, step_id, step_type, seq, status, started_at, finished_at, input, output, error FROM run_steps WHERE run_id = $1`,
    values: [runId],
  }),
  waits: (runId: string): Query => ({
    text: `SELECT wait_id, step_instance, tenant, event_name, correlation_key, has_filter, status, reached_at, timeout_at, resolved_event_id, closed_at FROM run_waits WHERE run_id = $1`,
    values: [runId],
  }),
  decisions: (runId: string): Query => ({
    text: `SELECT stall_id, action, decided_by, reason, output, decided_at, outcome FROM run_decisions WHERE run_id = $1`,
    values: [runId],
  }),
};

function normal(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[k] = v instanceof Date ? v.toISOString() : TIME_COLUMNS.has(k) && typeof v === 'string' ? new Date(v).toISOString() : v;
  return out;
}

/** The run's derived rows, read in `db` (a transaction sees its own writes). */
export async function dumpRun(db: Db, runId: string): Promise<RunRows> {
  // One after the other: inside a transaction they share one connection.
  const run = await db.query<Record<string, unknown>>(DUMP.run(runId));
  const details = await db.query<Record<string, unknown>>(DUMP.details(runId));
  const steps = await db.query<Record<string, unknown>>(DUMP.steps(runId));
  const waits = await db.query<Record<string, unknown>>(DUMP.waits(runId));
  const decisions = await db.query<Record<string, unknown>>(DUMP.decisions(runId));
  const keyed = (rows: Array<Record<string, unknown>>, key: (r: Record<string, unknown>) => string) => Object.fromEntries(rows.map((r) => [key(r), normal(r)]));
  return {
    run: run[0] ? normal(run[0]) : null,
    details: details[0] ? normal(details[0]) : null,
    steps: keyed(steps, (r) => `${String(r.step_instance)}#${String(r.dispatch)}.${String(r.attempt)}`),
    waits: keyed(waits, (r) => String(r.wait_id)),
    decisions: keyed(decisions, (r) => `${typeof r.stall_id === 'string' ? r.stall_id : ''}/${String(r.action)}`),
  };
}

/** JSON with sorted keys: jsonb and JavaScript order keys differently. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}

function sameValue(table: string, column: string, a: unknown, b: unknown): boolean {
  if (CLOCK_COLUMNS[table]?.has(column) && typeof a === 'string' && typeof b === 'string') return Math.abs(Date.parse(a) - Date.parse(b)) <= CLOCK_TOLERANCE_MS;
  return canonical(a) === canonical(b);
}

/** What differs between the projection's rows and history's, row by row and column by column. */
export function diffRuns(runId: string, projection: RunRows, history: RunRows): Drift[] {
  const drift: Drift[] = [];
  const row = (table: Drift['table'], key: string, p: Record<string, unknown> | null | undefined, h: Record<string, unknown> | null | undefined) => {
    if (!p && !h) return;
    if (!p) return void drift.push({ runId, table, key, field: 'missing', projection: null, history: h });
    if (!h) return void drift.push({ runId, table, key, field: 'extra', projection: p, history: null });
    for (const column of new Set([...Object.keys(p), ...Object.keys(h)])) {
      if (!sameValue(table, column, p[column], h[column])) drift.push({ runId, table, key, field: column, projection: p[column] ?? null, history: h[column] ?? null });
    }
  };
  row('run', '', projection.run, history.run);
  row('details', '', projection.details, history.details);
  const keyed = (table: Drift['table'], p: Record<string, Record<string, unknown>>, h: Record<string, Record<string, unknown>>) => {
    for (const key of [...new Set([...Object.keys(p), ...Object.keys(h)])].sort()) row(table, key, p[key], h[key]);
  };
  keyed('step', projection.steps, history.steps);
  keyed('wait', projection.waits, history.waits);
  keyed('decision', projection.decisions, history.decisions);
  return drift;
}

/** What a run's history says, ready to apply. */
export interface DerivedRun {
  runId: string;
  /** Its executions, first to latest. */
  executions: number;
  start: RunStarted;
  writes: DerivedWrite[];
  /** The versions its executions ran, with the graph and contracts pinned in their histories (the rows' redaction). */
  versions: Map<string, Pick<RunInput, 'graph' | 'contracts'>>;
  /** Set when Temporal ended the run without its graph (terminate, workflow timeout): the reconciler's close. */
  ended?: { status: 'TERMINATED'; error: { type: string; message: string }; closedAt: string; temporalRunId: string };
}

function eventTime(e: Pick<temporal.api.history.v1.IHistoryEvent, 'eventTime'>): string {
  const t = e.eventTime;
  return new Date(Number(t?.seconds ?? 0) * 1000 + Math.floor((t?.nanos ?? 0) / 1e6)).toISOString();
}

/** A failure from history, as the attempt's error (the activity's own ErrorInfo when it raised one). */
async function failureOf(client: Client, f: temporal.api.failure.v1.IFailure | null | undefined, fallback: string): Promise<{ timedOut: boolean; error: ErrorInfo }> {
  const err = await decodeOptionalFailureToOptionalError(client.options.loadedDataConverter, f ?? undefined);
  const details = err instanceof ApplicationFailure ? err.details?.[0] : undefined;
  return { timedOut: err instanceof TimeoutFailure, error: errorInfoOf(details) ?? { type: err instanceof ApplicationFailure ? (err.type ?? fallback) : fallback, message: err?.message ?? fallback } };
}

/**
 * The RPC activities' outcomes of one execution, in the order they were
 * scheduled. `pending`: the execution's pending activities (an open run),
 * which say what history does not yet: the attempt in flight, or the
 * retry waiting for its backoff, and the failure before it.
 */
async function rpcOutcomes(client: Client, history: temporal.api.history.v1.IHistory, pending: temporal.api.workflow.v1.IPendingActivityInfo[] = []): Promise<RpcOutcome[]> {
  const converter = client.options.loadedDataConverter;
  const bySchedule = new Map<string, RpcOutcome>();
  const byActivityId = new Map<string, RpcOutcome>();
  const order: RpcOutcome[] = [];
  const failure = (f: temporal.api.failure.v1.IFailure | null | undefined, fallback: string) => failureOf(client, f, fallback);
  for (const e of history.events ?? []) {
    const id = String(e.eventId ?? '');
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) {
      if (scheduled.activityType?.name !== 'invokeRpc') continue;
      const o: RpcOutcome = { attempt: 0, startedAt: null, state: 'scheduled', finishedAt: null };
      bySchedule.set(id, o);
      byActivityId.set(scheduled.activityId ?? '', o);
      order.push(o);
      continue;
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const o = bySchedule.get(String(started.scheduledEventId ?? ''));
      if (!o) continue;
      o.attempt = started.attempt ?? 1;
      o.startedAt = eventTime(e);
      o.state = 'started';
      if (started.lastFailure && o.attempt > 1) o.previous = await failure(started.lastFailure, 'AttemptFailed');
      continue;
    }
    const completed = e.activityTaskCompletedEventAttributes;
    if (completed) {
      const o = bySchedule.get(String(completed.scheduledEventId ?? ''));
      if (!o) continue;
      o.state = 'completed';
      o.finishedAt = eventTime(e);
      o.output = await decodeFromPayloadsAtIndex(converter, 0, completed.result?.payloads);
      continue;
    }
    const failed = e.activityTaskFailedEventAttributes;
    if (failed) {
      const o = bySchedule.get(String(failed.scheduledEventId ?? ''));
      if (!o) continue;
      o.state = 'failed';
      o.finishedAt = eventTime(e);
      o.error = (await failure(failed.failure, 'RpcFailed')).error;
      continue;
    }
    const timedOut = e.activityTaskTimedOutEventAttributes;
    if (timedOut) {
      const o = bySchedule.get(String(timedOut.scheduledEventId ?? ''));
      if (o) o.state = 'timedOut';
      continue;
    }
    const cancelled = e.activityTaskCanceledEventAttributes;
    if (cancelled) {
      const o = bySchedule.get(String(cancelled.scheduledEventId ?? ''));
      if (o) o.state = 'cancelled';
    }
  }
  for (const p of pending) {
    const o = byActivityId.get(p.activityId ?? '');
    if (!o || o.state !== 'scheduled') continue;
    const attempt = p.attempt ?? 1;
    const last = p.lastFailure ? await failure(p.lastFailure, 'AttemptFailed') : undefined;
    if (p.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED) {
      // In flight: its attempt row is RUNNING (as the live activity writes it), the one before failed.
      o.attempt = attempt;
      o.state = 'started';
      o.startedAt = p.lastStartedTime ? eventTime({ eventTime: p.lastStartedTime }) : null;
      if (last && attempt > 1) o.previous = last;
    } else if (attempt > 1 && last) {
      // Waiting for its retry: the attempt before failed (or timed out), and the next has no row yet.
      o.attempt = attempt - 1;
      o.state = last.timedOut ? 'timedOut' : 'failed';
      o.startedAt = p.lastStartedTime ? eventTime({ eventTime: p.lastStartedTime }) : null;
      o.finishedAt = o.startedAt;
      o.error = last.error;
    }
  }
  return order;
}

/** The run-level projection activities, by name, and the write each makes (as the live activity does). */
const RUN_LEVEL_WRITES: Partial<Record<string, (arg: never) => DerivedWrite>> = {
  projectRunStarted: runStartedWrite,
  projectStall: stallWrite,
  projectPause: pauseWrite,
  projectResume: resumeWrite,
  projectDecision: decisionWrite,
  projectMigration: migrationWrite,
  projectRunClosed: runClosedWrite,
};

/** The writes one execution's activity calls make. `next` is the execution it continued into, if any. */
async function executionWrites(client: Client, ex: ExecutionRead, next: ExecutionRead | undefined, pending?: temporal.api.workflow.v1.IPendingActivityInfo[]): Promise<DerivedWrite[]> {
  const outcomes = await rpcOutcomes(client, ex.history, pending);
  let rpc = 0;
  const writes: DerivedWrite[] = [];
  for (const call of ex.activities) {
    const arg = call.args[0] as never;
    const runLevel = RUN_LEVEL_WRITES[call.type];
    if (runLevel) {
      writes.push(runLevel(arg));
      continue;
    }
    switch (call.type) {
      case 'planContinueAsNew': {
        const plan = arg as ContinueAsNewPlan;
        writes.push(continueAsNewTrailWrite(plan));
        // The move to the latest version is the activity's result; the next execution starts on it.
        if (plan.policy === 'latest' && next && next.input.version !== plan.version && next.input.lineage) {
          const m = continueAsNewMigration(plan, next.input.version, next.input.lineage);
          if (m) writes.push(migrationWrite(m));
        }
        break;
      }
      case 'openWait':
        writes.push({ kind: 'waitOpened', runId: (arg as WaitOpening).runId, wait: arg });
        break;
      case 'closeWait':
        writes.push({ kind: 'waitClosed', runId: (arg as WaitClosing).runId, wait: arg });
        break;
      case 'invokeRpc': {
        const o = outcomes[rpc++];
        if (!o) throw new Error(`run ${(arg as RpcCall).runId}: the interpreter called RPC step ${(arg as RpcCall).stepInstance} but the history has no activity scheduled for it`);
        writes.push(rpcWrite(arg, o));
        break;
      }
      default:
        // resolveChildVersion, consumeBuffered: no projection row of the run.
        break;
    }
  }
  return writes;
}

/**
 * The most executions (continue-as-new, migrations) a run may have for the
 * rebuild to read it whole. A longer run is refused (an error for that run),
 * never rebuilt from part of its history.
 */
export const MAX_EXECUTIONS_REBUILT = 1_000;

/** Every execution of run `runId`, first to latest, read from Temporal history. */
async function readExecutions(client: Client, runId: string): Promise<ExecutionRead[]> {
  const chain: ExecutionRead[] = [];
  let temporalRunId: string | undefined;
  do {
    if (chain.length >= MAX_EXECUTIONS_REBUILT) throw new Error(`run ${runId} has more than ${MAX_EXECUTIONS_REBUILT} executions: not rebuilt from part of its history`);
    const ex = await readExecution(client, runId, temporalRunId, { dataConverter: client.options.dataConverter });
    chain.unshift(ex);
    temporalRunId = ex.previousRunId;
  } while (temporalRunId);
  return chain;
}

/** Whether the execution's history has not closed (the run is open). */
function isOpen(ex: ExecutionRead): boolean {
  const events = ex.history.events ?? [];
  const last = events[events.length - 1];
  return !last || !(
    last.workflowExecutionCompletedEventAttributes ||
    last.workflowExecutionFailedEventAttributes ||
    last.workflowExecutionCanceledEventAttributes ||
    last.workflowExecutionTerminatedEventAttributes ||
    last.workflowExecutionTimedOutEventAttributes ||
    last.workflowExecutionContinuedAsNewEventAttributes
  );
}

/** An open execution's pending activities (what history does not say yet). */
async function pendingActivities(client: Client, runId: string, temporalRunId: string): Promise<temporal.api.workflow.v1.IPendingActivityInfo[]> {
  const d = await client.workflowService.describeWorkflowExecution({ namespace: client.options.namespace, execution: { workflowId: runId, runId: temporalRunId } });
  return d.pendingActivities ?? [];
}

/** How the latest execution ended, when Temporal ended it without its graph. */
function endedByTemporal(ex: ExecutionRead): DerivedRun['ended'] {
  const events = ex.history.events ?? [];
  const last = events[events.length - 1];
  if (!last) return undefined;
  if (last.workflowExecutionTerminatedEventAttributes) {
    const { status, error } = endedWithoutGraph('TERMINATED', last.workflowExecutionTerminatedEventAttributes);
    return { status, error, closedAt: eventTime(last), temporalRunId: ex.temporalRunId };
  }
  if (last.workflowExecutionTimedOutEventAttributes) {
    const { status, error } = endedWithoutGraph('TIMED_OUT');
    return { status, error, closedAt: eventTime(last), temporalRunId: ex.temporalRunId };
  }
  return undefined;
}

/** What run `runId`'s Temporal history says its projection rows are. */
export async function deriveRun(client: Client, runId: string): Promise<DerivedRun> {
  const executions = await readExecutions(client, runId);
  const writes: DerivedWrite[] = [];
  const latest = executions[executions.length - 1]!;
  const pending = isOpen(latest) ? await pendingActivities(client, runId, latest.temporalRunId) : undefined;
  for (let i = 0; i < executions.length; i++) writes.push(...(await executionWrites(client, executions[i]!, executions[i + 1], i === executions.length - 1 ? pending : undefined)));
  const captured = executions.flatMap((ex) => ex.activities).find((c) => c.type === 'projectRunStarted')?.args[0] as RunStarted | undefined;
  const start = captured ?? startOf(executions[0]!);
  // A run that did not get as far as its run-started write still has its row (the client writes it at start).
  if (!captured) writes.unshift(runStartedWrite(start));
  const ended = endedByTemporal(latest);
  const versions = new Map(executions.map((ex) => [ex.input.version, { graph: ex.input.graph, contracts: ex.input.contracts }] as const));
  return { runId, executions: executions.length, start, writes, versions, ...(ended ? { ended } : {}) };
}

/** A run whose history has no run-started write (it did not get that far): its row from the start input. */
function startOf(ex: ExecutionRead): RunStarted {
  const input: RunInput = ex.input;
  const first = ex.history.events?.[0];
  return {
    runId: input.runId,
    temporalRunId: ex.temporalRunId,
    definition: input.definition,
    version: input.version,
    tenant: input.tenant,
    input: input.input,
    metadata: input.metadata,
    startedAt: first ? eventTime(first) : new Date().toISOString(),
    ...(input.parent ? { parent: input.parent } : {}),
  };
}

/**
 * Clear the run's derived rows and write its row back to how it started.
 * Kept: the run's origin, its `cancel` decisions (recorded by the API, not
 * by the run), its attention flags.
 */
const RESET: Array<(runId: string) => Query> = [
  (runId) => ({ text: `DELETE FROM run_steps WHERE run_id = $1`, values: [runId] }),
  (runId) => ({ text: `DELETE FROM run_waits WHERE run_id = $1`, values: [runId] }),
  (runId) => ({ text: `DELETE FROM run_decisions WHERE run_id = $1 AND action <> 'cancel'`, values: [runId] }),
  (runId) => ({ text: `DELETE FROM run_details WHERE run_id = $1`, values: [runId] }),
];

const resetRun = (s: RunStarted): Query => ({
  text: `UPDATE runs SET definition = $2, version = $3, tenant = $4, status = 'RUNNING', temporal_run_id = $5, current_step = NULL, error_summary = NULL,
                started_at = $6, updated_at = $6, closed_at = NULL, parent_run_id = $7, parent_step = $8,
                stall_id = NULL, stall_reason = NULL, stall_rpc = NULL, stall_step = NULL, stall_details = NULL, stalled_at = NULL,
                paused_at = NULL, paused_by = NULL, paused_reason = NULL, paused_before = NULL
          WHERE id = $1`,
  values: [s.runId, s.definition, s.version, s.tenant, s.temporalRunId, s.startedAt, s.parent?.runId ?? null, s.parent?.stepInstance ?? null],
});

async function applyDerived(store: ProjectionStore, events: EventStore, w: DerivedWrite): Promise<void> {
  if (w.kind === 'waitOpened') return events.recordWaitOpened(w.wait);
  if (w.kind === 'waitClosed') return events.closeWait(w.wait);
  return applyWrite(store, w);
}

/**
 * An early attempt's error is not in history (Temporal keeps the last two):
 * the rebuilt row keeps the error the projection had for it, if it had one.
 */
function keepErrorsHistoryLacks(w: DerivedWrite, before: RunRows): DerivedWrite {
  if (w.kind !== 'steps') return w;
  const steps = w.steps.map((st) => {
    if (st.error?.type !== ERROR_NOT_IN_HISTORY) return st;
    const had = before.steps[`${st.stepInstance}#${st.dispatch ?? 1}.${st.attempt}`]?.error as ErrorInfo | null | undefined;
    return had ? { ...st, error: had } : st;
  });
  return { ...w, steps };
}

/** Thrown inside a verify's transaction to roll it back with its findings. */
class VerifyOnly extends Error {
  constructor(readonly drift: Drift[] | 'pruned') {
    super('verify only: rolled back');
  }
}

/**
 * Whether a run missing from the projection is one retention pruned: closed,
 * due by its policy now, and not exempt by a legal hold or `retain` (the
 * sweep's rules, client/retention.ts).
 */
async function prunedByRetention(tx: Db, runId: string, rows: RunRows, policies: RunPolicy[], now: number): Promise<boolean> {
  const run = rows.run;
  if (!run || typeof run.closed_at !== 'string') return false;
  const days = runPolicyDays(policies, String(run.definition), String(run.status));
  if (days === null || Date.parse(run.closed_at) >= now - days * 86_400_000) return false;
  const metadata = rows.details?.metadata as Record<string, unknown> | undefined;
  if (metadata?.retain === true || metadata?.retain === 'true') return false;
  const held = await tx.query({ text: `SELECT 1 FROM run_holds WHERE run_id = $1`, values: [runId] });
  return held.length === 0;
}

/**
 * Apply what history says to run `derived.runId`'s rows, in one transaction,
 * and return what differed from the rows before. With `write: false` the
 * transaction is rolled back: nothing changes (a verify).
 */
export async function rewriteRun(db: Db, derived: DerivedRun, opts: { write: boolean; retention?: RunPolicy[]; now?: number }): Promise<Drift[] | 'pruned'> {
  try {
    return await db.transaction(async (tx) => {
      const before = await dumpRun(tx, derived.runId);
      for (const q of RESET) await tx.query(q(derived.runId));
      await tx.query(resetRun(derived.start));
      const store = new ProjectionStore(tx);
      const events = new EventStore(tx, store);
      // Redacted by the graph the run pinned, as live (and so even when the version GC removed its catalog row).
      for (const [hash, v] of derived.versions) store.knowVersion(hash, v);
      for (const w of derived.writes) await applyDerived(store, events, keepErrorsHistoryLacks(w, before));
      if (derived.ended) await store.reconcileClose({ runId: derived.runId, status: derived.ended.status, error: derived.ended.error, closedAt: derived.ended.closedAt, temporalRunId: derived.ended.temporalRunId, closeAttempts: true });
      const after = await dumpRun(tx, derived.runId);
      // Gone from the projection because retention pruned it: what the policy asked for, not drift.
      if (!before.run && opts.retention && (await prunedByRetention(tx, derived.runId, after, opts.retention, opts.now ?? Date.now()))) throw new VerifyOnly('pruned');
      const drift = diffRuns(derived.runId, before, after);
      if (!opts.write) throw new VerifyOnly(drift);
      return drift;
    });
  } catch (err) {
    if (err instanceof VerifyOnly) return err.drift;
    throw err;
  }
}

/** Which runs to check or rebuild. */
export interface RunRange {
  /** Runs started at or after this time. */
  since?: string | undefined;
  definition?: string | undefined;
  /** These runs only (ignores since and definition). */
  runIds?: string[] | undefined;
}

export interface RunResult {
  runId: string;
  /**
   * `ok` (no drift), `drift`, `rebuilt` (drift, written), `error` (history
   * could not be read or applied), `pruned` (not in the projection, and the
   * retention policy says it is due: not drift, and not written back).
   */
  outcome: 'ok' | 'drift' | 'rebuilt' | 'error' | 'pruned';
  drift: Drift[];
  error?: string;
}

export interface PassTotals {
  /** Runs compared (listed by Temporal, or named). */
  checked: number;
  /** Runs with drift (verify) or rewritten with drift (rebuild). */
  drifted: number;
  /** Differences, all runs together, by table. */
  drift: Record<Drift['table'], number>;
  errors: number;
  /** Runs Temporal still has and the projection does not because retention pruned them (their policy says they are due). */
  pruned: number;
  /**
   * Runs of the range the projection lists and Temporal does not (deleted by
   * the namespace's retention, or never started): not drift, named for the
   * operator (at most 100; the reconciler closes open ones as TERMINATED).
   */
  unknownToTemporal: string[];
  durationMs: number;
}

/** The projection's runs of `range` (to find those Temporal does not list). */
const projectedRuns = (range: RunRange): Query => {
  const where: string[] = [];
  const values: unknown[] = [];
  if (range.since) where.push(`started_at >= $${values.push(new Date(range.since).toISOString())}`);
  if (range.definition) where.push(`definition = $${values.push(range.definition)}`);
  return { text: `SELECT id FROM runs${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY started_at DESC LIMIT 100000`, values };
};

/** The runs Temporal's visibility lists for `range`: one id per run, whatever its executions. */
export async function* listRunIds(client: Client, range: RunRange): AsyncGenerator<string> {
  if (range.runIds) {
    yield* range.runIds;
    return;
  }
  const clauses = [`WorkflowType = '${WORKFLOW_TYPE}'`];
  if (range.since) clauses.push(`StartTime >= '${new Date(range.since).toISOString()}'`);
  if (range.definition) clauses.push(`${SEARCH_ATTRIBUTES.definition} = '${range.definition.replace(/'/g, "\\'")}'`);
  const seen = new Set<string>();
  for await (const w of client.workflow.list({ query: clauses.join(' AND ') }) as AsyncIterable<WorkflowExecutionInfo>) {
    if (seen.has(w.workflowId)) continue;
    seen.add(w.workflowId);
    yield w.workflowId;
  }
}

/**
 * Verify (`write: false`) or rebuild (`write: true`) the runs of `range`,
 * `concurrency` at a time, telling `onRun` each run's result as it is done.
 */
export async function projectionPass(
  deps: { client: Client; db: Db },
  range: RunRange,
  opts: { write: boolean; concurrency?: number; onRun?: (r: RunResult) => void; /** The time retention's dues are computed at (tests). @default now */ now?: number },
): Promise<PassTotals> {
  const began = Date.now();
  const totals: PassTotals = { checked: 0, drifted: 0, drift: { run: 0, details: 0, step: 0, wait: 0, decision: 0 }, errors: 0, pruned: 0, unknownToTemporal: [], durationMs: 0 };
  const seen = new Set<string>();
  const policies = await runPolicies(deps.db);
  const one = async (runId: string): Promise<void> => {
    let result: RunResult;
    try {
      const derived = await deriveRun(deps.client, runId);
      const drift = await rewriteRun(deps.db, derived, { write: opts.write, retention: policies, ...(opts.now !== undefined ? { now: opts.now } : {}) });
      result = drift === 'pruned' ? { runId, outcome: 'pruned', drift: [] } : { runId, outcome: drift.length === 0 ? 'ok' : opts.write ? 'rebuilt' : 'drift', drift };
    } catch (err) {
      result = { runId, outcome: 'error', drift: [], error: (err as Error).message };
    }
    totals.checked++;
    if (result.outcome === 'error') totals.errors++;
    if (result.outcome === 'pruned') totals.pruned++;
    if (result.drift.length) totals.drifted++;
    for (const d of result.drift) totals.drift[d.table]++;
    opts.onRun?.(result);
  };
  const limit = Math.max(1, opts.concurrency ?? 4);
  const running = new Set<Promise<void>>();
  for await (const runId of listRunIds(deps.client, range)) {
    seen.add(runId);
    const p = one(runId).finally(() => running.delete(p));
    running.add(p);
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  if (!range.runIds) {
    const rows = await deps.db.query<{ id: string }>(projectedRuns(range));
    totals.unknownToTemporal = rows.map((r) => r.id).filter((id) => !seen.has(id)).slice(0, 100);
  }
  totals.durationMs = Date.now() - began;
  return totals;
}
