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
 *   pinflow events dead-letters list [--stream <stream>] [--json] [--limit <n>]
 *     The stream door's dead letters (<stream>:dead): id, reason, attempts, fields.
 *
 *   pinflow events dead-letters replay (--id <dead-letter id> ... | --all) [--stream <stream>]
 *     Put dead letters back on their stream once their cause is fixed; the
 *     running stream door submits them again. Each keeps the eventId it was
 *     first given, so an event already submitted is deduplicated.
 *
 *   pinflow reconcile [--json]
 *     One reconcile pass: every open run of the projection is compared with
 *     Temporal, and what Temporal closed (terminated, cancelled, timed out,
 *     deleted) is closed in the projection; a reset run's row follows its new
 *     execution. Prints one line per correction and the totals (checked,
 *     corrected by kind, errors). Needs TEMPORAL_ADDRESS. Exit 0 once the
 *     pass ran (runs it could not compare are counted in `errors`).
 *
 *   pinflow keys create --scope <read,operate,publish,admin> [--tenant <tenant>] --name <name> [--by <who>] [--json]
 *     Create an API key and print it once (`pf_<id>_<secret>`; only its scrypt
 *     hash is stored). The bootstrap path: it needs only the database, so it
 *     creates the first admin key. A key with --tenant holds read/operate only.
 *
 *   pinflow keys list [--revoked] [--json]
 *     The API keys: id, scopes, tenant, name, created, last used (never a secret).
 *
 *   pinflow keys revoke <id> --reason <why> [--by <who>]
 *     Revoke a key: refused by every API process within PINFLOW_AUTH_CACHE_MS.
 *
 *   pinflow audit [--run <runId>] [--action <action>] [--key <keyId>] [--outcome <outcome>] [--since <iso>] [--limit <n>] [--json]
 *     The audit log, newest first.
 *
 * The key and audit commands talk to the database directly (DATABASE_URL, or
 * PGlite in PINFLOW_DATA_DIR) and write their own audit rows (key id empty,
 * `by` from --by, default `cli:<OS user>`).
 *   pinflow batch create --action <cancel|retry|skip|migrate> --filter <field>=<value> ... --reason <why>
 *                        [--by <who>] [--params <json>] [--rate <per second>] [--concurrency <n>] [--dry-run] [--json]
 *     Act on every run the filter selects (the fields of GET /runs: status,
 *     definition, version, tenant, meta.<key>), as a durable batch that the
 *     API process works through in the background; --dry-run prints the count
 *     and a sample and creates nothing. --by defaults to $USER.
 *
 *   pinflow batch show <id> [--json] | pinflow batch list [--json]
 *     A batch's progress: selected, done, skipped and failed with reasons.
 *
 *   pinflow batch pause|resume|cancel <id> --reason <why> [--by <who>]
 *   pinflow rerun <runId> --from <step> [--occurrence <n>] [--version <hash>] [--map old=new ...] [--run-id <id>] [--by <who>] [--reason <why>]
 *     A new run at <step>, seeded with the state the run had just before it
 *     (read from its Temporal history). Through the HTTP API (PINFLOW_API_URL,
 *     PINFLOW_API_KEY), so it is authorised and audited like any other call.
 *
 *   pinflow replay <runId> [--input-file <file.json>] [--version <hash>] [--run-id <id>] [--by <who>] [--reason <why>]
 *     A new run from the start with the run's original input (from its
 *     Temporal history) or the edited input in <file.json>. Through the HTTP API.
 *   pinflow pause <runId> --by <who> [--reason <why>] [--json]
 *   pinflow pause --definition <name> --by <who> [--reason <why>] [--json]
 *   pinflow resume <runId> --by <who> [--reason <why>] [--json]
 *   pinflow resume --definition <name> --by <who> [--reason <why>] [--json]
 *     Pause a run at its next top-level step boundary, or a whole definition
 *     (its open runs pause, its new runs start paused); resume lifts it.
 *     Idempotent: says when the run or definition already was paused (or was
 *     not). Needs TEMPORAL_ADDRESS. Exit 0 when done; 1 when a run of a
 *     definition could not be paused or resumed (listed).
 *
 * Reads the projection from DATABASE_URL (or PGlite in PINFLOW_DATA_DIR);
 * check-deploy asks each open run where it is through TEMPORAL_ADDRESS (and
 * TEMPORAL_NAMESPACE) when set, else analyses every run with its position unknown;
 * the events commands read REDIS_URL and PINFLOW_EVENTS_STREAM.
 */
