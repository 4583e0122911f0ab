/**
 * The only module that reads `process.env`. Everything else receives a
 * resolved {@link PinflowConfig}. Validated with zod so a typo in a port or URL
 * fails at start with the variable's name, not later with a socket error.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import { durationMs } from '../graph/schema';
import { DEFAULT_RUN_LIMITS, RUN_LIMIT_CAPS } from '../graph/limits';
import { SEARCHABLE_METADATA_KEY, SEARCHABLE_METADATA_MAX } from '../graph/terminology';
import { parseKey, parseOldKeys, type EncryptionKeys } from '../codec/encryption';

/**
 * PINFLOW_SEARCHABLE_METADATA: comma-separated metadata keys, each a Keyword
 * search attribute `PinflowMeta_<key>` set at start. Bounded: each one is a
 * search attribute of the namespace (servers allow a few dozen).
 */
const searchableMetadata = z
  .string()
  .default('')
  .transform((v, ctx) => {
    const keys = v
      .split(',')
      .map((k) => k.trim())
      .filter((k) => k.length > 0);
    for (const k of keys) {
      if (!SEARCHABLE_METADATA_KEY.test(k)) ctx.addIssue({ code: 'custom', message: `metadata key ${JSON.stringify(k)} must match ${SEARCHABLE_METADATA_KEY}` });
    }
    if (new Set(keys).size !== keys.length) ctx.addIssue({ code: 'custom', message: 'a metadata key is listed twice' });
    if (keys.length > SEARCHABLE_METADATA_MAX) ctx.addIssue({ code: 'custom', message: `at most ${SEARCHABLE_METADATA_MAX} searchable metadata keys (each is a search attribute of the namespace)` });
    return keys;
  });

const port = z.coerce.number().int().min(1).max(65_535);
/** The API may bind port 0 (any free port), which tests use. */
const apiPort = z.coerce.number().int().min(0).max(65_535);

