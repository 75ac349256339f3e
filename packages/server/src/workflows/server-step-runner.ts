/**
 * The step runner of workflows started through the API: every step is submitted with
 * `RunManager.submit()` — the one path that starts runs in the server — so queueing, node locks,
 * policy and the run store apply to it exactly as to `POST /v1/runs`; the run is stored with
 * source `workflow` under the workflow's trace id and its workflow run id (`workflow_run_id`, by
 * which the store finds a workflow's runs), and its audit records carry `metadata.workflow`.
 */

import type { NodeRunResult, PlanRequest, WorkflowStepRunner } from '@rune/core';
import { type EpsError, isErrorCode, RuneError, type TerminalRunStatus } from '@rune/protocol';
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
  /** The workflow run whose steps this runner starts: stored with each run (`workflow_run_id`). */
  workflowRunId: string;
  /** The policy subject of the caller (its token's roles): every step is decided for it. */
  subject?: PolicySubject;
  /** Holds the whole workflow for one approval (the storm breaker): see {@link WorkflowHold}. */
  hold?: WorkflowHold;
  /**
   * Whether this process still owns the workflow run (workflow-owner.ts), asked before every
   * submission: an instance declared dead while it stalled, whose workflow another instance took
   * over and resumed, must not submit the next step a second time.
   */
  stillOwned?: () => Promise<boolean>;
}

/**
 * One approval for a whole workflow (the alert storm breaker): the first run the workflow starts
 * is submitted held (`requireApproval`), so it waits in `awaiting_approval` with the exact action,
 * nodes and parameters, under the policy's quorum, binding, self-approval and expiry rules, in the
 * inbox and `rune approve`. Every later run waits until that approval is decided and fails with
 * its refusal if it was not given, so nothing of the workflow runs before a person approved it.
 */
export interface WorkflowHold {
  reason: string;
  expiresMs: number;
  /** The held run of this workflow submitted by a previous process (a restart): followed, not submitted again. */
  adopt?: string;
  /** Told the held run's id once it was submitted (or adopted). */
  onHeld?: (runId: string) => void;
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
    workflowRunId: options.workflowRunId,
  });
  const hold = options.hold;
  /** Settles once the hold's run left `awaiting_approval`: null if approved, else why not. */
  let holdDecision: Promise<EpsError | null> | undefined;
  const decisionOf = async (runId: string): Promise<EpsError | null> => {
    for (;;) {
      const stored = await store.getRun(runId);
      if (stored === undefined) {
        return new RuneError('RUN_CANCELLED', `the held run ${runId} of this workflow vanished`, {
          source,
        }).toJSON();
      }
      if (stored.status === 'awaiting_approval') {
        await manager.approvals.view(runId).catch(() => undefined);
        await manager.waitForChange(runId, 1_000);
        continue;
      }
      if (ENDED_STATUSES.has(stored.status) && stored.error_json !== null) {
        const nodes = await store.getNodes(runId);
        if (nodes.every((node) => node.result_json === null)) {
          return JSON.parse(stored.error_json) as EpsError;
        }
      }
      return null;
    }
  };
  /** Before any run but the held one: wait for the hold's decision; refused, nothing starts. */
  const afterHold = async (): Promise<void> => {
    if (holdDecision === undefined) return;
    const refusal = await holdDecision;
    if (refusal !== null) {
      throw new RuneError(
        isErrorCode(refusal.code) ? refusal.code : 'APPROVAL_REJECTED',
        `this workflow was held for approval and not approved: ${refusal.message}`,
        { source },
      );
    }
  };

  return {
    // A step an approval step guards is submitted held (`requireApproval`): the RBAC approvals
    // decide it like any held run (quorum, binding, no self-approval, expiry, the inbox).
    approvals: true,
    async start(request, context) {
      const approval = context.approval;
      const workflow = (context.auditMetadata.workflow ?? {}) as { name?: string };
      // The first run of a held workflow carries the hold (with the approval step's own terms
      // when that run is also guarded by one); every other run waits for its decision.
      const holding = hold !== undefined && holdDecision === undefined;
      let resolveHeld: ((runId: string | null) => void) | undefined;
      if (holding) {
        // Set before the first await: runs started alongside (a parallel group) wait for it.
        const heldRun = new Promise<string | null>((resolve) => {
          resolveHeld = resolve;
        });
        holdDecision = heldRun.then((runId) =>
          runId === null
            ? new RuneError('APPROVAL_REJECTED', 'the held run of this workflow was refused', {
                source,
              }).toJSON()
            : decisionOf(runId).catch((error: unknown) =>
                // The store went away (the server stops): nothing more of this workflow starts.
                RuneError.from(error, 'STORE_UNAVAILABLE', { source }).toJSON(),
              ),
        );
      } else await afterHold();
      const reasons = [
        ...(holding ? [hold.reason] : []),
        ...(approval === undefined
          ? []
          : [`workflow ${workflow.name ?? '?'}, step ${approval.step}: ${approval.message}`]),
      ];
      const expires = [
        ...(holding ? [hold.expiresMs] : []),
        ...(approval?.timeoutMs === undefined ? [] : [approval.timeoutMs]),
      ];
      let run: { id: string; status?: string };
      try {
        if (holding && hold.adopt !== undefined) {
          run = { id: hold.adopt, status: (await store.getRun(hold.adopt))?.status ?? 'queued' };
        } else {
          if (options.stillOwned !== undefined && !(await options.stillOwned())) {
            throw new RuneError(
              'WORKFLOW_INTERRUPTED',
              'another instance took this workflow run over (this one was declared dead): its next run is not submitted here',
              { source },
            );
          }
          const submitted = await manager.submit(
            launchRequestOf(request),
            contextOf(context),
            reasons.length === 0
              ? {}
              : {
                  requireApproval: {
                    reason: reasons.join('; '),
                    ...(approval?.approvers === undefined ? {} : { approvers: approval.approvers }),
                    ...(expires.length === 0 ? {} : { expiresMs: Math.min(...expires) }),
                  },
                },
          );
          run = submitted.run;
        }
      } catch (error) {
        resolveHeld?.(null);
        throw error;
      }
      if (holding) {
        resolveHeld?.(run.id);
        hold.onHeld?.(run.id);
      }
      // Held for an approval: the engine shows it `awaiting_approval` until it leaves that state.
      let leftHold: (() => void) | undefined;
      const awaitingApproval =
        run.status === 'awaiting_approval'
          ? new Promise<void>((resolve) => {
              leftHold = resolve;
            })
          : undefined;
      const result = (async () => {
        for (;;) {
          const stored = await store.getRun(run.id);
          if (stored?.status !== 'awaiting_approval') leftHold?.();
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
      // Settled however the run ends (a store error included): the hold is over then.
      void result.finally(() => leftHold?.()).catch(() => undefined);
      return {
        id: run.id,
        result,
        ...(awaitingApproval === undefined ? {} : { awaitingApproval }),
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
