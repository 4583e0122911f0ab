/**
 * Pre-deploy impact analysis: which open runs would stall under the RPC
 * registry about to be deployed, and why. Reads the projection and the
 * pinned versions; changes nothing.
 *
 * For each open run, every `rpc` step that has not completed yet (nested
 * steps included; forEach bodies count until the loop completes) is checked
 * against the new registry's contract manifest:
 * - the RPC is absent → `rpc_missing` (certain);
 * - the contract hash differs and the step's actual input is known (the run
 *   is at that step) and fails the new input schema → `input_incompatible`
 *   (certain);
 * - the contract hash differs otherwise → `contract_changed` (possible: the
 *   actual data decides at dispatch).
 */
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { ERROR_CODES, InvalidRequestError } from '../graph/errors';
import { REGEX_ALLOWED, regexProblem } from '../graph/regex-guard';
import { allSteps, type PinnedContracts } from '../graph/schema';
import type { VersionStore } from '../catalog/versions';
import type { ProjectionStore, RunSummary } from '../projection/store';
import type { RpcRegistry } from '../rpc/registry';

/** The contracts of the registry about to be deployed, by RPC name. */
export type ContractManifest = Record<string, { hash: string; input: unknown; output: unknown }>;

export interface DeployImpact {
  runId: string;
  definition: string;
  version: string;
  status: RunSummary['status'];
  stepInstance: string;
  rpc: string;
  reason: 'rpc_missing' | 'input_incompatible' | 'contract_changed';
  certain: boolean;
  message: string;
}

export interface DeployReport {
  checkedRuns: number;
  /** Runs that would stall for certain. */
  wouldStall: number;
  /** Runs that may stall, depending on the data they carry. */
  mayStall: number;
  impacts: DeployImpact[];
}

export function manifestOf(registry: RpcRegistry): ContractManifest {
  const out: ContractManifest = {};
  for (const name of [...registry.names()].sort()) {
    const c = registry.get(name)!.contract;
    out[name] = { hash: c.hash, input: c.input, output: c.output };
  }
  return out;
}

