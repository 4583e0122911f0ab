/**
 * The static check on regular expressions that pinflow runs on anything it
 * did not write itself: regex literals in expressions (publish, correlation
 * rules, and in the interpreter since FLAGS.EXPRESSION_BUDGET) and `pattern`
 * keywords in `/deploy/check` manifests. JavaScript's engine backtracks, so a
 * pattern such as `^(a+)+$` takes seconds on 30 characters and years on 60;
 * a check must refuse it before it ever runs.
 *
 * Two rules, both on the parsed pattern (no evaluation, so the verdict is
 * instant and the same everywhere):
 * - `safe-regex2` (pinned): no nested quantifier (star height above 1) and at
 *   most 25 quantifiers;
 * - an alternation under a quantifier must have alternatives that start with
 *   distinct literal characters (`(a|aa)*` and `(\w|\d)+` are refused:
 *   overlapping alternatives backtrack exponentially just like nesting;
 *   rewrite them as one character class or a non-repeated group).
 * Pure: importable by the workflow bundle.
 */
import safeRegex from 'safe-regex2';
import tokenize, { types, type Token, type Tokens } from 'ret';

/** Quantifiers accepted in one pattern (safe-regex2's default). */
export const REGEX_QUANTIFIERS_MAX = 25;
/** Longest pattern accepted, in characters. */
export const REGEX_SOURCE_MAX = 1_000;

/** The first literal character an alternative must start with, or undefined when it does not start with one. */
function firstChar(option: Token[]): number | undefined {
  const head = option[0];
  return head?.type === types.CHAR ? head.value : undefined;
}

/** An alternation under a quantifier whose alternatives can start alike (or not with a literal). */
function overlappingAlternation(root: Tokens): boolean {
  const stack: Array<{ token: Tokens; repeated: boolean }> = [{ token: root, repeated: false }];
  while (stack.length > 0) {
    const { token, repeated } = stack.pop()!;
    if (token.type === types.REPETITION) {
      // `x?` and `x{0,1}` do not repeat.
      stack.push({ token: token.value, repeated: repeated || token.max > 1 });
      continue;
    }
    if (token.type !== types.ROOT && token.type !== types.GROUP) continue;
    if (token.options) {
      if (repeated && token.options.length > 1) {
        const firsts = token.options.map(firstChar);
        if (firsts.some((c) => c === undefined) || new Set(firsts).size !== firsts.length) return true;
      }
      for (const option of token.options) for (const t of option) stack.push({ token: t, repeated });
    }
    for (const t of token.stack ?? []) stack.push({ token: t, repeated });
  }
  return false;
}

/** Why a pattern may backtrack catastrophically (or cannot be analysed), or undefined when it is safe to run. */
export function regexProblem(source: string): string | undefined {
  if (source.length > REGEX_SOURCE_MAX) return `it is ${source.length} characters long; allowed: at most ${REGEX_SOURCE_MAX}`;
  let parsed: Tokens;
  try {
    parsed = tokenize(source);
  } catch (err) {
    return `it cannot be analysed (${(err as Error).message})`;
  }
  if (!safeRegex(source, { limit: REGEX_QUANTIFIERS_MAX })) {
    return `it nests quantifiers (like (a+)+) or has more than ${REGEX_QUANTIFIERS_MAX} of them, so it can backtrack exponentially`;
  }
  if (overlappingAlternation(parsed)) {
    return 'it repeats an alternation whose alternatives can start with the same character (like (a|ab)* or (\\w|\\d)+), so it can backtrack exponentially; use one character class, or alternatives that start with distinct literal characters';
  }
  return undefined;
}

/** What a safe pattern looks like, for error messages. */
export const REGEX_ALLOWED =
  'a pattern without nested quantifiers, with at most 25 quantifiers, whose repeated alternations start with distinct literal characters';
