/**
 * Reading a run from its Temporal history (the authority), for rerun from a
 * step and replay: each execution's history is replayed through the
 * prebuilt interpreter bundle by a capture worker, and the interpreter tells
 * it (workflows/capture.ts) its decoded start input and its state at each
 * top-level step boundary. No projection row is read.
 */
import type { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import type { RunInput } from '../graph/wire';
import { CAPTURE_QUEUE_PREFIX, type BoundarySnapshot, type CapturedActivity, type CaptureSinks } from '../workflows/capture';
import type { temporal } from '@temporalio/proto';
import type { InjectedSinks } from '@temporalio/worker';
import { hasPrebuiltBundle, workflowBundlePath, workflowsEntry } from './bundle';

export type { BoundarySnapshot, CapturedActivity } from '../workflows/capture';

/** One execution of a run, as its history tells it. */
export interface ExecutionRead {
  temporalRunId: string;
  /** The execution this one continued from (continue-as-new, migration), if any. */
  previousRunId: string | undefined;
  /** The run's first execution (the same as temporalRunId for a first execution). */
  firstRunId: string | undefined;
  input: RunInput;
  boundaries: BoundarySnapshot[];
  /** Every activity call of the interpreter, in call order, with its arguments (decoded). */
  activities: CapturedActivity[];
  /** The history itself (the projection's rebuild reads activity outcomes from it). */
  history: temporal.api.history.v1.IHistory;
}

export class HistoryReplayError extends Error {
  constructor(
    message: string,
    override readonly cause: unknown,
  ) {
    super(message);
    this.name = 'HistoryReplayError';
  }
}

/**
 * Read one execution of run `workflowId` (the latest when `temporalRunId`
 * is absent) by replaying its history. Works for open and closed runs
 * within the namespace's retention.
 */
export async function readExecution(client: Client, workflowId: string, temporalRunId?: string, opts: { dataConverter?: DataConverter } = {}): Promise<ExecutionRead> {
  const handle = client.workflow.getHandle(workflowId, temporalRunId);
  const history = await handle.fetchHistory();
  const first = history.events?.[0];
  const started = first?.workflowExecutionStartedEventAttributes;
  if (!started) throw new HistoryReplayError(`the history of run ${workflowId} does not begin with its start`, undefined);
  const runId = temporalRunId ?? (await handle.describe()).runId;
  let input: RunInput | undefined;
  const boundaries: BoundarySnapshot[] = [];
  const activities: CapturedActivity[] = [];
  const sinks: InjectedSinks<CaptureSinks> = {
    pinflowCapture: {
      started: { fn: (_info, run) => void (input = run), callDuringReplay: true },
      boundary: { fn: (_info, snapshot) => void boundaries.push(snapshot), callDuringReplay: true },
      activity: { fn: (_info, call) => void activities.push(call), callDuringReplay: true },
    },
  };
  const workflows = hasPrebuiltBundle() ? { workflowBundle: { codePath: workflowBundlePath() } } : { workflowsPath: workflowsEntry() };
  try {
    await Worker.runReplayHistory({ ...workflows, replayName: CAPTURE_QUEUE_PREFIX, sinks, ...(opts.dataConverter ? { dataConverter: opts.dataConverter } : {}) }, history, workflowId);
  } catch (err) {
    throw new HistoryReplayError(`the history of run ${workflowId} (${runId}) did not replay: ${(err as Error).message}`, err);
  }
  if (!input) throw new HistoryReplayError(`the history of run ${workflowId} (${runId}) did not reach the interpreter's start`, undefined);
  const previous = started.continuedExecutionRunId || undefined;
  return { temporalRunId: runId, previousRunId: previous, firstRunId: started.firstExecutionRunId || undefined, input, boundaries, activities, history };
}
