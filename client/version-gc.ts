/**
 * Version garbage collection: remove from the catalog the versions nothing
 * needs any more, keeping a tombstone of each (migration 000016).
 *
 * A version is removed only when all of these hold:
 * - it is not the latest version of any definition;
 * - no open run is pinned to it, asked of BOTH the projection (RUNNING,
 *   STALLED, PAUSED rows) and Temporal (a visibility count of Running
 *   executions with `PinflowVersion = <hash>`; paused and stalled runs are
 *   Running there), because the projection can lag. If Temporal cannot be
 *   asked, the GC refuses (TEMPORAL_UNAVAILABLE): it never guesses;
 * - no child step of a version still in the catalog pins it by hash
 *   (referrers removed in the same pass do not count: they go first);
 * - no unfinished batch (RUNNING or PAUSED) targets it (migrate, rerun or
 *   replay onto it);
 * - it was last published (under any definition) longer ago than the
 *   minimum age (`olderThan`, default PINFLOW_VERSION_GC_MIN_AGE, 30 days).
 *
 * Each removal is one transaction: the version row is locked (FOR UPDATE:
 * a publish of the same graph, a start's projection row, whose foreign key
 * takes a key-share lock on it, and another GC wait), every check is made
 * again under the lock, Temporal included, and only then are the graph and
 * contracts dropped. The window left: a start that read the version from
 * the catalog just before the lock and whose Temporal start is not yet
 * visible when the GC asks. That run still runs its graph (it travels in
 * its start input) and its row still names the version; see the README's
 * "Garbage collection of unused versions".
 */
import type { Client } from '@temporalio/client';
import type { z } from 'zod';
import * as csql from '../catalog/sql';
import type { Db } from '../db/connection';
import { iso } from '../db/connection';
import { durationMs } from '../graph/duration';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import { SEARCH_ATTRIBUTES } from '../graph/terminology';
import { DEFAULT_VERSION_GC_MIN_AGE, parseInput, versionGcBody, type GcKeepRule } from './api-schemas';

export { DEFAULT_VERSION_GC_MIN_AGE };

export type VersionGcRequest = z.input<typeof versionGcBody>;

export interface GcVersion {
  hash: string;
  definitions: Array<{ definition: string; seq: number }>;
  /** The newest publish of the version (under any definition). */
  publishedAt: string;
}

export interface GcKeep {
  rule: GcKeepRule;
  message: string;
  /** What keeps it: definition names (latest), the referring version hashes (childReference), batch ids (migrationTarget). */
  refs?: string[];
  /** Open runs: in the projection and in Temporal (openRuns). */
  projection?: number;
  temporal?: number;
}

export interface VersionGcResult {
  dryRun: boolean;
  /** The minimum age used, as given (or the default), and the publish time a version must be older than. */
  olderThan: string;
  cutoff: string;
  /** Every version that met every rule when the pass began, with why (dry run: what would go). */
  candidates: Array<GcVersion & { eligible: string }>;
  /** What this pass removed (empty for a dry run). */
  removed: Array<GcVersion & { removedAt: string }>;
  /** Every other version in the catalog and each reason it is kept. */
  kept: Array<GcVersion & { reasons: GcKeep[] }>;
}

interface Row {
  hash: string;
  createdAt: unknown;
  publishedAt: unknown;
  definitions: Array<{ definition: string; seq: number }>;
  latestOf: string[];
  openRuns: number;
  batches: string[];
}

const OPEN_STATUSES = 'RUNNING, STALLED or PAUSED';
/** Visibility counts in flight at once during the first look. */
const TEMPORAL_CONCURRENCY = 8;

export class VersionGc {
  constructor(private readonly deps: { db: Db; client: Client; defaultMinAge: string; log?: (msg: string) => void }) {}

