import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { z } from 'zod';
import { checkDeploy, manifestOf, temporalStateReader, type StateReader } from '../client/check-deploy';
import { createApi } from '../client/http';
import { projectRoot } from '../db/paths';
import { defineRpc, RpcRegistry } from '../rpc/registry';
import { rpcs } from './fixtures/rpcs';
import { createEnv, createKey, type Env, eventually, temporalAddress, withKey } from './support/harness';

const v1 = defineRpc('contract.add', {
  input: z.object({ a: z.number(), b: z.number() }),
  output: z.object({ sum: z.number() }),
  handler: ({ a, b }) => ({ sum: a + b }),
});
const compatible = defineRpc('contract.add', {
  input: z.object({ a: z.number(), b: z.number(), c: z.number().optional() }),
  output: z.object({ sum: z.number() }),
  handler: ({ a, b }) => ({ sum: a + b }),
});
/** The output widened: a string sum would fail the pinned output contract, if the handler ever returned one. */
const looser = defineRpc('contract.add', {
  input: z.object({ a: z.number(), b: z.number() }),
  output: z.object({ sum: z.union([z.number(), z.string()]) }),
  handler: ({ a, b }) => ({ sum: a + b }),
});

describe('pre-deploy impact analysis (check-deploy)', function () {
  this.timeout(120_000);
  let env: Env;
  let runId: string;

  before(async () => {
    env = await createEnv('checkdeploy', [...rpcs, v1]);
    await env.startWorker([...rpcs, v1]);
    // A run that pauses on a wait before it reaches contract.add.
    await env.pinflow.publish('gated', {
      entry: 'greet',
      steps: [
        { id: 'greet', type: 'rpc', rpc: 'text.greet', input: { name: "'x'" }, next: 'hold' },
        { id: 'hold', type: 'wait', event: 'go', correlationKey: "'k'", timeout: '1h', onTimeout: 'call' },
        { id: 'call', type: 'rpc', rpc: 'contract.add', input: { a: '1', b: '2' } },
      ],
    });
    runId = (await env.pinflow.start({ definition: 'gated' })).runId;
    await eventually(async () => (await env.pinflow.state(runId)).waiting);
  });
  after(async () => {
    await env.pinflow.cancel(runId, { by: 'test' }).catch(() => undefined);
    await env?.stop();
  });

  it('finds open runs that would stall on a removed RPC, and skips steps already completed', async () => {
    const report = await env.pinflow.checkDeploy(manifestOf(new RpcRegistry(rpcs)));
    assert.equal(report.checkedRuns, 1);
    assert.equal(report.wouldStall, 1);
    assert.deepEqual(
      report.impacts.map((i) => [i.runId, i.stepInstance, i.rpc, i.reason, i.certain]),
      [[runId, 'call', 'contract.add', 'rpc_missing', true]],
    );
  });

  it('reports a widened input as safe, a widened output as a possible stall, and an unchanged registry as safe', async () => {
    const widened = await env.pinflow.checkDeploy(manifestOf(new RpcRegistry([...rpcs, compatible])));
    assert.deepEqual([widened.wouldStall, widened.mayStall, widened.impacts.length, widened.liveRuns], [0, 0, 0, 1]);
    const changed = await env.pinflow.checkDeploy(manifestOf(new RpcRegistry([...rpcs, looser])));
    assert.deepEqual(
      changed.impacts.map((i) => [i.stepInstance, i.reason, i.certain, i.verdict, i.evidence.field]),
      [['call', 'contract_changed', false, 'possible', 'output.sum']],
    );
    assert.equal(changed.mayStall, 1);
    const same = await env.pinflow.checkDeploy(manifestOf(new RpcRegistry([...rpcs, v1])));
    assert.deepEqual([same.wouldStall, same.mayStall, same.impacts.length], [0, 0, 0]);
    // Nothing the run's version calls changed: it is not asked where it is.
    assert.deepEqual([same.checkedRuns, same.unaffectedRuns, same.liveRuns, same.unknownPositionRuns], [1, 1, 0, 0]);
  });

  it('serves the analysis over HTTP from a contract manifest', async () => {
    const api = withKey(createApi({ pinflow: env.pinflow }), await createKey(env));
    const res = await api.inject({ method: 'POST', url: '/deploy/check', payload: { contracts: manifestOf(new RpcRegistry(rpcs)) } });
    assert.equal(res.statusCode, 200);
    assert.equal((res.json()).wouldStall, 1);
    const bad = await api.inject({ method: 'POST', url: '/deploy/check', payload: { contracts: { x: { hash: 'nope' } } } });
    assert.equal(bad.statusCode, 400);
    assert.equal((bad.json()).error.code, 'REQUEST_INVALID');
    await api.close();
  });

  it('exits non-zero from the CLI when a run would stall, and prints why', async () => {
    const cli = join(projectRoot(), 'dist', 'cli', 'pinflow.js');
    const env2 = { ...process.env, DATABASE_URL: env.databaseUrl, TEMPORAL_ADDRESS: temporalAddress(), TEMPORAL_NAMESPACE: env.namespace };
    // Not spawnSync: the CLI asks the run where it is, and this process's worker answers.
    const res = await promisify(execFile)(process.execPath, [cli, 'check-deploy', '--rpcs', join(projectRoot(), 'dist', 'test', 'fixtures', 'rpcs.js')], { env: env2, encoding: 'utf8' }).then(
      (r) => ({ ...r, status: 0 }),
      (err: { code: number; stdout: string; stderr: string }) => ({ status: err.code, stdout: err.stdout, stderr: err.stderr }),
    );
    assert.equal(res.status, 1, res.stderr);
    assert.match(res.stdout, /checked 1 open run\(s\): 1 would stall, 0 may stall/);
    assert.match(res.stdout, /positions: 1 live, 0 unknown, 0 not asked \(their version calls no changed RPC\); \d+ ms/);
    assert.match(res.stdout, new RegExp(`WOULD STALL  ${runId}  gated@[0-9a-f]{12}  step call  rpc_missing`));
    const usage = spawnSync(process.execPath, [cli, 'check-deploy'], { env: env2, encoding: 'utf8' });
    assert.equal(usage.status, 64);
    assert.match(usage.stderr, /^usage: pinflow check-deploy --rpcs <module>/);
  });

  it('a state query that answers late is asked once more after the others; one that never answers in time leaves the position unknown', async () => {
    const real = temporalStateReader(env.client);
    const delayed = (ms: number[]): StateReader => {
      let call = 0;
      return async (id, signal) => {
        // The real query, delayed: a worker busy replaying other runs.
        await new Promise((r) => setTimeout(r, ms[Math.min(call++, ms.length - 1)]));
        return real(id, signal);
      };
    };
    const manifest = manifestOf(new RpcRegistry(rpcs));
    // Timeout 1 s (4 s on the second try): the first call is held past it; the second must answer within 4 s on a busy machine.
    const deps = { store: env.store, catalog: env.pinflow.catalog, queryTimeoutMs: 1_000 };
    const second = await checkDeploy({ ...deps, queryState: delayed([3_000, 0]) }, manifest);
    assert.deepEqual([second.liveRuns, second.unknownPositionRuns, second.wouldStall], [1, 0, 1]);
    assert.equal(second.impacts[0]?.position, 'live');
    const never = await checkDeploy({ ...deps, queryState: delayed([3_000, 10_000]) }, manifest);
    assert.deepEqual([never.liveRuns, never.unknownPositionRuns, never.wouldStall, never.mayStall], [0, 1, 0, 1]);
    assert.equal(never.impacts[0]?.position, 'unknown');
  });
});
