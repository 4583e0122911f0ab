/**
 * Every projection statement, one small named function each, returning
 * `{ text, values }` (pg-boss style). snake_case columns are aliased to
 * camelCase in the SQL itself. JSON values are passed as text and cast, so
 * `pg` and PGlite behave identically.
 */
import { ATTEMPT_SUPERSEDED, SUPERSEDED, type StepCountState } from '../graph/terminology';
import type { RunOrigin, StepRecord } from '../graph/wire';
import { json, type Query } from '../db/connection';
import { ATTENTION_FILTER } from './attention-filter';

const RUN_COLUMNS = `id, definition, version, tenant, status, parent_run_id AS "parentRunId", parent_step AS "parentStep",
  CASE WHEN status = 'STALLED' THEN json_build_object('id', stall_id, 'reason', stall_reason, 'rpc', stall_rpc, 'stepInstance', stall_step,
    'details', stall_details, 'since', stalled_at) END AS stall,
  CASE WHEN status = 'PAUSED' THEN json_build_object('by', paused_by, 'reason', paused_reason, 'since', paused_at, 'before', paused_before) END AS pause,
  temporal_run_id AS "temporalRunId", current_step AS "currentStep", error_summary AS "errorSummary",
  started_at AS "startedAt", updated_at AS "updatedAt", closed_at AS "closedAt"`;

/**
 * Written by the client after Temporal accepted the start (inside
 * {@link startRun}), and by the run's run-started local activity: whichever
 * comes first wins.
 */
export const insertRun = (r: {
  id: string;
  definition: string;
  version: string;
  tenant: string;
  temporalRunId: string | null;
  startedAt: string;
  parent?: { runId: string; stepInstance: string } | undefined;
}): Query => ({
  text: `INSERT INTO runs (id, definition, version, tenant, status, temporal_run_id, started_at, updated_at, parent_run_id, parent_step)
         VALUES ($1, $2, $3, $4, 'RUNNING', $5, $6, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE SET temporal_run_id = COALESCE(EXCLUDED.temporal_run_id, runs.temporal_run_id),
           version = EXCLUDED.version`,
  values: [r.id, r.definition, r.version, r.tenant, r.temporalRunId, r.startedAt, r.parent?.runId ?? null, r.parent?.stepInstance ?? null],
});

/**
 * The run's start in one statement: its row, its details and, for a rerun or
 * replay, its origin. Idempotent: the run's row is `insertRun`'s upsert, the
 * details and the origin are inserted only once (a retried start writes nothing twice); the foreign
 * keys of the details and origin rows are checked at the end of the
 * statement, when the run's row is in.
 */
export const startRun = (
  r: Parameters<typeof insertRun>[0] & { input: unknown; metadata: unknown; origin?: RunOrigin | undefined },
): Query => {
  const run = insertRun(r);
  const o = r.origin;
  return {
    text: `WITH run AS (${run.text}),
           details AS (INSERT INTO run_details (run_id, input, metadata) VALUES ($1, $9::jsonb, $10::jsonb) ON CONFLICT (run_id) DO NOTHING),
           origin AS (INSERT INTO run_origins (run_id, source_run_id, kind, from_step, occurrence, source_version, by, reason)
                      SELECT $1, $11, $12, $13, $14, $15, $16, $17 WHERE $11::text IS NOT NULL ON CONFLICT (run_id) DO NOTHING)
           SELECT 1 AS started`,
    prepare: true,
    values: [
      ...run.values!,
      json(r.input ?? null),
      json(r.metadata ?? {}),
      o?.sourceRunId ?? null,
      o?.kind ?? null,
      o?.fromStep ?? null,
      o?.occurrence ?? null,
      o?.sourceVersion ?? null,
      o?.by ?? null,
      o?.reason ?? null,
    ],
  };
};

export const selectRunOrigin = (runId: string): Query => ({
  text: `SELECT source_run_id AS "sourceRunId", kind, from_step AS "fromStep", occurrence, source_version AS "sourceVersion", by, reason, created_at AS "createdAt"
         FROM run_origins WHERE run_id = $1`,
  values: [runId],
});

export const selectRunsFrom = (sourceRunId: string): Query => ({
  text: `SELECT o.run_id AS "runId", o.kind, o.from_step AS "fromStep", o.created_at AS "createdAt", r.status, r.version
         FROM run_origins o LEFT JOIN runs r ON r.id = o.run_id WHERE o.source_run_id = $1 ORDER BY o.created_at, o.run_id LIMIT 100`,
  values: [sourceRunId],
});

