/**
 * The event side of the projection: the correlation index (open waits), the
 * event log and its deliveries, and API-configured correlation rules. Used by
 * the wait activities (open, look back, close) and by the ingress router.
 * Like the rest of the projection it never decides what a run does: a run's
 * own workflow code accepts or drops every event it is handed.
 */
import type { DeliveryStatus, DeliveryVia, EventSource, EventStatus, WaitStatus } from '../graph/terminology';
import type { BufferedConsume, EventSignal, WaitClosing, WaitOpening } from '../graph/wire';
import { iso, type Db } from '../db/connection';
import * as sql from './event-sql';
import { ProjectionStore } from './store';
import { waitStepRecord } from './derive';

export type { EventFilter, WaitFilter } from './event-sql';

/** How many mailbox events one wait opening hands over at most. */
export const MAILBOX_LIMIT = 100;
/** How many buffered events one wait opening offers at most (it consumes one). */
export const BUFFERED_OFFER_LIMIT = 20;

export interface EventRecord {
  tenant: string;
  eventId: string;
  name: string;
  payload: unknown;
  correlationKey: string | null;
  keySource: 'explicit' | 'rule' | null;
  source: EventSource;
  status: EventStatus;
  error: { code: string; message: string; details?: unknown } | null;
  attempts: number;
  nextAttemptAt: string | null;
  /** The event's time to live (ms), when it has one. */
  ttlMs: number | null;
  /** Until when an unmatched event stays BUFFERED. */
  expiresAt: string | null;
  receivedAt: string;
  updatedAt: string;
}

export interface DeliveryRecord {
  runId: string;
  waitId: string;
  stepInstance: string | null;
  via: DeliveryVia;
  status: DeliveryStatus;
  attempts: number;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
  /** The wait's status now, and whether it consumed this event. */
  waitStatus: WaitStatus | null;
  consumed: boolean;
}

export interface EventDetail extends EventRecord {
  deliveries: DeliveryRecord[];
}

export interface WaitRecord {
  runId: string;
  waitId: string;
  stepInstance: string;
  tenant: string;
  event: string;
  correlationKey: string;
  hasFilter: boolean;
  status: WaitStatus;
  reachedAt: string;
  openedAt: string;
  timeoutAt: string | null;
  resolvedEventId: string | null;
  closedAt: string | null;
}

export interface RuleRecord {
  eventName: string;
  expression: string;
  /** The event name's default time to live (ms), or null. */
  ttlMs: number | null;
  updatedBy: string;
  updatedAt: string;
}


function toEvent(r: Record<string, unknown>): EventRecord {
  return {
    tenant: String(r.tenant),
    eventId: String(r.eventId),
    name: String(r.name),
    payload: r.payload ?? null,
    correlationKey: (r.correlationKey as string | null) ?? null,
    keySource: (r.keySource as EventRecord['keySource']) ?? null,
    source: r.source as EventSource,
    status: r.status as EventStatus,
    error: (r.error as EventRecord['error']) ?? null,
    attempts: Number(r.attempts),
    nextAttemptAt: iso(r.nextAttemptAt),
    ttlMs: r.ttlMs === null || r.ttlMs === undefined ? null : Number(r.ttlMs),
    expiresAt: iso(r.expiresAt),
    receivedAt: iso(r.receivedAt)!,
    updatedAt: iso(r.updatedAt)!,
  };
}

function toWait(r: Record<string, unknown>): WaitRecord {
  return {
    runId: String(r.runId),
    waitId: String(r.waitId),
    stepInstance: String(r.stepInstance),
    tenant: String(r.tenant),
    event: String(r.event),
    correlationKey: String(r.correlationKey),
    hasFilter: Boolean(r.hasFilter),
    status: r.status as WaitStatus,
    reachedAt: iso(r.reachedAt)!,
    openedAt: iso(r.openedAt)!,
    timeoutAt: iso(r.timeoutAt),
    resolvedEventId: (r.resolvedEventId as string | null) ?? null,
    closedAt: iso(r.closedAt),
  };
}

function toRule(r: Record<string, unknown>): RuleRecord {
  return { eventName: String(r.eventName), expression: String(r.expression), ttlMs: r.ttlMs === null || r.ttlMs === undefined ? null : Number(r.ttlMs), updatedBy: String(r.updatedBy), updatedAt: iso(r.updatedAt)! };
}

export class EventStore {
  private readonly runs: ProjectionStore;