import { Client, Connection } from '@temporalio/client';
import { checkDeploy, manifestOf, temporalStateReader, type DeployReport } from '../client/check-deploy';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import { loadConfig } from '../app/config';
import { loadRpcModule } from '../app/rpc-module';
import { openStore } from '../app/store';
import { Pinflow } from '../client/pinflow';
import { describeTotals, Reconciler } from '../client/reconcile';
import type { BatchDryRun, BatchView, CreateBatchRequest } from '../client/batches';
import { listDeadLetters, replayDeadLetters } from '../client/redis-ingress';
import { clientInterceptors } from '../observability/tracing';
import { userInfo } from 'node:os';
import { AUDIT_OUTCOMES, SCOPES, type Scope } from '../client/api-schemas';
import { AuditLog, type AuditOutcome } from '../client/audit';
import { ApiKeys } from '../client/keys';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { codecFromKeys, dataConverterFor, defaultKeyId } from '../codec/encryption';

function usage(): never {
  console.error(
    [
      'usage: pinflow check-deploy --rpcs <module> [--json] [--certain-only]',
      '       pinflow contracts --rpcs <module>',
      '       pinflow reconcile [--json]',
      '       pinflow batch create --action <action> --filter <field>=<value> ... --reason <why> [--by <who>] [--params <json>] [--rate <n>] [--concurrency <n>] [--dry-run] [--json]',
      '       pinflow batch show <id> [--json] | pinflow batch list [--json]',
      '       pinflow batch pause|resume|cancel <id> --reason <why> [--by <who>]',
      '       pinflow rerun <runId> --from <step> [--occurrence <n>] [--version <hash>] [--map old=new ...] [--run-id <id>] [--by <who>] [--reason <why>]',
      '       pinflow replay <runId> [--input-file <file.json>] [--version <hash>] [--run-id <id>] [--by <who>] [--reason <why>]',
      '       pinflow encryption-key        (a new payload encryption key, as environment lines)',
      '       pinflow pause|resume (<runId> | --definition <name>) --by <who> [--reason <why>] [--json]',
      '       pinflow events dead-letters list [--stream <stream>] [--json] [--limit <n>]',
      '       pinflow events dead-letters replay (--id <dead-letter id> ... | --all) [--stream <stream>]',
      '       pinflow keys create --scope <read,operate,publish,admin> [--tenant <tenant>] --name <name> [--by <who>] [--json]',
      '       pinflow keys list [--revoked] [--json]',
      '       pinflow keys revoke <id> --reason <why> [--by <who>]',
      '       pinflow audit [--run <runId>] [--action <action>] [--key <keyId>] [--outcome <outcome>] [--since <iso>] [--limit <n>] [--json]',
    ].join('\n'),
  );
  process.exit(64);
}

/** `pinflow events dead-letters list|replay`. */
async function deadLetters(rest: string[]): Promise<number> {
  const [sub, action, ...args] = rest;
  if (sub !== 'dead-letters' || (action !== 'list' && action !== 'replay')) usage();
  const values = (name: string) => args.flatMap((a, i) => (a === name && args[i + 1] !== undefined ? [args[i + 1]!] : []));
  const config = loadConfig();
  if (!config.events.redisUrl) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, 'the events commands need REDIS_URL (the Redis of the stream door)');
  const stream = values('--stream')[0] ?? config.events.stream;
  if (action === 'list') {
    const limit = Number(values('--limit')[0] ?? 1000);
    const letters = await listDeadLetters({ url: config.events.redisUrl, stream, limit });
    if (args.includes('--json')) console.log(JSON.stringify(letters, null, 2));
    else {
      console.log(`${letters.length} dead letter(s) in ${stream}:dead`);
      for (const d of letters) console.log(`  ${d.id}  from ${d.sourceStream}/${d.sourceId}  ${d.code} after ${d.attempts} attempt(s): ${d.error}`);
    }
    return 0;
  }
  const ids = values('--id');
  if (ids.length === 0 && !args.includes('--all')) usage();
  const replayed = await replayDeadLetters({ url: config.events.redisUrl, stream, ...(ids.length > 0 ? { ids } : {}) });
  for (const r of replayed) console.log(`replayed ${r.deadLetterId} (first ${r.sourceId}) as ${r.messageId}`);
  console.log(`${replayed.length} dead letter(s) replayed to ${stream}`);
  return 0;
}

