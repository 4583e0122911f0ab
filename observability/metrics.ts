/**
 * pinflow's Prometheus metrics: the one registry and every metric definition.
 * Names, types, labels and meanings are documented in the README ("### Metrics");
 * a new metric is added here and there, nowhere else.
 *
 * Rules every metric here follows:
 * - **bounded labels**: definitions, short version hashes, step types, RPC
 *   names, event names, statuses, reasons. Never a run id, an event id, a
 *   correlation key or a tenant.
 * - **never in the way**: every update goes through {@link safely}, so a
 *   metrics failure (a bad label, a bug here) is swallowed and never fails a
 *   run, an activity or a request.
 * - **per process**: counters and histograms count what this process did. The
 *   API process also reports two gauges read from the projection when it is
 *   scraped (stalls open, waits open): they are global, so sum them over API
 *   instances with `max`, not `sum`.
 *
 * Workflow code (workflows/) never imports this module: it may not do I/O and
 * it replays. Runs, steps and dispatches are measured where they leave the
 * workflow: the client, the activities and the projection writer.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

/** Run `fn`, swallowing anything it throws: metrics never break the work they measure. */
export function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // metrics are best effort
  }
}

/** The `version` label: the first 12 hex digits of a version hash, as pinflow's logs show it. */
export function shortVersion(hash: string): string {
  return hash.slice(0, 12);
}

const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400];
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export const runsStarted = new Counter({
  name: 'pinflow_runs_started_total',
  help: 'Runs started: by the pinflow client once Temporal accepted them; child runs by the worker when their start is projected.',
  labelNames: ['definition', 'version'] as const,
  registers: [registry],
});

export const runsClosed = new Counter({
  name: 'pinflow_runs_closed_total',
  help: 'Runs closed (COMPLETED, FAILED, CANCELLED), counted by the worker when the close reaches the projection.',
  labelNames: ['definition', 'version', 'status'] as const,
  registers: [registry],
});

export const stepDuration = new Histogram({
  name: 'pinflow_step_duration_seconds',
  help: 'Duration of finished step attempts (startedAt to finishedAt), observed by the worker when the step record is projected.',
  labelNames: ['definition', 'step_type', 'status'] as const,
  buckets: SECONDS_BUCKETS,
  registers: [registry],
});

/** Outcomes of one RPC attempt: see {@link rpcDispatches}. */
export type RpcOutcome = 'ok' | 'contract_drift' | 'retry' | 'failed' | 'cancelled' | 'rpc_missing' | 'input_incompatible' | 'output_incompatible';

export const rpcDispatches = new Counter({
  name: 'pinflow_rpc_dispatches_total',
  help:
    'RPC activity attempts by outcome: ok; contract_drift (completed on a changed but compatible contract); retry (a retryable failure); ' +
    'failed (non-retryable); cancelled; or the stall reason (rpc_missing, input_incompatible, output_incompatible).',
  labelNames: ['rpc', 'outcome'] as const,
  registers: [registry],
});

export const stallsOpen = new Gauge({
  name: 'pinflow_stalls_open',
  help: 'Runs STALLED now, by stall reason; read from the projection when the API process is scraped.',
  labelNames: ['reason'] as const,
  registers: [registry],
});

export const waitsOpen = new Gauge({
  name: 'pinflow_waits_open',
  help: 'Open waits in the correlation index, by event name; read from the projection when the API process is scraped.',
  labelNames: ['event'] as const,
  registers: [registry],
});

/** Where an event came in: the `door` label. */
export type EventDoor = 'http' | 'redis' | 'library';

export const eventsIngested = new Counter({
  name: 'pinflow_events_ingested_total',
  help:
    'Event submissions by door (http, redis, library) and outcome: the event status (routed, unmatched, buffered, failed, received) or ' +
    'duplicate, rejected (no correlation key), invalid (refused envelope), conflict (eventId reused), error (unexpected).',
  labelNames: ['door', 'status'] as const,
  registers: [registry],
});

export const routingDuration = new Histogram({
  name: 'pinflow_event_routing_duration_seconds',
  help: 'Time to route one event: look up the waiting runs, signal each one and settle the event, by resulting status.',
  labelNames: ['status'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

export const projectionWriteDuration = new Histogram({
  name: 'pinflow_projection_write_duration_seconds',
  help: 'Projection writes from submission to settlement (queueing and retries included), by write kind and outcome (written, degraded, dropped).',
  labelNames: ['kind', 'outcome'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

export const projectionWriteFailures = new Counter({
  name: 'pinflow_projection_write_failures_total',
  help:
    'Projection write failures by write kind and reason: transient (an attempt failed and is retried), rejected (refused for good, retried without payloads), ' +
    'dropped (refused even without payloads, queue full, or writer closed).',
  labelNames: ['kind', 'reason'] as const,
  registers: [registry],
});

export const reconcilerCorrections = new Counter({
  name: 'pinflow_reconciler_corrections_total',
  help: 'Corrections the reconciler made to the projection for runs changed from Temporal (terminated, reset, cancelled, deleted), by kind.',
  labelNames: ['kind'] as const,
  registers: [registry],
});

export const metricsCollectFailures = new Counter({
  name: 'pinflow_metrics_collect_failures_total',
  help: 'Scrapes whose projection gauges (stalls open, waits open) could not be read; the gauges keep their last values.',
  registers: [registry],
});

/**
 * Count one correction of the reconciler (issue #13, section 2): `kind` is a
 * short fixed word such as `terminated`, `cancelled`, `reset`, `deleted`,
 * `wait_cancelled`, `stall_cleared`. Used by the reconciler only.
 */
export function countReconcilerCorrection(kind: string, n = 1): void {
  safely(() => reconcilerCorrections.inc({ kind }, n));
}

/** Seconds since `startMs` (a `performance.now()` or `Date.now()` reading of the same clock as `nowMs`). */
export function secondsSince(startMs: number, nowMs = Date.now()): number {
  return Math.max(0, (nowMs - startMs) / 1000);
}

/** What the projection gauges are read from (the API process's event and run store). */
export interface ProjectionGaugeSource {
  /** Runs STALLED now, by reason. */
  stallsByReason(): Promise<Array<{ reason: string; count: number }>>;
  /** Open waits in the correlation index, by event name. */
  openWaitsByEvent(): Promise<Array<{ event: string; count: number }>>;
}

/**
 * Set the projection gauges from `source`, at most `timeoutMs`. On failure
 * or timeout the gauges keep their last values and the failure is counted.
 */
export async function refreshProjectionGauges(source: ProjectionGaugeSource, knownReasons: readonly string[], timeoutMs = 2_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const [stalls, waits] = await Promise.race([
      Promise.all([source.stallsByReason(), source.openWaitsByEvent()]),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), timeoutMs);
      }),
    ]);
    safely(() => {
      stallsOpen.reset();
      for (const reason of knownReasons) stallsOpen.set({ reason }, 0);
      for (const s of stalls) stallsOpen.set({ reason: s.reason }, s.count);
      waitsOpen.reset();
      for (const w of waits) waitsOpen.set({ event: w.event }, w.count);
    });
  } catch {
    safely(() => metricsCollectFailures.inc());
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** The text exposition of every metric of this process. */
export async function metricsText(): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: await registry.metrics() };
}