  /** `runs`: the run tables' store on the same `db` (the rebuild passes its own, which knows the versions' redaction). */
  constructor(
    readonly db: Db,
    runs?: ProjectionStore,
  ) {
    this.runs = runs ?? new ProjectionStore(db);
  }

  /**
   * Register a wait in the correlation index, then look back in the mailbox.
   * Two separate statements, in this order, close the race with the router
   * (which inserts the event, then looks up waits): whichever commits
   * second sees the other, so an event is never missed by both.
   */
  /** The wait's rows: its step (RUNNING, after the trail) and its correlation index row. */
  async recordWaitOpened(w: WaitOpening): Promise<void> {
    await this.runs.recordSteps(w.runId, [...w.trail, waitStepRecord(w)], w.stepInstance);
    await this.db.query(sql.upsertWait(w));
  }

  async openWait(w: WaitOpening): Promise<EventSignal[]> {
    await this.recordWaitOpened(w);
    const found = (await this.db.query<Record<string, unknown>>(sql.selectMailbox(w.tenant, w.event, w.correlationKey, w.reachedAt, MAILBOX_LIMIT))).map(toEvent);
    if (found.length > 0) {
      await this.db.transaction(async (tx) => {
        for (const e of found) await tx.query(sql.insertDelivery({ tenant: w.tenant, eventId: e.eventId, runId: w.runId, waitId: w.waitId, via: 'lookback', status: 'DELIVERED' }));
        await tx.query(sql.markRoutedByLookback(w.tenant, found.map((e) => e.eventId)));
      });
    }
    const signal = (e: EventRecord): EventSignal => ({
      eventId: e.eventId,
      tenant: e.tenant,
      name: e.name,
      correlationKey: e.correlationKey!,
      payload: e.payload,
      receivedAt: e.receivedAt,
      waitId: w.waitId,
    });
    // Buffered events received before the run reached the wait: offered, not
    // handed over. The run checks its match filter on each and consumes one
    // through consumeBuffered, which only one wait can win.
    const buffered =
      w.acceptBuffered === false
        ? []
        : (await this.db.query<Record<string, unknown>>(sql.selectBuffered(w.tenant, w.event, w.correlationKey, w.reachedAt, BUFFERED_OFFER_LIMIT))).map(toEvent);
    return [...found.map(signal), ...buffered.map((e) => ({ ...signal(e), buffered: true as const }))];
  }

  /**
   * A wait consumes a buffered event, atomically: true for exactly one wait
   * (and again for that wait when its activity is retried), false when
   * another wait took it, it expired, or it was routed meanwhile.
   */
  async consumeBuffered(c: BufferedConsume): Promise<boolean> {
    if ((await this.db.query(sql.consumeBuffered(c.tenant, c.eventId, c.runId, c.waitId))).length > 0) return true;
    return (await this.db.query(sql.selectBufferDelivery(c.tenant, c.eventId, c.runId, c.waitId))).length > 0;
  }

  /** Buffered events whose time to live is over become EXPIRED. Returns how many. */
  async expireBuffered(limit: number): Promise<number> {
    return (await this.db.query(sql.expireBuffered(limit))).length;
  }

  async closeWait(c: WaitClosing): Promise<void> {
    await this.db.transaction(async (tx) => {
      // Already inside a transaction (the rebuild's), `tx` is this.db: its own store.
      const store = tx === this.db ? this.runs : new ProjectionStore(tx);
      if (c.trail.length > 0) await store.recordSteps(c.runId, c.trail);
      await tx.query(sql.closeWait(c.runId, c.waitId, c.status, c.eventId ?? null, c.closedAt));
    });
  }

  /** Insert a new event; returns false (and inserts nothing) when (tenant, eventId) exists. */
  async insertEvent(e: {
    tenant: string;
    eventId: string;
    name: string;
    payload: unknown;
    correlationKey: string | null;
    keySource: 'explicit' | 'rule' | null;
    fingerprint: string;
    source: EventSource;
    status: 'RECEIVED' | 'REJECTED';
    error?: unknown;
    ttlMs: number | null;
    routingLeaseMs: number;
  }): Promise<boolean> {
    const rows = await this.db.query(sql.insertEvent({ ...e, error: e.error ?? null }));
    return rows.length > 0;
  }

  async deleteRejectedEvent(tenant: string, eventId: string): Promise<void> {
    await this.db.query(sql.deleteRejectedEvent(tenant, eventId));
  }

