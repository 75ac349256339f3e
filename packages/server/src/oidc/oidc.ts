/**
 * Single sign-on: OIDC authorization code flow with PKCE (S256), state and nonce, through
 * `openid-client` (v6, the certified client of the field). The callback verifies the ID token
 * (signature, issuer, audience, expiry, nonce — openid-client's checks), maps it to policy
 * subjects (`user:<sub>`, `user:<email>` when verified, one `group:<name>` per entry of the
 * configured groups claim), refuses a user the policy grants nothing, and opens a browser session
 * through the dashboard's session module (HttpOnly cookie, CSRF) — no second session mechanism.
 *
 * The state is kept server-side (ten minutes, single use) and bound to the browser by a cookie,
 * so a callback with someone else's state (login CSRF) or replayed is refused. That cookie is
 * SameSite=Lax because the provider's redirect back is a cross-site navigation, on which a Strict
 * cookie would not be sent; the session cookie itself is the session module's.
 */
import { RuneError } from '@rune/protocol';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import * as client from 'openid-client';
import type { Principal } from '../auth/tokens.js';
import type { OidcSettings } from '../config/server-config.js';
import type { ApiInstance, RouteContext } from '../http/route-context.js';
import { rolesOf } from '../policy/policy.js';
import { auditSignIn, auditSignInRefused } from '../sessions/session-audit.js';
import { createSession, readCookie, type SessionAuthenticator } from '../sessions/sessions.js';

const source = { component: 'rune-server' } as const;

const OidcLoginQuerySchema = Type.Object({
  return_to: Type.Optional(
    Type.String({
      maxLength: 2048,
      description:
        'The dashboard page to land on once signed in (a path of this server, e.g. /#/runs/<id>); ignored unless it is one.',
    }),
  ),
});
const STATE_COOKIE = 'rune_oidc_state';
const STATE_TTL_MS = 600_000;
const MAX_PENDING = 10_000;

interface PendingLogin {
  verifier: string;
  nonce: string;
  createdAt: number;
  /** Where the browser goes once signed in ({@link safeReturnTo}); the default when absent. */
  returnTo?: string;
}

const RETURN_BASE = 'http://rune.invalid';

/**
 * A `return_to` that is a path of this server's pages, or undefined (ignored): it must start
 * with one `/` (not `//` or `/\`, which browsers read as another host), hold no backslash,
 * control character or space, stay on this origin once resolved, and not be an API path. Kept
 * server-side with the sign-in state, never in a cookie or the provider's round trip.
 */
export function safeReturnTo(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return undefined;
  if (!value.startsWith('/') || value.startsWith('//') || /[\\\s\p{Cc}]/u.test(value))
    return undefined;
  let resolved: URL;
  try {
    resolved = new URL(value, RETURN_BASE);
  } catch {
    return undefined;
  }
  if (resolved.origin !== RETURN_BASE || resolved.pathname.startsWith('/v1/')) return undefined;
  return `${resolved.pathname}${resolved.search}${resolved.hash}`;
}

const failed = (message: string, cause?: unknown): RuneError =>
  new RuneError('OIDC_LOGIN_FAILED', message, {
    source,
    ...(cause === undefined ? {} : { cause }),
  });

/** A browser navigation (it asks for HTML), not a script or API client. */
const wantsPage = (request: FastifyRequest): boolean =>
  /\btext\/html\b/.test(request.headers.accept ?? '');

/** The policy subjects and principal of verified ID token claims. */
export function principalOfClaims(
  claims: Readonly<Record<string, unknown>>,
  groupsClaim: string,
): Principal {
  const sub = typeof claims.sub === 'string' ? claims.sub : '';
  if (sub === '') throw failed('the ID token has no subject');
  const email =
    typeof claims.email === 'string' && claims.email_verified !== false ? claims.email : undefined;
  const raw = claims[groupsClaim];
  const groups = (Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : []).filter(
    (group): group is string => typeof group === 'string' && /^[^\s\p{Cc}]{1,256}$/u.test(group),
  );
  const subjects = [
    `user:${sub}`,
    ...(email === undefined ? [] : [`user:${email}`]),
    ...groups.map((group) => `group:${group}`),
  ];
  return {
    name: `user:${email ?? sub}`,
    tokenId: `oidc:${sub}`.slice(0, 300),
    role: '',
    roles: [],
    subjects,
  };
}

