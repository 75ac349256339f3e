/**
 * Judging what a transport returned: its raw facts are copied into the node's result (exit code,
 * signal, termination, bounded stdout/stderr facts, metadata with the timings and containment),
 * then the verdict: a `timeout` termination is PLUGIN_TIMEOUT (stages 2-3 of the timeout rule, owned
 * by the transport), `cancelled` is RUN_CANCELLED or DEADLINE_EXCEEDED (whichever aborted the run),
 * anything else goes through `evaluatePluginOutput` from @rune/protocol — the same rules the plugin
 * test kit applies. Returns the validated BPCS response of a successful run; throws the RuneError
 * of a failed one (the response, when there is one, is already in the result).
 */
import { type BpcsResponse, evaluatePluginOutput, RuneError } from '@rune/protocol';
import type { TransportExecResult } from '@rune/transport';
import { abortReasonCode } from '../fleet/scheduler.js';
import type { ExecutionPlan } from '../planning/plan-run.js';
import type { NodeRunResult } from './node-result.js';

const decoder = new TextDecoder('utf-8', { fatal: false });

/** Copies the transport's facts into `result`. */
export function recordTransportResult(result: NodeRunResult, raw: TransportExecResult): void {
  result.plugin_exit_code = raw.exitCode;
  result.signal = raw.signal;
  result.termination = raw.termination;
  result.stderr_tail = decoder.decode(raw.stderr);
  result.stderr_truncated = raw.stderrTruncated;
  result.stdout_bytes = raw.stdout.byteLength;
  result.stdout_truncated = raw.stdoutTruncated;
  result.containment = raw.containment ?? null;
  // The audit record takes the node's metadata, so containment is recorded there too.
  result.metadata = {
    ...raw.metadata,
    timings: raw.timings,
    ...(raw.containment === undefined ? {} : { containment: raw.containment }),
  };
}

/**
 * Judges a transport result that {@link recordTransportResult} recorded: sets `status`,
 * `exit_code` and `response` on success and returns the response; throws otherwise.
 */
export function judgeTransportResult(
  plan: ExecutionPlan,
  result: NodeRunResult,
  raw: TransportExecResult,
  runSignal: AbortSignal,
): BpcsResponse {
  if (raw.termination === 'timeout') {
    throw new RuneError(
      'PLUGIN_TIMEOUT',
      `plugin ran past its timeout of ${plan.timeout_ms} ms; its process group was killed`,
      { details: { timeout_ms: plan.timeout_ms } },
    );
  }
  if (raw.termination === 'cancelled') {
    // The scheduler aborts with DEADLINE_EXCEEDED when the overall deadline passed.
    throw abortReasonCode(runSignal) === 'DEADLINE_EXCEEDED'
      ? new RuneError('DEADLINE_EXCEEDED', 'the run deadline passed; the plugin was killed')
      : new RuneError('RUN_CANCELLED', 'the run was cancelled; the plugin was killed');
  }
  const verdict = evaluatePluginOutput(
    {
      exitCode: raw.exitCode,
      signal: raw.signal,
      stdout: raw.stdout,
      stdoutTruncated: raw.stdoutTruncated,
    },
    {
      traceId: plan.trace_id,
      action: plan.action,
      node: result.node,
      requestMessageId: result.message_id,
      maxBytes: plan.limits.max_stdout_bytes,
    },
  );
  result.response = verdict.response;
  if (!verdict.ok) throw verdict.error;
  result.status = verdict.response.payload.result === 'partial' ? 'partial' : 'success';
  result.exit_code = 0;
  return verdict.response;
}
