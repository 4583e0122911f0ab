/**
 * The run context: one object per run holding the interpreter's per-run
 * state (frames, the queryable state, open stalls, the event inbox, open
 * waits, the trail of control-step records, the continue-as-new and
 * migration bookkeeping) and the few operations on it that every step
 * family shares. Step handlers (workflows/steps/) get it as their first
 * argument instead of closing over locals.
 *
 * Determinism: workflow code only. Methods that call Temporal APIs
 * (activities, timers, search attributes, conditions) do so in exactly the
 * order the interpreter did before it was split up; keep it that way.
 */
import { CancellationScope, condition, patched, setCurrentDetails, upsertSearchAttributes, type WorkflowInfo } from '@temporalio/workflow';
import { evaluateExpression, evaluateExpressionNow, evaluateMapping, evaluateMappingNow, type EvaluationGuards, type ExpressionScope, type ExpressionSite } from '../graph/expression';
import { DEFAULT_RUN_LIMITS, type RunLimits } from '../graph/limits';
import type { Mapping } from '../graph/schema';
import type { Step } from '../graph/schema';
import { SA } from '../graph/search-attributes';
import { STALL_DECISION_ACTIONS, type StallDecisionAction } from '../graph/terminology';
import type { ActiveWaitState, ErrorInfo, EventSignal, InterpreterState, MigrateRequest, PauseInfo, PauseRequest, RunInput, StallDecision, StallInfo, StepRecord } from '../graph/wire';
import { FLAGS, ON_WITH_FLAGS_AT_START, type FlagId } from './flags';
import { localProjection, projection, projectionWith } from './proxies';
import { currentDetails } from './story';

/** A step failed: catchable by `onError`, or it fails the enclosing (sub)graph. */
export class StepFailure extends Error {
  constructor(readonly info: ErrorInfo) {
    super(info.message);
  }
}

/** Unwinds the interpreter to the top, where the run continues as new on the target version. */
export class MigrateNow extends Error {}

/** Unwinds to the top at a top-level step boundary: Temporal suggested continue-as-new. */
export class ContinueNow extends Error {
  constructor(readonly at: string) {
    super(`continue as new at ${at}`);
  }
}

/** Where a (sub)graph walk keeps its data. Loop iterations and branches get their own. */
export interface Frame {
  vars: Record<string, unknown>;
  steps: Record<string, unknown>;
  /** Appended to step ids to name instances: `[3]` inside item 3 of a forEach. */
  suffix: string;
  item?: unknown;
  index?: number;
  error?: ErrorInfo;
}

/** One step instance being executed: its name, its sequence number in the run, and when it started. */
export interface StepAt {
  instance: string;
  seq: number;
  startedAt: string;
}

/** An open wait: its queryable state, and the inbox entries it has already looked at. */
export interface ActiveWait {
  state: ActiveWaitState;
  offered: Set<EventSignal>;
}

/** A migration the run has accepted: it continues as new on the target at the next safe point. */
export interface Migration {
  request: MigrateRequest;
  /** The step the run resumes at in the target. */
  at: string;
  /** The top-level step instance the run leaves. */
  from: string;
  /** The stalled dispatch, or 0 (not stalled). */
  dispatch: number;
  /** Set when the run migrates at a wait: the wait keeps its id and look-back point. */
  wait?: { waitId: string; reachedAt: string };
}

/** The answer to a between-steps migration, once the next step boundary has decided it. */
export type MigrationSummary = { accepted: true; at: string; carried: string[]; dropped: string[] };
export type BoundaryOutcome = { result: MigrationSummary } | { refused: string };

/** How the run uses an expression's value: `stored` values must be storable by the projection. */
export interface EvaluateOptions {
  stored?: boolean;
}

/** Step types that take time: a top-level one becomes PinflowCurrentStep (control steps pass in the same task). */
const DURABLE_STEP_TYPES: ReadonlySet<string> = new Set(['rpc', 'wait', 'sleep', 'child', 'forEach', 'parallel']);
/** With FLAGS.CURRENT_STEP_AT_REST: the top-level steps PinflowCurrentStep names (an rpc step only once it stalls). */
const RESTING_STEP_TYPES: ReadonlySet<string> = new Set(['wait', 'sleep', 'child', 'forEach', 'parallel']);

