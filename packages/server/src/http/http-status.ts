/**
 * The HTTP status of every EPS error the API returns: one status per EPS category, and a few
 * codes that HTTP has a more precise answer for. docs/server.md prints this table; a test checks
 * that every catalog code maps to a status.
 */
import { ERROR_CATALOG, type ErrorCategory, type ErrorCode } from '@rune/protocol';

/** Status per EPS category. */
export const HTTP_STATUS_BY_CATEGORY: Readonly<Record<ErrorCategory, number>> = {
  validation: 400,
  policy: 403,
  transport: 502,
  timeout: 504,
  plugin: 502,
  protocol: 400,
  cancelled: 409,
  internal: 500,
};

/** Codes whose status is not their category's. */
export const HTTP_STATUS_BY_CODE: Readonly<Partial<Record<ErrorCode, number>>> = {
  NOT_FOUND: 404,
  UNKNOWN_ACTION: 404,
  REQUEST_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  IDEMPOTENCY_KEY_REUSED: 409,
  AUTH_TOKEN_MISSING: 401,
  AUTH_TOKEN_INVALID: 401,
  AUTH_TOKEN_EXPIRED: 401,
  AUTH_TOKEN_REVOKED: 401,
  AUTH_TOKEN_IN_URL: 400,
  NODE_BUSY: 409,
  RATE_LIMITED: 429,
  QUEUE_FULL: 503,
  SERVER_SHUTTING_DOWN: 503,
  STORE_UNAVAILABLE: 503,
  AUDIT_WRITE_FAILED: 503,
  // alert receivers (issue 15)
  WEBHOOK_AUTH_FAILED: 401,
  WEBHOOK_SIGNATURE_INVALID: 401,
  WEBHOOK_REPLAYED: 401,
  ALERT_RECEIVER_UNKNOWN: 404,
  ALERT_NOT_HELD: 409,
  APPROVAL_NOT_PENDING: 409,
  APPROVAL_MISMATCH: 409,
  APPROVAL_EXPIRED: 409,
  OIDC_LOGIN_FAILED: 401,
  AUTH_SESSION_INVALID: 401,
  AUTH_SESSION_EXPIRED: 401,
};

/** The HTTP status of an EPS code. */
export function httpStatusFor(code: ErrorCode): number {
  return HTTP_STATUS_BY_CODE[code] ?? HTTP_STATUS_BY_CATEGORY[ERROR_CATALOG[code].category];
}
