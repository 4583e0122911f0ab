/**
 * pinflow terminology. Every name below is used with exactly this meaning in
 * code, docs, the API and the projection.
 *
 * - **definition**: a named workflow, e.g. `order-fulfilment`. It points at its
 *   latest published version.
 * - **graph**: the JSON data describing a definition's steps and control flow,
 *   validated by the one zod schema in `graph/schema.ts`.
 * - **version**: an immutable graph plus the contracts of the RPCs it calls,
 *   identified by its content hash (sha256 over canonical JSON with
 *   documentation-only fields removed). Stored once, however many runs use it.
 * - **run**: one Temporal workflow execution of {@link WORKFLOW_TYPE} on
 *   {@link TASK_QUEUE}, pinned to one version. The run id is the workflow id.
 * - **step**: a node of the graph. Its author-given `id` is its identity across
 *   versions. A **step instance** is a step id plus its occurrence index
 *   (`charge`, `charge#2`); it keys idempotency and the projection.
 * - **RPC**: a named, zod-typed handler registered in the worker. Its
 *   **contract** is the JSON Schema of its input and output plus their hash.
 * - **wait**: a run blocked on an event (name + correlation key) or a timer.
 *   Each open wait has a **wait id** (`<step instance>@<seq>`) and a row in the
 *   **correlation index** (`run_waits`), through which events are routed.
 * - **event**: a business fact submitted from outside (`ticket.closed` with a
 *   payload) through one of three **doors** (the library, `POST /events`, a
 *   Redis stream) into the one ingress function. Its **correlation key** is
 *   explicit or derived by a **correlation rule** (JSONata per event name).
 * - **event log**: every event with its resolved key and its routing outcome;
 *   a **delivery** is one event signalled to one waiting run. A delivery is
 *   **claimed** (`SENDING`, by one router, for the claim timeout) before it
 *   is signalled, so it is signalled once.
 * - **buffered event**: an event with a **time to live** (`ttl`, or its
 *   name's default in the correlation rule) that matched no open wait. It
 *   stays `BUFFERED` until it expires (`EXPIRED`); the first wait that opens
 *   for its tenant, name and key and accepts it consumes it, once.
 * - **dead letter**: a stream message the stream door could not turn into an
 *   event (malformed, refused, or failing past its attempts), copied with the
 *   reason to the dead-letter stream `<stream>:dead` and acknowledged.
 * - **mailbox**: the look-back a wait does when it opens: events that arrived
 *   after the run reached the step but before the wait row existed.
 * - **projection**: the Postgres tables mirroring runs for lists, dashboards and
 *   event routing. Derived, idempotent, rebuildable; never an authority.
 * - **derivation**: what a run's projection rows are, built from the activity
 *   calls its interpreter made (`projection/derive.ts`); the live activities
 *   and the **rebuild** (`pinflow projection rebuild`, rows rewritten from
 *   Temporal history) share it. **Drift** is a difference between a run's
 *   rows and its history's, found by **verify** (`pinflow projection verify`).
 * - **stall**: a run paused because the live deployment cannot serve its pinned
 *   graph ({@link STALL_REASONS}); an operator resolves it with a
 *   **decision** ({@link DECISION_ACTIONS}).
 * - **rerun** (from a step): a new run that starts at a top-level step of a
 *   source run's graph, seeded with the vars and step outputs the source run
 *   had just before it; a **replay** is a new run from the start with the
 *   source run's original (or an edited) input. Both are read from the source
 *   run's Temporal history by a **capture replay** (worker/history.ts,
 *   workflows/capture.ts), and the new run records its **origin** (lineage).
 * - **pause**: an operator hold on a run (`PAUSED`) or on a whole definition
 *   (its open runs pause, its new runs start paused). A paused run holds at
 *   its next top-level step boundary until **resumed** or cancelled; unlike
 *   a stall it is asked for, not caused by the deployment (FLAGS.PAUSE).
 * - **attention**: why an open run needs an operator now
 *   ({@link ATTENTION_REASONS}), flagged by the attention checker
 *   (`client/attention.ts`) and cleared when the condition ends.
 * - **catalog**: definitions, versions and their contracts (`catalog/`).
 *   Authoritative and never rebuilt; decisions and migrations read it.
 * - **tombstone**: what the catalog keeps of a version the version GC
 *   removed (`client/version-gc.ts`): its hash, definitions, numbers and
 *   publish times, and when, by whom and why it went; not its graph or
 *   contracts. Runs of it keep their graph in their Temporal history.
 * - **compatibility**: whether a position or a value fits a version: a
 *   migration's step mapping, a continue-as-new target (positions, pure:
 *   `graph/compat.ts`, which the interpreter uses too); a skip output, carried
 *   outputs (values against pinned contracts: `catalog/contracts.ts`); a child
 *   or start version of a definition (`VersionStore.getVersionOf`).
 * - **projection writer** (`projection/writer.ts`): the bounded, in-process
 *   outbox every projection write of the worker goes through (its own pool,
 *   retries with backoff, ordered per run). Its **lag** (queued writes, age of
 *   the oldest, last error) is what `/health` shows; the run never waits on it
 *   longer than a short write-through wait.
 * - **superseded attempt**: an attempt of a step dispatch whose outcome
 *   Temporal never accepted because it started a later attempt (`SUPERSEDED`).
 * - **run context**: the interpreter's per-run state in one object
 *   (`workflows/context.ts`); each **step handler** (`workflows/steps/`)
 *   executes one step family against it.
 * - **evaluation budget**: what one expression evaluation may spend, counted
 *   (evaluation steps, depth, items, string length, regex input), never
 *   timed, so every replay reaches the same verdict (`graph/limits.ts`).
 *   Over it: `EXPRESSION_BUDGET_EXCEEDED`.
 * - **run limits**: a run's evaluation budget and its largest forEach
 *   (`maxForEachItems`), set by the client at start from the deployment's
 *   settings and carried in the run's own start input (`RunInput.limits`).
 * - **unsafe regex**: a regular expression that can backtrack catastrophically
 *   (`graph/regex-guard.ts`); refused before it runs (`REGEX_UNSAFE`).
 * - **unstorable value**: a string Postgres cannot store (a NUL character, a
 *   lone UTF-16 surrogate); produced by an expression whose value is stored,
 *   it fails the step (`ValueNotStorable`).
 * - **reconciler** (`client/reconcile.ts`): compares the open runs of the
 *   projection with Temporal (`describe`) and closes what Temporal closed
 *   without the run's own projection write (terminated, cancelled, timed out
 *   or deleted from Temporal): status, closed-at, open waits leave the
 *   correlation index, stalls and open step attempts end. A run Temporal says
 *   is running is never closed; a reset run's row follows its new execution.
 *   One **reconcile pass** returns its totals (checked, corrected by kind,
 *   errors).
 * - **API key** (`client/keys.ts`): `pf_<id>_<secret>`, shown once, stored as
 *   a scrypt hash; bound to one **tenant** or to all. Its **scopes** (`read`,
 *   `operate`, `publish`, `admin`) say which routes it may call; each route
 *   declares the scope it needs in its ROUTES entry (`config.scope`).
 * - **audit log** (`client/audit.ts`, table `audit_log`): one append-only row
 *   per write action: who (key id), what (action, target), on which runs, why
 *   (reason, required for **destructive actions**), when, and its outcome
 *   (accepted, denied, refused, failed).
 * - **batch** (`client/batches.ts`): one operator action ({@link BATCH_ACTIONS})
 *   applied to every run a run filter (the run list's) selected when the
 *   batch was created, in the background of the API process, at a rate. Its
 *   **items** are the selected runs, snapshot at creation: a run that matches
 *   later is not added. Each item is acted on at most once per batch, even
 *   across restarts ({@link BATCH_ITEM_STATUSES}); the batch itself can be
 *   paused, resumed and cancelled ({@link BATCH_STATES}). The **action
 *   table** (`client/batch-actions.ts`) says, per action, its parameters,
 *   which runs it applies to and how it is applied.
 * - **sensitive field**: a field whose JSON Schema carries `sensitive: true`,
 *   in an RPC contract (zod `.meta({ sensitive: true })`) or in a
 *   definition's **input schema** (`inputSchema`, checked at start:
 *   `INPUT_INVALID`); a **sensitive variable** is one named in the graph's
 *   `sensitiveVars`. **Redaction** (`graph/redact.ts`) shows their values as
 *   `"[redacted]"` on every surface pinflow writes (projection, API, logs);
 *   Temporal history keeps the real values. A version's **redaction plan**
 *   gathers its marks.
 * - **payload codec** (`codec/encryption.ts`): encrypts every payload in
 *   Temporal history (AES-256-GCM) when an **encryption key** is configured;
 *   each payload names its **key id**, so keys rotate (old keys decrypt). The
 *   **codec endpoint** (`/codec/encode`, `/codec/decode`) lets the Temporal UI
 *   show decoded payloads.
 */

