/**
 * `pinflow projection verify|rebuild`: the projection compared with Temporal
 * history, and rebuilt from it (client/projection-rebuild.ts). Temporal and
 * the database directly (TEMPORAL_ADDRESS, DATABASE_URL); rebuild writes its
 * own audit row.
 */
import { Client, Connection } from '@temporalio/client';
import type { Command } from 'commander';
import { loadConfig } from '../../app/config';
import { openStore } from '../../app/store';
import { AuditLog } from '../../client/audit';
import { DRIFT_TABLES, projectionPass, type Drift, type PassTotals, type RunRange, type RunResult } from '../../client/projection-rebuild';
import { codecFromKeys, dataConverterFor } from '../../codec/encryption';
import { durationMs } from '../../graph/duration';
import { ERROR_CODES, PinflowError } from '../../graph/errors';
import { act, defaultBy, jsonOption } from '../command';
import { EXIT, UsageError } from '../exit';
import { collect, intOption, printJson } from '../format';

interface PassOptions {
  since?: string;
  definition?: string;
  run: string[];
  concurrency?: string;
  by?: string;
  reason?: string;
  json?: boolean;
}

/** `--since`: an ISO time, or a duration back from now (`7d`, `12h`). */
export function sinceOption(value: string | undefined, now = Date.now()): string | undefined {
  if (value === undefined) return undefined;
  if (/^\d+(?:\.\d+)?\s*(ms|s|m|h|d)$/.test(value)) return new Date(now - durationMs(value)).toISOString();
  const t = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(t)) throw new UsageError(`--since ${JSON.stringify(value)} is not allowed; allowed: an ISO time (2026-11-01 or 2026-11-01T08:00:00Z) or a duration back from now (7d, 12h, 30m)`);
  return new Date(t).toISOString();
}

const show = (v: unknown): string => {
  const text = v === null || v === undefined ? '–' : typeof v === 'string' ? v : JSON.stringify(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
};

function printDrift(d: Drift): void {
  const where = d.key ? `${d.table} ${d.key}` : d.table;
  if (d.field === 'missing') console.log(`    ${where}: missing from the projection`);
  else if (d.field === 'extra') console.log(`    ${where}: in the projection, not in history`);
  else console.log(`    ${where}: ${d.field} is ${show(d.projection)}, history says ${show(d.history)}`);
}

function describe(t: PassTotals, write: boolean): string {
  const tables = DRIFT_TABLES.filter((k) => t.drift[k] > 0).map((k) => `${k} ${t.drift[k]}`);
  const drifted = write ? `rebuilt ${t.drifted} with drift` : `drift in ${t.drifted}`;
  return `checked ${t.checked} run(s): ${drifted}${tables.length ? ` (${tables.join(', ')})` : ''}, errors ${t.errors}, pruned by retention ${t.pruned}, unknown to Temporal ${t.unknownToTemporal.length}, in ${t.durationMs} ms`;
}

async function pass(write: boolean, o: PassOptions): Promise<number> {
  const range: RunRange = o.run.length ? { runIds: o.run } : { since: sinceOption(o.since), definition: o.definition };
  if (o.run.length && (o.since !== undefined || o.definition !== undefined)) throw new UsageError('--run names the runs: give it without --since and --definition');
  const concurrency = intOption('--concurrency', o.concurrency, 64) ?? 4;
  const config = loadConfig();
  const verb = write ? 'rebuild' : 'verify';
  if (!config.temporal.address) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, `pinflow projection ${verb} needs TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE unless it is "default"): it reads every run's Temporal history`);
  const { db } = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    const connection = await Connection.connect({ address: config.temporal.address });
    try {
      const client = new Client({ connection, namespace: config.temporal.namespace, ...dataConverterFor(codecFromKeys(config.encryption.keys)) });
      const results: RunResult[] = [];
      let done = 0;
      const totals = await projectionPass({ client, db }, range, {
        write,
        concurrency,
        onRun: (r) => {
          done++;
          if (o.json || r.drift.length) results.push(r);
          if (o.json) return;
          if (r.outcome === 'error') console.log(`  ${r.runId}: ERROR ${r.error ?? ''}`);
          else if (r.drift.length) {
            console.log(`  ${r.runId}: ${r.drift.length} difference(s)${write ? ', rebuilt' : ''}`);
            r.drift.forEach(printDrift);
          }
          if (done % 100 === 0) process.stderr.write(`${verb}: ${done} run(s) so far\n`);
        },
      });
      if (write) {
        await new AuditLog(db).append({
          keyId: null,
          by: o.by ?? defaultBy(),
          action: 'projection.rebuild',
          route: 'cli',
          targetKind: 'projection',
          targetIds: o.run.length ? o.run : [o.definition ?? '*'],
          runIds: results.filter((r) => r.drift.length).map((r) => r.runId).slice(0, 1000),
          reason: o.reason ?? null,
          outcome: 'accepted',
        });
      }
      if (o.json) printJson({ totals, runs: results.filter((r) => r.outcome !== 'ok') });
      else {
        if (totals.unknownToTemporal.length) console.log(`  not in Temporal (retention deleted them, or they never started): ${totals.unknownToTemporal.slice(0, 20).join(', ')}${totals.unknownToTemporal.length > 20 ? ', ...' : ''}`);
        console.log(`projection ${verb}: ${describe(totals, write)}`);
      }
      // verify: drift or a run that could not be read is a problem; rebuild: only a run it could not rebuild.
      return totals.errors > 0 || (!write && totals.drifted > 0) ? EXIT.PROBLEM : EXIT.OK;
    } finally {
      await connection.close();
    }
  } finally {
    await db.close();
  }
}

export function registerProjection(program: Command): void {
  const projection = program.command('projection').description("the projection checked against Temporal history and rebuilt from it; TEMPORAL_ADDRESS + DATABASE_URL");
  const common = (cmd: Command) =>
    jsonOption(
      cmd
        .option('--since <when>', 'runs started since (ISO time, or a duration back from now: 7d, 12h)')
        .option('--definition <name>', "runs of this definition")
        .option('--run <runId>', 'this run only (repeatable; instead of --since/--definition)', collect, [])
        .option('--concurrency <n>', 'runs read at once (default 4)'),
    );
  common(
    projection
      .command('verify')
      .description("compare each run's projection rows (run, details, steps, waits, decisions) with what its Temporal history says; changes nothing; exit 1 on drift"),
  ).action(act((o: PassOptions) => pass(false, o)));
  common(
    projection
      .command('rebuild')
      .description("rewrite each run's projection rows from its Temporal history (idempotent); audited")
      .option('--by <who>', 'who (default cli:<OS user>)')
      .option('--reason <why>', 'why'),
  ).action(act((o: PassOptions) => pass(true, o)));
}
