/**
 * The one interpreter workflow. It walks the graph pinned in its own start
 * input (so the graph lives in the run's history) and never reads a database
 * to decide anything. Control steps (assign, if, switch, return, fail) are
 * pure workflow code and add no Temporal events; their projection records
 * ride along with the next activity. An `rpc` step is one activity; `sleep`
 * and `wait` timeouts are timers; `child` is a child workflow of the same type.
 *
 * This file only wires the run together: the per-run state is the
 * RunContext (context.ts), the walk is run-graph.ts, each step family has its
 * handler in steps/, and leaving an execution (migration, continue-as-new)
 * is migration.ts.
 *
 * Determinism: no Node APIs, no I/O. Any change to the command sequence this
 * produces for an existing history must be gated with `patched()` (flags.ts)
 * and pass the replay corpus in test/histories.
 */
import { ApplicationFailure, isCancellation, setHandler, workflowInfo } from '@temporalio/workflow';
import type { RunInput } from '../graph/wire';
import { captureStarted } from './capture';
import { ContinueNow, MigrateNow, RunContext, StepFailure } from './context';
import { eventSignal, migrateUpdate, pauseUpdate, resolveStallUpdate, resumeUpdate, stateQuery } from './definitions';
import { continueAsNewAt, handleMigrate, migrateNow, settleBoundary, validateMigrate } from './migration';
import { runSubgraph } from './run-graph';

export async function pinflowInterpreter(run: RunInput): Promise<unknown> {
  const ctx = new RunContext(run, workflowInfo());
  captureStarted(run);
  // The flags are decided before any handler is registered: an update or
  // signal that reached the run before its first workflow task is handed to
  // its handler (and validator) inside setHandler, and must see the run's
  // flags (a pause sent right after the start was refused as
  // PAUSE_NOT_SUPPORTED). No handler adds a command, so the markers keep their
  // place as the first commands.
  ctx.decideFlags();

  // Registering handlers adds no commands, so histories recorded before a
  // handler existed replay unchanged. Their order is kept as it always was.
  setHandler(stateQuery, () => ctx.state);
  setHandler(resolveStallUpdate, (decision) => ctx.acceptDecision(decision), {
    // Runs before anything is written to history: an invalid decision is refused with its reason.
    validator: (decision) => ctx.validateDecision(decision),
  });
  // Events (since 0.4.0): buffered in the inbox; each open wait takes the first entry that passes its checks.
  setHandler(eventSignal, (e) => ctx.receiveEvent(e));
  setHandler(migrateUpdate, (request) => handleMigrate(ctx, request), { validator: (request) => validateMigrate(ctx, request) });
  // Pause and resume (FLAGS.PAUSE): the validators refuse a run without the flag, a double pause, a resume of a running run.
  setHandler(pauseUpdate, (request) => ctx.acceptPause(request), { validator: (request) => ctx.validatePause(request) });
  setHandler(resumeUpdate, (request) => ctx.acceptResume(request), { validator: (request) => ctx.validateResume(request) });

  // FLAGS.RUN_STORY: the status a starter that predates it did not set (no upsert when it did).
  ctx.tell({ status: ctx.liveStatus() });
  ctx.refreshDetails();
  await ctx.projectStarted();

  let output: unknown;
  try {
    const result = await runSubgraph(ctx, run.graph, ctx.root);
    // Top level: a run that ends without a `return` step has a null output.
    output = result.returned ? result.value : null;
  } catch (err) {
    if (err instanceof ContinueNow) return await continueAsNewAt(ctx, err);
    if (err instanceof MigrateNow && ctx.migration) return await migrateNow(ctx);
    if (err instanceof StepFailure) {
      await settleBoundary(ctx, `the run failed before a step boundary: ${err.info.message}`);
      await ctx.close('FAILED', { error: err.info });
      throw ApplicationFailure.create({ message: err.info.message, type: err.info.type, nonRetryable: true, details: [err.info] });
    }
    if (isCancellation(err)) await ctx.closeCancelled();
    throw err;
  }
  await settleBoundary(ctx, 'the run reached its end before a step boundary');
  await ctx.close('COMPLETED', { output });
  return output;
}
