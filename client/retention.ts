/**
 * Retention and pruning (issue 17; README "Data lifecycle").
 *
 * - **Policies** (`retention_policies`, migration 000015): how many days a
 *   closed run is kept after its `closed_at`, per definition and closed
 *   status, with a global default; the event log (and its deliveries) has
 *   its own. `days: null` keeps forever. The most specific rule wins:
 *   (definition, status), (definition, any status), (any, status), default.
 * - **Mark** ({@link RetentionService.preview}): what is due now, per
 *   definition and status (count, oldest and newest close), and how many due
 *   runs are exempt, by rule: a legal hold (`run_holds`), an open child run,
 *   metadata `retain: true`. Changes nothing.
 * - **Sweep** ({@link RetentionService.startSweep}): deletes what is due in
 *   batches of `batchSize` runs, each its own short transaction (with
 *   `lock_timeout` and `statement_timeout`), `pauseMs` apart. A sweep
 *   snapshots the policies and its `asOf` time when it starts, records its
 *   last key and totals in the same transaction as each batch, and so
 *   resumes exactly where it stopped. One sweep at a time (a unique index);
 *   a process drives it under a lease, and a sweep whose process died is
 *   continued by the next tick of any process once the lease ran out.
 *
 * What a pruned run takes with it: its `runs` row and, by cascade,
 * `run_details`, `run_steps`, `run_waits`, `run_decisions`; and, in the same
 * statement, its `event_deliveries`, its own `run_origins` row and its
 * `run_attention` rows. The count tables follow through the runs trigger
 * (000014). It leaves: the audit log (a security record, append-only),
 * batches and their items (an operator's record of what a batch did), the
 * `run_origins` rows of its reruns (they belong to the reruns), and the run's
 * history in Temporal (the namespace's own retention).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Connection } from '@temporalio/client';
import { iso, json, type Db } from '../db/connection';
import { isDatabaseUnavailable } from '../db/availability';
import { ERROR_CODES, InvalidRequestError, NotFoundError, PinflowError } from '../graph/errors';
import type { VersionStore } from '../catalog/versions';

/** The closed statuses a policy can name: only closed runs are ever pruned. */
export const RETENTION_STATUSES = ['COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED'] as const;
export type RetentionStatus = (typeof RETENTION_STATUSES)[number];
/** What a policy is about: closed runs, or the event log with its deliveries. */
export const RETENTION_SUBJECTS = ['runs', 'events'] as const;
export type RetentionSubject = (typeof RETENTION_SUBJECTS)[number];
/** The longest a policy may keep something, in days (100 years); longer is `days: null`, forever. */
export const RETENTION_MAX_DAYS = 36_500;
/** Days the namespace keeps a history beyond the longest run policy: a run is pruned up to one sweep interval after it is due. */
export const NAMESPACE_MARGIN_DAYS = 1;
/** Why a due run is kept, in the order a run is counted under (a held run with an open child counts as held). */
export const EXEMPTION_RULES = ['legalHold', 'openChildren', 'retain'] as const;
export const SWEEP_STATES = ['RUNNING', 'DONE', 'FAILED'] as const;
export type SweepState = (typeof SWEEP_STATES)[number];

const DAY_MS = 86_400_000;
/** Postgres errors a batch is retried after (its transaction rolled back, nothing half done): lock_timeout, deadlock, statement_timeout, serialization. */
const RETRYABLE = new Set(['55P03', '40P01', '57014', '40001']);
const MAX_BATCH_RETRIES = 5;

export interface RetentionPolicy {
  subject: RetentionSubject;
  /** null: every definition. */
  definition: string | null;
  /** null: every closed status. */
  status: RetentionStatus | null;
  /** null: kept forever. */
  days: number | null;
  updatedBy: string;
  updatedAt: string;
}

export interface SetPolicyInput {
  /** @default 'runs' */
  subject?: RetentionSubject;
  definition?: string | null;
  status?: RetentionStatus | null;
  days: number | null;
  by: string;
}

export interface UnsetPolicyInput {
  subject?: RetentionSubject;
  definition?: string | null;
  status?: RetentionStatus | null;
}

/** The Temporal namespace's retention against what the policies need. */
export interface NamespaceRetention {
  namespace: string;
  /** What the namespace keeps a closed run's history for, in days (null: it could not be read). */
  days: number | null;
  /** The longest finite run policy plus {@link NAMESPACE_MARGIN_DAYS}; null when no run policy is finite. */
  neededDays: number | null;
  /** A run policy keeps forever: Temporal's retention cannot, so such runs outlive their history. */
  forever: boolean;
  ok: boolean;
  message: string;
  error?: string;
}

export interface PreviewGroup {
  definition: string;
  status: RetentionStatus;
  /** Due runs (exempt ones included). */
  due: number;
  /** Of those, kept by an exemption. */
  exempt: number;
  oldestClosedAt: string;
  newestClosedAt: string;
}

export interface RetentionPreview {
  asOf: string;
  runs: {
    due: number;
    exempt: Record<(typeof EXEMPTION_RULES)[number], number>;
    /** Due minus exempt: what a sweep now would delete. */
    prunable: number;
    groups: PreviewGroup[];
  };
  events: { days: number | null; due: number; exempt: number; deliveries: number; oldestReceivedAt: string | null; newestReceivedAt: string | null };
  namespace: NamespaceRetention | null;
}

