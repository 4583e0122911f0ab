/**
 * Publish-time graph validation: schema, step references, reachability,
 * acyclicity, expression compilation and RPC registration. Every problem is
 * reported at once, each with a stable code, the JSON path and the step id.
 */
import type { z } from 'zod';
import { GRAPH_ISSUE_CODES, GraphValidationError, type GraphIssue } from './errors';
import { compileExpression, ExpressionError, expressionsInMapping } from './expression';
import { edgesOf, graphSchema, STEP_TYPES, type Graph, type Step } from './schema';

export interface ValidateOptions {
  /** Names of the RPCs the registry knows. Each `rpc` step must name one. */
  rpcNames: ReadonlySet<string>;
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(root)' : out;
}

function rawStepId(raw: unknown, index: number): string | undefined {
  const steps = (raw as { steps?: unknown } | null)?.steps;
  if (!Array.isArray(steps)) return undefined;
  const id = (steps[index] as { id?: unknown } | undefined)?.id;
  return typeof id === 'string' ? id : undefined;
}

function withStep(issue: Omit<GraphIssue, 'stepId'>, stepId: string | undefined): GraphIssue {
  return stepId === undefined ? issue : { ...issue, stepId };
}

/** Issues visible in the raw JSON before the schema runs. */
function preSchemaIssues(raw: unknown): { issues: GraphIssue[]; unknownTypeIndexes: Set<number> } {
  const issues: GraphIssue[] = [];
  const unknownTypeIndexes = new Set<number>();
  const steps = (raw as { steps?: unknown } | null)?.steps;
  if (!Array.isArray(steps)) return { issues, unknownTypeIndexes };
  const seen = new Map<string, number>();
  steps.forEach((s: unknown, i) => {
    const id = rawStepId(raw, i);
    const type = (s as { type?: unknown } | null)?.type;
    if (typeof type === 'string' && !(STEP_TYPES as readonly string[]).includes(type)) {
      unknownTypeIndexes.add(i);
      issues.push(
        withStep(
          {
            code: GRAPH_ISSUE_CODES.UNKNOWN_STEP_TYPE,
            path: `steps[${i}].type`,
            message: `unknown step type ${JSON.stringify(type)}; allowed types are: ${STEP_TYPES.join(', ')}`,
          },
          id,
        ),
      );
    }
    if (id !== undefined) {
      const first = seen.get(id);
      if (first !== undefined) {
        issues.push({
          code: GRAPH_ISSUE_CODES.DUPLICATE_STEP_ID,
          path: `steps[${i}].id`,
          stepId: id,
          message: `duplicate step id ${JSON.stringify(id)}; it is already used by steps[${first}]`,
        });
      } else seen.set(id, i);
    }
  });
  return { issues, unknownTypeIndexes };
}