function printReport(report: DeployReport): void {
  console.log(`checked ${report.checkedRuns} open run(s): ${report.wouldStall} would stall, ${report.mayStall} may stall`);
  console.log(`  positions: ${report.liveRuns} live, ${report.unknownPositionRuns} unknown, ${report.unaffectedRuns} not asked (their version calls no changed RPC); ${report.durationMs} ms`);
  for (const i of report.impacts) {
    console.log(`  ${i.certain ? 'WOULD STALL' : 'may stall  '}  ${i.runId}  ${i.definition}@${i.version.slice(0, 12)}  step ${i.stepInstance}  ${i.reason}: ${i.message}${i.position === 'unknown' ? ' (position unknown)' : ''}`);
  }
}

/** `pinflow reconcile`: one pass, its corrections and totals printed. */
async function reconcile(rest: string[]): Promise<number> {
  const json = rest.includes('--json');
  const config = loadConfig();
  if (!config.temporal.address) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, 'pinflow reconcile needs TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE unless it is "default"): it asks Temporal about every open run');
  const { store, db } = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    const connection = await Connection.connect({ address: config.temporal.address });
    try {
      const client = new Client({ connection, namespace: config.temporal.namespace, ...dataConverterFor(codecFromKeys(config.encryption.keys)) });
      const reconciler = new Reconciler({ client, store, concurrency: config.reconcile.concurrency, ...(json ? {} : { log: (line: string) => console.log(line) }) });
      const totals = await reconciler.pass();
      console.log(json ? JSON.stringify(totals, null, 2) : `reconciler: ${describeTotals(totals)}`);
      return 0;
    } finally {
      await connection.close();
    }
  } finally {
    await db.close();
  }
}

/** The value after `name` in `args`. */
function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** `pinflow keys create|list|revoke`, on the database directly (the bootstrap path for the first admin key). */
async function keysCommand(rest: string[]): Promise<number> {
  const [action, ...args] = rest;
  if (action !== 'create' && action !== 'list' && action !== 'revoke') usage();
  const config = loadConfig();
  const { db } = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    const keys = new ApiKeys(db);
    const audit = new AuditLog(db);
    const by = option(args, '--by') ?? `cli:${userInfo().username}`;
    if (action === 'list') {
      const list = await keys.list({ revoked: args.includes('--revoked') });
      if (args.includes('--json')) console.log(JSON.stringify(list, null, 2));
      else for (const k of list) console.log(`${k.id}  ${k.scopes.join(',').padEnd(22)} ${(k.tenant ?? '*').padEnd(12)} ${k.name}  created ${k.createdAt} by ${k.createdBy}  last used ${k.lastUsedAt ?? 'never'}${k.revokedAt ? `  REVOKED ${k.revokedAt}` : ''}`);
      return 0;
    }
    if (action === 'create') {
      const scopeArg = option(args, '--scope') ?? option(args, '--scopes');
      const name = option(args, '--name');
      if (!scopeArg || !name) usage();
      const scopes = scopeArg.split(',').map((x) => x.trim());
      const unknown = scopes.filter((x) => !SCOPES.includes(x as Scope));
      if (unknown.length) throw new PinflowError(ERROR_CODES.REQUEST_INVALID, `unknown scope(s) ${unknown.join(', ')}; allowed: ${SCOPES.join(', ')}`);
      const created = await keys.create({ scopes: scopes as Scope[], tenant: option(args, '--tenant') ?? null, name, by });
      await audit.append({ keyId: null, by, action: 'key.create', targetKind: 'key', targetIds: [created.id], tenant: created.tenant, outcome: 'accepted', request: { scopes: created.scopes, tenant: created.tenant, name } });
      if (args.includes('--json')) console.log(JSON.stringify(created, null, 2));
      else {
        console.log(`created key ${created.id} (${created.scopes.join(',')}, tenant ${created.tenant ?? 'all'}, ${created.name})`);
        console.log('the key, shown once; send it as "Authorization: Bearer <key>":');
        console.log(created.key);
      }
      return 0;
    }
    const id = args[0];
    const reason = option(args, '--reason');
    if (!id || id.startsWith('--')) usage();
    if (!reason || reason.trim() === '') throw new PinflowError(ERROR_CODES.REASON_REQUIRED, 'revoking a key is destructive: --reason must say why');
    const revoked = await keys.revoke(id, by, reason);
    await audit.append({ keyId: null, by, action: 'key.revoke', targetKind: 'key', targetIds: [id], tenant: revoked.tenant, reason, outcome: 'accepted' });
    console.log(`revoked key ${id} at ${revoked.revokedAt}; every API process refuses it within PINFLOW_AUTH_CACHE_MS`);
    return 0;
  } finally {
    await db.close();
  }
}