const envSchema = z.object({
  TEMPORAL_ADDRESS: z.string().min(1).optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_UI_URL: z.url().optional(),
  PINFLOW_SEARCHABLE_METADATA: searchableMetadata,
  PINFLOW_TEMPORAL_PORT: port.default(7233),
  PINFLOW_TEMPORAL_UI_PORT: port.default(8233),
  PINFLOW_TEMPORAL_CLI: z.string().min(1).optional(),
  PINFLOW_CACHE_DIR: z.string().min(1).optional(),
  PINFLOW_DATA_DIR: z.string().min(1).optional(),
  DATABASE_URL: z.string().min(1).optional(),
  PINFLOW_DB_STARTUP_TIMEOUT_MS: z.coerce.number().int().min(0).default(0),
  PINFLOW_DB_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  PINFLOW_API_HOST: z.string().min(1).default('127.0.0.1'),
  PINFLOW_API_PORT: apiPort.default(8080),
  PINFLOW_RPC_MODULE: z.string().min(1).optional(),
  PINFLOW_PUBLISH_EXAMPLES: z.enum(['true', 'false']).default('true'),
  PINFLOW_DEMO_RUNS: z.enum(['true', 'false']).default('true'),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional(),
  PINFLOW_EVENTS_STREAM: z.string().min(1).default('pinflow:events'),
  PINFLOW_EVENTS_GROUP: z.string().min(1).default('pinflow'),
  PINFLOW_EVENTS_CLAIM_IDLE_MS: z.coerce.number().int().min(100).default(30_000),
  PINFLOW_EVENT_SWEEP_MS: z.coerce.number().int().min(0).default(5_000),
  PINFLOW_EVENT_TTL_MAX: z
    .string()
    .regex(/^(\d+|\d+(\.\d+)?\s*(ms|s|m|h|d))$/, "must be milliseconds or a duration such as '1h', '7d'")
    .default('7d'),
  PINFLOW_EVENTS_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(1000).default(10),
  PINFLOW_RECONCILE_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(0)
    .refine((ms) => ms === 0 || ms >= 1000, 'must be 0 (off) or at least 1000 ms: each pass describes every open run in Temporal')
    .default(60_000),
  PINFLOW_RECONCILE_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(16),
  PINFLOW_BATCH_RATE: z.coerce.number().positive().max(1000).default(10),
  PINFLOW_BATCH_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  PINFLOW_BATCH_LEASE_MS: z.coerce.number().int().min(1000).default(30_000),
  PINFLOW_BATCH_POLL_MS: z.coerce.number().int().min(0).default(2_000),
  PINFLOW_VERSION_GC_MIN_AGE: z
    .string()
    .regex(/^\d{1,9}(ms|s|m|h|d)$/, "must be a whole number and a unit (ms, s, m, h, d), e.g. '30d'")
    .default('30d'),
  PINFLOW_ATTENTION_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(0)
    .refine((ms) => ms === 0 || ms >= 1000, 'must be 0 (off) or at least 1000 ms: each pass describes every open run in Temporal')
    .default(60_000),
  PINFLOW_RETENTION_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(0)
    .refine((ms) => ms === 0 || ms >= 1000, 'must be 0 (off) or at least 1000 ms')
    .default(3_600_000),
  PINFLOW_RETENTION_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
  PINFLOW_RETENTION_PAUSE_MS: z.coerce.number().int().min(0).max(60_000).default(100),
  PINFLOW_ATTENTION_NO_PROGRESS_MS: z.coerce.number().int().min(1000).default(900_000),
  PINFLOW_ATTENTION_RPC_ATTEMPTS: z.coerce.number().int().min(2).default(5),
  PINFLOW_ATTENTION_WORKFLOW_TASK_ATTEMPTS: z.coerce.number().int().min(2).default(2),
  PINFLOW_ATTENTION_POLLER_FRESH_MS: z.coerce.number().int().min(1000).default(75_000),
  PINFLOW_PROJECTION_POOL_MAX: z.coerce.number().int().min(1).max(100).default(4),
  PINFLOW_PROJECTION_QUEUE_MAX: z.coerce.number().int().min(1).default(10_000),
  PINFLOW_PROJECTION_SYNC_WAIT_MS: z.coerce.number().int().min(0).default(2_000),
  PINFLOW_TEST_KILL_AFTER_HANDLER: z.string().min(1).optional(),
  PINFLOW_EXPRESSION_MAX_STEPS: z.coerce
    .number()
    .int()
    .min(100)
    .max(RUN_LIMIT_CAPS.maxSteps, `must be at most ${RUN_LIMIT_CAPS.maxSteps}: above it one evaluation can reach the workflow-task deadline`)
    .default(DEFAULT_RUN_LIMITS.expression.maxSteps),
  PINFLOW_FOREACH_MAX_ITEMS: z.coerce
    .number()
    .int()
    .min(1)
    .max(RUN_LIMIT_CAPS.maxForEachItems, `must be at most ${RUN_LIMIT_CAPS.maxForEachItems}: above it one loop can reach the workflow-task deadline or the history limit`)
    .default(DEFAULT_RUN_LIMITS.maxForEachItems),
  PINFLOW_METRICS_PORT: apiPort.default(0),
  PINFLOW_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  PINFLOW_SDK_METRICS_ADDRESS: z
    .string()
    .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "must be host:port, e.g. '0.0.0.0:9464'")
    .refine((a) => {
      const p = Number(a.slice(a.lastIndexOf(':') + 1));
      return p >= 1 && p <= 65_535;
    }, 'the port must be 1 to 65535')
    .optional(),
  NODE_ENV: z.string().optional(),
  PINFLOW_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).max(1_000_000).default(1200),
  PINFLOW_AUTH_CACHE_MS: z.coerce.number().int().min(0).max(300_000).default(10_000),
  PINFLOW_ADMIN_KEY_FILE: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty']).default('json'),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
  PINFLOW_ENCRYPTION_KEY: z.string().min(1).optional(),
  PINFLOW_ENCRYPTION_KEY_FILE: z.string().min(1).optional(),
  PINFLOW_ENCRYPTION_KEY_ID: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1 to 64 letters, digits, . _ -').optional(),
  PINFLOW_ENCRYPTION_OLD_KEYS: z.string().optional(),
  PINFLOW_CODEC_CORS_ORIGINS: z.string().optional(),
});

