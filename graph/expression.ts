/**
 * The one expression module. Publish validation, the interpreter (inside the
 * Temporal workflow sandbox) and the API all compile and evaluate JSONata
 * through these functions; there is no second evaluator. jsonata is pinned to
 * an exact version in package.json because a changed evaluator would change
 * decisions on replay.
 *
 * Pure: no Node builtins, no I/O, no wall clock (jsonata's `$now()` reads
 * `Date`, which the workflow sandbox makes deterministic).
 *
 * The canonical expression contract, enforced here so that publish and run
 * agree:
 * - only the functions in {@link ALLOWED_FUNCTIONS} (deterministic JSONata
 *   built-ins and pinflow helpers) and functions the expression binds itself
 *   may be called; {@link DENIED_FUNCTIONS} says why the others are refused;
 * - the syntax tree is bounded ({@link EXPRESSION_LIMITS}), because wall-clock
 *   timeouts do not fire inside the workflow sandbox;
 * - what an expression reads and produces is bounded in JSON bytes;
 * - results are plain JSON.
 * {@link checkExpression} is the publish-time check: it also evaluates
 * constant expressions, so an oversized constant is refused before it runs.
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

/** pinflow's own error codes (jsonata's are `S0xxx`, `T0xxx`, `D0xxx`). */
export const EXPRESSION_ERROR_CODES = {
  /** A call of a function outside the allowlist (or a denied function used as a value). */
  FUNCTION_NOT_ALLOWED: 'FUNCTION_NOT_ALLOWED',
  /** More syntax-tree nodes than {@link EXPRESSION_LIMITS.maxAstNodes}. */
  AST_TOO_LARGE: 'AST_TOO_LARGE',
  /** Syntax tree deeper than {@link EXPRESSION_LIMITS.maxAstDepth}. */
  AST_TOO_DEEP: 'AST_TOO_DEEP',
  /** The scope (input, steps, vars, run) is larger than {@link EXPRESSION_LIMITS.maxInputBytes} as JSON. */
  INPUT_TOO_LARGE: 'INPUT_TOO_LARGE',
  /** The result is larger than {@link EXPRESSION_LIMITS.maxOutputBytes} as JSON. */
  OUTPUT_TOO_LARGE: 'OUTPUT_TOO_LARGE',
  /** The result is not plain JSON (e.g. a function). */
  NOT_JSON: 'NOT_JSON',
  /** Publish only: a constant expression exceeded the publish-time evaluation budget. */
  EVALUATION_TOO_EXPENSIVE: 'EVALUATION_TOO_EXPENSIVE',
} as const;

/** Static and evaluation bounds. Sizes are UTF-8 bytes of the JSON text. */
export const EXPRESSION_LIMITS = Object.freeze({
  maxAstNodes: 500,
  maxAstDepth: 32,
  maxInputBytes: 1_048_576,
  maxOutputBytes: 262_144,
});

/** Deterministic JSONata built-ins. `$now`/`$millis` read `Date`, which is workflow time in the sandbox. */
const BUILTINS_ALLOWED = [
  'string', 'length', 'substring', 'substringBefore', 'substringAfter', 'uppercase', 'lowercase', 'trim', 'pad',
  'contains', 'split', 'join', 'match', 'replace', 'formatNumber', 'formatBase', 'formatInteger', 'parseInteger',
  'number', 'abs', 'floor', 'ceil', 'round', 'power', 'sqrt', 'sum', 'max', 'min', 'average', 'boolean', 'not',
  'exists', 'count', 'append', 'sort', 'reverse', 'distinct', 'keys', 'lookup', 'spread', 'merge', 'each', 'sift',
  'zip', 'map', 'filter', 'single', 'reduce', 'type', 'error', 'assert', 'fromMillis', 'toMillis', 'now', 'millis',
  'encodeUrlComponent', 'encodeUrl', 'decodeUrlComponent', 'decodeUrl',
];

/** Functions pinflow registers on every compiled expression. */
const HELPERS: Record<string, { implementation: () => unknown; signature: string }> = {
  // Workflow time inside the sandbox (Date is deterministic there).
  nowIso: { implementation: () => new Date().toISOString(), signature: '<:s>' },
};

