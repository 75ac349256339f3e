/**
 * RUNE's spans, through the OpenTelemetry API only. Core never loads an SDK: with none registered
 * (the default) every call here goes to the API's no-op tracer, which allocates one
 * non-recording span and records nothing. An application that wants traces (the server, the CLI
 * when `OTEL_*` asks for them) registers an SDK whose IdGenerator is
 * {@link createRuneIdGenerator}: that is how a run's root span gets RUNE's own trace id (the
 * RCS `trace_id`, the audit records' and the events') rather than a fresh one, so a trace in a
 * backend and a run in RUNE are found by the same id.
 *
 * The attribute names are a documented list (docs/observability.md, {@link RUNE_SPAN_ATTRIBUTES});
 * parameter values are never attributes.
 */
import {
  type Attributes,
  type Context,
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { TransportPhaseHook } from '@rune/transport';
import { CORE_VERSION } from '../version.js';

/** The attribute names RUNE puts on its spans (and nothing else of its own). */
export const RUNE_SPAN_ATTRIBUTES = {
  runId: 'rune.run.id',
  action: 'rune.action',
  pluginVersion: 'rune.plugin.version',
  pluginSha256: 'rune.plugin.sha256',
  node: 'rune.node',
  transport: 'rune.transport',
  result: 'rune.result',
  errorCode: 'rune.error.code',
  nodeCount: 'rune.nodes.count',
  dryRun: 'rune.dry_run',
  connectionReused: 'rune.connection.reused',
  artifactCount: 'rune.artifacts.count',
} as const;

/** The instrumentation scope of RUNE's own spans. */
export const RUNE_TRACER_NAME = '@rune/core';

/** A process-wide slot (not module state): the CLI bundles core while @rune/server imports it. */
const PENDING_TRACE_ID = Symbol.for('rune.telemetry.pending-trace-id');
type Slot = { [PENDING_TRACE_ID]?: string };

/** The part of an SDK IdGenerator this module needs (the shape of sdk-trace-base's). */
export interface TraceIdGenerator {
  generateTraceId(): string;
  generateSpanId(): string;
}

/**
 * Wraps an SDK's IdGenerator so that a root span started by {@link startRuneSpan} takes the
 * trace id RUNE chose; every other id comes from `fallback`. Pass the result as the
 * `idGenerator` of the tracer provider.
 */
export function createRuneIdGenerator(fallback: TraceIdGenerator): TraceIdGenerator {
  return {
    generateTraceId: () => {
      const slot = globalThis as Slot;
      const pending = slot[PENDING_TRACE_ID];
      if (pending === undefined) return fallback.generateTraceId();
      slot[PENDING_TRACE_ID] = undefined;
      return pending;
    },
    generateSpanId: () => fallback.generateSpanId(),
  };
}

/** Options of {@link startRuneSpan}. */
export interface RuneSpanOptions {
  /** The trace the span belongs to: RUNE's trace id of the run (32 lowercase hex digits). */
  traceId: string;
  attributes?: Attributes;
  kind?: SpanKind;
  /** Parent context; default the active one. */
  parent?: Context;
}

/**
 * Starts a span in the trace `traceId`: a child of the parent context when that context is in
 * the same trace (an API request that sent `traceparent`, the run around a node), else a root
 * span whose trace id is `traceId`. Returns the span and the context to run its children in.
 */
export function startRuneSpan(
  name: string,
  options: RuneSpanOptions,
): { span: Span; context: Context } {
  const tracer = trace.getTracer(RUNE_TRACER_NAME, CORE_VERSION);
  const parent = options.parent ?? context.active();
  const spanOptions = {
    kind: options.kind ?? SpanKind.INTERNAL,
    ...(options.attributes === undefined ? {} : { attributes: options.attributes }),
  };
  let span: Span;
  if (trace.getSpanContext(parent)?.traceId === options.traceId) {
    span = tracer.startSpan(name, spanOptions, parent);
  } else {
    const slot = globalThis as Slot;
    slot[PENDING_TRACE_ID] = options.traceId;
    try {
      span = tracer.startSpan(name, { ...spanOptions, root: true }, parent);
    } finally {
      slot[PENDING_TRACE_ID] = undefined;
    }
  }
  return { span, context: trace.setSpan(parent, span) };
}

/** Ends `span` with an error status and the EPS code when `error` carries one. */
export function endSpanWithError(span: Span, error: unknown): void {
  const code =
    error !== null &&
    typeof error === 'object' &&
    typeof (error as { code?: unknown }).code === 'string'
      ? (error as { code: string }).code
      : 'INTERNAL_ERROR';
  span.setAttribute(RUNE_SPAN_ATTRIBUTES.errorCode, code);
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
  span.end();
}

/**
 * Runs `step` as a child span of the active context (in the trace `traceId`) and ends it when
 * `step` settles: the helper for webhooks, workflow steps and anything else that wants a span in
 * a run's trace. A rejection is recorded (status error, `rune.error.code`) and rethrown.
 */
export async function withRuneSpan<T>(
  name: string,
  options: RuneSpanOptions,
  step: (span: Span) => Promise<T>,
): Promise<T> {
  const started = startRuneSpan(name, options);
  try {
    const value = await context.with(started.context, () => step(started.span));
    started.span.end();
    return value;
  } catch (error) {
    endSpanWithError(started.span, error);
    throw error;
  }
}

/**
 * The transport span hook (see `TransportPhaseHook` in @rune/transport) for one node: each phase
 * becomes a `rune.<phase>` child span of the node's span, or of the node's phase that is active
 * when it starts (the SSH `handshake` inside `connect`). A phase never becomes the child of
 * anything else that happens to be active (another node's span, a caller's).
 */
export function transportPhaseHook(nodeContext: Context, traceId: string): TransportPhaseHook {
  const phases = new WeakSet<Span>();
  return (phase, step) => {
    const active = trace.getSpan(context.active());
    const parent = active !== undefined && phases.has(active) ? context.active() : nodeContext;
    return withRuneSpan(`rune.${phase}`, { traceId, parent }, (span) => {
      phases.add(span);
      return step({ setAttributes: (attributes) => span.setAttributes(attributes) });
    });
  };
}

/**
 * Whether the standard `OTEL_*` variables ask for traces. RUNE's rule (tracing is off by
 * default): `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off; an
 * `OTEL_TRACES_EXPORTER` naming `otlp` or `console` turns it on, and so does an OTLP endpoint
 * (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`) when no exporter is
 * named. Cheap and dependency-free, so an application checks it before loading any SDK.
 */
export function tracingRequested(env: Readonly<Record<string, string | undefined>>): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');
  if (exporters.length > 0) return exporters.some((name) => name === 'otlp' || name === 'console');
  return (
    (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? '').trim() !== '' ||
    (env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '').trim() !== ''
  );
}