/** The resolved configuration. Every field is documented in the README's configuration table. */
export interface PinflowConfig {
  temporal: {
    /** `host:port` of an existing server; when absent pinflow starts an embedded dev server. */
    address: string | undefined;
    namespace: string;
    /** Base URL of the Temporal UI, for deep links. */
    uiUrl: string;
    /** Frontend port of the embedded dev server. @default 7233 */
    devServerPort: number;
    /** UI port of the embedded dev server. @default 8233 */
    devServerUiPort: number;
    /** Explicit path to the `temporal` CLI binary. */
    cliPath: string | undefined;
    /** Metadata keys set as Keyword search attributes `PinflowMeta_<key>` at start (PINFLOW_SEARCHABLE_METADATA). @default [] */
    searchableMetadata: string[];
  };
  /** Machine-wide cache (the built Temporal CLI). @default ~/.cache/pinflow */
  cacheDir: string;
  /** Project-local state: the dev server's SQLite file and PGlite. @default ./.pinflow */
  dataDir: string;
  /** Real Postgres for the projection; PGlite in `dataDir` when absent. */
  databaseUrl: string | undefined;
  database: {
    /**
     * How long the worker, the API and `npm start` wait at start for a
     * Postgres that does not answer yet (refused, starting up, name not
     * resolving), retrying with backoff and logging each attempt; 0 waits
     * forever. @default 0
     */
    startupTimeoutMs: number;
    /** How long one connection attempt may take before the statement fails as unavailable. @default 10000 */
    connectTimeoutMs: number;
  };
  api: { host: string; port: number };
  /** Module exporting the worker's RPCs (`defineRpc` results). */
  rpcModule: string | undefined;
  publishExamples: boolean;
  /** Whether `npm start` starts the demo runs (examples/demo.ts: one run at every state) with the examples. @default true */
  demoRuns: boolean;
  events: {
    /** Redis for the stream door; the consumer runs only when set. */
    redisUrl: string | undefined;
    /** @default 'pinflow:events' */
    stream: string;
    /** @default 'pinflow' */
    group: string;
    /** Pending stream messages idle this long are claimed from dead consumers. @default 30000 */
    claimIdleMs: number;
    /** How often the sweeper retries failed deliveries; 0 turns it off. @default 5000 */
    sweepIntervalMs: number;
    /** The longest time to live an event or a rule may ask for (PINFLOW_EVENT_TTL_MAX). @default 7 days */
    ttlMaxMs: number;
    /** Attempts of a stream message failing with a transient error before it is dead-lettered (PINFLOW_EVENTS_MAX_ATTEMPTS). @default 10 */
    streamMaxAttempts: number;
  };
  /** The reconciler (client/reconcile.ts), run by the process that serves the API. */
  reconcile: {
    /** Milliseconds between passes; 0 turns the periodic pass off (`pinflow reconcile` and `POST /reconcile` still work). @default 60000 */
    intervalMs: number;
    /** Temporal describes in flight at once during a pass. @default 16 */
    concurrency: number;
  };
  /** The batch runner (client/batches.ts), run by the process that serves the API. */
  batches: {
    /** Runs per second of a batch that names no rate (PINFLOW_BATCH_RATE), per API process. @default 10 */
    ratePerSecond: number;
    /** Runs acted on at once by a batch that names none (PINFLOW_BATCH_CONCURRENCY), per API process. @default 4 */
    concurrency: number;
    /** How long an item claimed by a process is reserved to it; a process that dies leaves its item to others after this (PINFLOW_BATCH_LEASE_MS). @default 30000 */
    leaseMs: number;
    /** How often the runner looks for batches to drive; 0 turns the runner off in this process (PINFLOW_BATCH_POLL_MS). @default 2000 */
    pollMs: number;
  };
  /** Version GC (client/version-gc.ts): the minimum age since last publish of a removable version when a request names none (PINFLOW_VERSION_GC_MIN_AGE). @default '30d' */
  versionGc: { minAge: string };
  /** Runs that need attention (client/attention.ts), checked by the process that serves the API. */
  attention: {
    /** Milliseconds between passes; 0 turns it off (PINFLOW_ATTENTION_INTERVAL_MS). @default 60000 */
    intervalMs: number;
    /** NO_PROGRESS after this long without progress (PINFLOW_ATTENTION_NO_PROGRESS_MS). @default 900000 */
    noProgressMs: number;
    /** RPC_RETRYING from this attempt (PINFLOW_ATTENTION_RPC_ATTEMPTS). @default 5 */
    rpcAttempts: number;
    /** WORKFLOW_TASK_FAILING from this workflow task attempt (PINFLOW_ATTENTION_WORKFLOW_TASK_ATTEMPTS). @default 2 */
    workflowTaskAttempts: number;
    /** A poller counts as a worker when it polled within this (PINFLOW_ATTENTION_POLLER_FRESH_MS). @default 75000 */
    pollerFreshMs: number;
  };
  /** Retention sweeps (client/retention.ts), run by the process that serves the API. */
  retention: {
    /** Milliseconds between sweeper ticks; 0 turns the periodic sweeper off (`POST /retention/sweeps` still works) (PINFLOW_RETENTION_INTERVAL_MS). @default 3600000 */
    intervalMs: number;
    /** Runs (or events) examined per batch, each batch its own transaction (PINFLOW_RETENTION_BATCH_SIZE). @default 500 */
    batchSize: number;
    /** Pause between batches (PINFLOW_RETENTION_PAUSE_MS). @default 100 */
    pauseMs: number;
  };
  /** The worker's projection writes (projection/writer.ts). */
  projection: {
    /** Connections of the writer's own pool (Postgres only; PGlite is one connection). @default 4 */
    poolMax: number;
    /** Writes that may wait while the projection is slow; beyond it new ones are dropped. @default 10000 */
    queueMax: number;
    /** How long an activity waits for its projection write before going on. @default 2000 */
    syncWaitMs: number;
  };
  /**
   * Test-only fault hooks of the standalone worker, never set in production.
   * `killAfterHandler`: the worker SIGKILLs itself right after a handler of
   * this RPC returned and its COMPLETED row was written, before the completion
   * reaches Temporal (PINFLOW_TEST_KILL_AFTER_HANDLER).
   */
  testHooks: { killAfterHandler: string | undefined };
  /**
   * The limits new runs start with (carried in each run's start input), and
   * the budget publish checks and correlation rules use (graph/limits.ts).
   */
  limits: {
    /** Evaluation steps per expression evaluation. @default 5000 (at most 20000) */
    maxSteps: number;
    /** Items one forEach accepts. @default 1000 (at most 2000) */
    maxForEachItems: number;
  };
  /** Prometheus metrics (observability/metrics.ts; README "Metrics"). */
  metrics: {
    /** Port of the standalone worker's `/metrics` server; 0 (the default) turns it off. The API serves `/metrics` on its own port. */
    port: number;
    /** Interface the worker's metrics server binds. @default '127.0.0.1' */
    host: string;
    /** `host:port` where the Temporal SDK runtime serves its own Prometheus metrics (worker processes); off when unset. */
    sdkAddress: string | undefined;
  };
  /** API keys (client/keys.ts) and the rate limit per key (client/access.ts). */
  auth: {
    /** Requests each key may make per minute (PINFLOW_RATE_LIMIT_PER_MINUTE); over it 429 RATE_LIMITED. @default 1200 */
    rateLimitPerMinute: number;
    /** How long a verified key is trusted before its row is read again: a revocation elsewhere takes effect within it (PINFLOW_AUTH_CACHE_MS). @default 10000 */
    cacheMs: number;
    /** Where `npm start` keeps the local admin key it created (mode 0600; PINFLOW_ADMIN_KEY_FILE). @default <dataDir>/admin-key */
    adminKeyFile: string;
  };
  /** Production mode: the worker requires the prebuilt workflow bundle. */
  production: boolean;
  /** Logs of every process (observability/logging.ts). */
  log: {
    /** LOG_LEVEL. @default 'info' */
    level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
    /** LOG_FORMAT: one JSON object per line, or pino-pretty for a terminal. @default 'json' */
    format: 'json' | 'pretty';
  };
  /** OpenTelemetry traces (observability/tracing.ts): on only when `otlpEndpoint` is set. */
  tracing: {
    /** OTEL_EXPORTER_OTLP_ENDPOINT, the OTLP/HTTP collector (spans go to `<endpoint>/v1/traces`). */
    otlpEndpoint: string | undefined;
    /** OTEL_SERVICE_NAME; each process has its own default (pinflow-api, pinflow-worker, pinflow). */
    serviceName: string | undefined;
  };
  /**
   * Payload encryption in Temporal history (codec/encryption.ts): on when a
   * key is configured (PINFLOW_ENCRYPTION_KEY or PINFLOW_ENCRYPTION_KEY_FILE).
   */
  encryption: {
    /** The current key (id from PINFLOW_ENCRYPTION_KEY_ID, else a fingerprint) and the old keys kept for decryption (PINFLOW_ENCRYPTION_OLD_KEYS); undefined: no encryption. */
    keys: EncryptionKeys | undefined;
    /** Origins allowed to call the codec endpoint (PINFLOW_CODEC_CORS_ORIGINS, comma-separated). @default the Temporal UI's origin */
    corsOrigins: string[];
  };
}

