/** The audit log (GET /audit, admin): every write and every refusal, newest first, filters in the URL, keyset pages. */
import { useApi } from '../api';
import { AUDIT_OUTCOME_NAMES, type AuditEntry, type AuditPage } from '../api-types';
import { Empty, ErrorBox, JsonView, Loading, Page, Table, Time, type Column } from '../components/common';
import { FilterBar, Pager, queryOf, RunLink } from '../components/ops-parts';
import { href, type Route } from '../router';

const FILTERS = ['action', 'runId', 'keyId', 'outcome', 'since', 'until', 'cursor'] as const;

export function AuditView({ route }: { route: Route }) {
  const q = queryOf(route, FILTERS);
  const audit = useApi<AuditPage>('/audit', { ...q, limit: 100 }, { refreshMs: q.cursor ? undefined : 10_000 });
  const columns: Array<Column<AuditEntry>> = [
    { header: 'At', cell: (a) => <Time at={a.at} /> },
    {
      header: 'Key / by',
      cell: (a) => (
        <>
          {a.keyId ? <a href={href(['audit'], { keyId: a.keyId })}>{a.keyId}</a> : <span className="muted">no key</span>}
          {a.by && <div className="muted">{a.by}</div>}
        </>
      ),
    },
    {
      header: 'Action',
      cell: (a) => (
        <>
          <a href={href(['audit'], { action: a.action })}>{a.action}</a>
          {a.route && (
            <div className="muted">
              {a.method} {a.route}
            </div>
          )}
        </>
      ),
    },
    {
      header: 'Targets',
      cell: (a) =>
        a.runIds.length > 0 ? (
          <span className="targets">
            {a.runIds.slice(0, 10).map((id) => (
              <RunLink key={id} id={id} />
            ))}
            {a.runIds.length > 10 && <span className="muted">+{a.runIds.length - 10} more</span>}
          </span>
        ) : a.targetIds.length > 0 ? (
          <span>
            {a.targetKind && <span className="muted">{a.targetKind} </span>}
            {a.targetIds.join(', ')}
          </span>
        ) : (
          <span className="muted">—</span>
        ),
    },
    { header: 'Tenant', cell: (a) => a.tenant ?? <span className="muted">all</span> },
    {
      header: 'Outcome',
      cell: (a) => (
        <span className={a.outcome === 'accepted' ? 'ok' : 'bad'} data-testid="audit-outcome">
          {a.outcome}
          {a.status !== null && <span className="muted"> ({a.status})</span>}
        </span>
      ),
    },
    { header: 'Reason', cell: (a) => a.reason ?? <span className="muted">—</span> },
    { header: 'Request', cell: (a) => <JsonView value={a.request} label="summary" /> },
  ];
  return (
    <Page title="Audit">
      <FilterBar
        route={route}
        fields={[
          { name: 'action', label: 'Action', placeholder: 'run.decide' },
          { name: 'runId', label: 'Run id' },
          { name: 'keyId', label: 'Key id', width: 120 },
          { name: 'outcome', label: 'Outcome', options: AUDIT_OUTCOME_NAMES },
          { name: 'since', label: 'Since', type: 'datetime' },
          { name: 'until', label: 'Until', type: 'datetime' },
        ]}
      />
      <ErrorBox error={audit.error} title="The audit log could not be read" />
      {!audit.data && audit.loading && <Loading what="the audit log" />}
      {audit.data && audit.data.entries.length === 0 && (
        <Empty>No audit rows{Object.keys(q).length > 0 ? ' match these filters' : ''}. Every write through the API (and every refused one) is recorded here.</Empty>
      )}
      {audit.data && audit.data.entries.length > 0 && <Table rows={audit.data.entries} columns={columns} rowKey={(a) => a.id} testId="audit" />}
      {audit.data && <Pager route={route} next={audit.data.nextCursor} shown={audit.data.entries.length} />}
    </Page>
  );
}
