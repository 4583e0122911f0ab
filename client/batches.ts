/**
 * Bulk actions by run filter, as durable batches (graph/terminology "batch").
 *
 * Creation selects the runs once, through the run list (`Pinflow.listRuns`,
 * the filter and keyset pages of `GET /runs`), and stores the batch (filter,
 * action, params, who and why) and one item per selected run in one
 * transaction: the set is fixed, so the progress counts add up
 * (selected = pending + applying + done + skipped + failed). A run that
 * matches the filter later is not added.
 *
 * The runner (`start()`, in the process that serves the API) acts on the
 * items of every RUNNING batch, at the batch's rate and concurrency. Each
 * item is claimed in Postgres under a lease (`FOR UPDATE SKIP LOCKED`, then
 * `APPLYING` until `lease_until`), so several API processes share a batch
 * without acting twice on a run; the item's attempts are counted. The action
 * goes to Temporal first, then the item is marked DONE, SKIPPED or FAILED.
 * A process killed mid-call leaves its item APPLYING: when the lease ends,
 * another process (or the restarted one) claims it again and first asks the
 * run's history whether this batch already acted (its update id), so a run is
 * acted on at most once per batch. At start the runner picks up every
 * unfinished batch where it stopped.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { iso, json, type Db, type Query } from '../db/connection';
import { ERROR_CODES, InvalidRequestError, NotFoundError, PinflowError } from '../graph/errors';
import { BATCH_ACTIONS, type BatchAction, type BatchItemStatus, type BatchState, type RunStatus } from '../graph/terminology';
import type { RunSummary } from '../projection/store';
import { actionEntry, batchRunId, batchUpdateId, type BatchActionContext, type BatchItemRun } from './batch-actions';
import { BATCH_MAX_RUNS, BATCH_SAMPLE_SIZE, batchItemsQuery, batchStateBody, createBatchBody, idParams, listBatchesQuery, parseInput } from './api-schemas';
import type { Pinflow } from './pinflow';
import { validateMetadataFilter } from './pinflow';

export interface BatchServiceOptions {
  /** Runs per second of a batch that names none (PINFLOW_BATCH_RATE). @default 10 */
  defaultRatePerSecond?: number;
  /** Runs at once of a batch that names none (PINFLOW_BATCH_CONCURRENCY). @default 4 */
  defaultConcurrency?: number;
  /** How long a claimed item is reserved to its process (PINFLOW_BATCH_LEASE_MS). @default 30000 */
  leaseMs?: number;
  /** How often the runner looks for batches to drive. @default 2000 */
  pollMs?: number;
  /**
   * Attempts of an item that fails for a passing reason (Temporal or the
   * database unavailable, the run's row not projected yet) before it is
   * FAILED; between attempts the item waits attempts × 2 s (at most 60 s).
   * @default 10
   */
  maxAttempts?: number;
  log?: (line: string) => void;
}

export interface BatchFilter {
  status?: RunStatus;
  definition?: string;
  version?: string;
  tenant?: string;
  metadata?: Record<string, string | number | boolean>;
}

export interface CreateBatchRequest {
  action: BatchAction;
  filter: BatchFilter;
  params?: Record<string, unknown>;
  dryRun?: boolean;
  ratePerSecond?: number;
  concurrency?: number;
  by: string;
  reason: string;
}

export interface ReasonCount {
  code: string;
  count: number;
  example: string | null;
}

export interface BatchView {
  id: string;
  action: BatchAction;
  params: Record<string, unknown>;
  filter: Record<string, unknown>;
  by: string;
  reason: string;
  state: BatchState;
  ratePerSecond: number;
  concurrency: number;
  progress: { selected: number; pending: number; applying: number; done: number; skipped: number; failed: number };
  skippedByReason: ReasonCount[];
  failedByReason: ReasonCount[];
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  stateBy: string | null;
  stateReason: string | null;
}

export interface BatchDryRun {
  dryRun: true;
  action: BatchAction;
  count: number;
  sample: Array<{ runId: string; status: RunStatus; definition: string; version: string; tenant: string }>;
}

