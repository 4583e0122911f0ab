/**
 * Event ingress: the one function behind all three doors (the library call,
 * `POST /events`, the Redis stream consumer). It validates the envelope,
 * resolves the correlation key (explicit, else the event name's rule),
 * records the event in the event log, deduplicates by eventId, and routes it
 * through the correlation index: each open wait on (tenant, name, key) gets a
 * `pinflow.event` signal through the one long-lived Temporal client. The run
 * itself decides whether the event matches. Failed deliveries are retried by
 * the sweeper with backoff; an event is never marked routed before its
 * deliveries succeeded.
 *
 * Each delivery is claimed (SENDING) before it is signalled, so concurrent
 * duplicate submissions and the sweeper never signal the same delivery
 * twice. An event with a time to live that matched no wait stays BUFFERED
 * for the first wait that opens on its key (openWait / consumeBuffered); the
 * sweeper expires it.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { canonicalJson, sha256Hex } from '../graph/canonical';
import { ERROR_CODES, InvalidRequestError, NotFoundError, PinflowError, type ErrorCode } from '../graph/errors';
import { checkExpression, compileExpression, evaluateExpression, ExpressionError, type ExpressionScope } from '../graph/expression';
import { DURATION_PATTERN, RPC_NAME_PATTERN, durationMs, type Duration } from '../graph/schema';
import { CORRELATION_KEY_MAX, normaliseCorrelationKey } from '../graph/correlation';
import { assertCleanJson, findJsonProblem } from '../graph/json-guard';
import { DEFAULT_TENANT, TENANT_PATTERN, type EventSource, type EventStatus } from '../graph/terminology';
import { EventStore, type EventDetail, type EventFilter, type EventRecord, type RuleRecord, type WaitFilter, type WaitRecord } from '../projection/events';
import type { Db } from '../db/connection';
import { eventSignal } from '../workflows/definitions';
import { decodeCursor, encodeCursor } from '../projection/cursor';
import type { EventSignal } from '../graph/wire';
import { eventsIngested, routingDuration, safely, secondsSince, type EventDoor } from '../observability/metrics';
import type { Span } from '@opentelemetry/api';
import { inSpan } from '../observability/tracing';

/** What a door hands to the ingress. */
export interface SubmitEventInput {
  /** @default 'default' */
  tenant?: string;
  /** The event name, e.g. `ticket.closed`. */
  name: string;
  payload?: unknown;
  /** Deduplication id: submitting it again returns the first outcome and signals nothing again. @default a random UUID */
  eventId?: string;
  /** The business key (non-empty string or finite number). Wins over the name's correlation rule. */
  correlationKey?: string | number | null;
  /**
   * Time to live, as milliseconds or a duration like the graph language's
   * (`'30s'`, `'5m'`, `'2h'`, `'1d'`): while it runs, an event that matched
   * no open wait stays BUFFERED for the first wait that opens on its key.
   * Wins over the name's default (its correlation rule). At most the
   * configured maximum ({@link EventIngressOptions.ttlMaxMs}).
   * @default the rule's ttl, else none (an unmatched event is UNMATCHED)
   */
  ttl?: Duration | null;
}

/** A correlation rule configured in code: the key expression, and optionally the name's default time to live. */
export type CodeRule = string | { expression: string; ttl?: Duration };

export interface EventOutcome extends EventDetail {
  /** Runs the event was handed to (signalled or looked back), deduplicated. */
  runIds: string[];
  /** True when this eventId had been submitted before: nothing was signalled again. */
  duplicate: boolean;
}

export interface RuleView {
  eventName: string;
  expression: string;
  /** The event name's default time to live in ms (capped by the maximum when applied), or null. */
  ttlMs: number | null;
  /** `code`: passed to the Pinflow constructor (read-only through the API); `api`: stored in Postgres. */
  source: 'code' | 'api';
  updatedBy: string | null;
  updatedAt: string | null;
}

export interface IngressHooks {
  /** Test hook: called before each signal; throwing makes that delivery fail (the sweeper retries it). */
  beforeSignal?: (d: { tenant: string; eventId: string; runId: string; waitId: string; attempt: number }) => Promise<void>;
}

