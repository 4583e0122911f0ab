/**
 * The synchronous expression path (graph/expression-sync.ts) against jsonata
 * itself, and the scope-size guard summed from parts (graph/expression-size.ts)
 * against the full serialisation it replaces. No servers: pure modules.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import jsonata from 'jsonata';
import {
  compileExpression,
  evaluateExpression,
  evaluateExpressionNow,
  evaluateMappingNow,
  EXPRESSION_LIMITS,
  ExpressionError,
  isThenable,
  type EvaluationGuards,
  type ExpressionScope,
} from '../graph/expression';
import { scopeJsonBytes, scopeSizeCounters, setMember, utf8ByteLength } from '../graph/expression-size';
import { NOT_SYNC, planSync } from '../graph/expression-sync';
import { trivialAst } from '../graph/expression-trivial';
import { DEFAULT_RUN_LIMITS } from '../graph/limits';
import { projectRoot } from '../db/paths';

const site = { stepId: 's', field: 'f' };
const guards: EvaluationGuards = { budget: DEFAULT_RUN_LIMITS.expression };

/** The outcome of one evaluation: a value, or an error's code and message. */
type Outcome = { value: unknown } | { code: string | undefined; message: string };

async function outcome(run: () => unknown): Promise<Outcome> {
  try {
    const v = run();
    return { value: isThenable(v) ? await v : v };
  } catch (err) {
    if (!(err instanceof ExpressionError)) throw err;
    return { code: err.jsonataCode, message: err.message };
  }
}

function scopeOf(parts: Partial<ExpressionScope> & Record<string, unknown>): ExpressionScope {
  return { input: {}, steps: {}, vars: {}, run: { runId: 'r', tenant: 't', version: 'v', definition: 'd', startedAt: '2026-01-01T00:00:00.000Z' }, ...parts } as ExpressionScope;
}

// ---- Generators: subset expressions and scopes they read ----

const NAMES = ['a', 'b', 'x', 'n', 'list', 'toString', 'odd key'] as const;
const nameText = (n: string) => (/^[a-z][a-zA-Z]*$/.test(n) ? n : `\`${n}\``);

const numbers = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }),
  fc.constantFrom(0, -0, 1, -1, 0.1, 0.2, 2.5, 1e308, -1e308, 2 ** 53, 1e-7, 123456789.123),
);
const strings = fc.oneof(fc.constantFrom('', 'a', 'b', 'ab', '0', '1', 'é', '\ud83d\ude00', 'true', ' '), fc.string({ maxLength: 6 }));
const primitive = fc.oneof(numbers, strings, fc.boolean(), fc.constant(null));

/** JSON values with the names above as keys: nested objects, arrays (anywhere along a path), and jsonata's function markers. */
const json: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { arbitrary: primitive, weight: 40 },
    { arbitrary: fc.array(tie('value'), { maxLength: 3 }), weight: 10 },
    { arbitrary: fc.dictionary(fc.constantFrom(...NAMES), tie('value'), { maxKeys: 4 }), weight: 20 },
    { arbitrary: fc.constant({ _jsonata_lambda: true, a: 1 }), weight: 1 },
  ),
})).value;

const scopes = fc
  .record({
    input: json,
    steps: fc.dictionary(fc.constantFrom('s1', 's2'), json, { maxKeys: 2 }),
    vars: fc.dictionary(fc.constantFrom(...NAMES), json, { maxKeys: 5 }),
  })
  .map((p) => scopeOf(p));

function numberText(n: number): string {
  return Object.is(n, -0) ? '0' : String(n);
}

const pathText = fc
  .tuple(fc.constantFrom('input', 'vars', 'steps.s1', 'steps.s2', 'run', 'nope', 'vars.a', 'input.a'), fc.array(fc.constantFrom(...NAMES), { maxLength: 2 }))
  .map(([head, rest]) => [head, ...rest.map(nameText)].join('.'));

const OPS = ['+', '-', '*', '/', '%', '=', '!=', '<', '<=', '>', '>=', 'and', 'or', '&'] as const;

