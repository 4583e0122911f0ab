/**
 * Redaction of sensitive fields. Pure (no Node builtins): the projection
 * store, the activities and the API share it.
 *
 * A field is **sensitive** when its JSON Schema carries `sensitive: true`:
 * in an RPC contract (zod's `.meta({ sensitive: true })` becomes exactly that
 * in the contract's JSON Schema) or in a definition's `inputSchema`. A
 * version's {@link RedactionPlan} gathers every mark it pins: the run input's
 * schema, each rpc step's input and output contract, the `saveAs` variable of
 * each rpc step (its output contract), and the graph's `sensitiveVars`.
 *
 * Every surface pinflow writes (projection rows, API responses, logs) shows a
 * sensitive value as {@link REDACTED}. Temporal history keeps the real values
 * (encrypt it with the payload codec, worker/codec.ts), so rerun and replay
 * still use them.
 *
 * The walk follows `properties`, `patternProperties`, `additionalProperties`,
 * `items`/`prefixItems`, `$ref` (local `#/...` pointers: `$defs`,
 * `definitions`), `anyOf`/`oneOf`/`allOf` and `if`/`then`/`else`. When it is
 * unsure (an unresolvable `$ref` in a schema that marks something sensitive,
 * a composition), it redacts more, never less: every branch's marks apply.
 *
 * The limit, named: a value an expression derives from a sensitive field (an
 * `assign` that copies a card number into a variable, a `return` that echoes
 * it) is not tracked. List such variables in the graph's `sensitiveVars`.
 */

/** The step id of a step instance (`charge#2`) or a stall id (`charge#2/1`): its leading step id. */
export function stepIdOfInstance(instance: string): string {
  return /^[A-Za-z][A-Za-z0-9_-]*/.exec(instance)?.[0] ?? instance;
}

/** What a sensitive value shows as on every surface pinflow writes. */
export const REDACTED = '[redacted]';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

const MAX_DEPTH = 64;
const marked = new WeakMap<object, boolean>();

/** Does `schema` mark anything sensitive, anywhere inside it? Cached per schema object. */
export function hasSensitive(schema: unknown): boolean {
  if (!isObj(schema) && !Array.isArray(schema)) return false;
  const cached = marked.get(schema);
  if (cached !== undefined) return cached;
  let found = false;
  if (isObj(schema) && schema.sensitive === true) found = true;
  else for (const v of Object.values(schema)) if (typeof v === 'object' && v !== null && hasSensitive(v)) found = true;
  marked.set(schema, found);
  return found;
}

function resolveRef(ref: string, root: unknown): unknown {
  if (!ref.startsWith('#')) return undefined;
  const parts = ref
    .slice(1)
    .split('/')
    .filter((p) => p.length > 0)
    .map((p) => decodeURIComponent(p).replace(/~1/g, '/').replace(/~0/g, '~'));
  let at: unknown = root;
  for (const p of parts) {
    if (!isObj(at) && !Array.isArray(at)) return undefined;
    at = (at as Obj)[p];
  }
  return at;
}

/**
 * `value` with every field `schema` marks sensitive replaced by
 * {@link REDACTED}. Returns `value` itself (no copy) when the schema marks
 * nothing.
 */
export function redactBySchema(value: unknown, schema: unknown, root: unknown = schema): unknown {
  if (value === undefined || !hasSensitive(root)) return value;
  return walk(value, schema, root, 0);
}

