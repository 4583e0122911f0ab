/**
 * The pinflow HTTP API. Each route is one schema from `api-schemas.ts` plus
 * one handler; fastify-type-provider-zod validates requests and serialises
 * responses with those schemas, and `@fastify/swagger` turns them into the
 * OpenAPI 3.1 document at `GET /openapi.json` (`/docs` renders it).
 *
 * Every error is `{ "error": { "code", "message", "details" } }` with a fitting
 * status, the framework's own refusals included. Before any schema runs,
 * every string of every request (path parameters, query, body at any depth)
 * goes through one recursive check: no NUL, no lone surrogate, bounded depth.
 * A 500 never echoes an internal message: it carries an `errorId` that is
 * logged with the real error.
 *
 * `GET /metrics` (Prometheus text format, outside the OpenAPI document) serves
 * this process's metrics (observability/metrics.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { WorkflowNotFoundError } from '@temporalio/client';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { ERROR_CODES, InvalidRequestError, NotFoundError, PinflowError } from '../graph/errors';
import { DatabaseUnavailableError, isDatabaseUnavailable } from '../db/availability';
import { findJsonProblem, jsonProblemError } from '../graph/json-guard';
import { jsonTextTooDeep, LIMITS, MAX_METADATA_FILTER_KEYS, METADATA_KEY_PATTERN, requestInvalid, ROUTES, STATUS_BY_CODE, type IssueLike } from './api-schemas';
import type { Pinflow } from './pinflow';
import { installConsole } from './console-static';
import { installAccess, readTenant, writeTenant } from './access';
import { AuditLog } from './audit';
import { ApiKeys } from './keys';
import { metricsText, refreshProjectionGauges } from '../observability/metrics';
import { RUN_STATUSES, STALL_REASONS, type RunStatus } from '../graph/terminology';
import { traceHttp } from '../observability/http';
import type { PayloadCodec } from '@temporalio/common';
import { payloadFromJson, payloadToJson, type JsonPayload } from '../codec/encryption';

/** A query-parameter error in the same shape schema validation gives. */
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
    if (value.length > LIMITS.textLength) throw queryInvalid(field, `the value is ${value.length} characters long; allowed: at most ${LIMITS.textLength}`);
    meta.push([key, value]);
  }
  if (meta.length > MAX_METADATA_FILTER_KEYS) {
    throw queryInvalid('query.meta', `${meta.length} metadata keys (${meta.map(([k]) => k).join(', ')}); allowed: at most ${MAX_METADATA_FILTER_KEYS}`);
  }
  return { rest, metadata: meta.length ? Object.fromEntries(meta) : undefined };
}

interface ErrorBody {
  error: { code: string; message: string; details: unknown; errorId?: string };
}

function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: { code, message, details: details ?? null } };
}

function sendError(reply: FastifyReply, status: number, code: string, message: string, details?: unknown) {
  return reply.status(status).send(errorBody(code, message, details));
}

const WHERE: Record<string, string> = { body: 'body', querystring: 'query', params: 'params', headers: 'headers' };

export interface ApiOptions {
  pinflow: Pinflow;
  /** Fastify logger: `true` for fastify's default pino, or the process's pino logger (observability/logging.ts). @default false */
  logger?: boolean | FastifyBaseLogger;
  /** Maximum request body size in bytes. @default 5 MiB ({@link LIMITS.bodyBytes}) */
  bodyLimit?: number;
  /**
   * Called with every unexpected error and the id its 500 body carries.
   * @default the request logger when `logger` is on, else `console.error`
   */
  onInternalError?: (errorId: string, err: unknown) => void;
  /** The API keys (client/keys.ts). @default the keys of `pinflow.store.db`, verifications cached {@link authCacheMs} */
  keys?: ApiKeys;
  /** How long a verified key is trusted without reading its row again (bounds how late a revocation elsewhere takes effect). @default 10 000 ms */
  authCacheMs?: number;
  /** Requests per key per window; over it: 429 RATE_LIMITED with Retry-After. @default 1200 per 60 000 ms */
  rateLimit?: { max: number; timeWindowMs: number };
  /**
   * The codec endpoint (POST /codec/encode, /codec/decode) for the Temporal
   * UI: the payload codec (absent: encryption is off and both refuse with
   * CODEC_FAILED) and the origins CORS lets call it.
   */
  codec?: { codec: PayloadCodec | undefined; corsOrigins: readonly string[] };
  /** The built operator console served at `/` (client/console-static.ts). @default dist/console */
  consoleDir?: string;
}

