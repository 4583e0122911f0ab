/**
 * Time and events: the sleep step (a timer) and the wait step (an event by
 * name and correlation key, or its timeout). Since 0.4.0 a wait registers in
 * the correlation index (openWait, which also hands over the mailbox), takes
 * the first matching event from the run's inbox, and closes its index row.
 */
import { CancellationScope, condition, sleep } from '@temporalio/workflow';
import { checkCorrelationKey } from '../../graph/correlation';
import { FAILURE_TYPES } from '../../graph/errors';
import { isTruthy, type ExpressionScope } from '../../graph/expression';
import { durationMs } from '../../graph/duration';
import type { ActiveWaitState, EventSignal, WaitOutput } from '../../graph/wire';
import { MigrateNow, StepFailure, type ActiveWait, type Frame, type RunContext, type StepAt } from '../context';
import { FLAGS } from '../flags';
import { projectionWith } from '../proxies';
import { sleepSummary, waitSummary } from '../story';
import type { StepHandler, StepOf } from './types';

/** Ignored events remembered per open wait, for the state query. */
const IGNORED_SHOWN = 20;

export const sleepStep: StepHandler<'sleep'> = function* (ctx, step, f, at) {
  let ms: number;
  if (step.duration !== undefined) ms = durationMs(step.duration);
  else {
    const until: unknown = yield ctx.evaluate(step.until!, ctx.scope(f), { stepId: step.id, field: 'until' });
    const when = typeof until === 'string' ? Date.parse(until) : Number.NaN;
    if (Number.isNaN(when)) {
      throw new StepFailure({ type: FAILURE_TYPES.SLEEP_UNTIL_INVALID, message: `step "${step.id}": "until" is not a timestamp: ${JSON.stringify(until)}`, stepId: step.id, stepInstance: at.instance });
    }
    ms = Math.max(0, when - Date.now());
  }
  if (ms > 0) yield sleep(ms, { summary: sleepSummary(at.instance) });
  return { kind: 'next', output: { sleptMs: ms }, next: step.next };
};

export const waitStep: StepHandler<'wait'> = function* (ctx, step, f, at) {
  const result = (yield runWait(ctx, step, f, at)) as WaitResult;
  const closeIndex = async () => {
    if (result.waitId === undefined) return;
    await projectionWith(waitSummary('close wait', step.event, result.correlationKey ?? '', result.timedOut ? '(timed out)' : '(resolved)')).closeWait({
      runId: ctx.run.runId,
      waitId: result.waitId,
      status: result.timedOut ? 'TIMED_OUT' : 'RESOLVED',
      ...(result.event ? { eventId: result.event.eventId } : {}),
      closedAt: ctx.now(),
      trail: ctx.takeTrail(),
    });
  };
  // The index row is closed after the step's record is in the trail, so closeWait projects it.
  if (result.timedOut && step.onTimeout) return { kind: 'next', output: { timedOut: true }, next: step.onTimeout, after: closeIndex };
  if (result.timedOut) {
    const failure = new StepFailure({ type: FAILURE_TYPES.WAIT_TIMED_OUT, message: `step "${step.id}": no ${step.event} event arrived before the timeout`, stepId: step.id, stepInstance: at.instance });
    yield closeIndex();
    throw failure;
  }
  return { kind: 'next', output: result.event ?? null, next: step.next, after: closeIndex };
};

/**
 * Why an inbox entry does not resume this wait, or undefined when it may
 * (subject to the match filter). `other-wait` entries belong to another
 * open wait of this run and are left for it.
 */
function rejectReason(ctx: RunContext, e: EventSignal, w: ActiveWaitState): string | undefined {
  if (e.waitId !== w.waitId && ctx.activeWaits.has(e.waitId)) return 'other-wait';
  if (ctx.consumed.has(e.eventId)) return 'already consumed by this run';
  if (e.name !== w.event) return `event ${e.name} is not ${w.event}`;
  if (e.correlationKey !== w.correlationKey) return `correlation key ${JSON.stringify(e.correlationKey)} is not ${JSON.stringify(w.correlationKey)}`;
  if (e.waitId !== w.waitId && e.receivedAt < w.reachedAt) return `routed to wait ${e.waitId}, and received before this wait was reached`;
  return undefined;
}