/** Unconsumed event signals kept at most (oldest dropped first); carried at continue-as-new. */
const INBOX_LIMIT = 100;
/** Consumed event ids carried at continue-as-new, so a run never consumes one twice. */
const CONSUMED_CARRIED = 1_000;

/** A signal payload from outside the sandbox: check its shape before trusting it. */
function isEventSignal(e: unknown): e is EventSignal {
  const x = e as Partial<EventSignal> | null;
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.eventId === 'string' &&
    typeof x.tenant === 'string' &&
    typeof x.name === 'string' &&
    typeof x.correlationKey === 'string' &&
    typeof x.receivedAt === 'string' &&
    typeof x.waitId === 'string'
  );
}

function isStallDecisionAction(action: unknown): action is StallDecisionAction {
  return (STALL_DECISION_ACTIONS as readonly unknown[]).includes(action);
}

export class RunContext {
  /** The top-level frame: its vars and steps are the ones the state query shows. */
  readonly root: Frame;
  /** What the `pinflow.state` query returns. */
  readonly state: InterpreterState;

  /** Open stalls by id, each waiting for its decision. Several can be open inside forEach/parallel. */
  readonly openStalls = new Map<string, { info: StallInfo; decision?: StallDecision }>();

  // Events (since 0.4.0). Signals are buffered in the inbox; each open wait
  // takes the first entry that passes its checks.
  readonly inbox: EventSignal[];
  readonly consumed: Set<string>;
  /** Waits that resolved, timed out or were cancelled in this execution: signals for them are stale. */
  readonly closedWaits = new Set<string>();
  readonly activeWaits = new Map<string, ActiveWait>();
  /** The wait a migration (at that wait) carried over: it keeps its id and look-back point. */
  resumedWait: { waitId: string; reachedAt: string } | undefined;

  /** Step instances named so far, per step id and frame suffix. */
  private readonly occurrences = new Map<string, number>();
  /** The last step sequence number given out. */
  seq: number;
  /** Dispatch to resume a step instance at (after a migration at a stall). */
  readonly nextDispatch: Map<string, number>;

  /** Set by the migrate update; the run continues as new at the next safe point. */
  migration: Migration | undefined;
  /** A migration requested while a top-level step runs: applied at the next step boundary. */
  boundaryRequest: MigrateRequest | undefined;
  boundaryOutcome: BoundaryOutcome | undefined;

  /** Step records waiting for the next activity to project them. */
  private readonly trail: StepRecord[] = [];
  /** The run-level projection writes: activities, or local activities since FLAGS.LOCAL_RUN_PROJECTION. */
  private runProjection: typeof projection = projection;
  /** Set by decideFlags: the run recorded FLAGS.FLAGS_AT_START, so flags 1 to 8 are on without asking. */
  private flagsAtStart = false;
  /** Set by decideFlags: the run recorded FLAGS.RUN_STORY (asked only after FLAGS_AT_START). */
  private runStory = false;
  /** Set by decideFlags: the run recorded FLAGS.PAUSE (asked only after FLAGS_AT_START), so it can be paused. */
  private pausable = false;
  /** The scope's `run` member: one object per run, so the size guard measures it once. */
  private runView: ExpressionScope['run'] | undefined;
  /**
   * Set by decideFlags: the run recorded FLAGS.FLAGS_AT_START_0_9, the 0.9.0 release marker. Flags 12, 14 and 15
   * are on exactly with it (never asked on their own): the three getters below read it.
   */
  private release09 = false;
  /** FLAGS.SYNC_EXPRESSIONS: evaluate/evaluateMapping may hand back a value instead of a promise. */
  get syncExpressions(): boolean {
    return this.release09;
  }
  /** FLAGS.DIRECT_RPC_STEP: the walk awaits an rpc step's activity itself. */
  get directRpc(): boolean {
    return this.release09;
  }
  /** FLAGS.CURRENT_STEP_AT_REST: PinflowCurrentStep names only a step the run rests at. */
  private get currentStepAtRest(): boolean {
    return this.release09;
  }
  /** A pause pending or held (FLAGS.PAUSE); cleared by resume. */
  pausing: PauseInfo | undefined;
  /** The story search attributes as last set (at start or upserted), so only changes are upserted. */
  private readonly told = new Map<string, string | null>();
  /** The step type of each instance in flight, for the current details. */
  readonly stepTypes = new Map<string, string>();
  /** Set when the run has accepted a migration and is about to make it: shown in the current details. */
  migrating: { from: string; to: string; at: string; by: string } | undefined;

