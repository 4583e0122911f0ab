/**
 * Runs that need attention. A pass (every PINFLOW_ATTENTION_INTERVAL_MS in the
 * process that serves the API, like the reconciler) looks at what Temporal
 * says about the open runs of the projection and writes `run_attention`: one
 * row per run and reason while the condition lasts, cleared (`cleared_at`)
 * when it ends. Reasons (graph/terminology ATTENTION_REASONS):
 *
 * - `NO_WORKER`: describeTaskQueue shows no poller (workflow or activity) that
 *   polled within `pollerFreshMs`. Global: one row (run_id `*`) with the count
 *   of open runs, not one per run; `GET /runs?attention=NO_WORKER` lists every
 *   open run while it lasts.
 * - `RPC_RETRYING`: a pending activity (Temporal's pending activity info) on
 *   attempt `rpcAttempts` or later, with its last failure.
 * - `WORKFLOW_TASK_FAILING`: the pending workflow task is on attempt
 *   `workflowTaskAttempts` or later: Temporal retries a task the worker fails
 *   (a non-determinism after a bad deploy, an interpreter crash).
 * - `WAIT_OVERDUE`: an open wait (the correlation index) is older than its
 *   step's `sla` (in the pinned graph).
 * - `NO_PROGRESS`: the run's last progress is older than `noProgressMs` while
 *   it is RUNNING (not stalled or paused), has no open wait and its current
 *   top-level step is not a sleep, wait or child. Progress is a projection
 *   write for the run (a step record, its start, a stall, a decision) or the
 *   start of the current attempt of a pending activity. An RPC activity's own
 *   heartbeats (every second while its handler runs) say it is alive, not
 *   that it progresses, so a handler that blocks longer than the threshold is
 *   flagged.
 *
 * Scale: only the projection's open runs are described, a few at a time
 * (`concurrency`); a run Temporal cannot describe keeps its rows as they were.
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { json, type Db, type Query } from '../db/connection';
import { durationMs } from '../graph/duration';
import type { Step, Subgraph } from '../graph/schema';
import { SA } from '../graph/search-attributes';
import { ATTENTION_REASONS, TASK_QUEUE, type AttentionReason } from '../graph/terminology';
import type { VersionStore } from '../catalog/versions';
import type { ProjectionStore, RunSummary } from '../projection/store';

export interface AttentionThresholds {
  /** No progress for longer than this flags NO_PROGRESS (PINFLOW_ATTENTION_NO_PROGRESS_MS). @default 900000 (15 min) */
  noProgressMs: number;
  /** A pending activity on this attempt or later flags RPC_RETRYING (PINFLOW_ATTENTION_RPC_ATTEMPTS). @default 5 */
  rpcAttempts: number;
  /** A pending workflow task on this attempt or later flags WORKFLOW_TASK_FAILING (PINFLOW_ATTENTION_WORKFLOW_TASK_ATTEMPTS). @default 2 */
  workflowTaskAttempts: number;
  /** A poller that polled within this counts as a worker (PINFLOW_ATTENTION_POLLER_FRESH_MS). @default 75000 */
  pollerFreshMs: number;
}

export const DEFAULT_ATTENTION_THRESHOLDS: AttentionThresholds = { noProgressMs: 900_000, rpcAttempts: 5, workflowTaskAttempts: 2, pollerFreshMs: 75_000 };

export interface AttentionOptions {
  client: Client;
  store: ProjectionStore;
  catalog: VersionStore;
  thresholds?: Partial<AttentionThresholds>;
  /** Temporal describes in flight at once. @default 16 */
  concurrency?: number;
  log?: (line: string) => void;
}

export interface AttentionFlag {
  reason: AttentionReason;
  detail: Record<string, unknown>;
  since: string;
}

export interface AttentionTotals {
  checked: number;
  flagged: Record<AttentionReason, number>;
  errors: number;
  durationMs: number;
}

import { GLOBAL_ATTENTION as GLOBAL, OPEN_STATUSES_SQL as OPEN } from '../projection/attention-filter';

