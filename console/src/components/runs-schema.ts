/**
 * A small JSON Schema check for the console's skip form: the subset pinned
 * contracts use (zod's JSON Schema output): type (one or a list), required,
 * properties, additionalProperties, items, enum, const, anyOf/oneOf, and
 * string/number bounds. It runs before anything is sent, so an operator sees
 * every violation with its path; the server checks the output again.
 */

export interface Violation {
  /** Dotted path from the output: `sum`, `customer.email`, `lines[2].qty`; `` for the output itself. */
  path: string;
  message: string;
}

type Schema = Record<string, unknown>;
const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function fits(type: string, v: unknown): boolean {
  const t = typeOf(v);
  if (type === 'number') return t === 'number' || t === 'integer';
  return t === type;
}

const join = (path: string, key: string | number) => (typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key);
const show = (v: unknown) => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/** Every violation of `value` against `schema` (empty: it fits). */
export function validateJson(schema: unknown, value: unknown, path = ''): Violation[] {
  if (schema === true || schema === undefined || schema === null) return [];
  if (schema === false) return [{ path, message: 'is not allowed here' }];
  if (!isObj(schema)) return [];
  const s: Schema = schema;
  const out: Violation[] = [];
  const at = (message: string) => out.push({ path, message });

  const alternatives = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
  if (Array.isArray(alternatives)) {
    const results = alternatives.map((alt) => validateJson(alt, value, path));
    if (!results.some((r) => r.length === 0)) {
      // The closest alternative tells the most.
      const best = results.reduce((a, b) => (b.length < a.length ? b : a), results[0] ?? []);
      out.push(...(best.length ? best : [{ path, message: 'fits none of the allowed shapes' }]));
    }
  }
  if (Array.isArray(s.allOf)) for (const sub of s.allOf) out.push(...validateJson(sub, value, path));

  if (s.type !== undefined) {
    const types = (Array.isArray(s.type) ? (s.type as unknown[]) : [s.type]).map((t) => (typeof t === 'string' ? t : JSON.stringify(t)));
    if (!types.some((t) => fits(t, value))) {
      at(`expected ${types.join(' or ')}, received ${typeOf(value) === 'integer' ? 'number' : typeOf(value)} ${show(value)}`);
      return out;
    }
  }
  if (Array.isArray(s.enum) && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    at(`must be one of ${s.enum.map(show).join(', ')}, received ${show(value)}`);
  }
  if ('const' in s && JSON.stringify(s.const) !== JSON.stringify(value)) at(`must be ${show(s.const)}, received ${show(value)}`);

  if (typeof value === 'string') {
    if (typeof s.minLength === 'number' && value.length < s.minLength) at(`must have at least ${s.minLength} characters, received ${value.length}`);
    if (typeof s.maxLength === 'number' && value.length > s.maxLength) at(`must have at most ${s.maxLength} characters, received ${value.length}`);
  }
  if (typeof value === 'number') {
    if (typeof s.minimum === 'number' && value < s.minimum) at(`must be >= ${s.minimum}, received ${value}`);
    if (typeof s.maximum === 'number' && value > s.maximum) at(`must be <= ${s.maximum}, received ${value}`);
    if (typeof s.exclusiveMinimum === 'number' && value <= s.exclusiveMinimum) at(`must be > ${s.exclusiveMinimum}, received ${value}`);
    if (typeof s.exclusiveMaximum === 'number' && value >= s.exclusiveMaximum) at(`must be < ${s.exclusiveMaximum}, received ${value}`);
  }
  if (isObj(value)) {
    const props = isObj(s.properties) ? s.properties : {};
    for (const key of Array.isArray(s.required) ? (s.required as string[]) : []) {
      if (!(key in value)) out.push({ path: join(path, key), message: `is required${isObj(props[key]) && typeof props[key].type === 'string' ? ` (${props[key].type})` : ''}, missing` });
    }
    for (const [key, v] of Object.entries(value)) {
      if (key in props) out.push(...validateJson(props[key], v, join(path, key)));
      else if (s.additionalProperties === false) out.push({ path: join(path, key), message: `is not allowed (allowed: ${Object.keys(props).join(', ') || 'none'})` });
      else if (isObj(s.additionalProperties)) out.push(...validateJson(s.additionalProperties, v, join(path, key)));
    }
  }
  if (Array.isArray(value)) {
    if (typeof s.minItems === 'number' && value.length < s.minItems) at(`must have at least ${s.minItems} items, received ${value.length}`);
    if (typeof s.maxItems === 'number' && value.length > s.maxItems) at(`must have at most ${s.maxItems} items, received ${value.length}`);
    if (s.items !== undefined && !Array.isArray(s.items)) value.forEach((v, i) => out.push(...validateJson(s.items, v, join(path, i))));
  }
  return out;
}

/** Parse `text` as JSON and check it: a parse error is one violation at the root. */
export function checkJsonText(schema: unknown, text: string): { value?: unknown; violations: Violation[] } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { violations: [{ path: '', message: `is not JSON: ${err instanceof Error ? err.message : String(err)}` }] };
  }
  return { value, violations: validateJson(schema, value) };
}
