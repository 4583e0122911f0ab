/**
 * The one validator of values against pinned contracts. A version pins the
 * JSON Schema of every RPC it calls; an operator's skip output, a migration's
 * carried outputs, a continue-as-new onto latest and the RPC activity's
 * drift check all ask the same question, "does this value fit the contract
 * this version pinned?", and get the same answer from here.
 *
 * Compiled schemas are cached by contract hash (a contract is immutable once
 * pinned), so each contract is compiled once per process.
 */
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { allSteps, type PinnedContracts, type RpcStep, type Subgraph } from '../graph/schema';
import { ERROR_CODES, GRAPH_ISSUE_CODES, GraphValidationError, InvalidRequestError } from '../graph/errors';
import { REDACTED, redactBySchema } from '../graph/redact';

export type ContractDirection = 'input' | 'output';

export interface ContractIssue {
  /** JSON pointer into the value, or `(root)`. */
  path: string;
  message: string;
}

export type PinnedCheck = { ok: true } | { ok: false; issues: ContractIssue[]; summary: string };

const ajv = new Ajv2020({ strict: false, allErrors: true });
const compiled = new Map<string, ValidateFunction>();
/** Run input schemas, strict (an unknown keyword is a typo to report at publish), `sensitive` declared. */
const inputAjv = new Ajv2020({ strict: true, allErrors: true, validateFormats: false });
inputAjv.addKeyword({ keyword: 'sensitive', schemaType: 'boolean' });
const compiledInputs = new WeakMap<object, ValidateFunction>();

function compileInput(schema: Record<string, unknown>): ValidateFunction {
  let validate = compiledInputs.get(schema);
  if (!validate) {
    validate = inputAjv.compile(schema);
    compiledInputs.set(schema, validate);
  }
  return validate;
}

/**
 * Publish: a graph's `inputSchema` must compile (draft 2020-12, strict: an
 * unknown keyword is refused). Throws GRAPH_INVALID naming `inputSchema`.
 */
export function assertInputSchemaCompiles(inputSchema: Record<string, unknown> | undefined): void {
  if (inputSchema === undefined) return;
  try {
    compileInput(inputSchema);
  } catch (err) {
    throw new GraphValidationError([
      {
        code: GRAPH_ISSUE_CODES.SCHEMA_INVALID,
        path: 'inputSchema',
        message: `inputSchema is not a JSON Schema (draft 2020-12) that compiles: ${(err as Error).message}; allowed: a JSON Schema object, with \`sensitive: true\` on fields to redact`,
      },
    ]);
  }
}

/**
 * Start: the run input against the version's `inputSchema`, before anything
 * starts. Throws INPUT_INVALID naming each field, what was received (a
 * sensitive field's value shows as "[redacted]") and what is allowed.
 */
export function assertRunInput(inputSchema: Record<string, unknown> | undefined, input: unknown): void {
  if (inputSchema === undefined) return;
  const validate = compileInput(inputSchema);
  if (validate(input)) return;
  const shown = redactBySchema(input, inputSchema);
  const issues = (validate.errors ?? []).map((e) => {
    const field = e.instancePath === '' ? '(root)' : `input${e.instancePath.replace(/\/([^/]*)/g, (_m, k: string) => (/^\d+$/.test(k) ? `[${k}]` : `.${k.replace(/~1/g, '/').replace(/~0/g, '~')}`))}`;
    const received = e.instancePath === '' ? shown : pointer(shown, e.instancePath);
    const allowed = `${e.keyword}${Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`;
    return { field, message: e.message ?? e.keyword, received: received === undefined ? '(absent)' : received, allowed };
  });
  throw new InvalidRequestError(
    ERROR_CODES.INPUT_INVALID,
    `the run input does not satisfy the definition's inputSchema: ${issues.map((i) => `${i.field} ${i.message} (received ${typeof i.received === 'string' ? i.received : JSON.stringify(i.received)})`).join('; ')}`,
    { field: issues[0]?.field ?? 'input', received: issues[0]?.received, allowed: issues[0]?.allowed, issues },
  );
}

function pointer(value: unknown, path: string): unknown {
  let at: unknown = value;
  for (const raw of path.split('/').slice(1)) {
    if (at === REDACTED) return REDACTED;
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string, unknown>)[raw.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return at;
}

/**
 * Validate `value` against the `direction` schema that `version` pinned for
 * `rpc`. Undefined when the version pins no contract for that RPC (nothing to
 * check against).
 */
export function validatePinned(version: { contracts: PinnedContracts }, rpc: string, direction: ContractDirection, value: unknown): PinnedCheck | undefined {
  const contract = version.contracts[rpc];
  if (!contract) return undefined;
  const key = `${contract.hash}:${direction}`;
  let validate = compiled.get(key);
  if (!validate) {
    validate = ajv.compile(contract[direction] as object);
    compiled.set(key, validate);
  }
  if (validate(value)) return { ok: true };
  const issues = (validate.errors ?? []).map((e) => ({ path: e.instancePath || '(root)', message: e.message ?? e.keyword }));
  return { ok: false, issues, summary: issues.map((i) => `${i.path} ${i.message}`).join('; ') };
}

/** The step a stall id (`<step instance>/<dispatch>`) names: its step id is the instance's leading step id. */
export function stalledStep(graph: Subgraph, stallId: string): RpcStep | undefined {
  const stepId = /^[A-Za-z][A-Za-z0-9_-]*/.exec(stallId)?.[0];
  const found = stepId ? allSteps(graph).find(({ step }) => step.id === stepId)?.step : undefined;
  return found?.type === 'rpc' ? found : undefined;
}

/**
 * A skip decision's output against the output contract the run's version
 * pinned for the stalled step's RPC (the step is found from the stall id in
 * the pinned graph, not from the projection).
 */
export function checkSkipOutput(version: { graph: Subgraph; contracts: PinnedContracts }, stallId: string, output: unknown): (PinnedCheck & { rpc: string }) | undefined {
  const step = stalledStep(version.graph, stallId);
  if (!step) return undefined;
  const check = validatePinned(version, step.rpc, 'output', output);
  return check ? { ...check, rpc: step.rpc } : undefined;
}

/**
 * Outputs a run carries into another version (a migration, or a
 * continue-as-new onto latest), by step id through `mapping`: each one that
 * lands on an RPC step of the target must satisfy the target's pinned output
 * contract. Returns one problem per output that does not.
 */
export function checkCarriedOutputs(
  target: { graph: Subgraph; contracts: PinnedContracts },
  steps: Record<string, unknown>,
  mapping: Record<string, string> = {},
): Array<{ stepId: string; rpc: string; summary: string }> {
  const problems: Array<{ stepId: string; rpc: string; summary: string }> = [];
  for (const [id, output] of Object.entries(steps)) {
    const targetStep = target.graph.steps.find((st) => st.id === (mapping[id] ?? id));
    if (targetStep?.type !== 'rpc') continue;
    const check = validatePinned(target, targetStep.rpc, 'output', output);
    if (check && !check.ok) problems.push({ stepId: id, rpc: targetStep.rpc, summary: check.summary });
  }
  return problems;
}