/** The pinflow helper functions, e.g. `$nowIso()` (current time as ISO-8601). */
export const PINFLOW_FUNCTIONS: readonly string[] = Object.freeze(Object.keys(HELPERS).map((n) => `$${n}`).sort());

/** Every function an expression may call without binding it itself (built-ins and helpers), sorted. */
export const ALLOWED_FUNCTIONS: readonly string[] = Object.freeze([...BUILTINS_ALLOWED, ...Object.keys(HELPERS)].map((n) => `$${n}`).sort());

/** JSONata built-ins that are refused, with the reason. Every other unknown name is refused as unknown. */
export const DENIED_FUNCTIONS: Readonly<Record<string, string>> = Object.freeze({
  $eval: 'evaluates arbitrary code, defeats publish-time validation',
  $base64encode: 'needs Buffer, which is absent in the workflow sandbox',
  $base64decode: 'needs Buffer, which is absent in the workflow sandbox',
  $random: 'nondeterministic, breaks workflow replay',
  $shuffle: 'nondeterministic, breaks workflow replay',
  $clone: 'unnecessary: expressions never mutate their input',
});

const allowedNames = new Set([...BUILTINS_ALLOWED, ...Object.keys(HELPERS)]);
const deniedNames = new Map(Object.entries(DENIED_FUNCTIONS).map(([name, reason]) => [name.slice(1), reason]));

interface JsonataFailure {
  code?: string;
  position?: number;
  token?: string;
  message?: string;
}

/** An AST node as jsonata 2.2 builds it (only the fields the checks read). */
interface AstNode {
  type: string;
  value?: unknown;
  position?: number;
  procedure?: AstNode;
  lhs?: unknown;
  rhs?: AstNode;
  arguments?: AstNode[];
  focus?: unknown;
  index?: unknown;
}

interface Compiled {
  expr: jsonata.Expression;
  /** Reads nothing from the scope: its value (and size) is known at publish. */
  constant: boolean;
}

const compiled = new Map<string, Compiled>();
/** Bound on the compile cache; the API compiles arbitrary published sources. */
const MAX_CACHED = 10_000;

function describe(site: ExpressionSite): string {
  return site.stepId ? `step "${site.stepId}" field "${site.field}"` : `field "${site.field}"`;
}

/** The expression for messages about big expressions: quoted, cut at 120 characters. */
function preview(source: string): string {
  return JSON.stringify(source.length > 120 ? `${source.slice(0, 117)}...` : source);
}

function fail(site: ExpressionSite, source: string, code: string, message: string, position?: number): ExpressionError {
  return new ExpressionError(`${describe(site)}: ${message}`, site, source, code, position);
}

function allowedList(): string {
  return ALLOWED_FUNCTIONS.join(', ');
}

/** Ordinary objects (jsonata's parser makes tokens with prototypes), not RegExp literals and the like. */
function isOrdinaryObject(value: object): boolean {
  return Object.prototype.toString.call(value) === '[object Object]';
}

function isAstNode(value: object): value is AstNode {
  return typeof (value as { type?: unknown }).type === 'string';
}

/**
 * Walk the syntax tree and enforce node count, depth and the function
 * allowlist. Returns whether the expression is constant (reads no scope).
 * Walks every object/array property generically (steps, expressions,
 * arguments, procedure, lhs pairs, rhs, condition/then/else, stages,
 * predicate, group, body, terms, update, ...), so a new jsonata node shape
 * cannot hide a call; cycles are guarded.
 */
