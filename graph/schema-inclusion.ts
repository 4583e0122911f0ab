/**
 * Schema inclusion: is every value valid under JSON Schema `a` also valid
 * under `b`? Pure and sandbox-safe (no Node, no Ajv). It decides over the
 * subset that zod 4's `z.toJSONSchema` emits (rpc/registry.ts): `type`
 * (integer within number), `properties`, `required`, `additionalProperties`,
 * `propertyNames`, `enum`/`const`, `items`/`prefixItems`,
 * `minItems`/`maxItems`, `minLength`/`maxLength`, `minimum`/`maximum` and
 * their exclusive forms, `multipleOf`, `pattern`/`format` (equal or absent
 * only), `anyOf`/`oneOf`, local `$ref`, and the `true`/`false`/`{}` schemas.
 *
 * Three answers:
 * - `yes`: proven, every value valid under `a` is valid under `b`;
 * - `no`: a concrete `witness` value that this module's own validator finds
 *   valid under `a` and invalid under `b`, with the path where they part and
 *   why (a `no` is never given without such a witness);
 * - `unknown`: anything else (a keyword outside the subset, a different
 *   pattern, recursion, a value covered only by a mix of alternatives, or a
 *   difference for which no witness was found). Never `yes` by default.
 *
 * Paths start at `$` (`$.amount`, `$.items[*]`, `$[0]`, `$.*` for the other
 * properties); a caller names the root (`input`, `output`) by replacing `$`.
 */
import { regexProblem } from './regex-guard';

export type InclusionVerdict =
  | { verdict: 'yes' }
  | { verdict: 'no'; path: string; reason: string; witness: unknown }
  | { verdict: 'unknown'; path: string; reason: string };

type Obj = Record<string, unknown>;
type Tri = boolean | 'unknown';

/**
 * Keywords that never constrain a value. `sensitive` (pinflow's redaction
 * mark, graph/redact.ts) is one: marking a field sensitive changes the
 * contract's hash (it is part of the JSON Schema) but never its
 * compatibility, so runs pinned before the mark keep running.
 */
const ANNOTATIONS = new Set(['$schema', '$id', '$comment', '$anchor', 'title', 'description', 'default', 'examples', 'readOnly', 'writeOnly', 'deprecated', 'contentEncoding', 'contentMediaType', 'id', 'sensitive']);
const TYPES = ['null', 'boolean', 'integer', 'number', 'string', 'array', 'object'] as const;
type JsonType = (typeof TYPES)[number];
/** Keywords by the type they constrain; a keyword outside every list (and not an annotation) makes a schema unknown. */
const KEYWORDS_OF: Record<string, readonly string[]> = {
  string: ['minLength', 'maxLength', 'pattern', 'format'],
  number: ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'],
  integer: ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'],
  array: ['items', 'prefixItems', 'minItems', 'maxItems'],
  object: ['properties', 'required', 'additionalProperties', 'propertyNames'],
  boolean: [],
  null: [],
};
/** Keywords that only add a condition (no effect on how the others validate): the pinned side may ignore them. */
const NARROWING = new Set(['allOf', 'not', 'uniqueItems', 'contains', 'minContains', 'maxContains', 'minProperties', 'maxProperties', 'dependentRequired', 'dependentSchemas', 'if', 'then', 'else', 'unevaluatedProperties', 'unevaluatedItems']);
const STRUCTURAL = new Set(['type', 'enum', 'const', 'anyOf', 'oneOf', '$ref', '$defs', 'definitions']);
/** Ref expansions along one path before giving up (recursive schemas). */
const REF_DEPTH = 8;
/** Comparisons (pairs of sub-schemas) one call may make before it answers unknown. */
const STEP_BUDGET = 20_000;
/** Longest string a pattern is evaluated on by the witness check. */
const PATTERN_VALUE_MAX = 256;

class Unknown {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {}
}

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const has = (o: Obj, k: string) => Object.prototype.hasOwnProperty.call(o, k);
const keyPath = (path: string, key: string) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`);

function jsonEqual(x: unknown, y: unknown): boolean {
  if (x === y) return true;
  if (Array.isArray(x)) return Array.isArray(y) && x.length === y.length && x.every((v, i) => jsonEqual(v, y[i]));
  if (isObj(x) && isObj(y)) {
    const kx = Object.keys(x);
    return kx.length === Object.keys(y).length && kx.every((k) => has(y, k) && jsonEqual(x[k], y[k]));
  }
  return false;
}

function jsonType(v: unknown): JsonType | undefined {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'number') return Number.isFinite(v) ? (Number.isInteger(v) ? 'integer' : 'number') : undefined;
  if (typeof v === 'string') return 'string';
  if (Array.isArray(v)) return 'array';
  if (isObj(v)) return 'object';
  return undefined;
}

/** A schema in the context of the document it came from (for local `$ref`). */
interface Ctx {
  root: unknown;
  refs: number;
}

/** Follow a local `$ref` (`#`, `#/$defs/x`, any JSON pointer into the root). */
function deref(schema: unknown, ctx: Ctx, path: string): { schema: unknown; ctx: Ctx } {
  let s = schema;
  let c = ctx;
  while (isObj(s) && has(s, '$ref')) {
    const ref = s.$ref;
    if (Object.keys(s).some((k) => k !== '$ref' && !ANNOTATIONS.has(k) && k !== '$defs' && k !== 'definitions')) {
      throw new Unknown(path, 'a $ref with sibling keywords is outside the supported subset');
    }
    if (typeof ref !== 'string' || !ref.startsWith('#')) throw new Unknown(path, `$ref ${JSON.stringify(ref)} is not a local reference`);
    if (c.refs >= REF_DEPTH) throw new Unknown(path, `recursive schema ($ref ${ref} nested more than ${REF_DEPTH} deep)`);
    let target: unknown = c.root;
    for (const raw of ref.slice(1).split('/').slice(1)) {
      const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      if (!isObj(target) || !has(target, part)) throw new Unknown(path, `$ref ${ref} does not resolve`);
      target = target[part];
    }
    s = target;
    c = { root: c.root, refs: c.refs + 1 };
  }
  return { schema: s, ctx: c };
}

