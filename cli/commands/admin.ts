/**
 * The commands that work on the database, Temporal or an RPC module directly:
 * `check-deploy`, `contracts`, `reconcile`, `encryption-key`, `keys …`
 * (the bootstrap path for the first admin key) and `audit`. The key commands
 * write their own audit rows (key id empty, `by` from --by).
 */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { Command } from 'commander';
import { loadConfig } from '../../app/config';
import { loadRpcModule } from '../../app/rpc-module';
import { openStore } from '../../app/store';
import { AUDIT_OUTCOMES, SCOPES, type Scope } from '../../client/api-schemas';
import { AuditLog, type AuditOutcome } from '../../client/audit';
import { checkDeploy, manifestOf, temporalStateReader, type DeployReport } from '../../client/check-deploy';
import { ApiKeys } from '../../client/keys';
import { describeTotals, Reconciler } from '../../client/reconcile';
import { codecFromKeys, dataConverterFor, defaultKeyId } from '../../codec/encryption';
import { ERROR_CODES, PinflowError } from '../../graph/errors';
import { clientInterceptors } from '../../observability/tracing';
import { act, defaultBy, jsonOption } from '../command';
import { EXIT, UsageError } from '../exit';
import { intOption, oneOf, printJson } from '../format';

function printReport(report: DeployReport): void {
  console.log(`checked ${report.checkedRuns} open run(s): ${report.wouldStall} would stall, ${report.mayStall} may stall`);
  console.log(`  positions: ${report.liveRuns} live, ${report.unknownPositionRuns} unknown, ${report.unaffectedRuns} not asked (their version calls no changed RPC); ${report.durationMs} ms`);
  for (const i of report.impacts) {
    console.log(`  ${i.certain ? 'WOULD STALL' : 'may stall  '}  ${i.runId}  ${i.definition}@${i.version.slice(0, 12)}  step ${i.stepInstance}  ${i.reason}: ${i.message}${i.position === 'unknown' ? ' (position unknown)' : ''}`);
  }
}

/** The store on DATABASE_URL (or PGlite in PINFLOW_DATA_DIR) for the length of `fn`. */
async function withStore<T>(fn: (opened: Awaited<ReturnType<typeof openStore>>) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const opened = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    return await fn(opened);
  } finally {
    await opened.db.close();
  }
}

async function checkDeployCommand(o: { rpcs: string; json?: boolean; certainOnly?: boolean }): Promise<number> {
  const manifest = manifestOf(loadRpcModule(o.rpcs).registry);
  const config = loadConfig();
  return withStore(async ({ store, catalog }) => {
    // With TEMPORAL_ADDRESS each run is asked where it is; without, every position is unknown.
    const connection = config.temporal.address ? await Connection.connect({ address: config.temporal.address }) : undefined;
    const client = connection ? new Client({ connection, namespace: config.temporal.namespace, interceptors: clientInterceptors(), ...dataConverterFor(codecFromKeys(config.encryption.keys)) }) : undefined;
    let report: DeployReport;
    try {
      report = await checkDeploy({ store, catalog, ...(client ? { queryState: temporalStateReader(client) } : {}) }, manifest);
    } finally {
      await connection?.close();
    }
    if (o.json) printJson(report);
    else printReport(report);
    return report.wouldStall > 0 || (!o.certainOnly && report.mayStall > 0) ? EXIT.PROBLEM : EXIT.OK;
  });
}

async function reconcileCommand(o: { json?: boolean }): Promise<void> {
  const config = loadConfig();
  if (!config.temporal.address) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, 'pinflow reconcile needs TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE unless it is "default"): it asks Temporal about every open run');
  await withStore(async ({ store }) => {
    const connection = await Connection.connect({ address: config.temporal.address! });
    try {
      const client = new Client({ connection, namespace: config.temporal.namespace, ...dataConverterFor(codecFromKeys(config.encryption.keys)) });
      const reconciler = new Reconciler({ client, store, concurrency: config.reconcile.concurrency, ...(o.json ? {} : { log: (line: string) => console.log(line) }) });
      const totals = await reconciler.pass();
      console.log(o.json ? JSON.stringify(totals, null, 2) : `reconciler: ${describeTotals(totals)}`);
    } finally {
      await connection.close();
    }
  });
}

