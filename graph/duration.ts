/**
 * Durations in graphs (`'30s'`, `'2h'`, or milliseconds). Pure and free of
 * zod: the interpreter imports it, and anything it imports is evaluated by
 * the Temporal SDK for every workflow it creates (a query on a run that is
 * not cached, a replay). Importing it through graph/schema.ts once pulled
 * zod (about 5 MB, 100 modules) into the workflow bundle.
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration: a number is milliseconds; a string is a number and a unit (ms, s, m, h, d). */
export function durationMs(d: number | string): number {
  if (typeof d === 'number') return d;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(d);
  if (!m) throw new Error(`invalid duration ${JSON.stringify(d)}`);
  return Math.round(Number(m[1]) * UNIT_MS[m[2]!]!);
}
