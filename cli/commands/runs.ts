/**
 * `pinflow runs ls|show|cancel|migrate`: the run list (every filter of
 * GET /runs), one run in full, and the two run actions an operator takes most.
 */
import type { Command } from 'commander';
import { ATTENTION_REASONS, RUN_STATUSES } from '../../graph/terminology';
import type { RunDetail, RunSummary } from '../../projection/store';
import { act, apiOf, defaultBy, jsonOption } from '../command';
import { UsageError } from '../exit';
import { collect, fields, intOption, oneOf, pairs, printJson, short, table, time, timeOption, type Column } from '../format';
import { seg, type ApiClient, type QueryValue } from '../http';
import { resolveVersion } from './definitions';

/** The states `--step-state` takes (GET /runs `stepState`): where the run is now, or what the step did. */
export const STEP_STATES = ['running', 'waiting', 'stalled', 'passed', 'failed', 'skipped'] as const;
const STALL_REASON_VALUES = ['rpc_missing', 'input_incompatible', 'output_incompatible'] as const;

export type ListedRun = RunSummary & { temporalUiUrl?: string };

interface RunsLsOptions {
  status?: string;
  definition?: string;
  version?: string;
  tenant?: string;
  meta: string[];
  since?: string;
  until?: string;
  search?: string;
  attention?: string;
  stallRpc?: string;
  stallReason?: string;
  step?: string;
  stepState?: string;
  limit?: string;
  cursor?: string;
  all?: boolean;
  json?: boolean;
}

/** GET /runs's query from the options (checked here, so a typo is a usage error before any request). */
async function runsQuery(api: ApiClient, o: RunsLsOptions): Promise<Record<string, QueryValue>> {
  if ((o.step === undefined) !== (o.stepState === undefined)) throw new UsageError('--step and --step-state go together: the runs at step <id> in state <state>');
  const meta = pairs('--meta', o.meta);
  return {
    status: oneOf('--status', o.status, RUN_STATUSES),
    definition: o.definition,
    version: o.version === undefined ? undefined : await resolveVersion(api, '--version', o.version),
    tenant: o.tenant,
    attention: oneOf('--attention', o.attention, ATTENTION_REASONS),
    startedAfter: timeOption('--since', o.since),
    startedBefore: timeOption('--until', o.until),
    q: o.search,
    stallRpc: o.stallRpc,
    stallReason: oneOf('--stall-reason', o.stallReason, STALL_REASON_VALUES),
    step: o.step,
    stepState: oneOf('--step-state', o.stepState, STEP_STATES),
    limit: intOption('--limit', o.limit, 500),
    cursor: o.cursor,
    ...Object.fromEntries(Object.entries(meta).map(([k, v]) => [`meta.${k}`, v])),
  };
}

/** Every page of a cursor-paged list (`all`), or the first. */
export async function pages<T, K extends string>(
  key: K,
  fetchPage: (cursor: string | undefined) => Promise<Record<K, T[]> & { nextCursor: string | null }>,
  first: string | undefined,
  all: boolean,
): Promise<{ items: T[]; nextCursor: string | null }> {
  const items: T[] = [];
  let cursor = first;
  for (;;) {
    const page = await fetchPage(cursor);
    items.push(...page[key]);
    if (!all || !page.nextCursor) return { items, nextCursor: page.nextCursor };
    cursor = page.nextCursor;
  }
}

/** What a run is doing or why it stopped, in a few words. */
function note(r: RunSummary): string {
  if (r.stall) return `${r.stall.reason} ${r.stall.rpc ?? ''}`.trim();
  if (r.pause) return `paused by ${r.pause.by}${r.pause.reason ? `: ${r.pause.reason}` : ''}`;
  return r.errorSummary ?? '';
}

export const RUN_COLUMNS: Array<Column<RunSummary>> = [
  ['RUN', (r) => r.id],
  ['STATUS', (r) => r.status],
  ['DEFINITION', (r) => r.definition],
  ['VERSION', (r) => short(r.version)],
  ['TENANT', (r) => r.tenant],
  ['STEP', (r) => r.currentStep],
  ['STARTED', (r) => time(r.startedAt)],
  ['NOTE', note],
];

/** The more hint on stderr (stdout stays the table). */
export function moreHint(nextCursor: string | null): void {
  if (nextCursor) console.error(`more: --all, or --cursor ${nextCursor}`);
}

