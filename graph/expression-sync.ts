/**
 * The synchronous expression path (FLAGS.SYNC_EXPRESSIONS in workflows/flags.ts).
 *
 * jsonata evaluates through an async evaluator: every syntax-tree node is an
 * `await`, and inside the workflow sandbox the SDK captures a stack for every
 * promise, so a step's `vars.x + 1` costs far more than the arithmetic. For a
 * small subset of JSONata this module compiles the syntax tree once into a
 * plain closure that computes exactly what jsonata 2.2.2 computes:
 *
 * - literals: numbers, strings, `true`, `false`, `null`;
 * - plain paths of names over the scope (`input.a.b`, `steps.s1.x`,
 *   `` vars.`odd key` ``): no `$`, predicates, wildcards, `[]` or other
 *   path operators;
 * - unary minus; `+ - * / %`; `= != < <= > >=`; `and`, `or`; `&`;
 *   the ternary `?:`; parenthesised blocks.
 *
 * The closure never throws for data: where jsonata would raise an error (a
 * non-number in arithmetic, T2001/T2002; mixed types in a comparison,
 * T2009/T2010; a non-number negated, D1002), where a result is not a finite
 * number (jsonata's D1001 territory, or a NaN/Infinity that JSON turns into
 * null), and where a path meets an array before its last step (sequence
 * flattening and mapping), it returns {@link NOT_SYNC} and the caller
 * evaluates the expression with jsonata as before, which then produces its
 * own value or error, code and message. The helpers below copy jsonata's own
 * rules (lookup, isDeepEqual, boolean, string) line for line; the property
 * test (test/expression-sync.test.ts) compares the two paths on generated
 * expressions and scopes.
 *
 * Budget: jsonata charges one step per evaluated node plus one per
 * evaluation (graph/expression.ts, budgetedExpression). On this subset no
 * node is evaluated more than once (a path never iterates: arrays before the
 * last step leave the subset), so {@link SyncPlan.steps} is an upper bound of
 * what jsonata would charge and {@link SyncPlan.depth} of the evaluation
 * depth it would reach; the caller takes the sync path only when both are
 * within the run's budget, so the sync path never accepts what jsonata's
 * budget would refuse. Sequences stay at one item, so the item budget is
 * never reached either.
 *
 * Pure: no Node builtins; importable by the workflow bundle.
 */

/** Returned by a plan's `run` when the value must come from jsonata. */
export const NOT_SYNC: unique symbol = Symbol('not sync');

/** An expression compiled for the synchronous path. */
export interface SyncPlan {
  /** The value (undefined for JSONata's "nothing"), or NOT_SYNC. Never throws for data. */
  run: (scope: unknown) => unknown;
  /** Upper bound of the evaluation steps jsonata's meter would charge (one per evaluation plus one per node). */
  steps: number;
  /** Upper bound of jsonata's evaluation depth. */
  depth: number;
}

type Closure = (scope: unknown) => unknown;
interface Compiled {
  fn: Closure;
  steps: number;
  depth: number;
}

interface Node {
  type?: unknown;
  value?: unknown;
  [key: string]: unknown;
}

const ARITHMETIC = new Set(['+', '-', '*', '/', '%']);
const COMPARISON = new Set(['<', '<=', '>', '>=']);

/** The node has exactly these keys (position aside): any other (predicate, group, stages, keepArray, focus, ...) leaves the subset. */
function hasOnly(node: Node, keys: readonly string[]): boolean {
  for (const k of Object.keys(node)) if (k !== 'position' && !keys.includes(k)) return false;
  return true;
}