const expressions: fc.Arbitrary<string> = fc.letrec<{ e: string }>((tie) => ({
  e: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { arbitrary: numbers.map(numberText), weight: 4 },
    { arbitrary: strings.map((s) => JSON.stringify(s)), weight: 2 },
    { arbitrary: fc.constantFrom('true', 'false', 'null'), weight: 2 },
    { arbitrary: pathText, weight: 8 },
    { arbitrary: tie('e').map((e) => `-(${e})`), weight: 2 },
    { arbitrary: fc.tuple(tie('e'), fc.constantFrom(...OPS), tie('e'), fc.boolean()).map(([l, op, r, paren]) => (paren ? `(${l} ${op} ${r})` : `${l} ${op} ${r}`)), weight: 8 },
    { arbitrary: fc.tuple(tie('e'), tie('e'), fc.option(tie('e'), { nil: undefined })).map(([c, t, e]) => `(${c} ? ${t}${e === undefined ? '' : ` : ${e}`})`), weight: 2 },
    { arbitrary: fc.array(tie('e'), { minLength: 1, maxLength: 2 }).map((es) => `(${es.join('; ')})`), weight: 1 },
  ),
})).e;

/** Run `check` over generated subset expressions (that jsonata parses) and scopes. */
async function forGenerated(numRuns: number, seed: number, check: (source: string, parsed: jsonata.Expression, scope: ExpressionScope) => Promise<void>): Promise<void> {
  await fc.assert(
    fc.asyncProperty(expressions, scopes, async (source, scope) => {
      let parsed: jsonata.Expression;
      try {
        parsed = jsonata(source);
      } catch {
        return; // the generator can join tokens into something jsonata does not parse: nothing to compare
      }
      await check(source, parsed, scope);
    }),
    { numRuns, seed },
  );
}

