/**
 * Pre-deploy impact analysis: which open runs would stall under the RPC
 * registry about to be deployed, and why. Reads the projection and the
 * pinned versions; changes nothing.
 *
 * Each open run is asked where it is (the `pinflow.state` query; the
 * projection lags for control steps), a bounded number at once, and the `rpc`
 * steps still reachable from that position over its pinned graph are checked
 * (graph/reachability.ts: forEach bodies until the loop completes, only the
 * branch taken, onError edges, parallel branches, child graphs ahead) against
 * the new registry's contract manifest:
 * - the RPC is absent → `rpc_missing`: certain when every path from the
 *   position reaches the step, else possible, naming the branch that decides;
 * - the contract hash differs and the step is the run's next RPC (dispatched,
 *   or right after the wait or sleep the run is in): its actual input is
 *   validated against the new input schema: `input_incompatible` (certain)
 *   or nothing (safe on the input side);
 * - a required field of the new input schema that the pinned mapping never
 *   supplies → `input_incompatible`;
 * - the contract hash differs otherwise → `contract_changed` (possible: the
 *   actual data decides at dispatch).
 * A run whose query fails is analysed with its position unknown: every step
 * not completed counts, and nothing is certain. A query that does not answer
 * within the timeout is asked once more, with four times the time, after
 * every other run. Runs of a version that calls no RPC the manifest removes
 * or changes (and starts no child) are not asked at all: they are safe.
 */
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { ERROR_CODES, InvalidRequestError } from '../graph/errors';
import { REGEX_ALLOWED, regexProblem } from '../graph/regex-guard';
import { evaluateExpression, evaluateMapping } from '../graph/expression';
import { parseInstance, reachableFrom, reachableUnknown, type Reachability, type Reached } from '../graph/reachability';
import { allSteps, type Graph, type PinnedContracts, type RpcStep } from '../graph/schema';
import { stepExpressions } from '../graph/validate';
import { requiredFieldsMissing, schemaIncludes } from '../graph/schema-inclusion';
import { containsRedacted, redactBySchema } from '../graph/redact';
import type { InterpreterState } from '../graph/wire';
import type { Client } from '@temporalio/client';
import { stateQuery } from '../workflows/definitions';
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
  reason: 'rpc_missing' | 'input_incompatible' | 'output_incompatible' | 'contract_changed';
  certain: boolean;
  /** `certain`: the run stalls at this step if it is deployed; `possible`: a branch, the items or the data decide. */
  verdict: 'certain' | 'possible';
  /** `live`: from the run's position (the state query); `unknown`: the query failed, every step not completed counts. */
  position: 'live' | 'unknown';
  message: string;
  /** Why: the failing field, the actual input, the branch or item count that decides. */
  evidence: { field?: string; input?: unknown; decidedBy?: string };
}

export interface DeployReport {
  checkedRuns: number;
  /** Runs analysed from their live position (the state query answered). */
  liveRuns: number;
  /** Runs analysed with their position unknown (the query failed): every step not completed counts, as possible. */
  unknownPositionRuns: number;
  /**
   * Runs whose pinned version calls no RPC the manifest removes or changes and starts no child run: safe
   * wherever they are, so not asked. checkedRuns = liveRuns + unknownPositionRuns + unaffectedRuns (+ runs
   * whose version is not in the catalog).
   */
  unaffectedRuns: number;
  /** How long the analysis took. */
  durationMs: number;
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

/** Where the run is, from the `pinflow.state` query; rejects when the run cannot answer, or once `signal` aborts. */
export type StateReader = (runId: string, signal: AbortSignal) => Promise<InterpreterState>;

/** The state reader over a Temporal client: an aborted query stops its gRPC call and retries. */
export function temporalStateReader(client: Client): StateReader {
  return (runId, signal) => client.withAbortSignal(signal, () => client.workflow.getHandle(runId).query(stateQuery));
}

export interface CheckDeployDeps {
  store: ProjectionStore;
  catalog: VersionStore;
  /** The live position of a run. Without it every run is analysed with its position unknown. */
  queryState?: StateReader;
  /** State queries in flight at once. @default 16 */
  concurrency?: number;
  /** How long one state query may take before the run counts as position unknown. @default 5000 */
  queryTimeoutMs?: number;
}

const errorsText = (validate: ValidateFunction) => (validate.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message}`).join('; ');

/** The keys a pinned input mapping supplies for sure: its literal object keys ('unknown': not an object mapping). */
function mappingKeys(mapping: unknown): string[] | 'unknown' {
  if (mapping === null || typeof mapping !== 'object' || Array.isArray(mapping)) return 'unknown';
  return Object.keys(mapping);
}

/**
 * The inputs a run can send: the pinned input schema, limited to the keys of
 * the pinned mapping when it is an object mapping (no other key is ever sent).
 */
function sentInput(pinned: unknown, keys: string[] | 'unknown'): unknown {
  if (keys === 'unknown' || pinned === null || typeof pinned !== 'object' || (pinned as { type?: unknown }).type !== 'object') return pinned;
  const p = pinned as { properties?: Record<string, unknown>; required?: unknown };
  const properties = Object.fromEntries(keys.map((k) => [k, p.properties?.[k] ?? {}]));
  const required = Array.isArray(p.required) ? p.required.filter((r) => keys.includes(r as string)) : undefined;
  return { ...pinned, properties, ...(required ? { required } : {}), additionalProperties: false };
}

/** Top-level fields of `steps.<stepId>.<field>` (or `steps."<stepId>".<field>`) that expressions of the graph read. */
function readFields(graph: Graph, stepId: string): Set<string> {
  const out = new Set<string>();
  const esc = stepId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`steps\\.(?:${esc}|"${esc}"|\`${esc}\`)\\.([A-Za-z_][A-Za-z0-9_]*)`, 'g');
  for (const { step } of allSteps(graph)) for (const { source } of stepExpressions(step)) for (const m of source.matchAll(re)) out.add(m[1]!);
  return out;
}

