/**
 * The projection's side of redaction (graph/redact.ts): which sensitive marks
 * apply to a run's writes. The plan comes from the run's version (the write's
 * own hint, else the run's row), read once per version per process: versions
 * are immutable. A run with no row yet gets no plan, but its step, stall and
 * close rows could not land anyway (they reference the run).
 */
import type { Db } from '../db/connection';
import { EMPTY_PLAN, redactionPlan, type RedactableVersion, type RedactionPlan } from '../graph/redact';
import * as sql from './sql';

const RUNS_MAX = 10_000;
const VERSIONS_MAX = 1_000;
/** A run's version is read again after this long: a migration (in another process) moves a run. */
const RUN_TTL_MS = 30_000;

export class RunRedaction {
  private readonly runs = new Map<string, { version: string; at: number }>();
  private readonly plans = new Map<string, Promise<RedactionPlan>>();

  constructor(private readonly db: Db) {}

  /** Remember the version a run is on (its start, a migration). */
  pin(runId: string, version: string): void {
    this.runs.delete(runId);
    this.runs.set(runId, { version, at: Date.now() });
    if (this.runs.size > RUNS_MAX) this.runs.delete(this.runs.keys().next().value!);
  }

  /** The plan of the run's version; EMPTY_PLAN when the run is not projected. */
  async forRun(runId: string, version?: string): Promise<RedactionPlan> {
    if (version) this.pin(runId, version);
    const cached = this.runs.get(runId);
    let hash = cached && Date.now() - cached.at < RUN_TTL_MS ? cached.version : undefined;
    if (!hash) {
      const [row] = await this.db.query<{ version: string }>(sql.selectRunLabels(runId));
      if (!row) return EMPTY_PLAN;
      hash = row.version;
      this.pin(runId, hash);
    }
    return this.forVersion(hash);
  }

  /**
   * The plan of version `hash` from its graph and contracts as pinned in a
   * run's history (the projection's rebuild): the same plan the catalog's row
   * gives, and one even when the version GC removed that row.
   */
  know(hash: string, version: RedactableVersion): void {
    this.plans.set(hash, Promise.resolve(redactionPlan(version)));
    if (this.plans.size > VERSIONS_MAX) this.plans.delete(this.plans.keys().next().value!);
  }

  /** The plan of a version (cached; a failed read is not). */
  forVersion(hash: string): Promise<RedactionPlan> {
    let plan = this.plans.get(hash);
    if (!plan) {
      plan = this.db.query<RedactableVersion>(sql.selectVersionMarks(hash)).then(([v]) => (v ? redactionPlan(v) : EMPTY_PLAN));
      plan.catch(() => this.plans.delete(hash));
      this.plans.set(hash, plan);
      if (this.plans.size > VERSIONS_MAX) this.plans.delete(this.plans.keys().next().value!);
    }
    return plan;
  }
}
