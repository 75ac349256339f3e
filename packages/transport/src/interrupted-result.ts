import type { TransportExecResult } from './transport.js';

/**
 * The result of an exec that ended by timeout or cancellation without output worth keeping —
 * typically cancelled before the plugin started. Every transport reports this case; one builder
 * keeps the shape identical (empty, untruncated streams; no exit code or signal).
 */
export function interruptedResult(
  termination: 'timeout' | 'cancelled',
  timings: TransportExecResult['timings'],
  metadata: Record<string, unknown> = {},
): TransportExecResult {
  return {
    termination,
    exitCode: null,
    signal: null,
    stdout: new Uint8Array(),
    stdoutTruncated: false,
    stderr: new Uint8Array(),
    stderrTruncated: false,
    timings,
    metadata,
  };
}

/**
 * The result of an exec cancelled before anything was started on the node: nothing can be left
 * running, so containment is complete with nothing killed. Every transport reports this case.
 */
export function notStartedResult(
  timings: TransportExecResult['timings'],
  metadata: Record<string, unknown> = {},
): TransportExecResult {
  return {
    ...interruptedResult('cancelled', timings, metadata),
    containment: { method: 'run-marker', killed: 0, complete: true },
  };
}