/** Remember why a wait ignored an event, for the state query (the latest few). */
function noteIgnored(w: ActiveWait, e: EventSignal, reason: string): void {
  w.state.ignored.push({ eventId: e.eventId, reason });
  if (w.state.ignored.length > IGNORED_SHOWN) w.state.ignored.shift();
}

/**
 * The wait's match filter on an event. Not async: the caller awaits the
 * evaluation's own promise, so no microtask is added (see the fan-out-ticks
 * history). With FLAGS.SYNC_EXPRESSIONS it may be the value itself.
 */
function evaluateMatch(ctx: RunContext, step: StepOf<'wait'>, f: Frame, e: EventSignal): unknown {
  const view: WaitOutput = { eventId: e.eventId, name: e.name, correlationKey: e.correlationKey, payload: e.payload, receivedAt: e.receivedAt };
  return ctx.evaluate(step.match!, { ...ctx.scope(f), event: view } as ExpressionScope, { stepId: step.id, field: 'match' });
}

/** The first inbox entry this wait accepts (checks, then the match filter), consumed; else undefined. */
async function takeEvent(ctx: RunContext, step: StepOf<'wait'>, w: ActiveWait, f: Frame): Promise<EventSignal | undefined> {
  const note = (e: EventSignal, reason: string) => noteIgnored(w, e, reason);
  for (const e of [...ctx.inbox]) {
    if (w.offered.has(e)) continue;
    w.offered.add(e);
    const why = rejectReason(ctx, e, w.state);
    if (why === 'other-wait') continue;
    if (why) {
      note(e, why);
      continue;
    }
    if (step.match !== undefined) {
      if (!isTruthy(await evaluateMatch(ctx, step, f, e))) {
        note(e, 'the match filter is false');
        continue;
      }
      // Another wait of this run may have consumed it while the filter ran.
      if (ctx.consumed.has(e.eventId)) continue;
    }
    ctx.consume(e);
    return e;
  }
  return undefined;
}

/**
 * Since 0.6.0 (FLAGS.EVENT_BUFFER): the first buffered event this wait
 * accepts (tenant, name, key, not consumed, the match filter) and wins
 * through the consumeBuffered activity, consumed; else undefined. One
 * activity per accepted candidate until one is won: another wait may have
 * won it, or it expired, in between.
 */
async function takeBuffered(ctx: RunContext, step: StepOf<'wait'>, w: ActiveWait, f: Frame, candidates: EventSignal[]): Promise<EventSignal | undefined> {
  const note = (e: EventSignal, reason: string) => noteIgnored(w, e, `buffered: ${reason}`);
  for (const c of candidates) {
    const e: EventSignal = { eventId: c.eventId, tenant: c.tenant, name: c.name, correlationKey: c.correlationKey, payload: c.payload, receivedAt: c.receivedAt, waitId: w.state.waitId };
    if (ctx.consumed.has(e.eventId)) continue;
    if (e.tenant !== ctx.run.tenant || e.name !== w.state.event || e.correlationKey !== w.state.correlationKey) {
      note(e, 'not for this wait');
      continue;
    }
    if (step.match !== undefined && !isTruthy(await evaluateMatch(ctx, step, f, e))) {
      note(e, 'the match filter is false');
      continue;
    }
    const won = await projectionWith(waitSummary('consume buffered', e.name, e.correlationKey, e.eventId)).consumeBuffered({ tenant: e.tenant, eventId: e.eventId, runId: ctx.run.runId, waitId: w.state.waitId });
    if (!won) {
      note(e, 'consumed by another wait, or expired');
      continue;
    }
    if (ctx.consumed.has(e.eventId)) continue;
    ctx.consume(e);
    return e;
  }
  return undefined;
}

