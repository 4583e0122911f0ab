/**
 * Server spans for the HTTP API, kept minimal: one `<METHOD> <route>` span
 * per request, continuing a caller's W3C `traceparent` when it sends one. The
 * route's handler runs inside the span, so what it calls (event routing, the
 * Temporal client's signal or start) joins the same trace.
 */
import * as otel from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest, RouteHandlerMethod } from 'fastify';
import { tracer, tracingEnabled } from './tracing';

/** Adds the request span hooks to `app` while tracing is on; call before any route is registered. */
export function traceHttp(app: FastifyInstance): void {
  if (!tracingEnabled()) return;
  const spans = new WeakMap<FastifyRequest, otel.Span>();
  app.addHook('onRequest', (req, _reply, done) => {
    const route = req.routeOptions.url ?? req.url.split('?')[0] ?? '/';
    const parent = otel.propagation.extract(otel.ROOT_CONTEXT, req.headers);
    const span = tracer().startSpan(
      `${req.method} ${route}`,
      { kind: otel.SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'http.route': route, 'url.path': req.url.split('?')[0] ?? '/' } },
      parent,
    );
    spans.set(req, span);
    done();
  });
  const end = (req: FastifyRequest, status: number | undefined) => {
    const span = spans.get(req);
    if (!span) return;
    spans.delete(req);
    if (status !== undefined) {
      span.setAttribute('http.response.status_code', status);
      if (status >= 500) span.setStatus({ code: otel.SpanStatusCode.ERROR });
    }
    span.end();
  };
  app.addHook('onResponse', (req, reply, done) => {
    end(req, reply.statusCode);
    done();
  });
  app.addHook('onRequestAbort', (req, done) => {
    end(req, undefined);
    done();
  });
  app.addHook('onRoute', (route) => {
    const handler = route.handler;
    route.handler = function (this: unknown, req, reply) {
      const span = spans.get(req);
      if (!span) return handler.call(this as never, req, reply);
      return otel.context.with(otel.trace.setSpan(otel.context.active(), span), () => handler.call(this as never, req, reply));
    } as RouteHandlerMethod;
  });
}