function analyse(ast: AstNode, source: string, site: ExpressionSite): { constant: boolean } {
  let nodes = 0;
  let maxDepth = 0;
  let tooDeepAt: number | undefined;
  let tooDeepSeen = false;
  let constant = true;
  const bound = new Set<string>();
  const definitions = new Set<AstNode>();
  const callees = new Set<AstNode>();
  const variables: AstNode[] = [];
  const seen = new Set<object>();

  const stack: Array<{ value: object; depth: number }> = [{ value: ast, depth: 0 }];
  while (stack.length) {
    const { value, depth } = stack.pop()!;
    if (seen.has(value)) continue;
    seen.add(value);
    if (Array.isArray(value)) {
      for (const item of value as unknown[]) if (item !== null && typeof item === 'object') stack.push({ value: item, depth });
      continue;
    }
    let childDepth = depth;
    if (isAstNode(value)) {
      const node = value;
      nodes++;
      childDepth = depth + 1;
      if (childDepth > maxDepth) maxDepth = childDepth;
      if (childDepth > EXPRESSION_LIMITS.maxAstDepth && !tooDeepSeen) {
        tooDeepSeen = true;
        tooDeepAt = node.position;
      }
      switch (node.type) {
        case 'name':
        case 'wildcard':
        case 'descendant':
        case 'parent':
          constant = false;
          break;
        case 'variable':
          variables.push(node);
          break;
        case 'bind': {
          const lhs = node.lhs as AstNode | undefined;
          if (lhs && lhs.type === 'variable' && typeof lhs.value === 'string') {
            bound.add(lhs.value);
            definitions.add(lhs);
          }
          break;
        }
        case 'lambda':
          for (const arg of node.arguments ?? []) {
            if (arg.type === 'variable' && typeof arg.value === 'string') {
              bound.add(arg.value);
              definitions.add(arg);
            }
          }
          break;
        case 'function':
        case 'partial':
          if (node.procedure?.type === 'variable') callees.add(node.procedure);
          break;
        case 'apply':
          // `x ~> $f` calls $f.
          if (node.rhs?.type === 'variable') callees.add(node.rhs);
          break;
        default:
          break;
      }
      // Context bindings on a path step: `a@$x`, `a#$i`.
      if (typeof node.focus === 'string') bound.add(node.focus);
      if (typeof node.index === 'string') bound.add(node.index);
    }
    for (const key of Object.keys(value)) {
      // A lambda's parsed signature holds a validator, not syntax.
      if (key === 'signature') continue;
      const child = (value as Record<string, unknown>)[key];
      if (child === null || typeof child !== 'object') continue;
      if (!Array.isArray(child) && !isOrdinaryObject(child)) continue; // e.g. a RegExp literal
      stack.push({ value: child, depth: childDepth });
    }
  }

  if (nodes > EXPRESSION_LIMITS.maxAstNodes) {
    throw fail(
      site,
      source,
      EXPRESSION_ERROR_CODES.AST_TOO_LARGE,
      `expression ${preview(source)} has ${nodes} syntax-tree nodes, over the limit of ${EXPRESSION_LIMITS.maxAstNodes}; split it across steps`,
    );
  }
  if (maxDepth > EXPRESSION_LIMITS.maxAstDepth) {
    throw fail(
      site,
      source,
      EXPRESSION_ERROR_CODES.AST_TOO_DEEP,
      `expression ${preview(source)} nests ${maxDepth} levels deep` +
        `${tooDeepAt !== undefined ? ` (limit exceeded at position ${tooDeepAt})` : ''}, over the limit of ${EXPRESSION_LIMITS.maxAstDepth}`,
      tooDeepAt,
    );
  }

  // Report the first offending name in source order.
  variables.sort((a, b) => (a.position ?? Number.MAX_SAFE_INTEGER) - (b.position ?? Number.MAX_SAFE_INTEGER));
  for (const variable of variables) {
    const name = typeof variable.value === 'string' ? variable.value : '';
    if (name === '' || name === '$') {
      // `$` (context) and `$$` (root): reads the scope.
      constant = false;
      continue;
    }
    // Denied names are refused wherever they appear, even rebound or passed
    // as a value (`$map(xs, $eval)`), so no scoping trick reaches them.
    const reason = deniedNames.get(name);
    if (reason !== undefined) {
      throw fail(
        site,
        source,
        EXPRESSION_ERROR_CODES.FUNCTION_NOT_ALLOWED,
        `function $${name} is not allowed (${reason}); allowed functions are: ${allowedList()}`,
        variable.position,
      );
    }
    if (definitions.has(variable) || allowedNames.has(name) || bound.has(name)) continue;
    if (callees.has(variable)) {
      throw fail(
        site,
        source,
        EXPRESSION_ERROR_CODES.FUNCTION_NOT_ALLOWED,
        `function $${name} is not a known function; allowed functions are: ${allowedList()}`,
        variable.position,
      );
    }
    // An unbound non-function variable: undefined at run time, but not constant.
    constant = false;
  }
  return { constant };
}

