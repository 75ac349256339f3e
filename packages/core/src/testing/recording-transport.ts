/**
 * A recording transport double: runs nothing, remembers every request, answers with whatever the
 * test scripts. Unlike a real transport it checks nothing itself (no sha256, no paths), which is
 * the point: a test can prove that core's own checks hold without a transport's help.
 */
import {
  TRANSPORT_SPECIFICATION_VERSION,
  type Transport,
  type TransportCapabilities,
  type TransportExecRequest,
  type TransportExecResult,
} from '@rune/transport';

/** Options of {@link createRecordingTransport}. */
export interface RecordingTransportOptions {
  /** Transport name; default `recording`. */
  name?: string;
  /** Overrides of the default capabilities (ship and preinstalled, no artifacts, no run_as). */
  capabilities?: Partial<TransportCapabilities>;
  /** The answer to each exec; default: exit 0 with empty output (which core judges OUTPUT_EMPTY). */
  respond?: (request: TransportExecRequest) => TransportExecResult | Promise<TransportExecResult>;
}

/** A {@link Transport} that records its requests. */
export interface RecordingTransport extends Transport {
  /** Every request `exec` received, in order. */
  readonly requests: TransportExecRequest[];
  /** How many times `close()` was called. */
  readonly closeCount: number;
}

/** Creates a {@link RecordingTransport}. */
export function createRecordingTransport(
  options: RecordingTransportOptions = {},
): RecordingTransport {
  const requests: TransportExecRequest[] = [];
  let closeCount = 0;
  return {
    specificationVersion: TRANSPORT_SPECIFICATION_VERSION,
    name: options.name ?? 'recording',
    capabilities: {
      deployModes: ['ship', 'preinstalled'],
      artifacts: false,
      runAs: false,
      maxConcurrentExecsPerNode: 4,
      ...options.capabilities,
    },
    requests,
    get closeCount() {
      return closeCount;
    },
    async exec(request) {
      requests.push(request);
      if (options.respond !== undefined) return options.respond(request);
      return {
        termination: 'exit',
        exitCode: 0,
        signal: null,
        stdout: new Uint8Array(),
        stdoutTruncated: false,
        stderr: new Uint8Array(),
        stderrTruncated: false,
        timings: { connectMs: 0, execMs: 0, totalMs: 0 },
      };
    },
    async close() {
      closeCount += 1;
    },
  };
}
