/**
 * Statements of the correlation index, the event log and deliveries, one
 * small named function each (same style as `sql.ts`).
 */
import { json, type Query } from '../db/connection';
import { whereBuilder } from './sql';
import type { DeliveryVia } from '../graph/terminology';


const EVENT_COLUMNS = `e.tenant, e.event_id AS "eventId", e.name, e.payload, e.correlation_key AS "correlationKey", e.key_source AS "keySource",
  e.fingerprint, e.source, e.status, e.error, e.candidates_at AS "candidatesAt", e.attempts, e.next_attempt_at AS "nextAttemptAt",
  e.ttl_ms AS "ttlMs", e.expires_at AS "expiresAt", e.received_at AS "receivedAt", e.updated_at AS "updatedAt"`;

const WAIT_COLUMNS = `w.run_id AS "runId", w.wait_id AS "waitId", w.step_instance AS "stepInstance", w.tenant, w.event_name AS "event",
  w.correlation_key AS "correlationKey", w.has_filter AS "hasFilter", w.status, w.reached_at AS "reachedAt", w.opened_at AS "openedAt",
  w.timeout_at AS "timeoutAt", w.resolved_event_id AS "resolvedEventId", w.closed_at AS "closedAt"`;

export const upsertWait = (w: {
  runId: string;
  waitId: string;
  stepInstance: string;
  tenant: string;
  event: string;
  correlationKey: string;
  hasFilter: boolean;
  reachedAt: string;
  timeoutAt: string | null;
}): Query => ({
  // A migration at the wait re-opens the same wait id, possibly with the new version's event or key.
  text: `INSERT INTO run_waits (run_id, wait_id, step_instance, tenant, event_name, correlation_key, has_filter, status, reached_at, timeout_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'OPEN', $8, $9)
         ON CONFLICT (run_id, wait_id) DO UPDATE SET
           step_instance = EXCLUDED.step_instance, event_name = EXCLUDED.event_name, correlation_key = EXCLUDED.correlation_key,
           has_filter = EXCLUDED.has_filter, timeout_at = EXCLUDED.timeout_at, status = 'OPEN', resolved_event_id = NULL, closed_at = NULL
         WHERE run_waits.status = 'OPEN'`,
  values: [w.runId, w.waitId, w.stepInstance, w.tenant, w.event, w.correlationKey, w.hasFilter, w.reachedAt, w.timeoutAt],
});

/** Closes an open wait; a replayed close of an already-closed wait changes nothing. */
export const closeWait = (runId: string, waitId: string, status: string, eventId: string | null, closedAt: string): Query => ({
  text: `UPDATE run_waits SET status = $3, resolved_event_id = $4, closed_at = $5
         WHERE run_id = $1 AND wait_id = $2 AND status = 'OPEN'`,
  values: [runId, waitId, status, eventId, closedAt],
});

/** The run closed (completed, failed, cancelled): none of its waits can resume any more. */
export const cancelRunWaits = (runId: string, closedAt: string): Query => ({
  text: `UPDATE run_waits SET status = 'CANCELLED', closed_at = $2 WHERE run_id = $1 AND status = 'OPEN'`,
  values: [runId, closedAt],
});

/** The mailbox: events for this wait that the log received after the run reached the step. */
export const selectMailbox = (tenant: string, name: string, key: string, since: string, limit: number): Query => ({
  text: `SELECT ${EVENT_COLUMNS} FROM events e
         WHERE e.tenant = $1 AND e.name = $2 AND e.correlation_key = $3 AND e.received_at >= $4 AND e.status <> 'REJECTED'
         ORDER BY e.received_at, e.event_id LIMIT $5`,
  values: [tenant, name, key, since, limit],
});

export const insertDelivery = (d: { tenant: string; eventId: string; runId: string; waitId: string; via: DeliveryVia; status: string }): Query => ({
  text: `INSERT INTO event_deliveries (tenant, event_id, run_id, wait_id, via, status, delivered_at)
         VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $6 = 'DELIVERED' THEN clock_timestamp() END)
         ON CONFLICT (tenant, event_id, run_id, wait_id) DO NOTHING`,
  values: [d.tenant, d.eventId, d.runId, d.waitId, d.via, d.status],
});

