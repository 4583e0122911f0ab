/**
 * The reconciler: runs changed from Temporal (terminated, reset, cancelled,
 * timed out, deleted by namespace retention) must not leave the projection
 * lying. A pass walks the open runs of the projection (RUNNING, STALLED) in
 * pages, asks Temporal about each (`describe` of the workflow id, so the
 * latest execution, with bounded concurrency) and closes in the projection
 * what Temporal has closed. Temporal is the authority: a run Temporal says is
 * running (or paused) is never closed; a reset run's row follows its new
 * execution. Every write is conditional on the row still being open, so a
 * run that closes normally meanwhile keeps the close it wrote itself.
 *
 * What Temporal says, and what the projection gets:
 * - TERMINATED → TERMINATED (error `Terminated`, with Temporal's reason);
 * - TIMED_OUT → TERMINATED (error `TimedOut`): a workflow timeout ended it;
 * - not found → TERMINATED (error `NotFoundInTemporal`): deleted (retention,
 *   `temporal workflow delete`); how it ended is no longer known, only that
 *   nothing will ever run or resume it;
 * - CANCELLED, COMPLETED, FAILED → the same status: the run writes these
 *   itself, so the reconciler only fills in a write that was lost, and only
 *   once the close is older than the grace period (a write on its way lands
 *   first, with the output the reconciler does not have; one landing later
 *   still overwrites the reconciler's close). Its step rows are left to its
 *   own writes;
 * - RUNNING or PAUSED on another execution than the row's → the row's
 *   temporal run id follows it (a reset); nothing else changes.
 */
import { countReconcilerCorrection } from '../observability/metrics';
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import type { ErrorInfo } from '../graph/wire';
import type { RunStatus } from '../graph/terminology';
import type { ProjectionStore, RunSummary } from '../projection/store';

/** What a correction did. */
/** At least this many runs unknown to Temporal, and more than half of a pass: the pass closes none of them. */
export const NOT_FOUND_GUARD_MIN = 10;

export const RECONCILE_KINDS = ['terminated', 'timedOut', 'notFound', 'cancelled', 'completed', 'failed', 'followed'] as const;
export type ReconcileKind = (typeof RECONCILE_KINDS)[number];

export interface ReconcileCorrection {
  runId: string;
  kind: ReconcileKind;
  /** The projection status before. */
  from: RunStatus;
  /** The projection status after. */
  to: RunStatus;
  /** The Temporal execution the correction follows (null: not found). */
  temporalRunId: string | null;
  detail: string;
}

export interface ReconcileTotals {
  /** Open runs of the projection compared with Temporal. */
  checked: number;
  /** Corrections by kind (every kind present, 0 when none). */
  corrected: Record<ReconcileKind, number>;
  /** Runs that could not be compared or corrected (Temporal or the database failed); tried again next pass. */
  errors: number;
  /** The corrections, at most {@link MAX_LISTED_CORRECTIONS} (the counts are complete). */
  corrections: ReconcileCorrection[];
  durationMs: number;
}

export const MAX_LISTED_CORRECTIONS = 200;

export interface ReconcilerOptions {
  client: Client;
  store: ProjectionStore;
  /** Temporal describes in flight at once. @default 16 */
  concurrency?: number;
  /** Open runs read from the projection per page. @default 200 */
  pageSize?: number;
  /**
   * A run closed COMPLETED, FAILED or CANCELLED in Temporal (closes the run
   * writes itself), or a run Temporal does not know, is corrected only once
   * its close (its start) is this old: the worker's projection writer may
   * still be retrying the run's own writes (a database outage). @default 300000
   */
  graceMs?: number;
  /** One line per correction and per error. */
  log?: (line: string) => void;
}

type Verdict =
  | { action: 'none' }
  | { action: 'follow'; temporalRunId: string }
  | { action: 'close'; kind: Exclude<ReconcileKind, 'followed'>; status: RunStatus; error: ErrorInfo | null; closedAt: string; temporalRunId: string | null };

const emptyCounts = (): Record<ReconcileKind, number> => Object.fromEntries(RECONCILE_KINDS.map((k) => [k, 0])) as Record<ReconcileKind, number>;

/** The sum of every kind. */
export const totalCorrected = (t: ReconcileTotals): number => Object.values(t.corrected).reduce((a, b) => a + b, 0);

export class Reconciler {
  private readonly concurrency: number;
  private readonly pageSize: number;
  private readonly graceMs: number;
  private readonly log: (line: string) => void;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ReconcileTotals> | undefined;

  constructor(private readonly opts: ReconcilerOptions) {
    this.concurrency = opts.concurrency ?? 16;
    this.pageSize = opts.pageSize ?? 200;
    this.graceMs = opts.graceMs ?? 300_000;
    this.log = opts.log ?? (() => undefined);
  }

