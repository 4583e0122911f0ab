import assert from 'node:assert/strict';
import fc from 'fast-check';
import { versionHash } from '../graph/canonical';
import { GraphValidationError } from '../graph/errors';
import type { Graph } from '../graph/schema';
import { validateGraph } from '../graph/validate';
import { rpcs } from './fixtures/rpcs';

const rpcNames = new Set(rpcs.map((r) => r.name));
const contracts = Object.fromEntries(rpcs.map((r) => [r.name, r.contract]));

/** Deterministic key shuffle driven by a seed (a small LCG). */
function shuffleKeys(value: unknown, seed: number): unknown {
  let s = seed >>> 0 || 1;
  const rand = () => ((s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32);
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== 'object') return v;
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [keys[i], keys[j]] = [keys[j]!, keys[i]!];
    }
    const out: Record<string, unknown> = {};
    for (const k of keys) out[k] = walk((v as Record<string, unknown>)[k]);
    return out;
  };
  return walk(value);
}

const name = fc.stringMatching(/^[a-z][a-z0-9]{0,8}$/);

/** Valid graphs: a chain of assign/if/rpc/forEach steps ending in return, with doc fields sprinkled in. */
const validGraph = fc
  .record({
    kinds: fc.array(fc.constantFrom('assign', 'if', 'rpc', 'forEach'), { minLength: 1, maxLength: 12 }),
    vars: fc.array(name, { minLength: 1, maxLength: 4 }),
    numbers: fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 4 }),
    doc: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
  })
  .map(({ kinds, vars, numbers, doc }) => {
    const id = (i: number) => `s${i}`;
    const steps: unknown[] = kinds.map((kind, i) => {
      const next = id(i + 1);
      const v = vars[i % vars.length]!;
      const num = numbers[i % numbers.length]!;
      switch (kind) {
        case 'assign':
          return { id: id(i), type: 'assign', set: { [v]: `${num} + ${i}`, [`${v}_x`]: { a: '1', b: [true, null, 'input.q'] } }, next, ...(doc ? { description: doc } : {}) };
        case 'if':
          return { id: id(i), type: 'if', condition: `vars.${v} > ${num}`, then: next, else: next, ui: { x: i, y: num } };
        case 'rpc':
          return { id: id(i), type: 'rpc', rpc: 'math.add', input: { a: `${num}`, b: `${i}` }, saveAs: v, next };
        default:
          return { id: id(i), type: 'forEach', items: `[1..${(i % 3) + 1}]`, concurrency: (i % 4) + 1, body: { entry: `b${i}`, steps: [{ id: `b${i}`, type: 'return', output: 'item * 2' }] }, next };
      }
    });
    steps.push({ id: id(kinds.length), type: 'return', output: { done: 'true' } });
    return { entry: 's0', steps, ...(doc ? { notes: doc } : {}) };
  });

describe('graphs, property-based (fast-check)', function () {
  this.timeout(120_000);

  it('valid graphs hash the same whatever the order of object keys', async () => {
    await fc.assert(
      fc.asyncProperty(validGraph, fc.integer(), async (raw, seed) => {
        const a = await validateGraph(raw, { rpcNames });
        const b = await validateGraph(shuffleKeys(raw, seed), { rpcNames });
        assert.equal(versionHash(a, contracts), versionHash(b, contracts));
      }),
      { numRuns: 150 },
    );
  });

  it('documentation-only edits never change the hash', async () => {
    await fc.assert(
      fc.asyncProperty(validGraph, fc.string({ maxLength: 30 }), async (raw, text) => {
        const g = (await validateGraph(raw, { rpcNames }));
        const edited = JSON.parse(JSON.stringify(g)) as Graph;
        edited.description = text;
        edited.steps[0]!.notes = text;
        edited.steps[0]!.ui = { x: text.length };
        assert.equal(versionHash(g, contracts), versionHash(edited, contracts));
      }),
      { numRuns: 100 },
    );
  });

  it('rejects random invalid input with validation errors, never with a crash', async () => {
    const mutated = fc.tuple(validGraph, fc.array(fc.tuple(fc.nat(), fc.jsonValue()), { minLength: 1, maxLength: 4 })).map(([g, edits]) => {
      // Overwrite random members anywhere in the graph with random JSON.
      const copy = JSON.parse(JSON.stringify(g)) as unknown;
      const slots: Array<[Record<string, unknown> | unknown[], string | number]> = [];
      const collect = (v: unknown) => {
        if (Array.isArray(v)) v.forEach((x, i) => (slots.push([v, i]), collect(x)));
        else if (v && typeof v === 'object') for (const k of Object.keys(v)) slots.push([v as Record<string, unknown>, k]), collect((v as Record<string, unknown>)[k]);
      };
      collect(copy);
      for (const [at, value] of edits) {
        const [holder, key] = slots[at % slots.length]!;
        (holder as Record<string | number, unknown>)[key] = value;
      }
      return copy;
    });
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated, fc.jsonValue(), fc.anything()), async (raw) => {
        try {
          await validateGraph(raw, { rpcNames });
        } catch (err) {
          assert.ok(err instanceof GraphValidationError, `expected GraphValidationError, got ${(err as Error)?.stack ?? String(err)}`);
          assert.ok(err.issues.length > 0);
          for (const issue of err.issues) {
            assert.equal(typeof issue.code, 'string');
            assert.equal(typeof issue.path, 'string');
            assert.equal(typeof issue.message, 'string');
          }
        }
      }),
      { numRuns: 400 },
    );
  });
});
