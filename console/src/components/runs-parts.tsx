/**
 * Pieces of the Runs, Run detail and Attention views: the run filters as URL
 * parameters, the new API shapes they read (GET /runs/counts), the attention
 * reasons explained, and small cells.
 */
import type { ReactNode } from 'react';
import type { RunCountsOf, RunSummary } from '../api-types';
import { href } from '../router';
import { StatusBadge } from './common';

/** The `GET /runs` filters the Runs view keeps in its URL (besides `meta.<key>` and `cursor`). */
export const RUN_FILTER_KEYS = ['status', 'definition', 'version', 'tenant', 'attention', 'q', 'startedAfter', 'startedBefore', 'stallRpc', 'stallReason', 'step', 'stepState'] as const;
export type RunFilterKey = (typeof RUN_FILTER_KEYS)[number];

/** GET /runs/counts. */
export type RunCounts = RunCountsOf;

export const STEP_STATES = ['running', 'waiting', 'stalled', 'passed', 'failed', 'skipped'] as const;

/** Why a run needs attention, in words (graph/terminology.ts ATTENTION_REASONS). */
export const ATTENTION_EXPLAINED: Record<string, { title: string; text: string; next: string }> = {
  NO_WORKER: {
    title: 'No worker',
    text: 'No worker polls the task queue: every open run waits, whatever its step.',
    next: 'Start a worker (npm start, or your deployment) and check its logs and Temporal address.',
  },
  NO_PROGRESS: {
    title: 'No progress',
    text: 'The run made no progress (no projection write, no activity heartbeat) for longer than the threshold while it was not sleeping, waiting, stalled, paused or running a child.',
    next: 'Open the run and its Temporal UI link: a hung RPC handler or an overloaded worker is the usual cause.',
  },
  RPC_RETRYING: {
    title: 'RPC retrying',
    text: 'An RPC step\u2019s activity is on its Nth attempt or later: the handler keeps failing.',
    next: 'Read the step\u2019s last error in the run\u2019s timeline; fix the service, or cancel the run.',
  },
  WORKFLOW_TASK_FAILING: {
    title: 'Workflow task failing',
    text: 'Temporal retries the run\u2019s workflow task: a non-determinism after a bad deploy, or a crash in the interpreter.',
    next: 'Look at the workflow task failure in the Temporal UI; roll back the worker deploy if it started after one.',
  },
  WAIT_OVERDUE: {
    title: 'Wait overdue',
    text: 'A wait step is open longer than its sla: the event it waits for did not come.',
    next: 'Check the event\u2019s sender and the correlation key (Events view), or cancel the run.',
  },
};

/** The filters of `query` for GET /runs (or /runs/counts without status and paging). */
export function runQuery(query: URLSearchParams, opts: { forCounts?: boolean } = {}): URLSearchParams {
  const out = new URLSearchParams();
  query.forEach((v, k) => {
    if (v === '') return;
    if (opts.forCounts && (k === 'status' || k === 'cursor' || k === 'limit')) return;
    if ((RUN_FILTER_KEYS as readonly string[]).includes(k) || k.startsWith('meta.') || (!opts.forCounts && (k === 'cursor' || k === 'limit'))) out.append(k, v);
  });
  return out;
}

/** A copy of `query` with `changes` applied (null or '' removes) and the page reset. */
export function withFilters(query: URLSearchParams, changes: Record<string, string | null | undefined>): URLSearchParams {
  const q = new URLSearchParams(query);
  q.delete('cursor');
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === '') q.delete(k);
    else q.set(k, v);
  }
  return q;
}

/** Whether any filter (not paging) is set. */
export function hasFilters(query: URLSearchParams): boolean {
  return [...runQuery(query, { forCounts: true }).keys()].length > 0 || query.has('status');
}

/** ISO time -> the value of a `datetime-local` input, in the browser's zone. */
export function toLocalInput(iso: string | null): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A `datetime-local` value (browser zone) -> ISO 8601 in UTC, '' when empty or invalid. */
export function fromLocalInput(local: string): string {
  if (!local) return '';
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/** A run's status with why it is stalled or paused under it. */
export function RunStatusCell({ run, attention }: { run: RunSummary; attention?: ReactNode }) {
  return (
    <div className="run-status">
      <StatusBadge status={run.status} />
      {run.stall && (
        <div className="sub" data-testid="stall-summary">
          {run.stall.reason}
          {run.stall.rpc ? ` · ${run.stall.rpc}` : ''}
        </div>
      )}
      {run.pause && <div className="sub">paused by {run.pause.by}</div>}
      {run.errorSummary && run.status === 'FAILED' && (
        <div className="sub bad" title={run.errorSummary}>
          {run.errorSummary.length > 80 ? `${run.errorSummary.slice(0, 77)}…` : run.errorSummary}
        </div>
      )}
      {attention}
    </div>
  );
}

/** A link to a run's detail view. */
export function RunLink({ id }: { id: string }) {
  return (
    <a href={href(['runs', id])}>
      <code>{id}</code>
    </a>
  );
}

/** A link to Temporal's UI for a run, in a new tab. */
export function TemporalLink({ url, label = 'Temporal UI' }: { url: string | undefined | null; label?: string }) {
  if (!url) return <span className="muted">—</span>;
  return (
    <a href={url} target="_blank" rel="noreferrer noopener" title="Open this run in the Temporal UI (new tab)">
      {label} ↗
    </a>
  );
}
