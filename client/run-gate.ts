/**
 * Is this run open? The one place that answers it for every operator call
 * (decision, bulk resolve, migrate, cancel, state), and the one place that
 * turns Temporal's "no such run" and "already closed" errors into pinflow's
 * codes: 404 RUN_NOT_FOUND for a run Temporal does not know, 409 RUN_CLOSED
 * (with the Temporal status) for a run that is over.
 *
 * The authority is Temporal (describe, and the errors it returns), never the
 * projection: the projection can lag behind a run that has just closed.
 */
import { QueryNotRegisteredError, QueryRejectedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowExecutionDescription, type WorkflowHandle } from '@temporalio/client';
import { ERROR_CODES, NotFoundError, PinflowError } from '../graph/errors';

/** A run's Temporal status name: RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, TIMED_OUT, CONTINUED_AS_NEW, ... */
export type TemporalRunStatus = WorkflowExecutionDescription['status']['name'];

export function runNotFound(runId: string): NotFoundError {
  return new NotFoundError(ERROR_CODES.RUN_NOT_FOUND, `run ${JSON.stringify(runId)} does not exist in Temporal`, { runId });
}

export function runClosed(runId: string, status: string, what: string): PinflowError {
  return new PinflowError(ERROR_CODES.RUN_CLOSED, `run ${JSON.stringify(runId)} is closed (status ${status}); ${what} applies only to an open run`, { runId, status });
}

/**
 * The definition a run was started with, from its Temporal memo (the client
 * and the child step set it at start): the answer when the projection has
 * no row for the run yet. A workflow without it is not a pinflow run: 404.
 */
export function definitionFromMemo(description: WorkflowExecutionDescription): string {
  const definition = (description.memo as { definition?: unknown } | undefined)?.definition;
  if (typeof definition !== 'string') {
    throw new NotFoundError(ERROR_CODES.RUN_NOT_FOUND, `workflow ${JSON.stringify(description.workflowId)} is not a pinflow run (no definition in its memo)`, { runId: description.workflowId });
  }
  return definition;
}

/** RUNNING (or PAUSED, on servers that have it) is open; every other status is over. */
function isOpen(status: TemporalRunStatus): boolean {
  return status === 'RUNNING' || status === 'PAUSED';
}

/** True when Temporal's error says the run is unknown or already over (NotFound, "already completed"). */
function isNotFoundOrClosed(err: unknown): boolean {
  if (err instanceof WorkflowNotFoundError) return true;
  const message = err instanceof Error ? err.message : '';
  return /workflow execution already completed|workflow not found|not found for ID/i.test(message);
}

/**
 * Describe the run (the latest execution of its workflow id) and return the
 * description when it is RUNNING; otherwise throw RUN_NOT_FOUND or RUN_CLOSED.
 */
export async function requireOpenRun(handle: WorkflowHandle, what: string): Promise<WorkflowExecutionDescription> {
  const status = await runStatus(handle);
  if (status.status === undefined) throw runNotFound(handle.workflowId);
  if (!isOpen(status.status)) throw runClosed(handle.workflowId, status.status, what);
  return status.description!;
}

/** The run's Temporal status, or undefined when Temporal does not know the run. */
export async function runStatus(handle: WorkflowHandle): Promise<{ status?: TemporalRunStatus; description?: WorkflowExecutionDescription }> {
  try {
    const description = await handle.describe();
    return { status: description.status.name, description };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return {};
    throw err;
  }
}

/**
 * Map an error Temporal returned to an operator call: a run that closed (or
 * vanished) meanwhile becomes RUN_CLOSED or RUN_NOT_FOUND, asking Temporal
 * which. Any other error is returned as it was, for the caller to handle.
 */
export async function mapRunError(handle: WorkflowHandle, err: unknown, what: string): Promise<unknown> {
  if (err instanceof PinflowError) return err;
  // An update the run itself refused (its validator, or a migration the run ended before) keeps its own answer,
  // even when the run has closed since; only Temporal's "no such run / already over" is asked about.
  const suspicious =
    err instanceof WorkflowUpdateFailedError
      ? isNotFoundOrClosed(err.cause)
      : isNotFoundOrClosed(err) || err instanceof QueryNotRegisteredError || err instanceof QueryRejectedError || isNotFoundOrClosed((err as { cause?: unknown })?.cause);
  if (!suspicious) return err;
  const { status } = await runStatus(handle).catch(() => ({ status: 'UNKNOWN' as TemporalRunStatus }));
  if (status === undefined) return runNotFound(handle.workflowId);
  if (!isOpen(status) && status !== 'UNKNOWN') return runClosed(handle.workflowId, status, what);
  return err;
}