// ---------------------------------------------------------------------------
// The validator: used to confirm witnesses, and on finite sets (enum values).

/** Is `value` valid under `schema`? `unknown` where the subset or a pattern/format stops it. */
function validate(schema: unknown, value: unknown, ctx: Ctx): Tri {
  let d: { schema: unknown; ctx: Ctx };
  try {
    d = deref(schema, ctx, '$');
  } catch {
    return 'unknown';
  }
  const s = d.schema;
  const c = d.ctx;
  if (s === true) return true;
  if (s === false) return false;
  if (!isObj(s)) return 'unknown';
  const results: Tri[] = [];
  const t = jsonType(value);
  if (t === undefined) return 'unknown';
  for (const [k, kv] of Object.entries(s)) {
    if (ANNOTATIONS.has(k) || k === '$defs' || k === 'definitions') continue;
    switch (k) {
      case 'type': {
        const list = Array.isArray(kv) ? kv : [kv];
        results.push(list.some((x) => x === t || (x === 'number' && t === 'integer')));
        break;
      }
      case 'enum':
        results.push(Array.isArray(kv) ? kv.some((e) => jsonEqual(e, value)) : 'unknown');
        break;
      case 'const':
        results.push(jsonEqual(kv, value));
        break;
      case 'anyOf':
      case 'oneOf': {
        if (!Array.isArray(kv)) return 'unknown';
        const rs = kv.map((b) => validate(b, value, c));
        const yes = rs.filter((r) => r === true).length;
        const unk = rs.some((r) => r === 'unknown');
        if (k === 'anyOf') results.push(yes > 0 ? true : unk ? 'unknown' : false);
        else results.push(unk ? (yes > 1 ? false : 'unknown') : yes === 1);
        break;
      }
      case 'allOf':
        if (!Array.isArray(kv)) return 'unknown';
        results.push(...kv.map((b) => validate(b, value, c)));
        break;
      case 'not': {
        const r = validate(kv, value, c);
        results.push(r === 'unknown' ? r : !r);
        break;
      }
      case 'minLength':
      case 'maxLength':
        if (typeof value === 'string') {
          const n = [...value].length;
          results.push(typeof kv === 'number' ? (k === 'minLength' ? n >= kv : n <= kv) : 'unknown');
        }
        break;
      case 'pattern':
        if (typeof value === 'string') {
          if (typeof kv !== 'string' || regexProblem(kv) !== undefined || value.length > PATTERN_VALUE_MAX) results.push('unknown');
          else {
            try {
              results.push(new RegExp(kv, 'u').test(value));
            } catch {
              results.push('unknown');
            }
          }
        }
        break;
      case 'format':
        if (typeof value === 'string') results.push('unknown');
        break;
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
      case 'multipleOf':
        if (typeof value === 'number') {
          if (typeof kv !== 'number') results.push('unknown');
          else if (k === 'minimum') results.push(value >= kv);
          else if (k === 'maximum') results.push(value <= kv);
          else if (k === 'exclusiveMinimum') results.push(value > kv);
          else if (k === 'exclusiveMaximum') results.push(value < kv);
          else results.push(kv > 0 && Number.isInteger(value / kv) ? true : Number.isInteger(value) && Number.isInteger(kv) ? false : 'unknown');
        }
        break;
      case 'minItems':
      case 'maxItems':
        if (Array.isArray(value)) results.push(typeof kv === 'number' ? (k === 'minItems' ? value.length >= kv : value.length <= kv) : 'unknown');
        break;
      case 'prefixItems':
        if (Array.isArray(value)) {
          if (!Array.isArray(kv)) return 'unknown';
          value.forEach((v, i) => i < kv.length && results.push(validate(kv[i], v, c)));
        }
        break;
      case 'items':
        if (Array.isArray(value)) {
          const start = Array.isArray(s.prefixItems) ? s.prefixItems.length : 0;
          value.forEach((v, i) => i >= start && results.push(validate(kv, v, c)));
        }
        break;
      case 'required':
        if (isObj(value)) results.push(Array.isArray(kv) ? kv.every((r) => typeof r === 'string' && has(value, r)) : 'unknown');
        break;
      case 'properties':
        if (isObj(value)) {
          if (!isObj(kv)) return 'unknown';
          for (const [p, ps] of Object.entries(kv)) if (has(value, p)) results.push(validate(ps, value[p], c));
        }
        break;
      case 'additionalProperties':
        if (isObj(value)) {
          const props = isObj(s.properties) ? s.properties : {};
          if (has(s, 'patternProperties')) return 'unknown';
          for (const [p, pv] of Object.entries(value)) if (!has(props, p)) results.push(validate(kv, pv, c));
        }
        break;
      case 'propertyNames':
        if (isObj(value)) for (const p of Object.keys(value)) results.push(validate(kv, p, c));
        break;
      default:
        return 'unknown';
    }
  }
  if (results.includes(false)) return false;
  return results.includes('unknown') ? 'unknown' : true;
}

