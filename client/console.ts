/**
 * The operator console's reads (issue 15): per-step counts of a version,
 * open stalls grouped, and the diff of two versions with which open runs of
 * the older one could migrate. Projection and catalog reads only: nothing
 * here asks Temporal, so a diff's `migratable` is the pre-check a migrate
 * makes from the projected position and outputs, not Temporal's final word.
 */
import { checkCarriedOutputs } from '../catalog/contracts';
import { versionRemovedError, type VersionRecord, type VersionStore } from '../catalog/versions';
import { ERROR_CODES, InvalidRequestError, NotFoundError } from '../graph/errors';
import { checkMigrationPosition } from '../graph/compat';
import { outlineGraph } from '../graph/outline';
import { REDACTED, stepIdOfInstance } from '../graph/redact';
import { allSteps } from '../graph/schema';
import { STEP_COUNT_STATES, VERSION_HASH_PATTERN, type StepCountState } from '../graph/terminology';
import { diffContracts, diffEdges, diffSteps, type ContractDiff, type StepsDiff } from '../graph/version-diff';
import type { OutlineEdge } from '../graph/outline';
import type { ProjectionStore, StallGroup } from '../projection/store';
import type { RunFilter } from '../projection/sql';

/** Open runs a diff lists, at most. */
export const DIFF_OPEN_RUNS_MAX = 200;

/** The run list's filter fields of a parsed query, as the projection's RunFilter (status and metadata aside). */
export function runFilterOf(q: {
  definition?: string | undefined;
  version?: string | undefined;
  tenant?: string | undefined;
  attention?: string | undefined;
  startedAfter?: string | undefined;
  startedBefore?: string | undefined;
  q?: string | undefined;
  stallRpc?: string | undefined;
  stallReason?: string | undefined;
  step?: string | undefined;
  stepState?: StepCountState | undefined;
}): RunFilter {
  const f: RunFilter = {};
  if (q.definition !== undefined) f.definition = q.definition;
  if (q.version !== undefined) f.version = q.version;
  if (q.tenant !== undefined) f.tenant = q.tenant;
  if (q.attention !== undefined) f.attention = q.attention;
  if (q.startedAfter !== undefined) f.startedAfter = q.startedAfter;
  if (q.startedBefore !== undefined) f.startedBefore = q.startedBefore;
  if (q.q !== undefined) f.q = q.q;
  if (q.stallRpc !== undefined) f.stallRpc = q.stallRpc;
  if (q.stallReason !== undefined) f.stallReason = q.stallReason;
  if (q.step !== undefined && q.stepState !== undefined) f.step = { stepId: q.step, state: q.stepState };
  return f;
}

export type StepStateCounts = { stepId: string } & Record<StepCountState, number>;

export interface StepCounts {
  version: string;
  definitions: Array<{ definition: string; seq: number }>;
  totalRuns: number;
  openRuns: number;
  asOf: string;
  steps: StepStateCounts[];
}

export interface OpenRunFit {
  runId: string;
  status: string;
  currentStep: string | null;
  /** Every changed or removed step already completed in this run (projected rows). */
  pastChanges: boolean;
  migratable: boolean;
  /** The mapping a migrate would use: same ids to themselves, a removed step to its obvious replacement. Null when not migratable. */
  mapping: Record<string, string> | null;
  problem: { code: string; message: string } | null;
}

export interface VersionDiff {
  definition: string;
  from: { version: string; seq: number };
  to: { version: string; seq: number };
  steps: StepsDiff;
  edges: { added: OutlineEdge[]; removed: OutlineEdge[] };
  contracts: ContractDiff[];
  openRuns: { total: number; runs: OpenRunFit[] };
}

/** Problem codes of an open run a diff finds not migratable. */
export const DIFF_PROBLEMS = {
  /** The run is not at a top-level step (inside a forEach or parallel, or between steps with no cursor). */
  NOT_AT_SAFE_POINT: 'NOT_AT_SAFE_POINT',
  /** Its position has no top-level step of the same type in the target (graph/compat.ts). */
  POSITION_NOT_IN_TARGET: 'POSITION_NOT_IN_TARGET',
  /** A completed step's output does not satisfy the target's contract (catalog/contracts.ts). */
  OUTPUT_INCOMPATIBLE: 'OUTPUT_INCOMPATIBLE',
} as const;