/** Headers the Temporal UI sends to a codec endpoint. */
const CODEC_CORS_HEADERS = 'Content-Type, X-Namespace, Authorization';

/**
 * CORS for the codec endpoint only (the rest of the API is not for browsers
 * of other origins): an allowed origin gets its own origin back, with
 * credentials (the UI's `includeCredentials`); any other gets no CORS
 * headers, so its browser refuses the answer.
 */
function codecCors(app: FastifyInstance, origins: readonly string[]): void {
  const allowed = new Set(origins);
  app.addHook('onRequest', (req, reply, next) => {
    if (!req.url.startsWith('/codec/')) return next();
    const origin = req.headers.origin;
    if (typeof origin === 'string' && allowed.has(origin)) {
      void reply.header('Access-Control-Allow-Origin', origin).header('Access-Control-Allow-Credentials', 'true');
    }
    void reply.header('Vary', 'Origin');
    next();
  });
  for (const url of ['/codec/encode', '/codec/decode']) {
    // The preflight carries no Authorization header: it is answered without one.
    app.options(url, { schema: { hide: true }, config: { public: true } }, async (req, reply) => {
      const origin = req.headers.origin;
      if (typeof origin === 'string' && allowed.has(origin)) {
        void reply.header('Access-Control-Allow-Methods', 'POST, OPTIONS').header('Access-Control-Allow-Headers', CODEC_CORS_HEADERS).header('Access-Control-Max-Age', '600');
      }
      return reply.status(204).send();
    });
  }
}

async function runCodec(codec: PayloadCodec | undefined, which: 'encode' | 'decode', payloads: JsonPayload[]): Promise<{ payloads: JsonPayload[] }> {
  if (!codec) {
    throw new PinflowError(ERROR_CODES.CODEC_FAILED, `the codec endpoint is off: no encryption key is configured (PINFLOW_ENCRYPTION_KEY or PINFLOW_ENCRYPTION_KEY_FILE)`, { field: 'PINFLOW_ENCRYPTION_KEY' });
  }
  const out = await codec[which](payloads.map(payloadFromJson));
  return { payloads: out.map(payloadToJson) };
}

/** What the framework's own refusals (routing, Node's HTTP parser) become. */
function frameworkError(err: { code?: string; message?: string }): { status: number; code: string; message: string } {
  switch (err.code) {
    case 'FST_ERR_BAD_URL':
      return { status: 400, code: ERROR_CODES.URL_INVALID, message: 'the URL is not valid percent-encoded UTF-8' };
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return { status: 414, code: ERROR_CODES.URL_TOO_LONG, message: `a path parameter is over ${LIMITS.paramLength} characters` };
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, code: ERROR_CODES.HEADERS_TOO_LARGE, message: 'the request headers are too large' };
    case 'HPE_URI_TOO_LONG':
      return { status: 414, code: ERROR_CODES.URL_TOO_LONG, message: 'the URL is too long' };
    default:
      return { status: 400, code: ERROR_CODES.REQUEST_INVALID, message: `the request could not be read (${err.code ?? 'bad request'})` };
  }
}