/**
 * The one task queue. Deliberately not configurable: producers and the worker
 * disagreeing on the queue leaves runs RUNNING forever with nobody polling.
 */
export const TASK_QUEUE = 'pinflow' as const;

/** The one workflow type: the graph interpreter. A wire name; never rename. */
export const WORKFLOW_TYPE = 'pinflowInterpreter' as const;

/** Custom search attributes pinflow registers (all Keyword). Wire names. */
export const SEARCH_ATTRIBUTES = {
  definition: 'PinflowDefinition',
  version: 'PinflowVersion',
  tenant: 'PinflowTenant',
  /**
   * Since 0.7.0 (FLAGS.RUN_STORY): `RUNNING`, `WAITING` (a wait is open),
   * `STALLED` (waiting for an operator decision), then `COMPLETED`, `FAILED`
   * or `CANCELLED` at close. Runs started before 0.7.0 have it only after a
   * stall (`STALLED`, then `RUNNING`). Since 0.8.0 (FLAGS.PAUSE): `PAUSED`
   * while the run holds at a step boundary.
   */
  status: 'PinflowStatus',
  /** Since 0.7.0: the stall reason (graph/terminology STALL_REASONS) while the run is stalled; empty otherwise. */
  stallReason: 'PinflowStallReason',
  /** Since 0.7.0: the top-level step instance in flight that takes time (rpc, wait, sleep, child, forEach, parallel). */
  currentStep: 'PinflowCurrentStep',
} as const;