function registerHelpers(expr: jsonata.Expression): void {
  for (const [name, helper] of Object.entries(HELPERS)) expr.registerFunction(name, helper.implementation, helper.signature);
}

/** A jsonata failure as an ExpressionError; `what` is "does not compile" or "failed". */
function jsonataError(what: 'does not compile' | 'failed', err: unknown, source: string, site: ExpressionSite): ExpressionError {
  const e = err as JsonataFailure;
  return new ExpressionError(
    `${describe(site)}: expression ${JSON.stringify(source)} ${what}` +
      `${e.position !== undefined ? ` at position ${e.position}` : ''}: ${e.message ?? String(err)}` +
      `${e.code ? ` (jsonata ${e.code})` : ''}`,
    site,
    source,
    e.code,
    e.position,
  );
}

const syntaxError = (err: unknown, source: string, site: ExpressionSite) => jsonataError('does not compile', err, source, site);

function compile(source: string, site: ExpressionSite): Compiled {
  const hit = compiled.get(source);
  if (hit) return hit;
  let expr: jsonata.Expression;
  try {
    expr = jsonata(source);
  } catch (err) {
    // jsonata's recursive-descent parser runs out of stack on absurd nesting.
    if (err instanceof RangeError) {
      throw fail(
        site,
        source,
        EXPRESSION_ERROR_CODES.AST_TOO_DEEP,
        `expression ${preview(source)} nests too deeply to parse, over the limit of ${EXPRESSION_LIMITS.maxAstDepth}`,
      );
    }
    throw syntaxError(err, source, site);
  }
  const { constant } = analyse(expr.ast() as AstNode, source, site);
  registerHelpers(expr);
  const entry: Compiled = { expr, constant };
  if (compiled.size >= MAX_CACHED) compiled.delete(compiled.keys().next().value as string);
  compiled.set(source, entry);
  return entry;
}

/**
 * Compile (and cache) an expression; throws {@link ExpressionError} for a
 * syntax error (jsonata code), a function outside the allowlist
 * (`FUNCTION_NOT_ALLOWED`) or a syntax tree over the bounds
 * (`AST_TOO_LARGE`, `AST_TOO_DEEP`).
 */
export function compileExpression(source: string, site: ExpressionSite): jsonata.Expression {
  return compile(source, site).expr;
}

