import assert from 'node:assert/strict';
import { canonicalJson, versionHash } from '../graph/canonical';
import { GraphValidationError, GRAPH_ISSUE_CODES } from '../graph/errors';
import { graphSchema, type Graph } from '../graph/schema';
import { validateGraph } from '../graph/validate';
import { rpcs } from './fixtures/rpcs';
import { sumGraph } from './fixtures/graphs';

const rpcNames = new Set(rpcs.map((r) => r.name));
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

async function issuesOf(raw: unknown) {
  try {
    await validateGraph(raw, { rpcNames });
  } catch (err) {
    assert.ok(err instanceof GraphValidationError, `expected GraphValidationError, got ${String(err)}`);
    assert.equal(err.code, 'GRAPH_INVALID');
    return err.issues;
  }
  assert.fail('graph was accepted');
}

describe('graph: canonical hashing', () => {
  it('encodes objects with sorted keys regardless of insertion order', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: null }] }), '{"a":[{"c":null,"d":2}],"b":1}');
    assert.equal(canonicalJson({ a: 1, b: 2 }), canonicalJson({ b: 2, a: 1 }));
  });

  it('refuses non-finite numbers instead of hashing them ambiguously', () => {
    assert.throws(() => canonicalJson({ a: Number.NaN }), /non-finite number NaN/);
  });

  it('gives the same hash for the same graph and for documentation-only changes', () => {
    const g = graphSchema.parse(sumGraph);
    const contracts = { 'math.add': rpcs[0]!.contract };
    const edited: Graph = clone(g);
    edited.description = 'a different description';
    edited.notes = 'reviewed by ops';
    edited.ui = { zoom: 2 };
    edited.steps[0]!.ui = { x: 100, y: 200 };
    edited.steps[1]!.description = 'doubles it';
    assert.equal(versionHash(g, contracts), versionHash(clone(g), contracts));
    assert.equal(versionHash(g, contracts), versionHash(edited, contracts));
    assert.match(versionHash(g, contracts), /^[0-9a-f]{64}$/);
  });

  it('gives a different hash when behaviour or a pinned contract changes', () => {
    const g = graphSchema.parse(sumGraph);
    const contracts = { 'math.add': rpcs[0]!.contract };
    const changed: Graph = clone(g);
    (changed.steps[1] as { set: Record<string, string> }).set.doubled = 'vars.result.sum * 3';
    assert.notEqual(versionHash(g, contracts), versionHash(changed, contracts));
    assert.notEqual(versionHash(g, contracts), versionHash(g, { 'math.add': { ...rpcs[0]!.contract, hash: 'x' } }));
  });
});

