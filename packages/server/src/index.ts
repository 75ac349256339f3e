/**
 * @rune/server — `rune serve`: the RUNE service (REST API, run store, live events, API tokens).
 * This index is the complete public surface.
 */
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
export { verifyStoreAudit } from './cluster/database-audit.js';
export {
  isLoopbackHost,
  parseListen,
  resolveServerSettings,
  type ServerSettings,
} from './config/server-config.js';
export {
  HTTP_STATUS_BY_CATEGORY,
  HTTP_STATUS_BY_CODE,
  httpStatusFor,
} from './http/http-status.js';
export { createRuneServer, type RuneServer, type RuneServerOptions } from './server.js';
export { type MigrationReport, migrateRunStore } from './store/db-admin.js';
export { isPostgresUrl, redactDatabaseUrl } from './store/postgres-dialect.js';
export { openRunStore, type RunStore } from './store/run-store.js';
export { SERVER_VERSION } from './version.js';
