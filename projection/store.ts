/**
 * The run projection: idempotent writes and reads of the Postgres mirror of
 * runs, their steps, stalls, decisions and migrations. Derived from Temporal
 * history and never consulted to orchestrate a run: the interpreter decides
 * from its own history, operator actions go to Temporal first and this view
 * follows what Temporal accepted. Definitions and versions are not here: they
 * are the catalog (`catalog/versions.ts`), which is authoritative.
 */
import { ERROR_CODES, InvalidRequestError } from '../graph/errors';
import { RUN_STATUSES, type DecisionAction, type RunStatus, type StepCountState } from '../graph/terminology';
import type { ErrorInfo, LineageEntry, MigrationRecord, RunOrigin, StepRecord } from '../graph/wire';
import { decodeCursor, encodeCursor } from './cursor';
import { iso, type Db } from '../db/connection';
import * as eventSql from './event-sql';
import * as sql from './sql';
import { RunRedaction } from './redaction';
import { redactRunInput, redactStepOutput, stepIdOfInstance, redactStepRecord, type RedactableVersion, type RedactionPlan } from '../graph/redact';

export interface RunSummary {
  id: string;
  definition: string;
  version: string;
  tenant: string;
  status: RunStatus;
  temporalRunId: string | null;
  /** Set for runs started by a `child` step. */
  parentRunId: string | null;
  parentStep: string | null;
  /** Set while the run is STALLED. */
  stall: { id: string; reason: string; rpc: string; stepInstance: string; details: unknown; since: string } | null;
  /** Set while the run is PAUSED (FLAGS.PAUSE): who, why, since, and the top-level step it resumes at. */
  pause: { by: string; reason: string | null; since: string; before: string | null } | null;
  currentStep: string | null;
  errorSummary: string | null;
  startedAt: string;
  updatedAt: string;
  closedAt: string | null;
}

export interface StepRow extends StepRecord {
  finishedAt?: string;
}

export interface RunDetail extends RunSummary {
  input: unknown;
  output: unknown;
  error: ErrorInfo | null;
  metadata: Record<string, unknown>;
  steps: StepRow[];
  /** Runs started by this run's `child` steps. */
  children: RunSummary[];
  /** Operator decisions on this run, oldest first. */
  decisions: DecisionRow[];
  /** Versions this run ran before its current one, and up to which step. */
  lineage: LineageEntry[];
  /** Set when this run is a rerun or replay of another run. */
  origin: (RunOrigin & { createdAt: string }) | null;
  /** Reruns and replays started from this run (the first 100). */
  reruns: Array<{ runId: string; kind: RunOrigin['kind']; fromStep: string | null; createdAt: string; status: string | null; version: string | null }>;
}

export interface DecisionRow {
  stallId: string | null;
  action: DecisionAction;
  by: string;
  reason: string | null;
  output: unknown;
  decidedAt: string;
  outcome: string;
}

/** One group of `GET /stalls`: open stalls of one definition, version, RPC and reason. */
export interface StallGroup {
  definition: string;
  version: string;
  versionSeq: number | null;
  rpc: string;
  reason: string;
  count: number;
  oldestSince: string;
  newestSince: string;
  /** The oldest stalled runs of the group, at most 5. */
  sampleRunIds: string[];
}