export interface EventIngressOptions {
  client: Client;
  db: Db;
  /** Correlation rules configured in code: event name → JSONata over `{ name, tenant, eventId, payload }` (or `{ expression, ttl }`). */
  rules?: Record<string, CodeRule>;
  /** Delivery attempts (first routing included) before an event stays FAILED for an operator. @default 12 */
  maxAttempts?: number;
  /** Signals in flight per event (fan-out to many waiting runs). @default 16 */
  signalConcurrency?: number;
  hooks?: IngressHooks;
  /** Largest time to live an event or a rule may ask for (PINFLOW_EVENT_TTL_MAX). @default 7 days */
  ttlMaxMs?: number;
  /**
   * A delivery claimed (SENDING) longer than this is taken over by the
   * sweeper: its claimer died between claim and signal. Longer than one
   * signal can take (each signal has a deadline of half of it).
   * @default 60000
   */
  claimTimeoutMs?: number;
  /** A RECEIVED event not settled after this long (its router died) is routed by the sweeper. @default 30000 */
  routingLeaseMs?: number;
}

/** The default of {@link EventIngressOptions.ttlMaxMs}: 7 days. */
export const EVENT_TTL_MAX_DEFAULT_MS = 7 * 24 * 3600 * 1000;

export const EVENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,199}$/;
/** Largest accepted payload, as JSON. */
export const EVENT_PAYLOAD_MAX_BYTES = 256 * 1024;

/** An event refused for its correlation key; the refusal is recorded in the event log. */
export class EventRejectedError extends PinflowError {
  constructor(code: ErrorCode, message: string, details: { tenant: string; eventId: string; [k: string]: unknown }) {
    super(code, message, { ...details, recorded: true });
    this.name = 'EventRejectedError';
  }
}

function invalid(field: string, received: unknown, allowed: string): InvalidRequestError {
  const shown = JSON.stringify(received);
  return new InvalidRequestError(ERROR_CODES.EVENT_INVALID, `event ${field} ${shown === undefined ? 'is missing' : `${shown.length > 80 ? `${shown.slice(0, 77)}...` : shown} is invalid`}; ${allowed}`, {
    field,
    received: received === undefined ? null : received,
    allowed,
  });
}


interface SweeperState {
  timer: NodeJS.Timeout;
  running: Promise<void> | undefined;
}

export class EventIngress {
  readonly store: EventStore;
  private readonly client: Client;
  private readonly codeRules = new Map<string, { expression: string; ttlMs: number | null }>();
  private readonly maxAttempts: number;
  private readonly ttlMaxMs: number;
  private readonly claimTimeoutMs: number;
  private readonly routingLeaseMs: number;
  /** Claims of this process carry this prefix (and a counter), so the log says who holds a delivery. */
  private readonly claimPrefix = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  private claims = 0;
  private readonly concurrency: number;
  private readonly hooks: IngressHooks;
  private sweeper: SweeperState | undefined;

  constructor(opts: EventIngressOptions) {
    this.client = opts.client;
    this.store = new EventStore(opts.db);
    this.maxAttempts = opts.maxAttempts ?? 12;
    this.concurrency = opts.signalConcurrency ?? 16;
    this.hooks = opts.hooks ?? {};
    this.ttlMaxMs = opts.ttlMaxMs ?? EVENT_TTL_MAX_DEFAULT_MS;
    this.claimTimeoutMs = opts.claimTimeoutMs ?? 60_000;
    this.routingLeaseMs = opts.routingLeaseMs ?? 30_000;
    for (const [name, rule] of Object.entries(opts.rules ?? {})) {
      const expression = typeof rule === 'string' ? rule : rule?.expression;
      this.validateRule(name, expression);
      try {
        compileExpression(expression, { field: `rules.${name}` });
      } catch (err) {
        throw ruleInvalid(name, expression, err);
      }
      const ttl = typeof rule === 'string' ? undefined : rule.ttl;
      this.codeRules.set(name, { expression, ttlMs: ttl === undefined ? null : this.ruleTtl(name, ttl) });
    }
  }