export interface SweepView {
  id: string;
  state: SweepState;
  phase: 'runs' | 'events' | 'done';
  by: string;
  reason: string | null;
  asOf: string;
  policies: PolicySnapshot;
  batchSize: number;
  pauseMs: number;
  progress: {
    batches: number;
    runsExamined: number;
    runsDeleted: number;
    stepsDeleted: number;
    exempt: Record<(typeof EXEMPTION_RULES)[number], number>;
    eventsExamined: number;
    eventsDeleted: number;
    eventsExempt: number;
    deliveriesDeleted: number;
    lastRun: { closedAt: string; runId: string } | null;
  };
  error: string | null;
  owner: string | null;
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** Seconds from start to finish (or to now while it runs). */
  durationSeconds: number;
}

export interface LegalHold {
  runId: string;
  by: string;
  reason: string;
  since: string;
}

/** The rules a sweep deletes by, as they were when it started. */
export interface PolicySnapshot {
  runs: Array<{ definition: string | null; status: RetentionStatus | null; days: number | null }>;
  events: number | null;
}

export interface RetentionOptions {
  db: Db;
  catalog: VersionStore;
  /** The Temporal connection and namespace (describe and update its retention). */
  connection: Pick<Connection, 'workflowService'>;
  namespace: string;
  /** Runs examined per batch (PINFLOW_RETENTION_BATCH_SIZE). @default 500 */
  batchSize?: number;
  /** Pause between batches (PINFLOW_RETENTION_PAUSE_MS). @default 100 */
  pauseMs?: number;
  /** How long a process owns a sweep without renewing it (each batch renews it). @default 120 000 */
  leaseMs?: number;
  /** Per-batch Postgres bounds. @default lock 5 s, statement 60 s */
  lockTimeoutMs?: number;
  statementTimeoutMs?: number;
  log?: (line: string) => void;
}

type Row = Record<string, unknown>;

const num = (v: unknown): number => Number(v ?? 0);

/** The SQL that picks a run's policy from the snapshot `$pol` (jsonb array) for `r`: the most specific rule. */
const POLICY_OF_RUN = `LEFT JOIN LATERAL (
    SELECT p.days FROM jsonb_to_recordset($1::jsonb) AS p(definition text, status text, days int)
    WHERE (p.definition = r.definition OR p.definition IS NULL) AND (p.status = r.status OR p.status IS NULL)
    ORDER BY p.definition IS NULL, p.status IS NULL LIMIT 1) pol ON true`;

/** Per run `r`: due (by the policy and `$2`, the as-of time) and each exemption. */
const RUN_FLAGS = `r.closed_at < $2::timestamptz - make_interval(days => pol.days) AS due,
    EXISTS (SELECT 1 FROM run_holds h WHERE h.run_id = r.id) AS held,
    EXISTS (SELECT 1 FROM runs c WHERE c.parent_run_id = r.id AND c.status IN ('RUNNING', 'STALLED', 'PAUSED')) AS open_children,
    EXISTS (SELECT 1 FROM run_details d WHERE d.run_id = r.id AND (d.metadata @> '{"retain": true}'::jsonb OR d.metadata @> '{"retain": "true"}'::jsonb)) AS retain`;

/** Exemption counts with precedence (legal hold, open children, retain) over rows with due/held/open_children/retain. */
const EXEMPT_COUNTS = `count(*) FILTER (WHERE due AND held) AS legal_hold,
    count(*) FILTER (WHERE due AND NOT held AND open_children) AS open_children,
    count(*) FILTER (WHERE due AND NOT held AND NOT open_children AND retain) AS retain`;

/** An event `e` an open wait may still pick up, or that is still being routed, buffered or retried. */
const EVENT_EXEMPT = `((e.status = 'BUFFERED' AND e.expires_at > clock_timestamp())
    OR e.status = 'RECEIVED'
    OR (e.status = 'FAILED' AND e.next_attempt_at IS NOT NULL)
    OR (e.correlation_key IS NOT NULL AND EXISTS (SELECT 1 FROM run_waits w WHERE w.status = 'OPEN' AND w.tenant = e.tenant
        AND w.event_name = e.name AND w.correlation_key = e.correlation_key AND w.reached_at <= e.received_at)))`;

function policyRow(r: Row): RetentionPolicy {
  return {
    subject: r.subject as RetentionSubject,
    definition: (r.definition as string | null) ?? null,
    status: (r.status as RetentionStatus | null) ?? null,
    days: r.days === null || r.days === undefined ? null : num(r.days),
    updatedBy: r.updated_by as string,
    updatedAt: iso(r.updated_at)!,
  };
}

function sweepRow(r: Row): SweepView {
  const started = iso(r.started_at)!;
  const finished = iso(r.finished_at);
  return {
    id: r.id as string,
    state: r.state as SweepState,
    phase: r.phase as SweepView['phase'],
    by: r.by as string,
    reason: (r.reason as string | null) ?? null,
    asOf: iso(r.as_of)!,
    policies: r.policies as PolicySnapshot,
    batchSize: num(r.batch_size),
    pauseMs: num(r.pause_ms),
    progress: {
      batches: num(r.batches),
      runsExamined: num(r.runs_examined),
      runsDeleted: num(r.runs_deleted),
      stepsDeleted: num(r.steps_deleted),
      exempt: { legalHold: num(r.exempt_legal_hold), openChildren: num(r.exempt_open_children), retain: num(r.exempt_retain) },
      eventsExamined: num(r.events_examined),
      eventsDeleted: num(r.events_deleted),
      eventsExempt: num(r.events_exempt),
      deliveriesDeleted: num(r.deliveries_deleted),
      lastRun: r.last_run_id ? { closedAt: iso(r.last_closed_at)!, runId: r.last_run_id as string } : null,
    },
    error: (r.error as string | null) ?? null,
    owner: (r.owner as string | null) ?? null,
    startedAt: started,
    updatedAt: iso(r.updated_at)!,
    finishedAt: finished,
    durationSeconds: Math.round(((finished ? Date.parse(finished) : Date.now()) - Date.parse(started)) / 100) / 10,
  };
}