export const selectChildRuns = (parentRunId: string): Query => ({
  text: `SELECT ${RUN_COLUMNS} FROM runs WHERE parent_run_id = $1 ORDER BY started_at, id`,
  values: [parentRunId],
});

/**
 * A step instance was cancelled (failFast sibling, cancelled run): its open
 * attempts end CANCELLED; if none was ever written, a CANCELLED attempt 1 is.
 * A sibling's activity can insert that attempt in the same moment (the
 * `NOT EXISTS` guards see only committed rows): `ON CONFLICT` turns that
 * expected race into cancelling the row it wrote, instead of a unique
 * violation logged as a failure.
 */
export const cancelOpenAttempts = (runId: string, s: StepRecord): Query => ({
  text: `WITH closed AS (
           UPDATE run_steps SET status = 'CANCELLED', finished_at = $6
           WHERE run_id = $1 AND step_instance = $2 AND status = 'RUNNING' RETURNING 1)
         INSERT INTO run_steps (run_id, step_instance, attempt, step_id, step_type, seq, status, started_at, finished_at)
         SELECT $1, $2, 1, $3, $4, $5, 'CANCELLED', $6, $6
         WHERE NOT EXISTS (SELECT 1 FROM closed)
           AND NOT EXISTS (SELECT 1 FROM run_steps WHERE run_id = $1 AND step_instance = $2)
         ON CONFLICT (run_id, step_instance, dispatch, attempt) DO UPDATE SET status = 'CANCELLED', finished_at = EXCLUDED.finished_at
         WHERE run_steps.status = 'RUNNING'`,
  values: [runId, s.stepInstance, s.stepId, s.stepType, s.seq, s.finishedAt ?? s.startedAt],
});

/**
 * Serialises the step writes of one run for the rest of the transaction, across
 * processes: an old attempt's late write (a slow worker, a queued projection
 * write) and a newer attempt's supersession can then never interleave, which
 * `READ COMMITTED` alone would allow (each would miss the other's uncommitted row).
 */
export const lockRunSteps = (runId: string): Query => ({
  text: `SELECT pg_advisory_xact_lock(hashtextextended('pinflow.run_steps:' || $1, 0)) AS locked`,
  values: [runId],
});

export const setCurrentStep = (runId: string, stepInstance: string): Query => ({
  text: `UPDATE runs SET current_step = $2, updated_at = now() WHERE id = $1 AND status = 'RUNNING'`,
  values: [runId, stepInstance],
});

export const closeRun = (runId: string, status: string, errorSummary: string | null, closedAt: string): Query => ({
  text: `UPDATE runs SET status = $2, error_summary = $3, closed_at = $4, updated_at = $4, current_step = NULL WHERE id = $1`,
  values: [runId, status, errorSummary, closedAt],
});

export const closeRunDetails = (runId: string, output: unknown, error: unknown): Query => ({
  text: `UPDATE run_details SET output = $2::jsonb, error = $3::jsonb WHERE run_id = $1`,
  values: [runId, json(output), json(error)],
});

/** What a step record written again does to its row (shared by {@link upsertStep} and {@link writeStepsAtOnce}). */
const STEP_CONFLICT = `ON CONFLICT (run_id, step_instance, dispatch, attempt) DO UPDATE SET
           notes = COALESCE(EXCLUDED.notes, run_steps.notes),
           status = EXCLUDED.status,
           finished_at = EXCLUDED.finished_at,
           input = COALESCE(EXCLUDED.input, run_steps.input),
           output = EXCLUDED.output,
           error = EXCLUDED.error
         WHERE run_steps.status NOT IN ('CANCELLED', '${SUPERSEDED}')
           AND NOT (EXCLUDED.status = 'RUNNING' AND run_steps.status IN ('COMPLETED', 'FAILED'))`;

/**
 * Idempotent on (run, step instance, dispatch, attempt): a retried or replayed
 * write updates, never duplicates. A CANCELLED or SUPERSEDED attempt stays so
 * even if its handler finishes late, and a finished attempt never goes back to
 * RUNNING. An attempt written RUNNING or COMPLETED after a later attempt of
 * its dispatch exists (a late write from a slow or queued writer) is written
 * SUPERSEDED: Temporal never accepted its outcome, since it started another.
 */
