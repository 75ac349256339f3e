/**
 * Browser sessions of the dashboard. A browser never holds an API token: it trades one (or an
 * OIDC sign-in) for an opaque session secret in an HttpOnly cookie, so scripts on the page —
 * including an XSS that slipped through — cannot read a credential, and nothing is in local
 * storage or a URL.
 *
 * - The secret is 32 random bytes; the store keeps only its sha256 (a copy of the store opens no
 *   session), and the lookup is by that hash.
 * - Two lifetimes: idle (since the last request) and absolute (since sign-in). A session opened
 *   with an API token also ends when that token is revoked or expires.
 * - CSRF: SameSite=Strict already keeps the cookie off cross-site requests; on top of that every
 *   state-changing request authenticated by the cookie must carry `x-csrf-token` (an HMAC of the
 *   session secret: a page of another origin cannot compute or read it) and an `Origin` equal to
 *   the server's own. Bearer-token requests need neither: a browser never attaches those on its own.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { RuneError } from '@rune/protocol';
import { sha256Hex } from '@rune/transport';
import type { FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Principal } from '../auth/tokens.js';
import type { ServerSettings } from '../config/server-config.js';
import type { StoreDatabase } from '../store/schema.js';
import {
  endSession,
  pruneSessionEnds,
  type SessionAuditSink,
  type SessionEndReason,
  type SessionRowFacts,
} from './session-audit.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set when the request was authenticated by a session cookie (not by a bearer token). */
    browserSession?: AuthenticatedSession;
  }
}

const source = { component: 'rune-server' } as const;
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/**
 * A session's `last_seen_at` is written at most this often (every write is an fsync), or every
 * tenth of the idle lifetime when that is shorter, so idle expiry stays accurate to 10 %.
 */
const TOUCH_INTERVAL_MS = 60_000;

/** The cookie's name over plain loopback HTTP. */
export const SESSION_COOKIE_NAME = 'rune_session';
/** The cookie's name over TLS: the `__Host-` prefix pins it to this host, Path=/ and Secure. */
export const SESSION_COOKIE_NAME_TLS = '__Host-rune_session';
/** The header that carries the CSRF token. */
export const CSRF_HEADER = 'x-csrf-token';

/** How session cookies are written for this server. */
export interface SessionCookieSettings {
  readonly name: string;
  readonly secure: boolean;
  readonly idleMs: number;
  readonly maxMs: number;
}

/**
 * The cookie settings of a server: Secure and `__Host-` whenever the browser talks TLS (to the
 * server or to the TLS proxy in front of it); plain `rune_session` only for the loopback-only
 * plain-HTTP listener (the settings refuse any other listener without TLS).
 */
export function sessionCookieSettings(settings: ServerSettings): SessionCookieSettings {
  const secure = settings.tls !== null || settings.behindTlsProxy;
  return {
    name: secure ? SESSION_COOKIE_NAME_TLS : SESSION_COOKIE_NAME,
    secure,
    idleMs: settings.sessionIdleMs,
    maxMs: settings.sessionMaxMs,
  };
}

/** Options of {@link createSession}. */
export interface CreateSessionOptions {
  cookie: SessionCookieSettings;
  /** The API token the session is opened with: its revocation or expiry ends the session. */
  tokenId?: string;
  now?: Date;
}

/** A session just opened: `setCookie` goes in a `Set-Cookie` header, `csrf` to the page. */
export interface CreatedSession {
  setCookie: string;
  csrf: string;
  expiresAt: string;
  /** The sha256 of the secret: the row's key, and how audit records name the session. */
  idHash: string;
}

/** A request's session, once authenticated. */
export interface AuthenticatedSession {
  readonly principal: Principal;
  readonly csrf: string;
  readonly expiresAt: string;
  readonly idleMs: number;
  /** The sha256 of the secret: the row's key. */
  readonly idHash: string;
}

/** The CSRF token of a session secret (HMAC, so it reveals nothing about the secret). */
export function csrfTokenFor(secret: string): string {
  return createHmac('sha256', secret).update('rune-csrf-v1').digest('base64url');
}

function cookieHeader(cookie: SessionCookieSettings, value: string, maxAgeS: number): string {
  return [
    `${cookie.name}=${value}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${maxAgeS}`,
    ...(cookie.secure ? ['Secure'] : []),
  ].join('; ');
}

/** The `Set-Cookie` value that removes the session cookie. */
export function clearSessionCookie(cookie: SessionCookieSettings): string {
  return cookieHeader(cookie, '', 0);
}

/**
 * Opens a session for `principal` (already authenticated: by an API token, or by the OIDC
 * callback) and stores the hash of its secret. The principal is stored whole and given back on
 * every request.
 */
