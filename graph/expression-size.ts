/**
 * The JSON byte size of an expression scope, for the INPUT_TOO_LARGE guard,
 * in O(what changed) serialisation instead of the whole scope every step.
 *
 * The interpreter builds a new scope object per step, but its parts live on:
 * `input` and `run` are the same objects all run long, `steps` and `vars` are
 * the frame's own records, which gain or replace one entry per step, and each
 * entry's value (a step output, a var) is stored once and never changed in
 * place (the interpreter stores fresh JSON: expression results are parsed
 * copies, activity results are decoded payloads). So the size is summed from
 * parts: the scope and its `steps` and `vars` records are walked key by key
 * (a reference comparison per key), and every value is serialised once, the
 * first time it is seen, its size kept by object identity (or, for a
 * primitive, by the record's key while it holds the same value).
 *
 * The sum is exactly what `JSON.stringify(scope)` measures in UTF-8 bytes:
 * `{`, `}`, `"key":` per member, commas between members, members whose value
 * serialises to nothing (undefined, functions) left out. Failures are
 * JSON.stringify's own, met in the same order (keys in the same order): a
 * value that is not JSON (a cycle, a BigInt) makes the size unknown
 * (undefined: not a size question), a value too long to serialise makes it
 * infinite. (One difference: a scope whose parts each serialise but whose
 * whole text would pass V8's string limit, about 512 MiB, is measured instead
 * of reported as too large to serialise; the verdict is the same.)
 *
 * Pure: no Node builtins; importable by the workflow bundle.
 */

/** UTF-8 length of a string without encoding it (lone surrogates count as U+FFFD). */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

let serialisedUnits = 0;
/**
 * What the guard has serialised in this process (UTF-16 units of JSON text): for tests of its cost.
 * A getter over module state: the workflow bundle preloads this module (worker/bundle.ts) and the
 * SDK freezes what a preloaded module exports.
 */
export const scopeSizeCounters: { readonly serialisedUnits: number } = {
  get serialisedUnits(): number {
    return serialisedUnits;
  },
};

/** Serialised size (bytes) of values by identity: a value in the scope is never changed in place. */
const valueBytes = new WeakMap<object, number>();
/** Per record (the scope, its steps, its vars): the size of each member as last measured, with the value it had. */
const memberBytes = new WeakMap<object, Map<string, { value: unknown; bytes: number }>>();

/** Not JSON at all: the whole scope has no size. */
class NotJson extends Error {}

/** A record walked member by member: a plain object without toJSON. */
function isRecord(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return (proto === Object.prototype || proto === null) && typeof (v as { toJSON?: unknown }).toJSON !== 'function';
}

/** Bytes of one value as JSON, or undefined when it serialises to nothing (a member left out). */
function valueSize(value: unknown): number | undefined {
  const isObject = value !== null && typeof value === 'object';
  if (isObject) {
    const hit = valueBytes.get(value);
    if (hit !== undefined) return hit;
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(value) as string | undefined;
  } catch (err) {
    if (err instanceof RangeError) return Number.POSITIVE_INFINITY;
    throw new NotJson();
  }
  if (text === undefined) return undefined;
  serialisedUnits += text.length;
  const bytes = utf8ByteLength(text);
  if (isObject) valueBytes.set(value, bytes);
  return bytes;
}

/** Bytes of a record as JSON; `nested` names the members that are records walked the same way. */
function recordSize(record: Record<string, unknown>, nested: ReadonlySet<string> | undefined): number {
  let memo = memberBytes.get(record);
  if (!memo) {
    memo = new Map();
    memberBytes.set(record, memo);
  }
  let bytes = 2; // {}
  let members = 0;
  for (const key of Object.keys(record)) {
    const value = record[key];
    let size: number | undefined;
    if (nested?.has(key) && isRecord(value)) {
      size = recordSize(value, undefined);
      size += keySize(key);
    } else {
      const seen = memo.get(key);
      if (seen && Object.is(seen.value, value) && (value === null || typeof value !== 'object')) size = seen.bytes;
      else {
        const v = valueSize(value);
        if (v === undefined) {
          memo.delete(key);
          continue;
        }
        size = v + keySize(key);
        if (value === null || typeof value !== 'object') memo.set(key, { value, bytes: size });
      }
    }
    bytes += size;
    members++;
  }
  return bytes + Math.max(0, members - 1);
}

const keyBytes = new Map<string, number>();

/** `"key":` in bytes (cached: keys are step ids and var names, few and reused). */
function keySize(key: string): number {
  let hit = keyBytes.get(key);
  if (hit === undefined) {
    hit = utf8ByteLength(JSON.stringify(key)) + 1;
    if (keyBytes.size < 100_000) keyBytes.set(key, hit);
  }
  return hit;
}

/** Members of a scope that are records walked member by member. */
const SCOPE_RECORDS: ReadonlySet<string> = new Set(['steps', 'vars']);

/**
 * The scope's size in UTF-8 bytes of JSON (infinite when too long to
 * serialise), or undefined when it is not JSON.
 */
export function scopeJsonBytes(scope: unknown): number | undefined {
  try {
    if (isRecord(scope)) return recordSize(scope, SCOPE_RECORDS);
    return valueSize(scope) ?? 0;
  } catch (err) {
    if (err instanceof NotJson) return undefined;
    throw err;
  }
}
