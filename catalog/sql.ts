/**
 * Every catalog statement (definitions, versions), one small named function
 * each, returning `{ text, values }`, in the projection's style.
 */
import { json, type Query } from '../db/connection';

/**
 * Stores a version once; a tombstone (a version the GC removed) is filled in
 * again and cleared. `restored` is true then. DO UPDATE (not DO NOTHING) so
 * the row is locked even when it is unchanged: a publish and the GC
 * (selectLiveVersionForUpdate) serialise on the version row, so a version
 * cannot be removed while it is being made a definition's latest.
 */
export const upsertVersion = (hash: string, graph: unknown, contracts: unknown): Query => ({
  text: `INSERT INTO versions AS v (hash, graph, contracts) VALUES ($1, $2::jsonb, $3::jsonb)
         ON CONFLICT (hash) DO UPDATE SET graph = EXCLUDED.graph, contracts = EXCLUDED.contracts, removed_at = NULL, removed_by = NULL, removed_reason = NULL
           WHERE v.removed_at IS NOT NULL
         RETURNING (xmax <> 0) AS restored`,
  values: [hash, json(graph), json(contracts)],
});

/** Fills a tombstone in again from the version's own graph and contracts (a rerun or replay read them from history). */
export const restoreVersion = (hash: string, graph: unknown, contracts: unknown): Query => ({
  text: `UPDATE versions SET graph = $2::jsonb, contracts = $3::jsonb, removed_at = NULL, removed_by = NULL, removed_reason = NULL
         WHERE hash = $1 AND removed_at IS NOT NULL RETURNING hash`,
  values: [hash, json(graph), json(contracts)],
});

/** Creates the definition or points it at `version`; locks its row for the seq computation. */
export const upsertDefinition = (name: string, version: string): Query => ({
  text: `INSERT INTO definitions (name, latest_version) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET latest_version = EXCLUDED.latest_version, updated_at = now()`,
  values: [name, version],
});

export const findDefinitionVersion = (definition: string, version: string): Query => ({
  text: `SELECT seq FROM definition_versions WHERE definition = $1 AND version = $2`,
  values: [definition, version],
});

export const insertDefinitionVersion = (definition: string, version: string): Query => ({
  text: `INSERT INTO definition_versions (definition, version, seq)
         SELECT $1, $2, COALESCE(MAX(seq), 0) + 1 FROM definition_versions WHERE definition = $1
         RETURNING seq`,
  values: [definition, version],
});

export const selectDefinitions = (): Query => ({
  text: `SELECT d.name, d.latest_version AS "latestVersion", dv.seq AS "latestSeq",
                (SELECT count(*)::int FROM definition_versions x WHERE x.definition = d.name) AS "versionCount",
                d.created_at AS "createdAt", d.updated_at AS "updatedAt"
         FROM definitions d JOIN definition_versions dv ON dv.definition = d.name AND dv.version = d.latest_version
         ORDER BY d.name`,
});

export const selectDefinition = (name: string): Query => ({
  text: `SELECT d.name, d.latest_version AS "latestVersion", d.created_at AS "createdAt", d.updated_at AS "updatedAt"
         FROM definitions d WHERE d.name = $1`,
  values: [name],
});

export const selectDefinitionVersions = (definition: string): Query => ({
  text: `SELECT dv.version AS hash, dv.seq, dv.published_at AS "publishedAt",
                (d.latest_version = dv.version) AS latest,
                (SELECT count(*)::int FROM runs r WHERE r.definition = dv.definition AND r.version = dv.version AND r.status IN ('RUNNING', 'STALLED', 'PAUSED')) AS "openRuns",
                v.removed_at AS "removedAt", v.removed_by AS "removedBy", v.removed_reason AS "removedReason"
         FROM definition_versions dv JOIN definitions d ON d.name = dv.definition JOIN versions v ON v.hash = dv.version
         WHERE dv.definition = $1 ORDER BY dv.seq DESC`,
  values: [definition],
});

export const selectVersion = (hash: string): Query => ({
  text: `SELECT hash, graph, contracts, created_at AS "createdAt",
                COALESCE((SELECT json_agg(json_build_object('definition', definition, 'seq', seq) ORDER BY definition)
                          FROM definition_versions WHERE version = $1), '[]'::json) AS definitions
         FROM versions WHERE hash = $1 AND removed_at IS NULL`,
  values: [hash],
});