  /**
   * The one ingress function: validate, resolve the key, record, deduplicate,
   * route. Traced as `pinflow.event.submit`; each submission is counted in
   * pinflow_events_ingested_total by its door and outcome (observability/metrics.ts).
   */
  submit(input: SubmitEventInput, opts: { source?: EventSource } = {}): Promise<EventOutcome> {
    const name = input !== null && typeof input === 'object' && typeof input.name === 'string' ? input.name : '';
    return inSpan('pinflow.event.submit', { 'pinflow.event.source': opts.source ?? 'library', 'pinflow.event.name': name }, () => this.countedSubmit(input, opts));
  }

  private async countedSubmit(input: SubmitEventInput, opts: { source?: EventSource }): Promise<EventOutcome> {
    const door: EventDoor = opts.source === 'api' ? 'http' : opts.source === 'stream' ? 'redis' : 'library';
    let status = 'error';
    try {
      const outcome = await this.submitOnce(input, opts);
      status = outcome.duplicate ? 'duplicate' : outcome.status.toLowerCase();
      return outcome;
    } catch (err) {
      status = ingressFailure(err);
      throw err;
    } finally {
      safely(() => eventsIngested.inc({ door, status }));
    }
  }

  private async submitOnce(input: SubmitEventInput, opts: { source?: EventSource }): Promise<EventOutcome> {
    const source = opts.source ?? 'library';
    const env = this.validateEnvelope(input);
    const explicit = input.correlationKey === undefined || input.correlationKey === null ? undefined : input.correlationKey;
    const fingerprint = sha256Hex(canonicalJson({ name: env.name, payload: env.payload, correlationKey: explicit ?? null }));
    const [resolved, ttlMs] = await Promise.all([this.resolveKey(env, explicit), this.resolveTtl(env.name, env.ttlMs)]);
    const record = {
      ttlMs,
      routingLeaseMs: this.routingLeaseMs,
      tenant: env.tenant,
      eventId: env.eventId,
      name: env.name,
      payload: env.payload,
      correlationKey: 'key' in resolved ? resolved.key : null,
      keySource: 'key' in resolved ? resolved.source : null,
      fingerprint,
      source,
      status: 'key' in resolved ? ('RECEIVED' as const) : ('REJECTED' as const),
      ...('key' in resolved ? {} : { error: resolved.rejected }),
    };
    let duplicate = false;
    if (!(await this.store.insertEvent(record))) {
      const existing = await this.store.getEventRow(env.tenant, env.eventId);
      if (!existing) return this.submitOnce(input, opts); // deleted in between (a rejected event resubmitted elsewhere)
      if (existing.fingerprint !== fingerprint) {
        throw new PinflowError(
          ERROR_CODES.EVENT_ID_CONFLICT,
          `eventId ${JSON.stringify(env.eventId)} (tenant ${env.tenant}) was already submitted with a different name, payload or correlation key; use a new eventId for a new event`,
          { tenant: env.tenant, eventId: env.eventId, existing: { name: existing.name, receivedAt: existing.receivedAt } },
        );
      }
      if (existing.status === 'REJECTED' && 'key' in resolved) {
        // Nothing was ever signalled for a rejected event: resolve it anew (a rule may exist now).
        await this.store.deleteRejectedEvent(env.tenant, env.eventId);
        return this.submitOnce(input, opts);
      }
      duplicate = true;
      if (existing.status === 'REJECTED') throw this.rejection(existing);
      if (existing.status !== 'RECEIVED' && existing.status !== 'FAILED') return this.outcome(env.tenant, env.eventId, true);
      // RECEIVED (routing now, or interrupted) or FAILED: finish routing. Only
      // deliveries nobody holds are claimed, so a routing in progress
      // elsewhere is not repeated; made deliveries are never repeated.
    }
    if (!('key' in resolved)) throw new EventRejectedError(resolved.rejected.code, resolved.rejected.message, { tenant: env.tenant, eventId: env.eventId, ...resolved.rejected.details });
    await this.route(env.tenant, env.eventId);
    return this.outcome(env.tenant, env.eventId, duplicate);
  }

  /** How an event was resolved and routed. */
  async getEvent(tenant: string, eventId: string): Promise<EventDetail> {
    assertCleanJson({ tenant, eventId }, 'params');
    const e = await this.store.getEvent(tenant, eventId);
    if (!e) throw new NotFoundError(ERROR_CODES.EVENT_NOT_FOUND, `event ${JSON.stringify(eventId)} of tenant ${tenant} is not in the event log`, { tenant, eventId });
    return e;
  }

