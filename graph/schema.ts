/**
 * The one zod schema for graphs. Types are derived with `z.infer`, so the
 * schema is the single source of truth for the graph format (a wire contract).
 *
 * Documentation-only fields (`description`, `notes`, `ui`) are accepted on the
 * graph and on every step, and are left out of the version hash.
 */
import { z } from 'zod';
import { VERSION_HASH_PATTERN } from './terminology';

/** Step ids, variable names and definition names share conservative charsets. */
export const STEP_ID_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
export const VAR_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
export const DEFINITION_NAME_PATTERN = /^[a-z][a-z0-9-]{0,62}[a-z0-9]$/;
export const RPC_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;
export const FAIL_CODE_PATTERN = /^[A-Z][A-Z0-9_]{0,63}$/;

/** Fields that never affect execution and are excluded from the hash. */
export const DOC_FIELDS = ['description', 'notes', 'ui'] as const;

const docFields = {
  description: z.string().max(10_000).optional(),
  notes: z.string().max(100_000).optional(),
  /** Free-form data for a visual editor (positions, colours, ...). */
  ui: z.record(z.string(), z.unknown()).optional(),
};

const stepId = z
  .string()
  .regex(STEP_ID_PATTERN, 'must match /^[A-Za-z][A-Za-z0-9_-]{0,63}$/ (letters, digits, _ and -, starting with a letter)');
const varName = z.string().regex(VAR_NAME_PATTERN, 'must be an identifier matching /^[A-Za-z_][A-Za-z0-9_]{0,63}$/');

/** A JSONata expression (source text). */
export const expressionSchema = z.string().min(1, 'an expression must not be empty').max(10_000);

/**
 * An input/output mapping: a string is a JSONata expression; numbers, booleans
 * and null are literals; objects and arrays are mapped member by member.
 */
export type Mapping = string | number | boolean | null | Mapping[] | { [key: string]: Mapping };
export const mappingSchema: z.ZodType<Mapping> = z.lazy(() =>
  z.union([expressionSchema, z.number(), z.boolean(), z.null(), z.array(mappingSchema), z.record(z.string(), mappingSchema)]),
);

/** A duration: milliseconds, or a string such as `'500ms'`, `'30s'`, `'5m'`, `'2h'`, `'1d'`. */
export const DURATION_PATTERN = /^\d+(\.\d+)?\s*(ms|s|m|h|d)$/;
export const durationSchema = z.union([
  z.number().int().min(0).max(366 * 24 * 3600 * 1000),
  z.string().regex(DURATION_PATTERN, "must be milliseconds or a duration such as '30s', '5m', '2h', '1d'"),
]);
export type Duration = z.infer<typeof durationSchema>;

/** Per-step retry override for an `rpc` step; merged over the policy pinned with the RPC. */
export const stepRetrySchema = z.strictObject({
  maximumAttempts: z.number().int().min(1).max(1_000).optional(),
  initialInterval: durationSchema.optional(),
  backoffCoefficient: z.number().min(1).max(100).optional(),
  maximumInterval: durationSchema.optional(),
  nonRetryableErrorTypes: z.array(z.string().min(1)).optional(),
});

/** Fields every step has. `onError` routes a failure of this step to a handler step. */
interface StepBase {
  id: string;
  description?: string | undefined;
  notes?: string | undefined;
  ui?: Record<string, unknown> | undefined;
  /** Route a failure of this step to this step, with `error` in scope. */
  onError?: string | undefined;
}

