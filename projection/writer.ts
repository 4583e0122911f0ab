/**
 * The projection writer: the bounded, in-process outbox that every projection
 * write of the worker goes through (the RPC activity's attempt rows and the
 * run-level writes: started, closed, stall, decision, migration, the trail
 * before a continue-as-new). It exists so that the projection never decides
 * the outcome of a run (DESIGN.md, Authority):
 *
 * - **its own limit**: at most `concurrency` writes run at once (on their own
 *   small pool when the worker is given one), so writes blocked on a locked
 *   or slow projection never take the connections that reads a run depends on
 *   (the catalog, the correlation index) need;
 * - **write-through, then queued**: a caller waits for its write at most
 *   `syncWaitMs` (and never past its own cancellation). In normal operation
 *   the write is done when the activity returns, as before; when the
 *   projection is slow or down, the activity goes on and the write stays
 *   queued;
 * - **ordered per run**: a run's writes apply one at a time in the order they
 *   were submitted; different runs proceed in parallel;
 * - **retried with backoff** while the error is transient (a lost connection,
 *   a lock timeout, Postgres down); the writes are the store's idempotent
 *   upserts, so a retry never duplicates a row;
 * - **a permanent refusal** (a NUL in a JSON value, a CHECK constraint) is
 *   retried once with its payloads (inputs, outputs, errors, metadata)
 *   replaced by a marker naming the refusal, so the run's status and its step
 *   rows still land; if that is refused too, the write is dropped. Both are
 *   logged with the run id. Nothing is thrown at the run;
 * - **bounded**: at most `maxQueued` writes wait. When the queue is full a new
 *   write is dropped, counted (`dropped`) and logged with its run id.
 *
 * The gap, named: queued writes live in this process's memory. A worker that
 * dies (SIGKILL, OOM) with writes queued loses them, and those rows stay as
 * they were until a later write of the same run overwrites them or the
 * projection is rebuilt from Temporal history (reconciliation is a later
 * issue). Write-through keeps the queue empty while the projection is healthy,
 * so the gap is open only while it is slow or down.
 */
import type { RunStatus } from '../graph/terminology';
import type { ErrorInfo, MigrationRecord, StepRecord } from '../graph/wire';
import type { DecisionAction } from '../graph/terminology';
import type { ProjectionStore } from './store';
import { projectionWriteDuration, projectionWriteFailures, runsClosed, runsStarted, safely, secondsSince, shortVersion, stepDuration } from '../observability/metrics';

type StallRow = Parameters<ProjectionStore['recordStall']>[1];
type RunStartedRow = Parameters<ProjectionStore['recordRunStarted']>[0];
type DecisionRow = Parameters<ProjectionStore['recordDecision']>[0];

/** One projection write, as data, so it can be queued, retried and stripped of its payloads. */
export type ProjectionWrite =
  | { kind: 'steps'; runId: string; steps: StepRecord[]; currentStep?: string | undefined; /** The run's version, when the writer knows it (its redaction plan). */ version?: string | undefined }
  | { kind: 'runStarted'; runId: string; run: RunStartedRow }
  | { kind: 'runClosed'; runId: string; closed: { runId: string; status: RunStatus; output?: unknown; error?: ErrorInfo; closedAt: string; trail: StepRecord[] } }
  | { kind: 'stall'; runId: string; stall: StallRow; trail: StepRecord[] }
  | { kind: 'pause'; runId: string; pause: { by: string; reason?: string | undefined; since: string; heldAt?: string | undefined }; trail: StepRecord[] }
  | { kind: 'resume'; runId: string; since: string }
  | { kind: 'decision'; runId: string; decision: DecisionRow & { action: Exclude<DecisionAction, 'migrate'> } }
  | { kind: 'migration'; runId: string; migration: MigrationRecord };

/** How a submitted write ended, as far as its caller waited. */
export type WriteOutcome =
  /** Applied as submitted. */
  | 'written'
  /** Applied with its payloads replaced by a marker (the projection refused them). */
  | 'degraded'
  /** Still queued when the caller stopped waiting; it will be applied in order. */
  | 'queued'
  /** Refused permanently even without payloads, or dropped because the queue was full. */
  | 'dropped';