export function registerAdmin(program: Command): void {
  jsonOption(
    program
      .command('check-deploy')
      .usage('--rpcs <module> [--json] [--certain-only]')
      .description('which open runs would stall under the RPC registry in <module> (the code about to be deployed); changes nothing; exit 1 when any would (or, unless --certain-only, may) stall. DATABASE_URL; TEMPORAL_ADDRESS to ask each run where it is')
      .requiredOption('--rpcs <module>', 'the RPC module about to be deployed')
      .option('--certain-only', 'exit 1 only for runs that would certainly stall'),
  ).action(act(checkDeployCommand));

  program
    .command('contracts')
    .description("print the contract manifest of <module>: the body POST /deploy/check takes")
    .requiredOption('--rpcs <module>', 'the RPC module')
    .action(act((o: { rpcs: string }) => printJson({ contracts: manifestOf(loadRpcModule(o.rpcs).registry) })));

  jsonOption(
    program
      .command('reconcile')
      .description('one reconcile pass: close in the projection what Temporal closed (terminated, cancelled, timed out, deleted); a reset run follows its new execution. DATABASE_URL + TEMPORAL_ADDRESS'),
  ).action(act(reconcileCommand));

  program
    .command('encryption-key')
    .description('a new payload encryption key, as environment lines (PINFLOW_ENCRYPTION_KEY, PINFLOW_ENCRYPTION_KEY_ID)')
    .action(
      act(() => {
        const key = randomBytes(32);
        console.log(`PINFLOW_ENCRYPTION_KEY=${key.toString('base64')}\nPINFLOW_ENCRYPTION_KEY_ID=${defaultKeyId(key)}`);
      }),
    );

  const keys = program.command('keys').description('API keys, on the database directly (DATABASE_URL): the bootstrap path for the first admin key');
  jsonOption(
    keys
      .command('create')
      .description('create an API key and print it once (only its scrypt hash is stored)')
      .option('--scope <scopes>', `comma-separated: ${SCOPES.join(',')} (required)`)
      .option('--scopes <scopes>', 'the same as --scope')
      .option('--tenant <tenant>', 'bind the key to one tenant (read/operate only)')
      .requiredOption('--name <name>', 'what the key is for')
      .option('--by <who>', 'who (default cli:<OS user>)'),
  ).action(
    act((o: { scope?: string; scopes?: string; tenant?: string; name: string; by?: string; json?: boolean }) =>
      withStore(async ({ db }) => {
        const by = o.by ?? defaultBy();
        const scopeArg = o.scope ?? o.scopes;
        if (scopeArg === undefined) throw new UsageError(`--scope is required: comma-separated, of ${SCOPES.join(', ')}`);
        const scopes = scopeArg.split(',').map((x) => x.trim());
        const unknown = scopes.filter((x) => !SCOPES.includes(x as Scope));
        if (unknown.length) throw new PinflowError(ERROR_CODES.REQUEST_INVALID, `unknown scope(s) ${unknown.join(', ')}; allowed: ${SCOPES.join(', ')}`);
        const created = await new ApiKeys(db).create({ scopes: scopes as Scope[], tenant: o.tenant ?? null, name: o.name, by });
        await new AuditLog(db).append({ keyId: null, by, action: 'key.create', targetKind: 'key', targetIds: [created.id], tenant: created.tenant, outcome: 'accepted', request: { scopes: created.scopes, tenant: created.tenant, name: o.name } });
        if (o.json) printJson(created);
        else {
          console.log(`created key ${created.id} (${created.scopes.join(',')}, tenant ${created.tenant ?? 'all'}, ${created.name})`);
          console.log('the key, shown once; send it as "Authorization: Bearer <key>":');
          console.log(created.key);
        }
      }),
    ),
  );
  jsonOption(keys.command('list').description('the API keys: id, scopes, tenant, name, created, last used (never a secret)').option('--revoked', 'include revoked keys')).action(
    act((o: { revoked?: boolean; json?: boolean }) =>
      withStore(async ({ db }) => {
        const list = await new ApiKeys(db).list({ revoked: o.revoked ?? false });
        if (o.json) printJson(list);
        else for (const k of list) console.log(`${k.id}  ${k.scopes.join(',').padEnd(22)} ${(k.tenant ?? '*').padEnd(12)} ${k.name}  created ${k.createdAt} by ${k.createdBy}  last used ${k.lastUsedAt ?? 'never'}${k.revokedAt ? `  REVOKED ${k.revokedAt}` : ''}`);
      }),
    ),
  );
  keys
    .command('revoke')
    .description('revoke a key: refused by every API process within PINFLOW_AUTH_CACHE_MS')
    .argument('<id>')
    .option('--reason <why>', 'why (required: revoking is destructive)')
    .option('--by <who>', 'who (default cli:<OS user>)')
    .action(
      act((id: string, o: { reason?: string; by?: string }) =>
        withStore(async ({ db }) => {
          const by = o.by ?? defaultBy();
          if (!o.reason || o.reason.trim() === '') throw new PinflowError(ERROR_CODES.REASON_REQUIRED, 'revoking a key is destructive: --reason must say why');
          const revoked = await new ApiKeys(db).revoke(id, by, o.reason);
          await new AuditLog(db).append({ keyId: null, by, action: 'key.revoke', targetKind: 'key', targetIds: [id], tenant: revoked.tenant, reason: o.reason, outcome: 'accepted' });
          console.log(`revoked key ${id} at ${revoked.revokedAt}; every API process refuses it within PINFLOW_AUTH_CACHE_MS`);
        }),
      ),
    );

  jsonOption(
    program
      .command('audit')
      .description('the audit log, newest first (DATABASE_URL)')
      .option('--run <runId>', 'entries about this run')
      .option('--action <action>', 'e.g. run.cancel, key.revoke')
      .option('--key <keyId>', 'entries by this key id')
      .option('--outcome <outcome>', AUDIT_OUTCOMES.join(', '))
      .option('--since <iso>', 'at or after this time')
      .option('--limit <n>', 'at most this many (default 100)'),
  ).action(
    act((o: { run?: string; action?: string; key?: string; outcome?: string; since?: string; limit?: string; json?: boolean }) =>
      withStore(async ({ db }) => {
        const outcome = oneOf('--outcome', o.outcome, AUDIT_OUTCOMES as readonly AuditOutcome[]);
        // An empty value means no filter (`--key ''`), as before.
        const filter = { ...(o.run ? { runId: o.run } : {}), ...(o.action ? { action: o.action } : {}), ...(o.key ? { keyId: o.key } : {}), ...(o.since ? { since: o.since } : {}), ...(outcome ? { outcome } : {}) };
        const { entries } = await new AuditLog(db).list(filter, { limit: intOption('--limit', o.limit) ?? 100 });
        if (o.json) printJson(entries);
        else
          for (const e of entries) {
            const runs = e.runIds.length ? ` runs ${e.runIds.join(',')}` : '';
            console.log(`${e.at}  ${e.outcome.padEnd(8)} ${e.action.padEnd(20)} key ${e.keyId ?? '-'} by ${e.by ?? '-'}${e.targetIds.length ? ` on ${e.targetKind ?? ''} ${e.targetIds.join(',')}` : ''}${runs}${e.reason ? `  reason: ${e.reason}` : ''}  (${e.status ?? '-'})`);
          }
      }),
    ),
  );
}
