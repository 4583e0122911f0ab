/**
 * API keys, scopes, tenants, limits and the audit log, against the real
 * Temporal dev server, the real Postgres and a real worker. The scope table
 * walks the OpenAPI document and ROUTES, so a route added without a scope (or
 * without a check) fails here.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../db/paths';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { ROUTES, SCOPES, type RouteAccess, type Scope } from '../client/api-schemas';
import { PUBLIC_PREFIXES } from '../client/access';
import { createApi } from '../client/http';
import { hasScope } from '../client/keys';
import { rpcs } from './fixtures/rpcs';
import { createEnv, createKey, eventually, type Env } from './support/harness';

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';

interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> | null };
}

const gateGraph = {
  entry: 'gate',
  steps: [
    { id: 'gate', type: 'wait', event: 'sec.go', correlationKey: 'input.key', timeout: '1h', next: 'done' },
    { id: 'done', type: 'return', output: "'done'" },
  ],
};

describe('security: API keys, scopes, tenants, limits and the audit log', function () {
  this.timeout(300_000);
  let env: Env;
  let api: FastifyInstance;
  let doc: { paths: Record<string, Record<string, unknown>> };
  const keys = {} as Record<'admin' | Scope | 'acme' | 'globex' | 'acmeRead', string>;
  const keyIds = {} as Record<string, string>;

  /** The one door of every request of this suite (the key is explicit: these tests are about keys). */
  function call(method: Method, url: string, key: string | undefined, body?: unknown): Promise<LightMyRequestResponse> {
    return api.inject({ method, url, ...(key !== undefined ? { headers: { authorization: `Bearer ${key}` } } : {}), ...(body !== undefined ? { payload: body as object } : {}) });
  }
  const idOf = (key: string) => key.split('_')[1]!;

  before(async () => {
    env = await createEnv('security', rpcs);
    await env.startWorker(rpcs);
    api = createApi({ pinflow: env.pinflow, rateLimit: { max: 100_000, timeWindowMs: 60_000 } });
    await api.ready();
    keys.admin = await createKey(env, { scopes: ['admin'], name: 'admin' });
    for (const s of SCOPES) keys[s] = await createKey(env, { scopes: [s], name: s });
    keys.acme = await createKey(env, { scopes: ['operate'], tenant: 'acme', name: 'acme' });
    keys.acmeRead = await createKey(env, { scopes: ['read'], tenant: 'acme', name: 'acme-read' });
    keys.globex = await createKey(env, { scopes: ['operate'], tenant: 'globex', name: 'globex' });
    for (const [name, key] of Object.entries(keys)) keyIds[name] = idOf(key);
    doc = (await call('GET', '/openapi.json', undefined)).json();

    assert.equal((await call('POST', '/definitions/sec-gate/versions', keys.publish, gateGraph)).statusCode, 201);
    for (const [runId, tenant] of [
      ['sec-acme-1', 'acme'],
      ['sec-globex-1', 'globex'],
    ] as const) {
      const res = await call('POST', '/runs', keys.admin, { definition: 'sec-gate', runId, tenant, input: { key: runId } });
      assert.equal(res.statusCode, 201, res.body);
    }
    await eventually(async () => (await env.pinflow.events.listWaits({ event: 'sec.go' }, 10)).length === 2, { timeoutMs: 60_000, what: 'both runs waiting' });
  });
  after(async () => {
    await api?.close();
    await env?.stop();
  });

  /** Every operation of the OpenAPI document, with its ROUTES entry. */
  function operations(): Array<{ method: Method; path: string; url: string; access: RouteAccess; name: string }> {
    const byKey = new Map(Object.entries(ROUTES).map(([name, r]) => [`${r.method} ${r.url.replace(/:([A-Za-z]+)/g, '{$1}')}`, { name, r }]));
    const out = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) {
        const entry = byKey.get(`${method.toUpperCase()} ${path}`);
        assert.ok(entry, `${method.toUpperCase()} ${path} is in the OpenAPI document but not in ROUTES`);
        out.push({ method: method.toUpperCase() as Method, path, url: path.replace(/\{([^}]+)\}/g, 'sec-x'), access: (entry.r as { config: RouteAccess }).config, name: entry.name });
      }
    }
    return out;
  }

  describe('scopes on every route (walking the OpenAPI route list)', () => {
    it('every ROUTES entry declares a scope or is public, only /health and /openapi.json are public, only /whoami takes any key', () => {
      const publicRoutes: string[] = [];
      const anyKeyRoutes: string[] = [];
      for (const [name, r] of Object.entries(ROUTES)) {
        const cfg = (r as { config?: RouteAccess }).config;
        assert.ok(cfg && (cfg.public || cfg.authenticated || (cfg.scope && SCOPES.includes(cfg.scope))), `ROUTES.${name} (${r.method} ${r.url}) declares config.scope`);
        if (cfg.public) publicRoutes.push(r.url);
        if (cfg.authenticated) anyKeyRoutes.push(r.url);
      }
      assert.deepEqual(publicRoutes.sort(), ['/health', '/openapi.json']);
      assert.deepEqual(anyKeyRoutes, ['/whoami']);
      assert.deepEqual([...PUBLIC_PREFIXES], ['/docs', '/metrics']);
    });

    it('a route without a scope stops the API from starting (fail closed)', async () => {
      const app = createApi({ pinflow: env.pinflow });
      assert.throws(() => app.get('/unscoped', () => ({ leaked: true })), /GET \/unscoped declares no config\.scope/);
      await app.close().catch(() => undefined);
    });

    it('no key → 401, a key without the scope → 403 naming it, the right scope → neither', async () => {
      const ops = operations().filter((o) => !o.access.public);
      assert.ok(ops.length >= 25, `${ops.length} scoped operations`);
      for (const op of ops) {
        const what = `${op.method} ${op.path}`;
        const none = await call(op.method, op.url, undefined);
        assert.equal(none.statusCode, 401, `${what} without a key: ${none.body}`);
        assert.equal(none.json<ErrorBody>().error.code, 'UNAUTHENTICATED');
        assert.match(String(none.headers['www-authenticate']), /^Bearer/);
        const bad = await call(op.method, op.url, `pf_${'0'.repeat(16)}_${'A'.repeat(43)}`);
        assert.equal(bad.statusCode, 401, `${what} with an unknown key`);
        const needed = op.access.scope;
        for (const s of SCOPES) {
          const res = await call(op.method, op.url, keys[s], op.method === 'GET' || op.method === 'DELETE' ? undefined : {});
          // `authenticated` (GET /whoami): every valid key, whatever its scopes.
          if (needed === undefined || hasScope([s], needed)) {
            assert.ok(res.statusCode !== 401 && res.statusCode !== 403, `${what} with a ${s} key (needs ${needed}): ${res.statusCode} ${res.body}`);
          } else {
            assert.equal(res.statusCode, 403, `${what} with a ${s} key (needs ${needed}): ${res.body}`);
            const e = res.json<ErrorBody>().error;
            assert.equal(e.code, 'FORBIDDEN');
            assert.deepEqual(e.details, { needed, held: [s], keyId: keyIds[s] });
            assert.match(e.message, new RegExp(`needs the ${needed} scope`));
          }
        }
      }
    });

    it('public routes answer without a key', async () => {
      for (const url of ['/health', '/openapi.json', '/docs', '/metrics']) {
        const res = await call('GET', url, undefined);
        assert.ok(res.statusCode !== 401 && res.statusCode !== 403, `${url}: ${res.statusCode}`);
      }
    });
  });

  describe('tenants', () => {
    it('a key of tenant acme gets 404 on every /runs/:id route for a run of globex, exactly as for a run that does not exist', async () => {
      const runRoutes = operations().filter((o) => o.path.startsWith('/runs/{id}'));
      assert.ok(runRoutes.length >= 5, runRoutes.map((o) => o.path).join(', '));
      for (const op of runRoutes) {
        const body =
          op.method === 'GET'
            ? undefined
            : op.path.endsWith('/decisions')
              ? { action: 'retry', by: 'mallory', reason: 'probing' }
              : op.path.endsWith('/migrate')
                ? { targetVersion: 'a'.repeat(64), by: 'mallory', reason: 'probing' }
                : op.path.endsWith('/rerun')
                  ? { fromStep: 'go', by: 'mallory', reason: 'probing' }
                  : { by: 'mallory', reason: 'probing' };
        const other = await call(op.method, op.path.replace('{id}', 'sec-globex-1'), keys.acme, body);
        const missing = await call(op.method, op.path.replace('{id}', 'sec-missing-1'), keys.acme, body);
        assert.equal(other.statusCode, 404, `${op.method} ${op.path}: ${other.body}`);
        assert.equal(other.json<ErrorBody>().error.code, 'RUN_NOT_FOUND');
        assert.equal(missing.statusCode, 404);
        assert.deepEqual(other.json(), JSON.parse(missing.body.replaceAll('sec-missing-1', 'sec-globex-1')), 'the same answer as for a run that does not exist');
        assert.doesNotMatch(other.body, /sec\.go|tenant|RUNNING|sec-gate/);
      }
      // Its own run, and every run for a key of every tenant.
      assert.equal((await call('GET', '/runs/sec-acme-1', keys.acme)).statusCode, 200);
      assert.equal((await call('GET', '/runs/sec-globex-1', keys.read)).statusCode, 200);
      // The globex run is still waiting: nothing reached Temporal.
      assert.equal((await env.pinflow.getRun('sec-globex-1'))?.status, 'RUNNING');
    });

    it("another tenant's runs, waits and events never appear in a tenant key's lists", async () => {
      for (const k of ['acme', 'globex'] as const) {
        const res = await call('POST', '/events', keys[k], { name: 'sec.other', correlationKey: `${k}-key` });
        assert.ok(res.statusCode < 300, res.body);
      }
      const runs = (await call('GET', '/runs', keys.acmeRead)).json<{ runs: Array<{ id: string; tenant: string }> }>().runs;
      assert.deepEqual(runs.map((r) => r.tenant), ['acme']);
      assert.deepEqual((await call('GET', '/runs?tenant=globex', keys.acmeRead)).json(), { runs: [], nextCursor: null });
      assert.equal((await call('GET', '/runs', keys.read)).json<{ runs: unknown[] }>().runs.length, 2, 'a key for every tenant sees both');
      const waits = (await call('GET', '/waits', keys.acmeRead)).json<{ waits: Array<{ tenant: string }> }>().waits;
      assert.deepEqual(waits.map((w) => w.tenant), ['acme']);
      assert.deepEqual((await call('GET', '/waits?tenant=globex', keys.acmeRead)).json(), { waits: [] });
      const events = (await call('GET', '/events', keys.acmeRead)).json<{ events: Array<{ tenant: string; eventId: string }> }>().events;
      assert.deepEqual([...new Set(events.map((e) => e.tenant))], ['acme']);
      assert.deepEqual((await call('GET', '/events?tenant=globex', keys.acmeRead)).json(), { events: [], nextCursor: null });
      const globexEvent = (await call('GET', '/events?tenant=globex', keys.read)).json<{ events: Array<{ eventId: string }> }>().events[0]!;
      const leaked = await call('GET', `/events/${globexEvent.eventId}?tenant=globex`, keys.acmeRead);
      assert.equal(leaked.statusCode, 404);
      assert.equal(leaked.json<ErrorBody>().error.code, 'EVENT_NOT_FOUND');
      assert.equal((await call('GET', `/events/${globexEvent.eventId}`, keys.acmeRead)).statusCode, 404);
      assert.equal((await call('GET', `/events/${events[0]!.eventId}`, keys.acmeRead)).statusCode, 200, 'its own event, the default tenant being its own');
    });

    it('a tenant key starts runs and submits events of its tenant only, and may not call cross-tenant routes', async () => {
      const started = await call('POST', '/runs', keys.acme, { definition: 'sec-gate', runId: 'sec-acme-2', input: { key: 'sec-acme-2' } });
      assert.equal(started.statusCode, 201, started.body);
      assert.equal(started.json<{ tenant: string }>().tenant, 'acme');
      const foreign = await call('POST', '/runs', keys.acme, { definition: 'sec-gate', runId: 'sec-acme-3', tenant: 'globex', input: { key: 'x' } });
      assert.equal(foreign.statusCode, 403);
      assert.deepEqual(foreign.json<ErrorBody>().error.details, { field: 'body.tenant', received: 'globex', allowed: 'acme' });
      assert.equal((await env.db.query({ text: `SELECT 1 FROM runs WHERE id = 'sec-acme-3'` })).length, 0);
      const ev = await call('POST', '/events', keys.acme, { name: 'sec.other', tenant: 'globex', correlationKey: 'k' });
      assert.equal(ev.statusCode, 403);
      for (const [method, url, body] of [
        ['POST', '/stalls/resolve', { rpc: 'math.add', action: 'retry', by: 'x', note: 'n' }],
        ['POST', '/deploy/check', { contracts: {} }],
        ['POST', '/reconcile', undefined],
      ] as const) {
        const res = await call(method, url, keys.acme, body);
        assert.equal(res.statusCode, 403, `${url}: ${res.body}`);
        assert.match(res.json<ErrorBody>().error.message, /acts across tenants/);
      }
      const cancelled = await call('POST', '/runs/sec-acme-2/cancel', keys.acme, { by: 'acme-ops', reason: 'test over' });
      assert.equal(cancelled.statusCode, 202, cancelled.body);
    });
  });

  describe('keys', () => {
    it('a created key is shown once, stored hashed, listed without secret, and refused once revoked', async () => {
      const res = await call('POST', '/keys', keys.admin, { scopes: ['read', 'operate'], tenant: 'acme', name: 'ci', by: 'alice' });
      assert.equal(res.statusCode, 201, res.body);
      const created = res.json<{ id: string; key: string; prefix: string; scopes: string[]; tenant: string }>();
      assert.match(created.key, /^pf_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
      assert.equal(created.prefix, `pf_${created.id}`);
      assert.deepEqual({ scopes: created.scopes, tenant: created.tenant }, { scopes: ['read', 'operate'], tenant: 'acme' });
      const secret = created.key.split('_').slice(2).join('_');
      const row = (await env.db.query<Record<string, unknown>>({ text: 'SELECT * FROM api_keys WHERE id = $1', values: [created.id] }))[0]!;
      assert.ok(!JSON.stringify(row).includes(secret), 'no secret in the row');
      assert.ok(String(row.hash).length >= 40 && String(row.salt).length >= 20);
      const listed = await call('GET', '/keys', keys.admin);
      assert.ok(!listed.body.includes(secret));
      assert.ok(listed.json<{ keys: Array<{ id: string }> }>().keys.some((k) => k.id === created.id));
      assert.equal((await call('GET', '/runs', created.key)).statusCode, 200);

      const noReason = await call('DELETE', `/keys/${created.id}`, keys.admin);
      assert.equal(noReason.statusCode, 400);
      assert.deepEqual(noReason.json<ErrorBody>().error.details, { field: 'query.reason', received: null, allowed: 'a non-empty reason' });
      const revoked = await call('DELETE', `/keys/${created.id}?by=alice&reason=${encodeURIComponent('leaked in CI logs')}`, keys.admin);
      assert.equal(revoked.statusCode, 200, revoked.body);
      assert.ok(revoked.json<{ revokedAt: string | null }>().revokedAt);
      const refused = await call('GET', '/runs', created.key);
      assert.equal(refused.statusCode, 401, 'refused at once by the process that revoked it');
      assert.equal(refused.json<ErrorBody>().error.code, 'UNAUTHENTICATED');
      assert.equal((await call('DELETE', `/keys/nope?reason=x`, keys.admin)).json<ErrorBody>().error.code, 'KEY_NOT_FOUND');
    });

    it('a tenant key cannot hold publish or admin; scopes must be known', async () => {
      const res = await call('POST', '/keys', keys.admin, { scopes: ['publish'], tenant: 'acme', name: 'x', by: 'alice' });
      assert.equal(res.statusCode, 400);
      assert.equal(res.json<{ error: { details: { issues: Array<{ field: string }> } } }>().error.details.issues[0]!.field, 'body.scopes');
      const unknown = await call('POST', '/keys', keys.admin, { scopes: ['root'], name: 'x', by: 'alice' });
      assert.equal(unknown.statusCode, 400);
      assert.match(unknown.body, /body\.scopes/);
    });

    it('a revocation through another process takes effect within the cache time', async () => {
      const other = createApi({ pinflow: env.pinflow, authCacheMs: 300 });
      try {
        const key = await createKey(env, { scopes: ['read'] });
        const get = () => other.inject({ method: 'GET', url: '/definitions', headers: { authorization: `Bearer ${key}` } });
        assert.equal((await get()).statusCode, 200);
        await env.db.query({ text: 'UPDATE api_keys SET revoked_at = now() WHERE id = $1', values: [idOf(key)] });
        await eventually(async () => (await get()).statusCode === 401, { timeoutMs: 10_000, what: 'the revocation to be seen' });
      } finally {
        await other.close();
      }
    });
  });

  describe('the CLI (the bootstrap path: the database only)', () => {
    const cli = async (...args: string[]) =>
      (await promisify(execFile)(process.execPath, [join(projectRoot(), 'dist', 'cli', 'pinflow.js'), ...args], { env: { ...process.env, DATABASE_URL: env.databaseUrl }, timeout: 60_000 })).stdout;

    it('pinflow keys create / list / revoke and pinflow audit', async () => {
      const out = await cli('keys', 'create', '--scope', 'read,operate', '--tenant', 'acme', '--name', 'ci', '--by', 'ops-cli');
      const key = /^(pf_[0-9a-f]{16}_\S{43})$/m.exec(out)?.[1];
      assert.ok(key, out);
      const id = idOf(key);
      assert.equal((await call('GET', '/runs', key)).json<{ runs: Array<{ tenant: string }> }>().runs.every((r) => r.tenant === 'acme'), true);
      const listed = await cli('keys', 'list');
      assert.match(listed, new RegExp(`^${id}  read,operate\\s+acme\\s+ci`, 'm'));
      assert.ok(!listed.includes(key.slice(20)));
      await assert.rejects(() => cli('keys', 'revoke', id), /REASON_REQUIRED/);
      assert.match(await cli('keys', 'revoke', id, '--reason', 'rotated', '--by', 'ops-cli'), new RegExp(`revoked key ${id}`));
      await eventually(async () => (await call('GET', '/runs', key)).statusCode === 401, { timeoutMs: 30_000, what: 'the revoked key refused' });
      const audit = await cli('audit', '--action', 'key.revoke', '--key', '', '--limit', '5');
      assert.match(audit, new RegExp(`accepted key\\.revoke\\s+key - by ops-cli on key ${id}  reason: rotated`));
      assert.match(await cli('audit', '--run', 'sec-acme-2'), /run\.start/);
    });
  });

  describe('limits', () => {
    it('over its rate limit a key gets 429 RATE_LIMITED with Retry-After; another key is not affected', async () => {
      const limited = createApi({ pinflow: env.pinflow, rateLimit: { max: 3, timeWindowMs: 60_000 } });
      try {
        const get = (key: string) => limited.inject({ method: 'GET', url: '/definitions', headers: { authorization: `Bearer ${key}` } });
        for (let i = 0; i < 3; i++) assert.equal((await get(keys.read)).statusCode, 200);
        const res = await get(keys.read);
        assert.equal(res.statusCode, 429);
        const e = res.json<ErrorBody>().error;
        assert.equal(e.code, 'RATE_LIMITED');
        assert.match(e.message, /over its rate limit of 3 requests per 60 s/);
        assert.equal(e.details?.keyId, keyIds.read);
        assert.ok(Number(res.headers['retry-after']) > 0, `Retry-After: ${res.headers['retry-after']}`);
        assert.equal((await get(keys.operate)).statusCode, 200, 'the limit is per key');
        for (let i = 0; i < 5; i++) assert.notEqual((await limited.inject({ method: 'GET', url: '/openapi.json' })).statusCode, 429, 'public routes are not limited');
      } finally {
        await limited.close();
      }
    });

    it('a body over the limit gets 413 REQUEST_TOO_LARGE naming the limit', async () => {
      const small = createApi({ pinflow: env.pinflow, bodyLimit: 1024 });
      try {
        const res = await small.inject({ method: 'POST', url: '/events', headers: { authorization: `Bearer ${keys.operate}`, 'content-type': 'application/json' }, payload: JSON.stringify({ name: 'x', correlationKey: 'k', payload: { pad: 'x'.repeat(2000) } }) });
        assert.equal(res.statusCode, 413);
        const e = res.json<ErrorBody>().error;
        assert.equal(e.code, 'REQUEST_TOO_LARGE');
        assert.match(e.message, /over the limit of 1024 bytes/);
        // Without a key the body is never read: 401 first.
        const anon = await small.inject({ method: 'POST', url: '/events', headers: { 'content-type': 'application/json' }, payload: 'x'.repeat(2000) });
        assert.equal(anon.statusCode, 401);
      } finally {
        await small.close();
      }
    });
  });

  describe('the audit log', () => {
    interface Entry {
      keyId: string | null;
      by: string | null;
      action: string;
      targetIds: string[];
      runIds: string[];
      tenant: string | null;
      reason: string | null;
      outcome: string;
      status: number;
    }
    const audit = async (query: string) => (await call('GET', `/audit?${query}`, keys.admin)).json<{ entries: Entry[]; nextCursor: string | null }>();

    it('destructive actions without a reason get 400 REASON_REQUIRED naming the field, and change nothing', async () => {
      await call('POST', '/runs', keys.operate, { definition: 'sec-gate', runId: 'sec-cancel-1', input: { key: 'sec-cancel-1' } });
      for (const [url, body, fieldName] of [
        ['/runs/sec-cancel-1/cancel', { by: 'bob' }, 'body.reason'],
        ['/runs/sec-cancel-1/cancel', { by: 'bob', reason: '  ' }, 'body.reason'],
        ['/runs/sec-cancel-1/decisions', { action: 'skip', by: 'bob', output: {} }, 'body.reason'],
        ['/runs/sec-cancel-1/migrate', { targetVersion: 'a'.repeat(64), by: 'bob' }, 'body.reason'],
        ['/stalls/resolve', { rpc: 'math.add', action: 'skip', by: 'bob', output: {} }, 'body.note'],
      ] as const) {
        const res = await call('POST', url, keys.operate, body);
        assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
        const e = res.json<ErrorBody>().error;
        assert.equal(e.code, 'REASON_REQUIRED');
        assert.equal(e.details?.field, fieldName);
      }
      // A retry is not destructive: no reason needed (409: the run is not stalled).
      assert.equal((await call('POST', '/runs/sec-cancel-1/decisions', keys.operate, { action: 'retry', by: 'bob' })).statusCode, 409);
      assert.equal((await env.pinflow.getRun('sec-cancel-1'))?.status, 'RUNNING');
    });

    it('writes a row for each write action: who, what, on which runs, why, and the outcome', async () => {
      const op = keys.operate;
      assert.equal((await call('POST', '/runs/sec-cancel-1/cancel', op, { by: 'bob', reason: 'customer withdrew' })).statusCode, 202);
      assert.equal((await call('PUT', '/correlation-rules/sec.go', keys.publish, { expression: 'payload.key', by: 'carol' })).statusCode, 200);
      assert.equal((await call('DELETE', '/correlation-rules/sec.go', keys.publish)).statusCode, 204);
      assert.equal((await call('POST', '/stalls/resolve', op, { rpc: 'math.add', action: 'retry', by: 'bob', note: 'deployed the fix' })).statusCode, 200);
      assert.equal((await call('POST', '/reconcile', op)).statusCode, 200);
      assert.equal((await call('POST', '/runs/sec-acme-1/migrate', op, { targetVersion: 'a'.repeat(64), by: 'bob', reason: 'try' })).statusCode, 404);
      assert.equal((await call('POST', '/runs/sec-acme-1/cancel', keys.read, { by: 'eve', reason: 'x' })).statusCode, 403);
      assert.equal((await call('POST', '/runs/sec-acme-1/cancel', undefined, { by: 'eve', reason: 'x' })).statusCode, 401);

      const cancel = (await audit('action=run.cancel&runId=sec-cancel-1&outcome=accepted')).entries;
      assert.equal(cancel.length, 1, JSON.stringify(cancel));
      assert.deepEqual(
        { keyId: cancel[0]!.keyId, by: cancel[0]!.by, runIds: cancel[0]!.runIds, reason: cancel[0]!.reason, outcome: cancel[0]!.outcome, status: cancel[0]!.status },
        { keyId: keyIds.operate, by: 'bob', runIds: ['sec-cancel-1'], reason: 'customer withdrew', outcome: 'accepted', status: 202 },
      );
      const start = (await audit('action=run.start&runId=sec-acme-2')).entries;
      assert.deepEqual(start.map((e) => [e.keyId, e.tenant, e.outcome]), [[keyIds.acme, 'acme', 'accepted']]);
      const publish = (await audit('action=definition.publish&outcome=accepted')).entries;
      assert.deepEqual(publish.map((e) => [e.keyId, e.targetIds, e.outcome]), [[keyIds.publish, ['sec-gate'], 'accepted']]);
      assert.deepEqual((await audit('action=rule.put&outcome=accepted')).entries.map((e) => [e.keyId, e.by, e.targetIds]), [[keyIds.publish, 'carol', ['sec.go']]]);
      assert.equal((await audit('action=rule.delete&outcome=accepted')).entries.length, 1);
      assert.deepEqual((await audit('action=stalls.resolve&outcome=accepted')).entries.map((e) => [e.reason, e.outcome]), [['deployed the fix', 'accepted']]);
      assert.deepEqual((await audit('action=projection.reconcile&outcome=accepted')).entries.map((e) => [e.keyId, e.status])[0], [keyIds.operate, 200]);
      assert.deepEqual((await audit('action=run.migrate&runId=sec-acme-1&outcome=refused')).entries.map((e) => [e.outcome, e.status]), [['refused', 404]]);
      const denied = (await audit('action=run.cancel&runId=sec-acme-1&outcome=denied')).entries;
      assert.deepEqual(denied.map((e) => [e.keyId, e.status]), [[null, 401], [keyIds.read, 403]]);
      const keyRows = (await audit('action=key.revoke')).entries;
      assert.ok(keyRows.some((e) => e.reason === 'leaked in CI logs' && e.by === 'alice' && e.keyId === keyIds.admin && e.outcome === 'accepted'));
      assert.ok((await audit('action=key.create&outcome=accepted')).entries.some((e) => e.keyId === keyIds.admin));
      // The REASON_REQUIRED attempts were recorded as refused.
      assert.ok((await audit('action=run.cancel&runId=sec-cancel-1&outcome=refused')).entries.length >= 2);
      // Filters and pages.
      assert.ok((await audit(`keyId=${keyIds.operate}`)).entries.every((e) => e.keyId === keyIds.operate));
      const page = await audit('limit=2');
      assert.equal(page.entries.length, 2);
      const next = await audit(`limit=2&cursor=${page.nextCursor}`);
      assert.ok(next.entries.length > 0 && !next.entries.some((e) => page.entries.some((p) => JSON.stringify(p) === JSON.stringify(e))));
      assert.equal((await audit(`since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).entries.length, 0);
      assert.equal((await call('GET', '/audit', keys.operate)).statusCode, 403, 'the audit log is admin only');
      for (const bad of ['0', 'x', '-1', '1e5', '9'.repeat(30)]) {
        const res = await call('GET', `/audit?cursor=${bad}`, keys.admin);
        assert.equal(res.json<ErrorBody>().error.code, 'CURSOR_INVALID', `cursor ${bad}: ${res.body}`);
      }
    });

    it('is append-only: UPDATE, DELETE and TRUNCATE are refused', async () => {
      for (const sql of ["UPDATE audit_log SET reason = 'rewritten'", 'DELETE FROM audit_log', 'TRUNCATE audit_log']) {
        await assert.rejects(() => env.db.query({ text: sql }), /audit_log is append-only/, sql);
      }
      assert.ok(((await env.db.query<{ n: number }>({ text: 'SELECT count(*)::int AS n FROM audit_log' }))[0]!.n) > 5);
    });
  });
});