const sql = {
  upsert: (runId: string, reason: AttentionReason, detail: unknown): Query => ({
    text: `INSERT INTO run_attention (run_id, reason, detail) VALUES ($1, $2, $3::jsonb)
           ON CONFLICT (run_id, reason) WHERE cleared_at IS NULL DO UPDATE SET detail = EXCLUDED.detail, checked_at = now()`,
    values: [runId, reason, json(detail)],
  }),
  clearOthers: (runId: string, keep: AttentionReason[]): Query => ({
    text: `UPDATE run_attention SET cleared_at = now() WHERE run_id = $1 AND cleared_at IS NULL AND NOT (reason = ANY($2::text[]))`,
    values: [runId, keep],
  }),
  clearClosed: (): Query => ({
    text: `UPDATE run_attention a SET cleared_at = now() WHERE a.cleared_at IS NULL AND a.run_id <> '${GLOBAL}'
           AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = a.run_id AND r.status IN ${OPEN})`,
    values: [],
  }),
  openWaits: (runId: string): Query => ({
    text: `SELECT step_instance AS "stepInstance", event_name AS event, correlation_key AS "correlationKey", reached_at AS "reachedAt"
           FROM run_waits WHERE run_id = $1 AND status = 'OPEN'`,
    values: [runId],
  }),
  counts: (): Query => ({
    text: `SELECT reason, count(*)::int AS count, max(detail->>'openRuns') AS "openRuns" FROM run_attention WHERE cleared_at IS NULL GROUP BY reason`,
    values: [],
  }),
  ofRun: (runId: string): Query => ({
    text: `SELECT reason, detail, since FROM run_attention WHERE cleared_at IS NULL AND (run_id = $1 OR run_id = '${GLOBAL}') ORDER BY reason`,
    values: [runId],
  }),
};

