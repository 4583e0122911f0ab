/**
 * Events: the event log (GET /events, keyset pages), who waits on a key (GET
 * /waits) and the correlation rules (GET /correlation-rules; edited with the
 * publish scope). Every filter is in the URL.
 */
import { useState, type FormEvent } from 'react';
import { api, useApi, useCan } from '../api';
import { EVENT_STATUSES, WAIT_STATUS_NAMES, type EventPage, type EventRecord, type RuleEntry, type RuleList, type WaitEntry, type WaitList } from '../api-types';
import { Age, ConfirmButton, Empty, ErrorBox, formatDuration, Loading, Page, StatusBadge, Table, Time, type Column } from '../components/common';
import { EVENT_STATUS_MEANING, SendEventForm } from '../components/ops-events';
import { FilterBar, formText, Pager, queryOf, RunLink, useBy, useWriteError } from '../components/ops-parts';
import { href, type Route } from '../router';

const TABS = [
  { id: 'log', label: 'Event log' },
  { id: 'waits', label: 'Who waits on a key' },
  { id: 'rules', label: 'Correlation rules' },
] as const;

export function EventsView({ route }: { route: Route }) {
  const tab = route.query.get('tab') ?? 'log';
  const canOperate = useCan('operate');
  return (
    <Page title="Events">
      <nav className="tabs" aria-label="Events">
        {TABS.map((t) => (
          <a key={t.id} href={href(['events'], { tab: t.id })} className={tab === t.id ? 'active' : undefined} aria-current={tab === t.id ? 'page' : undefined}>
            {t.label}
          </a>
        ))}
      </nav>
      {tab === 'waits' ? <WaitsTab route={route} /> : tab === 'rules' ? <RulesTab /> : <LogTab route={route} canOperate={canOperate} />}
    </Page>
  );
}

/** The event's status and, when not routed, why (the API's error, else what the status means). */
export function EventOutcome({ e }: { e: Pick<EventRecord, 'status' | 'error'> }) {
  return (
    <span data-testid="event-outcome">
      {e.error ? (
        <>
          <code>{e.error.code}</code> {e.error.message}
        </>
      ) : e.status === 'ROUTED' ? (
        <span className="muted">delivered</span>
      ) : (
        <span className="muted">{EVENT_STATUS_MEANING[e.status] ?? ''}</span>
      )}
    </span>
  );
}

function LogTab({ route, canOperate }: { route: Route; canOperate: boolean }) {
  const q = queryOf(route, ['status', 'name', 'key', 'tenant', 'cursor']);
  const events = useApi<EventPage>('/events', { ...q, limit: 50 }, { refreshMs: q.cursor ? undefined : 5000 });
  const columns: Array<Column<EventRecord>> = [
    { header: 'Received', cell: (e) => <Time at={e.receivedAt} /> },
    { header: 'Event', cell: (e) => <a href={href(['events', e.eventId], { tenant: e.tenant })}>{e.name}</a> },
    { header: 'Status', cell: (e) => <StatusBadge status={e.status} /> },
    { header: 'Door', cell: (e) => e.source },
    {
      header: 'Correlation key',
      cell: (e) =>
        e.correlationKey === null ? (
          <span className="muted">—</span>
        ) : (
          <>
            <a href={href(['events'], { tab: 'waits', key: e.correlationKey, event: e.name, tenant: e.tenant })} title="who waits on this key">
              {e.correlationKey}
            </a>{' '}
            <span className="muted">({e.keySource ?? '?'})</span>
          </>
        ),
    },
    { header: 'Tenant', cell: (e) => e.tenant },
    { header: 'Attempts', className: 'num', cell: (e) => e.attempts },
    { header: 'Why', cell: (e) => <EventOutcome e={e} /> },
  ];
  return (
    <>
      {canOperate && <SendEventForm defaultTenant={q.tenant} />}
      <FilterBar
        route={route}
        fields={[
          { name: 'status', label: 'Status', options: EVENT_STATUSES },
          { name: 'name', label: 'Event name' },
          { name: 'key', label: 'Correlation key' },
          { name: 'tenant', label: 'Tenant', width: 110 },
        ]}
      />
      <ErrorBox error={events.error} title="The event log could not be read" />
      {!events.data && events.loading && <Loading what="the events" />}
      {events.data && events.data.events.length === 0 && (
        <Empty>
          No events{Object.keys(q).length > 0 ? ' match these filters' : ' yet'}. Events come in through <code>POST /events</code>, the library&apos;s <code>submitEvent</code> or a
          stream; each is routed to the runs waiting on its name and correlation key.
        </Empty>
      )}
      {events.data && events.data.events.length > 0 && (
        <Table rows={events.data.events} columns={columns} rowKey={(e) => `${e.tenant}/${e.eventId}`} rowHref={(e) => href(['events', e.eventId], { tenant: e.tenant })} testId="events" />
      )}
      {events.data && <Pager route={route} next={events.data.nextCursor} shown={events.data.events.length} />}
    </>
  );
}

