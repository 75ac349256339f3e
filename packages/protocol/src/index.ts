/**
 * @rune/protocol — the RUNE contract as code: RCS (runtime messages), BPCS (the plugin
 * stdin/stdout/exit-code contract), MRS (plugin registration) and EPS (errors).
 * No I/O and no Node.js APIs: this package runs anywhere TypeBox runs.
 */

export {
  type EvaluationContext,
  endOfJsonContainer,
  evaluatePluginOutput,
  type PluginEvaluation,
  type PluginProcessOutcome,
} from './bpcs/v1/evaluate.js';
export {
  BPCS_EXIT_CODE_ERRORS,
  BPCS_EXIT_CODE_TABLE,
  BPCS_EXIT_CODES,
  type BpcsExitCode,
  type BpcsExitCodeRow,
  isBpcsExitCode,
  SHELL_NOT_EXECUTABLE_EXIT_CODES,
} from './bpcs/v1/exit-codes.js';
export {
  isBpcsResponse,
  parseBpcsResponse,
  SUPPORTED_BPCS_VERSIONS,
  validateBpcsResponse,
} from './bpcs/v1/parse.js';
export {
  BPCS_RESULTS,
  BPCS_V1,
  type BpcsArtifact,
  BpcsArtifactSchema,
  BpcsMessageMetadataSchema,
  type BpcsResponse,
  BpcsResponseSchema,
  type BpcsResultKind,
} from './bpcs/v1/schema.js';
export {
  ACTION_NAME_MAX_LENGTH,
  ACTION_NAME_PATTERN,
  type ActionName,
  ActionNameSchema,
  type DeployMode,
  DeployModeSchema,
  ERROR_CODE_PATTERN,
  isActionName,
  isTraceId,
  type JsonObject,
  JsonObjectSchema,
  NodeNameSchema,
  SEMVER_PATTERN,
  SemverSchema,
  TIMESTAMP_PATTERN,
  TimestampSchema,
  TRACE_ID_LENGTH,
  TRACE_ID_PATTERN,
  TRANSPORT_NAME_PATTERN,
  TraceIdSchema,
  TransportNameSchema,
  UUID_PATTERN,
  UuidSchema,
} from './common/primitives.js';
export {
  CLI_EXIT_CODES,
  ERROR_CATALOG,
  ERROR_CATEGORIES,
  ERROR_CODES,
  type ErrorCatalogEntry,
  type ErrorCategory,
  type ErrorCode,
  exitCodeFor,
  isErrorCode,
} from './eps/v1/catalog.js';
export { isEpsError, parseEpsError, validateEpsError } from './eps/v1/parse.js';
export { type EpsError, EpsErrorSchema, EpsSourceSchema } from './eps/v1/schema.js';
export {
  RuneError,
  type RuneErrorOptions,
  type RuneErrorSource,
  UNTRACED_TRACE_ID,
} from './errors/rune-error.js';
export {
  buildJsonSchemas,
  formatJsonSchemaFile,
  JSON_SCHEMA_DIALECT,
  JSON_SCHEMA_FILES,
  type JsonSchemaDocument,
  jsonSchemaId,
  MRS_RULES_BEYOND_SCHEMA,
  toPlainJsonSchema,
} from './json-schema.js';
export { INFERRED_PLUGIN_VERSION, inferMrsManifest } from './mrs/v1/infer.js';
export {
  checkParameterValue,
  coerceParameterText,
  compileParameterPattern,
  escapeJsonPointerToken,
  hasLoneSurrogate,
  isReservedParameterName,
  isTopLevelParameterValue,
  RESERVED_MESSAGE,
  RESERVED_PARAMETER_NAMES,
  resolveParameters,
} from './mrs/v1/parameters.js';
export {
  isMrsManifest,
  listManifestRuleViolations,
  MAX_MANIFEST_BYTES,
  parseMrsManifest,
  SUPPORTED_MRS_VERSIONS,
  validateMrsManifest,
} from './mrs/v1/parse.js';
export {
  DEFAULT_PLUGIN_TIMEOUT_MS,
  MRS_PARAMETER_TYPES,
  MRS_V1,
  MrsArrayItemsSchema,
  type MrsManifest,
  MrsManifestSchema,
  type MrsParameter,
  MrsParameterSchema,
  type MrsParameters,
  MrsParametersSchema,
  type MrsParameterType,
  MrsRequirementsSchema,
  PARAMETER_NAME_PATTERN,
  RCS_VERSION_PATTERN,
} from './mrs/v1/schema.js';
export {
  isRcsRequest,
  negotiateRcsVersion,
  parseRcsRequest,
  SUPPORTED_RCS_VERSIONS,
  validateRcsRequest,
} from './rcs/v1/parse.js';
export {
  MAX_TIMEOUT_MS,
  RCS_V1,
  RcsMessageMetadataSchema,
  type RcsOptions,
  RcsOptionsSchema,
  type RcsRequest,
  RcsRequestSchema,
  type RcsRouting,
  RcsRoutingSchema,
  type RcsSender,
  RcsSenderSchema,
} from './rcs/v1/schema.js';
export {
  buildSpecSections,
  normalizeMarkdownTables,
  type ReplacedSections,
  renderErrorCatalogTable,
  renderExitCodeTable,
  renderFieldTable,
  replaceGeneratedSections,
} from './spec-sections.js';
export {
  DEFAULT_MAX_DOCUMENT_BYTES,
  DEFAULT_MAX_DOCUMENT_DEPTH,
  decodeUtf8,
  listViolations,
  MAX_LISTED_VIOLATIONS,
  measureJsonDepth,
  negotiateSchemaVersion,
  type ParseOptions,
  type ParseResult,
  parseJsonDocument,
  type SchemaViolation,
  schemaViolation,
  schemaViolations,
  utf8ByteLength,
  validateSchema,
} from './validation/parse.js';
