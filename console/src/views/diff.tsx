/**
 * Two versions of a definition compared (`#/definitions/<name>/diff?from=&to=`,
 * default the previous and the latest; GET /definitions/:name/diff): the
 * graph as the union of both outlines with steps and edges classed added,
 * removed or changed, the changed steps' fields, the contract changes per
 * RPC, and the open runs pinned to `from`: whether they could migrate, and a
 * migrate action for those that can.
 */
import { useCallback, useMemo, useState, type ReactNode } from 'react';
import { api, ApiError, useApi, useCan, useWho } from '../api';
import type { OutlineEdge, OutlineNode, VersionDetail, VersionDiff, VersionList } from '../api-types';
import { ConfirmButton, Empty, ErrorBox, Loading, Page, ShortHash, StatusBadge, Table } from '../components/common';
import { VersionSelect } from '../components/defs-parts';
import { GraphView, Legend, type GraphDecor } from '../components/graph';
import { href, navigate, type Route } from '../router';

type OpenRun = VersionDiff['openRuns']['runs'][number];
type ContractChange = VersionDiff['contracts'][number];
type FieldChanges = ContractChange['input'];

const edgeKey = (e: OutlineEdge) => `${e.from}\u0000${e.to}\u0000${e.kind}\u0000${e.label ?? ''}`;

const FIELD_KINDS: Array<[keyof FieldChanges, string]> = [
  ['added', 'added'],
  ['removed', 'removed'],
  ['madeRequired', 'made required'],
  ['madeOptional', 'made optional'],
  ['typeChanged', 'type changed'],
];

/** The field changes of one side (input or output) of a contract, one line per kind. */
function FieldList({ changes }: { changes: FieldChanges }) {
  const lines = FIELD_KINDS.filter(([k]) => changes[k].length > 0);
  if (lines.length === 0) return <span className="muted">no change</span>;
  return (
    <ul className="field-changes">
      {lines.map(([k, label]) => (
        <li key={k} className={`fc-${k}`}>
          {label}: {changes[k].map((f) => <code key={f}>{f}</code>).reduce<ReactNode[]>((acc, el, i) => (i ? [...acc, ', ', el] : [el]), [])}
        </li>
      ))}
    </ul>
  );
}

/** The union of both versions' outlines: every step of `to`, then the steps only `from` had; the edges of `to` and the removed ones. */
function union(from: VersionDetail | undefined, to: VersionDetail | undefined, diff: VersionDiff | undefined): { nodes: OutlineNode[]; edges: OutlineEdge[] } {
  if (!from || !to || !diff) return { nodes: [], edges: [] };
  const ids = new Set(to.outline.nodes.map((n) => n.id));
  const nodes = [...to.outline.nodes, ...from.outline.nodes.filter((n) => !ids.has(n.id))];
  const keys = new Set(to.outline.edges.map(edgeKey));
  const edges = [...to.outline.edges, ...diff.edges.removed.filter((e) => !keys.has(edgeKey(e)))];
  return { nodes, edges };
}

interface MigrateOutcome {
  ok: boolean;
  text: string;
}

function MigrateAction({ run, target, targetSeq, reason }: { run: OpenRun; target: string; targetSeq: number; reason: string }) {
  const who = useWho();
  const [outcome, setOutcome] = useState<MigrateOutcome | undefined>();
  const [error, setError] = useState<ApiError | undefined>();
  const mapping = run.mapping ?? {};
  const renames = Object.entries(mapping).filter(([a, b]) => a !== b);
  if (outcome?.ok) return <span className="ok" data-testid={`migrated-${run.runId}`}>{outcome.text}</span>;
  return (
    <>
      <ConfirmButton
        label="Migrate"
        danger
        disabled={!reason.trim()}
        confirmText={
          <>
            Move <code>{run.runId}</code> to v{targetSeq}
            {run.currentStep ? <> at step <code>{run.currentStep}</code></> : null}
            {renames.length > 0 ? <> with {renames.map(([a, b]) => `${a} → ${b}`).join(', ')}</> : null}?
          </>
        }
        onConfirm={async () => {
          setError(undefined);
          try {
            const res = await api<{ at: string; carried: string[]; dropped: string[] }>(`/runs/${encodeURIComponent(run.runId)}/migrate`, {
              method: 'POST',
              body: { targetVersion: target, ...(renames.length > 0 ? { mapping } : {}), by: who?.name ?? 'console', reason: reason.trim() },
            });
            setOutcome({ ok: true, text: `migrated at ${res.at}; carried ${res.carried.length}, dropped ${res.dropped.length}` });
          } catch (err) {
            setError(err instanceof ApiError ? err : new ApiError(0, 'CONSOLE', String(err)));
          }
        }}
      />
      <ErrorBox error={error} />
    </>
  );
}

