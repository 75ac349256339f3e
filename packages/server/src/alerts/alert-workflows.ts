/**
 * The store side of workflows started by alerts, over `alert_workflow_runs` (migrations 0008 and
 * 0012), through Kysely's query builder so it runs unchanged on SQLite and PostgreSQL.
 *
 * - **One workflow run per alert episode**: the claim is a row with the episode's key under a
 *   unique index, written before the workflow starts. The same alert delivered twice, decided
 *   twice after a restart, or delivered to two instances of one PostgreSQL store, claims once;
 *   every other decision finds the winner's workflow run. The database decides, not a map.
 * - **Storm-held workflows survive a restart or a takeover**: a workflow whose held run is still
 *   its only run has run nothing past it, so it is resumed (its engine follows the held run
 *   again, whatever state that run is in) instead of being marked interrupted
 *   (workflows/held-workflows.ts).
 */
import type { Kysely } from 'kysely';
import { isUniqueViolation } from '../store/constraint-errors.js';
import type { StoreDatabase } from '../store/schema.js';

/** The claim of an episode: ours, or the workflow run another decision already started. */
export type WorkflowClaim =
  | { claimed: true }
  | { claimed: false; alertId: string; workflowRunId: string };

/** Claims `episodeKey` for a workflow run of alert `alertId`. */
export async function claimWorkflowRun(
  db: Kysely<StoreDatabase>,
  claim: { alertId: string; workflow: string; workflowRunId: string; episodeKey: string },
): Promise<WorkflowClaim> {
  try {
    await db
      .insertInto('alert_workflow_runs')
      .values({
        alert_id: claim.alertId,
        workflow: claim.workflow,
        workflow_run_id: claim.workflowRunId,
        episode_key: claim.episodeKey,
      })
      .execute();
    return { claimed: true };
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    const winner = await db
      .selectFrom('alert_workflow_runs')
      .select(['alert_id', 'workflow_run_id'])
      .where('episode_key', '=', claim.episodeKey)
      .executeTakeFirst();
    // The alert itself claimed before (decided again after a restart): the same run, also ours.
    if (winner === undefined) throw error;
    return { claimed: false, alertId: winner.alert_id, workflowRunId: winner.workflow_run_id };
  }
}

/** Gives a claim up: the workflow was refused before it started, so nothing holds the episode. */
export async function dropWorkflowClaim(db: Kysely<StoreDatabase>, alertId: string): Promise<void> {
  await db.deleteFrom('alert_workflow_runs').where('alert_id', '=', alertId).execute();
}

/** The workflow run an alert started (or claimed), if any. */
export async function workflowRunOfAlert(
  db: Kysely<StoreDatabase>,
  alertId: string,
): Promise<{ workflow: string; workflow_run_id: string } | undefined> {
  return db
    .selectFrom('alert_workflow_runs')
    .select(['workflow', 'workflow_run_id'])
    .where('alert_id', '=', alertId)
    .executeTakeFirst();
}

/** A storm-held workflow: the alert, its workflow run and its one (held) run. */
export interface HeldWorkflow {
  alertId: string;
  workflowRunId: string;
  heldRunId: string;
  /** The held run's status as read (awaiting_approval, queued, running or ended). */
  heldRunStatus: string;
  traceId: string;
}

/**
 * The running workflows held by the storm breaker that have submitted no run but their held run:
 * the alert was held with that run (it may since be `released`, `expired` or `cancelled`: it
 * follows the run's approval), the run is a step of the workflow (`runs.workflow_run_id`), and no
 * other run is.
 * Whatever state the held run is in, nothing of the workflow ran past it, so its engine can be
 * started again to follow it (workflows/held-workflows.ts decides when).
 */
export async function heldWorkflows(db: Kysely<StoreDatabase>): Promise<HeldWorkflow[]> {
  const rows = await db
    .selectFrom('alerts')
    .innerJoin('alert_workflow_runs', 'alert_workflow_runs.alert_id', 'alerts.id')
    .innerJoin('runs', 'runs.id', 'alerts.run_id')
    .innerJoin('workflow_runs', 'workflow_runs.id', 'alert_workflow_runs.workflow_run_id')
    .select([
      'alerts.id as alert_id',
      'alert_workflow_runs.workflow_run_id as workflow_run_id',
      'runs.id as run_id',
      'runs.status as run_status',
      'workflow_runs.trace_id as trace_id',
    ])
    .where('alerts.outcome', 'in', ['held', 'released', 'expired', 'cancelled'])
    .where('workflow_runs.status', '=', 'running')
    .whereRef('runs.workflow_run_id', '=', 'workflow_runs.id')
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('runs as other')
            .select('other.id')
            .whereRef('other.workflow_run_id', '=', 'workflow_runs.id')
            .whereRef('other.id', '!=', 'alerts.run_id'),
        ),
      ),
    )
    .execute();
  return rows.map((row) => ({
    alertId: row.alert_id,
    workflowRunId: row.workflow_run_id,
    heldRunId: row.run_id,
    heldRunStatus: row.run_status,
    traceId: row.trace_id,
  }));
}