// ---------------------------------------------------------------------------
// Normal form: a schema as a union of branches, each of one type.

type Branch =
  | { kind: 'any'; schema: Obj; ctx: Ctx }
  /** A finite set: `enum`/`const`, or a boolean/null type. Values still pass through `validate` against the whole branch. */
  | { kind: 'finite'; values: unknown[]; schema: Obj; ctx: Ctx }
  | { kind: 'type'; type: JsonType; schema: Obj; ctx: Ctx };

/** Split a schema into branches. `side` b is strict: anything not exactly understood is unknown. */
function branches(schema: unknown, ctx: Ctx, path: string, side: 'a' | 'b'): Branch[] {
  const d = deref(schema, ctx, path);
  const s = d.schema;
  const c = d.ctx;
  if (s === true) return [{ kind: 'any', schema: {}, ctx: c }];
  if (s === false) return [];
  if (!isObj(s)) throw new Unknown(path, 'not a schema');
  const keys = Object.keys(s).filter((k) => !ANNOTATIONS.has(k) && k !== '$defs' && k !== 'definitions');
  if (keys.length === 1 && keys[0] === 'not' && isObj(s.not) && Object.keys(s.not).every((k) => ANNOTATIONS.has(k))) return []; // zod's never
  for (const union of ['anyOf', 'oneOf'] as const) {
    if (!has(s, union)) continue;
    const list = s[union];
    if (!Array.isArray(list)) throw new Unknown(path, `${union} is not an array`);
    if (keys.length > 1) {
      // a.b.c ∧ anyOf: on the pinned side the siblings only narrow it, so dropping them is sound for `yes`.
      if (side === 'b') throw new Unknown(path, `${union} next to other keywords in the new schema is outside the supported subset`);
    }
    const parts = list.map((x) => branches(x, c, path, side));
    if (union === 'oneOf' && side === 'b' && !pairwiseDisjoint(parts)) {
      throw new Unknown(path, 'oneOf in the new schema whose alternatives may overlap (a value matching two of them is invalid)');
    }
    return parts.flat();
  }
  for (const k of keys) {
    if (STRUCTURAL.has(k)) continue;
    if (!Object.values(KEYWORDS_OF).some((l) => l.includes(k))) {
      // On the pinned side a keyword that only adds a condition narrows it: ignoring it is sound for `yes`.
      if (side === 'b' || !NARROWING.has(k)) throw new Unknown(path, `keyword ${k} in the ${side === 'b' ? 'new' : 'pinned'} schema is outside the supported subset`);
    }
  }
  if (has(s, 'enum') || has(s, 'const')) {
    const values = has(s, 'const') ? [s.const] : s.enum;
    if (!Array.isArray(values)) throw new Unknown(path, 'enum is not an array');
    return [{ kind: 'finite', values, schema: s, ctx: c }];
  }
  let types: JsonType[];
  if (!has(s, 'type')) {
    // No type: the keywords of each type apply to that type only. Untyped with any type keyword: per-type branches.
    if (keys.length === 0) return [{ kind: 'any', schema: s, ctx: c }];
    types = [...TYPES];
  } else {
    const raw = Array.isArray(s.type) ? s.type : [s.type];
    if (!raw.every((x) => (TYPES as readonly unknown[]).includes(x))) throw new Unknown(path, `type ${JSON.stringify(s.type)} is not understood`);
    types = raw as JsonType[];
    if (types.includes('number')) types = types.filter((x) => x !== 'integer');
  }
  return types.map((type): Branch => {
    if (type === 'boolean') return { kind: 'finite', values: [false, true], schema: s, ctx: c };
    if (type === 'null') return { kind: 'finite', values: [null], schema: s, ctx: c };
    return { kind: 'type', type, schema: s, ctx: c };
  });
}

function branchTypes(b: Branch): Set<JsonType> | 'all' {
  if (b.kind === 'any') return 'all';
  if (b.kind === 'type') return new Set(b.type === 'number' ? ['number', 'integer'] : [b.type]);
  return new Set(b.values.map(jsonType).filter((t): t is JsonType => t !== undefined));
}