/** Where a schema holds a `$ref` (or `$dynamicRef`) that is not local, or undefined. Iterative. */
function remoteRef(schema: unknown): { path: string; ref: unknown } | undefined {
  const stack: Array<[unknown, string]> = [[schema, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    for (const [k, c] of Object.entries(v as Record<string, unknown>)) {
      if ((k === '$ref' || k === '$dynamicRef' || k === '$recursiveRef') && !(typeof c === 'string' && c.startsWith('#'))) return { path: `${path}/${k}`, ref: c };
      stack.push([c, `${path}/${k}`]);
    }
  }
  return undefined;
}

/**
 * The first regular expression in a schema that can backtrack
 * catastrophically: a `pattern` value or a `patternProperties` key. Ajv would
 * run them on caller data in the API process, where one slow match freezes
 * every request; they are refused instead (graph/regex-guard.ts). Iterative.
 */
function unsafePattern(schema: unknown): { path: string; pattern: string; problem: string } | undefined {
  const stack: Array<[unknown, string]> = [[schema, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    for (const [k, c] of Object.entries(v as Record<string, unknown>)) {
      if (k === 'pattern' && typeof c === 'string') {
        const problem = regexProblem(c);
        if (problem) return { path: `${path}/pattern`, pattern: c, problem };
      }
      if (k === 'patternProperties' && c !== null && typeof c === 'object') {
        for (const key of Object.keys(c)) {
          const problem = regexProblem(key);
          if (problem) return { path: `${path}/patternProperties`, pattern: key, problem };
        }
      }
      stack.push([c, `${path}/${k}`]);
    }
  }
  return undefined;
}

/**
 * Check every schema of a manifest before anything is compiled: each must be
 * a valid JSON Schema (2020-12) whose references are all local (`#...`), so
 * nothing is ever fetched or resolved from elsewhere. Throws MANIFEST_INVALID
 * naming the RPC and the side. Returns the compiled input schemas by RPC, for
 * the impact check (each schema is compiled once).
 */
export function validateManifest(manifest: ContractManifest): Map<string, ValidateFunction> {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
  const inputValidators = new Map<string, ValidateFunction>();
  for (const [rpc, c] of Object.entries(manifest)) {
    for (const side of ['input', 'output'] as const) {
      const schema = c[side];
      const field = `contracts.${rpc}.${side}`;
      const refuse = (why: string): never => {
        throw new InvalidRequestError(ERROR_CODES.MANIFEST_INVALID, `${field} ${why}; allowed: a JSON Schema (2020-12) with local $refs only`, {
          field,
          rpc,
          allowed: 'a JSON Schema (2020-12) with local $refs only',
        });
      };
      if (typeof schema !== 'boolean' && (schema === null || typeof schema !== 'object' || Array.isArray(schema))) refuse(`is ${schema === undefined ? 'missing' : Array.isArray(schema) ? 'an array' : schema === null ? 'null' : `a ${typeof schema}`}, not a JSON Schema`);
      const remote = remoteRef(schema);
      if (remote) refuse(`has a non-local reference ${JSON.stringify(remote.ref)} at ${remote.path}`);
      const unsafe = unsafePattern(schema);
      if (unsafe) {
        throw new InvalidRequestError(ERROR_CODES.REGEX_UNSAFE, `${field} has the pattern ${JSON.stringify(unsafe.pattern)} at ${unsafe.path}, which is refused: ${unsafe.problem}`, {
          field,
          rpc,
          path: unsafe.path,
          received: unsafe.pattern,
          allowed: REGEX_ALLOWED,
        });
      }
      let valid: boolean;
      try {
        valid = ajv.validateSchema(schema as object) as boolean;
      } catch (err) {
        return refuse(`is not a valid JSON Schema: ${(err as Error).message}`);
      }
      if (!valid) refuse(`is not a valid JSON Schema: ${ajv.errorsText(ajv.errors, { dataVar: 'schema' })}`);
      try {
        const validate = ajv.compile(schema as object);
        if (side === 'input') inputValidators.set(rpc, validate);
      } catch (err) {
        refuse(`does not compile: ${(err as Error).message}`);
      }
    }
  }
  return inputValidators;
}

export async function checkDeploy(deps: { store: ProjectionStore; catalog: VersionStore }, manifest: ContractManifest): Promise<DeployReport> {
  const inputValidators = validateManifest(manifest);
  const { store, catalog } = deps;
  const versions = new Map<string, { graph: Parameters<typeof allSteps>[0]; contracts: PinnedContracts } | undefined>();
  const impacts: DeployImpact[] = [];
  let checkedRuns = 0;
  await store.forEachOpenRun(async (runs) => {
    for (const run of runs) {
      checkedRuns++;
      if (!versions.has(run.version)) versions.set(run.version, await catalog.getVersion(run.version));
      const version = versions.get(run.version);
      if (!version) continue;
      const detail = await store.getRun(run.id);
      const completed = new Set((detail?.steps ?? []).filter((s) => s.status === 'COMPLETED').map((s) => s.stepId));
      const lastInput = new Map<string, unknown>();
      for (const s of detail?.steps ?? []) if (s.stepType === 'rpc' && s.input !== undefined) lastInput.set(s.stepInstance, s.input);
      for (const { step } of allSteps(version.graph)) {
        if (step.type !== 'rpc' || completed.has(step.id)) continue;
        const pinned = version.contracts[step.rpc];
        const live = manifest[step.rpc];
        const base = { runId: run.id, definition: run.definition, version: run.version, status: run.status, stepInstance: step.id, rpc: step.rpc };
        if (!live) {
          impacts.push({ ...base, reason: 'rpc_missing', certain: true, message: `RPC ${JSON.stringify(step.rpc)} is not in the new registry` });
          continue;
        }
        if (!pinned || pinned.hash === live.hash) continue;
        // The actual input is known when the run already dispatched this step (e.g. it is stalled there).
        const actual = lastInput.get(step.id);
        if (actual !== undefined) {
          const validate = inputValidators.get(step.rpc)!;
          if (!validate(actual)) {
            impacts.push({
              ...base,
              reason: 'input_incompatible',
              certain: true,
              message: `the step's actual input fails the new input schema: ${(validate.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message}`).join('; ')}`,
            });
            continue;
          }
        }
        impacts.push({ ...base, reason: 'contract_changed', certain: false, message: `the contract of ${JSON.stringify(step.rpc)} changed (${pinned.hash.slice(0, 12)} → ${live.hash.slice(0, 12)}); the data at dispatch decides` });
      }
    }
  });
  const certainRuns = new Set(impacts.filter((i) => i.certain).map((i) => i.runId));
  const possibleRuns = new Set(impacts.filter((i) => !i.certain && !certainRuns.has(i.runId)).map((i) => i.runId));
  return { checkedRuns, wouldStall: certainRuns.size, mayStall: possibleRuns.size, impacts };
}