/** How far behind the projection is: `/health` shows it; the standalone worker logs it. */
export interface ProjectionLag {
  /** Writes waiting or in flight. */
  queued: number;
  /** Age of the oldest of them, in milliseconds (0 when none). */
  oldestAgeMs: number;
  /** Writes the queue refused because it was full, since start. */
  dropped: number;
  /** Writes refused permanently (applied degraded or dropped), since start. */
  rejected: number;
  /** The last error a write met (transient or permanent), with its run. */
  lastError: { at: string; runId: string; message: string } | null;
}

export interface ProjectionWriterOptions {
  /** Writes applied at once. @default 4 */
  concurrency?: number;
  /** Writes that may wait; beyond it new writes are dropped. @default 10000 */
  maxQueued?: number;
  /** How long a caller waits for its write before going on. @default 2000 */
  syncWaitMs?: number;
  /** First retry delay of a transient failure; doubles up to `maxBackoffMs`. @default 200 */
  initialBackoffMs?: number;
  /** @default 30000 */
  maxBackoffMs?: number;
  /** Whether an error can never succeed on retry (the worker passes the SQLSTATE classification). @default never */
  isPermanent?: (err: unknown, attempt: number) => boolean;
  /** Where refusals and drops are reported. @default console.warn */
  log?: (message: string) => void;
}

interface Entry {
  write: ProjectionWrite;
  enqueuedAt: number;
  attempt: number;
  degraded: boolean;
  settle: (o: WriteOutcome) => void;
  done: Promise<WriteOutcome>;
}

/** Runs whose metric labels the writer keeps, and step attempts it remembers as observed. */
const LABELS_MAX = 10_000;
const SEEN_MAX = 50_000;

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Marker stored in place of a payload the projection refused. */
function refusedMarker(reason: string): { projectionRejected: string } {
  return { projectionRejected: reason };
}

function stripStep(s: StepRecord, reason: string): StepRecord {
  const { input, output, error, notes, ...rest } = s;
  return {
    ...rest,
    ...(input !== undefined ? { input: refusedMarker(reason) } : {}),
    ...(output !== undefined ? { output: refusedMarker(reason) } : {}),
    ...(error !== undefined ? { error: { type: error.type.replace(/[^\w.-]/g, '') || 'Error', message: `the projection refused this error (${reason})` } } : {}),
    ...(notes !== undefined ? { notes: [] } : {}),
  };
}

/**
 * The same write with every payload replaced by a marker: what is left (ids,
 * statuses, times, version hashes) is what Postgres cannot refuse. Step ids,
 * run ids and tenants are validated at publish and start.
 */
export function stripPayloads(w: ProjectionWrite, reason: string): ProjectionWrite {
  const steps = (trail: StepRecord[]) => trail.map((s) => stripStep(s, reason));
  const err = (e: ErrorInfo | undefined): ErrorInfo | undefined => (e ? { type: e.type.replace(/[^\w.-]/g, '') || 'Error', message: `the projection refused this error (${reason})` } : undefined);
  switch (w.kind) {
    case 'steps':
      return { ...w, steps: steps(w.steps) };
    case 'runStarted':
      return { ...w, run: { ...w.run, input: refusedMarker(reason), metadata: {} } };
    case 'runClosed': {
      const { output, error, ...closed } = w.closed;
      const e = err(error);
      return { ...w, closed: { ...closed, ...(output !== undefined ? { output: refusedMarker(reason) } : {}), ...(e ? { error: e } : {}), trail: steps(closed.trail) } };
    }
    case 'stall':
      return { ...w, stall: { ...w.stall, details: refusedMarker(reason) }, trail: steps(w.trail) };
    case 'pause':
      return { ...w, pause: { ...w.pause, reason: undefined }, trail: steps(w.trail) };
    case 'resume':
      return w;
    case 'decision':
      return { ...w, decision: { ...w.decision, reason: undefined, output: w.decision.output === undefined ? undefined : refusedMarker(reason) } };
    case 'migration':
      return { ...w, migration: { ...w.migration, reason: undefined, trail: steps(w.migration.trail) } };
    default: {
      const never: never = w;
      throw new Error(`unknown projection write ${JSON.stringify(never)}`);
    }
  }
}

