/**
 * The hand-written baselines: the same work as the benchmark graphs, written
 * directly as Temporal workflows. They are the physical limit an interpreter
 * is measured against, so they are kept honest: the same activity options as
 * an RPC step with the default contract (30 s start-to-close, 5 attempts,
 * 1 s initial interval, backoff 2, 60 s maximum), the same payloads, and a
 * worker with the same settings as the interpreter's. They are bundled alone
 * (this module is the bundle's entry: no interpreter, no jsonata) and run on
 * a worker and task queue of their own (bench/run.ts), so neither kind of run
 * pays for evaluating the other's modules. What they do not have is what
 * pinflow adds: the contract check and the projection.
 *
 * Workflow code: no Node APIs, no I/O.
 */
import { condition, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';

export interface BaselineActivities {
  /** Runs the same handler as the `bench.noop` RPC. */
  benchNoop(input: { i: number }): Promise<{ ok: boolean }>;
}

const { benchNoop } = proxyActivities<BaselineActivities>({
  startToCloseTimeout: '30s',
  retry: { maximumAttempts: 5, initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '60s' },
});

/** `n` sequential activity calls: the hand-written form of a graph of `n` rpc steps. */
export async function baselineSequential(n: number): Promise<{ ok: boolean }> {
  let last = { ok: false };
  for (let i = 0; i < n; i++) last = await benchNoop({ i });
  return last;
}

/**
 * The hand-written form of the control graph: `steps` control steps
 * (alternating an assignment and a branch on it) with an activity call after
 * every `rpcEvery` of them.
 */
export async function baselineControl(args: { steps: number; rpcEvery: number }): Promise<{ x: number; even: number }> {
  let x = 0;
  let even = 0;
  for (let k = 0; k < args.steps; k++) {
    if (k % 2 === 0) x = x + 1;
    else if (x % 2 === 0) even = even + 1;
    if ((k + 1) % args.rpcEvery === 0) await benchNoop({ i: k });
  }
  return { x, even };
}

/** Wakes a {@link baselineWait}. */
export const wakeSignal = defineSignal('bench.wake');

/**
 * The hand-written form of a run waiting on an event: one activity (so the
 * benchmark knows it is open and cached), then a signal or a 1 h timeout.
 */
export async function baselineWait(): Promise<boolean> {
  let woken = false;
  setHandler(wakeSignal, () => void (woken = true));
  await benchNoop({ i: -1 });
  return condition(() => woken, '1h');
}
