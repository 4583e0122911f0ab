/**
 * Shared by the run-story tests: a stalled run (its pinned RPC's input no
 * longer fits the live contract) and a waiting run, and readers for what the
 * Temporal UI shows of them (search attributes, current details, summaries).
 */
import { z } from 'zod';
import type { temporal } from '@temporalio/proto';
import { defineRpc } from '../../rpc/registry';
import { Pinflow } from '../../client/pinflow';
import type { Env } from './harness';

/** The contract the stalling run is pinned with. */
export const pinnedAdd = defineRpc('story.add', {
  input: z.object({ a: z.number(), b: z.number() }),
  output: z.object({ sum: z.number() }),
  handler: ({ a, b }) => ({ sum: a + b }),
});
/** The deploy changed its input: the pinned call no longer fits (a stall with validation issues). */
export const brokenAdd = defineRpc('story.add', {
  input: z.object({ a: z.string(), b: z.string() }),
  output: z.object({ sum: z.number() }),
  handler: ({ a, b }) => ({ sum: Number(a) + Number(b) }),
});

export const STALL_GRAPH = {
  entry: 'reserve',
  steps: [
    { id: 'reserve', type: 'rpc', rpc: 'story.add', input: { a: 'input.a', b: 'input.b' }, next: 'done' },
    { id: 'done', type: 'return', output: 'steps.reserve.sum' },
  ],
};

export const WAIT_GRAPH = {
  entry: 'nap',
  steps: [
    { id: 'nap', type: 'sleep', duration: '10ms', next: 'paid' },
    { id: 'paid', type: 'wait', event: 'payment.received', correlationKey: 'input.orderId', timeout: '3d', saveAs: 'paid', next: 'greet' },
    { id: 'greet', type: 'rpc', rpc: 'text.greet', input: { name: 'vars.paid.payload.by' }, next: 'done' },
    { id: 'done', type: 'return', output: 'steps.greet.greeting' },
  ],
};

/** Publish the two story definitions (the stall one pinned to {@link pinnedAdd}). */
export async function publishStory(env: Env, rpcs: Parameters<typeof env.startWorker>[0]): Promise<void> {
  const publisher = new Pinflow({ client: env.client, store: env.store, rpcs: [...rpcs, pinnedAdd] });
  await publisher.publish('order-fulfilment', STALL_GRAPH);
  await publisher.publish('order-payment', WAIT_GRAPH);
}

/** The run's search attributes, as Temporal has them. */
export async function searchAttributes(env: Env, runId: string): Promise<Record<string, unknown>> {
  const d = await env.client.workflow.getHandle(runId).describe();
  return Object.fromEntries(d.typedSearchAttributes.getAll().map((p) => [p.key.name, p.value]));
}

/** The run's current details (the SDK's metadata query, which the UI reads too). */
export async function currentDetailsOf(env: Env, runId: string): Promise<string> {
  const meta = await env.client.workflow.getHandle(runId).query<temporal.api.sdk.v1.IWorkflowMetadata>('__temporal_workflow_metadata');
  return meta.currentDetails ?? '';
}

/** The summaries of the run's activities, local activities and timers, decoded, in history order. */
export async function summariesOf(env: Env, runId: string): Promise<string[]> {
  const history = await env.client.workflow.getHandle(runId).fetchHistory();
  const out: string[] = [];
  for (const e of history.events ?? []) {
    const data = e.userMetadata?.summary?.data;
    if (!data || e.workflowExecutionStartedEventAttributes) continue;
    out.push(JSON.parse(Buffer.from(data).toString('utf8')) as string);
  }
  return out;
}
