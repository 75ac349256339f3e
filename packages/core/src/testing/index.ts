/**
 * @rune/core/testing — helpers for people who extend RUNE: the transport conformance suite
 * (Vitest is a peer dependency of this subpath) and builders for inline test plugins.
 */

export { sha256Hex } from '../sha256-hex.js';
export { catchRuneError } from './catch-rune-error.js';
export {
  type ConformancePlugins,
  createConformancePlugins,
  DELAYED_ECHO_SCRIPT,
  DIGEST_SCRIPT,
  ECHO_SCRIPT,
  EXIT_CODE_SCRIPT,
  expectedLeaverOutput,
  expectedLines,
  LEAVER_SCRIPT,
  LINES_SCRIPT,
  leftoverCommandLineFragment,
  PROCESS_CHECK_SCRIPT,
  SETSID_HANG_SCRIPT,
  SIGNAL_SCRIPT,
  SLEEPER_SCRIPT,
  STREAMS_SCRIPT,
} from './conformance-plugins.js';
export { isProcessAlive } from './process-alive.js';
export { findProcessesByCommandLine } from './process-finder.js';
export {
  createRecordingTransport,
  type RecordingTransport,
  type RecordingTransportOptions,
} from './recording-transport.js';
export {
  createTestPlugin,
  DEFAULT_TEST_PLUGIN_ACTION,
  type TestPluginOptions,
} from './test-plugin.js';
export {
  type ConformanceCapabilities,
  DEFAULT_CONFORMANCE_CONCURRENCY,
  DEFAULT_CONFORMANCE_KILL_GRACE_MS,
  DEFAULT_CONFORMANCE_PAYLOAD_BYTES,
  DEFAULT_CONFORMANCE_STARTUP_MS,
  describeByteDifference,
  describeTransportConformance,
  TRANSPORT_CONFORMANCE_REQUIREMENTS,
  type TransportConformanceFactory,
  type TransportConformanceOptions,
  type TransportConformanceSetup,
  type TransportRequirement,
} from './transport-conformance.js';