  constructor(
    readonly run: RunInput,
    readonly info: WorkflowInfo,
  ) {
    this.root = { vars: { ...run.resume?.vars }, steps: { ...run.resume?.steps }, suffix: '' };
    this.state = { status: 'RUNNING', cursor: null, completed: [], vars: this.root.vars, steps: this.root.steps, active: [] };
    this.inbox = [...(run.resume?.inbox ?? [])];
    this.consumed = new Set<string>(run.resume?.consumed ?? []);
    this.resumedWait = run.resume?.wait;
    this.seq = run.resume?.seq ?? 0;
    this.nextDispatch = new Map(Object.entries(run.resume?.nextDispatch ?? {}));
  }

  /**
   * Workflow time as ISO 8601. Time stands still within an activation, so the text is made once per
   * clock value (every step records two timestamps).
   */
  now(): string {
    const t = Date.now();
    if (t !== this.nowAt) {
      this.nowAt = t;
      this.nowText = new Date(t).toISOString();
    }
    return this.nowText;
  }
  private nowAt = Number.NaN;
  private nowText = '';

  /** The pending records, handed to the activity that projects them. */
  takeTrail(): StepRecord[] {
    return this.trail.splice(0);
  }

  /** Put back what a failed activity carried: upserts are idempotent, so projecting twice is harmless. */
  requeueTrail(records: StepRecord[]): void {
    this.trail.unshift(...records);
  }

  pushRecord(record: StepRecord): void {
    this.trail.push(record);
  }

  /** Record one attempt of a step instance, finished now. */
  record(step: Step, at: StepAt, fields: Partial<StepRecord> & Pick<StepRecord, 'status'>): void {
    this.trail.push({ stepInstance: at.instance, attempt: 1, stepId: step.id, stepType: step.type, seq: at.seq, startedAt: at.startedAt, finishedAt: this.now(), ...fields });
  }

  /** The limits this run started with (its start input); runs started before 0.6.0 have the defaults. */
  get limits(): RunLimits {
    return this.run.limits ?? DEFAULT_RUN_LIMITS;
  }

  /**
   * Evaluate one expression of a step under the run's guards (FLAGS.EXPRESSION_GUARDS).
   * A promise; with FLAGS.SYNC_EXPRESSIONS the value itself when the expression
   * was evaluated synchronously (callers check with isThenable, or await).
   */
  evaluate(source: string, scope: ExpressionScope, site: ExpressionSite, opts: EvaluateOptions = {}): unknown {
    if (this.syncExpressions) return evaluateExpressionNow(source, scope, site, this.guards(opts));
    return evaluateExpression(source, scope, site, this.guards(opts));
  }

  /** Evaluate a mapping of a step (its leaves are expressions) under the run's guards; a promise or, as evaluate, a value. */
  evaluateMapping(mapping: Mapping | undefined, scope: ExpressionScope, site: ExpressionSite, opts: EvaluateOptions = {}): unknown {
    if (this.syncExpressions) return evaluateMappingNow(mapping, scope, site, this.guards(opts));
    return evaluateMapping(mapping, scope, site, this.guards(opts));
  }

  /**
   * The run's evaluation guards: its budget, and whether a tripped guard
   * (over budget, an unsafe regex, an unstorable stored value) fails the
   * step. That is decided by FLAGS.EXPRESSION_GUARDS, asked only when a guard
   * trips: replaying a run from before the flag, the expression is evaluated
   * unbounded and unchecked, as it ran then. The promise handed back is the
   * evaluation's own (no extra await), so the microtask schedule of
   * concurrent branches is the one recorded histories have.
   */
  private guards(opts: EvaluateOptions): EvaluationGuards {
    return { budget: this.limits.expression, enforce: () => this.flag(FLAGS.EXPRESSION_GUARDS), ...(opts.stored ? { stored: true } : {}) };
  }

  /** The expression scope of a frame: input, steps, vars, run, and item/index/error where set. */
  scope(f: Frame): ExpressionScope {
    const run = this.run;
    const s: ExpressionScope & Record<string, unknown> = {
      input: run.input,
      steps: f.steps,
      vars: f.vars,
      run: (this.runView ??= { runId: run.runId, tenant: run.tenant, version: run.version, definition: run.definition, startedAt: this.info.startTime.toISOString() }),
    };
    if (f.index !== undefined) {
      s.item = f.item;
      s.index = f.index;
    }
    if (f.error) s.error = f.error;
    return s;
  }

