/** One event (GET /events/:id?tenant=…): its key and how it was found, why it has its status, its payload and its deliveries per run and wait. */
import { useApi } from '../api';
import type { Delivery, EventDetail } from '../api-types';
import { Empty, ErrorBox, formatDuration, JsonView, Loading, Page, StatusBadge, Table, Time, type Column } from '../components/common';
import { RunLink } from '../components/ops-parts';
import { href, type Route } from '../router';
import { EventOutcome } from './events';

export function EventDetailView({ route }: { route: Route }) {
  const id = route.parts[1] ?? '';
  const tenant = route.query.get('tenant') ?? 'default';
  const ev = useApi<EventDetail>(`/events/${encodeURIComponent(id)}`, { tenant }, { refreshMs: 5000 });
  const e = ev.data;
  const columns: Array<Column<Delivery>> = [
    { header: 'Run', cell: (d) => <RunLink id={d.runId} /> },
    { header: 'Wait', cell: (d) => <code>{d.waitId}</code> },
    { header: 'Step', cell: (d) => (d.stepInstance ? <code>{d.stepInstance}</code> : <span className="muted">—</span>) },
    { header: 'Via', cell: (d) => d.via },
    { header: 'Status', cell: (d) => <StatusBadge status={d.status} /> },
    { header: 'Attempts', className: 'num', cell: (d) => d.attempts },
    { header: 'Last error', cell: (d) => d.lastError ?? <span className="muted">—</span> },
    { header: 'Wait now', cell: (d) => (d.waitStatus ? <StatusBadge status={d.waitStatus} /> : <span className="muted">—</span>) },
    { header: 'Consumed', cell: (d) => (d.consumed ? 'yes' : 'no') },
  ];
  return (
    <Page title={<>Event {id}</>} actions={<a href={href(['events'])}>All events</a>}>
      <ErrorBox error={ev.error} title="The event could not be read" />
      {!e && ev.loading && <Loading what="the event" />}
      {e && (
        <>
          <div className="card" data-testid="event-summary">
            <div className="form-grid">
              <span className="muted">Name</span>
              <strong>{e.name}</strong>
              <span className="muted">Status</span>
              <span>
                <StatusBadge status={e.status} />
              </span>
              <span className="muted">Why</span>
              <EventOutcome e={e} />
              <span className="muted">Tenant</span>
              <span>{e.tenant}</span>
              <span className="muted">Correlation key</span>
              <span>
                {e.correlationKey === null ? (
                  <span className="muted">none</span>
                ) : (
                  <>
                    <a href={href(['events'], { tab: 'waits', key: e.correlationKey, event: e.name, tenant: e.tenant })}>{e.correlationKey}</a>{' '}
                    <span className="muted">({e.keySource === 'rule' ? 'found by the correlation rule' : 'given by the sender'})</span>
                  </>
                )}
              </span>
              <span className="muted">Door</span>
              <span>{e.source}</span>
              <span className="muted">Received</span>
              <Time at={e.receivedAt} />
              <span className="muted">Updated</span>
              <Time at={e.updatedAt} />
              <span className="muted">Attempts</span>
              <span>{e.attempts}</span>
              <span className="muted">Time to live</span>
              <span>
                {e.ttlMs === null ? 'none' : formatDuration(e.ttlMs)}
                {e.expiresAt && (
                  <>
                    {' '}
                    (until <Time at={e.expiresAt} />)
                  </>
                )}
              </span>
            </div>
            <JsonView value={e.payload} label="payload" />
          </div>
          <div className="card">
            <h2>Deliveries</h2>
            {e.deliveries.length === 0 ? (
              <Empty>
                No deliveries: no run took this event.{' '}
                {e.correlationKey !== null && (
                  <>
                    See <a href={href(['events'], { tab: 'waits', key: e.correlationKey, event: e.name, tenant: e.tenant })}>who waits on key {e.correlationKey}</a> now.
                  </>
                )}
              </Empty>
            ) : (
              <Table rows={e.deliveries} columns={columns} rowKey={(d) => `${d.runId}/${d.waitId}`} rowHref={(d) => href(['runs', d.runId])} testId="deliveries" />
            )}
          </div>
        </>
      )}
    </Page>
  );
}
