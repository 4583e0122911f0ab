/**
 * The public surface as one set of zod schemas: one entry per operation
 * (params, query, body, responses), shared by the HTTP routes
 * (`client/http.ts`, through fastify-type-provider-zod), the `Pinflow` library
 * methods and the OpenAPI document (`GET /openapi.json`). A rule is written
 * once here and documented by construction.
 *
 * Also here: the request limits, the one recursive check every request goes
 * through (no NUL, no lone surrogate, bounded depth and key length), the
 * strict cursor codec, and the mapping of zod issues to pinflow's
 * `REQUEST_INVALID` shape (field, what was received, what is allowed).
 */
import { z } from 'zod';
import { decodeCursor } from '../projection/cursor';
import { MAX_LISTED_CORRECTIONS, RECONCILE_KINDS, type ReconcileKind } from './reconcile';
import { assertCleanJson, JSON_DEPTH_MAX, JSON_KEY_LENGTH_MAX } from '../graph/json-guard';
import { ERROR_CODES, InvalidRequestError, type ErrorCode } from '../graph/errors';
import { NAMESPACE_MARGIN_DAYS, RETENTION_MAX_DAYS, RETENTION_STATUSES, RETENTION_SUBJECTS, SWEEP_STATES } from './retention';
import {
  BATCH_ACTIONS,
  BATCH_ITEM_STATUSES,
  BATCH_STATES,
  DELIVERY_STATUSES,
  DELIVERY_VIAS,
  EVENT_SOURCES,
  EVENT_STATUSES,
  RUN_STATUSES,
  STALL_DECISION_ACTIONS,
  ATTENTION_REASONS,
  STALL_REASONS,
  STEP_COUNT_STATES,
  STEP_STATUSES,
  VERSION_HASH_PATTERN,
  WAIT_STATUSES,
} from '../graph/terminology';

// ---------------------------------------------------------------------------
// Limits

/** Request limits. Every one is checked before anything reaches Postgres or Temporal. */
export const LIMITS = {
  /** Largest request body, in bytes (Fastify `bodyLimit`; over it: 413 REQUEST_TOO_LARGE). */
  bodyBytes: 5 * 1024 * 1024,
  /** Deepest JSON nesting in a body, counted from the root (over it: 400 REQUEST_TOO_DEEP). Temporal refuses payloads nested ~100 deep. */
  jsonDepth: JSON_DEPTH_MAX,
  /** Longest object key anywhere in a body or query, in characters. */
  keyLength: JSON_KEY_LENGTH_MAX,
  /** Longest path parameter, in characters (Fastify `maxParamLength`; over it: 414 URL_TOO_LONG). */
  paramLength: 512,
  /** Longest query value or identifier field, in characters. */
  textLength: 1024,
  /** Longest `by` (who decided), in characters. */
  byLength: 256,
  /** Longest decision `reason` / `note`, in characters. */
  reasonLength: 4096,
  /** Largest run `input`, as JSON bytes (it travels in the run's start input; Temporal refuses payloads over 2 MB). */
  inputBytes: 512 * 1024,
  /** Largest run `metadata`, as JSON bytes. */
  metadataBytes: 64 * 1024,
  /** Largest skip `output`, as JSON bytes. */
  outputBytes: 512 * 1024,
  /** Most entries in a migration `mapping`. */
  mappingEntries: 1000,
} as const;

/** A run id: it becomes the Temporal workflow id. */
export const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/;
/** RUN_ID_PATTERN in words, for the error a bad run id gets. */
export const RUN_ID_RULE = 'a run id is 1 to 200 characters: letters, digits and . _ : - , starting with a letter or digit';
/** A metadata key the run list can filter on. */
export const METADATA_KEY_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
/** At most this many metadata keys per run-list filter. */
export const MAX_METADATA_FILTER_KEYS = 5;

/** HTTP status of each error code the API returns. A code without one is answered as 500 INTERNAL. */
export const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  GRAPH_INVALID: 422,
  DEFINITION_NAME_INVALID: 400,
  DEFINITION_NOT_FOUND: 404,
  VERSION_NOT_FOUND: 404,
  VERSION_REMOVED: 410,
  RUN_NOT_FOUND: 404,
  RUN_CLOSED: 409,
  RUN_NOT_PROJECTED: 503,
  NOT_FOUND: 404,
  RUN_ALREADY_EXISTS: 409,
  REQUEST_INVALID: 400,
  INPUT_INVALID: 422,
  CODEC_FAILED: 400,
  MALFORMED_JSON: 400,
  CURSOR_INVALID: 400,
  TEMPORAL_UNAVAILABLE: 503,
  DATABASE_UNAVAILABLE: 503,
  RUN_NOT_STALLED: 409,
  DECISION_REJECTED: 409,
  SKIP_OUTPUT_INVALID: 422,
  MIGRATION_REFUSED: 409,
  RERUN_POINT_INVALID: 422,
  RERUN_POINT_NOT_REACHED: 409,
  RERUN_INCOMPATIBLE: 409,
  HISTORY_UNREADABLE: 502,
  PAUSE_NOT_SUPPORTED: 409,
  CORRELATION_KEY_MISSING: 422,
  CORRELATION_KEY_INVALID: 422,
  EVENT_ID_CONFLICT: 409,
  EVENT_NOT_FOUND: 404,
  EVENT_INVALID: 400,
  RULE_INVALID: 400,
  RULE_DEFINED_IN_CODE: 409,
  STRING_INVALID: 400,
  REQUEST_TOO_DEEP: 400,
  REQUEST_TOO_LARGE: 413,
  CONTENT_TYPE_UNSUPPORTED: 415,
  URL_INVALID: 400,
  URL_TOO_LONG: 414,
  HEADERS_TOO_LARGE: 431,
  MANIFEST_INVALID: 400,
  REGEX_UNSAFE: 422,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  RATE_LIMITED: 429,
  REASON_REQUIRED: 400,
  KEY_NOT_FOUND: 404,
  BATCH_NOT_FOUND: 404,
  BATCH_STATE_CONFLICT: 409,
  RETENTION_POLICY_NOT_FOUND: 404,
  RETENTION_DEFAULT_REQUIRED: 409,
  RETENTION_SWEEP_NOT_FOUND: 404,
  RETENTION_SWEEP_RUNNING: 409,
  INTERNAL: 500,
};

// ---------------------------------------------------------------------------
// The one recursive check lives in graph/json-guard.ts (publish and ingress use it too).

/**
 * How deep a JSON text nests, scanned without parsing (so without recursion):
 * the index at which it exceeds `limit`, or -1. Strings are skipped, escapes
 * included.
 */
export function jsonTextTooDeep(text: string, limit: number = LIMITS.jsonDepth): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return i;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return -1;
}

// ---------------------------------------------------------------------------
// Cursors

// The codec lives with the queries that use it (projection/cursor.ts).

const CURSOR_ALLOWED = 'a nextCursor returned by this API';

function cursorSchema(timeKey: 's' | 'r', route: string) {
  return z
    .string()
    .superRefine((s, ctx) => {
      if (!decodeCursor(s, timeKey)) {
        ctx.addIssue({
          code: 'custom',
          message: `cursor ${JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s)} is not a cursor returned by ${route}`,
          params: { pinflowCode: ERROR_CODES.CURSOR_INVALID, allowed: CURSOR_ALLOWED },
        });
      }
    })
    .meta({ description: `Opaque: the \`nextCursor\` of the previous page of ${route}. Anything else is 400 CURSOR_INVALID.` });
}

/** Cursor of `GET /runs` / `listRuns`. */
export const runCursor = cursorSchema('s', 'GET /runs');
/** Cursor of `GET /events` / `events.listEvents`. */
export const eventCursor = cursorSchema('r', 'GET /events');

// ---------------------------------------------------------------------------
// Building blocks

const text = (max: number = LIMITS.textLength) => z.string().min(1).max(max);

/** Any JSON value of at most `maxBytes` as JSON. */
function jsonValue(maxBytes: number, description: string) {
  return z
    .unknown()
    .superRefine((v, ctx) => {
      let s: string | undefined;
      try {
        s = JSON.stringify(v);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'is not JSON', params: { allowed: 'a JSON value' } });
        return;
      }
      const bytes = s === undefined ? 0 : Buffer.byteLength(s);
      if (bytes > maxBytes) {
        ctx.addIssue({ code: 'custom', message: `is ${bytes} bytes as JSON, over the limit of ${maxBytes}`, params: { allowed: `at most ${maxBytes} bytes as JSON`, received: `${bytes} bytes` } });
      }
    })
    .meta({ description: `${description} Any JSON value of at most ${maxBytes} bytes.` });
}

const by = text(LIMITS.byLength).meta({ description: 'Who decides (a user or a service); recorded with the decision.' });
const reason = z.string().max(LIMITS.reasonLength);
const timestamp = z.string().meta({ format: 'date-time' });
const versionHash = z.string().regex(VERSION_HASH_PATTERN, 'must be a version hash (64 lowercase hex digits)');

export const nameParams = z.strictObject({ name: text(LIMITS.paramLength) });
export const hashParams = z.strictObject({ hash: text(LIMITS.paramLength) });
export const idParams = z.strictObject({ id: text(LIMITS.paramLength) });

// ---------------------------------------------------------------------------
// Responses (loose objects: a documented field is never dropped, an extra one never refused)

/**
 * An object that keeps fields it does not list (serialisation never drops a
 * field). Typed as the listed shape, so the library's interfaces (which have
 * no index signature) are assignable to it.
 */
function open<T extends z.ZodRawShape>(shape: T): z.ZodObject<T> {
  return z.looseObject(shape) as unknown as z.ZodObject<T>;
}

const runSummary = open({
  id: z.string(),
  definition: z.string(),
  version: z.string(),
  tenant: z.string(),
  status: z.enum(RUN_STATUSES),
  temporalRunId: z.string().nullable(),
  parentRunId: z.string().nullable(),
  parentStep: z.string().nullable(),
  stall: open({ id: z.string(), reason: z.string(), rpc: z.string().nullable(), stepInstance: z.string().nullable(), details: z.unknown(), since: z.string().nullable() }).nullable(),
  pause: open({ by: z.string(), reason: z.string().nullable(), since: z.string(), before: z.string().nullable() })
    .nullable()
    .optional()
    .meta({ description: 'Set while the run is PAUSED: who paused it, why, since when, and the top-level step it resumes at.' }),
  currentStep: z.string().nullable(),
  errorSummary: z.string().nullable(),
  startedAt: timestamp,
  updatedAt: timestamp,
  closedAt: timestamp.nullable(),
});

const waitRecord = open({
  runId: z.string(),
  waitId: z.string(),
  stepInstance: z.string(),
  tenant: z.string(),
  event: z.string(),
  correlationKey: z.string(),
  status: z.enum(WAIT_STATUSES),
});

const stepRow = open({
  stepInstance: z.string(),
  stepId: z.string(),
  stepType: z.string(),
  status: z.enum(STEP_STATUSES),
  input: z.unknown().optional(),
  output: z.unknown().optional(),
});