/** A look-back handed the event to a run: an UNMATCHED (or BUFFERED) event becomes ROUTED. */
export const markRoutedByLookback = (tenant: string, eventIds: string[]): Query => ({
  text: `UPDATE events SET status = 'ROUTED', updated_at = clock_timestamp()
         WHERE tenant = $1 AND event_id = ANY($2::text[]) AND status IN ('UNMATCHED', 'BUFFERED')`,
  values: [tenant, eventIds],
});

export const insertEvent = (e: {
  tenant: string;
  eventId: string;
  name: string;
  payload: unknown;
  correlationKey: string | null;
  keySource: string | null;
  fingerprint: string;
  source: string;
  status: string;
  error: unknown;
  /** Time to live: while it runs, an event that matched no wait stays BUFFERED. */
  ttlMs: number | null;
  /** How long a RECEIVED event may stay unsettled before the sweeper finishes its routing. */
  routingLeaseMs: number;
}): Query => ({
  text: `INSERT INTO events (tenant, event_id, name, payload, correlation_key, key_source, fingerprint, source, status, error, next_attempt_at, ttl_ms, expires_at)
         VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10::jsonb, CASE WHEN $9 = 'RECEIVED' THEN clock_timestamp() + $12 * interval '1 millisecond' END,
                 $11::bigint, clock_timestamp() + $11::bigint * interval '1 millisecond')
         ON CONFLICT (tenant, event_id) DO NOTHING
         RETURNING tenant, event_id AS "eventId", received_at AS "receivedAt"`,
  values: [e.tenant, e.eventId, e.name, json(e.payload ?? null), e.correlationKey, e.keySource, e.fingerprint, e.source, e.status, json(e.error), e.ttlMs, e.routingLeaseMs],
});

/** A rejected event submitted again may be resolved anew (nothing was ever signalled for it). */
export const deleteRejectedEvent = (tenant: string, eventId: string): Query => ({
  text: `DELETE FROM events WHERE tenant = $1 AND event_id = $2 AND status = 'REJECTED'`,
  values: [tenant, eventId],
});

export const selectEvent = (tenant: string, eventId: string): Query => ({
  text: `SELECT ${EVENT_COLUMNS} FROM events e WHERE e.tenant = $1 AND e.event_id = $2`,
  values: [tenant, eventId],
});

/** Deliveries of one event, with whether the run's wait consumed it. */
export const selectDeliveries = (tenant: string, eventId: string): Query => ({
  text: `SELECT d.run_id AS "runId", d.wait_id AS "waitId", d.via, d.status, d.attempts, d.last_error AS "lastError",
                d.created_at AS "createdAt", d.delivered_at AS "deliveredAt",
                w.status AS "waitStatus", w.step_instance AS "stepInstance", (w.resolved_event_id = d.event_id) AS consumed
         FROM event_deliveries d LEFT JOIN run_waits w ON w.run_id = d.run_id AND w.wait_id = d.wait_id
         WHERE d.tenant = $1 AND d.event_id = $2 ORDER BY d.run_id, d.wait_id`,
  values: [tenant, eventId],
});

/**
 * Record the candidate waits as PENDING deliveries, once per event: only the
 * first routing looks candidates up (a retry re-signals the same ones).
 */
export const recordCandidates = (tenant: string, eventId: string): Query => ({
  text: `WITH e AS (
           UPDATE events SET candidates_at = clock_timestamp(), updated_at = clock_timestamp()
           WHERE tenant = $1 AND event_id = $2 AND candidates_at IS NULL
           RETURNING tenant, event_id, name, correlation_key
         )
         INSERT INTO event_deliveries (tenant, event_id, run_id, wait_id, via, status)
         SELECT e.tenant, e.event_id, w.run_id, w.wait_id, 'signal', 'PENDING'
         FROM e JOIN run_waits w ON w.tenant = e.tenant AND w.event_name = e.name AND w.correlation_key = e.correlation_key AND w.status = 'OPEN'
         ON CONFLICT (tenant, event_id, run_id, wait_id) DO NOTHING`,
  values: [tenant, eventId],
});

