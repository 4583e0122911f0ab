/** The console's shared pieces: errors, empty states, times, JSON, status badges, keyboard-navigable tables. */
import { useRef, useState, type KeyboardEvent, type ReactNode } from 'react';
import type { ApiError } from '../api';
import { navigate } from '../router';

/** An API refusal as the API said it: code, message and the details. */
export function ErrorBox({ error, title }: { error: ApiError | Error | undefined; title?: string }) {
  if (!error) return null;
  const code = 'code' in error ? (error).code : 'ERROR';
  const details = 'details' in error ? (error).details : null;
  return (
    <div className="error" role="alert" data-testid="api-error">
      {title && <div className="error-title">{title}</div>}
      <code className="error-code">{code}</code> <span className="error-message">{error.message}</span>
      {details !== null && details !== undefined && <JsonView value={details} label="details" />}
    </div>
  );
}

/** What to do when there is nothing to show. */
export function Empty({ children }: { children: ReactNode }) {
  return (
    <div className="empty" data-testid="empty">
      {children}
    </div>
  );
}

export function Loading({ what }: { what?: string }) {
  return <div className="loading">Loading{what ? ` ${what}` : ''}…</div>;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** A time in the user's zone; UTC on hover. */
export function Time({ at }: { at: string | null | undefined }) {
  if (!at) return <span className="muted">—</span>;
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return <span>{at}</span>;
  return (
    <time dateTime={d.toISOString()} title={`${d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}`}>
      {dateFormat.format(d)}
    </time>
  );
}

/** 1234 ms -> "1.2 s"; for ages and durations. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = s / 60;
  if (m < 60) return `${Math.floor(m)} min ${Math.round(s % 60)} s`;
  const h = m / 60;
  if (h < 48) return `${Math.floor(h)} h ${Math.round(m % 60)} min`;
  return `${Math.floor(h / 24)} d ${Math.round(h % 24)} h`;
}

export function Age({ since }: { since: string | null | undefined }) {
  if (!since) return <span className="muted">—</span>;
  const ms = Date.now() - new Date(since).getTime();
  return <span title={new Date(since).toISOString()}>{formatDuration(ms)}</span>;
}

/** A JSON value, collapsed behind its label. */
export function JsonView({ value, label = 'JSON', open = false }: { value: unknown; label?: string; open?: boolean }) {
  if (value === undefined) return <span className="muted">—</span>;
  return (
    <details className="json" open={open}>
      <summary>{label}</summary>
      <pre>{JSON.stringify(value, null, 2)}</pre>
    </details>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge status-${status.toLowerCase()}`}>{status}</span>;
}

export function ShortHash({ hash, seq }: { hash: string; seq?: number | null }) {
  return (
    <code title={hash}>
      {seq !== undefined && seq !== null ? `v${seq} ` : ''}
      {hash.slice(0, 12)}
    </code>
  );
}

export interface Column<T> {
  header: ReactNode;
  cell: (row: T) => ReactNode;
  className?: string;
}

/**
 * A table whose rows are reachable by keyboard: Tab into it, arrows (or j/k)
 * move between rows, Enter opens the row's link.
 */
export function Table<T>({ rows, columns, rowKey, rowHref, testId, selected }: { rows: readonly T[]; columns: Array<Column<T>>; rowKey: (row: T) => string; rowHref?: (row: T) => string; testId?: string; selected?: (row: T) => boolean }) {
  const body = useRef<HTMLTableSectionElement>(null);
  const onKey = (e: KeyboardEvent<HTMLTableRowElement>, i: number, row: T) => {
    const rowsEls = body.current?.querySelectorAll<HTMLTableRowElement>('tr');
    if (!rowsEls) return;
    if (e.key === 'ArrowDown' || e.key === 'j') {
      rowsEls[Math.min(i + 1, rowsEls.length - 1)]?.focus();
      e.preventDefault();
    } else if (e.key === 'ArrowUp' || e.key === 'k') {
      rowsEls[Math.max(i - 1, 0)]?.focus();
      e.preventDefault();
    } else if (e.key === 'Enter' && rowHref && e.target === e.currentTarget) {
      navigate(rowHref(row));
      e.preventDefault();
    }
  };
  return (
    <table className="table" data-testid={testId}>
      <thead>
        <tr>
          {columns.map((c, i) => (
            <th key={i} className={c.className}>
              {c.header}
            </th>
          ))}
        </tr>
      </thead>
      <tbody ref={body}>
        {rows.map((row, i) => (
          <tr key={rowKey(row)} tabIndex={0} data-row={rowKey(row)} className={selected?.(row) ? 'selected' : undefined} onKeyDown={(e) => onKey(e, i, row)}>
            {columns.map((c, j) => (
              <td key={j} className={c.className}>
                {c.cell(row)}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A button that asks before it acts: the first click shows what will happen and a confirm button. */
export function ConfirmButton({ label, confirmText, onConfirm, disabled, danger }: { label: string; confirmText: ReactNode; onConfirm: () => void | Promise<void>; disabled?: boolean; danger?: boolean }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  if (!asking)
    return (
      <button type="button" className={danger ? 'danger' : undefined} disabled={disabled} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  return (
    <span className="confirm" role="group">
      <span>{confirmText}</span>{' '}
      <button
        type="button"
        className={danger ? 'danger' : 'primary'}
        disabled={busy}
        onClick={() => {
          setBusy(true);
          void Promise.resolve(onConfirm()).finally(() => {
            setBusy(false);
            setAsking(false);
          });
        }}
      >
        Confirm
      </button>{' '}
      <button type="button" onClick={() => setAsking(false)} disabled={busy}>
        Cancel
      </button>
    </span>
  );
}

export function Page({ title, actions, children }: { title: ReactNode; actions?: ReactNode; children: ReactNode }) {
  return (
    <section className="page">
      <header className="page-header">
        <h1>{title}</h1>
        <div className="page-actions">{actions}</div>
      </header>
      {children}
    </section>
  );
}