  /** Name the next instance of a step in a frame (`id`, `id#2`, `id[3]`), and mark it in flight. */
  enterStep(stepId: string, f: Frame): StepAt {
    const key = `${stepId}${f.suffix}`;
    const n = (this.occurrences.get(key) ?? 0) + 1;
    this.occurrences.set(key, n);
    const instance = n === 1 ? key : `${key}#${n}`;
    const seq = ++this.seq;
    const startedAt = this.now();
    this.state.cursor = instance;
    this.state.active.push(instance);
    return { instance, seq, startedAt };
  }

  /** The instance is no longer in flight. */
  leaveStep(instance: string): void {
    this.state.active = this.state.active.filter((a) => a !== instance);
    this.stepTypes.delete(instance);
  }

  /** The instance completed. */
  completeStep(instance: string): void {
    this.state.completed.push(instance);
    this.leaveStep(instance);
  }

  /** The projection activities with a summary for the Temporal UI. */
  private projectionAs(summary: string): typeof projection {
    return this.runProjection === localProjection ? projectionWith(summary, true) : projectionWith(summary, false);
  }

  /**
   * The run's first command (FLAGS.FLAGS_AT_START): it decides, before the
   * run-started local activity, how the run behaves. A history recorded
   * before 0.7.0 has no such marker at its start, so this is false on its
   * replay and each flag is asked where it always was.
   */
  decideFlags(): void {
    // Flag 16 first: a new run records this one marker, and every flag is on for it.
    if (patched(FLAGS.FLAGS_AT_START_0_9)) {
      this.flagsAtStart = this.runStory = this.pausable = this.release09 = true;
    } else {
      // A history recorded by 0.7.0 or 0.8.0: its markers, in the order they were asked.
      this.flagsAtStart = patched(FLAGS.FLAGS_AT_START);
      // Flag 10 is asked right after flag 9, in the same first task, and only by a run that has flag 9.
      if (this.flagsAtStart) this.runStory = patched(FLAGS.RUN_STORY);
      // Flag 11 right after flag 10, in the same first task, only by a run that has flag 9.
      if (this.flagsAtStart) this.pausable = patched(FLAGS.PAUSE);
    }
    // A run of a paused definition starts paused (its start input), and holds before its first step.
    if (this.pausable && this.run.pause) {
      this.pausing = { ...this.run.pause };
      delete this.pausing.heldAt;
      this.state.pause = this.pausing;
    }
    for (const key of [SA.status, SA.currentStep, SA.stallReason]) this.told.set(key.name, this.info.typedSearchAttributes.get(key) ?? null);
  }

  /** Whether the behaviour change `id` (flags.ts) is on for this run. Workflow code asks this, never `patched()`. */
  flag(id: FlagId): boolean {
    if (id === FLAGS.RUN_STORY) return this.runStory; // decided at start, never asked later
    if (id === FLAGS.PAUSE) return this.pausable; // decided at start, never asked later
    // Decided at start, never asked later: the release marker and the flags that are on exactly with it.
    if (id === FLAGS.FLAGS_AT_START_0_9 || id === FLAGS.SYNC_EXPRESSIONS || id === FLAGS.DIRECT_RPC_STEP || id === FLAGS.CURRENT_STEP_AT_REST) return this.release09;
    if (this.flagsAtStart && ON_WITH_FLAGS_AT_START.has(id)) return true;
    return patched(id);
  }

  // ---- The story the Temporal UI shows (FLAGS.RUN_STORY; workflows/story.ts) ----

  /** The PinflowStatus of a running run: STALLED over WAITING over RUNNING. */
  liveStatus(): 'RUNNING' | 'WAITING' | 'STALLED' {
    if (this.openStalls.size > 0) return 'STALLED';
    if (this.activeWaits.size > 0 || this.state.waiting) return 'WAITING';
    return 'RUNNING';
  }

