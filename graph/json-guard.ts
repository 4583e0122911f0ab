/**
 * The one recursive check on JSON that comes from outside (request bodies,
 * graphs, metadata, event payloads): no NUL character and no lone UTF-16
 * surrogate in any string or key (Postgres refuses both), bounded nesting
 * (recursive schemas and Temporal's payload codec overflow on deep values),
 * bounded key length. Pure: the HTTP API, the library, publish and ingress
 * all use it.
 */
import { ERROR_CODES, InvalidRequestError } from './errors';

/** Deepest JSON nesting accepted, counted from the root. Temporal refuses payloads nested about 100 deep. */
export const JSON_DEPTH_MAX = 64;
/** Longest object key accepted anywhere in a value, in characters. */
export const JSON_KEY_LENGTH_MAX = 256;

export interface JsonProblem {
  code: typeof ERROR_CODES.STRING_INVALID | typeof ERROR_CODES.REQUEST_TOO_DEEP | typeof ERROR_CODES.REQUEST_INVALID;
  /** Where, e.g. `body.metadata.a[2]`. */
  field: string;
  message: string;
  allowed: string;
}

/** `String.prototype.isWellFormed` without relying on the runtime having it. */
export function isWellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return true;
}

/** Why a string cannot be stored (NUL, lone surrogate), or undefined. */
export function stringProblem(s: string): string | undefined {
  if (s.includes('\u0000')) return 'contains a NUL character';
  if (!isWellFormed(s)) return 'contains a lone UTF-16 surrogate';
  return undefined;
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;
function childPath(path: string, key: string): string {
  return IDENT.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/**
 * The first problem in a value anywhere, at any depth: a string or object
 * key with a NUL character or a lone UTF-16 surrogate (Postgres refuses
 * both), nesting deeper than `maxDepth`, or a key longer than
 * {@link JSON_KEY_LENGTH_MAX}. Iterative, so a value nested 10,000 deep cannot
 * overflow the stack here.
 */
export function findJsonProblem(value: unknown, root: string, maxDepth: number = JSON_DEPTH_MAX): JsonProblem | undefined {
  const stack: Array<[unknown, string, number]> = [[value, root, 0]];
  const allowedString = 'a string without NUL characters and without lone UTF-16 surrogates';
  while (stack.length > 0) {
    const [v, path, depth] = stack.pop()!;
    if (typeof v === 'string') {
      const p = stringProblem(v);
      if (p) return { code: ERROR_CODES.STRING_INVALID, field: path, message: `${path} ${p}`, allowed: allowedString };
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= maxDepth) {
      return { code: ERROR_CODES.REQUEST_TOO_DEEP, field: path, message: `${path} nests deeper than ${maxDepth} levels`, allowed: `at most ${maxDepth} levels of nesting` };
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}[${i}]`, depth + 1]);
      continue;
    }
    const entries = Object.entries(v as Record<string, unknown>);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [k, c] = entries[i]!;
      const p = stringProblem(k);
      if (p) return { code: ERROR_CODES.STRING_INVALID, field: path, message: `${path} has a key that ${p}`, allowed: allowedString };
      if (k.length > JSON_KEY_LENGTH_MAX) {
        return {
          code: ERROR_CODES.REQUEST_INVALID,
          field: path,
          message: `${path} has a key of ${k.length} characters`,
          allowed: `keys of at most ${JSON_KEY_LENGTH_MAX} characters`,
        };
      }
      stack.push([c, childPath(path, k), depth + 1]);
    }
  }
  return undefined;
}

/** The problem as a throwable error in pinflow's shape. */
export function jsonProblemError(p: JsonProblem, received?: unknown): InvalidRequestError {
  return new InvalidRequestError(p.code, `${p.message}; allowed: ${p.allowed}`, { field: p.field, ...(received !== undefined ? { received } : {}), allowed: p.allowed });
}

/** Throw when a value breaks the one recursive check. */
export function assertCleanJson(value: unknown, root: string, maxDepth: number = JSON_DEPTH_MAX): void {
  const p = findJsonProblem(value, root, maxDepth);
  if (p) throw jsonProblemError(p);
}

