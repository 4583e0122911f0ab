/**
 * The Redis Streams door. A consumer in a consumer group reads event
 * messages, hands each to the one ingress function, and acknowledges it only
 * after the event was recorded and routed (at-least-once). A consumer that
 * dies mid-batch leaves its messages pending; another consumer (or the same
 * one restarted) claims them after `claimIdleMs` and submits them again,
 * and the event log's eventId deduplication makes that harmless.
 *
 * A message is either one field `event` holding the JSON envelope
 * (`{ tenant?, name, payload?, eventId?, correlationKey? }`, exactly the body
 * of `POST /events`), or the envelope's fields flattened, with `payload` as
 * JSON text. Without an `eventId` the message id is used (`<stream>/<id>`),
 * so redelivery of the same message never makes a second event. Malformed
 * messages, and events reusing an eventId for other content, are copied to
 * the dead-letter stream with the error, then acknowledged.
 */
import { hostname } from 'node:os';
import { createClient } from 'redis';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import { EventRejectedError, type EventIngress, type SubmitEventInput } from './events';

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
  log?: (line: string) => void;
  /** Test hook: after a message was routed and before it is acknowledged. */
  afterRoute?: (messageId: string) => Promise<void>;
}

type RawEntry = [id: string, fields: string[] | null] | null;

const DEAD_LETTER_CODES = new Set<string>([ERROR_CODES.EVENT_INVALID, ERROR_CODES.EVENT_ID_CONFLICT, ERROR_CODES.REQUEST_INVALID]);

export class RedisIngress {
  readonly stream: string;
  readonly group: string;
  readonly consumer: string;
  readonly deadLetterStream: string;
  private readonly client: ReturnType<typeof createClient>;
  private readonly opts: RedisIngressOptions;
  private loop: Promise<void> | undefined;
  private stopping = false;
  /** Messages handled (acknowledged) since start, for health and tests. */
  handled = 0;

  constructor(opts: RedisIngressOptions) {
    this.opts = opts;
    this.stream = opts.stream ?? 'pinflow:events';
    this.group = opts.group ?? 'pinflow';
    this.consumer = opts.consumer ?? `${hostname()}-${process.pid}`;
    this.deadLetterStream = opts.deadLetterStream ?? `${this.stream}:dead`;
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

  private async run(): Promise<void> {
    const claimEvery = Math.max(250, Math.floor((this.opts.claimIdleMs ?? 30_000) / 2));
    let lastClaim = 0;
    // First the messages this consumer name read and never acknowledged (a restart under the same name).
    let ownPending = true;
    while (!this.stopping) {
      try {
        if (Date.now() - lastClaim >= claimEvery) {
          lastClaim = Date.now();
          await this.claimStale();
        }
        const entries = await this.read(ownPending ? '0' : '>');
        if (ownPending && entries.length === 0) ownPending = false;
        for (const entry of entries) {
          if (this.stopping) break;
          if (entry) await this.handleEntry(entry);
        }
      } catch (err) {
        if (this.stopping) break;
        this.log(`stream consumer: ${(err as Error).message}; retrying in 1s`);
        await new Promise((r) => setTimeout(r, 1000));
        ownPending = true; // whatever was in flight is still pending
      }
    }
  }

  private async read(id: '0' | '>'): Promise<RawEntry[]> {
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

  /** Take over messages other consumers read but never acknowledged (they died mid-batch). */
  private async claimStale(): Promise<void> {
    let cursor = '0-0';
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
        if (this.stopping) return;
        if (entry) await this.handleEntry(entry);
      }
    } while (cursor !== '0-0' && !this.stopping);
  }

  private async handleEntry([id, fields]: [string, string[] | null]): Promise<void> {
    // A pending entry whose message was trimmed from the stream has no fields: nothing to submit.
    if (!fields) await this.client.sendCommand(['XACK', this.stream, this.group, id]);
    else await this.handle(id, fields);
  }

  /** Submit one message; acknowledge it once the outcome is recorded. Infrastructure errors leave it pending. */
  private async handle(id: string, fields: string[]): Promise<void> {
    let envelope: SubmitEventInput;
    try {
      envelope = parseMessage(fields);
      envelope.eventId ??= `${this.stream}/${id}`;
    } catch (err) {
      await this.deadLetter(id, fields, ERROR_CODES.EVENT_INVALID, (err as Error).message);
      return;
    }
    try {
      await this.opts.ingress.submit(envelope, { source: 'stream' });
    } catch (err) {
      if (err instanceof EventRejectedError) {
        // Recorded in the event log as REJECTED, with its code: nothing more to do here.
      } else if (err instanceof PinflowError && DEAD_LETTER_CODES.has(err.code)) {
        await this.deadLetter(id, fields, err.code, err.message);
        return;
      } else throw err;
    }
    await this.opts.afterRoute?.(id);
    await this.client.sendCommand(['XACK', this.stream, this.group, id]);
    this.handled++;
  }

  private async deadLetter(id: string, fields: string[], code: string, message: string): Promise<void> {
    this.log(`stream consumer: message ${id} dead-lettered to ${this.deadLetterStream}: ${code}: ${message}`);
    await this.client.sendCommand(['XADD', this.deadLetterStream, '*', 'sourceId', id, 'code', code, 'error', message, ...fields]);
    await this.client.sendCommand(['XACK', this.stream, this.group, id]);
    this.handled++;
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
    if (e === null || typeof e !== 'object' || Array.isArray(e)) throw new Error('field "event" must hold a JSON object { tenant?, name, payload?, eventId?, correlationKey? }');
    return e as SubmitEventInput;
  }
  if (!map.has('name')) throw new Error('a message needs a field "event" (the JSON envelope) or a field "name"');
  const envelope: SubmitEventInput = { name: map.get('name')! };
  if (map.has('tenant')) envelope.tenant = map.get('tenant')!;
  if (map.has('eventId')) envelope.eventId = map.get('eventId')!;
  if (map.has('correlationKey')) envelope.correlationKey = map.get('correlationKey')!;
  if (map.has('payload')) envelope.payload = json('payload', map.get('payload')!);
  return envelope;
}
