/**
 * Migration runner. Numbered plain SQL files in `migrations/`, each applied
 * once, in its own transaction. Every transaction first takes a transaction-
 * scoped advisory lock, so two processes starting at once serialise: the
 * second finds the tracking row already there and does nothing.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import { projectRoot } from './paths';
import type { Db } from './connection';

/** Arbitrary constant: pinflow's advisory lock key for migrations. */
const MIGRATION_LOCK_KEY = 7_250_301;
const FILE_PATTERN = /^(\d{6})_([a-z0-9_]+)\.sql$/;

export interface Migration {
  id: number;
  name: string;
  sql: string;
}

export function loadMigrations(dir = join(projectRoot(), 'migrations')): Migration[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  return files.map((file) => {
    const m = FILE_PATTERN.exec(file);
    if (!m) throw new Error(`migration file ${file} does not match NNNNNN_name.sql`);
    return { id: Number(m[1]), name: m[2]!, sql: readFileSync(join(dir, file), 'utf8') };
  });
}

const lock = () => ({ text: 'SELECT pg_advisory_xact_lock($1)', values: [MIGRATION_LOCK_KEY] });
const createTracking = () => ({
  text: `CREATE TABLE IF NOT EXISTS pinflow_migrations (
    id integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`,
});
const appliedIds = () => ({ text: 'SELECT id FROM pinflow_migrations ORDER BY id' });
const insertTracking = (m: Migration) => ({ text: 'INSERT INTO pinflow_migrations (id, name) VALUES ($1, $2)', values: [m.id, m.name] });

/** Apply every pending migration. Returns the ids applied by this call. */
export async function migrate(db: Db, migrations: Migration[] = loadMigrations()): Promise<number[]> {
  const applied: number[] = [];
  for (const m of migrations) {
    const didApply = await db.transaction(async (tx) => {
      await tx.query(lock());
      await tx.query(createTracking());
      const done = new Set((await tx.query<{ id: number }>(appliedIds())).map((r) => Number(r.id)));
      const known = new Set(migrations.map((x) => x.id));
      const unknown = [...done].filter((id) => !known.has(id));
      if (unknown.length) {
        throw new PinflowError(
          ERROR_CODES.DATABASE_VERSION_UNKNOWN,
          `the projection database has migration(s) ${unknown.join(', ')} that this pinflow does not know ` +
            `(it knows up to ${Math.max(...known)}); it was migrated by a newer pinflow: upgrade this one`,
          { unknown, latestKnown: Math.max(...known) },
        );
      }
      if (done.has(m.id)) return false;
      // Tracking row first: a concurrent migrator that somehow bypassed the
      // lock hits the primary key instead of applying the file twice.
      await tx.query(insertTracking(m));
      await tx.exec(m.sql);
      return true;
    });
    if (didApply) applied.push(m.id);
  }
  return applied;
}
