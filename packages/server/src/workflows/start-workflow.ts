/**
 * Starts a workflow run of the `[server] workflows` directory: the one place the API
 * (`POST /v1/workflows/{name}/runs`) and the alert rules (`workflow:` targets) start workflows.
 *
 * - Every step goes through `RunManager.submit()` (server-step-runner.ts).
 * - The record is persisted as it progresses (`workflow_runs`).
 * - **Audited as a whole**: a workflow refused before its first step (unknown or invalid file, bad
 *   inputs, unconfirmed dangerous actions) leaves a `workflow` record `refused` with its EPS code;
 *   a workflow that starts leaves a `started` record and, at its end, one with its status and the
 *   run ids of every step, so the step runs' own records are linked to the workflow run.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Context, context as otelContext } from '@opentelemetry/api';
import { loadWorkflowFile, newTraceId, runWorkflow, workflowAuditEntry } from '@rune/core';
import { RuneError, type RunSource, type WorkflowRunRecord } from '@rune/protocol';
import type { PolicySubject } from '../policy/policy.js';
import type { ServerLauncher } from '../runs/launcher.js';
import type { RunManager } from '../runs/run-manager.js';
import type { RunStore } from '../store/run-store.js';
import { createServerStepRunner, type WorkflowHold } from './server-step-runner.js';
import type { WorkflowEngines } from './workflow-engines.js';
import { ownsWorkflowRun, workflowOwner } from './workflow-owner.js';
import { saveWorkflowRun } from './workflow-store.js';

const source = { component: 'rune-server' } as const;
const EXTENSIONS = ['.yaml', '.yml', '.json'];

/** What starting a workflow needs of the server. */
export interface WorkflowServices {
  store: RunStore;
  manager: RunManager;
  launcher: ServerLauncher;
  /** `[server] workflows`, or null when the server runs none. */
  workflowsDir: string | null;
  /** The engines of this process: a cancel (`POST /v1/workflows/runs/{id}/cancel`) finds it there. */
  engines: WorkflowEngines;
  log: (line: string, error?: unknown) => void;
}

/** One workflow run to start. */
export interface StartWorkflowRequest {
  /** The workflow file name (the action-name grammar: no separator, no dot). */
  name: string;
  principal: string;
  subject?: PolicySubject;
  /** Who asked: `api` or `alert` (the step runs have source `workflow`). */
  source: RunSource;
  inputs: Readonly<Record<string, unknown>>;
  /** Inputs as `key=value` strings (`rune workflow run -i … --server`), typed by the workflow. */
  inputArgs?: readonly string[];
  dryRun?: boolean;
  confirm?: boolean;
  /** More `metadata` of the workflow's own audit records (an alert's id). */
  auditMetadata?: Record<string, unknown>;
  /**
   * A node for the input `name` (an alert's node): the name itself for a string input, a list of
   * it for an array input, as the workflow declares.
   */
  nodeInput?: { name: string; node: string };
  /** The workflow run id (default: a new one); an alert claims it before the workflow starts. */
  workflowRunId?: string;
  /** The trace id (default: a new one); a resumed workflow keeps its own. */
  traceId?: string;
  /**
   * The span the workflow continues: the API request's (a child of the caller's `traceparent`)
   * or the alert decision's. With the same `traceId`, `rune.workflow` is its child.
   */
  traceContext?: Context;
  /** Holds the whole workflow for one approval (the storm breaker; server-step-runner.ts). */
  hold?: Omit<WorkflowHold, 'onHeld'>;
  /** Resumed after a restart (a held workflow): audited `resumed`, not `started`. */
  resumed?: boolean;
}

/** A started workflow run. */
export interface StartedWorkflow {
  workflowRunId: string;
  traceId: string;
  /** Resolves with the final record (persisted) when the workflow ended; never rejects. */
  done: Promise<WorkflowRunRecord>;
  /**
   * With `hold`: resolves with the held run's id once it was submitted, or undefined when the
   * workflow ended without starting a run (every step skipped, or a refusal). Never rejects.
   */
  held: Promise<string | undefined>;
}

/** The workflow file `<name>.yaml|.yml|.json` of `dir`. Throws NOT_FOUND. */
export function workflowFile(dir: string | null, name: string): string {
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
}

/**
 * Starts the workflow; resolves once its first step may start (a dry run: with the record in
 * `done` already settled). A refusal before the first step is audited and thrown.
 */