export async function createSession(
  db: Kysely<StoreDatabase>,
  principal: Principal,
  options: CreateSessionOptions,
): Promise<CreatedSession> {
  const now = options.now ?? new Date();
  const secret = randomBytes(32).toString('base64url');
  const expiresAt = new Date(now.getTime() + options.cookie.maxMs).toISOString();
  const idHash = sha256Hex(secret);
  await db
    .insertInto('browser_sessions')
    .values({
      id_sha256: idHash,
      principal: principal.name,
      principal_json: JSON.stringify(principal),
      token_id: options.tokenId ?? null,
      created_at: now.toISOString(),
      last_seen_at: now.toISOString(),
      idle_ms: options.cookie.idleMs,
      expires_at: expiresAt,
      revoked_at: null,
    })
    .execute();
  return {
    setCookie: cookieHeader(options.cookie, secret, Math.floor(options.cookie.maxMs / 1000)),
    csrf: csrfTokenFor(secret),
    expiresAt,
    idHash,
  };
}

/** The value of cookie `name` in a `Cookie` header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const index = part.indexOf('=');
    if (index > 0 && part.slice(0, index).trim() === name) return part.slice(index + 1).trim();
  }
  return undefined;
}

const invalid = (message: string): RuneError =>
  new RuneError('AUTH_SESSION_INVALID', message, { source });
const expired = (message: string): RuneError =>
  new RuneError('AUTH_SESSION_EXPIRED', message, { source });

/**
 * Called when a request finds its session ended (expired, or its token revoked or expired)
 * before the refusal is thrown: the session audit records the end once.
 */
export type SessionEndedHook = (row: SessionRowFacts, reason: SessionEndReason) => Promise<void>;

/**
 * The session of a cookie secret. Throws AUTH_SESSION_INVALID (malformed, unknown, revoked, or
 * its token revoked) or AUTH_SESSION_EXPIRED (idle or absolute lifetime passed, or its token
 * expired); `onEnded` hears of each end first.
 */
export async function authenticateSession(
  db: Kysely<StoreDatabase>,
  secret: string,
  now = new Date(),
  onEnded?: SessionEndedHook,
): Promise<AuthenticatedSession> {
  if (!SECRET_PATTERN.test(secret)) throw invalid('the session cookie is malformed; sign in again');
  const idHash = sha256Hex(secret);
  const row = await db
    .selectFrom('browser_sessions')
    .selectAll()
    .where('id_sha256', '=', idHash)
    .executeTakeFirst();
  if (row === undefined) throw invalid('the session is not known to this server; sign in again');
  if (row.revoked_at !== null) throw invalid(`the session was signed out at ${row.revoked_at}`);
  const ended = async (reason: SessionEndReason, error: RuneError): Promise<never> => {
    await onEnded?.(row, reason);
    throw error;
  };
  const at = now.getTime();
  if (Date.parse(row.expires_at) <= at)
    return ended('lifetime', expired(`the session expired at ${row.expires_at}`));
  const idleMs = Number(row.idle_ms);
  if (Date.parse(row.last_seen_at) + idleMs <= at) {
    return ended(
      'idle',
      expired(`the session was idle for more than ${Math.round(idleMs / 60_000)} min`),
    );
  }
  if (row.token_id !== null) {
    const token = await db
      .selectFrom('api_tokens')
      .select(['revoked_at', 'expires_at'])
      .where('id', '=', row.token_id)
      .executeTakeFirst();
    if (token === undefined || token.revoked_at !== null) {
      return ended('token_revoked', invalid('the token this session was opened with was revoked'));
    }
    if (token.expires_at !== null && Date.parse(token.expires_at) <= at) {
      return ended('token_expired', expired('the token this session was opened with has expired'));
    }
  }
  if (at - Date.parse(row.last_seen_at) >= Math.min(TOUCH_INTERVAL_MS, idleMs / 10)) {
    await db
      .updateTable('browser_sessions')
      .set({ last_seen_at: now.toISOString() })
      .where('id_sha256', '=', idHash)
      .execute();
  }
  return {
    principal: JSON.parse(row.principal_json) as Principal,
    csrf: csrfTokenFor(secret),
    expiresAt: row.expires_at,
    idleMs,
    idHash,
  };
}

/** Revokes one session (by the hash of its secret). */
export async function revokeSession(
  db: Kysely<StoreDatabase>,
  idHash: string,
  now = new Date(),
): Promise<void> {
  await db
    .updateTable('browser_sessions')
    .set({ revoked_at: now.toISOString() })
    .where('id_sha256', '=', idHash)
    .where('revoked_at', 'is', null)
    .execute();
}