export class ConsoleReads {
  constructor(
    private readonly store: ProjectionStore,
    private readonly catalog: VersionStore,
  ) {}

  private async version(hash: string, field: string): Promise<VersionRecord> {
    const v = VERSION_HASH_PATTERN.test(hash) ? await this.catalog.getVersion(hash) : undefined;
    if (!v) {
      const tombstone = VERSION_HASH_PATTERN.test(hash) ? await this.catalog.getTombstone(hash) : undefined;
      if (tombstone) throw versionRemovedError(tombstone, field);
      throw new NotFoundError(ERROR_CODES.VERSION_NOT_FOUND, `${field}: version ${JSON.stringify(hash)} does not exist`, { field, version: hash });
    }
    return v;
  }

  /** `GET /versions/:hash/step-counts`: one entry per node of the outline (zeros included), then any step id only the rows know. */
  async stepCounts(hash: string, tenant: string | undefined): Promise<StepCounts> {
    const v = await this.version(hash, 'params.hash');
    const asOf = new Date().toISOString();
    const { steps, runs } = await this.store.stepCounts(hash, tenant);
    const zero = (stepId: string): StepStateCounts => ({ stepId, ...(Object.fromEntries(STEP_COUNT_STATES.map((s) => [s, 0])) as Record<StepCountState, number>) });
    const byStep = new Map(outlineGraph(v.graph).nodes.map((n) => [n.id, zero(n.id)]));
    for (const r of steps) {
      if (r.count === 0) continue;
      const entry = byStep.get(r.stepId) ?? zero(r.stepId);
      entry[r.bucket] = r.count;
      byStep.set(r.stepId, entry);
    }
    const open = new Set(['RUNNING', 'STALLED', 'PAUSED']);
    return {
      version: hash,
      definitions: v.definitions,
      totalRuns: runs.reduce((a, r) => a + r.count, 0),
      openRuns: runs.filter((r) => open.has(r.status)).reduce((a, r) => a + r.count, 0),
      asOf,
      steps: [...byStep.values()],
    };
  }

  /** `GET /stalls`. */
  async stalls(filter: { definition?: string | undefined; tenant?: string | undefined; version?: string | undefined; rpc?: string | undefined; reason?: string | undefined }): Promise<{ groups: StallGroup[]; total: number }> {
    const groups = await this.store.stallGroups(filter);
    return { groups, total: groups.reduce((a, g) => a + g.count, 0) };
  }

  /** `GET /definitions/:name/diff?from&to`. */
  async diff(definition: string, fromHash: string, toHash: string): Promise<VersionDiff> {
    if (!(await this.catalog.getDefinition(definition))) {
      throw new NotFoundError(ERROR_CODES.DEFINITION_NOT_FOUND, `definition ${JSON.stringify(definition)} does not exist`, { definition });
    }
    const [from, to] = [await this.version(fromHash, 'query.from'), await this.version(toHash, 'query.to')];
    const seqOf = (v: VersionRecord, field: string): number => {
      const seq = v.definitions.find((d) => d.definition === definition)?.seq;
      if (seq !== undefined) return seq;
      throw new InvalidRequestError(ERROR_CODES.REQUEST_INVALID, `${field}: version ${v.hash} is not a version of ${JSON.stringify(definition)}`, {
        field,
        received: v.hash,
        allowed: `a version published under ${JSON.stringify(definition)} (GET /definitions/${definition}/versions)`,
      }, 422);
    };
    const fromSeq = seqOf(from, 'query.from');
    const toSeq = seqOf(to, 'query.to');
    const steps = diffSteps(from.graph, to.graph);
    return {
      definition,
      from: { version: from.hash, seq: fromSeq },
      to: { version: to.hash, seq: toSeq },
      steps,
      edges: diffEdges(from.graph, to.graph),
      contracts: diffContracts(from.contracts, to.contracts),
      openRuns: await this.openRunFits(from, to, steps),
    };
  }

