/**
 * `pinflow retention policies|set|unset|preview|sweep|sweeps|namespace` and
 * `pinflow runs hold|release`: retention policies, what is due, sweeps, the
 * Temporal namespace's retention and legal holds, over the HTTP API
 * (client/retention.ts; README "Data lifecycle").
 */
import type { Command } from 'commander';
import type { NamespaceRetention, RetentionPolicy, RetentionPreview, SweepView } from '../../client/retention';
import { RETENTION_STATUSES } from '../../client/retention';
import { act, apiOf, defaultBy, jsonOption } from '../command';
import { EXIT, UsageError } from '../exit';
import { fields, intOption, oneOf, printJson, table, time } from '../format';
import { seg } from '../http';

/** `--days`: a positive integer, or `forever` (null). */
function daysOption(value: string): number | null {
  if (value === 'forever') return null;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 36_500) throw new UsageError(`--days ${JSON.stringify(value)} is not allowed; allowed: an integer from 1 to 36500, or forever`);
  return Number(value);
}

function printNamespace(ns: NamespaceRetention): void {
  console.log(`${ns.ok ? 'namespace' : 'WARNING: namespace'} ${ns.namespace}: keeps histories ${ns.days ?? '?'} days; the policies need ${ns.neededDays ?? '-'}${ns.forever ? ' (a policy keeps forever)' : ''}`);
  if (!ns.ok) console.log(`  ${ns.message}`);
}

function printSweep(s: SweepView): void {
  const p = s.progress;
  console.log(
    fields([
      ['sweep', `${s.id} ${s.state}${s.state === 'RUNNING' ? ` (${s.phase})` : ''}`],
      ['by', `${s.by}${s.reason ? `: ${s.reason}` : ''}`],
      ['as of', time(s.asOf)],
      ['runs', `${p.runsDeleted} deleted (${p.stepsDeleted} step rows) of ${p.runsExamined} examined`],
      ['exempt', `${p.exempt.legalHold} legal hold, ${p.exempt.openChildren} open children, ${p.exempt.retain} retain`],
      ['events', `${p.eventsDeleted} deleted (${p.deliveriesDeleted} deliveries with runs and events), ${p.eventsExempt} kept for open waits or routing`],
      ['batches', `${p.batches} of ${s.batchSize}, ${s.pauseMs} ms apart; ${s.durationSeconds} s`],
      ...(s.error ? ([['error', s.error]] as Array<[string, string]>) : []),
    ]),
  );
}

