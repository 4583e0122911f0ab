/**
 * The one correlation-key rule, shared by the wait step (the key it waits on)
 * and event ingress (the key an event carries). A key that one side accepts
 * and the other refuses could never match, so both call this function.
 *
 * Pure and sandbox-safe: the interpreter imports it.
 */
import { stringProblem } from './json-guard';

/** Longest correlation key, in characters. Also keeps the `run_waits` btree index row small. */
export const CORRELATION_KEY_MAX = 512;

export type CorrelationKeyCheck = { ok: true; key: string } | { ok: false; problem: string };

/**
 * Check and normalise a key: a non-empty string (at most
 * {@link CORRELATION_KEY_MAX} characters, no NUL and no lone surrogate) or a
 * finite number, as its string form.
 */
export function checkCorrelationKey(key: unknown): CorrelationKeyCheck {
  if (typeof key === 'number') return Number.isFinite(key) ? { ok: true, key: String(key) } : { ok: false, problem: `${key} is not a finite number` };
  if (typeof key !== 'string') return { ok: false, problem: `a ${key === null ? 'null' : Array.isArray(key) ? 'array' : typeof key} is not a key` };
  if (key.length === 0) return { ok: false, problem: 'the key is empty' };
  if (key.length > CORRELATION_KEY_MAX) return { ok: false, problem: `the key is ${key.length} characters long, over the limit of ${CORRELATION_KEY_MAX}` };
  const unstorable = stringProblem(key);
  if (unstorable) return { ok: false, problem: `the key ${unstorable}` };
  return { ok: true, key };
}

/** Normalise a key, or undefined when it breaks the rule. */
export function normaliseCorrelationKey(key: unknown): string | undefined {
  const c = checkCorrelationKey(key);
  return c.ok ? c.key : undefined;
}
