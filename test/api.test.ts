import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { createApi } from '../client/http';
import { rpcs } from './fixtures/rpcs';
import { sumGraph } from './fixtures/graphs';
import { createEnv, createKey, type Env, eventually, keyFetch, withKey } from './support/harness';

/** Every request of this suite sends the suite's admin key (auth is on). */
let fetch: typeof globalThis.fetch = globalThis.fetch;

interface ErrorBody {
  error: { code: string; message: string; details: unknown };
}

describe('HTTP API', function () {
  this.timeout(120_000);
  let env: Env;
  let api: FastifyInstance;
  let base: string;

  before(async () => {
    env = await createEnv('api', rpcs);
    const key = await createKey(env);
    fetch = keyFetch(key);
    api = withKey(createApi({ pinflow: env.pinflow }), key);
    await api.listen({ host: '127.0.0.1', port: 0 });
    const addr = api.server.address() as { port: number };
    base = `http://127.0.0.1:${addr.port}`;
  });
  after(async () => {
    await api?.close();
    await env?.stop();
  });

  const post = (path: string, body: unknown, raw = false) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw ? (body as string) : JSON.stringify(body) });
  const get = (path: string) => fetch(`${base}${path}`);
  const countRows = async (table: string) => (await env.db.query<{ n: number }>({ text: `SELECT count(*)::int AS n FROM ${table}` }))[0]!.n;

  it('reports "no worker polling" on GET /health when no worker runs', async () => {
    const res = await get('/health');
    assert.equal(res.status, 503);
    const body = (await res.json()) as { ok: boolean; temporal: { ok: boolean }; database: { ok: boolean }; worker: { polling: boolean; pollers: number } };
    assert.equal(body.ok, false);
    assert.equal(body.temporal.ok, true);
    assert.equal(body.database.ok, true);
    assert.equal(body.worker.polling, false);
    assert.equal(body.worker.pollers, 0);
  });

  it('reports healthy once a worker polls the task queue', async () => {
    await env.startWorker(rpcs);
    const body = await eventually(async () => {
      const res = await get('/health');
      const b = (await res.json()) as { ok: boolean; worker: { polling: boolean } };
      return res.status === 200 && b.ok ? b : undefined;
    });
    assert.equal(body.worker.polling, true);
  });

  it('publishes, lists definitions and versions, and reads a version', async () => {
    const res = await post('/definitions/sum/versions', sumGraph);
    assert.equal(res.status, 201);
    const pub = (await res.json()) as { version: string; created: boolean; seq: number; definition: string };
    assert.deepEqual({ ...pub, version: 'x' }, { definition: 'sum', version: 'x', seq: 1, created: true });
    const again = await post('/definitions/sum/versions', { ...sumGraph, notes: 'docs only' });
    assert.equal(again.status, 200);
    assert.equal(((await again.json()) as { version: string }).version, pub.version);

    const defs = (await (await get('/definitions')).json()) as { definitions: Array<{ name: string; latestVersion: string; versionCount: number }> };
    assert.deepEqual(
      defs.definitions.map((d) => [d.name, d.latestVersion, d.versionCount]),
      [['sum', pub.version, 1]],
    );
    const versions = (await (await get('/definitions/sum/versions')).json()) as { versions: Array<{ hash: string; seq: number; latest: boolean }> };
    assert.deepEqual(
      versions.versions.map((v) => [v.hash, v.seq, v.latest]),
      [[pub.version, 1, true]],
    );
    const version = (await (await get(`/versions/${pub.version}`)).json()) as { hash: string; graph: { entry: string }; contracts: Record<string, { hash: string }> };
    assert.equal(version.graph.entry, 'add');
    assert.deepEqual(Object.keys(version.contracts).sort(), ['math.add', 'text.greet']);
    assert.match(version.contracts['math.add']!.hash, /^[0-9a-f]{64}$/);
  });

  it('starts a run and serves its detail with steps and the Temporal UI link', async () => {
    const res = await post('/runs', { definition: 'sum', input: { a: 4, b: 4, name: 'http' }, runId: 'http-run-1' });
    assert.equal(res.status, 201);
    const started = (await res.json()) as { runId: string; temporalRunId: string };
    assert.equal(started.runId, 'http-run-1');
    await env.pinflow.result('http-run-1');
    const detail = await eventually(async () => {
      const d = (await (await get('/runs/http-run-1')).json()) as {
        status: string;
        output: unknown;
        steps: Array<{ stepInstance: string }>;
        temporalUiUrl: string;
      };
      return d.status === 'COMPLETED' ? d : undefined;
    });
    assert.deepEqual(detail.output, { sum: 8, doubled: 16, greeting: 'hello http' });
    assert.deepEqual(
      detail.steps.map((s) => s.stepInstance),
      ['add', 'double', 'big', 'greet', 'done'],
    );
    assert.equal(detail.temporalUiUrl, `http://localhost:8233/namespaces/${env.namespace}/workflows/http-run-1/${started.temporalRunId}/history`);
    const list = (await (await get('/runs?definition=sum&status=COMPLETED&limit=10')).json()) as { runs: Array<{ id: string }>; nextCursor: string | null };
    assert.deepEqual(
      list.runs.map((r) => r.id),
      ['http-run-1'],
    );
    assert.equal(list.nextCursor, null);
  });

  describe('GET /runs?meta.<key>=<value>: the run list filtered by metadata', () => {
    type Page = { runs: Array<{ id: string }>; nextCursor: string | null };
    const ids = async (path: string) => {
      const res = await get(path);
      assert.equal(res.status, 200, await res.clone().text());
      const page = (await res.json()) as Page;
      return page.runs.map((r) => r.id);
    };
    const badQuery = async (path: string) => {
      const res = await get(path);
      assert.equal(res.status, 400);
      const body = (await res.json()) as ErrorBody;
      assert.equal(body.error.code, 'REQUEST_INVALID');
      return body.error;
    };

    // Started one after another, so newest first is the reverse of this order.
    const runs: Array<[string, Record<string, string | number | boolean>]> = [
      ['meta-acme-eu', { customer: 'acme', region: 'eu' }],
      ['meta-globex', { customer: 'globex' }],
      ['meta-acme-us', { customer: 'acme', region: 'us' }],
      ['meta-acme-eu-gold', { customer: 'acme', region: 'eu', tier: 'gold' }],
      ['meta-initech', { customer: 'initech', priority: 1, vip: true }],
    ];
    before(async () => {
      // Self-contained under PINFLOW_TEST_GREP: publishing is idempotent, and listing needs no worker.
      await env.pinflow.publish('sum', sumGraph);
      for (const [runId, metadata] of runs) await env.pinflow.start({ definition: 'sum', input: { a: 1, b: 2, name: 'm' }, runId, metadata });
      await eventually(async () => (await ids('/runs?limit=500')).filter((id) => id.startsWith('meta-')).length === runs.length, { what: 'the metadata runs projected' });
    });

    it('returns exactly the runs whose metadata has the key with that value, newest first', async () => {
      assert.deepEqual(await ids('/runs?meta.customer=acme'), ['meta-acme-eu-gold', 'meta-acme-us', 'meta-acme-eu']);
      assert.deepEqual(await ids('/runs?meta.customer=globex'), ['meta-globex']);
    });

    it('narrows with every further metadata key, and combines with the other filters', async () => {
      assert.deepEqual(await ids('/runs?meta.customer=acme&meta.region=eu'), ['meta-acme-eu-gold', 'meta-acme-eu']);
      assert.deepEqual(await ids('/runs?meta.customer=acme&meta.region=eu&meta.tier=gold'), ['meta-acme-eu-gold']);
      assert.deepEqual(await ids('/runs?definition=sum&tenant=default&meta.region=us'), ['meta-acme-us']);
      assert.deepEqual(await ids('/runs?definition=other&meta.customer=acme'), []);
    });

    it('returns no runs for a metadata value nothing has, and matches values exactly', async () => {
      assert.deepEqual(await ids('/runs?meta.customer=nobody'), []);
      assert.deepEqual(await ids('/runs?meta.customer=ACME'), []);
      assert.deepEqual(await ids('/runs?meta.customer='), []);
      // Over HTTP values are strings: "1" is not the number 1 the run was started with.
      assert.deepEqual(await ids('/runs?meta.priority=1'), []);
      assert.deepEqual(await ids('/runs?meta.vip=true'), []);
    });

    it('pages a metadata-filtered list with limit and nextCursor, with no duplicates or gaps', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res = await get(`/runs?meta.customer=acme&limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        assert.equal(res.status, 200);
        const page = (await res.json()) as Page;
        assert.equal(page.runs.length, 1);
        seen.push(page.runs[0]!.id);
        cursor = page.nextCursor;
        pages++;
      } while (cursor && pages < 10);
      assert.equal(pages, 3);
      assert.deepEqual(seen, ['meta-acme-eu-gold', 'meta-acme-us', 'meta-acme-eu']);
    });

    it('filters by metadata in the library, matching numbers and booleans as JSON values', async () => {
      const list = async (metadata: Record<string, string | number | boolean>) => (await env.pinflow.listRuns({ metadata })).runs.map((r) => r.id);
      assert.deepEqual(await list({ priority: 1, vip: true }), ['meta-initech']);
      assert.deepEqual(await list({ priority: '1' }), []);
      assert.deepEqual(await list({ vip: false }), []);
      assert.deepEqual(await list({ customer: 'acme', region: 'us' }), ['meta-acme-us']);
    });

    it('rejects a bad metadata filter in the library, naming the key, what was received and what is allowed', async () => {
      const rejects = (metadata: unknown, message: string, details: unknown) =>
        assert.rejects(env.pinflow.listRuns({ metadata: metadata as Record<string, string> }), (e: Error & { code?: string; details?: unknown }) => {
          assert.equal(e.name, 'InvalidRequestError');
          assert.equal(e.code, 'REQUEST_INVALID');
          assert.equal(e.message, message);
          assert.deepEqual(e.details, details);
          return true;
        });
      await rejects({ 'bad key': 'x' }, 'metadata key "bad key" is invalid; it must match /^[A-Za-z0-9_.-]{1,64}$/', { field: 'metadata', received: 'bad key' });
      await rejects({ ['k'.repeat(65)]: 'x' }, `metadata key "${'k'.repeat(65)}" is invalid; it must match /^[A-Za-z0-9_.-]{1,64}$/`, {
        field: 'metadata',
        received: 'k'.repeat(65),
      });
      await rejects({ customer: { name: 'acme' } }, 'metadata.customer is an object; allowed: a string, a finite number or a boolean', {
        field: 'metadata.customer',
        received: { name: 'acme' },
      });
      await rejects({ a: 1, b: 2, c: 3, d: 4, e: 5, f: 6 }, 'metadata filter has 6 keys (a, b, c, d, e, f); allowed: at most 5', {
        field: 'metadata',
        received: ['a', 'b', 'c', 'd', 'e', 'f'],
      });
      await rejects(['acme'], 'metadata filter is an array; allowed: an object of up to 5 keys', { field: 'metadata', received: ['acme'] });
    });

    it('rejects a bad meta.<key> query parameter with 400 REQUEST_INVALID, naming the field', async () => {
      const empty = await badQuery('/runs?meta.=x');
      assert.equal(empty.message, 'invalid request query: query.meta.: metadata key "" is invalid; it must match /^[A-Za-z0-9_.-]{1,64}$/');
      assert.deepEqual(empty.details, { issues: [{ field: 'query.meta.', message: 'metadata key "" is invalid; it must match /^[A-Za-z0-9_.-]{1,64}$/' }] });
      assert.match((await badQuery('/runs?meta.bad%20key=x')).message, /^invalid request query: query\.meta\.bad key: metadata key "bad key" is invalid/);
      const six = await badQuery('/runs?meta.a=1&meta.b=2&meta.c=3&meta.d=4&meta.e=5&meta.f=6');
      assert.equal(six.message, 'invalid request query: query.meta: 6 metadata keys (a, b, c, d, e, f); allowed: at most 5');
      const twice = await badQuery('/runs?meta.customer=acme&meta.customer=globex');
      assert.equal(twice.message, 'invalid request query: query.meta.customer: expected one value, received 2 ("acme", "globex")');
      // Only meta.* is taken out before the strict schema: other unknown parameters are still refused.
      assert.match((await badQuery('/runs?meta=acme')).message, /query: unknown field\(s\) meta$/);
      assert.match((await badQuery('/runs?metadata.customer=acme')).message, /unknown field\(s\) metadata\.customer$/);
      assert.deepEqual(await ids('/runs?meta.a=1&meta.b=2&meta.c=3&meta.d=4&meta.e=5'), []);
    });
  });

  describe('bad input: a stable code, a clear message, nothing persisted', () => {
    it('rejects a graph that fails the schema with 422 and every issue', async () => {
      const before = [await countRows('versions'), await countRows('definitions')];
      const res = await post('/definitions/broken/versions', { entry: 'a', steps: [{ id: 'a', type: 'rpc', rpc: 'math.add', next: 42 }, { id: 'a', type: 'warp' }] });
      assert.equal(res.status, 422);
      const body = (await res.json()) as ErrorBody;
      assert.equal(body.error.code, 'GRAPH_INVALID');
      const issues = (body.error.details as { issues: Array<{ code: string; path: string; stepId?: string }> }).issues;
      assert.deepEqual(
        issues.map((i) => [i.code, i.path, i.stepId]).sort(),
        [
          ['DUPLICATE_STEP_ID', 'steps[1].id', 'a'],
          ['SCHEMA_INVALID', 'steps[0].next', 'a'],
          ['UNKNOWN_STEP_TYPE', 'steps[1].type', 'a'],
        ],
      );
      assert.deepEqual([await countRows('versions'), await countRows('definitions')], before);
    });

    it('rejects an RPC that is not registered, and an expression that does not compile', async () => {
      const res = await post('/definitions/broken/versions', {
        entry: 'a',
        steps: [
          { id: 'a', type: 'rpc', rpc: 'payments.refund', next: 'b' },
          { id: 'b', type: 'return', output: 'steps.a.(' },
        ],
      });
      assert.equal(res.status, 422);
      const body = (await res.json()) as ErrorBody;
      const issues = (body.error.details as { issues: Array<{ code: string; path: string }> }).issues;
      assert.deepEqual(
        issues.map((i) => [i.code, i.path]),
        [
          ['RPC_NOT_REGISTERED', 'steps[0].rpc'],
          ['EXPRESSION_INVALID', 'steps[1].output'],
        ],
      );
      assert.equal(await env.pinflow.catalog.getDefinition('broken'), undefined);
    });

    it('rejects an invalid definition name', async () => {
      const res = await post('/definitions/Bad_Name/versions', sumGraph);
      assert.equal(res.status, 400);
      const body = (await res.json()) as ErrorBody;
      assert.equal(body.error.code, 'DEFINITION_NAME_INVALID');
      assert.match(body.error.message, /^definition name "Bad_Name" is invalid/);
    });

    it('rejects a malformed JSON body', async () => {
      const before = await countRows('runs');
      const res = await post('/runs', '{"definition": "sum",', true);
      assert.equal(res.status, 400);
      const body = (await res.json()) as ErrorBody;
      assert.equal(body.error.code, 'MALFORMED_JSON');
      assert.match(body.error.message, /^request body is not valid JSON/);
      assert.equal(await countRows('runs'), before);
    });

    it('rejects an unknown definition at start', async () => {
      const res = await post('/runs', { definition: 'no-such-thing', input: {} });
      assert.equal(res.status, 404);
      const body = (await res.json()) as ErrorBody;
      assert.deepEqual(body.error, {
        code: 'DEFINITION_NOT_FOUND',
        message: 'definition "no-such-thing" does not exist',
        details: { definition: 'no-such-thing' },
      });
    });

    it('rejects an unknown version at start, and a malformed one', async () => {
      const hash = 'f'.repeat(64);
      const res = await post('/runs', { version: hash });
      assert.equal(res.status, 404);
      assert.equal(((await res.json()) as ErrorBody).error.code, 'VERSION_NOT_FOUND');
      const bad = await post('/runs', { version: 'v1' });
      assert.equal(bad.status, 400);
      const body = (await bad.json()) as ErrorBody;
      assert.equal(body.error.code, 'REQUEST_INVALID');
      assert.equal(body.error.message, 'version "v1" is not a version hash (64 lowercase hex digits)');
    });

    it('rejects unknown body fields and bad query parameters, naming the field', async () => {
      const res = await post('/runs', { definition: 'sum', inputs: {} });
      assert.equal(res.status, 400);
      const body = (await res.json()) as ErrorBody;
      assert.equal(body.error.code, 'REQUEST_INVALID');
      assert.equal(body.error.message, 'invalid request body: body: unknown field(s) inputs');
      const q = await get('/runs?status=DONE');
      assert.equal(q.status, 400);
      const qb = (await q.json()) as ErrorBody;
      assert.equal(qb.error.code, 'REQUEST_INVALID');
      assert.match(qb.error.message, /query\.status/);
      const limit = await get('/runs?limit=0');
      assert.equal(limit.status, 400);
    });

    it('rejects a cursor it did not issue', async () => {
      const res = await get('/runs?cursor=garbage');
      assert.equal(res.status, 400);
      const body = (await res.json()) as ErrorBody;
      assert.equal(body.error.code, 'CURSOR_INVALID');
    });

    it('answers unknown runs, versions and routes with 404 and a code', async () => {
      const run = await get('/runs/does-not-exist');
      assert.equal(run.status, 404);
      assert.equal(((await run.json()) as ErrorBody).error.code, 'RUN_NOT_FOUND');
      const ver = await get(`/versions/${'0'.repeat(64)}`);
      assert.equal(((await ver.json()) as ErrorBody).error.code, 'VERSION_NOT_FOUND');
      const defs = await get('/definitions/nope/versions');
      assert.equal(((await defs.json()) as ErrorBody).error.code, 'DEFINITION_NOT_FOUND');
      const route = await get('/nowhere');
      assert.equal(route.status, 404);
      assert.equal(((await route.json()) as ErrorBody).error.code, 'NOT_FOUND');
    });
  });
});