  /**
   * Keep the story search attributes current (FLAGS.RUN_STORY): one upsert
   * command carrying only what changed, none when nothing did.
   */
  tell(values: { status?: string; currentStep?: string | null; stallReason?: string | null }): void {
    if (!this.runStory) return;
    const updates: Array<{ key: typeof SA.status; value: string | null }> = [];
    const put = (key: typeof SA.status, value: string | null | undefined) => {
      if (value === undefined || this.told.get(key.name) === value) return;
      this.told.set(key.name, value);
      updates.push({ key, value });
    };
    put(SA.status, values.status);
    put(SA.currentStep, values.currentStep);
    put(SA.stallReason, values.stallReason);
    if (updates.length > 0) upsertSearchAttributes(updates);
  }

  /** The status attribute follows the run's waits and stalls (and names `currentStep` when given). */
  tellStatus(currentStep?: string): void {
    this.tell({ status: this.liveStatus(), stallReason: this.state.stall?.reason ?? null, ...(currentStep !== undefined ? { currentStep } : {}) });
    this.refreshDetails();
  }

  /** Set the run's current details (markdown, not a command: no replay impact). */
  refreshDetails(): void {
    setCurrentDetails(
      currentDetails({
        runId: this.run.runId,
        definition: this.run.definition,
        version: this.run.version,
        state: this.state,
        status: this.state.status === 'RUNNING' || this.state.status === 'STALLED' ? this.liveStatus() : this.state.status,
        types: this.stepTypes,
        ...(this.migrating ? { migration: this.migrating } : {}),
        ...(this.pausing ? { pause: this.pausing } : {}),
      }),
    );
  }

  /**
   * A top-level step starts: the current step attribute names it when it takes time (not a control step);
   * with FLAGS.CURRENT_STEP_AT_REST only when the run rests there (not an rpc step: cleared instead).
   */
  topLevelStep(step: Step, at: StepAt): void {
    if (this.currentStepAtRest) {
      if (RESTING_STEP_TYPES.has(step.type)) this.tell({ currentStep: at.instance });
      else if (step.type === 'rpc') this.tell({ currentStep: null });
    } else if (DURABLE_STEP_TYPES.has(step.type)) this.tell({ currentStep: at.instance });
    // The details are read between activations, and a control step never ends one: the step after it
    // (or the close, a pause's hold) refreshes them. Not a command: no replay impact.
    if (DURABLE_STEP_TYPES.has(step.type)) this.refreshDetails();
  }

  /** Project the run's start. Decides once per execution whether run-level writes are local activities. */
  async projectStarted(): Promise<void> {
    // A run started before 0.4.0 keeps its activities on replay.
    this.runProjection = this.flag(FLAGS.LOCAL_RUN_PROJECTION) ? localProjection : projection;
    const run = this.run;
    await this.projectionAs(`run started · ${run.definition}`).projectRunStarted({
      runId: run.runId,
      temporalRunId: this.info.runId,
      definition: run.definition,
      version: run.version,
      tenant: run.tenant,
      input: run.input,
      metadata: run.metadata,
      startedAt: this.info.startTime.toISOString(),
      ...(run.parent ? { parent: run.parent } : {}),
    });
  }

  /** The run ended: set the final state and project it with the pending trail. */
  async close(status: 'COMPLETED' | 'FAILED' | 'CANCELLED', fields: { output?: unknown; error?: ErrorInfo }): Promise<void> {
    const state = this.state;
    state.status = status;
    state.cursor = null;
    state.active = [];
    if (fields.output !== undefined) state.output = fields.output;
    if (fields.error) state.error = fields.error;
    this.tell({ status, stallReason: null });
    this.refreshDetails();
    await this.projectionAs(`run ${status.toLowerCase()}`).projectRunClosed({ runId: this.run.runId, status, ...fields, closedAt: this.now(), trail: this.takeTrail() });
  }

  /** Close the run as cancelled, even though its scope is cancelled. */
  async closeCancelled(): Promise<void> {
    const cursor = this.state.cursor;
    await CancellationScope.nonCancellable(() => this.close('CANCELLED', { error: { type: 'Cancelled', message: 'the run was cancelled', ...(cursor ? { stepInstance: cursor } : {}) } }));
  }

  // ---- Pause and resume (FLAGS.PAUSE) ----

