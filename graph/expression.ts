/**
 * The one expression module. Publish validation, the interpreter (inside the
 * Temporal workflow sandbox) and the API all compile and evaluate JSONata
 * through these functions; there is no second evaluator. jsonata is pinned to
 * an exact version in package.json because a changed evaluator would change
 * decisions on replay.
 *
 * Pure: no Node builtins, no I/O, no wall clock (jsonata's `$now()` reads
 * `Date`, which the workflow sandbox makes deterministic).
 */
import jsonata from 'jsonata';
import type { Mapping } from './schema';

/** What an expression sees: `input`, `steps.<id>`, `vars.<name>`, `run`. */
export interface ExpressionScope {
  input: unknown;
  steps: Record<string, unknown>;
  vars: Record<string, unknown>;
  run: { runId: string; tenant: string; version: string; definition: string; startedAt: string };
}

/** Where an expression lives, for error reports. */
export interface ExpressionSite {
  stepId?: string;
  /** Field path inside the step, e.g. `input.amount` or `condition`. */
  field: string;
}

/** A compile or evaluation failure, with everything needed to find it. */
export class ExpressionError extends Error {
  constructor(
    message: string,
    readonly site: ExpressionSite,
    readonly expression: string,
    /** jsonata error code, e.g. `S0201`, or a pinflow code such as `NOT_JSON`. */
    readonly jsonataCode: string | undefined,
    readonly position: number | undefined,
  ) {
    super(message);
    this.name = 'ExpressionError';
  }

  toJSON(): Record<string, unknown> {
    return {
      message: this.message,
      stepId: this.site.stepId,
      field: this.site.field,
      expression: this.expression,
      jsonataCode: this.jsonataCode,
      position: this.position,
    };
  }
}

interface JsonataFailure {
  code?: string;
  position?: number;
  token?: string;
  message?: string;
}

const compiled = new Map<string, jsonata.Expression>();

function describe(site: ExpressionSite): string {
  return site.stepId ? `step "${site.stepId}" field "${site.field}"` : `field "${site.field}"`;
}

/** Compile (and cache) an expression; throws {@link ExpressionError}. */
export function compileExpression(source: string, site: ExpressionSite): jsonata.Expression {
  const hit = compiled.get(source);
  if (hit) return hit;
  try {
    const expr = jsonata(source);
    compiled.set(source, expr);
    return expr;
  } catch (err) {
    const e = err as JsonataFailure;
    throw new ExpressionError(
      `${describe(site)}: expression ${JSON.stringify(source)} does not compile` +
        `${e.position !== undefined ? ` at position ${e.position}` : ''}: ${e.message ?? String(err)}` +
        `${e.code ? ` (jsonata ${e.code})` : ''}`,
      site,
      source,
      e.code,
      e.position,
    );
  }
}

/** Turn a jsonata result into plain JSON: undefined → null, sequences → arrays. */
function toJson(value: unknown, site: ExpressionSite, source: string): unknown {
  if (value === undefined) return null;
  if (typeof value === 'function') {
    throw new ExpressionError(`${describe(site)}: expression ${JSON.stringify(source)} produced a function, not JSON`, site, source, 'NOT_JSON', undefined);
  }
  try {
    return JSON.parse(JSON.stringify(value)) as unknown;
  } catch (err) {
    throw new ExpressionError(
      `${describe(site)}: expression ${JSON.stringify(source)} produced a value that is not JSON: ${(err as Error).message}`,
      site,
      source,
      'NOT_JSON',
      undefined,
    );
  }
}

/** Evaluate one expression against a scope; the result is plain JSON. */
export async function evaluateExpression(source: string, scope: ExpressionScope, site: ExpressionSite): Promise<unknown> {
  const expr = compileExpression(source, site);
  let value: unknown;
  try {
    value = await expr.evaluate(scope);
  } catch (err) {
    const e = err as JsonataFailure;
    throw new ExpressionError(
      `${describe(site)}: expression ${JSON.stringify(source)} failed` +
        `${e.position !== undefined ? ` at position ${e.position}` : ''}: ${e.message ?? String(err)}` +
        `${e.code ? ` (jsonata ${e.code})` : ''}`,
      site,
      source,
      e.code,
      e.position,
    );
  }
  return toJson(value, site, source);
}

/** Evaluate a mapping: strings are expressions, other leaves are literals. */
export async function evaluateMapping(mapping: Mapping | undefined, scope: ExpressionScope, site: ExpressionSite): Promise<unknown> {
  if (mapping === undefined) return null;
  if (typeof mapping === 'string') return evaluateExpression(mapping, scope, site);
  if (mapping === null || typeof mapping !== 'object') return mapping;
  if (Array.isArray(mapping)) {
    const out: unknown[] = [];
    for (let i = 0; i < mapping.length; i++) out.push(await evaluateMapping(mapping[i], scope, { ...site, field: `${site.field}[${i}]` }));
    return out;
  }
  const out: Record<string, unknown> = {};
  // Sorted keys: evaluation order is part of determinism, independent of how
  // the JSON was written.
  for (const key of Object.keys(mapping).sort()) {
    out[key] = await evaluateMapping(mapping[key], scope, { ...site, field: `${site.field}.${key}` });
  }
  return out;
}

/** Every expression inside a mapping, with its field path (for validation). */
export function expressionsInMapping(mapping: Mapping | undefined, field: string): Array<{ field: string; source: string }> {
  if (mapping === undefined || mapping === null || typeof mapping !== 'object') {
    return typeof mapping === 'string' ? [{ field, source: mapping }] : [];
  }
  if (Array.isArray(mapping)) return mapping.flatMap((m, i) => expressionsInMapping(m, `${field}[${i}]`));
  return Object.keys(mapping).flatMap((k) => expressionsInMapping(mapping[k], `${field}.${k}`));
}

/** JSONata truthiness, as the `if` step uses it. */
export function isTruthy(value: unknown): boolean {
  if (value === null || value === undefined || value === false || value === 0 || value === '') return false;
  if (Array.isArray(value)) return value.some(isTruthy);
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}