/** A removed version's tombstone: what it was (its definitions, numbers and publish times) and when, by whom and why it went. */
export const selectTombstone = (hash: string): Query => ({
  text: `SELECT hash, created_at AS "createdAt", removed_at AS "removedAt", removed_by AS "removedBy", removed_reason AS "reason",
                COALESCE((SELECT json_agg(json_build_object('definition', definition, 'seq', seq, 'publishedAt', published_at) ORDER BY definition)
                          FROM definition_versions WHERE version = $1), '[]'::json) AS definitions
         FROM versions WHERE hash = $1 AND removed_at IS NOT NULL`,
  values: [hash],
});

// ---------------------------------------------------------------------------
// Version GC (client/version-gc.ts). The checks read the projection's runs and
// the batches as well as the catalog: what still needs a version is spread
// over all three.

/**
 * Every version still in the catalog with what keeps it: the definitions it
 * is the latest of, its definitions and numbers, its newest publish time (a
 * version published again under another name is as young as that), its open
 * runs in the projection and the unfinished batches that target it.
 */
export const selectGcVersions = (): Query => ({
  text: `SELECT v.hash, v.created_at AS "createdAt",
                (SELECT max(dv.published_at) FROM definition_versions dv WHERE dv.version = v.hash) AS "publishedAt",
                COALESCE((SELECT json_agg(json_build_object('definition', dv.definition, 'seq', dv.seq) ORDER BY dv.definition)
                          FROM definition_versions dv WHERE dv.version = v.hash), '[]'::json) AS definitions,
                COALESCE((SELECT array_agg(d.name ORDER BY d.name) FROM definitions d WHERE d.latest_version = v.hash), '{}') AS "latestOf",
                (SELECT count(*)::int FROM runs r WHERE r.version = v.hash AND r.status IN ('RUNNING', 'STALLED', 'PAUSED')) AS "openRuns",
                COALESCE((SELECT array_agg(b.id ORDER BY b.id) FROM batches b WHERE b.state IN ('RUNNING', 'PAUSED') AND b.params->>'targetVersion' = v.hash), '{}') AS batches
         FROM versions v WHERE v.removed_at IS NULL
         ORDER BY v.created_at DESC, v.hash`,
});

/**
 * Child steps that pin a version by hash: (the version whose graph has the
 * step, the version it pins), for every version still in the catalog (child
 * steps nest in forEach bodies and parallel branches: the whole graph is
 * searched).
 */
export const selectChildPins = (): Query => ({
  text: `SELECT DISTINCT v.hash AS "from", c.step->>'version' AS "to"
         FROM versions v, jsonb_path_query(v.graph, 'strict $.** ? (@.type == "child")') AS c(step)
         WHERE v.removed_at IS NULL AND jsonb_typeof(c.step->'version') = 'string' AND c.step->>'version' <> 'latest'`,
});

/** The version row, locked against a publish, a start's projection row (its foreign key) and another GC, while the GC checks and removes it. */
export const selectLiveVersionForUpdate = (hash: string): Query => ({
  text: `SELECT hash FROM versions WHERE hash = $1 AND removed_at IS NULL FOR UPDATE`,
  values: [hash],
});

/** The GC's checks again, under the version row's lock (one version). */
export const selectGcRecheck = (hash: string): Query => ({
  text: `SELECT COALESCE((SELECT array_agg(d.name ORDER BY d.name) FROM definitions d WHERE d.latest_version = $1), '{}') AS "latestOf",
                (SELECT count(*)::int FROM runs r WHERE r.version = $1 AND r.status IN ('RUNNING', 'STALLED', 'PAUSED')) AS "openRuns",
                COALESCE((SELECT array_agg(b.id ORDER BY b.id) FROM batches b WHERE b.state IN ('RUNNING', 'PAUSED') AND b.params->>'targetVersion' = $1), '{}') AS batches,
                COALESCE((SELECT array_agg(DISTINCT v.hash) FROM versions v, jsonb_path_query(v.graph, 'strict $.** ? (@.type == "child")') AS c(step)
                          WHERE v.removed_at IS NULL AND v.hash <> $1 AND c.step->>'version' = $1), '{}') AS "childOf"`,
  values: [hash],
});

/** Removes a version: its graph and contracts go, the row stays as its tombstone. */
export const tombstoneVersion = (hash: string, by: string, reason: string): Query => ({
  text: `UPDATE versions SET graph = NULL, contracts = NULL, removed_at = now(), removed_by = $2, removed_reason = $3
         WHERE hash = $1 AND removed_at IS NULL RETURNING removed_at AS "removedAt"`,
  values: [hash, by, reason],
});
