import assert from 'node:assert/strict';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import fc from 'fast-check';
import { z } from 'zod';
import { requiredFieldsMissing, schemaIncludes, type InclusionVerdict } from '../graph/schema-inclusion';

/** The same conversion as rpc/registry.ts. */
const json = (schema: z.ZodType, io: 'input' | 'output' = 'input'): unknown => z.toJSONSchema(schema, { io, target: 'draft-2020-12' });

/** Ajv as pinflow configures it at dispatch (catalog/contracts.ts), compiled once per schema text. */
const ajv = new Ajv2020({ strict: false, allErrors: false, logger: false });
const compiled = new Map<string, ValidateFunction>();
function valid(schema: unknown, value: unknown): boolean {
  const key = JSON.stringify(schema);
  let v = compiled.get(key);
  if (!v) {
    v = ajv.compile(schema as object);
    compiled.set(key, v);
  }
  return v(value);
}

function yes(a: unknown, b: unknown): void {
  assert.deepEqual(schemaIncludes(a, b), { verdict: 'yes' });
}
/** A `no` whose witness Ajv confirms (valid under a, invalid under b), at `path`. */
function no(a: unknown, b: unknown, path: string, reason?: RegExp): Extract<InclusionVerdict, { verdict: 'no' }> {
  const r = schemaIncludes(a, b);
  assert.equal(r.verdict, 'no', JSON.stringify(r));
  if (r.verdict !== 'no') throw new Error('unreachable');
  assert.equal(r.path, path);
  if (reason) assert.match(r.reason, reason);
  assert.ok(valid(a, r.witness), `witness ${JSON.stringify(r.witness)} must be valid under the pinned schema`);
  assert.ok(!valid(b, r.witness), `witness ${JSON.stringify(r.witness)} must be invalid under the new schema`);
  return r;
}
function unknown(a: unknown, b: unknown, reason: RegExp): void {
  const r = schemaIncludes(a, b);
  assert.equal(r.verdict, 'unknown', JSON.stringify(r));
  if (r.verdict === 'unknown') assert.match(r.reason, reason);
}