  /**
   * One pass over every open run. Passes do not overlap in one process: a
   * call while one runs returns that pass's totals.
   */
  pass(): Promise<ReconcileTotals> {
    this.running ??= this.runPass().finally(() => (this.running = undefined));
    return this.running;
  }

  /** A pass every `intervalMs` until {@link stop}; logs a summary line when a pass corrected something or failed somewhere. */
  start(intervalMs: number): void {
    if (this.timer || intervalMs <= 0) return;
    this.timer = setInterval(() => {
      if (this.running) return;
      this.pass().then(
        (t) => {
          if (totalCorrected(t) > 0 || t.errors > 0) this.log(`reconciler: ${describeTotals(t)}`);
        },
        (err: unknown) => this.log(`reconciler: pass failed: ${(err as Error).message}`),
      );
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private async runPass(): Promise<ReconcileTotals> {
    const began = Date.now();
    const totals: ReconcileTotals = { checked: 0, corrected: emptyCounts(), errors: 0, corrections: [], durationMs: 0 };
    const unknown: Array<{ run: RunSummary; verdict: Verdict }> = [];
    const record = (run: RunSummary, correction: ReconcileCorrection | undefined) => {
      if (!correction) return;
      totals.corrected[correction.kind]++;
      countReconcilerCorrection(correction.kind);
      if (totals.corrections.length < MAX_LISTED_CORRECTIONS) totals.corrections.push(correction);
      this.log(`reconciler: run ${run.id}: ${correction.from} → ${correction.to} (${correction.kind}): ${correction.detail}`);
    };
    const failed = (run: RunSummary, err: unknown) => {
      totals.errors++;
      this.log(`reconciler: run ${run.id}: not reconciled: ${(err as Error).message}`);
    };
    await this.opts.store.forEachOpenRun(async (page) => {
      let next = 0;
      const lane = async () => {
        while (next < page.length) {
          const run = page[next++]!;
          totals.checked++;
          try {
            record(run, await this.reconcileRun(run, unknown));
          } catch (err) {
            failed(run, err);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.concurrency, page.length) }, lane));
    }, this.pageSize);
    // A pass in which most open runs are unknown to Temporal is far likelier a wrong namespace or server
    // than a retention sweep: closing them all would be a disaster that looks like success. Refuse.
    if (unknown.length >= NOT_FOUND_GUARD_MIN && unknown.length * 2 > totals.checked) {
      totals.errors += unknown.length;
      this.log(
        `reconciler: ${unknown.length} of ${totals.checked} open runs are unknown to Temporal; not closing them: ` +
          `is this process pointed at the right Temporal server and namespace (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE)?`,
      );
    } else {
      for (const { run, verdict } of unknown) {
        try {
          record(run, await this.apply(run, verdict));
        } catch (err) {
          failed(run, err);
        }
      }
    }
    totals.durationMs = Date.now() - began;
    return totals;
  }

  private async reconcileRun(run: RunSummary, unknown?: Array<{ run: RunSummary; verdict: Verdict }>): Promise<ReconcileCorrection | undefined> {
    const verdict = await this.judge(run);
    if (verdict.action === 'none') return undefined;
    // Runs Temporal does not know are closed at the end of the pass, if they are not most of it (see runPass).
    if (unknown && verdict.action === 'close' && verdict.kind === 'notFound') {
      unknown.push({ run, verdict });
      return undefined;
    }
    return this.apply(run, verdict);
  }

  private async apply(run: RunSummary, verdict: Verdict): Promise<ReconcileCorrection | undefined> {
    if (verdict.action === 'none') return undefined;
    if (verdict.action === 'follow') {
      if (!(await this.opts.store.followExecution(run.id, verdict.temporalRunId))) return undefined;
      return {
        runId: run.id,
        kind: 'followed',
        from: run.status,
        to: run.status,
        temporalRunId: verdict.temporalRunId,
        detail: `Temporal runs execution ${verdict.temporalRunId} (was ${run.temporalRunId ?? 'unknown'}): the run was reset (or continued as new)`,
      };
    }
    // The runs Temporal ended without their graph have nothing more on its way: their open attempts end too.
    const closeAttempts = verdict.kind === 'terminated' || verdict.kind === 'timedOut' || verdict.kind === 'notFound';
    const closed = await this.opts.store.reconcileClose({ runId: run.id, status: verdict.status, error: verdict.error, closedAt: verdict.closedAt, temporalRunId: verdict.temporalRunId, closeAttempts });
    // The row closed meanwhile (the run's own write): it stays as written.
    if (!closed) return undefined;
    return {
      runId: run.id,
      kind: verdict.kind,
      from: run.status,
      to: verdict.status,
      temporalRunId: verdict.temporalRunId,
      detail: verdict.error ? `${verdict.error.type}: ${verdict.error.message}` : `closed ${verdict.status} in Temporal at ${verdict.closedAt}`,
    };
  }

  /** What Temporal says about one open run, as what to do with its row. */
  private async judge(run: RunSummary): Promise<Verdict> {
    let d: WorkflowExecutionDescription;
    try {
      d = await this.opts.client.workflow.getHandle(run.id).describe();
    } catch (err) {
      if (!isNotFound(err)) throw err;
      if (Date.now() - Date.parse(run.startedAt) < this.graceMs) return { action: 'none' };
      return {
        action: 'close',
        kind: 'notFound',
        status: 'TERMINATED',
        error: { type: 'NotFoundInTemporal', message: 'Temporal no longer knows this run (deleted, e.g. by namespace retention); closed by the reconciler' },
        closedAt: new Date().toISOString(),
        temporalRunId: null,
      };
    }
    const status = d.status.name;
    if (status === 'RUNNING' || status === 'PAUSED' || status === 'UNSPECIFIED' || status === 'UNKNOWN') {
      // Never act on a run Temporal says runs; a reset gave it another execution.
      return d.runId && run.temporalRunId !== d.runId ? { action: 'follow', temporalRunId: d.runId } : { action: 'none' };
    }
    // CONTINUED_AS_NEW here would be a chain describe did not follow: its next execution will say more.
    if (status === 'CONTINUED_AS_NEW') return { action: 'none' };
    const closedAt = (d.closeTime ?? new Date()).toISOString();
    const base = { action: 'close' as const, closedAt, temporalRunId: d.runId };
    if (status === 'TERMINATED') {
      const why = await this.lastEvent(d).then((e) => e?.workflowExecutionTerminatedEventAttributes, () => undefined);
      return { ...base, ...endedWithoutGraph('TERMINATED', why) };
    }
    if (status === 'TIMED_OUT') return { ...base, ...endedWithoutGraph('TIMED_OUT') };
    // Closes the run writes itself: give a write on its way the grace period.
    if (d.closeTime && Date.now() - d.closeTime.getTime() < this.graceMs) return { action: 'none' };
    if (status === 'CANCELLED') return { ...base, kind: 'cancelled', status: 'CANCELLED', error: { type: 'Cancelled', message: 'the run was cancelled in Temporal' } };
    if (status === 'COMPLETED') return { ...base, kind: 'completed', status: 'COMPLETED', error: null };
    const failure = await this.lastEvent(d).then((e) => e?.workflowExecutionFailedEventAttributes?.failure, () => undefined);
    return { ...base, kind: 'failed', status: 'FAILED', error: { type: 'Failed', message: failure?.message ?? 'the run failed in Temporal' } };
  }

  /** The last history event of an execution (how it closed), read backwards, one event. */
  private async lastEvent(d: WorkflowExecutionDescription) {
    const res = await this.opts.client.workflowService.getWorkflowExecutionHistoryReverse({
      namespace: this.opts.client.options.namespace,
      execution: { workflowId: d.workflowId, runId: d.runId },
      maximumPageSize: 1,
    });
    return res.history?.events?.[0];
  }
}

/**
 * A run Temporal ended without its graph (a terminate, a workflow timeout):
 * what the projection says of it. The reconciler and the projection's
 * rebuild (client/projection-rebuild.ts) both write this.
 */
export function endedWithoutGraph(status: 'TERMINATED' | 'TIMED_OUT', why?: { identity?: string | null; reason?: string | null } | null): { kind: 'terminated' | 'timedOut'; status: 'TERMINATED'; error: ErrorInfo } {
  if (status === 'TIMED_OUT') return { kind: 'timedOut', status: 'TERMINATED', error: { type: 'TimedOut', message: 'the run reached its Temporal workflow timeout' } };
  const by = why?.identity ? ` by ${why.identity}` : '';
  const reason = why?.reason ? `: ${why.reason}` : '';
  return { kind: 'terminated', status: 'TERMINATED', error: { type: 'Terminated', message: `terminated in Temporal${by}${reason}` } };
}

function isNotFound(err: unknown): boolean {
  return err instanceof WorkflowNotFoundError || (typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 5);
}

/** The totals in one line: `checked 12, corrected 2 (terminated 1, notFound 1), errors 0 in 40 ms`. */
export function describeTotals(t: ReconcileTotals): string {
  const kinds = RECONCILE_KINDS.filter((k) => t.corrected[k] > 0).map((k) => `${k} ${t.corrected[k]}`);
  return `checked ${t.checked}, corrected ${totalCorrected(t)}${kinds.length ? ` (${kinds.join(', ')})` : ''}, errors ${t.errors} in ${t.durationMs} ms`;
}
