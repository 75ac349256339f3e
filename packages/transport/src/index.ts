/**
 * @rune/transport — the contract between RUNE and a transport. This file is the complete public
 * surface of the package: the Transport interface and its request/result types, the output capture
 * helpers, the run-marker containment rule with its POSIX sh sweep (and `sweepLocalRun` for the machine
 * RUNE runs on), the one local plugin process runner (`runLocalProcess`), the timeout rule
 * (`TIMEOUT_GRACE_MS`, `timeoutStages`), the safe-path rule, the one
 * sha256 helper, the XDG state directory and the optional span hook (`withPhaseSpan`). A third-party transport depends on this package (and
 * `@rune/protocol`) only; its tests run the conformance suite from `@rune/transport/testing`.
 */

export type { ConfigSectionModule } from './config-section-module.js';
export { interruptedResult, notStartedResult } from './interrupted-result.js';
export {
  DEFAULT_OUTPUT_DRAIN_MS,
  type LocalProcessOptions,
  type LocalProcessResult,
  runLocalProcess,
} from './local-process.js';
export {
  DEFAULT_SWEEP_SHELL,
  DEFAULT_SWEEP_TIMEOUT_MS,
  type LocalSweepOptions,
  mergeContainment,
  sweepLocalRun,
} from './local-sweep.js';
export { HeadCapture, TailCapture } from './output-capture.js';
export {
  type TransportPhase,
  type TransportPhaseAttributes,
  type TransportPhaseHook,
  type TransportPhaseRecorder,
  withPhaseSpan,
} from './phase-span.js';
export {
  MAX_PREFLIGHT_COMMANDS,
  PREFLIGHT_COMMAND_PATTERN,
  PREFLIGHT_FUNCTION_SH,
  preflightFailure,
  validatePreflightCommands,
} from './preflight.js';
export {
  createRunMarker,
  parseSweepOutput,
  RUN_MARKER_PATTERN,
  RUN_MARKER_VARIABLE,
  SWEEP_FUNCTION_SH,
  type SweepOutcome,
} from './run-marker.js';
export { findUnsafePathComponent, SAFE_PATH_FUNCTION_SH } from './safe-path.js';
export { sha256Hex } from './sha256-hex.js';
export { TIMEOUT_GRACE_MS, type TimeoutStages, timeoutStages } from './timeout-rule.js';
export {
  type ContainmentReport,
  type FetchedArtifact,
  type OutputLimits,
  type TargetNode,
  type Termination,
  TRANSPORT_SPECIFICATION_VERSION,
  type Transport,
  type TransportCapabilities,
  type TransportExecRequest,
  type TransportExecResult,
  type TransportFactory,
  type TransportPlugin,
  type TransportPreflight,
} from './transport.js';
export type { TransportConfigContext, TransportModule } from './transport-module.js';
export {
  type EnvironmentOptions,
  expandLocalPath,
  resolveXdgDirs,
  runeStateDir,
  type XdgDirs,
} from './xdg-dirs.js';
