/**
 * The run endpoints: submit (`POST /v1/runs`, `POST /run/{action}`), read (`GET /v1/runs/{id}`
 * with `?wait=`), list (filters, cursor), events (SSE with `Last-Event-ID` resume), cancel, and a
 * node's result and artifacts.
 *
 * SSE delivery reads the store, never a live-only buffer: a client gets the events with
 * seq > its last one from the store, then waits for the run's next change and reads again, so a
 * dropped connection resumes with nothing lost or repeated, and an ended run replays and closes.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, realpathSync } from 'node:fs';
import { basename, sep } from 'node:path';
import { parseDuration } from '@rune/core';
import { RuneError, type RunNodeResult, type RunSource, type RunStatus } from '@rune/protocol';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../auth/tokens.js';
import {
  actionTags,
  assertCanView,
  auditArtifactRead,
  canView,
  runAccess,
} from '../policy/route-guard.js';
import type { LaunchRequest } from '../runs/launcher.js';
import { ENDED_STATUSES, runDocument } from '../runs/run-document.js';
import type { IfBusy } from '../runs/run-manager.js';
import { submitPhaseClock } from '../runs/submit-phases.js';
import type { StoredRun } from '../store/run-store.js';
import { requestTraceOptions } from '../telemetry/request-trace.js';
import {
  ActionParamSchema,
  ArtifactParamSchema,
  EventsQuerySchema,
  errorResponses,
  NodeParamSchema,
  NodeStateSchema,
  RunAcceptedSchema,
  RunIdParamSchema,
  RunListQuerySchema,
  RunListSchema,
  RunRequestSchema,
  RunWaitQuerySchema,
  ref,
  ShortRunRequestSchema,
} from './api-schemas.js';
import type { ApiInstance, RouteContext } from './route-context.js';

const source = { component: 'rune-server' } as const;
const MAX_WAIT_MS = 120_000;
const HEARTBEAT_MS = 15_000;
const ARTIFACT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?$/;

const errors = errorResponses(400, 401, 403, 404, 409, 413, 415, 429, 500, 503);

const notFound = (what: string): RuneError => new RuneError('NOT_FOUND', `no ${what}`, { source });

function principalOf(request: FastifyRequest): Principal {
  if (request.principal === undefined) {
    throw new RuneError('AUTH_TOKEN_MISSING', 'this endpoint needs a bearer token', { source });
  }
  return request.principal;
}

function runLinks(id: string) {
  return {
    self: `/v1/runs/${id}`,
    events: `/v1/runs/${id}/events`,
    cancel: `/v1/runs/${id}/cancel`,
  };
}

/** A cursor is opaque to clients: base64url of the last position seen. */
export function encodeCursor(position: number): string {
  return Buffer.from(JSON.stringify({ p: position })).toString('base64url');
}

export function decodeCursor(cursor: string): number {
  try {
    if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) throw new Error('alphabet');
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { p?: unknown };
    if (typeof value.p === 'number' && Number.isSafeInteger(value.p) && value.p > 0) return value.p;
  } catch {
    // fall through to the refusal
  }
  throw new RuneError('INVALID_ARGUMENT', 'cursor is not a cursor this server issued', {
    source,
    details: { parameter: 'cursor' },
  });
}

/** A `since`/`until` filter as the store compares it (ISO 8601, UTC); INVALID_ARGUMENT else. */
export function isoFilter(value: string | undefined, name: string): string | undefined {
  if (value === undefined) return undefined;
  const time = Date.parse(value);
  if (!ISO_TIME.test(value) || Number.isNaN(time)) {
    throw new RuneError('INVALID_ARGUMENT', `${name} must be an ISO 8601 time`, {
      source,
      details: { parameter: name },
    });
  }
  return new Date(time).toISOString();
}

function idempotencyKey(request: FastifyRequest): string | undefined {
  const header = request.headers['idempotency-key'];
  if (header === undefined) return undefined;
  const key = Array.isArray(header) ? header.join(',') : header;
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new RuneError(
      'INVALID_ARGUMENT',
      'Idempotency-Key must be 1 to 200 visible ASCII characters',
      { source, details: { header: 'Idempotency-Key' } },
    );
  }
  return key;
}

