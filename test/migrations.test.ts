/**
 * The migration runner against a real Postgres (one fresh database per test)
 * and against embedded PGlite.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PinflowError } from '../graph/errors';
import { DECISION_ACTIONS, DELIVERY_STATUSES, DELIVERY_VIAS, EVENT_SOURCES, EVENT_STATUSES, RUN_STATUSES, STEP_STATUSES, VERSION_HASH_PATTERN, WAIT_STATUSES } from '../graph/terminology';
import { connectPg, openPglite, type Db } from '../db/connection';
import { loadMigrations, migrate } from '../db/migrate';
import { projectRoot } from '../db/paths';
import { createDatabase } from './support/harness';

const EXPECTED_TABLES = ['definition_versions', 'definitions', 'pinflow_migrations', 'run_details', 'run_steps', 'runs', 'versions'];
const EXPECTED_RUN_INDEXES = ['runs_definition_idx', 'runs_started_idx', 'runs_status_idx', 'runs_tenant_idx', 'runs_version_idx'];

async function publicTables(db: Db): Promise<string[]> {
  const rows = await db.query<{ table_name: string }>({
    text: `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`,
  });
  return rows.map((r) => r.table_name);
}

async function trackingIds(db: Db): Promise<number[]> {
  const rows = await db.query<{ id: number }>({ text: 'SELECT id FROM pinflow_migrations ORDER BY id' });
  return rows.map((r) => Number(r.id));
}

/** A fresh real-Postgres database and a pool on it; both torn down after `fn`. */
async function withDatabase(label: string, fn: (db: Db, url: string) => Promise<void>): Promise<void> {
  const database = await createDatabase(label);
  const db = connectPg(database.url);
  try {
    await fn(db, database.url);
  } finally {
    await db.close();
    await database.drop();
  }
}

function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

