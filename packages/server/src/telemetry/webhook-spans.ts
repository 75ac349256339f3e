/**
 * Spans of the alert receivers (docs/observability.md, "Webhooks"):
 *
 * - `rune.webhook`: one per received webhook, a child of its request span (so of the sender's
 *   `traceparent` when it sent one), from receipt to the durable record of its alerts; a refused
 *   webhook (authentication, body) ends with the EPS code.
 * - `rune.alert`: one per alert decided, a child of its webhook's span (it may start after that
 *   one ended: decisions are asynchronous), with the rule it matched, its outcome and the run.
 *
 * The run an alert starts is a CHILD of its `rune.alert` span, in the same trace, the way a run
 * submitted with `traceparent` continues its caller's trace: the webhook, the decision and the
 * run are one trace, and the run's audit records and events carry the webhook's trace id even
 * with tracing off here. (A span link would have split them into two traces to join by hand.)
 */
import { type Context, ROOT_CONTEXT, type Span, SpanStatusCode } from '@opentelemetry/api';
import { RUNE_SPAN_ATTRIBUTES, startRuneSpan } from '@rune/core';
import { RuneError } from '@rune/protocol';
import type { FastifyRequest } from 'fastify';
import { requestTraceContext, requestTraceId } from './request-trace.js';

/** The trace an alert's decision (and its run) continues. */
export interface AlertTrace {
  traceId: string;
  traceContext?: Context;
}

/** What the decision span reports once the alert is decided. */
export interface AlertDecision {
  rule: string | null;
  outcome: string;
  action: string | null;
  run_id: string | null;
}

/** A started `rune.webhook` span. */
export interface WebhookSpan {
  /** The trace its alerts' decisions continue (undefined when the request has no trace id). */
  trace: AlertTrace | undefined;
  /** Ends the span: `accepted` alerts recorded, or the error that refused the webhook. */
  end(outcome: { accepted: number } | { error: unknown }): void;
}

/** Starts the `rune.webhook` span of a receiver request. */
export function startWebhookSpan(
  request: FastifyRequest,
  kind: string,
  receiver: string,
): WebhookSpan {
  const traceId = requestTraceId(request);
  if (traceId === undefined) return { trace: undefined, end: () => {} };
  const parent = requestTraceContext(request) ?? ROOT_CONTEXT;
  const { span, context } = startRuneSpan('rune.webhook', {
    traceId,
    parent,
    attributes: { 'rune.webhook.kind': kind, 'rune.webhook.receiver': receiver },
  });
  return {
    trace: { traceId, traceContext: span.isRecording() ? context : parent },
    end(outcome) {
      if ('error' in outcome) {
        endSpanWithError(span, outcome.error);
        return;
      }
      span.setAttribute('rune.webhook.alerts', outcome.accepted);
      span.end();
    },
  };
}

/**
 * Runs the decision of alert `id` as its `rune.alert` span; `step` gets the trace the alert's run
 * is submitted in, and `decided` reads the outcome once `step` is done (only when recording).
 */
export async function withAlertSpan(
  id: string,
  trace: AlertTrace,
  step: (runTrace: AlertTrace) => Promise<void>,
  decided: () => Promise<AlertDecision | undefined>,
): Promise<void> {
  const { span, context } = startRuneSpan('rune.alert', {
    traceId: trace.traceId,
    parent: trace.traceContext ?? ROOT_CONTEXT,
    attributes: { 'rune.alert.id': id },
  });
  const recording = span.isRecording();
  try {
    await step(recording ? { traceId: trace.traceId, traceContext: context } : trace);
  } catch (error) {
    endSpanWithError(span, error);
    throw error;
  }
  if (recording) await describeDecision(span, decided).catch(() => undefined);
  span.end();
}

/** Ends `span` with the EPS code of `error`. */
function endSpanWithError(span: Span, error: unknown): void {
  const failure = RuneError.from(error);
  span.setAttribute(RUNE_SPAN_ATTRIBUTES.errorCode, failure.code);
  span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
  span.end();
}

async function describeDecision(
  span: Span,
  decided: () => Promise<AlertDecision | undefined>,
): Promise<void> {
  const row = await decided();
  if (row === undefined) return;
  span.setAttribute('rune.alert.outcome', row.outcome);
  if (row.rule !== null) span.setAttribute('rune.alert.rule', row.rule);
  if (row.action !== null) span.setAttribute('rune.action', row.action);
  if (row.run_id !== null) span.setAttribute('rune.run.id', row.run_id);
  if (row.outcome === 'refused') span.setStatus({ code: SpanStatusCode.ERROR });
}
