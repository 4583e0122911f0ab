/**
 * Signal, query and update definitions of the interpreter. Their names are
 * wire contracts: never rename one.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { EventSignal, InterpreterState, MigrateRequest, StallDecision } from '../graph/wire';

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