describe('schema inclusion (graph/schema-inclusion)', function () {
  this.timeout(60_000);

  describe('objects', () => {
    it('optional → required is no, with the field and a witness that lacks it', () => {
      const r = no(json(z.object({ amount: z.number().optional() })), json(z.object({ amount: z.number() })), '$.amount', /required by the new schema, not required by the pinned one/);
      assert.deepEqual(r.witness, {});
    });
    it('required → optional is yes', () => {
      yes(json(z.object({ amount: z.number() })), json(z.object({ amount: z.number().optional() })));
    });
    it('a field the pinned schema does not accept at all, now required: no', () => {
      no(json(z.strictObject({ a: z.number() })), json(z.object({ a: z.number(), b: z.string() })), '$.b', /not accepted by the pinned one/);
    });
    it('an added optional field is yes when the pinned object is closed (output contracts, strict objects)', () => {
      yes(json(z.object({ a: z.number() }), 'output'), json(z.object({ a: z.number(), note: z.string().optional() }), 'output'));
      yes(json(z.strictObject({ a: z.number() })), json(z.object({ a: z.number(), note: z.string().optional() })));
    });
    it('an added optional field on an open pinned object is no: the pinned schema accepted any value there', () => {
      // zod input schemas are open (no additionalProperties): {a: 1, note: null} was valid and no longer is.
      no(json(z.object({ a: z.number() })), json(z.object({ a: z.number(), note: z.string().optional() })), '$.note', /not declared by the pinned schema/);
      // ... unless the new field accepts anything
      yes(json(z.object({ a: z.number() })), json(z.object({ a: z.number(), note: z.unknown().optional() })));
    });
    it('a removed field under additionalProperties: false is no; under an open new schema it is yes', () => {
      no(json(z.object({ a: z.number(), b: z.string() }), 'output'), json(z.object({ a: z.number() }), 'output'), '$.b', /no additional properties/);
      yes(json(z.object({ a: z.number(), b: z.string() })), json(z.object({ a: z.number() })));
    });
    it('a field type change is no at the field path', () => {
      no(json(z.object({ user: z.object({ id: z.string() }) })), json(z.object({ user: z.object({ id: z.number() }) })), '$.user.id', /strings/);
    });
    it('additionalProperties as a schema (records, catchall)', () => {
      yes(json(z.record(z.string(), z.int())), json(z.record(z.string(), z.number())));
      no(json(z.record(z.string(), z.number())), json(z.record(z.string(), z.int())), '$.*', /integers/);
      yes(json(z.object({ a: z.string() }).catchall(z.string())), json(z.looseObject({ a: z.string() })));
      no(json(z.looseObject({ a: z.string() })), json(z.object({ a: z.string() }).catchall(z.string())), '$.*');
    });
    it('a new propertyNames restriction is unknown', () => {
      unknown(json(z.record(z.string(), z.number())), json(z.record(z.enum(['x', 'y']), z.number())), /propertyNames/);
    });
  });

  describe('enums, consts, booleans, null', () => {
    it('enum narrowed is no with the dropped value; widened is yes', () => {
      const r = no(json(z.enum(['a', 'b', 'c'])), json(z.enum(['a', 'c'])), '$');
      assert.equal(r.witness, 'b');
      yes(json(z.enum(['a'])), json(z.enum(['a', 'b'])));
    });
    it('const and literals', () => {
      yes(json(z.literal('x')), json(z.enum(['x', 'y'])));
      yes(json(z.literal('x')), json(z.string()));
      no(json(z.literal('x')), json(z.literal('y')), '$');
      yes(json(z.literal([1, 2])), json(z.int().min(1)));
      yes(json(z.literal(true)), json(z.boolean()));
      no(json(z.boolean()), json(z.literal(true)), '$');
      no(json(z.string()), json(z.enum(['a', 'b'])), '$', /accepts only/);
    });
  });

  describe('numbers', () => {
    it('integer ⊆ number is yes; number ⊆ integer is no', () => {
      yes(json(z.int()), json(z.number()));
      const r = no(json(z.number()), json(z.int()), '$', /integers/);
      assert.ok(!Number.isInteger(r.witness));
    });
    it('bounds, inclusive and exclusive', () => {
      yes(json(z.number().positive()), json(z.number().nonnegative()));
      no(json(z.number().nonnegative()), json(z.number().positive()), '$', /≥ 0/);
      yes(json(z.number().min(1).max(5)), json(z.number().min(0).max(10)));
      no(json(z.number().max(10)), json(z.number().max(5)), '$');
      // integer bounds: > 0 and ≥ 1 are the same integers
      yes(json(z.int().gt(0)), json(z.int().min(1)));
      yes(json(z.int32()), json(z.int()));
      no(json(z.int()), json(z.int32()), '$');
    });
    it('multipleOf', () => {
      yes(json(z.int().multipleOf(6)), json(z.int().multipleOf(3)));
      no(json(z.int()), json(z.int().multipleOf(3)), '$', /multiple of 3/);
    });
  });

  describe('strings', () => {
    it('length bounds', () => {
      yes(json(z.string().min(2).max(4)), json(z.string().min(1).max(5)));
      no(json(z.string().max(5)), json(z.string().max(3)), '$', /length/);
      no(json(z.string()), json(z.string().min(1)), '$');
      yes(json(z.string().length(3)), json(z.string().min(3)));
    });
    it('pattern and format: equal or absent in the new schema is decidable, a different one is unknown', () => {
      yes(json(z.email()), json(z.string()));
      yes(json(z.string().regex(/^a/).min(1)), json(z.string().regex(/^a/)));
      unknown(json(z.string().regex(/^a/)), json(z.string().regex(/^b/)), /pattern/);
      unknown(json(z.string()), json(z.string().regex(/^a/)), /pattern/);
      unknown(json(z.uuid()), json(z.email()), /pattern|format/);
    });
  });

  describe('arrays and tuples', () => {
    it('items and length bounds', () => {
      yes(json(z.array(z.int()).min(1)), json(z.array(z.number())));
      const r = no(json(z.array(z.string())), json(z.array(z.string()).min(1)), '$', /at least 1/);
      assert.deepEqual(r.witness, []);
      no(json(z.array(z.string()).max(5)), json(z.array(z.string()).max(2)), '$', /at most 2/);
      no(json(z.array(z.number())), json(z.array(z.int())), '$[*]');
    });
    it('tuples against arrays and tuples', () => {
      yes(json(z.tuple([z.string(), z.number()])), json(z.array(z.union([z.string(), z.number()]))));
      no(json(z.tuple([z.string(), z.number()])), json(z.array(z.string())), '$[1]');
      yes(json(z.tuple([z.string()], z.int())), json(z.tuple([z.string()], z.number())));
      no(json(z.array(z.string())), json(z.tuple([z.string()])), '$', /at least 1/);
      no(json(z.array(z.string()).min(1)), json(z.tuple([z.string()])), '$', /at most 1/);
    });
  });

  describe('unions and nullable', () => {
    it('nullable widening is yes, dropping null is no with null as the witness', () => {
      yes(json(z.string()), json(z.string().nullable()));
      yes(json(z.object({ a: z.string() })), json(z.object({ a: z.string() }).nullable()));
      const r = no(json(z.object({ a: z.string() }).nullable()), json(z.object({ a: z.string() })), '$');
      assert.equal(r.witness, null);
      yes(json(z.object({ a: z.string().nullish() })), json(z.object({ a: z.string().nullable().optional() })));
    });
    it('unions: each pinned alternative must fit the new schema', () => {
      yes(json(z.union([z.string(), z.number()])), json(z.union([z.number(), z.string(), z.boolean()])));
      no(json(z.union([z.string(), z.number()])), json(z.string()), '$');
      yes(json(z.int()), json(z.union([z.string(), z.number()])));
    });
    it('discriminated unions (oneOf): disjoint alternatives are decided', () => {
      const v1 = z.discriminatedUnion('kind', [z.object({ kind: z.literal('card'), last4: z.string() }), z.object({ kind: z.literal('bank'), iban: z.string() })]);
      const v2 = z.discriminatedUnion('kind', [z.object({ kind: z.literal('card'), last4: z.string() }), z.object({ kind: z.literal('bank'), iban: z.string() }), z.object({ kind: z.literal('cash') })]);
      yes(json(v1), json(v2));
      no(json(v2), json(v1), '$.kind', /"cash" is accepted by the pinned schema, by no alternative of the new one/);
    });
    it('a new oneOf whose alternatives may overlap is unknown', () => {
      unknown({ type: 'number' }, { oneOf: [{ type: 'number', minimum: 0 }, { type: 'number', maximum: 10 }] }, /overlap/);
    });
    it('a value covered only by a mix of new alternatives is unknown, not no', () => {
      const r = schemaIncludes({ type: 'integer' }, { anyOf: [{ type: 'integer', maximum: 0 }, { type: 'integer', minimum: 1 }] });
      assert.equal(r.verdict, 'unknown', JSON.stringify(r));
    });
  });

  describe('true, false, {}, $ref', () => {
    it('the trivial schemas', () => {
      yes(false, { type: 'string' });
      yes({ not: {} }, false);
      yes({ type: 'string' }, true);
      yes({ type: 'string' }, {});
      yes(true, {});
      no({}, { type: 'string' }, '$', /any value/);
      no({ type: 'string' }, false, '$');
    });
    it('local $defs refs are followed; recursive schemas are decided by structure', () => {
      const A = z.object({ x: z.string() }).meta({ id: 'A' });
      const A2 = z.object({ x: z.number() }).meta({ id: 'A' });
      no(json(z.object({ p: A, q: A })), json(z.object({ p: A2, q: A2 })), '$.p.x');
      const N1 = z.object({ v: z.int(), get next() { return N1.optional(); } });
      const N2 = z.object({ v: z.number(), get next() { return N2.optional(); } });
      yes(json(z.object({ head: N1 }), 'output'), json(z.object({ head: N2 }), 'output'));
      no(json(z.object({ head: N2 })), json(z.object({ head: N1 })), '$.head.v');
      const T = z.object({ name: z.string(), get kids() { return z.array(T); } });
      yes(json(T), json(z.object({ name: z.string(), kids: z.array(z.unknown()) })));
    });
    it('remote refs, refs that do not resolve and keywords outside the subset are unknown', () => {
      unknown({ type: 'string' }, { $ref: 'https://example.com/s.json' }, /not a local reference/);
      unknown({ type: 'string' }, { $ref: '#/$defs/missing' }, /does not resolve/);
      unknown({ type: 'array' }, { type: 'array', uniqueItems: true }, /uniqueItems/);
      unknown({ type: 'object', patternProperties: { '^x': {} } }, { type: 'object' }, /patternProperties/);
    });
  });

  describe('requiredFieldsMissing', () => {
    const schema = json(z.object({ a: z.number(), b: z.string(), c: z.boolean().optional() }));
    it('lists the required keys not supplied, sorted', () => {
      assert.deepEqual(requiredFieldsMissing(schema, ['a']), ['b']);
      assert.deepEqual(requiredFieldsMissing(schema, []), ['a', 'b']);
      assert.deepEqual(requiredFieldsMissing(json(z.object({ z: z.number(), y: z.number() })), []), ['y', 'z']);
    });
    it('optional keys never count; supplying every required key gives none', () => {
      assert.deepEqual(requiredFieldsMissing(schema, ['a', 'b']), []);
      assert.deepEqual(requiredFieldsMissing(schema, ['b', 'a', 'extra']), []);
    });
    it("'unknown' supplied keys or a schema without required give none", () => {
      assert.deepEqual(requiredFieldsMissing(schema, 'unknown'), []);
      assert.deepEqual(requiredFieldsMissing(json(z.string()), []), []);
      assert.deepEqual(requiredFieldsMissing(true, []), []);
    });
  });

  describe('property-based (fast-check, checked with Ajv 2020)', () => {
    const KEYS = ['a', 'b', 'c'];
    const small = fc.constantFrom<unknown>(null, true, false, 0, 1, -1, 2, 0.5, 'a', 'b', '', 'ab');

    /** JSON Schemas over the subset zod emits. */
    const { schema } = fc.letrec<{ schema: unknown; leaf: unknown }>((tie) => ({
      leaf: fc.oneof(
        fc.record({ type: fc.constant('string'), minLength: fc.option(fc.nat(3), { nil: undefined }), maxLength: fc.option(fc.nat(4), { nil: undefined }) }, { requiredKeys: ['type'] }),
        fc.record(
          {
            type: fc.constantFrom('number', 'integer'),
            minimum: fc.option(fc.integer({ min: -3, max: 3 }), { nil: undefined }),
            maximum: fc.option(fc.integer({ min: -3, max: 3 }), { nil: undefined }),
            exclusiveMinimum: fc.option(fc.constantFrom(-1, 0, 0.5), { nil: undefined }),
            multipleOf: fc.option(fc.constantFrom(1, 2, 3), { nil: undefined }),
          },
          { requiredKeys: ['type'] },
        ),
        fc.constantFrom<unknown>({ type: 'boolean' }, { type: 'null' }, true, false, {}, { type: ['string', 'null'] }, { type: ['number', 'null'] }),
        fc.uniqueArray(small, { minLength: 1, maxLength: 3, selector: (v) => JSON.stringify(v) }).map((e) => ({ enum: e })),
        small.map((c) => ({ const: c })),
      ),
      schema: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        tie('leaf'),
        fc
          .record({
            props: fc.dictionary(fc.constantFrom(...KEYS), tie('schema'), { maxKeys: 3 }),
            required: fc.subarray(KEYS),
            additional: fc.option(fc.oneof(fc.constant<unknown>(false), tie('schema')), { nil: undefined }),
          })
          .map(({ props, required, additional }) => ({
            type: 'object',
            properties: props,
            ...(required.length ? { required } : {}),
            ...(additional !== undefined ? { additionalProperties: additional } : {}),
          })),
        fc
          .record({ items: tie('schema'), minItems: fc.option(fc.nat(2), { nil: undefined }), maxItems: fc.option(fc.nat(3), { nil: undefined }) }, { requiredKeys: ['items'] })
          .map((r) => ({ type: 'array', ...r })),
        fc.array(tie('schema'), { minLength: 1, maxLength: 2 }).map((p) => ({ type: 'array', prefixItems: p, items: false, minItems: p.length, maxItems: p.length })),
        fc.array(tie('schema'), { minLength: 1, maxLength: 3 }).map((s) => ({ anyOf: s })),
        fc.array(tie('schema'), { minLength: 1, maxLength: 2 }).map((s) => ({ oneOf: s })),
      ),
    }));

    /** Random values guided by a schema (not always valid: Ajv decides), over the same small universe. */
    function sample(s: unknown, rand: () => number, depth = 0): unknown {
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
      const any = (): unknown => pick<unknown>([null, true, 0, 1.5, -2, 'a', '', [], {}, { a: 1 }, [0]]);
      if (rand() < 0.1 || depth > 5 || s === true || s === false || s === null || typeof s !== 'object') return any();
      const o = s as Record<string, unknown>;
      if (Array.isArray(o.anyOf) || Array.isArray(o.oneOf)) return sample(pick((o.anyOf ?? o.oneOf) as unknown[]), rand, depth + 1);
      if (Array.isArray(o.enum)) return pick(o.enum);
      if ('const' in o) return o.const;
      const type = Array.isArray(o.type) ? pick(o.type as string[]) : o.type;
      switch (type) {
        case 'string':
          return 'ab'.repeat(3).slice(0, Math.floor(rand() * 6));
        case 'number':
        case 'integer': {
          const n = Math.floor(rand() * 9) - 4;
          return type === 'number' && rand() < 0.4 ? n + 0.5 : n;
        }
        case 'boolean':
          return rand() < 0.5;
        case 'null':
          return null;
        case 'array': {
          const prefix = Array.isArray(o.prefixItems) ? o.prefixItems : [];
          const n = prefix.length + Math.floor(rand() * 3);
          return Array.from({ length: n }, (_, i) => sample(i < prefix.length ? prefix[i] : o.items, rand, depth + 1));
        }
        case 'object': {
          const props = (o.properties ?? {}) as Record<string, unknown>;
          const out: Record<string, unknown> = {};
          for (const k of [...KEYS, 'd']) {
            const required = Array.isArray(o.required) && o.required.includes(k);
            if (required || rand() < 0.5) out[k] = sample(k in props ? props[k] : o.additionalProperties, rand, depth + 1);
          }
          return out;
        }
        default:
          return any();
      }
    }

    /** A variant of a schema: one random edit (widening or narrowing) somewhere in it. */
    function mutate(s: unknown, rand: () => number): unknown {
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
      if (s === null || typeof s !== 'object' || Array.isArray(s)) return pick<unknown>([true, { type: 'string' }, s]);
      const o = { ...(s as Record<string, unknown>) };
      const children: Array<[string, string | number]> = [];
      if (o.properties && typeof o.properties === 'object') for (const k of Object.keys(o.properties)) children.push(['properties', k]);
      if (o.items && typeof o.items === 'object') children.push(['items', '']);
      for (const u of ['anyOf', 'oneOf', 'prefixItems']) if (Array.isArray(o[u])) (o[u] as unknown[]).forEach((_, i) => children.push([u, i]));
      if (children.length > 0 && rand() < 0.6) {
        const [k, i] = pick(children);
        if (k === 'items') o.items = mutate(o.items, rand);
        else if (k === 'properties') o.properties = { ...(o.properties as object), [i]: mutate((o.properties as Record<string, unknown>)[i], rand) };
        else o[k] = (o[k] as unknown[]).map((c, j) => (j === i ? mutate(c, rand) : c));
        return o;
      }
      switch (pick(['required', 'bound', 'null', 'union', 'additional', 'enum', 'type'])) {
        case 'required':
          if (Array.isArray(o.required) && o.required.length && rand() < 0.5) o.required = o.required.slice(1);
          else if (o.type === 'object') o.required = [...new Set([...((o.required as string[]) ?? []), pick(KEYS)])];
          break;
        case 'bound':
          o[pick(['minimum', 'maximum', 'minLength', 'maxLength', 'minItems', 'maxItems'])] = Math.floor(rand() * 4);
          if (rand() < 0.5) delete o[pick(['minimum', 'maximum', 'minLength', 'maxLength', 'minItems', 'maxItems', 'exclusiveMinimum', 'multipleOf'])];
          break;
        case 'null':
          return { anyOf: [o, { type: 'null' }] };
        case 'union':
          return { anyOf: [o, pick<unknown>([{ type: 'string' }, { type: 'integer' }, { type: 'object' }])] };
        case 'additional':
          if ('additionalProperties' in o) delete o.additionalProperties;
          else o.additionalProperties = false;
          break;
        case 'enum':
          if (Array.isArray(o.enum)) o.enum = rand() < 0.5 && o.enum.length > 1 ? o.enum.slice(1) : [...o.enum, pick<unknown>(['z', 3, null])];
          else return { enum: [sample(o, rand)] };
          break;
        default:
          if (o.type === 'integer') o.type = 'number';
          else if (o.type === 'number') o.type = 'integer';
          else o.type = pick(['string', 'number', 'object', 'array']);
      }
      return o;
    }

    const pair = fc.oneof(
      fc.tuple(schema, schema),
      fc.tuple(schema, fc.integer()).map(([a, seed]) => [a, mutate(a, rng(seed))] as [unknown, unknown]),
      fc.tuple(schema, fc.integer()).map(([a, seed]) => [mutate(a, rng(seed)), a] as [unknown, unknown]),
    );

    function rng(seed: number): () => number {
      let s = seed >>> 0 || 1;
      return () => ((s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32);
    }

    function checkSound(a: unknown, b: unknown, seed: number, tally: Record<string, number>): void {
      const r = schemaIncludes(a, b);
      tally[r.verdict] = (tally[r.verdict] ?? 0) + 1;
      if (r.verdict === 'no') {
        assert.ok(valid(a, r.witness), `no: witness ${JSON.stringify(r.witness)} invalid under the pinned schema ${JSON.stringify(a)}`);
        assert.ok(!valid(b, r.witness), `no: witness ${JSON.stringify(r.witness)} valid under the new schema ${JSON.stringify(b)}`);
      }
      if (r.verdict === 'yes') {
        const rand = rng(seed);
        for (let i = 0; i < 40; i++) {
          const v = sample(a, rand);
          if (valid(a, v)) {
            tally.checkedValues = (tally.checkedValues ?? 0) + 1;
            assert.ok(valid(b, v), `yes, but ${JSON.stringify(v)} is valid under ${JSON.stringify(a)} and not under ${JSON.stringify(b)}`);
          }
        }
      }
    }

    it('yes is never contradicted by a value, and every no carries a witness Ajv confirms (random JSON Schemas)', () => {
      const tally: Record<string, number> = {};
      fc.assert(
        fc.property(pair, fc.integer(), ([a, b], seed) => checkSound(a, b, seed, tally)),
        { numRuns: 1500 },
      );
      // the property is not vacuous: all three answers occur, and yes was tested on many values
      assert.ok((tally.yes ?? 0) > 200 && (tally.no ?? 0) > 200 && (tally.unknown ?? 0) > 0, JSON.stringify(tally));
      assert.ok((tally.checkedValues ?? 0) > 2000, JSON.stringify(tally));
    });

    it('a schema is included in any union that contains it (never no)', () => {
      fc.assert(
        fc.property(schema, schema, (a, x) => {
          const r = schemaIncludes(a, { anyOf: [x, a] });
          assert.notEqual(r.verdict, 'no', JSON.stringify(r));
        }),
        { numRuns: 300 },
      );
    });

    /** zod definitions, converted the way pinflow converts contracts. */
    const { zod } = fc.letrec<{ zod: z.ZodType }>((tie) => ({
      zod: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constantFrom<z.ZodType>(z.string(), z.string().min(1), z.string().max(2), z.number(), z.int(), z.int().min(0), z.number().positive(), z.boolean(), z.null(), z.enum(['a', 'b']), z.literal('a'), z.unknown(), z.email()),
        tie('zod').map((t) => t.nullable()),
        tie('zod').map((t) => z.array(t)),
        tie('zod').map((t) => z.array(t).min(1)),
        fc.tuple(tie('zod'), tie('zod')).map(([x, y]) => z.union([x, y])),
        fc.tuple(tie('zod'), tie('zod')).map(([x, y]) => z.tuple([x, y])),
        fc
          .record({ shape: fc.dictionary(fc.constantFrom(...KEYS), fc.tuple(tie('zod'), fc.boolean()), { maxKeys: 3 }), strict: fc.boolean() })
          .map(({ shape, strict }) => {
            const s = Object.fromEntries(Object.entries(shape).map(([k, [t, opt]]) => [k, opt ? t.optional() : t]));
            return strict ? z.strictObject(s) : z.object(s);
          }),
      ),
    }));

    it('the same holds on schemas produced by z.toJSONSchema (input and output)', () => {
      const tally: Record<string, number> = {};
      fc.assert(
        fc.property(zod, zod, fc.constantFrom<'input' | 'output'>('input', 'output'), fc.integer(), (x, y, io, seed) => {
          const a = json(x, io);
          checkSound(a, json(y, io), seed, tally);
          checkSound(a, mutate(a, rng(seed)), seed, tally);
        }),
        { numRuns: 400 },
      );
      assert.ok((tally.yes ?? 0) > 50 && (tally.no ?? 0) > 50, JSON.stringify(tally));
    });
  });
});