  /** Why a pause is refused, before anything is written to history. */
  validatePause(p: PauseRequest): void {
    if (!this.pausable) {
      throw new Error(`PAUSE_NOT_SUPPORTED: run ${this.run.runId} was started by a release without pause (before 0.8.0, flag ${FLAGS.PAUSE}); it cannot be paused: cancel it, or let it finish`);
    }
    if (typeof p?.by !== 'string' || p.by.length === 0) throw new Error('PAUSE_REJECTED: "by" must name who pauses the run');
    if (this.pausing) throw new Error(`RUN_ALREADY_PAUSED: run ${this.run.runId} is already paused since ${this.pausing.since} by ${this.pausing.by}`);
  }

  /** Accept a validated pause: the run holds at its next top-level step boundary. */
  acceptPause(p: PauseRequest): { accepted: true; pause: PauseInfo } {
    this.pausing = { by: p.by, ...(p.reason ? { reason: p.reason } : {}), since: this.now() };
    this.state.pause = this.pausing;
    this.refreshDetails();
    return { accepted: true as const, pause: this.pausing };
  }

  /** Why a resume is refused, before anything is written to history. */
  validateResume(p: PauseRequest): void {
    if (typeof p?.by !== 'string' || p.by.length === 0) throw new Error('PAUSE_REJECTED: "by" must name who resumes the run');
    if (!this.pausing) throw new Error(`RUN_NOT_PAUSED: run ${this.run.runId} is not paused (status ${this.state.status})`);
  }

  /** Accept a validated resume: a held run goes on, a pending pause is dropped. */
  acceptResume(p: PauseRequest): { accepted: true; pause: PauseInfo } {
    const lifted = this.pausing!;
    this.pausing = undefined;
    this.resumedBy = { by: p.by, ...(p.reason ? { reason: p.reason } : {}), at: this.now() };
    delete this.state.pause;
    this.refreshDetails();
    return { accepted: true as const, pause: lifted };
  }

  /** Who resumed the run last (for the projection write after the hold). */
  private resumedBy: { by: string; reason?: string; at: string } | undefined;

  /**
   * At a top-level step boundary (run-graph.ts): hold while a pause is
   * pending, on a condition (durable, no polling), until resumed. Cancel
   * cancels the condition: the run closes CANCELLED.
   */
  async holdIfPaused(at: string): Promise<void> {
    if (!this.pausing) return;
    const state = this.state;
    const pause = this.pausing;
    pause.heldAt = at;
    state.status = 'PAUSED';
    this.tell({ status: 'PAUSED', currentStep: null });
    this.refreshDetails();
    await projectionWith(`pause before ${at}`).projectPause({ runId: this.run.runId, pause, trail: this.takeTrail() });
    await condition(() => this.pausing !== pause);
    state.status = 'RUNNING';
    this.tellStatus();
    const resumed = this.resumedBy ?? { by: 'unknown', at: this.now() };
    await projectionWith(`resume at ${at}`).projectResume({ runId: this.run.runId, since: pause.since, by: resumed.by, ...(resumed.reason ? { reason: resumed.reason } : {}), resumedAt: resumed.at });
    // A pause asked for while the resume was being projected holds at the next boundary.
  }

  // ---- Stalls and decisions ----

  /**
   * Why a stall decision is refused, thrown before anything is written to
   * history; returns when the decision may be applied.
   */
  validateDecision(d: StallDecision): void {
    if (this.openStalls.size === 0) throw new Error(`RUN_NOT_STALLED: run ${this.run.runId} is not stalled`);
    const open = this.openStalls.get(d?.stallId);
    if (!open) throw new Error(`DECISION_REJECTED: stall ${JSON.stringify(d?.stallId)} is not open; open stalls: ${[...this.openStalls.keys()].join(', ')}`);
    if (open.decision) throw new Error(`DECISION_REJECTED: stall ${d.stallId} already has a decision (${open.decision.action})`);
    const action: unknown = d.action;
    if (!isStallDecisionAction(action)) {
      throw new Error(`DECISION_REJECTED: action ${JSON.stringify(action)} is not one of ${STALL_DECISION_ACTIONS.join(', ')} (cancel the run to cancel)`);
    }
    if (typeof d.by !== 'string' || d.by.length === 0) throw new Error('DECISION_REJECTED: "by" must name who decided');
    switch (action) {
      case 'retry':
        return;
      case 'skip':
        if (d.output === undefined) throw new Error('DECISION_REJECTED: skip needs an "output" for the skipped step');
        return;
      default: {
        const never: never = action;
        throw new Error(`DECISION_REJECTED: action ${JSON.stringify(never)} is not handled`);
      }
    }
  }