describe('graph: publish-time validation', () => {
  it('accepts a valid graph', async () => {
    assert.equal((await validateGraph(sumGraph, { rpcNames })).entry, 'add');
  });

  it('rejects a schema violation naming the JSON path and the step id', async () => {
    const g = clone(sumGraph) as { steps: Array<Record<string, unknown>> };
    g.steps[3]!.nxt = 'done';
    delete g.steps[3]!.rpc;
    const issues = await issuesOf(g);
    assert.deepEqual(
      issues.map((i) => [i.code, i.path, i.stepId]),
      [
        ['SCHEMA_INVALID', 'steps[3].rpc', 'greet'],
        ['SCHEMA_INVALID', 'steps[3]', 'greet'],
      ].sort((a, b) => (a[1]! < b[1]! ? 1 : -1)),
    );
    assert.ok(issues.some((i) => i.message === 'unknown field(s) "nxt"'));
  });

  it('rejects a non-object graph', async () => {
    const issues = await issuesOf('not a graph');
    assert.equal(issues[0]!.code, GRAPH_ISSUE_CODES.SCHEMA_INVALID);
    assert.equal(issues[0]!.path, '(root)');
  });

  it('rejects an unknown step type and lists the allowed types', async () => {
    const g = clone(sumGraph) as { steps: Array<Record<string, unknown>> };
    g.steps[1]!.type = 'teleport';
    const issues = await issuesOf(g);
    assert.equal(issues.length, 1);
    assert.deepEqual(issues[0], {
      code: 'UNKNOWN_STEP_TYPE',
      path: 'steps[1].type',
      stepId: 'double',
      message: 'unknown step type "teleport"; allowed types are: rpc, assign, if, switch, forEach, parallel, sleep, wait, child, return, fail',
    });
  });

  it('rejects a duplicate step id', async () => {
    const g = clone(sumGraph) as { steps: Array<Record<string, unknown>> };
    g.steps[4]!.id = 'greet';
    const issues = await issuesOf(g);
    const dup = issues.find((i) => i.code === 'DUPLICATE_STEP_ID');
    assert.deepEqual(dup, {
      code: 'DUPLICATE_STEP_ID',
      path: 'steps[4].id',
      stepId: 'greet',
      message: 'duplicate step id "greet"; it is already used by steps[3]',
    });
  });

  it('rejects an edge to an unknown step and an unknown entry', async () => {
    const g = clone(sumGraph) as { entry: string; steps: Array<Record<string, unknown>> };
    g.steps[2]!.else = 'nowhere';
    const issues = await issuesOf(g);
    assert.ok(issues.some((i) => i.code === 'UNKNOWN_EDGE_TARGET' && i.path === 'steps[2].else' && i.stepId === 'big' && i.message === 'edge "else" points to unknown step "nowhere"'));
    g.entry = 'start';
    assert.ok((await issuesOf(g)).some((i) => i.code === 'UNKNOWN_ENTRY' && i.path === 'entry'));
  });

  it('rejects an unreachable step', async () => {
    const g = clone(sumGraph) as { steps: Array<Record<string, unknown>> };
    g.steps.push({ id: 'orphan', type: 'return' });
    const issues = await issuesOf(g);
    assert.deepEqual(issues, [
      { code: 'UNREACHABLE_STEP', path: 'steps[6]', stepId: 'orphan', message: 'step "orphan" cannot be reached from the entry "add"' },
    ]);
  });

  it('rejects a cycle and reports it as a path', async () => {
    const g = {
      entry: 'a',
      steps: [
        { id: 'a', type: 'assign', set: { x: '1' }, next: 'b' },
        { id: 'b', type: 'if', condition: 'true', then: 'a', else: 'c' },
        { id: 'c', type: 'return' },
      ],
    };
    const issues = await issuesOf(g);
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.code, 'CYCLE');
    assert.equal(issues[0]!.message, 'cycle a -> b -> a; cycles are only allowed through loop constructs (forEach)');
  });

  it('rejects an RPC that is not registered, naming the registered ones', async () => {
    const g = clone(sumGraph) as { steps: Array<Record<string, unknown>> };
    g.steps[3]!.rpc = 'text.shout';
    const issues = await issuesOf(g);
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.code, 'RPC_NOT_REGISTERED');
    assert.equal(issues[0]!.stepId, 'greet');
    assert.match(issues[0]!.message, /^RPC "text.shout" is not registered; registered RPCs are: math.add, test.boom, test.decline/);
  });

  it('rejects an expression that does not compile, with field, position and jsonata code', async () => {
    const g = clone(sumGraph) as { steps: Array<Record<string, unknown>> };
    g.steps[1]!.set = { doubled: 'vars.result.sum * ' };
    g.steps[2]!.condition = 'vars.doubled >> 10';
    const issues = await issuesOf(g);
    assert.deepEqual(
      issues.map((i) => [i.code, i.path, i.stepId]),
      [
        ['EXPRESSION_INVALID', 'steps[1].set.doubled', 'double'],
        ['EXPRESSION_INVALID', 'steps[2].condition', 'big'],
      ],
    );
    assert.match(issues[0]!.message, /^step "double" field "set.doubled": expression "vars.result.sum \* " does not compile at position \d+: .*\(jsonata S\d+\)$/);
  });

  it('reports every issue at once', async () => {
    const g = clone(sumGraph) as { steps: Array<Record<string, unknown>> };
    g.steps[3]!.rpc = 'nope';
    g.steps[2]!.condition = '(((';
    g.steps.push({ id: 'island', type: 'return' });
    const codes = (await issuesOf(g)).map((i) => i.code).sort();
    assert.deepEqual(codes, ['EXPRESSION_INVALID', 'RPC_NOT_REGISTERED', 'UNREACHABLE_STEP']);
  });
});