describe('sync expression path', () => {
  it('equals jsonata on 10,000 generated subset expressions and scopes (value, or error code and message)', async function () {
    this.timeout(120_000);
    let sync = 0;
    let fellBack = 0;
    let rawCompared = 0;
    await forGenerated(10_000, 1616, async (source, parsed, scope) => {
        const plan = planSync(parsed.ast());
        assert.ok(plan, `in the subset but not planned: ${source}`);
        // Raw values, before pinflow's JSON conversion: the closure against jsonata's evaluator.
        const raw = plan.run(scope);
        if (raw !== NOT_SYNC) {
          const expected = await parsed.evaluate(scope).then(
            (v: unknown) => ({ v }),
            (err: { code?: string }) => ({ err: err.code }),
          );
          assert.deepStrictEqual({ v: raw }, expected, `raw value of ${source}`);
          rawCompared++;
        }
        // Through the guarded entry points the interpreter uses.
        const viaNow = await outcome(() => {
          const v = evaluateExpressionNow(source, scope, site, guards);
          if (isThenable(v)) fellBack++;
          else sync++;
          return v;
        });
        const viaJsonata = await outcome(() => evaluateExpression(source, scope, site, guards));
        assert.deepStrictEqual(viaNow, viaJsonata, `${source} over ${JSON.stringify(scope)}`);
    });
    // A test that cannot fail is a defect: most cases must have taken the sync path.
    assert.ok(sync > 5_000, `sync path taken ${sync} times, fell back ${fellBack} times`);
    assert.ok(rawCompared > 5_000, `raw comparisons: ${rawCompared}`);
    assert.ok(fellBack > 100, `some cases must fall back to jsonata (errors, arrays on paths): ${fellBack}`);
  });

  const edge: Array<[string, Partial<ExpressionScope> & Record<string, unknown>, unknown]> = [
    ['vars.x + 1', { vars: { x: 41 } }, 42],
    ['vars.x % 2 = 0', { vars: { x: 7 } }, false],
    ['vars.missing + 1', { vars: {} }, null],
    ['vars.missing = vars.missing', {}, false],
    ['vars.missing != 1', {}, false],
    ['vars.missing < 1', {}, null],
    ['vars.list', { vars: { list: [5] } }, [5]],
    ['vars.list', { vars: { list: [] } }, []],
    ['vars.list = vars.same', { vars: { list: [5, { a: [] }], same: [5, { a: [] }] } }, true],
    ['vars.toString', { vars: {} }, null],
    ['vars.f.a', { vars: { f: { _jsonata_lambda: true, a: 1 } } }, null],
    ['-vars.z', { vars: { z: 0 } }, 0],
    ['"n" & vars.n', { vars: { n: 0.1 + 0.2 } }, 'n0.3'],
    ['"" & vars.o', { vars: { o: { b: 1.5, a: [true, null] } } }, '{"b":1.5,"a":[true,null]}'],
    ['vars.a and vars.b', { vars: { a: 'x', b: [0, 1] } }, true],
    ['vars.a or vars.b', { vars: { a: {}, b: 0 } }, false],
    ['vars.x > 2 ? "big" : "small"', { vars: { x: 3 } }, 'big'],
    ['vars.x > 2 ? "big"', { vars: { x: 1 } }, null],
    ['input.`odd key`.n * 2', { input: { 'odd key': { n: -2.5 } } }, -5],
    ['("a"; "b")', {}, 'b'],
  ];
  for (const [source, parts, expected] of edge) {
    it(`evaluates ${source} synchronously to ${JSON.stringify(expected)}, as jsonata does`, async () => {
      const scope = scopeOf(parts);
      const now = evaluateExpressionNow(source, scope, site, guards);
      assert.equal(isThenable(now), false, 'expected the sync path');
      assert.deepStrictEqual(now, expected);
      assert.deepStrictEqual(await evaluateExpression(source, scope, site, guards), expected);
    });
  }

  const fallBack: Array<[string, Partial<ExpressionScope> & Record<string, unknown>, string | undefined]> = [
    ['vars.s + 1', { vars: { s: 'x' } }, 'T2001'],
    ['1 + vars.s', { vars: { s: true } }, 'T2002'],
    ['vars.s < 1', { vars: { s: 'x' } }, 'T2009'],
    ['vars.o < 1', { vars: { o: {} } }, 'T2010'],
    ['-vars.s', { vars: { s: 'x' } }, 'D1002'],
    ['1e308 * 10 + 1', {}, 'D1001'],
    ['vars.l.a', { vars: { l: [{ a: 1 }, { a: 2 }] } }, undefined],
    ['0 / 0', {}, undefined],
  ];
  for (const [source, parts, code] of fallBack) {
    it(`hands ${source} to jsonata at run time${code ? `, which fails with ${code}` : ''}`, async () => {
      const scope = scopeOf(parts);
      const now = evaluateExpressionNow(source, scope, site, guards);
      assert.equal(isThenable(now), true, 'expected jsonata');
      const a = await outcome(() => now);
      const b = await outcome(() => evaluateExpression(source, scope, site, guards));
      assert.deepStrictEqual(a, b);
      if (code) assert.equal((a as { code?: string }).code, code);
      else assert.ok('value' in a);
    });
  }

  it('routes expressions outside the subset to jsonata, at compile time', () => {
    for (const source of ['$sum(vars.l)', 'vars.l[0]', 'vars.*', '($x := 1; $x)', 'vars.a in [1]', '[1, 2]', '{"a": 1}', 'vars.l[]', '$', '$$.vars', '[1..3]', 'vars.**', '$nowIso()', 'vars.a ~> $string()', 'vars.l^(a)', 'vars.a.%.b']) {
      let plan;
      try {
        plan = planSync(jsonata(source).ast());
      } catch (err) {
        assert.fail(`${source} does not parse: ${String(err)}`);
      }
      assert.equal(plan, undefined, source);
      const v = evaluateExpressionNow(source, scopeOf({ vars: { l: [{ a: 1 }], a: 1 } }), site, guards);
      assert.equal(isThenable(v), true, source);
      (v as Promise<unknown>).catch(() => undefined);
    }
  });

  it('takes the sync path only within the run budget (the steps jsonata would charge)', async () => {
    const source = 'vars.x + 1';
    const plan = planSync(jsonata(source).ast())!;
    // One per evaluation, then +, the path, its two names, the literal: what jsonata's meter charges here.
    assert.equal(plan.steps, 6);
    const scope = scopeOf({ vars: { x: 1 } });
    const tight: EvaluationGuards = { budget: { ...DEFAULT_RUN_LIMITS.expression, maxSteps: plan.steps - 1 } };
    const now = evaluateExpressionNow(source, scope, site, tight);
    assert.equal(isThenable(now), true, 'over its bound: jsonata decides');
    const refused = await outcome(() => now);
    assert.equal((refused as { code?: string }).code, 'EXPRESSION_BUDGET_EXCEEDED');
    assert.deepStrictEqual(refused, await outcome(() => evaluateExpression(source, scope, site, tight)));
    assert.equal(evaluateExpressionNow(source, scope, site, { budget: { ...DEFAULT_RUN_LIMITS.expression, maxSteps: plan.steps } }), 2);
  });

  it('bounds what jsonata charges: within a budget of exactly the plan steps and depth, jsonata never runs over', async () => {
    let checked = 0;
    await forGenerated(1_000, 1617, async (source, parsed, scope) => {
        const plan = planSync(parsed.ast())!;
        if (plan.run(scope) === NOT_SYNC) return;
        const exact: EvaluationGuards = { budget: { ...DEFAULT_RUN_LIMITS.expression, maxSteps: plan.steps, maxDepth: plan.depth } };
        const r = await outcome(() => evaluateExpression(source, scope, site, exact));
        assert.notEqual((r as { code?: string }).code, 'EXPRESSION_BUDGET_EXCEEDED', `${source}: ${JSON.stringify(r)}`);
        checked++;
    });
    assert.ok(checked > 500, `checked ${checked}`);
  });

  it('keeps the guards: input size, output size, storability', async () => {
    const big = 'x'.repeat(EXPRESSION_LIMITS.maxInputBytes);
    const tooBig = scopeOf({ vars: { big } });
    const a = await outcome(() => evaluateExpressionNow('1', tooBig, site, guards));
    const b = await outcome(() => evaluateExpression('1', tooBig, site, guards));
    assert.deepStrictEqual(a, b);
    assert.equal((a as { code: string }).code, 'INPUT_TOO_LARGE');

    const half = scopeOf({ vars: { s: 'y'.repeat(200_000) } });
    const c = await outcome(() => evaluateExpressionNow('vars.s & vars.s', half, site, guards));
    assert.deepStrictEqual(c, await outcome(() => evaluateExpression('vars.s & vars.s', half, site, guards)));
    assert.equal((c as { code: string }).code, 'OUTPUT_TOO_LARGE');

    const nul = scopeOf({ vars: { s: 'a\u0000b' } });
    const stored = { ...guards, stored: true };
    const d = await outcome(() => evaluateExpressionNow('vars.s', nul, site, stored));
    assert.deepStrictEqual(d, await outcome(() => evaluateExpression('vars.s', nul, site, stored)));
    assert.equal((d as { code: string }).code, 'VALUE_NOT_STORABLE');
  });

  it('evaluates a mapping synchronously when every expression is in the subset, else in order through a promise', async () => {
    const scope = scopeOf({ vars: { x: 2, l: [{ a: 1 }, { a: 2 }] } });
    assert.deepStrictEqual(evaluateMappingNow({ b: 'vars.x * 3', a: ['1', 'true', { c: '"c"' }], n: 7 }, scope, site, guards), { a: [1, true, { c: 'c' }], b: 6, n: 7 });
    const mixed = evaluateMappingNow({ a: 'vars.x', b: 'vars.l.a', c: '$sum(vars.l.a)', d: 'vars.x + 1' }, scope, site, guards);
    assert.equal(isThenable(mixed), true);
    assert.deepStrictEqual(await mixed, { a: 2, b: [1, 2], c: 3, d: 3 });
  });
});