export const upsertStep = (runId: string, s: StepRecord): Query => ({
  text: `INSERT INTO run_steps (run_id, step_instance, attempt, step_id, step_type, seq, status, started_at, finished_at, input, output, error, dispatch, notes)
         SELECT $1, $2, $3, $4, $5, $6, CASE WHEN later.attempt IS NULL THEN $7::text ELSE '${SUPERSEDED}' END, $8, $9, $10::jsonb, $11::jsonb,
           CASE WHEN later.attempt IS NULL THEN $12::jsonb
             ELSE ${supersededError(`$3::int`, `$7::text`, 'later.attempt', "'wrote'")} END,
           $13, $14::jsonb
         FROM (SELECT max(attempt) AS attempt FROM run_steps
               WHERE run_id = $1 AND step_instance = $2 AND dispatch = $13 AND attempt > $3 AND $7::text IN ('RUNNING', 'COMPLETED')) later
         ${STEP_CONFLICT}`,
  values: [
    runId,
    s.stepInstance,
    s.attempt,
    s.stepId,
    s.stepType,
    s.seq,
    s.status,
    s.startedAt,
    s.finishedAt ?? null,
    json(s.input),
    json(s.output),
    json(s.error),
    s.dispatch ?? 1,
    json(s.notes),
  ],
});

/**
 * Whether {@link writeStepsAtOnce} can take these records: first attempts
 * (a retry supersedes earlier attempts first, in the transactional path), no
 * CANCELLED record (it closes open attempts), and no step instance twice (an
 * `INSERT ... ON CONFLICT` may touch a row once).
 */
export function oneStatementSteps(steps: StepRecord[]): boolean {
  const keys = new Set<string>();
  for (const s of steps) {
    if (s.attempt !== 1 || s.status === 'CANCELLED') return false;
    const key = `${s.stepInstance}\u0000${s.dispatch ?? 1}`;
    if (keys.has(key)) return false;
    keys.add(key);
  }
  return true;
}

/** What else the one statement of {@link writeStepsAtOnce} does with the run's row. */
export type StepsAlso =
  | { kind: 'cursor'; currentStep: string }
  | { kind: 'close'; status: string; errorSummary: string | null; closedAt: string; output: unknown; error: unknown }
  | { kind: 'none' };

/**
 * Step records (first attempts, see {@link oneStatementSteps}) and what they
 * move on the run, in ONE statement: no BEGIN/COMMIT, no separate lock. The
 * records are upserted exactly as {@link upsertStep} does (idempotent on
 * run, step instance, dispatch and attempt; a late write after a later
 * attempt is written SUPERSEDED), and then, with `also`, the run's cursor
 * moves or the run closes (status, output and error, its open waits leave the
 * correlation index), all or nothing.
 *
 * Serialisation with the transactional writers (a retry's supersession,
 * the reconciler's close): they hold the run's advisory lock (`lockRunSteps`)
 * for their whole transaction. This statement only TRIES the shared side of
 * that lock: when one of them holds it, it writes nothing and answers
 * `locked: false`, and the caller takes the transactional path, which waits.
 * What remains is the moment between this statement's snapshot and its
 * try-lock (microseconds): a transaction that commits exactly then is not
 * seen by this statement's "later attempt" check.
 */
