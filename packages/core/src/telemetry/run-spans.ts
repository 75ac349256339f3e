/**
 * The spans of one run: `rune.plan`, `rune.run`, one `rune.node` per node (with the transport's
 * `rune.connect` / `rune.upload` / `rune.exec` and core's `rune.fetch` below it). Kept here so
 * that the execution modules call one function at each end and know nothing of OpenTelemetry.
 */
import { type Context, type Span, SpanStatusCode } from '@opentelemetry/api';
import type { TransportPhaseHook } from '@rune/transport';
import type { NodeRunResult } from '../execution/node-result.js';
import type { ExecutionPlan, PlannedNode } from '../planning/plan-run.js';
import {
  RUNE_SPAN_ATTRIBUTES as A,
  endSpanWithError,
  startRuneSpan,
  transportPhaseHook,
} from './tracing.js';

/** A started node span, its context and (only when recording) the transport hook. */
export interface NodeSpan {
  span: Span;
  context: Context;
  phaseSpan: TransportPhaseHook | undefined;
}

/** Starts the `rune.node` span of one planned node (a child of the active run span). */
export function startNodeSpan(plan: ExecutionPlan, planned: PlannedNode): NodeSpan {
  const { span, context } = startRuneSpan('rune.node', {
    traceId: plan.trace_id,
    attributes: {
      [A.action]: plan.action,
      [A.node]: planned.target.name,
      [A.transport]: planned.transport,
      [A.pluginVersion]: plan.plugin.version,
      [A.pluginSha256]: plan.plugin.sha256,
    },
  });
  // No hook when nothing records: transports then run their steps directly.
  return {
    span,
    context,
    phaseSpan: span.isRecording() ? transportPhaseHook(context, plan.trace_id) : undefined,
  };
}

/** Ends a node span with the node's result and EPS code. */
export function endNodeSpan(span: Span, result: NodeRunResult): void {
  span.setAttribute(A.result, result.status);
  if (result.error !== null) {
    span.setAttribute(A.errorCode, result.error.code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: result.error.message });
  }
  span.end();
}

/** Starts the `rune.run` span (root of the run's trace unless the caller's context is in it). */
export function startRunSpan(plan: ExecutionPlan, runId: string): { span: Span; context: Context } {
  return startRuneSpan('rune.run', {
    traceId: plan.trace_id,
    attributes: {
      [A.runId]: runId,
      [A.action]: plan.action,
      [A.pluginVersion]: plan.plugin.version,
      [A.pluginSha256]: plan.plugin.sha256,
      [A.nodeCount]: plan.nodes.length,
    },
  });
}

/** Ends the run span with the run's status (and its EPS code when it has one). */
export function endRunSpan<T extends { status: string; audit: { error: { code: string } | null } }>(
  span: Span,
): (outcome: T) => T {
  return (outcome) => {
    span.setAttribute(A.result, outcome.status);
    if (outcome.audit.error !== null) span.setAttribute(A.errorCode, outcome.audit.error.code);
    if (outcome.status !== 'succeeded') span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
    return outcome;
  };
}

/** Ends the run span of a run that failed as a whole, and rethrows. */
export function failRunSpan(span: Span): (error: unknown) => never {
  return (error) => {
    endSpanWithError(span, error);
    throw error;
  };
}

/** Runs planning as the `rune.plan` span; the plan's facts become its attributes. */
export async function tracePlanning<T extends { plan: ExecutionPlan }>(
  action: string,
  traceId: string,
  planning: () => Promise<T>,
): Promise<T> {
  const { span } = startRuneSpan('rune.plan', { traceId, attributes: { [A.action]: action } });
  try {
    const planned = await planning();
    span.setAttributes({
      [A.pluginVersion]: planned.plan.plugin.version,
      [A.pluginSha256]: planned.plan.plugin.sha256,
      [A.nodeCount]: planned.plan.nodes.length,
      [A.dryRun]: planned.plan.dry_run,
      [A.result]: 'planned',
    });
    span.end();
    return planned;
  } catch (error) {
    span.setAttribute(A.result, 'refused');
    endSpanWithError(span, error);
    throw error;
  }
}
