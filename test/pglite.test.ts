import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { examples, exampleRpcs } from '../examples';
import { loadConfig } from '../app/config';
import { startStack, type Stack } from '../app/stack';
import { claimNamespace, eventually, keyFetch, temporalAddress } from './support/harness';

describe('embedded defaults: the whole stack on PGlite (smoke)', function () {
  this.timeout(120_000);
  let stack: Stack | undefined;
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pinflow-pglite-'));
  });
  after(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('publishes the example, starts it over HTTP and completes it, projected into PGlite', async () => {
    const config = loadConfig({
      TEMPORAL_ADDRESS: temporalAddress(),
      TEMPORAL_NAMESPACE: claimNamespace(),
      PINFLOW_DATA_DIR: dir,
      PINFLOW_API_PORT: '0',
    });
    assert.equal(config.databaseUrl, undefined);
    stack = await startStack(config, exampleRpcs);
    assert.equal(stack.db.kind, 'pglite');
    // Auth is on: the stack created its local admin key on this first start.
    const fetch = keyFetch(stack.adminKey);

    const ex = examples[0]!;
    const pub = await fetch(`${stack.apiUrl}/definitions/${ex.definition}/versions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(ex.graph),
    });
    assert.equal(pub.status, 201);
    const res = await fetch(`${stack.apiUrl}/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ definition: ex.definition, input: ex.sampleInput, runId: 'pglite-order-1' }),
    });
    assert.equal(res.status, 201);
    assert.deepEqual(await stack.pinflow.result('pglite-order-1'), {
      orderId: 'ord-1001',
      total: 138,
      chargeId: 'ch-ord-1001',
      trackingNumber: 'TRK-ORD-1001',
      carrier: 'PostalCo',
    });
    const detail = await eventually(async () => {
      const d = (await (await fetch(`${stack!.apiUrl}/runs/pglite-order-1`)).json()) as { status: string; steps: Array<{ stepInstance: string; status: string }> };
      return d.status === 'COMPLETED' ? d : undefined;
    });
    assert.deepEqual(
      detail.steps.map((s) => `${s.stepInstance}:${s.status}`),
      ['validate', 'is-valid', 'price', 'reserve', 'charge', 'ship', 'notify', 'done'].map((s) => `${s}:COMPLETED`),
    );
    const health = await fetch(`${stack.apiUrl}/health`);
    assert.equal(health.status, 200);
    // The embedded stack's one /metrics (the API route) has the worker's metrics too, and reads the gauges from PGlite.
    const closedLine = new RegExp(`^pinflow_runs_closed_total\\{definition="${ex.definition}",version="[0-9a-f]{12}",status="COMPLETED"\\} [1-9]`, 'm');
    const metrics = await eventually(async () => {
      const text = await (await fetch(`${stack!.apiUrl}/metrics`)).text();
      return closedLine.test(text) ? text : undefined;
    }, { what: 'the close in the stack /metrics' });
    assert.match(metrics, /^pinflow_stalls_open\{reason="rpc_missing"\} 0$/m);
    assert.match(metrics, /^pinflow_rpc_dispatches_total\{rpc="[^"]+",outcome="ok"\} [1-9]/m);
  });

  it('rejects an invalid example order with the fail step', async () => {
    const ex = examples[0]!;
    const input = { ...(ex.sampleInput as object), items: [{ sku: 'BLOCKED-1', quantity: 1, unitPrice: 1 }] };
    const run = await stack!.pinflow.start({ definition: ex.definition, input });
    await assert.rejects(stack!.pinflow.result(run.runId), (err: Error & { cause?: { type?: string; message?: string } }) => {
      assert.equal(err.cause?.type, 'ORDER_INVALID');
      assert.equal(err.cause?.message, 'order ord-1001 rejected: SKU BLOCKED-1 cannot be sold');
      return true;
    });
  });
});