function walk(value: unknown, schema: unknown, root: unknown, depth: number): unknown {
  if (value === undefined || value === null && !isObj(schema)) return value;
  if (!isObj(schema)) return value;
  if (schema.sensitive === true) return REDACTED;
  if (depth > MAX_DEPTH) return REDACTED;
  let v: unknown = value;
  if (typeof schema.$ref === 'string') {
    const target = resolveRef(schema.$ref, root);
    // Unsure where the reference leads: redact the whole value.
    if (target === undefined) return REDACTED;
    v = walk(v, target, root, depth + 1);
    if (v === REDACTED) return v;
  }
  for (const k of ['anyOf', 'oneOf', 'allOf'] as const) {
    const branches = schema[k];
    if (!Array.isArray(branches)) continue;
    for (const b of branches) {
      if (!hasSensitive(b) && !(isObj(b) && typeof b.$ref === 'string')) continue;
      v = walk(v, b, root, depth + 1);
      if (v === REDACTED) return v;
    }
  }
  for (const k of ['then', 'else'] as const) {
    if (schema[k] !== undefined && (hasSensitive(schema[k]) || hasRef(schema[k]))) {
      v = walk(v, schema[k], root, depth + 1);
      if (v === REDACTED) return v;
    }
  }
  if (isObj(v)) {
    const props = isObj(schema.properties) ? schema.properties : {};
    const patterns = isObj(schema.patternProperties) ? Object.entries(schema.patternProperties) : [];
    const additional = schema.additionalProperties;
    let out: Obj | undefined;
    for (const [key, member] of Object.entries(v)) {
      let next = member;
      let matched = false;
      if (Object.prototype.hasOwnProperty.call(props, key)) {
        matched = true;
        next = walk(next, props[key], root, depth + 1);
      }
      for (const [pattern, sub] of patterns) {
        let hit: boolean;
        try {
          hit = new RegExp(pattern, 'u').test(key);
        } catch {
          hit = true; // unsure: apply its marks
        }
        if (hit) {
          matched = true;
          next = walk(next, sub, root, depth + 1);
        }
      }
      if (!matched && additional !== undefined) next = walk(next, additional, root, depth + 1);
      if (next !== member) (out ??= { ...v })[key] = next;
    }
    v = out ?? v;
  } else if (Array.isArray(v)) {
    const prefix = Array.isArray(schema.prefixItems) ? schema.prefixItems : [];
    const items = Array.isArray(schema.items) ? undefined : schema.items;
    const tuple = Array.isArray(schema.items) ? (schema.items as unknown[]) : prefix;
    let out: unknown[] | undefined;
    v.forEach((member, i) => {
      const sub = i < tuple.length ? tuple[i] : (items ?? schema.additionalItems);
      const next = walk(member, sub, root, depth + 1);
      if (next !== member) (out ??= [...(v as unknown[])])[i] = next;
    });
    v = out ?? v;
  }
  return v;
}

function hasRef(schema: unknown): boolean {
  return isObj(schema) && typeof schema.$ref === 'string';
}

/** Whether a value holds {@link REDACTED} anywhere (a value read back from a redacted surface). */
export function containsRedacted(value: unknown): boolean {
  if (value === REDACTED) return true;
  if (Array.isArray(value)) return value.some(containsRedacted);
  if (isObj(value)) return Object.values(value).some(containsRedacted);
  return false;
}

/** Every string a schema marks sensitive in `value` (to scrub them from messages that echo them). */
export function sensitiveStrings(value: unknown, schema: unknown): string[] {
  const out: string[] = [];
  if (!hasSensitive(schema)) return out;
  const redacted = redactBySchema(value, schema);
  collectReplaced(value, redacted, out);
  return out;
}

function collectReplaced(original: unknown, redacted: unknown, out: string[]): void {
  if (original === redacted) return;
  if (redacted === REDACTED) {
    collectLeaves(original, out);
    return;
  }
  if (isObj(original) && isObj(redacted)) for (const k of Object.keys(original)) collectReplaced(original[k], redacted[k], out);
  else if (Array.isArray(original) && Array.isArray(redacted)) original.forEach((o, i) => collectReplaced(o, redacted[i], out));
}

function collectLeaves(v: unknown, out: string[]): void {
  if (typeof v === 'string') out.push(v);
  else if (typeof v === 'number' || typeof v === 'bigint') out.push(String(v));
  else if (Array.isArray(v)) v.forEach((x) => collectLeaves(x, out));
  else if (isObj(v)) Object.values(v).forEach((x) => collectLeaves(x, out));
}