/** The step records a write carries. */
function stepsOf(w: ProjectionWrite): StepRecord[] {
  switch (w.kind) {
    case 'steps':
      return w.steps;
    case 'runClosed':
      return w.closed.trail;
    case 'stall':
    case 'pause':
      return w.trail;
    case 'migration':
      return w.migration.trail;
    default:
      return [];
  }
}

/** How each kind of write is applied: the store's idempotent, transactional methods (an exhaustive table). */
const APPLY: { [K in ProjectionWrite['kind']]: (store: ProjectionStore, w: Extract<ProjectionWrite, { kind: K }>) => Promise<void> } = {
  steps: (store, w) => store.recordSteps(w.runId, w.steps, w.currentStep, w.version),
  runStarted: (store, w) => store.recordRunStarted(w.run),
  runClosed: (store, w) => store.recordRunClosed(w.closed),
  stall: (store, w) => store.recordStall(w.runId, w.stall, w.trail),
  decision: (store, w) => store.recordDecision(w.decision),
  pause: (store, w) => store.recordPause(w.runId, w.pause, w.trail),
  resume: (store, w) => store.recordResume(w.runId, w.since),
  migration: (store, w) => store.recordMigration(w.migration),
};

/** Apply one write with the store's idempotent methods (the writer's queue, and the projection's rebuild). */
export function applyWrite(store: ProjectionStore, w: ProjectionWrite): Promise<void> {
  return (APPLY[w.kind] as (store: ProjectionStore, w: ProjectionWrite) => Promise<void>)(store, w);
}