/** Options of {@link registerOidcRoutes}. */
export interface OidcRoutesOptions {
  /** `[server] oidc_*`; undefined when single sign-on is not configured (the routes answer 404). */
  settings: OidcSettings | undefined;
  sessions: SessionAuthenticator;
  env: Readonly<Record<string, string | undefined>>;
  /** Where the browser goes after signing in (default `/`). */
  afterLogin?: string;
}

/**
 * Registers `GET /v1/auth/oidc/login` and `GET /v1/auth/oidc/callback`. They are registered on
 * every server, so the OpenAPI document lists them whatever the configuration; without
 * `[server] oidc_issuer` both answer 404 NOT_FOUND saying single sign-on is not configured.
 */
export function registerOidcRoutes(
  app: ApiInstance,
  context: RouteContext,
  options: OidcRoutesOptions,
): void {
  const { sessions } = options;
  const configured = options.settings;
  const settingsOrThrow = (): OidcSettings => {
    if (configured === undefined) {
      throw new RuneError(
        'NOT_FOUND',
        'single sign-on is not configured on this server (set [server] oidc_issuer, oidc_client_id and oidc_redirect_url)',
        { source },
      );
    }
    return configured;
  };
  const pending = new Map<string, PendingLogin>();
  let discovered: Promise<client.Configuration> | undefined;

  // Discovered at the first sign-in, not at start-up: the server starts even while the provider
  // is down, and sign-in says so then.
  const configuration = (settings: OidcSettings): Promise<client.Configuration> => {
    discovered ??= (async () => {
      const issuer = new URL(settings.issuer);
      const secret = options.env[settings.clientSecretEnv];
      const insecure = issuer.protocol === 'http:';
      return client.discovery(
        issuer,
        settings.clientId,
        secret === undefined || secret === '' ? undefined : secret,
        secret === undefined || secret === '' ? client.None() : client.ClientSecretPost(secret),
        insecure ? { execute: [client.allowInsecureRequests] } : {},
      );
    })().catch((error: unknown) => {
      discovered = undefined;
      throw failed(`the OIDC provider ${settings.issuer} cannot be reached or discovered`, error);
    });
    return discovered;
  };

  const sweep = (): void => {
    const now = Date.now();
    for (const [state, login] of pending)
      if (now - login.createdAt > STATE_TTL_MS) pending.delete(state);
  };

  const stateCookie = (value: string, maxAge: number): string =>
    `${STATE_COOKIE}=${value}; Path=/v1/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${
      configured !== undefined && new URL(configured.redirectUrl).protocol === 'https:'
        ? '; Secure'
        : ''
    }`;

  app.get(
    '/v1/auth/oidc/login',
    {
      config: { minRole: 'public' },
      schema: {
        summary: 'Start single sign-on (redirect to the OIDC provider)',
        description:
          'Authorization code flow with PKCE (S256), state and nonce. 302 to the provider; it redirects back to /v1/auth/oidc/callback. ?return_to=/#/runs/<id> names the dashboard page to land on once signed in: a path of this server only (one leading slash, no backslash, control character or space, not under /v1/); anything else (an absolute or protocol-relative URL) is ignored and the browser lands on the dashboard. 404 NOT_FOUND when single sign-on is not configured ([server] oidc_issuer).',
        tags: ['session'],
        security: [],
        querystring: OidcLoginQuerySchema,
      },
    },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const settings = settingsOrThrow();
      const config = await configuration(settings);
      sweep();
      if (pending.size >= MAX_PENDING) {
        throw new RuneError('RATE_LIMITED', 'too many sign-ins in progress; retry in a minute', {
          source,
        });
      }
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      const returnTo = safeReturnTo((request.query as { return_to?: unknown }).return_to);
      pending.set(state, {
        verifier,
        nonce,
        createdAt: Date.now(),
        ...(returnTo === undefined ? {} : { returnTo }),
      });
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: settings.redirectUrl,
        scope: settings.scopes,
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
      });
      reply.header('set-cookie', stateCookie(state, STATE_TTL_MS / 1000));
      return reply.redirect(url.href, 302);
    },
  );

  const complete = async (request: FastifyRequest, reply: FastifyReply) => {
    const settings = settingsOrThrow();
    const query = request.query as Record<string, unknown>;
    const state = typeof query.state === 'string' ? query.state : '';
    const cookieState = readCookie(request.headers.cookie, STATE_COOKIE);
    const login = pending.get(state);
    // Single use, whatever happens next.
    pending.delete(state);
    if (typeof query.error === 'string') {
      throw failed(`the provider refused the sign-in: ${query.error.slice(0, 100)}`);
    }
    if (
      state === '' ||
      cookieState !== state ||
      login === undefined ||
      Date.now() - login.createdAt > STATE_TTL_MS
    ) {
      throw failed('unknown, expired or foreign sign-in state; start again at /v1/auth/oidc/login');
    }
    const config = await configuration(settings);
    const current = new URL(settings.redirectUrl);
    current.search = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
    let claims: Record<string, unknown> | undefined;
    try {
      const tokens = await client.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: login.verifier,
        expectedState: state,
        expectedNonce: login.nonce,
        idTokenExpected: true,
      });
      claims = tokens.claims() as Record<string, unknown> | undefined;
    } catch (error) {
      throw failed(`the sign-in could not be verified: ${(error as Error).message}`, error);
    }
    if (claims === undefined) throw failed('the provider returned no ID token');
    const principal = principalOfClaims(claims, settings.groupsClaim);
    const roles = rolesOf(context.policy.current(), context.policy.subjectOf(principal));
    if (roles.length === 0) {
      const refusal = new RuneError(
        'OIDC_LOGIN_FAILED',
        `the policy grants ${principal.name} nothing (subjects ${principal.subjects?.join(', ')})`,
        { source, details: { reason: 'no_grant' } },
      );
      if (sessions.audit !== undefined) {
        await auditSignInRefused(sessions.audit, {
          principal,
          method: 'oidc',
          code: refusal.code,
          message: refusal.message,
          remoteAddress: request.ip,
        });
      }
      throw refusal;
    }
    const signedIn = { ...principal, role: roles.join(',') };
    const created = await createSession(context.store.db, signedIn, {
      cookie: sessions.cookie,
    });
    if (sessions.audit !== undefined) {
      await auditSignIn(sessions.audit, {
        principal: signedIn,
        method: 'oidc',
        sessionSha256: created.idHash,
        expiresAt: created.expiresAt,
        idleMs: sessions.cookie.idleMs,
        remoteAddress: request.ip,
      });
    }
    reply.header('set-cookie', [created.setCookie, stateCookie('', 0)]);
    return reply.redirect(login.returnTo ?? options.afterLogin ?? '/', 303);
  };
  app.get(
    '/v1/auth/oidc/callback',
    {
      config: { minRole: 'public' },
      schema: {
        summary: 'Single sign-on callback: verify, map to policy subjects, open a session',
        description:
          "Checks the state against the browser's cookie, exchanges the code with the PKCE verifier, verifies the ID token, maps sub, e-mail and the groups claim to policy subjects, refuses a user the policy grants nothing (OIDC_LOGIN_FAILED), then sets the session cookie and redirects to the dashboard. 404 NOT_FOUND when single sign-on is not configured.",
        tags: ['session'],
        security: [],
      },
    },
    async (request: FastifyRequest, reply: FastifyReply) => {
      try {
        return await complete(request, reply);
      } catch (error) {
        // A person's browser lands on the dashboard's sign-in with a plain explanation instead of
        // a JSON body. Only the EPS code and a fixed reason travel in the URL (never a message),
        // so a crafted link cannot put words on the sign-in page.
        if (!wantsPage(request) || configured === undefined) throw error;
        const refusal = RuneError.from(error, 'OIDC_LOGIN_FAILED', { source });
        request.log.warn({ code: refusal.code }, refusal.message);
        const reason = refusal.details?.reason === 'no_grant' ? '&reason=no_grant' : '';
        reply.header('set-cookie', stateCookie('', 0));
        return reply.redirect(
          `${options.afterLogin ?? '/'}#/?sign_in_error=${encodeURIComponent(refusal.code)}${reason}`,
          303,
        );
      }
    },
  );
}
