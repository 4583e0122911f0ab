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
import { scopeJsonBytes, utf8ByteLength } from './expression-size';
import { trivialAst } from './expression-trivial';
import { NOT_SYNC, planSync, type SyncPlan } from './expression-sync';
import { findJsonProblem } from './json-guard';
import { currentRunLimits, type ExpressionBudget } from './limits';
import { regexProblem } from './regex-guard';
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

  /** VALUE_NOT_STORABLE: the JSON path of the string that cannot be stored, e.g. `set.note.lines[2]`. */
  path?: string;

  toJSON(): Record<string, unknown> {
    return {
      message: this.message,
      stepId: this.site.stepId,
      field: this.site.field,
      expression: this.expression,
      jsonataCode: this.jsonataCode,
      position: this.position,
      ...(this.path !== undefined ? { path: this.path } : {}),
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
  /**
   * An evaluation exceeded its budget ({@link ExpressionBudget}: steps,
   * depth, items, string length, regex input length). Counted, never timed,
   * so every replay reaches the same verdict.
   */
  EXPRESSION_BUDGET_EXCEEDED: 'EXPRESSION_BUDGET_EXCEEDED',
  /** A regex literal can backtrack catastrophically (graph/regex-guard.ts). */
  REGEX_UNSAFE: 'REGEX_UNSAFE',
  /** The result holds a string Postgres cannot store (a NUL character, a lone UTF-16 surrogate). */
  VALUE_NOT_STORABLE: 'VALUE_NOT_STORABLE',
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
  /** Compiled as before 0.6.0 (no budget): only for replaying runs that started before FLAGS.EXPRESSION_BUDGET. Built on first use. */
  readonly expr: jsonata.Expression;
  /** Reads nothing from the scope: its value (and size) is known at publish. */
  constant: boolean;
  /** The first regex literal that can backtrack catastrophically, if any. */
  unsafeRegex?: { pattern: string; problem: string; position: number | undefined };
  /** In the synchronous subset (graph/expression-sync.ts): its closure and bounds. */
  sync?: SyncPlan;
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
function analyse(ast: AstNode, source: string, site: ExpressionSite): { constant: boolean; unsafeRegex?: Compiled['unsafeRegex'] } {
  let unsafeRegex: Compiled['unsafeRegex'];
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
        case 'regex': {
          const re = node.value;
          if (Object.prototype.toString.call(re) === '[object RegExp]') {
            const problem = regexProblem((re as RegExp).source);
            // Report the first in source order.
            if (problem && (unsafeRegex === undefined || (node.position ?? 0) < (unsafeRegex.position ?? 0))) {
              unsafeRegex = { pattern: String(re), problem, position: node.position };
            }
          }
          break;
        }
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
  return { constant, ...(unsafeRegex ? { unsafeRegex } : {}) };
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
  // A literal or a plain path: its tree without jsonata's parser (graph/expression-trivial.ts).
  const trivial = trivialAst(source);
  let parsed: jsonata.Expression | undefined;
  if (!trivial) {
    try {
      parsed = jsonata(source);
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
  }
  const ast = (trivial ?? parsed!.ast()) as AstNode;
  const { constant, unsafeRegex } = analyse(ast, source, site);
  const sync = planSync(ast);
  // jsonata's own compiled form, with the helpers registered, only when something evaluates through it:
  // an expression the sync path runs never needs it.
  let expr: jsonata.Expression | undefined;
  const entry: Compiled = {
    get expr(): jsonata.Expression {
      if (!expr) {
        expr = parsed ?? jsonata(source);
        registerHelpers(expr);
      }
      return expr;
    },
    constant,
    ...(unsafeRegex ? { unsafeRegex } : {}),
    ...(sync ? { sync } : {}),
  };
  if (compiled.size >= MAX_CACHED) compiled.delete(compiled.keys().next().value as string);
  compiled.set(source, entry);
  return entry;
}

function assertSafeRegex(entry: Compiled, source: string, site: ExpressionSite): void {
  const unsafe = entry.unsafeRegex;
  if (!unsafe) return;
  throw fail(
    site,
    source,
    EXPRESSION_ERROR_CODES.REGEX_UNSAFE,
    `expression ${preview(source)} uses the regular expression ${unsafe.pattern}, which is refused: ${unsafe.problem}`,
    unsafe.position,
  );
}

/**
 * Compile (and cache) an expression; throws {@link ExpressionError} for a
 * syntax error (jsonata code), a function outside the allowlist
 * (`FUNCTION_NOT_ALLOWED`), a syntax tree over the bounds
 * (`AST_TOO_LARGE`, `AST_TOO_DEEP`) or a regex literal that can backtrack
 * catastrophically (`REGEX_UNSAFE`).
 */
export function compileExpression(source: string, site: ExpressionSite): jsonata.Expression {
  const entry = compile(source, site);
  assertSafeRegex(entry, source, site);
  return entry.expr;
}

/** JSON byte size per scope object: the interpreter builds one scope per step, a mapping reuses it. */
const scopeBytes = new WeakMap<object, number>();

/** The scope's size in JSON bytes (summed from its parts, graph/expression-size.ts), or undefined when it is not JSON. */
function scopeSize(scope: ExpressionScope): number | undefined {
  if (scope === null || typeof scope !== 'object') return undefined;
  const hit = scopeBytes.get(scope);
  if (hit !== undefined) return hit;
  const bytes = scopeJsonBytes(scope);
  if (bytes !== undefined) scopeBytes.set(scope, bytes);
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
  // A value built by sharing can be exponentially long as text: refuse it
  // before serialising it (past four times the cap, so the exact check below
  // still reports the size of anything near it).
  if (jsonLengthOver(value, 4 * EXPRESSION_LIMITS.maxOutputBytes)) {
    throw fail(site, source, EXPRESSION_ERROR_CODES.OUTPUT_TOO_LARGE, `expression ${preview(source)} produced more than ${EXPRESSION_LIMITS.maxOutputBytes} bytes of JSON, over the limit`);
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

/**
 * Thrown inside an evaluation that ran over its budget. A plain Error, so
 * jsonata passes it through untouched.
 */
class BudgetExceeded extends Error {}

/** What one evaluation has spent, against its budget. */
interface Meter {
  steps: number;
  budget: ExpressionBudget;
}

function charge(meter: Meter, steps: number): void {
  meter.steps += steps;
  if (meter.steps > meter.budget.maxSteps) throw new BudgetExceeded(`it took more than ${meter.budget.maxSteps} evaluation steps`);
}

function checkStringArgs(meter: Meter, name: string, args: unknown[]): void {
  for (const a of args) {
    if (typeof a === 'string' && a.length > meter.budget.maxStringLength) {
      throw new BudgetExceeded(`$${name} was given a string of ${a.length} characters, over the string budget of ${meter.budget.maxStringLength}`);
    }
  }
}

/**
 * A lower bound of the JSON text length of a value (UTF-16 units), walked
 * iteratively and abandoned once over `limit`: a value built by sharing
 * (`[$x, $x]` twenty times over) is walked at most `limit` units far instead
 * of serialised in full. UTF-8 bytes are never fewer than UTF-16 units, so a
 * value over the limit here is over it as JSON bytes too.
 */
function jsonLengthOver(value: unknown, limit: number): boolean {
  let length = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') length += v.length + 2;
    else if (typeof v === 'number') length += 1;
    else if (typeof v === 'boolean' || v === null) length += 4;
    else if (Array.isArray(v)) {
      length += 1 + v.length;
      for (let i = v.length - 1; i >= 0; i--) stack.push(v[i]);
    } else if (typeof v === 'object' && !isFunctionValue(v)) {
      const keys = Object.keys(v);
      length += 1 + keys.length;
      for (const k of keys) {
        length += k.length + 3;
        stack.push((v as Record<string, unknown>)[k]);
      }
    }
    if (length > limit) return true;
  }
  return false;
}

/**
 * Guards on built-ins, checked before each call: strings they are given are
 * within the string budget (a string built by `&` is a cheap rope until a
 * built-in flattens it), and the ones that allocate or work more than their
 * arguments' size refuse first.
 */
const BUILTIN_GUARDS: Record<string, { signature: string; guard?: (meter: Meter, args: unknown[]) => void }> = {
  // jsonata's $pad allocates the whole padding before anything else could check.
  pad: {
    signature: '<s-ns?:s>',
    guard: (m, [, width]) => {
      if (typeof width === 'number' && Math.abs(width) > m.budget.maxStringLength) throw new BudgetExceeded(`$pad to width ${width} is over the string budget of ${m.budget.maxStringLength} characters`);
    },
  },
  // Array.prototype.join allocates the joined string flat.
  join: {
    signature: '<a<s>s?:s>',
    guard: (m, [strs, separator]) => {
      if (!Array.isArray(strs)) return;
      let total = typeof separator === 'string' ? separator.length * Math.max(0, strs.length - 1) : 0;
      for (const s of strs) total += typeof s === 'string' ? s.length : 0;
      if (total > m.budget.maxStringLength) throw new BudgetExceeded(`$join would build ${total} characters, over the string budget of ${m.budget.maxStringLength}`);
    },
  },
  // JSON.stringify of a value built by sharing can be exponentially long.
  string: {
    signature: '<x-b?:s>',
    guard: (m, [arg]) => {
      if (jsonLengthOver(arg, m.budget.maxStringLength)) throw new BudgetExceeded(`$string would build more than ${m.budget.maxStringLength} characters`);
    },
  },
  // Pairwise deep comparison: quadratic in the number of items.
  distinct: {
    signature: '<x:x>',
    guard: (m, [arg]) => {
      if (Array.isArray(arg)) charge(m, Math.floor((arg.length * arg.length) / 64));
    },
  },
  replace: { signature: '<s-(sf)(sf)n?:s>' },
  split: { signature: '<s-(sf)n?:a<s>>' },
  substring: { signature: '<s-nn?:s>' },
  substringBefore: { signature: '<s-s:s>' },
  substringAfter: { signature: '<s-s:s>' },
  uppercase: { signature: '<s-:s>' },
  lowercase: { signature: '<s-:s>' },
  trim: { signature: '<s-:s>' },
  encodeUrlComponent: { signature: '<s-:s>' },
  encodeUrl: { signature: '<s-:s>' },
  decodeUrlComponent: { signature: '<s-:s>' },
  decodeUrl: { signature: '<s-:s>' },
};

type NativeFunction = (this: unknown, ...args: unknown[]) => unknown;

/**
 * jsonata's own implementations of the guarded built-ins, to call after the
 * guard. The guard wrappers call them synchronously, as jsonata calls a
 * built-in: an asynchronous wrapper would add microtasks to every call, and
 * concurrent branches of a run interleave by microtasks (a recorded history
 * must replay with the same schedule).
 *
 * jsonata 2.2 keeps its built-ins in a frame it hands out only to the
 * evaluator, so they are read from there, synchronously: jsonata calls the
 * `jsonata.__createFrame_push` callback of an expression's environment when
 * `evaluate` creates its frame (the first thing it does, before any await),
 * with that environment, whose `lookup` reaches the built-ins. Fetched on
 * the first budgeted evaluation, not when this module loads: the SDK
 * evaluates the bundle's modules for every new workflow, and most workflows
 * never reach a budgeted jsonata evaluation (the synchronous path,
 * graph/expression-sync.ts, needs none). Nothing here awaits, so where it
 * happens changes no run's schedule.
 */
interface JsonataFrame {
  lookup(name: string): unknown;
}
const FRAME_PUSH = Symbol.for('jsonata.__createFrame_push');
let originals: ReadonlyMap<string, NativeFunction> | undefined;

function loadOriginals(): ReadonlyMap<string, NativeFunction> {
  let frame: JsonataFrame | undefined;
  const stop = new Error('environment read');
  const probe = jsonata('0');
  probe.assign(FRAME_PUSH as unknown as string, (enclosing: JsonataFrame) => {
    frame = enclosing;
    // Nothing more is needed: the evaluation ends here, before it evaluates anything.
    throw stop;
  });
  probe.evaluate(undefined).then(undefined, (err: unknown) => {
    if (err !== stop) throw err;
  });
  if (!frame) throw new Error('jsonata did not hand out its environment: the pinned jsonata version changed its evaluator');
  const found = new Map<string, NativeFunction>();
  for (const name of Object.keys(BUILTIN_GUARDS)) {
    const fn = frame.lookup(name) as { _jsonata_function?: boolean; implementation?: unknown } | undefined;
    if (fn?._jsonata_function !== true || typeof fn.implementation !== 'function') throw new Error(`jsonata has no built-in $${name}: the pinned jsonata version changed`);
    found.set(name, fn.implementation as NativeFunction);
  }
  return found;
}

/** A RegExp whose `exec` (all jsonata regex matching goes through it) refuses inputs over the budget. */
function boundedRegExp(maxInput: number): RegExpConstructor {
  class BoundedRegExp extends RegExp {
    override exec(input: string): RegExpExecArray | null {
      if (input.length > maxInput) throw new BudgetExceeded(`a regular expression would run on ${input.length} characters, over the regex input budget of ${maxInput}`);
      return super.exec(input);
    }
  }
  return BoundedRegExp as unknown as RegExpConstructor;
}

/**
 * The expression compiled for one evaluation under a budget. Counting uses
 * jsonata's own guardrail: it calls `guardrails()` synchronously once per
 * evaluation step, which reads `options.timeout`; that read is a getter that
 * charges one step (and answers 0, so jsonata never looks at the clock). No
 * evaluate hooks: each hook is an `await`, a promise per step, and in the
 * workflow sandbox every promise records a stack trace, which made a step
 * several times dearer. jsonata keeps `options` per compiled expression, so
 * each evaluation compiles its own (parsing is synchronous and cheap; the
 * checks of {@link analyse} stay cached).
 */
function budgetedExpression(source: string, meter: Meter): jsonata.Expression {
  const budget = meter.budget;
  const options = {
    // jsonata's own guardrails: evaluation depth (D1011) and items in one sequence (D2015).
    stack: budget.maxDepth,
    sequence: budget.maxItems,
    RegexEngine: boundedRegExp(budget.maxRegexInput),
    get timeout(): number {
      charge(meter, 1);
      return 0;
    },
  };
  // Its typings know only `RegexEngine` and `recover`.
  const expr = jsonata(source, options as unknown as jsonata.JsonataOptions);
  registerHelpers(expr);
  originals ??= loadOriginals();
  for (const [name, { signature, guard }] of Object.entries(BUILTIN_GUARDS)) {
    const original = originals.get(name)!;
    expr.registerFunction(
      name,
      function (this: unknown, ...args: unknown[]) {
        checkStringArgs(meter, name, args);
        guard?.(meter, args);
        return original.apply(this, args);
      },
      signature,
    );
  }
  return expr;
}

/** jsonata's guardrail codes: evaluation too deep, a sequence too long, a range over 10^7 items. */
const JSONATA_BUDGET_CODES: Record<string, string> = {
  D1011: 'it recursed deeper than the depth budget',
  D2015: 'it built a sequence over the item budget',
  D2014: 'it built a range of more than 10,000,000 items',
};

/** Why an evaluation failure is a budget verdict, or undefined when it is an ordinary failure. */
function budgetReason(err: unknown, budget: ExpressionBudget): string | undefined {
  if (err instanceof BudgetExceeded) return err.message;
  // The JS stack or the string length ran out before a counted bound did.
  if (err instanceof RangeError) return `it ran out of room (${err.message})`;
  const code = (err as JsonataFailure | undefined)?.code;
  if (typeof code === 'string' && code in JSONATA_BUDGET_CODES) {
    if (code === 'D1011') return `${JSONATA_BUDGET_CODES[code]!} (${budget.maxDepth})`;
    if (code === 'D2015') return `${JSONATA_BUDGET_CODES[code]!} (${budget.maxItems})`;
    return JSONATA_BUDGET_CODES[code];
  }
  return undefined;
}

/** How a run evaluates: under its budget, and what to do when a guard trips. */
export interface EvaluationGuards {
  budget: ExpressionBudget;
  /**
   * Asked once a guard trips (over budget, an unsafe regex, an unstorable
   * stored value): true fails the evaluation; false evaluates as before the
   * guards (unbounded, value unchecked), for replaying a run that started
   * before them. Omitted: always true.
   */
  enforce?: () => boolean;
  /** The value is stored by the projection: a NUL or lone surrogate in it fails with VALUE_NOT_STORABLE. */
  stored?: boolean;
}

function budgetExceeded(err: unknown, source: string, site: ExpressionSite, reason: string): ExpressionError {
  return fail(site, source, EXPRESSION_ERROR_CODES.EXPRESSION_BUDGET_EXCEEDED, `expression ${preview(source)} ran over its evaluation budget: ${reason}`, (err as JsonataFailure).position);
}

/**
 * Evaluate one expression against a scope; the result is plain JSON within
 * {@link EXPRESSION_LIMITS}. The evaluation runs under the guards' budget
 * (by default this process's; a run passes the one in its start input): over
 * it, `EXPRESSION_BUDGET_EXCEEDED`; a regex literal that can backtrack
 * catastrophically is refused with `REGEX_UNSAFE` before anything runs.
 * `null` evaluates as before 0.6.0, unbounded.
 *
 * One async function with one await on the way to a result, as before the
 * budget: a run's concurrent branches interleave by microtasks.
 */
export async function evaluateExpression(
  source: string,
  scope: ExpressionScope,
  site: ExpressionSite,
  guards: EvaluationGuards | null = { budget: currentRunLimits().expression },
): Promise<unknown> {
  const entry = compile(source, site);
  checkInput(scope, site, source);
  const enforce = () => guards?.enforce?.() ?? true;
  let unbounded = guards === null;
  if (!unbounded && entry.unsafeRegex) {
    if (enforce()) assertSafeRegex(entry, source, site);
    unbounded = true;
  }
  const meter: Meter | undefined = unbounded ? undefined : { steps: 0, budget: guards!.budget };
  let value: unknown;
  try {
    value = await (meter ? budgetedExpression(source, meter) : entry.expr).evaluate(scope);
  } catch (err) {
    const reason = meter ? budgetReason(err, meter.budget) : undefined;
    if (reason === undefined) throw evaluationError(err, source, site);
    if (enforce()) throw budgetExceeded(err, source, site, reason);
    unbounded = true;
    try {
      value = await entry.expr.evaluate(scope);
    } catch (again) {
      throw evaluationError(again, source, site);
    }
  }
  const json = toJson(value, site, source);
  if (guards?.stored && !unbounded) {
    const problem = unstorableValue(json, site);
    if (problem && enforce()) throw problem;
  }
  return json;
}

/**
 * Why a value cannot be stored by the projection (a NUL character or a lone
 * UTF-16 surrogate in a string or key, at any depth), as an
 * `ExpressionError` with code `VALUE_NOT_STORABLE` naming the step, the field
 * and the JSON path; undefined when it can.
 */
export function unstorableValue(value: unknown, site: ExpressionSite): ExpressionError | undefined {
  const p = findJsonProblem(value, site.field, Number.POSITIVE_INFINITY);
  if (!p || p.code !== 'STRING_INVALID') return undefined;
  const error = new ExpressionError(
    `${describe(site)}: the value produced at ${p.field} cannot be stored: ${p.message.slice(p.field.length + 1)}; allowed: ${p.allowed}`,
    site,
    '',
    EXPRESSION_ERROR_CODES.VALUE_NOT_STORABLE,
    undefined,
  );
  error.path = p.field;
  return error;
}

/**
 * The publish-time check of one expression: compiles it (syntax, function
 * allowlist, AST bounds, regex literals) and, when the expression is constant
 * (reads no input, steps, vars or run), evaluates it under this process's
 * budget and applies the output cap, so an oversized constant such as
 * `$pad("", 300000)` is refused before any run. Evaluation failures of a
 * constant are otherwise left to run time (they may be deliberate, e.g.
 * `$error()`), except a result that is not JSON and a constant over the
 * budget (`EVALUATION_TOO_EXPENSIVE`).
 */
export async function checkExpression(source: string, site: ExpressionSite): Promise<void> {
  const entry = compile(source, site);
  assertSafeRegex(entry, source, site);
  if (!entry.constant) return;
  let value: unknown;
  try {
    // A constant reads nothing from its scope, so an empty one stands in for any.
    value = await evaluateExpression(source, {} as ExpressionScope, site);
  } catch (err) {
    if (err instanceof ExpressionError && err.jsonataCode === EXPRESSION_ERROR_CODES.EXPRESSION_BUDGET_EXCEEDED) {
      throw fail(
        site,
        source,
        EXPRESSION_ERROR_CODES.EVALUATION_TOO_EXPENSIVE,
        `constant expression ${preview(source)} is too expensive to evaluate at publish: ${err.message.replace(/^.*ran over its evaluation budget: /, '')}`,
        err.position,
      );
    }
    // The result's own checks (size, JSON) stand; other failures may be deliberate (`$error`).
    if (err instanceof ExpressionError && (err.jsonataCode === EXPRESSION_ERROR_CODES.OUTPUT_TOO_LARGE || err.jsonataCode === EXPRESSION_ERROR_CODES.NOT_JSON)) throw err;
    return;
  }
  toJson(value, site, source);
}

/** Evaluate a mapping: strings are expressions, other leaves are literals. */
export async function evaluateMapping(
  mapping: Mapping | undefined,
  scope: ExpressionScope,
  site: ExpressionSite,
  guards: EvaluationGuards | null = { budget: currentRunLimits().expression },
): Promise<unknown> {
  if (mapping === undefined) return null;
  if (typeof mapping === 'string') return evaluateExpression(mapping, scope, site, guards);
  if (mapping === null || typeof mapping !== 'object') return mapping;
  if (Array.isArray(mapping)) {
    const out: unknown[] = [];
    for (let i = 0; i < mapping.length; i++) out.push(await evaluateMapping(mapping[i], scope, { ...site, field: `${site.field}[${i}]` }, guards));
    return out;
  }
  const out: Record<string, unknown> = {};
  // Sorted keys: evaluation order is part of determinism, independent of how
  // the JSON was written.
  for (const key of Object.keys(mapping).sort()) {
    out[key] = await evaluateMapping(mapping[key], scope, { ...site, field: `${site.field}.${key}` }, guards);
  }
  return out;
}

/** A promise (or any thenable): what the synchronous entry points hand back when jsonata has to evaluate. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

/** The result of the sync path as JSON: what {@link toJson} gives, without serialising a primitive. */
function syncResult(value: unknown, site: ExpressionSite, source: string): unknown {
  if (value === undefined || value === null || typeof value === 'boolean') return value ?? null;
  // Finite (the sync path leaves NaN and Infinity to jsonata); -0 is 0 in JSON.
  if (typeof value === 'number') return value === 0 ? 0 : value;
  // A string's JSON text is at most 6 bytes per UTF-16 unit (an escape), plus its quotes.
  if (typeof value === 'string' && value.length * 6 + 2 <= EXPRESSION_LIMITS.maxOutputBytes) return value;
  return toJson(value, site, source);
}

/**
 * {@link evaluateExpression}, returning the value itself (no promise) when
 * the expression is in the synchronous subset (graph/expression-sync.ts),
 * fits the run's budget, and its data stay in the subset; else the promise of
 * {@link evaluateExpression}. Same guards, same value, same errors (the
 * size and storability guards are thrown synchronously). For runs with
 * FLAGS.SYNC_EXPRESSIONS: how many promises a step makes changes how its
 * concurrent branches interleave.
 */
export function evaluateExpressionNow(source: string, scope: ExpressionScope, site: ExpressionSite, guards: EvaluationGuards): unknown {
  const entry = compile(source, site);
  const plan = entry.sync;
  if (plan && plan.steps <= guards.budget.maxSteps && plan.depth <= guards.budget.maxDepth) {
    checkInput(scope, site, source);
    const value = plan.run(scope);
    if (value !== NOT_SYNC) {
      const json = syncResult(value, site, source);
      if (guards.stored) {
        const problem = unstorableValue(json, site);
        if (problem && (guards.enforce?.() ?? true)) throw problem;
      }
      return json;
    }
  }
  return evaluateExpression(source, scope, site, guards);
}

/**
 * {@link evaluateMapping} through {@link evaluateExpressionNow}: the value
 * itself when every expression in it was evaluated synchronously, else a
 * promise that evaluates the rest in the same order.
 */
export function evaluateMappingNow(mapping: Mapping | undefined, scope: ExpressionScope, site: ExpressionSite, guards: EvaluationGuards): unknown {
  if (mapping === undefined) return null;
  if (typeof mapping === 'string') return evaluateExpressionNow(mapping, scope, site, guards);
  if (mapping === null || typeof mapping !== 'object') return mapping;
  if (Array.isArray(mapping)) {
    const out: unknown[] = [];
    for (let i = 0; i < mapping.length; i++) {
      const value = evaluateMappingNow(mapping[i], scope, { ...site, field: `${site.field}[${i}]` }, guards);
      if (isThenable(value)) {
        return (async () => {
          out.push(await value);
          for (let j = i + 1; j < mapping.length; j++) out.push(await evaluateMappingNow(mapping[j], scope, { ...site, field: `${site.field}[${j}]` }, guards));
          return out;
        })();
      }
      out.push(value);
    }
    return out;
  }
  const out: Record<string, unknown> = {};
  const keys = Object.keys(mapping).sort();
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const value = evaluateMappingNow(mapping[key], scope, { ...site, field: `${site.field}.${key}` }, guards);
    if (isThenable(value)) {
      return (async () => {
        out[key] = await value;
        for (let j = i + 1; j < keys.length; j++) out[keys[j]!] = await evaluateMappingNow(mapping[keys[j]!], scope, { ...site, field: `${site.field}.${keys[j]!}` }, guards);
        return out;
      })();
    }
    out[key] = value;
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
