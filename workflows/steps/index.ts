/**
 * The one table from step type to handler. Exhaustive by type: a step type
 * added to the schema without a handler here fails to compile.
 */
import type { StepType } from '../../graph/schema';
import { childStep } from './child';
import { assignStep, failStep, ifStep, returnStep, switchStep } from './control';
import { forEachStep, parallelStep } from './fan-out';
import { rpcStep } from './rpc';
import type { StepHandler } from './types';
import { sleepStep, waitStep } from './wait';

export type { StepHandler, StepOf, StepOutcome } from './types';

export const STEP_HANDLERS: { [T in StepType]: StepHandler<T> } = {
  rpc: rpcStep,
  assign: assignStep,
  if: ifStep,
  switch: switchStep,
  return: returnStep,
  fail: failStep,
  forEach: forEachStep,
  parallel: parallelStep,
  sleep: sleepStep,
  wait: waitStep,
  child: childStep,
};
