/**
 * The workflow endpoints: `POST /v1/workflows/{name}/runs` runs the workflow file `<name>.yaml`
 * (or `.yml`, `.json`) of the `[server] workflows` directory — never a path or a document from
 * the client —, `GET /v1/workflows/runs/{id}` returns its `rune-workflow-run/v1` record and
 * `POST /v1/workflows/runs/{id}/cancel` stops it the way Ctrl-C stops `rune workflow run`
 * (workflow-engines.ts).
 *
 * The engine is core's `runWorkflow()`; each step goes through `RunManager.submit()`
 * (server-step-runner.ts). The record is persisted as it progresses (`workflow_runs`), so after a
 * restart a workflow that was running is found and marked `interrupted`, not resumed
 * (workflow-store.ts says why).
 */
import {
  ACTION_NAME_PATTERN,
  RuneError,
  UUID_PATTERN,
  type WorkflowRunRecord,
  WorkflowRunRecordSchema,
} from '@rune/protocol';
import { Type } from '@sinclair/typebox';
import type { Principal } from '../auth/tokens.js';
import { errorResponses } from '../http/api-schemas.js';
import type { ApiInstance, RouteContext } from '../http/route-context.js';
import { isoFilter } from '../http/routes-runs.js';
import { decodeTimeIdCursor, encodeTimeIdCursor } from '../http/time-id-cursor.js';
import { actionTags, assertCanView, canView, runAccess } from '../policy/route-guard.js';
import { ENDED_STATUSES } from '../runs/run-document.js';
import type { StoredRun } from '../store/run-store.js';
import { requestTraceOptions } from '../telemetry/request-trace.js';
import { startWorkflow } from './start-workflow.js';
import {
  getStoredWorkflowRun,
  getWorkflowRun,
  listWorkflowRuns,
  type WorkflowRunPosition,
} from './workflow-store.js';

const source = { component: 'rune-server' } as const;
const errors = errorResponses(400, 401, 403, 404, 409, 413, 415, 429, 500, 503);

const WorkflowNameParamSchema = Type.Object(
  { name: Type.String({ pattern: ACTION_NAME_PATTERN, description: 'The workflow file name.' }) },
  { additionalProperties: false },
);
const WorkflowRunIdParamSchema = Type.Object(
  { id: Type.String({ pattern: UUID_PATTERN, description: 'The workflow run id.' }) },
  { additionalProperties: false },
);
const WorkflowRunRequestSchema = Type.Object(
  {
    inputs: Type.Optional(
      Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), {
        description: 'Typed input values by name (the workflow declares them).',
      }),
    ),
    input_args: Type.Optional(
      Type.Array(Type.String({ maxLength: 65536 }), {
        maxItems: 64,
        description:
          'Inputs as `key=value` strings (`rune workflow run -i`), typed by the workflow’s declared inputs (an array input takes a,b,c); applied after `inputs`.',
      }),
    ),
    dry_run: Type.Optional(
      Type.Boolean({ description: 'Plan every step, run nothing; answers with the record.' }),
    ),
    confirm: Type.Optional(
      Type.Boolean({ description: 'Confirms the dangerous actions the workflow runs.' }),
    ),
  },
  { additionalProperties: false },
);
const WorkflowAcceptedSchema = Type.Object(
  {
    workflow_run_id: Type.String(),
    trace_id: Type.String(),
    status: Type.Literal('running'),
    links: Type.Object({ self: Type.String() }),
  },
  { additionalProperties: false },
);

const WorkflowCancelAcceptedSchema = Type.Object(
  {
    workflow_run_id: Type.String(),
    trace_id: Type.String(),
    status: WorkflowRunRecordSchema.properties.status,
    links: Type.Object({ self: Type.String() }),
  },
  { additionalProperties: false },
);

const WorkflowRunListQuerySchema = Type.Object(
  {
    workflow: Type.Optional(
      Type.String({ pattern: ACTION_NAME_PATTERN, description: 'Only runs of this workflow.' }),
    ),
    status: Type.Optional(WorkflowRunRecordSchema.properties.status),
    principal: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    since: Type.Optional(
      Type.String({ minLength: 1, maxLength: 40, description: 'Started at or after (ISO time).' }),
    ),
    until: Type.Optional(
      Type.String({ minLength: 1, maxLength: 40, description: 'Started before (ISO time).' }),
    ),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 400 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, description: 'Default 50.' })),
  },
  { additionalProperties: false, description: 'Filters (AND), newest first.' },
);
const WorkflowRunListSchema = Type.Object(
  {
    workflow_runs: Type.Array(
      Type.Object(
        {
          workflow_run_id: Type.String(),
          workflow: Type.String(),
          status: WorkflowRunRecordSchema.properties.status,
          exit_code: Type.Integer(),
          principal: Type.String(),
          trace_id: Type.String(),
          started_at: Type.String(),
          ended_at: Type.Union([Type.String(), Type.Null()]),
          links: Type.Object({ self: Type.String() }),
        },
        { additionalProperties: false },
      ),
    ),
    next_cursor: Type.Union([Type.String(), Type.Null()], {
      description: 'Pass as ?cursor= for the next page; null on the last.',
    }),
  },
  { additionalProperties: false },
);