/** Secrets shorter than this are not scrubbed from free text (too many false hits: "1", "no"). */
const SCRUB_MIN_LENGTH = 4;

/** `value` with every occurrence of each secret inside its strings replaced by {@link REDACTED}. */
export function scrubStrings<T>(value: T, secrets: readonly string[]): T {
  const list = [...new Set(secrets.filter((s) => s.length >= SCRUB_MIN_LENGTH))].sort((a, b) => b.length - a.length);
  if (!list.length) return value;
  const scrub = (v: unknown): unknown => {
    if (typeof v === 'string') return list.reduce((s, secret) => (s.includes(secret) ? s.split(secret).join(REDACTED) : s), v);
    if (Array.isArray(v)) return v.map(scrub);
    if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, scrub(x)]));
    return v;
  };
  return scrub(value) as T;
}

/** The part of a version redaction reads. */
export interface RedactableVersion {
  graph: { steps: readonly unknown[]; inputSchema?: unknown; sensitiveVars?: readonly string[] | undefined };
  contracts: Record<string, { input: unknown; output: unknown } | undefined>;
}

/** The sensitive marks a version pins. */
export interface RedactionPlan {
  /** Whether anything is marked at all (when not, every redaction is the identity). */
  readonly any: boolean;
  /** JSON Schema of the run input (the graph's `inputSchema`). */
  readonly input: unknown;
  /** RPC contracts by rpc step id (nested steps included). */
  readonly rpcSteps: ReadonlyMap<string, { input: unknown; output: unknown }>;
  /** Variables whose value is sensitive: `sensitiveVars`, plus `saveAs` of rpc steps whose whole output is sensitive. */
  readonly vars: ReadonlyMap<string, unknown>;
  /** Assign steps (their output is the variables they set). */
  readonly assignSteps: ReadonlySet<string>;
  /** forEach and parallel steps holding a step with marks: their aggregated output is redacted whole (unsure). */
  readonly containers: ReadonlySet<string>;
}

/** Nothing marked: the plan of a version without sensitive fields. */
export const EMPTY_PLAN: RedactionPlan = { any: false, input: undefined, rpcSteps: new Map(), vars: new Map(), assignSteps: new Set(), containers: new Set() };

function eachStep(steps: readonly unknown[], fn: (s: Obj) => void): void {
  for (const s of steps) {
    if (!isObj(s)) continue;
    fn(s);
    if (isObj(s.body) && Array.isArray(s.body.steps)) eachStep(s.body.steps, fn);
    if (isObj(s.branches)) for (const b of Object.values(s.branches)) if (isObj(b) && Array.isArray(b.steps)) eachStep(b.steps, fn);
  }
}

/** A version's sensitive marks. */
export function redactionPlan(version: RedactableVersion): RedactionPlan {
  const rpcSteps = new Map<string, { input: unknown; output: unknown }>();
  const vars = new Map<string, unknown>();
  const assignSteps = new Set<string>();
  const containers = new Set<string>();
  for (const name of version.graph.sensitiveVars ?? []) vars.set(name, { sensitive: true });
  eachStep(version.graph.steps, (s) => {
    if (s.type === 'assign' && typeof s.id === 'string') assignSteps.add(s.id);
    if (s.type !== 'rpc' || typeof s.id !== 'string' || typeof s.rpc !== 'string') return;
    const contract = version.contracts[s.rpc];
    if (!contract || !(hasSensitive(contract.input) || hasSensitive(contract.output))) return;
    rpcSteps.set(s.id, { input: contract.input, output: contract.output });
    if (typeof s.saveAs === 'string' && hasSensitive(contract.output) && !vars.has(s.saveAs)) vars.set(s.saveAs, contract.output);
  });
  // A forEach or parallel aggregates its body's outputs: when the body holds marks, its output is redacted whole.
  eachStep(version.graph.steps, (s) => {
    if ((s.type !== 'forEach' && s.type !== 'parallel') || typeof s.id !== 'string') return;
    let marked = false;
    eachStep([{ ...s, id: undefined }], (inner) => {
      if (typeof inner.id !== 'string') return;
      if (rpcSteps.has(inner.id) || (inner.type === 'assign' && isObj(inner.set) && Object.keys(inner.set).some((v) => vars.has(v)))) marked = true;
    });
    if (marked) containers.add(s.id);
  });
  const input = version.graph.inputSchema;
  return { any: hasSensitive(input) || rpcSteps.size > 0 || vars.size > 0, input, rpcSteps, vars, assignSteps, containers };
}