/** Revokes every session of a principal (e.g. when its access is withdrawn); returns how many. */
export async function revokeSessionsOf(
  db: Kysely<StoreDatabase>,
  principal: string,
  now = new Date(),
): Promise<number> {
  const result = await db
    .updateTable('browser_sessions')
    .set({ revoked_at: now.toISOString() })
    .where('principal', '=', principal)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/**
 * Deletes sessions that expired before `before` or were revoked; returns how many. With `audit`,
 * an expired session that no request saw end is recorded as expired first (idle when its idle
 * deadline came before its absolute one).
 */
export async function pruneSessions(
  db: Kysely<StoreDatabase>,
  before: Date,
  audit?: SessionAuditSink,
): Promise<number> {
  if (audit !== undefined) {
    const unseen = await db
      .selectFrom('browser_sessions')
      .selectAll()
      .where('expires_at', '<', before.toISOString())
      .where('revoked_at', 'is', null)
      .where('id_sha256', 'not in', db.selectFrom('session_ends').select('id_sha256'))
      .execute();
    for (const row of unseen) {
      const idleEnd = Date.parse(row.last_seen_at) + Number(row.idle_ms);
      const reason = idleEnd < Date.parse(row.expires_at) ? 'idle' : 'lifetime';
      await endSession(
        db,
        audit,
        row,
        reason,
        new Date(Math.min(idleEnd, Date.parse(row.expires_at))),
      );
    }
  }
  const result = await db
    .deleteFrom('browser_sessions')
    .where((eb) =>
      eb.or([eb('expires_at', '<', before.toISOString()), eb('revoked_at', 'is not', null)]),
    )
    .executeTakeFirst();
  await pruneSessionEnds(db);
  return Number(result.numDeletedRows);
}

/** The origin the browser addressed (scheme, host and port), as an `Origin` header spells it. */
export function requestOrigin(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`.toLowerCase();
}

/**
 * Refuses a cross-site request: an `Origin` other than the server's own. When `requireOrigin`,
 * a missing Origin is refused too (every browser sends one on a state-changing fetch).
 */
export function checkOrigin(request: FastifyRequest, requireOrigin: boolean): void {
  const origin = request.headers.origin;
  if (origin === undefined) {
    if (!requireOrigin) return;
    throw new RuneError(
      'CSRF_REJECTED',
      'a state-changing request with a session cookie must carry an Origin header',
      { source },
    );
  }
  if (origin.toLowerCase() !== requestOrigin(request)) {
    throw new RuneError('CSRF_REJECTED', 'the request comes from another origin', {
      source,
      details: { origin: origin.slice(0, 200) },
    });
  }
}

/** Checks Origin and `x-csrf-token` of a state-changing request authenticated by a session. */
export function checkCsrf(request: FastifyRequest, session: AuthenticatedSession): void {
  if (SAFE_METHODS.has(request.method)) return;
  checkOrigin(request, true);
  const presented = request.headers[CSRF_HEADER];
  const value = Array.isArray(presented) ? presented[0] : presented;
  const expected = Buffer.from(session.csrf);
  const given = Buffer.from(value ?? '');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new RuneError(
      'CSRF_REJECTED',
      `a state-changing request with a session cookie needs the session's CSRF token in ${CSRF_HEADER}`,
      { source },
    );
  }
}

/** What the auth hook calls when a request has no Authorization header. */
export interface SessionAuthenticator {
  readonly cookie: SessionCookieSettings;
  /** Where sign-in, sign-out and expiry are recorded (absent: not audited). */
  readonly audit?: SessionAuditSink | undefined;
  /**
   * The principal of the request's session cookie (undefined when there is none), with the CSRF
   * check of state-changing requests done. Sets `request.browserSession`.
   */
  authenticate(request: FastifyRequest): Promise<Principal | undefined>;
}

/**
 * The session authenticator of a server. With `audit`, a request that finds its session ended
 * records the end (once per session).
 */
export function createSessionAuthenticator(
  db: Kysely<StoreDatabase>,
  settings: ServerSettings,
  audit?: SessionAuditSink,
): SessionAuthenticator {
  const cookie = sessionCookieSettings(settings);
  const onEnded: SessionEndedHook | undefined =
    audit === undefined
      ? undefined
      : async (row, reason) => {
          // The refusal is the answer either way; a failed record must not turn it into a 500.
          await endSession(db, audit, row, reason).catch(() => undefined);
        };
  return {
    cookie,
    audit,
    async authenticate(request) {
      const secret = readCookie(request.headers.cookie, cookie.name);
      if (secret === undefined || secret === '') return undefined;
      const session = await authenticateSession(db, secret, new Date(), onEnded);
      checkCsrf(request, session);
      request.browserSession = session;
      return session.principal;
    },
  };
}