  /**
   * Open runs pinned to `from` (the oldest first 200) and whether each could
   * migrate to `to`: the position check a migrate makes (graph/compat.ts)
   * and its carried-output check (catalog/contracts.ts) over the projected
   * outputs; a redacted output is not checked (its value is not stored).
   */
  private async openRunFits(from: VersionRecord, to: VersionRecord, steps: StepsDiff): Promise<{ total: number; runs: OpenRunFit[] }> {
    const runs = await this.store.openRunsOfVersion(from.hash, DIFF_OPEN_RUNS_MAX);
    const { counts } = await this.store.countRuns({ version: from.hash });
    const total = counts.RUNNING + counts.STALLED + counts.PAUSED;
    const outputs = await this.store.completedOutputs(runs.map((r) => r.id));
    const mapping = suggestedMapping(from, to, steps);
    const touched = [...steps.removed, ...steps.changed.map((c) => c.stepId)];
    const fits = runs.map((run): OpenRunFit => {
      const done = outputs.get(run.id) ?? {};
      const position = run.stall?.stepInstance ?? run.currentStep ?? run.pause?.before ?? null;
      const base = { runId: run.id, status: run.status, currentStep: position, pastChanges: touched.every((id) => id in done) };
      const refuse = (code: string, message: string): OpenRunFit => ({ ...base, migratable: false, mapping: null, problem: { code, message } });
      if (position === null || stepIdOfInstance(position) !== position || !from.graph.steps.some((s) => s.id === position)) {
        return refuse(DIFF_PROBLEMS.NOT_AT_SAFE_POINT, `the run is ${position === null ? 'at no step' : `at ${position}`}, not at a top-level step of version ${from.hash.slice(0, 12)}`);
      }
      const check = checkMigrationPosition(from.graph, to.graph, to.hash, position, mapping, 'position');
      if (!check.ok) return refuse(DIFF_PROBLEMS.POSITION_NOT_IN_TARGET, check.refusal);
      const carried = Object.fromEntries(Object.entries(done).filter(([, out]) => !JSON.stringify(out ?? null).includes(JSON.stringify(REDACTED))));
      const [misfit] = checkCarriedOutputs(to, carried, mapping);
      if (misfit) return refuse(DIFF_PROBLEMS.OUTPUT_INCOMPATIBLE, `the output of step ${misfit.stepId} does not satisfy the target contract of ${misfit.rpc}: ${misfit.summary}`);
      return { ...base, migratable: true, mapping, problem: null };
    });
    return { total, runs: fits };
  }
}

/**
 * Same ids map to themselves; a removed top-level step maps to an added one
 * when that is the obvious choice: exactly one added top-level step of the
 * same type (and the same RPC, for an rpc step) and no other removed step
 * that could take it. Otherwise a removed step is left unmapped.
 */
export function suggestedMapping(from: VersionRecord, to: VersionRecord, steps: StepsDiff): Record<string, string> {
  const mapping: Record<string, string> = {};
  const toIds = new Set(allSteps(to.graph).map(({ step }) => step.id));
  for (const s of from.graph.steps) if (toIds.has(s.id)) mapping[s.id] = s.id;
  const kind = (s: (typeof from.graph.steps)[number]) => (s.type === 'rpc' ? `rpc:${s.rpc}` : s.type);
  const removed = from.graph.steps.filter((s) => steps.removed.includes(s.id));
  const added = to.graph.steps.filter((s) => steps.added.includes(s.id));
  for (const r of removed) {
    const candidates = added.filter((a) => kind(a) === kind(r));
    const rivals = removed.filter((o) => kind(o) === kind(r));
    if (candidates.length === 1 && rivals.length === 1) mapping[r.id] = candidates[0]!.id;
  }
  return mapping;
}
