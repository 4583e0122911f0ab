/**
 * Publish-time graph validation: schema, step references, reachability,
 * acyclicity, expression guardrails, RPC registration, child definitions and
 * size. Every problem is reported at once, each with a stable code, the JSON
 * path and the step id. Nested subgraphs (forEach bodies, parallel branches)
 * are validated as graphs of their own: their edges stay inside them.
 */
import type { z } from 'zod';
import { canonicalJson } from './canonical';
import { GRAPH_ISSUE_CODES, GraphValidationError, type GraphIssue, type GraphIssueCode } from './errors';
import { checkExpression, ExpressionError, expressionsInMapping } from './expression';
import { allSteps, edgesOf, graphSchema, MAX_GRAPH_BYTES, STEP_TYPES, subgraphsOf, type Graph, type Step, type Subgraph } from './schema';

export interface ValidateOptions {
  /** Names of the RPCs the registry knows. Each `rpc` step must name one. */
  rpcNames: ReadonlySet<string>;
  /**
   * Checks a `child` step's target. Resolves to 'ok', or which part is unknown.
   * Omitted: child targets are not checked.
   */
  resolveChild?: (definition: string, version: string | undefined) => Promise<'ok' | 'definition' | 'version'>;
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(root)' : out;
}

/** Walk raw JSON along a path, returning the id of the innermost step on it. */
function stepIdOnPath(raw: unknown, path: ReadonlyArray<PropertyKey>): string | undefined {
  let node: unknown = raw;
  let id: string | undefined;
  for (let i = 0; i < path.length; i++) {
    if (node === null || typeof node !== 'object') break;
    node = (node as Record<PropertyKey, unknown>)[path[i] as string];
    if (typeof path[i] === 'number' && path[i - 1] === 'steps') {
      const candidate = (node as { id?: unknown } | null)?.id;
      if (typeof candidate === 'string') id = candidate;
    }
  }
  return id;
}

function withStep(issue: Omit<GraphIssue, 'stepId'>, stepId: string | undefined): GraphIssue {
  return stepId === undefined ? issue : { ...issue, stepId };
}

/** Raw step objects with their paths, nested ones included, before the schema runs. */
function rawSteps(raw: unknown, prefix = ''): Array<{ step: Record<string, unknown>; path: string }> {
  const steps = (raw as { steps?: unknown } | null)?.steps;
  if (!Array.isArray(steps)) return [];
  return steps.flatMap((s: unknown, i) => {
    if (s === null || typeof s !== 'object') return [];
    const step = s as Record<string, unknown>;
    const path = `${prefix}steps[${i}]`;
    const nested: Array<{ step: Record<string, unknown>; path: string }> = [];
    if (step.body && typeof step.body === 'object') nested.push(...rawSteps(step.body, `${path}.body.`));
    if (step.branches && typeof step.branches === 'object') {
      for (const [name, sg] of Object.entries(step.branches as Record<string, unknown>)) nested.push(...rawSteps(sg, `${path}.branches.${name}.`));
    }
    return [{ step, path }, ...nested];
  });
}

/** Unknown step types and duplicate ids are visible in the raw JSON, before the schema runs. */
function preSchemaIssues(raw: unknown): { issues: GraphIssue[]; unknownTypePaths: Set<string> } {
  const issues: GraphIssue[] = [];
  const unknownTypePaths = new Set<string>();
  const seen = new Map<string, string>();
  for (const { step, path } of rawSteps(raw)) {
    const id = typeof step.id === 'string' ? step.id : undefined;
    if (typeof step.type === 'string' && !(STEP_TYPES as readonly string[]).includes(step.type)) {
      unknownTypePaths.add(path);
      issues.push(
        withStep(
          {
            code: GRAPH_ISSUE_CODES.UNKNOWN_STEP_TYPE,
            path: `${path}.type`,
            message: `unknown step type ${JSON.stringify(step.type)}; allowed types are: ${STEP_TYPES.join(', ')}`,
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
          path: `${path}.id`,
          stepId: id,
          message: `duplicate step id ${JSON.stringify(id)}; it is already used by ${first}`,
        });
      } else seen.set(id, path);
    }
  }
  return { issues, unknownTypePaths };
}