export async function startWorkflow(
  services: WorkflowServices,
  request: StartWorkflowRequest,
): Promise<StartedWorkflow> {
  const { store, manager, launcher } = services;
  const workflowRunId = request.workflowRunId ?? randomUUID();
  const traceId = request.traceId ?? newTraceId();
  const dryRun = request.dryRun === true;
  const auditContext = { principal: request.principal, source: request.source };
  const inputNames = [
    ...new Set([
      ...Object.keys(request.inputs),
      ...(request.inputArgs ?? [])
        .map((arg) => arg.slice(0, Math.max(0, arg.indexOf('='))).slice(0, 64))
        .filter((name) => name !== ''),
    ]),
  ].slice(0, 64);
  const audit = (
    status: string,
    error: { code: string; message: string; traceId?: string | undefined } | null,
    metadata: Record<string, unknown>,
  ): Promise<void> =>
    launcher
      .recordAudit(
        workflowAuditEntry(
          {
            workflowRunId,
            name: request.name,
            traceId: error?.traceId ?? traceId,
            status,
            error: error === null ? null : { code: error.code, message: error.message },
            // Input values may carry what a step treats as sensitive: only their names are kept.
            metadata: {
              inputs: inputNames,
              dry_run: dryRun,
              ...request.auditMetadata,
              ...metadata,
            },
          },
          request.principal,
        ),
        auditContext,
      )
      .catch((error: unknown) =>
        services.log(`could not audit workflow run ${workflowRunId}`, error),
      );

  let definition: ReturnType<typeof loadWorkflowFile>['definition'];
  const registry = { resolve: (action: string) => launcher.describeAction(action) };
  try {
    definition = loadWorkflowFile(workflowFile(services.workflowsDir, request.name), {
      registry,
    }).definition;
  } catch (error) {
    const refusal = RuneError.from(error, 'INVALID_ARGUMENT', { source });
    await audit('refused', refusal, {});
    throw refusal;
  }

  let inputs = request.inputs;
  if (request.nodeInput !== undefined) {
    const { name, node } = request.nodeInput;
    const declared = Object.hasOwn(definition.inputs ?? {}, name)
      ? definition.inputs?.[name]
      : undefined;
    inputs = { ...inputs, [name]: declared?.type === 'array' ? [node] : node };
  }

  let saving: Promise<void> = Promise.resolve();
  const save = (record: WorkflowRunRecord): void => {
    // In order, one write at a time; a failed write is logged, the workflow goes on.
    // The owner as of this write: an instance declared dead registers again under a new id, and
    // a record its taker has written is then not overwritten (workflow-owner.ts).
    saving = saving
      .then(async () => {
        const owner = workflowOwner(manager.cluster);
        if (!(await saveWorkflowRun(store.db, record, request.principal, new Date(), owner))) {
          services.log(
            `warning: workflow run ${workflowRunId} was taken over by another instance; its record there stands`,
          );
        }
      })
      .catch((error: unknown) => services.log('workflow record not saved', error));
  };
  let heldRun!: (runId: string | undefined) => void;
  const held = new Promise<string | undefined>((resolve) => {
    heldRun = resolve;
  });
  let started!: () => void;
  const onStart = new Promise<void>((resolve) => {
    started = resolve;
  });
  // Registered before it starts, so a cancel that arrives with the 202 finds it.
  const engine = dryRun ? undefined : services.engines.register(workflowRunId);
  const begin = (): Promise<WorkflowRunRecord> =>
    runWorkflow(definition, {
      runner: createServerStepRunner({
        manager,
        store,
        launcher,
        principal: request.principal,
        workflowRunId,
        ...(request.subject === undefined ? {} : { subject: request.subject }),
        ...(request.hold === undefined
          ? {}
          : { hold: { ...request.hold, onHeld: (runId: string) => heldRun(runId) } }),
        stillOwned: () => ownsWorkflowRun(store.db, workflowRunId, workflowOwner(manager.cluster)),
      }),
      registry,
      workflowRunId,
      traceId,
      inputs,
      ...(request.inputArgs === undefined ? {} : { inputArgs: request.inputArgs }),
      dryRun,
      confirmDangerous: request.confirm === true,
      onStart: () => started(),
      ...(dryRun ? {} : { onProgress: save }),
      ...(engine === undefined ? {} : { signal: engine.signal }),
    });
  const running =
    request.traceContext === undefined ? begin() : otelContext.with(request.traceContext, begin);
  void running.then(
    () => heldRun(undefined),
    () => heldRun(undefined),
  );
  void running.finally(() => engine?.done()).catch(() => undefined);
  // Refusals before the first step reject `running` before onStart.
  try {
    await Promise.race([onStart, running]);
  } catch (error) {
    const refusal = RuneError.from(error, 'INVALID_ARGUMENT', { source });
    await audit('refused', refusal, {});
    throw refusal;
  }
  if (!dryRun) await audit(request.resumed === true ? 'resumed' : 'started', null, {});
  const done = running.then(async (record) => {
    if (!dryRun) {
      save(record);
      await saving;
      await audit(record.status, record.error, {
        exit_code: record.exit_code,
        steps: record.steps.map((step) => ({
          id: step.id,
          status: step.status,
          run_ids: step.attempts.map((attempt) => attempt.run_id),
        })),
      });
    }
    return record;
  });
  done.catch((error: unknown) => services.log('workflow failed', error));
  return { workflowRunId, traceId, done, held };
}