function isNode(v: unknown): v is Node {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// ---- jsonata's rules, copied (jsonata 2.2.2: utils.isFunction, fn.lookup, utils.isDeepEqual, fn.boolean, fn.string) ----

function isFunction(arg: unknown): boolean {
  const a = arg as { _jsonata_function?: unknown; _jsonata_lambda?: unknown } | null | undefined;
  return (!!a && (a._jsonata_function === true || a._jsonata_lambda === true)) || typeof arg === 'function';
}

/** fn.lookup on a non-array input. */
function lookup(input: unknown, key: string): unknown {
  if (input !== null && typeof input === 'object' && Object.prototype.hasOwnProperty.call(input, key) && !isFunction(input)) {
    return (input as Record<string, unknown>)[key];
  }
  return undefined;
}

function isDeepEqual(lhs: unknown, rhs: unknown): boolean {
  if (lhs === rhs) return true;
  if (typeof lhs === 'object' && typeof rhs === 'object' && lhs !== null && rhs !== null) {
    if (Array.isArray(lhs) && Array.isArray(rhs)) {
      if (lhs.length !== rhs.length) return false;
      for (let i = 0; i < lhs.length; i++) if (!isDeepEqual(lhs[i], rhs[i])) return false;
      return true;
    }
    const lkeys = Object.getOwnPropertyNames(lhs).sort();
    const rkeys = Object.getOwnPropertyNames(rhs).sort();
    if (lkeys.length !== rkeys.length) return false;
    for (let i = 0; i < lkeys.length; i++) if (lkeys[i] !== rkeys[i]) return false;
    for (const key of lkeys) if (!isDeepEqual((lhs as Record<string, unknown>)[key], (rhs as Record<string, unknown>)[key])) return false;
    return true;
  }
  return false;
}

/** A number jsonata's isNumeric accepts without throwing: finite. NaN and ±Infinity are not in the sync world. */
function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** fn.boolean: the effective boolean value; NOT_SYNC where jsonata's isNumeric would throw (±Infinity, never in JSON). */
function boolean(arg: unknown): boolean | undefined | typeof NOT_SYNC {
  if (arg === undefined) return undefined;
  if (Array.isArray(arg)) {
    if (arg.length === 1) return boolean(arg[0]);
    if (arg.length > 1) {
      let any = false;
      for (const v of arg) {
        const b = boolean(v);
        if (b === NOT_SYNC) return NOT_SYNC;
        if (b) any = true;
      }
      return any;
    }
    return false;
  }
  if (typeof arg === 'string') return arg.length > 0;
  if (typeof arg === 'number') {
    if (Number.isNaN(arg)) return false;
    if (!Number.isFinite(arg)) return NOT_SYNC;
    return arg !== 0;
  }
  if (arg !== null && typeof arg === 'object' && !isFunction(arg)) return Object.keys(arg).length > 0;
  return arg === true;
}

/** fn.string (not prettified); NOT_SYNC where jsonata throws (D3001) or would walk a value it treats specially. */
function toText(arg: unknown): string | typeof NOT_SYNC {
  if (typeof arg === 'string') return arg;
  if (isFunction(arg)) return '';
  if (typeof arg === 'number' && !Number.isFinite(arg)) return NOT_SYNC;
  try {
    return JSON.stringify(arg, (_key, val: unknown) => {
      if (val !== undefined && val !== null && typeof val === 'number' && !Number.isNaN(val)) {
        if (!Number.isFinite(val)) throw NOT_SYNC; // jsonata's isNumeric throws D1001 here
        return !Number.isInteger(val) ? Number(val.toPrecision(15)) : val;
      }
      return val && isFunction(val) ? '' : val;
    });
  } catch {
    return NOT_SYNC;
  }
}

// ---- The compiler ----

function compileNode(node: unknown): Compiled | undefined {
  if (!isNode(node)) return undefined;
  switch (node.type) {
    case 'number':
      if (!hasOnly(node, ['type', 'value']) || !isFiniteNumber(node.value)) return undefined;
      return constant(node.value);
    case 'string':
      if (!hasOnly(node, ['type', 'value']) || typeof node.value !== 'string') return undefined;
      return constant(node.value);
    case 'value':
      if (!hasOnly(node, ['type', 'value']) || !(node.value === true || node.value === false || node.value === null)) return undefined;
      return constant(node.value);
    case 'path':
      return compilePath(node);
    case 'unary':
      return node.value === '-' && hasOnly(node, ['type', 'value', 'expression']) ? compileNegate(node) : undefined;
    case 'binary':
      return hasOnly(node, ['type', 'value', 'lhs', 'rhs']) ? compileBinary(node) : undefined;
    case 'block':
      return hasOnly(node, ['type', 'expressions']) ? compileBlock(node) : undefined;
    case 'condition':
      return hasOnly(node, ['type', 'condition', 'then', 'else']) ? compileCondition(node) : undefined;
    default:
      return undefined;
  }
}

function constant(value: unknown): Compiled {
  return { fn: () => value, steps: 1, depth: 1 };
}

/**
 * `a.b.c`: one lookup per name over the scope. jsonata's path walks
 * sequences; with one item each (an array only at the last step, where
 * jsonata returns it as it is) that is a chain of lookups that stops at the
 * first missing field. An array before the last step maps the rest of the
 * path over its items and flattens: NOT_SYNC.
 */
function compilePath(node: Node): Compiled | undefined {
  if (!hasOnly(node, ['type', 'steps']) || !Array.isArray(node.steps) || node.steps.length === 0) return undefined;
  const names: string[] = [];
  for (const step of node.steps as unknown[]) {
    if (!isNode(step) || step.type !== 'name' || typeof step.value !== 'string' || !hasOnly(step, ['type', 'value'])) return undefined;
    names.push(step.value);
  }
  const last = names.length - 1;
  const fn: Closure = (scope) => {
    let value: unknown = scope;
    for (let i = 0; i <= last; i++) {
      value = lookup(value, names[i]!);
      if (value === undefined) return undefined;
      if (i < last && Array.isArray(value)) return NOT_SYNC;
    }
    return value;
  };
  // The path node, then each step once (steps are evaluated one after another, one level down).
  return { fn, steps: 1 + names.length, depth: 2 };
}

function compileNegate(node: Node): Compiled | undefined {
  const operand = compileNode(node.expression);
  if (!operand) return undefined;
  const inner = operand.fn;
  const fn: Closure = (scope) => {
    const v = inner(scope);
    if (v === NOT_SYNC || v === undefined) return v;
    return isFiniteNumber(v) ? -v : NOT_SYNC; // D1002 (or D1001) in jsonata
  };
  return { fn, steps: 1 + operand.steps, depth: 1 + operand.depth };
}

function compileBinary(node: Node): Compiled | undefined {
  const op = node.value;
  if (typeof op !== 'string') return undefined;
  const lhs = compileNode(node.lhs);
  const rhs = compileNode(node.rhs);
  if (!lhs || !rhs) return undefined;
  const l = lhs.fn;
  const r = rhs.fn;
  let fn: Closure;
  if (ARITHMETIC.has(op)) {
    fn = (scope) => {
      const a = l(scope);
      if (a === NOT_SYNC) return NOT_SYNC;
      const b = r(scope);
      if (b === NOT_SYNC) return NOT_SYNC;
      // T2001 / T2002 (and D1001) in jsonata.
      if ((a !== undefined && !isFiniteNumber(a)) || (b !== undefined && !isFiniteNumber(b))) return NOT_SYNC;
      if (a === undefined || b === undefined) return undefined;
      const result = op === '+' ? a + b : op === '-' ? a - b : op === '*' ? a * b : op === '/' ? a / b : a % b;
      // Infinity or NaN: jsonata carries it on (to D1001, T2001 or a JSON null); leave that to it.
      return Number.isFinite(result) ? result : NOT_SYNC;
    };
  } else if (op === '=' || op === '!=') {
    fn = (scope) => {
      const a = l(scope);
      if (a === NOT_SYNC) return NOT_SYNC;
      const b = r(scope);
      if (b === NOT_SYNC) return NOT_SYNC;
      if (a === undefined || b === undefined) return false;
      return op === '=' ? isDeepEqual(a, b) : !isDeepEqual(a, b);
    };
  } else if (COMPARISON.has(op)) {
    fn = (scope) => {
      const a = l(scope);
      if (a === NOT_SYNC) return NOT_SYNC;
      const b = r(scope);
      if (b === NOT_SYNC) return NOT_SYNC;
      const ta = typeof a;
      const tb = typeof b;
      // T2010: not comparable; T2009: a string against a number.
      if (!(ta === 'undefined' || ta === 'string' || ta === 'number') || !(tb === 'undefined' || tb === 'string' || tb === 'number')) return NOT_SYNC;
      if (a === undefined || b === undefined) return undefined;
      if (ta !== tb) return NOT_SYNC;
      const x = a as string | number;
      const y = b as string | number;
      return op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y;
    };
  } else if (op === 'and' || op === 'or') {
    // jsonata evaluates the right side only when the left does not decide.
    fn = (scope) => {
      const a = l(scope);
      if (a === NOT_SYNC) return NOT_SYNC;
      const la = boolean(a);
      if (la === NOT_SYNC) return NOT_SYNC;
      if (op === 'and' ? !la : la === true) return op === 'or';
      const b = r(scope);
      if (b === NOT_SYNC) return NOT_SYNC;
      const lb = boolean(b);
      if (lb === NOT_SYNC) return NOT_SYNC;
      return lb === true;
    };
  } else if (op === '&') {
    fn = (scope) => {
      const a = l(scope);
      if (a === NOT_SYNC) return NOT_SYNC;
      const b = r(scope);
      if (b === NOT_SYNC) return NOT_SYNC;
      const sa = a === undefined ? '' : toText(a);
      if (sa === NOT_SYNC) return NOT_SYNC;
      const sb = b === undefined ? '' : toText(b);
      if (sb === NOT_SYNC) return NOT_SYNC;
      return sa.concat(sb);
    };
  } else return undefined; // `..`, `in` and anything newer
  return { fn, steps: 1 + lhs.steps + rhs.steps, depth: 1 + Math.max(lhs.depth, rhs.depth) };
}

/** `(a; b; c)`: each in turn, the last one's value. */
function compileBlock(node: Node): Compiled | undefined {
  if (!Array.isArray(node.expressions)) return undefined;
  const parts: Compiled[] = [];
  for (const e of node.expressions as unknown[]) {
    const c = compileNode(e);
    if (!c) return undefined;
    parts.push(c);
  }
  const fns = parts.map((p) => p.fn);
  const fn: Closure = (scope) => {
    let value: unknown;
    for (const f of fns) {
      value = f(scope);
      if (value === NOT_SYNC) return NOT_SYNC;
    }
    return value;
  };
  return { fn, steps: 1 + parts.reduce((n, p) => n + p.steps, 0), depth: 1 + parts.reduce((d, p) => Math.max(d, p.depth), 0) };
}

function compileCondition(node: Node): Compiled | undefined {
  const cond = compileNode(node.condition);
  const then = compileNode(node.then);
  const otherwise = node.else === undefined ? undefined : compileNode(node.else);
  if (!cond || !then || (node.else !== undefined && !otherwise)) return undefined;
  const c = cond.fn;
  const t = then.fn;
  const e = otherwise?.fn;
  const fn: Closure = (scope) => {
    const v = c(scope);
    if (v === NOT_SYNC) return NOT_SYNC;
    const b = boolean(v);
    if (b === NOT_SYNC) return NOT_SYNC;
    if (b) return t(scope);
    return e ? e(scope) : undefined;
  };
  return {
    fn,
    steps: 1 + cond.steps + then.steps + (otherwise?.steps ?? 0),
    depth: 1 + Math.max(cond.depth, then.depth, otherwise?.depth ?? 0),
  };
}

/**
 * The synchronous plan of an expression's syntax tree (jsonata's `ast()`),
 * or undefined when the expression is outside the subset (jsonata evaluates
 * it, as before).
 */
export function planSync(ast: unknown): SyncPlan | undefined {
  const compiled = compileNode(ast);
  if (!compiled) return undefined;
  // One more step: the meter charges once when an evaluation starts.
  return { run: compiled.fn, steps: compiled.steps + 1, depth: compiled.depth };
}
