/**
 * OpenTelemetry tracing, process-wide (OpenTelemetry's API is global).
 *
 * Off unless {@link startTracing} ran (the processes call it when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set; a test passes an in-memory exporter).
 * While off, no provider is registered, the Temporal client and activities get
 * no interceptors and the HTTP API no hooks: nothing is created per request.
 *
 * While on: the Temporal client interceptor writes the current trace context
 * into the headers of every start, signal and update; the worker's activity
 * interceptor continues it in a `RunActivity:<type>` span; the workflow side
 * (workflows/tracing.ts, always in the bundle) exports its spans through the
 * `exporter` sink, which the worker always registers (a no-op while off, so a
 * traced run on an untraced worker logs nothing).
 */
import * as otel from '@opentelemetry/api';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { ClientInterceptors } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry/lib/client';
import { makeWorkflowExporter, OpenTelemetryActivityInboundInterceptor, OpenTelemetryActivityOutboundInterceptor } from '@temporalio/interceptors-opentelemetry/lib/worker';
import type { InjectedSinks, WorkerOptions } from '@temporalio/worker';
import type { OpenTelemetrySinks } from '@temporalio/interceptors-opentelemetry/lib/workflow/definitions';

export interface TracingOptions {
  /** `service.name` of the spans. OTEL_SERVICE_NAME, when set, wins. */
  serviceName: string;
  /** Where spans go. @default the OTLP/HTTP exporter (configured by the OTEL_EXPORTER_OTLP_* variables) */
  exporter?: SpanExporter;
  /** Export every span as it ends instead of in batches (tests). @default false */
  simple?: boolean;
}

interface Active {
  provider: NodeTracerProvider;
  processor: SpanProcessor;
  resource: Resource;
}

let active: Active | undefined;

/** Start tracing for this process: registers the global tracer provider, the async context manager and the W3C propagator. */
export function startTracing(opts: TracingOptions): void {
  if (active) throw new Error('tracing is already started in this process');
  const exporter = opts.exporter ?? otlpExporter();
  const processor = opts.simple ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter);
  const resource = new Resource({ 'service.name': process.env.OTEL_SERVICE_NAME || opts.serviceName });
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  provider.register();
  active = { provider, processor, resource };
}

function otlpExporter(): SpanExporter {
  // Loaded only when used: nothing of the exporter is in a process that does not trace.
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
  return new OTLPTraceExporter();
}

/** Flush and stop tracing; the OpenTelemetry globals are reset (a later {@link startTracing} may start it again). */
export async function stopTracing(): Promise<void> {
  const a = active;
  if (!a) return;
  active = undefined;
  await a.provider.forceFlush().catch(() => undefined);
  await a.provider.shutdown().catch(() => undefined);
  otel.trace.disable();
  otel.context.disable();
  otel.propagation.disable();
}

export function tracingEnabled(): boolean {
  return active !== undefined;
}

/** pinflow's own tracer (HTTP API and event spans). */
export function tracer(): otel.Tracer {
  return otel.trace.getTracer('pinflow');
}

/** Interceptors for a Temporal `Client`: none while tracing is off. */
export function clientInterceptors(): ClientInterceptors {
  return active ? { workflow: [new OpenTelemetryWorkflowClientInterceptor()] } : {};
}

/** Worker options for tracing: activity interceptors while on, and the workflow span sink always. */
export function workerTracingOptions(): Pick<WorkerOptions, 'interceptors' | 'sinks'> {
  const a = active;
  const sinks: InjectedSinks<OpenTelemetrySinks> = {
    exporter: a ? makeWorkflowExporter(a.processor, a.resource) : { export: { fn: () => undefined } },
  };
  if (!a) return { sinks };
  return {
    sinks,
    interceptors: {
      activity: [(ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) })],
    },
  };
}

/**
 * Run `fn` in a new active span; the span records a thrown error and ends
 * when `fn` settles. While tracing is off this is `fn()`.
 */
export async function inSpan<T>(name: string, attributes: otel.Attributes, fn: (span: otel.Span | undefined) => Promise<T>): Promise<T> {
  if (!active) return fn(undefined);
  return tracer().startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: otel.SpanStatusCode.ERROR, message: (err as Error)?.message ?? String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}
