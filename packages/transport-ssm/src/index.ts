/**
 * @rune/transport-ssm — runs RUNE plugins through AWS Systems Manager Run Command
 * (`AWS-RunShellScript`) with the real `@aws-sdk/client-ssm`. This file is the complete public
 * surface of the package. The local SSM-protocol endpoint for tests and try-outs is its own
 * package, `@rune/ssm-endpoint` (bin `rune-ssm-endpoint`). The Transport contract it implements is
 * in `@rune/transport`.
 */

export {
  INVOCATION_STATUS_TABLE,
  type InvocationOutcome,
  type InvocationStatusRow,
  mapInvocationStatus,
} from './invocation-status.js';
export {
  createSsmTransport,
  DEFAULT_SSM_CANCEL_WAIT_MS,
  DEFAULT_SSM_DELIVERY_TIMEOUT_S,
  DEFAULT_SSM_INVOCATION_WAIT_MS,
  DEFAULT_SSM_MAX_ATTEMPTS,
  DEFAULT_SSM_MAX_COMMAND_BYTES,
  DEFAULT_SSM_MAX_POLL_INTERVAL_MS,
  DEFAULT_SSM_POLL_INTERVAL_MS,
  DEFAULT_SSM_REMOTE_CACHE_DIR,
  DEFAULT_SSM_TIMEOUT_GRACE_MS,
  INSTANCE_ID_PATTERN,
  SSM_API_OUTPUT_LIMITS,
  SSM_MAX_EXECUTION_TIMEOUT_S,
  SSM_MAX_INSTANCE_IDS_PER_COMMAND,
  type SsmTransportOptions,
} from './ssm-transport.js';
export { VERSION } from './version.js';
export { SSM_RESERVED_EXIT_CODES } from './wrapper-script.js';
