/**
 * Signal, query and update definitions of the interpreter. Their names are
 * wire contracts: never rename one.
 */
import { defineQuery } from '@temporalio/workflow';
import type { InterpreterState } from './types';

/** Returns the live {@link InterpreterState}. */
export const stateQuery = defineQuery<InterpreterState>('pinflow.state');
