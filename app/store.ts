/**
 * Opening the database: `pg` for DATABASE_URL, PGlite in the data dir
 * otherwise, migrated on open. It holds the catalog (authoritative) and the
 * projection (derived), as two stores over one database.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { connectPg, openPglite, type Db } from '../db/connection';
import { migrate } from '../db/migrate';
import { ProjectionStore } from '../projection/store';
import { VersionStore } from '../catalog/versions';

export async function openStore(opts: { databaseUrl: string | undefined; dataDir: string }): Promise<{ store: ProjectionStore; catalog: VersionStore; db: Db; applied: number[] }> {
  let db: Db;
  if (opts.databaseUrl) db = connectPg(opts.databaseUrl);
  else {
    const dir = join(opts.dataDir, 'pglite');
    mkdirSync(dir, { recursive: true });
    db = await openPglite(dir);
  }
  try {
    const applied = await migrate(db);
    return { store: new ProjectionStore(db), catalog: new VersionStore(db), db, applied };
  } catch (err) {
    await db.close();
    throw err;
  }
}
