/**
 * Access control of the HTTP API: API keys with scopes per tenant, the rate
 * limit per key, the reason required by destructive actions and the audit row
 * of every write action. All of it is driven by the `config` of the ROUTES
 * entries (client/api-schemas.ts, {@link RouteAccess}):
 *
 * - `config.scope`: the scope a key needs (`Authorization: Bearer pf_<id>_<secret>`).
 *   No key, or an unknown, revoked or malformed one: 401 UNAUTHENTICATED with
 *   `WWW-Authenticate: Bearer`. A key without the scope: 403 FORBIDDEN naming
 *   the scope needed and the scopes held.
 * - `config.public: true`: anyone may call it. Only `/health` and
 *   `/openapi.json` are, plus the routes outside ROUTES listed in
 *   {@link PUBLIC_PREFIXES} (`/docs`, `/metrics`).
 * - `config.authenticated: true`: any valid key, whatever its scopes (only
 *   `/whoami`: a key may always ask what it is). No key: 401 as above.
 * - A route with none of these is refused when it is registered: the API does not
 *   start (fail closed).
 * - `config.allTenants: true`: a key bound to one tenant gets 403 (the route
 *   reads or acts across tenants: bulk resolve, deploy check, reconcile).
 * - Every `/runs/:id…` route checks the run's tenant ({@link assertRunAccess}):
 *   a key of tenant A gets 404 RUN_NOT_FOUND for a run of tenant B, exactly as
 *   for a run that does not exist.
 * - `config.audit`: one audit row per request, written before the answer
 *   leaves (outcome accepted, denied, refused or failed), with the key id, the
 *   body's `by`, the run ids (the `:id` parameter or what the handler put in
 *   `request.auditRuns`), the tenant and the reason. `destructive`: a
 *   non-empty reason is required (400 REASON_REQUIRED naming the field).
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, NotFoundError, PinflowError } from '../graph/errors';
import { summarise, type RouteAccess, type Scope } from './api-schemas';
import type { AuditLog, AuditOutcome } from './audit';
import { hasScope, type ApiKeys, type Principal } from './keys';

declare module 'fastify' {
  interface FastifyContextConfig {
    scope?: Scope;
    public?: true;
    authenticated?: true;
    allTenants?: true;
    audit?: RouteAccess['audit'];
  }
  interface FastifyRequest {
    /** The verified key of this request (absent on public routes). */
    principal?: Principal;
    /** Run ids the action touched, for its audit row (default: the `:id` of a `/runs/:id…` route). */
    auditRuns?: string[];
    /** Target ids of the action, for its audit row (default: the `:id` or `:name` parameter). */
    auditTargets?: string[];
    /** The tenant the action was on, for its audit row (default: the key's tenant, or the run's). */
    auditTenant?: string;
  }
}

/** Routes outside ROUTES that anyone may call: the interactive reference and the Prometheus scrape. */
export const PUBLIC_PREFIXES = ['/docs', '/metrics'] as const;

export interface AccessOptions {
  keys: ApiKeys;
  audit: AuditLog;
  /** Requests per key per window. @default 1200 a minute */
  rateLimit?: { max: number; timeWindowMs: number };
  /** Logs a failed audit write (the action itself was already answered). */
  onAuditError?: (err: unknown) => void;
}

function isPublicUrl(url: string): boolean {
  return PUBLIC_PREFIXES.some((p) => url === p || url.startsWith(`${p}/`));
}

/** The scope a route needs, 'public', or 'authenticated' (any valid key); throws for a route that declares none (fail closed). */
export function routeAccess(route: { method: string | string[]; url: string; config?: RouteAccess }): Scope | 'public' | 'authenticated' {
  if (route.config?.public || isPublicUrl(route.url)) return 'public';
  if (route.config?.authenticated) return 'authenticated';
  if (route.config?.scope) return route.config.scope;
  throw new Error(`route ${String(route.method)} ${route.url} declares no config.scope (read, operate, publish or admin) and is not public: refusing to start`);
}

/**
 * The one per-run tenant check. A key bound to a tenant may act on a run only
 * if the run is of that tenant; otherwise, and when the run is not in the
 * projection, it gets 404 RUN_NOT_FOUND exactly as for a run that does not
 * exist. A key for every tenant is not checked here (the route answers as it
 * would). Routes under `/runs/:id` get it automatically; a route that names
 * runs elsewhere (a body listing run ids) calls it for each.
 */
