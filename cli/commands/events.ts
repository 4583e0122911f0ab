/**
 * `pinflow events ls|show|send` and `pinflow waits ls` over the HTTP API, and
 * `pinflow events dead-letters list|replay` on the stream door's Redis.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../app/config';
import { listDeadLetters, replayDeadLetters } from '../../client/redis-ingress';
import { ERROR_CODES, PinflowError } from '../../graph/errors';
import { EVENT_STATUSES, WAIT_STATUSES } from '../../graph/terminology';
import { act, apiOf, jsonOption } from '../command';
import { UsageError } from '../exit';
import { collect, intOption, jsonFile, oneOf, printJson, table, time } from '../format';
import { seg } from '../http';
import { moreHint, pages } from './runs';

interface EventRow {
  tenant: string;
  eventId: string;
  name: string;
  correlationKey: string | null;
  source: string;
  status: string;
  error: { code: string; message: string } | null;
  receivedAt: string;
  expiresAt: string | null;
  payload: unknown;
}

interface EventView extends EventRow {
  keySource: string | null;
  attempts: number;
  deliveries: Array<{ runId: string; waitId: string; stepInstance: string | null; via: string; status: string; attempts: number; lastError: string | null; consumed: boolean }>;
  runIds?: string[];
  duplicate?: boolean;
}

function printEvent(e: EventView): void {
  console.log(`event ${e.eventId} (${e.tenant}): ${e.name}, key ${e.correlationKey ?? '-'}${e.keySource ? ` (${e.keySource})` : ''}, ${e.status}, from ${e.source}, received ${time(e.receivedAt)}${e.expiresAt ? `, buffered until ${time(e.expiresAt)}` : ''}`);
  if (e.error) console.log(`  error ${e.error.code}: ${e.error.message}`);
  console.log(`  payload: ${JSON.stringify(e.payload)}`);
  console.log('deliveries:');
  console.log(
    table(e.deliveries, [
      ['RUN', (d) => d.runId],
      ['WAIT', (d) => d.waitId],
      ['STEP', (d) => d.stepInstance],
      ['VIA', (d) => d.via],
      ['STATUS', (d) => d.status],
      ['ATTEMPTS', (d) => d.attempts],
      ['ERROR', (d) => d.lastError],
    ]),
  );
}

export function registerEvents(program: Command): void {
  const events = program.command('events').description('the event log and the stream door (HTTP API; dead-letters: REDIS_URL)');

  jsonOption(
    events
      .command('ls')
      .description('the event log, newest first (GET /events)')
      .option('--tenant <tenant>', 'of this tenant')
      .option('--name <name>', 'events with this name')
      .option('--status <status>', `one of ${EVENT_STATUSES.join(', ')}`)
      .option('--key <key>', 'with this correlation key')
      .option('--limit <n>', 'page size, 1..500')
      .option('--cursor <cursor>', 'start at this page')
      .option('--all', 'follow the cursors'),
  ).action(
    act(async (o: { tenant?: string; name?: string; status?: string; key?: string; limit?: string; cursor?: string; all?: boolean; json?: boolean }, cmd: Command) => {
      const api = apiOf(cmd);
      const query = { tenant: o.tenant, name: o.name, status: oneOf('--status', o.status, EVENT_STATUSES), key: o.key, limit: intOption('--limit', o.limit, 500) };
      const { items, nextCursor } = await pages('events', (cursor) => api.get<{ events: EventRow[]; nextCursor: string | null }>('/events', { ...query, cursor }), o.cursor, o.all ?? false);
      if (o.json) printJson({ events: items, nextCursor });
      else {
        console.log(
          table(items, [
            ['EVENT', (e) => e.eventId],
            ['TENANT', (e) => e.tenant],
            ['NAME', (e) => e.name],
            ['KEY', (e) => e.correlationKey],
            ['STATUS', (e) => e.status],
            ['SOURCE', (e) => e.source],
            ['RECEIVED', (e) => time(e.receivedAt)],
            ['ERROR', (e) => (e.error ? `${e.error.code}: ${e.error.message}` : '')],
          ], '(no events match)'),
        );
        moreHint(nextCursor);
      }
    }),
  );

  jsonOption(events.command('show').description('one event: its key and deliveries (GET /events/:id)').argument('<eventId>').option('--tenant <tenant>', 'its tenant (default: default)')).action(
    act(async (eventId: string, o: { tenant?: string; json?: boolean }, cmd: Command) => {
      const e = await apiOf(cmd).get<EventView>(`/events/${seg(eventId)}`, { tenant: o.tenant });
      if (o.json) printJson(e);
      else printEvent(e);
    }),
  );

  jsonOption(
    events
      .command('send')
      .description('submit a business event (POST /events): it resumes the runs waiting on its key')
      .requiredOption('--name <name>', 'the event name')
      .option('--key <key>', 'the correlation key (else a correlation rule derives it from the payload)')
      .option('--payload-file <file>', 'the payload (JSON; - reads stdin)')
      .option('--tenant <tenant>', 'its tenant (default: default)')
      .option('--event-id <id>', 'an idempotency id: a second send with it is a duplicate')
      .option('--ttl <ttl>', "keep it BUFFERED for a wait that opens later: ms or 30s, 5m, 2h, 1d"),
  ).action(
    act(async (o: { name: string; key?: string; payloadFile?: string; tenant?: string; eventId?: string; ttl?: string; json?: boolean }, cmd: Command) => {
      const body = {
        name: o.name,
        ...(o.key !== undefined ? { correlationKey: o.key } : {}),
        ...(o.payloadFile !== undefined ? { payload: jsonFile('--payload-file', o.payloadFile) } : {}),
        ...(o.tenant !== undefined ? { tenant: o.tenant } : {}),
        ...(o.eventId !== undefined ? { eventId: o.eventId } : {}),
        ...(o.ttl !== undefined ? { ttl: /^\d+$/.test(o.ttl) ? Number(o.ttl) : o.ttl } : {}),
      };
      const e = await apiOf(cmd).post<EventView>('/events', body);
      if (o.json) printJson(e);
      else console.log(`event ${e.eventId}: ${e.status}${e.duplicate ? ' (duplicate: sent before)' : ''}; resumed ${e.runIds?.length ? e.runIds.join(', ') : 'no run'}`);
    }),
  );

  const deadLetters = events.command('dead-letters').description("the stream door's dead letters (<stream>:dead; REDIS_URL, PINFLOW_EVENTS_STREAM)");
  jsonOption(deadLetters.command('list').description('list dead letters: id, reason, attempts').option('--stream <stream>', 'the stream (default PINFLOW_EVENTS_STREAM)').option('--limit <n>', 'at most this many (default 1000)')).action(
    act(async (o: { stream?: string; limit?: string; json?: boolean }) => {
      const { url, stream } = redisOf(o.stream);
      const letters = await listDeadLetters({ url, stream, limit: intOption('--limit', o.limit) ?? 1000 });
      if (o.json) printJson(letters);
      else {
        console.log(`${letters.length} dead letter(s) in ${stream}:dead`);
        for (const d of letters) console.log(`  ${d.id}  from ${d.sourceStream}/${d.sourceId}  ${d.code} after ${d.attempts} attempt(s): ${d.error}`);
      }
    }),
  );
  deadLetters
    .command('replay')
    .description('put dead letters back on their stream once their cause is fixed (each keeps its eventId: no double submit)')
    .option('--id <id>', 'a dead letter id (repeatable)', collect, [])
    .option('--all', 'every dead letter')
    .option('--stream <stream>', 'the stream (default PINFLOW_EVENTS_STREAM)')
    .action(
      act(async (o: { id: string[]; all?: boolean; stream?: string }) => {
        if (o.id.length === 0 && !o.all) throw new UsageError('say which: --id <dead letter id> (repeatable) or --all');
        const { url, stream } = redisOf(o.stream);
        const replayed = await replayDeadLetters({ url, stream, ...(o.id.length > 0 ? { ids: o.id } : {}) });
        for (const r of replayed) console.log(`replayed ${r.deadLetterId} (first ${r.sourceId}) as ${r.messageId}`);
        console.log(`${replayed.length} dead letter(s) replayed to ${stream}`);
      }),
    );

  const waits = program.command('waits').description('the correlation index: which runs wait on which event and key (HTTP API)');
  jsonOption(
    waits
      .command('ls')
      .description('waits (GET /waits); OPEN unless --status')
      .option('--key <key>', 'on this correlation key')
      .option('--event <name>', 'on this event name')
      .option('--run <runId>', 'of this run')
      .option('--tenant <tenant>', 'of this tenant')
      .option('--status <status>', `one of ${WAIT_STATUSES.join(', ')} (default OPEN)`)
      .option('--limit <n>', 'at most this many, 1..1000'),
  ).action(
    act(async (o: { key?: string; event?: string; run?: string; tenant?: string; status?: string; limit?: string; json?: boolean }, cmd: Command) => {
      const res = await apiOf(cmd).get<{ waits: Array<{ runId: string; waitId: string; stepInstance: string; tenant: string; event: string; correlationKey: string; status: string }> }>('/waits', {
        key: o.key,
        event: o.event,
        runId: o.run,
        tenant: o.tenant,
        status: oneOf('--status', o.status, WAIT_STATUSES),
        limit: intOption('--limit', o.limit, 1000),
      });
      if (o.json) printJson(res);
      else
        console.log(
          table(res.waits, [
            ['RUN', (w) => w.runId],
            ['WAIT', (w) => w.waitId],
            ['STEP', (w) => w.stepInstance],
            ['TENANT', (w) => w.tenant],
            ['EVENT', (w) => w.event],
            ['KEY', (w) => w.correlationKey],
            ['STATUS', (w) => w.status],
          ], '(no waits match)'),
        );
    }),
  );
}

function redisOf(stream: string | undefined): { url: string; stream: string } {
  const config = loadConfig();
  if (!config.events.redisUrl) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, 'the events dead-letters commands need REDIS_URL (the Redis of the stream door)');
  return { url: config.events.redisUrl, stream: stream ?? config.events.stream };
}
