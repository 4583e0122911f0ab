/**
 * Leaving the current execution at a step boundary: migration to another
 * version (the `pinflow.migrate` update, at a safe point or between steps)
 * and continue-as-new when Temporal suggests it. The position check itself
 * is graph/compat.ts, shared with any client-side pre-check.
 *
 * Determinism: the order of conditions, activities, search-attribute
 * upserts and continue-as-new here is part of every recorded history.
 */
import { ApplicationFailure, condition, continueAsNew, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { carriedOutputs, carriedSteps, checkMigrationPosition } from '../graph/compat';
import { SA } from '../graph/search-attributes';
import type { MigrateRequest, RunInput } from '../graph/wire';
import { ContinueNow, type MigrationSummary, type RunContext } from './context';
import { FLAGS } from './flags';
import { projectionWith } from './proxies';

/** The interpreter's signature, for continue-as-new. */
type Interpreter = (run: RunInput) => Promise<unknown>;

/** Where the run is safe to migrate: a top-level step it is stalled or waiting on. */
function safePoint(ctx: RunContext): { instance: string; stepId: string; dispatch: number } | undefined {
  const { run, state } = ctx;
  const stall = state.stall;
  if (stall && run.graph.steps.some((s) => s.id === stall.stepInstance)) return { instance: stall.stepInstance, stepId: stall.stepId, dispatch: Number(stall.id.split('/')[1] ?? 1) };
  const waiting = state.waiting;
  if (waiting && run.graph.steps.some((s) => s.id === waiting.stepInstance)) return { instance: waiting.stepInstance, stepId: waiting.stepInstance, dispatch: 0 };
  return undefined;
}

function migrationSummary(ctx: RunContext, request: MigrateRequest, at: string): MigrationSummary {
  return { accepted: true as const, at, ...carriedSteps(request.graph, request.mapping, Object.keys(ctx.root.steps)) };
}

/** Settle a pending between-steps migration (the run ended, or refused it) and let its handler finish. */
export async function settleBoundary(ctx: RunContext, refused: string): Promise<void> {
  if (!ctx.boundaryRequest) return;
  ctx.boundaryOutcome ??= { refused };
  await condition(() => ctx.boundaryRequest === undefined);
}

/** The migrate update's validator: runs before anything is written to history. */
export function validateMigrate(ctx: RunContext, request: MigrateRequest): void {
  const { run, state } = ctx;
  if (ctx.migration || ctx.boundaryRequest) throw new Error('MIGRATION_REFUSED: a migration is already under way');
  const point = safePoint(ctx);
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
  const check = checkMigrationPosition(run.graph, request.graph, request.targetVersion, point.stepId, request.mapping, 'position');
  if (!check.ok) throw new Error(`MIGRATION_REFUSED: ${check.refusal}`);
}

/** The migrate update's handler: accept at the safe point now, or at the next top-level step boundary. */
export async function handleMigrate(ctx: RunContext, request: MigrateRequest): Promise<MigrationSummary> {
  const point = safePoint(ctx);
  if (point) {
    const at = request.mapping?.[point.stepId] ?? point.stepId;
    const waiting = [...ctx.activeWaits.values()].find((w) => w.state.stepInstance === point.instance);
    ctx.migration = { request, at, from: point.instance, dispatch: point.dispatch, ...(waiting ? { wait: { waitId: waiting.state.waitId, reachedAt: waiting.state.reachedAt } } : {}) };
    return migrationSummary(ctx, request, at);
  }
  // Between steps: wait for the next top-level step boundary, where the
  // position is checked and the run continues as new (or the request is refused).
  ctx.boundaryRequest = request;
  await condition(() => ctx.boundaryOutcome !== undefined);
  const outcome = ctx.boundaryOutcome!;
  ctx.boundaryOutcome = undefined;
  ctx.boundaryRequest = undefined;
  if ('refused' in outcome) throw ApplicationFailure.nonRetryable(`MIGRATION_REFUSED: ${outcome.refused}`, 'MigrationRefused');
  return outcome.result;
}

/**
 * A between-steps migration is pending and the walk is at top-level step
 * `cursor`: refuse it (the walk awaits `settled`, then goes on with the
 * step) or accept it (the walk awaits `settled`, until the update has its
 * result, then unwinds to the top with MigrateNow). The walk does the
 * awaiting, so the microtask schedule is the inline interpreter's.
 */
export function migrateAtBoundary(ctx: RunContext, cursor: string): { settled: Promise<void>; migrate: boolean } {
  const request = ctx.boundaryRequest!;
  const check = checkMigrationPosition(ctx.run.graph, request.graph, request.targetVersion, cursor, request.mapping, 'next step');
  if (!check.ok) return { settled: settleBoundary(ctx, check.refusal), migrate: false };
  ctx.migration = { request, at: check.at, from: cursor, dispatch: 0 };
  ctx.boundaryOutcome = { result: migrationSummary(ctx, request, check.at) };
  return { settled: condition(() => ctx.boundaryRequest === undefined), migrate: true };
}

/** At a top-level boundary with no open stall: has Temporal suggested continue-as-new? */
export function continueAsNewDue(ctx: RunContext): boolean {
  return ctx.openStalls.size === 0 && workflowInfo().continueAsNewSuggested && ctx.flag(FLAGS.CONTINUE_AS_NEW_WHEN_SUGGESTED);
}

/** Continue as new at `err.at`, carrying the state (and moving version when the policy says so). */
export async function continueAsNewAt(ctx: RunContext, err: ContinueNow): Promise<never> {
  const { run, root } = ctx;
  const plan = await projectionWith(`continue as new at ${err.at}`).planContinueAsNew({
    runId: run.runId,
    definition: run.definition,
    version: run.version,
    policy: run.graph.onContinueAsNew ?? 'pinned',
    at: err.at,
    steps: root.steps,
    trail: ctx.takeTrail(),
    lineage: run.lineage ?? [],
  });
  if (plan.moved) upsertSearchAttributes([{ key: SA.version, value: plan.version! }]);
  return await continueAsNew<Interpreter>({
    ...run,
    // FLAGS.PAUSE: the pause pending now, not the one the run started with (absent: dropped by the converter).
    pause: ctx.pausing,
    ...(plan.moved ? { version: plan.version!, graph: plan.graph!, contracts: plan.contracts! } : {}),
    resume: { at: err.at, steps: root.steps, vars: root.vars, seq: ctx.seq, nextDispatch: {}, ...ctx.carriedEvents() },
    lineage: plan.lineage,
  });
}

/** Continue as new on the accepted migration's target version, carrying the mapped outputs. */
export async function migrateNow(ctx: RunContext): Promise<never> {
  const { run, root, state } = ctx;
  const m = ctx.migration!;
  const steps = carriedOutputs(m.request.graph, m.request.mapping, root.steps);
  const migratedAt = ctx.now();
  const lineage = [...(run.lineage ?? []), { version: run.version, upTo: m.from, migratedAt, by: m.request.by }];
  ctx.migrating = { from: run.version, to: m.request.targetVersion, at: m.at, by: m.request.by };
  ctx.refreshDetails();
  await projectionWith(`migrate ${run.version.slice(0, 12)} → ${m.request.targetVersion.slice(0, 12)} at ${m.at}`).projectMigration({
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
    trail: ctx.takeTrail(),
  });
  upsertSearchAttributes([
    { key: SA.version, value: m.request.targetVersion },
    { key: SA.status, value: 'RUNNING' },
  ]);
  return await continueAsNew<Interpreter>({
    ...run,
    // FLAGS.PAUSE: the pause pending now, not the one the run started with (absent: dropped by the converter).
    pause: ctx.pausing,
    version: m.request.targetVersion,
    graph: m.request.graph,
    contracts: m.request.contracts,
    resume: {
      at: m.at,
      steps,
      vars: root.vars,
      seq: ctx.seq,
      nextDispatch: m.dispatch > 0 && m.at === m.from ? { [m.at]: m.dispatch + 1 } : {},
      ...ctx.carriedEvents(),
      ...(m.wait ? { wait: m.wait } : {}),
    },
    lineage,
  });
}