export interface RpcStep extends StepBase {
  type: 'rpc';
  rpc: string;
  input?: Mapping | undefined;
  saveAs?: string | undefined;
  next?: string | undefined;
  retry?: z.infer<typeof stepRetrySchema> | undefined;
  timeout?: Duration | undefined;
  /** Expression for the idempotency key handed to the handler. @default `<runId>:<stepInstance>` */
  idempotencyKey?: string | undefined;
}
export interface AssignStep extends StepBase {
  type: 'assign';
  set: Record<string, Mapping>;
  next?: string | undefined;
}
export interface IfStep extends StepBase {
  type: 'if';
  condition: string;
  then: string;
  else: string;
}
export interface SwitchStep extends StepBase {
  type: 'switch';
  cases: Array<{ when: string; next: string }>;
  default: string;
}
export interface Subgraph {
  entry: string;
  steps: Step[];
}
export interface ForEachStep extends StepBase {
  type: 'forEach';
  /** Expression producing the array to iterate. */
  items: string;
  /** Run once per item, with `item` and `index` in scope. */
  body: Subgraph;
  /** Items in flight at once. @default 1 */
  concurrency?: number | undefined;
  /** `fail` (default): the first item error fails the step. `continue`: collect errors, keep going. */
  onItemError?: 'fail' | 'continue' | undefined;
  saveAs?: string | undefined;
  next?: string | undefined;
}
export interface ParallelStep extends StepBase {
  type: 'parallel';
  branches: Record<string, Subgraph>;
  /** `all` (default): every branch runs to its end. `failFast`: the first failure cancels the others. */
  mode?: 'all' | 'failFast' | undefined;
  saveAs?: string | undefined;
  next?: string | undefined;
}
export interface SleepStep extends StepBase {
  type: 'sleep';
  duration?: Duration | undefined;
  /** Expression producing an ISO timestamp to sleep until. */
  until?: string | undefined;
  next?: string | undefined;
}
export interface WaitStep extends StepBase {
  type: 'wait';
  /** Event name, e.g. `ticket.closed`. */
  event: string;
  /** Expression producing the business key (non-empty string or number). */
  correlationKey: string;
  /** Optional filter expression over `event` (the incoming event). */
  match?: string | undefined;
  /**
   * Whether the wait may consume a buffered event (one sent with a time to
   * live before the run reached the wait). `false`: only events that arrive
   * after the run reached the wait count. @default true
   */
  acceptBuffered?: boolean | undefined;
  timeout?: Duration | undefined;
  /** Expression producing an ISO timestamp after which the wait times out. */
  timeoutUntil?: string | undefined;
  /**
   * Since 0.8.0: how long the wait may stay open before the run is flagged
   * `WAIT_OVERDUE` (client/attention.ts). Informative only: the run behaves
   * the same. Absent, it is left out of the version hash.
   */
  sla?: Duration | undefined;
  /** Step taken when the wait times out; without it a timeout fails the step. */
  onTimeout?: string | undefined;
  saveAs?: string | undefined;
  next?: string | undefined;
}
export interface ChildStep extends StepBase {
  type: 'child';
  definition: string;
  /** A version hash, or `latest` (resolved when the child starts). @default 'latest' */
  version?: string | undefined;
  input?: Mapping | undefined;
  saveAs?: string | undefined;
  next?: string | undefined;
}
export interface ReturnStep extends StepBase {
  type: 'return';
  output?: Mapping | undefined;
}
export interface FailStep extends StepBase {
  type: 'fail';
  code: string;
  message: string;
}

export type Step = RpcStep | AssignStep | IfStep | SwitchStep | ForEachStep | ParallelStep | SleepStep | WaitStep | ChildStep | ReturnStep | FailStep;
export type StepType = Step['type'];
export const STEP_TYPES = ['rpc', 'assign', 'if', 'switch', 'forEach', 'parallel', 'sleep', 'wait', 'child', 'return', 'fail'] as const satisfies readonly StepType[];

const base = { id: stepId, ...docFields, onError: stepId.optional() };
const saveAs = varName.optional();
const next = stepId.optional();

export const subgraphSchema: z.ZodType<Subgraph> = z.lazy(() =>
  z.strictObject({
    entry: stepId,
    steps: z.array(stepSchema).min(1, 'a subgraph needs at least one step').max(2_000),
  }),
);

export const rpcStepSchema = z.strictObject({
  ...base,
  type: z.literal('rpc'),
  /** Name of the RPC in the registry. */
  rpc: z.string().regex(RPC_NAME_PATTERN, 'must be an RPC name matching /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/'),
  /** Mapping evaluated into the RPC input. Omitted means `{}`. */
  input: mappingSchema.optional(),
  /** Also store the output in `vars.<saveAs>`. It is always in `steps.<id>`. */
  saveAs,
  /** Next step; omitted ends the (sub)graph. */
  next,
  retry: stepRetrySchema.optional(),
  timeout: durationSchema.optional(),
  idempotencyKey: expressionSchema.optional(),
});

export const assignStepSchema = z.strictObject({
  ...base,
  type: z.literal('assign'),
  /** Variables to set, each from an expression. Evaluated in key order against the scope before the step. */
  set: z.record(varName, mappingSchema).refine((o) => Object.keys(o).length > 0, 'must set at least one variable'),
  next,
});

