/**
 * One span per API request, continuing the caller's trace when it sent a W3C `traceparent`
 * header. The request's trace context is kept explicitly (not only in the async context) and
 * handed to `RunManager.submit()`, because Fastify parses bodies in callbacks that lose the
 * async context, and because even with tracing off a run submitted with `traceparent` takes the
 * caller's trace id, so the caller finds its run, events and audit records under its own id.
 */
import {
  type Context,
  defaultTextMapGetter,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { startRuneSpan } from '@rune/core';
import type { FastifyRequest } from 'fastify';
import type { ApiInstance } from '../http/route-context.js';

interface RequestTrace {
  span: Span;
  context: Context;
  traceId: string;
}

const traces = new WeakMap<FastifyRequest, RequestTrace>();
const propagator = new W3CTraceContextPropagator();
const INVALID_TRACE_ID = '00000000000000000000000000000000';

/** The trace id of a context's span, or undefined when it has no valid one. */
export function traceIdOf(traceContext: Context | undefined): string | undefined {
  if (traceContext === undefined) return undefined;
  const spanContext = trace.getSpanContext(traceContext);
  if (spanContext === undefined || spanContext.traceId === INVALID_TRACE_ID) return undefined;
  return spanContext.traceId;
}

/** The trace context of an API request (its span, or the caller's `traceparent`). */
export function requestTraceContext(request: FastifyRequest): Context | undefined {
  return traces.get(request)?.context;
}

/** The trace id of an API request: the caller's, or one chosen for the request. */
export function requestTraceId(request: FastifyRequest): string | undefined {
  return traces.get(request)?.traceId;
}

/**
 * Fastify's `genReqId`: a request's id is its trace id — the caller's from `traceparent`, else
 * `newTraceId()` — so every log line of the request names the trace its run belongs to.
 */
export function requestIdFromTraceparent(
  newTraceId: () => string,
): (raw: { headers: Record<string, string | string[] | undefined> }) => string {
  return (raw) =>
    traceIdOf(propagator.extract(ROOT_CONTEXT, raw.headers, defaultTextMapGetter)) ?? newTraceId();
}

const TRACE_ID_PATTERN = /^[0-9a-f]{32}$/;

/**
 * Adds the request span hooks: the span of a request is a child of the caller's `traceparent`
 * or a root in the trace `request.id` (see {@link requestIdFromTraceparent}).
 */
export function registerRequestTracing(app: ApiInstance, newTraceId: () => string): void {
  app.addHook('onRequest', async (request) => {
    const caller = propagator.extract(ROOT_CONTEXT, request.headers, defaultTextMapGetter);
    const callerTraceId = traceIdOf(caller);
    const traceId =
      callerTraceId ?? (TRACE_ID_PATTERN.test(request.id) ? request.id : newTraceId());
    const route = request.routeOptions.url ?? 'unknown';
    const started = startRuneSpan(`${request.method} ${route}`, {
      traceId,
      kind: SpanKind.SERVER,
      parent: callerTraceId === undefined ? ROOT_CONTEXT : caller,
      attributes: { 'http.request.method': request.method, 'http.route': route },
    });
    // With no SDK the span records nothing and the caller's context is what links the run.
    const context = started.span.isRecording() ? started.context : caller;
    traces.set(request, { span: started.span, context, traceId });
  });
  app.addHook('onResponse', async (request, reply) => {
    const entry = traces.get(request);
    if (entry === undefined) return;
    entry.span.setAttribute('http.response.status_code', reply.statusCode);
    if (reply.statusCode >= 500) entry.span.setStatus({ code: SpanStatusCode.ERROR });
    entry.span.end();
  });
}

/** The trace members of `RunManager.submit()`'s options for an API request. */
export function requestTraceOptions(request: FastifyRequest): {
  traceId?: string;
  traceContext?: Context;
} {
  const entry = traces.get(request);
  if (entry === undefined) return {};
  return { traceId: entry.traceId, traceContext: entry.context };
}
