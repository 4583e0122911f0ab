/**
 * The pg adapter under lost connections, in-process against the real
 * Postgres: a connection terminated inside a transaction fails that
 * statement with an error `isDatabaseUnavailable` recognises, never the
 * process (before, the checked-out client's 'error' event had no listener),
 * and the pool discards the broken client. Real errors only: a refused port,
 * a terminated backend, a missing database, a missing table.
 */
import assert from 'node:assert/strict';
import { Client as PgClient } from 'pg';
import { isDatabaseUnavailable, waitForDatabase } from '../db/availability';
import { connectPg, type Db } from '../db/connection';
import { createDatabase, eventually, freePort, PG_ADMIN_URL, pgUrl } from './support/harness';

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail('expected a rejection');
}

describe('the pg adapter survives lost connections', function () {
  this.timeout(60_000);
  let database: Awaited<ReturnType<typeof createDatabase>>;
  let db: Db;
  let admin: PgClient;

  before(async () => {
    database = await createDatabase('db_connection');
    // One connection: a broken client left in the pool would fail the next statement.
    db = connectPg(database.url, { max: 1 });
    admin = new PgClient({ connectionString: PG_ADMIN_URL });
    admin.on('error', () => undefined);
    await admin.connect();
  });
  after(async () => {
    await db?.close();
    await admin?.end();
    await database?.drop();
  });

  it('a backend terminated under a running statement inside a transaction fails that statement (57P01, unavailable), and the next transaction gets a fresh connection', async () => {
    for (let i = 0; i < 3; i++) {
      const err = await rejection(db.transaction((tx) => tx.query({ text: 'SELECT pg_terminate_backend(pg_backend_pid())' })));
      assert.equal((err as { code?: string }).code, '57P01');
      assert.equal(isDatabaseUnavailable(err), true);
      const [row] = await db.transaction((tx) => tx.query<{ x: number }>({ text: 'SELECT 1 AS x' }));
      assert.equal(row?.x, 1);
    }
  });

  it('a backend terminated while its transaction is idle between statements fails the next statement, not the process', async () => {
    const err = await rejection(
      db.transaction(async (tx) => {
        const [me] = await tx.query<{ pid: number }>({ text: 'SELECT pg_backend_pid() AS pid' });
        await admin.query('SELECT pg_terminate_backend($1)', [me!.pid]);
        // The server ends the backend; the client hears of it while no statement is running on it.
        await eventually(async () => (await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [me!.pid])).rowCount === 0, { timeoutMs: 30_000, what: 'the backend to exit' });
        await tx.query({ text: 'SELECT 1' });
      }),
    );
    assert.equal(isDatabaseUnavailable(err), true, String(err));
    assert.deepEqual(await db.query({ text: 'SELECT 2 AS x' }), [{ x: 2 }]);
  });

  it('tells an unreachable database from a refusal, on real errors', async () => {
    const refusedPort = await freePort();
    const unreachable = connectPg(`postgres://postgres@127.0.0.1:${refusedPort}/x`, { max: 1 });
    const noSuchDb = connectPg(pgUrl('pinflow_no_such_database'), { max: 1 });
    try {
      const econnrefused = await rejection(unreachable.query({ text: 'SELECT 1' }));
      assert.equal((econnrefused as { code?: string }).code, 'ECONNREFUSED');
      assert.equal(isDatabaseUnavailable(econnrefused), true);
      const missingDb = await rejection(noSuchDb.query({ text: 'SELECT 1' }));
      assert.equal((missingDb as { code?: string }).code, '3D000');
      assert.equal(isDatabaseUnavailable(missingDb), false);
      const missingTable = await rejection(db.query({ text: 'SELECT * FROM no_such_table' }));
      assert.equal((missingTable as { code?: string }).code, '42P01');
      assert.equal(isDatabaseUnavailable(missingTable), false);

      // waitForDatabase retries the first kind (logging each attempt) and throws the second at once.
      const lines: string[] = [];
      let calls = 0;
      const result = await waitForDatabase(
        'test',
        async () => {
          if (++calls < 3) await unreachable.query({ text: 'SELECT 1' });
          return 'up';
        },
        { log: (l) => lines.push(l), initialDelayMs: 10 },
      );
      assert.equal(result, 'up');
      assert.equal(lines.length, 3);
      assert.match(lines[0]!, /^test: attempt 1 failed \(connect ECONNREFUSED 127\.0\.0\.1:\d+\); the database is unavailable, next attempt in 10 ms$/);
      assert.match(lines[1]!, /^test: attempt 2 failed .*next attempt in 20 ms$/);
      assert.match(lines[2]!, /^test: the database answered after 3 attempts/);
      lines.length = 0;
      const thrown = await rejection(waitForDatabase('test', () => noSuchDb.query({ text: 'SELECT 1' }), { log: (l) => lines.push(l), initialDelayMs: 10 }));
      assert.equal((thrown as { code?: string }).code, '3D000');
      assert.deepEqual(lines, []);
    } finally {
      await unreachable.close();
      await noSuchDb.close();
    }
  });
});