  /** The event log, newest first; `cursor` is the last event of the previous page. */
  async listEvents(filter: EventFilter, opts: { cursor?: string | undefined; limit?: number | undefined } = {}): Promise<{ events: EventRecord[]; nextCursor: string | null }> {
    const limit = opts.limit ?? 50;
    let after: { receivedAt: string; eventId: string } | undefined;
    assertCleanJson(filter, 'filter');
    if (opts.cursor !== undefined) {
      // Strict: a canonical ISO time and a clean id, or CURSOR_INVALID before Postgres sees it.
      const c = typeof opts.cursor === 'string' ? decodeCursor(opts.cursor, 'r') : undefined;
      if (!c) throw new InvalidRequestError(ERROR_CODES.CURSOR_INVALID, `cursor ${JSON.stringify(opts.cursor)} is not a cursor this API returned`, { field: 'cursor' });
      after = { receivedAt: c.at, eventId: c.id };
    }
    const events = await this.store.listEvents(filter, { ...(after ? { after } : {}), limit: limit + 1 });
    const page = events.slice(0, limit);
    const last = page[page.length - 1];
    return {
      events: page,
      nextCursor: events.length > limit && last ? encodeCursor('r', last.receivedAt, last.eventId) : null,
    };
  }

  /** The correlation index: which runs wait on (tenant, event, key). Open waits unless `status` says otherwise. */
  async listWaits(filter: WaitFilter, limit = 100): Promise<WaitRecord[]> {
    assertCleanJson(filter, 'filter');
    return this.store.listWaits({ status: 'OPEN', ...filter }, limit);
  }

  /** Correlation rules: code rules first (they win), then API rules. */
  async listRules(): Promise<RuleView[]> {
    const api = await this.store.listRules();
    const code: RuleView[] = [...this.codeRules].map(([eventName, r]) => ({ eventName, expression: r.expression, ttlMs: r.ttlMs, source: 'code', updatedBy: null, updatedAt: null }));
    return [...code, ...api.filter((r) => !this.codeRules.has(r.eventName)).map((r) => ({ ...r, source: 'api' as const }))].sort((a, b) => a.eventName.localeCompare(b.eventName));
  }

  /** Set the correlation rule of an event name (stored in Postgres; every process sees it). */
  async putRule(eventName: string, expression: string, by: string, ttl?: Duration | null): Promise<RuleView> {
    this.validateRule(eventName, expression);
    if (this.codeRules.has(eventName)) {
      throw new PinflowError(ERROR_CODES.RULE_DEFINED_IN_CODE, `the correlation rule of ${eventName} is configured in code (${this.codeRules.get(eventName)!.expression}); change it there`, { eventName });
    }
    const ttlMs = ttl === undefined || ttl === null ? null : this.ruleTtl(eventName, ttl);
    if (typeof by !== 'string' || by.length === 0) throw new InvalidRequestError(ERROR_CODES.REQUEST_INVALID, '"by" must name who set the rule', { field: 'by', received: by ?? null });
    try {
      await checkExpression(expression, { field: `rules.${eventName}` });
    } catch (err) {
      throw ruleInvalid(eventName, expression, err);
    }
    const r: RuleRecord = await this.store.putRule(eventName, expression, by, ttlMs);
    return { ...r, source: 'api' };
  }

  async deleteRule(eventName: string): Promise<void> {
    assertCleanJson({ eventName }, 'params');
    if (this.codeRules.has(eventName)) {
      throw new PinflowError(ERROR_CODES.RULE_DEFINED_IN_CODE, `the correlation rule of ${eventName} is configured in code; remove it there`, { eventName });
    }
    if (!(await this.store.deleteRule(eventName))) throw new NotFoundError(ERROR_CODES.NOT_FOUND, `no correlation rule for ${eventName}`, { eventName });
  }

  /**
   * Route failed deliveries that are due, and routings a crash interrupted.
   * Safe to run in several processes at once (claims use SKIP LOCKED).
   * Returns how many events it routed again.
   */
  async sweep(limit = 100): Promise<number> {
    const due = await this.store.claimDue(limit, 60_000);
    for (const e of due) await this.route(e.tenant, e.eventId);
    await this.store.expireBuffered(1000);
    return due.length;
  }