/** The encryption keys from the environment; a file wins over nothing, and both at once is refused. */
function encryptionKeys(e: z.infer<typeof envSchema>): EncryptionKeys | undefined {
  if (e.PINFLOW_ENCRYPTION_KEY && e.PINFLOW_ENCRYPTION_KEY_FILE) {
    throw new PinflowError(ERROR_CODES.CONFIG_INVALID, 'invalid environment: set PINFLOW_ENCRYPTION_KEY or PINFLOW_ENCRYPTION_KEY_FILE, not both', { field: 'PINFLOW_ENCRYPTION_KEY_FILE' });
  }
  let text = e.PINFLOW_ENCRYPTION_KEY;
  let source = 'PINFLOW_ENCRYPTION_KEY';
  if (e.PINFLOW_ENCRYPTION_KEY_FILE) {
    source = `PINFLOW_ENCRYPTION_KEY_FILE (${e.PINFLOW_ENCRYPTION_KEY_FILE})`;
    try {
      text = readFileSync(e.PINFLOW_ENCRYPTION_KEY_FILE, 'utf8');
    } catch (err) {
      throw new PinflowError(ERROR_CODES.CONFIG_INVALID, `invalid environment: ${source} cannot be read: ${(err as Error).message}`, { field: 'PINFLOW_ENCRYPTION_KEY_FILE' });
    }
  }
  const old = e.PINFLOW_ENCRYPTION_OLD_KEYS ? parseOldKeys(e.PINFLOW_ENCRYPTION_OLD_KEYS, 'PINFLOW_ENCRYPTION_OLD_KEYS') : [];
  if (text === undefined) {
    if (old.length || e.PINFLOW_ENCRYPTION_KEY_ID) {
      throw new PinflowError(ERROR_CODES.CONFIG_INVALID, 'invalid environment: PINFLOW_ENCRYPTION_KEY_ID and PINFLOW_ENCRYPTION_OLD_KEYS need a current key (PINFLOW_ENCRYPTION_KEY or PINFLOW_ENCRYPTION_KEY_FILE)', { field: 'PINFLOW_ENCRYPTION_KEY' });
    }
    return undefined;
  }
  return { current: parseKey(text, source, e.PINFLOW_ENCRYPTION_KEY_ID), old };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): PinflowConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}=${JSON.stringify(env[String(i.path[0])])}: ${i.message}`);
    throw new PinflowError(ERROR_CODES.CONFIG_INVALID, `invalid environment: ${problems.join('; ')}`, { issues: parsed.error.issues });
  }
  const e = parsed.data;
  const cacheDir = resolve(e.PINFLOW_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'pinflow'));
  return {
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      uiUrl: (e.TEMPORAL_UI_URL ?? `http://localhost:${e.PINFLOW_TEMPORAL_UI_PORT}`).replace(/\/+$/, ''),
      devServerPort: e.PINFLOW_TEMPORAL_PORT,
      devServerUiPort: e.PINFLOW_TEMPORAL_UI_PORT,
      cliPath: e.PINFLOW_TEMPORAL_CLI,
      searchableMetadata: e.PINFLOW_SEARCHABLE_METADATA,
    },
    cacheDir,
    dataDir: resolve(e.PINFLOW_DATA_DIR ?? '.pinflow'),
    databaseUrl: e.DATABASE_URL,
    database: { startupTimeoutMs: e.PINFLOW_DB_STARTUP_TIMEOUT_MS, connectTimeoutMs: e.PINFLOW_DB_CONNECT_TIMEOUT_MS },
    api: { host: e.PINFLOW_API_HOST, port: e.PINFLOW_API_PORT },
    rpcModule: e.PINFLOW_RPC_MODULE,
    publishExamples: e.PINFLOW_PUBLISH_EXAMPLES === 'true',
    demoRuns: e.PINFLOW_DEMO_RUNS === 'true',
    events: {
      redisUrl: e.REDIS_URL,
      stream: e.PINFLOW_EVENTS_STREAM,
      group: e.PINFLOW_EVENTS_GROUP,
      claimIdleMs: e.PINFLOW_EVENTS_CLAIM_IDLE_MS,
      sweepIntervalMs: e.PINFLOW_EVENT_SWEEP_MS,
      ttlMaxMs: /^\d+$/.test(e.PINFLOW_EVENT_TTL_MAX) ? Number(e.PINFLOW_EVENT_TTL_MAX) : durationMs(e.PINFLOW_EVENT_TTL_MAX),
      streamMaxAttempts: e.PINFLOW_EVENTS_MAX_ATTEMPTS,
    },
    reconcile: { intervalMs: e.PINFLOW_RECONCILE_INTERVAL_MS, concurrency: e.PINFLOW_RECONCILE_CONCURRENCY },
    versionGc: { minAge: e.PINFLOW_VERSION_GC_MIN_AGE },
    batches: { ratePerSecond: e.PINFLOW_BATCH_RATE, concurrency: e.PINFLOW_BATCH_CONCURRENCY, leaseMs: e.PINFLOW_BATCH_LEASE_MS, pollMs: e.PINFLOW_BATCH_POLL_MS },
    attention: {
      intervalMs: e.PINFLOW_ATTENTION_INTERVAL_MS,
      noProgressMs: e.PINFLOW_ATTENTION_NO_PROGRESS_MS,
      rpcAttempts: e.PINFLOW_ATTENTION_RPC_ATTEMPTS,
      workflowTaskAttempts: e.PINFLOW_ATTENTION_WORKFLOW_TASK_ATTEMPTS,
      pollerFreshMs: e.PINFLOW_ATTENTION_POLLER_FRESH_MS,
    },
    retention: { intervalMs: e.PINFLOW_RETENTION_INTERVAL_MS, batchSize: e.PINFLOW_RETENTION_BATCH_SIZE, pauseMs: e.PINFLOW_RETENTION_PAUSE_MS },
    projection: { poolMax: e.PINFLOW_PROJECTION_POOL_MAX, queueMax: e.PINFLOW_PROJECTION_QUEUE_MAX, syncWaitMs: e.PINFLOW_PROJECTION_SYNC_WAIT_MS },
    testHooks: { killAfterHandler: e.PINFLOW_TEST_KILL_AFTER_HANDLER },
    limits: { maxSteps: e.PINFLOW_EXPRESSION_MAX_STEPS, maxForEachItems: e.PINFLOW_FOREACH_MAX_ITEMS },
    metrics: { port: e.PINFLOW_METRICS_PORT, host: e.PINFLOW_METRICS_HOST, sdkAddress: e.PINFLOW_SDK_METRICS_ADDRESS },
    auth: {
      rateLimitPerMinute: e.PINFLOW_RATE_LIMIT_PER_MINUTE,
      cacheMs: e.PINFLOW_AUTH_CACHE_MS,
      adminKeyFile: resolve(e.PINFLOW_ADMIN_KEY_FILE ?? join(resolve(e.PINFLOW_DATA_DIR ?? '.pinflow'), 'admin-key')),
    },
    production: e.NODE_ENV === 'production',
    log: { level: e.LOG_LEVEL, format: e.LOG_FORMAT },
    tracing: { otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: e.OTEL_SERVICE_NAME },
    encryption: {
      keys: encryptionKeys(e),
      corsOrigins: (e.PINFLOW_CODEC_CORS_ORIGINS ?? new URL(e.TEMPORAL_UI_URL ?? `http://localhost:${e.PINFLOW_TEMPORAL_UI_PORT}`).origin)
        .split(',')
        .map((o) => o.trim().replace(/\/+$/, ''))
        .filter((o) => o.length > 0),
    },
  };
}

/** What the CLI reads from the environment: the API it talks to, its key, and who runs it. */
export interface CliEnvironment {
  /** `PINFLOW_API_URL`. @default 'http://127.0.0.1:8080' */
  apiUrl: string;
  /** `PINFLOW_API_KEY`: the bearer key (`pf_<id>_<secret>`); the CLI never takes a secret as an argument. */
  apiKey: string | undefined;
  /** `USER`: the default `by` of the commands that record who acted. */
  user: string | undefined;
}

/**
 * The CLI's part of the environment. Separate from {@link loadConfig}: a CLI
 * that only talks to the HTTP API must not fail on a variable of the worker's
 * it does not use.
 */
export function loadCliEnvironment(env: NodeJS.ProcessEnv = process.env): CliEnvironment {
  return { apiUrl: env.PINFLOW_API_URL || 'http://127.0.0.1:8080', apiKey: env.PINFLOW_API_KEY || undefined, user: env.USER || undefined };
}
