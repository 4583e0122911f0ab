/**
 * The pinflow library API: publish graphs, start pinned runs, read the
 * projection, await results. Temporal is asked first for everything that
 * changes a run; the projection follows what Temporal accepted.
 */
import { outlineGraph, type GraphOutline } from '../graph/outline';
import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowUpdateFailedError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { ERROR_CODES, InvalidRequestError, NotFoundError, PinflowError } from '../graph/errors';
import { currentRunLimits } from '../graph/limits';
import { metadataAttribute, SA } from '../graph/search-attributes';
import { DEFAULT_TENANT, SEARCHABLE_METADATA_KEY, SEARCHABLE_METADATA_MAX, TASK_QUEUE, TENANT_PATTERN, VERSION_HASH_PATTERN, WORKFLOW_TYPE, type AttentionReason, type RunStatus, type StallDecisionAction, type StallReason, type StepCountState } from '../graph/terminology';
import type { WaitRecord } from '../projection/events';
import { asUnavailable, isDatabaseUnavailable } from '../db/availability';
import { assertRunInput, checkCarriedOutputs, checkSkipOutput } from '../catalog/contracts';
import { EMPTY_PLAN, redactionPlan, redactRunState, REDACTED, type RedactionPlan } from '../graph/redact';
import { versionOf, versionRemovedError, VersionStore, type DefinitionSummary, type VersionRecord, type VersionSummary } from '../catalog/versions';
import type { DefinitionPause, ProjectionStore, RunDetail, RunPage } from '../projection/store';
import type { ProjectionLag } from '../projection/writer';
import { toRegistry, type RpcDefinition, type RpcRegistry } from '../rpc/registry';
import { migrateUpdate, pauseUpdate, resolveStallUpdate, resumeUpdate, stateQuery } from '../workflows/definitions';
import type { InterpreterState, PauseInfo, RunInput, StallDecision } from '../graph/wire';
import { checkDeploy, temporalStateReader, type ContractManifest, type DeployReport } from './check-deploy';
import { cancelBody, decisionBody, pauseBody, hashParams, idParams, nameParams, listRunsOptions, manifestBody, runCountsOptions, METADATA_KEY_PATTERN, MAX_METADATA_FILTER_KEYS, migrateBody, parseInput, replayBody, rerunBody, RUN_ID_PATTERN, RUN_ID_RULE, startBody } from './api-schemas';
import { EventIngress, type CodeRule, type EventIngressOptions, type EventOutcome, type SubmitEventInput } from './events';
import { Reconciler, type ReconcilerOptions, type ReconcileTotals } from './reconcile';
import { BatchService, type BatchServiceOptions } from './batches';
import { ConsoleReads, runFilterOf } from './console';
import { AttentionChecker, type AttentionFlag, type AttentionOptions } from './attention';
import { RetentionService, type LegalHold, type NamespaceRetention, type RetentionOptions } from './retention';
import { publishGraph, type PublishResult } from '../catalog/publish';
import { versionHash } from '../graph/canonical';
import { DEFAULT_VERSION_GC_MIN_AGE, VersionGc, type VersionGcRequest, type VersionGcResult } from './version-gc';
import { definitionFromMemo, mapRunError, requireOpenRun, runStatus } from './run-gate';
import { carryOnto, findRerunPoint, readFirstExecution, type ReplayRequest, type RerunRequest, type RerunResult } from './rerun';
import { runsStarted, safely, shortVersion } from '../observability/metrics';


export interface DecisionInput {
  action: StallDecisionAction;
  /** Who decides (a user or a service); recorded with the decision. */
  by: string;
  reason?: string;
  /** With skip: the step's output, validated against the pinned output contract. */
  output?: unknown;
  /** The stall to resolve. @default the run's current stall */
  stallId?: string;
}

export interface DecisionResult {
  runId: string;
  ok: boolean;
  stallId?: string;
  action?: string;
  error?: { code: string; message: string };
  /**
   * True when the run was passed over, not failed: it closed (RUN_CLOSED) or
   * vanished (RUN_NOT_FOUND) between the listing and the decision. `error`
   * says which, and `reason` says why in words.
   */
  skipped?: boolean;
  reason?: string;
}

export { RUN_ID_PATTERN, METADATA_KEY_PATTERN, MAX_METADATA_FILTER_KEYS };

/** Options of an operator call sent as a Temporal Update. */
export interface UpdateOptions {
  /**
   * The Temporal update id. Temporal answers a repeated update with the same
   * id on an open run with the first outcome instead of applying it again
   * (batches send `batch:<batch id>`). @default a fresh id
   */
  updateId?: string;
}

export interface PinflowOptions {
  /** A long-lived Temporal client (reuse one; never connect per call). */
  client: Client;
  /** The run projection (derived): run lists, steps, stalls, decisions. */
  store: ProjectionStore;
  /** The catalog (authoritative): definitions, versions, contracts. @default a catalog on the projection's database */
  catalog?: VersionStore;
  /** The RPC registry publish validates against and pins contracts from. */
  rpcs: RpcRegistry | Iterable<RpcDefinition> | Record<string, unknown>;
  /** Base URL of the Temporal UI, for deep links. @default 'http://localhost:8233' */
  temporalUiUrl?: string;
  /** Correlation rules in code: event name → JSONata over `{ name, tenant, eventId, payload }`. */
  correlationRules?: Record<string, CodeRule>;
  /** Event ingress tuning and test hooks. */
  events?: Pick<EventIngressOptions, 'maxAttempts' | 'signalConcurrency' | 'hooks' | 'ttlMaxMs' | 'claimTimeoutMs' | 'routingLeaseMs'>;
  /**
   * The lag of the worker's projection writer, when the worker runs in this
   * process (`npm start`): `/health` then shows it as `projection`.
   */
  projectionLag?: () => ProjectionLag;
  /** Reconciler tuning and its log (one line per correction). */
  reconcile?: Pick<ReconcilerOptions, 'concurrency' | 'pageSize' | 'graceMs' | 'log'>;
  /** Batch runner tuning and its log (client/batches.ts). */
  batches?: BatchServiceOptions;
  /** The attention checker's thresholds, concurrency and log (client/attention.ts). */
  attention?: Pick<AttentionOptions, 'thresholds' | 'concurrency' | 'log'>;
  /** Retention sweeps: batch size, pause, lease, per-batch timeouts and the log (client/retention.ts). */
  retention?: Pick<RetentionOptions, 'batchSize' | 'pauseMs' | 'leaseMs' | 'lockTimeoutMs' | 'statementTimeoutMs' | 'log'>;
  /**
   * Metadata keys set at start as Keyword search attributes
   * `PinflowMeta_<key>` (PINFLOW_SEARCHABLE_METADATA; the worker registers
   * them), for Temporal list queries. A key whose value is not a string,
   * number or boolean is not set.
   * @default []
   */
  searchableMetadata?: readonly string[];
  /** Version GC (client/version-gc.ts): the minimum age of a removable version when a request names none (PINFLOW_VERSION_GC_MIN_AGE). @default '30d' */
  versionGc?: { minAge?: string };
}


export interface StartOptions {
  /** Start the latest version of this definition. */
  definition?: string;
  /** Start exactly this version hash. */
  version?: string;
  input?: unknown;
  /** @default 'default' */
  tenant?: string;
  /** Becomes the Temporal workflow id (RUN_ID_PATTERN). @default `<definition>-<uuid>` */
  runId?: string;
  /**
   * When a run with `runId` already exists: `fail` throws RUN_ALREADY_EXISTS;
   * `return` returns that run (its definition, version at start, tenant) with
   * `existing: true` and starts nothing: an idempotent start.
   * @default 'fail'
   */
  ifExists?: 'fail' | 'return';
  metadata?: Record<string, unknown>;
}

