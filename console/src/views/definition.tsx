/**
 * A definition and one of its versions (`#/definitions/<name>?version=<hash>`,
 * default the latest): the versions, the version's graph with live per-step
 * counts (GET /versions/:hash/step-counts, every 5 s), each count a link to
 * its runs, the same counts as a table, and pause/resume of the definition.
 */
import { useCallback, useMemo, useState } from 'react';
import { api, ApiError, useApi, useCan, useWho } from '../api';
import type { StepCounts, VersionDetail, VersionList } from '../api-types';
import { ConfirmButton, Empty, ErrorBox, Loading, Page, ShortHash, Table, Time } from '../components/common';
import { COUNT_LEGEND, CountLink, countsDecor, STATE_HELP, STEP_COUNT_STATES, type StepCountRow } from '../components/defs-parts';
import { GraphView, Legend } from '../components/graph';
import { href, type Route } from '../router';

type Version = VersionList['versions'][number];

const STATE_LEGEND = [
  { className: 'state-stalled', label: 'runs stalled here' },
  { className: 'state-failed', label: 'runs failed here' },
  { className: 'state-waiting', label: 'runs waiting here' },
  { className: 'state-running', label: 'runs running here' },
  { className: 'state-completed', label: 'passed only' },
  { className: 'state-not-reached', label: 'no run yet' },
];

interface PauseOutcome {
  action: 'pause' | 'resume';
  already: boolean;
  runs: Array<{ runId: string; ok: boolean; changed?: boolean; error?: { code: string; message: string } }>;
}

/** Pause or resume the definition: its open runs pause (or resume), new runs start paused (or normally). */
function PauseControls({ name, openRuns }: { name: string; openRuns: number }) {
  const who = useWho();
  const [reason, setReason] = useState('');
  const [error, setError] = useState<ApiError | undefined>();
  const [outcome, setOutcome] = useState<PauseOutcome | undefined>();
  const act = async (action: 'pause' | 'resume') => {
    setError(undefined);
    try {
      const body = { by: who?.name ?? 'console', ...(reason.trim() ? { reason: reason.trim() } : {}) };
      const res = await api<{ alreadyPaused?: boolean; wasPaused?: boolean; runs: PauseOutcome['runs'] }>(`/definitions/${encodeURIComponent(name)}/${action}`, { method: 'POST', body });
      setOutcome({ action, already: action === 'pause' ? Boolean(res.alreadyPaused) : !res.wasPaused, runs: res.runs });
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(0, 'CONSOLE', String(err)));
    }
  };
  return (
    <div className="card" data-testid="pause-controls">
      <h2>Pause or resume the definition</h2>
      <div className="filters">
        <label>
          Reason (recorded in the audit log; a pause needs one)
          <input value={reason} onChange={(e) => setReason(e.target.value)} placeholder="e.g. incident 42: payments provider down" size={48} />
        </label>
        <ConfirmButton
          label="Pause definition"
          danger
          disabled={!reason.trim()}
          confirmText={
            <>
              Pause <strong>{name}</strong>: its {openRuns} open run(s) pause at their next step and new runs start paused, until resumed.
            </>
          }
          onConfirm={() => act('pause')}
        />
        <ConfirmButton label="Resume definition" confirmText={<>Resume <strong>{name}</strong>: new runs start normally and its paused runs resume.</>} onConfirm={() => act('resume')} />
      </div>
      <ErrorBox error={error} title="The definition was not changed" />
      {outcome && (
        <div data-testid="pause-outcome">
          <p>
            {outcome.action === 'pause' ? (outcome.already ? 'It was already paused.' : 'Paused.') : outcome.already ? 'It was not paused.' : 'Resumed.'} {outcome.runs.length} run(s):{' '}
            {outcome.runs.filter((r) => r.ok).length} ok, {outcome.runs.filter((r) => !r.ok).length} failed.
          </p>
          {outcome.runs.length > 0 && (
            <Table
              rows={outcome.runs}
              rowKey={(r) => r.runId}
              rowHref={(r) => href(['runs', r.runId])}
              columns={[
                { header: 'Run', cell: (r) => <a href={href(['runs', r.runId])}>{r.runId}</a> },
                { header: 'Result', cell: (r) => (r.ok ? <span className="ok">{r.changed === false ? 'unchanged' : 'done'}</span> : <span className="bad">{r.error ? `${r.error.code}: ${r.error.message}` : 'failed'}</span>) },
              ]}
            />
          )}
        </div>
      )}
    </div>
  );
}

