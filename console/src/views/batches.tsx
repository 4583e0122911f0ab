/**
 * Batches (GET /batches): durable bulk actions by run filter, newest first,
 * and the form that creates one (dry run first: the count and a sample).
 */
import { useState, type FormEvent } from 'react';
import { api, useApi, useCan } from '../api';
import { BATCH_ACTION_NAMES, BATCH_STATE_NAMES, RUN_STATUSES, STALL_REASONS, type BatchEntry, type BatchList, type BatchView } from '../api-types';
import { Empty, ErrorBox, Loading, Page, StatusBadge, Table, Time, type Column } from '../components/common';
import { FilterBar, formText, parseJsonInput, queryOf, RunLink, useBy, useWriteError, withQuery } from '../components/ops-parts';
import { BatchProgress } from '../components/ops-batches';
import { href, navigate, type Route } from '../router';

export function BatchesView({ route }: { route: Route }) {
  const q = queryOf(route, ['state']);
  const batches = useApi<BatchList>('/batches', { ...q, limit: 100 }, { refreshMs: 5000 });
  const canOperate = useCan('operate');
  const creating = route.query.get('new') === '1';
  const columns: Array<Column<BatchEntry>> = [
    { header: 'Created', cell: (b) => <Time at={b.createdAt} /> },
    { header: 'Action', cell: (b) => <a href={href(['batches', b.id])}>{b.action}</a> },
    { header: 'State', cell: (b) => <StatusBadge status={b.state} /> },
    { header: 'Progress', cell: (b) => <BatchProgress progress={b.progress} compact /> },
    { header: 'Filter', cell: (b) => <code>{filterText(b.filter)}</code> },
    { header: 'By', cell: (b) => b.by },
    { header: 'Reason', cell: (b) => b.reason },
  ];
  return (
    <Page
      title="Batches"
      actions={
        canOperate &&
        !creating && (
          <a href={withQuery(route, { new: '1' })} className="button-link">
            New batch
          </a>
        )
      }
    >
      {creating && canOperate && <CreateBatch route={route} />}
      <FilterBar route={route} fields={[{ name: 'state', label: 'State', options: BATCH_STATE_NAMES }]} />
      <ErrorBox error={batches.error} title="The batches could not be read" />
      {!batches.data && batches.loading && <Loading what="the batches" />}
      {batches.data && batches.data.batches.length === 0 && (
        <Empty>
          No batches{q.state ? ` in state ${q.state}` : ''}. A batch acts on every run a filter selects (retry, skip, cancel, migrate, pause, resume, rerun, replay), durably
          and paced. {canOperate ? <a href={withQuery(route, { new: '1' })}>Create one</a> : 'Creating one needs the operate scope.'}
        </Empty>
      )}
      {batches.data && batches.data.batches.length > 0 && <Table rows={batches.data.batches} columns={columns} rowKey={(b) => b.id} rowHref={(b) => href(['batches', b.id])} testId="batches" />}
    </Page>
  );
}