/**
 * The prefix of the Keyword search attribute a searchable metadata key gets
 * (`PINFLOW_SEARCHABLE_METADATA=orderId` → `PinflowMeta_orderId`), set at
 * start from the run's metadata.
 */
export const SEARCHABLE_METADATA_PREFIX = 'PinflowMeta_' as const;
/** At most this many searchable metadata keys: each one is a search attribute of the namespace. */
export const SEARCHABLE_METADATA_MAX = 10;
/** A searchable metadata key: letters, digits and `_`, starting with a letter (it becomes part of an attribute name). */
export const SEARCHABLE_METADATA_KEY = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

/**
 * Run statuses as the projection shows them. `PAUSED` (since 0.8.0): the run
 * holds at a top-level step boundary until resumed. `TERMINATED` is written only by
 * the reconciler: Temporal ended the run without its graph (terminated from
 * the Temporal UI or CLI, a workflow timeout, or deleted by retention).
 */
export const RUN_STATUSES = ['RUNNING', 'STALLED', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/**
 * Step instance statuses as the projection shows them. One row per attempt of
 * a dispatch; `SUPERSEDED` is an attempt whose outcome Temporal never accepted
 * because a later attempt of the same dispatch started (see
 * {@link ATTEMPT_SUPERSEDED}). Exactly one attempt per dispatch ends COMPLETED.
 */
export const STEP_STATUSES = ['RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED', 'SUPERSEDED'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

/** The step status of a superseded attempt. */
export const SUPERSEDED = 'SUPERSEDED' as const satisfies StepStatus;

/**
 * The error type recorded on a superseded attempt: it was still RUNNING (its
 * worker was lost, or it timed out) or it wrote COMPLETED but its completion
 * never reached Temporal, and Temporal started a later attempt of the same
 * dispatch. Replaces 0.5's `AttemptAbandoned` (FAILED), which covered only the
 * RUNNING case and left a second COMPLETED row when a completion was lost.
 */
export const ATTEMPT_SUPERSEDED = 'AttemptSuperseded' as const;

/**
 * Step states of the console's per-step counts (`GET /versions/:hash/step-counts`)
 * and of the run list's `step` + `stepState` filter, each counted in RUNS now
 * pinned to the version (a run counts once per step and state, whatever its
 * instances and attempts). "Now at" the step: `running` (an attempt row
 * RUNNING; not a wait step's), `waiting` (an OPEN wait at it), `stalled` (the run is STALLED at
 * it). Has been through it: `passed` (an attempt COMPLETED, not by a skip),
 * `failed` (an attempt FAILED, a stall's failed attempt excepted), `skipped`
 * (completed by an operator's skip decision). Kept in the step_counts table
 * by the transactions that write the rows (migrations/000013_console.sql; static triggers since 000014).
 */
export const STEP_COUNT_STATES = ['running', 'waiting', 'stalled', 'passed', 'failed', 'skipped'] as const;
export type StepCountState = (typeof STEP_COUNT_STATES)[number];

/** Why the live deployment cannot serve a run's pinned graph. Wire values. */
export const STALL_REASONS = ['rpc_missing', 'input_incompatible', 'output_incompatible'] as const;
export type StallReason = (typeof STALL_REASONS)[number];

/**
 * What an operator can decide for a run. Wire values, recorded in
 * `run_decisions` (its CHECK constraint lists the same four).
 * - `retry`: dispatch the stalled step again against the live deployment;
 * - `skip`: complete the stalled step with an operator-given output, valid
 *   against the pinned output contract;
 * - `migrate`: move the run to another version (its own update);
 * - `cancel`: cancel the run (a Temporal cancellation).
 */
export const DECISION_ACTIONS = ['retry', 'skip', 'migrate', 'cancel'] as const;
export type DecisionAction = (typeof DECISION_ACTIONS)[number];

/** The decisions the `pinflow.resolveStall` update takes; migrate and cancel have their own calls. */
export const STALL_DECISION_ACTIONS = ['retry', 'skip'] as const satisfies readonly DecisionAction[];
export type StallDecisionAction = (typeof STALL_DECISION_ACTIONS)[number];

/**
 * What a batch can do to each run it selected. Wire values (`batches.action`).
 * Rerun, replay, pause and resume join this list with their entries in the
 * action table.
 */
export const BATCH_ACTIONS = ['cancel', 'retry', 'skip', 'migrate', 'pause', 'resume', 'rerun', 'replay'] as const;
export type BatchAction = (typeof BATCH_ACTIONS)[number];

/**
 * A batch's state: `RUNNING` (items are being acted on), `PAUSED` (none is
 * started; resume goes on), `CANCELLED` (the items not started are SKIPPED,
 * reason "batch cancelled"), `COMPLETED` (every item is DONE, SKIPPED or FAILED).
 */
export const BATCH_STATES = ['RUNNING', 'PAUSED', 'CANCELLED', 'COMPLETED'] as const;
export type BatchState = (typeof BATCH_STATES)[number];

/**
 * A batch item's status: `PENDING`, `APPLYING` (claimed by one API process
 * under a lease), then `DONE` (acted on), `SKIPPED` (the action does not apply
 * to the run, or the batch was cancelled: with a code and reason) or `FAILED`
 * (Temporal or pinflow refused the action: with a code and reason).
 */
export const BATCH_ITEM_STATUSES = ['PENDING', 'APPLYING', 'DONE', 'SKIPPED', 'FAILED'] as const;
export type BatchItemStatus = (typeof BATCH_ITEM_STATUSES)[number];

/** A tenant name. */
export const TENANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** A version hash: sha256 hex. The versions table's CHECK constraint uses the same pattern. */
export const VERSION_HASH_PATTERN = /^[0-9a-f]{64}$/;

/** The tenant used when a run names none. */
export const DEFAULT_TENANT = 'default' as const;

/**
 * Why a run needs attention (client/attention.ts), since 0.8.0:
 * - `NO_WORKER`: no worker polls the task queue (global: every open run waits);
 * - `NO_PROGRESS`: no progress (a projection write or an activity heartbeat)
 *   for longer than the threshold while the run is not sleeping, waiting,
 *   stalled, paused or running a child;
 * - `RPC_RETRYING`: an RPC step's activity is on its Nth attempt or later;
 * - `WORKFLOW_TASK_FAILING`: Temporal retries the run's workflow task (a
 *   non-determinism after a bad deploy, a crash in the interpreter);
 * - `WAIT_OVERDUE`: a wait step is open longer than its `sla`.
 */
export const ATTENTION_REASONS = ['NO_WORKER', 'NO_PROGRESS', 'RPC_RETRYING', 'WORKFLOW_TASK_FAILING', 'WAIT_OVERDUE'] as const;
export type AttentionReason = (typeof ATTENTION_REASONS)[number];

/** Statuses of an event in the event log. */
export const EVENT_STATUSES = ['RECEIVED', 'ROUTED', 'UNMATCHED', 'BUFFERED', 'EXPIRED', 'FAILED', 'REJECTED'] as const;
export type EventStatus = (typeof EVENT_STATUSES)[number];

/** Statuses of a wait in the correlation index. */
export const WAIT_STATUSES = ['OPEN', 'RESOLVED', 'TIMED_OUT', 'CANCELLED'] as const;
export type WaitStatus = (typeof WAIT_STATUSES)[number];

/** Statuses of one event's delivery to one waiting run. */
export const DELIVERY_STATUSES = ['PENDING', 'SENDING', 'DELIVERED', 'FAILED', 'RUN_CLOSED'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/**
 * How an event reached a wait: `signal` (routed through the index),
 * `lookback` (the mailbox, when the wait opened), `buffer` (a buffered event
 * the wait consumed when it opened).
 */
export const DELIVERY_VIAS = ['signal', 'lookback', 'buffer'] as const;
export type DeliveryVia = (typeof DELIVERY_VIAS)[number];

/** Where an event came in. */
export const EVENT_SOURCES = ['library', 'api', 'stream'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];
