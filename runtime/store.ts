/** Opening the projection store: `pg` for DATABASE_URL, PGlite in the data dir otherwise. Migrated on open. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { connectPg, openPglite, type Db } from '../projection/db';
import { migrate } from '../projection/migrate';
import { ProjectionStore } from '../projection/store';

export async function openStore(opts: { databaseUrl: string | undefined; dataDir: string }): Promise<{ store: ProjectionStore; db: Db; applied: number[] }> {
  let db: Db;
  if (opts.databaseUrl) db = connectPg(opts.databaseUrl);
  else {
    const dir = join(opts.dataDir, 'pglite');
    mkdirSync(dir, { recursive: true });
    db = await openPglite(dir);
  }
  try {
    const applied = await migrate(db);
    return { store: new ProjectionStore(db), db, applied };
  } catch (err) {
    await db.close();
    throw err;
  }
}
