/**
 * `pinflow stalls ls|resolve`: stalled runs grouped by cause (GET /stalls),
 * and operator decisions on one run or on every run a filter selects, with a
 * dry run that changes nothing.
 */
import type { Command } from 'commander';
import { STALL_REASONS } from '../../graph/terminology';
import { act, apiOf, defaultBy, jsonOption } from '../command';
import { EXIT, UsageError } from '../exit';
import { jsonFile, oneOf, printJson, short, table, time } from '../format';
import { ApiError, seg, type ApiClient } from '../http';
import { resolveVersion } from './definitions';
import { pages, RUN_COLUMNS, type ListedRun } from './runs';

/** What `stalls resolve --action` takes: a decision (retry, skip) or a cancel. */
export const RESOLVE_ACTIONS = ['retry', 'skip', 'cancel'] as const;
type ResolveAction = (typeof RESOLVE_ACTIONS)[number];

/** Codes that mean the run no longer needs this decision (closed, gone or resolved meanwhile): passed over, not failed. */
const PASSED_OVER = new Set(['RUN_CLOSED', 'RUN_NOT_FOUND', 'RUN_NOT_STALLED']);

interface ResolveOptions {
  action: string;
  outputFile?: string;
  rpc?: string;
  reason?: string;
  definition?: string;
  version?: string;
  tenant?: string;
  note?: string;
  by?: string;
  dryRun?: boolean;
  json?: boolean;
}

interface ResolveResult {
  runId: string;
  ok: boolean;
  skipped?: boolean;
  action: ResolveAction;
  error?: { code: string; message: string };
}

/** One decision on one run: retry/skip through POST /runs/:id/decisions (for this stall only, when known), cancel through POST /runs/:id/cancel. */
async function resolveOne(api: ApiClient, runId: string, stallId: string | undefined, action: ResolveAction, by: string, note: string | undefined, output: unknown): Promise<void> {
  if (action === 'cancel') {
    await api.post(`/runs/${seg(runId)}/cancel`, { by, ...(note ? { reason: note } : {}) });
    return;
  }
  await api.post(`/runs/${seg(runId)}/decisions`, { action, by, ...(note ? { reason: note } : {}), ...(output !== undefined ? { output } : {}), ...(stallId ? { stallId } : {}) });
}

/**
 * The stalled runs a bulk resolve acts on. Read from GET /runs?status=STALLED
 * (narrowed by definition, version, tenant) and matched on each row's stall,
 * so the list the dry run prints is exactly the one the real run walks.
 */
async function stalledRuns(api: ApiClient, o: ResolveOptions): Promise<ListedRun[]> {
  const version = o.version === undefined ? undefined : await resolveVersion(api, '--version', o.version);
  const { items } = await pages('runs', (cursor) => api.get<{ runs: ListedRun[]; nextCursor: string | null }>('/runs', { status: 'STALLED', definition: o.definition, version, tenant: o.tenant, limit: 500, cursor }), undefined, true);
  return items.filter((r) => r.stall && r.stall.rpc === o.rpc && (o.reason === undefined || r.stall.reason === o.reason));
}

async function resolve(runId: string | undefined, o: ResolveOptions, cmd: Command): Promise<number> {
  const action = oneOf('--action', o.action, RESOLVE_ACTIONS)!;
  oneOf('--reason', o.reason, STALL_REASONS);
  if ((runId === undefined) === (o.rpc === undefined)) throw new UsageError('say which runs: a <runId>, or --rpc <rpc> [--reason <reason>] for every run stalled on it (not both)');
  if (runId !== undefined && (o.reason ?? o.definition ?? o.version ?? o.tenant) !== undefined) throw new UsageError('--reason, --definition, --version and --tenant select runs in bulk: use them with --rpc, not with a <runId>');
  if (o.outputFile !== undefined && action !== 'skip') throw new UsageError(`--output-file is the skipped step's output: it goes with --action skip, not ${action}`);
  const output = o.outputFile === undefined ? undefined : jsonFile('--output-file', o.outputFile);
  const by = o.by ?? defaultBy();
  const api = apiOf(cmd);

  if (runId !== undefined) {
    const run = await api.get<ListedRun>(`/runs/${seg(runId)}`);
    if (o.dryRun) {
      const would = run.status === 'STALLED' || action === 'cancel';
      if (o.json) printJson({ dryRun: true, action, runs: would ? [run] : [] });
      else console.log(would ? `dry run: would ${action} run ${run.id} (${run.status}${run.stall ? `: ${run.stall.reason} ${run.stall.rpc ?? ''}` : ''}); nothing changed` : `dry run: run ${run.id} is ${run.status}, not stalled: ${action} would be refused; nothing changed`);
      return EXIT.OK;
    }
    await resolveOne(api, run.id, run.stall?.id, action, by, o.note, output);
    if (o.json) printJson({ runId: run.id, ok: true, action });
    else console.log(action === 'cancel' ? `run ${run.id}: cancellation requested` : `run ${run.id}: ${action} decided${run.stall ? ` (stall ${run.stall.id})` : ''}`);
    return EXIT.OK;
  }

  const runs = await stalledRuns(api, o);
  if (o.dryRun) {
    if (o.json) printJson({ dryRun: true, action, count: runs.length, runs });
    else {
      console.log(`dry run: would ${action} ${runs.length} run(s) stalled on ${o.rpc}${o.reason ? ` (${o.reason})` : ''}; nothing changed`);
      if (runs.length) console.log(table(runs, RUN_COLUMNS));
    }
    return EXIT.OK;
  }
  const results: ResolveResult[] = [];
  for (const [i, run] of runs.entries()) {
    let result: ResolveResult;
    try {
      await resolveOne(api, run.id, run.stall?.id, action, by, o.note, output);
      result = { runId: run.id, ok: true, action };
    } catch (err) {
      // Nothing answered: the rest would fail the same way.
      if (!(err instanceof ApiError) || err.status === null) throw err;
      result = { runId: run.id, ok: false, action, error: { code: err.code, message: err.message }, ...(PASSED_OVER.has(err.code) ? { skipped: true } : {}) };
    }
    results.push(result);
    const what = result.ok ? `${action} ok` : `${result.skipped ? 'skipped' : 'FAILED'} ${result.error!.code}: ${result.error!.message}`;
    console.error(`[${i + 1}/${runs.length}] ${run.id}: ${what}`);
  }
  const summary = { applied: results.filter((r) => r.ok).length, skipped: results.filter((r) => r.skipped).length, failed: results.filter((r) => !r.ok && !r.skipped).length };
  if (o.json) printJson({ results, summary });
  else console.log(`${action} on ${runs.length} run(s) stalled on ${o.rpc}: applied ${summary.applied}, skipped ${summary.skipped}, failed ${summary.failed}`);
  return summary.failed > 0 ? EXIT.PROBLEM : EXIT.OK;
}

