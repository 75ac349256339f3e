/**
 * The workflow endpoints: `POST /v1/workflows/{name}/runs` runs the workflow file `<name>.yaml`
 * (or `.yml`, `.json`) of the `[server] workflows` directory — never a path or a document from
 * the client — and `GET /v1/workflows/runs/{id}` returns its `rune-workflow-run/v1` record.
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
  WorkflowRunRecordSchema,
} from '@rune/protocol';
import { Type } from '@sinclair/typebox';
import { errorResponses } from '../http/api-schemas.js';
import type { ApiInstance, RouteContext } from '../http/route-context.js';
import { requestTraceOptions } from '../telemetry/request-trace.js';
import { startWorkflow } from './start-workflow.js';
import { getWorkflowRun } from './workflow-store.js';

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
          dryRun,
          confirm: request.body.confirm === true,
          // The caller's traceparent: the workflow (and every step's run) continues its trace.
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

  app.get(
    '/v1/workflows/runs/:id',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'A workflow run (its record)',
        description:
          'The rune-workflow-run/v1 record: each step with its runs (GET /v1/runs/{run_id}), the outputs, and the status (running, succeeded, failed, cancelled, interrupted).',
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
      return record;
    },
  );
}
