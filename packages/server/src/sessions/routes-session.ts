/**
 * The session routes of the dashboard: sign in with an API token (the token travels once, in a
 * POST body, and the browser keeps only the HttpOnly cookie), read the session (and its CSRF
 * token, e.g. after a reload), sign out, and the sign-in methods the server offers.
 */
import { RuneError } from '@rune/protocol';
import { Type } from '@sinclair/typebox';
import { authenticateToken } from '../auth/tokens.js';
import { errorResponses } from '../http/api-schemas.js';
import type { ApiInstance, RouteContext } from '../http/route-context.js';
import { auditSignIn, endSession } from './session-audit.js';
import {
  CSRF_HEADER,
  checkOrigin,
  clearSessionCookie,
  createSession,
  revokeSession,
  type SessionAuthenticator,
} from './sessions.js';

const source = { component: 'rune-server' } as const;
const errors = errorResponses(400, 401, 403, 404, 413, 415, 429, 500);

/** A way to sign in besides an API token (the OIDC integration adds one). */
export interface SignInMethod {
  id: string;
  label: string;
  /** Where the browser goes to start it (same origin). */
  url: string;
}

const SessionSchema = Type.Object(
  {
    principal: Type.String({ description: 'Who is signed in (`token:<name>`, `oidc:<subject>`).' }),
    role: Type.String({ description: 'The role of the principal.' }),
    csrf_token: Type.Union([Type.String(), Type.Null()], {
      description: `Send it back in ${CSRF_HEADER} on every state-changing request; null for bearer-token requests, which need none.`,
    }),
    expires_at: Type.Union([Type.String(), Type.Null()], {
      description: 'The absolute end of the session (null for bearer-token requests).',
    }),
    idle_timeout_s: Type.Union([Type.Integer(), Type.Null()], {
      description: 'The session ends after this many seconds without a request.',
    }),
  },
  { additionalProperties: false, description: 'The signed-in principal.' },
);

const SignInSchema = Type.Object(
  { token: Type.String({ minLength: 1, maxLength: 256, description: 'An API token.' }) },
  { additionalProperties: false, description: 'Sign in with an API token.' },
);

const MethodsSchema = Type.Object(
  {
    methods: Type.Array(
      Type.Object(
        { id: Type.String(), label: Type.String(), url: Type.Union([Type.String(), Type.Null()]) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, description: 'How one may sign in to this server.' },
);

/** Options of {@link registerSessionRoutes}. */
export interface SessionRoutesOptions {
  sessions: SessionAuthenticator;
  /** Sign-in methods besides the API token, e.g. `{ id: 'oidc', label: 'SSO', url: ... }`. */
  signInMethods?: () => readonly SignInMethod[];
}

/** Registers `/v1/session` and `/v1/session/methods`. */
export function registerSessionRoutes(
  app: ApiInstance,
  context: RouteContext,
  options: SessionRoutesOptions,
): void {
  const { store } = context;
  const { sessions } = options;

  app.get(
    '/v1/session/methods',
    {
      config: { minRole: 'public' },
      schema: {
        summary: 'How to sign in to the dashboard',
        tags: ['session'],
        security: [],
        response: { 200: MethodsSchema, ...errors },
      },
    },
    async () => ({
      methods: [
        { id: 'token', label: 'API token', url: null },
        ...(options.signInMethods?.() ?? []).map((method) => ({ ...method })),
      ],
    }),
  );

  app.post(
    '/v1/session',
    {
      config: { minRole: 'public' },
      schema: {
        summary: 'Sign in with an API token: a session cookie',
        description: `Trades an API token for an HttpOnly, SameSite=Strict session cookie and returns the CSRF token to send in ${CSRF_HEADER}. A request from another Origin is refused (login CSRF).`,
        tags: ['session'],
        security: [],
        body: SignInSchema,
        response: { 201: SessionSchema, ...errors },
      },
    },
    async (request, reply) => {
      checkOrigin(request, false);
      const principal = await authenticateToken(store, request.body.token);
      const created = await createSession(store.db, principal, {
        cookie: sessions.cookie,
        tokenId: principal.tokenId,
      });
      if (sessions.audit !== undefined) {
        await auditSignIn(sessions.audit, {
          principal,
          method: 'token',
          sessionSha256: created.idHash,
          expiresAt: created.expiresAt,
          idleMs: sessions.cookie.idleMs,
          remoteAddress: request.ip,
        });
      }
      reply.header('set-cookie', created.setCookie);
      return reply.code(201).send({
        principal: principal.name,
        role: principal.role,
        csrf_token: created.csrf,
        expires_at: created.expiresAt,
        idle_timeout_s: Math.floor(sessions.cookie.idleMs / 1000),
      });
    },
  );

  app.get(
    '/v1/session',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'The signed-in principal (and the CSRF token of its session)',
        tags: ['session'],
        response: { 200: SessionSchema, ...errors },
      },
    },
    async (request) => {
      const principal = request.principal;
      if (principal === undefined) throw new RuneError('AUTH_SESSION_INVALID', 'not signed in');
      const session = request.browserSession;
      return {
        principal: principal.name,
        role: principal.role,
        csrf_token: session?.csrf ?? null,
        expires_at: session?.expiresAt ?? null,
        idle_timeout_s: session === undefined ? null : Math.floor(session.idleMs / 1000),
      };
    },
  );

  app.delete(
    '/v1/session',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'Sign out: revoke the session of the cookie',
        tags: ['session'],
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (request, reply) => {
      const session = request.browserSession;
      if (session === undefined) {
        throw new RuneError(
          'NOT_FOUND',
          'this request carries no session cookie (bearer tokens are revoked with `rune token revoke`)',
          { source },
        );
      }
      await revokeSession(store.db, session.idHash);
      const row = await store.db
        .selectFrom('browser_sessions')
        .select(['id_sha256', 'principal', 'token_id', 'created_at', 'expires_at'])
        .where('id_sha256', '=', session.idHash)
        .executeTakeFirst();
      if (row !== undefined) await endSession(store.db, sessions.audit, row, 'signed_out');
      reply.header('set-cookie', clearSessionCookie(sessions.cookie));
      return reply.code(204).send(null);
    },
  );
}
