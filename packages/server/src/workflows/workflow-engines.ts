/**
 * The workflow engines this process executes, by workflow run id: how a cancel reaches one.
 *
 * A workflow's engine (core's `runWorkflow()`) lives in the memory of the one `rune serve` that
 * runs it (workflow-owner.ts). `POST /v1/workflows/runs/{id}/cancel` aborts its signal here, or,
 * on a shared PostgreSQL store, asks the owning instance to (`Cluster.forwardWorkflowCancel`),
 * whose listener calls {@link WorkflowEngines.cancel}. Aborted, the engine cancels the runs of
 * the current step through the run manager (the running plugins are killed on their nodes, as
 * for `POST /v1/runs/{id}/cancel`), records every later step `skipped` and ends `cancelled`.
 */

/** A running engine's registration. */
export interface WorkflowEngineEntry {
  /** Aborted by a cancel, with the reason as its `reason`. */
  readonly signal: AbortSignal;
  /** The engine ended: it no longer takes cancels. */
  done(): void;
}

/** The engines of this process. */
export interface WorkflowEngines {
  /** Registers the engine of workflow run `id` before it starts. */
  register(id: string): WorkflowEngineEntry;
  /** Cancels the engine of `id` if this process runs it: true if it does. */
  cancel(id: string, reason: string): boolean;
}

/** An empty registry (one per server). */
export function createWorkflowEngines(): WorkflowEngines {
  const engines = new Map<string, AbortController>();
  return {
    register(id) {
      const controller = new AbortController();
      engines.set(id, controller);
      return {
        signal: controller.signal,
        done: () => {
          if (engines.get(id) === controller) engines.delete(id);
        },
      };
    },
    cancel(id, reason) {
      const controller = engines.get(id);
      if (controller === undefined) return false;
      controller.abort(reason);
      return true;
    },
  };
}
