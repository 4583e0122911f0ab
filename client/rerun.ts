/**
 * Rerun from a step and replay: where a new run starts and what it carries,
 * read from the source run's Temporal history (the authority) through the
 * history reader (worker/history.ts), never from the projection, which may
 * be redacted or behind.
 *
 * - rerun: the state the source run had just before top-level step X (vars
 *   and step outputs), on the version it was on there or, checked first,
 *   another version of the same definition; the new run starts at X.
 * - replay: the source run's original start input (or an edited one), from
 *   the start, on the version it started on (or another one).
 */
import type { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { checkCarriedOutputs } from '../catalog/contracts';
import { carriedOutputs, checkMigrationPosition } from '../graph/compat';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import { allSteps, subgraphsOf, type Graph } from '../graph/schema';
import { HistoryReplayError, readExecution, type BoundarySnapshot, type ExecutionRead } from '../worker/history';
import { runNotFound, runStatus } from './run-gate';

/** How many executions (continue-as-new, migrations) a rerun looks back through. */
export const MAX_EXECUTIONS_READ = 50;

export interface RerunRequest {
  /** The top-level step to start at. */
  fromStep: string;
  /** Which time the source run reached the step (1-based). @default the last */
  occurrence?: number;
  /** Another version of the same definition, checked before anything starts. */
  targetVersion?: string;
  /** With targetVersion: old step id → new step id. */
  mapping?: Record<string, string>;
  /** The new run's id; a repeated request with the same id returns that run. */
  runId?: string;
  by: string;
  reason?: string;
}

export interface ReplayRequest {
  /** An edited input, validated as a start input is. @default the original input, from history */
  input?: unknown;
  targetVersion?: string;
  runId?: string;
  by: string;
  reason?: string;
}

export interface RerunResult {
  runId: string;
  temporalRunId: string | null;
  kind: 'rerun' | 'replay';
  sourceRunId: string;
  fromStep: string | null;
  version: string;
  /** False when a run with the requested id already existed (from the same source): nothing was started. */
  created: boolean;
  temporalUiUrl: string;
  /** True when the source's version had been removed by the version GC and was restored into the catalog from the source run's history. */
  versionRestored?: boolean;
}

/**
 * Refuse a step that cannot be a rerun point: one that is not in the graph,
 * or one nested in a forEach body or a parallel branch (named with the
 * enclosing top-level step, the nearest valid point).
 */
export function checkRerunPoint(graph: Graph, version: string, stepId: string): void {
  if (graph.steps.some((s) => s.id === stepId)) return;
  for (const top of graph.steps) {
    for (const sub of subgraphsOf(top)) {
      const nested = allSteps(sub.graph).find((x) => x.step.id === stepId);
      if (nested) {
        throw new PinflowError(
          ERROR_CODES.RERUN_POINT_INVALID,
          `step ${JSON.stringify(stepId)} is inside ${top.type} step ${JSON.stringify(top.id)} (${sub.field}), which runs its steps as one unit; ` +
            `a rerun starts at a top-level step: rerun from ${JSON.stringify(top.id)}, the nearest valid step`,
          { field: 'fromStep', received: stepId, nearest: top.id },
        );
      }
    }
  }
  throw new PinflowError(
    ERROR_CODES.RERUN_POINT_INVALID,
    `step ${JSON.stringify(stepId)} is not a step of version ${version} (a step of a child run is rerun on the child run, listed under the run's children); ` +
      `top-level steps: ${graph.steps.map((s) => s.id).join(', ')}`,
    { field: 'fromStep', received: stepId, allowed: graph.steps.map((s) => s.id) },
  );
}

async function read(client: Client, runId: string, temporalRunId: string | undefined, dataConverter: DataConverter | undefined): Promise<ExecutionRead> {
  try {
    return await readExecution(client, runId, temporalRunId, dataConverter ? { dataConverter } : {});
  } catch (err) {
    if (err instanceof HistoryReplayError) throw new PinflowError(ERROR_CODES.HISTORY_UNREADABLE, err.message, { runId });
    throw err;
  }
}

/** The source run must exist in Temporal (open or closed, within retention). */
export async function requireRun(client: Client, runId: string): Promise<void> {
  const { status } = await runStatus(client.workflow.getHandle(runId));
  if (status === undefined) throw runNotFound(runId);
}

/**
 * Where the source run reached top-level step `fromStep`: the execution and
 * the snapshot of its state just before the step. Reads the latest
 * execution first, then earlier ones (continue-as-new, migration) as needed.
 */
export async function findRerunPoint(
  client: Client,
  sourceRunId: string,
  request: Pick<RerunRequest, 'fromStep' | 'occurrence'>,
  dataConverter?: DataConverter,
): Promise<{ execution: ExecutionRead; snapshot: BoundarySnapshot; occurrence: number }> {
  await requireRun(client, sourceRunId);
  const chain: ExecutionRead[] = [];
  let next: string | undefined;
  for (let i = 0; i < MAX_EXECUTIONS_READ; i++) {
    const execution = await read(client, sourceRunId, next, dataConverter);
    // A step nested in the latest graph is refused at once; one the latest graph lacks may be a top-level
    // step of an earlier version (before a migration), so the earlier executions are read first.
    if (i === 0 && !execution.input.graph.steps.some((st) => st.id === request.fromStep) && allSteps(execution.input.graph).some((x) => x.step.id === request.fromStep)) {
      checkRerunPoint(execution.input.graph, execution.input.version, request.fromStep);
    }
    chain.unshift(execution);
    // Without an occurrence the last one is wanted: the latest execution that reached the step has it.
    if (request.occurrence === undefined && execution.boundaries.some((b) => b.stepId === request.fromStep)) break;
    next = execution.previousRunId;
    if (!next) break;
  }
  const hits = chain.flatMap((execution) => execution.boundaries.filter((b) => b.stepId === request.fromStep).map((snapshot) => ({ execution, snapshot })));
  if (!hits.length) {
    // Never reached in any execution: a step no version of the run has is refused as invalid.
    const latest = chain[chain.length - 1]!.input;
    if (!chain.some((e) => e.input.graph.steps.some((st) => st.id === request.fromStep))) checkRerunPoint(latest.graph, latest.version, request.fromStep);
  }
  if (!hits.length || (request.occurrence !== undefined && request.occurrence > hits.length)) {
    const reached = [...new Set(chain.flatMap((e) => e.boundaries.map((b) => b.stepId)))];
    throw new PinflowError(
      ERROR_CODES.RERUN_POINT_NOT_REACHED,
      hits.length
        ? `run ${sourceRunId} reached step ${JSON.stringify(request.fromStep)} ${hits.length} time(s); occurrence ${request.occurrence} does not exist`
        : `run ${sourceRunId} never reached step ${JSON.stringify(request.fromStep)}; it reached: ${reached.join(', ') || 'no step'}`,
      { field: request.occurrence !== undefined && hits.length ? 'occurrence' : 'fromStep', received: request.occurrence ?? request.fromStep, reached, occurrences: hits.length },
    );
  }
  const occurrence = request.occurrence ?? hits.length;
  const hit = hits[occurrence - 1]!;
  return { ...hit, occurrence };
}

/**
 * The first execution of the source run: its original start input and the
 * version it started on. Temporal names the chain's first execution
 * (`firstRunId`), so only that history is replayed; a server that does not
 * say is walked back from the latest execution.
 */
export async function readFirstExecution(client: Client, sourceRunId: string, dataConverter?: DataConverter): Promise<ExecutionRead> {
  const { description } = await runStatus(client.workflow.getHandle(sourceRunId));
  if (!description) throw runNotFound(sourceRunId);
  const firstRunId = description.raw.workflowExecutionInfo?.firstRunId || undefined;
  if (firstRunId) return read(client, sourceRunId, firstRunId, dataConverter);
  let execution = await read(client, sourceRunId, undefined, dataConverter);
  for (let i = 1; execution.previousRunId && i < MAX_EXECUTIONS_READ; i++) execution = await read(client, sourceRunId, execution.firstRunId ?? execution.previousRunId, dataConverter);
  return execution;
}

/**
 * The state a rerun carries onto `target` (another version): the position
 * must exist there with the same step type, and carried outputs must satisfy
 * the target's contracts. Throws RERUN_INCOMPATIBLE before anything starts.
 */
export function carryOnto(
  source: { graph: Graph; version: string },
  target: { hash: string; graph: Graph; contracts: Parameters<typeof checkCarriedOutputs>[0]['contracts'] },
  fromStep: string,
  steps: Record<string, unknown>,
  mapping: Record<string, string> | undefined,
): { at: string; steps: Record<string, unknown> } {
  const check = checkMigrationPosition(source.graph, target.graph, target.hash, fromStep, mapping, 'position');
  if (!check.ok) throw new PinflowError(ERROR_CODES.RERUN_INCOMPATIBLE, `rerun refused: ${check.refusal}`, { field: 'targetVersion', received: target.hash });
  const problems = checkCarriedOutputs(target, steps, mapping).map((p) => `output of step ${p.stepId} does not satisfy the target contract of ${p.rpc}: ${p.summary}`);
  if (problems.length) throw new PinflowError(ERROR_CODES.RERUN_INCOMPATIBLE, `rerun refused: ${problems.join(' | ')}`, { field: 'targetVersion', received: target.hash, problems });
  return { at: check.at, steps: carriedOutputs(target.graph, mapping, steps) };
}