/** Node's refusals before Fastify sees a request: answer on the raw socket, in pinflow's shape. */
function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const f = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? { status: 408, code: ERROR_CODES.REQUEST_INVALID, message: 'the request timed out' } : frameworkError(err);
  const body = JSON.stringify(errorBody(f.code, f.message));
  const reason = { 400: 'Bad Request', 408: 'Request Timeout', 414: 'URI Too Long', 431: 'Request Header Fields Too Large' }[f.status] ?? 'Bad Request';
  socket.end(`HTTP/1.1 ${f.status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

export function createApi({ pinflow, logger = false, bodyLimit = LIMITS.bodyBytes, onInternalError, keys, authCacheMs, rateLimit, codec, consoleDir }: ApiOptions): FastifyInstance {
  const app = Fastify({
    ...(typeof logger === 'object' ? { loggerInstance: logger } : { logger }),
    bodyLimit,
    routerOptions: { maxParamLength: LIMITS.paramLength },
    // Bad URL encoding and over-long parameters come back in pinflow's shape.
    frameworkErrors: (err, _req, reply) => {
      const f = frameworkError(err as { code?: string });
      void (reply as FastifyReply).status(f.status).send(errorBody(f.code, f.message));
    },
    clientErrorHandler,
  });
  app.setValidatorCompiler(validatorCompiler);
  codecCors(app, codec?.corsOrigins ?? []);
  app.setSerializerCompiler(serializerCompiler);
  // A server span per request while tracing is on (before any route is registered).
  traceHttp(app);
  // Keys, scopes, tenants, rate limit, reasons and the audit log: declared by each ROUTES entry's `config` (client/access.ts).
  const apiKeys = keys ?? new ApiKeys(pinflow.store.db, authCacheMs !== undefined ? { cacheMs: authCacheMs } : {});
  const audit = new AuditLog(pinflow.store.db);
  installAccess(app, { keys: apiKeys, audit, ...(rateLimit ? { rateLimit } : {}) });
  // The operator console's page and assets at / (public: every call it makes sends its key).
  installConsole(app, consoleDir);

  const internal = (req: FastifyRequest, reply: FastifyReply, err: unknown) => {
    const errorId = randomUUID();
    if (onInternalError) onInternalError(errorId, err);
    else if (logger) req.log.error({ err, errorId }, 'internal error');
    else console.error(`[pinflow api] internal error ${errorId} (${req.method} ${req.url}):`, err);
    return reply.status(500).send({ error: { code: ERROR_CODES.INTERNAL, message: 'internal error', details: null, errorId } });
  };

  app.setErrorHandler((err: unknown, req, reply) => {
    if (err instanceof PinflowError) {
      const status = (err instanceof InvalidRequestError ? err.httpStatus : undefined) ?? STATUS_BY_CODE[err.code];
      // A code with no HTTP status (CONFIG_INVALID, ...) is not the caller's fault.
      if (status === undefined || status >= 500) return status === undefined || err.code === ERROR_CODES.INTERNAL ? internal(req, reply, err) : sendError(reply, status, err.code, err.message, err.details);
      return sendError(reply, status, err.code, err.message, err.details);
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const where = WHERE[(err as { validationContext?: string }).validationContext ?? 'body'] ?? 'body';
      const data = where === 'body' ? req.body : where === 'query' ? req.query : where === 'params' ? req.params : req.headers;
      const issues: IssueLike[] = err.validation.map((v) => ({
        ...v.params,
        code: v.keyword,
        path: v.instancePath.split('/').slice(1).filter((p) => p !== ''),
        message: v.message ?? 'invalid',
      }));
      const e = requestInvalid(issues, where, data);
      return sendError(reply, STATUS_BY_CODE[e.code] ?? 400, e.code, e.message, e.details);
    }
    // The database is down or restarting: retry later (nothing of the request was applied, or it was idempotent).
    if (isDatabaseUnavailable(err)) {
      const e = new DatabaseUnavailableError(err);
      return sendError(reply, 503, e.code, e.message, e.details);
    }
    // A run that Temporal does not know (or that already closed) is the caller's mistake, not ours.
    if (err instanceof WorkflowNotFoundError) {
      return sendError(reply, 404, ERROR_CODES.RUN_NOT_FOUND, `run ${JSON.stringify(err.workflowId ?? '')} is not open in Temporal`, { runId: err.workflowId ?? null });
    }
    const e = err as { code?: string; statusCode?: number; message?: string };
    switch (e.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return sendError(reply, 400, ERROR_CODES.MALFORMED_JSON, `request body is not valid JSON: ${e.message}`);
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return sendError(reply, 400, ERROR_CODES.MALFORMED_JSON, 'request body is empty; a JSON document was expected');
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendError(reply, 415, ERROR_CODES.CONTENT_TYPE_UNSUPPORTED, `unsupported content type ${JSON.stringify(req.headers['content-type'] ?? '')}; send application/json`, {
          received: req.headers['content-type'] ?? null,
          allowed: 'application/json',
        });
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return sendError(reply, 413, ERROR_CODES.REQUEST_TOO_LARGE, `request body is over the limit of ${bodyLimit} bytes`, { allowed: `at most ${bodyLimit} bytes` });
      default:
        break;
    }
    if (e.statusCode === 400 && e instanceof SyntaxError) return sendError(reply, 400, ERROR_CODES.MALFORMED_JSON, `request body is not valid JSON: ${e.message}`);
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      // Fastify's own 4xx (content length mismatch, forbidden __proto__ key, ...): its message names no internals.
      return sendError(reply, e.statusCode, ERROR_CODES.REQUEST_INVALID, e.message ?? 'bad request');
    }
    return internal(req, reply, err);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, ERROR_CODES.NOT_FOUND, `no route ${req.method} ${req.url.length > 200 ? `${req.url.slice(0, 200)}...` : req.url}`));

  // JSON only. The depth is checked on the raw text before parsing, so a body
  // nested 10,000 deep is refused without any recursion over it.
  app.removeAllContentTypeParsers();
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const textBody = body as string;
    if (textBody.length === 0) return done(new PinflowError(ERROR_CODES.MALFORMED_JSON, 'request body is empty; a JSON document was expected'), undefined);
    const at = jsonTextTooDeep(textBody, LIMITS.jsonDepth);
    if (at >= 0) {
      return done(
        new PinflowError(ERROR_CODES.REQUEST_TOO_DEEP, `request body nests deeper than ${LIMITS.jsonDepth} levels (at character ${at})`, { field: 'body', allowed: `at most ${LIMITS.jsonDepth} levels of nesting` }),
        undefined,
      );
    }
    void parseJson(req, textBody, done);
  });

  // The one recursive check, on every request, before any schema or handler.
  app.addHook('preValidation', (req, _reply, next) => {
    const parts: Array<[string, unknown]> = [
      ['params', req.params],
      ['query', req.query],
      ['body', req.body],
    ];
    for (const [where, value] of parts) {
      const p = findJsonProblem(value, where);
      if (p) return next(jsonProblemError(p));
    }
    if (req.body === undefined && req.routeOptions.schema?.body !== undefined && (req.method === 'POST' || req.method === 'PUT')) req.body = {};
    next();
  });

  // Prometheus metrics of this process (observability/metrics.ts; the README's "Metrics" lists them).
  // Not part of the JSON API: absent from the OpenAPI document, answered in the text format.
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    await refreshProjectionGauges(
      { stallsByReason: () => pinflow.store.countStallsByReason(), openWaitsByEvent: () => pinflow.store.countOpenWaitsByEvent() },
      STALL_REASONS,
    );
    const { contentType, body } = await metricsText();
    return reply.header('content-type', contentType).send(body);
  });

  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'pinflow',
        version: '0.4.0',
        description:
          'Workflow graphs on Temporal, every run pinned to the exact graph it started with. Every error is `{ "error": { "code", "message", "details" } }`; ' +
          `limits: body ${LIMITS.bodyBytes} bytes, JSON depth ${LIMITS.jsonDepth}, keys ${LIMITS.keyLength} characters, path parameters ${LIMITS.paramLength} characters. ` +
          'Every route but /health, /openapi.json, /docs and /metrics needs `Authorization: Bearer pf_<id>_<secret>` (an API key) with the scope its ROUTES entry declares.',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key, `pf_<id>_<secret>` (`pinflow keys create`, `POST /keys`).' } } },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
  });
  void app.register(swaggerUi, { routePrefix: '/docs' });

  void app.register((scope, _opts, registered) => {
    const r = scope.withTypeProvider<ZodTypeProvider>();

    r.route({
      ...ROUTES.publish,
      handler: async (req, reply) => {
        const result = await pinflow.publish(req.params.name, req.body);
        return reply.status(result.created ? 201 : 200).send(result);
      },
    });
    r.route({ ...ROUTES.listDefinitions, handler: async () => ({ definitions: await pinflow.listDefinitions() }) });
    r.route({ ...ROUTES.listVersions, handler: async (req) => ({ definition: req.params.name, versions: await pinflow.listVersions(req.params.name) }) });
    r.route({ ...ROUTES.getVersion, handler: async (req) => pinflow.getVersion(req.params.hash) });
    r.route({
      ...ROUTES.versionGc,
      handler: async (req) => {
        const result = await pinflow.gcVersions(req.body, req.principal ? { keyId: req.principal.keyId } : undefined);
        // The audit row names what went (a dry run: what would go).
        req.auditTargets = (result.dryRun ? result.candidates : result.removed).map((v) => v.hash);
        return result;
      },
    });
    // A tenant key counts its tenant's runs only.
    r.route({ ...ROUTES.stepCounts, handler: async (req) => pinflow.console.stepCounts(req.params.hash, req.principal?.tenant ?? undefined) });
    r.route({ ...ROUTES.diffVersions, handler: async (req) => pinflow.console.diff(req.params.name, req.query.from, req.query.to) });
    r.route({
      ...ROUTES.listStalls,
      handler: async (req) => {
        const tenant = readTenant(req, req.query.tenant);
        if (tenant === null) return { groups: [], total: 0 };
        return pinflow.console.stalls({ ...req.query, tenant });
      },
    });
    r.route({
      ...ROUTES.whoami,
      handler: (req) => {
        const p = req.principal!;
        return Promise.resolve({ keyId: p.keyId, name: p.name, scopes: p.scopes, tenant: p.tenant });
      },
    });

    r.route({
      ...ROUTES.start,
      handler: async (req, reply) => {
        const tenant = writeTenant(req, req.body.tenant, 'body.tenant');
        const started = await pinflow.start({ ...req.body, ...(tenant !== undefined ? { tenant } : {}) });
        req.auditRuns = [started.runId];
        req.auditTenant = started.tenant;
        return reply.status(started.existing ? 200 : 201).send(started);
      },
    });
    const metaFilters = new WeakMap<object, Record<string, string>>();
    // meta.<key> parameters are taken out before the strict query schema runs (GET /runs and /runs/counts).
    const takeMetaFilters = (req: FastifyRequest, _reply: FastifyReply, next: (err?: Error) => void): void => {
      try {
        const { rest, metadata } = splitMetaQuery(req.query);
        if (metadata) metaFilters.set(req, metadata);
        req.query = rest;
        next();
      } catch (err) {
        next(err as Error);
      }
    };
    r.route({
      ...ROUTES.listRuns,
      // meta.<key> parameters are taken out before the strict query schema runs.
      preValidation: takeMetaFilters,
      handler: async (req) => {
        const metadata = metaFilters.get(req);
        const tenant = readTenant(req, req.query.tenant);
        if (tenant === null) return { runs: [], nextCursor: null };
        return pinflow.listRuns({ ...req.query, ...(tenant !== undefined ? { tenant } : {}), ...(metadata ? { metadata } : {}) });
      },
    });
    r.route({
      ...ROUTES.runCounts,
      preValidation: takeMetaFilters,
      handler: async (req) => {
        const metadata = metaFilters.get(req);
        const tenant = readTenant(req, req.query.tenant);
        if (tenant === null) return { counts: Object.fromEntries(RUN_STATUSES.map((st) => [st, 0])) as Record<RunStatus, number>, total: 0 };
        return pinflow.countRuns({ ...req.query, ...(tenant !== undefined ? { tenant } : {}), ...(metadata ? { metadata } : {}) });
      },
    });
    r.route({ ...ROUTES.getRun, handler: async (req) => pinflow.getRun(req.params.id) });
    r.route({ ...ROUTES.decide, handler: async (req) => pinflow.resolveStall(req.params.id, req.body) });
    r.route({ ...ROUTES.migrate, handler: async (req) => pinflow.migrate(req.params.id, req.body) });
    r.route({
      ...ROUTES.cancel,
      handler: async (req, reply) => {
        await pinflow.cancel(req.params.id, req.body);
        return reply.status(202).send({ runId: req.params.id, cancellation: 'requested' as const });
      },
    });
    // Rerun and replay start a new run (201), or return the one a repeated `runId` already started (200).
    r.route({
      ...ROUTES.rerun,
      handler: async (req, reply) => {
        const res = await pinflow.rerun(req.params.id, req.body);
        // The audit row names both runs: the source and the new one.
        req.auditRuns = [req.params.id, res.runId];
        return reply.status(res.created ? 201 : 200).send(res);
      },
    });
    r.route({
      ...ROUTES.replay,
      handler: async (req, reply) => {
        const res = await pinflow.replay(req.params.id, req.body);
        // The audit row names both runs: the source and the new one.
        req.auditRuns = [req.params.id, res.runId];
        return reply.status(res.created ? 201 : 200).send(res);
      },
    });
    r.route({ ...ROUTES.attention, handler: async () => ({ counts: await pinflow.attention.counts() }) });
    r.route({ ...ROUTES.pauseRun, handler: async (req) => pinflow.pause(req.params.id, req.body) });
    r.route({ ...ROUTES.resumeRun, handler: async (req) => pinflow.resume(req.params.id, req.body) });
    r.route({ ...ROUTES.pauseDefinition, handler: async (req) => pinflow.pauseDefinition(req.params.name, req.body) });
    r.route({ ...ROUTES.resumeDefinition, handler: async (req) => pinflow.resumeDefinition(req.params.name, req.body) });
    r.route({
      ...ROUTES.resolveStalled,
      handler: async (req) => {
        const { rpc, reason, note, ...decision } = req.body;
        const results = await pinflow.resolveStalled({ rpc, ...(reason ? { reason } : {}) }, { ...decision, ...(note ? { reason: note } : {}) });
        req.auditRuns = results.filter((x) => x.ok).map((x) => x.runId);
        const skipped = results.filter((x) => x.skipped).length;
        const applied = results.filter((x) => x.ok).length;
        return { results, summary: { applied, skipped, failed: results.length - applied - skipped } };
      },
    });
    /** Pre-deploy impact analysis; the body is what `pinflow contracts --rpcs <module>` prints. Changes nothing. */
    r.route({ ...ROUTES.checkDeploy, handler: async (req) => pinflow.checkDeploy(req.body.contracts) });
    /** One reconcile pass now (the API process also runs one every PINFLOW_RECONCILE_INTERVAL_MS). */
    r.route({ ...ROUTES.reconcile, handler: async () => pinflow.reconcile() });
    r.route({ ...ROUTES.state, handler: async (req) => (await pinflow.state(req.params.id)) as unknown as Record<string, unknown> });

    // Events: the HTTP door, the event log, the correlation index and correlation rules.
    r.route({
      ...ROUTES.submitEvent,
      handler: async (req, reply) => {
        const tenant = writeTenant(req, req.body.tenant, 'body.tenant');
        const outcome = await pinflow.events.submit({ ...req.body, ...(tenant !== undefined ? { tenant } : {}) }, { source: 'api' });
        // 202: recorded, and some delivery failed (the sweeper retries it), or
        // a duplicate arrived while the first submission is still routing.
        return reply.status(outcome.status === 'FAILED' || outcome.status === 'RECEIVED' ? 202 : 200).send(outcome);
      },
    });
    r.route({
      ...ROUTES.listEvents,
      handler: async (req) => {
        const q = req.query;
        const tenant = readTenant(req, q.tenant);
        if (tenant === null) return { events: [], nextCursor: null };
        return pinflow.events.listEvents({ tenant, name: q.name, status: q.status, correlationKey: q.key }, { cursor: q.cursor, limit: q.limit });
      },
    });
    r.route({
      ...ROUTES.getEvent,
      handler: async (req) => {
        // A tenant key reads its own tenant's events (the query's `default` is its tenant); another tenant's event is answered as an unknown one.
        const own = req.principal?.tenant ?? null;
        const tenant = own === null || req.query.tenant === 'default' ? (own ?? req.query.tenant) : readTenant(req, req.query.tenant);
        if (tenant === null || tenant === undefined) {
          throw new NotFoundError(ERROR_CODES.EVENT_NOT_FOUND, `event ${JSON.stringify(req.params.id)} of tenant ${req.query.tenant} is not in the event log`, { tenant: req.query.tenant, eventId: req.params.id });
        }
        return pinflow.events.getEvent(tenant, req.params.id);
      },
    });
    r.route({
      ...ROUTES.listWaits,
      handler: async (req) => {
        const q = req.query;
        const tenant = readTenant(req, q.tenant);
        if (tenant === null) return { waits: [] };
        const waits = await pinflow.events.listWaits({ tenant, event: q.event, correlationKey: q.key, runId: q.runId, ...(q.status ? { status: q.status } : {}) }, q.limit ?? 100);
        return { waits };
      },
    });
    r.route({ ...ROUTES.listRules, handler: async () => ({ rules: await pinflow.events.listRules() }) });
    r.route({ ...ROUTES.putRule, handler: async (req) => pinflow.events.putRule(req.params.name, req.body.expression, req.body.by, req.body.ttl) });
    r.route({
      ...ROUTES.deleteRule,
      handler: async (req, reply) => {
        await pinflow.events.deleteRule(req.params.name);
        return reply.status(204).send(null);
      },
    });

    // Access: keys and the audit log (admin).
    r.route({
      ...ROUTES.createKey,
      handler: async (req, reply) => {
        const created = await apiKeys.create({ scopes: req.body.scopes, tenant: req.body.tenant ?? null, name: req.body.name, by: req.body.by });
        req.auditTargets = [created.id];
        return reply.status(201).send(created);
      },
    });
    r.route({ ...ROUTES.listKeys, handler: async (req) => ({ keys: await apiKeys.list({ revoked: req.query.revoked === 'true' }) }) });
    r.route({ ...ROUTES.revokeKey, handler: async (req) => apiKeys.revoke(req.params.id, req.query.by ?? req.principal?.keyId ?? 'api', req.query.reason ?? '') });
    r.route({
      ...ROUTES.listAudit,
      handler: async (req) => {
        const { cursor, limit, ...filter } = req.query;
        return audit.list(filter, { ...(cursor ? { cursor } : {}), ...(limit ? { limit } : {}) });
      },
    });
    // Batches: bulk actions by run filter (client/batches.ts).
    r.route({
      ...ROUTES.createBatch,
      handler: async (req, reply) => {
        const result = await pinflow.batches.create(req.body);
        if (!('dryRun' in result)) req.auditTargets = [result.id];
        return 'dryRun' in result ? reply.status(200).send(result) : reply.status(201).send(result);
      },
    });
    r.route({ ...ROUTES.listBatches, handler: async (req) => pinflow.batches.list(req.query) });
    r.route({ ...ROUTES.getBatch, handler: async (req) => pinflow.batches.get(req.params.id) });
    r.route({ ...ROUTES.listBatchItems, handler: async (req) => pinflow.batches.items(req.params.id, req.query) });
    r.route({ ...ROUTES.pauseBatch, handler: async (req) => pinflow.batches.pause(req.params.id, req.body) });
    r.route({ ...ROUTES.resumeBatch, handler: async (req) => pinflow.batches.resume(req.params.id, req.body) });
    r.route({ ...ROUTES.cancelBatch, handler: async (req) => pinflow.batches.cancel(req.params.id, req.body) });

    // Retention (client/retention.ts): policies, the preview, sweeps, the namespace's retention, legal holds.
    const who = (req: FastifyRequest, by: string | undefined) => by ?? req.principal?.keyId ?? 'api';
    r.route({ ...ROUTES.retentionPolicies, handler: async () => ({ policies: await pinflow.retention.policies(), namespace: await pinflow.retention.checkNamespace() }) });
    r.route({
      ...ROUTES.setRetentionPolicy,
      handler: async (req) => {
        const b = req.body;
        return pinflow.retention.setPolicy({ subject: b.subject, definition: b.definition, status: b.status, days: b.days, by: who(req, b.by) });
      },
    });
    r.route({
      ...ROUTES.unsetRetentionPolicy,
      handler: async (req) => {
        const q = req.query;
        return pinflow.retention.unsetPolicy({ subject: q.subject, definition: q.definition, status: q.status });
      },
    });
    r.route({ ...ROUTES.retentionPreview, handler: async () => pinflow.retention.preview() });
    r.route({
      ...ROUTES.startSweep,
      handler: async (req, reply) => {
        const sweep = await pinflow.retention.startSweep({ by: who(req, req.body.by), reason: req.body.reason, batchSize: req.body.batchSize, pauseMs: req.body.pauseMs });
        req.auditTargets = [sweep.id];
        return reply.status(202).send(sweep);
      },
    });
    r.route({ ...ROUTES.listSweeps, handler: async (req) => ({ sweeps: await pinflow.retention.sweeps(req.query.limit ?? 20) }) });
    r.route({ ...ROUTES.getSweep, handler: async (req) => pinflow.retention.sweep(req.params.id) });
    r.route({ ...ROUTES.namespaceRetention, handler: async () => pinflow.retention.checkNamespace() });
    r.route({
      ...ROUTES.applyNamespaceRetention,
      handler: async (req) => {
        req.auditTargets = [pinflow.namespace];
        return pinflow.retention.applyNamespace();
      },
    });
    r.route({ ...ROUTES.setLegalHold, handler: async (req) => pinflow.retention.hold(req.params.id, who(req, req.body.by), req.body.reason ?? '') });
    r.route({
      ...ROUTES.clearLegalHold,
      handler: async (req) => {
        if (!(await pinflow.store.getRun(req.params.id))) throw new NotFoundError(ERROR_CODES.RUN_NOT_FOUND, `run ${JSON.stringify(req.params.id)} does not exist`, { runId: req.params.id });
        return pinflow.retention.release(req.params.id);
      },
    });

    r.route({
      ...ROUTES.health,
      handler: async (_req, reply) => {
        const h = await pinflow.health();
        return reply.status(h.ok ? 200 : 503).send(h);
      },
    });
    r.route({ ...ROUTES.codecEncode, handler: async (req) => runCodec(codec?.codec, 'encode', req.body.payloads) });
    r.route({ ...ROUTES.codecDecode, handler: async (req) => runCodec(codec?.codec, 'decode', req.body.payloads) });
    r.route({ ...ROUTES.openapi, handler: (_req, reply) => {
        void reply.send(app.swagger() as unknown as Record<string, unknown>);
      },
    });
    registered();
  });
  return app;
}
