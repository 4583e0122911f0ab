/**
 * Runs: every GET /runs filter in the URL, the counts per status of the same
 * filters (GET /runs/counts) on top, keyset pages, refreshed every 5 s.
 */
import { useEffect, useState, type FormEvent } from 'react';
import { useApi, useWho } from '../api';
import { RUN_STATUSES, STALL_REASONS, type DefinitionList, type RunPage, type RunSummary } from '../api-types';
import { Empty, ErrorBox, Loading, Page, ShortHash, Table, Time, type Column } from '../components/common';
import {
  ATTENTION_EXPLAINED,
  fromLocalInput,
  hasFilters,
  RunLink,
  runQuery,
  RunStatusCell,
  STEP_STATES,
  TemporalLink,
  toLocalInput,
  withFilters,
  type RunCounts,
} from '../components/runs-parts';
import { href, navigate, type Route } from '../router';

const REFRESH_MS = 5000;

function go(query: URLSearchParams) {
  navigate(href(['runs'], query));
}

/** The text filters, edited locally and applied together (Enter or Apply). */
function TextFilters({ query, tenantBound }: { query: URLSearchParams; tenantBound: boolean }) {
  const fields = ['q', 'version', 'tenant', 'stallRpc', 'startedAfter', 'startedBefore'] as const;
  const fromUrl = () => ({
    q: query.get('q') ?? '',
    version: query.get('version') ?? '',
    tenant: query.get('tenant') ?? '',
    stallRpc: query.get('stallRpc') ?? '',
    startedAfter: toLocalInput(query.get('startedAfter')),
    startedBefore: toLocalInput(query.get('startedBefore')),
    meta: '',
  });
  const [draft, setDraft] = useState(fromUrl);
  const qs = query.toString();
  // The URL is the truth: a link, Back or a count click resets the draft.
  useEffect(() => setDraft(fromUrl()), [qs]);
  const [metaError, setMetaError] = useState('');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const changes: Record<string, string> = {};
    for (const f of fields) changes[f] = f === 'startedAfter' || f === 'startedBefore' ? fromLocalInput(draft[f]) : draft[f].trim();
    const q = withFilters(query, changes);
    const meta = draft.meta.trim();
    if (meta) {
      const m = /^([A-Za-z0-9_.-]+)=(.*)$/.exec(meta);
      if (!m) {
        setMetaError(`metadata filter "${meta}" is not key=value (e.g. orderId=42)`);
        return;
      }
      q.set(`meta.${m[1]}`, m[2] ?? '');
    }
    setMetaError('');
    go(q);
  };
  const input = (name: keyof typeof draft, label: string, props: Record<string, string> = {}) => (
    <label>
      {label}
      <input name={name} value={draft[name]} onChange={(e) => setDraft({ ...draft, [name]: e.target.value })} {...props} />
    </label>
  );
  return (
    <form className="filters" onSubmit={submit} aria-label="Run filters">
      {input('q', 'Run id contains', { placeholder: 'order-42', type: 'search' })}
      {input('version', 'Version', { placeholder: 'hash', size: '14' })}
      {!tenantBound && input('tenant', 'Tenant', { placeholder: 'default', size: '10' })}
      {input('stallRpc', 'Stall RPC', { placeholder: 'billing.charge', size: '14' })}
      {input('startedAfter', 'Started from', { type: 'datetime-local' })}
      {input('startedBefore', 'Started before', { type: 'datetime-local' })}
      {input('meta', 'Metadata key=value', { placeholder: 'orderId=42', size: '14' })}
      <button type="submit" className="primary">
        Apply
      </button>
      {metaError && (
        <span className="bad" role="alert">
          {metaError}
        </span>
      )}
    </form>
  );
}

/** Select filters: applied at once. */
function SelectFilters({ query }: { query: URLSearchParams }) {
  const defs = useApi<DefinitionList>('/definitions');
  const select = (name: string, label: string, options: readonly string[], labels: Record<string, string> = {}) => (
    <label>
      {label}
      <select name={name} value={query.get(name) ?? ''} onChange={(e) => go(withFilters(query, { [name]: e.target.value }))}>
        <option value="">any</option>
        {options.map((o) => (
          <option key={o} value={o}>
            {labels[o] ?? o}
          </option>
        ))}
        {query.get(name) && !options.includes(query.get(name)!) && <option value={query.get(name)!}>{query.get(name)}</option>}
      </select>
    </label>
  );
  return (
    <div className="filters">
      {select('status', 'Status', RUN_STATUSES)}
      {select('definition', 'Definition', (defs.data?.definitions ?? []).map((d) => d.name))}
      {select('attention', 'Needs attention', Object.keys(ATTENTION_EXPLAINED), Object.fromEntries(Object.entries(ATTENTION_EXPLAINED).map(([k, v]) => [k, v.title])))}
      {select('stallReason', 'Stall reason', STALL_REASONS)}
      {defs.error && <ErrorBox error={defs.error} title="The definitions could not be listed" />}
    </div>
  );
}