export const ifStepSchema = z.strictObject({
  ...base,
  type: z.literal('if'),
  /** Expression; JSONata truthiness decides the edge. */
  condition: expressionSchema,
  then: stepId,
  else: stepId,
});

export const switchStepSchema = z.strictObject({
  ...base,
  type: z.literal('switch'),
  /** Evaluated in order; the first truthy `when` wins. */
  cases: z.array(z.strictObject({ when: expressionSchema, next: stepId })).min(1, 'a switch needs at least one case').max(100),
  default: stepId,
});

export const forEachStepSchema = z.strictObject({
  ...base,
  type: z.literal('forEach'),
  items: expressionSchema,
  body: subgraphSchema,
  concurrency: z.number().int().min(1).max(100).optional(),
  onItemError: z.enum(['fail', 'continue']).optional(),
  saveAs,
  next,
});

export const parallelStepSchema = z.strictObject({
  ...base,
  type: z.literal('parallel'),
  branches: z
    .record(varName, subgraphSchema)
    .refine((b) => Object.keys(b).length >= 1, 'a parallel step needs at least one branch')
    .refine((b) => Object.keys(b).length <= 50, 'at most 50 branches'),
  mode: z.enum(['all', 'failFast']).optional(),
  saveAs,
  next,
});

export const sleepStepSchema = z
  .strictObject({
    ...base,
    type: z.literal('sleep'),
    duration: durationSchema.optional(),
    until: expressionSchema.optional(),
    next,
  })
  .refine((s) => (s.duration === undefined) !== (s.until === undefined), { message: 'a sleep needs exactly one of "duration" or "until"' });

export const waitStepSchema = z
  .strictObject({
    ...base,
    type: z.literal('wait'),
    event: z.string().regex(RPC_NAME_PATTERN, 'must be an event name matching /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/'),
    correlationKey: expressionSchema,
    match: expressionSchema.optional(),
    acceptBuffered: z.boolean().optional(),
    timeout: durationSchema.optional(),
    timeoutUntil: expressionSchema.optional(),
    onTimeout: stepId.optional(),
    sla: durationSchema.optional(),
    saveAs,
    next,
  })
  .refine((s) => !(s.timeout !== undefined && s.timeoutUntil !== undefined), { message: 'a wait takes "timeout" or "timeoutUntil", not both' })
  .refine((s) => s.onTimeout === undefined || s.timeout !== undefined || s.timeoutUntil !== undefined, {
    message: '"onTimeout" needs a "timeout" or "timeoutUntil"',
    path: ['onTimeout'],
  });

export const childStepSchema = z.strictObject({
  ...base,
  type: z.literal('child'),
  definition: z.string().regex(DEFINITION_NAME_PATTERN, 'must be a definition name (lowercase letters, digits and dashes)'),
  version: z.union([z.literal('latest'), z.string().regex(VERSION_HASH_PATTERN, "must be 'latest' or a version hash")]).optional(),
  input: mappingSchema.optional(),
  saveAs,
  next,
});

export const returnStepSchema = z.strictObject({
  ...base,
  type: z.literal('return'),
  /** Mapping evaluated into the run output. Omitted means null. */
  output: mappingSchema.optional(),
});

export const failStepSchema = z.strictObject({
  // No onError: a fail step ends the (sub)graph with its code on purpose.
  id: stepId,
  ...docFields,
  type: z.literal('fail'),
  /** Stable error code the run fails with, e.g. `OUT_OF_STOCK`. */
  code: z.string().regex(FAIL_CODE_PATTERN, 'must be an UPPER_SNAKE code matching /^[A-Z][A-Z0-9_]{0,63}$/'),
  /** Expression producing the failure message. */
  message: expressionSchema,
});

export const stepSchema: z.ZodType<Step> = z.discriminatedUnion('type', [
  rpcStepSchema,
  assignStepSchema,
  ifStepSchema,
  switchStepSchema,
  forEachStepSchema,
  parallelStepSchema,
  sleepStepSchema,
  waitStepSchema,
  childStepSchema,
  returnStepSchema,
  failStepSchema,
]) as unknown as z.ZodType<Step>;

/** Canonical JSON of a published graph may not exceed this: the graph travels in every run's history. */
export const MAX_GRAPH_BYTES = 256 * 1024;

