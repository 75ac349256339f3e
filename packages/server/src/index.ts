/**
 * @rune/server — `rune serve`: the RUNE service (REST API, run store, live events, API tokens).
 * This index is the complete public surface.
 */

export { normalizePayload } from './alerts/receivers.js';
export {
  type AlertRules,
  type AlertRulesOptions,
  buildRunRequest,
  type CompiledRule,
  groupKey,
  loadAlertRules,
  matchRule,
  type NormalizedAlert,
  parseAlertRules,
  type ResolvedReceiver,
} from './alerts/rules.js';
export { AlertRulesFileSchema } from './alerts/rules-schema.js';
export { takeWebhookPhaseSamples, type WebhookPhaseSample } from './alerts/webhook-phases.js';
export {
  type CreatedToken,
  type CreateTokenOptions,
  createToken,
  listTokens,
  type Principal,
  revokeToken,
  TOKEN_ROLES,
  type TokenListing,
  type TokenRole,
} from './auth/tokens.js';
export { readStoreAudit, verifyStoreAudit } from './cluster/database-audit.js';
export {
  isLoopbackHost,
  parseListen,
  resolveServerSettings,
  type ServerSettings,
} from './config/server-config.js';
export {
  type ResolvedServerSection,
  SERVER_CONFIG_DEFAULTS,
  type ServerSection,
  ServerSectionSchema,
  serverConfigModule,
  serverSection,
} from './config/server-config-module.js';
export {
  HTTP_STATUS_BY_CATEGORY,
  HTTP_STATUS_BY_CODE,
  httpStatusFor,
} from './http/http-status.js';
// RBAC policy (issue 14): the same loader and decision function the server uses, for
// `rune policy check|test` offline.
export {
  createPolicyEnforcer,
  loadServerPolicy,
  type PolicyEnforcer,
  subjectOfPrincipal,
  tokenRoles,
} from './policy/enforcer.js';
export { BUILTIN_POLICY, loadPolicyFile, parsePolicy } from './policy/load-policy.js';
export {
  createOfflineChecker,
  type OfflineAnswer,
  type OfflineChecker,
  type OfflineQuestion,
  offlineSubject,
  type PolicyTestCase,
  type PolicyTestResult,
  parsePolicyCases,
  runPolicyCases,
} from './policy/offline.js';
export {
  type AccessRequest,
  type CompiledPolicy,
  DEFAULT_DENY,
  decide,
  type PolicyDecision,
  type PolicySubject,
  rolesOf,
} from './policy/policy.js';
export {
  POLICY_V1,
  POLICY_VERBS,
  type PolicyDocument,
  PolicyDocumentSchema,
  type PolicyVerb,
} from './policy/policy-schema.js';
export { recordSubmitPhases, type SubmitPhases } from './runs/submit-phases.js';
export { createRuneServer, type RuneServer, type RuneServerOptions } from './server.js';
export {
  registerSessionRoutes,
  type SessionRoutesOptions,
  type SignInMethod,
} from './sessions/routes-session.js';
export {
  type AuthenticatedSession,
  authenticateSession,
  type CreatedSession,
  type CreateSessionOptions,
  CSRF_HEADER,
  clearSessionCookie,
  createSession,
  revokeSession,
  revokeSessionsOf,
  type SessionCookieSettings,
  sessionCookieSettings,
} from './sessions/sessions.js';
export type { Shipper } from './shipping/shipper.js';
export { type MigrationReport, migrateRunStore } from './store/db-admin.js';
export { isPostgresUrl, redactDatabaseUrl } from './store/postgres-dialect.js';
export { openRunStore, type RunStore } from './store/run-store.js';
export type { ServerLogFormat } from './telemetry/json-log.js';
export {
  type StartTracingOptions,
  startTracing,
  type TracingHandle,
} from './telemetry/tracing-sdk.js';
export { SERVER_VERSION } from './version.js';
