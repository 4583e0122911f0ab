/**
 * The test command. Runs every compiled suite (dist/test/**\/*.test.js) with
 * mocha's programmatic API and closes with the line CI reads,
 * `N passed, N failed`, computed from mocha's own run statistics. A run that
 * executes no test fails.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Mocha from 'mocha';
import { projectRoot } from '../db/paths';
import { mochaHooks } from '../test/support/setup';

function findTests(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((f) => {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) return findTests(p);
      return f.endsWith('.test.js') ? [p] : [];
    });
}

async function main(): Promise<number> {
  const grep = process.env.PINFLOW_TEST_GREP;
  const mocha = new Mocha({ reporter: 'spec', timeout: 60_000, slow: 5_000, ...(grep ? { grep } : {}) });
  mocha.rootHooks(mochaHooks);
  const files = findTests(join(projectRoot(), 'dist', 'test'));
  for (const f of files) mocha.addFile(f);
  await mocha.loadFilesAsync();
  const stats = await new Promise<Mocha.Stats>((resolve) => {
    const runner = mocha.run(() => resolve(runner.stats!));
  });
  const passed = stats.passes;
  const failed = stats.failures;
  const skipped = stats.pending;
  if (passed + failed === 0) console.error('no test was executed: this counts as a failure');
  if (skipped) console.log(`${skipped} skipped (pending)`);
  // CI reads this exact closing line.
  console.log(`${passed} passed, ${failed} failed`);
  return failed > 0 || passed + failed === 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    console.log('0 passed, 1 failed');
    process.exit(1);
  },
);