export interface StartedRun {
  runId: string;
  temporalRunId: string;
  definition: string;
  version: string;
  tenant: string;
  /** Temporal UI deep link to the run's history. */
  temporalUiUrl: string;
  /** Set with `ifExists: 'return'` when the run already existed and nothing was started. */
  existing?: true;
}

export interface ListRunsOptions {
  status?: RunStatus;
  definition?: string;
  version?: string;
  tenant?: string;
  /**
   * Only runs whose metadata has every one of these keys with exactly this
   * value (JSON equality: `'1'` does not match `1`). At most 5 keys.
   */
  metadata?: Record<string, string | number | boolean>;
  /** Runs that need attention for this reason now. */
  attention?: AttentionReason;
  /** Started at or after (inclusive): an ISO 8601 date-time with a time zone. */
  startedAfter?: string;
  /** Started before (exclusive): an ISO 8601 date-time with a time zone. */
  startedBefore?: string;
  /** Run id contains this text (case-insensitive). */
  q?: string;
  /** STALLED on this RPC. */
  stallRpc?: string;
  /** STALLED for this reason. */
  stallReason?: StallReason;
  /** With `stepState`: runs at or through this step (graph/terminology STEP_COUNT_STATES). */
  step?: string;
  stepState?: StepCountState;
  cursor?: string;
  /** 1..500. @default 50 */
  limit?: number;
}

export interface Health {
  ok: boolean;
  temporal: { ok: boolean; error?: string };
  database: { ok: boolean; error?: string };
  worker: { polling: boolean; pollers: number; taskQueue: string; error?: string };
  /** How far the projection is behind, when the worker runs in this process (`npm start`). Informative: it never makes `ok` false. */
  projection?: ProjectionLag;
  /** Runs that need attention now, per reason (client/attention.ts). Informative: it never makes `ok` false. */
  attention?: Record<string, number>;
  /** The Temporal namespace's retention against what the retention policies need (last checked at start, by each sweeper tick and policy change). Informative: it never makes `ok` false. */
  retention?: { namespace: NamespaceRetention };
}

/** Checks a run-list metadata filter and returns it as a fresh plain object. */
export function validateMetadataFilter(metadata: unknown): Record<string, string | number | boolean> {
  const invalid = (message: string, field: string, received: unknown) =>
    new InvalidRequestError(ERROR_CODES.REQUEST_INVALID, message, { field, received });
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw invalid(`metadata filter is ${describeValue(metadata)}; allowed: an object of up to ${MAX_METADATA_FILTER_KEYS} keys`, 'metadata', metadata);
  }
  const entries = Object.entries(metadata);
  if (entries.length > MAX_METADATA_FILTER_KEYS) {
    const keys = entries.map(([k]) => k);
    throw invalid(
      `metadata filter has ${keys.length} keys (${keys.join(', ')}); allowed: at most ${MAX_METADATA_FILTER_KEYS}`,
      'metadata',
      keys,
    );
  }
  for (const [key, value] of entries) {
    if (!METADATA_KEY_PATTERN.test(key)) {
      throw invalid(`metadata key ${JSON.stringify(key)} is invalid; it must match ${METADATA_KEY_PATTERN}`, 'metadata', key);
    }
    const ok = typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
    if (!ok) {
      throw invalid(
        `metadata.${key} is ${describeValue(value)}; allowed: a string, a finite number or a boolean`,
        `metadata.${key}`,
        value,
      );
    }
  }
  // fromEntries defines own properties, so a key like `__proto__` stays a key.
  return Object.fromEntries(entries) as Record<string, string | number | boolean>;
}

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return `the number ${String(v)}`;
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** How long /health waits for the database's answer. */
const HEALTH_DB_TIMEOUT_MS = 3_000;
/** How long cancel waits for the row of a run Temporal runs but the projection does not list yet. */
const PROJECTION_CATCH_UP_MS = 5_000;

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A poller is alive if it polled recently (long polls last up to ~60s). */
const POLLER_FRESH_MS = 75_000;

export type { PublishResult };

/** Open runs of a definition paused or resumed at once. */
const PAUSE_CONCURRENCY = 8;

export interface PauseResult {
  runId: string;
  /** The run was already paused: nothing changed. */
  alreadyPaused: boolean;
  pause: PauseInfo;
}

export interface ResumeResult {
  runId: string;
  /** False when the run was not paused: nothing changed. */
  wasPaused: boolean;
  pause?: PauseInfo;
}

export interface PauseRunResult {
  runId: string;
  ok: boolean;
  /** True when this call paused (or resumed) the run; false when it already was. */
  changed?: boolean;
  error?: { code: string; message: string };
}

export interface DefinitionPauseResult {
  definition: string;
  alreadyPaused: boolean;
  pause: { by: string; reason: string | null; since: string };
  runs: PauseRunResult[];
}

export interface DefinitionResumeResult {
  definition: string;
  wasPaused: boolean;
  runs: PauseRunResult[];
}

/** The message of an update the run's validator refused (`CODE: why`), or undefined for any other error. */
function updateRefusal(err: unknown): string | undefined {
  if (!(err instanceof WorkflowUpdateFailedError)) return undefined;
  return (err.cause)?.message ?? err.message;
}

export class Pinflow {
  readonly client: Client;
  readonly store: ProjectionStore;
  readonly catalog: VersionStore;
  readonly registry: RpcRegistry;
  readonly namespace: string;
  readonly temporalUiUrl: string;
  /** Event ingress, the correlation index and correlation rules. */
  readonly events: EventIngress;
  /** Closes in the projection the runs Temporal closed without their own write (terminate, reset, retention). */
  readonly reconciler: Reconciler;
  /** Bulk actions by run filter, as durable batches: create, progress, pause, resume, cancel, and the runner. */
  readonly batches: BatchService;
  /** Runs that need attention (client/attention.ts): started by the API process like the reconciler. */
  readonly attention: AttentionChecker;
  /** The operator console's reads (client/console.ts): step counts, stall groups, version diffs. */
  readonly console: ConsoleReads;
  /** Removes unused versions from the catalog, keeping tombstones (client/version-gc.ts). */
  readonly versionGc: VersionGc;
  /** Retention policies, the preview, sweeps, legal holds and the namespace's retention (client/retention.ts). */
  readonly retention: RetentionService;
  private readonly projectionLag: (() => ProjectionLag) | undefined;
  private readonly searchableMetadata: string[];