  /** Sweep every `intervalMs` until {@link stopSweeper}. */
  startSweeper(intervalMs: number, log: (line: string) => void = () => undefined): void {
    if (this.sweeper) return;
    const sweeper: SweeperState = {
      timer: setInterval(() => {
        if (sweeper.running) return;
        sweeper.running = this.sweep()
          .then((n) => {
            if (n > 0) log(`event sweeper: routed ${n} event(s) again`);
          })
          .catch((err: unknown) => log(`event sweeper: ${(err as Error).message}`))
          .finally(() => (sweeper.running = undefined));
      }, intervalMs),
      running: undefined,
    };
    sweeper.timer.unref();
    this.sweeper = sweeper;
  }

  async stopSweeper(): Promise<void> {
    const s = this.sweeper;
    this.sweeper = undefined;
    if (!s) return;
    clearInterval(s.timer);
    await s.running;
  }

  private validateEnvelope(input: SubmitEventInput): { tenant: string; name: string; eventId: string; payload: unknown; ttlMs: number | undefined } {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) throw invalid('envelope', input, 'an event is an object { tenant?, name, payload?, eventId?, correlationKey? }');
    // NUL, lone surrogates and deep nesting anywhere in the event: Postgres and Temporal would refuse it later.
    const problem = findJsonProblem(input, 'event');
    if (problem) throw invalid(problem.field.replace(/^event\.?/, '') || 'envelope', '[refused]', `${problem.message}; allowed: ${problem.allowed}`);
    const tenant = input.tenant ?? DEFAULT_TENANT;
    if (typeof tenant !== 'string' || !TENANT_PATTERN.test(tenant)) throw invalid('tenant', tenant, `it must match ${TENANT_PATTERN}`);
    if (typeof input.name !== 'string' || !RPC_NAME_PATTERN.test(input.name)) throw invalid('name', input.name, `it must match ${RPC_NAME_PATTERN}, e.g. ticket.closed`);
    const eventId = input.eventId ?? randomUUID();
    if (typeof eventId !== 'string' || !EVENT_ID_PATTERN.test(eventId)) throw invalid('eventId', eventId, `it must match ${EVENT_ID_PATTERN}`);
    const payload = input.payload === undefined ? null : input.payload;
    let size: number;
    try {
      size = Buffer.byteLength(JSON.stringify(payload) ?? 'null');
    } catch {
      throw invalid('payload', '[unserialisable]', 'the payload must be JSON');
    }
    if (size > EVENT_PAYLOAD_MAX_BYTES) throw invalid('payload', `${size} bytes`, `at most ${EVENT_PAYLOAD_MAX_BYTES} bytes as JSON`);
    let ttlMs: number | undefined;
    if (input.ttl !== undefined && input.ttl !== null) {
      const allowed = `milliseconds (a positive integer) or a duration such as '30s', '5m', '2h', '1d', at most ${this.ttlMaxMs} ms (PINFLOW_EVENT_TTL_MAX)`;
      ttlMs = parseTtl(input.ttl);
      if (ttlMs === undefined) throw invalid('ttl', input.ttl, allowed);
      if (ttlMs > this.ttlMaxMs) throw invalid('ttl', input.ttl, allowed);
    }
    return { tenant, name: input.name, eventId, payload, ttlMs };
  }

  /** A rule's default ttl, validated: RULE_INVALID when it is not a duration or over the maximum. */
  private ruleTtl(eventName: string, ttl: unknown): number {
    const ms = parseTtl(ttl);
    if (ms === undefined || ms > this.ttlMaxMs) {
      throw new InvalidRequestError(
        ERROR_CODES.RULE_INVALID,
        `the default ttl of ${eventName} ${JSON.stringify(ttl)} is invalid; it must be milliseconds (a positive integer) or a duration such as '30s', '5m', '2h', '1d', at most ${this.ttlMaxMs} ms (PINFLOW_EVENT_TTL_MAX)`,
        { field: 'ttl', received: ttl ?? null },
      );
    }
    return ms;
  }

  /** The event's ttl, else its name's default from the rule (code, then API), capped by the maximum; null for none. */
  private async resolveTtl(name: string, explicit: number | undefined): Promise<number | null> {
    if (explicit !== undefined) return explicit;
    const code = this.codeRules.get(name);
    const ttl = code ? code.ttlMs : ((await this.store.getRule(name))?.ttlMs ?? null);
    // A maximum lowered after the rule was set still applies.
    return ttl === null ? null : Math.min(ttl, this.ttlMaxMs);
  }

  private validateRule(eventName: string, expression: string): void {
    assertCleanJson({ eventName, expression }, 'rule');
    if (typeof eventName !== 'string' || !RPC_NAME_PATTERN.test(eventName)) {
      throw new InvalidRequestError(ERROR_CODES.RULE_INVALID, `event name ${JSON.stringify(eventName)} is invalid; it must match ${RPC_NAME_PATTERN}`, { field: 'eventName', received: eventName ?? null });
    }
    if (typeof expression !== 'string' || expression.trim().length === 0 || expression.length > 10_000) {
      throw new InvalidRequestError(ERROR_CODES.RULE_INVALID, `the correlation rule of ${eventName} must be a JSONata expression of 1 to 10000 characters`, { field: 'expression', received: expression ?? null });
    }
  }

  /** Explicit key, else the rule (code, then API); or why the event is rejected. */
  private async resolveKey(
    env: { tenant: string; name: string; eventId: string; payload: unknown },
    explicit: unknown,
  ): Promise<{ key: string; source: 'explicit' | 'rule' } | { rejected: { code: ErrorCode; message: string; details?: Record<string, unknown> } }> {
    if (explicit !== undefined) {
      const key = normaliseCorrelationKey(explicit);
      if (key !== undefined) return { key, source: 'explicit' };
      return {
        rejected: {
          code: ERROR_CODES.CORRELATION_KEY_INVALID,
          message: `event ${env.name}: correlationKey ${JSON.stringify(explicit)} is invalid; it must be a non-empty string of at most ${CORRELATION_KEY_MAX} characters or a finite number`,
          details: { field: 'correlationKey', received: explicit },
        },
      };
    }
    const expression = this.codeRules.get(env.name)?.expression ?? (await this.store.getRule(env.name))?.expression;
    if (expression === undefined) {
      return {
        rejected: {
          code: ERROR_CODES.CORRELATION_KEY_MISSING,
          message: `event ${env.name} has no correlationKey and no correlation rule for ${env.name} exists; send "correlationKey", or define a rule (PUT /correlation-rules/${env.name})`,
          details: { field: 'correlationKey' },
        },
      };
    }
    let value: unknown;
    try {
      value = await evaluateExpression(expression, { name: env.name, tenant: env.tenant, eventId: env.eventId, payload: env.payload } as unknown as ExpressionScope, {
        field: `rules.${env.name}`,
      });
    } catch (err) {
      return {
        rejected: {
          code: ERROR_CODES.CORRELATION_KEY_INVALID,
          message: `event ${env.name}: the correlation rule ${expression} failed: ${(err as Error).message}`,
          details: { rule: expression, ...(err instanceof ExpressionError ? { expression: err.toJSON() } : {}) },
        },
      };
    }
    const key = normaliseCorrelationKey(value);
    if (key !== undefined) return { key, source: 'rule' };
    return {
      rejected: {
        code: ERROR_CODES.CORRELATION_KEY_INVALID,
        message: `event ${env.name}: the correlation rule ${expression} gave ${JSON.stringify(value) ?? 'nothing'}; a key must be a non-empty string of at most ${CORRELATION_KEY_MAX} characters or a finite number`,
        details: { rule: expression, received: value ?? null },
      },
    };
  }

  private rejection(e: EventRecord): EventRejectedError {
    return new EventRejectedError((e.error?.code as ErrorCode | undefined) ?? ERROR_CODES.CORRELATION_KEY_MISSING, e.error?.message ?? 'the event was rejected', {
      tenant: e.tenant,
      eventId: e.eventId,
      duplicate: true,
    });
  }

  /**
   * Claim and signal every candidate wait not yet delivered, then settle the
   * event's status. Only the first routing looks candidates up; retries
   * re-send to the same ones, so a later wait never receives an old event
   * this way (a buffered event is consumed by a wait that opens, not sent).
   * A delivery another routing holds (SENDING) is left to it.
   */
  private async route(tenant: string, eventId: string): Promise<EventStatus> {
    const started = Date.now();
    // Each signal's client span (SignalWorkflow:pinflow.event) is a child of this one.
    const status = await inSpan('pinflow.event.route', { 'pinflow.tenant': tenant, 'pinflow.event.id': eventId }, (span) => this.routeOnce(tenant, eventId, span));
    safely(() => routingDuration.observe({ status: status.toLowerCase() }, secondsSince(started)));
    return status;
  }

  private async routeOnce(tenant: string, eventId: string, span: Span | undefined): Promise<EventStatus> {
    await this.store.recordCandidates(tenant, eventId);
    const event = await this.store.getEventRow(tenant, eventId);
    if (!event || event.correlationKey === null) return event?.status ?? 'REJECTED';
    const claimedBy = `${this.claimPrefix}-${++this.claims}`;
    const todo = await this.store.claimDeliveries(tenant, eventId, claimedBy, this.claimTimeoutMs);
    span?.setAttributes({ 'pinflow.event.name': event.name, 'pinflow.event.deliveries': todo.length });
    const queue = [...todo];
    const worker = async () => {
      for (let d = queue.shift(); d; d = queue.shift()) {
        const signal: EventSignal = {
          eventId,
          tenant,
          name: event.name,
          correlationKey: event.correlationKey!,
          payload: event.payload,
          receivedAt: event.receivedAt,
          waitId: d.waitId,
        };
        try {
          await this.hooks.beforeSignal?.({ tenant, eventId, runId: d.runId, waitId: d.waitId, attempt: d.attempts + 1 });
          // The deadline keeps a signal shorter than the claim, so the sweeper
          // never takes over a claim whose signal may still be in flight.
          await this.client.withDeadline(Date.now() + Math.floor(this.claimTimeoutMs / 2), () => this.client.workflow.getHandle(d.runId).signal(eventSignal, signal));
          await this.store.markDelivery(tenant, eventId, d.runId, d.waitId, claimedBy, 'DELIVERED');
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) await this.store.markDelivery(tenant, eventId, d.runId, d.waitId, claimedBy, 'RUN_CLOSED', err.message);
          else await this.store.markDelivery(tenant, eventId, d.runId, d.waitId, claimedBy, 'FAILED', (err as Error).message ?? String(err));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, queue.length) }, worker));
    return this.store.settleEvent(tenant, eventId, this.maxAttempts, this.claimTimeoutMs);
  }

  private async outcome(tenant: string, eventId: string, duplicate: boolean): Promise<EventOutcome> {
    const e = await this.getEvent(tenant, eventId);
    const runIds = [...new Set(e.deliveries.filter((d) => d.status === 'DELIVERED').map((d) => d.runId))];
    return { ...e, runIds, duplicate };
  }
}

