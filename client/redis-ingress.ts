/**
 * The Redis Streams door. A consumer in a consumer group reads event
 * messages, hands each to the one ingress function, and acknowledges it only
 * after the event was recorded and routed (at-least-once). A consumer that
 * dies mid-batch leaves its messages pending; another consumer (or the same
 * one restarted) claims them after `claimIdleMs` and submits them again,
 * and the event log's eventId deduplication makes that harmless.
 *
 * A message is either one field `event` holding the JSON envelope
 * (`{ tenant?, name, payload?, eventId?, correlationKey?, ttl? }`, exactly
 * the body of `POST /events`), or the envelope's fields flattened, with
 * `payload` as JSON text. Without an `eventId` the message id is used
 * (`<stream>/<id>`), so redelivery of the same message never makes a second
 * event.
 *
 * The door never blocks on one message. A message whose processing fails
 * permanently (malformed, refused by validation such as a NUL or a lone
 * surrogate, an eventId reused for other content, data Postgres refuses) is
 * copied to the dead-letter stream `<stream>:dead` with the reason, then
 * acknowledged. A transient failure (Postgres or Temporal unreachable)
 * leaves the message pending and the door moves on to the messages behind
 * it; own pending messages are retried with backoff, and a message that has
 * failed `maxAttempts` deliveries (Redis counts them, across restarts) is
 * dead-lettered as `ATTEMPTS_EXHAUSTED`. The dead letters live in Redis, not
 * Postgres: a dead letter must be writable while Postgres is down, and must
 * keep content Postgres refuses (a NUL) verbatim. `replayDeadLetters` (the
 * CLI's `pinflow events dead-letters replay`) puts them back on the stream.
 */
import { hostname } from 'node:os';
import { createClient } from 'redis';
import { ERROR_CODES, InvalidRequestError, PinflowError } from '../graph/errors';
import { EventRejectedError, type EventIngress, type SubmitEventInput } from './events';
import { eventsIngested, safely } from '../observability/metrics';

export interface RedisIngressOptions {
  url: string;
  ingress: EventIngress;
  /** @default 'pinflow:events' */
  stream?: string;
  /** @default 'pinflow' */
  group?: string;
  /** Unique per process. @default `<hostname>-<pid>` */
  consumer?: string;
  /** Messages read per batch. @default 50 */
  batchSize?: number;
  /** How long one read blocks waiting for messages. @default 1000 */
  blockMs?: number;
  /** Pending messages idle this long are claimed from (dead) consumers. @default 30000 */
  claimIdleMs?: number;
  /** @default `<stream>:dead` */
  deadLetterStream?: string;
  /**
   * Deliveries of a message failing with a transient error (counted by Redis,
   * across restarts and consumers) before it is dead-lettered as
   * `ATTEMPTS_EXHAUSTED` (PINFLOW_EVENTS_MAX_ATTEMPTS). @default 10
   */
  maxAttempts?: number;
  /** First pause before own failed messages are retried; doubles per failing round, at most 30 s. @default 1000 */
  retryBackoffMs?: number;
  log?: (line: string) => void;
  /** Test hook: after a message was routed and before it is acknowledged. */
  afterRoute?: (messageId: string) => Promise<void>;
}

type RawEntry = [id: string, fields: string[] | null] | null;

/** Reason codes of dead letters that are not pinflow error codes. */
export const DEAD_LETTER_REASONS = {
  /** Postgres refused the event's data (SQLSTATE class 22, 23 or 54): it never will store it. */
  DATABASE_REFUSED: 'DATABASE_REFUSED',
  /** A transient error repeated for `maxAttempts` deliveries. */
  ATTEMPTS_EXHAUSTED: 'ATTEMPTS_EXHAUSTED',
} as const;

/** The fields a dead letter carries before the message's own fields, in this order. */
const DEAD_LETTER_META = ['sourceStream', 'sourceId', 'code', 'error', 'attempts', 'deadAt'] as const;

