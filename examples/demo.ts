/**
 * Demo runs for `npm start` on embedded defaults: one run of the examples at
 * every state an operator meets (completed, failed, waiting, running,
 * stalled), so every view of the console has something to show on the first
 * start. Each has a fixed run id and starts with `ifExists: 'return'`: a
 * second start finds them and starts nothing.
 *
 * Two small demo definitions complete the picture: `demo-scheduled-digest`
 * sleeps for a day (a run that is running), and `demo-retired-refund` was
 * published against an RPC the running deployment no longer serves
 * (`billing.refund-v1`, retired), so its run stalls with `rpc_missing` until
 * an operator decides: skip with an output, or cancel.
 */
import { z } from 'zod';
import { publishGraph } from '../catalog/publish';
import type { Pinflow } from '../client/pinflow';
import { defineRpc, toRegistry } from '../rpc/registry';
import { examples } from './index';

/** The retired RPC: known to the catalog when the demo definition was published, absent from the deployment. */
const retiredRefund = defineRpc('billing.refund-v1', {
  input: z.object({ orderId: z.string(), amount: z.number().nonnegative() }),
  output: z.object({ refundId: z.string() }),
  handler: () => {
    throw new Error('billing.refund-v1 was retired; this handler is never deployed');
  },
});

const digestGraph = {
  description: 'Demo: collect the day, sleep until tomorrow, send the digest (a run that stays RUNNING for a day).',
  entry: 'collect',
  steps: [
    { id: 'collect', type: 'assign', set: { day: 'input.day' }, next: 'until-tomorrow' },
    { id: 'until-tomorrow', type: 'sleep', duration: '1d', next: 'send' },
    { id: 'send', type: 'return', output: { sent: 'vars.day' } },
  ],
};

const refundGraph = {
  description: 'Demo: refund an order through billing.refund-v1, an RPC the current deployment retired (its runs stall: rpc_missing).',
  entry: 'refund',
  steps: [
    { id: 'refund', type: 'rpc', rpc: 'billing.refund-v1', input: { orderId: 'input.orderId', amount: 'input.amount' }, next: 'done' },
    { id: 'done', type: 'return', output: { refundId: 'steps.refund.refundId' } },
  ],
};

function sample(definition: string): unknown {
  const ex = examples.find((e) => e.definition === definition);
  if (!ex) throw new Error(`no example ${definition}`);
  return ex.sampleInput;
}

/** The demo runs: id, definition, input, what state it shows. */
export function demoRuns(): Array<{ runId: string; definition: string; input: unknown; shows: string }> {
  const order = sample('order-fulfilment') as Record<string, unknown>;
  return [
    { runId: 'demo-order-completed', definition: 'order-fulfilment', input: order, shows: 'COMPLETED' },
    { runId: 'demo-order-failed', definition: 'order-fulfilment', input: { ...order, orderId: 'ord-1002', items: [{ sku: 'BLOCKED-9', quantity: 1, unitPrice: 10 }] }, shows: 'FAILED (fail step reject)' },
    { runId: 'demo-ticket-waiting', definition: 'support-ticket', input: sample('support-ticket'), shows: 'RUNNING, waiting for ticket.replied' },
    { runId: 'demo-digest-running', definition: 'demo-scheduled-digest', input: { day: new Date().toISOString().slice(0, 10) }, shows: 'RUNNING, sleeping' },
    { runId: 'demo-refund-stalled', definition: 'demo-retired-refund', input: { orderId: 'ord-1001', amount: 138 }, shows: 'STALLED (rpc_missing)' },
  ];
}

/** Publishes the two demo definitions and starts the demo runs (idempotent). Returns one line per run. */
export async function startDemoRuns(pinflow: Pinflow): Promise<string[]> {
  await pinflow.publish('demo-scheduled-digest', digestGraph);
  // Published against the registry of an earlier deployment that still had billing.refund-v1.
  await publishGraph({ catalog: pinflow.catalog, registry: toRegistry([retiredRefund]) }, 'demo-retired-refund', refundGraph);
  const lines: string[] = [];
  for (const r of demoRuns()) {
    const started = await pinflow.start({ definition: r.definition, input: r.input, runId: r.runId, ifExists: 'return', metadata: { demo: 'true' } });
    lines.push(`${r.runId}: ${r.shows}${'existing' in started && started.existing ? ' (already there)' : ''}`);
  }
  return lines;
}