/** `pinflow audit`: the audit log, newest first. */
async function auditCommand(args: string[]): Promise<number> {
  const config = loadConfig();
  const { db } = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    const outcome = option(args, '--outcome');
    if (outcome !== undefined && !AUDIT_OUTCOMES.includes(outcome as AuditOutcome)) throw new PinflowError(ERROR_CODES.REQUEST_INVALID, `--outcome ${outcome}: allowed ${AUDIT_OUTCOMES.join(', ')}`);
    const filter = {
      ...(option(args, '--run') ? { runId: option(args, '--run')! } : {}),
      ...(option(args, '--action') ? { action: option(args, '--action')! } : {}),
      ...(option(args, '--key') ? { keyId: option(args, '--key')! } : {}),
      ...(option(args, '--since') ? { since: option(args, '--since')! } : {}),
      ...(outcome ? { outcome: outcome as AuditOutcome } : {}),
    };
    const { entries } = await new AuditLog(db).list(filter, { limit: Number(option(args, '--limit') ?? 100) });
    if (args.includes('--json')) console.log(JSON.stringify(entries, null, 2));
    else {
      for (const e of entries) {
        const runs = e.runIds.length ? ` runs ${e.runIds.join(',')}` : '';
        console.log(`${e.at}  ${e.outcome.padEnd(8)} ${e.action.padEnd(20)} key ${e.keyId ?? '-'} by ${e.by ?? '-'}${e.targetIds.length ? ` on ${e.targetKind ?? ''} ${e.targetIds.join(',')}` : ''}${runs}${e.reason ? `  reason: ${e.reason}` : ''}  (${e.status ?? '-'})`);
      }
    }
    return 0;
  } finally {
    await db.close();
  }
}

function printBatch(b: BatchView): void {
  const p = b.progress;
  console.log(`batch ${b.id}: ${b.action} ${b.state}, by ${b.by}: ${b.reason}`);
  console.log(`  selected ${p.selected}: done ${p.done}, skipped ${p.skipped}, failed ${p.failed}, pending ${p.pending}, applying ${p.applying}; ${b.ratePerSecond}/s, concurrency ${b.concurrency}`);
  for (const r of b.skippedByReason) console.log(`  skipped ${r.count} ${r.code}${r.example ? `: ${r.example}` : ''}`);
  for (const r of b.failedByReason) console.log(`  failed ${r.count} ${r.code}${r.example ? `: ${r.example}` : ''}`);
}

/** `pinflow batch ...`: through the library on the projection's database; the API process does the work. */
async function batch(rest: string[]): Promise<number> {
  const [sub, ...args] = rest;
  const values = (name: string) => args.flatMap((a, i) => (a === name && args[i + 1] !== undefined ? [args[i + 1]!] : []));
  const one = (name: string) => values(name)[0];
  const json = args.includes('--json');
  const config = loadConfig();
  const { store, catalog, db } = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  // Creating and steering a batch needs only the database; the runner in the API process talks to Temporal.
  const connection = Connection.lazy({ address: config.temporal.address ?? '127.0.0.1:7233' });
  try {
    const pinflow = new Pinflow({ client: new Client({ connection, namespace: config.temporal.namespace }), store, catalog, rpcs: {} });
    const by = one('--by') ?? process.env.USER ?? 'cli';
    const show = (b: BatchView | BatchDryRun) => {
      if (json) console.log(JSON.stringify(b, null, 2));
      else if ('dryRun' in b) {
        console.log(`dry run: ${b.action} would act on ${b.count} run(s); nothing was created`);
        for (const r of b.sample) console.log(`  ${r.runId}  ${r.status}  ${r.definition}@${r.version.slice(0, 12)}  ${r.tenant}`);
      } else printBatch(b);
    };
    switch (sub) {
      case 'create': {
        const filter: Record<string, unknown> = {};
        const metadata: Record<string, string> = {};
        for (const f of values('--filter')) {
          const eq = f.indexOf('=');
          if (eq <= 0) throw new PinflowError(ERROR_CODES.REQUEST_INVALID, `--filter ${JSON.stringify(f)} is not <field>=<value>`, { field: 'filter', received: f });
          const key = f.slice(0, eq);
          if (key.startsWith('meta.')) metadata[key.slice(5)] = f.slice(eq + 1);
          else filter[key] = f.slice(eq + 1);
        }
        if (Object.keys(metadata).length) filter.metadata = metadata;
        const rate = one('--rate');
        const concurrency = one('--concurrency');
        const params = one('--params');
        const request = {
          action: one('--action'),
          filter,
          by,
          reason: one('--reason'),
          ...(params ? { params: JSON.parse(params) as unknown } : {}),
          ...(rate ? { ratePerSecond: Number(rate) } : {}),
          ...(concurrency ? { concurrency: Number(concurrency) } : {}),
          ...(args.includes('--dry-run') ? { dryRun: true } : {}),
        } as CreateBatchRequest;
        const created = await pinflow.batches.create(request);
        // The CLI acts on the database directly: it writes the audit row the API would (no key: `by` says who).
        if (!('dryRun' in created)) {
          await new AuditLog(db).append({ keyId: null, by, action: 'batch.create', route: 'cli', targetKind: 'batch', targetIds: [created.id], reason: request.reason ?? null, outcome: 'accepted', request: { action: created.action, filter: created.filter } });
        }
        show(created);
        return 0;
      }
      case 'show':
        show(await pinflow.batches.get(args[0] ?? usage()));
        return 0;
      case 'list': {
        const { batches } = await pinflow.batches.list();
        if (json) console.log(JSON.stringify(batches, null, 2));
        else for (const b of batches) printBatch(b);
        return 0;
      }
      case 'pause':
      case 'resume':
      case 'cancel': {
        const id = args[0] ?? usage();
        const changed = await pinflow.batches[sub](id, { by, reason: one('--reason') as string });
        await new AuditLog(db).append({ keyId: null, by, action: `batch.${sub}`, route: 'cli', targetKind: 'batch', targetIds: [id], reason: one('--reason') ?? null, outcome: 'accepted' });
        show(changed);
        return 0;
      }
      default:
        return usage();
    }
  } finally {
    await connection.close().catch(() => undefined);
    await db.close();
  }
}

