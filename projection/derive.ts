/**
 * What a projection row means, once: the writes an interpreter activity call
 * makes. The live activities (activities/projection.ts, activities/rpc.ts,
 * activities/waits.ts) build their writes with these functions, and the
 * projection's rebuild (client/projection-rebuild.ts) builds the same writes
 * from a run's Temporal history: the activity calls the interpreter made
 * (captured by replaying the history, workflows/capture.ts) and, for the RPC
 * activity, the outcome Temporal recorded. Both apply them with the store's
 * idempotent methods (projection/writer.ts `applyWrite`).
 *
 * What history cannot say, the rebuild cannot write (named in the README,
 * "Verifying and rebuilding the projection"):
 * - an RPC attempt's own clock (`startedAt`, `finishedAt`): history has the
 *   server's times of the attempt's start and end instead;
 * - the error of an attempt before the last two (Temporal keeps the last
 *   attempt's failure and the one before it);
 * - a contract-drift note on a completed attempt (the live activity saw the
 *   live contract; history has only the output).
 */
import type {
  ContinueAsNewPlan,
  ErrorInfo,
  MigrationRecord,
  PauseInfo,
  RpcCall,
  RunClosed,
  RunInput,
  RunStarted,
  StallDecision,
  StallInfo,
  StepRecord,
  WaitClosing,
  WaitOpening,
} from '../graph/wire';
import type { ProjectionWrite } from './writer';

/** A write of the rebuild: the writer's kinds, and the correlation index's rows of a wait. */
export type DerivedWrite = ProjectionWrite | { kind: 'waitOpened'; runId: string; wait: WaitOpening } | { kind: 'waitClosed'; runId: string; wait: WaitClosing };

/** The run's row at its start (projectRunStarted). */
export function runStartedWrite(r: RunStarted): ProjectionWrite {
  return {
    kind: 'runStarted',
    runId: r.runId,
    run: {
      id: r.runId,
      definition: r.definition,
      version: r.version,
      tenant: r.tenant,
      temporalRunId: r.temporalRunId,
      startedAt: r.startedAt,
      input: r.input,
      metadata: r.metadata,
      parent: r.parent,
    },
  };
}

export function stallWrite(p: { runId: string; stall: StallInfo; trail: StepRecord[] }): ProjectionWrite {
  return { kind: 'stall', runId: p.runId, stall: { ...p.stall, details: { message: p.stall.message, ...(p.stall.details as object | undefined) } }, trail: p.trail };
}

export function pauseWrite(p: { runId: string; pause: PauseInfo; trail: StepRecord[] }): ProjectionWrite {
  return { kind: 'pause', runId: p.runId, pause: p.pause, trail: p.trail };
}

export function resumeWrite(p: { runId: string; since: string }): ProjectionWrite {
  return { kind: 'resume', runId: p.runId, since: p.since };
}

export function decisionWrite(p: { runId: string; decision: StallDecision; decidedAt: string; outcome: string }): ProjectionWrite {
  return {
    kind: 'decision',
    runId: p.runId,
    decision: {
      runId: p.runId,
      stallId: p.decision.stallId,
      action: p.decision.action,
      by: p.decision.by,
      reason: p.decision.reason,
      output: p.decision.output,
      decidedAt: p.decidedAt,
      outcome: p.outcome,
    },
  };
}

export function migrationWrite(m: MigrationRecord): ProjectionWrite {
  return { kind: 'migration', runId: m.runId, migration: m };
}

export function runClosedWrite(c: RunClosed): ProjectionWrite {
  return { kind: 'runClosed', runId: c.runId, closed: c };
}

/** The steps a continue-as-new projects before it goes (planContinueAsNew). */
export function continueAsNewTrailWrite(p: ContinueAsNewPlan): ProjectionWrite {
  return { kind: 'steps', runId: p.runId, steps: p.trail };
}

/**
 * The migration a continue-as-new with the `latest` policy made: `lineage`
 * is the moved run's lineage, whose last entry is the move.
 */
export function continueAsNewMigration(p: ContinueAsNewPlan, to: string, lineage: RunInput['lineage'] & object): MigrationRecord | undefined {
  const move = lineage[lineage.length - 1];
  if (!move) return undefined;
  return { runId: p.runId, from: p.version, to, upTo: p.at, at: p.at, by: move.by, stallId: null, decidedAt: move.migratedAt, lineage, trail: [] };
}

