/**
 * Pieces of the definition views (definitions, a version's graph with live
 * per-step counts, the version diff, the deploy check): the per-step count
 * states and their run-list links, the version picker.
 */
import type { StepCounts, VersionList } from '../api-types';
import { href } from '../router';
import type { GraphDecor } from './graph';

/** The per-step count states, in the order a node shows them: now at the step, then through it. */
export const STEP_COUNT_STATES = ['running', 'waiting', 'stalled', 'passed', 'failed', 'skipped'] as const;
export type StepCountState = (typeof STEP_COUNT_STATES)[number];
export type StepCountRow = StepCounts['steps'][number];

/** What each count means, for titles and the table's headers. */
export const STATE_HELP: Record<StepCountState, string> = {
  running: 'runs now running this step',
  waiting: 'runs now waiting at this step (an open wait)',
  stalled: 'runs now stalled at this step',
  passed: 'runs that completed this step',
  failed: 'runs whose attempt at this step failed',
  skipped: 'runs where an operator skipped this step',
};

/** The graph's colour for a step: the most urgent state a run is in there (stalled > failed > waiting > running), else passed/skipped/not reached. */
export function urgentState(row: StepCountRow | undefined): string {
  if (!row) return 'not-reached';
  if (row.stalled > 0) return 'stalled';
  if (row.failed > 0) return 'failed';
  if (row.waiting > 0) return 'waiting';
  if (row.running > 0) return 'running';
  if (row.passed > 0) return 'completed';
  if (row.skipped > 0) return 'skipped';
  return 'not-reached';
}

/** The run list of the runs a count counts (`GET /runs?version=…&step=…&stepState=…`; stalled ones are STALLED runs). */
export function stepRunsHref(version: string, stepId: string, state: StepCountState): string {
  return href(['runs'], { version, step: stepId, stepState: state, status: state === 'stalled' ? 'STALLED' : undefined });
}

/** 1234 -> "1.2k": a node has little room. */
export function compact(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

const SYMBOL: Record<StepCountState, string> = { running: '▶', waiting: '‖', stalled: '⚠', passed: '✓', failed: '✗', skipped: '↷' };

/** One count as a link to its runs (a plain 0 when there are none). */
export function CountLink({ version, stepId, state, n, symbol }: { version: string; stepId: string; state: StepCountState; n: number; symbol?: boolean }) {
  const text = `${symbol ? SYMBOL[state] : ''}${compact(n)}`;
  const title = `${n} ${STATE_HELP[state]}`;
  if (n === 0)
    return (
      <span className="count-zero" title={title} data-count={state}>
        {text}
      </span>
    );
  return (
    <a className={`count-link count-${state} nodrag nopan`} href={stepRunsHref(version, stepId, state)} title={`${title}: open them`} data-count={state} onClick={(e) => e.stopPropagation()}>
      {text}
    </a>
  );
}

/** The decoration of a step node: its counts, now | through, and the colour of the most urgent state. */
export function countsDecor(version: string, stepId: string, row: StepCountRow | undefined): GraphDecor {
  const state = urgentState(row);
  const c = (s: StepCountState) => <CountLink version={version} stepId={stepId} state={s} n={row?.[s] ?? 0} symbol />;
  return {
    className: `state-${state}`,
    state,
    extra: (
      <span className="step-counts" data-testid={`counts-${stepId}`}>
        <span className="now" title="now at this step">
          {c('running')} {c('waiting')} {c('stalled')}
        </span>
        <span className="sep">|</span>
        <span className="through" title="through this step">
          {c('passed')} {c('failed')} {c('skipped')}
        </span>
      </span>
    ),
  };
}

export const COUNT_LEGEND = STEP_COUNT_STATES.map((s) => `${SYMBOL[s]} ${s}`).join(' · ');

/** A select of a definition's versions (newest first), by hash. */
export function VersionSelect({ versions, value, onChange, label, testId }: { versions: VersionList['versions']; value: string; onChange: (hash: string) => void; label: string; testId?: string }) {
  return (
    <label>
      {label}
      <select value={value} onChange={(e) => onChange(e.target.value)} data-testid={testId}>
        {[...versions]
          .sort((a, b) => b.seq - a.seq)
          .map((v) => (
            <option key={v.hash} value={v.hash}>
              v{v.seq} {v.hash.slice(0, 12)}
              {v.latest ? ' (latest)' : v.removed ? ' (removed)' : ''}
            </option>
          ))}
      </select>
    </label>
  );
}
