import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  ALLOWED_FUNCTIONS,
  checkExpression,
  compileExpression,
  DENIED_FUNCTIONS,
  evaluateExpression,
  evaluateMapping,
  EXPRESSION_LIMITS,
  ExpressionError,
  PINFLOW_FUNCTIONS,
  type ExpressionScope,
  type ExpressionSite,
  unstorableValue,
} from '../graph/expression';
import { DEFAULT_RUN_LIMITS } from '../graph/limits';

const site: ExpressionSite = { stepId: 'x', field: 'input.a' };

function scopeWith(input: unknown, vars: Record<string, unknown> = {}): ExpressionScope {
  return { input, steps: {}, vars, run: { runId: 'run-1', tenant: 't', version: 'v1', definition: 'd', startedAt: '2024-01-01T00:00:00.000Z' } };
}

function compileError(source: string, where: ExpressionSite = site): ExpressionError {
  try {
    compileExpression(source, where);
  } catch (err) {
    assert.ok(err instanceof ExpressionError, `expected ExpressionError, got ${String(err)}`);
    return err;
  }
  assert.fail(`expression ${JSON.stringify(source)} compiled`);
}

async function rejection(promise: Promise<unknown>): Promise<ExpressionError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ExpressionError, `expected ExpressionError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected an ExpressionError');
}

const evaluate = (source: string, input: unknown = {}) => evaluateExpression(source, scopeWith(input), site);

describe('expression: function allowlist', () => {
  it('evaluates allowed built-ins and functions the expression binds itself', async () => {
    assert.equal(await evaluate('$sum([1,2,3])'), 6);
    assert.equal(await evaluate('$uppercase("a")'), 'A');
    assert.equal(await evaluate('($f := function($x){ $x * 2 }; $f(3))'), 6);
    assert.deepEqual(await evaluate('$map([1,2], function($v){ $v + 1 })'), [2, 3]);
    assert.equal(await evaluate('input.name ~> $uppercase', { name: 'ada' }), 'ADA');
    assert.equal(await evaluate('($g := $lowercase; $g("AB"))'), 'ab');
  });

  it('provides $nowIso() as the current time in ISO-8601', async () => {
    const before = Date.now();
    const value = await evaluate('$nowIso()');
    assert.equal(typeof value, 'string');
    assert.match(value as string, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    const at = Date.parse(value as string);
    assert.ok(at >= before && at <= Date.now(), `${value as string} is not now`);
  });

  it('exports a sorted allowlist that includes the pinflow helpers and excludes every denied function', () => {
    assert.deepEqual([...ALLOWED_FUNCTIONS], [...ALLOWED_FUNCTIONS].sort());
    assert.deepEqual([...PINFLOW_FUNCTIONS], ['$nowIso']);
    for (const name of ['$sum', '$uppercase', '$now', '$millis', '$nowIso', '$formatBase', '$decodeUrl']) assert.ok(ALLOWED_FUNCTIONS.includes(name), name);
    assert.deepEqual(Object.keys(DENIED_FUNCTIONS).sort(), ['$base64decode', '$base64encode', '$clone', '$eval', '$random', '$shuffle']);
    for (const name of Object.keys(DENIED_FUNCTIONS)) assert.ok(!ALLOWED_FUNCTIONS.includes(name), name);
  });

  it('classifies every built-in of the pinned jsonata as allowed or denied', () => {
    const source = readFileSync(require.resolve('jsonata'), 'utf8');
    const builtins = [...source.matchAll(/(?:staticFrame|environment)\.bind\('(\w+)'/g)].map((m) => `$${m[1]!}`);
    assert.ok(builtins.length > 60, `found only ${builtins.length} built-ins`);
    const unclassified = builtins.filter((name) => !ALLOWED_FUNCTIONS.includes(name) && !(name in DENIED_FUNCTIONS));
    assert.deepEqual(unclassified, []);
    const stale = ALLOWED_FUNCTIONS.filter((name) => !builtins.includes(name) && !PINFLOW_FUNCTIONS.includes(name));
    assert.deepEqual(stale, []);
  });

  it('refuses $eval at compile time with the position of the call and the allowed list', () => {
    const err = compileError('$eval("1")');
    assert.equal(err.jsonataCode, 'FUNCTION_NOT_ALLOWED');
    assert.equal(err.position, 5);
    assert.equal(err.expression, '$eval("1")');
    assert.deepEqual(err.site, site);
    assert.match(
      err.message,
      /^step "x" field "input\.a": function \$eval is not allowed \(evaluates arbitrary code, defeats publish-time validation\); allowed functions are: \$abs, \$append, /,
    );
    assert.ok(err.message.includes('$nowIso'));
  });

  it('refuses $base64encode and $base64decode because the sandbox has no Buffer', () => {
    for (const source of ['$base64encode("x")', '$base64decode("eA==")']) {
      const err = compileError(source);
      assert.equal(err.jsonataCode, 'FUNCTION_NOT_ALLOWED');
      assert.match(err.message, /is not allowed \(needs Buffer, which is absent in the workflow sandbox\)/);
    }
  });

  it('refuses nondeterministic and unnecessary built-ins', () => {
    assert.match(compileError('$random()').message, /function \$random is not allowed \(nondeterministic/);
    assert.match(compileError('$shuffle([1,2])').message, /function \$shuffle is not allowed \(nondeterministic/);
    assert.match(compileError('$clone({})').message, /function \$clone is not allowed \(unnecessary/);
  });

  it('refuses an unknown function as not a known function', () => {
    const err = compileError('$foo(1)');
    assert.equal(err.jsonataCode, 'FUNCTION_NOT_ALLOWED');
    assert.equal(err.position, 4);
    assert.match(err.message, /^step "x" field "input\.a": function \$foo is not a known function; allowed functions are: \$abs, /);
    assert.match(compileError('"a" ~> $bar').message, /function \$bar is not a known function/);
    assert.match(compileError('$foo(?, 1)').message, /function \$foo is not a known function/);
    assert.match(compileError('input.a.$partial()').message, /function \$partial is not a known function/);
  });

  it('refuses a denied function passed as a value, aliased, rebound or applied', () => {
    for (const source of ['$map(["1"], $eval)', '($e := $eval; $e("1"))', '(($eval := function($x){ $x }); $eval("1+1"))', '"1" ~> $eval', 'function($eval){ $eval }']) {
      const err = compileError(source);
      assert.equal(err.jsonataCode, 'FUNCTION_NOT_ALLOWED', source);
      assert.match(err.message, /function \$eval is not allowed/, source);
    }
  });

  it('refuses a disallowed call inside lambdas, predicates, object constructors and conditions', () => {
    for (const source of ['function($x){ $random() }', 'input.items[$random() > 0.5]', '{"a": $random()}', 'input.a ? $random() : 1', 'input{"k": $random()}']) {
      assert.equal(compileError(source).jsonataCode, 'FUNCTION_NOT_ALLOWED', source);
    }
  });

  it('rejects a disallowed function from evaluateExpression and evaluateMapping too', async () => {
    assert.equal((await rejection(evaluate('$eval("1")'))).jsonataCode, 'FUNCTION_NOT_ALLOWED');
    const err = await rejection(evaluateMapping({ a: { b: '$foo()' } }, scopeWith({}), { stepId: 's', field: 'input' }));
    assert.equal(err.jsonataCode, 'FUNCTION_NOT_ALLOWED');
    assert.deepEqual(err.site, { stepId: 's', field: 'input.a.b' });
  });
});

describe('expression: static bounds', () => {
  it('publishes the limits', () => {
    assert.deepEqual({ ...EXPRESSION_LIMITS }, { maxAstNodes: 500, maxAstDepth: 32, maxInputBytes: 1_048_576, maxOutputBytes: 262_144 });
  });

  it('rejects an expression with more syntax-tree nodes than the limit', () => {
    const err = compileError(Array.from({ length: 600 }, () => '1').join('+'));
    assert.equal(err.jsonataCode, 'AST_TOO_LARGE');
    assert.match(err.message, /^step "x" field "input\.a": expression "1\+1\+.*\.\.\." has 1199 syntax-tree nodes, over the limit of 500/);
  });

  it('rejects an expression nested deeper than the limit, and accepts one within it', () => {
    const err = compileError(`${'['.repeat(40)}1${']'.repeat(40)}`);
    assert.equal(err.jsonataCode, 'AST_TOO_DEEP');
    assert.equal(typeof err.position, 'number');
    assert.match(err.message, /nests 41 levels deep .*over the limit of 32$/);
    compileExpression(`${'['.repeat(31)}1${']'.repeat(31)}`, site);
  });

  it('reports absurd nesting as too deep instead of crashing the parser', () => {
    const err = compileError(`${'('.repeat(20_000)}1${')'.repeat(20_000)}`);
    assert.equal(err.jsonataCode, 'AST_TOO_DEEP');
  });

  it('keeps the jsonata code and message format for syntax errors', () => {
    const err = compileError('vars.result.sum * ', { stepId: 'double', field: 'set.doubled' });
    assert.match(err.jsonataCode ?? '', /^S0\d{3}$/);
    assert.equal(typeof err.position, 'number');
    assert.match(err.message, /^step "double" field "set.doubled": expression "vars.result.sum \* " does not compile at position \d+: .*\(jsonata S\d+\)$/);
  });

  it('serialises every ExpressionError with site, expression, code and position', () => {
    assert.deepEqual(compileError('$eval("1")').toJSON(), {
      message: compileError('$eval("1")').message,
      stepId: 'x',
      field: 'input.a',
      expression: '$eval("1")',
      jsonataCode: 'FUNCTION_NOT_ALLOWED',
      position: 5,
    });
  });
});

describe('expression: evaluation caps', () => {
  it('rejects a result over 256 KiB of JSON with its size', async () => {
    const err = await rejection(evaluate('$pad("", input.n)', { n: 300_000 }));
    assert.equal(err.jsonataCode, 'OUTPUT_TOO_LARGE');
    assert.match(err.message, /^step "x" field "input\.a": expression "\$pad\(\\"\\", input\.n\)" produced 300002 bytes of JSON, over the limit of 262144 bytes$/);
  });

  it('accepts a result of exactly 256 KiB of JSON', async () => {
    const value = await evaluate('$pad("", input.n)', { n: EXPRESSION_LIMITS.maxOutputBytes - 2 });
    assert.equal((value as string).length, EXPRESSION_LIMITS.maxOutputBytes - 2);
  });

  it('counts output in UTF-8 bytes, not characters', async () => {
    assert.equal(((await evaluate('$pad("", input.n, "é")', { n: 100_000 })) as string).length, 100_000);
    const err = await rejection(evaluate('$pad("", input.n, "é")', { n: 140_000 }));
    assert.equal(err.jsonataCode, 'OUTPUT_TOO_LARGE');
    assert.match(err.message, /produced 280002 bytes of JSON/);
  });

  it('rejects evaluation when the scope is over 1 MiB of JSON', async () => {
    const err = await rejection(evaluate('1 + 1', { blob: 'x'.repeat(EXPRESSION_LIMITS.maxInputBytes) }));
    assert.equal(err.jsonataCode, 'INPUT_TOO_LARGE');
    assert.equal(err.expression, '1 + 1');
    assert.match(err.message, /^step "x" field "input\.a": expression "1 \+ 1" cannot run: its input \(input, steps, vars, run\) is \d+ bytes of JSON, over the limit of 1048576 bytes$/);
    const fromVars = await rejection(evaluateExpression('1', scopeWith({}, { big: 'é'.repeat(600_000) }), site));
    assert.equal(fromVars.jsonataCode, 'INPUT_TOO_LARGE');
  });

  it('rejects function results as NOT_JSON', async () => {
    for (const [source, message] of [
      ['function($x){ $x }', /produced a function, not JSON$/],
      ['$sum', /produced a function, not JSON$/],
      ['$sum(?)', /produced a function, not JSON$/],
      ['{"f": $sum}', /produced a value that is not JSON: it contains a function$/],
      ['[1, function(){ 2 }]', /produced a value that is not JSON: it contains a function$/],
    ] as const) {
      const err = await rejection(evaluate(source));
      assert.equal(err.jsonataCode, 'NOT_JSON', source);
      assert.match(err.message, message, source);
    }
  });

  it('still returns plain JSON: undefined becomes null, sequences become arrays', async () => {
    assert.equal(await evaluate('input.missing'), null);
    assert.deepEqual(await evaluate('input.items.v', { items: [{ v: 1 }, { v: 2 }] }), [1, 2]);
  });
});

describe('expression: publish-time check', () => {
  it('rejects a constant expression whose result is over the output cap', async () => {
    const joined = await rejection(checkExpression('$join([1..500].$pad("", 600), ",")', site));
    assert.equal(joined.jsonataCode, 'OUTPUT_TOO_LARGE');
    assert.match(joined.message, /produced 300501 bytes of JSON, over the limit of 262144 bytes$/);
    const padded = await rejection(checkExpression('$pad("", 300000)', site));
    assert.equal(padded.jsonataCode, 'OUTPUT_TOO_LARGE');
  });

  it('accepts expressions that read the scope, whose size is unknown at publish', async () => {
    for (const source of ['$pad("", input.n)', '$pad("", vars.n)', '$pad("", $$.input.n)', '$pad("", $count(*))', 'steps.a.b']) {
      await checkExpression(source, site);
    }
  });

  it('accepts small constants, and constants that only fail at run time', async () => {
    await checkExpression('1 + 2', site);
    await checkExpression('$length($pad("", 300000))', site);
    await checkExpression('$error("deliberate")', site);
    await checkExpression('$nowIso()', site);
  });

  it('does not swallow compile-time rejections', async () => {
    assert.equal((await rejection(checkExpression('$eval("1")', site))).jsonataCode, 'FUNCTION_NOT_ALLOWED');
    assert.equal((await rejection(checkExpression('$foo()', site))).jsonataCode, 'FUNCTION_NOT_ALLOWED');
    assert.equal((await rejection(checkExpression(Array.from({ length: 600 }, () => '1').join('+'), site))).jsonataCode, 'AST_TOO_LARGE');
    assert.match((await rejection(checkExpression('1 +', site))).jsonataCode ?? '', /^S0\d{3}$/);
  });

  it('rejects a constant that is not JSON', async () => {
    assert.equal((await rejection(checkExpression('function($x){ $x }', site))).jsonataCode, 'NOT_JSON');
  });

  it('rejects a constant too expensive to evaluate at publish instead of running it', async () => {
    for (const source of ['$pad("", 500000000)', '($f := function($n){ $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000))', '$count([1..2000000])']) {
      const err = await rejection(checkExpression(source, site));
      assert.equal(err.jsonataCode, 'EVALUATION_TOO_EXPENSIVE', source);
      assert.match(err.message, /^step "x" field "input\.a": constant expression .* is too expensive to evaluate at publish: /, source);
    }
  });
});

describe('expression: evaluation budget', () => {
  const budget = (maxSteps: number) => ({ budget: { ...DEFAULT_RUN_LIMITS.expression, maxSteps } });

  it('counts evaluation steps, not time: the same verdict and message on every evaluation', async () => {
    const source = '$sum([1..input.n].($ * 2))';
    assert.equal(await evaluateExpression(source, scopeWith({ n: 100 }), site, budget(10_000)), 10_100);
    const messages = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const err = await rejection(evaluateExpression(source, scopeWith({ n: 100 }), site, budget(150)));
      assert.equal(err.jsonataCode, 'EXPRESSION_BUDGET_EXCEEDED');
      messages.add(err.message);
    }
    assert.deepEqual([...messages], [`step "x" field "input.a": expression "${source}" ran over its evaluation budget: it took more than 150 evaluation steps`]);
    // One step more or less decides, deterministically.
    let steps = 1;
    while (await evaluateExpression(source, scopeWith({ n: 100 }), site, budget(steps)).then(() => false, () => true)) steps++;
    for (let i = 0; i < 3; i++) await evaluateExpression(source, scopeWith({ n: 100 }), site, budget(steps));
    assert.equal((await rejection(evaluateExpression(source, scopeWith({ n: 100 }), site, budget(steps - 1)))).jsonataCode, 'EXPRESSION_BUDGET_EXCEEDED');
  });

  it('stops the hostile forms under the default budget: recursion on input, deep recursion, huge reduce, $pad, items, $distinct, sharing', async () => {
    for (const [source, input, reason] of [
      ['($f := function($x){ $f($x) }; $f(input.x))', { x: 1 }, /more than 5000 evaluation steps/],
      ['($f := function($n){ $n = 0 ? 0 : 1 + $f($n - 1) }; $f(input.n))', { n: 200_000 }, /recursed deeper than the depth budget \(1000\)/],
      ['$reduce([1..input.n], function($a, $b){ $a + $b })', { n: 3_000_000 }, /over the item budget \(200000\)/],
      ['$pad("", input.n)', { n: 4e8 }, /\$pad to width 400000000 is over the string budget of 1048576 characters/],
      ['$distinct(input.xs)', { xs: Array.from({ length: 20_000 }, (_, i) => i) }, /more than 5000 evaluation steps/],
      ['$join(input.xs.$pad("", 20000), "")', { xs: Array.from({ length: 100 }, (_, i) => i) }, /\$join would build 2000000 characters/],
      ['$contains(input.s, /ab/)', { s: 'a'.repeat(20_000) }, /regular expression would run on 20000 characters, over the regex input budget of 10000/],
      ['($f := function($s, $n){ $n = 0 ? $s : $f($s & $s, $n - 1) }; $f("x", input.n))', { n: 40 }, /ran out of room \(Invalid string length\)/],
    ] as const) {
      const err = await rejection(evaluate(source, input));
      assert.equal(err.jsonataCode, 'EXPRESSION_BUDGET_EXCEEDED', source);
      assert.match(err.message, reason, source);
    }
  });

  it('refuses a regex literal that can backtrack catastrophically, at compile, publish and evaluation', async () => {
    for (const pattern of ['/^(a+)+$/', '/(a|aa)*b/', '/^(\\w+\\s?)*$/']) {
      const source = `$match(input.s, ${pattern})`;
      assert.equal(compileError(source).jsonataCode, 'REGEX_UNSAFE', source);
      assert.equal((await rejection(checkExpression(source, site))).jsonataCode, 'REGEX_UNSAFE', source);
      const err = await rejection(evaluate(source, { s: `${'a'.repeat(40)}!` }));
      assert.equal(err.jsonataCode, 'REGEX_UNSAFE', source);
      assert.match(err.message, /^step "x" field "input\.a": expression .* uses the regular expression \/.*\/g?, which is refused: /);
    }
    assert.deepEqual(await evaluate('$match(input.s, /[a-z]+@[a-z]+\\.com/).match', { s: 'mail ada@example.com' }), 'ada@example.com');
    assert.equal(await evaluate('$contains(input.s, /(foo|bar)+/)', { s: 'xxbarfoo' }), true);
  });

  it('evaluates unbounded only when asked (replay of runs from before the budget)', async () => {
    assert.equal(await evaluateExpression('$count([1..input.n])', scopeWith({ n: 300_000 }), site, null), 300_000);
    // A run's guards ask (its patch flag) once a guard trips; "no" evaluates as before the guards.
    let asked = 0;
    const old = { budget: DEFAULT_RUN_LIMITS.expression, stored: true, enforce: () => (asked++, false) };
    assert.equal(await evaluateExpression('$count([1..input.n])', scopeWith({ n: 300_000 }), site, old), 300_000);
    assert.equal(await evaluateExpression('$decodeUrlComponent("%00")', scopeWith({}), site, old), '\u0000');
    assert.equal(await evaluateExpression('$contains(input.s, /^(a+)+$/)', scopeWith({ s: 'aaa' }), site, old), true);
    assert.equal(asked, 3);
    // Nothing trips, nothing is asked.
    assert.equal(await evaluateExpression('1 + 1', scopeWith({}), site, old), 2);
    assert.equal(asked, 3);
    assert.equal((await rejection(evaluate('$count([1..input.n])', { n: 300_000 }))).jsonataCode, 'EXPRESSION_BUDGET_EXCEEDED');
  });

  it('names the JSON path of a value Postgres cannot store', async () => {
    const value = await evaluate('{"a": [1, $decodeUrlComponent("%00")]}');
    const err = unstorableValue(value, { stepId: 'prep', field: 'set.note' });
    assert.ok(err);
    assert.equal(err.jsonataCode, 'VALUE_NOT_STORABLE');
    assert.equal(err.path, 'set.note.a[1]');
    assert.equal(err.message, 'step "prep" field "set.note": the value produced at set.note.a[1] cannot be stored: contains a NUL character; allowed: a string without NUL characters and without lone UTF-16 surrogates');
    assert.equal(unstorableValue({ a: ['fine', 'é'] }, site), undefined);
    assert.equal(unstorableValue('\ud800', site)?.path, 'input.a');
  });
});