export const writeStepsAtOnce = (runId: string, steps: StepRecord[], also: StepsAlso): Query => {
  const rows = steps.map((s) => ({
    i: s.stepInstance,
    a: s.attempt,
    d: s.dispatch ?? 1,
    id: s.stepId,
    t: s.stepType,
    q: s.seq,
    s: s.status,
    st: s.startedAt,
    ft: s.finishedAt ?? null,
    inp: json(s.input),
    outp: json(s.output),
    err: json(s.error),
    n: json(s.notes),
  }));
  const values: unknown[] = [runId, JSON.stringify(rows)];
  const gated = `(SELECT ok FROM gate)`;
  let more = '';
  if (also.kind === 'cursor') {
    values.push(also.currentStep);
    more = `, moved AS (UPDATE runs SET current_step = $3, updated_at = now() WHERE id = $1 AND status = 'RUNNING' AND ${gated})`;
  } else if (also.kind === 'close') {
    values.push(also.status, also.errorSummary, also.closedAt, json(also.output), json(also.error));
    more = `, closed AS (UPDATE runs SET status = $3, error_summary = $4, closed_at = $5, updated_at = $5, current_step = NULL WHERE id = $1 AND ${gated}),
           details AS (UPDATE run_details SET output = $6::jsonb, error = $7::jsonb WHERE run_id = $1 AND ${gated}),
           waits AS (UPDATE run_waits SET status = 'CANCELLED', closed_at = $5 WHERE run_id = $1 AND status = 'OPEN' AND ${gated})`;
  }
  return {
    text: `WITH gate AS (SELECT pg_try_advisory_xact_lock_shared(hashtextextended('pinflow.run_steps:' || $1, 0)) AS ok),
           r AS (SELECT x.* FROM gate, jsonb_to_recordset($2::jsonb) AS x(i text, a int, d int, id text, t text, q int, s text, st timestamptz,
                   ft timestamptz, inp text, outp text, err text, n text) WHERE gate.ok),
           written AS (
             INSERT INTO run_steps (run_id, step_instance, attempt, step_id, step_type, seq, status, started_at, finished_at, input, output, error, dispatch, notes)
             SELECT $1, r.i, r.a, r.id, r.t, r.q, CASE WHEN later.attempt IS NULL THEN r.s ELSE '${SUPERSEDED}' END, r.st, r.ft, r.inp::jsonb, r.outp::jsonb,
               CASE WHEN later.attempt IS NULL THEN r.err::jsonb ELSE ${supersededError('r.a', 'r.s', 'later.attempt', "'wrote'")} END,
               r.d, r.n::jsonb
             FROM r LEFT JOIN LATERAL (SELECT max(attempt) AS attempt FROM run_steps
                                       WHERE run_id = $1 AND step_instance = r.i AND dispatch = r.d AND attempt > r.a AND r.s IN ('RUNNING', 'COMPLETED')) later ON true
             ${STEP_CONFLICT})${more}
           SELECT gate.ok AS locked, runs.definition, runs.version FROM gate LEFT JOIN runs ON runs.id = $1`,
    values,
    prepare: true,
  };
};

/**
 * The `AttemptSuperseded` error of a superseded attempt, as a SQL expression:
 * which attempt, what it had written, and which attempt replaced it.
 */
function supersededError(attempt: string, wrote: string, by: string, verb: string): string {
  return `jsonb_build_object('type', '${ATTEMPT_SUPERSEDED}', 'message',
             'attempt ' || ${attempt} || ' ' || CASE ${wrote} WHEN 'COMPLETED' THEN 'completed, but its completion never reached Temporal'
               ELSE 'never reported back (worker lost or timed out)' END || '; attempt ' || ${by} || ' of the same dispatch replaced it',
             'details', jsonb_build_object(${verb}, ${wrote}))`;
}

/**
 * Attempt `attempt` of a dispatch was written: earlier attempts of the same
 * dispatch still RUNNING (never reported back) or COMPLETED (their completion
 * never reached Temporal, or it would not have retried) are SUPERSEDED, so
 * exactly one attempt per dispatch ends COMPLETED. A FAILED earlier attempt
 * keeps its failure: that is Temporal's ordinary retry, and its error is what
 * an operator wants to see.
 */
export const supersedeEarlierAttempts = (runId: string, stepInstance: string, dispatch: number, attempt: number, at: string): Query => ({
  text: `UPDATE run_steps SET status = '${SUPERSEDED}', finished_at = COALESCE(finished_at, $4),
           error = ${supersededError('attempt', 'status', '$3::int', "'wrote'")}
         WHERE run_id = $1 AND step_instance = $2 AND dispatch = $5 AND attempt < $3 AND status IN ('RUNNING', 'COMPLETED')`,
  values: [runId, stepInstance, attempt, at, dispatch],
});

export const selectRun = (id: string): Query => ({
  text: `SELECT ${RUN_COLUMNS}, d.input, d.output, d.error, d.metadata, d.lineage
         FROM runs LEFT JOIN run_details d ON d.run_id = runs.id WHERE runs.id = $1`,
  values: [id],
});

export const selectRunSteps = (runId: string): Query => ({
  text: `SELECT step_instance AS "stepInstance", attempt, dispatch, notes, step_id AS "stepId", step_type AS "stepType", seq, status,
                started_at AS "startedAt", finished_at AS "finishedAt", input, output, error
         FROM run_steps WHERE run_id = $1 ORDER BY seq, dispatch, attempt`,
  values: [runId],
});

