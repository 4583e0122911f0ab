import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { createApi } from '../client/http';
import { rpcs } from './fixtures/rpcs';
import { sumGraph } from './fixtures/graphs';
import { createEnv, eventually, type Env } from './support/harness';

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
    api = createApi({ pinflow: env.pinflow });
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
      assert.equal(await env.pinflow.store.getDefinition('broken'), undefined);
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
