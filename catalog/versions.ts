/**
 * The catalog: definitions, their versions and the contracts each version
 * pinned. Authoritative and never rebuilt (unlike the projection): a version
 * is immutable once stored, runs are started from it, and operator decisions
 * (skip outputs, migrations, continue-as-new onto latest, child versions) are
 * checked against it. It shares one database and one migration sequence
 * with the projection (`db/`), and neither imports the other.
 */
import { ERROR_CODES, PinflowError } from '../graph/errors';
import type { Graph, PinnedContracts } from '../graph/schema';
import { iso, type Db } from '../db/connection';
import * as csql from './sql';

export interface DefinitionSummary {
  name: string;
  latestVersion: string;
  latestSeq: number;
  versionCount: number;
  createdAt: string;
  updatedAt: string;
}

export interface VersionSummary {
  hash: string;
  seq: number;
  publishedAt: string;
  latest: boolean;
  /** Runs of this definition on this version that are still open. */
  openRuns: number;
  /** Set when the version GC removed the version: its graph is gone, its row is a tombstone. */
  removed: { at: string; by: string; reason: string | null } | null;
}

/** What the catalog keeps of a version the GC removed (`versions` row without graph and contracts). */
export interface VersionTombstone {
  hash: string;
  createdAt: string;
  removedAt: string;
  removedBy: string;
  reason: string | null;
  /** The definitions it was published under, with its number and publish time in each. */
  definitions: Array<{ definition: string; seq: number; publishedAt: string }>;
}

export interface VersionRecord {
  hash: string;
  graph: Graph;
  contracts: PinnedContracts;
  createdAt: string;
  /** Definitions this version was published under, with its number in each. */
  definitions: Array<{ definition: string; seq: number }>;
}

export class VersionStore {
  constructor(readonly db: Db) {}

  /** Store a version (once) and link it to a definition as its latest. */
  async publishVersion(p: { definition: string; hash: string; graph: Graph; contracts: PinnedContracts }): Promise<{ created: boolean; seq: number }> {
    return this.db.transaction(async (tx) => {
      // A removed version (a tombstone) is filled in again: it is created anew, under its old number.
      const [stored] = await tx.query<{ restored: boolean }>(csql.upsertVersion(p.hash, p.graph, p.contracts));
      // Locks the definition row: concurrent publishes of one definition serialise on it.
      await tx.query(csql.upsertDefinition(p.definition, p.hash));
      const existing = await tx.query<{ seq: number }>(csql.findDefinitionVersion(p.definition, p.hash));
      if (existing[0]) return { created: stored?.restored === true, seq: Number(existing[0].seq) };
      const [row] = await tx.query<{ seq: number }>(csql.insertDefinitionVersion(p.definition, p.hash));
      return { created: true, seq: Number(row!.seq) };
    });
  }

  async listDefinitions(): Promise<DefinitionSummary[]> {
    const rows = await this.db.query<Record<string, unknown>>(csql.selectDefinitions());
    return rows.map((r) => ({
      name: String(r.name),
      latestVersion: String(r.latestVersion),
      latestSeq: Number(r.latestSeq),
      versionCount: Number(r.versionCount),
      createdAt: iso(r.createdAt)!,
      updatedAt: iso(r.updatedAt)!,
    }));
  }

  async getDefinition(name: string): Promise<{ name: string; latestVersion: string } | undefined> {
    const [r] = await this.db.query<{ name: string; latestVersion: string }>(csql.selectDefinition(name));
    return r ? { name: r.name, latestVersion: r.latestVersion } : undefined;
  }

  async listVersions(definition: string): Promise<VersionSummary[]> {
    const rows = await this.db.query<Record<string, unknown>>(csql.selectDefinitionVersions(definition));
    return rows.map((r) => ({
      hash: String(r.hash),
      seq: Number(r.seq),
      publishedAt: iso(r.publishedAt)!,
      latest: Boolean(r.latest),
      openRuns: Number(r.openRuns),
      removed: r.removedAt ? { at: iso(r.removedAt)!, by: String(r.removedBy), reason: (r.removedReason as string | null) ?? null } : null,
    }));
  }

  /** The tombstone of a removed version; undefined when the hash is unknown or the version is in the catalog. */
  async getTombstone(hash: string): Promise<VersionTombstone | undefined> {
    const [r] = await this.db.query<Record<string, unknown>>(csql.selectTombstone(hash));
    if (!r) return undefined;
    return {
      hash: String(r.hash),
      createdAt: iso(r.createdAt)!,
      removedAt: iso(r.removedAt)!,
      removedBy: String(r.removedBy),
      reason: (r.reason as string | null) ?? null,
      definitions: (r.definitions as Array<{ definition: string; seq: number; publishedAt: string }>).map((d) => ({ ...d, publishedAt: iso(d.publishedAt)! })),
    };
  }

  /**
   * Fill a removed version in again with its own graph and contracts (a
   * rerun or replay read them from the run's history; the caller checked
   * that they hash to `hash`). False when it was not removed.
   */
  async restoreVersion(hash: string, graph: Graph, contracts: PinnedContracts): Promise<boolean> {
    return (await this.db.query(csql.restoreVersion(hash, graph, contracts))).length > 0;
  }

  /** A version in the catalog; undefined when the hash is unknown or the version was removed (see {@link getTombstone}). */
  async getVersion(hash: string): Promise<VersionRecord | undefined> {
    const [r] = await this.db.query<Record<string, unknown>>(csql.selectVersion(hash));
    if (!r) return undefined;
    return {
      hash: String(r.hash),
      graph: r.graph as Graph,
      contracts: r.contracts as PinnedContracts,
      createdAt: iso(r.createdAt)!,
      definitions: r.definitions as VersionRecord['definitions'],
    };
  }

  /**
   * A version as published under `definition`, with its number there; undefined
   * when the hash is unknown or was never published under that definition. The
   * one answer to "is this a version of that definition" (child pinning,
   * publish, start by version, migrate).
   */
  async getVersionOf(definition: string, hash: string): Promise<(VersionRecord & { seq: number }) | undefined> {
    const version = await this.getVersion(hash);
    return version ? versionOf(version, definition) : undefined;
  }
}

/** VERSION_REMOVED (410) for a version the GC removed, with its tombstone as `details`. */
export function versionRemovedError(tombstone: VersionTombstone, field?: string): PinflowError {
  return new PinflowError(
    ERROR_CODES.VERSION_REMOVED,
    `${field ? `${field}: ` : ''}version ${tombstone.hash} (${tombstone.definitions.map((d) => `${d.definition} v${d.seq}`).join(', ')}) was removed from the catalog by the version GC at ${tombstone.removedAt} ` +
      `(by ${tombstone.removedBy}${tombstone.reason ? `: ${tombstone.reason}` : ''}); runs of it keep their graph in their Temporal history (rerun and replay read it there), ` +
      'and publishing the same graph again brings it back',
    { ...tombstone, ...(field ? { field } : {}) },
  );
}

/** `version` as published under `definition` (with its number there), or undefined. */
export function versionOf(version: VersionRecord, definition: string): (VersionRecord & { seq: number }) | undefined {
  const seq = version.definitions.find((d) => d.definition === definition)?.seq;
  return seq === undefined ? undefined : { ...version, seq };
}