export interface RunFilter {
  status?: string;
  definition?: string;
  version?: string;
  tenant?: string;
  /** Runs that need attention for this reason now (client/attention.ts). */
  attention?: string;
  /** Exact match on every given key of `run_details.metadata` (jsonb containment, GIN-indexed). */
  metadata?: Record<string, string | number | boolean>;
  /** Started at or after (inclusive), an ISO timestamp. */
  startedAfter?: string;
  /** Started before (exclusive), an ISO timestamp. */
  startedBefore?: string;
  /** Case-insensitive substring of the run id. */
  q?: string;
  /** The open stall's RPC. */
  stallRpc?: string;
  /** The open stall's reason. */
  stallReason?: string;
  /** With `stepState`: runs at (or through) one step in one state (graph/terminology STEP_COUNT_STATES). */
  step?: { stepId: string; state: StepCountState };
}

/** The SQL condition of `step` + `stepState`, with one `?` for the step id; the same rules the step_counts table keeps. */
const rowsInBucket = (bucket: StepCountState) =>
  `EXISTS (SELECT 1 FROM run_steps s WHERE s.run_id = runs.id AND s.step_id = ? AND pinflow_step_bucket(s.status, s.step_type, s.error, s.notes) = '${bucket}')`;
const STEP_STATE_FILTER: Record<StepCountState, string> = {
  running: rowsInBucket('running'),
  passed: rowsInBucket('passed'),
  failed: rowsInBucket('failed'),
  skipped: rowsInBucket('skipped'),
  waiting: `EXISTS (SELECT 1 FROM run_waits w WHERE w.run_id = runs.id AND w.status = 'OPEN' AND pinflow_step_of(w.step_instance) = ?)`,
  stalled: `(status = 'STALLED' AND pinflow_step_of(stall_step) = ?)`,
};

/** Builds a WHERE clause from optional conditions; `?` in each condition becomes its numbered parameter. */
export function whereBuilder() {
  const where: string[] = [];
  const values: unknown[] = [];
  return {
    values,
    add: (condition: string, v: unknown) => {
      values.push(v);
      where.push(condition.replace('?', `$${values.length}`));
    },
    /** A condition whose parameters the caller already pushed onto `values` and numbered. */
    raw: (condition: string) => {
      where.push(condition);
    },
    /** `WHERE a AND b`, or nothing. */
    clause: () => (where.length ? `WHERE ${where.join(' AND ')}` : ''),
  };
}

/** The run list's filter as conditions on `runs` (shared by the list and its counts). */
function runFilterWhere(filter: RunFilter) {
  const w = whereBuilder();
  const { add } = w;
  if (filter.status) add('status = ?', filter.status);
  if (filter.definition) add('definition = ?', filter.definition);
  if (filter.version) add('version = ?', filter.version);
  if (filter.tenant) add('tenant = ?', filter.tenant);
  if (filter.attention) add(ATTENTION_FILTER, filter.attention);
  if (filter.metadata && Object.keys(filter.metadata).length) {
    add('EXISTS (SELECT 1 FROM run_details d WHERE d.run_id = runs.id AND d.metadata @> ?::jsonb)', json(filter.metadata));
  }
  if (filter.startedAfter) add('started_at >= ?::timestamptz', filter.startedAfter);
  if (filter.startedBefore) add('started_at < ?::timestamptz', filter.startedBefore);
  // strpos, not LIKE: no wildcard in the search text needs escaping.
  if (filter.q) add('strpos(lower(id), lower(?)) > 0', filter.q);
  if (filter.stallRpc) add(`status = 'STALLED' AND stall_rpc = ?`, filter.stallRpc);
  if (filter.stallReason) add(`status = 'STALLED' AND stall_reason = ?`, filter.stallReason);
  if (filter.step) add(STEP_STATE_FILTER[filter.step.state], filter.step.stepId);
  return w;
}

/** Keyset page over (started_at DESC, id DESC); fetches one extra row to know if there is more. */
export const selectRuns = (filter: RunFilter, after: { startedAt: string; id: string } | null, limit: number): Query => {
  const w = runFilterWhere(filter);
  const { values } = w;
  if (after) {
    values.push(after.startedAt, after.id);
    w.raw(`(started_at, id) < ($${values.length - 1}::timestamptz, $${values.length})`);
  }
  values.push(limit + 1);
  return {
    text: `SELECT ${RUN_COLUMNS} FROM runs ${w.clause()}
           ORDER BY started_at DESC, id DESC LIMIT $${values.length}`,
    values,
  };
};

