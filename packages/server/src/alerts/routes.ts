/**
 * The alert routes: the receivers (`POST /v1/hooks/{alertmanager|pagerduty|generic}/{receiver}`),
 * the alert record (`GET /v1/alerts`, `GET /v1/alerts/{id}`) and the release of a held alert
 * (`POST /v1/alerts/{id}/release`, operator or higher).
 *
 * Receivers do not take API tokens: each authenticates with its own credentials (see
 * receivers.ts), checked before the body is parsed, so an unauthenticated sender learns nothing
 * about what the server would accept. They answer 202 once the alerts are durably recorded (on
 * the embedded store in the alert intake file, intake.ts; the store's insert follows the answer)
 * and decide them afterwards: a receiver never waits for a rule, a plan or a run.
 */
import { existsSync } from 'node:fs';
import { RuneError } from '@rune/protocol';
import { Type } from '@sinclair/typebox';
import { serverSection } from '../config/server-config-module.js';
import { errorResponses } from '../http/api-schemas.js';
import type { ApiInstance, RouteContext } from '../http/route-context.js';
import { decodeTimeIdCursor, encodeTimeIdCursor } from '../http/time-id-cursor.js';
import { startWebhookSpan } from '../telemetry/webhook-spans.js';
import { startWorkflow } from '../workflows/start-workflow.js';
import { type AlertFilter, getAlert, listAlerts, type StoredAlert } from './alert-store.js';
import { createAlertEngine } from './engine.js';
import { openAlertIntake } from './intake.js';
import { authenticateHook, normalizePayload } from './receivers.js';
import { type AlertRules, loadAlertRules, type ResolvedReceiver } from './rules.js';
import {
  probeNow,
  recordWebhookPhases,
  type WebhookPhaseSample,
  webhookPhasesEnabled,
} from './webhook-phases.js';

const source = { component: 'rune-server' } as const;
/** Largest webhook body (Alertmanager groups can be large; PagerDuty events are small). */
export const HOOK_BODY_LIMIT = 1_048_576;
const ALERT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const OUTCOMES = [
  'received',
  'ran',
  'deduplicated',
  'throttled',
  'pending',
  'held',
  'released',
  'expired',
  'refused',
  'no_rule',
  'resolved',
  'cancelled',
] as const;

const Name = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' });
const HookParams = Type.Object({ receiver: Name }, { additionalProperties: false });
const AlertIdParams = Type.Object(
  { id: Type.String({ minLength: 1, maxLength: 64 }) },
  { additionalProperties: false },
);
const Accepted = Type.Object(
  {
    accepted: Type.Integer({ description: 'Alerts recorded (decided asynchronously).' }),
    alert_ids: Type.Array(Type.String()),
    links: Type.Object({ alerts: Type.String() }),
  },
  { description: 'The alerts were recorded; GET /v1/alerts/{id} shows what became of each.' },
);
const Alert = Type.Object(
  {
    id: Type.String(),
    received_at: Type.String(),
    receiver: Type.String(),
    kind: Type.String(),
    status: Type.String({ description: 'firing | resolved' }),
    alertname: Type.String(),
    fingerprint: Type.String(),
    starts_at: Type.String(),
    labels: Type.Record(Type.String(), Type.String()),
    annotations: Type.Record(Type.String(), Type.String()),
    rule: Type.Union([Type.String(), Type.Null()]),
    action: Type.Union([Type.String(), Type.Null()]),
    node: Type.Union([Type.String(), Type.Null()]),
    outcome: Type.Union(OUTCOMES.map((o) => Type.Literal(o))),
    reason: Type.Union([Type.String(), Type.Null()]),
    error: Type.Union([Type.Unknown(), Type.Null()], { description: 'EPS error of a refusal.' }),
    run_id: Type.Union([Type.String(), Type.Null()]),
    due_at: Type.Union([Type.String(), Type.Null()]),
    held_until: Type.Union([Type.String(), Type.Null()]),
    released_by: Type.Union([Type.String(), Type.Null()]),
    decided_at: Type.Union([Type.String(), Type.Null()]),
    links: Type.Object({ self: Type.String(), run: Type.Union([Type.String(), Type.Null()]) }),
  },
  { description: 'A received alert and what became of it.' },
);
const AlertList = Type.Object({
  alerts: Type.Array(Alert),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});