type RunView = RunDetail & { temporalUiUrl: string; waits: Array<{ waitId: string; stepInstance: string; event: string; correlationKey: string; status: string; tenant: string }>; attention?: Array<{ reason: string; detail: Record<string, unknown>; since: string }> };

function printRun(r: RunView): void {
  console.log(
    fields([
      ['run', r.id],
      ['status', r.status],
      ['definition', `${r.definition} @ ${r.version}`],
      ['tenant', r.tenant],
      ['current step', r.currentStep],
      ['started', time(r.startedAt)],
      ['updated', time(r.updatedAt)],
      ['closed', time(r.closedAt)],
      ...(r.parentRunId ? ([['parent', `${r.parentRunId} (step ${r.parentStep ?? '-'})`]] as Array<[string, string]>) : []),
      ...(r.origin ? ([['origin', `${r.origin.kind} of ${r.origin.sourceRunId}${'fromStep' in r.origin && r.origin.fromStep ? ` from ${String(r.origin.fromStep)}` : ''}`]] as Array<[string, string]>) : []),
      ...(r.errorSummary ? ([['error', r.errorSummary]] as Array<[string, string]>) : []),
      ['temporal', r.temporalUiUrl],
    ]),
  );
  if (r.stall) {
    const message = (r.stall.details as { message?: string } | null)?.message;
    console.log(`\nSTALLED since ${time(r.stall.since)}: ${r.stall.reason} on RPC ${r.stall.rpc ?? '-'} at step ${r.stall.stepInstance ?? '-'} (stall ${r.stall.id})`);
    if (message) console.log(`  ${message}`);
    console.log(`  resolve: pinflow stalls resolve ${r.id} --action retry|skip|cancel`);
  }
  if (r.pause) console.log(`\nPAUSED since ${time(r.pause.since)} by ${r.pause.by}${r.pause.reason ? `: ${r.pause.reason}` : ''}${r.pause.before ? ` (resumes at ${r.pause.before})` : ''}`);
  for (const a of r.attention ?? []) console.log(`\nNEEDS ATTENTION since ${time(a.since)}: ${a.reason} ${JSON.stringify(a.detail)}`);
  console.log('\nsteps:');
  console.log(
    table(r.steps, [
      ['INSTANCE', (s) => s.stepInstance],
      ['TYPE', (s) => s.stepType],
      ['STATUS', (s) => s.status],
      ['ATTEMPT', (s) => s.attempt],
      ['STARTED', (s) => time(s.startedAt)],
      ['FINISHED', (s) => time(s.finishedAt)],
      ['ERROR', (s) => (s.error ? `${s.error.type}: ${s.error.message}` : '')],
    ]),
  );
  if (r.waits.length) {
    console.log('\nwaits:');
    console.log(table(r.waits, [['WAIT', (w) => w.waitId], ['STEP', (w) => w.stepInstance], ['EVENT', (w) => w.event], ['KEY', (w) => w.correlationKey], ['STATUS', (w) => w.status]]));
  }
  if (r.lineage.length) {
    console.log('\nlineage (earlier versions):');
    console.log(table(r.lineage, [['VERSION', (l) => short(l.version)], ['UP TO', (l) => l.upTo], ['MIGRATED', (l) => time(l.migratedAt)], ['BY', (l) => l.by]]));
  }
  if (r.decisions.length) {
    console.log('\ndecisions:');
    console.log(table(r.decisions, [['ACTION', (d) => d.action], ['BY', (d) => d.by], ['AT', (d) => time(d.decidedAt)], ['STALL', (d) => d.stallId], ['REASON', (d) => d.reason]]));
  }
  if (r.children.length) {
    console.log('\nchildren:');
    console.log(table(r.children, RUN_COLUMNS));
  }
  if (r.reruns.length) {
    console.log('\nreruns and replays:');
    console.log(table(r.reruns, [['RUN', (x) => x.runId], ['KIND', (x) => x.kind], ['FROM', (x) => x.fromStep], ['STATUS', (x) => x.status], ['CREATED', (x) => time(x.createdAt)]]));
  }
}