export interface BatchItemView {
  seq: number;
  runId: string;
  runStatus: string;
  status: BatchItemStatus;
  attempts: number;
  code: string | null;
  message: string | null;
  result: unknown;
  updatedAt: string;
  finishedAt: string | null;
}

/** Item codes that are pinflow's own (not an error code). */
export const BATCH_ITEM_CODES = {
  /** The run's status is not one the action applies to (the action table's `appliesTo`). */
  NOT_APPLICABLE: 'NOT_APPLICABLE',
  /** The batch was cancelled before the item's turn. */
  BATCH_CANCELLED: 'BATCH_CANCELLED',
  /** Claimed again after a restart: the run's history shows this batch already acted. */
  APPLIED_BEFORE_RESTART: 'APPLIED_BEFORE_RESTART',
} as const;

/** Refusals that mean the action does not apply to the run (any more): SKIPPED, not FAILED. */
const SKIP_CODES = new Set<string>([ERROR_CODES.RUN_CLOSED, ERROR_CODES.RUN_NOT_FOUND, ERROR_CODES.RUN_NOT_STALLED]);
/** Refusals that pass: the item goes back to PENDING (until maxAttempts). */
const TRANSIENT_CODES = new Set<string>([ERROR_CODES.TEMPORAL_UNAVAILABLE, ERROR_CODES.DATABASE_UNAVAILABLE, ERROR_CODES.RUN_NOT_PROJECTED]);

// ---------------------------------------------------------------------------
// SQL

const BATCH_COLUMNS = `id, action, params, filter, by, reason, state, rate_per_second, concurrency, selected, created_at, updated_at, finished_at, state_by, state_reason`;