/** An RPC attempt's row before its outcome. */
export function rpcAttemptBase(call: RpcCall, attempt: number, startedAt: string): Omit<StepRecord, 'status'> {
  return {
    stepInstance: call.stepInstance,
    attempt,
    dispatch: call.dispatch ?? 1,
    stepId: call.stepId,
    stepType: 'rpc',
    seq: call.seq,
    startedAt,
    input: call.input,
  };
}

/** The wait step's row when the run reaches it (openWait). */
export function waitStepRecord(w: WaitOpening): StepRecord {
  return {
    stepInstance: w.stepInstance,
    attempt: 1,
    stepId: w.stepId,
    stepType: 'wait',
    seq: w.seq,
    status: 'RUNNING',
    startedAt: w.reachedAt,
    input: { event: w.event, correlationKey: w.correlationKey, waitId: w.waitId, timeoutAt: w.timeoutAt },
  };
}

/** The error type of an attempt whose error history does not keep (the rebuild keeps the projection's, when it has one). */
export const ERROR_NOT_IN_HISTORY = 'AttemptErrorNotInHistory';

/** What Temporal recorded of one RPC activity (one dispatch), read from history. */
export interface RpcOutcome {
  /** The last attempt Temporal started (0: none started yet). */
  attempt: number;
  /** When it started (server time). */
  startedAt: string | null;
  state: 'scheduled' | 'started' | 'completed' | 'failed' | 'timedOut' | 'cancelled';
  finishedAt: string | null;
  /** The handler's output (completed). */
  output?: unknown;
  /** The attempt's error (failed): the activity's own ErrorInfo when it raised one. */
  error?: ErrorInfo;
  /** How the attempt before the last one ended, as Temporal kept it. */
  previous?: { timedOut: boolean; error: ErrorInfo };
}

/**
 * The rows of one RPC activity, as its attempts wrote them: the trail and the
 * attempt rows. Attempts before the last failed (their error is the one
 * Temporal kept, or a marker); an attempt that timed out is written
 * RUNNING, as its worker left it, and the store supersedes it when the
 * later attempt's row lands (projection/sql.ts), as it does live.
 */
export function rpcWrite(call: RpcCall, o: RpcOutcome): ProjectionWrite {
  const rows: StepRecord[] = [...call.trail];
  const at = o.startedAt ?? new Date(0).toISOString();
  for (let attempt = 1; attempt < o.attempt; attempt++) {
    const base = rpcAttemptBase(call, attempt, at);
    const last = attempt === o.attempt - 1 ? o.previous : undefined;
    if (last?.timedOut) rows.push({ ...base, status: 'RUNNING' });
    else rows.push({ ...base, status: 'FAILED', finishedAt: at, error: last?.error ?? { type: ERROR_NOT_IN_HISTORY, message: `attempt ${attempt} failed; Temporal history keeps only the last two attempts' errors`, stepId: call.stepId, stepInstance: call.stepInstance, attempt } });
  }
  if (o.attempt > 0) {
    const base = rpcAttemptBase(call, o.attempt, at);
    if (o.state === 'completed') rows.push({ ...base, status: 'COMPLETED', finishedAt: o.finishedAt ?? at, output: o.output === undefined ? null : o.output });
    else if (o.state === 'failed') rows.push({ ...base, status: 'FAILED', finishedAt: o.finishedAt ?? at, error: o.error ?? { type: 'RpcFailed', message: 'the attempt failed', stepId: call.stepId, stepInstance: call.stepInstance, attempt: o.attempt } });
    else rows.push({ ...base, status: 'RUNNING' });
  }
  return { kind: 'steps', runId: call.runId, steps: rows, currentStep: call.stepInstance, version: call.version };
}

/** An ErrorInfo the activity put in its failure's details, if it is one. */
export function errorInfoOf(details: unknown): ErrorInfo | undefined {
  if (typeof details !== 'object' || details === null) return undefined;
  const e = details as Partial<ErrorInfo>;
  return typeof e.type === 'string' && typeof e.message === 'string' ? (details as ErrorInfo) : undefined;
}