/** The `status` label of a submission that threw. */
function ingressFailure(err: unknown): string {
  if (err instanceof EventRejectedError) return 'rejected';
  if (err instanceof PinflowError) {
    if (err.code === ERROR_CODES.EVENT_ID_CONFLICT) return 'conflict';
    if (err instanceof InvalidRequestError || /INVALID|TOO_LARGE|TOO_DEEP/.test(err.code)) return 'invalid';
  }
  return 'error';
}

/** Milliseconds of a ttl (a positive integer, or a graph-language duration), or undefined when it is neither. */
export function parseTtl(ttl: unknown): number | undefined {
  if (typeof ttl === 'number') return Number.isSafeInteger(ttl) && ttl > 0 ? ttl : undefined;
  if (typeof ttl !== 'string' || ttl.length > 32 || !DURATION_PATTERN.test(ttl)) return undefined;
  const ms = durationMs(ttl);
  return Number.isFinite(ms) && ms >= 1 ? Math.round(ms) : undefined;
}

function ruleInvalid(eventName: string, expression: string, err: unknown): InvalidRequestError {
  const detail = err instanceof ExpressionError ? err.toJSON() : { message: (err as Error).message };
  return new InvalidRequestError(ERROR_CODES.RULE_INVALID, `the correlation rule of ${eventName} (${expression}) is invalid: ${(err as Error).message}`, {
    eventName,
    expression: detail,
  });
}
