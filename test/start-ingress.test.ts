/**
 * Run-start ingress: a start either leaves a run that is in the run list, or
 * fails clearly having started nothing. Values Postgres cannot store (a NUL,
 * a lone surrogate) are refused before anything starts, by the library and
 * the HTTP API alike; a run row Postgres refuses for good undoes the start.
 */
import assert from 'node:assert/strict';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { createApi } from '../client/http';
import { PinflowError } from '../graph/errors';
import { singleRpcGraph } from './fixtures/graphs';
import { rpcs } from './fixtures/rpcs';
import { createEnv, createKey, type Env, withKey } from './support/harness';

describe('run start ingress: refused before anything starts, or listed', function () {
  this.timeout(120_000);
  let env: Env;
  let api: FastifyInstance;

  before(async () => {
    env = await createEnv('start-ingress', rpcs);
    await env.pinflow.publish('ingress', singleRpcGraph('math.add', { a: 'input.a', b: '1' }));
    api = withKey(createApi({ pinflow: env.pinflow, onInternalError: () => undefined }), await createKey(env));
  });
  after(async () => {
    await api?.close();
    await env?.stop();
  });

  async function inTemporal(runId: string): Promise<string | undefined> {
    try {
      return (await env.client.workflow.getHandle(runId).describe()).status.name;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    }
  }

  it('the library refuses a NUL or a lone surrogate anywhere in input or metadata with STRING_INVALID naming the path, and starts nothing', async () => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['lib-nul-input', { input: { a: 1, note: 'a\u0000b' } }, 'options.input.note'],
      ['lib-surrogate-input', { input: { a: 1, list: ['ok', '\ud800'] } }, 'options.input.list[1]'],
      ['lib-nul-metadata', { input: { a: 1 }, metadata: { customer: 'acme\u0000' } }, 'options.metadata.customer'],
      ['lib-surrogate-metadata-key', { input: { a: 1 }, metadata: { ['k\udc00']: 1 } }, 'options.metadata'],
    ];
    for (const [runId, opts, field] of cases) {
      await assert.rejects(env.pinflow.start({ definition: 'ingress', runId, ...opts }), (err: unknown) => {
        assert.ok(err instanceof PinflowError, `${runId}: ${String(err)}`);
        assert.equal(err.code, 'STRING_INVALID', runId);
        assert.equal((err.details as { field?: string }).field, field, runId);
        assert.match(err.message, /contains a NUL character|contains a lone UTF-16 surrogate/);
        return true;
      });
      assert.equal(await inTemporal(runId), undefined, `${runId} was started in Temporal`);
      assert.equal(await env.store.getRun(runId), undefined, `${runId} has a row`);
    }
  });

  it('POST /runs refuses them with 400 STRING_INVALID naming the JSON path, and starts nothing', async () => {
    const cases: Array<[string, string, string]> = [
      ['http-nul-input', '{"definition":"ingress","runId":"http-nul-input","input":{"a":1,"note":"x\\u0000"}}', 'body.input.note'],
      ['http-surrogate-metadata', '{"definition":"ingress","runId":"http-surrogate-metadata","input":{"a":1},"metadata":{"m":["\\udfff"]}}', 'body.metadata.m[0]'],
    ];
    for (const [runId, payload, field] of cases) {
      const res = await api.inject({ method: 'POST', url: '/runs', headers: { 'content-type': 'application/json' }, payload });
      assert.equal(res.statusCode, 400, res.body);
      const body = res.json<{ error: { code: string; details: { field: string } } }>();
      assert.equal(body.error.code, 'STRING_INVALID');
      assert.equal(body.error.details.field, field);
      assert.equal(await inTemporal(runId), undefined, `${runId} was started in Temporal`);
    }
  });

  it('a run row Postgres refuses for good undoes the start: the run is terminated in Temporal and the start fails (500 INTERNAL over HTTP), so no answered start is missing from the list', async () => {
    // A real refusal from Postgres: a check constraint the run's metadata breaks (SQLSTATE 23514).
    await env.db.exec(`ALTER TABLE run_details ADD CONSTRAINT test_refuse_marked CHECK (NOT (metadata ? 'refuse'))`);
    try {
      await assert.rejects(env.pinflow.start({ definition: 'ingress', runId: 'refused-lib', input: { a: 1 }, metadata: { refuse: true } }), (err: unknown) => {
        assert.equal((err as { code?: string }).code, '23514');
        return true;
      });
      assert.equal(await inTemporal('refused-lib'), 'TERMINATED');
      assert.equal(await env.store.getRun('refused-lib'), undefined);

      const res = await api.inject({ method: 'POST', url: '/runs', payload: { definition: 'ingress', runId: 'refused-http', input: { a: 1 }, metadata: { refuse: 'yes' } } });
      assert.equal(res.statusCode, 500, res.body);
      assert.equal(res.json<{ error: { code: string } }>().error.code, 'INTERNAL');
      assert.equal(await inTemporal('refused-http'), 'TERMINATED');
      assert.equal(await env.store.getRun('refused-http'), undefined);

      // An ordinary start beside them is answered and listed at once.
      const ok = await env.pinflow.start({ definition: 'ingress', runId: 'accepted', input: { a: 1 }, metadata: { fine: true } });
      assert.equal((await env.store.getRun(ok.runId))?.status, 'RUNNING');
      assert.equal(await inTemporal('accepted'), 'RUNNING');
      await env.client.workflow.getHandle('accepted').terminate('test cleanup');
    } finally {
      await env.db.exec('ALTER TABLE run_details DROP CONSTRAINT test_refuse_marked');
    }
  });
});
