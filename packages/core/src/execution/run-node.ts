/**
 * Executing one planned node, start to result: verified plugin bytes, the transport, its
 * capability checks, the exec under the execution step's guard, the judgement of what came back,
 * then the artifacts. Whatever happens ends in the node's {@link NodeRunResult} — never a throw:
 * RuneErrors thrown by a transport keep their code (with node, action and trace id added), anything
 * else becomes INTERNAL_ERROR.
 */
import { context as otelContext } from '@opentelemetry/api';
import { encodeRcsRequest, RuneError } from '@rune/protocol';
import { type TransportPhaseHook, type TransportPlugin, withPhaseSpan } from '@rune/transport';
import type { ExecutionPlan, PlannedNode } from '../planning/plan-run.js';
import { endNodeSpan, startNodeSpan } from '../telemetry/run-spans.js';
import { RUNE_SPAN_ATTRIBUTES } from '../telemetry/tracing.js';
import { fetchArtifacts } from './artifacts.js';
import { guardedExec } from './guarded-exec.js';
import { judgeTransportResult, recordTransportResult } from './judge-result.js';
import { emptyNodeResult, failNodeResult, type NodeRunResult } from './node-result.js';
import { assertTransportCanRun } from './transport-checks.js';
import type { TransportRegistry } from './transport-registry.js';

/** What {@link runPlannedNode} needs besides the node: shared by every node of a run. */
export interface NodeRunContext {
  plan: ExecutionPlan;
  transports: TransportRegistry;
  /** The plan's plugin bytes, read and verified once (see plugin-bytes.ts). */
  loadPlugin: () => Promise<Uint8Array>;
  now: () => number;
  /** Overrides the timeout rule's stage-4 grace (see guarded-exec.ts). */
  transportGraceMs?: number;
}

/** Runs one node; `signal` is the node's abort signal from the fleet scheduler. */
export async function runPlannedNode(
  context: NodeRunContext,
  planned: PlannedNode,
  signal: AbortSignal,
): Promise<NodeRunResult> {
  const span = startNodeSpan(context.plan, planned);
  const result = await otelContext.with(span.context, () =>
    runNode(context, planned, signal, span.phaseSpan),
  );
  endNodeSpan(span.span, result);
  return result;
}

async function runNode(
  context: NodeRunContext,
  planned: PlannedNode,
  signal: AbortSignal,
  phaseSpan: TransportPhaseHook | undefined,
): Promise<NodeRunResult> {
  const { plan, now } = context;
  const result = emptyNodeResult(planned);
  const started = now();
  result.started_at = new Date(started).toISOString();
  try {
    const bytes = await context.loadPlugin();
    const transport = await context.transports.get(planned.transport);
    // The canonical encoding (specs/rcs-v1.md): the Bash library reads it without a full parse.
    const stdin = new TextEncoder().encode(encodeRcsRequest(planned.request));
    const runAs = assertTransportCanRun(plan, planned, transport, stdin);
    const plugin: TransportPlugin = {
      action: plan.action,
      version: plan.plugin.version,
      sha256: plan.plugin.sha256,
      content: bytes,
      localPath: plan.plugin.path,
    };
    if (planned.remote_path !== null) plugin.remotePath = planned.remote_path;

    const exec = await guardedExec(
      transport,
      {
        node: planned.target,
        plugin,
        deployMode: plan.deploy_mode,
        stdin,
        timeoutMs: plan.timeout_ms,
        limits: {
          maxStdoutBytes: plan.limits.max_stdout_bytes,
          maxStderrBytes: plan.limits.max_stderr_bytes,
        },
        traceId: plan.trace_id,
        ...(runAs === undefined ? {} : { runAs }),
        ...(plan.preflight_commands.length === 0
          ? {}
          : { preflight: { commands: plan.preflight_commands } }),
        ...(phaseSpan === undefined ? {} : { phaseSpan }),
      },
      signal,
      context.transportGraceMs,
    );
    if (exec.kind === 'abandoned') {
      result.containment = exec.containment;
      result.metadata = { containment: exec.containment };
      throw exec.error;
    }
    recordTransportResult(result, exec.raw);
    const response = judgeTransportResult(plan, result, exec.raw, signal);
    const fetch = () => fetchArtifacts(plan, transport, planned, response, exec.signal);
    const artifacts =
      phaseSpan !== undefined &&
      plan.fetch_artifacts &&
      (response.payload.artifacts ?? []).length > 0
        ? await tracedFetch(phaseSpan, fetch)
        : await fetch();
    result.artifacts = artifacts.records;
    if (artifacts.error !== null) throw artifacts.error;
    return result;
  } catch (error) {
    return failNodeResult(result, RuneError.from(error), plan);
  } finally {
    result.duration_ms = Math.max(0, Math.round(now() - started));
  }
}

/**
 * Fetches the artifacts as the node's `rune.fetch` phase: `rune.artifacts.count` is the number
 * fetched, and a failed fetch ends the span with its EPS code (the node fails with it as before).
 */
async function tracedFetch(
  phaseSpan: TransportPhaseHook,
  fetch: () => ReturnType<typeof fetchArtifacts>,
): ReturnType<typeof fetchArtifacts> {
  const done: { fetched?: Awaited<ReturnType<typeof fetchArtifacts>> } = {};
  try {
    await withPhaseSpan({ phaseSpan }, 'fetch', async (phase) => {
      const fetched = await fetch();
      done.fetched = fetched;
      const count = fetched.records.filter((record) => record.status === 'fetched').length;
      phase.setAttributes({ [RUNE_SPAN_ATTRIBUTES.artifactCount]: count });
      if (fetched.error !== null) throw fetched.error;
    });
  } catch (error) {
    // The fetch's own failure is in the result; anything else (the hook) is rethrown.
    if (done.fetched === undefined) throw error;
  }
  if (done.fetched === undefined) throw new RuneError('INTERNAL_ERROR', 'artifact fetch ended');
  return done.fetched;
}