interface WaitResult {
  timedOut: boolean;
  /** Set when an event resumed the wait. */
  event?: WaitOutput;
  /** Set when the wait is in the correlation index (since FLAGS.EVENT_WAITS): close it. */
  waitId?: string;
  /** The wait's correlation key, for the summaries. */
  correlationKey?: string;
}

/**
 * Open the wait and block until a matching event is in the inbox, its timer
 * fires, or a migration moves it.
 */
async function runWait(ctx: RunContext, step: StepOf<'wait'>, f: Frame, at: StepAt): Promise<WaitResult> {
  const { run, state, inbox } = ctx;
  const instance = at.instance;
  // The key has its own rule (FLAGS.CORRELATION_KEY_RULE) for what it may hold.
  const key = await ctx.evaluate(step.correlationKey, ctx.scope(f), { stepId: step.id, field: 'correlationKey' });
  if (!((typeof key === 'string' && key.length > 0) || (typeof key === 'number' && Number.isFinite(key)))) {
    throw new StepFailure({
      type: FAILURE_TYPES.WAIT_KEY_INVALID,
      message: `step "${step.id}": correlation key must be a non-empty string or a number; got ${JSON.stringify(key)}`,
      stepId: step.id,
      stepInstance: instance,
    });
  }
  // The shared correlation-key rule (too long, NUL, lone surrogate). The flag
  // is asked only on this path: a run from before 0.7.0 whose keys keep the
  // rule records no marker, so every earlier history's commands are unchanged.
  const rule = checkCorrelationKey(key);
  if (!rule.ok && ctx.flag(FLAGS.CORRELATION_KEY_RULE)) {
    throw new StepFailure({
      type: FAILURE_TYPES.WAIT_KEY_INVALID,
      message: `step "${step.id}": ${rule.problem.replace(/^the key /, 'correlation key ')}`,
      stepId: step.id,
      stepInstance: instance,
    });
  }
  let untilMs: number | undefined;
  if (step.timeoutUntil !== undefined) {
    const until = await ctx.evaluate(step.timeoutUntil, ctx.scope(f), { stepId: step.id, field: 'timeoutUntil' });
    untilMs = typeof until === 'string' ? Date.parse(until) : Number.NaN;
    if (Number.isNaN(untilMs)) {
      throw new StepFailure({ type: FAILURE_TYPES.SLEEP_UNTIL_INVALID, message: `step "${step.id}": timeoutUntil is not a timestamp: ${JSON.stringify(until)}`, stepId: step.id, stepInstance: instance });
    }
  }
  if (!ctx.flag(FLAGS.EVENT_WAITS)) {
    // Before 0.4.0: no correlation index; the wait ended only by its timeout.
    const timeoutMs = step.timeout !== undefined ? durationMs(step.timeout) : untilMs !== undefined ? Math.max(0, untilMs - Date.now()) : undefined;
    state.waiting = { stepInstance: instance, event: step.event, correlationKey: key };
    try {
      const done = timeoutMs === undefined ? (await condition(() => ctx.migration !== undefined), true) : await condition(() => ctx.migration !== undefined, timeoutMs);
      if (ctx.migration) throw new MigrateNow();
      return { timedOut: !done };
    } finally {
      delete state.waiting;
    }
  }

  const correlationKey = String(key);
  const resumed = ctx.resumedWait && instance === run.resume?.at ? ctx.resumedWait : undefined;
  if (resumed) ctx.resumedWait = undefined;
  const waitId = resumed?.waitId ?? `${instance}@${at.seq}`;
  const reachedAt = resumed?.reachedAt ?? ctx.now();
  // A duration counts from when the run reached the step, so a migration at the wait does not extend it.
  const deadline = step.timeout !== undefined ? Date.parse(reachedAt) + durationMs(step.timeout) : untilMs;
  const w: ActiveWait = {
    state: { waitId, stepInstance: instance, event: step.event, correlationKey, reachedAt, timeoutAt: deadline !== undefined ? new Date(deadline).toISOString() : null, ignored: [] },
    offered: new Set(),
  };
  ctx.activeWaits.set(waitId, w);
  ctx.publishWaits();
  state.waiting = { stepInstance: instance, event: step.event, correlationKey: key };
  ctx.tellStatus();
  let outcome: 'RESOLVED' | 'TIMED_OUT' | 'CANCELLED' | undefined;
  let taken: EventSignal | undefined;
  const timer = new CancellationScope();
  try {
    const mailbox = await projectionWith(waitSummary('open wait', step.event, correlationKey)).openWait({
      runId: run.runId,
      tenant: run.tenant,
      waitId,
      stepId: step.id,
      stepInstance: instance,
      seq: at.seq,
      event: step.event,
      correlationKey,
      hasFilter: step.match !== undefined,
      reachedAt,
      timeoutAt: w.state.timeoutAt,
      trail: ctx.takeTrail(),
      ...(step.acceptBuffered === false ? { acceptBuffered: false as const } : {}),
    });
    // Buffered events (since 0.6.0) are offered, not handed over: the wait consumes one only once it won it.
    const offered = mailbox.filter((e) => e.buffered === true);
    for (const e of mailbox) if (e.buffered !== true && !ctx.consumed.has(e.eventId) && !inbox.some((x) => x.eventId === e.eventId && x.waitId === e.waitId)) inbox.push(e);
    let timedOut = deadline !== undefined && deadline <= Date.now();
    if (deadline !== undefined && !timedOut) {
      void timer.run(() => sleep(deadline - Date.now(), { summary: waitSummary('wait', step.event, correlationKey, '(timeout)') })).then(
        () => (timedOut = true),
        () => undefined,
      );
    }
    for (;;) {
      // A migration wins over an event in the same activation: the event is carried to the new version.
      if (ctx.migration) throw new MigrateNow();
      taken = await takeEvent(ctx, step, w, f);
      // Nothing in the mailbox or the inbox: the oldest buffered event this wait accepts, if it wins it.
      if (!taken && offered.length > 0 && step.acceptBuffered !== false && ctx.flag(FLAGS.EVENT_BUFFER)) taken = await takeBuffered(ctx, step, w, f, offered.splice(0));
      if (taken) {
        outcome = 'RESOLVED';
        break;
      }
      if (timedOut) {
        outcome = 'TIMED_OUT';
        break;
      }
      await condition(() => ctx.migration !== undefined || timedOut || inbox.some((e) => !w.offered.has(e)));
    }
  } catch (err) {
    if (!(err instanceof MigrateNow)) outcome = 'CANCELLED';
    throw err;
  } finally {
    timer.cancel();
    ctx.activeWaits.delete(waitId);
    ctx.publishWaits();
    if (outcome) {
      ctx.closedWaits.add(waitId);
      for (let i = inbox.length - 1; i >= 0; i--) if (inbox[i]!.waitId === waitId) inbox.splice(i, 1);
    }
    if (state.waiting?.stepInstance === instance) {
      const other = [...ctx.activeWaits.values()].pop();
      if (other) state.waiting = { stepInstance: other.state.stepInstance, event: other.state.event, correlationKey: other.state.correlationKey };
      else delete state.waiting;
    }
    ctx.tellStatus();
    if (outcome === 'CANCELLED') {
      // Cancelled (a failFast sibling, the run) or failed (the match filter threw): leave the index now.
      await CancellationScope.nonCancellable(() => projectionWith(waitSummary('close wait', step.event, correlationKey, '(cancelled)')).closeWait({ runId: run.runId, waitId, status: 'CANCELLED', closedAt: ctx.now(), trail: [] }));
    }
  }
  if (!taken) return { timedOut: true, waitId, correlationKey };
  return {
    timedOut: false,
    waitId,
    correlationKey,
    event: { eventId: taken.eventId, name: taken.name, correlationKey: taken.correlationKey, payload: taken.payload, receivedAt: taken.receivedAt },
  };
}