/** The `OTEL_TRACES_EXPORTER` names RUNE has an exporter for. */
const SUPPORTED_EXPORTERS = new Set(['otlp', 'console', 'none']);

/**
 * What in the `OTEL_*` variables RUNE will not do as asked, one sentence each, for the
 * application to print at start-up (empty when tracing is off or everything is supported): an
 * exporter name other than `otlp`, `console` and `none` (ignored, so a lone `zipkin` means no
 * traces), and an OTLP protocol other than `http/json` (RUNE sends OTLP/HTTP JSON: a `grpc`
 * collector port never receives it).
 */
export function tracingConfigWarnings(env: Readonly<Record<string, string | undefined>>): string[] {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return [];
  const warnings: string[] = [];
  const named = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');
  const unsupported = named.filter((name) => !SUPPORTED_EXPORTERS.has(name));
  if (unsupported.length > 0) {
    warnings.push(
      `OTEL_TRACES_EXPORTER names ${unsupported.join(', ')}, which RUNE does not support (only otlp, console, none): ${
        tracingRequested(env) ? 'ignored' : 'tracing is off'
      }`,
    );
  }
  if (!tracingRequested(env)) return warnings;
  for (const variable of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const protocol = env[variable]?.trim().toLowerCase();
    if (protocol === undefined || protocol === '') continue;
    if (protocol === 'grpc') {
      warnings.push(
        `${variable}=grpc is not supported: RUNE sends OTLP/HTTP (JSON), so point the endpoint at the collector's OTLP/HTTP receiver (port 4318), not its gRPC one`,
      );
    } else if (protocol !== 'http/json') {
      warnings.push(
        `${variable}=${protocol} is not supported: RUNE sends OTLP/HTTP as JSON (http/json), which an OTLP/HTTP receiver accepts`,
      );
    }
    break; // the traces-specific variable wins over the general one
  }
  return warnings;
}