  async run(request: VersionGcRequest, principal?: { keyId: string }): Promise<VersionGcResult> {
    const req = parseInput(versionGcBody, request, 'body');
    const olderThan = req.olderThan ?? this.deps.defaultMinAge;
    const cutoff = new Date(Date.now() - durationMs(olderThan));
    const by = req.by ?? principal?.keyId ?? 'api';
    const { db } = this.deps;

    const rows = (await db.query<Row>(csql.selectGcVersions())).map((r) => ({ ...r, publishedAt: iso(r.publishedAt ?? r.createdAt)! }));
    const pins = await db.query<{ from: string; to: string }>(csql.selectChildPins());
    const reasons = new Map<string, GcKeep[]>(rows.map((r) => [r.hash, []]));
    const keep = (hash: string, k: GcKeep) => reasons.get(hash)!.push(k);

    for (const r of rows) {
      if (r.latestOf.length) keep(r.hash, { rule: 'latest', message: `the latest version of ${r.latestOf.join(', ')}`, refs: r.latestOf });
      if (r.batches.length) keep(r.hash, { rule: 'migrationTarget', message: `the target of unfinished batch(es) ${r.batches.join(', ')}`, refs: r.batches });
      if (new Date(r.publishedAt) > cutoff) keep(r.hash, { rule: 'tooYoung', message: `published ${r.publishedAt}, less than ${olderThan} ago` });
      if (r.openRuns > 0) keep(r.hash, { rule: 'openRuns', message: `${r.openRuns} open run(s) (${OPEN_STATUSES}) in the projection`, projection: r.openRuns });
    }
    // Temporal is asked only about the versions nothing else keeps (a count each, a few at a time).
    const ask = rows.filter((r) => reasons.get(r.hash)!.length === 0);
    let next = 0;
    const lane = async () => {
      for (let r = ask[next++]; r; r = ask[next++]) {
        const n = await this.openInTemporal(r.hash);
        if (n > 0) keep(r.hash, { rule: 'openRuns', message: `${n} open run(s) in Temporal (the projection has none yet: it lags)`, projection: 0, temporal: n });
      }
    };
    await Promise.all(Array.from({ length: Math.min(TEMPORAL_CONCURRENCY, ask.length) }, lane));
    // A version pinned by a child step of a version that stays is kept; keeping it may keep what it pins in turn.
    for (let changed = true; changed; ) {
      changed = false;
      for (const p of pins) {
        const target = reasons.get(p.to);
        if (!target || target.some((k) => k.rule === 'childReference' && k.refs?.includes(p.from))) continue;
        if (reasons.get(p.from)!.length === 0) continue;
        const existing = target.find((k) => k.rule === 'childReference');
        const wasCandidate = target.length === 0;
        if (existing) {
          existing.refs!.push(p.from);
          existing.message = `pinned by a child step of version(s) ${existing.refs!.join(', ')}`;
        } else target.push({ rule: 'childReference', message: `pinned by a child step of version(s) ${p.from}`, refs: [p.from] });
        if (wasCandidate) changed = true;
      }
    }

    const view = (r: (typeof rows)[number]): GcVersion => ({ hash: r.hash, definitions: r.definitions, publishedAt: r.publishedAt });
    const candidates = rows
      .filter((r) => reasons.get(r.hash)!.length === 0)
      .map((r) => ({ ...view(r), eligible: `not the latest of any definition, no open run (projection and Temporal), no child reference, no unfinished batch, published ${r.publishedAt} (before ${cutoff.toISOString()})` }));
    const kept = rows.filter((r) => reasons.get(r.hash)!.length > 0).map((r) => ({ ...view(r), reasons: reasons.get(r.hash)! }));
    const result: VersionGcResult = { dryRun: req.dryRun === true, olderThan, cutoff: cutoff.toISOString(), candidates, removed: [], kept };
    if (req.dryRun) return result;

    // Newest first: a version that pins another by hash was created after it, so referrers go before what they pin.
    for (const c of candidates) {
      const outcome = await this.removeOne(c.hash, by, req.reason, result.removed);
      if ('gone' in outcome) continue;
      if ('removedAt' in outcome) result.removed.push({ ...c, removedAt: outcome.removedAt });
      else result.kept.push({ hash: c.hash, definitions: c.definitions, publishedAt: c.publishedAt, reasons: outcome.reasons });
    }
    this.deps.log?.(`version gc by ${by}: removed ${result.removed.length} version(s), kept ${result.kept.length}`);
    return result;
  }

  /** One version, in one transaction: lock it, check everything again (Temporal too), drop its graph and contracts. */
  private async removeOne(hash: string, by: string, reason: string, removedSoFar: ReadonlyArray<{ hash: string }>): Promise<{ removedAt: string } | { reasons: GcKeep[] } | { gone: true }> {
    return this.deps.db.transaction(async (tx) => {
      const [locked] = await tx.query(csql.selectLiveVersionForUpdate(hash));
      // Another GC removed it meanwhile: nothing to do here.
      if (!locked) return { gone: true as const };
      const [r] = await tx.query<{ latestOf: string[]; openRuns: number; batches: string[]; childOf: string[] }>(csql.selectGcRecheck(hash));
      const reasons: GcKeep[] = [];
      if (r!.latestOf.length) reasons.push({ rule: 'latest', message: `became the latest version of ${r!.latestOf.join(', ')} meanwhile`, refs: r!.latestOf });
      if (r!.openRuns > 0) reasons.push({ rule: 'openRuns', message: `${r!.openRuns} open run(s) in the projection (started meanwhile)`, projection: r!.openRuns });
      if (r!.batches.length) reasons.push({ rule: 'migrationTarget', message: `the target of unfinished batch(es) ${r!.batches.join(', ')} (created meanwhile)`, refs: r!.batches });
      if (r!.childOf.length) reasons.push({ rule: 'childReference', message: `pinned by a child step of version(s) ${r!.childOf.join(', ')}, which stay`, refs: r!.childOf });
      if (reasons.length) return { reasons };
      const n = await this.openInTemporal(hash, removedSoFar);
      if (n > 0) return { reasons: [{ rule: 'openRuns', message: `${n} open run(s) in Temporal (started meanwhile)`, projection: 0, temporal: n }] };
      const [done] = await tx.query<{ removedAt: unknown }>(csql.tombstoneVersion(hash, by, reason));
      return { removedAt: iso(done!.removedAt)! };
    });
  }

  /** Running executions pinned to `hash`, by Temporal's visibility (paused and stalled runs are Running there). */
  private async openInTemporal(hash: string, removedSoFar: ReadonlyArray<{ hash: string }> = []): Promise<number> {
    const query = `${SEARCH_ATTRIBUTES.version} = ${JSON.stringify(hash)} AND ExecutionStatus = "Running"`;
    try {
      return Number((await this.deps.client.workflow.count(query)).count);
    } catch (err) {
      throw new PinflowError(
        ERROR_CODES.TEMPORAL_UNAVAILABLE,
        `version GC refused: Temporal could not be asked which runs are open on version ${hash} (${query}): ${(err as Error).message}; ` +
          `the projection alone can lag, so nothing more is removed${removedSoFar.length ? ` (removed before this: ${removedSoFar.map((v) => v.hash).join(', ')})` : ''}`,
        { version: hash, query, removed: removedSoFar.map((v) => v.hash) },
      );
    }
  }
}