/** Runs of the run list's filter by status (`GET /runs/counts`). */
export const countRunsByStatus = (filter: RunFilter): Query => {
  const w = runFilterWhere(filter);
  return { text: `SELECT status, count(*)::int AS count FROM runs ${w.clause()} GROUP BY status`, values: w.values };
};

/** A version's per-step counts from step_counts (summed over shards, and tenants unless one is given). */
export const selectStepCounts = (version: string, tenant: string | undefined): Query => ({
  text: `SELECT step_id AS "stepId", bucket, sum(runs)::int AS count FROM step_counts
         WHERE version = $1 AND ($2::text IS NULL OR tenant = $2) GROUP BY step_id, bucket`,
  values: [version, tenant ?? null],
});

/** A version's runs by status from run_counts. */
export const selectVersionRunCounts = (version: string, tenant: string | undefined): Query => ({
  text: `SELECT status, sum(runs)::int AS count FROM run_counts
         WHERE version = $1 AND ($2::text IS NULL OR tenant = $2) GROUP BY status`,
  values: [version, tenant ?? null],
});

/** Open stalls grouped by definition, version, RPC and reason, largest groups first (`GET /stalls`). */
export const selectStallGroups = (f: { definition?: string | undefined; tenant?: string | undefined; version?: string | undefined; rpc?: string | undefined; reason?: string | undefined }): Query => {
  const w = whereBuilder();
  w.raw(`r.status = 'STALLED'`);
  if (f.definition) w.add('r.definition = ?', f.definition);
  if (f.tenant) w.add('r.tenant = ?', f.tenant);
  if (f.version) w.add('r.version = ?', f.version);
  if (f.rpc) w.add('r.stall_rpc = ?', f.rpc);
  if (f.reason) w.add('r.stall_reason = ?', f.reason);
  return {
    text: `SELECT r.definition, r.version, dv.seq AS "versionSeq", r.stall_rpc AS rpc, r.stall_reason AS reason, count(*)::int AS count,
             min(r.stalled_at) AS "oldestSince", max(r.stalled_at) AS "newestSince",
             (array_agg(r.id ORDER BY r.stalled_at, r.id))[1:5] AS "sampleRunIds"
           FROM runs r LEFT JOIN definition_versions dv ON dv.definition = r.definition AND dv.version = r.version
           ${w.clause()}
           GROUP BY r.definition, r.version, dv.seq, r.stall_rpc, r.stall_reason
           ORDER BY count(*) DESC, r.definition, dv.seq, r.stall_rpc, r.stall_reason`,
    values: w.values,
  };
};

/** Open runs pinned to a version, oldest first, at most `limit` (the diff's open runs). */
export const selectOpenRunsOfVersion = (version: string, limit: number): Query => ({
  text: `SELECT ${RUN_COLUMNS} FROM runs WHERE version = $1 AND status IN ('RUNNING', 'STALLED', 'PAUSED') ORDER BY started_at, id LIMIT $2`,
  values: [version, limit],
});

/** The latest COMPLETED output of each step id of some runs (what a migration would carry, as projected). */
export const selectCompletedOutputs = (runIds: string[]): Query => ({
  text: `SELECT DISTINCT ON (run_id, step_id) run_id AS "runId", step_id AS "stepId", output FROM run_steps
         WHERE run_id = ANY($1::text[]) AND status = 'COMPLETED' ORDER BY run_id, step_id, seq DESC, dispatch DESC, attempt DESC`,
  values: [runIds],
});

export const ping = (): Query => ({ text: 'SELECT 1 AS ok' });

/** The run stalled: what the live deployment cannot serve, and since when. */
/** A run's metric labels (observability/metrics.ts). */
export const selectRunLabels = (runId: string): Query => ({
  text: `SELECT definition, version FROM runs WHERE id = $1`,
  values: [runId],
});

/** Runs STALLED now by reason, for the pinflow_stalls_open gauge; reads the partial index runs_stalls_idx only. */
export const countStallsByReason = (): Query => ({
  text: `SELECT stall_reason AS reason, count(*)::int AS count FROM runs WHERE status = 'STALLED' GROUP BY stall_reason`,
  values: [],
});