export const graphSchema = z.strictObject({
  ...docFields,
  /** Id of the first step. */
  entry: stepId,
  /**
   * When a long run continues as new (Temporal suggests it as history grows):
   * stay on this version (`pinned`, the default) or move to the definition's
   * latest version if it can take the run's state (`latest`).
   */
  onContinueAsNew: z.enum(['pinned', 'latest']).optional(),
  /**
   * JSON Schema (draft 2020-12) the run input must satisfy: `start` refuses
   * an input that does not (INPUT_INVALID), publish refuses a schema that
   * does not compile. Fields marked `sensitive: true` are redacted on every
   * surface pinflow writes (graph/redact.ts). Absent: any input, nothing
   * marked, and the version hash is unchanged.
   */
  inputSchema: z.record(z.string(), z.unknown()).optional(),
  /**
   * Variables whose values are sensitive wherever they show (the state's
   * `vars`, an assign step's output): values an expression derives from a
   * sensitive field cannot be tracked, so name them here.
   */
  sensitiveVars: z.array(varName).max(1_000).optional(),
  steps: z.array(stepSchema).min(1, 'a graph needs at least one step').max(2_000),
});

export interface Graph extends Subgraph {
  onContinueAsNew?: 'pinned' | 'latest' | undefined;
  /** JSON Schema of the run input; `sensitive: true` marks drive redaction. */
  inputSchema?: Record<string, unknown> | undefined;
  /** Variables redacted wherever they show. */
  sensitiveVars?: string[] | undefined;
  description?: string | undefined;
  notes?: string | undefined;
  ui?: Record<string, unknown> | undefined;
}

/** The contract of one RPC as pinned in a version. */
export interface PinnedContract {
  /** JSON Schema of the input, from zod's own conversion. */
  input: unknown;
  /** JSON Schema of the output. */
  output: unknown;
  /** sha256 of the canonical JSON of `{ input, output }`. */
  hash: string;
  /** Retry policy the worker registered for this RPC, pinned with the version. */
  retry?: RpcRetryPolicy;
  /** Start-to-close timeout in milliseconds, pinned with the version. */
  timeoutMs?: number;
}

export interface RpcRetryPolicy {
  maximumAttempts?: number;
  initialIntervalMs?: number;
  backoffCoefficient?: number;
  maximumIntervalMs?: number;
  nonRetryableErrorTypes?: string[];
}

/** The contracts of every RPC a version references, by RPC name. */
export type PinnedContracts = Record<string, PinnedContract>;

/** Outgoing edges of a step within its (sub)graph, with the field each sits in (for error reports). */
export function edgesOf(step: Step): Array<{ field: string; target: string }> {
  const edges: Array<{ field: string; target: string }> = [];
  const add = (field: string, target: string | undefined) => {
    if (target !== undefined) edges.push({ field, target });
  };
  switch (step.type) {
    case 'rpc':
    case 'assign':
    case 'forEach':
    case 'parallel':
    case 'sleep':
    case 'child':
      add('next', step.next);
      break;
    case 'if':
      add('then', step.then);
      add('else', step.else);
      break;
    case 'switch':
      step.cases.forEach((c, i) => add(`cases[${i}].next`, c.next));
      add('default', step.default);
      break;
    case 'wait':
      add('next', step.next);
      add('onTimeout', step.onTimeout);
      break;
    case 'return':
    case 'fail':
      break;
    default: {
      const never: never = step;
      throw new Error(`unknown step type ${(never as { type: string }).type}`);
    }
  }
  add('onError', step.onError);
  return edges;
}

/** The subgraphs nested directly in a step, with the field path of each. */
export function subgraphsOf(step: Step): Array<{ field: string; graph: Subgraph }> {
  if (step.type === 'forEach') return [{ field: 'body', graph: step.body }];
  if (step.type === 'parallel') return Object.keys(step.branches).map((b) => ({ field: `branches.${b}`, graph: step.branches[b]! }));
  return [];
}

/** Every step of a graph, nested ones included, with its JSON path. Depth-first, in document order. */
export function allSteps(graph: Subgraph, path = ''): Array<{ step: Step; path: string }> {
  return graph.steps.flatMap((step, i) => {
    const here = `${path}steps[${i}]`;
    return [{ step, path: here }, ...subgraphsOf(step).flatMap((sg) => allSteps(sg.graph, `${here}.${sg.field}.`))];
  });
}

/** Milliseconds of a {@link Duration}: in graph/duration.ts, which the interpreter imports without zod. */
export { durationMs } from './duration';
