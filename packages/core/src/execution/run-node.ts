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
    const artifacts = await (plan.fetch_artifacts && (response.payload.artifacts ?? []).length > 0
      ? withPhaseSpan({ phaseSpan }, 'fetch', () =>
          fetchArtifacts(plan, transport, planned, response, exec.signal),
        )
      : fetchArtifacts(plan, transport, planned, response, exec.signal));
    result.artifacts = artifacts.records;
    if (artifacts.error !== null) throw artifacts.error;
    return result;
  } catch (error) {
    return failNodeResult(result, RuneError.from(error), plan);
  } finally {
    result.duration_ms = Math.max(0, Math.round(now() - started));
  }
}