function WaitsTab({ route }: { route: Route }) {
  const q = queryOf(route, ['key', 'event', 'runId', 'tenant', 'status']);
  const waits = useApi<WaitList>('/waits', { ...q, limit: 200 }, { refreshMs: 5000 });
  const columns: Array<Column<WaitEntry>> = [
    { header: 'Run', cell: (w) => <RunLink id={w.runId} /> },
    { header: 'Wait', cell: (w) => <code>{w.waitId}</code> },
    { header: 'Step', cell: (w) => <code>{w.stepInstance}</code> },
    { header: 'Event', cell: (w) => w.event },
    { header: 'Key', cell: (w) => w.correlationKey },
    { header: 'Tenant', cell: (w) => w.tenant },
    { header: 'Status', cell: (w) => <StatusBadge status={w.status} /> },
    { header: 'Waiting since', cell: (w) => <Time at={w.openedAt ?? w.reachedAt} /> },
    { header: 'For', cell: (w) => <Age since={w.openedAt ?? w.reachedAt} /> },
    { header: 'Times out', cell: (w) => <Time at={w.timeoutAt} /> },
  ];
  return (
    <>
      <FilterBar
        route={route}
        fields={[
          { name: 'key', label: 'Correlation key' },
          { name: 'event', label: 'Event name' },
          { name: 'runId', label: 'Run id' },
          { name: 'tenant', label: 'Tenant', width: 110 },
          { name: 'status', label: 'Status (default OPEN)', options: WAIT_STATUS_NAMES },
        ]}
      />
      <ErrorBox error={waits.error} title="The waits could not be read" />
      {!waits.data && waits.loading && <Loading what="the waits" />}
      {waits.data && waits.data.waits.length === 0 && (
        <Empty>
          No run {q.status && q.status !== 'OPEN' ? `has a ${q.status} wait` : 'waits'}
          {q.key ? ` on key ${q.key}` : ''}
          {q.event ? ` for ${q.event}` : ''}. A run waits when it reaches a wait step; an event with that name and key resumes it.
        </Empty>
      )}
      {waits.data && waits.data.waits.length > 0 && (
        <Table rows={waits.data.waits} columns={columns} rowKey={(w) => `${w.runId}/${w.waitId}`} rowHref={(w) => href(['runs', w.runId])} testId="waits" />
      )}
    </>
  );
}

function RulesTab() {
  const rules = useApi<RuleList>('/correlation-rules');
  const canPublish = useCan('publish');
  const by = useBy();
  const [error, setError, clearError] = useWriteError();
  const [editing, setEditing] = useState<Partial<RuleEntry> | null>(null);

  const save = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    clearError();
    const data = new FormData(e.currentTarget);
    const name = formText(data, 'eventName');
    const ttl = formText(data, 'ttl');
    try {
      await api(`/correlation-rules/${encodeURIComponent(name)}`, {
        method: 'PUT',
        body: { expression: formText(data, 'expression'), by, ttl: ttl === '' ? null : /^\d+$/.test(ttl) ? Number(ttl) : ttl },
      });
      setEditing(null);
      rules.reload();
    } catch (err) {
      setError(err);
    }
  };
  const remove = async (name: string) => {
    clearError();
    try {
      await api(`/correlation-rules/${encodeURIComponent(name)}`, { method: 'DELETE' });
      rules.reload();
    } catch (err) {
      setError(err);
    }
  };

  const columns: Array<Column<RuleEntry>> = [
    { header: 'Event', cell: (r) => <strong>{r.eventName}</strong> },
    { header: 'Key expression', cell: (r) => <code>{r.expression}</code> },
    { header: 'Time to live', cell: (r) => (r.ttlMs === null ? <span className="muted">none</span> : formatDuration(r.ttlMs)) },
    { header: 'Source', cell: (r) => (r.source === 'code' ? 'code (read-only)' : 'API') },
    { header: 'Updated by', cell: (r) => r.updatedBy ?? <span className="muted">—</span> },
    { header: 'Updated', cell: (r) => <Time at={r.updatedAt} /> },
    ...(canPublish
      ? [
          {
            header: '',
            cell: (r: RuleEntry) =>
              r.source === 'api' ? (
                <span>
                  <button type="button" onClick={() => setEditing(r)}>
                    Edit
                  </button>{' '}
                  <ConfirmButton label="Delete" danger confirmText={`Delete the rule of ${r.eventName}? Events named ${r.eventName} then need an explicit key.`} onConfirm={() => remove(r.eventName)} />
                </span>
              ) : null,
          },
        ]
      : []),
  ];
  return (
    <>
      <p className="muted">A rule finds an event&apos;s correlation key in its payload when the sender gives none, and sets the event name&apos;s default time to live.</p>
      <ErrorBox error={rules.error} title="The rules could not be read" />
      {!rules.data && rules.loading && <Loading what="the rules" />}
      {rules.data && rules.data.rules.length === 0 && <Empty>No correlation rules. Without one, every event must carry its correlation key.</Empty>}
      {rules.data && rules.data.rules.length > 0 && <Table rows={rules.data.rules} columns={columns} rowKey={(r) => r.eventName} testId="rules" />}
      <ErrorBox error={error} title="The rule was refused" />
      {canPublish && (
        <div className="card">
          {editing === null ? (
            <button type="button" onClick={() => setEditing({})}>
              New rule
            </button>
          ) : (
            <form className="form-grid" onSubmit={(e) => void save(e)} key={editing.eventName ?? 'new'}>
              <label htmlFor="rule-name">Event name</label>
              <input id="rule-name" name="eventName" required defaultValue={editing.eventName ?? ''} readOnly={editing.eventName !== undefined} />
              <label htmlFor="rule-expr">Key expression</label>
              <input id="rule-expr" name="expression" required defaultValue={editing.expression ?? ''} placeholder="payload.orderId" />
              <label htmlFor="rule-ttl">Time to live</label>
              <input id="rule-ttl" name="ttl" defaultValue={editing.ttlMs ?? ''} placeholder="none; or 30s, 5m, 2h, 1d, ms" />
              <span />
              <span>
                <button type="submit" className="primary">
                  Save
                </button>{' '}
                <button type="button" onClick={() => setEditing(null)}>
                  Cancel
                </button>
              </span>
            </form>
          )}
        </div>
      )}
    </>
  );
}