/**
 * Claim the deliveries of one event that still need a signal: PENDING and
 * FAILED ones, and SENDING ones whose claim is older than the claim timeout
 * (the claimer died between claim and mark). One UPDATE: a concurrent
 * claimer blocks on the same rows, re-checks them once the first commits,
 * finds them SENDING and skips them, so each delivery goes to one claimer.
 */
export const claimDeliveries = (tenant: string, eventId: string, claimedBy: string, claimTimeoutMs: number): Query => ({
  text: `UPDATE event_deliveries SET status = 'SENDING', claimed_by = $3, claimed_at = clock_timestamp()
         WHERE tenant = $1 AND event_id = $2 AND via = 'signal'
           AND (status IN ('PENDING', 'FAILED') OR (status = 'SENDING' AND claimed_at < clock_timestamp() - $4 * interval '1 millisecond'))
         RETURNING run_id AS "runId", wait_id AS "waitId", attempts`,
  values: [tenant, eventId, claimedBy, claimTimeoutMs],
});

/**
 * The outcome of a claimed delivery; only its claimer may write it (a
 * taken-over claim is not overwritten). `claimed_by` and `claimed_at` stay
 * as the record of who sent the last attempt, and when.
 */
export const markDelivery = (tenant: string, eventId: string, runId: string, waitId: string, claimedBy: string, status: string, error: string | null): Query => ({
  text: `UPDATE event_deliveries SET status = $6, last_error = $7, attempts = attempts + 1,
           delivered_at = CASE WHEN $6 = 'DELIVERED' THEN clock_timestamp() ELSE delivered_at END
         WHERE tenant = $1 AND event_id = $2 AND run_id = $3 AND wait_id = $4 AND status = 'SENDING' AND claimed_by = $5`,
  values: [tenant, eventId, runId, waitId, claimedBy, status, error],
});

/**
 * Settle the event's status from its deliveries: FAILED (retried by the
 * sweeper with backoff) while any delivery failed, else ROUTED when it
 * reached a run, else BUFFERED while its time to live runs, else UNMATCHED
 * (no open wait, or only closed runs). A look-back or a buffered consume may
 * have made it ROUTED concurrently; that is never downgraded. While another
 * router holds a claim on one of its deliveries (SENDING), nothing is
 * settled: that router settles it when its signals are done.
 */
export const settleEvent = (tenant: string, eventId: string, maxAttempts: number, claimTimeoutMs: number): Query => ({
  text: `UPDATE events e SET
           attempts = e.attempts + 1,
           status = CASE
             WHEN EXISTS (SELECT 1 FROM event_deliveries d WHERE d.tenant = e.tenant AND d.event_id = e.event_id AND d.status = 'SENDING') THEN e.status
             WHEN EXISTS (SELECT 1 FROM event_deliveries d WHERE d.tenant = e.tenant AND d.event_id = e.event_id AND d.status IN ('FAILED', 'PENDING')) THEN 'FAILED'
             WHEN EXISTS (SELECT 1 FROM event_deliveries d WHERE d.tenant = e.tenant AND d.event_id = e.event_id AND d.status = 'DELIVERED') OR e.status = 'ROUTED' THEN 'ROUTED'
             WHEN e.expires_at > clock_timestamp() THEN 'BUFFERED'
             WHEN e.expires_at IS NOT NULL THEN 'EXPIRED'
             ELSE 'UNMATCHED' END,
           next_attempt_at = CASE
             -- Held by another router: the sweeper looks again when that claim expires (its router may have died).
             WHEN EXISTS (SELECT 1 FROM event_deliveries d WHERE d.tenant = e.tenant AND d.event_id = e.event_id AND d.status = 'SENDING')
             THEN (SELECT max(d.claimed_at) FROM event_deliveries d WHERE d.tenant = e.tenant AND d.event_id = e.event_id AND d.status = 'SENDING') + $4 * interval '1 millisecond'
             WHEN e.attempts + 1 < $3 AND EXISTS (SELECT 1 FROM event_deliveries d WHERE d.tenant = e.tenant AND d.event_id = e.event_id AND d.status IN ('FAILED', 'PENDING'))
             THEN clock_timestamp() + least(interval '1 second' * power(2, e.attempts), interval '5 minutes') END,
           updated_at = clock_timestamp()
         WHERE e.tenant = $1 AND e.event_id = $2
         RETURNING e.status`,
  values: [tenant, eventId, maxAttempts, claimTimeoutMs],
});

