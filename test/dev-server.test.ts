import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { loadConfig } from '../app/config';
import { processAlive, startDevServer, type DevServer } from '../app/dev-server';
import { ensureSearchAttributes } from '../app/namespace';
import { findConfiguredTemporalCli } from '../app/temporal-cli';
import { temporalAddress } from './support/harness';

describe('embedded Temporal dev server', function () {
  this.timeout(180_000);
  let dir: string;
  let cliPath: string;
  let server: DevServer | undefined;
  const port = Number(process.env.PINFLOW_TEST_TEMPORAL_PORT ?? 17233) + 50;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pinflow-devserver-'));
    const config = loadConfig({ ...process.env, TEMPORAL_ADDRESS: undefined });
    cliPath = (await findConfiguredTemporalCli(config)).path;
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('persists to its SQLite file: search attributes survive a restart, and stop leaves no process behind', async () => {
    const dbFile = join(dir, 'temporal.sqlite');
    server = await startDevServer({ cliPath, dbFile, port, uiPort: port + 1000, headless: true });
    const firstPid = server.pid;
    let conn = await Connection.connect({ address: server.address });
    await ensureSearchAttributes(conn, 'default');
    await ensureSearchAttributes(conn, 'default'); // idempotent
    await conn.close();
    // Bytes 18 and 19 of a SQLite header are its write and read versions: 2 in WAL mode, 1 with a rollback journal.
    assert.deepEqual(sqliteJournalVersions(dbFile), [2, 2], 'the store runs in WAL mode (DEV_SERVER_SQLITE_PRAGMAS)');
    await server.stop();
    server = undefined;
    assert.equal(processAlive(firstPid), false, 'the dev server process is gone after stop()');

    server = await startDevServer({ cliPath, dbFile, port, uiPort: port + 1000, headless: true });
    conn = await Connection.connect({ address: server.address });
    try {
      const attrs = await conn.operatorService.listSearchAttributes({ namespace: 'default' });
      assert.deepEqual(
        Object.keys(attrs.customAttributes ?? {}).filter((k) => k.startsWith('Pinflow')).sort(),
        ['PinflowCurrentStep', 'PinflowDefinition', 'PinflowStallReason', 'PinflowStatus', 'PinflowTenant', 'PinflowVersion'],
      );
    } finally {
      await conn.close();
    }
  });

  it('passes its SQLite pragmas to the server: none leaves the store on a rollback journal', async () => {
    const dbFile = join(dir, 'plain.sqlite');
    const plain = await startDevServer({ cliPath, dbFile, port: port + 1, uiPort: port + 1001, headless: true, sqlitePragmas: [] });
    try {
      assert.deepEqual(sqliteJournalVersions(dbFile), [1, 1]);
    } finally {
      await plain.stop();
    }
  });

  it('refuses to start on a port that is already taken, saying what to do', async () => {
    const taken = Number(temporalAddress().split(':').pop());
    await assert.rejects(
      startDevServer({ cliPath, dbFile: join(dir, 'other.sqlite'), port: taken, uiPort: taken + 2000, headless: true }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'TEMPORAL_UNAVAILABLE');
        assert.match(err.message, new RegExp(`^port ${taken} on 127.0.0.1 is already in use.*set PINFLOW_TEMPORAL_PORT to a free port, or TEMPORAL_ADDRESS=127.0.0.1:${taken}`));
        return true;
      },
    );
  });
});

/** The write and read format versions in a SQLite file's header (bytes 18 and 19). */
function sqliteJournalVersions(file: string): [number, number] {
  const header = readFileSync(file).subarray(0, 100);
  return [header[18]!, header[19]!];
}