/** A run rule: its definition and closed status (null: any), its days (null: forever). */
export type RunPolicy = PolicySnapshot['runs'][number];

/** The run rules now (the projection's rebuild asks which missing runs retention pruned). */
export async function runPolicies(db: Db): Promise<RunPolicy[]> {
  const rows = await db.query<Row>({ text: `SELECT definition, status, days FROM retention_policies WHERE subject = 'runs'` });
  return rows.map((r) => ({ definition: (r.definition as string | null) ?? null, status: (r.status as RetentionStatus | null) ?? null, days: r.days === null || r.days === undefined ? null : num(r.days) }));
}

/** The days of the most specific rule for a run (as POLICY_OF_RUN picks it in SQL); null: kept forever, or not a closed status. */
export function runPolicyDays(policies: readonly RunPolicy[], definition: string, status: string): number | null {
  const matching = policies.filter((p) => (p.definition === null || p.definition === definition) && (p.status === null || p.status === status));
  matching.sort((a, b) => Number(a.definition === null) - Number(b.definition === null) || Number(a.status === null) - Number(b.status === null));
  if (!(RETENTION_STATUSES as readonly string[]).includes(status)) return null;
  return matching[0]?.days ?? null;
}

/** The longest finite run policy, and whether one keeps forever. */
export function namespaceNeeds(policies: ReadonlyArray<{ subject?: string; days: number | null }>): { neededDays: number | null; forever: boolean } {
  const runs = policies.filter((p) => p.subject === undefined || p.subject === 'runs');
  const finite = runs.map((p) => p.days).filter((d): d is number => d !== null);
  return { neededDays: finite.length ? Math.max(...finite) + NAMESPACE_MARGIN_DAYS : null, forever: runs.some((p) => p.days === null) };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

function invalid(field: string, message: string, received: unknown, allowed: string): InvalidRequestError {
  return new InvalidRequestError(ERROR_CODES.REQUEST_INVALID, `${field}: ${message}`, { field, received: received === undefined ? null : received, allowed });
}

export class RetentionService {
  readonly db: Db;
  /** This process, as a sweep's owner. */
  readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly opts: Required<Omit<RetentionOptions, 'db' | 'catalog' | 'connection' | 'namespace' | 'log'>> & Pick<RetentionOptions, 'catalog' | 'connection' | 'namespace'>;
  private readonly log: (line: string) => void;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<unknown> | undefined;
  /** The sweeps this process drives now, by id. */
  private readonly driving = new Map<string, Promise<SweepView | undefined>>();
  private abort = new AbortController();
  /** The last namespace check (GET /health shows it). */
  private lastNamespace: NamespaceRetention | undefined;

  constructor(opts: RetentionOptions) {
    this.db = opts.db;
    this.opts = {
      catalog: opts.catalog,
      connection: opts.connection,
      namespace: opts.namespace,
      batchSize: opts.batchSize ?? 500,
      pauseMs: opts.pauseMs ?? 100,
      leaseMs: opts.leaseMs ?? 120_000,
      lockTimeoutMs: opts.lockTimeoutMs ?? 5_000,
      statementTimeoutMs: opts.statementTimeoutMs ?? 60_000,
    };
    this.log = opts.log ?? (() => undefined);
  }

  // -------------------------------------------------------------------------
  // Policies

  async policies(): Promise<RetentionPolicy[]> {
    const rows = await this.db.query<Row>({
      text: `SELECT * FROM retention_policies ORDER BY subject DESC, definition NULLS FIRST, status NULLS FIRST`,
    });
    return rows.map(policyRow);
  }

  /** Sets one rule (creates or replaces it). A definition must exist in the catalog. */
  async setPolicy(input: SetPolicyInput): Promise<RetentionPolicy> {
    const rule = this.ruleOf(input);
    const days = input.days;
    if (days !== null && (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > RETENTION_MAX_DAYS)) {
      throw invalid('days', `${JSON.stringify(days)} is not a number of days`, days, `an integer from 1 to ${RETENTION_MAX_DAYS}, or null (keep forever)`);
    }
    if (rule.definition !== null && !(await this.opts.catalog.getDefinition(rule.definition))) {
      throw new NotFoundError(ERROR_CODES.DEFINITION_NOT_FOUND, `definition ${JSON.stringify(rule.definition)} does not exist; a policy names a published definition`, {
        field: 'definition',
        received: rule.definition,
      });
    }
    const [row] = await this.db.query<Row>({
      text: `INSERT INTO retention_policies AS p (subject, definition, status, days, updated_by) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (subject, COALESCE(definition, ''), COALESCE(status, '')) DO UPDATE SET days = EXCLUDED.days, updated_by = EXCLUDED.updated_by, updated_at = now()
             RETURNING *`,
      values: [rule.subject, rule.definition, rule.status, days, input.by],
    });
    void this.checkNamespace().catch(() => undefined);
    return policyRow(row!);
  }

  /** Removes one rule; the next less specific one then applies. The global default and the event log's rule can be changed, not removed. */
  async unsetPolicy(input: UnsetPolicyInput): Promise<RetentionPolicy> {
    const rule = this.ruleOf(input);
    if (rule.definition === null && rule.status === null) {
      throw new PinflowError(ERROR_CODES.RETENTION_DEFAULT_REQUIRED, `the ${rule.subject === 'runs' ? 'global default of runs' : "event log's rule"} cannot be removed; set it (days: null keeps forever)`, {
        field: 'definition, status',
        received: null,
        allowed: rule.subject === 'runs' ? 'a definition or a status (the rule to remove)' : 'none: set the rule instead',
      });
    }
    const [row] = await this.db.query<Row>({
      text: `DELETE FROM retention_policies WHERE subject = $1 AND COALESCE(definition, '') = COALESCE($2, '') AND COALESCE(status, '') = COALESCE($3, '') RETURNING *`,
      values: [rule.subject, rule.definition, rule.status],
    });
    if (!row) {
      throw new NotFoundError(ERROR_CODES.RETENTION_POLICY_NOT_FOUND, `no retention rule for definition ${rule.definition ?? '(any)'} and status ${rule.status ?? '(any)'}`, {
        definition: rule.definition,
        status: rule.status,
      });
    }
    void this.checkNamespace().catch(() => undefined);
    return policyRow(row);
  }

  private ruleOf(input: UnsetPolicyInput): { subject: RetentionSubject; definition: string | null; status: RetentionStatus | null } {
    const subject = input.subject ?? 'runs';
    if (!RETENTION_SUBJECTS.includes(subject)) throw invalid('subject', `${JSON.stringify(subject)} is not a subject`, subject, RETENTION_SUBJECTS.join(', '));
    const status = input.status ?? null;
    if (status !== null && !RETENTION_STATUSES.includes(status)) {
      throw invalid('status', `${JSON.stringify(status)} is not a closed status (only closed runs are pruned)`, status, RETENTION_STATUSES.join(', '));
    }
    const definition = input.definition ?? null;
    if (subject === 'events' && (definition !== null || status !== null)) {
      throw invalid(definition !== null ? 'definition' : 'status', 'the event log has one rule, by age only', definition ?? status, 'no definition and no status with subject events');
    }
    return { subject, definition, status };
  }

  /** The rules as a sweep snapshots them. */
  private async snapshot(): Promise<PolicySnapshot> {
    const all = await this.policies();
    return {
      runs: all.filter((p) => p.subject === 'runs').map((p) => ({ definition: p.definition, status: p.status, days: p.days })),
      events: all.find((p) => p.subject === 'events')?.days ?? null,
    };
  }

  // -------------------------------------------------------------------------
  // Mark: what is due now

  async preview(): Promise<RetentionPreview> {
    const pol = await this.snapshot();
    const asOf = new Date();
    const finite = pol.runs.map((p) => p.days).filter((d): d is number => d !== null);
    const groups: PreviewGroup[] = [];
    const exempt = { legalHold: 0, openChildren: 0, retain: 0 };
    if (finite.length) {
      // Only runs closed before the shortest policy's cutoff can be due (the range the closed-at index serves).
      const upper = new Date(asOf.getTime() - Math.min(...finite) * DAY_MS);
      const rows = await this.db.query<Row>({
        text: `WITH c AS (
                 SELECT r.definition, r.status, r.closed_at, ${RUN_FLAGS}
                 FROM runs r ${POLICY_OF_RUN}
                 WHERE r.closed_at IS NOT NULL AND r.closed_at < $3 AND r.status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED'))
               SELECT definition, status, count(*) FILTER (WHERE due) AS due, count(*) FILTER (WHERE due AND (held OR open_children OR retain)) AS exempt,
                      min(closed_at) FILTER (WHERE due) AS oldest, max(closed_at) FILTER (WHERE due) AS newest, ${EXEMPT_COUNTS}
               FROM c GROUP BY definition, status HAVING count(*) FILTER (WHERE due) > 0 ORDER BY definition, status`,
        values: [json(pol.runs), asOf.toISOString(), upper.toISOString()],
      });
      for (const r of rows) {
        groups.push({ definition: r.definition as string, status: r.status as RetentionStatus, due: num(r.due), exempt: num(r.exempt), oldestClosedAt: iso(r.oldest)!, newestClosedAt: iso(r.newest)! });
        exempt.legalHold += num(r.legal_hold);
        exempt.openChildren += num(r.open_children);
        exempt.retain += num(r.retain);
      }
    }
    const due = groups.reduce((s, g) => s + g.due, 0);
    const exemptTotal = groups.reduce((s, g) => s + g.exempt, 0);
    let events: RetentionPreview['events'] = { days: pol.events, due: 0, exempt: 0, deliveries: 0, oldestReceivedAt: null, newestReceivedAt: null };
    if (pol.events !== null) {
      const [e] = await this.db.query<Row>({
        text: `SELECT count(*) AS due, count(*) FILTER (WHERE ${EVENT_EXEMPT}) AS exempt, min(e.received_at) AS oldest, max(e.received_at) AS newest,
                      (SELECT count(*) FROM event_deliveries d JOIN events x ON x.tenant = d.tenant AND x.event_id = d.event_id WHERE x.received_at < $1) AS deliveries
               FROM events e WHERE e.received_at < $1`,
        values: [new Date(asOf.getTime() - pol.events * DAY_MS).toISOString()],
      });
      events = { days: pol.events, due: num(e!.due), exempt: num(e!.exempt), deliveries: num(e!.deliveries), oldestReceivedAt: iso(e!.oldest), newestReceivedAt: iso(e!.newest) };
    }
    const namespace = await this.checkNamespace().catch(() => null);
    return { asOf: asOf.toISOString(), runs: { due, exempt, prunable: due - exemptTotal, groups }, events, namespace };
  }

  // -------------------------------------------------------------------------
  // Legal holds

  /** Places a legal hold on a run (idempotent: a second hold keeps the first's `since`, with the new reason). */
  async hold(runId: string, by: string, reason: string): Promise<LegalHold> {
    if (reason.trim() === '') throw new PinflowError(ERROR_CODES.REASON_REQUIRED, 'a legal hold must say why: reason is empty', { field: 'reason', received: reason, allowed: 'a non-empty reason' });
    return this.db.transaction(async (tx) => {
      // The run's row is locked first: a sweep batch that holds it (about to delete it) finishes before the hold is
      // written, and the hold then finds no run; a sweep batch after the hold sees it.
      const run = await tx.query({ text: 'SELECT 1 FROM runs WHERE id = $1 FOR SHARE', values: [runId] });
      if (run.length === 0) throw new NotFoundError(ERROR_CODES.RUN_NOT_FOUND, `run ${JSON.stringify(runId)} does not exist`, { runId });
      const [row] = await tx.query<Row>({
        text: `INSERT INTO run_holds (run_id, by, reason) VALUES ($1, $2, $3)
               ON CONFLICT (run_id) DO UPDATE SET by = EXCLUDED.by, reason = EXCLUDED.reason RETURNING *`,
        values: [runId, by, reason],
      });
      return { runId, by: row!.by as string, reason: row!.reason as string, since: iso(row!.since)! };
    });
  }

  /** Clears a run's legal hold; `held: false` when it had none. */
  async release(runId: string): Promise<{ runId: string; held: false; released: LegalHold | null }> {
    const [row] = await this.db.query<Row>({ text: 'DELETE FROM run_holds WHERE run_id = $1 RETURNING *', values: [runId] });
    return { runId, held: false, released: row ? { runId, by: row.by as string, reason: row.reason as string, since: iso(row.since)! } : null };
  }

  async holdOf(runId: string): Promise<LegalHold | null> {
    const [row] = await this.db.query<Row>({ text: 'SELECT * FROM run_holds WHERE run_id = $1', values: [runId] });
    return row ? { runId, by: row.by as string, reason: row.reason as string, since: iso(row.since)! } : null;
  }

  // -------------------------------------------------------------------------
  // Sweep

  async sweeps(limit = 20): Promise<SweepView[]> {
    const rows = await this.db.query<Row>({ text: 'SELECT * FROM retention_sweeps ORDER BY started_at DESC, id DESC LIMIT $1', values: [limit] });
    return rows.map(sweepRow);
  }

  async sweep(id: string): Promise<SweepView> {
    const [row] = await this.db.query<Row>({ text: 'SELECT * FROM retention_sweeps WHERE id = $1', values: [id] });
    if (!row) throw new NotFoundError(ERROR_CODES.RETENTION_SWEEP_NOT_FOUND, `no retention sweep has id ${JSON.stringify(id)}`, { sweepId: id });
    return sweepRow(row);
  }

  /**
   * Starts a sweep now and drives it in the background in this process.
   * 409 RETENTION_SWEEP_RUNNING (with its id) while another one is unfinished.
   */
  async startSweep(input: { by: string; reason?: string | undefined; batchSize?: number | undefined; pauseMs?: number | undefined }): Promise<SweepView> {
    const view = await this.createSweep(input);
    void this.drive(view.id);
    return view;
  }

  private async createSweep(input: { by: string; reason?: string | undefined; batchSize?: number | undefined; pauseMs?: number | undefined }): Promise<SweepView> {
    const pol = await this.snapshot();
    const id = `sweep-${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${randomUUID().slice(0, 8)}`;
    const finite = pol.runs.some((p) => p.days !== null);
    try {
      const [row] = await this.db.query<Row>({
        text: `INSERT INTO retention_sweeps (id, by, reason, state, phase, as_of, policies, batch_size, pause_ms, owner, lease_until)
               VALUES ($1, $2, $3, 'RUNNING', $4, now(), $5::jsonb, $6, $7, $8, now() + make_interval(secs => $9::double precision / 1000)) RETURNING *`,
        values: [id, input.by, input.reason ?? null, finite ? 'runs' : 'events', json(pol), input.batchSize ?? this.opts.batchSize, input.pauseMs ?? this.opts.pauseMs, this.owner, this.opts.leaseMs],
      });
      return sweepRow(row!);
    } catch (err) {
      if ((err as { code?: string }).code !== '23505') throw err;
      const [running] = await this.db.query<Row>({ text: `SELECT * FROM retention_sweeps WHERE state = 'RUNNING'` });
      throw new PinflowError(ERROR_CODES.RETENTION_SWEEP_RUNNING, `a retention sweep is already running (${(running?.id as string | undefined) ?? '?'}); one runs at a time`, {
        sweepId: running?.id ?? null,
        ...(running ? { progress: sweepRow(running).progress } : {}),
      });
    }
  }

  /** Drives a sweep this process owns until it is done, fails, is taken over, or the service stops. */
  private drive(id: string): Promise<SweepView | undefined> {
    let p = this.driving.get(id);
    if (p) return p;
    p = this.driveLoop(id)
      .catch((err: unknown) => {
        this.log(`retention: sweep ${id}: stopped: ${(err as Error).message}`);
        return undefined;
      })
      .finally(() => this.driving.delete(id));
    this.driving.set(id, p);
    return p;
  }

  private async driveLoop(id: string): Promise<SweepView | undefined> {
    const signal = this.abort.signal;
    let retries = 0;
    for (;;) {
      if (signal.aborted) return undefined;
      let view: SweepView | undefined;
      try {
        view = await this.batch(id);
        retries = 0;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (isDatabaseUnavailable(err)) {
          // Left RUNNING: its lease runs out and the next tick (here or elsewhere) continues it.
          this.log(`retention: sweep ${id}: the database is unavailable (${(err as Error).message}); the next tick continues it`);
          return undefined;
        }
        if (code !== undefined && RETRYABLE.has(code) && ++retries <= MAX_BATCH_RETRIES) {
          this.log(`retention: sweep ${id}: batch rolled back (${code}: ${(err as Error).message}); retry ${retries} of ${MAX_BATCH_RETRIES}`);
          await sleep(this.opts.pauseMs * 10 + 1000, signal);
          continue;
        }
        await this.db.query({
          text: `UPDATE retention_sweeps SET state = 'FAILED', error = $2, updated_at = now(), finished_at = now(), owner = NULL, lease_until = NULL WHERE id = $1 AND state = 'RUNNING'`,
          values: [id, `${code ? `${code}: ` : ''}${(err as Error).message}`],
        });
        this.log(`retention: sweep ${id} FAILED: ${(err as Error).message}`);
        return this.sweep(id);
      }
      if (!view) return undefined; // taken over by another process, or finished elsewhere
      if (view.state !== 'RUNNING') {
        const p = view.progress;
        this.log(`retention: sweep ${id} ${view.state}: ${p.runsDeleted} runs (${p.stepsDeleted} step rows), ${p.eventsDeleted} events (${p.deliveriesDeleted} deliveries) deleted; exempt ${p.exempt.legalHold} held, ${p.exempt.openChildren} with open children, ${p.exempt.retain} retain; ${view.durationSeconds} s`);
        return view;
      }
      await sleep(view.pauseMs, signal);
    }
  }

  /** One bounded transaction: the next batch of runs (or events), the sweep's progress with it. Undefined when this process no longer owns the sweep. */
  private async batch(id: string): Promise<SweepView | undefined> {
    return this.db.transaction(async (tx) => {
      await tx.exec(`SET LOCAL lock_timeout = '${Math.floor(this.opts.lockTimeoutMs)}ms'; SET LOCAL statement_timeout = '${Math.floor(this.opts.statementTimeoutMs)}ms'`);
      const [s] = await tx.query<Row>({
        text: `UPDATE retention_sweeps SET lease_until = now() + make_interval(secs => $3::double precision / 1000), updated_at = now()
               WHERE id = $1 AND state = 'RUNNING' AND owner = $2 RETURNING *`,
        values: [id, this.owner, this.opts.leaseMs],
      });
      if (!s) return undefined;
      const pol = s.policies as PolicySnapshot;
      const n = num(s.batch_size);
      const asOf = iso(s.as_of)!;
      let update: { sql: string; values: unknown[] };
      if (s.phase === 'runs') {
        const finite = pol.runs.map((p) => p.days).filter((d): d is number => d !== null);
        const upper = new Date(Date.parse(asOf) - Math.min(...finite) * DAY_MS).toISOString();
        // The last key is compared in SQL, at the timestamp's full (microsecond) precision.
        const cand = await tx.query<{ id: string; closed_at: string }>({
          text: `SELECT r.id, r.closed_at::text AS closed_at FROM runs r, retention_sweeps w
                 WHERE w.id = $2 AND r.closed_at IS NOT NULL AND r.closed_at < $1 AND (r.closed_at, r.id) > (COALESCE(w.last_closed_at, '-infinity'), COALESCE(w.last_run_id, ''))
                 ORDER BY r.closed_at, r.id LIMIT $3 FOR UPDATE OF r`,
          values: [upper, id, n],
        });
        let r: Row = { runs: 0, steps: 0, deliveries: 0, legal_hold: 0, open_children: 0, retain: 0 };
        if (cand.length) {
          [r] = (await tx.query<Row>({
            text: `WITH c AS (
                     SELECT r.id, ${RUN_FLAGS}, (SELECT count(*) FROM run_steps s WHERE s.run_id = r.id) AS steps
                     FROM runs r ${POLICY_OF_RUN}
                     WHERE r.id = ANY($3::text[]) AND r.status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED')),
                   gone AS (SELECT id, steps FROM c WHERE due AND NOT held AND NOT open_children AND NOT retain),
                   deliveries AS (DELETE FROM event_deliveries WHERE run_id IN (SELECT id FROM gone) RETURNING 1),
                   origins AS (DELETE FROM run_origins WHERE run_id IN (SELECT id FROM gone) RETURNING 1),
                   attention AS (DELETE FROM run_attention WHERE run_id IN (SELECT id FROM gone) RETURNING 1),
                   deleted AS (DELETE FROM runs WHERE id IN (SELECT id FROM gone) RETURNING id)
                   SELECT (SELECT count(*) FROM deleted) AS runs, (SELECT COALESCE(sum(steps), 0) FROM gone) AS steps,
                          (SELECT count(*) FROM deliveries) AS deliveries, (SELECT count(*) FROM origins) AS origins, (SELECT count(*) FROM attention) AS attention,
                          ${EXEMPT_COUNTS}
                   FROM c`,
            values: [json(pol.runs), asOf, cand.map((c) => c.id)],
          })) as [Row];
        }
        const last = cand[cand.length - 1];
        update = {
          sql: `phase = $2, runs_examined = runs_examined + $3, runs_deleted = runs_deleted + $4, steps_deleted = steps_deleted + $5, deliveries_deleted = deliveries_deleted + $6,
                exempt_legal_hold = exempt_legal_hold + $7, exempt_open_children = exempt_open_children + $8, exempt_retain = exempt_retain + $9,
                last_closed_at = COALESCE($10::timestamptz, last_closed_at), last_run_id = COALESCE($11, last_run_id)`,
          values: [cand.length < n ? 'events' : 'runs', cand.length, num(r.runs), num(r.steps), num(r.deliveries), num(r.legal_hold), num(r.open_children), num(r.retain), last?.closed_at ?? null, last?.id ?? null],
        };
      } else if (s.phase === 'events' && pol.events !== null) {
        const cutoff = new Date(Date.parse(asOf) - pol.events * DAY_MS).toISOString();
        const [r] = await tx.query<Row>({
          text: `WITH cand AS (
                   SELECT e.tenant, e.event_id, e.received_at, ${EVENT_EXEMPT} AS exempt,
                          (SELECT count(*) FROM event_deliveries d WHERE d.tenant = e.tenant AND d.event_id = e.event_id) AS deliveries
                   FROM events e, retention_sweeps w
                   WHERE w.id = $2 AND e.received_at < $1
                     AND (e.received_at, e.tenant, e.event_id) > (COALESCE(w.last_received_at, '-infinity'), COALESCE(w.last_event_tenant, ''), COALESCE(w.last_event_id, ''))
                   ORDER BY e.received_at, e.tenant, e.event_id LIMIT $3 FOR UPDATE OF e),
                 deleted AS (DELETE FROM events x USING cand WHERE x.tenant = cand.tenant AND x.event_id = cand.event_id AND NOT cand.exempt RETURNING x.event_id),
                 last AS (SELECT received_at, tenant, event_id FROM cand ORDER BY received_at DESC, tenant DESC, event_id DESC LIMIT 1)
                 SELECT (SELECT count(*) FROM cand) AS examined, (SELECT count(*) FROM deleted) AS deleted, (SELECT count(*) FROM cand WHERE exempt) AS exempt,
                        (SELECT COALESCE(sum(deliveries), 0) FROM cand WHERE NOT exempt) AS deliveries,
                        (SELECT received_at::text FROM last) AS last_at, (SELECT tenant FROM last) AS last_tenant, (SELECT event_id FROM last) AS last_id`,
          values: [cutoff, id, n],
        });
        const examined = num(r!.examined);
        update = {
          sql: `phase = $2, events_examined = events_examined + $3, events_deleted = events_deleted + $4, events_exempt = events_exempt + $5, deliveries_deleted = deliveries_deleted + $6,
                last_received_at = COALESCE($7::timestamptz, last_received_at), last_event_tenant = COALESCE($8, last_event_tenant), last_event_id = COALESCE($9, last_event_id)`,
          values: [examined < n ? 'done' : 'events', examined, num(r!.deleted), num(r!.exempt), num(r!.deliveries), r!.last_at ?? null, r!.last_tenant ?? null, r!.last_id ?? null],
        };
      } else {
        update = { sql: `phase = $2`, values: ['done'] };
      }
      const [after] = await tx.query<Row>({
        text: `UPDATE retention_sweeps SET ${update.sql}, batches = batches + 1, updated_at = now(),
                 state = CASE WHEN $2 = 'done' THEN 'DONE' ELSE state END,
                 finished_at = CASE WHEN $2 = 'done' THEN now() END,
                 owner = CASE WHEN $2 = 'done' THEN NULL ELSE owner END,
                 lease_until = CASE WHEN $2 = 'done' THEN NULL ELSE lease_until END
               WHERE id = $1 RETURNING *`,
        values: [id, ...update.values],
      });
      return sweepRow(after!);
    });
  }

  /**
   * One tick of the periodic sweeper: continue a sweep whose process died
   * (its lease ran out), else start one when anything is due. Resolves when
   * the sweep it drove ends (or undefined when there was nothing to do).
   */
  async tick(): Promise<SweepView | undefined> {
    const [orphan] = await this.db.query<Row>({
      text: `UPDATE retention_sweeps SET owner = $1, lease_until = now() + make_interval(secs => $2::double precision / 1000), updated_at = now()
             WHERE state = 'RUNNING' AND (lease_until IS NULL OR lease_until < now()) RETURNING *`,
      values: [this.owner, this.opts.leaseMs],
    });
    if (orphan) {
      this.log(`retention: continuing sweep ${String(orphan.id)} (its process stopped) after ${num(orphan.runs_deleted)} runs and ${num(orphan.events_deleted)} events`);
      return this.drive(orphan.id as string);
    }
    const running = await this.db.query<Row>({ text: `SELECT id FROM retention_sweeps WHERE state = 'RUNNING'` });
    if (running.length) return undefined;
    if (!(await this.anythingDue())) return undefined;
    let view: SweepView;
    try {
      view = await this.createSweep({ by: 'sweeper', reason: 'periodic retention sweep' });
    } catch (err) {
      if ((err as PinflowError).code === ERROR_CODES.RETENTION_SWEEP_RUNNING) return undefined;
      throw err;
    }
    this.log(`retention: sweep ${view.id} started`);
    return this.drive(view.id);
  }

  /** A cheap look for one due run or event (the tick starts no sweep that would find nothing). */
  private async anythingDue(): Promise<boolean> {
    const pol = await this.snapshot();
    const finite = pol.runs.map((p) => p.days).filter((d): d is number => d !== null);
    if (finite.length) {
      const asOf = new Date();
      const rows = await this.db.query({
        text: `SELECT 1 FROM (SELECT ${RUN_FLAGS} FROM runs r ${POLICY_OF_RUN}
                 WHERE r.closed_at IS NOT NULL AND r.closed_at < $3 AND r.status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED')) c
               WHERE due AND NOT held AND NOT open_children AND NOT retain LIMIT 1`,
        values: [json(pol.runs), asOf.toISOString(), new Date(asOf.getTime() - Math.min(...finite) * DAY_MS).toISOString()],
      });
      if (rows.length) return true;
    }
    if (pol.events === null) return false;
    const ev = await this.db.query({ text: `SELECT 1 FROM events e WHERE e.received_at < $1 AND NOT ${EVENT_EXEMPT} LIMIT 1`, values: [new Date(Date.now() - pol.events * DAY_MS).toISOString()] });
    return ev.length > 0;
  }

  /** Ticks every `intervalMs` (PINFLOW_RETENTION_INTERVAL_MS), the first one right away. */
  start(intervalMs: number): void {
    if (this.timer || intervalMs <= 0) return;
    if (this.abort.signal.aborted) this.abort = new AbortController();
    const run = () => {
      if (this.ticking) return;
      this.ticking = this.tick()
        .catch((err: unknown) => this.log(`retention: tick failed: ${(err as Error).message}`))
        .finally(() => (this.ticking = undefined));
    };
    this.timer = setInterval(run, intervalMs);
    this.timer.unref();
    run();
  }

  /**
   * Stops ticking and driving after the batch in flight. A sweep in progress stays RUNNING; with `release` (the
   * default) its lease is handed back, so the next tick of any process continues it at once. A process that dies
   * hands nothing back: its sweep is continued once the lease ran out (`release: false` does the same, for tests).
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.abort.abort();
    await Promise.all([...this.driving.values(), ...(this.ticking ? [this.ticking] : [])].map((p) => p.catch(() => undefined)));
    this.abort = new AbortController();
    if (opts.release ?? true) {
      await this.db
        .query({ text: `UPDATE retention_sweeps SET lease_until = now(), updated_at = now() WHERE state = 'RUNNING' AND owner = $1`, values: [this.owner] })
        .catch((err: unknown) => this.log(`retention: the sweep's lease was not handed back: ${(err as Error).message}`));
    }
  }

  // -------------------------------------------------------------------------
  // The Temporal namespace's retention

  /** Reads the namespace's retention and compares it with what the policies need. */
  async checkNamespace(): Promise<NamespaceRetention> {
    const { neededDays, forever } = namespaceNeeds(await this.policies());
    let days: number | null = null;
    let error: string | undefined;
    try {
      const res = await this.opts.connection.workflowService.describeNamespace({ namespace: this.opts.namespace });
      const ttl = res.config?.workflowExecutionRetentionTtl;
      days = ttl ? Math.round((Number(ttl.seconds ?? 0) / 86_400) * 1000) / 1000 : null;
    } catch (err) {
      error = (err as Error).message;
    }
    const ok = error === undefined && !forever && (neededDays === null || (days !== null && days >= neededDays));
    const message =
      error !== undefined
        ? `the retention of namespace ${this.opts.namespace} could not be read: ${error}`
        : forever
          ? `a retention policy keeps runs forever, but Temporal's retention cannot be infinite: after ${days ?? '?'} days their history is gone, and rerun, replay, verify and rebuild no longer work for them`
          : ok
            ? `namespace ${this.opts.namespace} keeps histories ${days} days; the policies need ${neededDays ?? 0}`
            : `namespace ${this.opts.namespace} keeps histories ${days} days, shorter than the ${neededDays} the retention policies need (the longest policy + ${NAMESPACE_MARGIN_DAYS}): runs still in the projection lose their history, and rerun, replay, verify and rebuild no longer work for them. Fix: pinflow retention namespace --apply`;
    this.lastNamespace = { namespace: this.opts.namespace, days, neededDays, forever, ok, message, ...(error !== undefined ? { error } : {}) };
    return this.lastNamespace;
  }

  /** The last namespace check, for /health (never makes it unhealthy). */
  namespaceStatus(): NamespaceRetention | undefined {
    return this.lastNamespace;
  }

  /** Sets the namespace's retention to what the policies need (the longest finite policy + the margin). */
  async applyNamespace(): Promise<NamespaceRetention & { previousDays: number | null }> {
    const before = await this.checkNamespace();
    if (before.neededDays === null) {
      throw new PinflowError(ERROR_CODES.RETENTION_DEFAULT_REQUIRED, 'no run policy has a number of days: there is no finite retention to set (Temporal\'s cannot be infinite)', { field: 'days', received: null, allowed: 'at least one run policy with days' });
    }
    await this.opts.connection.workflowService.updateNamespace({
      namespace: this.opts.namespace,
      config: { workflowExecutionRetentionTtl: { seconds: before.neededDays * 86_400 } as never },
    });
    const after = await this.checkNamespace();
    return { ...after, previousDays: before.days };
  }
}