/** UTF-8 length of a string without encoding it (lone surrogates count as U+FFFD). */
function utf8ByteLength(text: string): number {
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

/** JSON byte size per scope object: the interpreter builds one scope per step, a mapping reuses it. */
const scopeBytes = new WeakMap<object, number>();

function scopeSize(scope: ExpressionScope): number | undefined {
  if (scope === null || typeof scope !== 'object') return undefined;
  const hit = scopeBytes.get(scope);
  if (hit !== undefined) return hit;
  let bytes: number;
  try {
    const text = JSON.stringify(scope) as string | undefined;
    bytes = text === undefined ? 0 : utf8ByteLength(text);
  } catch (err) {
    // Too large for a string at all; anything else (not JSON) is not a size question.
    if (!(err instanceof RangeError)) return undefined;
    bytes = Number.POSITIVE_INFINITY;
  }
  scopeBytes.set(scope, bytes);
  return bytes;
}

function checkInput(scope: ExpressionScope, site: ExpressionSite, source: string): void {
  const bytes = scopeSize(scope);
  if (bytes !== undefined && bytes > EXPRESSION_LIMITS.maxInputBytes) {
    throw fail(
      site,
      source,
      EXPRESSION_ERROR_CODES.INPUT_TOO_LARGE,
      `expression ${preview(source)} cannot run: its input (input, steps, vars, run) is ` +
        `${Number.isFinite(bytes) ? `${bytes} bytes` : 'too large to serialise'} of JSON, over the limit of ${EXPRESSION_LIMITS.maxInputBytes} bytes`,
    );
  }
}

/** A jsonata function value: a lambda or a built-in (neither is JSON). */
function isFunctionValue(value: unknown): boolean {
  if (typeof value === 'function') return true;
  if (value === null || typeof value !== 'object') return false;
  const v = value as { _jsonata_lambda?: unknown; _jsonata_function?: unknown; implementation?: unknown; environment?: { lookup?: unknown } };
  if (v._jsonata_function === true && typeof v.implementation === 'function') return true;
  return v._jsonata_lambda === true && typeof v.environment?.lookup === 'function';
}

const FUNCTION_INSIDE = Symbol('function inside');

/** Turn a jsonata result into plain JSON: undefined → null, sequences → arrays; enforces the output cap. */
function toJson(value: unknown, site: ExpressionSite, source: string): unknown {
  if (value === undefined) return null;
  if (isFunctionValue(value)) {
    throw new ExpressionError(`${describe(site)}: expression ${JSON.stringify(source)} produced a function, not JSON`, site, source, 'NOT_JSON', undefined);
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(value, (_key, v: unknown) => {
      if (isFunctionValue(v)) throw FUNCTION_INSIDE;
      return v;
    }) as string | undefined;
  } catch (err) {
    if (err instanceof RangeError) {
      throw fail(
        site,
        source,
        EXPRESSION_ERROR_CODES.OUTPUT_TOO_LARGE,
        `expression ${preview(source)} produced a result too large to serialise, over the limit of ${EXPRESSION_LIMITS.maxOutputBytes} bytes`,
      );
    }
    throw new ExpressionError(
      `${describe(site)}: expression ${JSON.stringify(source)} produced a value that is not JSON: ` +
        `${err === FUNCTION_INSIDE ? 'it contains a function' : (err as Error).message}`,
      site,
      source,
      'NOT_JSON',
      undefined,
    );
  }
  if (text === undefined) {
    throw new ExpressionError(`${describe(site)}: expression ${JSON.stringify(source)} produced a value that is not JSON`, site, source, 'NOT_JSON', undefined);
  }
  // Cheap bounds first: UTF-8 is at least one and at most three bytes per UTF-16 unit.
  if (text.length * 3 > EXPRESSION_LIMITS.maxOutputBytes) {
    const bytes = utf8ByteLength(text);
    if (bytes > EXPRESSION_LIMITS.maxOutputBytes) {
      throw fail(
        site,
        source,
        EXPRESSION_ERROR_CODES.OUTPUT_TOO_LARGE,
        `expression ${preview(source)} produced ${bytes} bytes of JSON, over the limit of ${EXPRESSION_LIMITS.maxOutputBytes} bytes`,
      );
    }
  }
  return JSON.parse(text) as unknown;
}

const evaluationError = (err: unknown, source: string, site: ExpressionSite) => jsonataError('failed', err, source, site);

/** Evaluate one expression against a scope; the result is plain JSON within {@link EXPRESSION_LIMITS}. */
export async function evaluateExpression(source: string, scope: ExpressionScope, site: ExpressionSite): Promise<unknown> {
  const { expr } = compile(source, site);
  checkInput(scope, site, source);
  let value: unknown;
  try {
    value = await expr.evaluate(scope);
  } catch (err) {
    throw evaluationError(err, source, site);
  }
  return toJson(value, site, source);
}

/**
 * Publish-time evaluation budget for constant expressions. Runs on the API,
 * not in the sandbox, so a wall-clock timeout is usable as a backstop; the
 * step count keeps the verdict independent of machine speed.
 */
const PUBLISH_BUDGET = Object.freeze({
  maxSteps: 1_000_000,
  maxStack: 1_000,
  maxSequence: 1_000_000,
  /** Longest intermediate string, in UTF-16 units. */
  maxStringLength: EXPRESSION_LIMITS.maxInputBytes,
  /**
   * Backstop only, far above what the step budget allows: a verdict must not
   * depend on how loaded the machine is (it did at 5s under a busy test run).
   */
  timeoutMs: 120_000,
});

class PublishBudgetExceeded extends Error {}

type NativeFunction = (this: jsonata.Focus, ...args: unknown[]) => unknown;
let builtinPad: Promise<NativeFunction> | undefined;

/** jsonata's own `$pad`, to wrap with a width check (it allocates before any other check could run). */
function originalPad(): Promise<NativeFunction> {
  builtinPad ??= jsonata('$pad')
    .evaluate(undefined)
    .then((fn: { implementation: NativeFunction }) => fn.implementation);
  return builtinPad;
}

async function evaluateForPublish(source: string): Promise<unknown> {
  const expr = jsonata(source, { timeout: PUBLISH_BUDGET.timeoutMs, stack: PUBLISH_BUDGET.maxStack, sequence: PUBLISH_BUDGET.maxSequence });
  registerHelpers(expr);
  const pad = await originalPad();
  expr.registerFunction(
    'pad',
    function (this: jsonata.Focus, str: unknown, width: unknown, char: unknown) {
      if (typeof width === 'number' && Math.abs(width) > PUBLISH_BUDGET.maxStringLength) {
        throw new PublishBudgetExceeded(`$pad to width ${width} exceeds the publish-time string budget of ${PUBLISH_BUDGET.maxStringLength}`);
      }
      return pad.call(this, str, width, char);
    },
    '<s-ns?:s>',
  );
  let steps = 0;
  // jsonata looks these hooks up by symbol; its typings only admit string names.
  const assign = expr.assign.bind(expr) as (name: string | symbol, value: unknown) => void;
  assign(Symbol.for('jsonata.__evaluate_entry'), () => {
    if (++steps > PUBLISH_BUDGET.maxSteps) throw new PublishBudgetExceeded(`more than ${PUBLISH_BUDGET.maxSteps} evaluation steps`);
  });
  assign(Symbol.for('jsonata.__evaluate_exit'), (_expr: unknown, _input: unknown, _env: unknown, result: unknown) => {
    if (typeof result === 'string' && result.length > PUBLISH_BUDGET.maxStringLength) {
      throw new PublishBudgetExceeded(`an intermediate string of ${result.length} characters exceeds the publish-time budget of ${PUBLISH_BUDGET.maxStringLength}`);
    }
  });
  // A constant reads nothing from its scope, so an empty one stands in for any.
  return expr.evaluate({});
}

/** jsonata's own guardrails, tripped by the publish budget options. */
const BUDGET_CODES = new Set(['D1011', 'D1012', 'D2015']);

/**
 * The publish-time check of one expression: compiles it (syntax, function
 * allowlist, AST bounds) and, when the expression is constant (reads no
 * input, steps, vars or run), evaluates it and applies the output cap, so an
 * oversized constant such as `$pad("", 300000)` is refused before any run.
 * Evaluation failures of a constant are otherwise left to run time (they may
 * be deliberate, e.g. `$error()`), except a result that is not JSON and a
 * constant too expensive to evaluate at publish (`EVALUATION_TOO_EXPENSIVE`).
 */
export async function checkExpression(source: string, site: ExpressionSite): Promise<void> {
  const { constant } = compile(source, site);
  if (!constant) return;
  let value: unknown;
  try {
    value = await evaluateForPublish(source);
  } catch (err) {
    const code = (err as JsonataFailure | undefined)?.code;
    if (err instanceof PublishBudgetExceeded || err instanceof RangeError || (typeof code === 'string' && BUDGET_CODES.has(code))) {
      throw fail(
        site,
        source,
        EXPRESSION_ERROR_CODES.EVALUATION_TOO_EXPENSIVE,
        `constant expression ${preview(source)} is too expensive to evaluate at publish: ${(err as Error).message ?? String(err)}`,
        (err as JsonataFailure).position,
      );
    }
    return;
  }
  toJson(value, site, source);
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
