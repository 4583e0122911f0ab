/**
 * The HTTP contract: the OpenAPI document against the README, every bad-input
 * class against every route, and 10,000 fuzzed requests: no 5xx, and no
 * refused request changes any table. Real Postgres, the real Temporal dev
 * server and a real worker; only the RPC handlers are fixtures.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { LIMITS } from '../client/api-schemas';
import { createApi } from '../client/http';
import { sumGraph } from './fixtures/graphs';
import { rpcs } from './fixtures/rpcs';
import { createEnv, createKey, type Env, withKey } from './support/harness';

interface Route {
  method: string;
  /** OpenAPI form: `/runs/{id}`. */
  path: string;
  params: string[];
  query: string[];
  hasBody: boolean;
}

interface ErrorBody {
  error: { code: string; message: string; details: { field?: string; issues?: Array<{ field: string }> } | null; errorId?: string };
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';

const README = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

/** The HTTP API section of the README. */
function readmeApiSection(): string {
  const start = README.indexOf('\n## HTTP API');
  const end = README.indexOf('\n## ', start + 5);
  assert.ok(start >= 0 && end > start, 'README has an "HTTP API" section');
  return README.slice(start, end);
}

/** `METHOD /path/{param}` of every row of the README route table. */
function readmeRoutes(): string[] {
  const out: string[] = [];
  for (const line of readmeApiSection().split('\n')) {
    const m = /^\| `(GET|POST|PUT|DELETE|PATCH) ([^`]+)`/.exec(line);
    if (m) out.push(`${m[1]} ${m[2]!.replace(/:([A-Za-z]+)/g, '{$1}')}`);
  }
  return out.sort();
}

/** Every code in the README's error-code table. */
function readmeErrorCodes(): string[] {
  const codes = new Set<string>();
  for (const line of readmeApiSection().split('\n')) {
    if (!/^\| `[A-Z_]+`/.test(line)) continue;
    const first = line.split('|')[1]!;
    for (const m of first.matchAll(/`([A-Z][A-Z_]+)`/g)) codes.add(m[1]!);
  }
  return [...codes].sort();
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** Percent-encode every byte (a lone surrogate becomes U+FFFD's bytes: a URL carries UTF-8 only). */
const enc = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('');

describe('HTTP contract: one set of schemas, OpenAPI, and no 5xx for bad input', function () {
  this.timeout(300_000);
  let env: Env;
  let api: FastifyInstance;
  let doc: { openapi: string; paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string }>; requestBody?: unknown; responses: Record<string, unknown> }>> };
  let routes: Route[];
  let tables: string[];
  let version: string;
  const internals: Array<{ errorId: string; err: unknown }> = [];
  const runId = 'contract-run-1';

  before(async () => {
    env = await createEnv('contract', rpcs);
    await env.startWorker(rpcs);
    api = withKey(createApi({ pinflow: env.pinflow, onInternalError: (errorId, err) => internals.push({ errorId, err }), rateLimit: { max: 1_000_000, timeWindowMs: 60_000 } }), await createKey(env));
    await api.ready();
    const res = await api.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    doc = res.json();
    routes = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        routes.push({
          method: method.toUpperCase(),
          path,
          params: [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!),
          query: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
          hasBody: op.requestBody !== undefined,
        });
      }
    }
    tables = (
      await env.db.query<{ name: string }>({ text: `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1` })
    )
      .map((r) => r.name)
      // The audit log records refused requests too (append-only, by design): every other table must not change.
      .filter((t) => t !== 'audit_log');
    version = (await env.pinflow.publish('sum', sumGraph)).version;
    await env.pinflow.start({ definition: 'sum', input: { a: 4, b: 4, name: 'contract' }, runId });
    await env.pinflow.result(runId);
    await settle();
  });
  after(async () => {
    await api?.close();
    await env?.stop();
  });

  /** Row counts of every table, in one query. */
  async function counts(): Promise<Record<string, number>> {
    const row = (await env.db.query<Record<string, number>>({ text: `SELECT ${tables.map((t) => `(SELECT count(*)::int FROM "${t}") AS "${t}"`).join(', ')}` }))[0]!;
    return { ...row };
  }

  /** Wait until no run is RUNNING and the counts hold still (a worker may be finishing a run). */
  async function settle(): Promise<Record<string, number>> {
    const deadline = Date.now() + 60_000;
    let last = await counts();
    for (;;) {
      await new Promise((r) => setTimeout(r, 15));
      const running = (await env.db.query<{ n: number }>({ text: `SELECT count(*)::int AS n FROM runs WHERE status = 'RUNNING'` }))[0]!.n;
      const now = await counts();
      if (running === 0 && JSON.stringify(now) === JSON.stringify(last)) return now;
      if (Date.now() > deadline) throw new Error(`the database did not settle: ${running} run(s) RUNNING`);
      last = now;
    }
  }

  const fill = (r: Route, values: Record<string, string> = {}) =>
    r.path.replace(/\{([^}]+)\}/g, (_m, name: string) => values[name] ?? (name === 'hash' ? version : name === 'id' ? runId : name === 'name' && r.path.startsWith('/definitions') ? 'sum' : 'ticket.closed'));

  const send = (method: string, url: string, payload?: string | Buffer, contentType = 'application/json') =>
    api.inject({ method: method as Method, url, ...(payload !== undefined ? { payload, headers: { 'content-type': contentType } } : {}) });

  function expectError(res: LightMyRequestResponse, status: number, code: string, what: string): ErrorBody['error'] {
    assert.ok(res.statusCode < 500, `${what}: got ${res.statusCode} ${res.body.slice(0, 300)}`);
    assert.equal(res.statusCode, status, `${what}: ${res.body.slice(0, 300)}`);
    const body = res.json<ErrorBody>();
    assert.equal(body.error.code, code, `${what}: ${res.body.slice(0, 300)}`);
    assert.equal(typeof body.error.message, 'string');
    return body.error;
  }

  describe('the OpenAPI document', () => {
    it('lists exactly the routes of the README route table', () => {
      assert.equal(doc.openapi, '3.1.0');
      const documented = routes.map((r) => `${r.method} ${r.path}`).sort();
      assert.deepEqual(documented, readmeRoutes());
      assert.equal(documented.length, 60);
    });

    it('has request and response schemas for every route, and names every README error code in its error responses', () => {
      const mentioned = new Set<string>();
      for (const [path, ops] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(ops)) {
          const statuses = Object.keys(op.responses);
          assert.ok(statuses.some((s) => s.startsWith('2')), `${method} ${path} documents a success response`);
          assert.ok(statuses.includes('400') && statuses.includes('500'), `${method} ${path} documents 400 and 500`);
          for (const [status, r] of Object.entries(op.responses)) {
            if (Number(status) < 400) continue;
            const schema = (r as { content: { 'application/json': { schema: { properties: Record<string, { properties?: { code?: { enum?: string[] } } }> } } } }).content['application/json'].schema;
            // GET /health answers 503 with the health body itself.
            if (path === '/health' && status === '503') continue;
            const codes = schema.properties.error?.properties?.code?.enum;
            assert.ok(codes && codes.length > 0, `${method} ${path} ${status} names its error codes`);
            for (const c of codes) mentioned.add(c);
          }
        }
      }
      const readme = readmeErrorCodes();
      assert.ok(readme.length >= 30, `README error table has ${readme.length} codes`);
      assert.deepEqual(
        readme.filter((c) => !mentioned.has(c)),
        [],
        'every README error code appears in an error response of the document',
      );
      // And nothing documented is missing from the README table.
      assert.deepEqual([...mentioned].filter((c) => !readme.includes(c)), []);
    });

    it('serves the interactive reference at /docs from the package (offline)', async () => {
      const page = await api.inject({ method: 'GET', url: '/docs' });
      assert.equal(page.statusCode, 200);
      assert.match(page.body, /swagger-ui/i);
      const asset = await api.inject({ method: 'GET', url: '/docs/static/swagger-ui-bundle.js' });
      assert.equal(asset.statusCode, 200);
      assert.ok(asset.body.length > 100_000);
    });
  });

  describe('bad input, route by route (walking the OpenAPI route list)', () => {
    let before: Record<string, number>;
    beforeEach(async () => {
      before = await settle();
    });
    afterEach(async () => {
      assert.deepEqual(await counts(), before, 'no refused request changed any table');
      assert.deepEqual(internals, [], 'no internal error');
    });

    const bodyRoutes = () => routes.filter((r) => r.hasBody);
    const paramRoutes = () => routes.filter((r) => r.params.length > 0);

    it('refuses a NUL character in a path parameter with 400 STRING_INVALID naming the parameter', async () => {
      for (const r of paramRoutes()) {
        const p = r.params[0]!;
        const url = fill(r, { [p]: 'a%00b' });
        const e = expectError(await send(r.method, url, r.hasBody ? '{}' : undefined), 400, 'STRING_INVALID', `${r.method} ${url}`);
        assert.equal(e.details?.field, `params.${p}`);
      }
    });

    it('refuses a lone surrogate in a path parameter (invalid UTF-8 in the URL) with 400 URL_INVALID', async () => {
      for (const r of paramRoutes()) {
        for (const bad of ['%ED%A0%80', '%ED%B0%80', 'abc%2', '%C0']) {
          const url = fill(r, { [r.params[0]!]: bad });
          expectError(await send(r.method, url, r.hasBody ? '{}' : undefined), 400, 'URL_INVALID', `${r.method} ${url}`);
        }
      }
    });

    it('refuses a NUL character in a query value or key with 400 STRING_INVALID', async () => {
      for (const r of routes) {
        const name = r.query[0] ?? 'tenant';
        for (const [q, field] of [
          [`${name}=a%00`, `query.${name}`],
          ['%00=1', 'query'],
        ] as const) {
          const url = `${fill(r)}?${q}`;
          const e = expectError(await send(r.method, url, r.hasBody ? '{}' : undefined), 400, 'STRING_INVALID', `${r.method} ${url}`);
          assert.equal(e.details?.field, field);
        }
      }
    });

    it('refuses a NUL character or a lone surrogate anywhere in a body (nested, in values and keys) with 400 STRING_INVALID naming the path', async () => {
      const cases: Array<[string, string]> = [
        ['{"by":"ops","deep":{"list":[{"s":"a\\u0000b"}]}}', 'body.deep.list[0].s'],
        ['{"by":"ops","deep":{"list":[1,{"s":"\\ud800"}]}}', 'body.deep.list[1].s'],
        ['{"by":"ops","deep":{"list":[1,{"s":"\\udfff x"}]}}', 'body.deep.list[1].s'],
        ['{"by":"ops","deep":{"k\\u0000":1}}', 'body.deep'],
        ['{"by":"\\ud83d"}', 'body.by'],
      ];
      for (const r of bodyRoutes()) {
        for (const [payload, field] of cases) {
          const e = expectError(await send(r.method, fill(r), payload), 400, 'STRING_INVALID', `${r.method} ${r.path} ${payload}`);
          assert.equal(e.details?.field, field);
        }
      }
      // Where the strings really go: graph fields, run metadata, event payloads, decision reasons.
      const realistic: Array<[string, string, unknown, string]> = [
        ['POST', '/definitions/nul-graph/versions', { ...sumGraph, steps: [{ ...sumGraph.steps[0], rpc: 'math.add\u0000' }, ...sumGraph.steps.slice(1)] }, 'body.steps[0].rpc'],
        ['POST', '/runs', { definition: 'sum', input: { a: 1, b: 2, name: 'x' }, metadata: { customer: 'acme\u0000' } }, 'body.metadata.customer'],
        ['POST', '/runs', { definition: 'sum', input: { a: 1, b: 2, name: '\ud800' } }, 'body.input.name'],
        ['POST', '/events', { name: 'ticket.closed', correlationKey: 'k', payload: { note: ['ok', 'bad\u0000'] } }, 'body.payload.note[1]'],
        ['POST', `/runs/${runId}/decisions`, { action: 'retry', by: 'ops', reason: 'because\u0000' }, 'body.reason'],
        ['PUT', '/correlation-rules/ticket.closed', { expression: 'payload.id\u0000', by: 'ops' }, 'body.expression'],
      ];
      for (const [method, url, body, field] of realistic) {
        const e = expectError(await send(method, url, JSON.stringify(body)), 400, 'STRING_INVALID', `${method} ${url}`);
        assert.equal(e.details?.field, field);
      }
    });

    it('refuses cursors it did not issue, strictly decoded, with 400 CURSOR_INVALID', async () => {
      // GET /audit pages by entry id (its cursor is a number): test/security.test.ts refuses bad ones.
      const cursorRoutes = routes.filter((r) => r.query.includes('cursor') && r.path !== '/audit');
      assert.deepEqual(cursorRoutes.map((r) => r.path).sort(), ['/events', '/runs']);
      for (const r of cursorRoutes) {
        const k = r.path === '/runs' ? 's' : 'r';
        const bad = [
          '0',
          '12',
          '+275760-09-13T00:00:00.000Z',
          'garbage',
          b64({ [k]: '+275760-09-13T00:00:00.000Z', i: 'x' }),
          b64({ [k]: '12', i: 'x' }),
          b64({ [k]: '0', i: 'x' }),
          b64({ [k]: '2024-02-30T00:00:00.000Z', i: 'x' }),
          b64({ [k]: '2024-01-01T00:00:00.000Z', i: 'a\u0000' }),
          b64({ [k]: '2024-01-01T00:00:00.000Z', i: '' }),
          b64({ [k]: '2024-01-01T00:00:00.000Z' }),
          b64({ [k === 's' ? 'r' : 's']: '2024-01-01T00:00:00.000Z', i: 'x' }),
          b64(['2024-01-01T00:00:00.000Z', 'x']),
          'x'.repeat(5000),
        ];
        for (const c of bad) expectError(await send('GET', `${r.path}?cursor=${encodeURIComponent(c)}`), 400, 'CURSOR_INVALID', `${r.path} cursor ${c.slice(0, 40)}`);
        // A cursor the API issued still works.
        const good = await send('GET', `${r.path}?cursor=${b64({ [k]: '2024-01-01T00:00:00.000Z', i: 'x' })}`);
        assert.equal(good.statusCode, 200, good.body);
      }
      await assert.rejects(env.pinflow.listRuns({ cursor: b64({ s: '12', i: 'x' }) }), (e: { code?: string }) => e.code === 'CURSOR_INVALID');
      await assert.rejects(env.pinflow.events.listEvents({}, { cursor: b64({ r: '0', i: 'x' }) }), (e: { code?: string }) => e.code === 'CURSOR_INVALID');
    });

    it('refuses bodies nested too deep (a mapping 2,000 deep, metadata 10,000 deep) with 400 REQUEST_TOO_DEEP', async () => {
      const nest = (n: number, leaf: unknown = 1) => {
        let v: unknown = leaf;
        for (let i = 0; i < n; i++) v = i % 2 ? [v] : { m: v };
        return v;
      };
      // JSON text nested n deep, written without recursion (JSON.stringify of 10,000 levels overflows the test's own stack).
      const deepText = (n: number) => `${'{"m":['.repeat(n / 2)}1${']}'.repeat(n / 2)}`;
      for (const r of bodyRoutes()) {
        expectError(await send(r.method, fill(r), `{"by":"ops","x":${deepText(10_000)}}`), 400, 'REQUEST_TOO_DEEP', `${r.method} ${r.path}`);
        expectError(await send(r.method, fill(r), `{"x":${'['.repeat(100_000)}`), 400, 'REQUEST_TOO_DEEP', `${r.method} ${r.path} unbalanced`);
      }
      const deepMapping = { ...sumGraph, steps: [{ ...sumGraph.steps[0], input: nest(2_000, 'input.a') }, ...sumGraph.steps.slice(1)] };
      expectError(await send('POST', '/definitions/deep/versions', JSON.stringify(deepMapping)), 400, 'REQUEST_TOO_DEEP', 'a 2,000-deep mapping');
      expectError(await send('POST', '/runs', `{"definition":"sum","metadata":{"m":${deepText(10_000)}}}`), 400, 'REQUEST_TOO_DEEP', 'metadata 10,000 deep');
      // 64 levels are fine (this one is refused later, for another reason).
      const ok = await send('POST', '/runs', JSON.stringify({ definition: 'no-such-definition', metadata: { m: nest(60) } }));
      expectError(ok, 404, 'DEFINITION_NOT_FOUND', '60 levels');
      // The library door checks the same before the recursive graph schema or Temporal sees it.
      await assert.rejects(env.pinflow.publish('deep', deepMapping), (e: { code?: string }) => e.code === 'REQUEST_TOO_DEEP');
      await assert.rejects(env.pinflow.start({ definition: 'sum', metadata: { m: nest(10_000) } }), (e: { code?: string }) => e.code === 'REQUEST_TOO_DEEP');
    });

    it('refuses oversized bodies with 413 REQUEST_TOO_LARGE and oversized fields with 400, before Temporal is called', async () => {
      const big = JSON.stringify({ by: 'ops', x: 'x'.repeat(LIMITS.bodyBytes + 10) });
      for (const r of bodyRoutes()) expectError(await send(r.method, fill(r), big), 413, 'REQUEST_TOO_LARGE', `${r.method} ${r.path}`);
      const twoMb = 'r'.repeat(2 * 1024 * 1024);
      const reasonErr = expectError(await send('POST', `/runs/${runId}/decisions`, JSON.stringify({ action: 'retry', by: 'ops', reason: twoMb })), 400, 'REQUEST_INVALID', 'a 2 MB reason');
      assert.equal(reasonErr.details?.issues?.[0]?.field, 'body.reason');
      expectError(await send('POST', `/runs/${runId}/cancel`, JSON.stringify({ by: 'ops', reason: twoMb })), 400, 'REQUEST_INVALID', 'a 2 MB cancel reason');
      expectError(await send('POST', '/stalls/resolve', JSON.stringify({ rpc: 'math.add', action: 'retry', by: 'ops', note: twoMb })), 400, 'REQUEST_INVALID', 'a 2 MB note');
      expectError(await send('POST', '/runs', JSON.stringify({ definition: 'sum', input: { blob: 'i'.repeat(LIMITS.inputBytes) } })), 400, 'REQUEST_INVALID', 'a big input');
      expectError(await send('POST', '/runs', JSON.stringify({ definition: 'sum', metadata: { blob: 'm'.repeat(LIMITS.metadataBytes) } })), 400, 'REQUEST_INVALID', 'big metadata');
      expectError(await send('POST', '/runs', JSON.stringify({ definition: 'sum', metadata: { ['k'.repeat(300)]: 1 } })), 400, 'REQUEST_INVALID', 'a long metadata key');
      await assert.rejects(env.pinflow.resolveStall(runId, { action: 'retry', by: 'ops', reason: twoMb }), (e: { code?: string }) => e.code === 'REQUEST_INVALID');
    });

    it('refuses malformed JSON and empty JSON bodies with 400 MALFORMED_JSON, other content types with 415 CONTENT_TYPE_UNSUPPORTED', async () => {
      for (const r of bodyRoutes()) {
        for (const bad of ['{"by":', '{by: 1}', "{'a':1}", '[1,]', 'nul', '{"a":1}}', '\u0000']) expectError(await send(r.method, fill(r), bad), 400, 'MALFORMED_JSON', `${r.method} ${r.path} ${bad}`);
        expectError(await send(r.method, fill(r), ''), 400, 'MALFORMED_JSON', `${r.method} ${r.path} empty`);
        for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml']) {
          expectError(await send(r.method, fill(r), '{}', ct), 415, 'CONTENT_TYPE_UNSUPPORTED', `${r.method} ${r.path} ${ct}`);
        }
      }
    });

    it('refuses an overlong path parameter with 414 URL_TOO_LONG', async () => {
      for (const r of paramRoutes()) {
        const url = fill(r, { [r.params[0]!]: 'p'.repeat(LIMITS.paramLength + 1) });
        expectError(await send(r.method, url, r.hasBody ? '{}' : undefined), 414, 'URL_TOO_LONG', `${r.method} ${r.path}`);
      }
    });

    it('refuses contract manifests with an invalid JSON Schema or a remote $ref with 400 MANIFEST_INVALID', async () => {
      const hash = 'a'.repeat(64);
      const bad: unknown[] = [
        { type: 12 },
        { $ref: 'http://169.254.169.254/latest/meta-data' },
        { properties: { a: { $ref: 'https://example.com/schema.json' } } },
        { $ref: 'other.json#/x' },
        { $ref: '#/$defs/missing' },
        { minLength: -1 },
        'not a schema',
        null,
      ];
      for (const input of bad) {
        expectError(await send('POST', '/deploy/check', JSON.stringify({ contracts: { 'math.add': { hash, input, output: {} } } })), 400, 'MANIFEST_INVALID', JSON.stringify(input));
      }
      const missing = await send('POST', '/deploy/check', JSON.stringify({ contracts: { 'math.add': { hash, output: {} } } }));
      expectError(missing, 400, 'REQUEST_INVALID', 'a missing input schema');
      const local = await send('POST', '/deploy/check', JSON.stringify({ contracts: { 'math.add': { hash, input: { $defs: { n: { type: 'number' } }, properties: { a: { $ref: '#/$defs/n' } } }, output: true } } }));
      assert.equal(local.statusCode, 200, local.body);
    });

    it('answers unknown routes and methods with 404 NOT_FOUND', async () => {
      for (const [method, url] of [
        ['GET', '/nowhere'],
        ['PATCH', '/runs'],
        ['DELETE', '/definitions'],
        ['GET', `/runs/${runId}/nothing`],
      ] as const) {
        expectError(await send(method, url), 404, 'NOT_FOUND', `${method} ${url}`);
      }
    });
  });

  it("answers Node's and Fastify's own refusals on a real socket in pinflow's shape (bad URL encoding, headers too large)", async () => {
    await api.listen({ host: '127.0.0.1', port: 0 });
    const { port } = api.server.address() as { port: number };
    const raw = (path: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; body: ErrorBody }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET', headers }, (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (data += c));
          res.on('end', () => {
            try {
              resolve({ status: res.statusCode ?? 0, body: JSON.parse(data) as ErrorBody });
            } catch (err) {
              reject(new Error(`${res.statusCode}: ${data} (${(err as Error).message})`));
            }
          });
        });
        req.on('error', reject);
        req.end();
      });
    const badUrl = await raw('/runs/%E0%A4%A');
    assert.deepEqual([badUrl.status, badUrl.body.error.code], [400, 'URL_INVALID']);
    const headers = await raw('/health', { 'x-big': 'h'.repeat(20_000) });
    assert.deepEqual([headers.status, headers.body.error.code], [431, 'HEADERS_TOO_LARGE']);
    const longParam = await raw(`/runs/${'p'.repeat(LIMITS.paramLength + 1)}`);
    assert.deepEqual([longParam.status, longParam.body.error.code], [414, 'URL_TOO_LONG']);
  });

  it('answers an unexpected failure with 500 INTERNAL and an errorId, never the internal message, and logs the real error under that id', async () => {
    // A real Postgres failure: the definitions table is briefly renamed away.
    await env.db.query({ text: 'ALTER TABLE definitions RENAME TO definitions_away' });
    let res: LightMyRequestResponse;
    try {
      res = await send('GET', '/definitions');
    } finally {
      await env.db.query({ text: 'ALTER TABLE definitions_away RENAME TO definitions' });
    }
    assert.equal(res.statusCode, 500);
    const body = res.json<ErrorBody>();
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'details', 'errorId', 'message']);
    assert.equal(body.error.code, 'INTERNAL');
    assert.equal(body.error.message, 'internal error');
    assert.doesNotMatch(res.body, /definitions|relation|does not exist/);
    assert.equal(internals.length, 1);
    assert.equal(internals[0]!.errorId, body.error.errorId);
    assert.match((internals[0]!.err as Error).message, /definitions/);
    internals.length = 0;
  });

  it('fuzz: 10,000 random requests over every route get no 5xx, and no refused request changes any table', async () => {
    const started = Date.now();
    const statuses = new Map<number, number>();
    const hostile = [
      '',
      '\u0000',
      'a\u0000b',
      '\ud800',
      '\udc00x',
      '\ud83d\ude00',
      'x'.repeat(3000),
      '0',
      '12',
      '-1',
      '1e400',
      '+275760-09-13T00:00:00.000Z',
      '2024-01-01T00:00:00.000Z',
      '../../etc/passwd',
      "'; DROP TABLE runs; --",
      '%',
      '%00',
      '{"a":1}',
      '__proto__',
      'constructor',
      'null',
    ];
    const plausible = ['sum', 'nope', 'ticket.closed', 'default', 'acme', 'ops', runId, 'retry', 'skip', 'RUNNING', 'OPEN', 'math.add', 'payload.id', '5', 'true', 'fuzz-1'];
    const str = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...plausible, version) },
      { weight: 3, arbitrary: fc.constantFrom(...hostile) },
      { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
      { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
    );
    const scalar = fc.oneof(str, fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
    const json: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
      v: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(str, tie('v'), { maxKeys: 4 })),
    })).v;
    const fieldNames = ['definition', 'version', 'input', 'tenant', 'runId', 'metadata', 'action', 'by', 'reason', 'output', 'stallId', 'targetVersion', 'mapping', 'rpc', 'note', 'contracts', 'name', 'payload', 'eventId', 'correlationKey', 'expression', 'entry', 'steps'];
    const objectBody = fc.dictionary(fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...fieldNames) }, { weight: 1, arbitrary: str }), fc.oneof(scalar, json), { maxKeys: 6 });
    const rawBody = fc.oneof(
      { weight: 6, arbitrary: objectBody.map((o) => JSON.stringify(o)) },
      { weight: 1, arbitrary: json.map((v) => JSON.stringify(v) ?? 'null') },
      { weight: 1, arbitrary: fc.constantFrom('{"a":', '', '[[[[', '{"__proto__":{"x":1}}', `{"x":${'['.repeat(200)}${']'.repeat(200)}}`, '\u0000', '{"a":"\\ud800"}') },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 400 }).map((n) => JSON.stringify({ by: 'ops', deep: JSON.parse('['.repeat(n) + ']'.repeat(n)) as unknown })) },
    );
    // Bodies shaped like each route's (so some requests are accepted: runs start, stall, get decided, events route).
    const fuzzIds = fc.constantFrom('fuzz-1', 'fuzz-2', 'fuzz-3', runId);
    const shaped = fc.record({
      'POST /runs': fc.record(
        {
          definition: fc.oneof({ weight: 1, arbitrary: fc.constant('sum') }, { weight: 2, arbitrary: str }),
          input: fc.oneof(fc.record({ a: fc.oneof(fc.integer({ min: -5, max: 20 }), str), b: fc.integer({ min: -5, max: 20 }), name: str }), json),
          runId: fuzzIds,
          tenant: fc.oneof(fc.constantFrom('default', 'acme'), str),
          metadata: fc.dictionary(str, scalar, { maxKeys: 3 }),
        },
        { requiredKeys: ['definition'] },
      ),
      'POST /events': fc.record(
        {
          name: fc.oneof(fc.constantFrom('ticket.closed', 'order.paid'), str),
          correlationKey: fc.oneof(str, fc.integer()),
          payload: json,
          eventId: fc.oneof(fc.constantFrom('e-1', 'e-2', 'e-3'), str),
          tenant: fc.oneof(fc.constant('default'), str),
        },
        { requiredKeys: ['name'] },
      ),
      'PUT /correlation-rules/{name}': fc.record({ expression: fc.oneof(fc.constantFrom('payload.id', 'payload.(', '$eval("1")', 'payload.ticket.id'), str), by: str }),
      'POST /runs/{id}/decisions': fc.record(
        { action: fc.constantFrom('retry', 'skip', 'cancel'), by: str, reason: str, output: json, stallId: str },
        { requiredKeys: ['action', 'by'] },
      ),
      'POST /runs/{id}/cancel': fc.record({ by: str, reason: str }, { requiredKeys: ['by'] }),
      'POST /runs/{id}/migrate': fc.record({ targetVersion: fc.oneof(fc.constant(version), str), by: str, mapping: fc.dictionary(str, str, { maxKeys: 2 }) }, { requiredKeys: ['targetVersion', 'by'] }),
      'POST /stalls/resolve': fc.record(
        { rpc: fc.oneof(fc.constantFrom('math.add', 'text.greet'), str), action: fc.constantFrom('retry', 'skip'), by: str, reason: fc.constantFrom('rpc_missing', 'input_incompatible', 'output_incompatible'), output: json },
        { requiredKeys: ['rpc', 'action', 'by'] },
      ),
      'POST /deploy/check': fc.record({
        contracts: fc.dictionary(
          fc.constantFrom('math.add', 'text.greet'),
          fc.record({ hash: fc.constantFrom('a'.repeat(64), 'nope'), input: fc.oneof(json, fc.constantFrom({ type: 'object' }, { $ref: 'http://x/y' }, { type: 7 }, true)), output: fc.constant({}) }),
          { maxKeys: 2 },
        ),
      }),
      'POST /definitions/{name}/versions': fc.oneof(fc.constant(sumGraph as unknown), fc.record({ entry: str, steps: fc.array(json, { maxLength: 2 }) })),
    });
    const queryArb = fc.array(fc.tuple(fc.oneof(fc.constantFrom('status', 'definition', 'version', 'tenant', 'cursor', 'limit', 'name', 'key', 'event', 'runId', 'meta.customer', 'meta.', 'x'), str), str), { maxLength: 4 });
    const requestArb = fc.record({
      route: fc.integer({ min: 0, max: 10_000 }),
      method: fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH') }),
      params: fc.array(fc.oneof({ weight: 5, arbitrary: str.map(enc) }, { weight: 1, arbitrary: fc.constantFrom('%ED%A0%80', '%', '%zz', 'p'.repeat(600)) }), { minLength: 2, maxLength: 2 }),
      query: queryArb,
      body: fc.option(rawBody, { freq: 5 }),
      shaped: fc.option(shaped, { freq: 2 }),
      contentType: fc.oneof({ weight: 12, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/json; charset=utf-8', 'application/x-www-form-urlencoded', '') }),
    });

    let previous = await settle();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(requestArb, async (q) => {
        n++;
        const r = routes[q.route % routes.length]!;
        const method = q.method ?? r.method;
        let i = 0;
        const path = r.path.replace(/\{[^}]+\}/g, () => q.params[i++]!);
        const qs = q.query.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&');
        const url = qs ? `${path}?${qs}` : path;
        const shapedBody = q.shaped ? (q.shaped as Record<string, unknown>)[`${r.method} ${r.path}`] : undefined;
        const payload = shapedBody !== undefined ? JSON.stringify(shapedBody) : q.body;
        const withBody = payload !== null && method !== 'GET';
        const res = await api.inject({
          method: method as Method,
          url,
          ...(withBody ? { payload: payload, headers: q.contentType ? { 'content-type': q.contentType } : {} } : {}),
        });
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        const what = `${method} ${url.slice(0, 200)} ${withBody ? payload.slice(0, 200) : ''} → ${res.statusCode} ${res.body.slice(0, 300)}`;
        if (res.statusCode >= 500 && !(r.path === '/health' && res.statusCode === 503)) assert.fail(`5xx: ${what}`);
        if (res.statusCode >= 200 && res.statusCode < 300) {
          // Accepted: it may write (and a started run's worker writes on); wait for quiet.
          if (method !== 'GET') previous = await settle();
          return;
        }
        const now = await counts();
        const body = res.json<ErrorBody>();
        assert.equal(typeof body.error?.code, 'string', what);
        // A refused event is recorded by design (details.recorded): exactly one event row, nothing else.
        const recorded = (body.error.details as { recorded?: boolean } | null)?.recorded === true;
        if (recorded) assert.ok(now.events! - previous.events! <= 1, `a refused event recorded more than one row: ${what}`);
        assert.deepEqual(now, recorded ? { ...previous, events: now.events } : previous, `a refused request changed the tables: ${what}`);
        previous = now;
      }),
      { numRuns: 10_000, seed: Number(process.env.PINFLOW_FUZZ_SEED ?? 20261130), endOnFailure: true },
    );
    const seconds = (Date.now() - started) / 1000;
    const summary = [...statuses].sort(([a], [b]) => a - b).map(([s, c]) => `${s}:${c}`).join(' ');
    console.log(`      fuzz: ${n} requests in ${seconds.toFixed(1)}s; statuses ${summary}`);
    assert.equal(n, 10_000);
    assert.deepEqual(internals, []);
  });
});
