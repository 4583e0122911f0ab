/**
 * Wait activities: register a wait in the correlation index and hand over the
 * mailbox (events that arrived after the run reached the step) plus the
 * buffered events it may consume (since 0.6.0), consume one buffered event
 * atomically, then close the index row when the run's workflow code
 * resolved, timed out or cancelled it.
 */
import { EventStore } from '../projection/events';
import type { ProjectionStore } from '../projection/store';
import type { ProjectionWriter } from '../projection/writer';
import type { BufferedConsume, EventSignal, WaitClosing, WaitOpening } from '../graph/wire';

export interface WaitHooks {
  /**
   * Test hook: runs after the run decided to wait and before the wait row is
   * written, so a test can submit an event inside that window (the mailbox race).
   */
  beforeOpenWait?: (w: WaitOpening) => Promise<void>;
}

/** Their step records are written with the index rows, not through the writer; the writer observes their metrics. */
export function createWaitActivities({ store, writer, hooks = {} }: { store: ProjectionStore; writer?: ProjectionWriter; hooks?: WaitHooks }) {
  const events = new EventStore(store.db);
  return {
    async openWait(w: WaitOpening): Promise<EventSignal[]> {
      await hooks.beforeOpenWait?.(w);
      const signals = await events.openWait(w);
      writer?.observeSteps(w.runId, w.trail);
      return signals;
    },
    /** True when this wait won the buffered event (only one wait can); idempotent for a retried attempt. */
    async consumeBuffered(c: BufferedConsume): Promise<boolean> {
      return events.consumeBuffered(c);
    },
    async closeWait(c: WaitClosing): Promise<void> {
      await events.closeWait(c);
      writer?.observeSteps(c.runId, c.trail);
    },
  };
}