export interface RunPage {
  runs: RunSummary[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

// json/jsonb columns arrive already parsed from both pg and PGlite (a jsonb
// string value as a JS string), so rows are mapped without JSON.parse.


function toRun(r: Record<string, unknown>): RunSummary {
  return {
    id: String(r.id),
    definition: String(r.definition),
    version: String(r.version),
    tenant: String(r.tenant),
    status: r.status as RunStatus,
    temporalRunId: (r.temporalRunId as string | null) ?? null,
    parentRunId: (r.parentRunId as string | null) ?? null,
    parentStep: (r.parentStep as string | null) ?? null,
    stall: r.stall ? { ...(r.stall as NonNullable<RunSummary['stall']>), since: iso((r.stall as { since: unknown }).since)! } : null,
    pause: r.pause ? { ...(r.pause as NonNullable<RunSummary['pause']>), since: iso((r.pause as { since: unknown }).since)! } : null,
    currentStep: (r.currentStep as string | null) ?? null,
    errorSummary: (r.errorSummary as string | null) ?? null,
    startedAt: iso(r.startedAt)!,
    updatedAt: iso(r.updatedAt)!,
    closedAt: iso(r.closedAt),
  };
}

/** A paused definition (definition_pauses). */
export interface DefinitionPause {
  definition: string;
  by: string;
  reason: string | null;
  since: string;
}

function toDefinitionPause(r: Record<string, unknown>): DefinitionPause {
  return { definition: String(r.definition), by: String(r.by), reason: (r.reason as string | null) ?? null, since: iso(r.since)! };
}

function runCursor(cursor: string): { startedAt: string; id: string } {
  const c = decodeCursor(cursor, 's');
  if (c) return { startedAt: c.at, id: c.id };
  throw new InvalidRequestError(ERROR_CODES.CURSOR_INVALID, `cursor ${JSON.stringify(cursor)} is not a cursor returned by listRuns`, { cursor });
}

function summarise(error: ErrorInfo | undefined): string | null {
  if (!error) return null;
  const text = `${error.type}${error.stepInstance ? ` at ${error.stepInstance}` : ''}: ${error.message}`;
  return text.length > 500 ? `${text.slice(0, 497)}...` : text;
}

/**
 * Step records of one run, inside the caller's transaction: the run's step
 * writes are serialised first (sql.lockRunSteps), then each record is
 * upserted, a later attempt superseding the earlier RUNNING or COMPLETED
 * attempts of its dispatch, and a CANCELLED record closing the open attempts.
 */
async function writeSteps(tx: Db, runId: string, steps: StepRecord[]): Promise<void> {
  if (!steps.length) return;
  await tx.query(sql.lockRunSteps(runId));
  for (const s of steps) {
    if (s.status === 'CANCELLED') {
      await tx.query(sql.cancelOpenAttempts(runId, s));
      continue;
    }
    if (s.attempt > 1) await tx.query(sql.supersedeEarlierAttempts(runId, s.stepInstance, s.dispatch ?? 1, s.attempt, s.startedAt));
    await tx.query(sql.upsertStep(runId, s));
  }
}

/** Runs whose metric labels the store remembers from its step writes. */
const LABELS_MAX = 10_000;

const redactSteps = (plan: RedactionPlan, steps: StepRecord[]): StepRecord[] => (plan.any ? steps.map((s) => redactStepRecord(plan, s)) : steps);

export class ProjectionStore {
  /**
   * Every write below redacts the fields the run's version marks sensitive
   * (graph/redact.ts) before anything reaches a column: this class is the one
   * door to the projection's run tables.
   */
  private readonly redaction: RunRedaction;

  constructor(readonly db: Db) {
    this.redaction = new RunRedaction(db);
  }

  /** Redact the rows of version `hash` by its pinned graph and contracts (the rebuild reads them from history). */
  knowVersion(hash: string, version: RedactableVersion): void {
    this.redaction.know(hash, version);
  }

  async ping(): Promise<void> {
    await this.db.query(sql.ping());
  }

  /** Idempotent: the client and the workflow's first activity both call it. */
  async recordRunStarted(r: {
    id: string;
    definition: string;
    version: string;
    tenant: string;
    temporalRunId: string | null;
    startedAt: string;
    input: unknown;
    metadata: Record<string, unknown>;
    parent?: { runId: string; stepInstance: string } | undefined;
    origin?: RunOrigin | undefined;
  }): Promise<void> {
    const plan = await this.redaction.forRun(r.id, r.version);
    // One statement: the run's row, its details and its origin (sql.startRun).
    await this.db.query(sql.startRun({ ...r, input: redactRunInput(plan, r.input) }));
  }

  /** The definition and version of a run (the labels of its metrics), or undefined when it is not projected. */
  async runLabels(runId: string): Promise<{ definition: string; version: string } | undefined> {
    const known = this.labels.get(runId);
    if (known) return known;
    return (await this.db.query<{ definition: string; version: string }>(sql.selectRunLabels(runId)))[0];
  }

  /** Runs STALLED now, by stall reason (the partial index runs_stalls_idx). */
  async countStallsByReason(): Promise<Array<{ reason: string; count: number }>> {
    return this.db.query<{ reason: string; count: number }>(sql.countStallsByReason());
  }

  /** Open waits in the correlation index, by event name (the partial index run_waits_open_idx). */
  async countOpenWaitsByEvent(): Promise<Array<{ event: string; count: number }>> {
    return this.db.query<{ event: string; count: number }>(eventSql.countOpenWaitsByEvent());
  }

  /**
   * Upsert step records and point the run at its current step: one statement
   * when it can (sql.writeStepsAtOnce), else one transaction.
   */
  async recordSteps(runId: string, steps: StepRecord[], currentStep?: string, version?: string): Promise<void> {
    if (!steps.length && currentStep === undefined) return;
    if (steps.length) steps = redactSteps(await this.redaction.forRun(runId, version), steps);
    if (await this.stepsAtOnce(runId, steps, currentStep !== undefined ? { kind: 'cursor', currentStep } : { kind: 'none' })) return;
    await this.db.transaction(async (tx) => {
      await writeSteps(tx, runId, steps);
      if (currentStep !== undefined) await tx.query(sql.setCurrentStep(runId, currentStep));
    });
  }

  /**
   * The one-statement path of a step write (sql.writeStepsAtOnce): true when
   * it was taken, false when the records need the transactional path (a
   * retry, a cancellation) or a transactional writer holds the run's lock.
   */
  private async stepsAtOnce(runId: string, steps: StepRecord[], also: sql.StepsAlso): Promise<boolean> {
    if (!sql.oneStatementSteps(steps)) return false;
    const [row] = await this.db.query<{ locked: boolean; definition: string | null; version: string | null }>(sql.writeStepsAtOnce(runId, steps, also));
    // The run's labels come back with the write (its snapshot), so the writer's metrics need no read of their own.
    if (row?.definition && row.version) this.rememberLabels(runId, { definition: row.definition, version: row.version });
    return row?.locked === true;
  }

  /** Runs' metric labels as the last one-statement step write returned them, most recent last; at most LABELS_MAX. */
  private readonly labels = new Map<string, { definition: string; version: string }>();

  private rememberLabels(runId: string, labels: { definition: string; version: string }): void {
    this.labels.delete(runId);
    this.labels.set(runId, labels);
    if (this.labels.size > LABELS_MAX) this.labels.delete(this.labels.keys().next().value!);
  }

  async recordRunClosed(c: { runId: string; status: RunStatus; output?: unknown; error?: ErrorInfo; closedAt: string; trail: StepRecord[] }): Promise<void> {
    const trail = redactSteps(await this.redaction.forRun(c.runId), c.trail);
    const close = { kind: 'close' as const, status: c.status, errorSummary: summarise(c.error), closedAt: c.closedAt, output: c.output ?? null, error: c.error ?? null };
    if (await this.stepsAtOnce(c.runId, trail, close)) return;
    await this.db.transaction(async (tx) => {
      await writeSteps(tx, c.runId, trail);
      await tx.query(sql.closeRun(c.runId, c.status, summarise(c.error), c.closedAt));
      await tx.query(sql.closeRunDetails(c.runId, c.output ?? null, c.error ?? null));
      // A closed run resumes on nothing: its open waits leave the correlation index.
      await tx.query(eventSql.cancelRunWaits(c.runId, c.closedAt));
    });
  }

  async recordStall(runId: string, stall: { id: string; reason: string; rpc: string; stepInstance: string; details: unknown; since: string }, trail: StepRecord[]): Promise<void> {
    const redacted = redactSteps(await this.redaction.forRun(runId), trail);
    await this.db.transaction(async (tx) => {
      await writeSteps(tx, runId, redacted);
      await tx.query(sql.markStalled(runId, stall));
    });
  }

  /** The run holds paused (FLAGS.PAUSE), with the trail it carried. Idempotent. */
  async recordPause(runId: string, pause: { by: string; reason?: string | undefined; since: string; heldAt?: string | undefined }, trail: StepRecord[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      await writeSteps(tx, runId, trail);
      await tx.query(sql.markPaused(runId, pause));
    });
  }

  /** The run was resumed: RUNNING again. Idempotent. */
  async recordResume(runId: string, since: string): Promise<void> {
    await this.db.query(sql.markResumed(runId, since));
  }

  /** Pause a definition: `already` when it was paused before (the first pause is kept). */
  async pauseDefinition(definition: string, by: string, reason: string | null): Promise<DefinitionPause & { already: boolean }> {
    const [row] = await this.db.query<Record<string, unknown>>(sql.insertDefinitionPause(definition, by, reason));
    if (row) return { ...toDefinitionPause(row), already: false };
    const existing = await this.getDefinitionPause(definition);
    // Deleted between the two statements (a concurrent resume): pause again.
    return existing ? { ...existing, already: true } : this.pauseDefinition(definition, by, reason);
  }

  /** Lift a definition's pause; undefined when it was not paused. */
  async resumeDefinition(definition: string): Promise<DefinitionPause | undefined> {
    const [row] = await this.db.query<Record<string, unknown>>(sql.deleteDefinitionPause(definition));
    return row ? toDefinitionPause(row) : undefined;
  }

  /**
   * A start by definition, in one read: the definition's latest version row
   * (undefined fields when the version is missing) and its pause. Undefined
   * when the definition does not exist.
   */
  async startTarget(definition: string): Promise<
    | { name: string; latestVersion: string; version: { hash: string; graph: unknown; contracts: unknown; createdAt: string; definitions: Array<{ definition: string; seq: number }> } | undefined; pause: DefinitionPause | undefined }
    | undefined
  > {
    const [r] = await this.db.query<Record<string, unknown>>(sql.selectStartTarget(definition));
    if (!r) return undefined;
    return {
      name: String(r.name),
      latestVersion: String(r.latestVersion),
      version: r.hash ? { hash: r.hash as string, graph: r.graph, contracts: r.contracts, createdAt: iso(r.createdAt)!, definitions: r.definitions as Array<{ definition: string; seq: number }> } : undefined,
      pause: r.pausedBy !== null && r.pausedBy !== undefined ? toDefinitionPause({ definition: r.name, by: r.pausedBy, reason: r.pauseReason, since: r.pausedSince }) : undefined,
    };
  }

  async getDefinitionPause(definition: string): Promise<DefinitionPause | undefined> {
    const [row] = await this.db.query<Record<string, unknown>>(sql.selectDefinitionPause(definition));
    return row ? toDefinitionPause(row) : undefined;
  }

  /** Record a decision; for retry/skip also clear the stall it resolved. Idempotent. */
  async recordDecision(d: { runId: string; stallId: string | null; action: Exclude<DecisionAction, 'migrate'>; by: string; reason?: string | undefined; output?: unknown; decidedAt: string; outcome: string }): Promise<void> {
    // A skip's output stands for the stalled step's output: its contract's marks apply.
    const output = d.stallId && d.output !== undefined ? redactStepOutput(await this.redaction.forRun(d.runId), stepIdOfInstance(d.stallId), d.output) : d.output;
    await this.db.transaction(async (tx) => {
      await tx.query(sql.insertDecision({ ...d, reason: d.reason ?? null, output: output ?? null }));
      if (d.stallId && d.action !== 'cancel') await tx.query(sql.clearStall(d.runId, d.stallId));
    });
  }

  /** Every open run, in pages; the callback sees each page. */
  async forEachOpenRun(fn: (runs: RunSummary[]) => Promise<void>, pageSize = 500): Promise<void> {
    let after: string | null = null;
    for (;;) {
      const page: RunSummary[] = (await this.db.query<Record<string, unknown>>(sql.selectOpenRuns(after, pageSize))).map(toRun);
      if (!page.length) return;
      await fn(page);
      after = page[page.length - 1]!.id;
    }
  }

  /**
   * The reconciler closes a run Temporal closed without the run's own write:
   * only while the row is still open (a close the run wrote itself is newer
   * and kept). In one transaction: the status and closed-at, the stall
   * cleared, the error (unless one is recorded), the open waits leave the
   * correlation index (CANCELLED), and with `closeAttempts` the open step
   * attempts end CANCELLED. Only for a run Temporal ended without its graph
   * (terminated, timed out, deleted): a run that closed itself may still
   * have its step writes on their way, and a CANCELLED attempt would refuse
   * them. Returns false when the row was no longer open (nothing written).
   */
  async reconcileClose(c: { runId: string; status: RunStatus; error: ErrorInfo | null; closedAt: string; temporalRunId: string | null; closeAttempts: boolean }): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      // Serialised with the run's own step writes (sql.lockRunSteps), so no attempt is written RUNNING after this.
      await tx.query(sql.lockRunSteps(c.runId));
      const closed = await tx.query(sql.reconcileCloseRun({ runId: c.runId, status: c.status, errorSummary: summarise(c.error ?? undefined), closedAt: c.closedAt, temporalRunId: c.temporalRunId }));
      if (!closed.length) return false;
      if (c.error) await tx.query(sql.reconcileRunError(c.runId, c.error));
      await tx.query(eventSql.cancelRunWaits(c.runId, c.closedAt));
      if (c.closeAttempts) await tx.query(sql.reconcileCloseAttempts(c.runId, c.closedAt));
      return true;
    });
  }

  /** An open run's row follows its latest Temporal execution (a reset). True when it changed. */
  async followExecution(runId: string, temporalRunId: string): Promise<boolean> {
    return (await this.db.query(sql.followExecution(runId, temporalRunId))).length > 0;
  }

  async recordMigration(m: MigrationRecord): Promise<void> {
    // The trail ran on the version the run leaves; what follows runs on the target.
    const trail = redactSteps(await this.redaction.forVersion(m.from), m.trail);
    this.redaction.pin(m.runId, m.to);
    this.labels.delete(m.runId);
    await this.db.transaction(async (tx) => {
      await writeSteps(tx, m.runId, trail);
      await tx.query(
        sql.insertDecision({
          runId: m.runId,
          stallId: m.stallId ?? `migrate@${m.upTo}`,
          action: 'migrate',
          by: m.by,
          reason: m.reason ?? null,
          output: { from: m.from, to: m.to, upTo: m.upTo, at: m.at },
          decidedAt: m.decidedAt,
          outcome: `migrated from ${m.from.slice(0, 12)} at ${m.upTo} to ${m.to.slice(0, 12)} at ${m.at}`,
        }),
      );
      await tx.query(sql.migrateRun(m.runId, m.to, m.lineage));
    });
  }

  async listStalled(filter: { rpc?: string | undefined; reason?: string | undefined }): Promise<Array<{ id: string; stallId: string }>> {
    return this.db.query<{ id: string; stallId: string }>(sql.selectStalled(filter));
  }

  async getRun(id: string): Promise<RunDetail | undefined> {
    const [r] = await this.db.query<Record<string, unknown>>(sql.selectRun(id));
    if (!r) return undefined;
    const steps = await this.db.query<Record<string, unknown>>(sql.selectRunSteps(id));
    const children = (await this.db.query<Record<string, unknown>>(sql.selectChildRuns(id))).map(toRun);
    const decisions = (await this.db.query<Record<string, unknown>>(sql.selectDecisions(id))).map((d) => ({
      ...(d as unknown as DecisionRow),
      decidedAt: iso(d.decidedAt)!,
    }));
    type OriginRow = { sourceRunId: string; kind: RunOrigin['kind']; fromStep: string | null; occurrence: number | null; sourceVersion: string; by: string; reason: string | null; createdAt: unknown };
    type RerunRow = { runId: string; kind: RunOrigin['kind']; fromStep: string | null; createdAt: unknown; status: string | null; version: string | null };
    const [origin] = await this.db.query<OriginRow>(sql.selectRunOrigin(id));
    const reruns = await this.db.query<RerunRow>(sql.selectRunsFrom(id));
    return {
      children,
      decisions,
      lineage: (r.lineage as LineageEntry[] | null) ?? [],
      origin: origin
        ? {
            kind: origin.kind,
            sourceRunId: origin.sourceRunId,
            sourceVersion: origin.sourceVersion,
            ...(origin.fromStep !== null ? { fromStep: origin.fromStep } : {}),
            ...(origin.occurrence !== null ? { occurrence: Number(origin.occurrence) } : {}),
            by: origin.by,
            ...(origin.reason !== null ? { reason: origin.reason } : {}),
            createdAt: iso(origin.createdAt)!,
          }
        : null,
      reruns: reruns.map((x) => ({ ...x, createdAt: iso(x.createdAt)! })),
      ...toRun(r),
      input: r.input ?? null,
      output: r.output ?? null,
      error: (r.error as ErrorInfo | null) ?? null,
      metadata: (r.metadata as Record<string, unknown>) ?? {},
      steps: steps.map((s) => {
        const row: StepRow = {
          stepInstance: String(s.stepInstance),
          attempt: Number(s.attempt),
          dispatch: Number(s.dispatch),
          stepId: String(s.stepId),
          stepType: String(s.stepType),
          seq: Number(s.seq),
          status: s.status as StepRow['status'],
          startedAt: iso(s.startedAt)!,
        };
        if (s.finishedAt) row.finishedAt = iso(s.finishedAt)!;
        if (s.input !== null && s.input !== undefined) row.input = s.input;
        if (s.output !== null && s.output !== undefined) row.output = s.output;
        if (s.error !== null && s.error !== undefined) row.error = s.error as ErrorInfo;
        if (s.notes !== null && s.notes !== undefined) row.notes = s.notes as unknown[];
        return row;
      }),
    };
  }

  /** Runs of the list's filter by status (every status present, 0 when none). */
  async countRuns(filter: sql.RunFilter): Promise<{ counts: Record<RunStatus, number>; total: number }> {
    const counts = Object.fromEntries(RUN_STATUSES.map((st) => [st, 0])) as Record<RunStatus, number>;
    for (const r of await this.db.query<{ status: RunStatus; count: number }>(sql.countRunsByStatus(filter))) counts[r.status] = Number(r.count);
    return { counts, total: Object.values(counts).reduce((a, b) => a + b, 0) };
  }

  /** A version's counts per step and state, and its runs by status (the step_counts and run_counts tables). */
  async stepCounts(version: string, tenant: string | undefined): Promise<{ steps: Array<{ stepId: string; bucket: StepCountState; count: number }>; runs: Array<{ status: RunStatus; count: number }> }> {
    const [steps, runs] = await Promise.all([
      this.db.query<{ stepId: string; bucket: StepCountState; count: number }>(sql.selectStepCounts(version, tenant)),
      this.db.query<{ status: RunStatus; count: number }>(sql.selectVersionRunCounts(version, tenant)),
    ]);
    return { steps: steps.map((r) => ({ ...r, count: Number(r.count) })), runs: runs.map((r) => ({ ...r, count: Number(r.count) })) };
  }

  /** Open stalls grouped by definition, version, RPC and reason, largest first. */
  async stallGroups(filter: Parameters<typeof sql.selectStallGroups>[0]): Promise<StallGroup[]> {
    const rows = await this.db.query<Record<string, unknown>>(sql.selectStallGroups(filter));
    return rows.map((r) => ({
      definition: String(r.definition),
      version: String(r.version),
      versionSeq: r.versionSeq === null || r.versionSeq === undefined ? null : Number(r.versionSeq),
      rpc: String(r.rpc),
      reason: String(r.reason),
      count: Number(r.count),
      oldestSince: iso(r.oldestSince)!,
      newestSince: iso(r.newestSince)!,
      sampleRunIds: (r.sampleRunIds as string[] | null) ?? [],
    }));
  }

  /** Open runs pinned to a version (oldest first), at most `limit`. */
  async openRunsOfVersion(version: string, limit: number): Promise<RunSummary[]> {
    return (await this.db.query<Record<string, unknown>>(sql.selectOpenRunsOfVersion(version, limit))).map(toRun);
  }

  /** The latest projected COMPLETED output of each step id, per run. */
  async completedOutputs(runIds: string[]): Promise<Map<string, Record<string, unknown>>> {
    const out = new Map<string, Record<string, unknown>>();
    if (!runIds.length) return out;
    for (const r of await this.db.query<{ runId: string; stepId: string; output: unknown }>(sql.selectCompletedOutputs(runIds))) {
      const steps = out.get(r.runId) ?? {};
      steps[r.stepId] = r.output ?? null;
      out.set(r.runId, steps);
    }
    return out;
  }

  async listRuns(filter: sql.RunFilter, opts: { cursor?: string | undefined; limit?: number | undefined } = {}): Promise<RunPage> {
    const limit = opts.limit ?? 50;
    const after = opts.cursor ? runCursor(opts.cursor) : null;
    const rows = (await this.db.query<Record<string, unknown>>(sql.selectRuns(filter, after, limit))).map(toRun);
    const more = rows.length > limit;
    const runs = more ? rows.slice(0, limit) : rows;
    return { runs, nextCursor: more ? encodeCursor('s', runs[runs.length - 1]!.startedAt, runs[runs.length - 1]!.id) : null };
  }
}
