/**
 * The store side of workflows started by alerts, over `alert_workflow_runs` (migrations 0008 and
 * 0012), through Kysely's query builder so it runs unchanged on SQLite and PostgreSQL.
 *
 * - **One workflow run per alert episode**: the claim is a row with the episode's key under a
 *   unique index, written before the workflow starts. The same alert delivered twice, decided
 *   twice after a restart, or delivered to two instances of one PostgreSQL store, claims once;
 *   every other decision finds the winner's workflow run. The database decides, not a map.
 * - **Storm-held workflows survive a restart**: a workflow whose first run still awaits the storm
 *   breaker's approval has run nothing, so start-up leaves it running and resumes it (its engine
 *   follows the held run again) instead of marking it interrupted.
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

/** A storm-held workflow waiting for its approval: the alert, its workflow run and held run. */
export interface HeldWorkflow {
  alertId: string;
  workflowRunId: string;
  heldRunId: string;
  traceId: string;
}

/**
 * The workflows held by the storm breaker whose held run still awaits approval: the alert is
 * `held` with that run, and the workflow run is `running`. Nothing of them has run.
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
      'workflow_runs.trace_id as trace_id',
    ])
    .where('alerts.outcome', '=', 'held')
    .where('runs.status', '=', 'awaiting_approval')
    .where('workflow_runs.status', '=', 'running')
    .execute();
  return rows.map((row) => ({
    alertId: row.alert_id,
    workflowRunId: row.workflow_run_id,
    heldRunId: row.run_id,
    traceId: row.trace_id,
  }));
}
