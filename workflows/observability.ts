/**
 * Workflow-side tracing and log fields: a workflow interceptor module, bundled
 * into the prebuilt workflow bundle (scripts/build-bundle) and always present.
 *
 * Logs: every workflow log line (the SDK's own, e.g. "Workflow failed") gets
 * the run's `definition` and `version` from its search attributes.
 *
 * Traces:
 *
 * It delegates to `@temporalio/interceptors-opentelemetry`'s workflow
 * interceptors only for runs whose history asks for it: a run is traced when
 * its start carried a trace context (the `_tracer-data` header the client
 * interceptor writes), or from the first traced `pinflow.event` signal on.
 * Both are read from the history, so a replay takes exactly the path the
 * original execution took (the OpenTelemetry interceptors add promise hops,
 * never commands; a run recorded untraced replays untraced, whatever the
 * worker's tracing setting). A run without trace headers pays one header
 * lookup per call.
 *
 * After a traced event reaches the run, the activities the run schedules are
 * parented to that event's `HandleSignal:pinflow.event` span, so one trace
 * follows `POST /events` → routing → signal → the wait resuming → the next
 * step's activity. Before any event they are children of `RunWorkflow`.
 *
 * The OpenTelemetry workflow module is required lazily, on the first traced
 * call: it patches the sandbox's globals (`window`, `performance`) for the
 * OpenTelemetry SDK, which untraced runs must not see.
 */
import type * as otel from '@opentelemetry/api';
import type * as OtelWorkflow from '@temporalio/interceptors-opentelemetry/lib/workflow';
import {
  ApplicationFailure,
  defaultPayloadConverter,
  type ActivityInput,
  type ContinueAsNewInput,
  type DisposeInput,
  type GetLogAttributesInput,
  type Headers,
  type LocalActivityInput,
  type Next,
  type SignalInput,
  type StartChildWorkflowExecutionInput,
  type WorkflowExecuteInput,
  type WorkflowInboundCallsInterceptor,
  type WorkflowInterceptors,
  type WorkflowInternalsInterceptor,
  type WorkflowOutboundCallsInterceptor,
  workflowInfo,
} from '@temporalio/workflow';
import { SA } from '../graph/search-attributes';

/** The header `@temporalio/interceptors-opentelemetry` carries the W3C trace context in. */
export const TRACE_HEADER = '_tracer-data';
const EVENT_SIGNAL = 'pinflow.event';
const TRACEPARENT = /^[\da-f]{2}-(?!0{32})[\da-f]{32}-(?!0{16})[\da-f]{16}-[\da-f]{2}$/;

/** True when the headers carry a valid W3C trace context. */
export function carriesTrace(headers: Headers | undefined): boolean {
  const payload = headers?.[TRACE_HEADER];
  if (!payload) return false;
  try {
    const carrier = defaultPayloadConverter.fromPayload<Record<string, unknown>>(payload);
    return typeof carrier?.traceparent === 'string' && TRACEPARENT.test(carrier.traceparent);
  } catch {
    return false;
  }
}

interface Otel {
  api: typeof otel;
  wf: typeof OtelWorkflow;
}
let loaded: Otel | undefined;
function load(): Otel {
  loaded ??= { api: require('@opentelemetry/api') as typeof otel, wf: require('@temporalio/interceptors-opentelemetry/lib/workflow') as typeof OtelWorkflow };
  return loaded;
}

/** One run's tracing state, shared by its interceptors. */
class RunTrace {
  traced = false;
  /** The run's failure, once its main function failed with an ApplicationFailure (for the "Workflow failed" log line). */
  failure: Record<string, unknown> | undefined;
  /** The context of the latest traced event: what the run does next is parented to it. */
  cause: otel.Context | undefined;
  private inboundOtel: OtelWorkflow.OpenTelemetryInboundInterceptor | undefined;
  private outboundOtel: OtelWorkflow.OpenTelemetryOutboundInterceptor | undefined;

  inbound(): OtelWorkflow.OpenTelemetryInboundInterceptor {
    return (this.inboundOtel ??= new (load().wf.OpenTelemetryInboundInterceptor)());
  }

  outbound(): OtelWorkflow.OpenTelemetryOutboundInterceptor {
    return (this.outboundOtel ??= new (load().wf.OpenTelemetryOutboundInterceptor)());
  }

  /** Run `fn` in the latest event's context when there is one (synchronous: no promise hop). */
  inCause<T>(fn: () => T): T {
    return this.cause ? load().api.context.with(this.cause, fn) : fn();
  }
}

