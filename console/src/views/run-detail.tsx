/**
 * One run: its header, its pinned graph coloured by what happened in this run,
 * the step timeline, the stall panel with the decision form, operator actions,
 * waits, lineage, decisions and attention. Refreshed every 5 s while open.
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { useApi, useCan } from '../api';
import type { RunDetail, StepRow, VersionDetail } from '../api-types';
import { Empty, ErrorBox, formatDuration, JsonView, Loading, Page, ShortHash, StatusBadge, Table, Time, type Column } from '../components/common';
import { GraphView, Legend, type GraphDecor } from '../components/graph';
import { RunActions, StallPanel } from '../components/runs-actions';
import { ATTENTION_EXPLAINED, RunLink, TemporalLink } from '../components/runs-parts';
import { instanceSummary, nodeStates, rowState, STATE_LEGEND, type StepRowFull } from '../components/runs-states';
import { href, type Route } from '../router';

const OPEN = new Set(['RUNNING', 'STALLED', 'PAUSED']);

interface LineageRow {
  version: string;
  upTo: string;
  migratedAt: string;
  by: string;
}
interface DecisionRowView {
  stallId?: string | null;
  action: string;
  by: string;
  reason?: string | null;
  output?: unknown;
  decidedAt?: string;
  outcome?: string;
}
interface WaitView {
  waitId: string;
  stepInstance: string;
  event: string;
  correlationKey: string;
  status: string;
  tenant: string;
  openedAt?: string;
  timeoutAt?: string | null;
  closedAt?: string | null;
  resolvedEventId?: string | null;
}

function Header({ run }: { run: RunDetail }) {
  const meta = Object.entries(run.metadata ?? {});
  return (
    <section className="card run-header" data-testid="run-header">
      <div className="form-grid">
        <span className="muted">Status</span>
        <span data-testid="run-status">
          <StatusBadge status={run.status} />
          {run.currentStep && OPEN.has(run.status) && (
            <>
              {' '}
              at <code>{run.currentStep}</code>
            </>
          )}
          {run.pause && <span className="muted"> · paused by {run.pause.by}{run.pause.reason ? `: ${run.pause.reason}` : ''} (<Time at={run.pause.since} />)</span>}
        </span>
        <span className="muted">Definition</span>
        <a href={href(['definitions', run.definition], { version: run.version })}>{run.definition}</a>
        <span className="muted">Version</span>
        <ShortHash hash={run.version} />
        <span className="muted">Tenant</span>
        <span>{run.tenant}</span>
        <span className="muted">Started</span>
        <Time at={run.startedAt} />
        <span className="muted">Closed</span>
        <span>
          <Time at={run.closedAt} />
          {run.closedAt && <span className="muted"> (after {formatDuration(new Date(run.closedAt).getTime() - new Date(run.startedAt).getTime())})</span>}
        </span>
        <span className="muted">Metadata</span>
        <span>
          {meta.length === 0 ? (
            <span className="muted">none</span>
          ) : (
            meta.map(([k, v]) => (
              <a key={k} className="chip" href={href(['runs'], { [`meta.${k}`]: typeof v === 'string' ? v : JSON.stringify(v) })} title="Runs with this metadata">
                {k} = {typeof v === 'string' ? v : JSON.stringify(v)}
              </a>
            ))
          )}
        </span>
        <span className="muted">Temporal</span>
        <TemporalLink url={run.temporalUiUrl} label="Open in the Temporal UI" />
        <span className="muted">Input</span>
        <JsonView value={run.input} label="input" />
        {run.output !== undefined && run.output !== null && (
          <>
            <span className="muted">Output</span>
            <JsonView value={run.output} label="output" />
          </>
        )}
        {run.error !== undefined && run.error !== null && (
          <>
            <span className="muted">Error</span>
            <span>
              <span className="bad">{run.errorSummary}</span> <JsonView value={run.error} label="error" />
            </span>
          </>
        )}
      </div>
    </section>
  );
}

function Graph({ run, version, onPick }: { run: RunDetail; version: VersionDetail; onPick: (stepId: string) => void }) {
  const states = useMemo(() => nodeStates(run, version.outline.nodes), [run, version]);
  const decorate = useCallback(
    (id: string): GraphDecor | undefined => {
      const ns = states.get(id);
      if (!ns) return undefined;
      // A skip or a retry is a new dispatch: the timeline shows dispatches, the node its attempts.
      const parts = [instanceSummary(ns) || (ns.state === 'not-reached' ? '' : ns.state), ns.maxAttempt > 1 ? `attempt ${ns.maxAttempt}` : ''].filter(Boolean);
      return { className: `state-${ns.state}`, state: ns.state, extra: parts.length ? parts.join(' · ') : undefined };
    },
    [states],
  );
  return (
    <section className="card">
      <h2>
        Pinned graph <ShortHash hash={run.version} />
      </h2>
      <Legend items={STATE_LEGEND.map((s) => ({ className: `state-${s.state}`, label: s.label }))} />
      <GraphView nodes={version.outline.nodes} edges={version.outline.edges} decorate={decorate} onStepClick={onPick} height={Math.min(560, 160 + version.outline.nodes.length * 90)} />
      <p className="muted">Click a step to find its rows in the timeline.</p>
    </section>
  );
}

function Timeline({ run, picked }: { run: RunDetail; picked: string | null }) {
  const rows = [...run.steps].sort((a, b) => ((a as StepRowFull).seq ?? 0) - ((b as StepRowFull).seq ?? 0) || ((a as StepRowFull).startedAt ?? '').localeCompare((b as StepRowFull).startedAt ?? ''));
  useEffect(() => {
    if (!picked) return;
    const el = document.querySelector(`[data-testid="timeline"] tr.selected`);
    el?.scrollIntoView({ behavior: 'smooth', block: 'center' });
  }, [picked]);
  const key = (r: StepRow) => `${r.stepInstance}#${(r as StepRowFull).dispatch ?? 1}.${(r as StepRowFull).attempt ?? 1}`;
  const columns: Array<Column<StepRow>> = [
    { header: 'Instance', cell: (r) => <code>{r.stepInstance}</code> },
    { header: 'Step', cell: (r) => r.stepId },
    { header: 'Type', cell: (r) => r.stepType },
    {
      header: 'Status',
      cell: (r) => {
        const s = rowState(r);
        const e = (r as StepRowFull).error;
        return (
          <>
            <StatusBadge status={s === 'skipped' ? 'SKIPPED' : r.status} />
            {e?.message && <div className="sub bad">{`${e.type ?? ''}: ${e.message}`}</div>}
          </>
        );
      },
    },
    {
      header: 'Attempt',
      className: 'num',
      cell: (r) => {
        const f = r as StepRowFull;
        return `${f.attempt ?? 1}${(f.dispatch ?? 1) > 1 ? ` (dispatch ${f.dispatch})` : ''}`;
      },
    },
    { header: 'Started', cell: (r) => <Time at={(r as StepRowFull).startedAt} /> },
    {
      header: 'Duration',
      className: 'num',
      cell: (r) => {
        const f = r as StepRowFull;
        if (!f.startedAt) return '—';
        const end = f.finishedAt ? new Date(f.finishedAt).getTime() : r.status === 'RUNNING' ? Date.now() : NaN;
        return formatDuration(end - new Date(f.startedAt).getTime()) + (f.finishedAt ? '' : ' …');
      },
    },
    { header: 'Input', cell: (r) => <JsonView value={r.input} label="input" /> },
    { header: 'Output', cell: (r) => <JsonView value={r.output} label="output" /> },
  ];
  return (
    <section className="card">
      <h2>Step timeline</h2>
      {rows.length === 0 ? (
        <Empty>No step has started yet{OPEN.has(run.status) ? ': the worker picks the run up shortly (if not, see Needs attention).' : '.'}</Empty>
      ) : (
        <Table rows={rows} columns={columns} rowKey={key} testId="timeline" selected={(r) => r.stepId === picked} />
      )}
    </section>
  );
}

function Waits({ run }: { run: RunDetail }) {
  const waits = run.waits as WaitView[];
  if (waits.length === 0) return null;
  const columns: Array<Column<WaitView>> = [
    { header: 'Step', cell: (w) => <code>{w.stepInstance}</code> },
    { header: 'Event', cell: (w) => <code>{w.event}</code> },
    { header: 'Correlation key', cell: (w) => <code>{w.correlationKey}</code> },
    { header: 'Status', cell: (w) => <StatusBadge status={w.status === 'OPEN' ? 'WAITING' : w.status} /> },
    { header: 'Opened', cell: (w) => <Time at={w.openedAt} /> },
    { header: 'Times out', cell: (w) => <Time at={w.timeoutAt} /> },
    {
      header: 'Delivered event',
      cell: (w) =>
        w.resolvedEventId ? (
          <a href={href(['events', w.resolvedEventId], { tenant: w.tenant })}>
            <code>{w.resolvedEventId}</code>
          </a>
        ) : (
          <a href={href(['events'], { name: w.event, key: w.correlationKey, tenant: w.tenant })} className="muted">
            none yet: events named {w.event}
          </a>
        ),
    },
  ];
  return (
    <section className="card">
      <h2>Waits</h2>
      <Table rows={waits} columns={columns} rowKey={(w) => w.waitId} testId="waits" />
    </section>
  );
}

function Lineage({ run }: { run: RunDetail }) {
  const lineage = run.lineage as LineageRow[];
  const origin = run.origin as (RunDetail['origin'] & { fromStep?: string; by?: string }) | null;
  const items = [
    run.parentRunId && (
      <li key="parent">
        Parent run <RunLink id={run.parentRunId} /> {run.parentStep && <>(step <code>{run.parentStep}</code>)</>}
      </li>
    ),
    ...run.children.map((c) => (
      <li key={`c-${c.id}`}>
        Child <RunLink id={c.id} /> <StatusBadge status={c.status} /> {c.definition}
      </li>
    )),
    ...lineage.map((l, i) => (
      <li key={`l-${i}`}>
        Migrated from <ShortHash hash={l.version} /> at <code>{l.upTo}</code> to {i + 1 < lineage.length ? <ShortHash hash={lineage[i + 1]!.version} /> : <ShortHash hash={run.version} />} by {l.by}{' '}
        (<Time at={l.migratedAt} />)
      </li>
    )),
    origin && (
      <li key="origin">
        {origin.kind === 'rerun' ? 'Rerun' : 'Replay'} of <RunLink id={origin.sourceRunId} />
        {origin.fromStep ? (
          <>
            {' '}
            from step <code>{origin.fromStep}</code>
          </>
        ) : null}{' '}
        (source version <ShortHash hash={origin.sourceVersion} />)
      </li>
    ),
    ...run.reruns.map((r) => (
      <li key={`r-${r.runId}`}>
        {r.kind === 'rerun' ? 'Rerun' : 'Replay'} <RunLink id={r.runId} />
        {r.fromStep ? (
          <>
            {' '}
            from <code>{r.fromStep}</code>
          </>
        ) : null}{' '}
        (<Time at={r.createdAt} />)
      </li>
    )),
  ].filter(Boolean);
  return (
    <section className="card">
      <h2>Lineage</h2>
      {items.length === 0 ? <p className="muted">No parent, children, migrations, reruns or replays.</p> : <ul className="lineage">{items}</ul>}
    </section>
  );
}

function Decisions({ run }: { run: RunDetail }) {
  const rows = run.decisions as DecisionRowView[];
  const columns: Array<Column<DecisionRowView>> = [
    { header: 'When', cell: (d) => <Time at={d.decidedAt} /> },
    { header: 'Action', cell: (d) => <code>{d.action}</code> },
    { header: 'By', cell: (d) => d.by },
    { header: 'Reason', cell: (d) => d.reason ?? <span className="muted">—</span> },
    { header: 'Stall', cell: (d) => (d.stallId ? <code>{d.stallId}</code> : '—') },
    { header: 'Outcome', cell: (d) => d.outcome ?? '' },
    { header: 'Output', cell: (d) => (d.output === null || d.output === undefined ? '—' : <JsonView value={d.output} label="output" />) },
  ];
  return (
    <section className="card">
      <h2>Decisions</h2>
      {rows.length === 0 ? <p className="muted">No operator decision on this run.</p> : <Table rows={rows} columns={columns} rowKey={(d) => `${d.stallId ?? ''}-${d.action}-${d.decidedAt ?? ''}`} testId="decisions" />}
    </section>
  );
}

function Attention({ run }: { run: RunDetail }) {
  if (run.attention.length === 0) return null;
  return (
    <section className="card attention-card hot" data-testid="run-attention">
      <h2>Needs attention</h2>
      <ul>
        {run.attention.map((a) => (
          <li key={a.reason}>
            <strong>{ATTENTION_EXPLAINED[a.reason]?.title ?? a.reason}</strong> since <Time at={a.since} />: {ATTENTION_EXPLAINED[a.reason]?.text}{' '}
            <JsonView value={a.detail} label="detail" />
            <div className="muted">What to do: {ATTENTION_EXPLAINED[a.reason]?.next}</div>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function RunDetailView({ route }: { route: Route }) {
  const id = route.parts[1] ?? '';
  const [live, setLive] = useState(true);
  const res = useApi<RunDetail>(`/runs/${encodeURIComponent(id)}`, undefined, { refreshMs: live ? 5000 : 0 });
  const run = res.data && res.data.id === id ? res.data : undefined;
  const version = useApi<VersionDetail>(run ? `/versions/${run.version}` : null);
  const [picked, setPicked] = useState<string | null>(null);
  const canOperate = useCan('operate');
  const open = run ? OPEN.has(run.status) : true;
  // A closed run does not change: stop polling it (one more load after it closed is enough).
  useEffect(() => setLive(open), [open]);

  return (
    <Page
      title={
        <>
          Run <code>{id}</code>
        </>
      }
      actions={
        <span className="muted" data-testid="updated-at">
          {res.at && `updated ${res.at.toLocaleTimeString()}`}
          {live ? ' · every 5 s' : ''}{' '}
          <button type="button" onClick={res.reload}>
            Refresh
          </button>
        </span>
      }
    >
      <ErrorBox error={res.error} title="The run could not be read" />
      {!run && !res.error && <Loading what="the run" />}
      {run && (
        <>
          <Header run={run} />
          <Attention run={run} />
          {run.stall && run.status === 'STALLED' && <StallPanel run={run} version={version.data} canOperate={canOperate} reload={res.reload} />}
          <ErrorBox error={version.error} title="The pinned version could not be read" />
          {version.data && <Graph run={run} version={version.data} onPick={setPicked} />}
          <Timeline run={run} picked={picked} />
          {canOperate && <RunActions run={run} version={version.data} reload={res.reload} />}
          <Waits run={run} />
          <Lineage run={run} />
          <Decisions run={run} />
        </>
      )}
    </Page>
  );
}