export function registerRuns(program: Command): void {
  const runs = program.command('runs').description('list, show, cancel and migrate runs (HTTP API)');

  jsonOption(
    runs
      .command('ls')
      .description('list runs, newest first (GET /runs)')
      .option('--status <status>', `one of ${RUN_STATUSES.join(', ')}`)
      .option('--definition <name>', 'runs of this definition')
      .option('--version <version>', 'runs pinned to this version: a hash or <definition>@<seq>')
      .option('--tenant <tenant>', 'runs of this tenant')
      .option('--meta <key=value>', 'metadata equals (repeatable, up to 5)', collect, [])
      .option('--since <time>', 'started at or after: ISO 8601, or a duration ago (30m, 2h, 7d)')
      .option('--until <time>', 'started before: ISO 8601, or a duration ago')
      .option('--search <text>', 'run id contains (case-insensitive)')
      .option('--attention <reason>', `needs attention now: ${ATTENTION_REASONS.join(', ')}`)
      .option('--stall-rpc <rpc>', 'stalled on this RPC')
      .option('--stall-reason <reason>', `stalled for this reason: ${STALL_REASON_VALUES.join(', ')}`)
      .option('--step <stepId>', 'with --step-state: runs at or through this step')
      .option('--step-state <state>', `with --step: ${STEP_STATES.join(', ')}`)
      .option('--limit <n>', 'page size, 1..500 (API default 50)')
      .option('--cursor <cursor>', 'start at this page (the nextCursor of the previous one)')
      .option('--all', 'follow the cursors: every matching run'),
  ).action(
    act(async (o: RunsLsOptions, cmd: Command) => {
      const api = apiOf(cmd);
      const query = await runsQuery(api, o);
      const { items, nextCursor } = await pages('runs', (cursor) => api.get<{ runs: ListedRun[]; nextCursor: string | null }>('/runs', { ...query, cursor }), o.cursor, o.all ?? false);
      if (o.json) printJson({ runs: items, nextCursor });
      else {
        console.log(table(items, RUN_COLUMNS, '(no runs match)'));
        moreHint(nextCursor);
      }
    }),
  );

  jsonOption(runs.command('show').description('one run: summary, stall, steps, waits, lineage, decisions (GET /runs/:id)').argument('<runId>')).action(
    act(async (runId: string, o: { json?: boolean }, cmd: Command) => {
      const run = await apiOf(cmd).get<RunView>(`/runs/${seg(runId)}`);
      if (o.json) printJson(run);
      else printRun(run);
    }),
  );

  jsonOption(
    runs
      .command('cancel')
      .description('cancel a run in Temporal and record who and why (POST /runs/:id/cancel)')
      .argument('<runId>')
      .option('--by <who>', 'who cancels (default cli:<OS user>)')
      .option('--reason <why>', 'why (recorded with the decision and in the audit log)'),
  ).action(
    act(async (runId: string, o: { by?: string; reason?: string; json?: boolean }, cmd: Command) => {
      const res = await apiOf(cmd).post<{ runId: string; cancellation: string }>(`/runs/${seg(runId)}/cancel`, { by: o.by ?? defaultBy(), ...(o.reason ? { reason: o.reason } : {}) });
      if (o.json) printJson(res);
      else console.log(`run ${res.runId}: cancellation ${res.cancellation}`);
    }),
  );

  jsonOption(
    runs
      .command('migrate')
      .description('migrate a stalled or waiting run to another version (POST /runs/:id/migrate)')
      .argument('<runId>')
      .requiredOption('--to <version>', 'the target version: a hash or <definition>@<seq>')
      .option('--map <old=new>', 'renamed step: old step id = new step id (repeatable)', collect, [])
      .option('--by <who>', 'who migrates (default cli:<OS user>)')
      .option('--reason <why>', 'why'),
  ).action(
    act(async (runId: string, o: { to: string; map: string[]; by?: string; reason?: string; json?: boolean }, cmd: Command) => {
      const api = apiOf(cmd);
      const mapping = pairs('--map', o.map);
      const targetVersion = await resolveVersion(api, '--to', o.to);
      const res = await api.post<{ at: string; carried: string[]; dropped: string[] }>(`/runs/${seg(runId)}/migrate`, {
        targetVersion,
        by: o.by ?? defaultBy(),
        ...(Object.keys(mapping).length ? { mapping } : {}),
        ...(o.reason ? { reason: o.reason } : {}),
      });
      if (o.json) printJson(res);
      else console.log(`run ${runId} migrated to ${short(targetVersion)} at ${res.at}; carried ${res.carried.join(', ') || '-'}; dropped ${res.dropped.join(', ') || '-'}`);
    }),
  );
}