export function DefinitionView({ route }: { route: Route }) {
  const name = route.parts[1] ?? '';
  const canOperate = useCan('operate');
  const versions = useApi<VersionList>(`/definitions/${encodeURIComponent(name)}/versions`, undefined, { refreshMs: 15_000 });
  const sorted = useMemo(() => [...(versions.data?.versions ?? [])].sort((a, b) => b.seq - a.seq), [versions.data]);
  const hash = route.query.get('version') ?? sorted.find((v) => v.latest)?.hash ?? sorted[0]?.hash ?? null;
  const current = sorted.find((v) => v.hash === hash);
  const previous = current ? sorted.find((v) => v.seq < current.seq) : undefined;
  const version = useApi<VersionDetail>(hash ? `/versions/${hash}` : null);
  const counts = useApi<StepCounts>(hash ? `/versions/${hash}/step-counts` : null, undefined, { refreshMs: 5000 });
  const byStep = useMemo(() => new Map((counts.data?.steps ?? []).map((s) => [s.stepId, s])), [counts.data]);
  const decorate = useCallback((id: string) => (hash && counts.data ? countsDecor(hash, id, byStep.get(id)) : undefined), [hash, counts.data, byStep]);
  const openRuns = sorted.reduce((n, v) => n + v.openRuns, 0);
  const nodes = version.data?.outline.nodes ?? [];
  const types = new Map(nodes.map((n) => [n.id, n]));

  return (
    <Page
      title={
        <>
          {name} {current && <ShortHash hash={current.hash} seq={current.seq} />}
        </>
      }
      actions={
        current &&
        sorted.length > 1 && (
          <a href={href(['definitions', name, 'diff'], { from: previous?.hash ?? sorted.find((v) => v.hash !== current.hash)?.hash, to: current.hash })} data-testid="compare">
            Compare with {previous ? `v${previous.seq}` : 'another version'}…
          </a>
        )
      }
    >
      <ErrorBox error={versions.error} title={`Could not read the versions of ${name}`} />
      {versions.loading && !versions.data && <Loading what="the versions" />}
      {versions.data && sorted.length === 0 && <Empty>{name} has no version yet: publish one with <code>pinflow publish graph.json --definition {name}</code>.</Empty>}
      {route.query.get('version') && versions.data && !current && (
        <ErrorBox error={new ApiError(404, 'VERSION_NOT_FOUND', `${route.query.get('version') ?? ''} is not a version of ${name}; pick one below`)} />
      )}
      <div className="row">
        <div className="grow">
          <div className="card">
            <h2>
              Graph {current && <ShortHash hash={current.hash} seq={current.seq} />} with its runs by step{' '}
              <span className="muted" data-testid="run-totals">
                {counts.data && (
                  <>
                    · {counts.data.totalRuns} run(s), <a href={href(['runs'], { version: hash })}>{counts.data.openRuns} open</a> · as of <Time at={counts.data.asOf} />
                  </>
                )}
              </span>
            </h2>
            <ErrorBox error={version.error} title="Could not read the version" />
            <ErrorBox error={counts.error} title="Could not count the runs by step (the graph shows without counts)" />
            {version.data && nodes.length > 0 && <GraphView nodes={nodes} edges={version.data.outline.edges} decorate={decorate} height={560} />}
            <Legend items={STATE_LEGEND} />
            <div className="muted">
              On each step: <span title="now at the step">now</span> | <span title="through the step">through</span> — {COUNT_LEGEND}. A number opens its runs.
            </div>
          </div>
        </div>
        <div style={{ flex: '0 1 380px' }}>
          <div className="card">
            <h2>Versions</h2>
            {sorted.length > 0 && (
              <Table<Version>
                testId="versions"
                rows={sorted}
                rowKey={(v) => v.hash}
                rowHref={(v) => href(['definitions', name], { version: v.hash })}
                selected={(v) => v.hash === hash}
                columns={[
                  { header: 'Version', cell: (v) => <a href={href(['definitions', name], { version: v.hash })}><ShortHash hash={v.hash} seq={v.seq} /></a> },
                  { header: 'Published', cell: (v) => <Time at={v.publishedAt} /> },
                  { header: 'Open runs', cell: (v) => (v.openRuns > 0 ? <a href={href(['runs'], { version: v.hash })}>{v.openRuns}</a> : '0'), className: 'num' },
                  {
                    header: '',
                    cell: (v) =>
                      v.latest ? (
                        <span className="badge status-completed">latest</span>
                      ) : v.removed ? (
                        <span className="badge muted" title={`removed by the version GC (${v.removed.by}${v.removed.reason ? `: ${v.removed.reason}` : ''}); its runs keep their graph in Temporal history`}>
                          removed
                        </span>
                      ) : null,
                  },
                ]}
              />
            )}
          </div>
        </div>
      </div>
      {counts.data && hash && (
        <div className="card">
          <h2>Runs by step</h2>
          <Table<StepCountRow>
            testId="step-counts"
            rows={counts.data.steps}
            rowKey={(s) => s.stepId}
            columns={[
              { header: 'Step', cell: (s) => <code>{s.stepId}</code> },
              { header: 'Type', cell: (s) => <span className="muted">{types.get(s.stepId)?.type ?? ''}</span> },
              ...STEP_COUNT_STATES.map((st) => ({
                header: <span title={STATE_HELP[st]}>{st}</span>,
                className: 'num',
                cell: (s: StepCountRow) => <CountLink version={hash} stepId={s.stepId} state={st} n={s[st]} />,
              })),
            ]}
          />
        </div>
      )}
      {canOperate && versions.data && sorted.length > 0 && <PauseControls name={name} openRuns={openRuns} />}
      {!versions.data && !versions.loading && !versions.error && <Empty>Pick a definition on <a href={href(['definitions'])}>the definitions page</a>.</Empty>}
    </Page>
  );
}
