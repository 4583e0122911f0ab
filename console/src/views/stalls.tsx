/**
 * The stalls inbox: stalled runs grouped by definition, version, RPC and
 * reason (GET /stalls), live. Selecting a group lists its runs; an operator
 * retries, skips (with an output checked against the pinned output contract)
 * or cancels the whole group or the runs ticked, after a preview, and sees
 * what happened to every run.
 */
import { useEffect, useMemo, useState } from 'react';
import { api, useApi, useCan, useWho } from '../api';
import { STALL_REASONS, type RunPage, type RunSummary, type StallGroup, type StallGroupList, type VersionDetail } from '../api-types';
import { Age, ConfirmButton, Empty, ErrorBox, Loading, Page, ShortHash, Table, Time, type Column } from '../components/common';
import { eachLimited, FilterBar, parseJsonInput, queryOf, resultOf, RunLink, RunResults, useBy, useWriteError, withQuery, type RunResult } from '../components/ops-parts';
import { schemaProblems } from '../components/ops-schema';
import { href, type Route } from '../router';

const FILTERS = ['definition', 'tenant', 'version', 'rpc', 'reason'] as const;
type Action = 'retry' | 'skip' | 'cancel';
/** Over this many runs, the inbox suggests a batch (durable, paced, with its own progress page). */
const BATCH_SUGGESTED_OVER = 200;

const groupKey = (g: Pick<StallGroup, 'version' | 'rpc' | 'reason'>) => `${g.version}|${g.rpc}|${g.reason}`;
const versionName = (g: StallGroup) => `${g.definition} ${g.versionSeq !== null && g.versionSeq !== undefined ? `v${g.versionSeq}` : g.version.slice(0, 12)}`;

export function StallsView({ route }: { route: Route }) {
  const filters = queryOf(route, FILTERS);
  const groups = useApi<StallGroupList>('/stalls', filters, { refreshMs: 5000 });
  const selectedKey = route.query.get('group');
  const listedGroup = groups.data?.groups.find((g) => groupKey(g) === selectedKey);
  // A group the operator just resolved leaves the list; its panel (and the results in it) stays until another is picked.
  const [kept, setKept] = useState<StallGroup | undefined>();
  useEffect(() => {
    if (listedGroup) setKept(listedGroup);
  }, [listedGroup]);
  const selected = listedGroup ?? (kept && groupKey(kept) === selectedKey ? kept : undefined);

  const columns: Array<Column<StallGroup>> = [
    { header: 'Definition', cell: (g) => <a href={href(['definitions', g.definition])}>{g.definition}</a> },
    { header: 'Version', cell: (g) => <ShortHash hash={g.version} seq={g.versionSeq} /> },
    { header: 'RPC', cell: (g) => <code>{g.rpc}</code> },
    { header: 'Reason', cell: (g) => <span className="badge status-stalled">{g.reason}</span> },
    { header: 'Runs', className: 'num', cell: (g) => <strong data-testid="group-count">{g.count}</strong> },
    { header: 'Oldest', cell: (g) => <Age since={g.oldestSince} /> },
    { header: 'Newest', cell: (g) => <Time at={g.newestSince} /> },
    {
      header: '',
      cell: (g) => (
        <a href={withQuery(route, { group: groupKey(g) })} data-testid="open-group">
          {groupKey(g) === selectedKey ? 'Selected' : 'Open'}
        </a>
      ),
    },
  ];

  return (
    <Page title="Stalls" actions={groups.at && <span className="muted">live · updated <Time at={groups.at.toISOString()} /></span>}>
      <FilterBar
        route={route}
        fields={[
          { name: 'definition', label: 'Definition' },
          { name: 'version', label: 'Version hash', width: 140 },
          { name: 'rpc', label: 'RPC' },
          { name: 'reason', label: 'Reason', options: STALL_REASONS },
          { name: 'tenant', label: 'Tenant', width: 110 },
        ]}
      />
      <ErrorBox error={groups.error} title="The stalls could not be read" />
      {!groups.data && groups.loading && <Loading what="the stalls" />}
      {groups.data && groups.data.groups.length === 0 && (
        <Empty>
          {Object.keys(filters).length > 0 ? 'No stalled runs match these filters. ' : 'No stalled runs. '}A run stalls when the deployed RPC no longer fits the contract it was pinned
          with; the <a href={href(['deploy-check'])}>deploy check</a> shows which runs a deploy would stall.
        </Empty>
      )}
      {groups.data && groups.data.groups.length > 0 && (
        <>
          <p className="muted">
            <strong data-testid="stalls-total">{groups.data.total}</strong> stalled run{groups.data.total === 1 ? '' : 's'} in {groups.data.groups.length} group{groups.data.groups.length === 1 ? '' : 's'}. Open a group to see its runs and decide.
          </p>
          <Table rows={groups.data.groups} columns={columns} rowKey={groupKey} rowHref={(g) => withQuery(route, { group: groupKey(g) })} selected={(g) => groupKey(g) === selectedKey} testId="stall-groups" />
        </>
      )}
      {selectedKey && groups.data && !selected && <Empty>This group has no stalled runs any more (they were resolved or closed). Pick another group.</Empty>}
      {selected && <GroupPanel key={groupKey(selected)} group={selected} tenant={filters.tenant} current={listedGroup !== undefined} onDone={groups.reload} />}
    </Page>
  );
}