export function registerRetention(program: Command): void {
  const retention = program.command('retention').description('retention policies, what is due, sweeps and the namespace retention (HTTP API)');

  jsonOption(retention.command('policies').alias('list').description('the retention rules and the namespace check (GET /retention/policies)')).action(
    act(async (o: { json?: boolean }, cmd: Command) => {
      const res = await apiOf(cmd).get<{ policies: RetentionPolicy[]; namespace: NamespaceRetention }>('/retention/policies');
      if (o.json) return printJson(res);
      console.log(
        table(res.policies, [
          ['SUBJECT', (p) => p.subject],
          ['DEFINITION', (p) => p.definition ?? '(any)'],
          ['STATUS', (p) => (p.subject === 'events' ? '' : (p.status ?? '(any closed)'))],
          ['DAYS', (p) => p.days ?? 'forever'],
          ['UPDATED', (p) => `${time(p.updatedAt)} by ${p.updatedBy}`],
        ]),
      );
      printNamespace(res.namespace);
    }),
  );

  const rule = (cmd: Command) =>
    cmd
      .option('--definition <name>', 'the rule of one definition (default: every definition)')
      .option('--status <status>', `the rule of one closed status: ${RETENTION_STATUSES.join(', ')} (default: every closed status)`)
      .option('--events', 'the event log and its deliveries instead of runs')
      .option('--by <who>', 'who (default cli:<OS user>)')
      .option('--reason <why>', 'why (in the audit log)');
  interface RuleOptions {
    definition?: string;
    status?: string;
    events?: boolean;
    by?: string;
    reason?: string;
    json?: boolean;
  }
  const ruleOf = (o: RuleOptions) => ({
    ...(o.events ? { subject: 'events' } : {}),
    ...(o.definition !== undefined ? { definition: o.definition } : {}),
    ...(o.status !== undefined ? { status: oneOf('--status', o.status, RETENTION_STATUSES) } : {}),
  });

  jsonOption(rule(retention.command('set').description('set one rule (PUT /retention/policies)').requiredOption('--days <n>', 'days after close (receipt, for --events), or forever'))).action(
    act(async (o: RuleOptions & { days: string }, cmd: Command) => {
      const p = await apiOf(cmd).request<RetentionPolicy>('PUT', '/retention/policies', {
        body: { ...ruleOf(o), days: daysOption(o.days), by: o.by ?? defaultBy(), ...(o.reason ? { reason: o.reason } : {}) },
      });
      if (o.json) return printJson(p);
      console.log(`retention: ${p.subject} ${p.definition ?? '(any definition)'} ${p.subject === 'runs' ? (p.status ?? '(any closed status)') : ''}: ${p.days ?? 'forever'}${p.days ? ' days' : ''}`);
    }),
  );

  jsonOption(rule(retention.command('unset').description('remove one rule; the next less specific one applies (DELETE /retention/policies)'))).action(
    act(async (o: RuleOptions, cmd: Command) => {
      const p = await apiOf(cmd).request<RetentionPolicy>('DELETE', '/retention/policies', {
        query: { ...ruleOf(o), by: o.by ?? defaultBy(), ...(o.reason ? { reason: o.reason } : {}) },
      });
      if (o.json) return printJson(p);
      console.log(`retention: removed the rule of ${p.definition ?? '(any definition)'} ${p.status ?? '(any closed status)'} (${p.days ?? 'forever'})`);
    }),
  );

  jsonOption(retention.command('preview').description('what a sweep would delete now; changes nothing (GET /retention/preview)')).action(
    act(async (o: { json?: boolean }, cmd: Command) => {
      const p = await apiOf(cmd).get<RetentionPreview>('/retention/preview');
      if (o.json) return printJson(p);
      console.log(
        table(p.runs.groups, [
          ['DEFINITION', (g) => g.definition],
          ['STATUS', (g) => g.status],
          ['DUE', (g) => g.due],
          ['EXEMPT', (g) => g.exempt],
          ['OLDEST', (g) => time(g.oldestClosedAt)],
          ['NEWEST', (g) => time(g.newestClosedAt)],
        ], '(no run is due)'),
      );
      const e = p.runs.exempt;
      console.log(`runs: ${p.runs.due} due, ${p.runs.prunable} to delete; exempt ${e.legalHold} legal hold, ${e.openChildren} open children, ${e.retain} retain`);
      console.log(`events: ${p.events.days === null ? 'kept forever' : `${p.events.due} older than ${p.events.days} days, ${p.events.exempt} kept (buffered, routing, or an open wait may look back to them), ${p.events.deliveries} deliveries`}`);
      if (p.namespace) printNamespace(p.namespace);
    }),
  );

  jsonOption(
    retention
      .command('sweep')
      .description('start a sweep now (POST /retention/sweeps); --wait follows it to the end')
      .option('--batch-size <n>', 'runs (events) per batch')
      .option('--pause-ms <n>', 'pause between batches')
      .option('--wait', 'wait until the sweep is over; exit 1 if it failed')
      .option('--by <who>', 'who (default cli:<OS user>)')
      .option('--reason <why>', 'why (in the audit log)'),
  ).action(
    act(async (o: { batchSize?: string; pauseMs?: string; wait?: boolean; by?: string; reason?: string; json?: boolean }, cmd: Command) => {
      const api = apiOf(cmd);
      const pauseMs = o.pauseMs === '0' ? 0 : intOption('--pause-ms', o.pauseMs, 60_000);
      let s = await api.post<SweepView>('/retention/sweeps', {
        by: o.by ?? defaultBy(),
        ...(o.reason ? { reason: o.reason } : {}),
        ...(o.batchSize ? { batchSize: intOption('--batch-size', o.batchSize, 10_000) } : {}),
        ...(pauseMs !== undefined ? { pauseMs } : {}),
      });
      while (o.wait && s.state === 'RUNNING') {
        await new Promise((r) => setTimeout(r, 500));
        s = await api.get<SweepView>(`/retention/sweeps/${seg(s.id)}`);
      }
      if (o.json) printJson(s);
      else printSweep(s);
      return s.state === 'FAILED' ? EXIT.PROBLEM : EXIT.OK;
    }),
  );

  jsonOption(
    retention
      .command('sweeps')
      .description('sweeps, newest first, or one sweep (GET /retention/sweeps[/:id])')
      .argument('[sweepId]')
      .option('--limit <n>', 'how many (default 20)'),
  ).action(
    act(async (id: string | undefined, o: { limit?: string; json?: boolean }, cmd: Command) => {
      const api = apiOf(cmd);
      if (id !== undefined) {
        const s = await api.get<SweepView>(`/retention/sweeps/${seg(id)}`);
        return o.json ? printJson(s) : printSweep(s);
      }
      const res = await api.get<{ sweeps: SweepView[] }>('/retention/sweeps', { limit: intOption('--limit', o.limit, 500) });
      if (o.json) return printJson(res);
      console.log(
        table(res.sweeps, [
          ['ID', (s) => s.id],
          ['STATE', (s) => s.state],
          ['STARTED', (s) => time(s.startedAt)],
          ['BY', (s) => s.by],
          ['RUNS', (s) => s.progress.runsDeleted],
          ['STEPS', (s) => s.progress.stepsDeleted],
          ['EVENTS', (s) => s.progress.eventsDeleted],
          ['SECONDS', (s) => s.durationSeconds],
        ]),
      );
    }),
  );

  jsonOption(
    retention
      .command('namespace')
      .description("the Temporal namespace's retention against what the policies need (GET /retention/namespace); --apply sets it (POST)")
      .option('--apply', 'set the namespace retention to what the policies need')
      .option('--by <who>', 'who (default cli:<OS user>)')
      .option('--reason <why>', 'why (in the audit log)'),
  ).action(
    act(async (o: { apply?: boolean; by?: string; reason?: string; json?: boolean }, cmd: Command) => {
      const api = apiOf(cmd);
      const ns = o.apply
        ? await api.post<NamespaceRetention & { previousDays: number | null }>('/retention/namespace', { by: o.by ?? defaultBy(), ...(o.reason ? { reason: o.reason } : {}) })
        : await api.get<NamespaceRetention>('/retention/namespace');
      if (o.json) printJson(ns);
      else printNamespace(ns);
      return ns.ok ? EXIT.OK : EXIT.PROBLEM;
    }),
  );

  const runs = program.commands.find((c) => c.name() === 'runs');
  if (!runs) throw new Error('registerRetention: register the runs commands first');
  jsonOption(
    runs
      .command('hold')
      .description('place a legal hold: retention never prunes the run while it lasts (PUT /runs/:id/legal-hold)')
      .argument('<runId>')
      .requiredOption('--reason <why>', 'why (required)')
      .option('--by <who>', 'who (default cli:<OS user>)'),
  ).action(
    act(async (runId: string, o: { reason: string; by?: string; json?: boolean }, cmd: Command) => {
      const h = await apiOf(cmd).request<{ runId: string; by: string; reason: string; since: string }>('PUT', `/runs/${seg(runId)}/legal-hold`, { body: { reason: o.reason, by: o.by ?? defaultBy() } });
      if (o.json) printJson(h);
      else console.log(`run ${h.runId}: legal hold since ${time(h.since)} by ${h.by}: ${h.reason}`);
    }),
  );
  jsonOption(
    runs
      .command('release')
      .description("clear a run's legal hold (DELETE /runs/:id/legal-hold)")
      .argument('<runId>')
      .requiredOption('--reason <why>', 'why (required)')
      .option('--by <who>', 'who (default cli:<OS user>)'),
  ).action(
    act(async (runId: string, o: { reason: string; by?: string; json?: boolean }, cmd: Command) => {
      const r = await apiOf(cmd).request<{ runId: string; released: unknown }>('DELETE', `/runs/${seg(runId)}/legal-hold`, { query: { reason: o.reason, by: o.by ?? defaultBy() } });
      if (o.json) printJson(r);
      else console.log(`run ${r.runId}: ${r.released ? 'legal hold cleared' : 'had no legal hold'}`);
    }),
  );
}
