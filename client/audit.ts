/**
 * The audit log: one append-only row per write action (table `audit_log`,
 * migration 000012; a trigger refuses UPDATE, DELETE and TRUNCATE). The HTTP
 * API writes a row for every request to a route whose ROUTES entry declares
 * `config.audit`, once the action was answered (accepted, denied, refused or
 * failed); the CLI's key commands write theirs too.
 */
import type { Db } from '../db/connection';
import { iso } from '../db/connection';
import { ERROR_CODES, InvalidRequestError } from '../graph/errors';
import type { AUDIT_OUTCOMES } from './api-schemas';

export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

export interface AuditRecord {
  keyId: string | null;
  by: string | null;
  action: string;
  method?: string | null;
  route?: string | null;
  targetKind?: string | null;
  targetIds?: string[];
  runIds?: string[];
  tenant?: string | null;
  reason?: string | null;
  request?: unknown;
  outcome: AuditOutcome;
  status?: number | null;
}

export interface AuditEntry extends Required<AuditRecord> {
  id: string;
  at: string;
}

export interface AuditFilter {
  action?: string;
  runId?: string;
  keyId?: string;
  outcome?: AuditOutcome;
  since?: string;
  until?: string;
  /** Tenant rows only (a tenant-bound reader); undefined: every row. */
  tenant?: string;
}

interface Row {
  id: string;
  at: unknown;
  key_id: string | null;
  by: string | null;
  action: string;
  method: string | null;
  route: string | null;
  target_kind: string | null;
  target_ids: string[];
  run_ids: string[];
  tenant: string | null;
  reason: string | null;
  request: unknown;
  outcome: AuditOutcome;
  status: number | null;
}

export class AuditLog {
  constructor(readonly db: Db) {}

  async append(r: AuditRecord): Promise<void> {
    await this.db.query({
      text: `INSERT INTO audit_log (key_id, by, action, method, route, target_kind, target_ids, run_ids, tenant, reason, request, outcome, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      values: [
        r.keyId,
        r.by,
        r.action,
        r.method ?? null,
        r.route ?? null,
        r.targetKind ?? null,
        r.targetIds ?? [],
        r.runIds ?? [],
        r.tenant ?? null,
        r.reason ?? null,
        r.request === undefined ? null : JSON.stringify(r.request),
        r.outcome,
        r.status ?? null,
      ],
    });
  }

  /** Newest first; `cursor` is the `nextCursor` of the previous page (an entry id). */
  async list(filter: AuditFilter, page: { cursor?: string; limit?: number } = {}): Promise<{ entries: AuditEntry[]; nextCursor: string | null }> {
    const where: string[] = [];
    const values: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      values.push(v);
      where.push(sql.replace('?', `$${values.length}`));
    };
    if (filter.action) add('action = ?', filter.action);
    if (filter.runId) add('? = ANY(run_ids)', filter.runId);
    if (filter.keyId) add('key_id = ?', filter.keyId);
    if (filter.outcome) add('outcome = ?', filter.outcome);
    if (filter.tenant !== undefined) add('tenant = ?', filter.tenant);
    for (const [name, op] of [
      ['since', '>='],
      ['until', '<'],
    ] as const) {
      const v = filter[name];
      if (v === undefined) continue;
      if (Number.isNaN(Date.parse(v))) {
        throw new InvalidRequestError(ERROR_CODES.REQUEST_INVALID, `invalid request query: query.${name}: not a date-time`, { issues: [{ field: `query.${name}`, message: 'not a date-time', received: v, allowed: 'an ISO 8601 date-time' }] });
      }
      add(`at ${op} ?`, new Date(v).toISOString());
    }
    if (page.cursor) add('audit_log.id < ?::bigint', page.cursor);
    const limit = page.limit ?? 100;
    values.push(limit + 1);
    const rows = await this.db.query<Row>({
      text: `SELECT id::text AS id, at, key_id, by, action, method, route, target_kind, target_ids, run_ids, tenant, reason, request, outcome, status
             FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY audit_log.id DESC LIMIT $${values.length}`,
      values,
    });
    const more = rows.length > limit;
    const entries = rows.slice(0, limit).map(
      (r): AuditEntry => ({
        id: String(r.id),
        at: iso(r.at)!,
        keyId: r.key_id,
        by: r.by,
        action: r.action,
        method: r.method,
        route: r.route,
        targetKind: r.target_kind,
        targetIds: r.target_ids,
        runIds: r.run_ids,
        tenant: r.tenant,
        reason: r.reason,
        request: r.request,
        outcome: r.outcome,
        status: r.status === null ? null : Number(r.status),
      }),
    );
    return { entries, nextCursor: more ? entries[entries.length - 1]!.id : null };
  }
}