const AlertListQuery = Type.Object(
  {
    receiver: Type.Optional(Name),
    outcome: Type.Optional(Type.Union(OUTCOMES.map((o) => Type.Literal(o)))),
    rule: Type.Optional(Type.String({ maxLength: 64 })),
    node: Type.Optional(Type.String({ maxLength: 253 })),
    alertname: Type.Optional(Type.String({ maxLength: 200 })),
    fingerprint: Type.Optional(Type.String({ maxLength: 256 })),
    run_id: Type.Optional(Type.String({ maxLength: 64 })),
    since: Type.Optional(
      Type.String({ maxLength: 40, description: 'ISO 8601: received at or after.' }),
    ),
    until: Type.Optional(Type.String({ maxLength: 40, description: 'ISO 8601: received before.' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
    cursor: Type.Optional(Type.String({ maxLength: 400 })),
  },
  { additionalProperties: false },
);

function alertDocument(row: StoredAlert) {
  return {
    id: row.id,
    received_at: row.received_at,
    receiver: row.receiver,
    kind: row.kind,
    status: row.status,
    alertname: row.alertname,
    fingerprint: row.fingerprint,
    starts_at: row.starts_at,
    labels: JSON.parse(row.labels_json) as Record<string, string>,
    annotations: JSON.parse(row.annotations_json) as Record<string, string>,
    rule: row.rule,
    action: row.action,
    node: row.node,
    outcome: row.outcome as (typeof OUTCOMES)[number],
    reason: row.reason,
    error: row.error_json === null ? null : (JSON.parse(row.error_json) as unknown),
    run_id: row.run_id,
    due_at: row.due_at,
    held_until: row.held_until,
    released_by: row.released_by,
    decided_at: row.decided_at,
    links: {
      self: `/v1/alerts/${row.id}`,
      run: row.run_id === null ? null : `/v1/runs/${row.run_id}`,
    },
  };
}

const isoParam = (value: string | undefined, name: string): string | undefined => {
  if (value === undefined) return undefined;
  const time = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(time)) {
    throw new RuneError('INVALID_ARGUMENT', `${name} must be an ISO 8601 time`, {
      source,
      details: { parameter: name },
    });
  }
  return new Date(time).toISOString();
};

/** Where the page before `cursor` ended. */
function alertPosition(cursor: string): { receivedAt: string; id: string } {
  const [receivedAt, id] = decodeTimeIdCursor(cursor, ALERT_ID);
  return { receivedAt, id };
}

/** The result of reloading the alert rules file. */
export type AlertRulesReload = { ok: true; rules: number } | { ok: false; error: RuneError };

const reloadHooks = new WeakMap<object, () => AlertRulesReload>();

/**
 * Reads the alert rules file of the server `app` again and puts it in force; a file with errors
 * keeps the rules in force and returns the error.
 */
export function reloadAlertRules(app: object): AlertRulesReload {
  return reloadHooks.get(app)?.() ?? { ok: true, rules: 0 };
}

/** Registers the alert routes and starts the engine with the server (stops it on close). */
export function registerAlertRoutes(app: ApiInstance, context: RouteContext): void {
  const path = serverSection(context.launcher.config).alert_rules;
  const rules: AlertRules | undefined = path === undefined ? undefined : loadAlertRules(path);
  // The embedded store's receivers answer from the intake file (intake.ts); it is opened when
  // receivers exist, or when a previous process left one (its alerts are replayed at start).
  const intakePath = `${context.settings.storePath}.alert-intake`;
  const intake =
    context.store.engine === 'sqlite' && (rules !== undefined || existsSync(intakePath))
      ? openAlertIntake(intakePath)
      : undefined;
  const engine = createAlertEngine({
    rules,
    ...(intake === undefined ? {} : { intake }),
    db: context.store.db,
    manager: context.manager,
    launcher: context.launcher,
    metrics: context.metrics,
    // Alert runs are decided for the receiver's principal and `service:alerts`. Without a policy
    // file (the built-in roles) they run as an operator: whoever wrote the rules decided them.
    subjectOf: (principal) => ({
      principal,
      subjects: principal.startsWith('service:') ? [principal] : [principal, 'service:alerts'],
      roles: context.policy.current().source === 'builtin' ? ['operator'] : [],
    }),
    retentionMs: context.settings.retentionMs,
    startWorkflow: (request) =>
      startWorkflow(
        {
          store: context.store,
          manager: context.manager,
          launcher: context.launcher,
          workflowsDir: context.settings.workflowsDir,
          engines: context.workflows,
          log: (line, error) =>
            app.log.warn(
              `${line}${error === undefined ? '' : `: ${RuneError.from(error).message}`}`,
            ),
        },
        request,
      ),
  });
  // SIGHUP (RuneServer.reloadAlertRules): the rules file is read again; a broken one keeps the
  // rules in force, like the policy's reload.
  reloadHooks.set(app, () => {
    if (path === undefined) return { ok: true, rules: 0 };
    try {
      const next = loadAlertRules(path);
      engine.replaceRules(next);
      return { ok: true, rules: next.rules.length };
    } catch (error) {
      return { ok: false, error: RuneError.from(error, 'INVALID_ALERT_RULES', { source }) };
    }
  });
  app.addHook('onReady', () => engine.start());
  app.addHook('onClose', () => engine.close());

  const hookErrors = errorResponses(400, 401, 404, 413, 415, 500, 503);
  void app.register(async (plain) => {
    const scope = plain as unknown as ApiInstance;
    // The signatures cover the exact bytes: the body is kept raw and parsed only after the
    // sender is authenticated.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      'application/json',
      { parseAs: 'buffer', bodyLimit: HOOK_BODY_LIMIT },
      (_request, body, done) => done(null, body),
    );
    // The benchmark probe (webhook-phases.ts): the moments of each receiver request.
    const phaseSamples = webhookPhasesEnabled
      ? new WeakMap<object, WebhookPhaseSample>()
      : undefined;
    if (phaseSamples !== undefined) {
      scope.addHook('onRequest', async (request) => {
        const at = probeNow();
        phaseSamples.set(request, {
          request: at,
          handler: at,
          authenticated: at,
          parsed: at,
          normalized: at,
          accepted: at,
          replied: at,
          responded: at,
          storeOperations: 0,
        });
      });
      scope.addHook('onResponse', async (request, reply) => {
        const sample = phaseSamples.get(request);
        if (sample === undefined || reply.statusCode !== 202) return;
        sample.responded = probeNow();
        recordWebhookPhases(sample);
      });
    }
    const hook = (kind: ResolvedReceiver['kind'], summary: string, description: string) =>
      scope.post(
        `/v1/hooks/${kind}/:receiver`,
        {
          config: { minRole: 'public' },
          bodyLimit: HOOK_BODY_LIMIT,
          schema: {
            summary,
            description,
            tags: ['alerts'],
            security: [],
            params: HookParams,
            response: { 202: Accepted, ...hookErrors },
          },
        },
        async (request, reply) => {
          const phases = phaseSamples?.get(request);
          if (phases !== undefined) phases.handler = probeNow();
          const span = startWebhookSpan(request, kind, request.params.receiver);
          let ids: string[];
          let receiver: ResolvedReceiver;
          try {
            receiver = engine.receiver(kind, request.params.receiver);
            const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
            authenticateHook(receiver, request.headers, raw, Date.now());
            if (phases !== undefined) phases.authenticated = probeNow();
            let body: unknown;
            try {
              body = JSON.parse(raw.toString('utf8'));
            } catch {
              throw new RuneError('MALFORMED_JSON', 'the request body is not valid JSON', {
                source,
              });
            }
            if (phases !== undefined) phases.parsed = probeNow();
            const alerts = normalizePayload(receiver, body);
            if (phases !== undefined) phases.normalized = phases.accepted = probeNow();
            ids = await engine.accept(receiver, alerts, span.trace, phases);
          } catch (error) {
            span.end({ error });
            throw error;
          }
          span.end({ accepted: ids.length });
          if (phases !== undefined) phases.replied = probeNow();
          return reply.code(202).send({
            accepted: ids.length,
            alert_ids: ids,
            links: { alerts: `/v1/alerts?receiver=${receiver.name}` },
          });
        },
      );
    hook(
      'alertmanager',
      'Alertmanager webhook receiver',
      'Alertmanager webhook payload version 4. Authenticated by the bearer token or basic auth configured for the receiver in the alert rules file (Alertmanager http_config), not by an API token. Answers 202 once the alerts are recorded; they are decided asynchronously.',
    );
    hook(
      'pagerduty',
      'PagerDuty V3 webhook receiver',
      'PagerDuty V3 webhook (incident.triggered, incident.resolved), verified with X-PagerDuty-Signature against every secret configured for the receiver (rotation).',
    );
    hook(
      'generic',
      'Signed generic JSON webhook receiver',
      'A JSON body {"alerts":[{status, labels, annotations, fingerprint?, starts_at?}]} signed with X-Rune-Timestamp (Unix seconds) and X-Rune-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">; a timestamp outside the replay window is refused.',
    );
  });

  app.get(
    '/v1/alerts',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'List received alerts',
        description: 'Newest first. Filters combine with AND; next_cursor pages on.',
        tags: ['alerts'],
        querystring: AlertListQuery,
        response: { 200: AlertList, ...errorResponses(400, 401, 403, 429, 500) },
      },
    },
    async (request) => {
      const { limit: given, cursor, since, until, ...rest } = request.query;
      const limit = given ?? 50;
      const filter: AlertFilter = { ...rest };
      const from = isoParam(since, 'since');
      const to = isoParam(until, 'until');
      if (from !== undefined) filter.since = from;
      if (to !== undefined) filter.until = to;
      const rows = await listAlerts(
        context.store.db,
        filter,
        limit + 1,
        cursor === undefined ? undefined : alertPosition(cursor),
      );
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        alerts: page.map(alertDocument),
        next_cursor:
          rows.length > limit && last !== undefined
            ? encodeTimeIdCursor(last.received_at, last.id)
            : null,
      };
    },
  );

  app.get(
    '/v1/alerts/:id',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'A received alert',
        tags: ['alerts'],
        params: AlertIdParams,
        response: { 200: Alert, ...errorResponses(401, 403, 404, 429, 500) },
      },
    },
    async (request) => {
      const row = ALERT_ID.test(request.params.id)
        ? await getAlert(context.store.db, request.params.id)
        : undefined;
      if (row === undefined) {
        throw new RuneError('NOT_FOUND', `no alert ${request.params.id.slice(0, 64)}`, { source });
      }
      return alertDocument(row);
    },
  );

  app.post(
    '/v1/alerts/:id/release',
    {
      config: { minRole: 'operator' },
      schema: {
        summary: 'Release a held alert (deprecated: approve its run)',
        description:
          "Deprecated alias of POST /v1/runs/{run_id}/approve for the alert's held run: the storm breaker holds a match as a run awaiting approval, and this casts one approval vote by the caller under the same rules (quorum, no self-approval, approve right on the action and node, expiry). The run starts at the quorum (for a workflow match: the workflow's first run, then the rest of the workflow); the alert is then released. 409 ALERT_NOT_HELD when it is not held.",
        deprecated: true,
        tags: ['alerts'],
        params: AlertIdParams,
        response: { 200: Alert, ...errorResponses(401, 403, 404, 409, 429, 500) },
      },
    },
    async (request) => {
      if (!ALERT_ID.test(request.params.id)) {
        throw new RuneError('NOT_FOUND', `no alert ${request.params.id.slice(0, 64)}`, { source });
      }
      if (request.principal === undefined) {
        throw new RuneError('AUTH_TOKEN_MISSING', 'this endpoint needs a bearer token', { source });
      }
      const by = context.policy.subjectOf(request.principal);
      return alertDocument(await engine.release(request.params.id, by));
    },
  );
}