describe('scope-size guard of expressions, summed from parts', () => {
  const full = (scope: unknown) => utf8ByteLength(JSON.stringify(scope));

  it('measures exactly what the full serialisation measures, as steps and vars change through setMember', () => {
    // What JSON.stringify says, or undefined where it throws (a BigInt: not JSON).
    const expected = (scope: unknown) => {
      try {
        return full(scope);
      } catch (err) {
        if (err instanceof TypeError) return undefined;
        throw err;
      }
    };
    const value = fc.oneof({ weight: 12, arbitrary: fc.option(json, { nil: undefined }) }, { weight: 1, arbitrary: fc.bigInt().map((b) => ({ big: b })) });
    fc.assert(
      fc.property(
        scopes,
        fc.array(fc.tuple(fc.constantFrom('steps', 'vars'), fc.constantFrom(...NAMES, 's1', 'é\u2028', '__proto__'), value), { maxLength: 12 }),
        (scope, edits) => {
          assert.equal(scopeJsonBytes(scope), expected(scope));
          for (const [where, key, v] of edits) {
            setMember(scope[where], key, v);
            // A new scope object per step, over the same records (as the interpreter builds it).
            const next = { ...scope };
            assert.equal(scopeJsonBytes(next), expected(next), `after ${where}.${key} = ${typeof v === 'object' && v !== null && 'big' in v ? 'a BigInt' : JSON.stringify(v)}`);
          }
        },
      ),
      { numRuns: 2_000, seed: 16 },
    );
  });

  it('every write to a frame\'s steps or vars in the interpreter goes through setMember (else the guard would measure a stale size)', () => {
    const dir = join(projectRoot(), 'workflows');
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    assert.ok(files.length >= 10, `workflow sources found: ${files.join(', ')}`);
    const direct = [/\b(steps|vars)\[[^\]]+\]\s*(=(?!=)|\+=|-=|\?\?=|\|\|=)/, /Object\.assign\(\s*[\w.]*\b(steps|vars)\b/, /delete\s+[\w.]*\b(steps|vars)\[/];
    const offending: string[] = [];
    for (const file of files) {
      readFileSync(join(dir, file), 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (direct.some((re) => re.test(line))) offending.push(`workflows/${file}:${i + 1}: ${line.trim()}`);
        });
    }
    assert.deepEqual(offending, []);
    // The pattern does see a direct write.
    assert.ok(direct[0]!.test('f.steps[step.id] = out;') && direct[1]!.test('Object.assign(f.vars, values);'));
  });

  it('gives the old verdict at the boundary: a scope of exactly maxInputBytes runs, one byte more is INPUT_TOO_LARGE', async () => {
    const base = scopeOf({ vars: { pad: '' } });
    const frame = full(base);
    const at = scopeOf({ vars: { pad: 'é'.repeat(1000) + 'x'.repeat(EXPRESSION_LIMITS.maxInputBytes - frame - 2000) } });
    assert.equal(full(at), EXPRESSION_LIMITS.maxInputBytes);
    assert.equal(scopeJsonBytes(at), EXPRESSION_LIMITS.maxInputBytes);
    assert.equal(evaluateExpressionNow('1', at, site, guards), 1);
    assert.equal(await evaluateExpression('1', at, site, guards), 1);
    setMember(at.vars, 'more', 0); // `,"more":0` is 9 bytes: the next scope is over
    const over = { ...at };
    const bytes = full(over);
    assert.equal(bytes, EXPRESSION_LIMITS.maxInputBytes + 9);
    const a = await outcome(() => evaluateExpressionNow('1', over, site, guards));
    const b = await outcome(() => evaluateExpression('1', over, site, guards));
    assert.deepStrictEqual(a, b);
    assert.deepStrictEqual(a, {
      code: 'INPUT_TOO_LARGE',
      message: `step "s" field "f": expression "1" cannot run: its input (input, steps, vars, run) is ${bytes} bytes of JSON, over the limit of ${EXPRESSION_LIMITS.maxInputBytes} bytes`,
    });
  });

  it('serialises each step output once and walks each record once over a long run: linear in the run, not quadratic', () => {
    const steps: Record<string, unknown> = {};
    const vars: Record<string, unknown> = {};
    const input = { order: { id: 'o-1', lines: [1, 2, 3] } };
    const run = scopeOf({}).run; // one per run, as RunContext.scope keeps it
    const before = scopeSizeCounters.serialisedUnits;
    const walkedBefore = scopeSizeCounters.walkedMembers;
    const n = 2_000;
    for (let i = 0; i < n; i++) {
      const scope = scopeOf({ input, steps, vars, run });
      assert.ok(scopeJsonBytes(scope)! > 0);
      setMember(steps, `s${i}`, { i, note: `output of step ${i}`, list: [i, i + 1] });
      setMember(vars, 'x', i); // replaced every step
    }
    const final = full(scopeOf({ input, steps, vars }));
    const serialised = scopeSizeCounters.serialisedUnits - before;
    // Each output once, plus the run record and small parts per step; the old guard serialised about n * final / 2.
    assert.ok(serialised < 2 * final, `serialised ${serialised} units for a final scope of ${final} bytes`);
    assert.ok(final * (n / 4) > 50 * serialised, 'the old, quadratic figure is far above');
    // The records are walked once, then tracked: a few members per step (the scope's own), not the run's length.
    const walked = scopeSizeCounters.walkedMembers - walkedBefore;
    assert.ok(walked <= 5 * n, `walked ${walked} members over ${n} steps`);
  });
});