/** The run's definition and version (its search attributes), for log lines. Reads only: no command. */
function runLogFields(): Record<string, string> {
  try {
    const sa = workflowInfo().typedSearchAttributes;
    const definition = sa.get(SA.definition);
    const version = sa.get(SA.version);
    return { ...(definition ? { definition } : {}), ...(version ? { version } : {}) };
  } catch {
    return {};
  }
}

/**
 * What the SDK's "Workflow failed" line should say about a run's failure: the
 * error object itself reaches the worker's logger as a bare copy (message and
 * stack, no type), so its type and step ride along as a log attribute.
 */
function failureSummary(err: unknown): Record<string, unknown> | undefined {
  if (!(err instanceof ApplicationFailure) || !err.type) return undefined;
  const info = err.details?.[0];
  const step = info !== null && typeof info === 'object' ? (info as Record<string, unknown>) : {};
  const d = step.details !== null && typeof step.details === 'object' ? (step.details as Record<string, unknown>) : {};
  return {
    type: err.type,
    message: err.message,
    nonRetryable: err.nonRetryable,
    details: [{ type: step.type, stepId: step.stepId, stepInstance: step.stepInstance, details: { reason: d.reason, rpc: d.rpc } }],
  };
}

class TracingInbound implements WorkflowInboundCallsInterceptor {
  constructor(private readonly run: RunTrace) {}

  execute(input: WorkflowExecuteInput, next: Next<WorkflowInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const p = carriesTrace(input.headers) ? ((this.run.traced = true), this.run.inbound().execute(input, next)) : next(input);
    // A side branch, not a link in the chain: the promise returned is `p` itself, so no promise hop is added.
    p.catch((err: unknown) => {
      this.run.failure = failureSummary(err);
    });
    return p;
  }

  handleSignal(input: SignalInput, next: Next<WorkflowInboundCallsInterceptor, 'handleSignal'>): Promise<void> {
    if (!carriesTrace(input.headers)) return next(input);
    if (input.signalName !== EVENT_SIGNAL) return this.run.traced ? this.run.inbound().handleSignal(input, next) : next(input);
    this.run.traced = true;
    return this.run.inbound().handleSignal(input, (i) => {
      // Inside the HandleSignal span: what the run does next is caused by this event.
      this.run.cause = load().api.context.active();
      return next(i);
    });
  }
}

class TracingOutbound implements WorkflowOutboundCallsInterceptor {
  constructor(private readonly run: RunTrace) {}

  scheduleActivity(input: ActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>): Promise<unknown> {
    if (!this.run.traced) return next(input);
    return this.run.inCause(() => this.run.outbound().scheduleActivity(input, next));
  }

  scheduleLocalActivity(input: LocalActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleLocalActivity'>): Promise<unknown> {
    if (!this.run.traced) return next(input);
    return this.run.inCause(() => this.run.outbound().scheduleLocalActivity(input, next));
  }

  startChildWorkflowExecution(
    input: StartChildWorkflowExecutionInput,
    next: Next<WorkflowOutboundCallsInterceptor, 'startChildWorkflowExecution'>,
  ): Promise<[Promise<string>, Promise<unknown>]> {
    if (!this.run.traced) return next(input);
    return this.run.inCause(() => this.run.outbound().startChildWorkflowExecution(input, next));
  }

  continueAsNew(input: ContinueAsNewInput, next: Next<WorkflowOutboundCallsInterceptor, 'continueAsNew'>): Promise<never> {
    if (!this.run.traced) return next(input);
    return this.run.outbound().continueAsNew(input, next);
  }

  getLogAttributes(input: GetLogAttributesInput, next: Next<WorkflowOutboundCallsInterceptor, 'getLogAttributes'>): Record<string, unknown> {
    const withRun = { ...runLogFields(), ...(this.run.failure ? { failure: this.run.failure } : {}), ...input };
    if (!this.run.traced) return next(withRun);
    return this.run.outbound().getLogAttributes(withRun, next);
  }
}

class TracingInternals implements WorkflowInternalsInterceptor {
  constructor(private readonly run: RunTrace) {}

  dispose(input: DisposeInput, next: Next<WorkflowInternalsInterceptor, 'dispose'>): void {
    if (!this.run.traced) return next(input);
    void new (load().wf.OpenTelemetryInternalsInterceptor)().dispose(input, (i) => next(i));
  }
}

export const interceptors = (): WorkflowInterceptors => {
  const run = new RunTrace();
  return { inbound: [new TracingInbound(run)], outbound: [new TracingOutbound(run)], internals: [new TracingInternals(run)] };
};