export function filterText(filter: Record<string, unknown>): string {
  return Object.entries(filter)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

interface DryRun {
  dryRun: true;
  count: number;
  sample: Array<{ runId: string; status: string; definition: string; version: string; tenant: string }>;
}

const FILTER_FIELDS = ['status', 'definition', 'version', 'tenant', 'stallRpc', 'stallReason'] as const;
const PARAMS_HINT: Record<string, string> = {
  skip: '{"output": {…}}',
  migrate: '{"targetVersion": "<hash>", "mapping": {"old": "new"}}',
  rerun: '{"fromStep": "<step>"}',
  replay: '{"input": {…}}',
};

/** New batch: action, filter, parameters, reason; a dry run shows what it selects before it is created. */
function CreateBatch({ route }: { route: Route }) {
  const by = useBy();
  const [error, setError, clearError] = useWriteError();
  const [dry, setDry] = useState<{ body: Record<string, unknown>; result: DryRun } | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [action, setAction] = useState(route.query.get('action') ?? 'retry');

  const bodyOf = (form: HTMLFormElement): Record<string, unknown> | null => {
    const data = new FormData(form);
    const field = (n: string) => formText(data, n);
    const filter: Record<string, unknown> = {};
    for (const f of FILTER_FIELDS) if (field(f)) filter[f] = field(f);
    const meta = parseJsonInput(field('metadata'));
    const params = parseJsonInput(field('params'));
    if (!meta.ok) return (setProblem(`metadata: ${meta.message}`), null);
    if (!params.ok) return (setProblem(`parameters: ${params.message}`), null);
    if (meta.value !== undefined) filter.metadata = meta.value;
    setProblem(null);
    return { action: field('action'), filter, ...(params.value !== undefined ? { params: params.value } : {}), by, reason: field('reason') };
  };
  const dryRun = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    clearError();
    setDry(null);
    const body = bodyOf(e.currentTarget);
    if (!body) return;
    setBusy(true);
    try {
      setDry({ body, result: await api<DryRun>('/batches', { method: 'POST', body: { ...body, dryRun: true } }) });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const create = async () => {
    if (!dry) return;
    clearError();
    setBusy(true);
    try {
      const made = await api<BatchView>('/batches', { method: 'POST', body: dry.body });
      navigate(href(['batches', made.id]));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const initial = (n: string) => route.query.get(n) ?? '';
  return (
    <div className="card" data-testid="create-batch">
      <h2>New batch</h2>
      <form className="form-grid" onSubmit={(e) => void dryRun(e)} onChange={() => setDry(null)}>
        <label htmlFor="b-action">Action</label>
        <select id="b-action" name="action" value={action} onChange={(e) => setAction(e.target.value)}>
          {BATCH_ACTION_NAMES.map((a) => (
            <option key={a}>{a}</option>
          ))}
        </select>
        <label htmlFor="b-status">Run status</label>
        <AnySelect id="b-status" name="status" options={RUN_STATUSES} initial={initial('status')} />
        <label htmlFor="b-definition">Definition</label>
        <input id="b-definition" name="definition" defaultValue={initial('definition')} />
        <label htmlFor="b-version">Version hash</label>
        <input id="b-version" name="version" defaultValue={initial('version')} />
        <label htmlFor="b-tenant">Tenant</label>
        <input id="b-tenant" name="tenant" defaultValue={initial('tenant')} />
        <label htmlFor="b-stall-rpc">Stalled on RPC</label>
        <input id="b-stall-rpc" name="stallRpc" defaultValue={initial('stallRpc')} placeholder="with status STALLED: the open stall's RPC" />
        <label htmlFor="b-stall-reason">Stall reason</label>
        <AnySelect id="b-stall-reason" name="stallReason" options={STALL_REASONS} initial={initial('stallReason')} />
        <label htmlFor="b-meta">Metadata (JSON)</label>
        <input id="b-meta" name="metadata" placeholder='{"region": "eu"}' />
        <label htmlFor="b-params">Parameters (JSON)</label>
        <textarea id="b-params" name="params" rows={3} placeholder={PARAMS_HINT[action] ?? `none for ${action}`} />
        <label htmlFor="b-reason">Reason (required)</label>
        <input id="b-reason" name="reason" required placeholder="recorded on the batch and every decision it makes" />
        <span />
        <span>
          <button type="submit" disabled={busy}>
            Dry run
          </button>{' '}
          <a href={withQuery(route, { new: null, action: null, status: null, definition: null, version: null, tenant: null, stallRpc: null, stallReason: null })}>Close</a>
        </span>
      </form>
      {problem && <p className="bad">{problem}</p>}
      <ErrorBox error={error} title="The batch was refused" />
      {dry && (
        <div data-testid="dry-run">
          <p>
            <strong>
              This batch would {String(dry.body.action)} {dry.result.count} run{dry.result.count === 1 ? '' : 's'}
            </strong>{' '}
            ({filterText(dry.body.filter as Record<string, unknown>)}). {dry.result.sample.length > 0 && dry.result.sample.length < dry.result.count && `The first ${dry.result.sample.length}:`}
          </p>
          {dry.result.sample.length > 0 && (
            <ul className="sample">
              {dry.result.sample.map((r) => (
                <li key={r.runId}>
                  <RunLink id={r.runId} /> <StatusBadge status={r.status} /> {r.definition} <span className="muted">{r.tenant}</span>
                </li>
              ))}
            </ul>
          )}
          <button type="button" className="primary" disabled={busy || dry.result.count === 0} onClick={() => void create()}>
            Create the batch ({dry.result.count} run{dry.result.count === 1 ? '' : 's'})
          </button>
        </div>
      )}
    </div>
  );
}

/** A select of `options` with a first "any" (empty) choice. */
function AnySelect({ id, name, options, initial }: { id: string; name: string; options: readonly string[]; initial: string }) {
  return (
    <select id={id} name={name} defaultValue={initial}>
      <option value="">any</option>
      {options.map((o) => (
        <option key={o}>{o}</option>
      ))}
    </select>
  );
}
