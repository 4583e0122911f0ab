/**
 * Signal, query and update definitions of the interpreter. Their names are
 * wire contracts: never rename one.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { EventSignal, InterpreterState, MigrateRequest, PauseInfo, PauseRequest, StallDecision } from '../graph/wire';

/** Returns the live {@link InterpreterState}. */
export const stateQuery = defineQuery<InterpreterState>('pinflow.state');

/**
 * An operator decision on a stall (retry or skip). Its validator refuses an
 * invalid decision synchronously, with the reason, before anything is written
 * to history.
 */
export const resolveStallUpdate = defineUpdate<{ accepted: true; stallId: string; action: StallDecision['action'] }, [StallDecision]>('pinflow.resolveStall');

/**
 * Migrate the run to another version at a safe point (stalled, or waiting, at
 * a top-level step): the run continues as new on the target graph, carrying
 * the outputs of its completed steps by step id (or through `mapping`).
 */
export const migrateUpdate = defineUpdate<{ accepted: true; at: string; carried: string[]; dropped: string[] }, [MigrateRequest]>('pinflow.migrate');

/**
 * An event routed to this run through the correlation index (or re-sent by
 * the sweeper). The run buffers it and decides: the name, key, tenant, match
 * filter and target wait are re-checked; stale and duplicate events are dropped.
 */
export const eventSignal = defineSignal<[EventSignal]>('pinflow.event');

/**
 * Since 0.8.0 (FLAGS.PAUSE): pause the run at its next top-level step
 * boundary. The validator refuses, before anything is written to history, a
 * run that cannot be paused (PAUSE_NOT_SUPPORTED: started before 0.8.0), one
 * already paused (RUN_ALREADY_PAUSED) and a request without `by`.
 */
export const pauseUpdate = defineUpdate<{ accepted: true; pause: PauseInfo }, [PauseRequest]>('pinflow.pause');

/** Since 0.8.0: lift a pause (pending or held). Refused when the run is not paused (RUN_NOT_PAUSED). */
export const resumeUpdate = defineUpdate<{ accepted: true; pause: PauseInfo }, [PauseRequest]>('pinflow.resume');
