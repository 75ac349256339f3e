/**
 * @rune/core — configuration, plugin registry, the orchestrator (LOM), the mediator (LMM), the
 * Transport interface, the local transport and the audit trail.
 */

export {
  DEFAULT_CONCURRENCY,
  type FailureBudget,
  type FleetPolicy,
  type FleetPolicyRecord,
  failureAllowance,
  fleetPolicyRecord,
  formatFailureBudget,
  parseDuration,
  parseFailureBudget,
  validateFleetPolicy,
} from './fleet/policy.js';
export {
  abortReasonCode,
  type ScheduledOutcome,
  type ScheduleOptions,
  type SkipReason,
  scheduleFleet,
} from './fleet/scheduler.js';
export {
  ALL_GROUP,
  type Inventory,
  type InventoryNode,
  type LoadInventoryOptions,
  loadInventory,
  type ParseInventoryOptions,
  parseInventory,
} from './inventory/inventory.js';
export { type InventoryFile, InventoryFileSchema } from './inventory/inventory-schema.js';
export { parseNodeList, type ReadNodeListOptions, readNodeList } from './inventory/node-list.js';
export {
  DEFAULT_TRANSPORT,
  isLocalName,
  LOCAL_TRANSPORT,
  type SelectedTarget,
  type SelectTargetsOptions,
  selectTargets,
} from './inventory/select-targets.js';
export { parseSelection, type SelectorAtom, type SelectorTerm } from './inventory/selector.js';
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
