/**
 * Everything but runs: actions and their parameter schemas, the inventory and a selection preview,
 * the audit trail and its verification, health, metrics and the OpenAPI document.
 */
import { RuneError } from '@rune/protocol';
import { Type } from '@sinclair/typebox';
import { actionTags } from '../policy/route-guard.js';
import { principalOf } from '../policy/routes-policy.js';
import {
  viewableActions,
  viewableAuditRecords,
  viewableNodes,
  viewScope,
} from '../policy/view-filter.js';
import {
  ActionDetailSchema,
  ActionListQuerySchema,
  ActionListSchema,
  ActionParamSchema,
  AuditListSchema,
  AuditQuerySchema,
  AuditVerifySchema,
  errorResponses,
  HealthSchema,
  NodesQuerySchema,
  NodesResponseSchema,
  ref,
} from './api-schemas.js';
import type { ApiInstance, RouteContext } from './route-context.js';

const source = { component: 'rune-server' } as const;
const errors = errorResponses(400, 401, 403, 404, 409, 413, 415, 429, 500, 503);
/** `GET /v1/audit` reads this many times `limit` records (at most AUDIT_READ_MAX) before filtering. */
const AUDIT_READ_AHEAD = 4;
const AUDIT_READ_MAX = 10_000;

/** Registers the informational routes. */
export function registerInfoRoutes(
  app: ApiInstance,
  context: RouteContext,
  openapi: () => unknown,
): void {
  const { launcher, store, manager, metrics, policy } = context;

  app.get(
    '/v1/actions',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'Every action',
        description:
          'With ?include=manifest, each entry carries its manifest too, so a catalog page needs one request however many actions there are.',
        tags: ['actions'],
        querystring: ActionListQuerySchema,
        response: { 200: ActionListSchema, ...errors },
      },
    },
    async (request) => {
      const actions = await viewableActions(
        viewScope(policy, principalOf(request)),
        launcher,
        launcher.listActions(),
      );
      if (request.query.include !== 'manifest') return { actions };
      return {
        actions: actions.map((action) => {
          let manifest: Record<string, unknown> | null = null;
          try {
            manifest = launcher.describeAction(action.name).manifest as unknown as Record<
              string,
              unknown
            >;
          } catch {
            // A broken plugin stays listed with its `problem`.
          }
          return { ...action, manifest };
        }),
      };
    },
  );

  app.get(
    '/v1/actions/:action',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: "One action: its manifest and its parameters' JSON Schema",
        tags: ['actions'],
        params: ActionParamSchema,
        response: { 200: ActionDetailSchema, ...errors },
      },
    },
    async (request) => {
      const { manifest, source: pluginSource } = launcher.describeAction(request.params.action);
      // Refused (and audited) unless a view rule names this action.
      await policy.authorize(policy.subjectOf(principalOf(request)), {
        verb: 'view',
        action: manifest.name,
        tags: actionTags(launcher, manifest.name),
      });
      return {
        name: manifest.name,
        source: pluginSource,
        manifest: manifest as unknown as Record<string, unknown>,
        parameters_schema: {
          $schema: 'https://json-schema.org/draft/2020-12/schema',
          title: `Parameters of ${manifest.name}`,
          ...manifest.parameters,
          additionalProperties: false,
        },
      };
    },
  );

  app.get(
    '/v1/nodes',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'The inventory, and which nodes a selection matches',
        tags: ['nodes'],
        querystring: NodesQuerySchema,
        response: { 200: NodesResponseSchema, ...errors },
      },
    },
    async (request) => {
      const selector = request.query.selector;
      const selectors =
        selector === undefined ? [] : Array.isArray(selector) ? selector : [selector];
      return viewableNodes(
        viewScope(policy, principalOf(request)),
        await launcher.previewNodes(selectors),
      );
    },
  );

  app.get(
    '/v1/audit',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'Audit records',
        tags: ['audit'],
        querystring: AuditQuerySchema,
        response: { 200: AuditListSchema, ...errors },
      },
    },
    async (request) => {
      const query = request.query;
      if (query.since !== undefined && Number.isNaN(Date.parse(query.since))) {
        throw new RuneError('INVALID_ARGUMENT', 'since must be an ISO 8601 time', { source });
      }
      const limit = query.limit ?? 100;
      const records = await launcher.readAudit({
        ...(query.action === undefined ? {} : { action: query.action }),
        ...(query.node === undefined ? {} : { node: query.node }),
        ...(query.trace_id === undefined ? {} : { trace_id: query.trace_id }),
        ...(query.run_id === undefined ? {} : { run_id: query.run_id }),
        ...(query.principal === undefined ? {} : { operator: query.principal }),
        ...(query.since === undefined ? {} : { since: query.since }),
        // Read further back so that `limit` records remain after the view filter, mostly.
        limit: Math.min(limit * AUDIT_READ_AHEAD, AUDIT_READ_MAX),
      });
      const visible = await viewableAuditRecords(
        viewScope(policy, principalOf(request)),
        launcher,
        records,
      );
      return { records: visible.slice(-limit) as unknown as Record<string, unknown>[] };
    },
  );

  app.get(
    '/v1/audit/verify',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'Verify the audit log (hash chain and signatures)',
        tags: ['audit'],
        response: { 200: AuditVerifySchema, ...errors },
      },
    },
    async () => {
      const verdict = await launcher.verifyAudit();
      return {
        ok: verdict.ok,
        verified: verdict.verified,
        total: verdict.total,
        signed: verdict.signed,
        unsigned: verdict.unsigned,
        key_id: verdict.keyId,
        head: (verdict.head as unknown as Record<string, unknown> | null) ?? null,
        broken_line: verdict.brokenLine ?? null,
        error: verdict.error?.toJSON() ?? null,
      };
    },
  );

  app.get(
    '/livez',
    {
      config: { minRole: 'public' },
      schema: { summary: 'Liveness', tags: ['health'], response: { 200: HealthSchema } },
    },
    async () => ({ status: 'live' }),
  );

  app.get(
    '/readyz',
    {
      config: { minRole: 'public' },
      schema: {
        summary: 'Readiness: store writable, plugins loaded, not shutting down',
        tags: ['health'],
        response: { 200: HealthSchema, 503: ref('EpsErrorResponse') },
      },
    },
    async () => {
      let plugins = true;
      try {
        launcher.listActions();
      } catch {
        plugins = false;
      }
      const checks = {
        store_writable: await store.writable(),
        plugins_loaded: plugins,
        accepting_runs: !manager.draining,
      };
      if (!checks.store_writable || !checks.plugins_loaded || !checks.accepting_runs) {
        throw new RuneError(
          manager.draining
            ? 'SERVER_SHUTTING_DOWN'
            : checks.store_writable
              ? 'INTERNAL_ERROR'
              : 'STORE_UNAVAILABLE',
          `not ready: ${Object.entries(checks)
            .filter(([, ok]) => !ok)
            .map(([name]) => name)
            .join(', ')} failed`,
          { source, details: { checks } },
        );
      }
      return { status: 'ready', checks };
    },
  );

  app.get(
    '/metrics',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'Prometheus metrics',
        tags: ['health'],
        produces: ['text/plain'],
        response: { 200: Type.String({ description: 'Prometheus text format.' }), ...errors },
      },
    },
    async (_request, reply) => {
      const depth = manager.depth();
      metrics.queueDepth.set(depth.queued);
      metrics.runsInFlight.set(depth.running);
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  );

  app.get('/openapi.json', { config: { minRole: 'public' }, schema: { hide: true } }, async () =>
    openapi(),
  );
}
