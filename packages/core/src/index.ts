/**
 * @rune/core — configuration, plugin registry, the orchestrator (LOM), the mediator (LMM), the
 * Transport interface, the local transport and the audit trail.
 */

export {
  type FailureBudget,
  type FleetPolicy,
  failureAllowance,
  type ScheduledOutcome,
  type ScheduleOptions,
  type SkipReason,
  scheduleFleet,
} from './fleet/scheduler.js';
export { HeadCapture, TailCapture } from './transport/output-capture.js';
export {
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
} from './transport/transport.js';