/**
 * One call to the pinflow HTTP API at PINFLOW_API_URL (default
 * http://127.0.0.1:8080) with PINFLOW_API_KEY as the bearer key. Prints the
 * answer; a 4xx/5xx answer prints its error and gives exit code 1.
 */
async function apiCall(method: 'GET' | 'POST', path: string, body?: unknown): Promise<number> {
  const base = (process.env.PINFLOW_API_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const key = process.env.PINFLOW_API_KEY;
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(key ? { authorization: `Bearer ${key}` } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) {
    let message = text;
    try {
      const e = (JSON.parse(text) as { error?: { code: string; message: string } }).error;
      if (e) message = `${e.code}: ${e.message}`;
    } catch {
      // not JSON: print it as it came
    }
    console.error(`pinflow: ${res.status} ${message}`);
    return 1;
  }
  console.log(text ? JSON.stringify(JSON.parse(text), null, 2) : '');
  return 0;
}

/** `pinflow rerun` and `pinflow replay`, through the HTTP API. */
async function rerunOrReplay(command: 'rerun' | 'replay', rest: string[]): Promise<number> {
  const [runId, ...args] = rest;
  if (!runId || runId.startsWith('--')) usage();
  const values = (name: string) => args.flatMap((a, i) => (a === name && args[i + 1] !== undefined ? [args[i + 1]!] : []));
  const one = (name: string) => values(name)[0];
  const by = one('--by') ?? `cli:${userInfo().username}`;
  const common = {
    by,
    ...(one('--reason') ? { reason: one('--reason') } : {}),
    ...(one('--version') ? { targetVersion: one('--version') } : {}),
    ...(one('--run-id') ? { runId: one('--run-id') } : {}),
  };
  if (command === 'rerun') {
    const fromStep = one('--from');
    if (!fromStep) usage();
    const mapping = Object.fromEntries(values('--map').map((m) => m.split('=', 2) as [string, string]));
    const occurrence = one('--occurrence');
    return apiCall('POST', `/runs/${encodeURIComponent(runId)}/rerun`, {
      fromStep,
      ...common,
      ...(occurrence ? { occurrence: Number(occurrence) } : {}),
      ...(Object.keys(mapping).length ? { mapping } : {}),
    });
  }
  const file = one('--input-file');
  return apiCall('POST', `/runs/${encodeURIComponent(runId)}/replay`, { ...common, ...(file ? { input: JSON.parse(readFileSync(file, 'utf8')) as unknown } : {}) });
}

/** `pinflow pause|resume <runId>` and `pinflow pause|resume --definition <name>`. */
async function pauseOrResume(command: 'pause' | 'resume', rest: string[]): Promise<number> {
  const value = (name: string) => {
    const i = rest.indexOf(name);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  const definition = value('--definition');
  const runId = rest.find((a, i) => !a.startsWith('--') && (i === 0 || !['--definition', '--by', '--reason'].includes(rest[i - 1]!)));
  const by = value('--by') ?? process.env.USER;
  const reason = value('--reason');
  if ((definition === undefined) === (runId === undefined) || !by) usage();
  const config = loadConfig();
  if (!config.temporal.address) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, `pinflow ${command} needs TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE unless it is "default"): the run is paused in Temporal`);
  const { store, catalog, db } = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    const connection = await Connection.connect({ address: config.temporal.address });
    try {
      const client = new Client({ connection, namespace: config.temporal.namespace, interceptors: clientInterceptors(), ...dataConverterFor(codecFromKeys(config.encryption.keys)) });
      const pinflow = new Pinflow({ client, store, catalog, rpcs: {} });
      const request = { by, ...(reason ? { reason } : {}) };
      const json = rest.includes('--json');
      const audit = (action: string, target: { kind: string; id: string }) =>
        new AuditLog(db).append({ keyId: null, by, action, route: 'cli', targetKind: target.kind, targetIds: [target.id], runIds: target.kind === 'run' ? [target.id] : [], reason: reason ?? null, outcome: 'accepted' });
      if (runId !== undefined) {
        if (command === 'pause') {
          const res = await pinflow.pause(runId, request);
          console.log(json ? JSON.stringify(res, null, 2) : res.alreadyPaused ? `run ${runId} was already paused (since ${res.pause.since} by ${res.pause.by})` : `run ${runId} pauses at its next top-level step boundary`);
        } else {
          const res = await pinflow.resume(runId, request);
          console.log(json ? JSON.stringify(res, null, 2) : res.wasPaused ? `run ${runId} resumed` : `run ${runId} was not paused`);
        }
        // The CLI acts on Temporal directly: it writes the audit row the API would (no key: `by` says who).
        await audit(`run.${command}`, { kind: 'run', id: runId });
        return 0;
      }
      const res = command === 'pause' ? await pinflow.pauseDefinition(definition!, request) : await pinflow.resumeDefinition(definition!, request);
      await audit(`definition.${command}`, { kind: 'definition', id: definition! });
      if (json) console.log(JSON.stringify(res, null, 2));
      else {
        const was = 'alreadyPaused' in res ? (res.alreadyPaused ? 'was already paused' : 'paused') : res.wasPaused ? 'resumed' : 'was not paused';
        console.log(`definition ${definition} ${was}; ${res.runs.length} open run(s):`);
        for (const r of res.runs) console.log(`  ${r.runId}  ${r.ok ? (r.changed ? `${command}d` : `already ${command === 'pause' ? 'paused' : 'running'}`) : `FAILED ${r.error?.code}: ${r.error?.message}`}`);
      }
      return res.runs.every((r) => r.ok) ? 0 : 1;
    } finally {
      await connection.close();
    }
  } finally {
    await db.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'keys') return keysCommand(rest);
  if (command === 'audit') return auditCommand(rest);
  if (command === 'rerun' || command === 'replay') return rerunOrReplay(command, rest);
  if (command === 'events') return deadLetters(rest);
  if (command === 'reconcile') return reconcile(rest);
  if (command === 'batch') return batch(rest);
  if (command === 'encryption-key') {
    // A fresh AES-256 key for PINFLOW_ENCRYPTION_KEY, and its default id (README: Sensitive fields and payload encryption).
    const key = randomBytes(32);
    console.log(`PINFLOW_ENCRYPTION_KEY=${key.toString('base64')}\nPINFLOW_ENCRYPTION_KEY_ID=${defaultKeyId(key)}`);
    return 0;
  }
  if (command === 'pause' || command === 'resume') return pauseOrResume(command, rest);
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
    // With TEMPORAL_ADDRESS each run is asked where it is; without, every position is unknown.
    const connection = config.temporal.address ? await Connection.connect({ address: config.temporal.address }) : undefined;
    const client = connection ? new Client({ connection, namespace: config.temporal.namespace, interceptors: clientInterceptors(), ...dataConverterFor(codecFromKeys(config.encryption.keys)) }) : undefined;
    let report: DeployReport;
    try {
      report = await checkDeploy({ store, catalog, ...(client ? { queryState: temporalStateReader(client) } : {}) }, manifest);
    } finally {
      await connection?.close();
    }
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
