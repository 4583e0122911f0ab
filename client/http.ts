/**
 * The pinflow HTTP API. Every body and parameter is validated with zod; every
 * error is `{ "error": { "code", "message", "details" } }` with a fitting status.
 */
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { z } from 'zod';
import { ERROR_CODES, PinflowError, type ErrorCode } from '../graph/errors';
import { EVENT_STATUSES, RUN_STATUSES, WAIT_STATUSES } from '../graph/terminology';
import { MAX_METADATA_FILTER_KEYS, METADATA_KEY_PATTERN, type Pinflow } from './pinflow';

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  GRAPH_INVALID: 422,
  DEFINITION_NAME_INVALID: 400,
  DEFINITION_NOT_FOUND: 404,
  VERSION_NOT_FOUND: 404,
  RUN_NOT_FOUND: 404,
  NOT_FOUND: 404,
  RUN_ALREADY_EXISTS: 409,
  REQUEST_INVALID: 400,
  MALFORMED_JSON: 400,
  CURSOR_INVALID: 400,
  TEMPORAL_UNAVAILABLE: 503,
  RUN_NOT_STALLED: 409,
  DECISION_REJECTED: 409,
  SKIP_OUTPUT_INVALID: 422,
  MIGRATION_REFUSED: 409,
  CORRELATION_KEY_MISSING: 422,
  CORRELATION_KEY_INVALID: 422,
  EVENT_ID_CONFLICT: 409,
  EVENT_NOT_FOUND: 404,
  EVENT_INVALID: 400,
  RULE_INVALID: 400,
  RULE_DEFINED_IN_CODE: 409,
};

const startBody = z.strictObject({
  definition: z.string().min(1).optional(),
  version: z.string().min(1).optional(),
  input: z.unknown().optional(),
  tenant: z.string().min(1).optional(),
  runId: z.string().min(1).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});