describe('graph: the full language at publish', () => {
  const ret = (id: string) => ({ id, type: 'return' });

  it('rejects each expression guardrail with its own code', async () => {
    const g = {
      entry: 'a',
      steps: [
        { id: 'a', type: 'assign', set: { x: '$eval("1 + 1")' }, next: 'b' },
        { id: 'b', type: 'assign', set: { big: '$join([1..500].$pad("", 600), ",")' }, next: 'c' },
        { id: 'c', type: 'assign', set: { deep: `${'['.repeat(40)}1${']'.repeat(40)}` }, next: 'd' },
        { id: 'd', type: 'assign', set: { bad: 'input.(' }, next: 'e' },
        ret('e'),
      ],
    };
    const issues = await issuesOf(g);
    assert.deepEqual(
      issues.map((i) => [i.code, i.path, i.stepId]),
      [
        ['EXPRESSION_FUNCTION_NOT_ALLOWED', 'steps[0].set.x', 'a'],
        ['EXPRESSION_OUTPUT_TOO_LARGE', 'steps[1].set.big', 'b'],
        ['EXPRESSION_TOO_COMPLEX', 'steps[2].set.deep', 'c'],
        ['EXPRESSION_INVALID', 'steps[3].set.bad', 'd'],
      ],
    );
    assert.match(issues[0]!.message, /function \$eval is not allowed/);
  });

  it('validates nested subgraphs: unique ids across levels, edges stay inside, reachability inside', async () => {
    const g = {
      entry: 'loop',
      steps: [
        {
          id: 'loop',
          type: 'forEach',
          items: 'input.xs',
          body: {
            entry: 'inner',
            steps: [
              { id: 'inner', type: 'assign', set: { y: 'item' }, next: 'after' },
              { id: 'loop', type: 'return' },
              ret('stranded'),
            ],
          },
          next: 'after',
        },
        ret('after'),
      ],
    };
    const issues = await issuesOf(g);
    assert.deepEqual(
      issues.map((i) => [i.code, i.path, i.stepId]),
      [
        ['DUPLICATE_STEP_ID', 'steps[0].body.steps[1].id', 'loop'],
        ['UNKNOWN_EDGE_TARGET', 'steps[0].body.steps[0].next', 'inner'],
        ['UNREACHABLE_STEP', 'steps[0].body.steps[1]', 'loop'],
        ['UNREACHABLE_STEP', 'steps[0].body.steps[2]', 'stranded'],
      ],
    );
    assert.equal(issues[1]!.message, 'edge "next" points to unknown step "after" (edges stay inside the subgraph at steps[0].body)');
  });

  it('rejects a graph over the size limit', async () => {
    const filler = Array.from({ length: 400 }, (_, i) => ({ id: `s${i}`, type: 'assign', set: { v: `'${'x'.repeat(700)}'` }, next: `s${i + 1}` }));
    const issues = await issuesOf({ entry: 's0', steps: [...filler, ret('s400')] });
    assert.deepEqual(
      issues.map((i) => i.code),
      ['GRAPH_TOO_LARGE'],
    );
    assert.match(issues[0]!.message, /^the graph is \d+ bytes of canonical JSON; the limit is 262144/);
  });

  it('checks sleep and wait field combinations and duration formats', async () => {
    const issues = await issuesOf({
      entry: 'a',
      steps: [
        { id: 'a', type: 'sleep', duration: '5 minutes', next: 'b' },
        { id: 'b', type: 'sleep', duration: '1s', until: "'2030-01-01'", next: 'c' },
        { id: 'c', type: 'wait', event: 'x.y', correlationKey: "'k'", onTimeout: 'd', next: 'd' },
        ret('d'),
      ],
    });
    assert.deepEqual(
      issues.map((i) => [i.code, i.path, i.stepId]),
      [
        ['SCHEMA_INVALID', 'steps[0].duration', 'a'],
        ['SCHEMA_INVALID', 'steps[1]', 'b'],
        ['SCHEMA_INVALID', 'steps[2].onTimeout', 'c'],
      ],
    );
    assert.equal(issues[1]!.message, 'a sleep needs exactly one of "duration" or "until"');
  });

  it('checks child targets through the resolver', async () => {
    const g = {
      entry: 'a',
      steps: [
        { id: 'a', type: 'child', definition: 'known', next: 'b' },
        { id: 'b', type: 'child', definition: 'ghost', next: 'c' },
        { id: 'c', type: 'child', definition: 'known', version: 'f'.repeat(64) },
      ],
    };
    await assert.rejects(
      validateGraph(g, { rpcNames, resolveChild: (d, v) => Promise.resolve(d !== 'known' ? 'definition' : v ? 'version' : 'ok') }),
      (err: GraphValidationError) => {
        assert.deepEqual(
          err.issues.map((i) => [i.code, i.path]),
          [
            ['UNKNOWN_CHILD_DEFINITION', 'steps[1].definition'],
            ['UNKNOWN_CHILD_VERSION', 'steps[2].version'],
          ],
        );
        return true;
      },
    );
  });
});
