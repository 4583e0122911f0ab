/**
 * Wire types of the interpreter: its start input, its queryable state and the
 * step records it hands to projection activities. Pure types; a change here
 * is a change to recorded histories, so only ever add optional fields.
 */
import type { RunLimits } from './limits';
import type { Graph, PinnedContracts } from './schema';
import type { RunStatus, StallDecisionAction, StallReason, StepStatus } from './terminology';

export type { StallReason } from './terminology';

/** The start input of a run: the pinned graph lives in history through it. */
export interface RunInput {
  runId: string;
  definition: string;
  /** The version hash the run is pinned to. */
  version: string;
  graph: Graph;
  contracts: PinnedContracts;
  input: unknown;
  tenant: string;
  metadata: Record<string, unknown>;
  /** Set when a `child` step of another run started this one. */
  parent?: { runId: string; stepInstance: string };
  /** Set when the run continued as new onto another version (a migration): where to pick up. */
  resume?: ResumePoint;
  /** The versions this run ran before, and up to which step. */
  lineage?: LineageEntry[];
  /**
   * Since 0.6.0: the expression budget and forEach limit this run uses, set
   * by the client at start from its deployment's settings and carried across
   * continue-as-new and into child runs. Absent (runs started earlier):
   * DEFAULT_RUN_LIMITS. Workflow code reads only this, never process config.
   */
  limits?: RunLimits;
  /**
   * Since 0.8.0: set when this run was started from another run's history
   * (rerun from a step, replay). Data only: the interpreter does not read it.
   */
  origin?: RunOrigin;
  /**
   * Since 0.8.0 (FLAGS.PAUSE): the run starts paused (its definition is
   * paused) and holds before its first step until resumed. Carried across
   * continue-as-new while the run is paused or a pause is pending.
   */
  pause?: PauseInfo;
}

/** Who paused a run, why and since when (FLAGS.PAUSE). */
export interface PauseInfo {
  by: string;
  reason?: string;
  /** When the pause was asked for. */
  since: string;
  /** Set once the run holds at a top-level step boundary: the step it resumes at. */
  heldAt?: string;
}

/** The `pinflow.pause` and `pinflow.resume` updates' argument. */
export interface PauseRequest {
  by: string;
  reason?: string;
}

/** Where a rerun or replay came from. */
export interface RunOrigin {
  kind: 'rerun' | 'replay';
  /** The run whose history seeded this one. */
  sourceRunId: string;
  /** The version the source run was on (at `fromStep`, for a rerun; at its start, for a replay). */
  sourceVersion: string;
  /** Rerun: the top-level step this run starts at, and which occurrence of it in the source (1-based). */
  fromStep?: string;
  occurrence?: number;
  by: string;
  reason?: string;
}

export interface ResumePoint {
  /** Top-level step of the (new) graph to continue at. */
  at: string;
  /** Outputs of completed steps carried over, by (new) step id. */
  steps: Record<string, unknown>;
  vars: Record<string, unknown>;
  seq: number;
  /** Next dispatch number per step instance, so projection rows of earlier dispatches are kept. */
  nextDispatch: Record<string, number>;
  /** Since 0.4.0: event signals received but not yet consumed, carried into the next execution. */
  inbox?: EventSignal[];
  /** Since 0.4.0: ids of events this run consumed (the most recent 1,000), so none is consumed twice. */
  consumed?: string[];
  /** Since 0.4.0: set when the run moved while waiting at `at`: the wait keeps its id and look-back point. */
  wait?: { waitId: string; reachedAt: string };
}

/**
 * One event as the router signals it to a waiting run (`pinflow.event`), and
 * as the mailbox hands it over when a wait opens. The run re-checks all of it.
 */
export interface EventSignal {
  eventId: string;
  tenant: string;
  name: string;
  /** The resolved correlation key, as a string (a numeric key 42 is "42"). */
  correlationKey: string;
  payload: unknown;
  /** When the event log received it (ISO). */
  receivedAt: string;
  /** The wait it was routed to. */
  waitId: string;
  /**
   * Since 0.6.0, only in openWait's answer: a buffered event (received
   * before the run reached the wait, with a time to live) offered to the
   * wait. The run consumes it only after `consumeBuffered` says it won it.
   */
  buffered?: true;
}

/** What a resolved wait step outputs (and `saveAs` stores): the event it consumed. */
export interface WaitOutput {
  eventId: string;
  name: string;
  correlationKey: string;
  payload: unknown;
  receivedAt: string;
}

/** Arguments of the openWait activity: register in the correlation index, look back in the mailbox. */
export interface WaitOpening {
  runId: string;
  tenant: string;
  waitId: string;
  stepId: string;
  stepInstance: string;
  seq: number;
  event: string;
  correlationKey: string;
  hasFilter: boolean;
  reachedAt: string;
  timeoutAt: string | null;
  trail: StepRecord[];
  /** Since 0.6.0, set only when false (the wait's `acceptBuffered: false`): offer no buffered events. */
  acceptBuffered?: false;
}

/** Arguments of the consumeBuffered activity: this wait takes this buffered event, if no other wait did. */
export interface BufferedConsume {
  tenant: string;
  eventId: string;
  runId: string;
  waitId: string;
}

/** Arguments of the closeWait activity. */
export interface WaitClosing {
  runId: string;
  waitId: string;
  status: 'RESOLVED' | 'TIMED_OUT' | 'CANCELLED';
  eventId?: string;
  closedAt: string;
  trail: StepRecord[];
}

export interface LineageEntry {
  version: string;
  /** The step instance the run had reached on that version. */
  upTo: string;
  migratedAt: string;
  by: string;
}