/** SQLSTATE classes of data Postgres refuses every time (22 data, 23 integrity, 54 limits). */
const PERMANENT_SQLSTATE_CLASSES = new Set(['22', '23', '54']);
/** Class 23 races between writers (unique, foreign key): a retry settles them. */
const RETRYABLE_SQLSTATES = new Set(['23505', '23503']);

/**
 * Why a message can never be submitted, or undefined when its failure may
 * pass (a connection lost, Temporal unavailable, anything unknown).
 */
export function permanentFailure(err: unknown): { code: string; message: string } | undefined {
  if (err instanceof InvalidRequestError || (err instanceof PinflowError && err.code === ERROR_CODES.EVENT_ID_CONFLICT)) return { code: err.code, message: err.message };
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && typeof (e as { severity?: unknown }).severity === 'string') {
      if (PERMANENT_SQLSTATE_CLASSES.has(code.slice(0, 2)) && !RETRYABLE_SQLSTATES.has(code)) {
        return { code: DEAD_LETTER_REASONS.DATABASE_REFUSED, message: `Postgres refused the event (SQLSTATE ${code}): ${(e as Error).message}` };
      }
      return undefined;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export class RedisIngress {
  readonly stream: string;
  readonly group: string;
  readonly consumer: string;
  readonly deadLetterStream: string;
  private readonly client: ReturnType<typeof createClient>;
  private readonly opts: RedisIngressOptions;
  private readonly maxAttempts: number;
  private loop: Promise<void> | undefined;
  private stopping = false;
  /** Messages handled (acknowledged) since start, for health and tests. */
  handled = 0;
  /** Messages dead-lettered since start. */
  deadLettered = 0;

  constructor(opts: RedisIngressOptions) {
    this.opts = opts;
    this.stream = opts.stream ?? 'pinflow:events';
    this.group = opts.group ?? 'pinflow';
    this.consumer = opts.consumer ?? `${hostname()}-${process.pid}`;
    this.deadLetterStream = opts.deadLetterStream ?? `${this.stream}:dead`;
    this.maxAttempts = opts.maxAttempts ?? 10;
    this.client = createClient({ url: opts.url });
    this.client.on('error', (err: Error) => this.log(`redis: ${err.message}`));
  }

  /** Connect, create the group if needed (reading the stream from its start), and consume until {@link stop}. */
  async start(): Promise<void> {
    await this.client.connect();
    try {
      await this.client.sendCommand(['XGROUP', 'CREATE', this.stream, this.group, '0', 'MKSTREAM']);
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
    this.loop = undefined;
    if (this.client.isOpen) await this.client.quit();
  }

  /** A raw command, its reply typed by the caller. */
  private async command<T>(args: string[]): Promise<T> {
    return (await this.client.sendCommand(args)) as unknown as T;
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  /**
   * Own pending messages first (a restart under the same name), paged by id,
   * then new ones. A message that failed transiently stays pending and the
   * loop goes on with new messages; own pending ones are read again once the
   * backoff has passed. Only Redis errors stop a round.
   */
  private async run(): Promise<void> {
    const claimEvery = Math.max(250, Math.floor((this.opts.claimIdleMs ?? 30_000) / 2));
    const backoffBase = this.opts.retryBackoffMs ?? 1000;
    let lastClaim = 0;
    let pendingFrom: string | undefined = '0';
    let retryAt: number | undefined;
    let failingRounds = 0;
    while (!this.stopping) {
      try {
        let failed = false;
        if (Date.now() - lastClaim >= claimEvery) {
          lastClaim = Date.now();
          failed = (await this.claimStale()) || failed;
        }
        const reading = pendingFrom;
        const entries = await this.read(reading ?? '>');
        if (reading !== undefined) {
          const last = entries[entries.length - 1];
          pendingFrom = entries.length === 0 || !last ? undefined : last[0];
        }
        for (const entry of entries) {
          if (this.stopping) break;
          if (entry) failed = (await this.handleEntry(entry)) === 'retry' || failed;
        }
        if (failed) {
          retryAt = Date.now() + Math.min(30_000, backoffBase * 2 ** Math.min(failingRounds++, 15));
        } else if (reading !== undefined && pendingFrom === undefined) failingRounds = 0;
        if (pendingFrom === undefined && retryAt !== undefined && Date.now() >= retryAt) {
          pendingFrom = '0';
          retryAt = undefined;
        }
      } catch (err) {
        if (this.stopping) break;
        this.log(`stream consumer: ${(err as Error).message}; retrying in 1s`);
        await new Promise((r) => setTimeout(r, 1000));
        pendingFrom = '0'; // whatever was in flight is still pending
      }
    }
  }

  private async read(id: string): Promise<RawEntry[]> {
    // RESP2 answers [[stream, entries]]; RESP3 a map { stream: entries }.
    const reply = await this.command<Array<[string, RawEntry[]]> | Record<string, RawEntry[]> | null>([
      'XREADGROUP',
      'GROUP',
      this.group,
      this.consumer,
      'COUNT',
      String(this.opts.batchSize ?? 50),
      ...(id === '>' ? ['BLOCK', String(this.opts.blockMs ?? 1000)] : []),
      'STREAMS',
      this.stream,
      id,
    ]);
    if (!reply) return [];
    if (Array.isArray(reply)) return reply[0]?.[1] ?? [];
    return reply[this.stream] ?? [];
  }

  /** Take over messages other consumers read but never acknowledged (they died mid-batch). True when one failed again. */
  private async claimStale(): Promise<boolean> {
    let cursor = '0-0';
    let failed = false;
    do {
      const reply = await this.command<[string, RawEntry[], string[]?]>([
        'XAUTOCLAIM',
        this.stream,
        this.group,
        this.consumer,
        String(this.opts.claimIdleMs ?? 30_000),
        cursor,
        'COUNT',
        String(this.opts.batchSize ?? 50),
      ]);
      cursor = reply[0];
      for (const entry of reply[1]) {
        if (this.stopping) return failed;
        if (entry) failed = (await this.handleEntry(entry)) === 'retry' || failed;
      }
    } while (cursor !== '0-0' && !this.stopping);
    return failed;
  }

  private async handleEntry([id, fields]: [string, string[] | null]): Promise<'done' | 'retry'> {
    // A pending entry whose message was trimmed from the stream has no fields: nothing to submit.
    if (!fields) {
      await this.client.sendCommand(['XACK', this.stream, this.group, id]);
      return 'done';
    }
    return this.handle(id, fields);
  }

  /** How many times Redis delivered this message (to any consumer of the group). */
  private async deliveries(id: string): Promise<number> {
    const reply = await this.command<Array<[string, string, number, number]>>(['XPENDING', this.stream, this.group, id, id, '1']);
    return Number(reply[0]?.[3] ?? 1);
  }

  /**
   * Submit one message; acknowledge it once the outcome is recorded.
   * Permanent failures are dead-lettered at once; transient ones leave the
   * message pending ('retry') until its deliveries reach `maxAttempts`.
   */
  private async handle(id: string, fields: string[]): Promise<'done' | 'retry'> {
    let envelope: SubmitEventInput;
    try {
      envelope = parseMessage(fields);
      envelope.eventId ??= `${this.stream}/${id}`;
    } catch (err) {
      // Never reaches the ingress, which counts every other submission.
      safely(() => eventsIngested.inc({ door: 'redis', status: 'invalid' }));
      await this.deadLetter(id, fields, ERROR_CODES.EVENT_INVALID, (err as Error).message, 1);
      return 'done';
    }
    try {
      await this.opts.ingress.submit(envelope, { source: 'stream' });
    } catch (err) {
      if (!(err instanceof EventRejectedError)) {
        // (A rejected event is recorded in the event log as REJECTED, with its code: nothing more to do.)
        const permanent = permanentFailure(err);
        const attempts = await this.deliveries(id);
        if (permanent) {
          await this.deadLetter(id, fields, permanent.code, permanent.message, attempts);
          return 'done';
        }
        const message = (err as Error).message ?? String(err);
        if (attempts >= this.maxAttempts) {
          await this.deadLetter(id, fields, DEAD_LETTER_REASONS.ATTEMPTS_EXHAUSTED, `failed ${attempts} times; last error: ${message}`, attempts);
          return 'done';
        }
        this.log(`stream consumer: message ${id} failed (attempt ${attempts} of ${this.maxAttempts}), left pending for a retry: ${message}`);
        return 'retry';
      }
    }
    await this.opts.afterRoute?.(id);
    await this.client.sendCommand(['XACK', this.stream, this.group, id]);
    this.handled++;
    return 'done';
  }

  /** Copy the message with the reason to the dead-letter stream and acknowledge it, in one MULTI. */
  private async deadLetter(id: string, fields: string[], code: string, message: string, attempts: number): Promise<void> {
    this.log(`stream consumer: message ${id} dead-lettered to ${this.deadLetterStream}: ${code}: ${message}`);
    const meta: Record<(typeof DEAD_LETTER_META)[number], string> = {
      sourceStream: this.stream,
      sourceId: id,
      code,
      error: message.length > 2000 ? `${message.slice(0, 1997)}...` : message,
      attempts: String(attempts),
      deadAt: new Date().toISOString(),
    };
    await this.client
      .multi()
      .addCommand(['XADD', this.deadLetterStream, '*', ...DEAD_LETTER_META.flatMap((k) => [k, meta[k]]), ...fields])
      .addCommand(['XACK', this.stream, this.group, id])
      .exec();
    this.handled++;
    this.deadLettered++;
  }
}

/** One dead letter: why, and the original message's fields. */
export interface DeadLetter {
  /** Its id in the dead-letter stream. */
  id: string;
  sourceStream: string;
  /** The message's id in the source stream. */
  sourceId: string;
  code: string;
  error: string;
  attempts: number;
  deadAt: string | null;
  /** The message's own fields, as [name, value] pairs. */
  fields: Array<[string, string]>;
}

/** A dead-letter entry split into its reason and the original fields (older dead letters carry fewer meta fields). */
export function parseDeadLetter(id: string, raw: string[]): DeadLetter {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
  const meta = new Map<string, string>();
  let at = 0;
  // The meta fields lead, in DEAD_LETTER_META order; the message's own fields follow (even ones named `code`).
  for (const k of DEAD_LETTER_META) {
    if (pairs[at]?.[0] === k) meta.set(k, pairs[at++]![1]);
  }
  return {
    id,
    sourceStream: meta.get('sourceStream') ?? '',
    sourceId: meta.get('sourceId') ?? '',
    code: meta.get('code') ?? '',
    error: meta.get('error') ?? '',
    attempts: Number(meta.get('attempts') ?? 1),
    deadAt: meta.get('deadAt') ?? null,
    fields: pairs.slice(at),
  };
}

/** Options of {@link listDeadLetters} and {@link replayDeadLetters}. */
export interface DeadLetterOptions {
  url: string;
  /** The source stream. @default 'pinflow:events' */
  stream?: string;
  /** @default `<stream>:dead` */
  deadLetterStream?: string;
}

function redisClient(url: string) {
  return createClient({ url });
}

async function withRedis<T>(url: string, fn: (client: ReturnType<typeof redisClient>) => Promise<T>): Promise<T> {
  const client = redisClient(url);
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.quit();
  }
}

/** The dead letters, oldest first. */
export async function listDeadLetters(opts: DeadLetterOptions & { limit?: number }): Promise<DeadLetter[]> {
  const dead = opts.deadLetterStream ?? `${opts.stream ?? 'pinflow:events'}:dead`;
  return withRedis(opts.url, async (client) => {
    const reply = (await client.sendCommand(['XRANGE', dead, '-', '+', 'COUNT', String(opts.limit ?? 1000)])) as unknown as Array<[string, string[]]>;
    return reply.map(([id, fields]) => parseDeadLetter(id, fields));
  });
}

/**
 * Put dead letters back on their stream, once their cause is fixed (a rule
 * added, Postgres back, a bug deployed away): each is appended to the source
 * stream with its original fields and removed from the dead-letter stream in
 * one MULTI. A message that had no `eventId` gets the one it was first given
 * (`<stream>/<original id>`), so a replayed event is deduplicated against an
 * earlier submission of it. `ids` selects dead letters; without it, all.
 * Returns what was replayed, with the new message ids.
 */
export async function replayDeadLetters(opts: DeadLetterOptions & { ids?: string[] }): Promise<Array<{ deadLetterId: string; messageId: string; sourceId: string }>> {
  const stream = opts.stream ?? 'pinflow:events';
  const dead = opts.deadLetterStream ?? `${stream}:dead`;
  return withRedis(opts.url, async (client) => {
    const selected: DeadLetter[] = [];
    if (opts.ids && opts.ids.length > 0) {
      for (const id of opts.ids) {
        const reply = (await client.sendCommand(['XRANGE', dead, id, id])) as unknown as Array<[string, string[]]>;
        if (reply.length === 0) throw new PinflowError(ERROR_CODES.NOT_FOUND, `no dead letter ${id} in ${dead}`, { id, stream: dead });
        selected.push(parseDeadLetter(reply[0]![0], reply[0]![1]));
      }
    } else {
      const reply = (await client.sendCommand(['XRANGE', dead, '-', '+'])) as unknown as Array<[string, string[]]>;
      selected.push(...reply.map(([id, fields]) => parseDeadLetter(id, fields)));
    }
    const out: Array<{ deadLetterId: string; messageId: string; sourceId: string }> = [];
    for (const d of selected) {
      const fields = [...d.fields];
      if (!hasEventId(fields) && d.sourceId) fields.push(['eventId', `${d.sourceStream || stream}/${d.sourceId}`]);
      const target = d.sourceStream || stream;
      const [messageId] = (await client
        .multi()
        .addCommand(['XADD', target, '*', ...fields.flat()])
        .addCommand(['XDEL', dead, d.id])
        .exec()) as unknown as [string, number];
      out.push({ deadLetterId: d.id, messageId: String(messageId), sourceId: d.sourceId });
    }
    return out;
  });
}

/** Whether a message's fields name an eventId (a field, or inside the `event` JSON). */
function hasEventId(fields: Array<[string, string]>): boolean {
  if (fields.some(([k]) => k === 'eventId')) return true;
  const event = fields.find(([k]) => k === 'event')?.[1];
  if (event === undefined) return false;
  try {
    const e = JSON.parse(event) as { eventId?: unknown };
    return e !== null && typeof e === 'object' && e.eventId !== undefined;
  } catch {
    return false;
  }
}

/** A message's fields to an envelope: one `event` JSON field, or the fields flattened with `payload` as JSON. */
export function parseMessage(fields: string[]): SubmitEventInput {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!, fields[i + 1]!);
  const json = (field: string, text: string): unknown => {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new Error(`field "${field}" is not JSON: ${(err as Error).message}`);
    }
  };
  if (map.has('event')) {
    const e = json('event', map.get('event')!);
    if (e === null || typeof e !== 'object' || Array.isArray(e)) throw new Error('field "event" must hold a JSON object { tenant?, name, payload?, eventId?, correlationKey?, ttl? }');
    const envelope = e as SubmitEventInput;
    // A replayed dead letter carries the eventId it was first given as a field.
    if (envelope.eventId === undefined && map.has('eventId')) envelope.eventId = map.get('eventId')!;
    return envelope;
  }
  if (!map.has('name')) throw new Error('a message needs a field "event" (the JSON envelope) or a field "name"');
  const envelope: SubmitEventInput = { name: map.get('name')! };
  if (map.has('tenant')) envelope.tenant = map.get('tenant')!;
  if (map.has('eventId')) envelope.eventId = map.get('eventId')!;
  if (map.has('correlationKey')) envelope.correlationKey = map.get('correlationKey')!;
  if (map.has('payload')) envelope.payload = json('payload', map.get('payload')!);
  if (map.has('ttl')) envelope.ttl = /^\d+$/.test(map.get('ttl')!) ? Number(map.get('ttl')) : map.get('ttl')!;
  return envelope;
}
