/**
 * The EPS v1 error catalog: every error code RUNE can emit, in one place.
 *
 * Each entry says which category the code belongs to, whether retrying the same request may
 * succeed (`retryable` is the default; an error instance may override it), which process exit
 * code the `rune` CLI returns for it, and one line a user can read. The catalog is the single
 * source of truth for specs/eps-v1.md (the table there is generated from it and checked).
 *
 * CLI exit codes by category: 0 success · 1 plugin reported failure · 2 usage/validation ·
 * 3 transport/unreachable · 4 refused by policy · 5 timeout · 6 protocol violation by a plugin ·
 * 70 internal error · 130 cancelled.
 */

/** The categories of EPS v1. */
export const ERROR_CATEGORIES = [
  'validation',
  'policy',
  'transport',
  'timeout',
  'plugin',
  'protocol',
  'cancelled',
  'internal',
] as const;

/** One EPS error category. */
export type ErrorCategory = (typeof ERROR_CATEGORIES)[number];

/** What the catalog records for one code. */
export interface ErrorCatalogEntry {
  readonly category: ErrorCategory;
  readonly retryable: boolean;
  readonly exitCode: number;
  readonly description: string;
}

const entry = (
  category: ErrorCategory,
  exitCode: number,
  retryable: boolean,
  description: string,
): ErrorCatalogEntry => ({ category, exitCode, retryable, description });

/** Exit codes of the `rune` CLI, by meaning. */
export const CLI_EXIT_CODES = {
  SUCCESS: 0,
  ACTION_FAILED: 1,
  USAGE: 2,
  TRANSPORT: 3,
  POLICY: 4,
  TIMEOUT: 5,
  PROTOCOL: 6,
  INTERNAL: 70,
  CANCELLED: 130,
} as const;

const X = CLI_EXIT_CODES;