describe('trivial expressions: the syntax tree without jsonata\'s parser', () => {
  const name = fc.oneof(
    fc.constantFrom('input', 'steps', 'vars', 'run', 'x', 's0', 'a_b', '_u', 'and', 'or', 'in', 'true', 'false', 'null', 'function', 'And', 'inx', '9a', '$x', 'é', 'a-b', ''),
    fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/),
  );
  const source = fc.oneof(
    fc.array(name, { minLength: 1, maxLength: 5 }).map((names) => names.join('.')),
    fc.oneof(fc.nat(), fc.integer(), fc.double({ noNaN: true }), fc.bigInt({ min: 0n, max: 10n ** 20n })).map(String),
    fc.stringMatching(/^0[0-9]{1,3}$/),
    // Any UTF-16 inside the quotes: control characters, lone surrogates, line separators, astral characters.
    fc.string({ unit: 'binary', maxLength: 12 }).map((t) => `"${t}"`),
    fc.string({ unit: 'binary', maxLength: 12 }).map((t) => `'${t}'`),
    fc.constantFrom('true', 'false', 'null', ' x', 'x ', 'x.', '.x', 'x..y', 'x.y ', '"a"b"', "'a'b'", '""', "''", '-1', '1e3', '1.5', 'x[0]', 'x.y.z'),
    fc.string({ maxLength: 10 }),
  );

  it('gives exactly jsonata\'s tree for what it accepts, and leaves the rest to jsonata', () => {
    let accepted = 0;
    fc.assert(
      fc.property(source, (src) => {
        const tree = trivialAst(src);
        if (tree === undefined) return;
        accepted++;
        // Own members compared (jsonata's tokens carry its parser's symbol as prototype; every check reads own members).
        assert.deepStrictEqual(JSON.parse(JSON.stringify(tree)), JSON.parse(JSON.stringify(jsonata(src).ast())), src);
      }),
      { numRuns: 10_000, seed: 17 },
    );
    assert.ok(accepted > 2_000, `accepted ${accepted} of 10,000 generated sources`);
    // What it leaves to jsonata: reserved names, numbers it might not read exactly, escapes, spaces.
    for (const src of ['and', 'x.in', 'true.x', '0123', '1234567890123456', '-1', '1.5', '"a\\"b"', ' x', 'x[0]', '$x', '']) assert.equal(trivialAst(src), undefined, src);
  });

  it('evaluates a trivial expression as before: same values, and a syntax error still names jsonata\'s code', async () => {
    const scope = scopeOf({ input: { k: 'v', n: [1, 2] }, vars: { x: 3 } });
    for (const [src, want] of [['input.k', 'v'], ['vars.x', 3], ['42', 42], ['"eu"', 'eu'], ['true', true], ['null', null], ['input.n', [1, 2]], ['vars.missing', null]] as const) {
      assert.deepStrictEqual(evaluateExpressionNow(src, scope, site, guards), want, src);
      assert.deepStrictEqual(await evaluateExpression(src, scope, site, guards), want, src);
    }
    assert.throws(() => compileExpression('x.', site), (err: ExpressionError) => err.jsonataCode === 'S0207' || /does not compile/.test(err.message));
  });
});