function schemaIssues(raw: unknown, error: z.ZodError, unknownTypeIndexes: Set<number>): GraphIssue[] {
  const out: GraphIssue[] = [];
  for (const issue of error.issues) {
    const path = issue.path;
    const stepIndex = path[0] === 'steps' && typeof path[1] === 'number' ? path[1] : undefined;
    // An unknown `type` is already reported with the list of allowed types.
    if (stepIndex !== undefined && unknownTypeIndexes.has(stepIndex)) continue;
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown field(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    out.push(
      withStep(
        { code: GRAPH_ISSUE_CODES.SCHEMA_INVALID, path: formatPath(path), message },
        stepIndex !== undefined ? rawStepId(raw, stepIndex) : undefined,
      ),
    );
  }
  return out;
}

/** Expressions of a step, with their field names. */
function stepExpressions(step: Step): Array<{ field: string; source: string }> {
  switch (step.type) {
    case 'rpc':
      return expressionsInMapping(step.input, 'input');
    case 'assign':
      return Object.keys(step.set).flatMap((k) => expressionsInMapping(step.set[k], `set.${k}`));
    case 'if':
      return [{ field: 'condition', source: step.condition }];
    case 'return':
      return expressionsInMapping(step.output, 'output');
    case 'fail':
      return [{ field: 'message', source: step.message }];
    default: {
      const never: never = step;
      throw new Error(`unknown step type ${(never as { type: string }).type}`);
    }
  }
}

function structuralIssues(graph: Graph, opts: ValidateOptions): GraphIssue[] {
  const issues: GraphIssue[] = [];
  const index = new Map<string, number>();
  graph.steps.forEach((s, i) => {
    if (!index.has(s.id)) index.set(s.id, i);
  });
  if (!index.has(graph.entry)) {
    issues.push({
      code: GRAPH_ISSUE_CODES.UNKNOWN_ENTRY,
      path: 'entry',
      message: `entry ${JSON.stringify(graph.entry)} is not a step id; known ids are: ${[...index.keys()].join(', ')}`,
    });
  }
  graph.steps.forEach((step, i) => {
    for (const edge of edgesOf(step)) {
      if (!index.has(edge.target)) {
        issues.push({
          code: GRAPH_ISSUE_CODES.UNKNOWN_EDGE_TARGET,
          path: `steps[${i}].${edge.field}`,
          stepId: step.id,
          message: `edge "${edge.field}" points to unknown step ${JSON.stringify(edge.target)}`,
        });
      }
    }
    if (step.type === 'rpc' && !opts.rpcNames.has(step.rpc)) {
      const known = [...opts.rpcNames].sort();
      issues.push({
        code: GRAPH_ISSUE_CODES.RPC_NOT_REGISTERED,
        path: `steps[${i}].rpc`,
        stepId: step.id,
        message: `RPC ${JSON.stringify(step.rpc)} is not registered; registered RPCs are: ${known.length ? known.join(', ') : '(none)'}`,
      });
    }
    for (const { field, source } of stepExpressions(step)) {
      try {
        compileExpression(source, { stepId: step.id, field });
      } catch (err) {
        if (!(err instanceof ExpressionError)) throw err;
        issues.push({ code: GRAPH_ISSUE_CODES.EXPRESSION_INVALID, path: `steps[${i}].${field}`, stepId: step.id, message: err.message });
      }
    }
  });

  // Reachability from the entry.
  const reachable = new Set<string>();
  if (index.has(graph.entry)) {
    const queue = [graph.entry];
    while (queue.length) {
      const id = queue.shift()!;
      if (reachable.has(id)) continue;
      reachable.add(id);
      const step = graph.steps[index.get(id)!]!;
      for (const e of edgesOf(step)) if (index.has(e.target)) queue.push(e.target);
    }
    graph.steps.forEach((s, i) => {
      if (!reachable.has(s.id)) {
        issues.push({
          code: GRAPH_ISSUE_CODES.UNREACHABLE_STEP,
          path: `steps[${i}]`,
          stepId: s.id,
          message: `step ${JSON.stringify(s.id)} cannot be reached from the entry ${JSON.stringify(graph.entry)}`,
        });
      }
    });
  }

  // Cycles: the first-cut language has no loop constructs, so any cycle is an
  // error. Reported as a path, `a -> b -> a`.
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const reported = new Set<string>();
  const visit = (id: string): void => {
    state.set(id, 'visiting');
    stack.push(id);
    const step = graph.steps[index.get(id)!]!;
    for (const e of edgesOf(step)) {
      if (!index.has(e.target)) continue;
      const s = state.get(e.target);
      if (s === 'visiting') {
        const cycle = [...stack.slice(stack.indexOf(e.target)), e.target];
        const key = [...cycle.slice(0, -1)].sort().join(',');
        if (!reported.has(key)) {
          reported.add(key);
          issues.push({
            code: GRAPH_ISSUE_CODES.CYCLE,
            path: `steps[${index.get(id)}].${e.field}`,
            stepId: id,
            message: `cycle ${cycle.join(' -> ')}; cycles are only allowed through loop constructs`,
          });
        }
      } else if (s === undefined) visit(e.target);
    }
    stack.pop();
    state.set(id, 'done');
  };
  for (const s of graph.steps) if (!state.has(s.id)) visit(s.id);
  return issues;
}

/** Validate raw JSON as a graph. Returns the parsed graph or throws with every issue. */
export function validateGraph(raw: unknown, opts: ValidateOptions): Graph {
  const pre = preSchemaIssues(raw);
  const parsed = graphSchema.safeParse(raw);
  if (!parsed.success) {
    throw new GraphValidationError([...pre.issues, ...schemaIssues(raw, parsed.error, pre.unknownTypeIndexes)]);
  }
  const issues = [...pre.issues, ...structuralIssues(parsed.data, opts)];
  if (issues.length) throw new GraphValidationError(issues);
  return parsed.data;
}