  /** Apply a validated decision: the stalled step picks it up. */
  acceptDecision(decision: StallDecision): { accepted: true; stallId: string; action: StallDecision['action'] } {
    this.openStalls.get(decision.stallId)!.decision = decision;
    return { accepted: true as const, stallId: decision.stallId, action: decision.action };
  }

  /** Stall until an operator decides (retry or skip). Durable: a condition, no polling activities. */
  async stallFor(info: StallInfo): Promise<StallDecision> {
    const state = this.state;
    this.openStalls.set(info.id, { info });
    state.stall = info;
    state.status = 'STALLED';
    // FLAGS.CURRENT_STEP_AT_REST: a top-level rpc step is named once the run rests at it, stalled (the same upsert).
    if (this.runStory) this.tellStatus(this.currentStepAtRest && this.told.get(SA.currentStep.name) === null ? info.stepInstance : undefined);
    else upsertSearchAttributes([{ key: SA.status, value: 'STALLED' }]);
    await projectionWith(`stall ${info.stepInstance} · ${info.rpc} · ${info.reason}`).projectStall({ runId: this.run.runId, stall: info, trail: this.takeTrail() });
    await condition(() => this.openStalls.get(info.id)!.decision !== undefined || this.migration !== undefined);
    if (this.migration) throw new MigrateNow();
    const decision = this.openStalls.get(info.id)!.decision!;
    this.openStalls.delete(info.id);
    const next = this.openStalls.values().next();
    if (next.done) {
      delete state.stall;
      state.status = 'RUNNING';
      if (!this.runStory) upsertSearchAttributes([{ key: SA.status, value: 'RUNNING' }]);
    } else state.stall = next.value.info;
    if (this.runStory) this.tellStatus();
    const decidedAt = this.now();
    (state.decisions ??= []).push({ ...decision, decidedAt });
    await projectionWith(`decision ${info.stepInstance} · ${decision.action}`).projectDecision({ runId: this.run.runId, decision, decidedAt, outcome: decisionOutcome(decision.action, info.stepInstance) });
    return decision;
  }

  // ---- Events ----

  /** The `pinflow.event` signal: buffer the event unless it is foreign, stale or a duplicate. */
  receiveEvent(e: EventSignal): void {
    const inbox = this.inbox;
    if (!isEventSignal(e) || e.tenant !== this.run.tenant) return; // not an event for this run
    if (this.consumed.has(e.eventId) || this.closedWaits.has(e.waitId)) return; // a duplicate, or meant for a wait that is over
    if (inbox.some((x) => x.eventId === e.eventId && x.waitId === e.waitId)) return; // sent again
    inbox.push(e);
    if (inbox.length > INBOX_LIMIT) inbox.splice(0, inbox.length - INBOX_LIMIT);
  }

  /** A wait took this event: never offer it again. */
  consume(e: EventSignal): void {
    const inbox = this.inbox;
    this.consumed.add(e.eventId);
    for (let i = inbox.length - 1; i >= 0; i--) if (inbox[i]!.eventId === e.eventId) inbox.splice(i, 1);
  }

  /** What the next execution inherits: unconsumed signals (never lost) and the consumed ids (never consumed twice). */
  carriedEvents(): { inbox?: EventSignal[]; consumed?: string[] } {
    return {
      ...(this.inbox.length > 0 ? { inbox: [...this.inbox] } : {}),
      ...(this.consumed.size > 0 ? { consumed: [...this.consumed].slice(-CONSUMED_CARRIED) } : {}),
    };
  }

  /** Show the open waits in the state query. */
  publishWaits(): void {
    const open = [...this.activeWaits.values()].map((w) => w.state);
    if (open.length > 0) this.state.waits = open;
    else delete this.state.waits;
  }
}

/** How the projection describes what a decision did to the stalled step. */
function decisionOutcome(action: StallDecisionAction, stepInstance: string): string {
  switch (action) {
    case 'retry':
      return `step ${stepInstance} dispatched again`;
    case 'skip':
      return `step ${stepInstance} skipped with the operator's output`;
    default: {
      const never: never = action;
      throw new Error(`unhandled stall decision ${JSON.stringify(never)}`);
    }
  }
}