/** Every EPS v1 error code, with its category, default retryability, CLI exit code and meaning. */
export const ERROR_CATALOG = {
  // --- validation: the request itself is wrong; fix the input (exit 2) ---
  INVALID_ARGUMENT: entry(
    'validation',
    X.USAGE,
    false,
    'A command-line argument or API argument is missing or malformed.',
  ),
  INVALID_ACTION_NAME: entry(
    'validation',
    X.USAGE,
    false,
    'The action name does not match ^[a-z0-9][a-z0-9-]{0,63}$.',
  ),
  UNKNOWN_ACTION: entry(
    'validation',
    X.USAGE,
    false,
    'No plugin is registered under this action name.',
  ),
  INVALID_PARAMETERS: entry(
    'validation',
    X.USAGE,
    false,
    'Parameters do not satisfy the plugin manifest: missing, unknown or of the wrong type.',
  ),
  INVALID_TARGET: entry(
    'validation',
    X.USAGE,
    false,
    'A node name, address, selector or instance id is malformed.',
  ),
  UNKNOWN_NODE: entry(
    'validation',
    X.USAGE,
    false,
    'A node, group or tag named on the command line is not in the inventory.',
  ),
  NO_TARGETS: entry(
    'validation',
    X.USAGE,
    false,
    'The target selection resolved to no node at all.',
  ),
  INVALID_CONFIG: entry(
    'validation',
    X.USAGE,
    false,
    'A configuration file is unreadable, not valid TOML, or has an unknown key or a wrong type.',
  ),
  INVALID_INVENTORY: entry(
    'validation',
    X.USAGE,
    false,
    'The inventory file is unreadable, not valid YAML, or does not match the inventory schema.',
  ),
  INVALID_MANIFEST: entry('validation', X.USAGE, false, 'A plugin manifest is not valid MRS.'),
  PLUGIN_INCLUDE_FAILED: entry(
    'validation',
    X.USAGE,
    false,
    'A plugin cannot be assembled: a `# @rune-include` names an invalid, missing or unsafe library, or includes form a cycle or nest too deep.',
  ),
  PLUGIN_DIR_UNREADABLE: entry(
    'validation',
    X.USAGE,
    false,
    'A configured plugin directory exists but cannot be read.',
  ),
  PAYLOAD_TOO_LARGE: entry(
    'validation',
    X.USAGE,
    false,
    'The request (plugin plus RCS document) exceeds what the transport can carry.',
  ),
  NOT_FOUND: entry(
    'validation',
    X.USAGE,
    false,
    'The API has no such run, node result, artifact, action or route (HTTP 404).',
  ),
  UNSUPPORTED_MEDIA_TYPE: entry(
    'validation',
    X.USAGE,
    false,
    'An API request body is not application/json (HTTP 415).',
  ),
  REQUEST_TOO_LARGE: entry(
    'validation',
    X.USAGE,
    false,
    "An API request body exceeds the server's body limit; it was not read (HTTP 413).",
  ),
  IDEMPOTENCY_KEY_REUSED: entry(
    'validation',
    X.USAGE,
    false,
    'An Idempotency-Key was already used for a request with another body (HTTP 409).',
  ),
  UNSUPPORTED_FEATURE: entry(
    'validation',
    X.USAGE,
    false,
    'The configuration asks for something this transport or version does not support (e.g. OpenSSH certificates).',
  ),
  // alert receivers and rules (@rune/server, issue 15)
  INVALID_ALERT_RULES: entry(
    'validation',
    X.USAGE,
    false,
    'The alert rules file is not valid (the message names the file, the JSON pointer and the line:column).',
  ),
  ALERT_RECEIVER_UNKNOWN: entry(
    'validation',
    X.USAGE,
    false,
    'No alert receiver of that name and kind is configured in the alert rules file (HTTP 404).',
  ),
  ALERT_NOT_HELD: entry(
    'validation',
    X.USAGE,
    false,
    'The alert is not held (it ran, expired, was released or resolved already), so it cannot be released (HTTP 409).',
  ),
  // workflows (issue 18)
  WORKFLOW_INVALID: entry(
    'validation',
    X.USAGE,
    false,
    'A workflow definition is invalid: YAML or schema errors, unknown actions, parameters that do not fit the manifest, undefined references, cycles or unreachable steps (each listed with line:column).',
  ),
  WORKFLOW_EXPRESSION_ERROR: entry(
    'validation',
    X.USAGE,
    false,
    'A workflow expression failed at run time (a wrong type, a missing field, a value the step cannot use); the step fails with this code.',
  ),

  // --- protocol: a message is not what the protocol says (exit 6) ---
  MALFORMED_JSON: entry('protocol', X.PROTOCOL, false, 'A document is not parseable JSON.'),
  INVALID_ENCODING: entry('protocol', X.PROTOCOL, false, 'A document is not valid UTF-8.'),
  DOCUMENT_TOO_LARGE: entry(
    'protocol',
    X.PROTOCOL,
    false,
    'A document exceeds the size limit (1 MiB by default, 256 KiB for a manifest).',
  ),
  DOCUMENT_TOO_DEEP: entry(
    'protocol',
    X.PROTOCOL,
    false,
    'A document nests arrays and objects deeper than the limit (64 levels by default).',
  ),
  SCHEMA_VIOLATION: entry(
    'protocol',
    X.PROTOCOL,
    false,
    'A document is JSON but violates its schema; details list every violation with its JSON pointer.',
  ),
  UNSUPPORTED_SCHEMA_VERSION: entry(
    'protocol',
    X.PROTOCOL,
    false,
    'The schema_version of a document is not one this receiver implements.',
  ),
  OUTPUT_EMPTY: entry('protocol', X.PROTOCOL, false, 'The plugin wrote nothing on stdout.'),
  OUTPUT_NOT_JSON: entry('protocol', X.PROTOCOL, false, 'The plugin stdout is not a JSON object.'),
  OUTPUT_TEXT_BEFORE_JSON: entry(
    'protocol',
    X.PROTOCOL,
    false,
    'The plugin printed text before (or after) its JSON result on stdout; logs belong on stderr.',
  ),
  OUTPUT_MULTIPLE_DOCUMENTS: entry(
    'protocol',
    X.PROTOCOL,
    false,
    'The plugin printed more than one JSON document on stdout.',
  ),
  OUTPUT_TOO_LARGE: entry(
    'protocol',
    X.PROTOCOL,
    false,
    'The plugin stdout exceeded the capture limit and was truncated.',
  ),
  EXIT_CODE_MISMATCH: entry(
    'protocol',
    X.PROTOCOL,
    false,
    'The plugin exit code contradicts the result it reported.',
  ),

  // --- plugin: the plugin ran and reported or caused a failure (exit 1) ---
  PLUGIN_FAILED: entry(
    'plugin',
    X.ACTION_FAILED,
    false,
    'The plugin ran and reported that the action failed.',
  ),
  PLUGIN_INVALID_INPUT: entry(
    'plugin',
    X.ACTION_FAILED,
    false,
    'The plugin rejected its input (BPCS exit code 2).',
  ),
  PLUGIN_PRECONDITION_FAILED: entry(
    'plugin',
    X.ACTION_FAILED,
    false,
    'A precondition on the node is not met: a required tool or service is absent (BPCS exit code 3).',
  ),
  PLUGIN_PERMISSION_DENIED: entry(
    'plugin',
    X.ACTION_FAILED,
    false,
    'The plugin lacks the privileges it needs on the node (BPCS exit code 4).',
  ),
  PLUGIN_OPERATION_TIMEOUT: entry(
    'plugin',
    X.ACTION_FAILED,
    true,
    'An operation the plugin waited for did not finish within its own bounded wait (BPCS exit code 5).',
  ),
  PLUGIN_CRASHED: entry(
    'plugin',
    X.ACTION_FAILED,
    false,
    'The plugin exited with an undocumented exit code or was killed by a signal.',
  ),
  PLUGIN_NOT_EXECUTABLE: entry(
    'plugin',
    X.ACTION_FAILED,
    false,
    'The plugin file cannot be executed (permissions, interpreter missing, exit 126/127).',
  ),
  PLUGIN_NOT_INSTALLED: entry(
    'plugin',
    X.ACTION_FAILED,
    false,
    'Deploy mode preinstalled: the plugin is not present on the node.',
  ),
  PLUGIN_INTEGRITY_FAILED: entry(
    'plugin',
    X.ACTION_FAILED,
    false,
    'The plugin on the node does not match its sha256; nothing was executed.',
  ),

  // --- policy: refused for safety (exit 4) ---
  PLUGIN_CACHE_UNSAFE: entry(
    'policy',
    X.POLICY,
    false,
    'The plugin cache (or a preinstalled plugin) is in a path another user could change: a component is a symlink, not owned by the login user or root, or writable by others; nothing was executed.',
  ),
  HOST_KEY_UNKNOWN: entry(
    'policy',
    X.POLICY,
    false,
    'The host key is not in any known_hosts file and the mode is strict.',
  ),
  HOST_KEY_MISMATCH: entry(
    'policy',
    X.POLICY,
    false,
    'The host presented a key different from the one recorded in known_hosts.',
  ),
  HOST_KEY_REVOKED: entry(
    'policy',
    X.POLICY,
    false,
    'The host presented a key marked @revoked in known_hosts.',
  ),
  PRIVILEGE_PASSWORD_REQUIRED: entry(
    'policy',
    X.POLICY,
    false,
    'The remote sudo asks for a password; RUNE only uses non-interactive sudo.',
  ),
  PRIVILEGE_DENIED: entry(
    'policy',
    X.POLICY,
    false,
    'The remote user is not allowed to run the plugin as the requested user.',
  ),
  CANARY_FAILED: entry(
    'policy',
    X.POLICY,
    false,
    'The canary nodes did not all succeed; the remaining nodes were not started.',
  ),
  MAX_FAILURES_EXCEEDED: entry(
    'policy',
    X.POLICY,
    false,
    'The failure budget was exceeded; this node was not started.',
  ),
  DANGEROUS_ACTION_REFUSED: entry(
    'policy',
    X.POLICY,
    false,
    'The action is marked dangerous and was not confirmed.',
  ),
  SENSITIVE_PARAMETER_REFUSED: entry(
    'policy',
    X.POLICY,
    false,
    "A sensitive parameter would be visible in the transport's command history (e.g. SSM); use SSH or a secret reference.",
  ),

  AUTH_TOKEN_MISSING: entry(
    'policy',
    X.POLICY,
    false,
    'The API request carries no bearer token (HTTP 401).',
  ),
  AUTH_TOKEN_INVALID: entry(
    'policy',
    X.POLICY,
    false,
    'The bearer token is malformed or unknown to this server (HTTP 401).',
  ),
  AUTH_TOKEN_EXPIRED: entry(
    'policy',
    X.POLICY,
    false,
    'The bearer token has expired; create a new one (HTTP 401).',
  ),
  AUTH_TOKEN_REVOKED: entry('policy', X.POLICY, false, 'The bearer token was revoked (HTTP 401).'),
  AUTH_TOKEN_IN_URL: entry(
    'policy',
    X.POLICY,
    false,
    'A token was sent in the URL query string, where logs and proxies keep it; send it in the Authorization header (HTTP 400).',
  ),
  ROLE_FORBIDDEN: entry(
    'policy',
    X.POLICY,
    false,
    "The token's role does not allow this request (HTTP 403).",
  ),
  NODE_BUSY: entry(
    'policy',
    X.POLICY,
    true,
    'A non-idempotent action is already running or queued on this node and the request asked not to wait (HTTP 409).',
  ),
  RATE_LIMITED: entry(
    'policy',
    X.POLICY,
    true,
    'Too many requests for this token; retry after the time in Retry-After (HTTP 429).',
  ),
  QUEUE_FULL: entry(
    'policy',
    X.POLICY,
    true,
    "The server's run queue is full; retry after the time in Retry-After (HTTP 503).",
  ),
  SERVER_SHUTTING_DOWN: entry(
    'policy',
    X.POLICY,
    true,
    'The server is shutting down and accepts no new runs (HTTP 503).',
  ),
  // alert receivers (@rune/server, issue 15)
  WEBHOOK_AUTH_FAILED: entry(
    'policy',
    X.POLICY,
    false,
    "A webhook request carried no credentials or not the receiver's (bearer token or basic auth) (HTTP 401).",
  ),
  WEBHOOK_SIGNATURE_INVALID: entry(
    'policy',
    X.POLICY,
    false,
    'A signed webhook request has a missing or wrong HMAC signature for every configured secret (HTTP 401).',
  ),
  WEBHOOK_REPLAYED: entry(
    'policy',
    X.POLICY,
    false,
    "A signed webhook request's timestamp is missing or outside the receiver's replay window (HTTP 401).",
  ),
  // RBAC policy, approvals and single sign-on (issue 14).
  POLICY_DENIED: entry(
    'policy',
    X.POLICY,
    false,
    'The policy does not allow this principal this verb on this action or on every requested node; the refusal names the deciding rule and the offending nodes (HTTP 403).',
  ),
  INVALID_POLICY: entry(
    'validation',
    X.USAGE,
    false,
    'The policy file is unreadable, not valid YAML, or has an unknown key, a wrong type, a bad selector or an unknown role; the error names the file, line and key.',
  ),
  APPROVAL_SELF_FORBIDDEN: entry(
    'policy',
    X.POLICY,
    false,
    'The principal that requested a run may not approve it (four eyes) (HTTP 403).',
  ),
  APPROVAL_NOT_PENDING: entry(
    'policy',
    X.POLICY,
    false,
    'The run is not awaiting approval (already approved, rejected, expired or never needed one), or this principal already approved it (HTTP 409).',
  ),
  APPROVAL_MISMATCH: entry(
    'policy',
    X.POLICY,
    false,
    'The approval does not bind this request: the action, plugin sha256, nodes or parameters changed since it was requested, or the approver approved another request (HTTP 409).',
  ),
  APPROVAL_EXPIRED: entry(
    'policy',
    X.POLICY,
    false,
    'The run waited for approval longer than the configured time and will not start (HTTP 409).',
  ),
  APPROVAL_REJECTED: entry('policy', X.POLICY, false, 'An approver rejected the run.'),
  TOKEN_RIGHTS_EXCEEDED: entry(
    'policy',
    X.POLICY,
    false,
    'A token may not be created with a role its creator does not hold, or with more rights than its creator (HTTP 403).',
  ),
  OIDC_LOGIN_FAILED: entry(
    'policy',
    X.POLICY,
    false,
    'Single sign-on failed: bad state or PKCE verifier, an ID token that does not verify, or a user the policy does not know (HTTP 401).',
  ),
  // Browser sessions of the dashboard (issue 16).
  AUTH_SESSION_INVALID: entry(
    'policy',
    X.POLICY,
    false,
    'The session cookie is malformed, unknown or revoked (or the token it was opened with was); sign in again (HTTP 401).',
  ),
  AUTH_SESSION_EXPIRED: entry(
    'policy',
    X.POLICY,
    false,
    'The browser session passed its idle or absolute lifetime; sign in again (HTTP 401).',
  ),
  CSRF_REJECTED: entry(
    'policy',
    X.POLICY,
    false,
    'A state-changing request authenticated by a session cookie lacked the matching x-csrf-token header or came from another Origin (HTTP 403).',
  ),
  // workflows (issue 18)
  APPROVAL_UNAVAILABLE: entry(
    'policy',
    X.POLICY,
    false,
    'A workflow approval step cannot be satisfied: no server to approve it (rune serve, by someone other than the requester), or it guards no action step; nothing after it runs.',
  ),
  WORKFLOW_RUN_LIMIT: entry(
    'policy',
    X.POLICY,
    false,
    'A workflow run reached its max_runs bound (runs started, retries included); the rest is skipped.',
  ),

  // --- transport: the node could not be reached or the link failed (exit 3) ---
  DNS_LOOKUP_FAILED: entry('transport', X.TRANSPORT, true, 'The node name does not resolve.'),
  CONNECTION_REFUSED: entry(
    'transport',
    X.TRANSPORT,
    true,
    'The node refused the connection (nothing listening on the port).',
  ),
  CONNECT_TIMEOUT: entry(
    'transport',
    X.TRANSPORT,
    true,
    'No TCP connection could be established within the connect timeout.',
  ),
  HOST_UNREACHABLE: entry(
    'transport',
    X.TRANSPORT,
    true,
    'The network reports the node unreachable.',
  ),
  HANDSHAKE_TIMEOUT: entry(
    'transport',
    X.TRANSPORT,
    true,
    'The node accepted TCP but did not complete the protocol handshake (a silent host).',
  ),
  AUTH_FAILED: entry(
    'transport',
    X.TRANSPORT,
    false,
    'Authentication failed; details list the methods tried.',
  ),
  CONNECTION_LOST: entry(
    'transport',
    X.TRANSPORT,
    true,
    'The connection dropped while the action was running; its outcome is unknown.',
  ),
  CHANNEL_OPEN_FAILED: entry(
    'transport',
    X.TRANSPORT,
    true,
    'The server refused to open a session channel (e.g. MaxSessions reached).',
  ),
  PROXY_JUMP_FAILED: entry(
    'transport',
    X.TRANSPORT,
    true,
    'A jump host could not forward the connection.',
  ),
  ARTIFACT_FETCH_FAILED: entry(
    'transport',
    X.TRANSPORT,
    true,
    'An artifact declared by the plugin could not be downloaded or failed its sha256 check.',
  ),
  ARTIFACT_REMOVE_FAILED: entry(
    'transport',
    X.TRANSPORT,
    true,
    'A fetched artifact could not be removed from the node (not a regular file, or not permitted).',
  ),
  INSTANCE_UNKNOWN: entry(
    'transport',
    X.TRANSPORT,
    false,
    'SSM does not know this instance id (not registered or wrong region/account).',
  ),
  INSTANCE_OFFLINE: entry(
    'transport',
    X.TRANSPORT,
    true,
    'The SSM agent on the instance is not online (PingStatus ConnectionLost or Inactive).',
  ),
  DELIVERY_TIMEOUT: entry(
    'transport',
    X.TRANSPORT,
    true,
    'SSM could not deliver the command to the instance in time.',
  ),
  UNDELIVERABLE: entry(
    'transport',
    X.TRANSPORT,
    false,
    'SSM reports the command undeliverable (instance terminated or agent gone).',
  ),
  THROTTLED: entry(
    'transport',
    X.TRANSPORT,
    true,
    'The remote API throttled the request beyond the retry budget.',
  ),
  TRANSPORT_API_ERROR: entry(
    'transport',
    X.TRANSPORT,
    true,
    'The remote API returned an error not covered by a more precise code.',
  ),
  TRANSPORT_UNAVAILABLE: entry(
    'transport',
    X.TRANSPORT,
    false,
    'The requested transport is not installed, not configured, or not compatible.',
  ),
  // Observability (record shipping, docs/observability.md).
  SHIPPING_SINK_FAILED: entry(
    'transport',
    X.TRANSPORT,
    true,
    'A record sink (syslog, Splunk HEC, stdout) did not take a delivery; the records stay in the spool and are retried.',
  ),

  // --- timeout (exit 5) ---
  PLUGIN_TIMEOUT: entry(
    'timeout',
    X.TIMEOUT,
    true,
    'The plugin ran past its timeout and its process group was killed.',
  ),
  DEADLINE_EXCEEDED: entry(
    'timeout',
    X.TIMEOUT,
    true,
    'The overall deadline for the run passed before this node finished or started.',
  ),

  // --- cancelled (exit 130) ---
  RUN_CANCELLED: entry(
    'cancelled',
    X.CANCELLED,
    true,
    'The run was cancelled (Ctrl-C or AbortSignal); the remote process was killed.',
  ),
  RUN_INTERRUPTED: entry(
    'cancelled',
    X.CANCELLED,
    true,
    'What ran the run stopped (a server restart or crash) before this node ended; what ran on the node was stopped by its watchdog.',
  ),

  // --- internal (exit 70) ---
  INTERNAL_ERROR: entry(
    'internal',
    X.INTERNAL,
    false,
    'A bug in RUNE: an unexpected condition. Please report it with the trace id.',
  ),
  AUDIT_WRITE_FAILED: entry(
    'internal',
    X.INTERNAL,
    false,
    'An audit record could not be written (log, lock or signing key): a run without its intent record does not start; a missing outcome record is reported with the results.',
  ),
  AUDIT_CHAIN_BROKEN: entry(
    'internal',
    X.INTERNAL,
    false,
    'The audit log does not verify: a record was altered, inserted, removed or reordered, its signature does not match the key, or records were cut from the end of an anchored log.',
  ),
  // workflows (issue 18)
  WORKFLOW_INTERRUPTED: entry(
    'internal',
    X.INTERNAL,
    false,
    'The process that ran a workflow stopped mid-workflow (a server restart); the workflow is marked interrupted and is not resumed.',
  ),
  // the run store (@rune/server)
  STORE_UNAVAILABLE: entry(
    'internal',
    X.INTERNAL,
    true,
    'The run store cannot be used: its SQLite worker thread stopped (crash, out of memory) or the store is closed; queries not answered were not committed, /readyz answers 503. Restart rune serve.',
  ),
} as const satisfies Record<string, ErrorCatalogEntry>;

/** Every EPS v1 error code. */
export type ErrorCode = keyof typeof ERROR_CATALOG;

/** All codes in catalog order. */
export const ERROR_CODES = Object.keys(ERROR_CATALOG) as ErrorCode[];

/** True when `value` is a code in the catalog. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CATALOG, value);
}

/** The CLI exit code for an error code. */
export function exitCodeFor(code: ErrorCode): number {
  return ERROR_CATALOG[code].exitCode;
}