const sql = {
  insertBatch: (b: { id: string; action: string; params: unknown; filter: unknown; by: string; reason: string; state: BatchState; rate: number; concurrency: number; selected: number }): Query => ({
    text: `INSERT INTO batches (id, action, params, filter, by, reason, state, rate_per_second, concurrency, selected, finished_at)
           VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6, $7, $8, $9, $10, CASE WHEN $7 = 'COMPLETED' THEN now() END)`,
    values: [b.id, b.action, json(b.params), json(b.filter), b.by, b.reason, b.state, b.rate, b.concurrency, b.selected],
  }),
  insertItems: (batchId: string, first: number, runs: readonly RunSummary[]): Query => ({
    text: `INSERT INTO batch_items (batch_id, seq, run_id, temporal_run_id, run_status, status)
           SELECT $1, $2::int + u.i - 1, u.run_id, u.trid, u.st, 'PENDING'
           FROM unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS u(run_id, trid, st, i)`,
    values: [batchId, first, runs.map((r) => r.id), runs.map((r) => r.temporalRunId), runs.map((r) => r.status)],
  }),
  selectBatch: (id: string): Query => ({ text: `SELECT ${BATCH_COLUMNS} FROM batches WHERE id = $1`, values: [id] }),
  selectBatches: (state: BatchState | undefined, limit: number): Query => ({
    text: `SELECT ${BATCH_COLUMNS} FROM batches WHERE ($1::text IS NULL OR state = $1) ORDER BY created_at DESC, id DESC LIMIT $2`,
    values: [state ?? null, limit],
  }),
  countItems: (ids: string[]): Query => ({
    text: `SELECT batch_id, status, coalesce(code, '') AS code, count(*)::int AS count, min(message) AS example
           FROM batch_items WHERE batch_id = ANY($1::text[]) GROUP BY batch_id, status, coalesce(code, '')`,
    values: [ids],
  }),
  selectItems: (batchId: string, status: BatchItemStatus | undefined, after: number, limit: number): Query => ({
    text: `SELECT seq, run_id, run_status, status, attempts, code, message, result, updated_at, finished_at FROM batch_items
           WHERE batch_id = $1 AND ($2::text IS NULL OR status = $2) AND seq > $3 ORDER BY seq LIMIT $4`,
    values: [batchId, status ?? null, after, limit + 1],
  }),
  setState: (id: string, from: readonly BatchState[], to: BatchState, by: string, reason: string): Query => ({
    text: `UPDATE batches SET state = $3, state_by = $4, state_reason = $5, updated_at = now(),
             finished_at = CASE WHEN $3 IN ('CANCELLED', 'COMPLETED') THEN now() ELSE finished_at END
           WHERE id = $1 AND state = ANY($2::text[]) RETURNING id`,
    values: [id, [...from], to, by, reason],
  }),
  skipPending: (id: string): Query => ({
    text: `UPDATE batch_items SET status = 'SKIPPED', code = '${BATCH_ITEM_CODES.BATCH_CANCELLED}', message = 'batch cancelled', updated_at = now(), finished_at = now()
           WHERE batch_id = $1 AND status = 'PENDING'`,
    values: [id],
  }),
  /** Batches with work for the runner: RUNNING ones, and CANCELLED ones left with an item whose claim expired. */
  selectDrivable: (): Query => ({
    text: `SELECT id, state, rate_per_second, concurrency FROM batches b WHERE state = 'RUNNING'
           OR (state = 'CANCELLED' AND EXISTS (SELECT 1 FROM batch_items i WHERE i.batch_id = b.id AND i.status = 'APPLYING' AND i.lease_until < now()))`,
    values: [],
  }),
  /**
   * Claim the next item: PENDING, or APPLYING with an expired lease (its
   * process died mid-call). SKIP LOCKED: two processes never take the same row.
   * `settle` (a cancelled batch) takes only expired claims.
   */
  claim: (batchId: string, owner: string, leaseMs: number, mode: 'run' | 'settle'): Query => ({
    text: `UPDATE batch_items i SET status = 'APPLYING', attempts = i.attempts + 1, claimed_by = $2,
             lease_until = now() + ($3::int * interval '1 millisecond'), updated_at = now()
           WHERE (i.batch_id, i.seq) = (
             SELECT c.batch_id, c.seq FROM batch_items c JOIN batches b ON b.id = c.batch_id
             WHERE c.batch_id = $1 AND b.state = $4
               AND (${mode === 'run' ? `c.status = 'PENDING' OR ` : ''}(c.status = 'APPLYING' AND c.lease_until < now()))
             ORDER BY c.seq LIMIT 1 FOR UPDATE OF c SKIP LOCKED)
           RETURNING i.seq, i.run_id, i.temporal_run_id, i.attempts`,
    values: [batchId, owner, leaseMs, mode === 'run' ? 'RUNNING' : 'CANCELLED'],
  }),
  /** Finish a claim this process still holds. */
  finish: (batchId: string, seq: number, owner: string, status: BatchItemStatus, code: string | null, message: string | null, result: unknown): Query => ({
    text: `UPDATE batch_items SET status = $4, code = $5, message = $6, result = $7::jsonb, lease_until = NULL, updated_at = now(),
             finished_at = CASE WHEN $4 IN ('DONE', 'SKIPPED', 'FAILED') THEN now() END
           WHERE batch_id = $1 AND seq = $2 AND status = 'APPLYING' AND claimed_by = $3`,
    values: [batchId, seq, owner, status, code, message, json(result)],
  }),
  /** A passing failure: the claim is kept, its lease shortened to the backoff, so the item is claimed again (attempts + 1) after it. */
  retryLater: (batchId: string, seq: number, owner: string, backoffMs: number, code: string, message: string): Query => ({
    text: `UPDATE batch_items SET lease_until = now() + ($4::int * interval '1 millisecond'), code = $5, message = $6, updated_at = now()
           WHERE batch_id = $1 AND seq = $2 AND status = 'APPLYING' AND claimed_by = $3`,
    values: [batchId, seq, owner, backoffMs, code, message],
  }),
  complete: (batchId: string): Query => ({
    text: `UPDATE batches SET state = 'COMPLETED', updated_at = now(), finished_at = now()
           WHERE id = $1 AND state = 'RUNNING' AND NOT EXISTS (SELECT 1 FROM batch_items WHERE batch_id = $1 AND status IN ('PENDING', 'APPLYING'))`,
    values: [batchId],
  }),
  touch: (batchId: string): Query => ({ text: `UPDATE batches SET updated_at = now() WHERE id = $1`, values: [batchId] }),
  runStatus: (runId: string): Query => ({ text: `SELECT status FROM runs WHERE id = $1`, values: [runId] }),
};

