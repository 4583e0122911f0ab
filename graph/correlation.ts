/**
 * The one correlation-key rule, shared by the wait step (the key it waits on)
 * and event ingress (the key an event carries). A key that one side accepts
 * and the other refuses could never match, so both call this function.
 *
 * Pure and sandbox-safe: the interpreter imports it.
 */

/** Longest correlation key, in characters. Also keeps the `run_waits` btree index row small. */
export const CORRELATION_KEY_MAX = 512;

/** What a correlation key may be, for error messages. */
export const CORRELATION_KEY_RULE = `a non-empty string of at most ${CORRELATION_KEY_MAX} characters, or a finite number`;

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
  if (key.includes('\u0000')) return { ok: false, problem: 'the key contains a NUL character' };
  if (!isWellFormed(key)) return { ok: false, problem: 'the key contains a lone UTF-16 surrogate' };
  return { ok: true, key };
}

/** Normalise a key, or undefined when it breaks the rule. */
export function normaliseCorrelationKey(key: unknown): string | undefined {
  const c = checkCorrelationKey(key);
  return c.ok ? c.key : undefined;
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
