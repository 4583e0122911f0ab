/**
 * The state of each step of a run's pinned graph, from the run as GET
 * /runs/:id answers it: its step rows (one per attempt of a dispatch), its
 * open stall and waits. Nested steps of forEach/parallel and steps a loop
 * reached again have several instances: the node aggregates them.
 */
import type { OutlineNode, RunDetail, StepRow } from '../api-types';

/** A node's state; the CSS class is `state-<state>`. */
export type StepState = 'completed' | 'running' | 'waiting' | 'stalled' | 'failed' | 'skipped' | 'cancelled' | 'not-reached';

export const STATE_LEGEND: Array<{ state: StepState; label: string }> = [
  { state: 'completed', label: 'completed' },
  { state: 'running', label: 'running' },
  { state: 'waiting', label: 'waiting (an open wait)' },
  { state: 'stalled', label: 'stalled (needs a decision)' },
  { state: 'failed', label: 'failed' },
  { state: 'skipped', label: 'skipped by an operator' },
  { state: 'cancelled', label: 'cancelled' },
  { state: 'not-reached', label: 'not reached' },
];

/** Row fields the projection sends beyond the documented ones. */
export interface StepRowFull extends StepRow {
  attempt?: number;
  dispatch?: number;
  seq?: number;
  startedAt?: string;
  finishedAt?: string;
  notes?: unknown[];
  error?: { type?: string; message?: string } | null;
}

export interface NodeState {
  state: StepState;
  /** Instances of the step, by their state. */
  instances: Partial<Record<StepState, number>>;
  /** The highest attempt number among its rows. */
  maxAttempt: number;
  /** Dispatches after a retry decision. */
  maxDispatch: number;
}

const full = (r: StepRow) => r as StepRowFull;

/** Was this row written by a skip decision (the rpc step records the operator's output with a `skipped` note)? */
export function isSkipped(row: StepRow): boolean {
  return (full(row).notes ?? []).some((n) => typeof n === 'object' && n !== null && (n as { kind?: unknown }).kind === 'skipped');
}

/** A row's state as the timeline and graph show it. */
export function rowState(row: StepRow): StepState {
  switch (row.status) {
    case 'COMPLETED':
      return isSkipped(row) ? 'skipped' : 'completed';
    case 'FAILED':
      return 'failed';
    case 'CANCELLED':
      return 'cancelled';
    case 'RUNNING':
      return row.stepType === 'wait' ? 'waiting' : 'running';
    default:
      return 'completed'; // SUPERSEDED rows are never an instance's last word (see lastAttempt)
  }
}

/** The attempt that speaks for a step instance: the latest dispatch's latest attempt that was not superseded. */
function lastAttempt(rows: StepRow[]): StepRow | undefined {
  const live = rows.filter((r) => r.status !== 'SUPERSEDED');
  const pool = live.length ? live : rows;
  return [...pool].sort((a, b) => {
    const fa = full(a);
    const fb = full(b);
    return (fa.dispatch ?? 1) - (fb.dispatch ?? 1) || (fa.attempt ?? 1) - (fb.attempt ?? 1) || (fa.seq ?? 0) - (fb.seq ?? 0) || String(fa.startedAt ?? '').localeCompare(String(fb.startedAt ?? ''));
  })[pool.length - 1];
}

/** The step id of a step instance (`pick[2]` → `pick`). */
export function stepIdOf(instance: string): string {
  return /^[A-Za-z][A-Za-z0-9_-]*/.exec(instance)?.[0] ?? instance;
}

const OPEN_ORDER: StepState[] = ['stalled', 'waiting', 'running'];

/** The state of every node of the outline in this run. */
export function nodeStates(run: RunDetail, nodes: readonly OutlineNode[]): Map<string, NodeState> {
  const byInstance = new Map<string, StepRow[]>();
  for (const r of run.steps) byInstance.set(r.stepInstance, [...(byInstance.get(r.stepInstance) ?? []), r]);
  const openWaits = new Set(run.waits.filter((w) => w.status === 'OPEN').map((w) => w.stepInstance));
  const stalledInstance = run.status === 'STALLED' ? run.stall?.stepInstance ?? null : null;

  const perStep = new Map<string, StepState[]>();
  const attempts = new Map<string, { attempt: number; dispatch: number }>();
  for (const [instance, rows] of byInstance) {
    const last = lastAttempt(rows)!;
    const stepId = last.stepId || stepIdOf(instance);
    let state = rowState(last);
    if (instance === stalledInstance) state = 'stalled';
    else if (state === 'running' && openWaits.has(instance)) state = 'waiting';
    perStep.set(stepId, [...(perStep.get(stepId) ?? []), state]);
    const a = attempts.get(stepId) ?? { attempt: 1, dispatch: 1 };
    for (const r of rows) {
      a.attempt = Math.max(a.attempt, full(r).attempt ?? 1);
      a.dispatch = Math.max(a.dispatch, full(r).dispatch ?? 1);
    }
    attempts.set(stepId, a);
  }
  // A stall recorded before any row of its step exists (or a wait with no row yet) still shows.
  if (stalledInstance && !byInstance.has(stalledInstance)) {
    const id = stepIdOf(stalledInstance);
    perStep.set(id, [...(perStep.get(id) ?? []), 'stalled']);
  }
  for (const w of run.waits) {
    if (w.status === 'OPEN' && !byInstance.has(w.stepInstance)) {
      const id = stepIdOf(w.stepInstance);
      perStep.set(id, [...(perStep.get(id) ?? []), 'waiting']);
    }
  }

  const out = new Map<string, NodeState>();
  for (const node of nodes) {
    const states = perStep.get(node.id) ?? [];
    const instances: Partial<Record<StepState, number>> = {};
    for (const s of states) instances[s] = (instances[s] ?? 0) + 1;
    let state: StepState;
    if (states.length === 0) state = 'not-reached';
    else {
      const open = OPEN_ORDER.find((s) => instances[s]);
      if (open) state = open;
      else if (instances.failed) state = 'failed';
      else if (instances.cancelled) state = 'cancelled';
      else if (instances.completed) state = 'completed';
      else state = 'skipped';
    }
    const a = attempts.get(node.id) ?? { attempt: 0, dispatch: 0 };
    out.set(node.id, { state, instances, maxAttempt: a.attempt, maxDispatch: a.dispatch });
  }
  return out;
}

const WORDS: Record<StepState, string> = {
  completed: 'done',
  running: 'running',
  waiting: 'waiting',
  stalled: 'stalled',
  failed: 'failed',
  skipped: 'skipped',
  cancelled: 'cancelled',
  'not-reached': 'not reached',
};

/** "3 done, 1 failed" for a step with several instances; "" for one. */
export function instanceSummary(ns: NodeState): string {
  const total = Object.values(ns.instances).reduce((a, b) => a + (b ?? 0), 0);
  if (total <= 1) return '';
  return (Object.entries(ns.instances) as Array<[StepState, number]>).map(([s, n]) => `${n} ${WORDS[s]}`).join(', ');
}
