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

export type ContractDirection = 'input' | 'output';

export interface ContractIssue {
  /** JSON pointer into the value, or `(root)`. */
  path: string;
  message: string;
}

export type PinnedCheck = { ok: true } | { ok: false; issues: ContractIssue[]; summary: string };

const ajv = new Ajv2020({ strict: false, allErrors: true });
const compiled = new Map<string, ValidateFunction>();

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
