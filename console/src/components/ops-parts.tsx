/**
 * Pieces shared by the operator views (stalls inbox, events, batches, audit,
 * keys): filters kept in the URL, cursor paging, run links, per-run results
 * of a bulk action and a small worker pool for per-run requests.
 */
import { useState, type FormEvent, type ReactNode } from 'react';
import { ApiError, useWho } from '../api';
import { href, navigate, type Route } from '../router';
import { ErrorBox, Table, type Column } from './common';

/** The route's query with `changes` applied (empty values removed); `cursor`-like paging params are dropped unless named. */
export function withQuery(route: Route, changes: Record<string, string | undefined | null>, keep: { paging?: boolean } = {}): string {
  const q = new URLSearchParams(route.query);
  if (!keep.paging) {
    q.delete('cursor');
    q.delete('after');
  }
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === null || v === '') q.delete(k);
    else q.set(k, v);
  }
  return href(route.parts, q);
}

/** The query values of `names` present in the URL, as an API query. */
export function queryOf(route: Route, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = route.query.get(n);
    if (v) out[n] = v;
  }
  return out;
}

export interface FilterField {
  name: string;
  label: string;
  /** Options of a select (the empty option "any" is added); absent: a text input. */
  options?: readonly string[];
  placeholder?: string;
  /** `datetime`: a local date-time input, sent as ISO 8601 (UTC). */
  type?: 'text' | 'datetime';
  width?: number;
}

function toLocalInput(iso: string | null): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Filters as a form: applying it writes them into the URL (shareable), which the view reads. */
export function FilterBar({ route, fields, testId }: { route: Route; fields: readonly FilterField[]; testId?: string }) {
  const submit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget);
    const changes: Record<string, string> = {};
    for (const f of fields) {
      const raw = formText(data, f.name);
      changes[f.name] = f.type === 'datetime' && raw ? new Date(raw).toISOString() : raw;
    }
    navigate(withQuery(route, changes));
  };
  const current = route.query.toString();
  return (
    <form className="filters" onSubmit={submit} key={current} data-testid={testId ?? 'filters'}>
      {fields.map((f) => (
        <label key={f.name}>
          {f.label}
          {f.options ? (
            <select name={f.name} defaultValue={route.query.get(f.name) ?? ''}>
              <option value="">any</option>
              {f.options.map((o) => (
                <option key={o} value={o}>
                  {o}
                </option>
              ))}
            </select>
          ) : (
            <input
              name={f.name}
              type={f.type === 'datetime' ? 'datetime-local' : 'text'}
              defaultValue={f.type === 'datetime' ? toLocalInput(route.query.get(f.name)) : (route.query.get(f.name) ?? '')}
              placeholder={f.placeholder}
              style={f.width ? { width: f.width } : undefined}
            />
          )}
        </label>
      ))}
      <button type="submit" className="primary">
        Apply
      </button>
      <a href={href(route.parts, route.query.get('tab') ? { tab: route.query.get('tab') } : {})}>Clear</a>
    </form>
  );
}

/** Keyset paging: the first page, and the next one when the API gave a cursor. */
export function Pager({ route, next, param = 'cursor', shown }: { route: Route; next: string | number | null | undefined; param?: string; shown: number }) {
  const onLater = route.query.get(param) !== null;
  if (!onLater && (next === null || next === undefined)) return null;
  return (
    <div className="pager">
      {onLater && <a href={withQuery(route, { [param]: null })}>« First page</a>}
      <span className="muted">{shown} shown</span>
      {next !== null && next !== undefined && (
        <a href={withQuery(route, { [param]: String(next) }, { paging: true })} data-testid="next-page">
          Next page »
        </a>
      )}
    </div>
  );
}

export function RunLink({ id }: { id: string }) {
  return <a href={href(['runs', id])}>{id}</a>;
}

/** Who acts, for the `by` of a write: the logged-in key's name. */
export function useBy(): string {
  return useWho()?.name ?? 'console';
}

/** What happened to one run of a bulk action. */
export interface RunResult {
  runId: string;
  outcome: 'ok' | 'skipped' | 'failed';
  code?: string | undefined;
  message?: string | undefined;
}

export function resultOf(runId: string, err: unknown): RunResult {
  if (err instanceof ApiError) {
    // Closed or gone meanwhile: passed over, as POST /stalls/resolve reports it.
    const skipped = err.code === 'RUN_CLOSED' || err.code === 'RUN_NOT_FOUND' || err.code === 'RUN_NOT_STALLED';
    return { runId, outcome: skipped ? 'skipped' : 'failed', code: err.code, message: err.message };
  }
  return { runId, outcome: 'failed', code: 'CONSOLE', message: String(err) };
}

/** Per-run results: a summary line and one row per run (ok, skipped or failed with code and message). */
export function RunResults({ results, title }: { results: readonly RunResult[]; title?: ReactNode }) {
  const n = (o: RunResult['outcome']) => results.filter((r) => r.outcome === o).length;
  const columns: Array<Column<RunResult>> = [
    { header: 'Run', cell: (r) => <RunLink id={r.runId} /> },
    { header: 'Result', cell: (r) => <span className={`result-${r.outcome}`}>{r.outcome}</span> },
    { header: 'Code', cell: (r) => (r.code ? <code>{r.code}</code> : <span className="muted">—</span>) },
    { header: 'Message', cell: (r) => r.message ?? '' },
  ];
  return (
    <div className="card" data-testid="run-results">
      <h2>{title ?? 'Results'}</h2>
      <p data-testid="results-summary">
        <strong className="ok">{n('ok')} ok</strong> · <strong>{n('skipped')} skipped</strong> · <strong className="bad">{n('failed')} failed</strong>
      </p>
      <Table rows={results} columns={columns} rowKey={(r) => r.runId} rowHref={(r) => href(['runs', r.runId])} testId="results-table" />
    </div>
  );
}

/** Run `fn` over `items`, `concurrency` at a time, reporting each result as it comes. */
export async function eachLimited<T, R>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<R>, onResult: (r: R, done: number) => void): Promise<R[]> {
  const out: R[] = [];
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      const r = await fn(items[i] as T);
      out[i] = r;
      done += 1;
      onResult(r, done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

/** A write's refusal shown where the form is, or nothing. */
export function useWriteError(): [ApiError | undefined, (e: unknown) => void, () => void] {
  const [error, setError] = useState<ApiError | undefined>();
  return [error, (e) => setError(e instanceof ApiError ? e : new ApiError(0, 'CONSOLE', String(e))), () => setError(undefined)];
}

export function WriteError({ error, title }: { error: ApiError | undefined; title: string }) {
  return <ErrorBox error={error} title={title} />;
}

/** A form field's text, trimmed ('' when absent or a file). */
export function formText(data: FormData, name: string): string {
  const v = data.get(name);
  return typeof v === 'string' ? v.trim() : '';
}

/** Parse JSON typed in a textarea: the value, or a message saying where it is not JSON. */
export function parseJsonInput(text: string): { ok: true; value: unknown } | { ok: false; message: string } {
  if (text.trim() === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    return { ok: false, message: `not JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
}
