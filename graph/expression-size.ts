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
 * parts: the scope's few members are walked, every value is serialised once,
 * the first time it is seen (its size kept by object identity), and the
 * `steps` and `vars` records are tracked: measured by one walk the first time,
 * then kept current by {@link setMember}, through which the interpreter makes
 * every write to them. A step costs what it adds, not the length of the run.
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
let walkedMembers = 0;
/**
 * What the guard has serialised in this process (UTF-16 units of JSON text): for tests of its cost.
 * A getter over module state: the workflow bundle preloads this module (worker/bundle.ts) and the
 * SDK freezes what a preloaded module exports.
 */
export const scopeSizeCounters: { readonly serialisedUnits: number; readonly walkedMembers: number } = {
  get serialisedUnits(): number {
    return serialisedUnits;
  },
  /** Record members visited by walks (the scope's own members, and each record's once until it is tracked). */
  get walkedMembers(): number {
    return walkedMembers;
  },
};

/** Serialised size (bytes) of values by identity: a value in the scope is never changed in place. */
const valueBytes = new WeakMap<object, number>();

/**
 * A record the guard measures (a frame's `steps` or `vars`), kept current as the interpreter writes it
 * through {@link setMember}: the sum of its members' sizes (each `"key":value`), their number, and each
 * member's size (undefined: a member JSON leaves out). Built by one walk, the first time the record is
 * measured; a write that the sum cannot follow exactly (a value that is not JSON or too long to
 * serialise, a key that is no own member) drops it, and the next measure walks the record again.
 */
interface Tracked {
  bytes: number;
  members: number;
  sizes: Map<string, number | undefined>;
}
const tracked = new WeakMap<object, Tracked>();

/** Not JSON at all: the whole scope has no size. */
class NotJson extends Error {}

/** A record walked member by member: a plain object without toJSON. */
function isRecord(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return (proto === Object.prototype || proto === null) && typeof (v as { toJSON?: unknown }).toJSON !== 'function';
}

/** Bytes of one value as JSON, or undefined when it serialises to nothing (a member left out). */
function valueSize(value: unknown, byIdentity = true): number | undefined {
  const isObject = byIdentity && value !== null && typeof value === 'object';
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

/** `"key":value` in bytes, or undefined when the member is left out; throws NotJson. */
function memberSize(key: string, value: unknown, byIdentity = true): number | undefined {
  const v = valueSize(value, byIdentity);
  return v === undefined ? undefined : v + keySize(key);
}

/** `{…}` in bytes from the sum of its members' sizes and their number. */
function braced(bytes: number, members: number): number {
  return 2 + bytes + Math.max(0, members - 1);
}

/**
 * Bytes of a record as JSON, walking every member; `nested` names the members that are records measured
 * through their trackers. With `track`, a walk that meets only finite JSON leaves the record tracked.
 */
function walkRecord(record: Record<string, unknown>, nested: ReadonlySet<string> | undefined, track: boolean): number {
  const sizes = track ? new Map<string, number | undefined>() : undefined;
  let bytes = 0;
  let members = 0;
  for (const key of Object.keys(record)) {
    walkedMembers++;
    const value = record[key];
    let size: number | undefined;
    if (!nested?.has(key)) size = memberSize(key, value);
    else if (isRecord(value)) size = trackedSize(value) + keySize(key);
    // A frame record that is no plain record (`saveAs: "__proto__"` gave it a prototype) changes in
    // place: measured whole every time, never remembered by identity.
    else size = memberSize(key, value, false);
    sizes?.set(key, size);
    if (size === undefined) continue;
    bytes += size;
    members++;
  }
  if (sizes && Number.isFinite(bytes)) tracked.set(record, { bytes, members, sizes });
  return braced(bytes, members);
}

/** Bytes of a frame record (steps, vars): O(1) once tracked, one walk otherwise. */
function trackedSize(record: Record<string, unknown>): number {
  const t = tracked.get(record);
  if (t) return braced(t.bytes, t.members);
  return walkRecord(record, undefined, true);
}

/**
 * Write one member of a frame record (`steps`, `vars`): the only way the interpreter changes them, so
 * the record's measured size follows in O(the value written) instead of a walk of the whole record at
 * the next step. The value must never be changed in place afterwards (the interpreter stores fresh
 * JSON). Deterministic: the same writes give the same sizes on replay.
 */
export function setMember(record: Record<string, unknown>, key: string, value: unknown): void {
  record[key] = value;
  const t = tracked.get(record);
  if (!t) return;
  let size: number | undefined;
  try {
    size = memberSize(key, value);
  } catch (err) {
    if (!(err instanceof NotJson)) throw err;
    size = Number.POSITIVE_INFINITY; // dropped below: the walk finds it again, in JSON's order
  }
  // `__proto__` and the like are no own member: JSON leaves them out, and so does a walk.
  if (size === Number.POSITIVE_INFINITY || !Object.prototype.hasOwnProperty.call(record, key)) {
    tracked.delete(record);
    return;
  }
  if (t.sizes.has(key)) {
    const old = t.sizes.get(key);
    if (old !== undefined) {
      t.bytes -= old;
      t.members--;
    }
  }
  t.sizes.set(key, size);
  if (size !== undefined) {
    t.bytes += size;
    t.members++;
  }
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
    if (isRecord(scope)) return walkRecord(scope, SCOPE_RECORDS, false);
    return valueSize(scope) ?? 0;
  } catch (err) {
    if (err instanceof NotJson) return undefined;
    throw err;
  }
}
