/**
 * @rune/core — configuration, plugin registry, planning, execution, the
 * Transport interface, the local transport and the audit trail.
 */

export {
  findRunsWithoutOutcome,
  NO_OUTCOME_STATUS,
  type RunWithoutOutcome,
} from './audit/audit-attempts.js';
export {
  AUDIT_MESSAGE_MAX_BYTES,
  AUDIT_METADATA_MAX_BYTES,
  AUDIT_PARAM_VALUE_MAX_BYTES,
  AUDIT_RECORD_MAX_BYTES,
  type AuditTruncatedValue,
  boundAuditEntry,
} from './audit/audit-bounds.js';
export {
  type AuditSigner,
  auditKeyId,
  createAuditSigner,
  loadOrCreateAuditKey,
  readAuditPublicKey,
  verifyAuditSignature,
} from './audit/audit-key.js';
export { DEFAULT_AUDIT_LOCK_TIMEOUT_MS } from './audit/audit-lock.js';
export {
  AUDIT_GENESIS_HASH,
  AUDIT_RECORD_VERSION,
  type AuditEntry,
  type AuditEvent,
  type AuditHead,
  type AuditRecord,
  type AuditSink,
  type AuditVerification,
  canonicalJson,
  createFileAuditSink,
  createMemoryAuditSink,
  currentOperator,
  type FileAuditSinkOptions,
  hashAuditRecord,
  type RefusalFacts,
  readAuditLog,
  refusalEntry,
  type VerifyAuditLogOptions,
  verifyAuditLog,
} from './audit/audit-log.js';
export {
  RERUN_CHOICES,
  type RerunNodeOutcome,
  type RerunSelection,
  type RerunWhich,
  rerunSelection,
  selectRerun,
} from './audit/audit-rerun.js';
export {
  CONFIG_SECTIONS,
  type ConfigFile,
  ConfigFileSchema,
  type ConfigSectionName,
  DEFAULT_CONFIG_VALUES,
  type RuneConfig,
} from './config/config-schema.js';
export {
  type ConfigSource,
  configEnvName,
  describeConfig,
  type LoadConfigOptions,
  type LoadedConfig,
  loadConfig,
  resolveAuditKeyFile,
  resolveAuditLogPath,
  SYSTEM_CONFIG_PATH,
} from './config/load-config.js';
export {
  defaultAuditKeyFile,
  defaultAuditLogPath,
  type EnvironmentOptions,
  expandLocalPath,
  resolveXdgDirs,
  runeStateDir,
  type XdgDirs,
} from './config/xdg-dirs.js';
export {
  DEFAULT_DURATION_SYNTAX,
  DURATION_UNIT_MS,
  type DurationSyntax,
  type DurationUnit,
  durationToMs,
  parseDuration,
} from './duration.js';
export {
  createRunEventBuffer,
  type RunEventBuffer,
  type RuneRunEvent,
} from './events/run-event-buffer.js';
export {
  type ArtifactRecord,
  aggregateExitCode,
  EXIT_CODE_SEVERITY,
  type ExecutePlanOptions,
  executePlan,
  exitCodeForError,
  type NodeRunResult,
  type NodeRunStatus,
  type RunOutcome,
  type RunSummary,
  summarizeRun,
} from './execution/execute-plan.js';
export {
  assertSensitiveParametersAllowed,
  sensitiveParameterRefusal,
} from './execution/sensitive-parameters.js';
export {
  assertCompatibleTransport,
  createTransportRegistry,
  type TransportProvider,
  type TransportRegistry,
} from './execution/transport-registry.js';
export {
  DEFAULT_CONCURRENCY,
  type FailureBudget,
  type FleetPolicy,
  type FleetPolicyRecord,
  failureAllowance,
  fleetPolicyRecord,
  formatFailureBudget,
  MAX_CONCURRENCY,
  MAX_DEADLINE_MS,
  MAX_POLICY_COUNT,
  parseFailureBudget,
  parsePolicyInteger,
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
  detectInventoryFormat,
  type Inventory,
  type InventoryFormat,
  type InventoryNode,
  type LoadInventoryOptions,
  loadInventory,
  type ParseInventoryOptions,
  parseInventory,
} from './inventory/inventory.js';
export { type InventoryFile, InventoryFileSchema } from './inventory/inventory-schema.js';
export {
  type ParseInventoryTextOptions,
  parseInventoryText,
} from './inventory/inventory-text.js';
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
export {
  type ExecutionPlan,
  LOCAL_NODE_NAMES,
  LOCAL_TRANSPORT_NAME,
  newTraceId,
  type PlanContext,
  type PlannedNode,
  type PlannedPlugin,
  type PlanRequest,
  type PlanTarget,
  planRun,
  type ResolvedTarget,
  redactPlan,
  resolveTargets,
  targetName,
} from './planning/plan-run.js';
export {
  coerceParameter,
  type ParameterInput,
  type ParameterViolation,
  REDACTED,
  redactParameters,
  resolveRunParameters,
  sensitiveParameterNames,
} from './planning/resolve-parameters.js';
export {
  builtinPluginDir,
  defaultPluginSources,
  discoverPlugins,
  inferManifest,
  type PluginCandidate,
  type PluginRegistry,
  type PluginRegistryOptions,
  type PluginSourceDir,
  type PluginSourceKind,
  type RegisteredPlugin,
  suggestActions,
} from './plugins/plugin-registry.js';
export {
  type ActionInfo,
  createRune,
  type PluginInfo,
  type RunAuditReport,
  type Rune,
  type RuneOptions,
  type RuneRunOptions,
  type RuneRunOutcome,
  type RunHandle,
  type RunHandleOutcome,
  type RunReport,
  runStatus,
} from './rune.js';
export {
  createLocalTransport,
  DEFAULT_KILL_GRACE_MS,
  DEFAULT_OUTPUT_DRAIN_MS,
  LOCAL_TRANSPORT_NODE_NAMES,
  type LocalTransportOptions,
} from './transport/local-transport.js';
export {
  DEFAULT_PLUGIN_PATH,
  minimalPluginEnvironment,
  PLUGIN_ENVIRONMENT_VARIABLES,
} from './transport/plugin-environment.js';
export {
  createPrivatePluginCache,
  type PrivatePluginCache,
  type PrivatePluginCacheOptions,
} from './transport/private-plugin-cache.js';
export { CORE_VERSION } from './version.js';