export async function assertRunAccess(db: { query: ApiKeys['db']['query'] }, principal: Principal | undefined, runId: string): Promise<string | undefined> {
  if (!principal || principal.tenant === null) return undefined;
  const rows = await db.query<{ tenant: string }>({ text: 'SELECT tenant FROM runs WHERE id = $1', values: [runId] });
  if (rows[0]?.tenant !== principal.tenant) throw new NotFoundError(ERROR_CODES.RUN_NOT_FOUND, `run ${JSON.stringify(runId)} does not exist`, { runId });
  return principal.tenant;
}

/**
 * The tenant a list or read filters on. A key for every tenant: what was asked
 * (undefined: every tenant). A tenant key: its tenant when none was asked;
 * `null` when another tenant was asked, which the route answers as "nothing":
 * an empty list, or the not-found of a single item.
 */
export function readTenant(req: FastifyRequest, asked: string | undefined): string | undefined | null {
  const own = req.principal?.tenant ?? null;
  if (own === null) return asked;
  if (asked === undefined || asked === own) return own;
  return null;
}

/**
 * The tenant a write (start a run, submit an event) is for. A tenant key: its
 * tenant when none was given; another tenant is refused with 403 FORBIDDEN.
 */
export function writeTenant(req: FastifyRequest, given: string | undefined, field: string): string | undefined {
  const own = req.principal?.tenant ?? null;
  if (own === null || given === undefined || given === own) return own ?? given;
  throw new PinflowError(ERROR_CODES.FORBIDDEN, `this key is bound to tenant ${JSON.stringify(own)}; ${field} ${JSON.stringify(given)} is not allowed`, {
    field,
    received: given,
    allowed: own,
  });
}

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1] : '';
}

function outcomeOf(status: number): AuditOutcome {
  if (status < 400) return 'accepted';
  if (status === 401 || status === 403 || status === 429) return 'denied';
  return status >= 500 ? 'failed' : 'refused';
}

function field(v: unknown, name: string): unknown {
  return v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[name] : undefined;
}

/**
 * Body fields that carry business data (run input, skip output, event
 * payload, metadata, a batch's params): the audit row records their shape,
 * never their values, which may hold sensitive fields (the redaction rule:
 * no sensitive value in clear in the projection's database).
 */
const DATA_FIELDS = new Set(['input', 'output', 'payload', 'metadata', 'params']);

function shapeOf(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return `an array of ${v.length} items (values not recorded)`;
  if (typeof v === 'object') return `an object with ${Object.keys(v).length} keys (values not recorded)`;
  return `a ${typeof v} (value not recorded)`;
}

/** A short request summary for the audit row: parameters, query, and each body field summarised (data fields by shape only). */
function requestSummary(req: FastifyRequest): unknown {
  const body =
    req.body !== null && typeof req.body === 'object' && !Array.isArray(req.body)
      ? Object.fromEntries(Object.entries(req.body).map(([k, v]) => [k, DATA_FIELDS.has(k) ? shapeOf(v) : summarise(v)]))
      : summarise(req.body);
  return { params: req.params ?? null, query: req.query ?? null, body: body ?? null };
}

/** The reason of a request: `reasonField` of the body, else of the query. */
function reasonOf(req: FastifyRequest, name: string): { value: unknown; field: string } {
  const inBody = field(req.body, name);
  if (inBody !== undefined || req.routeOptions.schema?.body !== undefined) return { value: inBody, field: `body.${name}` };
  return { value: field(req.query, name), field: `query.${name}` };
}

/**
 * Installs the hooks. Call before any route is registered: routes declared
 * later without a scope make `ready()` / `listen()` fail.
 */