// ---------------------------------------------------------------------------

const str = (v: unknown): string | null => (v === null || v === undefined ? null : typeof v === 'string' ? v : JSON.stringify(v));

function toView(row: Record<string, unknown>, counts: Array<Record<string, unknown>>): BatchView {
  const progress = { selected: Number(row.selected), pending: 0, applying: 0, done: 0, skipped: 0, failed: 0 };
  const skippedByReason: ReasonCount[] = [];
  const failedByReason: ReasonCount[] = [];
  for (const c of counts) {
    const n = Number(c.count);
    const key = String(c.status).toLowerCase() as keyof typeof progress;
    progress[key] += n;
    const rc = { code: String(c.code), count: n, example: str(c.example) };
    if (c.status === 'SKIPPED') skippedByReason.push(rc);
    if (c.status === 'FAILED') failedByReason.push(rc);
  }
  const byCount = (a: ReasonCount, b: ReasonCount) => b.count - a.count || a.code.localeCompare(b.code);
  return {
    id: String(row.id),
    action: row.action as BatchAction,
    params: (row.params ?? {}) as Record<string, unknown>,
    filter: (row.filter ?? {}) as Record<string, unknown>,
    by: String(row.by),
    reason: String(row.reason),
    state: row.state as BatchState,
    ratePerSecond: Number(row.rate_per_second),
    concurrency: Number(row.concurrency),
    progress,
    skippedByReason: skippedByReason.sort(byCount),
    failedByReason: failedByReason.sort(byCount),
    createdAt: iso(row.created_at)!,
    updatedAt: iso(row.updated_at)!,
    finishedAt: iso(row.finished_at),
    stateBy: str(row.state_by),
    stateReason: str(row.state_reason),
  };
}