/**
 * Buffered events a wait that just opened may consume: same tenant, name and
 * key, received before the run reached the wait (later ones are the
 * mailbox's), time to live not over, and delivered to no wait. A RECEIVED
 * event whose candidates were already looked up (without this wait) is about
 * to become BUFFERED, so it counts too: otherwise a wait opening during that
 * routing would miss it.
 */
export const selectBuffered = (tenant: string, name: string, key: string, before: string, limit: number): Query => ({
  text: `SELECT ${EVENT_COLUMNS} FROM events e
         WHERE e.tenant = $1 AND e.name = $2 AND e.correlation_key = $3 AND e.received_at < $4
           AND e.expires_at > clock_timestamp()
           AND (e.status = 'BUFFERED' OR (e.status = 'RECEIVED' AND e.candidates_at IS NOT NULL))
           AND NOT EXISTS (SELECT 1 FROM event_deliveries d WHERE d.tenant = e.tenant AND d.event_id = e.event_id)
         ORDER BY e.received_at, e.event_id LIMIT $5`,
  values: [tenant, name, key, before, limit],
});

/**
 * A wait consumes a buffered event: the event becomes ROUTED and gets one
 * delivery (`via = 'buffer'`) to that wait, in one statement. Two waits
 * claiming the same event: the second blocks on the row, re-checks it after
 * the first commits, finds it ROUTED and gets nothing. Returns the run id
 * when this call consumed it.
 */
export const consumeBuffered = (tenant: string, eventId: string, runId: string, waitId: string): Query => ({
  text: `WITH c AS (
           UPDATE events e SET status = 'ROUTED', next_attempt_at = NULL, updated_at = clock_timestamp()
           WHERE e.tenant = $1 AND e.event_id = $2 AND e.expires_at > clock_timestamp()
             AND (e.status = 'BUFFERED' OR (e.status = 'RECEIVED' AND e.candidates_at IS NOT NULL))
             AND NOT EXISTS (SELECT 1 FROM event_deliveries d WHERE d.tenant = e.tenant AND d.event_id = e.event_id)
           RETURNING e.tenant, e.event_id
         )
         INSERT INTO event_deliveries (tenant, event_id, run_id, wait_id, via, status, attempts, delivered_at)
         SELECT c.tenant, c.event_id, $3, $4, 'buffer', 'DELIVERED', 1, clock_timestamp() FROM c
         RETURNING run_id AS "runId"`,
  values: [tenant, eventId, runId, waitId],
});

/** Whether this wait consumed this buffered event already (a retried consume activity answers the same). */
export const selectBufferDelivery = (tenant: string, eventId: string, runId: string, waitId: string): Query => ({
  text: `SELECT run_id AS "runId" FROM event_deliveries WHERE tenant = $1 AND event_id = $2 AND run_id = $3 AND wait_id = $4 AND via = 'buffer'`,
  values: [tenant, eventId, runId, waitId],
});

/** The sweeper's expiry pass: buffered events whose time to live is over. */
export const expireBuffered = (limit: number): Query => ({
  text: `UPDATE events SET status = 'EXPIRED', updated_at = clock_timestamp()
         WHERE (tenant, event_id) IN (
           SELECT tenant, event_id FROM events
           WHERE status = 'BUFFERED' AND expires_at <= clock_timestamp()
           ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING tenant, event_id AS "eventId"`,
  values: [limit],
});

