#!/usr/bin/env node
/**
 * The pinflow CLI.
 *
 *   pinflow check-deploy --rpcs <module> [--json] [--certain-only]
 *     Which open runs would stall under the RPC registry in <module> (the code
 *     about to be deployed). Changes nothing. Exit 1 when any run would (or,
 *     unless --certain-only, may) stall; 0 otherwise.
 *
 *   pinflow contracts --rpcs <module>
 *     Print the contract manifest of <module>, the body POST /deploy/check takes.
 *
 * Reads the projection from DATABASE_URL (or PGlite in PINFLOW_DATA_DIR).
 */
import { checkDeploy, manifestOf, type DeployReport } from '../client/check-deploy';
import { PinflowError } from '../graph/errors';
import { loadConfig } from '../app/config';
import { loadRpcModule } from '../app/rpc-module';
import { openStore } from '../app/store';

function usage(): never {
  console.error('usage: pinflow check-deploy --rpcs <module> [--json] [--certain-only]\n       pinflow contracts --rpcs <module>');
  process.exit(64);
}

function printReport(report: DeployReport): void {
  console.log(`checked ${report.checkedRuns} open run(s): ${report.wouldStall} would stall, ${report.mayStall} may stall`);
  for (const i of report.impacts) {
    console.log(`  ${i.certain ? 'WOULD STALL' : 'may stall  '}  ${i.runId}  ${i.definition}@${i.version.slice(0, 12)}  step ${i.stepInstance}  ${i.reason}: ${i.message}`);
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const flag = (name: string) => rest.includes(name);
  const value = (name: string) => {
    const i = rest.indexOf(name);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  const rpcsPath = value('--rpcs');
  if (!rpcsPath || (command !== 'check-deploy' && command !== 'contracts')) usage();
  const { registry } = loadRpcModule(rpcsPath);
  const manifest = manifestOf(registry);
  if (command === 'contracts') {
    console.log(JSON.stringify({ contracts: manifest }, null, 2));
    return 0;
  }
  const config = loadConfig();
  const { store, catalog, db } = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    const report = await checkDeploy({ store, catalog }, manifest);
    if (flag('--json')) console.log(JSON.stringify(report, null, 2));
    else printReport(report);
    return report.wouldStall > 0 || (!flag('--certain-only') && report.mayStall > 0) ? 1 : 0;
  } finally {
    await db.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof PinflowError ? `pinflow: ${err.code}: ${err.message}` : err);
    process.exit(70);
  },
);
