/**
 * Authentication and authorization of every request: a bearer token in the Authorization header
 * (never in the URL: a query string that carries one is refused before it is looked at, because
 * logs, proxies and browser history keep URLs), and the route's minimum role.
 */
import { RuneError } from '@rune/protocol';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { authenticateToken, type Principal, type TokenRole } from '../auth/tokens.js';
import type { SessionAuthenticator } from '../sessions/sessions.js';
import type { RunStore } from '../store/run-store.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller (absent on public routes). */
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /**
     * What the route needs, checked against the policy before the handler (which decides the
     * fine grain: the run's action and nodes): `viewer` = the verb view in some rule, `operator`
     * = run, dry-run or cancel in some rule, `admin` = admin; `authenticated` = any valid
     * principal (the handler decides everything); `public` needs no token.
     */
    minRole?: TokenRole | 'authenticated' | 'public';
  }
}

const source = { component: 'rune-server' } as const;
/** Query members that name a credential, whatever their value. */
const CREDENTIAL_KEYS = /^(token|access_token|api_key|apikey|auth|authorization|bearer|key)$/i;
const TOKEN_SHAPE = /rune_[0-9a-f]{16}_/;

/** The credential-looking member of a query string, if any. */
export function credentialInQuery(url: string): string | undefined {
  const index = url.indexOf('?');
  if (index < 0) return undefined;
  const query = url.slice(index + 1);
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(query);
  } catch {
    return undefined;
  }
  for (const [key, value] of params) {
    if (CREDENTIAL_KEYS.test(key) || TOKEN_SHAPE.test(value) || TOKEN_SHAPE.test(key)) return key;
  }
  return TOKEN_SHAPE.test(decodeURIComponent(query.replace(/%(?![0-9a-f]{2})/gi, '')))
    ? 'query'
    : undefined;
}

/** The coarse check of a route's `minRole` against the policy; throws POLICY_DENIED. */
export type RouteAuthorizer = (
  principal: Principal,
  minRole: TokenRole | 'authenticated',
) => Promise<void>;

/**
 * The onRequest hook: sets `request.principal` or throws the 400/401/403 EPS error. Without an
 * Authorization header, a session cookie of `sessions` authenticates instead (CSRF-checked).
 */
export function createAuthHook(
  store: RunStore,
  touch: (principal: Principal) => void,
  authorize: RouteAuthorizer,
  sessions?: SessionAuthenticator,
) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const inQuery = credentialInQuery(request.url);
    if (inQuery !== undefined) {
      throw new RuneError(
        'AUTH_TOKEN_IN_URL',
        'credentials are never accepted in the URL (logs and proxies keep it); send "Authorization: Bearer <token>"',
        { source, details: { parameter: inQuery.slice(0, 40) } },
      );
    }
    // Only the not-found handler has no minRole: any valid token may learn that a route is absent.
    const minRole = request.routeOptions.config.minRole ?? 'viewer';
    if (minRole === 'public') return;
    const header = request.headers.authorization;
    // A browser session (cookie + CSRF check) only when there is no Authorization header at all.
    const fromCookie =
      (header === undefined || header.trim() === '') && sessions !== undefined
        ? await sessions.authenticate(request)
        : undefined;
    if (fromCookie !== undefined) {
      await authorize(fromCookie, minRole);
      request.principal = fromCookie;
      touch(fromCookie);
      return;
    }
    if (header === undefined || header.trim() === '') {
      throw new RuneError(
        'AUTH_TOKEN_MISSING',
        'this endpoint needs "Authorization: Bearer <token>" (create one with `rune token create`)',
        { source },
      );
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match === null) {
      throw new RuneError(
        'AUTH_TOKEN_INVALID',
        'the Authorization header must be "Bearer <token>"',
        {
          source,
        },
      );
    }
    const principal = await authenticateToken(store, match[1] as string);
    await authorize(principal, minRole);
    request.principal = principal;
    touch(principal);
  };
}
