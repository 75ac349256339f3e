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
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadWorkflowFile, newTraceId, runWorkflow } from '@rune/core';
import {
  ACTION_NAME_PATTERN,
  RuneError,
  UUID_PATTERN,
  type WorkflowRunRecord,
  WorkflowRunRecordSchema,
} from '@rune/protocol';
import { Type } from '@sinclair/typebox';
import { errorResponses } from '../http/api-schemas.js';
import type { ApiInstance, RouteContext } from '../http/route-context.js';
import { createServerStepRunner } from './server-step-runner.js';
import { getWorkflowRun, saveWorkflowRun } from './workflow-store.js';

const source = { component: 'rune-server' } as const;
const errors = errorResponses(400, 401, 403, 404, 409, 413, 415, 429, 500, 503);
const EXTENSIONS = ['.yaml', '.yml', '.json'];

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

  const fileOf = (name: string): string => {
    const dir = settings.workflowsDir;
    if (dir === null) {
      throw new RuneError(
        'NOT_FOUND',
        'this server runs no workflows: set [server] workflows to a directory of workflow files',
        { source },
      );
    }
    // The name matches the action-name grammar: no separator, no dot, so no path escapes dir.
    const file = EXTENSIONS.map((extension) => join(dir, `${name}${extension}`)).find(existsSync);
    if (file === undefined) throw new RuneError('NOT_FOUND', `no workflow ${name}`, { source });
    return file;
  };

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
      const registry = { resolve: (action: string) => launcher.describeAction(action) };
      const { definition } = loadWorkflowFile(fileOf(request.params.name), { registry });
      const workflowRunId = randomUUID();
      const traceId = newTraceId();
      let saving: Promise<void> = Promise.resolve();
      const save = (record: WorkflowRunRecord): void => {
        // In order, one write at a time; a failed write is logged, the workflow goes on.
        saving = saving
          .then(() => saveWorkflowRun(store.db, record, principal, new Date()))
          .catch((error: unknown) =>
            request.log.error({ err: error }, 'workflow record not saved'),
          );
      };
      let started!: () => void;
      const onStart = new Promise<void>((resolve) => {
        started = resolve;
      });
      const dryRun = request.body.dry_run === true;
      const running = runWorkflow(definition, {
        runner: createServerStepRunner({
          manager,
          store,
          launcher,
          principal,
          ...(request.principal === undefined
            ? {}
            : { subject: context.policy.subjectOf(request.principal) }),
        }),
        registry,
        workflowRunId,
        traceId,
        inputs: request.body.inputs ?? {},
        dryRun,
        confirmDangerous: request.body.confirm === true,
        onStart: () => started(),
        ...(dryRun ? {} : { onProgress: save }),
      }).then(async (record) => {
        if (!dryRun) {
          save(record);
          await saving;
        }
        return record;
      });
      // Refusals before the first step reject `running` before onStart: answer them as errors.
      await Promise.race([onStart, running]);
      if (dryRun) return reply.code(200).send(await running);
      running.catch((error: unknown) => request.log.error({ err: error }, 'workflow failed'));
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
