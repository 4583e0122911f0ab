/**
 * The background parts of event ingress, for whichever process serves the
 * API (the embedded stack or the standalone API): the sweeper that retries
 * failed deliveries, and the Redis stream door when REDIS_URL is set.
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
      await pinflow.events.stopSweeper();
      throw err;
    }
    log(`event stream door: consuming ${config.events.stream} as ${stream.consumer} in group ${config.events.group}`);
  }
  return {
    stream,
    async stop() {
      await stream?.stop();
      await pinflow.events.stopSweeper();
    },
  };
}
