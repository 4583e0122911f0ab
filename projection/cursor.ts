/**
 * Keyset cursors: `base64url(JSON { <timeKey>: iso, i: id })`, made and read
 * here only. Opaque to callers; decoded strictly, so a value that JavaScript's
 * `Date.parse` accepts and Postgres does not (`"0"`, `"12"`,
 * `"+275760-09-13T…"`) never reaches a query.
 */
import { stringProblem } from '../graph/json-guard';

/** `s`: a run's start time (the run list); `r`: an event's receive time (the event log). */
export type CursorTimeKey = 's' | 'r';

/** Longest cursor accepted, in characters. */
export const CURSOR_MAX_LENGTH = 1024;

const STRICT_ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** A timestamp exactly as `Date.prototype.toISOString` writes it for years 0000–9999 (what Postgres and JS agree on). */
export function isStrictIsoTimestamp(s: unknown): s is string {
  if (typeof s !== 'string' || !STRICT_ISO.test(s)) return false;
  const t = Date.parse(s);
  return !Number.isNaN(t) && new Date(t).toISOString() === s;
}

export function encodeCursor(timeKey: CursorTimeKey, at: string, id: string): string {
  return Buffer.from(JSON.stringify({ [timeKey]: at, i: id })).toString('base64url');
}

/**
 * Decode a cursor strictly: the time must be a canonical ISO timestamp and
 * the id a clean string of at most 200 characters. Undefined when it is not a
 * cursor this module made.
 */
export function decodeCursor(cursor: string, timeKey: CursorTimeKey): { at: string; id: string } | undefined {
  if (cursor.length > CURSOR_MAX_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  if (keys.length !== 2 || keys[0] !== 'i' || keys[1] !== timeKey) return undefined;
  const at = o[timeKey];
  const id = o.i;
  if (!isStrictIsoTimestamp(at) || typeof id !== 'string' || id.length === 0 || id.length > 200 || stringProblem(id)) return undefined;
  return { at, id };
}
