/**
 * @rune/transport/testing — the complete public surface for people who write or test a transport:
 * the conformance suite every transport must pass (Vitest is a peer dependency of this subpath),
 * its test plugins, and builders for inline test plugins.
 */

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