async function loadRun(
  context: RouteContext,
  id: string,
  request?: FastifyRequest,
): Promise<StoredRun> {
  const run = RUN_ID.test(id) ? await context.store.getRun(id) : undefined;
  if (run === undefined) throw notFound(`run ${id.slice(0, 64)}`);
  // RBAC: reading a run needs `view` on its action and every one of its nodes.
  if (request !== undefined) {
    await assertCanView(
      context.policy,
      principalOf(request),
      run,
      actionTags(context.launcher, run.action),
    );
  }
  return run;
}

/** Registers the run routes. */
export function registerRunRoutes(app: ApiInstance, context: RouteContext): void {
  const { store, manager, metrics } = context;

  const submit = async (
    request: FastifyRequest,
    reply: FastifyReply,
    body: LaunchRequest,
    ifBusy: IfBusy | undefined,
  ) => {
    const phases = submitPhaseClock(reply.elapsedTime);
    if (phases !== undefined) reply.raw.once('finish', () => phases.done());
    const principal = principalOf(request);
    const key = idempotencyKey(request);
    const { run, created } = await manager.submit(
      body,
      {
        principal: principal.name,
        source: 'api' satisfies RunSource,
        subject: context.policy.subjectOf(principal),
      },
      {
        ...(key === undefined ? {} : { idempotencyKey: key }),
        ...(ifBusy === undefined ? {} : { ifBusy }),
        ...requestTraceOptions(request),
        ...(phases === undefined ? {} : { phases }),
      },
    );
    phases?.handled();
    reply.header('location', `/v1/runs/${run.id}`);
    return reply.code(created ? 202 : 200).send({
      id: run.id,
      trace_id: run.trace_id,
      status: run.status as RunStatus,
      links: runLinks(run.id),
    });
  };

  app.post(
    '/v1/runs',
    {
      config: { minRole: 'operator' },
      schema: {
        summary: 'Submit a run',
        description:
          'Plans the request at once (bad input is refused here), then queues it. An Idempotency-Key header makes retries safe: the same key and body return the same run (200), the same key with another body is 409 IDEMPOTENCY_KEY_REUSED.',
        tags: ['runs'],
        body: RunRequestSchema,
        response: { 200: RunAcceptedSchema, 202: RunAcceptedSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { options, ...rest } = request.body;
      const { if_busy: ifBusy, ...runOptions } = options ?? {};
      return submit(request, reply, { ...rest, options: runOptions }, ifBusy);
    },
  );

  app.post(
    '/run/:action',
    {
      config: { minRole: 'operator' },
      schema: {
        summary: 'Submit a run (short form)',
        description: 'The short form of POST /v1/runs: node or nodes, params and the run options.',
        tags: ['runs'],
        params: ActionParamSchema,
        body: ShortRunRequestSchema,
        response: { 200: RunAcceptedSchema, 202: RunAcceptedSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { node, nodes, params, if_busy: ifBusy, ...options } = request.body;
      const targets = [...(node === undefined ? [] : [node]), ...(nodes ?? [])];
      if (targets.length === 0) {
        throw new RuneError('NO_TARGETS', 'name the target with "node" or "nodes"', { source });
      }
      return submit(
        request,
        reply,
        {
          action: request.params.action,
          targets,
          ...(params === undefined ? {} : { params }),
          options,
        },
        ifBusy,
      );
    },
  );

  app.get(
    '/v1/runs/:id',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'A run (the run-result document)',
        description:
          'The protocol run-result document with status, principal, source and timestamps. ?wait=30s long-polls until the run ends (at most 120 s), then answers with its state either way.',
        tags: ['runs'],
        params: RunIdParamSchema,
        querystring: RunWaitQuerySchema,
        response: { 200: ref('RunResultDocument'), ...errors },
      },
    },
    async (request) => {
      let run = await loadRun(context, request.params.id, request);
      if (request.query.wait !== undefined) {
        const waitMs = Math.min(MAX_WAIT_MS, parseDuration(request.query.wait, 'wait'));
        const deadline = Date.now() + waitMs;
        const gone = new AbortController();
        request.raw.once('close', () => gone.abort());
        while (!ENDED_STATUSES.has(run.status) && Date.now() < deadline && !gone.signal.aborted) {
          const changed = manager.waitForChange(run.id, deadline - Date.now(), gone.signal);
          // Read after subscribing: a change between the two is seen by the next read.
          const latest = await store.getRun(run.id);
          if (latest !== undefined && latest.status !== run.status) {
            run = latest;
            continue;
          }
          await changed;
          run = (await store.getRun(run.id)) ?? run;
        }
      }
      return runDocument(run, await store.getNodes(run.id));
    },
  );

  app.get(
    '/v1/runs',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'List runs',
        description:
          'Newest first, in the stable order of acceptance. Filters combine with AND; next_cursor pages on.',
        tags: ['runs'],
        querystring: RunListQuerySchema,
        response: { 200: RunListSchema, ...errors },
      },
    },
    async (request) => {
      const query = request.query;
      const limit = query.limit ?? 50;
      const since = isoFilter(query.since, 'since');
      const until = isoFilter(query.until, 'until');
      const rows = await store.listRuns(
        {
          ...(query.action === undefined ? {} : { action: query.action }),
          ...(query.node === undefined ? {} : { node: query.node }),
          ...(query.status === undefined ? {} : { status: query.status }),
          ...(query.principal === undefined ? {} : { principal: query.principal }),
          ...(query.source === undefined ? {} : { source: query.source }),
          ...(since === undefined ? {} : { since }),
          ...(until === undefined ? {} : { until }),
        },
        limit + 1,
        query.cursor === undefined ? undefined : { position: decodeCursor(query.cursor) },
      );
      // RBAC: a page shows only the runs the caller may view (pages may then hold fewer rows).
      const principal = principalOf(request);
      const visible = [];
      for (const run of rows.slice(0, limit)) {
        if (await canView(context.policy, principal, run, actionTags(context.launcher, run.action)))
          visible.push(run);
      }
      const page = visible;
      return {
        runs: page.map((run) => ({
          id: run.id,
          status: run.status as RunStatus,
          action: run.action,
          principal: run.principal,
          source: run.source,
          dry_run: run.dry_run === 1,
          trace_id: run.trace_id,
          nodes: JSON.parse(run.nodes) as string[],
          created_at: run.created_at,
          started_at: run.started_at,
          finished_at: run.finished_at,
          exit_code: run.exit_code,
        })),
        next_cursor:
          rows.length > limit ? encodeCursor((rows[limit - 1] as StoredRun).position) : null,
      };
    },
  );

  app.get(
    '/v1/runs/:id/events',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'The events of a run (Server-Sent Events)',
        description:
          'text/event-stream: one message per run v1 event, `id:` = its seq, `event:` = its type. Send Last-Event-ID (or ?after=) to resume; an ended run replays and closes.',
        tags: ['runs'],
        params: RunIdParamSchema,
        querystring: EventsQuerySchema,
        response: { ...errors },
      },
    },
    async (request, reply) => {
      const run = await loadRun(context, request.params.id, request);
      const header = request.headers['last-event-id'];
      const lastHeader = Array.isArray(header) ? header[0] : header;
      let last = request.query.after ?? 0;
      if (lastHeader !== undefined) {
        if (!/^[0-9]{1,9}$/.test(lastHeader.trim())) {
          throw new RuneError('INVALID_ARGUMENT', 'Last-Event-ID must be the seq of an event', {
            source,
            details: { header: 'Last-Event-ID' },
          });
        }
        last = Number(lastHeader.trim());
      }
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      metrics.sseClients.inc();
      const gone = new AbortController();
      request.raw.once('close', () => gone.abort());
      raw.once('close', () => gone.abort());
      const heartbeat = setInterval(() => raw.write(': keep-alive\n\n'), HEARTBEAT_MS);
      heartbeat.unref();
      try {
        let ended = false;
        while (!gone.signal.aborted) {
          const changed = manager.waitForChange(run.id, HEARTBEAT_MS, gone.signal);
          const events = await store.listEvents(run.id, last);
          for (const event of events) {
            raw.write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
            last = event.seq;
            if (event.type === 'run-end') ended = true;
          }
          if (ended) break;
          const current = await store.getRun(run.id);
          // A run that ended without events (cancelled while queued): nothing more will come.
          if (
            current === undefined ||
            (ENDED_STATUSES.has(current.status) && current.last_seq <= last)
          ) {
            break;
          }
          await changed;
        }
      } finally {
        clearInterval(heartbeat);
        metrics.sseClients.dec();
        raw.end();
      }
    },
  );

  app.post(
    '/v1/runs/:id/cancel',
    {
      config: { minRole: 'operator' },
      schema: {
        summary: 'Cancel a run',
        description:
          'Like Ctrl-C in the CLI: a queued run ends cancelled; a running one starts no new node, its running plugins are killed on the nodes, every record is written. Ended runs are left as they are.',
        tags: ['runs'],
        params: RunIdParamSchema,
        response: { 202: RunAcceptedSchema, ...errors },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const existing = await loadRun(context, request.params.id);
      // RBAC: `cancel` on the run's action and nodes; whoever submitted a run may always withdraw it.
      if (existing.principal !== principal.name) {
        await context.policy.authorize(
          context.policy.subjectOf(principal),
          runAccess('cancel', existing, actionTags(context.launcher, existing.action)),
          { traceId: existing.trace_id, runId: existing.id },
        );
      }
      const run = await manager.cancel(existing.id, `cancelled by ${principal.name}`);
      return reply.code(202).send({
        id: run.id,
        trace_id: run.trace_id,
        status: run.status as RunStatus,
        links: runLinks(run.id),
      });
    },
  );

  app.get(
    '/v1/runs/:id/nodes/:node',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: "A node's state and result",
        tags: ['runs'],
        params: NodeParamSchema,
        response: { 200: NodeStateSchema, ...errors },
      },
    },
    async (request) => {
      const run = await loadRun(context, request.params.id, request);
      const node = await store.getNode(run.id, request.params.node);
      if (node === undefined)
        throw notFound(`node ${request.params.node.slice(0, 255)} in run ${run.id}`);
      return {
        run_id: run.id,
        node: node.node,
        state: node.state as 'pending',
        started_at: node.started_at,
        result: node.result_json === null ? null : (JSON.parse(node.result_json) as RunNodeResult),
      };
    },
  );

  app.get(
    '/v1/runs/:id/nodes/:node/artifacts/:name',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'Download an artifact a node produced',
        description:
          'The file the run fetched, by its base name. It is served only when its sha256 still matches the one the plugin declared.',
        tags: ['runs'],
        params: ArtifactParamSchema,
        response: {
          200: Type.Unknown({ description: 'The file (application/octet-stream).' }),
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      if (!ARTIFACT_NAME.test(name)) {
        throw new RuneError(
          'INVALID_ARGUMENT',
          'an artifact name is a file name: letters, digits, ".", "_" and "-", no path',
          { source, details: { parameter: 'name' } },
        );
      }
      const run = await loadRun(context, request.params.id, request);
      const node = await store.getNode(run.id, request.params.node);
      const result =
        node?.result_json == null ? undefined : (JSON.parse(node.result_json) as RunNodeResult);
      const artifact = result?.artifacts.find(
        (candidate) => basename(candidate.path) === name && candidate.status === 'fetched',
      );
      if (artifact?.local_path == null) throw notFound(`fetched artifact ${name} on that node`);
      const root = realpathSync(context.launcher.config.config.core.artifact_dir ?? '/nonexistent');
      let file: string;
      try {
        file = realpathSync(artifact.local_path);
      } catch {
        throw notFound(`file for artifact ${name} (pruned?)`);
      }
      if (!file.startsWith(`${root}${sep}`)) {
        throw new RuneError(
          'PLUGIN_INTEGRITY_FAILED',
          'the artifact file is outside the artifact directory; refusing to serve it',
          { source },
        );
      }
      const digest = createHash('sha256').update(readFileSync(file)).digest('hex');
      if (digest !== artifact.sha256) {
        throw new RuneError(
          'PLUGIN_INTEGRITY_FAILED',
          `the stored artifact ${name} no longer matches its sha256; refusing to serve it`,
          { source, details: { expected: artifact.sha256, actual: digest } },
        );
      }
      await auditArtifactRead(
        context.policy,
        principalOf(request),
        run,
        request.params.node,
        actionTags(context.launcher, run.action),
      );
      return reply
        .type('application/octet-stream')
        .header('content-disposition', `attachment; filename="${name}"`)
        .header('x-content-sha256', digest)
        .send(createReadStream(file));
    },
  );
}
