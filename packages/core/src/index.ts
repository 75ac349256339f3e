/**
 * @rune/core — the library the CLI, the server and any Node tool embedding RUNE assemble a run
 * with: `createRune()` and its run handle (`rune.start()`), configuration, inventories and target
 * selection, the plugin registry, planning (`planRun`), execution (`executePlan`, the transport
 * registry), the local transport, fleet policy parsing, durations and the audit trail.
 *
 * This file is the complete public surface of the package (documented in docs/core-api.md); the
 * test helpers are at `@rune/core/testing`. Everything else under src/ is internal and may change
 * in any release. The Transport contract (interface, output capture, run-marker containment, the
 * local process runner, the timeout rule) lives in `@rune/transport`, the documents in
 * `@rune/protocol`; core does not re-export them.
 */

export {
  findRunsWithoutOutcome,
  NO_OUTCOME_STATUS,
  type RunWithoutOutcome,
} from './audit/audit-attempts.js';
export { boundAuditEntry } from './audit/audit-bounds.js';
export {
  type AuditSigner,
  createAuditSigner,
  loadOrCreateAuditKey,
  readAuditPublicKey,
} from './audit/audit-key.js';
export {
  AUDIT_GENESIS_HASH,
  type AuditEntry,
  type AuditEvent,
  type AuditHead,
  type AuditRecord,
  type AuditSink,
  type AuditSinkStats,
  type AuditVerification,
  type ChainHead as AuditChainHead,
  canonicalJson,
  createFileAuditSink,
  createMemoryAuditSink,
  currentOperator,
  type FileAuditSink,
  type FileAuditSinkOptions,
  hashAuditRecord,
  type PreparedAuditRecord,
  prepareAuditRecord,
  type RefusalFacts,
  readAuditLog,
  refusalEntry,
  sealAuditRecord,
  type VerifyAuditLogOptions,
  verifyAuditLog,
  verifyAuditText,
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
  CONFIG_DEFAULTS,
  CORE_CONFIG_SECTIONS,
  type ConfigFile,
  ConfigFileSchema,
  type CoreConfigSectionName,
  configFileSchema,
  type OutputFormat,
  type ResolvedConfig,
} from './config/config-schema.js';
export {
  type ConfigOverrides,
  type ConfigRow,
  type ConfigSource,
  configFileToEdit,
  describeConfig,
  type LoadConfigOptions,
  type LoadedConfig,
  loadConfig,
  resolveAuditKeyFile,
  resolveAuditLogPath,
  type TransportContextOptions,
  transportConfigContext,
} from './config/load-config.js';
export {
  defaultAuditKeyFile,
  defaultAuditLogPath,
  type EnvironmentOptions,
  expandLocalPath,
  resolveXdgDirs,
  type XdgDirs,
} from './config/xdg-dirs.js';
export { fsyncPath } from './durable-fs.js';
export {
  type DurationSyntax,
  type DurationUnit,
  durationToMs,
  parseDuration,
} from './duration.js';
export type { RuneRunEvent } from './events/run-event-buffer.js';
export {
  type ArtifactRecord,
  aggregateExitCode,
  EXIT_CODE_SEVERITY,
  type ExecutePlanOptions,
  executePlan,
  type NodeRunResult,
  type NodeRunStatus,
  type RunOutcome,
  type RunSummary,
} from './execution/execute-plan.js';
export {
  assertCompatibleTransport,
  createTransportRegistry,
  type TransportProvider,
  type TransportRegistry,
} from './execution/transport-registry.js';
export {
  type FailureBudget,
  type FleetPolicy,
  type FleetPolicyRecord,
  MAX_CONCURRENCY,
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
// The selector grammar itself, for the server's RBAC policy (one parser for CLI, API and policy).
export {
  evaluateSelection,
  type SelectionEvaluation,
  type SelectionUniverse,
} from './inventory/evaluate-selection.js';
export { matchesGlob } from './inventory/glob.js';
export {
  detectInventoryFormat,
  type Inventory,
  type InventoryFormat,
  type InventoryNode,
  type LoadInventoryOptions,
  loadInventory,
} from './inventory/inventory.js';
export {
  type ParseInventoryTextOptions,
  parseInventoryText,
} from './inventory/inventory-text.js';
export {
  type SelectedTarget,
  type SelectTargetsOptions,
  selectTargets,
} from './inventory/select-targets.js';
export { parseSelection, type SelectorAtom, type SelectorTerm } from './inventory/selector.js';
export { type HeapReclaim, reclaimHeap } from './memory/reclaim.js';
export {
  mentionedNodes,
  type PlanRequest,
  type PlanRequestPolicy,
  type ResolvedPlanRequest,
  type ResolvedPolicy,
  type ResolvePlanRequestOptions,
  readParamsSource,
  requestedTransport,
  resolvePlanRequest,
} from './planning/plan-request.js';
export {
  type ExecutionPlan,
  newTraceId,
  type PlanContext,
  type PlanInput,
  type PlannedNode,
  type PlannedPlugin,
  type PlanTarget,
  planRun,
  redactPlan,
} from './planning/plan-run.js';
export {
  coerceParameter,
  type ParameterInput,
  resolveRunParameters,
} from './planning/resolve-parameters.js';
export {
  assertValidNodeName,
  DEFAULT_TRANSPORT,
  isThisMachine,
  LOCAL_NODE_NAMES,
  LOCAL_TRANSPORT,
  type TargetSource,
  type TransportChoice,
  transportFor,
  usesLocalTransport,
} from './planning/targets.js';
export {
  type AssembledPlugin,
  type AssemblePluginOptions,
  assemblePluginSource,
  bundledBashLibraryDir,
  defaultIncludeDirs,
  INCLUDE_MARKER,
  MAX_ASSEMBLED_BYTES,
  MAX_INCLUDE_DEPTH,
  type PluginInclude,
  readAssembledPlugin,
} from './plugins/assemble-plugin.js';
export {
  builtinPluginDir,
  defaultPluginSources,
  discoverPlugins,
  type PluginCandidate,
  type PluginRegistry,
  type PluginRegistryOptions,
  type PluginSourceDir,
  type PluginSourceKind,
  pluginRegistryIsCurrent,
  type RegisteredPlugin,
  suggestActions,
} from './plugins/plugin-registry.js';
export {
  type ActionInfo,
  createRune,
  type PluginInfo,
  type RefusedRequest,
  type RunAuditReport,
  type Rune,
  type RuneOptions,
  type RuneRunOptions,
  type RuneRunOutcome,
  type RuneWarningOrigin,
  type RunHandle,
  type RunHandleOutcome,
  type RunReport,
  recordUnconfiguredRefusal,
} from './rune.js';
export {
  createRuneIdGenerator,
  RUNE_SPAN_ATTRIBUTES,
  RUNE_TRACER_NAME,
  type RuneSpanOptions,
  startRuneSpan,
  type TraceIdGenerator,
  tracingConfigWarnings,
  tracingRequested,
  withRuneSpan,
} from './telemetry/tracing.js';
export {
  createLocalTransport,
  type LocalTransportOptions,
} from './transport/local-transport.js';
export {
  LocalConfigSectionSchema,
  localTransportModule,
} from './transport/local-transport-module.js';
export { minimalPluginEnvironment } from './transport/plugin-environment.js';
export { CORE_VERSION } from './version.js';
export {
  checkWorkflow,
  type WorkflowActionRegistry,
  type WorkflowFinding,
} from './workflows/check-workflow.js';
export {
  type CompiledExpression,
  compileExpression,
  type ExpressionContext,
  type ExpressionReference,
} from './workflows/expressions.js';
export {
  type LoadedWorkflow,
  type LoadWorkflowOptions,
  loadWorkflowFile,
  loadWorkflowText,
  type WorkflowDiagnostic,
} from './workflows/load-workflow.js';
export {
  type RunWorkflowOptions,
  resolveWorkflowInputs,
  runeStepRunner,
  runWorkflow,
  type WorkflowStepApproval,
  type WorkflowStepContext,
  type WorkflowStepRun,
  type WorkflowStepRunner,
} from './workflows/run-workflow.js';
export { type WorkflowAuditFacts, workflowAuditEntry } from './workflows/workflow-audit.js';
export {
  jsonPointerSegments,
  type LocatedYaml,
  parseLocatedYaml,
  YAML_MAX_ALIAS_COUNT,
  type YamlLocation,
  type YamlSyntaxError,
  yamlValue,
} from './yaml-located.js';
