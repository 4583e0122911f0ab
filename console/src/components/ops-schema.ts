/**
 * A skip output checked in the browser against the RPC's pinned output
 * contract (a JSON Schema, as GET /versions/:hash gives it) before it is sent.
 * The console's page forbids eval (strict CSP), so no schema compiler: this
 * walks the keywords contracts use (type, properties, required,
 * additionalProperties, items, enum, const, anyOf/oneOf/allOf, local $ref,
 * string and number bounds, pattern). The API checks it again, completely.
 */

type Schema = Record<string, unknown> | boolean;

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(want: string, got: string): boolean {
  return want === got || (want === 'number' && got === 'integer');
}

function resolveRef(root: Schema, ref: string): Schema | undefined {
  if (!ref.startsWith('#')) return undefined;
  let node: unknown = root;
  for (const part of ref.slice(1).split('/').filter(Boolean)) {
    const key = decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~');
    node = node && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined;
  }
  return node === undefined ? undefined : (node as Schema);
}

function check(root: Schema, schema: Schema, value: unknown, path: string, out: string[], depth: number): void {
  if (out.length >= 20 || depth > 64) return;
  if (schema === true) return;
  if (schema === false) {
    out.push(`${path}: no value is allowed here`);
    return;
  }
  const where = path || '(the output)';
  if (typeof schema.$ref === 'string') {
    const target = resolveRef(root, schema.$ref);
    if (target !== undefined) check(root, target, value, path, out, depth + 1);
  }
  const got = typeOf(value);
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((t) => typeMatches(t, got))) {
      out.push(`${where}: is ${got}, must be ${types.join(' or ')}`);
      return;
    }
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    out.push(`${where}: is ${JSON.stringify(value)}, must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`);
  }
  if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(value)) out.push(`${where}: must be ${JSON.stringify(schema.const)}`);
  for (const kw of ['anyOf', 'oneOf'] as const) {
    const alts = schema[kw];
    if (Array.isArray(alts)) {
      const fits = alts.filter((alt) => {
        const sub: string[] = [];
        check(root, alt as Schema, value, path, sub, depth + 1);
        return sub.length === 0;
      }).length;
      if (kw === 'anyOf' ? fits === 0 : fits !== 1) out.push(`${where}: fits ${fits} of the ${alts.length} allowed shapes (${kw})`);
    }
  }
  if (Array.isArray(schema.allOf)) for (const s of schema.allOf) check(root, s as Schema, value, path, out, depth + 1);
  if (got === 'string') {
    const s = value as string;
    if (typeof schema.minLength === 'number' && s.length < schema.minLength) out.push(`${where}: is ${s.length} characters, at least ${schema.minLength}`);
    if (typeof schema.maxLength === 'number' && s.length > schema.maxLength) out.push(`${where}: is ${s.length} characters, at most ${schema.maxLength}`);
    if (typeof schema.pattern === 'string') {
      try {
        if (!new RegExp(schema.pattern, 'u').test(s)) out.push(`${where}: does not match ${schema.pattern}`);
      } catch {
        // A pattern the browser cannot read: the API checks it.
      }
    }
  }
  if (got === 'number' || got === 'integer') {
    const n = value as number;
    if (typeof schema.minimum === 'number' && n < schema.minimum) out.push(`${where}: is ${n}, at least ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && n > schema.maximum) out.push(`${where}: is ${n}, at most ${schema.maximum}`);
    if (typeof schema.exclusiveMinimum === 'number' && n <= schema.exclusiveMinimum) out.push(`${where}: is ${n}, more than ${schema.exclusiveMinimum}`);
    if (typeof schema.exclusiveMaximum === 'number' && n >= schema.exclusiveMaximum) out.push(`${where}: is ${n}, less than ${schema.exclusiveMaximum}`);
  }
  if (got === 'object') {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const req of Array.isArray(schema.required) ? (schema.required as string[]) : []) {
      if (!(req in obj)) out.push(`${path ? `${path}.` : ''}${req}: is missing (required)`);
    }
    for (const [k, v] of Object.entries(obj)) {
      const sub = path ? `${path}.${k}` : k;
      if (k in props) check(root, props[k] as Schema, v, sub, out, depth + 1);
      else if (schema.additionalProperties === false) out.push(`${sub}: is not allowed (allowed: ${Object.keys(props).join(', ') || 'none'})`);
      else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') check(root, schema.additionalProperties as Schema, v, sub, out, depth + 1);
    }
  }
  if (got === 'array' && schema.items !== undefined && !Array.isArray(schema.items)) {
    (value as unknown[]).forEach((item, i) => check(root, schema.items as Schema, item, `${path}[${i}]`, out, depth + 1));
  }
}

/** What is wrong with `value` for `schema` (empty: it fits, as far as the browser can tell). */
export function schemaProblems(schema: unknown, value: unknown): string[] {
  if (schema === undefined || schema === null) return [];
  if (typeof schema !== 'boolean' && typeof schema !== 'object') return [];
  const out: string[] = [];
  check(schema as Schema, schema as Schema, value, '', out, 0);
  return out;
}