export const markStalled = (runId: string, st: { id: string; reason: string; rpc: string; stepInstance: string; details: unknown; since: string }): Query => ({
  text: `UPDATE runs SET status = 'STALLED', stall_id = $2, stall_reason = $3, stall_rpc = $4, stall_step = $5,
           stall_details = $6::jsonb, stalled_at = $7, current_step = $5, updated_at = now()
         WHERE id = $1 AND status IN ('RUNNING', 'STALLED', 'PAUSED')`,
  values: [runId, st.id, st.reason, st.rpc, st.stepInstance, json(st.details), st.since],
});

/** The run holds at a top-level step boundary (FLAGS.PAUSE): PAUSED, with who, why, since and the step it resumes at. */
export const markPaused = (runId: string, p: { by: string; reason?: string | undefined; since: string; heldAt?: string | undefined }): Query => ({
  text: `UPDATE runs SET status = 'PAUSED', paused_by = $2, paused_reason = $3, paused_at = $4, paused_before = $5, current_step = NULL, updated_at = now()
         WHERE id = $1 AND status IN ('RUNNING', 'PAUSED')`,
  values: [runId, p.by, p.reason ?? null, p.since, p.heldAt ?? null],
});

/** The run was resumed: it runs again (only the pause that was projected is lifted). */
export const markResumed = (runId: string, since: string): Query => ({
  text: `UPDATE runs SET status = 'RUNNING', paused_by = NULL, paused_reason = NULL, paused_at = NULL, paused_before = NULL, updated_at = now()
         WHERE id = $1 AND status = 'PAUSED' AND paused_at = $2`,
  values: [runId, since],
});

/** Pause a definition; a second pause keeps the first one's who, why and since (no row returned). */
export const insertDefinitionPause = (definition: string, by: string, reason: string | null): Query => ({
  text: `INSERT INTO definition_pauses (definition, paused_by, reason) VALUES ($1, $2, $3) ON CONFLICT (definition) DO NOTHING
         RETURNING definition, paused_by AS "by", reason, since`,
  values: [definition, by, reason],
});

export const deleteDefinitionPause = (definition: string): Query => ({
  text: `DELETE FROM definition_pauses WHERE definition = $1 RETURNING definition, paused_by AS "by", reason, since`,
  values: [definition],
});

/**
 * What a start by definition needs, in one read: the definition's latest
 * version (as catalog/sql's selectVersion gives it) and the definition's
 * pause, if any (a run of a paused definition starts paused).
 */
export const selectStartTarget = (definition: string): Query => ({
  text: `SELECT d.name, d.latest_version AS "latestVersion", v.hash, v.graph, v.contracts, v.created_at AS "createdAt",
                COALESCE((SELECT json_agg(json_build_object('definition', dv.definition, 'seq', dv.seq) ORDER BY dv.definition)
                          FROM definition_versions dv WHERE dv.version = d.latest_version), '[]'::json) AS definitions,
                p.paused_by AS "pausedBy", p.reason AS "pauseReason", p.since AS "pausedSince"
         FROM definitions d LEFT JOIN versions v ON v.hash = d.latest_version LEFT JOIN definition_pauses p ON p.definition = d.name
         WHERE d.name = $1`,
  values: [definition],
  prepare: true,
});

export const selectDefinitionPause = (definition: string): Query => ({
  text: `SELECT definition, paused_by AS "by", reason, since FROM definition_pauses WHERE definition = $1`,
  values: [definition],
});

/** An operator decision was applied: the run runs again. */
export const clearStall = (runId: string, stallId: string): Query => ({
  text: `UPDATE runs SET status = 'RUNNING', stall_id = NULL, stall_reason = NULL, stall_rpc = NULL, stall_step = NULL,
           stall_details = NULL, stalled_at = NULL, updated_at = now()
         WHERE id = $1 AND status = 'STALLED' AND stall_id = $2`,
  values: [runId, stallId],
});

export const insertDecision = (d: {
  runId: string;
  stallId: string | null;
  action: string;
  by: string;
  reason: string | null;
  output: unknown;
  decidedAt: string;
  outcome: string;
}): Query => ({
  text: `INSERT INTO run_decisions (run_id, stall_id, action, decided_by, reason, output, decided_at, outcome)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)
         ON CONFLICT (run_id, stall_id, action) DO UPDATE SET outcome = EXCLUDED.outcome`,
  values: [d.runId, d.stallId, d.action, d.by, d.reason, json(d.output), d.decidedAt, d.outcome],
});