const eventRecord = open({
  tenant: z.string(),
  eventId: z.string(),
  name: z.string(),
  payload: z.unknown(),
  correlationKey: z.string().nullable(),
  keySource: z.enum(['explicit', 'rule']).nullable(),
  source: z.enum(EVENT_SOURCES),
  status: z.enum(EVENT_STATUSES),
  error: open({ code: z.string(), message: z.string() }).nullable(),
  attempts: z.number(),
  ttlMs: z.number().nullable().meta({ description: 'The time to live in ms (the event\'s, else its rule\'s default), or null.' }),
  expiresAt: timestamp.nullable().meta({ description: 'Until when the event stays BUFFERED if no wait took it.' }),
  receivedAt: timestamp,
  updatedAt: timestamp,
});

const deliveryRecord = open({
  runId: z.string(),
  waitId: z.string(),
  stepInstance: z.string().nullable(),
  via: z.enum(DELIVERY_VIAS),
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.number(),
  lastError: z.string().nullable(),
  waitStatus: z.enum(WAIT_STATUSES).nullable(),
  consumed: z.boolean(),
});

const eventDetail = eventRecord.extend({ deliveries: z.array(deliveryRecord) });

const ruleView = open({
  eventName: z.string(),
  expression: z.string(),
  ttlMs: z.number().nullable(),
  source: z.enum(['code', 'api']),
  updatedBy: z.string().nullable(),
  updatedAt: z.string().nullable(),
});

const publishResult = open({ definition: z.string(), version: z.string(), seq: z.number().int(), created: z.boolean() });

const health = open({
  ok: z.boolean(),
  retention: open({ namespace: open({ namespace: z.string(), days: z.number().nullable(), neededDays: z.number().nullable(), forever: z.boolean(), ok: z.boolean(), message: z.string() }) })
    .optional()
    .meta({ description: "The Temporal namespace's retention against what the retention policies need (GET /retention/namespace). Informative: it never makes `ok` false." }),
  attention: z.record(z.string(), z.number()).optional().meta({ description: 'Runs that need attention now, per reason (GET /attention). Informative: it never makes `ok` false.' }),
  temporal: open({ ok: z.boolean(), error: z.string().optional() }),
  database: open({ ok: z.boolean(), error: z.string().optional() }),
  worker: open({ polling: z.boolean(), pollers: z.number(), taskQueue: z.string(), error: z.string().optional() }),
  projection: open({
    queued: z.number().meta({ description: 'Projection writes waiting or in flight in the worker of this process.' }),
    oldestAgeMs: z.number().meta({ description: 'Age of the oldest of them, in milliseconds (0 when none).' }),
    dropped: z.number().meta({ description: 'Writes dropped because the queue was full, since start.' }),
    rejected: z.number().meta({ description: 'Writes the projection refused permanently (written without their payloads, or dropped), since start.' }),
    lastError: open({ at: z.string(), runId: z.string(), message: z.string() }).nullable(),
  })
    .optional()
    .meta({ description: 'The projection lag, when the worker runs in the API process (`npm start`). Informative: it never makes `ok` false.' }),
});

/** pinflow's one error shape, documented with the codes a route can answer with at that status. */
function errorResponse(codes: readonly ErrorCode[]) {
  return z
    .object({
      error: open({
        code: z.string().meta({ enum: [...codes] }),
        message: z.string(),
        details: z.unknown().optional(),
        errorId: z.string().optional().meta({ description: 'With INTERNAL only: the id under which the server logged the real error.' }),
      }),
    })
    .meta({ description: `Error codes: ${codes.join(', ')}` });
}

/** Codes every route can answer with (the one recursive check, schema validation, the framework's own refusals). */
const COMMON_CODES: ErrorCode[] = ['REQUEST_INVALID', 'STRING_INVALID', 'URL_INVALID', 'HEADERS_TOO_LARGE', 'INTERNAL'];
/** Every route but the public ones: no or a bad key, a missing scope or tenant, over the rate limit. */
const AUTH_CODES: ErrorCode[] = ['UNAUTHENTICATED', 'FORBIDDEN', 'RATE_LIMITED'];
const BODY_CODES: ErrorCode[] = ['MALFORMED_JSON', 'REQUEST_TOO_DEEP', 'REQUEST_TOO_LARGE', 'CONTENT_TYPE_UNSUPPORTED'];

/**
 * Error responses by status for a route that answers with `codes` (plus the
 * common ones, and `503 DATABASE_UNAVAILABLE` unless the route never reads
 * the database: `db: false`).
 */
function errorResponses(opts: { body?: boolean; params?: boolean; db?: false; public?: true }, ...codes: ErrorCode[]): Record<number, ReturnType<typeof errorResponse>> {
  const all = new Set<ErrorCode>([
    ...COMMON_CODES,
    ...(opts.public ? [] : AUTH_CODES),
    ...(opts.body ? BODY_CODES : []),
    ...(opts.params ? (['URL_TOO_LONG'] as ErrorCode[]) : []),
    ...(opts.db === false ? [] : (['DATABASE_UNAVAILABLE'] as ErrorCode[])),
    ...codes,
  ]);
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of all) {
    const status = STATUS_BY_CODE[code] ?? 500;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries([...byStatus].sort(([a], [b]) => a - b).map(([status, cs]) => [status, errorResponse(cs)]));
}

// ---------------------------------------------------------------------------
// Operations

export const startBody = z.strictObject({
  definition: text(128).optional().meta({ description: 'Start the latest version of this definition.' }),
  version: text(128).optional().meta({ description: 'Start exactly this version hash.' }),
  input: jsonValue(LIMITS.inputBytes, 'The run input.').optional(),
  tenant: text(128).optional().meta({ description: 'Default `default`.' }),
  runId: text(256).optional().meta({ description: `Becomes the Temporal workflow id (must match ${RUN_ID_PATTERN}). Default: \`<definition>-<uuid>\`.` }),
  ifExists: z
    .enum(['fail', 'return'])
    .optional()
    .meta({
      description:
        'When a run with this `runId` already exists: `fail` (default) answers 409 RUN_ALREADY_EXISTS; `return` answers 200 with that run (its definition, version at start and tenant) and `existing: true`, so a caller that retries a start is idempotent.',
    }),
  metadata: z
    .record(z.string().max(LIMITS.keyLength), z.unknown())
    .superRefine((m, ctx) => {
      const bytes = Buffer.byteLength(JSON.stringify(m) ?? '');
      if (bytes > LIMITS.metadataBytes) {
        ctx.addIssue({ code: 'custom', message: `is ${bytes} bytes as JSON, over the limit of ${LIMITS.metadataBytes}`, params: { allowed: `at most ${LIMITS.metadataBytes} bytes as JSON`, received: `${bytes} bytes` } });
      }
    })
    .optional()
    .meta({ description: `Free-form run metadata (at most ${LIMITS.metadataBytes} bytes as JSON); filter the run list with \`meta.<key>\`.` }),
});

/** What a date-time filter accepts, in words. */
const DATE_TIME_ALLOWED = 'an ISO 8601 date-time with a time zone, years 0001-9999 (e.g. 2026-01-31T09:00:00Z or 2026-01-31T10:00:00.000+01:00)';
const DATE_TIME_PATTERN = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(?:Z|[+-](\d{2}):(\d{2}))$/;

