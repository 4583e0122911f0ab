/**
 * Every catalog statement (definitions, versions), one small named function
 * each, returning `{ text, values }`, in the projection's style.
 */
import { json, type Query } from '../db/connection';

export const upsertVersion = (hash: string, graph: unknown, contracts: unknown): Query => ({
  text: `INSERT INTO versions (hash, graph, contracts) VALUES ($1, $2::jsonb, $3::jsonb)
         ON CONFLICT (hash) DO NOTHING`,
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
                (SELECT count(*)::int FROM runs r WHERE r.definition = dv.definition AND r.version = dv.version AND r.status IN ('RUNNING', 'STALLED', 'PAUSED')) AS "openRuns"
         FROM definition_versions dv JOIN definitions d ON d.name = dv.definition
         WHERE dv.definition = $1 ORDER BY dv.seq DESC`,
  values: [definition],
});

export const selectVersion = (hash: string): Query => ({
  text: `SELECT hash, graph, contracts, created_at AS "createdAt",
                COALESCE((SELECT json_agg(json_build_object('definition', definition, 'seq', seq) ORDER BY definition)
                          FROM definition_versions WHERE version = $1), '[]'::json) AS definitions
         FROM versions WHERE hash = $1`,
  values: [hash],
});