/** An operator's request to migrate a run (at a safe point) to another version. */
export interface MigrateRequest {
  targetVersion: string;
  graph: Graph;
  contracts: PinnedContracts;
  /** Old step id → new step id, for renames. Default: the same id. */
  mapping?: Record<string, string>;
  by: string;
  reason?: string;
}

/** One step instance attempt, as the projection stores it. */
export interface StepRecord {
  stepInstance: string;
  attempt: number;
  /** Dispatch of the step instance: 1, then +1 for each operator `retry` after a stall. */
  dispatch?: number;
  /** E.g. `[{ kind: 'contract_drift', ... }]`. */
  notes?: unknown[];
  stepId: string;
  stepType: string;
  /** Order in which step instances began within the run. */
  seq: number;
  status: StepStatus;
  startedAt: string;
  finishedAt?: string;
  input?: unknown;
  output?: unknown;
  error?: ErrorInfo;
}

/** A serialisable error, as the projection and the query show it. */
export interface ErrorInfo {
  /** Stable type, e.g. `RpcHandlerError`, `OUT_OF_STOCK`. */
  type: string;
  message: string;
  stepId?: string;
  stepInstance?: string;
  attempt?: number;
  details?: unknown;
}

/** The live interpreter state, returned by the state query. */
export interface InterpreterState {
  status: RunStatus;
  /** The step instance started most recently, or null once closed. */
  cursor: string | null;
  /** Step instances in flight (several inside forEach/parallel). */
  active: string[];
  /** Set while the run is stalled. */
  stall?: StallInfo;
  /** Decisions applied so far. */
  decisions?: Array<StallDecision & { decidedAt: string }>;
  /** Set while a wait step is open (the most recently opened one). */
  waiting?: { stepInstance: string; event: string; correlationKey: unknown };
  /** Since 0.4.0: every open wait, with the events it ignored and why (the most recent 20 each). */
  waits?: ActiveWaitState[];
  /** Step instances completed so far, in order. */
  completed: string[];
  vars: Record<string, unknown>;
  /** Outputs of completed steps by step id. */
  steps: Record<string, unknown>;
  output?: unknown;
  error?: ErrorInfo;
  /** Since 0.8.0: set while a pause is pending or held (`heldAt` once the run holds; status PAUSED). */
  pause?: PauseInfo;
}

export interface ActiveWaitState {
  waitId: string;
  stepInstance: string;
  event: string;
  correlationKey: string;
  reachedAt: string;
  timeoutAt: string | null;
  ignored: Array<{ eventId: string; reason: string }>;
}

/** Arguments of the RPC activity. */
export interface RpcCall {
  runId: string;
  tenant: string;
  rpc: string;
  stepId: string;
  stepInstance: string;
  seq: number;
  input: unknown;
  /** The contract hash pinned in the run's version. */
  pinnedContractHash: string;
  /** Control-step records not yet projected (they add no events of their own). */
  trail: StepRecord[];
  /** From the step's idempotencyKey expression; default `<runId>:<stepInstance>`. */
  idempotencyKey?: string;
  /** 1, then +1 for each operator retry after a stall. */
  dispatch?: number;
  /** The run's version hash: the activity reads the pinned contract from it. */
  version?: string;
}


export interface StallInfo {
  /** Unique per stall within the run; decisions must name it. */
  id: string;
  reason: StallReason;
  rpc: string;
  stepId: string;
  stepInstance: string;
  message: string;
  details?: unknown;
  since: string;
}

/** An operator decision on a stalled run, sent as the `pinflow.resolveStall` update. */
export interface StallDecision {
  stallId: string;
  action: StallDecisionAction;
  /** Who decided (user, service). */
  by: string;
  reason?: string;
  /** With `skip`: the step's output, valid against the pinned output contract. */
  output?: unknown;
}

/** Arguments of the child-version resolution activity (its result is pinned in history). */
export interface ChildTarget {
  definition: string;
  /** Exact hash; undefined means the definition's latest version now. */
  version: string | undefined;
}

/** What a child run is pinned to. */
export interface ResolvedChild {
  version: string;
  seq: number;
  graph: RunInput['graph'];
  contracts: RunInput['contracts'];
}

/** Arguments of the run-closed projection activity. */
export interface RunClosed {
  runId: string;
  status: Extract<RunStatus, 'COMPLETED' | 'FAILED' | 'CANCELLED'>;
  output?: unknown;
  error?: ErrorInfo;
  closedAt: string;
  trail: StepRecord[];
}

/** Arguments of the run-started projection activity. */
export interface RunStarted {
  runId: string;
  temporalRunId: string;
  definition: string;
  version: string;
  tenant: string;
  input: unknown;
  metadata: Record<string, unknown>;
  startedAt: string;
  parent?: { runId: string; stepInstance: string };
}

/** Arguments of the migration projection activity. */
export interface MigrationRecord {
  runId: string;
  from: string;
  to: string;
  upTo: string;
  at: string;
  by: string;
  reason?: string;
  stallId: string | null;
  decidedAt: string;
  lineage: LineageEntry[];
  trail: StepRecord[];
}

/** Arguments of the continue-as-new planning activity. */
export interface ContinueAsNewPlan {
  runId: string;
  definition: string;
  version: string;
  policy: 'pinned' | 'latest';
  /** The top-level step the next execution starts at. */
  at: string;
  /** Outputs of completed top-level steps by id. */
  steps: Record<string, unknown>;
  trail: StepRecord[];
  lineage: LineageEntry[];
}

/** Where the next execution runs: the same version, or the latest one when it can take the state. */
export interface ContinueAsNewTarget {
  moved: boolean;
  /** Set when moved: the latest version the run continues on. */
  version?: string;
  graph?: Graph;
  contracts?: PinnedContracts;
  /** Why the run stayed pinned although the policy is latest. */
  stayedBecause?: string;
  lineage: LineageEntry[];
}
