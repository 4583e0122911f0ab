/**
 * Mocha root hooks: one real Temporal dev server for the whole test run, on
 * a fresh SQLite file, headless, with the test namespaces pre-created.
 * Set PINFLOW_TEST_TEMPORAL_ADDRESS to use a server you already run instead.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../app/config';
import { startDevServer, type DevServer } from '../../app/dev-server';
import { findConfiguredTemporalCli } from '../../app/temporal-cli';
import { setTemporalAddress, TEST_NAMESPACES } from './harness';

let server: DevServer | undefined;
let dir: string | undefined;

export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    this.timeout(15 * 60_000); // a first-ever run builds the Temporal CLI
    const external = process.env.PINFLOW_TEST_TEMPORAL_ADDRESS;
    if (external) {
      setTemporalAddress(external, process.env.PINFLOW_TEST_TEMPORAL_UI_URL);
      return;
    }
    const config = loadConfig({ ...process.env, TEMPORAL_ADDRESS: undefined });
    const cli = await findConfiguredTemporalCli(config, (l) => console.log(`  [setup] ${l}`));
    dir = mkdtempSync(join(tmpdir(), 'pinflow-test-temporal-'));
    const port = Number(process.env.PINFLOW_TEST_TEMPORAL_PORT ?? 17233);
    server = await startDevServer({
      cliPath: cli.path,
      dbFile: join(dir, 'temporal.sqlite'),
      port,
      uiPort: port + 1000,
      // The UI (port + 1000) is served for the browser test (temporal-ui.test.ts).
      namespaces: TEST_NAMESPACES,
    });
    setTemporalAddress(server.address, server.uiUrl);
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(60_000);
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  },
};