  async getEventRow(tenant: string, eventId: string): Promise<(EventRecord & { fingerprint: string; candidatesAt: string | null }) | undefined> {
    const [r] = await this.db.query<Record<string, unknown>>(sql.selectEvent(tenant, eventId));
    return r ? { ...toEvent(r), fingerprint: String(r.fingerprint), candidatesAt: iso(r.candidatesAt) } : undefined;
  }

  async getEvent(tenant: string, eventId: string): Promise<EventDetail | undefined> {
    const row = await this.getEventRow(tenant, eventId);
    if (!row) return undefined;
    const event: EventRecord = { ...row };
    delete (event as Partial<typeof row>).fingerprint;
    delete (event as Partial<typeof row>).candidatesAt;
    const deliveries = (await this.db.query<Record<string, unknown>>(sql.selectDeliveries(tenant, eventId))).map((d) => ({
      runId: String(d.runId),
      waitId: String(d.waitId),
      stepInstance: (d.stepInstance as string | null) ?? null,
      via: d.via as DeliveryRecord['via'],
      status: d.status as DeliveryStatus,
      attempts: Number(d.attempts),
      lastError: (d.lastError as string | null) ?? null,
      createdAt: iso(d.createdAt)!,
      deliveredAt: iso(d.deliveredAt),
      waitStatus: (d.waitStatus as WaitStatus | null) ?? null,
      consumed: d.consumed === true,
    }));
    return { ...event, deliveries };
  }

  async listEvents(filter: sql.EventFilter, opts: { after?: { receivedAt: string; eventId: string }; limit: number }): Promise<EventRecord[]> {
    return (await this.db.query<Record<string, unknown>>(sql.selectEvents(filter, opts.after, opts.limit))).map(toEvent);
  }

  /** First routing only: record the open waits matching (tenant, name, key) as PENDING deliveries. */
  async recordCandidates(tenant: string, eventId: string): Promise<void> {
    await this.db.query(sql.recordCandidates(tenant, eventId));
  }

  /** Claim the event's deliveries that still need a signal (see `claimDeliveries`); each delivery goes to one claimer. */
  async claimDeliveries(tenant: string, eventId: string, claimedBy: string, claimTimeoutMs: number): Promise<Array<{ runId: string; waitId: string; attempts: number }>> {
    const rows = await this.db.query<{ runId: string; waitId: string; attempts: number }>(sql.claimDeliveries(tenant, eventId, claimedBy, claimTimeoutMs));
    return rows.map((d) => ({ runId: d.runId, waitId: d.waitId, attempts: Number(d.attempts) })).sort((a, b) => (a.runId + a.waitId).localeCompare(b.runId + b.waitId));
  }

  async markDelivery(tenant: string, eventId: string, runId: string, waitId: string, claimedBy: string, status: DeliveryStatus, error: string | null = null): Promise<void> {
    await this.db.query(sql.markDelivery(tenant, eventId, runId, waitId, claimedBy, status, error));
  }

  async settleEvent(tenant: string, eventId: string, maxAttempts: number, claimTimeoutMs: number): Promise<EventStatus> {
    const [r] = await this.db.query<{ status: EventStatus }>(sql.settleEvent(tenant, eventId, maxAttempts, claimTimeoutMs));
    return r!.status;
  }

  async claimDue(limit: number, leaseMs: number): Promise<Array<{ tenant: string; eventId: string }>> {
    return this.db.query<{ tenant: string; eventId: string }>(sql.claimDue(limit, leaseMs));
  }

  async listWaits(filter: sql.WaitFilter, limit: number): Promise<WaitRecord[]> {
    return (await this.db.query<Record<string, unknown>>(sql.selectWaits(filter, limit))).map(toWait);
  }

  async listRules(): Promise<RuleRecord[]> {
    return (await this.db.query<Record<string, unknown>>(sql.selectRules())).map(toRule);
  }

  async getRule(eventName: string): Promise<RuleRecord | undefined> {
    const [r] = await this.db.query<Record<string, unknown>>(sql.selectRule(eventName));
    return r ? toRule(r) : undefined;
  }

  async putRule(eventName: string, expression: string, by: string, ttlMs: number | null = null): Promise<RuleRecord> {
    const [r] = await this.db.query<Record<string, unknown>>(sql.upsertRule(eventName, expression, by, ttlMs));
    return toRule(r!);
  }

  async deleteRule(eventName: string): Promise<boolean> {
    return (await this.db.query(sql.deleteRule(eventName))).length > 0;
  }
}