/** A small in-process rate limiter: one slot every 1000/rate ms, shared by a batch's lanes. */
function limiter(ratePerSecond: number): () => Promise<void> {
  const interval = 1000 / ratePerSecond;
  let next = Date.now();
  return async () => {
    const now = Date.now();
    const at = Math.max(now, next);
    next = at + interval;
    if (at > now) await new Promise((r) => setTimeout(r, at - now));
  };
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class BatchService {
  private readonly defaultRate: number;
  private readonly defaultConcurrency: number;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly maxAttempts: number;
  private readonly log: (line: string) => void;
  /** This process, as written in `claimed_by`. */
  readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  /** Bumped by each start(), so a look still in flight from before a stop() never schedules another. */
  private generation = 0;
  private lastLookError: string | undefined;
  private readonly driving = new Map<string, Promise<void>>();

  constructor(
    private readonly pinflow: Pinflow,
    opts: BatchServiceOptions = {},
  ) {
    this.defaultRate = opts.defaultRatePerSecond ?? 10;
    this.defaultConcurrency = opts.defaultConcurrency ?? 4;
    this.leaseMs = opts.leaseMs ?? 30_000;
    this.pollMs = opts.pollMs ?? 2_000;
    this.maxAttempts = opts.maxAttempts ?? 10;
    this.log = opts.log ?? (() => undefined);
  }

  private get db(): Db {
    return this.pinflow.store.db;
  }

  /** The runs the filter selects now, in the run list's order (newest first), through the run list's keyset pages. */
  private async select(filter: BatchFilter): Promise<RunSummary[]> {
    const runs: RunSummary[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await this.pinflow.listRuns({ ...filter, ...(cursor ? { cursor } : {}), limit: 500 });
      runs.push(...page.runs);
      if (runs.length > BATCH_MAX_RUNS) {
        throw new InvalidRequestError(ERROR_CODES.REQUEST_INVALID, `the filter selects more than ${BATCH_MAX_RUNS} runs; allowed: at most ${BATCH_MAX_RUNS} per batch (narrow the filter)`, {
          field: 'filter',
          allowed: `at most ${BATCH_MAX_RUNS} runs`,
        });
      }
      if (!page.nextCursor) return runs;
      cursor = page.nextCursor;
    }
  }

  /**
   * Create a batch (201 in the API), or with `dryRun` count the selected runs
   * and show the first 20 (nothing created). Refused before anything is
   * stored: an unknown action, a bad filter or params, a skip output that
   * does not satisfy a selected stalled run's pinned output contract
   * (SKIP_OUTPUT_INVALID), a migrate target that does not exist.
   */
  async create(request: CreateBatchRequest): Promise<BatchView | BatchDryRun> {
    const body = parseInput(createBatchBody, request, 'body');
    const filter: BatchFilter = { ...body.filter };
    if (body.filter.metadata !== undefined) filter.metadata = validateMetadataFilter(body.filter.metadata);
    const entry = actionEntry(body.action);
    const params = parseInput(entry.params, body.params ?? {}, 'body.params') as Record<string, unknown>;
    const runs = await this.select(filter);
    if (entry.check) await entry.check(this.pinflow, params, runs);
    if (body.dryRun) {
      return {
        dryRun: true,
        action: body.action,
        count: runs.length,
        sample: runs.slice(0, BATCH_SAMPLE_SIZE).map((r) => ({ runId: r.id, status: r.status, definition: r.definition, version: r.version, tenant: r.tenant })),
      };
    }
    const id = `batch-${randomUUID()}`;
    await this.db.transaction(async (tx) => {
      await tx.query(
        sql.insertBatch({
          id,
          action: body.action,
          params,
          filter,
          by: body.by,
          reason: body.reason,
          state: runs.length ? 'RUNNING' : 'COMPLETED',
          rate: body.ratePerSecond ?? this.defaultRate,
          concurrency: body.concurrency ?? this.defaultConcurrency,
          selected: runs.length,
        }),
      );
      for (let i = 0; i < runs.length; i += 1000) await tx.query(sql.insertItems(id, i + 1, runs.slice(i, i + 1000)));
    });
    this.log(`batch ${id}: ${body.action} on ${runs.length} run(s) selected by ${JSON.stringify(filter)}, by ${body.by}: ${body.reason}`);
    this.kick();
    return this.get(id);
  }

  async get(id: string): Promise<BatchView> {
    parseInput(idParams, { id }, 'params');
    const row = (await this.db.query(sql.selectBatch(id)))[0];
    if (!row) throw new NotFoundError(ERROR_CODES.BATCH_NOT_FOUND, `batch ${JSON.stringify(id)} does not exist`, { batchId: id });
    return toView(row, await this.db.query(sql.countItems([id])));
  }

  async list(query: { state?: BatchState; limit?: number } = {}): Promise<{ batches: BatchView[] }> {
    const q = parseInput(listBatchesQuery, query, 'query');
    const rows = await this.db.query(sql.selectBatches(q.state, q.limit ?? 50));
    const counts = rows.length ? await this.db.query(sql.countItems(rows.map((r) => String(r.id)))) : [];
    return { batches: rows.map((r) => toView(r, counts.filter((c) => c.batch_id === r.id))) };
  }

  /** A batch's items in selection order, `after` the `nextAfter` of the previous page. */
  async items(id: string, query: { status?: BatchItemStatus; after?: number; limit?: number } = {}): Promise<{ items: BatchItemView[]; nextAfter: number | null }> {
    const q = parseInput(batchItemsQuery, query, 'query');
    await this.get(id);
    const limit = q.limit ?? 100;
    const rows = await this.db.query(sql.selectItems(id, q.status, q.after ?? 0, limit));
    const page = rows.slice(0, limit).map((r) => ({
      seq: Number(r.seq),
      runId: String(r.run_id),
      runStatus: String(r.run_status),
      status: r.status as BatchItemStatus,
      attempts: Number(r.attempts),
      code: str(r.code),
      message: str(r.message),
      result: r.result ?? null,
      updatedAt: iso(r.updated_at)!,
      finishedAt: iso(r.finished_at),
    }));
    return { items: page, nextAfter: rows.length > limit ? page[page.length - 1]!.seq : null };
  }

  private async transition(id: string, from: readonly BatchState[], to: BatchState, request: { by: string; reason: string }, what: string): Promise<BatchView> {
    const input = parseInput(batchStateBody, request, 'body');
    const current = await this.get(id);
    const changed = await this.db.transaction(async (tx) => {
      const rows = await tx.query(sql.setState(id, from, to, input.by, input.reason));
      if (rows.length && to === 'CANCELLED') await tx.query(sql.skipPending(id));
      return rows.length > 0;
    });
    if (!changed) {
      const now = await this.get(id);
      throw new PinflowError(ERROR_CODES.BATCH_STATE_CONFLICT, `batch ${id} is ${now.state}; ${what} needs a batch that is ${from.join(' or ')}`, { batchId: id, state: now.state, allowed: from });
    }
    this.log(`batch ${id}: ${current.state} → ${to} by ${input.by}: ${input.reason}`);
    if (to === 'RUNNING') this.kick();
    return this.get(id);
  }

  /** RUNNING → PAUSED: no further run is started; the ones in flight finish. */
  pause(id: string, request: { by: string; reason: string }): Promise<BatchView> {
    return this.transition(id, ['RUNNING'], 'PAUSED', request, 'pause');
  }

  /** PAUSED → RUNNING: goes on where it stopped. */
  resume(id: string, request: { by: string; reason: string }): Promise<BatchView> {
    return this.transition(id, ['PAUSED'], 'RUNNING', request, 'resume');
  }

  /** RUNNING or PAUSED → CANCELLED: the items not started are SKIPPED ("batch cancelled"); the ones in flight finish. */
  cancel(id: string, request: { by: string; reason: string }): Promise<BatchView> {
    return this.transition(id, ['RUNNING', 'PAUSED'], 'CANCELLED', request, 'cancel');
  }

  // ---- The runner ----

  /** Start driving batches in the background: every unfinished one now, then a look every `pollMs`. */
  start(): void {
    if (this.timer || this.pollMs <= 0) return;
    this.stopping = false;
    const generation = ++this.generation;
    const loop = () => {
      void this.tick()
        .then(() => {
          if (this.lastLookError) this.log('batches: the runner looks for batches again');
          this.lastLookError = undefined;
        })
        .catch((err: unknown) => {
          // Once per streak of the same error (a database outage would otherwise log every pollMs).
          if (errorText(err) !== this.lastLookError) this.log(`batches: the runner's look for batches failed (${errorText(err)}); trying again every ${this.pollMs} ms`);
          this.lastLookError = errorText(err);
        })
        .finally(() => {
          if (!this.stopping && generation === this.generation) this.timer = setTimeout(loop, this.pollMs);
        });
    };
    this.timer = setTimeout(loop, 0);
  }

  /** Stop the runner and wait for the items in flight. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.driving.values()]);
  }

  /** Look now (after a create or resume), when the runner runs. */
  private kick(): void {
    if (this.timer && !this.stopping) void this.tick().catch(() => undefined);
  }

  /** One look: drive every batch with work that this process is not driving yet. */
  async tick(): Promise<void> {
    const rows = await this.db.query<{ id: string; state: BatchState; rate_per_second: number; concurrency: number }>(sql.selectDrivable());
    for (const b of rows) {
      if (this.stopping || this.driving.has(b.id)) continue;
      const run = this.drive(b.id, b.state === 'CANCELLED' ? 'settle' : 'run', Number(b.rate_per_second), Number(b.concurrency))
        .catch((err: unknown) => this.log(`batch ${b.id}: the runner stopped on an error (${errorText(err)}); it goes on at the next look`))
        .finally(() => this.driving.delete(b.id));
      this.driving.set(b.id, run);
    }
  }

  /** Act on a batch's items until none is left to claim (or the batch is paused, cancelled, or the runner stops). */
  private async drive(batchId: string, mode: 'run' | 'settle', rate: number, concurrency: number): Promise<void> {
    const row = (await this.db.query(sql.selectBatch(batchId)))[0];
    if (!row) return;
    const batch = toView(row, []);
    const entry = actionEntry(batch.action);
    const ctx: BatchActionContext = {
      batchId,
      by: batch.by,
      reason: `${batch.reason} (batch ${batchId})`,
      updateId: batchUpdateId(batchId),
      newRunId: (source) => batchRunId(batchId, source, batch.action),
    };
    const slot = limiter(rate);
    const lane = async () => {
      while (!this.stopping) {
        await slot();
        const claimed = (await this.db.query<{ seq: number; run_id: string; temporal_run_id: string | null; attempts: number }>(sql.claim(batchId, this.owner, this.leaseMs, mode)))[0];
        if (!claimed) return;
        const run: BatchItemRun = { runId: claimed.run_id, temporalRunId: claimed.temporal_run_id };
        const attempts = Number(claimed.attempts);
        const outcome = await this.actOn(entry, batch, run, attempts, mode, ctx);
        if (outcome.status === 'PENDING') {
          await this.db.query(sql.retryLater(batchId, Number(claimed.seq), this.owner, Math.min(attempts * 2_000, 60_000), outcome.code ?? 'ERROR', outcome.message ?? ''));
        } else {
          await this.db.query(sql.finish(batchId, Number(claimed.seq), this.owner, outcome.status, outcome.code, outcome.message, outcome.result));
        }
      }
    };
    await Promise.all(Array.from({ length: mode === 'settle' ? 1 : concurrency }, lane));
    if (mode === 'run' && (await this.db.query(sql.complete(batchId))).length === 0) await this.db.query(sql.touch(batchId));
    const done = (await this.db.query<{ state: string }>({ text: 'SELECT state FROM batches WHERE id = $1', values: [batchId] }))[0];
    if (done?.state === 'COMPLETED') this.log(`batch ${batchId}: completed`);
  }

  /** One item: whether the action applies, whether this batch already acted (a claim after a restart), then the action, classified. */
  private async actOn(
    entry: ReturnType<typeof actionEntry>,
    batch: BatchView,
    run: BatchItemRun,
    attempts: number,
    mode: 'run' | 'settle',
    ctx: BatchActionContext,
  ): Promise<{ status: BatchItemStatus; code: string | null; message: string | null; result: unknown }> {
    try {
      if (attempts > 1) {
        const before = await entry.appliedBefore(this.pinflow, run, batch.params, ctx);
        if (before) return { status: 'DONE', code: BATCH_ITEM_CODES.APPLIED_BEFORE_RESTART, message: typeof before.note === 'string' ? before.note : 'applied before a restart', result: before };
      }
      if (mode === 'settle') return { status: 'SKIPPED', code: BATCH_ITEM_CODES.BATCH_CANCELLED, message: 'batch cancelled', result: null };
      const projected = (await this.db.query<{ status: RunStatus }>(sql.runStatus(run.runId)))[0];
      if (projected && !entry.appliesTo.includes(projected.status)) {
        return { status: 'SKIPPED', code: BATCH_ITEM_CODES.NOT_APPLICABLE, message: `run is ${projected.status}; ${entry.appliesToText}`, result: null };
      }
      const result = await entry.apply(this.pinflow, run, batch.params, ctx);
      return { status: 'DONE', code: null, message: null, result };
    } catch (err) {
      const code = err instanceof PinflowError ? err.code : undefined;
      if (code && SKIP_CODES.has(code)) return { status: 'SKIPPED', code, message: errorText(err), result: null };
      const transient = !code || TRANSIENT_CODES.has(code);
      if (transient && attempts < this.maxAttempts) {
        this.log(`batch ${batch.id}: run ${run.runId}: attempt ${attempts} failed (${errorText(err)}); it is tried again`);
        return { status: 'PENDING', code: code ?? 'ERROR', message: errorText(err), result: null };
      }
      return { status: 'FAILED', code: code ?? ERROR_CODES.INTERNAL, message: errorText(err), result: null };
    }
  }
}

/** The actions a batch can apply, for usage texts. */
export const BATCH_ACTION_NAMES: readonly string[] = BATCH_ACTIONS;