/** Required top-level fields of an object schema (none when it is not one). */
function requiredOf(schema: unknown): string[] {
  if (schema === null || typeof schema !== 'object') return [];
  const required = (schema as { required?: unknown }).required;
  return Array.isArray(required) ? required.filter((f): f is string => typeof f === 'string') : [];
}

/** Fields in `relied` that the new (object) output schema does not require. */
function notGuaranteed(live: unknown, relied: Iterable<string>): string[] {
  if (live === null || typeof live !== 'object' || (live as { type?: unknown }).type !== 'object') return [];
  const liveRequired = new Set(requiredOf(live));
  return [...new Set(relied)].filter((f) => !liveRequired.has(f)).sort();
}

/** Run `fn` over `items` with at most `limit` in flight. */
async function boundedMap<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  return out;
}

export async function checkDeploy(deps: CheckDeployDeps, manifest: ContractManifest): Promise<DeployReport> {
  const started = Date.now();
  const inputValidators = validateManifest(manifest);
  const { store, catalog } = deps;
  const versions = new Map<string, Promise<{ graph: Graph; contracts: PinnedContracts } | undefined>>();
  const versionOf = (hash: string) => {
    let v = versions.get(hash);
    if (!v) versions.set(hash, (v = catalog.getVersion(hash)));
    return v;
  };
  const latest = new Map<string, Promise<string | undefined>>();
  const latestOf = (definition: string) => {
    let v = latest.get(definition);
    if (!v) latest.set(definition, (v = catalog.getDefinition(definition).then((d) => d?.latestVersion)));
    return v;
  };
  const impacts: DeployImpact[] = [];
  let checkedRuns = 0;
  let liveRuns = 0;
  let unknownPositionRuns = 0;
  let unaffectedRuns = 0;
  /** Runs whose state query timed out in the first pass: asked once more, after every other run. */
  const late: RunSummary[] = [];

  // A version that calls no RPC the manifest removes or changes, and starts no child, is safe wherever its
  // runs are: they are not asked (a state query on a run the worker has not cached replays its history).
  const exposure = new Map<string, Promise<boolean>>();
  const exposed = (hash: string) => {
    let e = exposure.get(hash);
    if (!e) {
      exposure.set(
        hash,
        (e = versionOf(hash).then((version) => {
          if (!version) return false;
          return allSteps(version.graph).some(({ step }) => {
            if (step.type === 'child') return true;
            if (step.type !== 'rpc') return false;
            const live = manifest[step.rpc];
            const pinned = version.contracts[step.rpc];
            return !live || (pinned !== undefined && pinned.hash !== live.hash);
          });
        })),
      );
    }
    return e;
  };

  /** The run's state, or undefined when the query failed; 'late' when it did not answer in time. */
  const askState = async (runId: string, timeoutMs: number): Promise<InterpreterState | undefined | 'late'> => {
    if (!deps.queryState) return undefined;
    // Bounded: a query that does not answer in time is aborted (its gRPC call and retries stop).
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => {
        abort.abort();
        resolve('late');
      }, timeoutMs);
    });
    const query = deps.queryState(runId, abort.signal);
    query.catch(() => undefined);
    try {
      return await Promise.race([query, timeout]);
    } catch {
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  };

  const analyse = async (run: RunSummary, pass: 1 | 2 = 1) => {
    if (pass === 1) checkedRuns++;
    const version = await versionOf(run.version);
    if (!version) return;
    if (!(await exposed(run.version))) {
      unaffectedRuns++;
      return;
    }
    const timeoutMs = deps.queryTimeoutMs ?? 5_000;
    const asked = await askState(run.id, pass === 1 ? timeoutMs : timeoutMs * 4);
    if (asked === 'late' && pass === 1) {
      late.push(run);
      return;
    }
    const state = asked === 'late' ? undefined : asked;
    const detail = await store.getRun(run.id);
    const position: DeployImpact['position'] = state && state.status !== 'COMPLETED' && state.status !== 'FAILED' && state.status !== 'CANCELLED' ? 'live' : 'unknown';
    if (position === 'live') liveRuns++;
    else unknownPositionRuns++;
    const scope = { input: detail?.input ?? null, steps: state?.steps ?? {}, vars: state?.vars ?? {}, run: { runId: run.id, tenant: run.tenant, version: run.version, definition: run.definition, startedAt: String(run.startedAt ?? '') } };

    let reach: Reachability;
    if (position === 'live') {
      // Item counts of the active top-level forEach steps: their items, evaluated on the run's state.
      const forEachItems: Record<string, number | undefined> = {};
      for (const instance of state!.active) {
        const p = parseInstance(instance);
        const step = p && p.suffix === '' ? version.graph.steps.find((s) => s.id === p.id) : undefined;
        if (step?.type !== 'forEach') continue;
        try {
          const items = await evaluateExpression(step.items, scope, { stepId: step.id, field: 'items' });
          forEachItems[instance] = items === null ? 0 : Array.isArray(items) ? items.length : undefined;
        } catch {
          forEachItems[instance] = undefined;
        }
      }
      reach = reachableFrom(version.graph, { active: state!.active, completed: state!.completed, forEachItems });
    } else {
      const completed = new Set((detail?.steps ?? []).filter((s) => s.status === 'COMPLETED' && !s.stepInstance.includes('[')).map((s) => s.stepId));
      reach = reachableUnknown(version.graph, completed);
    }
    const lastInput = new Map<string, unknown>();
    for (const s of detail?.steps ?? []) if (s.stepType === 'rpc' && s.input !== undefined) lastInput.set(s.stepInstance, s.input);

    // Child steps ahead: their pinned graphs, resolved as the interpreter would (a hash, else the definition's latest).
    const reached: Array<Reached<RpcStep> & { contracts: PinnedContracts; via?: string }> = reach.rpcs.map((r) => ({ ...r, certain: r.certain && position === 'live', contracts: version.contracts }));
    for (const c of reach.children) {
      const hash = c.step.version && c.step.version !== 'latest' ? c.step.version : await latestOf(c.step.definition);
      const child = hash ? await versionOf(hash) : undefined;
      if (!child) continue;
      for (const r of reachableUnknown(child.graph, new Set()).rpcs) {
        reached.push({ ...r, certain: false, decidedBy: `child "${c.step.id}" (${c.step.definition}): inside the child run`, contracts: child.contracts, via: c.step.id });
      }
    }

    for (const r of reached) {
      const step = r.step;
      const pinned = r.contracts[step.rpc];
      const live = manifest[step.rpc];
      const stepInstance = r.activeInstance ?? (r.via ? `${r.via}/${step.id}` : step.id);
      const base = { runId: run.id, definition: run.definition, version: run.version, status: run.status, stepInstance, rpc: step.rpc, position };
      const push = (reason: DeployImpact['reason'], certain: boolean, message: string, evidence: DeployImpact['evidence']) =>
        impacts.push({ ...base, reason, certain, verdict: certain ? 'certain' : 'possible', message: certain || !r.decidedBy ? message : `${message}; decided by ${r.decidedBy}`, evidence: { ...evidence, ...(certain || !r.decidedBy ? {} : { decidedBy: r.decidedBy }) } });
      if (!live) {
        push('rpc_missing', r.certain, `RPC ${JSON.stringify(step.rpc)} is not in the new registry`, {});
        continue;
      }
      if (!pinned || pinned.hash === live.hash) continue;
      const validate = inputValidators.get(step.rpc)!;
      // The run's next RPC: its actual input is known (dispatched), or computable now (the step right after a wait or sleep).
      let actual = r.activeInstance ? lastInput.get(r.activeInstance) : undefined;
      if (actual === undefined && position === 'live' && r.certain && !r.via && version.graph.steps.some((s) => s.id === step.id) && isNextRpc(version.graph, state!, step.id)) {
        try {
          actual = await evaluateMapping(step.input, scope, { stepId: step.id, field: 'input' });
        } catch {
          actual = undefined;
        }
      }
      // The projection holds sensitive values redacted (graph/redact.ts): an input with a "[redacted]" in it is
      // not the real one, so it decides nothing (the schema check below does), and evidence never shows a secret.
      if (containsRedacted(actual)) actual = undefined;
      if (actual !== undefined) {
        if (!validate(actual)) {
          const shown = redactBySchema(redactBySchema(actual, pinned.input), live.input);
          push('input_incompatible', r.certain, `the step's input fails the new input schema: ${errorsText(validate)}`, { field: validate.errors?.[0]?.instancePath || '(root)', input: shown });
          continue;
        }
        // Its input passes: the input side is safe; the output side is decided below.
      } else {
        const missing = requiredFieldsMissing(live.input, mappingKeys(step.input));
        if (missing.length > 0) {
          push('input_incompatible', r.certain, `the new input schema requires ${missing.map((m) => JSON.stringify(m)).join(', ')}, which the pinned input mapping never supplies`, { field: missing[0] });
          continue;
        }
      }
      // Output: a field the pinned output contract requires, or that an expression of the pinned graph
      // reads (`steps.<id>.<field>`), which the new output schema no longer guarantees.
      // The activity checks an output against the pinned output contract after the new schema strips it:
      // a pinned required field the new schema does not require makes the run stall.
      const lost = notGuaranteed(live.output, requiredOf(pinned.output));
      if (lost.length > 0) {
        push('output_incompatible', r.certain, `the new output schema no longer guarantees ${lost.map((f) => JSON.stringify(f)).join(', ')}, which the run's pinned output contract requires`, { field: lost[0] });
        continue;
      }
      const unread = notGuaranteed(live.output, readFields(version.graph, step.id));
      if (unread.length > 0) {
        push('contract_changed', false, `the new output schema no longer guarantees ${unread.map((f) => JSON.stringify(f)).join(', ')}, which the pinned graph reads as steps.${step.id}.${unread[0]}`, { field: unread[0] });
        continue;
      }
      // Safe when every input the run can send is valid under the new schema (known and valid, or a widened
      // schema) and every output the new schema allows is valid under the pinned one. 'unknown' is never safe.
      const inputInclusion = actual !== undefined ? ({ verdict: 'yes' } as const) : schemaIncludes(sentInput(pinned.input, mappingKeys(step.input)), live.input);
      const outputInclusion = schemaIncludes(live.output, pinned.output);
      if (inputInclusion.verdict === 'yes' && outputInclusion.verdict === 'yes') continue;
      const open = inputInclusion.verdict !== 'yes' ? { side: 'input', ...inputInclusion } : outputInclusion.verdict !== 'yes' ? { side: 'output', ...outputInclusion } : undefined;
      if (!open) continue;
      const field = `${open.side}${open.path.slice(1)}`;
      push(
        'contract_changed',
        false,
        `the contract of ${JSON.stringify(step.rpc)} changed (${pinned.hash.slice(0, 12)} → ${live.hash.slice(0, 12)}); ${open.side === 'input' ? 'a value the pinned input allows' : 'a value the new output allows'} may not pass at ${field}: ${open.reason}; the data at dispatch decides`,
        { field },
      );
    }
  };

  await store.forEachOpenRun(async (runs) => {
    await boundedMap(runs, deps.concurrency ?? 16, (run) => analyse(run));
  });
  // A busy worker answers late (each query on a run it has not cached replays that run): one more try, with more time.
  await boundedMap(late, deps.concurrency ?? 16, (run) => analyse(run, 2));
  const certainRuns = new Set(impacts.filter((i) => i.certain).map((i) => i.runId));
  const possibleRuns = new Set(impacts.filter((i) => !i.certain && !certainRuns.has(i.runId)).map((i) => i.runId));
  return { checkedRuns, liveRuns, unknownPositionRuns, unaffectedRuns, durationMs: Date.now() - started, wouldStall: certainRuns.size, mayStall: possibleRuns.size, impacts };
}

/** Whether `stepId` (top level) is the run's next step: the target of an active wait or sleep, or the step just entered. */
function isNextRpc(graph: Graph, state: InterpreterState, stepId: string): boolean {
  for (const instance of state.active) {
    const p = parseInstance(instance);
    if (!p || p.suffix !== '') continue;
    const step = graph.steps.find((s) => s.id === p.id);
    if (!step || (step.type !== 'wait' && step.type !== 'sleep')) continue;
    const targets = [step.next, step.type === 'wait' ? step.onTimeout : undefined].filter((t) => t !== undefined);
    if (targets.length > 0 && targets.every((t) => t === stepId)) return true;
  }
  return false;
}