interface StallGroup {
  definition: string;
  version: string;
  versionSeq: number;
  rpc: string;
  reason: string;
  count: number;
  oldestSince: string;
  newestSince: string;
  sampleRunIds: string[];
}

export function registerStalls(program: Command): void {
  const stalls = program.command('stalls').description('stalled runs by cause, and operator decisions on them (HTTP API)');

  jsonOption(
    stalls
      .command('ls')
      .description('stalled runs grouped by definition, version, RPC and reason, largest first (GET /stalls)')
      .option('--definition <name>', 'of this definition')
      .option('--version <version>', 'of this version: a hash or <definition>@<seq>')
      .option('--tenant <tenant>', 'of this tenant')
      .option('--rpc <rpc>', 'stalled on this RPC')
      .option('--reason <reason>', `stalled for this reason: ${STALL_REASONS.join(', ')}`),
  ).action(
    act(async (o: { definition?: string; version?: string; tenant?: string; rpc?: string; reason?: string; json?: boolean }, cmd: Command) => {
      const api = apiOf(cmd);
      const res = await api.get<{ groups: StallGroup[]; total: number }>('/stalls', {
        definition: o.definition,
        version: o.version === undefined ? undefined : await resolveVersion(api, '--version', o.version),
        tenant: o.tenant,
        rpc: o.rpc,
        reason: oneOf('--reason', o.reason, STALL_REASONS),
      });
      if (o.json) printJson(res);
      else {
        console.log(
          table(res.groups, [
            ['DEFINITION', (g) => g.definition],
            ['VERSION', (g) => `${g.versionSeq} ${short(g.version)}`],
            ['RPC', (g) => g.rpc],
            ['REASON', (g) => g.reason],
            ['RUNS', (g) => g.count],
            ['OLDEST', (g) => time(g.oldestSince)],
            ['NEWEST', (g) => time(g.newestSince)],
            ['SAMPLE', (g) => g.sampleRunIds.join(' ')],
          ], '(no stalled runs)'),
        );
        console.log(`${res.total} stalled run(s)`);
      }
    }),
  );

  jsonOption(
    stalls
      .command('resolve')
      .description('decide on one stalled run, or on every run stalled on an RPC (--rpc); --dry-run lists them and changes nothing')
      .argument('[runId]', 'the run (or use --rpc for every run stalled on it)')
      .requiredOption('--action <action>', `${RESOLVE_ACTIONS.join(' | ')}`)
      .option('--output-file <file>', "with skip: the skipped step's output (JSON; - reads stdin), checked against its contract")
      .option('--rpc <rpc>', 'bulk: every run stalled on this RPC')
      .option('--reason <reason>', `bulk: only runs stalled for this reason (${STALL_REASONS.join(', ')})`)
      .option('--definition <name>', 'bulk: only runs of this definition')
      .option('--version <version>', 'bulk: only runs of this version (hash or <definition>@<seq>)')
      .option('--tenant <tenant>', 'bulk: only runs of this tenant')
      .option('--note <why>', 'why (recorded as the decision reason and in the audit log)')
      .option('--by <who>', 'who decides (default cli:<OS user>)')
      .option('--dry-run', 'list the runs it would act on; change nothing (exit 0)'),
  ).action(act(resolve));
}
