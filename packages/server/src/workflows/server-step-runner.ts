/**
 * The step runner of workflows started through the API: every step is submitted with
 * `RunManager.submit()` — the one path that starts runs in the server — so queueing, node locks,
 * policy and the run store apply to it exactly as to `POST /v1/runs`; the run is stored with
 * source `workflow` under the workflow's trace id and its audit records carry
 * `metadata.workflow`.
 */

import type { NodeRunResult, PlanRequest, WorkflowStepRunner } from '@rune/core';
import { type EpsError, RuneError, type TerminalRunStatus } from '@rune/protocol';
import type { PolicySubject } from '../policy/policy.js';
import type { LaunchContext, LaunchRequest, ServerLauncher } from '../runs/launcher.js';
import { ENDED_STATUSES } from '../runs/run-document.js';
import type { RunManager } from '../runs/run-manager.js';
import type { RunStore } from '../store/run-store.js';

const source = { component: 'rune-server' } as const;

/** A step's request in the API's words (the body of `POST /v1/runs`). */
export function launchRequestOf(request: PlanRequest): LaunchRequest {
  const options: NonNullable<LaunchRequest['options']> = {};
  if (request.timeout !== undefined) options.timeout = String(request.timeout);
  if (request.concurrency !== undefined) options.concurrency = Number(request.concurrency);
  if (request.confirmDangerous === true) options.confirm = true;
  if (request.transport !== undefined) options.transport = request.transport;
  return {
    action: request.action,
    targets: [...(request.selections ?? [])],
    ...(request.params === undefined ? {} : { params: { ...request.params } }),
    options,
  };
}

/** Options of {@link createServerStepRunner}. */
export interface ServerStepRunnerOptions {
  manager: RunManager;
  store: RunStore;
  launcher: ServerLauncher;
  principal: string;
  /** The policy subject of the caller (its token's roles): every step is decided for it. */
  subject?: PolicySubject;
}

/** The runner: submit, then follow the stored run until it ended. */
export function createServerStepRunner(options: ServerStepRunnerOptions): WorkflowStepRunner {
  const { manager, store, launcher, principal } = options;
  const contextOf = (context: {
    traceId: string;
    auditMetadata: Record<string, unknown>;
  }): LaunchContext => ({
    principal,
    ...(options.subject === undefined ? {} : { subject: options.subject }),
    source: 'workflow',
    traceId: context.traceId,
    auditMetadata: context.auditMetadata,
  });
  return {
    // A step an approval step guards is submitted held (`requireApproval`): the RBAC approvals
    // decide it like any held run (quorum, binding, no self-approval, expiry, the inbox).
    approvals: true,
    async start(request, context) {
      const approval = context.approval;
      const workflow = (context.auditMetadata.workflow ?? {}) as { name?: string };
      const { run } = await manager.submit(
        launchRequestOf(request),
        contextOf(context),
        approval === undefined
          ? {}
          : {
              requireApproval: {
                reason: `workflow ${workflow.name ?? '?'}, step ${approval.step}: ${approval.message}`,
                ...(approval.approvers === undefined ? {} : { approvers: approval.approvers }),
                ...(approval.timeoutMs === undefined ? {} : { expiresMs: approval.timeoutMs }),
              },
            },
      );
      const result = (async () => {
        for (;;) {
          const stored = await store.getRun(run.id);
          if (stored === undefined) {
            throw new RuneError('INTERNAL_ERROR', `run ${run.id} of a workflow step vanished`, {
              source,
            });
          }
          if (ENDED_STATUSES.has(stored.status)) {
            const nodes = (await store.getNodes(run.id))
              .filter((node) => node.result_json !== null)
              .map((node) => JSON.parse(node.result_json ?? 'null') as NodeRunResult);
            const error =
              stored.error_json === null ? null : (JSON.parse(stored.error_json) as EpsError);
            return { status: stored.status as TerminalRunStatus, nodes, error };
          }
          if (stored.status === 'awaiting_approval') {
            // Ends the request once its time (the approval step's timeout) ran out: the desk's
            // own sweep runs only every 30 s.
            await manager.approvals.view(run.id).catch(() => undefined);
            await manager.waitForChange(run.id, 1_000);
          } else await manager.waitForChange(run.id, 5_000);
        }
      })();
      return {
        id: run.id,
        result,
        cancel: (reason) => {
          void manager
            .cancel(run.id, reason ?? 'the workflow was cancelled')
            .catch(() => undefined);
        },
      };
    },
    plan: (request, context) =>
      launcher.dryRun(launchRequestOf(request), contextOf(context), context.traceId),
  };
}