describe('projection migrations', () => {
  const allIds = loadMigrations().map((m) => m.id);

  it('applies every migration to an empty database and creates the schema', () =>
    withDatabase('mig_apply', async (db) => {
      assert.deepEqual(await migrate(db), allIds);
      const tables = await publicTables(db);
      for (const t of EXPECTED_TABLES) assert.ok(tables.includes(t), `table ${t} missing; have ${tables.join(', ')}`);
      const indexes = await db.query<{ indexname: string }>({
        text: `SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'runs' ORDER BY indexname`,
      });
      const names = indexes.map((r) => r.indexname);
      for (const i of EXPECTED_RUN_INDEXES) assert.ok(names.includes(i), `index ${i} missing; have ${names.join(', ')}`);
      const metadataIndex = await db.query<{ indexdef: string }>({
        text: `SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexname = 'run_details_metadata_idx'`,
      });
      assert.match(metadataIndex[0]?.indexdef ?? 'missing', /ON public\.run_details USING gin \(metadata jsonb_path_ops\)/);
      assert.deepEqual(await trackingIds(db), allIds);
    }));

  it('lists in each CHECK constraint exactly the wire values of its terminology constant', () =>
    withDatabase('mig_terms', async (db) => {
      await migrate(db);
      const rows = await db.query<{ tbl: string; def: string }>({
        text: `SELECT conrelid::regclass::text AS tbl, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE contype = 'c' AND connamespace = 'public'::regnamespace`,
      });
      /** The quoted values of the CHECK on `table.column` (`col = ANY (ARRAY['a'::text, ...])`). */
      const listed = (table: string, column: string): string[] => {
        const defs = rows.filter((r) => r.tbl === table && new RegExp(`\\(${column} = ANY`).test(r.def));
        assert.equal(defs.length, 1, `one CHECK on ${table}.${column}; have ${rows.filter((r) => r.tbl === table).map((r) => r.def).join(' | ')}`);
        return [...defs[0]!.def.matchAll(/'([^']*)'::text/g)].map((m) => m[1]!);
      };
      const sorted = (xs: readonly string[]) => [...xs].sort();
      assert.deepEqual(sorted(listed('runs', 'status')), sorted(RUN_STATUSES));
      assert.deepEqual(sorted(listed('run_steps', 'status')), sorted(STEP_STATUSES));
      assert.deepEqual(sorted(listed('run_decisions', 'action')), sorted(DECISION_ACTIONS));
      assert.deepEqual(sorted(listed('run_waits', 'status')), sorted(WAIT_STATUSES));
      assert.deepEqual(sorted(listed('events', 'status')), sorted(EVENT_STATUSES));
      assert.deepEqual(sorted(listed('events', 'source')), sorted(EVENT_SOURCES));
      assert.deepEqual(sorted(listed('event_deliveries', 'status')), sorted(DELIVERY_STATUSES));
      assert.deepEqual(sorted(listed('event_deliveries', 'via')), sorted(DELIVERY_VIAS));
      const hashCheck = rows.find((r) => r.tbl === 'versions' && r.def.includes('hash ~'));
      assert.ok(hashCheck?.def.includes(`'${VERSION_HASH_PATTERN.source}'`), `versions.hash CHECK ${hashCheck?.def} uses ${VERSION_HASH_PATTERN.source}`);
    }));

  it('does nothing when run again on a migrated database', () =>
    withDatabase('mig_rerun', async (db) => {
      assert.deepEqual(await migrate(db), allIds);
      assert.deepEqual(await migrate(db), []);
      assert.deepEqual(await trackingIds(db), allIds);
    }));

  it('lets two migrators race on one empty database: both succeed, each migration applied exactly once', async () => {
    const database = await createDatabase('mig_race');
    const a = connectPg(database.url);
    const b = connectPg(database.url);
    try {
      const [appliedA, appliedB] = await Promise.all([migrate(a), migrate(b)]);
      assert.deepEqual([...appliedA, ...appliedB].sort((x, y) => x - y), allIds);
      assert.deepEqual(await trackingIds(a), allIds);
      const tables = await publicTables(a);
      for (const t of EXPECTED_TABLES) assert.ok(tables.includes(t), `table ${t} missing`);
    } finally {
      await a.close();
      await b.close();
      await database.drop();
    }
  });

  it('rolls a failing migration back entirely and keeps the earlier ones applied', () =>
    withTempDir('pinflow-mig-', (dir) =>
      withDatabase('mig_broken', async (db) => {
        copyFileSync(join(projectRoot(), 'migrations', '000001_init.sql'), join(dir, '000001_init.sql'));
        writeFileSync(join(dir, '000002_broken.sql'), 'CREATE TABLE half_written (id int); SELECT * FROM no_such_table;');
        const migrations = loadMigrations(dir);
        assert.deepEqual(
          migrations.map((m) => [m.id, m.name]),
          [
            [1, 'init'],
            [2, 'broken'],
          ],
        );
        await assert.rejects(migrate(db, migrations), (err: Error & { code?: string }) => {
          assert.equal(err.code, '42P01'); // undefined_table
          assert.match(err.message, /relation "no_such_table" does not exist/);
          return true;
        });
        assert.deepEqual(await trackingIds(db), [1]);
        const tables = await publicTables(db);
        assert.ok(!tables.includes('half_written'), 'half_written exists: the failed migration was not rolled back');
        assert.ok(tables.includes('runs'), 'migration 1 was rolled back with the failing one');
      }),
    ));

  it('refuses a database migrated by a newer pinflow, naming the unknown migration', () =>
    withDatabase('mig_future', async (db) => {
      await migrate(db);
      await db.query({ text: 'INSERT INTO pinflow_migrations (id, name) VALUES ($1, $2)', values: [999, 'from_the_future'] });
      await assert.rejects(migrate(db), (err: unknown) => {
        assert.ok(err instanceof PinflowError, `expected PinflowError, got ${String(err)}`);
        assert.equal(err.code, 'DATABASE_VERSION_UNKNOWN');
        assert.match(err.message, /migration\(s\) 999 that this pinflow does not know/);
        assert.ok(err.message.includes(`it knows up to ${Math.max(...allIds)})`), err.message);
        assert.deepEqual(err.details, { unknown: [999], latestKnown: Math.max(...allIds) });
        return true;
      });
      assert.deepEqual(await trackingIds(db), [...allIds, 999]);
    }));

  it('applies the same migrations on embedded PGlite', () =>
    withTempDir('pinflow-pglite-', async (dir) => {
      const db = await openPglite(dir);
      try {
        assert.equal(db.kind, 'pglite');
        assert.deepEqual(await migrate(db), allIds);
        assert.deepEqual(await migrate(db), []);
        const tables = await publicTables(db);
        for (const t of EXPECTED_TABLES) assert.ok(tables.includes(t), `table ${t} missing; have ${tables.join(', ')}`);
        const hash = 'a'.repeat(64);
        await db.query({
          text: 'INSERT INTO versions (hash, graph, contracts) VALUES ($1, $2::jsonb, $3::jsonb)',
          values: [hash, JSON.stringify({ entry: 'start', steps: [] }), JSON.stringify({})],
        });
        const rows = await db.query<{ hash: string; graph: unknown; contracts: unknown }>({
          text: 'SELECT hash, graph, contracts FROM versions WHERE hash = $1',
          values: [hash],
        });
        assert.deepEqual(rows, [{ hash, graph: { entry: 'start', steps: [] }, contracts: {} }]);
        await assert.rejects(
          db.query({ text: 'INSERT INTO versions (hash, graph, contracts) VALUES ($1, $2::jsonb, $3::jsonb)', values: ['not-a-hash', '{}', '{}'] }),
          /versions_hash_check/,
        );
      } finally {
        await db.close();
      }
    }));
});
