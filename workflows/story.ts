/**
 * What the Temporal UI shows of a run: the one-line summaries of its
 * activities and timers, and its "current details" (markdown). Both are user
 * metadata: they travel with commands or the workflow task completion but
 * are not compared on replay, so they change no command sequence and are not
 * gated by a flag. Pure functions of the run's state: deterministic.
 */
import type { InterpreterState, PauseInfo, StallInfo } from '../graph/wire';

/** Temporal shows summaries on one line; keep them short. */
const SUMMARY_MAX = 200;
/** Current details are markdown; a stall's issues are shown in short. */
const ISSUES_SHOWN = 5;
const VALUE_MAX = 120;

function clip(text: string, max: number): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** Inline code in markdown, with backticks in the value made harmless. */
function code(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return `\`${clip(String(text), VALUE_MAX).replace(/`/g, "'")}\``;
}

/** `<stepInstance> · <rpc>`, plus the dispatch when the step was dispatched again. */
export function rpcSummary(stepInstance: string, rpc: string, dispatch: number): string {
  return clip(`${stepInstance} · ${rpc}${dispatch > 1 ? ` (dispatch ${dispatch})` : ''}`, SUMMARY_MAX);
}

/** What a wait activity (openWait, closeWait, consumeBuffered) or its timer is about. */
export function waitSummary(what: string, event: string, correlationKey: string, extra?: string): string {
  return clip(`${what} ${event} ${correlationKey}${extra ? ` ${extra}` : ''}`, SUMMARY_MAX);
}

export function sleepSummary(stepInstance: string): string {
  return clip(`sleep ${stepInstance}`, SUMMARY_MAX);
}

/** How an operator decides a stall: the HTTP call, and the Temporal CLI update where no HTTP client is at hand. */
function howToDecide(runId: string, stall: StallInfo): string[] {
  const body = JSON.stringify({ stallId: stall.id, action: 'retry', by: 'you@example.com' });
  return [
    '**Decide** (retry against the live deployment, or skip with an `output`):',
    '',
    `\`POST /runs/${runId}/decisions\` with \`${body}\``,
    '',
    `or \`temporal workflow update execute --workflow-id ${runId} --name pinflow.resolveStall --input '${body}'\``,
  ];
}

/** The validation issues of a stall, in short (the RPC activity attaches them as `details.issues`). */
function issuesOf(stall: StallInfo): string[] {
  const d = stall.details as { issues?: Array<{ path?: string; message?: string }> } | undefined;
  const issues = Array.isArray(d?.issues) ? d.issues : [];
  const lines = issues.slice(0, ISSUES_SHOWN).map((i) => `- ${code(i.path ?? '(root)')}: ${clip(String(i.message ?? ''), VALUE_MAX)}`);
  if (issues.length > ISSUES_SHOWN) lines.push(`- … and ${issues.length - ISSUES_SHOWN} more`);
  return lines;
}

export interface StoryInput {
  runId: string;
  definition: string;
  version: string;
  state: InterpreterState;
  /** The status shown: RUNNING, WAITING or STALLED while the run runs, its closed status after. */
  status: string;
  /** The step type of each instance in flight. */
  types: ReadonlyMap<string, string>;
  /** A migration the run accepted and is about to make. */
  migration?: { from: string; to: string; at: string; by: string };
  /** A pause pending (no `heldAt` yet) or held (FLAGS.PAUSE). */
  pause?: PauseInfo;
}

/** Paused since/by/why, or a pause that takes effect at the next top-level step boundary, and how to resume. */
function pauseLines(runId: string, p: PauseInfo): string[] {
  const why = p.reason ? `: ${clip(p.reason, 300)}` : '';
  const head = p.heldAt
    ? `**Paused** since ${p.since} by ${clip(p.by, VALUE_MAX)}${why}; holds before step ${code(p.heldAt)}`
    : `**Pause requested** at ${p.since} by ${clip(p.by, VALUE_MAX)}${why}; takes effect at the next top-level step boundary`;
  return [head, '', `**Resume**: \`POST /runs/${runId}/resume\` with \`${JSON.stringify({ by: 'you@example.com' })}\`, or \`pinflow resume ${runId}\``, ''];
}

/** The run's current details: status, steps in flight, waits, stalls, a pending migration. */
export function currentDetails(s: StoryInput): string {
  const { state } = s;
  const lines: string[] = [`**${s.status}** · ${s.definition} \`${s.version.slice(0, 12)}\``, ''];
  if (s.migration) {
    lines.push(`**Migrating** from \`${s.migration.from.slice(0, 12)}\` to \`${s.migration.to.slice(0, 12)}\`, resuming at ${code(s.migration.at)} (by ${clip(s.migration.by, VALUE_MAX)})`, '');
  }
  if (s.pause) lines.push(...pauseLines(s.runId, s.pause));
  if (state.stall) {
    const stall = state.stall;
    lines.push(`**Stalled** since ${stall.since}: ${code(stall.reason)} at step ${code(stall.stepInstance)} calling RPC ${code(stall.rpc)}`, '', clip(stall.message, 300), '');
    const issues = issuesOf(stall);
    if (issues.length > 0) lines.push('Issues:', '', ...issues, '');
    lines.push(...howToDecide(s.runId, stall), '');
  }
  for (const w of state.waits ?? []) {
    lines.push(`**Waiting** for event ${code(w.event)} with key ${code(w.correlationKey)} since ${w.reachedAt}${w.timeoutAt ? `, timeout ${w.timeoutAt}` : ', no timeout'} (step ${code(w.stepInstance)})`, '');
  }
  if (!state.waits && state.waiting) lines.push(`**Waiting** for event ${code(state.waiting.event)} with key ${code(state.waiting.correlationKey)} (step ${code(state.waiting.stepInstance)})`, '');
  if (state.active.length > 0) {
    const shown = state.active.slice(0, 10).map((a) => `${code(a)} (${s.types.get(a) ?? 'step'})`);
    lines.push(`**Current step${state.active.length > 1 ? 's' : ''}**: ${shown.join(', ')}${state.active.length > 10 ? ` and ${state.active.length - 10} more` : ''}`, '');
  }
  if (state.error) lines.push(`**Error** ${code(state.error.type)}: ${clip(state.error.message, 300)}`, '');
  lines.push(`Completed steps: ${state.completed.length}`);
  return lines.join('\n');
}