/** The step id of a step instance: `id`, `id#2`, `id[3]`, `id[3]#2` → `id`. */
function stepIdOf(instance: string): string {
  return instance.replace(/(\[[^\]]*\]|#\d+)+$/, '');
}

/** A step of a graph by id, at any depth (forEach bodies, parallel branches). */
function findStep(graph: Subgraph, id: string): Step | undefined {
  for (const s of graph.steps) {
    if (s.id === id) return s;
    const nested: Subgraph[] = s.type === 'forEach' ? [s.body] : s.type === 'parallel' ? Object.values(s.branches) : [];
    for (const g of nested) {
      const found = findStep(g, id);
      if (found) return found;
    }
  }
  return undefined;
}

function ms(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number | undefined {
  if (!t) return undefined;
  return Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

export class AttentionChecker {
  readonly thresholds: AttentionThresholds;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<AttentionTotals> | undefined;
  private readonly db: Db;

  constructor(private readonly opts: AttentionOptions) {
    this.thresholds = { ...DEFAULT_ATTENTION_THRESHOLDS, ...opts.thresholds };
    this.db = opts.store.db;
  }

  /** Run a pass every `intervalMs` (one at a time). */
  start(intervalMs: number): void {
    if (this.timer || intervalMs <= 0) return;
    this.timer = setInterval(() => {
      if (this.running) return;
      this.pass().catch((err: unknown) => this.opts.log?.(`attention: pass failed: ${(err as Error).message}`));
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One pass; concurrent callers share it. */
  pass(): Promise<AttentionTotals> {
    this.running ??= this.runPass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Counts of runs needing attention, per reason (NO_WORKER: the open runs it affects). */
  async counts(): Promise<Record<AttentionReason, number>> {
    const out = Object.fromEntries(ATTENTION_REASONS.map((r) => [r, 0])) as Record<AttentionReason, number>;
    for (const row of await this.db.query<{ reason: AttentionReason; count: number; openRuns: string | null }>(sql.counts())) {
      out[row.reason] = row.reason === 'NO_WORKER' ? Number(row.openRuns ?? 0) : row.count;
    }
    return out;
  }

  /** The reasons a run needs attention now (NO_WORKER included while it lasts). */
  async ofRun(runId: string): Promise<AttentionFlag[]> {
    const rows = await this.db.query<{ reason: AttentionReason; detail: Record<string, unknown>; since: Date | string }>(sql.ofRun(runId));
    return rows.map((r) => ({ reason: r.reason, detail: r.detail, since: new Date(r.since).toISOString() }));
  }

  private async runPass(): Promise<AttentionTotals> {
    const started = Date.now();
    const flagged = Object.fromEntries(ATTENTION_REASONS.map((r) => [r, 0])) as Record<AttentionReason, number>;
    let checked = 0;
    let errors = 0;
    const pollers = await this.freshPollers().catch(() => undefined);
    const open: RunSummary[] = [];
    await this.opts.store.forEachOpenRun((page) => {
      open.push(...page);
      return Promise.resolve();
    });
    if (pollers === 0) {
      await this.db.query(sql.upsert(GLOBAL, 'NO_WORKER', { taskQueue: TASK_QUEUE, openRuns: open.length, pollerFreshMs: this.thresholds.pollerFreshMs }));
      flagged.NO_WORKER = open.length;
    } else if (pollers !== undefined) await this.db.query(sql.clearOthers(GLOBAL, []));
    const graphs = new Map<string, Promise<Subgraph | undefined>>();
    const graphOf = (hash: string) => {
      if (!graphs.has(hash)) graphs.set(hash, this.opts.catalog.getVersion(hash).then((v) => v?.graph, () => undefined));
      return graphs.get(hash)!;
    };
    const queue = [...open];
    const worker = async () => {
      for (let run = queue.shift(); run; run = queue.shift()) {
        try {
          const found = await this.check(run, graphOf);
          if (found === undefined) {
            // Temporal closed it (the reconciler closes its row): nothing of it needs attention.
            await this.db.query(sql.clearOthers(run.id, []));
            continue;
          }
          checked++;
          for (const [reason, detail] of found) {
            await this.db.query(sql.upsert(run.id, reason, detail));
            flagged[reason]++;
          }
          await this.db.query(sql.clearOthers(run.id, [...found.keys()]));
        } catch (err) {
          errors++;
          this.opts.log?.(`attention: run ${run.id}: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency ?? 16, queue.length) }, worker));
    await this.db.query(sql.clearClosed());
    return { checked, flagged, errors, durationMs: Date.now() - started };
  }

  /** Pollers of the task queue that polled recently (workflow and activity). */
  private async freshPollers(): Promise<number> {
    const { client } = this.opts;
    const now = Date.now();
    let fresh = 0;
    for (const taskQueueType of [temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY]) {
      const res = await client.workflowService.describeTaskQueue({
        namespace: client.options.namespace,
        taskQueue: { name: TASK_QUEUE, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        taskQueueType,
      });
      fresh += (res.pollers ?? []).filter((p) => now - (ms(p.lastAccessTime) ?? 0) < this.thresholds.pollerFreshMs).length;
    }
    return fresh;
  }

  /** The reasons one run needs attention; undefined when Temporal says it is not running (the reconciler's business). */
  private async check(run: RunSummary, graphOf: (hash: string) => Promise<Subgraph | undefined>): Promise<Map<AttentionReason, Record<string, unknown>> | undefined> {
    const { client } = this.opts;
    const t = this.thresholds;
    const now = Date.now();
    const found = new Map<AttentionReason, Record<string, unknown>>();
    const d = await client.workflowService.describeWorkflowExecution({ namespace: client.options.namespace, execution: { workflowId: run.id } });
    if (d.workflowExecutionInfo?.status !== temporal.api.enums.v1.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING) return undefined;
    const pending = d.pendingActivities ?? [];
    const retrying = pending.filter((a) => (a.attempt ?? 1) >= t.rpcAttempts);
    if (retrying.length > 0) {
      const a = retrying.sort((x, y) => (y.attempt ?? 0) - (x.attempt ?? 0))[0]!;
      found.set('RPC_RETRYING', {
        activityType: a.activityType?.name ?? null,
        activityId: a.activityId ?? null,
        attempt: a.attempt ?? null,
        lastFailure: a.lastFailure?.message ?? null,
        activities: retrying.length,
      });
    }
    const task = d.pendingWorkflowTask;
    if (task && (task.attempt ?? 1) >= t.workflowTaskAttempts) {
      found.set('WORKFLOW_TASK_FAILING', {
        attempt: task.attempt,
        scheduledAt: ms(task.scheduledTime) ? new Date(ms(task.scheduledTime)!).toISOString() : null,
        hint: 'the worker fails this run\'s workflow task; see the WorkflowTaskFailed events in its Temporal history (a non-determinism after a deploy, an interpreter error)',
      });
    }
    const graph = await graphOf(run.version);
    const waits = await this.db.query<{ stepInstance: string; event: string; correlationKey: string; reachedAt: Date | string }>(sql.openWaits(run.id));
    for (const w of waits) {
      const step = graph ? findStep(graph, stepIdOf(w.stepInstance)) : undefined;
      if (step?.type !== 'wait' || step.sla === undefined) continue;
      const open = now - new Date(w.reachedAt).getTime();
      const sla = durationMs(step.sla);
      if (open > sla) {
        found.set('WAIT_OVERDUE', { stepInstance: w.stepInstance, event: w.event, correlationKey: w.correlationKey, reachedAt: new Date(w.reachedAt).toISOString(), sla: step.sla, overdueMs: open - sla });
        break;
      }
    }
    if (run.status === 'RUNNING' && waits.length === 0) {
      const current = d.workflowExecutionInfo?.searchAttributes?.indexedFields?.[SA.currentStep.name];
      const currentStep = current?.data ? (JSON.parse(Buffer.from(current.data).toString('utf8')) as unknown) : run.currentStep;
      const currentType = typeof currentStep === 'string' && graph ? findStep(graph, stepIdOf(currentStep))?.type : undefined;
      const resting = currentType === 'sleep' || currentType === 'wait' || currentType === 'child';
      const lastProgress = Math.max(new Date(run.updatedAt).getTime(), ...pending.map((a) => ms(a.lastStartedTime) ?? 0));
      if (!resting && now - lastProgress > t.noProgressMs) {
        found.set('NO_PROGRESS', { lastProgressAt: new Date(lastProgress).toISOString(), thresholdMs: t.noProgressMs, currentStep: currentStep ?? null, pendingActivities: pending.length });
      }
    }
    return found;
  }
}