function schemaIssues(raw: unknown, error: z.ZodError, unknownTypePaths: Set<string>): GraphIssue[] {
  const out: GraphIssue[] = [];
  for (const issue of error.issues) {
    const path = formatPath(issue.path);
    // An unknown `type` is already reported with the list of allowed types.
    if ([...unknownTypePaths].some((p) => path === p || path.startsWith(`${p}.`))) continue;
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown field(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    out.push(withStep({ code: GRAPH_ISSUE_CODES.SCHEMA_INVALID, path, message }, stepIdOnPath(raw, issue.path)));
  }
  return out;
}

/** Expressions of a step (not of its nested subgraphs), with their field names. */
export function stepExpressions(step: Step): Array<{ field: string; source: string }> {
  switch (step.type) {
    case 'rpc':
      return [...expressionsInMapping(step.input, 'input'), ...(step.idempotencyKey ? [{ field: 'idempotencyKey', source: step.idempotencyKey }] : [])];
    case 'assign':
      return Object.keys(step.set).flatMap((k) => expressionsInMapping(step.set[k], `set.${k}`));
    case 'if':
      return [{ field: 'condition', source: step.condition }];
    case 'switch':
      return step.cases.map((c, i) => ({ field: `cases[${i}].when`, source: c.when }));
    case 'forEach':
      return [{ field: 'items', source: step.items }];
    case 'parallel':
      return [];
    case 'sleep':
      return step.until ? [{ field: 'until', source: step.until }] : [];
    case 'wait':
      return [
        { field: 'correlationKey', source: step.correlationKey },
        ...(step.match ? [{ field: 'match', source: step.match }] : []),
        ...(step.timeoutUntil ? [{ field: 'timeoutUntil', source: step.timeoutUntil }] : []),
      ];
    case 'child':
      return expressionsInMapping(step.input, 'input');
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

const EXPRESSION_CODES: Record<string, GraphIssueCode> = {
  FUNCTION_NOT_ALLOWED: GRAPH_ISSUE_CODES.EXPRESSION_FUNCTION_NOT_ALLOWED,
  AST_TOO_LARGE: GRAPH_ISSUE_CODES.EXPRESSION_TOO_COMPLEX,
  AST_TOO_DEEP: GRAPH_ISSUE_CODES.EXPRESSION_TOO_COMPLEX,
  OUTPUT_TOO_LARGE: GRAPH_ISSUE_CODES.EXPRESSION_OUTPUT_TOO_LARGE,
  EVALUATION_TOO_EXPENSIVE: GRAPH_ISSUE_CODES.EXPRESSION_TOO_COMPLEX,
  REGEX_UNSAFE: GRAPH_ISSUE_CODES.REGEX_UNSAFE,
};

/** Edges, reachability and cycles of one (sub)graph; recurses into nested ones. */
function graphShapeIssues(graph: Subgraph, prefix: string): GraphIssue[] {
  const issues: GraphIssue[] = [];
  const index = new Map<string, number>();
  graph.steps.forEach((s, i) => {
    if (!index.has(s.id)) index.set(s.id, i);
  });
  const where = prefix === '' ? 'the graph' : `the subgraph at ${prefix.replace(/\.$/, '')}`;
  if (!index.has(graph.entry)) {
    issues.push({
      code: GRAPH_ISSUE_CODES.UNKNOWN_ENTRY,
      path: `${prefix}entry`,
      message: `entry ${JSON.stringify(graph.entry)} is not a step of ${where}; its step ids are: ${[...index.keys()].join(', ')}`,
    });
  }
  graph.steps.forEach((step, i) => {
    for (const edge of edgesOf(step)) {
      if (!index.has(edge.target)) {
        issues.push({
          code: GRAPH_ISSUE_CODES.UNKNOWN_EDGE_TARGET,
          path: `${prefix}steps[${i}].${edge.field}`,
          stepId: step.id,
          message: `edge "${edge.field}" points to unknown step ${JSON.stringify(edge.target)}${prefix === '' ? '' : ` (edges stay inside ${where})`}`,
        });
      }
    }
    for (const sg of subgraphsOf(step)) issues.push(...graphShapeIssues(sg.graph, `${prefix}steps[${i}].${sg.field}.`));
  });

  if (index.has(graph.entry)) {
    const reachable = new Set<string>();
    const queue = [graph.entry];
    while (queue.length) {
      const id = queue.shift()!;
      if (reachable.has(id)) continue;
      reachable.add(id);
      for (const e of edgesOf(graph.steps[index.get(id)!]!)) if (index.has(e.target)) queue.push(e.target);
    }
    graph.steps.forEach((s, i) => {
      if (!reachable.has(s.id)) {
        issues.push({
          code: GRAPH_ISSUE_CODES.UNREACHABLE_STEP,
          path: `${prefix}steps[${i}]`,
          stepId: s.id,
          message: `step ${JSON.stringify(s.id)} cannot be reached from the entry ${JSON.stringify(graph.entry)}`,
        });
      }
    });
  }

  // Loops are structural (forEach bodies), so any cycle of edges is an error.
  // Reported as a path, `a -> b -> a`.
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const reported = new Set<string>();
  const visit = (id: string): void => {
    state.set(id, 'visiting');
    stack.push(id);
    for (const e of edgesOf(graph.steps[index.get(id)!]!)) {
      if (!index.has(e.target)) continue;
      const s = state.get(e.target);
      if (s === 'visiting') {
        const cycle = [...stack.slice(stack.indexOf(e.target)), e.target];
        const key = cycle.slice(0, -1).sort().join(',');
        if (!reported.has(key)) {
          reported.add(key);
          issues.push({
            code: GRAPH_ISSUE_CODES.CYCLE,
            path: `${prefix}steps[${index.get(id)}].${e.field}`,
            stepId: id,
            message: `cycle ${cycle.join(' -> ')}; cycles are only allowed through loop constructs (forEach)`,
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

async function stepIssues(graph: Graph, opts: ValidateOptions): Promise<GraphIssue[]> {
  const issues: GraphIssue[] = [];
  const known = [...opts.rpcNames].sort();
  for (const { step, path } of allSteps(graph)) {
    if (step.type === 'rpc' && !opts.rpcNames.has(step.rpc)) {
      issues.push({
        code: GRAPH_ISSUE_CODES.RPC_NOT_REGISTERED,
        path: `${path}.rpc`,
        stepId: step.id,
        message: `RPC ${JSON.stringify(step.rpc)} is not registered; registered RPCs are: ${known.length ? known.join(', ') : '(none)'}`,
      });
    }
    if (step.type === 'child' && opts.resolveChild) {
      const version = step.version === 'latest' ? undefined : step.version;
      const res = await opts.resolveChild(step.definition, version);
      if (res === 'definition') {
        issues.push({
          code: GRAPH_ISSUE_CODES.UNKNOWN_CHILD_DEFINITION,
          path: `${path}.definition`,
          stepId: step.id,
          message: `child definition ${JSON.stringify(step.definition)} does not exist; publish it first`,
        });
      } else if (res === 'version') {
        issues.push({
          code: GRAPH_ISSUE_CODES.UNKNOWN_CHILD_VERSION,
          path: `${path}.version`,
          stepId: step.id,
          message: `version ${step.version} was never published under definition ${JSON.stringify(step.definition)}`,
        });
      }
    }
    for (const { field, source } of stepExpressions(step)) {
      try {
        await checkExpression(source, { stepId: step.id, field });
      } catch (err) {
        if (!(err instanceof ExpressionError)) throw err;
        issues.push({
          code: EXPRESSION_CODES[err.jsonataCode ?? ''] ?? GRAPH_ISSUE_CODES.EXPRESSION_INVALID,
          path: `${path}.${field}`,
          stepId: step.id,
          message: err.message,
        });
      }
    }
  }
  return issues;
}

/** Validate raw JSON as a graph. Resolves to the parsed graph or rejects with every issue. */
export async function validateGraph(raw: unknown, opts: ValidateOptions): Promise<Graph> {
  const pre = preSchemaIssues(raw);
  const parsed = graphSchema.safeParse(raw);
  if (!parsed.success) {
    throw new GraphValidationError([...pre.issues, ...schemaIssues(raw, parsed.error, pre.unknownTypePaths)]);
  }
  const graph = parsed.data as Graph;
  const issues = [...pre.issues, ...graphShapeIssues(graph, ''), ...(await stepIssues(graph, opts))];
  const bytes = new TextEncoder().encode(canonicalJson(graph)).length;
  if (bytes > MAX_GRAPH_BYTES) {
    issues.push({
      code: GRAPH_ISSUE_CODES.GRAPH_TOO_LARGE,
      path: '(root)',
      message: `the graph is ${bytes} bytes of canonical JSON; the limit is ${MAX_GRAPH_BYTES} because the graph travels in every run's history`,
    });
  }
  if (issues.length) throw new GraphValidationError(issues);
  return graph;
}