/** The value a branch requires at `key`, when it is an object branch that requires `key` with a const or enum. */
function discriminator(b: Branch, key: string): unknown[] | undefined {
  if (b.kind !== 'type' || b.type !== 'object') return undefined;
  const req = Array.isArray(b.schema.required) ? b.schema.required : [];
  const p = isObj(b.schema.properties) ? b.schema.properties[key] : undefined;
  if (!req.includes(key) || !isObj(p)) return undefined;
  return has(p, 'const') ? [p.const] : Array.isArray(p.enum) ? p.enum : undefined;
}

/** Whether no value is valid under both branches (as far as types, finite sets and discriminator properties show): the discriminating key, or true, or false. */
function disjoint(x: Branch, y: Branch): string | boolean {
  const tx = branchTypes(x);
  const ty = branchTypes(y);
  if (tx !== 'all' && ty !== 'all' && ![...tx].some((t) => ty.has(t))) return true;
  if (x.kind === 'finite' && y.kind === 'finite') return !x.values.some((v) => y.values.some((w) => jsonEqual(v, w)));
  if (x.kind === 'type' && x.type === 'object' && isObj(x.schema.properties)) {
    for (const key of Object.keys(x.schema.properties)) {
      const dx = discriminator(x, key);
      const dy = discriminator(y, key);
      if (dx && dy && !dx.some((v) => dy.some((w) => jsonEqual(v, w)))) return key;
    }
  }
  return false;
}