const listQuery = z.strictObject({
  status: z.enum(RUN_STATUSES).optional(),
  definition: z.string().min(1).optional(),
  version: z.string().min(1).optional(),
  tenant: z.string().min(1).optional(),
  cursor: z.string().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

const nameParams = z.strictObject({ name: z.string().min(1) });
const hashParams = z.strictObject({ hash: z.string().min(1) });
const idParams = z.strictObject({ id: z.string().min(1) });

function parse<T>(schema: z.ZodType<T>, value: unknown, where: 'body' | 'query' | 'params'): T {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({
    field: [where, ...i.path.map(String)].join('.'),
    message: i.code === 'unrecognized_keys' ? `unknown field(s) ${i.keys.join(', ')}` : i.message,
  }));
  throw new PinflowError(ERROR_CODES.REQUEST_INVALID, `invalid request ${where}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, { issues });
}

/** A query-parameter error in the same shape `parse` gives. */
function queryInvalid(field: string, message: string): PinflowError {
  return new PinflowError(ERROR_CODES.REQUEST_INVALID, `invalid request query: ${field}: ${message}`, { issues: [{ field, message }] });
}

const META_PREFIX = 'meta.';

/**
 * Splits the `meta.<key>=<value>` parameters (the run list's metadata filter)
 * off a query, so the rest still goes through a strict schema. Values stay
 * strings: `meta.priority=1` matches metadata `{ "priority": "1" }` only.
 */
function splitMetaQuery(query: unknown): { rest: Record<string, unknown>; metadata: Record<string, string> | undefined } {
  const rest: Record<string, unknown> = {};
  const meta: Array<[string, string]> = [];
  for (const [name, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    if (!name.startsWith(META_PREFIX)) {
      rest[name] = value;
      continue;
    }
    const key = name.slice(META_PREFIX.length);
    const field = `query.${name}`;
    if (!METADATA_KEY_PATTERN.test(key)) throw queryInvalid(field, `metadata key ${JSON.stringify(key)} is invalid; it must match ${METADATA_KEY_PATTERN}`);
    if (typeof value !== 'string') {
      throw queryInvalid(field, `expected one value, received ${Array.isArray(value) ? `${value.length} (${value.map((v) => JSON.stringify(v)).join(', ')})` : typeof value}`);
    }
    meta.push([key, value]);
  }
  if (meta.length > MAX_METADATA_FILTER_KEYS) {
    throw queryInvalid('query.meta', `${meta.length} metadata keys (${meta.map(([k]) => k).join(', ')}); allowed: at most ${MAX_METADATA_FILTER_KEYS}`);
  }
  return { rest, metadata: meta.length ? Object.fromEntries(meta) : undefined };
}

function sendError(reply: FastifyReply, status: number, code: string, message: string, details?: unknown) {
  return reply.status(status).send({ error: { code, message, details: details ?? null } });
}

export interface ApiOptions {
  pinflow: Pinflow;
  /** Fastify logger. @default false */
  logger?: boolean;
  /** Maximum request body size in bytes. @default 5 MiB */
  bodyLimit?: number;
}

export function createApi({ pinflow, logger = false, bodyLimit = 5 * 1024 * 1024 }: ApiOptions): FastifyInstance {
  const app = Fastify({ logger, bodyLimit });

  app.setErrorHandler((err: unknown, _req, reply) => {
    if (err instanceof PinflowError) return sendError(reply, STATUS_BY_CODE[err.code] ?? 500, err.code, err.message, err.details);
    const e = err as { code?: string; statusCode?: number; message?: string };
    if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (e.statusCode === 400 && e instanceof SyntaxError)) {
      return sendError(reply, 400, ERROR_CODES.MALFORMED_JSON, `request body is not valid JSON: ${e.message}`);
    }
    if (e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      return sendError(reply, 400, ERROR_CODES.MALFORMED_JSON, 'request body is empty; a JSON document was expected');
    }
    if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return sendError(reply, 415, ERROR_CODES.REQUEST_INVALID, `unsupported content type; send application/json (${e.message})`);
    }
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, 413, ERROR_CODES.REQUEST_INVALID, e.message ?? 'body too large');
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      return sendError(reply, e.statusCode, ERROR_CODES.REQUEST_INVALID, e.message ?? 'bad request');
    }
    reply.log.error(err);
    return sendError(reply, 500, ERROR_CODES.INTERNAL, `internal error: ${e.message ?? String(err)}`);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, ERROR_CODES.NOT_FOUND, `no route ${req.method} ${req.url}`));

  app.post('/definitions/:name/versions', async (req, reply) => {
    const { name } = parse(nameParams, req.params, 'params');
    const result = await pinflow.publish(name, req.body);
    return reply.status(result.created ? 201 : 200).send(result);
  });
  app.get('/definitions', async () => ({ definitions: await pinflow.listDefinitions() }));
  app.get('/definitions/:name/versions', async (req) => {
    const { name } = parse(nameParams, req.params, 'params');
    return { definition: name, versions: await pinflow.listVersions(name) };
  });
  app.get('/versions/:hash', async (req) => {
    const { hash } = parse(hashParams, req.params, 'params');
    return pinflow.getVersion(hash);
  });

  app.post('/runs', async (req, reply) => {
    const body = parse(startBody, req.body, 'body');
    const started = await pinflow.start(body);
    return reply.status(201).send(started);
  });
  app.get('/runs', async (req) => {
    const { rest, metadata } = splitMetaQuery(req.query);
    const q = parse(listQuery, rest, 'query');
    return pinflow.listRuns({ ...q, ...(metadata ? { metadata } : {}) });
  });
  app.get('/runs/:id', async (req) => {
    const { id } = parse(idParams, req.params, 'params');
    return pinflow.getRun(id);
  });

  const decisionBody = z.strictObject({
    action: z.enum(['retry', 'skip']),
    by: z.string().min(1),
    reason: z.string().optional(),
    output: z.unknown().optional(),
    stallId: z.string().optional(),
  });
  app.post('/runs/:id/decisions', async (req) => {
    const { id } = parse(idParams, req.params, 'params');
    const body = parse(decisionBody, req.body, 'body');
    return pinflow.resolveStall(id, body);
  });
  app.post('/runs/:id/migrate', async (req) => {
    const { id } = parse(idParams, req.params, 'params');
    const body = parse(
      z.strictObject({ targetVersion: z.string().regex(/^[0-9a-f]{64}$/), mapping: z.record(z.string(), z.string()).optional(), by: z.string().min(1), reason: z.string().optional() }),
      req.body,
      'body',
    );
    return pinflow.migrate(id, body);
  });
  app.post('/runs/:id/cancel', async (req, reply) => {
    const { id } = parse(idParams, req.params, 'params');
    const body = parse(z.strictObject({ by: z.string().min(1), reason: z.string().optional() }), req.body, 'body');
    await pinflow.cancel(id, body);
    return reply.status(202).send({ runId: id, cancellation: 'requested' });
  });
  app.post('/stalls/resolve', async (req) => {
    const body = parse(decisionBody.omit({ stallId: true }).extend({ rpc: z.string().min(1), reason: z.enum(['rpc_missing', 'input_incompatible', 'output_incompatible']).optional(), note: z.string().optional() }), req.body, 'body');
    const { rpc, reason, note, ...decision } = body;
    const results = await pinflow.resolveStalled({ rpc, ...(reason ? { reason } : {}) }, { ...decision, ...(note ? { reason: note } : {}) });
    return { results };
  });

  const manifestBody = z.strictObject({
    contracts: z.record(z.string().min(1), z.strictObject({ hash: z.string().regex(/^[0-9a-f]{64}$/), input: z.unknown(), output: z.unknown() })),
  });
  /** Pre-deploy impact analysis; the body is what `pinflow contracts --rpcs <module>` prints. Changes nothing. */
  app.post('/deploy/check', async (req) => {
    const { contracts } = parse(manifestBody, req.body, 'body');
    return pinflow.checkDeploy(contracts as Parameters<Pinflow['checkDeploy']>[0]);
  });

  app.get('/runs/:id/state', async (req) => {
    const { id } = parse(idParams, req.params, 'params');
    return pinflow.state(id);
  });

  // Events: the HTTP door, the event log, the correlation index and correlation rules.
  const eventBody = z.strictObject({
    tenant: z.string().optional(),
    name: z.string(),
    payload: z.unknown().optional(),
    eventId: z.string().optional(),
    correlationKey: z.union([z.string(), z.number(), z.null()]).optional(),
  });
  app.post('/events', async (req, reply) => {
    const body = parse(eventBody, req.body, 'body');
    const outcome = await pinflow.events.submit(body, { source: 'api' });
    // 202: recorded, and some delivery failed; the sweeper retries it.
    return reply.status(outcome.status === 'FAILED' ? 202 : 200).send(outcome);
  });
  app.get('/events', async (req) => {
    const q = parse(
      z.strictObject({
        tenant: z.string().min(1).optional(),
        name: z.string().min(1).optional(),
        status: z.enum(EVENT_STATUSES).optional(),
        key: z.string().min(1).optional(),
        cursor: z.string().min(1).optional(),
        limit: z.coerce.number().int().min(1).max(500).optional(),
      }),
      req.query,
      'query',
    );
    return pinflow.events.listEvents({ tenant: q.tenant, name: q.name, status: q.status, correlationKey: q.key }, { cursor: q.cursor, limit: q.limit });
  });
  app.get('/events/:id', async (req) => {
    const { id } = parse(idParams, req.params, 'params');
    const { tenant } = parse(z.strictObject({ tenant: z.string().min(1).default('default') }), req.query, 'query');
    return pinflow.events.getEvent(tenant, id);
  });
  app.get('/waits', async (req) => {
    const q = parse(
      z.strictObject({
        tenant: z.string().min(1).optional(),
        event: z.string().min(1).optional(),
        key: z.string().min(1).optional(),
        runId: z.string().min(1).optional(),
        status: z.enum(WAIT_STATUSES).optional(),
        limit: z.coerce.number().int().min(1).max(1000).optional(),
      }),
      req.query,
      'query',
    );
    const waits = await pinflow.events.listWaits({ tenant: q.tenant, event: q.event, correlationKey: q.key, runId: q.runId, ...(q.status ? { status: q.status } : {}) }, q.limit ?? 100);
    return { waits };
  });
  app.get('/correlation-rules', async () => ({ rules: await pinflow.events.listRules() }));
  app.put('/correlation-rules/:name', async (req) => {
    const { name } = parse(nameParams, req.params, 'params');
    const body = parse(z.strictObject({ expression: z.string(), by: z.string().min(1) }), req.body, 'body');
    return pinflow.events.putRule(name, body.expression, body.by);
  });
  app.delete('/correlation-rules/:name', async (req, reply) => {
    const { name } = parse(nameParams, req.params, 'params');
    await pinflow.events.deleteRule(name);
    return reply.status(204).send();
  });

  app.get('/health', async (_req, reply) => {
    const h = await pinflow.health();
    return reply.status(h.ok ? 200 : 503).send(h);
  });
  return app;
}