/**
 * Claim events the sweeper should route again: failed deliveries that are
 * due, and routings a crash interrupted (still RECEIVED after their lease).
 * The claim pushes `next_attempt_at` out by the lease, so concurrent
 * sweepers (several API processes) never take the same event at once.
 */
export const claimDue = (limit: number, leaseMs: number): Query => ({
  text: `UPDATE events SET next_attempt_at = clock_timestamp() + $2 * interval '1 millisecond'
         WHERE (tenant, event_id) IN (
           SELECT tenant, event_id FROM events
           WHERE status IN ('RECEIVED', 'FAILED') AND next_attempt_at <= clock_timestamp()
           ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING tenant, event_id AS "eventId"`,
  values: [limit, leaseMs],
});

export interface EventFilter {
  tenant?: string | undefined;
  name?: string | undefined;
  status?: string | undefined;
  correlationKey?: string | undefined;
}

export const selectEvents = (f: EventFilter, after: { receivedAt: string; eventId: string } | undefined, limit: number): Query => {
  const w = whereBuilder();
  const { add, values } = w;
  if (f.tenant) add('e.tenant = ?', f.tenant);
  if (f.name) add('e.name = ?', f.name);
  if (f.status) add('e.status = ?', f.status);
  if (f.correlationKey) add('e.correlation_key = ?', f.correlationKey);
  if (after) {
    values.push(after.receivedAt, after.eventId);
    w.raw(`(e.received_at, e.event_id) < ($${values.length - 1}::timestamptz, $${values.length})`);
  }
  values.push(limit);
  return {
    text: `SELECT ${EVENT_COLUMNS} FROM events e ${w.clause()}
           ORDER BY e.received_at DESC, e.event_id DESC LIMIT $${values.length}`,
    values,
  };
};

export interface WaitFilter {
  tenant?: string | undefined;
  event?: string | undefined;
  correlationKey?: string | undefined;
  runId?: string | undefined;
  status?: string | undefined;
}

export const selectWaits = (f: WaitFilter, limit: number): Query => {
  const w = whereBuilder();
  const { add, values } = w;
  if (f.tenant) add('w.tenant = ?', f.tenant);
  if (f.event) add('w.event_name = ?', f.event);
  if (f.correlationKey) add('w.correlation_key = ?', f.correlationKey);
  if (f.runId) add('w.run_id = ?', f.runId);
  if (f.status) add('w.status = ?', f.status);
  values.push(limit);
  return {
    text: `SELECT ${WAIT_COLUMNS} FROM run_waits w ${w.clause()}
           ORDER BY w.opened_at DESC, w.run_id, w.wait_id LIMIT $${values.length}`,
    values,
  };
};

const RULE_COLUMNS = `event_name AS "eventName", expression, ttl_ms AS "ttlMs", updated_by AS "updatedBy", updated_at AS "updatedAt"`;

export const selectRules = (): Query => ({
  text: `SELECT ${RULE_COLUMNS} FROM correlation_rules ORDER BY event_name`,
});

export const selectRule = (eventName: string): Query => ({
  text: `SELECT ${RULE_COLUMNS} FROM correlation_rules WHERE event_name = $1`,
  values: [eventName],
});

export const upsertRule = (eventName: string, expression: string, by: string, ttlMs: number | null): Query => ({
  text: `INSERT INTO correlation_rules (event_name, expression, updated_by, ttl_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (event_name) DO UPDATE SET expression = EXCLUDED.expression, updated_by = EXCLUDED.updated_by, ttl_ms = EXCLUDED.ttl_ms, updated_at = now()
         RETURNING ${RULE_COLUMNS}`,
  values: [eventName, expression, by, ttlMs],
});

export const deleteRule = (eventName: string): Query => ({
  text: `DELETE FROM correlation_rules WHERE event_name = $1 RETURNING event_name`,
  values: [eventName],
});

/** Open waits by event name, for the pinflow_waits_open gauge; reads the partial index run_waits_open_idx only. */
export const countOpenWaitsByEvent = (): Query => ({
  text: `SELECT event_name AS event, count(*)::int AS count FROM run_waits WHERE status = 'OPEN' GROUP BY event_name`,
  values: [],
});
