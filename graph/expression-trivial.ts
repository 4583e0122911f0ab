/**
 * The syntax tree of a trivial expression, without jsonata's parser.
 *
 * Most expressions in a graph are a literal (`3`, `"eu"`, `true`) or a plain
 * path (`input.order.id`, `steps.reserve`), and each step of a graph has its
 * own. jsonata builds a new parser, with its whole symbol table, for every
 * expression it parses: about 60 µs of CPU, paid once per expression in each
 * workflow thread (the compile cache in graph/expression.ts is per thread),
 * and again by every replay worker. For those forms this module gives the tree
 * jsonata would give, node for node (the test compares it with jsonata's over
 * generated sources); anything else, or anything doubtful, is left to jsonata
 * (undefined).
 *
 * Pure: no Node builtins; importable by the workflow bundle.
 */

/** Longer sources go to jsonata: a trivial one is short. */
const MAX_TRIVIAL_LENGTH = 256;

/** A non-negative integer jsonata reads exactly (no leading zero, at most 15 digits). */
const INTEGER = /^(?:0|[1-9][0-9]{0,14})$/;
/** A quoted string without escapes (jsonata would unescape a backslash). */
const STRING = /^(?:"[^"\\]*"|'[^'\\]*')$/;
/** Dot-separated names of ASCII letters, digits and `_`, not starting with a digit. */
const PATH = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$/;
/** Names jsonata reads as something else: operators, literals, `function`. */
const RESERVED = new Set(['and', 'or', 'in', 'true', 'false', 'null', 'function']);

type TrivialAst =
  | { value: number | string | boolean | null; type: 'number' | 'string' | 'value'; position: number }
  | { type: 'path'; steps: Array<{ value: string; type: 'name'; position: number }> };

/** jsonata's syntax tree of `source` when it is a literal or a plain path, else undefined. */
export function trivialAst(source: string): TrivialAst | undefined {
  const end = source.length;
  if (end === 0 || end > MAX_TRIVIAL_LENGTH) return undefined;
  if (INTEGER.test(source)) return { value: Number(source), type: 'number', position: end };
  if (STRING.test(source)) return { value: source.slice(1, -1), type: 'string', position: end };
  if (source === 'true' || source === 'false') return { value: source === 'true', type: 'value', position: end };
  if (source === 'null') return { value: null, type: 'value', position: end };
  if (!PATH.test(source)) return undefined;
  const steps: Array<{ value: string; type: 'name'; position: number }> = [];
  let position = 0;
  for (const name of source.split('.')) {
    if (RESERVED.has(name)) return undefined;
    position += name.length;
    steps.push({ value: name, type: 'name', position });
    position += 1; // the dot
  }
  return { type: 'path', steps };
}