/** Every stalled run of the group (pages of 500). */
async function groupRuns(group: StallGroup, tenant: string | undefined): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const page: RunPage = await api<RunPage>('/runs', {
      query: { status: 'STALLED', definition: group.definition, version: group.version, stallRpc: group.rpc, stallReason: group.reason, tenant, limit: 500, cursor },
    });
    ids.push(...page.runs.map((r) => r.id));
    cursor = page.nextCursor ?? null;
  } while (cursor);
  return ids;
}

function GroupPanel({ group, tenant, current, onDone }: { group: StallGroup; tenant: string | undefined; current: boolean; onDone: () => void }) {
  const canOperate = useCan('operate');
  const by = useBy();
  const who = useWho();
  const runs = useApi<RunPage>('/runs', { status: 'STALLED', definition: group.definition, version: group.version, stallRpc: group.rpc, stallReason: group.reason, tenant, limit: 500 }, { refreshMs: 5000 });
  const version = useApi<VersionDetail>(`/versions/${encodeURIComponent(group.version)}`);
  const [ticked, setTicked] = useState<Set<string>>(new Set());
  const [action, setAction] = useState<Action>('retry');
  const [note, setNote] = useState('');
  const [outputText, setOutputText] = useState('');
  const [progress, setProgress] = useState<{ done: number; of: number } | null>(null);
  const [results, setResults] = useState<RunResult[] | null>(null);
  const [error, setError, clearError] = useWriteError();

  const listed = runs.data?.runs ?? [];
  // Ticks of runs no longer stalled are dropped.
  useEffect(() => {
    if (!runs.data) return;
    const open = new Set(runs.data.runs.map((r) => r.id));
    setTicked((t) => (([...t].every((id) => open.has(id)) ? t : new Set([...t].filter((id) => open.has(id))))));
  }, [runs.data]);

  const outputSchema = version.data?.contracts[group.rpc]?.output;
  const parsed = useMemo(() => parseJsonInput(outputText), [outputText]);
  const outputProblems = useMemo(() => {
    if (action !== 'skip') return [];
    if (!parsed.ok) return [parsed.message];
    if (parsed.value === undefined) return ['a skip needs the output the step would have produced (JSON)'];
    return schemaProblems(outputSchema, parsed.value);
  }, [action, parsed, outputSchema]);
  const needsReason = action !== 'retry';
  const reasonMissing = needsReason && note.trim() === '';

  const whole = ticked.size === 0;
  const count = whole ? (current ? group.count : listed.length) : ticked.size;
  const verb = action === 'retry' ? 'retry' : action === 'skip' ? 'skip the step of' : 'cancel';
  const preview = `This will ${verb} ${count} ${whole ? '' : 'selected '}run${count === 1 ? '' : 's'} of ${versionName(group)} stalled on ${group.rpc} (${group.reason}).`;

  const run = async () => {
    clearError();
    setResults(null);
    try {
      const skipOutput = action === 'skip' && parsed.ok ? parsed.value : undefined;
      // POST /stalls/resolve needs a key for every tenant; a tenant's key decides run by run.
      if (whole && action !== 'cancel' && who?.tenant === null) {
        // One request when no other group shares this RPC and reason (POST /stalls/resolve acts on all of them).
        const same = await api<StallGroupList>('/stalls', { query: { rpc: group.rpc, reason: group.reason } });
        if (same.groups.length === 1 && groupKey(same.groups[0] as StallGroup) === groupKey(group)) {
          setProgress({ done: 0, of: group.count });
          const res = await api<{ results: Array<{ runId: string; ok: boolean; skipped?: boolean; reason?: string; error?: { code: string; message: string } }> }>('/stalls/resolve', {
            method: 'POST',
            body: { action, by, rpc: group.rpc, reason: group.reason, ...(note.trim() ? { note: note.trim() } : {}), ...(skipOutput !== undefined ? { output: skipOutput } : {}) },
          });
          setResults(
            res.results.map((r) => ({
              runId: r.runId,
              outcome: r.ok ? 'ok' : r.skipped ? 'skipped' : 'failed',
              code: r.error?.code,
              message: r.error?.message ?? r.reason,
            })),
          );
          setProgress({ done: res.results.length, of: res.results.length });
          runs.reload();
          onDone();
          return;
        }
      }
      const ids = whole ? await groupRuns(group, tenant) : [...ticked];
      const out: RunResult[] = [];
      setProgress({ done: 0, of: ids.length });
      await eachLimited(
        ids,
        4,
        async (id): Promise<RunResult> => {
          try {
            if (action === 'cancel') await api(`/runs/${encodeURIComponent(id)}/cancel`, { method: 'POST', body: { by, reason: note.trim() } });
            else
              await api(`/runs/${encodeURIComponent(id)}/decisions`, {
                method: 'POST',
                body: { action, by, ...(note.trim() ? { reason: note.trim() } : {}), ...(skipOutput !== undefined ? { output: skipOutput } : {}) },
              });
            return { runId: id, outcome: 'ok' };
          } catch (e) {
            return resultOf(id, e);
          }
        },
        (r, done) => {
          out.push(r);
          setProgress({ done, of: ids.length });
          setResults([...out]);
        },
      );
      setTicked(new Set());
      runs.reload();
      onDone();
    } catch (e) {
      setError(e);
    }
  };

  const runColumns: Array<Column<RunSummary>> = [
    ...(canOperate
      ? [
          {
            header: (
              <input
                type="checkbox"
                aria-label="Select every listed run"
                checked={listed.length > 0 && ticked.size === listed.length}
                onChange={(e) => setTicked(e.target.checked ? new Set(listed.map((r) => r.id)) : new Set())}
              />
            ),
            cell: (r: RunSummary) => (
              <input
                type="checkbox"
                aria-label={`Select ${r.id}`}
                data-testid="run-check"
                checked={ticked.has(r.id)}
                onChange={(e) =>
                  setTicked((t) => {
                    const n = new Set(t);
                    if (e.target.checked) n.add(r.id);
                    else n.delete(r.id);
                    return n;
                  })
                }
              />
            ),
          },
        ]
      : []),
    { header: 'Run', cell: (r) => <RunLink id={r.id} /> },
    { header: 'Tenant', cell: (r) => r.tenant },
    { header: 'Step', cell: (r) => <code>{r.stall?.stepInstance ?? r.currentStep ?? '—'}</code> },
    { header: 'Stalled for', cell: (r) => <Age since={r.stall?.since} /> },
    { header: 'Why', cell: (r) => <span className="muted">{stallMessage(r)}</span> },
  ];

  return (
    <div className="card" data-testid="group-panel">
      <h2>
        {versionName(group)} · <code>{group.rpc}</code> · {group.reason} · {current ? `${group.count} run${group.count === 1 ? '' : 's'}` : 'no run stalled now'}
      </h2>
      <ErrorBox error={runs.error} title="The group's runs could not be read" />
      {runs.data && listed.length === 0 && <Empty>No run of this group is stalled now.</Empty>}
      {listed.length > 0 && (
        <>
          {runs.data?.nextCursor && <p className="muted">The first {listed.length} runs are listed; deciding for the whole group acts on all {group.count}.</p>}
          <Table rows={listed} columns={runColumns} rowKey={(r) => r.id} rowHref={(r) => href(['runs', r.id])} selected={(r) => ticked.has(r.id)} testId="group-runs" />
        </>
      )}
      {canOperate ? (
        <div className="decide" data-testid="decide">
          <h3>Decide</h3>
          <div className="form-grid">
            <label htmlFor="stall-action">Action</label>
            <select id="stall-action" value={action} onChange={(e) => setAction(e.target.value as Action)}>
              <option value="retry">retry: call the RPC again (after a fixing deploy)</option>
              <option value="skip">skip: give the step an output and go on</option>
              <option value="cancel">cancel the runs</option>
            </select>
            {action === 'skip' && (
              <>
                <label htmlFor="skip-output">Output</label>
                <div>
                  <textarea id="skip-output" rows={5} value={outputText} onChange={(e) => setOutputText(e.target.value)} placeholder='{"sum": 0}' />
                  <details className="json">
                    <summary>pinned output contract of {group.rpc}</summary>
                    <pre>{JSON.stringify(outputSchema ?? null, null, 2)}</pre>
                  </details>
                  {outputProblems.length > 0 && (
                    <ul className="bad" data-testid="output-problems">
                      {outputProblems.map((p) => (
                        <li key={p}>{p}</li>
                      ))}
                    </ul>
                  )}
                </div>
              </>
            )}
            <label htmlFor="stall-note">Reason{needsReason ? ' (required)' : ''}</label>
            <input id="stall-note" value={note} onChange={(e) => setNote(e.target.value)} placeholder="why: recorded with every decision" />
          </div>
          <p data-testid="decide-preview">
            <strong>{preview}</strong> {whole ? 'Tick runs above to act on some only.' : <button type="button" onClick={() => setTicked(new Set())}>Clear selection</button>}
          </p>
          {whole && group.count > BATCH_SUGGESTED_OVER && action !== 'skip' && (
            <p>
              A large group: a{' '}
              <a href={href(['batches'], { new: '1', action, status: 'STALLED', definition: group.definition, version: group.version, stallRpc: group.rpc, stallReason: group.reason, tenant })}>batch</a> acts on it durably, paced,
              with its own progress page.
            </p>
          )}
          <ConfirmButton
            label={`${action === 'retry' ? 'Retry' : action === 'skip' ? 'Skip' : 'Cancel'} ${count} run${count === 1 ? '' : 's'}`}
            confirmText={preview}
            danger={action !== 'retry'}
            disabled={count === 0 || outputProblems.length > 0 || reasonMissing || (progress !== null && progress.done < progress.of && results === null)}
            onConfirm={run}
          />
          {reasonMissing && <span className="muted"> A {action} needs a reason.</span>}
          {progress && (
            <p data-testid="decide-progress">
              {progress.done} / {progress.of} runs done
            </p>
          )}
          <ErrorBox error={error} title="The decision was refused" />
          {results && <RunResults results={results} title={`Results: ${action}`} />}
        </div>
      ) : (
        <p className="muted" data-testid="read-only">
          Your key may read only: deciding needs the operate scope.
        </p>
      )}
    </div>
  );
}

function stallMessage(r: RunSummary): string {
  const d = r.stall?.details as { message?: unknown } | null | undefined;
  return typeof d?.message === 'string' ? d.message : (r.stall?.reason ?? '');
}
