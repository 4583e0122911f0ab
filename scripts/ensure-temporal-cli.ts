/**
 * `npm run temporal:cli`: find or build the Temporal CLI (PATH, project cache,
 * machine cache, `go install`, SDK download) and print where it is.
 */
import { PinflowError } from '../graph/errors';
import { loadConfig } from '../app/config';
import { cliVersion, findConfiguredTemporalCli } from '../app/temporal-cli';

async function main(): Promise<void> {
  const config = loadConfig();
  const cli = await findConfiguredTemporalCli(config, (l) => console.log(`[pinflow] ${l}`));
  console.log(`[pinflow] Temporal CLI: ${cli.path} (${cli.source}) ${cliVersion(cli.path) ?? ''}`.trim());
}

main().catch((err: unknown) => {
  console.error(err instanceof PinflowError ? `[pinflow] ${err.code}: ${err.message}` : err);
  process.exit(1);
});