export function DiffView({ route }: { route: Route }) {
  const name = route.parts[1] ?? '';
  const canOperate = useCan('operate');
  const [reason, setReason] = useState('');
  const versions = useApi<VersionList>(`/definitions/${encodeURIComponent(name)}/versions`);
  const sorted = useMemo(() => [...(versions.data?.versions ?? [])].sort((a, b) => b.seq - a.seq), [versions.data]);
  const to = route.query.get('to') ?? sorted[0]?.hash ?? null;
  const toSeq = sorted.find((v) => v.hash === to)?.seq ?? Infinity;
  // Default: the version just before `to` (else any other one).
  const from = route.query.get('from') ?? (sorted.find((v) => v.seq < toSeq) ?? sorted.find((v) => v.hash !== to))?.hash ?? null;
  const same = from !== null && from === to;
  const diff = useApi<VersionDiff>(from && to && !same ? `/definitions/${encodeURIComponent(name)}/diff` : null, { from, to }, { refreshMs: 15_000 });
  const fromV = useApi<VersionDetail>(from ? `/versions/${from}` : null);
  const toV = useApi<VersionDetail>(to ? `/versions/${to}` : null);
  const d = diff.data;
  const graph = useMemo(() => union(fromV.data, toV.data, d), [fromV.data, toV.data, d]);
  const decorate = useCallback(
    (id: string): GraphDecor | undefined => {
      if (!d) return undefined;
      if (d.steps.added.includes(id)) return { className: 'diff-added', state: 'added', extra: <span className="ok">+ added</span> };
      if (d.steps.removed.includes(id)) return { className: 'diff-removed', state: 'removed', extra: <span className="bad">− removed</span> };
      const changed = d.steps.changed.find((c) => c.stepId === id);
      if (changed) return { className: 'diff-changed', state: 'changed', extra: <span title={changed.fields.join(', ')}>~ {changed.fields.join(', ')}</span> };
      return { state: 'unchanged' };
    },
    [d],
  );
  const addedEdges = useMemo(() => new Set((d?.edges.added ?? []).map(edgeKey)), [d]);
  const removedEdges = useMemo(() => new Set((d?.edges.removed ?? []).map(edgeKey)), [d]);
  const edgeClass = useCallback((e: OutlineEdge) => (addedEdges.has(edgeKey(e)) ? 'edge-diff-added' : removedEdges.has(edgeKey(e)) ? 'edge-diff-removed' : undefined), [addedEdges, removedEdges]);
  const pick = (which: 'from' | 'to', hash: string) => navigate(href(['definitions', name, 'diff'], { from: which === 'from' ? hash : from, to: which === 'to' ? hash : to }));
  const changedContracts = d?.contracts.filter((c) => c.change !== 'unchanged') ?? [];
  const unchangedContracts = d?.contracts.filter((c) => c.change === 'unchanged') ?? [];
  const noChange = d && d.steps.added.length + d.steps.removed.length + d.steps.changed.length + d.edges.added.length + d.edges.removed.length + changedContracts.length === 0;

  return (
    <Page title={<>Compare versions of <a href={href(['definitions', name])}>{name}</a></>}>
      <ErrorBox error={versions.error} title={`Could not read the versions of ${name}`} />
      {versions.loading && !versions.data && <Loading what="the versions" />}
      {versions.data && sorted.length < 2 && (
        <Empty>
          {name} has {sorted.length} version(s): there is nothing to compare yet. Publishing a changed graph adds a version.
        </Empty>
      )}
      {sorted.length >= 2 && from && to && (
        <div className="filters">
          <VersionSelect versions={sorted} value={from} onChange={(h) => pick('from', h)} label="From (runs pinned here)" testId="diff-from" />
          <span>→</span>
          <VersionSelect versions={sorted} value={to} onChange={(h) => pick('to', h)} label="To" testId="diff-to" />
          <button type="button" onClick={() => navigate(href(['definitions', name, 'diff'], { from: to, to: from }))}>
            Swap
          </button>
        </div>
      )}
      {same && <Empty>Both sides are the same version: pick two different versions.</Empty>}
      <ErrorBox error={diff.error} title="Could not compare the versions" />
      {diff.loading && !d && !same && from && to && <Loading what="the differences" />}
      {d && (
        <>
          <div className="card" data-testid="diff-summary">
            <h2>
              <ShortHash hash={d.from.version} seq={d.from.seq} /> → <ShortHash hash={d.to.version} seq={d.to.seq} />
            </h2>
            {noChange && <p>The two versions draw the same graph with the same contracts.</p>}
            <div className="row">
              <div className="grow" data-testid="steps-added">
                <strong className="ok">Added steps ({d.steps.added.length})</strong>
                <ul>{d.steps.added.length ? d.steps.added.map((s) => <li key={s}><code>{s}</code></li>) : <li className="muted">none</li>}</ul>
              </div>
              <div className="grow" data-testid="steps-removed">
                <strong className="bad">Removed steps ({d.steps.removed.length})</strong>
                <ul>{d.steps.removed.length ? d.steps.removed.map((s) => <li key={s}><code>{s}</code></li>) : <li className="muted">none</li>}</ul>
              </div>
              <div className="grow" data-testid="steps-changed">
                <strong>Changed steps ({d.steps.changed.length})</strong>
                <ul>
                  {d.steps.changed.length ? (
                    d.steps.changed.map((c) => (
                      <li key={c.stepId}>
                        <code>{c.stepId}</code>: {c.fields.join(', ')}
                      </li>
                    ))
                  ) : (
                    <li className="muted">none</li>
                  )}
                </ul>
              </div>
            </div>
            <div className="muted">
              {d.steps.unchanged.length} step(s) unchanged; edges: {d.edges.added.length} added, {d.edges.removed.length} removed.
            </div>
          </div>
          <div className="card">
            <h2>The graph, both versions drawn together</h2>
            {graph.nodes.length > 0 && <GraphView nodes={graph.nodes} edges={graph.edges} decorate={decorate} edgeClass={edgeClass} height={560} />}
            <ErrorBox error={fromV.error ?? toV.error} title="Could not read a version's graph" />
            <Legend
              items={[
                { className: 'diff-added', label: `added in v${d.to.seq}` },
                { className: 'diff-removed', label: `removed (only in v${d.from.seq})` },
                { className: 'diff-changed', label: 'changed' },
                { className: 'state-not-reached', label: 'unchanged' },
              ]}
            />
          </div>
          <div className="card" data-testid="contracts">
            <h2>RPC contracts</h2>
            {changedContracts.length === 0 ? (
              <p className="muted">No RPC contract changed.</p>
            ) : (
              <Table<ContractChange>
                rows={changedContracts}
                rowKey={(c) => c.rpc}
                columns={[
                  { header: 'RPC', cell: (c) => <code>{c.rpc}</code> },
                  { header: 'Change', cell: (c) => <span className={`badge change-${c.change}`}>{c.change}</span> },
                  { header: 'Input', cell: (c) => <FieldList changes={c.input} /> },
                  { header: 'Output', cell: (c) => <FieldList changes={c.output} /> },
                ]}
              />
            )}
            {unchangedContracts.length > 0 && <div className="muted">Unchanged: {unchangedContracts.map((c) => c.rpc).join(', ')}</div>}
          </div>
          <div className="card" data-testid="open-runs">
            <h2>
              Open runs on v{d.from.seq} ({d.openRuns.total}
              {d.openRuns.total > d.openRuns.runs.length ? `, the first ${d.openRuns.runs.length} shown` : ''})
            </h2>
            {d.openRuns.total === 0 ? (
              <Empty>No open run is pinned to v{d.from.seq}: nothing to migrate. Runs pinned to it keep it until they end; new runs start on the latest version.</Empty>
            ) : (
              <>
                {canOperate && d.openRuns.runs.some((r) => r.migratable) && (
                  <div className="filters">
                    <label>
                      Reason for a migration (required, audited)
                      <input value={reason} onChange={(e) => setReason(e.target.value)} size={48} placeholder={`e.g. move to v${d.to.seq} after the fix`} />
                    </label>
                  </div>
                )}
                <Table<OpenRun>
                  rows={d.openRuns.runs}
                  rowKey={(r) => r.runId}
                  rowHref={(r) => href(['runs', r.runId])}
                  columns={[
                    { header: 'Run', cell: (r) => <a href={href(['runs', r.runId])}>{r.runId}</a> },
                    { header: 'Status', cell: (r) => <StatusBadge status={r.status} /> },
                    { header: 'Current step', cell: (r) => (r.currentStep ? <code>{r.currentStep}</code> : <span className="muted">—</span>) },
                    { header: 'Past the changes', cell: (r) => (r.pastChanges ? 'yes' : 'no') },
                    {
                      header: 'Migratable',
                      cell: (r) =>
                        r.migratable ? (
                          <span className="ok">
                            yes
                            {r.mapping && Object.entries(r.mapping).some(([a, b]) => a !== b)
                              ? `, mapping ${Object.entries(r.mapping)
                                  .filter(([a, b]) => a !== b)
                                  .map(([a, b]) => `${a} → ${b}`)
                                  .join(', ')}`
                              : ''}
                          </span>
                        ) : (
                          <span className="bad">
                            no{r.problem ? <>: <code>{r.problem.code}</code> {r.problem.message}</> : null}
                          </span>
                        ),
                    },
                    ...(canOperate ? [{ header: '', cell: (r: OpenRun) => (r.migratable ? <MigrateAction run={r} target={d.to.version} targetSeq={d.to.seq} reason={reason} /> : null) }] : []),
                  ]}
                />
              </>
            )}
          </div>
        </>
      )}
    </Page>
  );
}
