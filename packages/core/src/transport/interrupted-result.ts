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