  constructor(opts: PinflowOptions) {
    this.client = opts.client;
    this.store = opts.store;
    this.catalog = opts.catalog ?? new VersionStore(opts.store.db);
    this.console = new ConsoleReads(this.store, this.catalog);
    this.registry = toRegistry(opts.rpcs);
    this.namespace = opts.client.options.namespace;
    this.temporalUiUrl = (opts.temporalUiUrl ?? 'http://localhost:8233').replace(/\/+$/, '');
    this.events = new EventIngress({ client: this.client, db: this.store.db, ...(opts.correlationRules ? { rules: opts.correlationRules } : {}), ...opts.events });
    this.projectionLag = opts.projectionLag;
    this.reconciler = new Reconciler({ client: this.client, store: this.store, ...opts.reconcile });
    this.batches = new BatchService(this, opts.batches);
    this.versionGc = new VersionGc({ db: this.catalog.db, client: this.client, defaultMinAge: opts.versionGc?.minAge ?? DEFAULT_VERSION_GC_MIN_AGE });
    this.attention = new AttentionChecker({ client: this.client, store: this.store, catalog: this.catalog, ...opts.attention });
    this.retention = new RetentionService({ db: this.store.db, catalog: this.catalog, connection: this.client.connection, namespace: this.namespace, ...opts.retention });
    this.searchableMetadata = [...(opts.searchableMetadata ?? [])];
    for (const key of this.searchableMetadata) {
      if (!SEARCHABLE_METADATA_KEY.test(key)) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, `searchable metadata key ${JSON.stringify(key)} must match ${SEARCHABLE_METADATA_KEY}`, { field: 'searchableMetadata', received: key });
    }
    if (this.searchableMetadata.length > SEARCHABLE_METADATA_MAX) {
      throw new PinflowError(ERROR_CODES.CONFIG_INVALID, `at most ${SEARCHABLE_METADATA_MAX} searchable metadata keys`, { field: 'searchableMetadata' });
    }
  }

  /** One reconcile pass over every open run: what Temporal closed is closed in the projection. Returns the totals. */
  reconcile(): Promise<ReconcileTotals> {
    return this.reconciler.pass();
  }

  /**
   * Submit a business event (the library door). It is recorded in the event
   * log and routed to every run waiting on its (tenant, name, correlation key).
   * Throws EventRejectedError (CORRELATION_KEY_MISSING / _INVALID, recorded)
   * when no key can be resolved, EVENT_ID_CONFLICT when the eventId was used
   * for another event.
   */
  async submitEvent(event: SubmitEventInput): Promise<EventOutcome> {
    return this.events.submit(event, { source: 'library' });
  }

  /** Deep link into the Temporal UI for one execution. */
  uiLink(workflowId: string, temporalRunId: string | null): string {
    const base = `${this.temporalUiUrl}/namespaces/${encodeURIComponent(this.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
    return temporalRunId ? `${base}/${encodeURIComponent(temporalRunId)}/history` : base;
  }

  /**
   * Validate a graph against the schema and the live registry, pin the
   * contracts of the RPCs it calls, and store it under its content hash.
   * Idempotent: the same graph (ignoring description/notes/ui) gives the same
   * version and `created: false`.
   */
  async publish(definition: string, rawGraph: unknown): Promise<PublishResult> {
    return publishGraph({ catalog: this.catalog, registry: this.registry }, definition, rawGraph);
  }

  /**
   * Remove from the catalog the versions nothing needs (not the latest of a
   * definition, no open run in the projection or in Temporal, no child
   * reference, no unfinished batch targeting it, older than `olderThan`),
   * keeping a tombstone of each; `dryRun` only says what would go and why
   * the rest stays. See client/version-gc.ts.
   */
  gcVersions(request: VersionGcRequest, principal?: { keyId: string }): Promise<VersionGcResult> {
    return this.versionGc.run(request, principal);
  }

  /** Start a run pinned to one version: the graph travels in the start input. */
  async start(options: StartOptions): Promise<StartedRun> {
    const { runInput, version, opts, pause } = await this.prepareStart(options);
    return this.launch(runInput, version, { ifExists: opts.ifExists, ...(pause !== undefined ? { pause } : {}) });
  }

  /** Check a start request and build the run's start input (start, rerun and replay check the same way). */
  private async prepareStart(options: StartOptions): Promise<{ runInput: RunInput; version: VersionRecord; opts: StartOptions; pause?: DefinitionPause | null }> {
    // The same schema as POST /runs: lengths, sizes, and the one recursive check.
    const opts: StartOptions = parseInput(startBody, options, 'options');
    const tenant = opts.tenant ?? DEFAULT_TENANT;
    if (!TENANT_PATTERN.test(tenant)) {
      throw new InvalidRequestError(ERROR_CODES.REQUEST_INVALID, `tenant ${JSON.stringify(tenant)} is invalid; it must match ${TENANT_PATTERN}`, {
        field: 'tenant',
        received: tenant,
      });
    }
    if (opts.runId !== undefined && !RUN_ID_PATTERN.test(opts.runId)) {
      throw new InvalidRequestError(ERROR_CODES.REQUEST_INVALID, `runId ${JSON.stringify(opts.runId)} is invalid: ${RUN_ID_RULE} (${RUN_ID_PATTERN})`, {
        field: 'runId',
        received: opts.runId,
      });
    }
    // The catalog (in Postgres) names the version. With the database down
    // nothing is started: 503 DATABASE_UNAVAILABLE, retry later.
    const { definition, version, pause } = await this.resolveTarget(opts).catch((err: unknown) => {
      throw asUnavailable(err);
    });
    // The definition's inputSchema, before anything starts (INPUT_INVALID).
    assertRunInput(version.graph.inputSchema, opts.input === undefined ? {} : opts.input);
    // The default id names the definition, so the Temporal UI's list shows what each run is.
    const runId = opts.runId ?? `${definition}-${randomUUID()}`;
    const runInput: RunInput = {
      runId,
      definition,
      version: version.hash,
      graph: version.graph,
      contracts: version.contracts,
      input: opts.input === undefined ? {} : opts.input,
      tenant,
      metadata: opts.metadata ?? {},
      // The run keeps the limits of the deployment that started it (graph/limits.ts).
      limits: currentRunLimits(),
    };
    return { runInput, version, opts, ...(pause !== undefined ? { pause } : {}) };
  }

  /**
   * Rerun from a step: a new run that starts at top-level step `fromStep`,
   * seeded with the state the source run had just before it, read from the
   * source run's Temporal history. The source may be open or closed.
   * Idempotent with `runId`: a second call returns the run (`created: false`).
   */
  async rerun(sourceRunId: string, request: RerunRequest): Promise<RerunResult> {
    parseInput(idParams, { id: sourceRunId }, 'params');
    const req = parseInput(rerunBody, request, 'body');
    const existing = await this.existingRerun(sourceRunId, 'rerun', req.runId);
    if (existing) return existing;
    const { execution, snapshot, occurrence } = await findRerunPoint(this.client, sourceRunId, req, this.client.options.dataConverter);
    const source = execution.input;
    let at = req.fromStep;
    let steps = snapshot.steps;
    const targetHash = req.targetVersion ?? source.version;
    let versionRestored = false;
    if (targetHash !== source.version) {
      const target = await this.targetVersion(targetHash, source.definition);
      ({ at, steps } = carryOnto(source, target, req.fromStep, steps, req.mapping));
    } else versionRestored = await this.restoreFromHistory(source);
    const { runInput, version } = await this.prepareStart({
      definition: source.definition,
      version: targetHash,
      input: source.input,
      tenant: source.tenant,
      metadata: source.metadata,
      ...(req.runId ? { runId: req.runId } : {}),
    });
    runInput.resume = { at, steps, vars: snapshot.vars, seq: snapshot.seq, nextDispatch: {} };
    runInput.origin = { kind: 'rerun', sourceRunId, sourceVersion: source.version, fromStep: req.fromStep, occurrence, by: req.by, ...(req.reason ? { reason: req.reason } : {}) };
    const started = await this.launch(runInput, version, {});
    return { runId: started.runId, temporalRunId: started.temporalRunId, kind: 'rerun', sourceRunId, fromStep: req.fromStep, version: started.version, created: true, temporalUiUrl: started.temporalUiUrl, ...(versionRestored ? { versionRestored } : {}) };
  }

  /**
   * Replay: a new run from the start with the source run's original input
   * (read from its Temporal history, never from the projection) or an
   * edited one, validated as a start input is. Idempotent with `runId`.
   */
  async replay(sourceRunId: string, request: ReplayRequest): Promise<RerunResult> {
    parseInput(idParams, { id: sourceRunId }, 'params');
    const req = parseInput(replayBody, request, 'body');
    const existing = await this.existingRerun(sourceRunId, 'replay', req.runId);
    if (existing) return existing;
    const first = (await readFirstExecution(this.client, sourceRunId, this.client.options.dataConverter)).input;
    const targetHash = req.targetVersion ?? first.version;
    const versionRestored = targetHash !== first.version ? (await this.targetVersion(targetHash, first.definition), false) : await this.restoreFromHistory(first);
    const { runInput, version } = await this.prepareStart({
      definition: first.definition,
      version: targetHash,
      input: req.input === undefined ? first.input : req.input,
      tenant: first.tenant,
      metadata: first.metadata,
      ...(req.runId ? { runId: req.runId } : {}),
    });
    runInput.origin = { kind: 'replay', sourceRunId, sourceVersion: first.version, by: req.by, ...(req.reason ? { reason: req.reason } : {}) };
    const started = await this.launch(runInput, version, {});
    return { runId: started.runId, temporalRunId: started.temporalRunId, kind: 'replay', sourceRunId, fromStep: null, version: started.version, created: true, temporalUiUrl: started.temporalUiUrl, ...(versionRestored ? { versionRestored } : {}) };
  }

  /** A version of `definition` to rerun or replay onto. */
  private async targetVersion(hash: string, definition: string): Promise<VersionRecord> {
    const target = await this.getVersion(hash);
    if (!versionOf(target, definition)) {
      throw new PinflowError(ERROR_CODES.RERUN_INCOMPATIBLE, `version ${hash} is not a version of ${JSON.stringify(definition)}`, { field: 'targetVersion', received: hash });
    }
    return target;
  }

  /** With a requested run id that exists: the run when it came from the same source, else RUN_ALREADY_EXISTS. */
  private async existingRerun(sourceRunId: string, kind: 'rerun' | 'replay', runId: string | undefined): Promise<RerunResult | undefined> {
    if (runId === undefined) return undefined;
    const { description } = await runStatus(this.client.workflow.getHandle(runId));
    if (!description) return undefined;
    const memo = (description.memo ?? {}) as { version?: string; origin?: { kind?: string; sourceRunId?: string; fromStep?: string | null } };
    if (memo.origin?.sourceRunId !== sourceRunId || memo.origin.kind !== kind) {
      throw new PinflowError(ERROR_CODES.RUN_ALREADY_EXISTS, `a run with id ${JSON.stringify(runId)} already exists and is not a ${kind} of ${sourceRunId}`, { runId });
    }
    return {
      runId,
      temporalRunId: description.runId,
      kind,
      sourceRunId,
      fromStep: memo.origin.fromStep ?? null,
      version: memo.version ?? '',
      created: false,
      temporalUiUrl: this.uiLink(runId, description.runId),
    };
  }

  /**
   * Start `runInput` in Temporal (the authority), then mirror it in the
   * projection. Shared by start, rerun and replay.
   */
  private async launch(runInput: RunInput, version: VersionRecord, opts: { ifExists?: 'fail' | 'return' | undefined; /** The definition's pause, when the caller read it with the target (null: not paused). */ pause?: DefinitionPause | null }): Promise<StartedRun> {
    const { runId, definition, tenant } = runInput;
    // A run of a paused definition starts paused: it holds before its first step (FLAGS.PAUSE).
    const definitionPause =
      opts.pause !== undefined
        ? opts.pause
        : await this.store.getDefinitionPause(definition).catch((err: unknown) => {
            throw asUnavailable(err);
          });
    if (definitionPause) {
      runInput.pause = { by: definitionPause.by, since: definitionPause.since, reason: `definition ${definition} is paused${definitionPause.reason ? `: ${definitionPause.reason}` : ''}` };
    }
    const seq = versionOf(version, definition)?.seq;
    const origin = runInput.origin;
    const originLine = origin
      ? origin.kind === 'rerun'
        ? `\n\n**rerun of** ${origin.sourceRunId} from step \`${origin.fromStep}\` (by ${origin.by}${origin.reason ? `: ${origin.reason}` : ''})`
        : `\n\n**replay of** ${origin.sourceRunId} (by ${origin.by}${origin.reason ? `: ${origin.reason}` : ''})`
      : '';
    let handle;
    try {
      handle = await this.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: TASK_QUEUE,
        workflowId: runId,
        args: [runInput],
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        typedSearchAttributes: [
          { key: SA.definition, value: definition },
          { key: SA.version, value: version.hash },
          { key: SA.tenant, value: tenant },
          { key: SA.status, value: 'RUNNING' },
          ...this.metadataAttributes(runInput.metadata),
        ],
        memo: { definition, version: version.hash, versionSeq: seq ?? null, tenant, ...(origin ? { origin: { kind: origin.kind, sourceRunId: origin.sourceRunId, fromStep: origin.fromStep ?? null } } : {}) },
        staticSummary: `${definition} v${seq ?? '?'} (${version.hash.slice(0, 12)})${origin ? ` · ${origin.kind} of ${origin.sourceRunId}` : ''}`,
        staticDetails: `**definition** ${definition}\n\n**version** ${seq !== undefined ? `v${seq} ` : ''}\`${version.hash}\`\n\n**tenant** ${tenant}${originLine}`,
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        if (opts.ifExists === 'return') {
          const existing = await this.existingRun(runId);
          if (existing) return existing;
        }
        throw new PinflowError(ERROR_CODES.RUN_ALREADY_EXISTS, `a run with id ${JSON.stringify(runId)} already exists`, { runId });
      }
      throw err;
    }
    const temporalRunId = handle.firstExecutionRunId;
    safely(() => runsStarted.inc({ definition, version: shortVersion(version.hash) }));
    // Temporal accepted the run; mirror it now so lists show it at once.
    const row = {
      id: runId,
      definition,
      version: version.hash,
      tenant,
      temporalRunId,
      startedAt: new Date().toISOString(),
      input: runInput.input,
      metadata: runInput.metadata,
      ...(origin ? { origin } : {}),
    };
    try {
      await this.store.recordRunStarted(row);
    } catch (err) {
      // The database went away since the catalog read: the run is started
      // all the same (Temporal is the authority), and its first act, the
      // projectRunStarted local activity, writes this same row, retrying
      // until the database answers: the run is listed once it is back.
      if (isDatabaseUnavailable(err)) return { runId, temporalRunId, definition, version: version.hash, tenant, temporalUiUrl: this.uiLink(runId, temporalRunId) };
      // Postgres refuses the row for good (the input checks above should make
      // this impossible): the run's own write would be refused too and the
      // run would never be listed. Undo the start before anything ran, and fail.
      await handle.terminate(`pinflow: the projection refused the run's row; the start was undone`).catch(() => undefined);
      throw err;
    }
    return { runId, temporalRunId, definition, version: version.hash, tenant, temporalUiUrl: this.uiLink(runId, temporalRunId) };
  }

  /** The search attributes of the run's searchable metadata keys (strings, numbers and booleans only). */
  private metadataAttributes(metadata: Record<string, unknown>): Array<{ key: ReturnType<typeof metadataAttribute>; value: string }> {
    const out: Array<{ key: ReturnType<typeof metadataAttribute>; value: string }> = [];
    for (const key of this.searchableMetadata) {
      const value = metadata[key];
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out.push({ key: metadataAttribute(key), value: String(value) });
    }
    return out;
  }

  /** The start result of an existing pinflow run with this id (ifExists: 'return'), or undefined when it is not a pinflow run. */
  private async existingRun(runId: string): Promise<StartedRun | undefined> {
    const d = await this.client.workflow.getHandle(runId).describe();
    if (d.type !== WORKFLOW_TYPE) return undefined;
    const memo = (d.memo ?? {}) as { definition?: string; version?: string; tenant?: string };
    return {
      runId,
      // The execution Temporal runs now (a continued or migrated run has moved on from its first).
      temporalRunId: d.runId,
      definition: memo.definition ?? d.typedSearchAttributes.get(SA.definition) ?? '',
      version: memo.version ?? d.typedSearchAttributes.get(SA.version) ?? '',
      tenant: memo.tenant ?? d.typedSearchAttributes.get(SA.tenant) ?? '',
      temporalUiUrl: this.uiLink(runId, d.runId),
      existing: true,
    };
  }

  private async resolveTarget(opts: StartOptions): Promise<{ definition: string; version: VersionRecord; /** Read with the target (start by definition): the definition's pause, null when none. */ pause?: DefinitionPause | null }> {
    if (opts.version !== undefined) {
      if (!VERSION_HASH_PATTERN.test(opts.version)) {
        throw new InvalidRequestError(ERROR_CODES.REQUEST_INVALID, `version ${JSON.stringify(opts.version)} is not a version hash (64 lowercase hex digits)`, {
          field: 'version',
          received: opts.version,
        });
      }
      const version = await this.catalog.getVersion(opts.version);
      if (!version) {
        await this.refuseRemoved(opts.version);
        throw new NotFoundError(ERROR_CODES.VERSION_NOT_FOUND, `version ${opts.version} does not exist`, { version: opts.version });
      }
      if (opts.definition !== undefined) {
        if (!versionOf(version, opts.definition)) {
          throw new NotFoundError(
            ERROR_CODES.VERSION_NOT_FOUND,
            `version ${opts.version} was never published under definition ${JSON.stringify(opts.definition)}; ` +
              `it belongs to: ${version.definitions.map((d) => d.definition).join(', ')}`,
            { version: opts.version, definition: opts.definition },
          );
        }
        return { definition: opts.definition, version };
      }
      if (version.definitions.length !== 1) {
        throw new InvalidRequestError(
          ERROR_CODES.REQUEST_INVALID,
          `version ${opts.version} is published under several definitions (${version.definitions.map((d) => d.definition).join(', ')}); name one with "definition"`,
          { field: 'definition' },
        );
      }
      return { definition: version.definitions[0]!.definition, version };
    }
    if (opts.definition === undefined) {
      throw new InvalidRequestError(ERROR_CODES.REQUEST_INVALID, 'start needs a "definition" (latest version) or a "version" (exact hash)', {
        field: 'definition',
      });
    }
    // One read: the latest version and the definition's pause (no separate pause read in launch).
    const def = await this.store.startTarget(opts.definition);
    if (!def) throw new NotFoundError(ERROR_CODES.DEFINITION_NOT_FOUND, `definition ${JSON.stringify(opts.definition)} does not exist`, { definition: opts.definition });
    if (!def.version) throw new NotFoundError(ERROR_CODES.VERSION_NOT_FOUND, `version ${def.latestVersion} does not exist`);
    const version: VersionRecord = { ...def.version, graph: def.version.graph as VersionRecord['graph'], contracts: def.version.contracts as VersionRecord['contracts'] };
    return { definition: def.name, version, pause: def.pause ?? null };
  }

  /** Throws VERSION_REMOVED (410, the tombstone in `details`) when the version GC removed `hash`. */
  private async refuseRemoved(hash: string): Promise<void> {
    const tombstone = VERSION_HASH_PATTERN.test(hash) ? await this.catalog.getTombstone(hash) : undefined;
    if (tombstone) throw versionRemovedError(tombstone);
  }

  /**
   * A rerun or replay on the version its source ran, which the version GC
   * removed: the version is restored into the catalog from the run's own
   * history (where it is pinned), after checking that the graph and
   * contracts there hash to it. The new run is then an ordinary run of a
   * catalog version (contract checks, redaction, child and skip checks all
   * find it). True when it was restored.
   */
  private async restoreFromHistory(run: Pick<RunInput, 'version' | 'graph' | 'contracts'>): Promise<boolean> {
    if (await this.catalog.getVersion(run.version)) return false;
    if (!(await this.catalog.getTombstone(run.version))) return false;
    const hash = versionHash(run.graph, run.contracts);
    if (hash !== run.version) {
      throw new PinflowError(
        ERROR_CODES.HISTORY_UNREADABLE,
        `version ${run.version} was removed from the catalog and the graph in the run's history hashes to ${hash}, not to it; nothing was started`,
        { version: run.version, hashed: hash },
      );
    }
    return this.catalog.restoreVersion(run.version, run.graph, run.contracts);
  }

  listDefinitions(): Promise<DefinitionSummary[]> {
    return this.catalog.listDefinitions();
  }

  async listVersions(definition: string): Promise<VersionSummary[]> {
    parseInput(nameParams, { name: definition }, 'params');
    if (!(await this.catalog.getDefinition(definition))) {
      throw new NotFoundError(ERROR_CODES.DEFINITION_NOT_FOUND, `definition ${JSON.stringify(definition)} does not exist`, { definition });
    }
    return this.catalog.listVersions(definition);
  }

  async getVersion(hash: string): Promise<VersionRecord & { outline: GraphOutline }> {
    parseInput(hashParams, { hash }, 'params');
    const v = VERSION_HASH_PATTERN.test(hash) ? await this.catalog.getVersion(hash) : undefined;
    if (!v) {
      await this.refuseRemoved(hash);
      throw new NotFoundError(ERROR_CODES.VERSION_NOT_FOUND, `version ${JSON.stringify(hash)} does not exist`, { version: hash });
    }
    // The graph's nodes and edges, as every drawing of it uses them (graph/outline.ts).
    return { ...v, outline: outlineGraph(v.graph) };
  }

  /** The projected run with its steps and Temporal UI link. */
  async getRun(runId: string): Promise<RunDetail & { waits: WaitRecord[]; attention: AttentionFlag[]; legalHold: LegalHold | null; temporalUiUrl: string }> {
    parseInput(idParams, { id: runId }, 'params');
    const run = await this.store.getRun(runId);
    if (!run) throw new NotFoundError(ERROR_CODES.RUN_NOT_FOUND, `run ${JSON.stringify(runId)} does not exist`, { runId });
    // Every wait the run opened, open or closed, newest first: the correlation index's view of the run.
    const waits = await this.events.listWaits({ runId, status: undefined }, 1000);
    // Why it needs attention now (NO_WORKER while it lasts, for an open run).
    const attention = run.closedAt ? [] : await this.attention.ofRun(runId);
    // A legal hold keeps the run from retention sweeps (client/retention.ts).
    const legalHold = await this.retention.holdOf(runId);
    return { ...run, waits, attention, legalHold, temporalUiUrl: this.uiLink(run.id, run.temporalRunId) };
  }

  /** Keyset-paginated run list, newest first. */
  async listRuns(opts: ListRunsOptions = {}): Promise<RunPage & { runs: Array<RunPage['runs'][number] & { temporalUiUrl: string }> }> {
    // The same schema as GET /runs (status, limit 1..500, a strictly decoded cursor); the metadata filter keeps its own messages.
    const { metadata: rawMetadata, ...rest } = opts;
    const q = parseInput(listRunsOptions, rest, 'options');
    const limit = q.limit ?? 50;
    const metadata = rawMetadata === undefined ? undefined : validateMetadataFilter(rawMetadata);
    const page = await this.store.listRuns({ ...runFilterOf(q), status: q.status, metadata }, { cursor: q.cursor, limit });
    return { ...page, runs: page.runs.map((r) => ({ ...r, temporalUiUrl: this.uiLink(r.id, r.temporalRunId) })) };
  }

  /** How many runs of a run-list filter (without status, cursor and limit) are in each status. */
  async countRuns(opts: Omit<ListRunsOptions, 'status' | 'cursor' | 'limit'> = {}): Promise<{ counts: Record<RunStatus, number>; total: number }> {
    const { metadata: rawMetadata, ...rest } = opts;
    const q = parseInput(runCountsOptions, rest, 'options');
    const metadata = rawMetadata === undefined ? undefined : validateMetadataFilter(rawMetadata);
    return this.store.countRuns({ ...runFilterOf(q), metadata });
  }

  /** Await a run's output from Temporal (the authority). Throws WorkflowFailedError if it failed. */
  result(runId: string): Promise<unknown> {
    return this.client.workflow.getHandle(runId).result();
  }

  /** The live interpreter state, from the running workflow. */
  async state(runId: string): Promise<InterpreterState> {
    parseInput(idParams, { id: runId }, 'params');
    const handle = this.client.workflow.getHandle(runId);
    let state: InterpreterState;
    try {
      state = await handle.query(stateQuery);
    } catch (err) {
      // A closed run's state is still answered while Temporal can replay it; when it cannot, RUN_CLOSED says why.
      throw await mapRunError(handle, err, 'the state query');
    }
    // History holds the real values; what leaves here is redacted by the run's pinned marks (graph/redact.ts).
    // The state answers without the database (as before): then, and for a run not projected yet, the marks are
    // unknown, and every variable and step output is withheld (unsure: redact).
    const plan = await this.redactionPlanOf(runId).catch(() => undefined);
    if (plan) return redactRunState(plan, state);
    return { ...state, vars: {}, steps: Object.fromEntries(Object.keys(state.steps).map((k) => [k, REDACTED])), ...(state.output !== undefined ? { output: REDACTED } : {}) };
  }

  private readonly plans = new Map<string, RedactionPlan>();

  /** The redaction plan of the version a run is on (from its projected row), undefined when the run is not projected. */
  private async redactionPlanOf(runId: string): Promise<RedactionPlan | undefined> {
    // Read each time (one primary-key read): a migration moves a run to another version.
    const labels = await this.store.runLabels(runId);
    if (!labels) return undefined;
    let plan = this.plans.get(labels.version);
    if (!plan) {
      const version = await this.catalog.getVersion(labels.version);
      plan = version ? redactionPlan(version) : EMPTY_PLAN;
      this.plans.set(labels.version, plan);
      if (this.plans.size > 1000) this.plans.delete(this.plans.keys().next().value!);
    }
    return plan;
  }

  /**
   * Resolve a stalled run with `retry` (dispatch again against the current
   * registry) or `skip` (continue with an operator-supplied output). Sent as
   * a Temporal Update: an invalid decision is refused synchronously.
   */
  async resolveStall(runId: string, request: DecisionInput, opts: UpdateOptions = {}): Promise<{ stallId: string; action: string }> {
    const { id } = parseInput(idParams, { id: runId }, 'params');
    const input: DecisionInput = parseInput(decisionBody, request, 'body');
    const handle = this.client.workflow.getHandle(id);
    // Temporal decides whether the run exists and is open (404 RUN_NOT_FOUND, 409 RUN_CLOSED), whatever fields are given.
    const description = await requireOpenRun(handle, 'a stall decision');
    let stallId = input.stallId;
    if (!stallId) {
      const state = await handle.query(stateQuery).catch(async (err: unknown) => {
        throw await mapRunError(handle, err, 'a stall decision');
      });
      if (!state.stall) throw new PinflowError(ERROR_CODES.RUN_NOT_STALLED, `run ${JSON.stringify(runId)} is not stalled (status ${state.status})`, { runId, status: state.status });
      stallId = state.stall.id;
    }
    if (input.action === 'skip') {
      if (input.output === undefined) {
        throw new InvalidRequestError(ERROR_CODES.SKIP_OUTPUT_INVALID, 'skip needs an "output" for the skipped step', { field: 'output' });
      }
      // The run's version from Temporal (its search attribute), the contract from the catalog.
      const hash = description.typedSearchAttributes.get(SA.version);
      const version = hash ? await this.catalog.getVersion(hash) : undefined;
      const check = version ? checkSkipOutput(version, stallId, input.output) : undefined;
      if (check && !check.ok) {
        throw new InvalidRequestError(
          ERROR_CODES.SKIP_OUTPUT_INVALID,
          `the skip output does not satisfy the pinned output contract of RPC ${JSON.stringify(check.rpc)}: ${check.summary}`,
          { rpc: check.rpc, issues: check.issues },
        );
      }
    }
    const decision: StallDecision = { stallId, action: input.action, by: input.by, ...(input.reason ? { reason: input.reason } : {}), ...(input.output !== undefined ? { output: input.output } : {}) };
    try {
      const res = await handle.executeUpdate(resolveStallUpdate, { args: [decision], ...(opts.updateId ? { updateId: opts.updateId } : {}) });
      return { stallId: res.stallId, action: res.action };
    } catch (caught) {
      // The run may have closed (or vanished) since the check above.
      const err = await mapRunError(handle, caught, 'a stall decision');
      if (err instanceof PinflowError) throw err;
      if (err instanceof WorkflowUpdateFailedError) {
        const message = (err.cause)?.message ?? err.message;
        const code = message.startsWith('RUN_NOT_STALLED') ? ERROR_CODES.RUN_NOT_STALLED : ERROR_CODES.DECISION_REJECTED;
        throw new PinflowError(code, message.replace(/^[A-Z_]+: /, ''), { runId, stallId });
      }
      throw err;
    }
  }

  /** Bulk: resolve every run stalled on `rpc` (and `reason`), reporting each run's result. */
  async resolveStalled(filter: { rpc?: string; reason?: string }, input: Omit<DecisionInput, 'stallId'>): Promise<DecisionResult[]> {
    const stalled = await this.store.listStalled(filter);
    const results: DecisionResult[] = [];
    for (const r of stalled) {
      try {
        const res = await this.resolveStall(r.id, { ...input, stallId: r.stallId });
        results.push({ runId: r.id, ok: true, stallId: res.stallId, action: res.action });
      } catch (err) {
        const e = err as PinflowError;
        // The projection listed it, Temporal says it is over: passed over, not a failure of the batch.
        if (e instanceof PinflowError && (e.code === ERROR_CODES.RUN_CLOSED || e.code === ERROR_CODES.RUN_NOT_FOUND)) {
          results.push({ runId: r.id, ok: false, skipped: true, reason: e.message, stallId: r.stallId, error: { code: e.code, message: e.message } });
          continue;
        }
        results.push({ runId: r.id, ok: false, stallId: r.stallId, error: { code: e.code ?? ERROR_CODES.INTERNAL, message: e.message } });
      }
    }
    return results;
  }

  /**
   * Migrate an in-flight run to another version of its definition at a safe
   * point (stalled or waiting at a top-level step). Completed steps' outputs
   * carry over by step id, or through `mapping` for renames; each carried RPC
   * output must satisfy the target's contract. The run continues as new on
   * the target graph. A refused migration says exactly why.
   */
  async migrate(runId: string, request: { targetVersion: string; mapping?: Record<string, string>; by: string; reason?: string }, opts: UpdateOptions = {}): Promise<{ at: string; carried: string[]; dropped: string[] }> {
    parseInput(idParams, { id: runId }, 'params');
    const input = parseInput(migrateBody, request, 'body');
    const handle = this.client.workflow.getHandle(runId);
    const description = await requireOpenRun(handle, 'a migration');
    // The projection may not have the run's row yet (a child just started, a late run-started write): Temporal's memo says the definition.
    const definition = (await this.store.getRun(runId))?.definition ?? definitionFromMemo(description);
    const target = await this.getVersion(input.targetVersion);
    if (!versionOf(target, definition)) {
      throw new PinflowError(ERROR_CODES.MIGRATION_REFUSED, `version ${input.targetVersion} is not a version of ${JSON.stringify(definition)}`, { runId });
    }
    // What the run would carry, from the run itself (the live state query), not from projected steps.
    const state = await handle.query(stateQuery).catch(async (caught: unknown) => {
      const err = await mapRunError(handle, caught, 'a migration');
      if (err instanceof PinflowError) throw err;
      // The pre-check reads the run itself, which needs a worker to answer.
      throw new PinflowError(
        ERROR_CODES.TEMPORAL_UNAVAILABLE,
        `run ${JSON.stringify(runId)} did not answer its state query (${(err as Error).message}); is a pinflow worker polling the task queue?`,
        { runId },
      );
    });
    const problems = checkCarriedOutputs(target, state.steps, input.mapping).map((p) => `output of step ${p.stepId} does not satisfy the target contract of ${p.rpc}: ${p.summary}`);
    if (problems.length) throw new PinflowError(ERROR_CODES.MIGRATION_REFUSED, `migration refused: ${problems.join(' | ')}`, { runId, problems });
    try {
      const res = await handle.executeUpdate(migrateUpdate, {
        args: [{ targetVersion: target.hash, graph: target.graph, contracts: target.contracts, ...(input.mapping ? { mapping: input.mapping } : {}), by: input.by, ...(input.reason ? { reason: input.reason } : {}) }],
        ...(opts.updateId ? { updateId: opts.updateId } : {}),
      });
      return { at: res.at, carried: res.carried, dropped: res.dropped };
    } catch (caught) {
      const err = await mapRunError(handle, caught, 'a migration');
      if (err instanceof PinflowError) throw err;
      if (err instanceof WorkflowUpdateFailedError) {
        const message = (err.cause)?.message ?? err.message;
        throw new PinflowError(ERROR_CODES.MIGRATION_REFUSED, message.replace(/^[A-Z_]+: /, ''), { runId });
      }
      throw err;
    }
  }

  // ---- Pause and resume (FLAGS.PAUSE) ----

  /**
   * Pause a run: Temporal accepts the `pinflow.pause` update, the run holds
   * (PAUSED) at its next top-level step boundary and projects it. Idempotent:
   * a paused run answers `alreadyPaused: true` with the pause it holds.
   * A run started before 0.8.0 refuses (PAUSE_NOT_SUPPORTED).
   */
  async pause(runId: string, request: { by: string; reason?: string }): Promise<PauseResult> {
    const sent = await this.sendPauseUpdate(pauseUpdate, 'a pause', runId, request);
    if (sent.accepted) return { runId: sent.id, alreadyPaused: false, pause: sent.accepted.pause };
    if (sent.refusal.startsWith('RUN_ALREADY_PAUSED')) {
      const state = await sent.handle.query(stateQuery).catch(async (e: unknown) => {
        throw await mapRunError(sent.handle, e, 'a pause');
      });
      if (state.pause) return { runId: sent.id, alreadyPaused: true, pause: state.pause };
      // Resumed in between: pause again.
      return this.pause(runId, request);
    }
    if (sent.refusal.startsWith('PAUSE_NOT_SUPPORTED')) throw new PinflowError(ERROR_CODES.PAUSE_NOT_SUPPORTED, sent.refusal.replace(/^[A-Z_]+: /, ''), { runId: sent.id });
    throw new InvalidRequestError(ERROR_CODES.REQUEST_INVALID, sent.refusal.replace(/^[A-Z_]+: /, ''), { runId: sent.id });
  }

  /** Resume a paused run (a pending or held pause is lifted). Idempotent: a run that is not paused answers `wasPaused: false`. */
  async resume(runId: string, request: { by: string; reason?: string }): Promise<ResumeResult> {
    const sent = await this.sendPauseUpdate(resumeUpdate, 'a resume', runId, request);
    if (sent.accepted) return { runId: sent.id, wasPaused: true, pause: sent.accepted.pause };
    if (sent.refusal.startsWith('RUN_NOT_PAUSED')) return { runId: sent.id, wasPaused: false };
    throw new InvalidRequestError(ERROR_CODES.REQUEST_INVALID, sent.refusal.replace(/^[A-Z_]+: /, ''), { runId: sent.id });
  }

  /** Send the pause or resume update to an open run: what it accepted, or the validator's refusal (`CODE: why`). */
  private async sendPauseUpdate(
    update: typeof pauseUpdate,
    what: string,
    runId: string,
    request: { by: string; reason?: string },
  ): Promise<{ id: string; handle: ReturnType<Client['workflow']['getHandle']> } & ({ accepted: { pause: PauseInfo }; refusal?: never } | { accepted?: never; refusal: string })> {
    const { id } = parseInput(idParams, { id: runId }, 'params');
    const input = parseInput(pauseBody, request, 'body');
    const handle = this.client.workflow.getHandle(id);
    // Temporal says whether the run exists and is open (404 RUN_NOT_FOUND, 409 RUN_CLOSED).
    await requireOpenRun(handle, what);
    try {
      const res = await handle.executeUpdate(update, { args: [{ by: input.by, ...(input.reason ? { reason: input.reason } : {}) }] });
      return { id, handle, accepted: res };
    } catch (caught) {
      const err = await mapRunError(handle, caught, what);
      if (err instanceof PinflowError) throw err;
      const refusal = updateRefusal(err);
      if (refusal === undefined) throw err;
      return { id, handle, refusal };
    }
  }

  /**
   * Pause a definition: recorded first (new runs start paused from then on),
   * then every open run of it (listed from Temporal visibility, the
   * authority on which runs are open, so a run the projection has not seen
   * yet is paused too) is paused. Idempotent.
   */
  async pauseDefinition(name: string, request: { by: string; reason?: string }): Promise<DefinitionPauseResult> {
    const { name: definition } = parseInput(nameParams, { name }, 'params');
    const input = parseInput(pauseBody, request, 'body');
    await this.requireDefinition(definition);
    const recorded = await this.store.pauseDefinition(definition, input.by, input.reason ?? null);
    const reason = `definition ${definition} is paused${input.reason ? `: ${input.reason}` : ''}`;
    const runs = await this.forEachOpenRunOf(definition, async (runId) => {
      const res = await this.pause(runId, { by: input.by, reason });
      return !res.alreadyPaused;
    });
    return { definition, alreadyPaused: recorded.already, pause: { by: recorded.by, reason: recorded.reason, since: recorded.since }, runs };
  }

  /** Resume a definition: new runs start normally, and its paused open runs resume. Idempotent. */
  async resumeDefinition(name: string, request: { by: string; reason?: string }): Promise<DefinitionResumeResult> {
    const { name: definition } = parseInput(nameParams, { name }, 'params');
    const input = parseInput(pauseBody, request, 'body');
    await this.requireDefinition(definition);
    const lifted = await this.store.resumeDefinition(definition);
    const runs = await this.forEachOpenRunOf(definition, async (runId) => (await this.resume(runId, { by: input.by, ...(input.reason ? { reason: input.reason } : {}) })).wasPaused);
    return { definition, wasPaused: lifted !== undefined, runs };
  }

  private async requireDefinition(definition: string): Promise<void> {
    const def = await this.catalog.getDefinition(definition).catch((err: unknown) => {
      throw asUnavailable(err);
    });
    if (!def) throw new NotFoundError(ERROR_CODES.DEFINITION_NOT_FOUND, `definition ${JSON.stringify(definition)} does not exist`, { definition });
  }

  /** Apply `fn` to each open run of a definition (Temporal visibility), a few at a time; a run that closed meanwhile is passed over. */
  private async forEachOpenRunOf(definition: string, fn: (runId: string) => Promise<boolean>): Promise<PauseRunResult[]> {
    const ids: string[] = [];
    const query = `${SA.definition.name} = ${JSON.stringify(definition)} AND ExecutionStatus = "Running"`;
    for await (const wf of this.client.workflow.list({ query })) ids.push(wf.workflowId);
    const results: PauseRunResult[] = [];
    const queue = [...ids];
    const worker = async () => {
      for (let runId = queue.shift(); runId !== undefined; runId = queue.shift()) {
        try {
          results.push({ runId, ok: true, changed: await fn(runId) });
        } catch (err) {
          const e = err as PinflowError;
          if (e instanceof PinflowError && (e.code === ERROR_CODES.RUN_CLOSED || e.code === ERROR_CODES.RUN_NOT_FOUND)) continue;
          results.push({ runId, ok: false, error: { code: e.code ?? ERROR_CODES.INTERNAL, message: e.message } });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PAUSE_CONCURRENCY, queue.length) }, worker));
    return results.sort((a, b) => a.runId.localeCompare(b.runId));
  }

  /** Cancel a run in Temporal first; the decision is recorded once Temporal accepted it. */
  async cancel(runId: string, request: { by: string; reason?: string }): Promise<void> {
    parseInput(idParams, { id: runId }, 'params');
    const input = parseInput(cancelBody, request, 'body');
    const handle = this.client.workflow.getHandle(runId);
    // A closed run is not cancelled and nothing is recorded: 409 RUN_CLOSED (Temporal says so, not the projection).
    const description = await requireOpenRun(handle, 'cancel');
    // The decision is recorded against the run's row: wait a moment for a row that is late, and refuse (doing nothing) if it stays away.
    const run = (await this.store.getRun(runId)) ?? (await this.projectedRunSoon(runId, description));
    try {
      await handle.cancel();
    } catch (caught) {
      throw await mapRunError(handle, caught, 'cancel');
    }
    await this.store.recordDecision({
      runId,
      stallId: run.stall?.id ?? null,
      action: 'cancel',
      by: input.by,
      reason: input.reason,
      decidedAt: new Date().toISOString(),
      outcome: 'cancellation requested in Temporal',
    });
  }

  /**
   * The projected row of a run Temporal runs but the projection does not
   * list yet: its own run-started write lands within moments unless the
   * database is behind. Waits up to PROJECTION_CATCH_UP_MS, then answers 503
   * RUN_NOT_PROJECTED, having done nothing.
   */
  private async projectedRunSoon(runId: string, description: WorkflowExecutionDescription): Promise<RunDetail> {
    definitionFromMemo(description); // 404 for a workflow that is not a pinflow run
    const deadline = Date.now() + PROJECTION_CATCH_UP_MS;
    for (;;) {
      const run = await this.store.getRun(runId);
      if (run) return run;
      if (Date.now() > deadline) {
        throw new PinflowError(
          ERROR_CODES.RUN_NOT_PROJECTED,
          `run ${JSON.stringify(runId)} is running in Temporal but its row has not reached the projection within ${PROJECTION_CATCH_UP_MS} ms; nothing was done: retry shortly`,
          { runId },
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Which open runs would stall under the given contract manifest (the registry about to be deployed). */
  checkDeploy(manifest: ContractManifest): Promise<DeployReport> {
    const { contracts } = parseInput(manifestBody, { contracts: manifest }, 'body');
    return checkDeploy({ store: this.store, catalog: this.catalog, queryState: temporalStateReader(this.client) }, contracts);
  }

  /** Temporal reachable, database reachable, and a worker polling the task queue. */
  async health(): Promise<Health> {
    const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));
    const temporalCheck = this.client.connection.workflowService.getSystemInfo({}).then(
      () => ({ ok: true }),
      (err: unknown) => ({ ok: false, error: errorText(err) }),
    );
    // Bounded: a database that does not answer (a partition, a full pool) must not hang /health.
    const dbCheck = withTimeout(this.store.ping(), HEALTH_DB_TIMEOUT_MS, `the database did not answer within ${HEALTH_DB_TIMEOUT_MS} ms`).then(
      () => ({ ok: true }),
      (err: unknown) => ({ ok: false, error: errorText(err) }),
    );
    const workerCheck = (async () => {
      try {
        const types = [temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY];
        const now = Date.now();
        let pollers = 0;
        let workflowPollers = 0;
        for (const taskQueueType of types) {
          const res = await this.client.connection.workflowService.describeTaskQueue({
            namespace: this.namespace,
            taskQueue: { name: TASK_QUEUE, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
            taskQueueType,
          });
          const fresh = (res.pollers ?? []).filter((p) => {
            const t = p.lastAccessTime;
            const ms = t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
            return now - ms < POLLER_FRESH_MS;
          }).length;
          pollers += fresh;
          if (taskQueueType === temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW) workflowPollers = fresh;
        }
        return { polling: workflowPollers > 0, pollers, taskQueue: TASK_QUEUE };
      } catch (err) {
        return { polling: false, pollers: 0, taskQueue: TASK_QUEUE, error: errorText(err) };
      }
    })();
    const attentionCheck = withTimeout(this.attention.counts(), HEALTH_DB_TIMEOUT_MS, 'attention counts').catch(() => undefined);
    const [t, d, w, attention] = await Promise.all([temporalCheck, dbCheck, workerCheck, attentionCheck]);
    // The projection lag informs; it never makes the service unhealthy (runs go on without the projection).
    const lag = this.projectionLag?.();
    const namespace = this.retention.namespaceStatus();
    return { ok: t.ok && d.ok && w.polling, temporal: t, database: d, worker: w, ...(lag ? { projection: lag } : {}), ...(attention ? { attention } : {}), ...(namespace ? { retention: { namespace } } : {}) };
  }
}