const WORKFLOW_RUN_ID = new RegExp(UUID_PATTERN);

/** Where the page before `cursor` ended. */
function workflowRunPosition(cursor: string): WorkflowRunPosition {
  const [startedAt, id] = decodeTimeIdCursor(cursor, WORKFLOW_RUN_ID);
  return { startedAt, id };
}

/** Registers the workflow routes. */
export function registerWorkflowRoutes(app: ApiInstance, context: RouteContext): void {
  const { store, manager, launcher, settings } = context;

  app.post(
    '/v1/workflows/:name/runs',
    {
      config: { minRole: 'operator' },
      schema: {
        summary: 'Run a workflow',
        description:
          'Runs the workflow file <name>.yaml of the [server] workflows directory with the given inputs. Bad inputs, an invalid file and unconfirmed dangerous actions are refused before anything runs; then 202 and the workflow runs, every step submitted like POST /v1/runs (source "workflow", one trace id). dry_run answers 200 with the record.',
        tags: ['workflows'],
        params: WorkflowNameParamSchema,
        body: WorkflowRunRequestSchema,
        response: { 200: WorkflowRunRecordSchema, 202: WorkflowAcceptedSchema, ...errors },
      },
    },
    async (request, reply) => {
      const principal = request.principal?.name;
      if (principal === undefined) {
        throw new RuneError('AUTH_TOKEN_MISSING', 'this endpoint needs a bearer token', { source });
      }
      const dryRun = request.body.dry_run === true;
      const started = await startWorkflow(
        {
          store,
          manager,
          launcher,
          workflowsDir: settings.workflowsDir,
          engines: context.workflows,
          log: (line, error) => request.log.error({ err: error }, line),
        },
        {
          name: request.params.name,
          principal,
          ...(request.principal === undefined
            ? {}
            : { subject: context.policy.subjectOf(request.principal) }),
          source: 'api',
          inputs: request.body.inputs ?? {},
          ...(request.body.input_args === undefined ? {} : { inputArgs: request.body.input_args }),
          dryRun,
          confirm: request.body.confirm === true,
          // The caller's traceparent: the workflow (and every step's run) continues its trace. A
          // caller may send one traceparent with several requests: the store finds a workflow's
          // runs by its workflow run id (runs.workflow_run_id), never by the trace id.
          ...requestTraceOptions(request),
        },
      );
      if (dryRun) return reply.code(200).send(await started.done);
      const { workflowRunId, traceId } = started;
      reply.header('location', `/v1/workflows/runs/${workflowRunId}`);
      return reply.code(202).send({
        workflow_run_id: workflowRunId,
        trace_id: traceId,
        status: 'running' as const,
        links: { self: `/v1/workflows/runs/${workflowRunId}` },
      });
    },
  );

  /** The stored runs `record` started (every step's attempts), first step first. */
  async function* runsOf(record: WorkflowRunRecord): AsyncGenerator<StoredRun> {
    for (const step of record.steps) {
      for (const attempt of step.attempts) {
        const run = await store.getRun(attempt.run_id);
        if (run !== undefined) yield run;
      }
    }
  }
  /** Whether `principal` may view every run `record` started (what reading the record needs). */
  const canViewWorkflow = async (
    principal: Principal,
    record: WorkflowRunRecord,
  ): Promise<boolean> => {
    for await (const run of runsOf(record)) {
      if (!(await canView(context.policy, principal, run, actionTags(launcher, run.action))))
        return false;
    }
    return true;
  };

  app.get(
    '/v1/workflows/runs',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'List workflow runs',
        description:
          'Newest first (by start time). Filters combine with AND: workflow, status, principal (who started it), since and until (its start, ISO times); limit (1–200, default 50) per page and next_cursor to pass as ?cursor=. Under a policy a page lists only the workflow runs the caller may read (view on the action and nodes of every run each started, as GET /v1/workflows/runs/{id} needs), so a page may hold fewer.',
        tags: ['workflows'],
        querystring: WorkflowRunListQuerySchema,
        response: { 200: WorkflowRunListSchema, ...errors },
      },
    },
    async (request) => {
      const query = request.query;
      const limit = query.limit ?? 50;
      const since = isoFilter(query.since, 'since');
      const until = isoFilter(query.until, 'until');
      const rows = await listWorkflowRuns(
        store.db,
        {
          ...(query.workflow === undefined ? {} : { workflow: query.workflow }),
          ...(query.status === undefined ? {} : { status: query.status }),
          ...(query.principal === undefined ? {} : { principal: query.principal }),
          ...(since === undefined ? {} : { since }),
          ...(until === undefined ? {} : { until }),
        },
        limit + 1,
        query.cursor === undefined ? undefined : workflowRunPosition(query.cursor),
      );
      const principal = request.principal;
      const page = [];
      for (const row of rows.slice(0, limit)) {
        if (principal === undefined || (await canViewWorkflow(principal, row.record))) {
          page.push(row);
        }
      }
      const last = rows[limit - 1];
      return {
        workflow_runs: page.map(({ record, principal: startedBy }) => ({
          workflow_run_id: record.workflow_run_id,
          workflow: record.workflow,
          status: record.status,
          exit_code: record.exit_code,
          principal: startedBy,
          trace_id: record.trace_id,
          started_at: record.started_at,
          ended_at: record.ended_at,
          links: { self: `/v1/workflows/runs/${record.workflow_run_id}` },
        })),
        next_cursor:
          rows.length > limit && last !== undefined
            ? encodeTimeIdCursor(last.position.startedAt, last.position.id)
            : null,
      };
    },
  );

  app.get(
    '/v1/workflows/runs/:id',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'A workflow run (its record)',
        description:
          'The rune-workflow-run/v1 record: each step with its runs (GET /v1/runs/{run_id}; a step that is running names its run with status running, or awaiting_approval, as the step itself, while the run is held for an approval step), the outputs, and the status (running, succeeded, failed, cancelled, interrupted). Needs `view` on the action and nodes of every run the workflow started (as GET /v1/runs/{id} does for one), else 403 POLICY_DENIED for the whole record.',
        tags: ['workflows'],
        params: WorkflowRunIdParamSchema,
        response: { 200: WorkflowRunRecordSchema, ...errors },
      },
    },
    async (request) => {
      const record = await getWorkflowRun(store.db, request.params.id);
      if (record === undefined) {
        throw new RuneError('NOT_FOUND', `no workflow run ${request.params.id}`, { source });
      }
      // RBAC, as for a run: reading the record needs `view` on the action and nodes of every run
      // it started (the record carries their nodes, results and errors, and its outputs are
      // computed from them), else 403 POLICY_DENIED, audited like a refused run read.
      const principal = request.principal;
      if (principal !== undefined) {
        for await (const run of runsOf(record)) {
          await assertCanView(context.policy, principal, run, actionTags(launcher, run.action));
        }
      }
      return record;
    },
  );

  app.post(
    '/v1/workflows/runs/:id/cancel',
    {
      config: { minRole: 'operator' },
      schema: {
        summary: 'Cancel a workflow run',
        description:
          'Like Ctrl-C in rune workflow run: the runs of the current step are cancelled (their running plugins are killed on the nodes, as by POST /v1/runs/{id}/cancel), that step ends cancelled, every later step skipped, and the workflow cancelled (RUN_CANCELLED, exit code 130). Whoever started the workflow may always cancel it; anyone else needs `cancel` on the action and nodes of each of its runs that has not ended. Answers 202 at once with the status as stored (`running` until the engine has stopped); an ended workflow is left as it is. Through any instance of a shared store: the instance executing the workflow is asked to stop it.',
        tags: ['workflows'],
        params: WorkflowRunIdParamSchema,
        response: { 202: WorkflowCancelAcceptedSchema, ...errors },
      },
    },
    async (request, reply) => {
      const principal = request.principal;
      if (principal === undefined) {
        throw new RuneError('AUTH_TOKEN_MISSING', 'this endpoint needs a bearer token', { source });
      }
      const id = request.params.id;
      const stored = await getStoredWorkflowRun(store.db, id);
      if (stored === undefined) {
        throw new RuneError('NOT_FOUND', `no workflow run ${id}`, { source });
      }
      const { record } = stored;
      const answer = (status: typeof record.status) => {
        reply.header('location', `/v1/workflows/runs/${id}`);
        return reply.code(202).send({
          workflow_run_id: id,
          trace_id: record.trace_id,
          status,
          links: { self: `/v1/workflows/runs/${id}` },
        });
      };
      if (record.status !== 'running') return answer(record.status);
      // RBAC, as for a run: the one who started it may always withdraw it; anyone else needs
      // `cancel` on every run of it that is still going on (what the cancel stops).
      if (stored.principal !== principal.name) {
        const subject = context.policy.subjectOf(principal);
        for await (const run of runsOf(record)) {
          if (ENDED_STATUSES.has(run.status)) continue;
          await context.policy.authorize(
            subject,
            runAccess('cancel', run, actionTags(launcher, run.action)),
            { traceId: record.trace_id, runId: run.id },
          );
        }
      }
      const reason = `cancelled by ${principal.name}`;
      const here = context.workflows.cancel(id, reason);
      if (!here && stored.owner !== null && stored.owner !== manager.cluster.instanceId) {
        // Another instance of the shared store executes it: it stops it there.
        await manager.cluster.forwardWorkflowCancel(id, stored.owner, reason);
      }
      return answer((await getWorkflowRun(store.db, id))?.status ?? record.status);
    },
  );
}
