/**
 * The Fastify application: TypeBox validation of every request, EPS errors for everything,
 * bearer-token authentication, a rate limit per token, security headers on every response,
 * strict JSON bodies, CORS only for allow-listed origins, and the OpenAPI document generated
 * from the route schemas.
 *
 * Responses are serialized with JSON.stringify, not with the schemas: the documents come from
 * @rune/protocol already validated, and schema-driven serialization would silently drop members
 * of the protocol's unions. The schemas describe the responses (OpenAPI) all the same.
 */
import { randomBytes } from 'node:crypto';
import fastifyCors from '@fastify/cors';
import fastifyHelmet from '@fastify/helmet';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import { type TypeBoxTypeProvider, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import { RuneError } from '@rune/protocol';
import Fastify from 'fastify';
import type { Logger } from 'pino';
import { registerAlertRoutes } from '../alerts/routes.js';
import { registerOidcRoutes } from '../oidc/oidc.js';
import { routeAuthorizer } from '../policy/route-guard.js';
import { registerPolicyRoutes } from '../policy/routes-policy.js';
import { registerSessionRoutes } from '../sessions/routes-session.js';
import { createSessionAuthenticator } from '../sessions/sessions.js';
import { type ServerLogFormat, serverLoggerOptions } from '../telemetry/json-log.js';
import { registerRequestTracing, requestIdFromTraceparent } from '../telemetry/request-trace.js';
import { SERVER_VERSION } from '../version.js';
import { registerWorkflowRoutes } from '../workflows/routes-workflows.js';
import { SHARED_SCHEMAS } from './api-schemas.js';
import { createAuthHook } from './auth-hook.js';
import { createErrorHandler, sendError } from './errors.js';
import type { ApiInstance, RouteContext } from './route-context.js';
import { registerDashboardRoutes } from './routes-dashboard.js';
import { registerInfoRoutes } from './routes-info.js';
import { registerRunRoutes } from './routes-runs.js';

const source = { component: 'rune-server' } as const;
const newTraceId = (): string => randomBytes(16).toString('hex');

/** The OpenAPI `info` and servers of the document. */
export const OPENAPI_INFO = {
  title: 'RUNE service API',
  version: 'v1',
  description:
    'rune serve: submit runs of curated remediation and diagnostic actions, follow them live, read their results and the audit trail. Every error body is an EPS v1 error.',
} as const;

/** Options of {@link createApiApp}. */
export interface ApiAppOptions extends RouteContext {
  /** The environment (the OIDC client secret is read from it). */
  env?: Readonly<Record<string, string | undefined>>;
  /** One line per request and per internal error (never a URL query, a header or a body). */
  log?: (line: string) => void;
  /** `json`: Fastify's pino logger writes JSON lines (with `trace_id`) on stderr instead. */
  logFormat?: ServerLogFormat;
  /** The pino logger of the `json` format (see telemetry/json-log.ts). */
  jsonLogger?: Logger;
}

/** Builds the application (not listening yet). */
export async function createApiApp(options: ApiAppOptions): Promise<ApiInstance> {
  const { settings, store, metrics } = options;
  const log = options.log ?? (() => {});
  const app = Fastify({
    bodyLimit: settings.bodyLimitBytes,
    trustProxy: settings.behindTlsProxy ? settings.trustedProxies : false,
    return503OnClosing: true,
    forceCloseConnections: true,
    ...(settings.tls === null ? {} : { https: { cert: settings.tls.cert, key: settings.tls.key } }),
    ajv: { customOptions: { removeAdditional: false } },
    genReqId: requestIdFromTraceparent(newTraceId),
    ...serverLoggerOptions(options.logFormat, options.jsonLogger),
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as ApiInstance;

  registerRequestTracing(app, newTraceId);
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.setErrorHandler(
    createErrorHandler(newTraceId, (error) =>
      log(
        `internal error (trace ${error.traceId}): ${String((error.cause as Error | undefined)?.stack ?? error.message)}`,
      ),
    ),
  );
  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      new RuneError(
        'NOT_FOUND',
        `no route ${request.method} ${request.url.split('?')[0]?.slice(0, 200)}`,
        {
          source,
          traceId: newTraceId(),
        },
      ),
    ),
  );
  // Bodies are JSON and nothing else: text/plain (Fastify's other default parser) gets 415.
  app.removeContentTypeParser('text/plain');

  await app.register(fastifyHelmet, {
    global: true,
    // An API serves no HTML: the strictest policy, no cross-origin embedding.
    contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    hsts: settings.tls !== null || settings.behindTlsProxy,
  });
  if (settings.corsOrigins.length > 0) {
    await app.register(fastifyCors, {
      origin: settings.corsOrigins,
      methods: ['GET', 'POST'],
      allowedHeaders: ['authorization', 'content-type', 'idempotency-key', 'last-event-id'],
      maxAge: 600,
    });
  }
  for (const [name, schema] of Object.entries(SHARED_SCHEMAS))
    app.addSchema({ ...schema, $id: name });
  await app.register(fastifySwagger, {
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, index) => String(json.$id ?? `def-${index}`),
    },
    openapi: {
      openapi: '3.1.0',
      info: OPENAPI_INFO,
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'rune_…' } },
      },
      security: [{ bearer: [] }],
      tags: [
        { name: 'runs', description: 'Submit, follow and cancel runs.' },
        { name: 'actions', description: 'What can run.' },
        { name: 'nodes', description: 'The inventory.' },
        { name: 'audit', description: 'The audit trail.' },
        { name: 'health', description: 'Probes and metrics.' },
        { name: 'alerts', description: 'Alert receivers and what became of each alert.' },
      ],
    },
  });

  app.addHook('onRequest', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    reply.header('x-rune-version', SERVER_VERSION);
  });
  // last_used_at is for `rune token list`, not an audit trail: one write per token per minute,
  // not one per request (every write is an fsynced transaction).
  const touched = new Map<string, number>();
  const sessions = createSessionAuthenticator(store.db, settings, options.launcher);
  app.addHook(
    'onRequest',
    createAuthHook(
      store,
      (principal) => {
        const now = Date.now();
        if (now - (touched.get(principal.tokenId) ?? 0) < 60_000) return;
        touched.set(principal.tokenId, now);
        void store
          .touchToken(principal.tokenId, new Date(now).toISOString())
          .catch(() => undefined);
      },
      routeAuthorizer(options.policy),
      sessions,
    ),
  );
  await app.register(fastifyRateLimit, {
    global: true,
    hook: 'preHandler',
    max: settings.rateLimitPerMinute,
    timeWindow: 60_000,
    keyGenerator: (request) => request.principal?.tokenId ?? `ip:${request.ip}`,
    allowList: (request) => request.routeOptions.config.minRole === 'public',
    errorResponseBuilder: (_request, context) =>
      new RuneError(
        'RATE_LIMITED',
        `more than ${context.max} requests per minute for this token; retry in ${Math.ceil(context.ttl / 1000)} s`,
        { source, details: { limit: context.max, retry_after_ms: context.ttl } },
      ),
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unknown';
    metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    if (options.logFormat === 'json') {
      request.log.info(
        {
          method: request.method,
          route,
          status: reply.statusCode,
          principal: request.principal?.name ?? null,
          duration_ms: Math.round(reply.elapsedTime),
        },
        'request',
      );
      return;
    }
    log(
      `${request.method} ${route} ${reply.statusCode} ${request.principal?.name ?? '-'} ${Math.round(reply.elapsedTime)}ms`,
    );
  });

  registerRunRoutes(app, options);
  registerWorkflowRoutes(app, options);
  registerInfoRoutes(app, options, () => app.swagger());
  registerAlertRoutes(app, options);
  registerPolicyRoutes(app, options);
  registerSessionRoutes(app, options, {
    sessions,
    ...(settings.oidc === undefined
      ? {}
      : {
          signInMethods: () => [
            { id: 'oidc', label: 'Single sign-on', url: '/v1/auth/oidc/login' },
          ],
        }),
  });
  registerOidcRoutes(app, options, { settings: settings.oidc, sessions, env: options.env ?? {} });
  registerDashboardRoutes(app);
  return app;
}