export const selectDecisions = (runId: string): Query => ({
  text: `SELECT stall_id AS "stallId", action, decided_by AS "by", reason, output, decided_at AS "decidedAt", outcome
         FROM run_decisions WHERE run_id = $1 ORDER BY decided_at, id`,
  values: [runId],
});

/** Open runs stalled on one RPC for one reason (bulk decisions). */
export const selectStalled = (filter: { rpc?: string | undefined; reason?: string | undefined }): Query => ({
  text: `SELECT id, stall_id AS "stallId" FROM runs
         WHERE status = 'STALLED' AND ($1::text IS NULL OR stall_rpc = $1) AND ($2::text IS NULL OR stall_reason = $2)
         ORDER BY stalled_at, id`,
  values: [filter.rpc ?? null, filter.reason ?? null],
});

/** Open runs (RUNNING or STALLED), keyset-paged by id, for pre-deploy analysis. */
export const selectOpenRuns = (afterId: string | null, limit: number): Query => ({
  text: `SELECT ${RUN_COLUMNS} FROM runs WHERE status IN ('RUNNING', 'STALLED', 'PAUSED') AND ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2`,
  values: [afterId, limit],
});

/** A migration: the run now runs the target version; its lineage grows. */
export const migrateRun = (runId: string, version: string, lineage: unknown): Query => ({
  text: `WITH r AS (
           UPDATE runs SET version = $2, status = 'RUNNING', stall_id = NULL, stall_reason = NULL, stall_rpc = NULL, stall_step = NULL,
             stall_details = NULL, stalled_at = NULL, updated_at = now()
           WHERE id = $1 AND status IN ('RUNNING', 'STALLED', 'PAUSED') RETURNING id)
         UPDATE run_details SET lineage = $3::jsonb WHERE run_id IN (SELECT id FROM r)`,
  values: [runId, version, json(lineage)],
});

/**
 * The reconciler closes a run Temporal closed without the run's own
 * projection write. Conditional: only a row still open (RUNNING or STALLED)
 * is touched, so a close the run wrote itself (newer, with its output) is
 * never overwritten. The stall, if any, is cleared; the row follows the
 * execution Temporal closed. Returns a row when it closed it.
 */
export const reconcileCloseRun = (r: { runId: string; status: string; errorSummary: string | null; closedAt: string; temporalRunId: string | null }): Query => ({
  text: `UPDATE runs SET status = $2, error_summary = COALESCE($3, error_summary), closed_at = $4, updated_at = now(), current_step = NULL,
           stall_id = NULL, stall_reason = NULL, stall_rpc = NULL, stall_step = NULL, stall_details = NULL, stalled_at = NULL,
           temporal_run_id = COALESCE($5, temporal_run_id)
         WHERE id = $1 AND status IN ('RUNNING', 'STALLED', 'PAUSED')
         RETURNING id`,
  values: [r.runId, r.status, r.errorSummary, r.closedAt, r.temporalRunId],
});

/** The error of a run the reconciler closed, unless the run wrote one itself. */
export const reconcileRunError = (runId: string, error: unknown): Query => ({
  text: `UPDATE run_details SET error = $2::jsonb WHERE run_id = $1 AND error IS NULL`,
  values: [runId, json(error)],
});

/** The open step attempts of a run the reconciler closed end CANCELLED at its close. */
export const reconcileCloseAttempts = (runId: string, closedAt: string): Query => ({
  text: `UPDATE run_steps SET status = 'CANCELLED', finished_at = COALESCE(finished_at, $2) WHERE run_id = $1 AND status = 'RUNNING'`,
  values: [runId, closedAt],
});

/** An open run whose latest Temporal execution is another one (a reset): the row follows it. */
export const followExecution = (runId: string, temporalRunId: string): Query => ({
  text: `UPDATE runs SET temporal_run_id = $2, updated_at = now()
         WHERE id = $1 AND status IN ('RUNNING', 'STALLED', 'PAUSED') AND temporal_run_id IS DISTINCT FROM $2
         RETURNING temporal_run_id AS "temporalRunId"`,
  values: [runId, temporalRunId],
});

/** A version's graph and contracts, for its redaction plan (projection/redaction.ts); versions are immutable. A removed version (a tombstone) has none. */
export const selectVersionMarks = (hash: string): Query => ({
  text: `SELECT graph, contracts FROM versions WHERE hash = $1 AND removed_at IS NULL`,
  values: [hash],
});