/** A date-time both JavaScript and Postgres read the same way (a real calendar day, no leap seconds). */
export function isDateTime(s: string): boolean {
  const m = DATE_TIME_PATTERN.exec(s);
  if (!m) return false;
  const [y, mo, d, h, mi, sec, oh, om] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  const days = [31, y! % 4 === 0 && (y! % 100 !== 0 || y! % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return y! >= 1 && mo! >= 1 && mo! <= 12 && d! >= 1 && d! <= days[mo! - 1]! && h! <= 23 && mi! <= 59 && sec! <= 59 && oh! <= 15 && om! <= 59;
}

const dateTime = (description: string) =>
  z
    .string()
    .superRefine((v, ctx) => {
      if (!isDateTime(v)) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v.slice(0, 80))} is not an ISO 8601 date-time`, params: { allowed: DATE_TIME_ALLOWED } });
    })
    .meta({ description });

/**
 * The run list's filter fields, unrefined (batch filters pick from it). The
 * pair rule (`step` and `stepState` together) is {@link stepFilterRule}.
 */
export const runFilterQuery = z.strictObject({
  status: z.enum(RUN_STATUSES).optional(),
  definition: text().optional(),
  version: text().optional(),
  tenant: text().optional(),
  attention: z.enum(ATTENTION_REASONS).optional().meta({ description: 'Runs that need attention for this reason now (see GET /attention).' }),
  startedAfter: dateTime('Runs started at or after this time (inclusive).').optional(),
  startedBefore: dateTime('Runs started before this time (exclusive).').optional(),
  q: text(256).optional().meta({ description: 'Runs whose id contains this text (case-insensitive), 1..256 characters.' }),
  stallRpc: text().optional().meta({ description: 'STALLED runs whose open stall is on this RPC.' }),
  stallReason: z.enum(STALL_REASONS).optional().meta({ description: 'STALLED runs whose open stall has this reason.' }),
  step: text().optional().meta({ description: 'With `stepState`: runs at or through this step id (see GET /versions/:hash/step-counts).' }),
  stepState: z
    .enum(STEP_COUNT_STATES)
    .optional()
    .meta({
      description:
        'With `step`: now at the step (`running`: an attempt RUNNING; `waiting`: an open wait; `stalled`: STALLED there), or through it (`passed`: an attempt COMPLETED; `failed`: an attempt FAILED, a stall excepted; `skipped`: completed by a skip decision).',
    }),
  cursor: runCursor.optional(),
  limit: z.coerce.number().int().min(1).max(500).optional().meta({ description: '1..500, default 50.' }),
});

/** `step` and `stepState` come together (both or neither). */
export function stepFilterRule(f: { step?: string | undefined; stepState?: string | undefined }, ctx: z.RefinementCtx): void {
  if (f.step !== undefined && f.stepState === undefined) {
    ctx.addIssue({ code: 'custom', path: ['stepState'], message: 'is required with step', params: { received: null, allowed: `one of ${STEP_COUNT_STATES.join(', ')}, together with step` } });
  }
  if (f.stepState !== undefined && f.step === undefined) {
    ctx.addIssue({ code: 'custom', path: ['step'], message: 'is required with stepState', params: { received: null, allowed: 'a step id of the version, together with stepState' } });
  }
}

const META_FILTER_NOTE = `Also \`meta.<key>=<value>\` (up to ${MAX_METADATA_FILTER_KEYS}, keys matching ${METADATA_KEY_PATTERN}): exact match on every given metadata key; values are strings.`;

export const listRunsQuery = runFilterQuery.superRefine(stepFilterRule).meta({ description: META_FILTER_NOTE });

/** `GET /runs/counts`: the run list's filter without status, cursor and limit. */
export const runCountsQuery = runFilterQuery.omit({ status: true, cursor: true, limit: true }).superRefine(stepFilterRule).meta({ description: META_FILTER_NOTE });

/** The library's `listRuns` options: the query's rules; `metadata` is checked by `validateMetadataFilter`. */
export const listRunsOptions = listRunsQuery.extend({ metadata: z.unknown().optional() });

/** The library's `countRuns` options: `GET /runs/counts`'s rules; `metadata` is checked by `validateMetadataFilter`. */
export const runCountsOptions = runCountsQuery.extend({ metadata: z.unknown().optional() });

export const decisionBody = z.strictObject({
  action: z.enum(STALL_DECISION_ACTIONS),
  by,
  reason: reason.optional(),
  output: jsonValue(LIMITS.outputBytes, 'With skip: the step output, validated against the pinned output contract.').optional(),
  stallId: text(256).optional(),
});

export const migrateBody = z.strictObject({
  targetVersion: versionHash,
  mapping: z
    .record(text(256), text(256))
    .refine((m) => Object.keys(m).length <= LIMITS.mappingEntries, { message: `has more than ${LIMITS.mappingEntries} entries`, params: { allowed: `at most ${LIMITS.mappingEntries} entries` } })
    .optional()
    .meta({ description: 'Old step id → new step id, for renamed steps.' }),
  by,
  reason: reason.optional(),
});

export const cancelBody = z.strictObject({ by, reason: reason.optional() });

const newRunId = text(256)
  .optional()
  .meta({ description: `The new run's id (must match ${RUN_ID_PATTERN}); a repeated request with the same id returns that run (\`created: false\`) instead of starting another. Default: \`<definition>-<uuid>\`.` });
const stepMapping = z
  .record(text(256), text(256))
  .refine((m) => Object.keys(m).length <= LIMITS.mappingEntries, { message: `has more than ${LIMITS.mappingEntries} entries`, params: { allowed: `at most ${LIMITS.mappingEntries} entries` } });

export const rerunBody = z.strictObject({
  fromStep: text(256).meta({ description: 'The top-level step to start at; the state the source run had just before it is read from its Temporal history.' }),
  occurrence: z.number().int().min(1).max(1_000_000).optional().meta({ description: 'Which time the source run reached the step (1-based). Default: the last.' }),
  targetVersion: versionHash.optional().meta({ description: 'Run another version of the same definition (checked before anything starts). Default: the version the source run was on at the step.' }),
  mapping: stepMapping.optional().meta({ description: 'With targetVersion: old step id → new step id, for renamed steps (as for migrate).' }),
  runId: newRunId,
  by,
  reason: reason.optional(),
});

export const replayBody = z.strictObject({
  input: jsonValue(LIMITS.inputBytes, 'An edited input, validated as a start input is. Default: the source run\'s original input, read from its Temporal history.').optional(),
  targetVersion: versionHash.optional().meta({ description: 'Run another version of the same definition. Default: the version the source run started on.' }),
  runId: newRunId,
  by,
  reason: reason.optional(),
});

const rerunResult = open({
  runId: z.string(),
  temporalRunId: z.string().nullable(),
  kind: z.enum(['rerun', 'replay']),
  sourceRunId: z.string(),
  fromStep: z.string().nullable(),
  version: z.string(),
  created: z.boolean(),
  temporalUiUrl: z.string(),
});
/** Pause or resume a run or a definition: who, and why. */
export const pauseBody = z.strictObject({ by, reason: reason.optional() });

export const bulkResolveBody = decisionBody.omit({ stallId: true }).extend({
  rpc: text(128),
  reason: z.enum(STALL_REASONS).optional(),
  note: reason.optional().meta({ description: 'Recorded as the decision reason.' }),
});

export const manifestBody = z.strictObject({
  contracts: z.record(
    text(128),
    z.strictObject({
      hash: z.string().regex(VERSION_HASH_PATTERN, 'must be a contract hash (64 lowercase hex digits)'),
      input: z.unknown().meta({ description: 'A JSON Schema (2020-12); only local `$ref`s (`#...`).' }),
      output: z.unknown().meta({ description: 'A JSON Schema (2020-12); only local `$ref`s (`#...`).' }),
    }),
  ),
});

export const eventBody = z.strictObject({
  tenant: z.string().optional(),
  name: z.string(),
  payload: z.unknown().optional(),
  eventId: z.string().optional(),
  correlationKey: z.union([z.string(), z.number(), z.null()]).optional(),
  ttl: z
    .union([z.number(), z.string(), z.null()])
    .optional()
    .meta({ description: "Time to live: ms, or a duration such as '30s', '5m', '2h', '1d' (at most PINFLOW_EVENT_TTL_MAX). While it runs, an event that matched no wait stays BUFFERED for the first wait that opens on its key." }),
});

export const listEventsQuery = z.strictObject({
  tenant: text().optional(),
  name: text().optional(),
  status: z.enum(EVENT_STATUSES).optional(),
  key: text().optional(),
  cursor: eventCursor.optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

export const eventQuery = z.strictObject({ tenant: text().default('default') });

export const listWaitsQuery = z.strictObject({
  tenant: text().optional(),
  event: text().optional(),
  key: text().optional(),
  runId: text().optional(),
  status: z.enum(WAIT_STATUSES).optional().meta({ description: 'Default OPEN.' }),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

export const ruleBody = z.strictObject({
  expression: z.string(),
  by,
  ttl: z
    .union([z.number(), z.string(), z.null()])
    .optional()
    .meta({ description: "The event name's default time to live: ms, or a duration such as '30s', '5m', '2h', '1d' (at most PINFLOW_EVENT_TTL_MAX)." }),
});

// ---------------------------------------------------------------------------
// Access: API keys, their scopes, and the audit log (client/auth.ts, client/audit.ts)

/** What a key may do. `admin` implies every scope; `operate` and `publish` each imply `read`. */
export const SCOPES = ['read', 'operate', 'publish', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** Outcome of an audited request: accepted (2xx), denied (401/403/429: no key, wrong scope or tenant), refused (other 4xx), failed (5xx). */
export const AUDIT_OUTCOMES = ['accepted', 'denied', 'refused', 'failed'] as const;

/**
 * What a ROUTES entry declares in `config`: the scope a key needs (or
 * `public: true`, for the few routes anyone may call, or `authenticated:
 * true`, for a route any valid key may call whatever its scopes), whether a key bound to
 * one tenant may call it at all (`allTenants: true`: no), and the audit row
 * it writes. `destructive`: a non-empty reason is required (`'skip'`: only
 * when the body's `action` is `skip`); the reason is read from
 * `reasonField` (default `reason`) of the body, else of the query.
 */
export interface RouteAccess {
  scope?: Scope;
  public?: true;
  /** Any valid key, whatever its scopes (`GET /whoami`): authenticated, no particular scope. */
  authenticated?: true;
  allTenants?: true;
  audit?: { action: string; target?: string; destructive?: true | 'skip'; reasonField?: string };
}

const keyView = open({
  id: z.string(),
  prefix: z.string().describe('`pf_<id>`: how the key starts; the secret is never stored'),
  scopes: z.array(z.enum(SCOPES)),
  tenant: z.string().nullable().describe('null: every tenant'),
  name: z.string(),
  createdBy: z.string(),
  createdAt: timestamp,
  revokedAt: timestamp.nullable(),
  lastUsedAt: timestamp.nullable(),
});

export const createKeyBody = z.strictObject({
  scopes: z.array(z.enum(SCOPES)).min(1).max(SCOPES.length),
  tenant: text(128).nullable().optional().meta({ description: 'Bind the key to this tenant; absent or null: every tenant. A tenant key holds only read and operate.' }),
  name: text(128),
  by,
  reason: reason.optional(),
});
export const revokeKeyQuery = z.strictObject({ by: text(LIMITS.byLength).optional(), reason: reason.optional() });
export const listKeysQuery = z.strictObject({ revoked: z.enum(['true', 'false']).optional().meta({ description: 'Include revoked keys. Default false.' }) });

const auditEntry = open({
  id: z.string(),
  at: timestamp,
  keyId: z.string().nullable(),
  by: z.string().nullable(),
  action: z.string(),
  method: z.string().nullable(),
  route: z.string().nullable(),
  targetKind: z.string().nullable(),
  targetIds: z.array(z.string()),
  runIds: z.array(z.string()),
  tenant: z.string().nullable(),
  reason: z.string().nullable(),
  request: z.unknown(),
  outcome: z.enum(AUDIT_OUTCOMES),
  status: z.number().int().nullable(),
});
export const listAuditQuery = z.strictObject({
  action: text().optional(),
  runId: text().optional(),
  keyId: text().optional(),
  outcome: z.enum(AUDIT_OUTCOMES).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  cursor: z
    .string()
    .superRefine((s, ctx) => {
      if (!/^[1-9][0-9]{0,17}$/.test(s)) ctx.addIssue({ code: 'custom', message: `cursor ${JSON.stringify(s.slice(0, 80))} is not a cursor returned by GET /audit`, params: { pinflowCode: ERROR_CODES.CURSOR_INVALID, allowed: CURSOR_ALLOWED } });
    })
    .optional()
    .meta({ description: 'Opaque: the `nextCursor` of the previous page. Anything else is 400 CURSOR_INVALID.' }),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

const empty = z.strictObject({});

// ---------------------------------------------------------------------------
// Batches (client/batches.ts)

/** Most runs one batch may select. */
export const BATCH_MAX_RUNS = 50_000;
/** Runs in a dry run's sample. */
export const BATCH_SAMPLE_SIZE = 20;

const BATCH_FILTER_FIELDS = 'status, definition, version, tenant, startedAfter, startedBefore, q, stallRpc, stallReason, step (with stepState), metadata';

/** A batch's run filter: the fields of `GET /runs` (not its cursor and limit); `metadata` as an object. At least one field. */
export const batchFilter = runFilterQuery
  .pick({ status: true, definition: true, version: true, tenant: true, startedAfter: true, startedBefore: true, q: true, stallRpc: true, stallReason: true, step: true, stepState: true })
  .extend({
    metadata: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
      .optional()
      .meta({ description: `Exact match on every given metadata key (at most ${MAX_METADATA_FILTER_KEYS}), as \`meta.<key>\` in GET /runs.` }),
  })
  .superRefine(stepFilterRule)
  .refine((f) => Object.values(f).some((v) => v !== undefined), {
    message: `an empty filter would select every run; name at least one of ${BATCH_FILTER_FIELDS}`,
    params: { allowed: `at least one of ${BATCH_FILTER_FIELDS}` },
  })
  .meta({ description: 'The runs to act on: the same filter as GET /runs. They are selected once, when the batch is created.' });

const batchReason = text(LIMITS.reasonLength).meta({ description: 'Why (required for batches: they act on many runs); recorded on the batch and on every decision it makes.' });

export const createBatchBody = z.strictObject({
  action: z.enum(BATCH_ACTIONS),
  filter: batchFilter,
  params: z
    .record(z.string(), z.unknown())
    .optional()
    .meta({ description: 'The action\'s parameters: skip `{ output }`, migrate `{ targetVersion, mapping? }`, rerun `{ fromStep, occurrence?, targetVersion?, mapping? }`, replay `{ input?, targetVersion? }`; none for cancel, retry, pause and resume.' }),
  dryRun: z.boolean().optional().meta({ description: 'Only count the selected runs and show a sample; nothing is created.' }),
  ratePerSecond: z.number().positive().max(1000).optional().meta({ description: 'Runs acted on per second (per API process). Default PINFLOW_BATCH_RATE.' }),
  concurrency: z.number().int().min(1).max(64).optional().meta({ description: 'Runs acted on at once (per API process). Default PINFLOW_BATCH_CONCURRENCY.' }),
  by,
  reason: batchReason,
});

// Version GC (client/version-gc.ts)

/** The default minimum age of a removable version (PINFLOW_VERSION_GC_MIN_AGE). */
export const DEFAULT_VERSION_GC_MIN_AGE = '30d';
/** A GC age: a whole number and a unit. */
export const GC_AGE_PATTERN = /^\d{1,9}(ms|s|m|h|d)$/;
export const GC_AGE_ALLOWED = 'a whole number and a unit (ms, s, m, h, d), e.g. 30d, 12h, 0s';

/** Why a version is kept. */
export const GC_KEEP_RULES = ['latest', 'openRuns', 'childReference', 'migrationTarget', 'tooYoung'] as const;
export type GcKeepRule = (typeof GC_KEEP_RULES)[number];

export const versionGcBody = z.strictObject({
  dryRun: z.boolean().optional().meta({ description: 'Only say what would be removed and what is kept, and why; nothing changes.' }),
  olderThan: z
    .string()
    .max(16)
    .regex(GC_AGE_PATTERN, `must be ${GC_AGE_ALLOWED}`)
    .optional()
    .meta({ description: `Minimum age since the version was last published: ${GC_AGE_ALLOWED}. Default PINFLOW_VERSION_GC_MIN_AGE (${DEFAULT_VERSION_GC_MIN_AGE}).` }),
  by: z.string().min(1).max(LIMITS.byLength).optional().meta({ description: 'Who removes (recorded on each tombstone). Default: the API key id.' }),
  reason: z.string().min(1).max(LIMITS.reasonLength).meta({ description: 'Why (required: the removal cannot be undone but by publishing the graph again); recorded on each tombstone.' }),
});

const gcVersion = {
  hash: z.string(),
  definitions: z.array(open({ definition: z.string(), seq: z.number().int() })),
  publishedAt: timestamp.describe('the newest publish of the version, under any definition'),
};
const gcKeep = open({
  rule: z.enum(GC_KEEP_RULES),
  message: z.string(),
  refs: z.array(z.string()).optional().describe('latest: the definitions; childReference: the versions whose child step pins it; migrationTarget: the batch ids'),
  projection: z.number().int().optional().describe('openRuns: open runs in the projection'),
  temporal: z.number().int().optional().describe('openRuns: Running executions in Temporal'),
});
export const versionGcResult = open({
  dryRun: z.boolean(),
  olderThan: z.string(),
  cutoff: timestamp.describe('versions published after this are too young'),
  candidates: z.array(open({ ...gcVersion, eligible: z.string() })).describe('what met every rule when the pass began (a dry run: what would be removed)'),
  removed: z.array(open({ ...gcVersion, removedAt: timestamp })).describe('what this pass removed (tombstones kept); empty for a dry run'),
  kept: z.array(open({ ...gcVersion, reasons: z.array(gcKeep) })).describe('every other version in the catalog, with each reason it stays'),
});

export const batchStateBody = z.strictObject({ by, reason: batchReason });

export const listBatchesQuery = z.strictObject({
  state: z.enum(BATCH_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional().meta({ description: '1..500, default 50.' }),
});

export const batchItemsQuery = z.strictObject({
  status: z.enum(BATCH_ITEM_STATUSES).optional(),
  after: z.coerce.number().int().min(0).optional().meta({ description: 'The `nextAfter` of the previous page.' }),
  limit: z.coerce.number().int().min(1).max(1000).optional().meta({ description: '1..1000, default 100.' }),
});

const reasonCount = open({ code: z.string(), count: z.number().int(), example: z.string().nullable() });

export const batchView = open({
  id: z.string(),
  action: z.enum(BATCH_ACTIONS),
  params: z.record(z.string(), z.unknown()),
  filter: z.record(z.string(), z.unknown()),
  by: z.string(),
  reason: z.string(),
  state: z.enum(BATCH_STATES),
  ratePerSecond: z.number(),
  concurrency: z.number().int(),
  progress: open({
    selected: z.number().int(),
    pending: z.number().int(),
    applying: z.number().int(),
    done: z.number().int(),
    skipped: z.number().int(),
    failed: z.number().int(),
  }).describe('selected = pending + applying + done + skipped + failed'),
  skippedByReason: z.array(reasonCount),
  failedByReason: z.array(reasonCount),
  createdAt: timestamp,
  updatedAt: timestamp,
  finishedAt: timestamp.nullable(),
  stateBy: z.string().nullable(),
  stateReason: z.string().nullable(),
});

const batchSampleRun = open({ runId: z.string(), status: z.enum(RUN_STATUSES), definition: z.string(), version: z.string(), tenant: z.string() });
export const batchDryRun = open({ dryRun: z.literal(true), action: z.enum(BATCH_ACTIONS), count: z.number().int(), sample: z.array(batchSampleRun) });

const batchItem = open({
  seq: z.number().int(),
  runId: z.string(),
  runStatus: z.string().describe('the run status when the batch was created'),
  status: z.enum(BATCH_ITEM_STATUSES),
  attempts: z.number().int(),
  code: z.string().nullable(),
  message: z.string().nullable(),
  result: z.unknown(),
  updatedAt: timestamp,
  finishedAt: timestamp.nullable(),
});

// ---------------------------------------------------------------------------
// Retention (client/retention.ts)

const retentionStatus = z.enum(RETENTION_STATUSES);
const retentionDays = z
  .number()
  .int()
  .min(1)
  .max(RETENTION_MAX_DAYS)
  .nullable()
  .meta({ description: `Days a closed run (or an event) is kept after it closed (was received), 1..${RETENTION_MAX_DAYS}; null keeps it forever.` });

const retentionPolicy = open({
  subject: z.enum(RETENTION_SUBJECTS),
  definition: z.string().nullable().describe('null: every definition'),
  status: retentionStatus.nullable().describe('null: every closed status'),
  days: z.number().int().nullable().describe('null: kept forever'),
  updatedBy: z.string(),
  updatedAt: timestamp,
});

export const setPolicyBody = z.strictObject({
  subject: z.enum(RETENTION_SUBJECTS).optional().meta({ description: '`runs` (default): closed runs; `events`: the event log and its deliveries (no definition, no status).' }),
  definition: text(128).nullable().optional().meta({ description: 'A published definition; absent or null: every definition.' }),
  status: retentionStatus.nullable().optional().meta({ description: 'A closed status; absent or null: every closed status.' }),
  days: retentionDays,
  by: by.optional(),
  reason: reason.optional(),
});

export const unsetPolicyQuery = z.strictObject({
  subject: z.enum(RETENTION_SUBJECTS).optional(),
  definition: text(128).optional(),
  status: retentionStatus.optional(),
  by: text(LIMITS.byLength).optional(),
  reason: reason.optional(),
});

const namespaceRetention = open({
  namespace: z.string(),
  days: z.number().nullable().describe("The namespace's retention of closed runs' histories, in days (null: could not be read)."),
  neededDays: z.number().nullable().describe(`The longest finite run policy + ${NAMESPACE_MARGIN_DAYS} day.`),
  forever: z.boolean().describe("A run policy keeps forever; Temporal's retention cannot."),
  ok: z.boolean(),
  message: z.string(),
  error: z.string().optional(),
});

const exemptCounts = open({ legalHold: z.number().int(), openChildren: z.number().int(), retain: z.number().int() }).describe('Due runs kept, by rule (a run is counted under the first that applies: legal hold, open children, metadata retain).');

export const retentionPreview = open({
  asOf: timestamp,
  runs: open({
    due: z.number().int(),
    exempt: exemptCounts,
    prunable: z.number().int().describe('due minus exempt: what a sweep now would delete'),
    groups: z.array(open({ definition: z.string(), status: retentionStatus, due: z.number().int(), exempt: z.number().int(), oldestClosedAt: timestamp, newestClosedAt: timestamp })),
  }),
  events: open({
    days: z.number().int().nullable(),
    due: z.number().int(),
    exempt: z.number().int().describe('kept: buffered, still routing or retried, or an open wait could pick it up by look-back'),
    deliveries: z.number().int(),
    oldestReceivedAt: timestamp.nullable(),
    newestReceivedAt: timestamp.nullable(),
  }),
  namespace: namespaceRetention.nullable(),
});

export const startSweepBody = z.strictObject({
  by: by.optional(),
  reason: reason.optional(),
  batchSize: z.number().int().min(1).max(10_000).optional().meta({ description: 'Runs (events) examined per batch, each its own transaction. Default PINFLOW_RETENTION_BATCH_SIZE (500).' }),
  pauseMs: z.number().int().min(0).max(60_000).optional().meta({ description: 'Pause between batches. Default PINFLOW_RETENTION_PAUSE_MS (100).' }),
});

export const sweepView = open({
  id: z.string(),
  state: z.enum(SWEEP_STATES),
  phase: z.enum(['runs', 'events', 'done']),
  by: z.string(),
  reason: z.string().nullable(),
  asOf: timestamp.describe('What is due was computed from this time and the policies as they were then (`policies`).'),
  policies: open({
    runs: z.array(open({ definition: z.string().nullable(), status: retentionStatus.nullable(), days: z.number().int().nullable() })),
    events: z.number().int().nullable(),
  }).describe('The rules as they were when the sweep started: a resumed sweep deletes by them.'),
  batchSize: z.number().int(),
  pauseMs: z.number().int(),
  progress: open({
    batches: z.number().int(),
    runsExamined: z.number().int(),
    runsDeleted: z.number().int(),
    stepsDeleted: z.number().int(),
    exempt: exemptCounts,
    eventsExamined: z.number().int(),
    eventsDeleted: z.number().int(),
    eventsExempt: z.number().int(),
    deliveriesDeleted: z.number().int(),
    lastRun: open({ closedAt: timestamp, runId: z.string() }).nullable().describe('The last run examined: the sweep resumes after it.'),
  }),
  error: z.string().nullable(),
  owner: z.string().nullable().describe('The process driving it (null once finished).'),
  startedAt: timestamp,
  updatedAt: timestamp,
  finishedAt: timestamp.nullable(),
  durationSeconds: z.number(),
});

export const listSweepsQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(500).optional().meta({ description: '1..500, default 20.' }) });

const legalHold = open({ runId: z.string(), by: z.string(), reason: z.string(), since: timestamp });
export const holdBody = z.strictObject({ by: by.optional(), reason: reason.optional().meta({ description: 'Why the run is held: required (400 REASON_REQUIRED without it).' }) });
export const releaseHoldQuery = z.strictObject({ by: text(LIMITS.byLength).optional(), reason: reason.optional() });

/**
 * Every route: method, path (Fastify syntax) and its schema. `http.ts`
 * registers one handler per entry; the OpenAPI document and the README's
 * route table list exactly these.
 */
/** A payload as the codec server protocol carries it: proto3 JSON, every bytes field base64. */
const base64 = z.string().max(LIMITS.bodyBytes).regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'must be base64');
export const codecPayloads = z.object({
  payloads: z
    .array(z.object({ metadata: z.record(z.string().max(256), base64).optional(), data: base64.optional() }))
    .max(1_000)
    .meta({ description: 'Payloads with base64 metadata values and data, as Temporal sends them to a codec server.' }),
});

/** A pause as the run holds it (FLAGS.PAUSE). */
const PAUSE_INFO = open({ by: z.string(), reason: z.string().optional(), since: z.string(), heldAt: z.string().optional() });
/** One open run of a paused or resumed definition: what happened to it. */
const PAUSE_RESULT = open({
  runId: z.string(),
  ok: z.boolean(),
  changed: z.boolean().optional().describe('true when this call paused (or resumed) it; false when it already was'),
  error: open({ code: z.string(), message: z.string() }).optional(),
});


// ---------------------------------------------------------------------------
// The operator console's reads (client/console.ts)

const outlineEdge = open({ from: z.string(), to: z.string(), kind: z.string(), label: z.string().nullable() });
const stateCounts = Object.fromEntries(STEP_COUNT_STATES.map((st) => [st, z.number().int()])) as Record<(typeof STEP_COUNT_STATES)[number], z.ZodNumber>;

export const stepCountsResponse = open({
  version: z.string(),
  definitions: z.array(open({ definition: z.string(), seq: z.number() })),
  totalRuns: z.number().int().describe('Runs pinned to the version now (of the key\'s tenant for a tenant key).'),
  openRuns: z.number().int().describe('Of those, RUNNING, STALLED or PAUSED.'),
  asOf: timestamp,
  steps: z.array(open({ stepId: z.string(), ...stateCounts })).describe('One entry per node of the outline, in outline order; each count is of RUNS (graph/terminology STEP_COUNT_STATES).'),
});

export const listStallsQuery = z.strictObject({
  definition: text().optional(),
  tenant: text().optional(),
  version: text().optional(),
  rpc: text().optional(),
  reason: z.enum(STALL_REASONS).optional(),
});

export const stallGroupsResponse = open({
  groups: z.array(
    open({
      definition: z.string(),
      version: z.string(),
      versionSeq: z.number().nullable(),
      rpc: z.string(),
      reason: z.string(),
      count: z.number().int(),
      oldestSince: timestamp,
      newestSince: timestamp,
      sampleRunIds: z.array(z.string()).describe('The oldest stalled runs of the group, at most 5.'),
    }),
  ),
  total: z.number().int().describe('Stalled runs in every group.'),
});

export const diffQuery = z.strictObject({
  from: versionHash.meta({ description: 'The version runs are pinned to now.' }),
  to: versionHash.meta({ description: 'The version to compare with.' }),
});

const fieldChanges = open({ added: z.array(z.string()), removed: z.array(z.string()), madeRequired: z.array(z.string()), madeOptional: z.array(z.string()), typeChanged: z.array(z.string()) });

export const diffResponse = open({
  definition: z.string(),
  from: open({ version: z.string(), seq: z.number() }),
  to: open({ version: z.string(), seq: z.number() }),
  steps: open({
    added: z.array(z.string()),
    removed: z.array(z.string()),
    changed: z.array(open({ stepId: z.string(), fields: z.array(z.string()) })),
    unchanged: z.array(z.string()),
  }),
  edges: open({ added: z.array(outlineEdge), removed: z.array(outlineEdge) }),
  contracts: z.array(open({ rpc: z.string(), change: z.enum(['added', 'removed', 'changed', 'unchanged']), input: fieldChanges, output: fieldChanges })),
  openRuns: open({
    total: z.number().int(),
    runs: z.array(
      open({
        runId: z.string(),
        status: z.string(),
        currentStep: z.string().nullable(),
        pastChanges: z.boolean(),
        migratable: z.boolean(),
        mapping: z.record(z.string(), z.string()).nullable(),
        problem: open({ code: z.string(), message: z.string() }).nullable(),
      }),
    ),
  }),
});

export const whoamiResponse = open({ keyId: z.string(), name: z.string(), scopes: z.array(z.enum(SCOPES)), tenant: z.string().nullable() });

export const ROUTES = {
  publish: {
    method: 'POST',
    url: '/definitions/:name/versions',
    config: { scope: 'publish', audit: { action: 'definition.publish', target: 'definition' } },
    schema: {
      summary: 'Publish a graph as a version of a definition',
      tags: ['catalog'],
      params: nameParams,
      body: z.unknown().meta({ description: 'The graph JSON. Validated on publish: 422 GRAPH_INVALID lists every issue.' }),
      response: { 200: publishResult, 201: publishResult, ...errorResponses({ body: true, params: true }, 'GRAPH_INVALID', 'DEFINITION_NAME_INVALID') },
    },
  },
  listDefinitions: {
    method: 'GET',
    url: '/definitions',
    config: { scope: 'read' },
    schema: {
      summary: 'List definitions',
      tags: ['catalog'],
      querystring: empty,
      response: {
        200: open({
          definitions: z.array(
            open({ name: z.string(), latestVersion: z.string(), latestSeq: z.number(), versionCount: z.number(), createdAt: timestamp, updatedAt: timestamp }),
          ),
        }),
        ...errorResponses({}),
      },
    },
  },
  listVersions: {
    method: 'GET',
    url: '/definitions/:name/versions',
    config: { scope: 'read' },
    schema: {
      summary: "List a definition's versions",
      tags: ['catalog'],
      params: nameParams,
      querystring: empty,
      response: {
        200: open({
          definition: z.string(),
          versions: z.array(
            open({
              hash: z.string(),
              seq: z.number(),
              publishedAt: timestamp,
              latest: z.boolean(),
              openRuns: z.number(),
              removed: open({ at: timestamp, by: z.string(), reason: z.string().nullable() })
                .nullable()
                .describe('set when the version GC removed the version: its graph is gone (GET /versions/:hash answers 410 VERSION_REMOVED), its number stays'),
            }),
          ),
        }),
        ...errorResponses({ params: true }, 'DEFINITION_NOT_FOUND'),
      },
    },
  },
  getVersion: {
    method: 'GET',
    url: '/versions/:hash',
    config: { scope: 'read' },
    schema: {
      summary: 'Read a version: its graph and pinned contracts',
      tags: ['catalog'],
      params: hashParams,
      querystring: empty,
      response: {
        200: open({
          hash: z.string(),
          graph: z.unknown(),
          contracts: z.record(z.string(), open({ hash: z.string(), input: z.unknown(), output: z.unknown() })),
          createdAt: timestamp,
          definitions: z.array(open({ definition: z.string(), seq: z.number() })),
          outline: open({
            entry: z.string(),
            nodes: z.array(open({ id: z.string(), type: z.string(), label: z.string(), parent: z.string().nullable(), branch: z.string().nullable(), entry: z.boolean(), ui: open({ x: z.number(), y: z.number() }).nullable() })),
            edges: z.array(open({ from: z.string(), to: z.string(), kind: z.string(), label: z.string().nullable() })),
          }).meta({ description: 'The graph as nodes (steps, nested ones with their `parent` forEach/parallel step) and edges (next, then, else, case, default, onError, onTimeout, entry of a body or branch).' }),
        }),
        ...errorResponses({ params: true }, 'VERSION_NOT_FOUND', 'VERSION_REMOVED'),
      },
    },
  },
  versionGc: {
    method: 'POST',
    url: '/versions/gc',
    config: { scope: 'admin', allTenants: true, audit: { action: 'version.gc', target: 'version', destructive: true } },
    schema: {
      summary: 'Remove the versions nothing needs from the catalog, keeping tombstones (or, with dryRun, say what would go and why the rest stays)',
      tags: ['catalog'],
      body: versionGcBody,
      response: { 200: versionGcResult, ...errorResponses({ body: true }, 'TEMPORAL_UNAVAILABLE', 'REASON_REQUIRED') },
    },
  },
  stepCounts: {
    method: 'GET',
    url: '/versions/:hash/step-counts',
    config: { scope: 'read' },
    schema: {
      summary: 'Runs of a version by step and state (now at a step, or through it)',
      tags: ['catalog'],
      params: hashParams,
      querystring: empty,
      response: { 200: stepCountsResponse, ...errorResponses({ params: true }, 'VERSION_NOT_FOUND', 'VERSION_REMOVED') },
    },
  },
  listStalls: {
    method: 'GET',
    url: '/stalls',
    config: { scope: 'read' },
    schema: {
      summary: 'Open stalls grouped by definition, version, RPC and reason, largest first',
      tags: ['operator'],
      querystring: listStallsQuery,
      response: { 200: stallGroupsResponse, ...errorResponses({}) },
    },
  },
  diffVersions: {
    method: 'GET',
    url: '/definitions/:name/diff',
    config: { scope: 'read' },
    schema: {
      summary: 'What changed between two versions of a definition, and which open runs of `from` could migrate',
      tags: ['catalog'],
      params: nameParams,
      querystring: diffQuery,
      response: { 200: diffResponse, ...errorResponses({ params: true }, 'DEFINITION_NOT_FOUND', 'VERSION_NOT_FOUND', 'VERSION_REMOVED'), 422: errorResponse(['REQUEST_INVALID']).meta({ description: 'from or to is a version of another definition (REQUEST_INVALID naming the field).' }) },
    },
  },
  whoami: {
    method: 'GET',
    url: '/whoami',
    config: { authenticated: true },
    schema: {
      summary: 'The API key of this request: its id, name, scopes and tenant',
      tags: ['access'],
      querystring: empty,
      response: { 200: whoamiResponse, ...errorResponses({ db: false }) },
    },
  },
  start: {
    method: 'POST',
    url: '/runs',
    config: { scope: 'operate', audit: { action: 'run.start', target: 'run' } },
    schema: {
      summary: 'Start a run pinned to one version',
      tags: ['runs'],
      body: startBody,
      response: {
        201: open({ runId: z.string(), temporalRunId: z.string(), definition: z.string(), version: z.string(), tenant: z.string(), temporalUiUrl: z.string() }),
        200: open({ runId: z.string(), temporalRunId: z.string(), definition: z.string(), version: z.string(), tenant: z.string(), temporalUiUrl: z.string(), existing: z.literal(true) }).meta({
          description: 'With `ifExists: "return"`: the run with this id already existed; nothing was started.',
        }),
        ...errorResponses({ body: true }, 'DEFINITION_NOT_FOUND', 'VERSION_NOT_FOUND', 'VERSION_REMOVED', 'RUN_ALREADY_EXISTS', 'INPUT_INVALID'),
      },
    },
  },
  listRuns: {
    method: 'GET',
    url: '/runs',
    config: { scope: 'read' },
    schema: {
      summary: 'List runs, newest first (keyset pages)',
      tags: ['runs'],
      querystring: listRunsQuery,
      response: {
        200: open({ runs: z.array(runSummary.extend({ temporalUiUrl: z.string() })), nextCursor: z.string().nullable() }),
        ...errorResponses({}, 'CURSOR_INVALID'),
      },
    },
  },
  runCounts: {
    method: 'GET',
    url: '/runs/counts',
    config: { scope: 'read' },
    schema: {
      summary: 'How many runs of the run list\'s filter are in each status',
      tags: ['runs'],
      querystring: runCountsQuery,
      response: {
        200: open({ counts: open(Object.fromEntries(RUN_STATUSES.map((st) => [st, z.number().int()])) as Record<(typeof RUN_STATUSES)[number], z.ZodNumber>), total: z.number().int() }),
        ...errorResponses({}),
      },
    },
  },
  getRun: {
    method: 'GET',
    url: '/runs/:id',
    config: { scope: 'read' },
    schema: {
      summary: 'A run with its steps, waits, decisions, lineage and Temporal UI link',
      tags: ['runs'],
      params: idParams,
      querystring: empty,
      response: {
        200: runSummary.extend({
          input: z.unknown(),
          output: z.unknown(),
          error: z.unknown(),
          metadata: z.record(z.string(), z.unknown()),
          steps: z.array(stepRow),
          children: z.array(runSummary),
          decisions: z.array(open({ action: z.string(), by: z.string() })),
          lineage: z.array(z.unknown()),
          origin: open({ kind: z.enum(['rerun', 'replay']), sourceRunId: z.string(), sourceVersion: z.string() })
            .nullable()
            .meta({ description: 'Set when this run is a rerun or replay of another run: the source run, its version, the step and occurrence it started at (rerun), who and why.' }),
          reruns: z
            .array(open({ runId: z.string(), kind: z.enum(['rerun', 'replay']), fromStep: z.string().nullable(), createdAt: z.string() }))
            .meta({ description: 'Reruns and replays started from this run (the first 100), with their status.' }),
          waits: z.array(waitRecord),
          attention: z.array(open({ reason: z.enum(ATTENTION_REASONS), detail: z.record(z.string(), z.unknown()), since: z.string() })).describe('Why the run needs attention now (client/attention.ts).'),
          legalHold: legalHold.nullable().describe('A legal hold keeps the run from retention sweeps (PUT /runs/:id/legal-hold).'),
          temporalUiUrl: z.string(),
        }),
        ...errorResponses({ params: true }, 'RUN_NOT_FOUND'),
      },
    },
  },
  decide: {
    method: 'POST',
    url: '/runs/:id/decisions',
    config: { scope: 'operate', audit: { action: 'run.decide', target: 'run', destructive: 'skip' } },
    schema: {
      summary: 'Resolve a stalled run: retry or skip',
      tags: ['operator'],
      params: idParams,
      body: decisionBody,
      response: {
        200: open({ stallId: z.string(), action: z.string() }),
        ...errorResponses({ body: true, params: true }, 'RUN_NOT_FOUND', 'RUN_CLOSED', 'RUN_NOT_STALLED', 'DECISION_REJECTED', 'SKIP_OUTPUT_INVALID', 'REASON_REQUIRED'),
      },
    },
  },
  migrate: {
    method: 'POST',
    url: '/runs/:id/migrate',
    config: { scope: 'operate', audit: { action: 'run.migrate', target: 'run', destructive: true } },
    schema: {
      summary: 'Migrate a stalled or waiting run to another version',
      tags: ['operator'],
      params: idParams,
      body: migrateBody,
      response: {
        200: open({ at: z.string(), carried: z.array(z.string()), dropped: z.array(z.string()) }),
        ...errorResponses({ body: true, params: true }, 'RUN_NOT_FOUND', 'RUN_CLOSED', 'VERSION_NOT_FOUND', 'VERSION_REMOVED', 'MIGRATION_REFUSED', 'TEMPORAL_UNAVAILABLE', 'REASON_REQUIRED'),
      },
    },
  },
  cancel: {
    method: 'POST',
    url: '/runs/:id/cancel',
    config: { scope: 'operate', audit: { action: 'run.cancel', target: 'run', destructive: true } },
    schema: {
      summary: 'Cancel a run in Temporal, then record the decision',
      tags: ['operator'],
      params: idParams,
      body: cancelBody,
      response: { 202: open({ runId: z.string(), cancellation: z.literal('requested') }), ...errorResponses({ body: true, params: true }, 'RUN_NOT_FOUND', 'RUN_CLOSED', 'RUN_NOT_PROJECTED', 'REASON_REQUIRED') },
    },
  },
  rerun: {
    method: 'POST',
    url: '/runs/:id/rerun',
    config: { scope: 'operate', audit: { action: 'run.rerun', target: 'run' } },
    schema: {
      summary: 'Start a new run at a step, seeded with the state the source run had just before it (read from its Temporal history)',
      tags: ['operator'],
      params: idParams,
      body: rerunBody,
      response: {
        201: rerunResult,
        200: rerunResult,
        ...errorResponses({ body: true, params: true }, 'RUN_NOT_FOUND', 'RUN_ALREADY_EXISTS', 'VERSION_NOT_FOUND', 'VERSION_REMOVED', 'RERUN_POINT_INVALID', 'RERUN_POINT_NOT_REACHED', 'RERUN_INCOMPATIBLE', 'HISTORY_UNREADABLE'),
      },
    },
  },
  replay: {
    method: 'POST',
    url: '/runs/:id/replay',
    config: { scope: 'operate', audit: { action: 'run.replay', target: 'run' } },
    schema: {
      summary: "Start a new run from the start with the source run's original input (from its Temporal history) or an edited one",
      tags: ['operator'],
      params: idParams,
      body: replayBody,
      response: {
        201: rerunResult,
        200: rerunResult,
        ...errorResponses({ body: true, params: true }, 'RUN_NOT_FOUND', 'RUN_ALREADY_EXISTS', 'VERSION_NOT_FOUND', 'VERSION_REMOVED', 'RERUN_INCOMPATIBLE', 'HISTORY_UNREADABLE'),
      },
    },
  },
  attention: {
    method: 'GET',
    url: '/attention',
    config: { scope: 'read', allTenants: true },
    schema: {
      summary: 'Runs that need attention: a count per reason',
      description: 'Written by the attention checker (every PINFLOW_ATTENTION_INTERVAL_MS in the API process). NO_WORKER counts the open runs it affects. List them with GET /runs?attention=<reason>.',
      tags: ['operator'],
      response: { 200: open({ counts: z.record(z.string(), z.number()) }), ...errorResponses({}) },
    },
  },
  pauseRun: {
    method: 'POST',
    url: '/runs/:id/pause',
    config: { scope: 'operate', audit: { action: 'run.pause', target: 'run' } },
    schema: {
      summary: 'Pause a run at its next top-level step boundary (idempotent)',
      description:
        'The run holds (PAUSED) at its next top-level step boundary until resumed or cancelled: a step inside a forEach or parallel, a stall or a wait finishes its top-level step first. A run started before 0.8.0 cannot be paused (409 PAUSE_NOT_SUPPORTED). Pausing a paused run answers 200 with `alreadyPaused: true`.',
      tags: ['operator'],
      params: idParams,
      body: pauseBody,
      response: {
        200: open({ runId: z.string(), alreadyPaused: z.boolean(), pause: PAUSE_INFO }),
        ...errorResponses({ body: true, params: true }, 'RUN_NOT_FOUND', 'RUN_CLOSED', 'PAUSE_NOT_SUPPORTED'),
      },
    },
  },
  resumeRun: {
    method: 'POST',
    url: '/runs/:id/resume',
    config: { scope: 'operate', audit: { action: 'run.resume', target: 'run' } },
    schema: {
      summary: 'Resume a paused run (idempotent)',
      description: 'Lifts a pending or held pause. Resuming a run that is not paused answers 200 with `wasPaused: false`.',
      tags: ['operator'],
      params: idParams,
      body: pauseBody,
      response: {
        200: open({ runId: z.string(), wasPaused: z.boolean(), pause: PAUSE_INFO.optional() }),
        ...errorResponses({ body: true, params: true }, 'RUN_NOT_FOUND', 'RUN_CLOSED'),
      },
    },
  },
  pauseDefinition: {
    method: 'POST',
    url: '/definitions/:name/pause',
    config: { scope: 'operate', allTenants: true, audit: { action: 'definition.pause', target: 'definition' } },
    schema: {
      summary: 'Pause a definition: its open runs pause, its new runs start paused (idempotent)',
      tags: ['operator'],
      params: nameParams,
      body: pauseBody,
      response: {
        200: open({ definition: z.string(), alreadyPaused: z.boolean(), pause: open({ by: z.string(), reason: z.string().nullable(), since: z.string() }), runs: z.array(PAUSE_RESULT) }),
        ...errorResponses({ body: true, params: true }, 'DEFINITION_NOT_FOUND'),
      },
    },
  },
  resumeDefinition: {
    method: 'POST',
    url: '/definitions/:name/resume',
    config: { scope: 'operate', allTenants: true, audit: { action: 'definition.resume', target: 'definition' } },
    schema: {
      summary: 'Resume a definition: new runs start normally, its paused open runs resume',
      tags: ['operator'],
      params: nameParams,
      body: pauseBody,
      response: {
        200: open({ definition: z.string(), wasPaused: z.boolean(), runs: z.array(PAUSE_RESULT) }),
        ...errorResponses({ body: true, params: true }, 'DEFINITION_NOT_FOUND'),
      },
    },
  },
  resolveStalled: {
    method: 'POST',
    url: '/stalls/resolve',
    config: { scope: 'operate', allTenants: true, audit: { action: 'stalls.resolve', target: 'run', destructive: 'skip', reasonField: 'note' } },
    schema: {
      summary: 'Bulk: resolve every run stalled on an RPC (and reason)',
      tags: ['operator'],
      body: bulkResolveBody,
      response: {
        200: open({
          results: z.array(
            open({
              runId: z.string(),
              ok: z.boolean(),
              stallId: z.string().optional(),
              action: z.string().optional(),
              error: open({ code: z.string(), message: z.string() }).optional(),
              skipped: z.boolean().optional().describe('the run closed (RUN_CLOSED) or vanished (RUN_NOT_FOUND) between the listing and the decision; passed over, not failed'),
              reason: z.string().optional().describe('why the run was skipped'),
            }),
          ),
          summary: open({ applied: z.number().int(), skipped: z.number().int(), failed: z.number().int() }).describe('how many results were applied, skipped (closed or gone meanwhile) and failed'),
        }),
        ...errorResponses({ body: true }, 'SKIP_OUTPUT_INVALID', 'REASON_REQUIRED'),
      },
    },
  },
  checkDeploy: {
    method: 'POST',
    url: '/deploy/check',
    config: { scope: 'read', allTenants: true },
    schema: {
      summary: 'Pre-deploy impact analysis: which open runs would stall under a contract manifest',
      tags: ['operator'],
      body: manifestBody,
      response: {
        200: open({
          checkedRuns: z.number(),
          liveRuns: z.number(),
          unknownPositionRuns: z.number(),
          unaffectedRuns: z.number().describe('runs whose pinned version calls no RPC the manifest removes or changes (and starts no child): safe, not asked'),
          durationMs: z.number(),
          wouldStall: z.number(),
          mayStall: z.number(),
          impacts: z.array(
            open({
              runId: z.string(),
              stepInstance: z.string(),
              rpc: z.string(),
              reason: z.string(),
              certain: z.boolean(),
              verdict: z.enum(['certain', 'possible']),
              position: z.enum(['live', 'unknown']),
              message: z.string(),
              evidence: open({ field: z.string().optional(), input: z.unknown().optional(), decidedBy: z.string().optional() }),
            }),
          ),
        }),
        ...errorResponses({ body: true }, 'MANIFEST_INVALID', 'REGEX_UNSAFE'),
      },
    },
  },
  reconcile: {
    method: 'POST',
    url: '/reconcile',
    config: { scope: 'operate', allTenants: true, audit: { action: 'projection.reconcile', target: 'projection' } },
    schema: {
      summary: 'One reconcile pass: close in the projection the open runs Temporal closed (terminated, cancelled, timed out, deleted); follow reset runs',
      tags: ['operator'],
      querystring: empty,
      response: {
        200: open({
          checked: z.number().int().describe('open runs of the projection compared with Temporal'),
          corrected: open(Object.fromEntries(RECONCILE_KINDS.map((k) => [k, z.number().int()])) as Record<ReconcileKind, z.ZodNumber>).describe(
            'corrections by kind: terminated, timedOut and notFound close the run TERMINATED; cancelled, completed, failed fill in a close the run did not write; followed: the row follows a reset run\'s new execution',
          ),
          errors: z.number().int().describe('runs that could not be compared or corrected; tried again next pass'),
          corrections: z
            .array(
              open({
                runId: z.string(),
                kind: z.enum(RECONCILE_KINDS),
                from: z.enum(RUN_STATUSES),
                to: z.enum(RUN_STATUSES),
                temporalRunId: z.string().nullable(),
                detail: z.string(),
              }),
            )
            .describe(`the corrections of this pass (at most ${MAX_LISTED_CORRECTIONS}; the counts are complete)`),
          durationMs: z.number(),
        }),
        ...errorResponses({}),
      },
    },
  },
  state: {
    method: 'GET',
    url: '/runs/:id/state',
    config: { scope: 'read' },
    schema: {
      summary: 'The live interpreter state (the pinflow.state query)',
      tags: ['runs'],
      params: idParams,
      querystring: empty,
      response: { 200: z.record(z.string(), z.unknown()), ...errorResponses({ params: true, db: false }, 'RUN_NOT_FOUND', 'RUN_CLOSED') },
    },
  },
  submitEvent: {
    method: 'POST',
    url: '/events',
    config: { scope: 'operate' },
    schema: {
      summary: 'Submit a business event (the HTTP door)',
      tags: ['events'],
      body: eventBody,
      response: {
        200: eventDetail.extend({ runIds: z.array(z.string()), duplicate: z.boolean() }),
        202: eventDetail.extend({ runIds: z.array(z.string()), duplicate: z.boolean() }),
        ...errorResponses({ body: true }, 'EVENT_INVALID', 'EVENT_ID_CONFLICT', 'CORRELATION_KEY_MISSING', 'CORRELATION_KEY_INVALID'),
      },
    },
  },
  listEvents: {
    method: 'GET',
    url: '/events',
    config: { scope: 'read' },
    schema: {
      summary: 'The event log, newest first',
      tags: ['events'],
      querystring: listEventsQuery,
      response: { 200: open({ events: z.array(eventRecord), nextCursor: z.string().nullable() }), ...errorResponses({}, 'CURSOR_INVALID') },
    },
  },
  getEvent: {
    method: 'GET',
    url: '/events/:id',
    config: { scope: 'read' },
    schema: {
      summary: 'One event: its resolved key and deliveries',
      tags: ['events'],
      params: idParams,
      querystring: eventQuery,
      response: { 200: eventDetail, ...errorResponses({ params: true }, 'EVENT_NOT_FOUND') },
    },
  },
  listWaits: {
    method: 'GET',
    url: '/waits',
    config: { scope: 'read' },
    schema: {
      summary: 'The correlation index: which runs wait on (tenant, event, key)',
      tags: ['events'],
      querystring: listWaitsQuery,
      response: { 200: open({ waits: z.array(waitRecord) }), ...errorResponses({}) },
    },
  },
  listRules: {
    method: 'GET',
    url: '/correlation-rules',
    config: { scope: 'read' },
    schema: {
      summary: 'Correlation rules (code rules first)',
      tags: ['events'],
      querystring: empty,
      response: { 200: open({ rules: z.array(ruleView) }), ...errorResponses({}) },
    },
  },
  putRule: {
    method: 'PUT',
    url: '/correlation-rules/:name',
    config: { scope: 'publish', audit: { action: 'rule.put', target: 'rule' } },
    schema: {
      summary: "Set an event name's correlation rule",
      tags: ['events'],
      params: nameParams,
      body: ruleBody,
      response: { 200: ruleView, ...errorResponses({ body: true, params: true }, 'RULE_INVALID', 'RULE_DEFINED_IN_CODE') },
    },
  },
  deleteRule: {
    method: 'DELETE',
    url: '/correlation-rules/:name',
    config: { scope: 'publish', audit: { action: 'rule.delete', target: 'rule' } },
    schema: {
      summary: "Delete an event name's correlation rule",
      tags: ['events'],
      params: nameParams,
      querystring: empty,
      response: { 204: z.null().meta({ description: 'Deleted; no body.' }), ...errorResponses({ params: true }, 'NOT_FOUND', 'RULE_DEFINED_IN_CODE') },
    },
  },
  createKey: {
    method: 'POST',
    url: '/keys',
    config: { scope: 'admin', audit: { action: 'key.create', target: 'key' } },
    schema: {
      summary: 'Create an API key; its secret is in this answer only',
      tags: ['access'],
      body: createKeyBody,
      response: { 201: keyView.extend({ key: z.string().describe('`pf_<id>_<secret>`, shown once: send it as `Authorization: Bearer <key>`') }), ...errorResponses({ body: true }) },
    },
  },
  listKeys: {
    method: 'GET',
    url: '/keys',
    config: { scope: 'admin' },
    schema: {
      summary: 'API keys (never their secrets)',
      tags: ['access'],
      querystring: listKeysQuery,
      response: { 200: open({ keys: z.array(keyView) }), ...errorResponses({}) },
    },
  },
  revokeKey: {
    method: 'DELETE',
    url: '/keys/:id',
    config: { scope: 'admin', audit: { action: 'key.revoke', target: 'key', destructive: true } },
    schema: {
      summary: 'Revoke an API key (a reason is required)',
      tags: ['access'],
      params: idParams,
      querystring: revokeKeyQuery,
      response: { 200: keyView, ...errorResponses({ params: true }, 'KEY_NOT_FOUND', 'REASON_REQUIRED') },
    },
  },
  listAudit: {
    method: 'GET',
    url: '/audit',
    config: { scope: 'admin' },
    schema: {
      summary: 'The audit log, newest first (keyset pages)',
      tags: ['access'],
      querystring: listAuditQuery,
      response: { 200: open({ entries: z.array(auditEntry), nextCursor: z.string().nullable() }), ...errorResponses({}) },
    },
  },
  createBatch: {
    method: 'POST',
    url: '/batches',
    config: { scope: 'operate', allTenants: true, audit: { action: 'batch.create', target: 'batch', destructive: true } },
    schema: {
      summary: 'Act on every run a filter selects, as a durable batch (or a dry run: the count and a sample)',
      tags: ['batches'],
      body: createBatchBody,
      response: {
        201: batchView,
        200: batchDryRun.meta({ description: 'With `dryRun: true`: how many runs the filter selects and the first 20; nothing was created.' }),
        ...errorResponses({ body: true }, 'SKIP_OUTPUT_INVALID', 'VERSION_NOT_FOUND', 'VERSION_REMOVED', 'CURSOR_INVALID'),
      },
    },
  },
  listBatches: {
    method: 'GET',
    url: '/batches',
    config: { scope: 'read', allTenants: true },
    schema: {
      summary: 'Batches, newest first',
      tags: ['batches'],
      querystring: listBatchesQuery,
      response: { 200: open({ batches: z.array(batchView) }), ...errorResponses({}) },
    },
  },
  getBatch: {
    method: 'GET',
    url: '/batches/:id',
    config: { scope: 'read', allTenants: true },
    schema: {
      summary: "A batch's progress: selected, done, skipped and failed with reasons, state, timestamps",
      tags: ['batches'],
      params: idParams,
      querystring: empty,
      response: { 200: batchView, ...errorResponses({ params: true }, 'BATCH_NOT_FOUND') },
    },
  },
  listBatchItems: {
    method: 'GET',
    url: '/batches/:id/items',
    config: { scope: 'read', allTenants: true },
    schema: {
      summary: "A batch's items (one per selected run), in selection order",
      tags: ['batches'],
      params: idParams,
      querystring: batchItemsQuery,
      response: { 200: open({ items: z.array(batchItem), nextAfter: z.number().int().nullable() }), ...errorResponses({ params: true }, 'BATCH_NOT_FOUND') },
    },
  },
  pauseBatch: {
    method: 'POST',
    url: '/batches/:id/pause',
    config: { scope: 'operate', allTenants: true, audit: { action: 'batch.pause', target: 'batch', destructive: true } },
    schema: {
      summary: 'Pause a running batch: no further run is acted on until it is resumed',
      tags: ['batches'],
      params: idParams,
      body: batchStateBody,
      response: { 200: batchView, ...errorResponses({ body: true, params: true }, 'BATCH_NOT_FOUND', 'BATCH_STATE_CONFLICT') },
    },
  },
  resumeBatch: {
    method: 'POST',
    url: '/batches/:id/resume',
    config: { scope: 'operate', allTenants: true, audit: { action: 'batch.resume', target: 'batch', destructive: true } },
    schema: {
      summary: 'Resume a paused batch where it stopped',
      tags: ['batches'],
      params: idParams,
      body: batchStateBody,
      response: { 200: batchView, ...errorResponses({ body: true, params: true }, 'BATCH_NOT_FOUND', 'BATCH_STATE_CONFLICT') },
    },
  },
  cancelBatch: {
    method: 'POST',
    url: '/batches/:id/cancel',
    config: { scope: 'operate', allTenants: true, audit: { action: 'batch.cancel', target: 'batch', destructive: true } },
    schema: {
      summary: 'Cancel a batch: the runs not yet acted on are skipped ("batch cancelled")',
      tags: ['batches'],
      params: idParams,
      body: batchStateBody,
      response: { 200: batchView, ...errorResponses({ body: true, params: true }, 'BATCH_NOT_FOUND', 'BATCH_STATE_CONFLICT') },
    },
  },
  retentionPolicies: {
    method: 'GET',
    url: '/retention/policies',
    config: { scope: 'read' },
    schema: {
      summary: 'Retention policies: closed runs per definition and status, the global default, and the event log',
      tags: ['retention'],
      querystring: empty,
      response: { 200: open({ policies: z.array(retentionPolicy), namespace: namespaceRetention }), ...errorResponses({}) },
    },
  },
  setRetentionPolicy: {
    method: 'PUT',
    url: '/retention/policies',
    config: { scope: 'admin', audit: { action: 'retention.policy.set', target: 'retention' } },
    schema: {
      summary: 'Set one retention rule (by definition and/or closed status, or the default; or the event log)',
      tags: ['retention'],
      body: setPolicyBody,
      response: { 200: retentionPolicy, ...errorResponses({ body: true }, 'DEFINITION_NOT_FOUND') },
    },
  },
  unsetRetentionPolicy: {
    method: 'DELETE',
    url: '/retention/policies',
    config: { scope: 'admin', audit: { action: 'retention.policy.unset', target: 'retention' } },
    schema: {
      summary: 'Remove one retention rule: the next less specific rule applies',
      tags: ['retention'],
      querystring: unsetPolicyQuery,
      response: { 200: retentionPolicy, ...errorResponses({}, 'RETENTION_POLICY_NOT_FOUND', 'RETENTION_DEFAULT_REQUIRED') },
    },
  },
  retentionPreview: {
    method: 'GET',
    url: '/retention/preview',
    config: { scope: 'read', allTenants: true },
    schema: {
      summary: 'What a sweep would delete now: due runs per definition and status, exemptions by rule, due events, the namespace check',
      tags: ['retention'],
      querystring: empty,
      response: { 200: retentionPreview, ...errorResponses({}) },
    },
  },
  startSweep: {
    method: 'POST',
    url: '/retention/sweeps',
    config: { scope: 'admin', audit: { action: 'retention.sweep.start', target: 'retention' } },
    schema: {
      summary: 'Start a retention sweep now (in the background, in small batches); one at a time',
      tags: ['retention'],
      body: startSweepBody,
      response: { 202: sweepView, ...errorResponses({ body: true }, 'RETENTION_SWEEP_RUNNING') },
    },
  },
  listSweeps: {
    method: 'GET',
    url: '/retention/sweeps',
    config: { scope: 'read', allTenants: true },
    schema: {
      summary: 'Retention sweeps, newest first, with their progress and totals',
      tags: ['retention'],
      querystring: listSweepsQuery,
      response: { 200: open({ sweeps: z.array(sweepView) }), ...errorResponses({}) },
    },
  },
  getSweep: {
    method: 'GET',
    url: '/retention/sweeps/:id',
    config: { scope: 'read', allTenants: true },
    schema: {
      summary: "A retention sweep's state, progress and totals",
      tags: ['retention'],
      params: idParams,
      querystring: empty,
      response: { 200: sweepView, ...errorResponses({ params: true }, 'RETENTION_SWEEP_NOT_FOUND') },
    },
  },
  namespaceRetention: {
    method: 'GET',
    url: '/retention/namespace',
    config: { scope: 'read' },
    schema: {
      summary: "The Temporal namespace's retention against what the retention policies need",
      tags: ['retention'],
      querystring: empty,
      response: { 200: namespaceRetention, ...errorResponses({}) },
    },
  },
  applyNamespaceRetention: {
    method: 'POST',
    url: '/retention/namespace',
    config: { scope: 'admin', audit: { action: 'retention.namespace.apply', target: 'namespace' } },
    schema: {
      summary: "Set the Temporal namespace's retention to what the policies need (the longest finite run policy + 1 day)",
      tags: ['retention'],
      body: z.strictObject({ by: by.optional(), reason: reason.optional() }),
      response: { 200: namespaceRetention.extend({ previousDays: z.number().nullable() }), ...errorResponses({ body: true }, 'RETENTION_DEFAULT_REQUIRED', 'TEMPORAL_UNAVAILABLE') },
    },
  },
  setLegalHold: {
    method: 'PUT',
    url: '/runs/:id/legal-hold',
    config: { scope: 'operate', audit: { action: 'run.legal-hold.set', target: 'run', destructive: true } },
    schema: {
      summary: 'Place a legal hold on a run: retention never prunes it while the hold lasts',
      tags: ['retention'],
      params: idParams,
      body: holdBody,
      response: { 200: legalHold, ...errorResponses({ body: true, params: true }, 'RUN_NOT_FOUND', 'REASON_REQUIRED') },
    },
  },
  clearLegalHold: {
    method: 'DELETE',
    url: '/runs/:id/legal-hold',
    config: { scope: 'operate', audit: { action: 'run.legal-hold.clear', target: 'run', destructive: true } },
    schema: {
      summary: "Clear a run's legal hold (query `reason` required)",
      tags: ['retention'],
      params: idParams,
      querystring: releaseHoldQuery,
      response: { 200: open({ runId: z.string(), held: z.literal(false), released: legalHold.nullable() }), ...errorResponses({ params: true }, 'RUN_NOT_FOUND', 'REASON_REQUIRED') },
    },
  },
  health: {
    method: 'GET',
    url: '/health',
    config: { public: true },
    schema: {
      summary: 'Temporal and the database reachable, and a worker polling the task queue',
      tags: ['system'],
      querystring: empty,
      response: { 200: health, 503: health, ...errorResponses({ db: false, public: true }) },
    },
  },
  codecEncode: {
    method: 'POST',
    url: '/codec/encode',
    // Payloads of every tenant pass through it: a key bound to one tenant may not use it.
    config: { scope: 'read', allTenants: true },
    schema: {
      summary: "Encrypt payloads with the current key (Temporal's codec server protocol, for the Temporal UI and CLI)",
      description: 'On only when an encryption key is configured (PINFLOW_ENCRYPTION_KEY). CORS allows the origins in PINFLOW_CODEC_CORS_ORIGINS.',
      tags: ['codec'],
      body: codecPayloads,
      response: { 200: codecPayloads, ...errorResponses({ body: true, db: false }, 'CODEC_FAILED') },
    },
  },
  codecDecode: {
    method: 'POST',
    url: '/codec/decode',
    // Payloads of every tenant pass through it: a key bound to one tenant may not use it.
    config: { scope: 'read', allTenants: true },
    schema: {
      summary: "Decrypt payloads (Temporal's codec server protocol): the Temporal UI shows a run's real inputs and results",
      description: 'Payloads not encrypted by pinflow pass through unchanged; one naming a key id this process does not hold is refused with CODEC_FAILED.',
      tags: ['codec'],
      body: codecPayloads,
      response: { 200: codecPayloads, ...errorResponses({ body: true, db: false }, 'CODEC_FAILED') },
    },
  },
  openapi: {
    method: 'GET',
    url: '/openapi.json',
    config: { public: true },
    schema: {
      summary: 'This OpenAPI 3.1 document',
      tags: ['system'],
      querystring: empty,
      response: { 200: z.record(z.string(), z.unknown()), ...errorResponses({ db: false, public: true }) },
    },
  },
} as const;

// ---------------------------------------------------------------------------
// Issues → pinflow's REQUEST_INVALID shape

/** One refused field: where, why, what was received and what is allowed. */
export interface RequestIssue {
  field: string;
  message: string;
  received?: unknown;
  allowed?: string;
}

/** The parts of a zod issue the mapping uses (also what fastify-type-provider-zod passes on). */
export interface IssueLike {
  code: string;
  path: ReadonlyArray<PropertyKey>;
  message: string;
  keys?: string[];
  values?: unknown[];
  expected?: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
  origin?: string;
  format?: string;
  pattern?: string;
  params?: Record<string, unknown>;
}

function allowedOf(i: IssueLike): string | undefined {
  if (i.params && typeof i.params.allowed === 'string') return i.params.allowed;
  const unit = i.origin === 'string' ? ' characters' : i.origin === 'array' ? ' items' : i.origin === 'object' || i.origin === 'record' ? ' entries' : '';
  switch (i.code) {
    case 'invalid_type':
      return i.expected ? `a value of type ${i.expected}` : undefined;
    case 'invalid_value':
      return i.values ? `one of ${i.values.map((v) => JSON.stringify(v)).join(', ')}` : undefined;
    case 'too_small':
      return i.minimum !== undefined ? `at least ${String(i.minimum)}${unit}` : undefined;
    case 'too_big':
      return i.maximum !== undefined ? `at most ${String(i.maximum)}${unit}` : undefined;
    case 'invalid_format':
      return i.pattern ? `a string matching ${i.pattern}` : i.format ? `a ${i.format} string` : undefined;
    case 'unrecognized_keys':
      return 'only the documented fields';
    default:
      return undefined;
  }
}

/** A short, JSON-safe picture of a received value (never a whole 2 MB string). */
export function summarise(v: unknown): unknown {
  if (typeof v === 'string') return v.length > 120 ? `${v.slice(0, 100)}... (${v.length} characters)` : v;
  if (v === null || typeof v !== 'object') return v === undefined ? null : v;
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    return Array.isArray(v) ? 'an array' : 'an object';
  }
  if (s === undefined || s.length > 200) return Array.isArray(v) ? `an array of ${v.length} items` : `an object with ${Object.keys(v).length} keys`;
  return v;
}

function valueAt(data: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v = data;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k as string];
  }
  return v;
}

/**
 * Zod issues as pinflow's error: `REQUEST_INVALID` (or the code an issue
 * carries, e.g. `CURSOR_INVALID`) with a message naming every field and
 * `details.issues` (field, message, received, allowed).
 */
export function requestInvalid(issues: readonly IssueLike[], where: string, data: unknown): InvalidRequestError {
  const mapped: RequestIssue[] = issues.map((i) => {
    const field = [where, ...i.path.map(String)].join('.');
    const message = i.code === 'unrecognized_keys' && i.keys ? `unknown field(s) ${i.keys.join(', ')}` : i.message;
    const received = i.code === 'unrecognized_keys' ? i.keys : i.params && 'received' in i.params ? i.params.received : summarise(valueAt(data, i.path));
    const allowed = allowedOf(i);
    return { field, message, received: received === undefined ? null : received, ...(allowed ? { allowed } : {}) };
  });
  const special = issues.map((i) => i.params?.pinflowCode).find((c): c is ErrorCode => typeof c === 'string');
  return new InvalidRequestError(special ?? ERROR_CODES.REQUEST_INVALID, `invalid request ${where}: ${mapped.map((i) => `${i.field}: ${i.message}`).join('; ')}`, { issues: mapped });
}

/**
 * The library door's check: the one recursive check, then the operation's
 * schema, throwing the same errors the HTTP API answers with.
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  assertCleanJson(value, where);
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw requestInvalid(r.error.issues as unknown as IssueLike[], where, value);
}
