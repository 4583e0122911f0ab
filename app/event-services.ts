/**
 * The background services of whichever process serves the API (the embedded
 * stack or the standalone API): the sweeper that retries failed deliveries,
 * the Redis stream door when REDIS_URL is set, and the reconciler's periodic
 * pass (PINFLOW_RECONCILE_INTERVAL_MS; 0 turns it off).
 *
 * The reconciler runs here and not in the worker: it needs what this process
 * already has (a Temporal client and the projection, through `Pinflow`),
 * there is one such process per deployment in `npm start` and usually few
 * API replicas, while workers are scaled out (each would describe every open
 * run again). Several API replicas each reconciling are safe (every write is
 * conditional), only redundant: set the interval to 0 on all but one.
 *
 * The batch runner runs here too: several API processes share the items of
 * a batch (each item is claimed under a lease), each at the batch's rate.
 *
 * So does the retention sweeper (PINFLOW_RETENTION_INTERVAL_MS; 0 turns it
 * off): one sweep at a time across processes (a unique index), driven under
 * a lease; and at start, the namespace's retention is compared with what the
 * retention policies need (a warning when it is shorter).
 */
import type { Pinflow } from '../client/pinflow';
import { RedisIngress } from '../client/redis-ingress';
import type { PinflowConfig } from './config';

export interface EventServices {
  /** The stream door, when REDIS_URL is set. */
  stream: RedisIngress | undefined;
  stop(): Promise<void>;
}

export async function startEventServices(config: PinflowConfig, pinflow: Pinflow, log: (line: string) => void): Promise<EventServices> {
  if (config.events.sweepIntervalMs > 0) pinflow.events.startSweeper(config.events.sweepIntervalMs, log);
  const stopReconciler = () => Promise.all([pinflow.reconciler.stop(), pinflow.attention.stop()]).then(() => undefined);
  if (config.attention.intervalMs > 0) {
    pinflow.attention.start(config.attention.intervalMs);
    log(`attention: a check of the open runs every ${config.attention.intervalMs} ms`);
  }
  if (config.reconcile.intervalMs > 0) {
    pinflow.reconciler.start(config.reconcile.intervalMs);
    log(`reconciler: a pass over the open runs every ${config.reconcile.intervalMs} ms`);
  }
  if (config.retention.intervalMs > 0) {
    pinflow.retention.start(config.retention.intervalMs);
    log(`retention: a sweeper tick every ${config.retention.intervalMs} ms (batches of ${config.retention.batchSize}, ${config.retention.pauseMs} ms apart)`);
  }
  const stopRetention = () => pinflow.retention.stop();
  void pinflow.retention.checkNamespace().then(
    (ns) => {
      if (!ns.ok) log(`retention: WARNING: ${ns.message}`);
    },
    (err: unknown) => log(`retention: the namespace's retention was not checked: ${(err as Error).message}`),
  );
  // Batches: every unfinished one is picked up where it stopped (PINFLOW_BATCH_POLL_MS; 0 turns the runner off here).
  pinflow.batches.start();
  const stopBatches = () => pinflow.batches.stop();
  let stream: RedisIngress | undefined;
  if (config.events.redisUrl) {
    stream = new RedisIngress({
      url: config.events.redisUrl,
      ingress: pinflow.events,
      stream: config.events.stream,
      group: config.events.group,
      claimIdleMs: config.events.claimIdleMs,
      maxAttempts: config.events.streamMaxAttempts,
      log,
    });
    try {
      await stream.start();
    } catch (err) {
      await stopBatches();
      await stopReconciler();
      await stopRetention();
      await pinflow.events.stopSweeper();
      throw err;
    }
    log(`event stream door: consuming ${config.events.stream} as ${stream.consumer} in group ${config.events.group}`);
  }
  return {
    stream,
    async stop() {
      await stream?.stop();
      await stopBatches();
      await stopReconciler();
      await stopRetention();
      await pinflow.events.stopSweeper();
    },
  };
}

/**
 * Sets the namespace's retention to what the retention policies need, when it
 * is shorter (the embedded dev server's namespace, which pinflow owns; a
 * shared server's is changed only on request: `pinflow retention namespace --apply`).
 */
export async function applyNamespaceRetention(pinflow: Pinflow, log: (line: string) => void): Promise<void> {
  try {
    const ns = await pinflow.retention.checkNamespace();
    if (ns.ok || ns.neededDays === null || (ns.days !== null && ns.days >= ns.neededDays)) return;
    const after = await pinflow.retention.applyNamespace();
    log(`retention: namespace ${after.namespace} now keeps histories ${after.days} days (was ${after.previousDays}), as the retention policies need`);
  } catch (err) {
    log(`retention: the namespace's retention was not set: ${(err as Error).message}`);
  }
}