/** The run input with its sensitive fields redacted. */
export function redactRunInput(plan: RedactionPlan, input: unknown): unknown {
  return plan.any ? redactBySchema(input, plan.input) : input;
}

/** A variables map (the interpreter's `vars`, an assign step's output) with sensitive variables redacted. */
export function redactVars<T>(plan: RedactionPlan, vars: T): T {
  if (!plan.any || !isObj(vars) || plan.vars.size === 0) return vars;
  let out: Obj | undefined;
  for (const [name, schema] of plan.vars) {
    if (!(name in vars)) continue;
    const next = redactBySchema(vars[name], schema);
    if (next !== vars[name]) (out ??= { ...vars })[name] = next;
  }
  return (out ?? vars) as T;
}

/** An rpc step's output (`steps.<id>` in the state) with its sensitive fields redacted. */
export function redactStepOutput(plan: RedactionPlan, stepId: string, output: unknown): unknown {
  if (!plan.any || output === undefined) return output;
  const c = plan.rpcSteps.get(stepId);
  if (c) return redactBySchema(output, c.output);
  if (plan.assignSteps.has(stepId)) return redactVars(plan, output);
  if (plan.containers.has(stepId)) return REDACTED;
  return output;
}

interface StepLike {
  stepId: string;
  stepType: string;
  input?: unknown;
  output?: unknown;
  error?: unknown;
  notes?: unknown[];
}

/**
 * A step record with its sensitive fields redacted: an rpc step's input and
 * output by its contract, an assign step's output by the sensitive variables,
 * and any sensitive string of its input or output that its error echoes.
 */
export function redactStepRecord<T extends StepLike>(plan: RedactionPlan, record: T): T {
  if (!plan.any) return record;
  if (record.stepType === 'assign' && record.output !== undefined) return { ...record, output: redactVars(plan, record.output) };
  if (plan.containers.has(record.stepId) && record.output !== undefined) return { ...record, output: REDACTED };
  const c = plan.rpcSteps.get(record.stepId);
  if (!c) return record;
  const secrets = [...sensitiveStrings(record.input, c.input), ...sensitiveStrings(record.output, c.output)];
  const out = { ...record };
  if (record.input !== undefined) out.input = redactBySchema(record.input, c.input);
  if (record.output !== undefined) out.output = redactBySchema(record.output, c.output);
  if (record.error !== undefined) out.error = scrubStrings(record.error, secrets);
  return out;
}

/** The interpreter's state (query) with sensitive inputs, outputs and variables redacted. */
export function redactRunState<T>(plan: RedactionPlan, state: T): T {
  if (!plan.any || !isObj(state)) return state;
  const s: Obj = { ...state };
  if ('input' in s) s.input = redactRunInput(plan, s.input);
  if (isObj(s.vars)) s.vars = redactVars(plan, s.vars);
  if (isObj(s.steps)) s.steps = Object.fromEntries(Object.entries(s.steps).map(([id, out]) => [id, redactStepOutput(plan, id, out)]));
  // A skip's output stands for the stalled step's output.
  if (Array.isArray(s.decisions)) {
    s.decisions = s.decisions.map((d: unknown) =>
      isObj(d) && typeof d.stallId === 'string' && d.output !== undefined ? { ...d, output: redactStepOutput(plan, stepIdOfInstance(d.stallId), d.output) } : d,
    );
  }
  return s as T;
}
