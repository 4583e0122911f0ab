/**
 * The one zod schema for graphs. Types are derived with `z.infer`, so the
 * schema is the single source of truth for the graph format (a wire contract).
 *
 * Documentation-only fields (`description`, `notes`, `ui`) are accepted on the
 * graph and on every step, and are left out of the version hash.
 */
import { z } from 'zod';

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

const base = { id: stepId, ...docFields };

export const rpcStepSchema = z.strictObject({
  ...base,
  type: z.literal('rpc'),
  /** Name of the RPC in the registry. */
  rpc: z.string().regex(RPC_NAME_PATTERN, 'must be an RPC name matching /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/'),
  /** Mapping evaluated into the RPC input. Omitted means `{}`. */
  input: mappingSchema.optional(),
  /** Also store the output in `vars.<saveAs>`. It is always in `steps.<id>`. */
  saveAs: varName.optional(),
  /** Next step; omitted ends the run with a null output. */
  next: stepId.optional(),
});

export const assignStepSchema = z.strictObject({
  ...base,
  type: z.literal('assign'),
  /** Variables to set, each from an expression. Evaluated in key order against the scope before the step. */
  set: z.record(varName, mappingSchema).refine((o) => Object.keys(o).length > 0, 'must set at least one variable'),
  next: stepId.optional(),
});

export const ifStepSchema = z.strictObject({
  ...base,
  type: z.literal('if'),
  /** Expression; JSONata truthiness decides the edge. */
  condition: expressionSchema,
  then: stepId,
  else: stepId,
});

export const returnStepSchema = z.strictObject({
  ...base,
  type: z.literal('return'),
  /** Mapping evaluated into the run output. Omitted means null. */
  output: mappingSchema.optional(),
});

export const failStepSchema = z.strictObject({
  ...base,
  type: z.literal('fail'),
  /** Stable error code the run fails with, e.g. `OUT_OF_STOCK`. */
  code: z.string().regex(FAIL_CODE_PATTERN, 'must be an UPPER_SNAKE code matching /^[A-Z][A-Z0-9_]{0,63}$/'),
  /** Expression producing the failure message. */
  message: expressionSchema,
});

export const stepSchema = z.discriminatedUnion('type', [
  rpcStepSchema,
  assignStepSchema,
  ifStepSchema,
  returnStepSchema,
  failStepSchema,
]);

export const STEP_TYPES = ['rpc', 'assign', 'if', 'return', 'fail'] as const;
export type StepType = (typeof STEP_TYPES)[number];

export const graphSchema = z.strictObject({
  ...docFields,
  /** Id of the first step. */
  entry: stepId,
  steps: z.array(stepSchema).min(1, 'a graph needs at least one step').max(2_000),
});

export type Graph = z.infer<typeof graphSchema>;
export type Step = z.infer<typeof stepSchema>;
export type RpcStep = z.infer<typeof rpcStepSchema>;
export type AssignStep = z.infer<typeof assignStepSchema>;
export type IfStep = z.infer<typeof ifStepSchema>;
export type ReturnStep = z.infer<typeof returnStepSchema>;
export type FailStep = z.infer<typeof failStepSchema>;

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

/** Outgoing edges of a step, with the JSON path of each (for error reports). */
export function edgesOf(step: Step): Array<{ field: string; target: string }> {
  switch (step.type) {
    case 'rpc':
    case 'assign':
      return step.next ? [{ field: 'next', target: step.next }] : [];
    case 'if':
      return [
        { field: 'then', target: step.then },
        { field: 'else', target: step.else },
      ];
    case 'return':
    case 'fail':
      return [];
    default: {
      const never: never = step;
      throw new Error(`unknown step type ${(never as { type: string }).type}`);
    }
  }
}