export class ProjectionWriter {
  private readonly concurrency: number;
  private readonly maxQueued: number;
  readonly syncWaitMs: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly isPermanent: (err: unknown, attempt: number) => boolean;
  private readonly log: (message: string) => void;
  /** Each run's writes in submission order; the head is the one applied next (or now). */
  private readonly runs = new Map<string, Entry[]>();
  /** Runs whose head may be applied now, oldest first. */
  private readonly ready: string[] = [];
  private active = 0;
  private size = 0;
  private dropped = 0;
  private rejected = 0;
  private lastError: ProjectionLag['lastError'] = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly store: ProjectionStore,
    opts: ProjectionWriterOptions = {},
  ) {
    this.concurrency = opts.concurrency ?? 4;
    this.maxQueued = opts.maxQueued ?? 10_000;
    this.syncWaitMs = opts.syncWaitMs ?? 2_000;
    this.initialBackoffMs = opts.initialBackoffMs ?? 200;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    this.isPermanent = opts.isPermanent ?? (() => false);
    this.log = opts.log ?? ((m) => console.warn(`[pinflow] ${m}`));
  }

  /**
   * Queue a write and wait for it at most `waitMs` (default `syncWaitMs`) or
   * until `signal` aborts. Never rejects: the outcome says what happened.
   */
  async submit(write: ProjectionWrite, opts: { waitMs?: number; signal?: AbortSignal } = {}): Promise<WriteOutcome> {
    if (this.closed || this.size >= this.maxQueued) {
      this.dropped++;
      safely(() => projectionWriteFailures.inc({ kind: write.kind, reason: 'dropped' }));
      this.log(`projection write dropped for run ${write.runId} (${write.kind}): ${this.closed ? 'the writer is closed' : `${this.maxQueued} writes are already queued`}; the projection misses it until it is rebuilt`);
      return 'dropped';
    }
    let settle!: (o: WriteOutcome) => void;
    const done = new Promise<WriteOutcome>((resolve) => (settle = resolve));
    const entry: Entry = { write, enqueuedAt: Date.now(), attempt: 0, degraded: false, settle, done };
    this.size++;
    const queue = this.runs.get(write.runId);
    if (queue) queue.push(entry);
    else {
      this.runs.set(write.runId, [entry]);
      this.ready.push(write.runId);
    }
    this.pump();
    return this.wait(done, opts.waitMs ?? this.syncWaitMs, opts.signal);
  }

  private wait(done: Promise<WriteOutcome>, waitMs: number, signal: AbortSignal | undefined): Promise<WriteOutcome> {
    if (waitMs <= 0 || signal?.aborted) return Promise.resolve('queued');
    return new Promise<WriteOutcome>((resolve) => {
      const stop = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        stop();
        resolve('queued');
      };
      const timer = setTimeout(onAbort, waitMs);
      signal?.addEventListener('abort', onAbort);
      void done.then((o) => {
        stop();
        resolve(o);
      });
    });
  }

  /** How far behind the projection is. */
  lag(): ProjectionLag {
    let oldest = Infinity;
    for (const q of this.runs.values()) if (q[0] && q[0].enqueuedAt < oldest) oldest = q[0].enqueuedAt;
    return {
      queued: this.size,
      oldestAgeMs: this.size ? Date.now() - oldest : 0,
      dropped: this.dropped,
      rejected: this.rejected,
      lastError: this.lastError,
    };
  }

  /** Wait until nothing is queued, at most `timeoutMs`; true when drained. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.size > 0 && Date.now() < deadline) {
      const heads = [...this.runs.values()].map((q) => q[0]!.done);
      await Promise.race([Promise.all(heads), new Promise((r) => setTimeout(r, Math.min(200, Math.max(0, deadline - Date.now()))))]);
    }
    return this.size === 0;
  }

  /**
   * Stop retrying: pending writes are dropped (logged with their count). Call
   * after `drain`, before closing the pool the writer uses.
   */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.size > 0) this.log(`projection writer closed with ${this.size} writes queued (runs: ${[...this.runs.keys()].slice(0, 10).join(', ')}); the projection misses them until it is rebuilt`);
    for (const q of this.runs.values()) {
      for (const e of q) {
        safely(() => projectionWriteFailures.inc({ kind: e.write.kind, reason: 'dropped' }));
        e.settle('dropped');
      }
    }
    this.runs.clear();
    this.ready.length = 0;
    this.size = 0;
  }

  /**
   * Observe the finished step attempts of records written to the projection
   * elsewhere (the wait activities write theirs in the correlation index's
   * transaction): the same metrics and dedup as writes through this writer.
   */
  observeSteps(runId: string, steps: StepRecord[]): void {
    safely(() => this.observeApplied({ kind: 'steps', runId, steps }));
  }

  /**
   * Metrics of a write the projection took (observability/metrics.ts): the
   * duration of every finished step attempt it carries and, for a close, the
   * closed run. Labels need the run's definition and version: cached per run
   * (from its runStarted write, or one primary-key read), bounded. A step
   * attempt re-submitted (a control-step trail riding along a retried
   * activity) is observed once per process. Never awaited, never throws.
   */
  private observeApplied(write: ProjectionWrite): void {
    const steps = stepsOf(write);
    if (write.kind === 'runStarted') {
      this.remember(write.runId, { definition: write.run.definition, version: write.run.version });
      // A child run is started by its parent's workflow, not by the client (which counts the others).
      const run = write.run;
      if (run.parent && this.firstSight(`started|${write.runId}`)) safely(() => runsStarted.inc({ definition: run.definition, version: shortVersion(run.version) }));
    }
    const finished = steps.filter((s) => s.finishedAt !== undefined && s.status !== 'RUNNING' && this.firstSight(`${write.runId}|${s.stepInstance}|${s.dispatch ?? 1}|${s.attempt}|${s.status}`));
    if (!finished.length && write.kind !== 'runClosed') {
      if (write.kind === 'migration') this.labels.delete(write.runId);
      return;
    }
    void this.runLabels(write.runId)
      .then((labels) => {
        for (const s of finished) {
          const seconds = (Date.parse(s.finishedAt!) - Date.parse(s.startedAt)) / 1000;
          if (Number.isFinite(seconds)) safely(() => stepDuration.observe({ definition: labels.definition, step_type: s.stepType, status: s.status }, Math.max(0, seconds)));
        }
        if (write.kind === 'runClosed') {
          safely(() => runsClosed.inc({ definition: labels.definition, version: shortVersion(labels.version), status: write.closed.status }));
          this.labels.delete(write.runId);
        }
        // After a migration the run has another version: read it again next time.
        if (write.kind === 'migration') this.labels.delete(write.runId);
      })
      .catch(() => undefined);
  }

  /** Runs' metric labels, most recent last; at most LABELS_MAX. */
  private readonly labels = new Map<string, { definition: string; version: string }>();
  /** Step attempts already observed, oldest first; at most SEEN_MAX. */
  private readonly seen = new Set<string>();

  private remember(runId: string, labels: { definition: string; version: string }): void {
    this.labels.delete(runId);
    this.labels.set(runId, labels);
    if (this.labels.size > LABELS_MAX) this.labels.delete(this.labels.keys().next().value!);
  }

  private firstSight(key: string): boolean {
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    if (this.seen.size > SEEN_MAX) this.seen.delete(this.seen.values().next().value!);
    return true;
  }

  private async runLabels(runId: string): Promise<{ definition: string; version: string }> {
    const cached = this.labels.get(runId);
    if (cached) return cached;
    const found = (await this.store.runLabels(runId)) ?? { definition: 'unknown', version: 'unknown' };
    this.remember(runId, found);
    return found;
  }

  private pump(): void {
    while (!this.closed && this.active < this.concurrency && this.ready.length > 0) {
      const runId = this.ready.shift()!;
      const head = this.runs.get(runId)?.[0];
      if (head) void this.applyHead(runId, head);
    }
  }

  private async applyHead(runId: string, entry: Entry): Promise<void> {
    this.active++;
    let next: 'done' | 'retry' = 'done';
    let outcome: WriteOutcome = entry.degraded ? 'degraded' : 'written';
    try {
      entry.attempt++;
      await applyWrite(this.store, entry.write);
    } catch (err) {
      this.lastError = { at: new Date().toISOString(), runId, message: `${entry.write.kind}: ${errorText(err)}` };
      const kind = entry.write.kind;
      if (!this.isPermanent(err, entry.attempt)) {
        next = 'retry';
        safely(() => projectionWriteFailures.inc({ kind, reason: 'transient' }));
      } else if (!entry.degraded) {
        safely(() => projectionWriteFailures.inc({ kind, reason: 'rejected' }));
        // Refused for good: once more without its payloads, at once.
        this.rejected++;
        const reason = errorText(err).slice(0, 200);
        this.log(`the projection refused a write for run ${runId} (${entry.write.kind}) permanently: ${reason}; writing it without its payloads`);
        entry.write = stripPayloads(entry.write, reason);
        entry.degraded = true;
        entry.attempt = 0;
        next = 'retry';
      } else {
        this.log(`the projection refused a write for run ${runId} (${entry.write.kind}) even without its payloads: ${errorText(err)}; dropped`);
        safely(() => projectionWriteFailures.inc({ kind, reason: 'dropped' }));
        outcome = 'dropped';
      }
    } finally {
      this.active--;
    }
    if (this.closed) return;
    if (next === 'retry') {
      // The run's later writes wait behind this one (order per run); other runs go on.
      const delay = entry.attempt === 0 ? 0 : Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** Math.min(entry.attempt - 1, 20));
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.ready.push(runId);
        this.pump();
      }, delay);
      timer.unref();
      this.timers.add(timer);
      this.pump();
      return;
    }
    const queue = this.runs.get(runId)!;
    queue.shift();
    this.size--;
    safely(() => projectionWriteDuration.observe({ kind: entry.write.kind, outcome }, secondsSince(entry.enqueuedAt)));
    if (outcome !== 'dropped') safely(() => this.observeApplied(entry.write));
    entry.settle(outcome);
    if (queue.length) this.ready.push(runId);
    else this.runs.delete(runId);
    this.pump();
  }
}
