/**
 * One batch (GET /batches/:id, live): progress, skipped and failed by
 * reason, its items (GET /batches/:id/items, paged) and pause, resume and
 * cancel for operators.
 */
import { useEffect, useState } from 'react';
import { api, useApi, useCan } from '../api';
import { BATCH_ITEM_STATUS_NAMES, type BatchItem, type BatchItemPage, type BatchView } from '../api-types';
import { ConfirmButton, Empty, ErrorBox, JsonView, Loading, Page, StatusBadge, Table, Time, type Column } from '../components/common';
import { BatchProgress } from '../components/ops-batches';
import { FilterBar, Pager, RunLink, useBy, useWriteError } from '../components/ops-parts';
import { href, type Route } from '../router';
import { filterText } from './batches';

type StateAction = 'pause' | 'resume' | 'cancel';

export function BatchDetailView({ route }: { route: Route }) {
  const id = route.parts[1] ?? '';
  const batch = useApi<BatchView>(`/batches/${encodeURIComponent(id)}`, undefined, { refreshMs: 3000 });
  const itemStatus = route.query.get('status');
  const after = route.query.get('after');
  const items = useApi<BatchItemPage>(`/batches/${encodeURIComponent(id)}/items`, { status: itemStatus, after, limit: 100 }, { refreshMs: 5000 });
  const canOperate = useCan('operate');
  const by = useBy();
  const [reason, setReason] = useState('');
  const [error, setError, clearError] = useWriteError();
  const b = batch.data;
  // The items follow the batch's progress: read again whenever the batch moved.
  const reloadItems = items.reload;
  const moved = b?.updatedAt;
  useEffect(() => {
    if (moved) reloadItems();
  }, [moved, reloadItems]);

  const act = async (what: StateAction) => {
    clearError();
    try {
      await api(`/batches/${encodeURIComponent(id)}/${what}`, { method: 'POST', body: { by, reason: reason.trim() } });
      batch.reload();
      items.reload();
    } catch (e) {
      setError(e);
    }
  };
  const stateButton = (what: StateAction, label: string, effect: string) => (
    <ConfirmButton label={label} danger={what === 'cancel'} disabled={reason.trim() === ''} confirmText={`${label} batch ${id}: ${effect}`} onConfirm={() => act(what)} />
  );

  const columns: Array<Column<BatchItem>> = [
    { header: '#', className: 'num', cell: (i) => i.seq },
    { header: 'Run', cell: (i) => <RunLink id={i.runId} /> },
    { header: 'Run was', cell: (i) => <StatusBadge status={i.runStatus} /> },
    { header: 'Item', cell: (i) => <StatusBadge status={i.status} /> },
    { header: 'Attempts', className: 'num', cell: (i) => i.attempts },
    { header: 'Code', cell: (i) => (i.code ? <code>{i.code}</code> : <span className="muted">—</span>) },
    { header: 'Message', cell: (i) => i.message ?? '' },
    { header: 'Result', cell: (i) => (i.result === null || i.result === undefined ? <span className="muted">—</span> : <JsonView value={i.result} label="result" />) },
    { header: 'Finished', cell: (i) => <Time at={i.finishedAt} /> },
  ];

  return (
    <Page title={<>Batch {id}</>} actions={<a href={href(['batches'])}>All batches</a>}>
      <ErrorBox error={batch.error} title="The batch could not be read" />
      {!b && batch.loading && <Loading what="the batch" />}
      {b && (
        <>
          <div className="card" data-testid="batch-summary">
            <div className="form-grid">
              <span className="muted">Action</span>
              <strong>{b.action}</strong>
              <span className="muted">State</span>
              <span>
                <StatusBadge status={b.state} />
                {b.stateBy && (
                  <span className="muted">
                    {' '}
                    by {b.stateBy}
                    {b.stateReason ? `: ${b.stateReason}` : ''}
                  </span>
                )}
              </span>
              <span className="muted">Progress</span>
              <BatchProgress progress={b.progress} />
              <span className="muted">Filter</span>
              <code>{filterText(b.filter)}</code>
              <span className="muted">Parameters</span>
              {Object.keys(b.params).length > 0 ? <JsonView value={b.params} label="parameters" /> : <span className="muted">none</span>}
              <span className="muted">Created</span>
              <span>
                <Time at={b.createdAt} /> by {b.by}: {b.reason}
              </span>
              <span className="muted">Finished</span>
              <Time at={b.finishedAt} />
              <span className="muted">Pace</span>
              <span>
                {b.ratePerSecond} runs/s, {b.concurrency} at once
              </span>
            </div>
          </div>
          {(b.skippedByReason.length > 0 || b.failedByReason.length > 0) && (
            <div className="row">
              {(['failedByReason', 'skippedByReason'] as const).map((k) =>
                b[k].length === 0 ? null : (
                  <div className="card grow" key={k}>
                    <h2>{k === 'failedByReason' ? 'Failed, by reason' : 'Skipped, by reason'}</h2>
                    <ul>
                      {b[k].map((r) => (
                        <li key={r.code}>
                          <a href={href(['batches', id], { status: k === 'failedByReason' ? 'FAILED' : 'SKIPPED' })}>
                            <code>{r.code}</code>
                          </a>{' '}
                          × {r.count}
                          {r.example && <span className="muted"> — e.g. {r.example}</span>}
                        </li>
                      ))}
                    </ul>
                  </div>
                ),
              )}
            </div>
          )}
          {canOperate && (b.state === 'RUNNING' || b.state === 'PAUSED') && (
            <div className="card" data-testid="batch-actions">
              <div className="filters">
                <label>
                  Reason (required)
                  <input value={reason} onChange={(e) => setReason(e.target.value)} placeholder="why" />
                </label>
                {b.state === 'RUNNING' && stateButton('pause', 'Pause', `no further run is acted on until it is resumed (${b.progress.pending} pending).`)}
                {b.state === 'PAUSED' && stateButton('resume', 'Resume', `it goes on with the ${b.progress.pending} pending runs.`)}
                {stateButton('cancel', 'Cancel', `the ${b.progress.pending} runs not yet acted on are skipped; this cannot be undone.`)}
              </div>
              <ErrorBox error={error} title="The batch refused" />
            </div>
          )}
        </>
      )}
      <h2>Items</h2>
      <FilterBar route={route} fields={[{ name: 'status', label: 'Item status', options: BATCH_ITEM_STATUS_NAMES }]} />
      <ErrorBox error={items.error} title="The items could not be read" />
      {items.data && items.data.items.length === 0 && <Empty>No items{itemStatus ? ` with status ${itemStatus}` : ''}.</Empty>}
      {items.data && items.data.items.length > 0 && <Table rows={items.data.items} columns={columns} rowKey={(i) => String(i.seq)} rowHref={(i) => href(['runs', i.runId])} testId="batch-items" />}
      {items.data && <Pager route={route} next={items.data.nextAfter} param="after" shown={items.data.items.length} />}
    </Page>
  );
}
