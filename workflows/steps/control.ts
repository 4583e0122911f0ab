/**
 * Control steps: assign, if, switch, return, fail. Pure workflow code: they
 * add no Temporal events; their records ride along with the next activity.
 */
import { isTruthy } from '../../graph/expression';
import { setMember } from '../../graph/expression-size';
import type { ErrorInfo } from '../../graph/wire';
import { StepFailure } from '../context';
import type { StepHandler } from './types';

export const assignStep: StepHandler<'assign'> = function* (ctx, step, f) {
  const base = ctx.scope(f);
  const values: Record<string, unknown> = {};
  for (const name of Object.keys(step.set).sort()) {
    values[name] = yield ctx.evaluateMapping(step.set[name], base, { stepId: step.id, field: `set.${name}` }, { stored: true });
  }
  // Through setMember, as every write to a frame's vars and steps: the scope-size guard follows it.
  for (const name of Object.keys(values)) setMember(f.vars, name, values[name]);
  return { kind: 'next', output: values, next: step.next };
};

export const ifStep: StepHandler<'if'> = function* (ctx, step, f) {
  const value: unknown = yield ctx.evaluate(step.condition, ctx.scope(f), { stepId: step.id, field: 'condition' }, { stored: true });
  const branch = isTruthy(value) ? 'then' : 'else';
  return { kind: 'branch', taken: { branch }, output: { branch, value }, next: branch === 'then' ? step.then : step.else };
};

export const switchStep: StepHandler<'switch'> = function* (ctx, step, f) {
  let chosen = -1;
  for (let i = 0; i < step.cases.length && chosen < 0; i++) {
    if (isTruthy(yield ctx.evaluate(step.cases[i]!.when, ctx.scope(f), { stepId: step.id, field: `cases[${i}].when` }))) chosen = i;
  }
  const output = { case: chosen >= 0 ? chosen : 'default' };
  return { kind: 'branch', taken: output, output, next: chosen >= 0 ? step.cases[chosen]!.next : step.default };
};

export const returnStep: StepHandler<'return'> = function* (ctx, step, f) {
  const value: unknown = yield ctx.evaluateMapping(step.output, ctx.scope(f), { stepId: step.id, field: 'output' }, { stored: true });
  return { kind: 'return', value };
};

export const failStep: StepHandler<'fail'> = function* (ctx, step, f, at) {
  const message: unknown = yield ctx.evaluate(step.message, ctx.scope(f), { stepId: step.id, field: 'message' }, { stored: true });
  const error: ErrorInfo = { type: step.code, message: typeof message === 'string' ? message : JSON.stringify(message), stepId: step.id, stepInstance: at.instance };
  ctx.record(step, at, { status: 'FAILED', error });
  // Not catchable by this step; an enclosing forEach/parallel sees it as an item/branch failure.
  throw new StepFailure(error);
};