/** The filters in force that have no field of their own (metadata, step), as removable chips. */
function Chips({ query }: { query: URLSearchParams }) {
  const chips: Array<{ label: string; remove: Record<string, null> }> = [];
  query.forEach((v, k) => {
    if (k.startsWith('meta.')) chips.push({ label: `${k.slice(5)} = ${v}`, remove: { [k]: null } });
  });
  if (query.get('step')) chips.push({ label: `step ${query.get('step')} ${query.get('stepState') ?? ''}`, remove: { step: null, stepState: null } });
  if (!chips.length && !hasFilters(query)) return null;
  return (
    <div className="chips" data-testid="filter-chips">
      {chips.map((c) => (
        <span key={c.label} className="chip">
          {c.label}{' '}
          <button type="button" aria-label={`Remove filter ${c.label}`} onClick={() => go(withFilters(query, c.remove))}>
            ×
          </button>
        </span>
      ))}
      {hasFilters(query) && <a href={href(['runs'])}>Clear all filters</a>}
    </div>
  );
}

/** The counts per status for the same filters; each one sets (or, when set, clears) the status filter. */
function Counts({ query }: { query: URLSearchParams }) {
  const counts = useApi<RunCounts>('/runs/counts', runQuery(query, { forCounts: true }), { refreshMs: REFRESH_MS });
  if (counts.error) return <ErrorBox error={counts.error} title="The counts could not be read" />;
  if (!counts.data) return <Loading what="counts" />;
  const status = query.get('status');
  return (
    <nav className="counts" aria-label="Runs per status" data-testid="run-counts">
      <a href={href(['runs'], withFilters(query, { status: null }))} className={!status ? 'active' : undefined} data-status="ALL">
        <span className="n">{counts.data.total}</span>all
      </a>
      {RUN_STATUSES.map((s) => (
        <a key={s} href={href(['runs'], withFilters(query, { status: s }))} className={status === s ? 'active' : undefined} data-status={s}>
          <span className="n">{counts.data!.counts[s] ?? 0}</span>
          {s.toLowerCase()}
        </a>
      ))}
    </nav>
  );
}

export function RunsView({ route }: { route: Route }) {
  const query = route.query;
  const who = useWho();
  const tenantBound = !!who?.tenant;
  const page = useApi<RunPage>('/runs', runQuery(query), { refreshMs: REFRESH_MS });
  const attention = query.get('attention');

  const columns: Array<Column<RunSummary & { temporalUiUrl?: string }>> = [
    { header: 'Run', cell: (r) => <RunLink id={r.id} /> },
    { header: 'Definition', cell: (r) => <a href={href(['definitions', r.definition], { version: r.version })}>{r.definition}</a> },
    { header: 'Version', cell: (r) => <ShortHash hash={r.version} /> },
    {
      header: 'Status',
      cell: (r) => <RunStatusCell run={r} attention={attention ? <div className="sub attention-flag">⚑ {ATTENTION_EXPLAINED[attention]?.title ?? attention}</div> : undefined} />,
    },
    { header: 'Current step', cell: (r) => (r.currentStep ? <code>{r.currentStep}</code> : <span className="muted">—</span>) },
    ...(tenantBound ? [] : [{ header: 'Tenant', cell: (r: RunSummary) => r.tenant }]),
    { header: 'Started', cell: (r) => <Time at={r.startedAt} /> },
    { header: 'Closed', cell: (r) => <Time at={r.closedAt} /> },
    { header: 'Temporal', cell: (r) => <TemporalLink url={r.temporalUiUrl} /> },
  ];

  const cursor = query.get('cursor');
  return (
    <Page
      title="Runs"
      actions={
        <span className="muted" data-testid="updated-at">
          {page.loading && !page.data ? 'loading…' : page.at ? <>updated {page.at.toLocaleTimeString()} · every 5 s</> : null}
        </span>
      }
    >
      <Counts query={query} />
      <SelectFilters query={query} />
      <TextFilters query={query} tenantBound={tenantBound} />
      <Chips query={query} />
      {query.get('step') && !(STEP_STATES as readonly string[]).includes(query.get('stepState') ?? '') && (
        <p className="bad">The step filter needs a stepState: one of {STEP_STATES.join(', ')}.</p>
      )}
      <ErrorBox error={page.error} title="The runs could not be listed" />
      {!page.data && !page.error && <Loading what="runs" />}
      {page.data && page.data.runs.length === 0 && (
        <Empty>
          {hasFilters(query) ? (
            <>
              No runs match these filters. <a href={href(['runs'])}>Clear the filters</a> or widen them.
            </>
          ) : cursor ? (
            <>
              No more runs. <a href={href(['runs'], withFilters(query, {}))}>Back to the first page</a>.
            </>
          ) : (
            <>
              No runs yet: start one with <code>POST /runs</code> or <code>pinflow runs start &lt;definition&gt;</code>; publish a definition first if there is none.
            </>
          )}
        </Empty>
      )}
      {page.data && page.data.runs.length > 0 && <Table rows={page.data.runs} columns={columns} rowKey={(r) => r.id} rowHref={(r) => href(['runs', r.id])} testId="runs-table" />}
      <div className="pager">
        {cursor && <a href={href(['runs'], withFilters(query, {}))}>← First page</a>}
        {page.data?.nextCursor && (
          <a href={href(['runs'], (() => { const q = new URLSearchParams(query); q.set('cursor', page.data.nextCursor); return q; })())} data-testid="next-page">
            Next page →
          </a>
        )}
      </div>
    </Page>
  );
}