export function installAccess(app: FastifyInstance, opts: AccessOptions): void {
  const { keys, audit } = opts;
  app.addHook('onRoute', (route) => {
    routeAccess({ method: route.method, url: route.url, config: route.config as RouteAccess | undefined });
  });

  app.addHook('onRequest', async (req, reply) => {
    if (req.is404) return;
    const access = routeAccess({ method: req.method, url: req.routeOptions.url ?? req.url, config: req.routeOptions.config as RouteAccess });
    if (access === 'public') return;
    const token = bearer(req);
    if (token === undefined) {
      void reply.header('www-authenticate', 'Bearer realm="pinflow"');
      throw new PinflowError(ERROR_CODES.UNAUTHENTICATED, 'an API key is required: send `Authorization: Bearer pf_<id>_<secret>` (create one with `pinflow keys create`)', {
        field: 'headers.authorization',
        received: null,
        allowed: 'Bearer pf_<id>_<secret>',
      });
    }
    const principal = token ? await keys.verify(token) : undefined;
    if (!principal) {
      void reply.header('www-authenticate', 'Bearer realm="pinflow", error="invalid_token"');
      throw new PinflowError(ERROR_CODES.UNAUTHENTICATED, 'the API key is unknown, revoked or malformed', {
        field: 'headers.authorization',
        received: token ? `${token.slice(0, 20)}...` : '(no key after Bearer)',
        allowed: 'Bearer pf_<id>_<secret>, a key that is not revoked',
      });
    }
    req.principal = principal;
    if (access !== 'authenticated' && !hasScope(principal.scopes, access)) {
      throw new PinflowError(ERROR_CODES.FORBIDDEN, `this route needs the ${access} scope; key ${principal.keyId} holds ${principal.scopes.join(', ')}`, {
        needed: access,
        held: principal.scopes,
        keyId: principal.keyId,
      });
    }
    if (req.routeOptions.config.allTenants && principal.tenant !== null) {
      throw new PinflowError(ERROR_CODES.FORBIDDEN, `this route acts across tenants; key ${principal.keyId} is bound to tenant ${JSON.stringify(principal.tenant)}`, {
        needed: 'a key for every tenant',
        tenant: principal.tenant,
        keyId: principal.keyId,
      });
    }
  });

  // The rate limit per key (after the key is known: its route-level hook runs after the onRequest hook above).
  const limit = opts.rateLimit ?? { max: 1200, timeWindowMs: 60_000 };
  void app.register(rateLimit, {
    global: true,
    max: limit.max,
    timeWindow: limit.timeWindowMs,
    hook: 'onRequest',
    keyGenerator: (req) => req.principal?.keyId ?? `ip:${req.ip}`,
    // Public routes (no key) are not limited: probes and scrapes.
    allowList: (req) => req.principal === undefined,
    errorResponseBuilder: (req, ctx) =>
      new PinflowError(ERROR_CODES.RATE_LIMITED, `key ${req.principal?.keyId ?? '(none)'} is over its rate limit of ${ctx.max} requests per ${limit.timeWindowMs / 1000} s; retry in ${ctx.after}`, {
        keyId: req.principal?.keyId ?? null,
        allowed: `at most ${ctx.max} requests per ${limit.timeWindowMs / 1000} s`,
        retryAfterSeconds: Math.ceil(ctx.ttl / 1000),
      }),
  });

  // After validation: the run's tenant, and the reason of a destructive action.
  app.addHook('preHandler', async (req) => {
    const cfg = req.routeOptions.config as RouteAccess;
    const url = req.routeOptions.url ?? '';
    const runId = field(req.params, 'id');
    if (url.startsWith('/runs/:id') && typeof runId === 'string') {
      const tenant = await assertRunAccess(keys.db, req.principal, runId);
      if (tenant) req.auditTenant = tenant;
    }
    const d = cfg.audit?.destructive;
    if (d === true || (d === 'skip' && field(req.body, 'action') === 'skip')) {
      const r = reasonOf(req, cfg.audit?.reasonField ?? 'reason');
      if (typeof r.value !== 'string' || r.value.trim() === '') {
        throw new PinflowError(ERROR_CODES.REASON_REQUIRED, `${cfg.audit!.action} is destructive: ${r.field} must say why`, {
          field: r.field,
          received: r.value ?? null,
          allowed: 'a non-empty reason',
        });
      }
    }
  });

  app.addHook('onSend', async (req: FastifyRequest, reply: FastifyReply, payload) => {
    const a = (req.routeOptions.config as RouteAccess | undefined)?.audit;
    if (!a || req.is404) return payload;
    const params = (req.params ?? {}) as Record<string, unknown>;
    const paramId = typeof params.id === 'string' ? params.id : typeof params.name === 'string' ? params.name : undefined;
    const r = reasonOf(req, a.reasonField ?? 'reason').value;
    const by = field(req.body, 'by') ?? field(req.query, 'by');
    try {
      await audit.append({
        keyId: req.principal?.keyId ?? null,
        by: typeof by === 'string' ? by : null,
        action: a.action,
        method: req.method,
        route: req.routeOptions.url ?? req.url,
        targetKind: a.target ?? null,
        targetIds: req.auditTargets ?? (paramId !== undefined ? [paramId] : []),
        runIds: req.auditRuns ?? (a.target === 'run' && paramId !== undefined ? [paramId] : []),
        tenant: req.auditTenant ?? req.principal?.tenant ?? null,
        reason: typeof r === 'string' ? r : null,
        request: reply.statusCode === 401 ? null : requestSummary(req),
        outcome: outcomeOf(reply.statusCode),
        status: reply.statusCode,
      });
    } catch (err) {
      (opts.onAuditError ?? ((e: unknown) => req.log.error({ err: e }, 'audit write failed')))(err);
    }
    return payload;
  });
}
