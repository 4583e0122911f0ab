/**
 * The shape of the finding in test/findings/nde-local-activity-forced-task.json:
 * a run's first workflow task completed with the run-started local
 * activity's marker as its last command, and the run went on in a second
 * task. `splitFirstTask` makes that shape from a history whose first task
 * did not split, the way Temporal recorded it (three workflow-task events
 * after the marker, later event ids shifted), so the replay corpus can be
 * checked against it deterministically.
 */
import { temporal } from '@temporalio/proto';

type History = temporal.api.history.v1.IHistory;
type Event = temporal.api.history.v1.IHistoryEvent;
const T = temporal.api.enums.v1.EventType;

/** Index of the first event of `type` at or after `from`. */
function indexOf(events: Event[], type: temporal.api.enums.v1.EventType, from = 0): number {
  return events.findIndex((e, i) => i >= from && e.eventType === type);
}

/** True when the first workflow task's last command is the run-started local-activity marker and a second task follows. */
export function firstTaskSplitAfterLocalActivity(history: History): boolean {
  const events = history.events ?? [];
  const completed = indexOf(events, T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED);
  const next = indexOf(events, T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, completed + 1);
  if (completed < 0 || next < 0) return false;
  return events[next - 1]?.markerRecordedEventAttributes?.markerName === 'core_local_activity';
}

/** Renumber every `...EventId` reference above `after` by `shift`. */
function shiftRefs(value: unknown, after: number, shift: number): unknown {
  if (Array.isArray(value)) return value.map((v) => shiftRefs(v, after, shift));
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const isRef = /EventId$/.test(k) && k !== 'eventId' && (typeof v === 'number' || typeof v === 'string' || (typeof v === 'object' && v !== null && 'low' in v));
    if (isRef && Number(v) > after) out[k] = Number(v) + shift;
    else if (k === 'eventId' && Number(v) > after) out[k] = Number(v) + shift;
    else out[k] = shiftRefs(v, after, shift);
  }
  return out;
}

/**
 * The same history with its first task split right after the run-started
 * local-activity marker: the commands that followed the marker in the first
 * task now belong to a forced second task (same identity, sticky queue).
 */
export function splitFirstTask(history: History): temporal.api.history.v1.History {
  const plain = temporal.api.history.v1.History.toObject(temporal.api.history.v1.History.fromObject(history as Record<string, unknown>), { longs: Number, enums: Number }) as {
    events: Array<Record<string, unknown>>;
  };
  const events = plain.events;
  const completedAt = events.findIndex((e) => e.eventType === T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED);
  const marker = events.findIndex((e, i) => i > completedAt && (e.markerRecordedEventAttributes as { markerName?: string } | undefined)?.markerName === 'core_local_activity');
  if (completedAt < 0 || marker < 0) throw new Error('no run-started local-activity marker in the first task');
  const next = events.findIndex((e, i) => i > marker && e.eventType === T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED);
  if (next === marker + 1) throw new Error('the first task is already split after the marker');
  const firstCompletedId = Number(events[completedAt]!.eventId);
  const markerId = Number(events[marker]!.eventId);
  const [scheduled, started, completed] = [1, 2, 3].map((d) => markerId + d);
  const shifted = events.map((e) => shiftRefs(e, markerId, 3) as Record<string, unknown>);
  // Commands that followed the marker were completed by the new task.
  for (const e of shifted.slice(marker + 1)) {
    for (const v of Object.values(e)) {
      if (v && typeof v === 'object' && (v as { workflowTaskCompletedEventId?: number }).workflowTaskCompletedEventId === firstCompletedId) {
        (v as { workflowTaskCompletedEventId?: number }).workflowTaskCompletedEventId = completed;
      }
    }
  }
  const time = events[marker]!.eventTime;
  const sched = events[completedAt - 2]!.workflowTaskScheduledEventAttributes as Record<string, unknown>;
  const start = events[completedAt - 1]!.workflowTaskStartedEventAttributes as Record<string, unknown>;
  const done = events[completedAt]!.workflowTaskCompletedEventAttributes as Record<string, unknown>;
  const inserted = [
    { eventId: scheduled, eventTime: time, eventType: T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, workflowTaskScheduledEventAttributes: { ...sched, attempt: 1 } },
    { eventId: started, eventTime: time, eventType: T.EVENT_TYPE_WORKFLOW_TASK_STARTED, workflowTaskStartedEventAttributes: { ...start, scheduledEventId: scheduled, requestId: 'request-from-RespondWorkflowTaskCompleted' } },
    { eventId: completed, eventTime: time, eventType: T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, workflowTaskCompletedEventAttributes: { ...done, scheduledEventId: scheduled, startedEventId: started, sdkMetadata: {} } },
  ];
  shifted.splice(marker + 1, 0, ...inserted);
  return temporal.api.history.v1.History.fromObject({ events: shifted });
}