function pairwiseDisjoint(parts: Branch[][]): boolean {
  for (let i = 0; i < parts.length; i++) {
    for (let j = i + 1; j < parts.length; j++) {
      for (const x of parts[i]!) for (const y of parts[j]!) if (!disjoint(x, y)) return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Inclusion.

/** A failed sufficient check: where, why, and candidate witnesses (values of the pinned side) to confirm it. */
class Miss {
  constructor(
    readonly path: string,
    readonly reason: string,
    readonly candidates: unknown[],
  ) {}
}

type Result = true | Miss;

interface Side {
  schema: unknown;
  ctx: Ctx;
}

/** Numeric bounds of a number/integer branch. */
interface Bounds {
  lo: number;
  loEx: boolean;
  hi: number;
  hiEx: boolean;
}

function bounds(s: Obj, path: string): Bounds {
  const num = (k: string): number | undefined => {
    const v = s[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number') throw new Unknown(path, `${k} is not a number`);
    return v;
  };
  const b: Bounds = { lo: -Infinity, loEx: false, hi: Infinity, hiEx: false };
  const min = num('minimum');
  const xmin = num('exclusiveMinimum');
  const max = num('maximum');
  const xmax = num('exclusiveMaximum');
  if (min !== undefined) b.lo = min;
  if (xmin !== undefined && xmin >= b.lo) Object.assign(b, { lo: xmin, loEx: true });
  if (max !== undefined) b.hi = max;
  if (xmax !== undefined && xmax <= b.hi) Object.assign(b, { hi: xmax, hiEx: true });
  return b;
}

/** Integer bounds as inclusive bounds. */
function intBounds(b: Bounds): Bounds {
  const lo = b.lo === -Infinity ? b.lo : b.loEx ? Math.floor(b.lo) + 1 : Math.ceil(b.lo);
  const hi = b.hi === Infinity ? b.hi : b.hiEx ? Math.ceil(b.hi) - 1 : Math.floor(b.hi);
  return { lo, loEx: false, hi, hiEx: false };
}

function numberCandidates(b: Bounds, integer: boolean): number[] {
  const out = new Set<number>();
  const finite = [b.lo, b.hi].filter(Number.isFinite);
  for (const x of [...finite, 0, 1, -1, 0.5, -0.5, 1e9, -1e9]) for (const d of [0, 1, -1, 0.5, -0.5, 1e-3, -1e-3]) out.add(x + d);
  if (finite.length === 2) out.add((b.lo + b.hi) / 2);
  return [...out].filter((x) => Number.isFinite(x) && (!integer || Number.isInteger(x)));
}

function describeBounds(b: Bounds): string {
  const lo = b.lo === -Infinity ? '' : `${b.loEx ? '>' : '≥'} ${b.lo}`;
  const hi = b.hi === Infinity ? '' : `${b.hiEx ? '<' : '≤'} ${b.hi}`;
  return [lo, hi].filter(Boolean).join(' and ') || 'any';
}

function coversLow(inner: Bounds, outer: Bounds): boolean {
  return inner.lo > outer.lo || (inner.lo === outer.lo && (inner.loEx || !outer.loEx));
}
function coversHigh(inner: Bounds, outer: Bounds): boolean {
  return inner.hi < outer.hi || (inner.hi === outer.hi && (inner.hiEx || !outer.hiEx));
}

/** A value of the branch, built from its own keywords (the witness check confirms it). */
function example(b: Branch, path: string): unknown {
  if (b.kind === 'any') return null;
  if (b.kind === 'finite') return b.values.find((v) => validate(b.schema, v, b.ctx) === true);
  return exampleOf(b.type, b.schema, b.ctx, path, 0);
}

function exampleOfSchema(schema: unknown, ctx: Ctx, path: string, depth: number): unknown {
  if (depth > 6) return undefined;
  let bs: Branch[];
  try {
    bs = branches(schema, ctx, path, 'a');
  } catch {
    return undefined;
  }
  for (const b of bs) {
    const v = b.kind === 'type' ? exampleOf(b.type, b.schema, b.ctx, path, depth + 1) : example(b, path);
    if (v !== undefined && validate(schema, v, ctx) === true) return v;
  }
  return undefined;
}

function exampleOf(type: JsonType, s: Obj, ctx: Ctx, path: string, depth: number): unknown {
  switch (type) {
    case 'string':
      return 'a'.repeat(typeof s.minLength === 'number' ? s.minLength : 0);
    case 'number':
    case 'integer': {
      let b: Bounds;
      try {
        b = bounds(s, path);
      } catch {
        return undefined;
      }
      const m = typeof s.multipleOf === 'number' ? s.multipleOf : undefined;
      return numberCandidates(type === 'integer' ? intBounds(b) : b, type === 'integer').find((x) => validate({ ...s, type }, x, ctx) === true && (m === undefined || Number.isInteger(x / m)));
    }
    case 'array': {
      const n = typeof s.minItems === 'number' ? s.minItems : 0;
      const prefix = Array.isArray(s.prefixItems) ? s.prefixItems : [];
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) {
        const v = exampleOfSchema(i < prefix.length ? prefix[i] : (s.items ?? true), ctx, `${path}[${i}]`, depth);
        if (v === undefined) return undefined;
        out.push(v);
      }
      return out;
    }
    case 'object': {
      const out: Obj = {};
      const props = isObj(s.properties) ? s.properties : {};
      for (const r of Array.isArray(s.required) ? s.required : []) {
        if (typeof r !== 'string') return undefined;
        const v = exampleOfSchema(has(props, r) ? props[r] : (s.additionalProperties ?? true), ctx, keyPath(path, r), depth);
        if (v === undefined) return undefined;
        out[r] = v;
      }
      return out;
    }
    default:
      return undefined;
  }
}

/** Put `v` at `key` of every object candidate of the branch (so the witness reaches the path). */
function withKey(base: unknown, key: string, vs: unknown[]): unknown[] {
  return isObj(base) ? vs.map((v) => ({ ...base, [key]: v })) : [];
}

/** a ⊆ b for one branch of a against the whole of b. */
function branchIncluded(a: Branch, b: Side, path: string): Result {
  const bs = branches(b.schema, b.ctx, path, 'b');
  if (a.kind === 'finite') {
    for (const v of a.values) {
      const inA = validate(a.schema, v, a.ctx);
      if (inA === false) continue;
      if (inA === 'unknown') throw new Unknown(path, `cannot tell whether ${JSON.stringify(v)} is valid under the pinned schema`);
      const inB = validate(b.schema, v, b.ctx);
      if (inB === 'unknown') throw new Unknown(path, `cannot tell whether ${JSON.stringify(v)} is valid under the new schema`);
      if (!inB) return new Miss(path, `${JSON.stringify(v)} is accepted by the pinned schema, not by the new one`, [v]);
    }
    return true;
  }
  if (bs.some((x) => x.kind === 'any' && Object.keys(x.schema).every((k) => ANNOTATIONS.has(k)))) return true;
  const aTypes = branchTypes(a);
  const overlapping = bs.filter((x) => {
    const t = branchTypes(x);
    return t === 'all' || aTypes === 'all' || [...aTypes].some((y) => t.has(y));
  });
  if (a.kind === 'any') {
    const probes = [null, 0, 0.5, '', true, [], {}];
    return new Miss(path, 'the pinned schema accepts any value, the new one does not', probes);
  }
  const base = example(a, path);
  // Alternatives of the new schema that a discriminator property rules out (a discriminated union).
  const keys = overlapping.map((x) => disjoint(a, x));
  const candidates = overlapping.filter((_, i) => keys[i] === false);
  if (overlapping.length > 0 && candidates.length === 0 && typeof keys[0] === 'string' && keys.every((k) => k === keys[0])) {
    const key = keys[0];
    const value = isObj(base) ? JSON.stringify(base[key]) : 'its value';
    return new Miss(keyPath(path, key), `${value} is accepted by the pinned schema, by no alternative of the new one`, [base]);
  }
  if (overlapping.length === 0) {
    const all = new Set(bs.flatMap((x) => { const t = branchTypes(x); return t === 'all' ? [] : [...t]; }));
    const names = [...all].filter((t) => !(t === 'integer' && all.has('number')));
    return new Miss(path, `the pinned schema accepts ${a.type === 'number' ? 'numbers' : `${a.type}s`}, the new one ${names.length ? `only ${names.join(', ')}` : 'nothing'}`, [base]);
  }
  const misses: Miss[] = [];
  const unknowns: Unknown[] = [];
  for (const x of candidates) {
    try {
      const r = typeIncluded(a, x, path);
      if (r === true) return true;
      misses.push(r);
    } catch (e) {
      if (!(e instanceof Unknown)) throw e;
      unknowns.push(e);
    }
  }
  if (unknowns.length > 0 && misses.length === 0) throw unknowns[0]!;
  const first = misses[0]!;
  if (candidates.length === 0) return new Miss(path, 'no alternative of the new schema accepts values of the pinned one', [base]);
  if (candidates.length > 1) {
    return new Miss(first.path, `${first.reason} (and no other alternative of the new schema covers it)`, misses.flatMap((m) => m.candidates));
  }
  return first;
}

/** A branch of one type against one branch of b whose type overlaps it. */
function typeIncluded(a: Branch & { kind: 'type' }, bb: Branch, path: string): Result {
  if (bb.kind === 'finite') {
    return new Miss(path, `the new schema accepts only ${bb.values.map((v) => JSON.stringify(v)).join(', ')}`, samples(a, path));
  }
  const s = a.schema;
  const t = bb.schema;
  if (bb.kind === 'any') {
    // An untyped new schema with type keywords: check a against it as a branch of a's own type.
    return typeIncluded(a, { kind: 'type', type: a.type, schema: t, ctx: bb.ctx }, path);
  }
  switch (a.type) {
    case 'string': {
      const la = { lo: num(s.minLength, 0), hi: num(s.maxLength, Infinity) };
      const lb = { lo: num(t.minLength, 0), hi: num(t.maxLength, Infinity) };
      if (la.lo < lb.lo || la.hi > lb.hi) {
        const lengths = [la.lo, Math.min(la.hi, lb.lo - 1), Math.max(la.lo, lb.hi + 1)].filter((n) => n >= la.lo && n <= la.hi && (n < lb.lo || n > lb.hi) && n <= 10_000);
        return new Miss(path, `the pinned schema accepts strings of length ${la.lo}..${la.hi}, the new one ${lb.lo}..${lb.hi}`, lengths.map((n) => 'a'.repeat(n)));
      }
      if (has(t, 'pattern') && t.pattern !== s.pattern) throw new Unknown(path, `the new schema has pattern ${JSON.stringify(t.pattern)}${has(s, 'pattern') ? `, the pinned one ${JSON.stringify(s.pattern)}` : ', the pinned one none'}`);
      if (has(t, 'format') && t.format !== s.format) throw new Unknown(path, `the new schema has format ${JSON.stringify(t.format)}${has(s, 'format') ? `, the pinned one ${JSON.stringify(s.format)}` : ', the pinned one none'}`);
      return true;
    }
    case 'number':
    case 'integer': {
      if (a.type === 'number' && bb.type === 'integer') {
        const ba = bounds(s, path);
        return new Miss(path, 'the pinned schema accepts non-integer numbers, the new one only integers', numberCandidates(ba, false).filter((x) => !Number.isInteger(x)));
      }
      let ba = bounds(s, path);
      let bt = bounds(t, path);
      if (a.type === 'integer') {
        ba = intBounds(ba);
        bt = intBounds(bt);
      }
      if (!coversLow(ba, bt) || !coversHigh(ba, bt)) {
        return new Miss(path, `the pinned schema accepts numbers ${describeBounds(ba)}, the new one ${describeBounds(bt)}`, numberCandidates(ba, a.type === 'integer'));
      }
      if (has(t, 'multipleOf')) {
        const mb = t.multipleOf;
        const ma = s.multipleOf;
        if (!(typeof ma === 'number' && typeof mb === 'number' && mb > 0 && Number.isInteger(ma / mb))) {
          return new Miss(path, `the new schema requires a multiple of ${JSON.stringify(mb)}`, numberCandidates(ba, a.type === 'integer'));
        }
      }
      return true;
    }
    case 'array':
      return arrayIncluded(a, bb as Branch & { kind: 'type' }, path);
    case 'object':
      return objectIncluded(a, bb as Branch & { kind: 'type' }, path);
    default:
      throw new Unknown(path, `type ${a.type} is not understood`);
  }
}

function num(v: unknown, fallback: number): number {
  return typeof v === 'number' ? v : fallback;
}

/** A few distinct values of a branch (for a finite new schema). */
function samples(a: Branch & { kind: 'type' }, path: string): unknown[] {
  const s = a.schema;
  switch (a.type) {
    case 'string': {
      const n = num(s.minLength, 0);
      return n > 10_000 ? [] : ['a', 'b', 'z', '0', '_'].map((c) => c.repeat(Math.max(n, 1))).concat(n === 0 ? [''] : []);
    }
    case 'number':
    case 'integer':
      try {
        return numberCandidates(a.type === 'integer' ? intBounds(bounds(s, path)) : bounds(s, path), a.type === 'integer');
      } catch {
        return [];
      }
    default: {
      const v = example(a, path);
      return v === undefined ? [] : [v];
    }
  }
}

function arrayIncluded(a: Branch & { kind: 'type' }, b: Branch & { kind: 'type' }, path: string): Result {
  const s = a.schema;
  const t = b.schema;
  const pa = Array.isArray(s.prefixItems) ? s.prefixItems : [];
  const pb = Array.isArray(t.prefixItems) ? t.prefixItems : [];
  const ia = has(s, 'items') ? s.items : true;
  const ib = has(t, 'items') ? t.items : true;
  const aNoTail = branches(ia, a.ctx, `${path}[*]`, 'a').length === 0;
  const minA = num(s.minItems, 0);
  const maxA = Math.min(num(s.maxItems, Infinity), aNoTail ? pa.length : Infinity);
  const minB = num(t.minItems, 0);
  const maxB = num(t.maxItems, Infinity);
  const fill = (n: number): unknown[][] => {
    const out: unknown[] = [];
    for (let i = 0; i < n && i < 1000; i++) {
      const v = exampleOfSchema(i < pa.length ? pa[i] : ia, a.ctx, `${path}[${i}]`, 0);
      if (v === undefined) return [];
      out.push(v);
    }
    return out.length === n ? [out] : [];
  };
  if (minA > maxA) return true; // the pinned schema accepts no array
  if (minA < minB) return new Miss(path, `the pinned schema accepts ${minA} items, the new one requires at least ${minB}`, fill(minA));
  if (maxA > maxB) return new Miss(path, `the pinned schema accepts ${maxA === Infinity ? 'any number of' : maxA} items, the new one at most ${maxB}`, fill(Math.min(maxB + 1, 1000)));
  const positions = Math.max(pa.length, pb.length);
  for (let i = 0; i < positions && i < maxA; i++) {
    const sa = i < pa.length ? pa[i] : ia;
    const sb = i < pb.length ? pb[i] : ib;
    const r = included({ schema: sa, ctx: a.ctx }, { schema: sb, ctx: b.ctx }, `${path}[${i}]`);
    if (r !== true) {
      const len = Math.max(i + 1, minA);
      const filled = fill(len);
      return new Miss(r.path, r.reason, filled.flatMap((arr) => r.candidates.map((c) => arr.map((v, j) => (j === i ? c : v)))));
    }
  }
  if (maxA > positions) {
    const r = included({ schema: ia, ctx: a.ctx }, { schema: ib, ctx: b.ctx }, `${path}[*]`);
    if (r !== true) {
      const filled = fill(Math.max(positions + 1, minA));
      return new Miss(r.path, r.reason, filled.flatMap((arr) => r.candidates.map((c) => arr.map((v, j) => (j === positions ? c : v)))));
    }
  }
  return true;
}

function objectIncluded(a: Branch & { kind: 'type' }, b: Branch & { kind: 'type' }, path: string): Result {
  const s = a.schema;
  const t = b.schema;
  const strList = (v: unknown, k: string): string[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Unknown(path, `${k} is not a list of names`);
    return v;
  };
  const ra = new Set(strList(s.required, 'required'));
  const rb = strList(t.required, 'required');
  const pa = isObj(s.properties) ? s.properties : {};
  const pb = isObj(t.properties) ? t.properties : {};
  const aa = has(s, 'additionalProperties') ? s.additionalProperties : true;
  const ab = has(t, 'additionalProperties') ? t.additionalProperties : true;
  if (has(t, 'propertyNames')) {
    const names = branches(t.propertyNames, b.ctx, path, 'b');
    const plain = names.length > 0 && names.every((n) => n.kind === 'any' || (n.kind === 'type' && n.type === 'string' && Object.keys(n.schema).every((k) => k === 'type' || ANNOTATIONS.has(k))));
    if (!plain) throw new Unknown(path, 'propertyNames in the new schema restricts the keys (only a plain string is supported)');
  }
  const base = example(a, path);
  const aNoMore = branches(aa, a.ctx, `${path}.*`, 'a').length === 0;
  for (const k of rb) {
    if (ra.has(k)) continue;
    if (!has(pa, k) && aNoMore) {
      return new Miss(keyPath(path, k), 'required by the new schema, not accepted by the pinned one', isObj(base) ? [base] : []);
    }
    if (has(pa, k) && branches(pa[k], a.ctx, keyPath(path, k), 'a').length === 0) {
      return new Miss(keyPath(path, k), 'required by the new schema, never present under the pinned one', isObj(base) ? [base] : []);
    }
    const without = isObj(base) ? Object.fromEntries(Object.entries(base).filter(([key]) => key !== k)) : undefined;
    return new Miss(keyPath(path, k), 'required by the new schema, not required by the pinned one', without ? [without] : []);
  }
  const keys = new Set([...Object.keys(pa), ...Object.keys(pb)]);
  for (const k of keys) {
    const sa = has(pa, k) ? pa[k] : aa;
    const sb = has(pb, k) ? pb[k] : ab;
    const p = keyPath(path, k);
    const r = included({ schema: sa, ctx: a.ctx }, { schema: sb, ctx: b.ctx }, p);
    if (r !== true) {
      const reason =
        !has(pb, k) && ab === false
          ? 'accepted by the pinned schema, not by the new one (no additional properties)'
          : !has(pa, k)
            ? `not declared by the pinned schema, which accepts other properties; the new one declares it: ${r.reason}`
            : r.reason;
      return new Miss(r.path, reason, withKey(base, k, r.candidates));
    }
  }
  if (!aNoMore) {
    const r = included({ schema: aa, ctx: a.ctx }, { schema: ab, ctx: b.ctx }, `${path}.*`);
    if (r !== true) {
      let extra = 'extra';
      while (keys.has(extra)) extra += '_';
      const reason = ab === false ? 'the pinned schema accepts other properties, the new one none' : `other properties: ${r.reason}`;
      return new Miss(r.path, reason, withKey(base, extra, r.candidates));
    }
  }
  return true;
}

/** a ⊆ b, or a Miss to confirm. Throws Unknown. */
function included(a: Side, b: Side, path: string): Result {
  if (++steps > STEP_BUDGET) throw new Unknown(path, `the schemas are too large to compare (more than ${STEP_BUDGET} comparisons)`);
  // Recursive schemas: a pair of schemas met again at a deeper path is
  // assumed included (the values there are strictly smaller, so the
  // assumption is an induction on the value's depth). Same path: no progress.
  const da = deref(a.schema, a.ctx, path);
  const db = deref(b.schema, b.ctx, path);
  if (isObj(da.schema) && isObj(db.schema)) {
    const seen = visiting.get(da.schema)?.get(db.schema);
    if (seen !== undefined && seen !== path) return true;
    if (seen === undefined) {
      const inner = visiting.get(da.schema) ?? new Map<object, string>();
      visiting.set(da.schema, inner);
      inner.set(db.schema, path);
      try {
        return includedBranches(da, db, path);
      } finally {
        inner.delete(db.schema);
      }
    }
  }
  return includedBranches(da, db, path);
}

function includedBranches(a: Side, b: Side, path: string): Result {
  for (const br of branches(a.schema, a.ctx, path, 'a')) {
    const r = branchIncluded(br, b, path);
    if (r !== true) return r;
  }
  return true;
}

/** The pairs (pinned, new) being compared on the current path, with the path they were entered at. One call at a time (synchronous). */
let visiting = new Map<object, Map<object, string>>();
/** Comparisons made by the current call, against STEP_BUDGET. */
let steps = 0;

/**
 * Is every value valid under `a` (the pinned schema) also valid under `b`
 * (the new one)? See the module comment for the three answers.
 *
 * @example
 * schemaIncludes(z.toJSONSchema(z.object({ n: z.number() })), z.toJSONSchema(z.object({ n: z.number(), note: z.string().optional() })))
 * // { verdict: 'yes' }
 */
export function schemaIncludes(pinned: unknown, next: unknown): InclusionVerdict {
  let a: unknown;
  let b: unknown;
  try {
    // As stored: plain JSON (a key set to undefined is no key).
    a = JSON.parse(JSON.stringify(pinned ?? null));
    b = JSON.parse(JSON.stringify(next ?? null));
  } catch (e) {
    return { verdict: 'unknown', path: '$', reason: `a schema is not JSON (${(e as Error).message})` };
  }
  if (jsonEqual(a, b)) return { verdict: 'yes' };
  const ca: Ctx = { root: a, refs: 0 };
  const cb: Ctx = { root: b, refs: 0 };
  let r: Result;
  visiting = new Map();
  steps = 0;
  try {
    r = included({ schema: a, ctx: ca }, { schema: b, ctx: cb }, '$');
  } catch (e) {
    if (e instanceof Unknown) return { verdict: 'unknown', path: e.path, reason: e.reason };
    if (e instanceof RangeError) return { verdict: 'unknown', path: '$', reason: 'the schema is too deep to compare' };
    throw e;
  }
  if (r === true) return { verdict: 'yes' };
  for (const w of r.candidates) {
    if (w === undefined) continue;
    if (validate(a, w, ca) === true && validate(b, w, cb) === false) return { verdict: 'no', path: r.path, reason: r.reason, witness: w };
  }
  return { verdict: 'unknown', path: r.path, reason: `${r.reason}; no value was found to confirm it` };
}

/**
 * The top-level required keys of an object schema that are not in
 * `suppliedKeys` (the keys a pinned input mapping always supplies), sorted.
 * `'unknown'` (the mapping's keys cannot be listed, e.g. one expression
 * builds the whole input) gives none: nothing is certain then. A schema that
 * is not an object schema with `required` gives none.
 */
export function requiredFieldsMissing(schema: unknown, suppliedKeys: string[] | 'unknown'): string[] {
  if (suppliedKeys === 'unknown' || !isObj(schema) || !Array.isArray(schema.required)) return [];
  const supplied = new Set(suppliedKeys);
  return [...new Set(schema.required.filter((k): k is string => typeof k === 'string' && !supplied.has(k)))].sort();
}
