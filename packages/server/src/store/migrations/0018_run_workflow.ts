/**
 * `0018_run_workflow`: `runs.workflow_run_id`, the workflow run a run was started by (a step of
 * it), null for every other run. The store finds a workflow's runs by this column (the interrupt
 * of a stopped workflow, workflows/workflow-store.ts; the storm breaker's held workflows,
 * alerts/alert-workflows.ts), no longer by their trace id, so a workflow may continue a trace
 * that other runs or workflows share: the caller's `traceparent`, or the webhook's trace of the
 * alert that started it.
 *
 * Filled in for the runs stored before it: a run of source `workflow` whose trace id is that of
 * exactly one workflow run belongs to it (until this migration a workflow took a trace id of its
 * own). A trace id shared by several workflow runs stays ambiguous and is left null. Indexed.
 * Portable types only.
 */
import { type Kysely, type Migration, sql } from 'kysely';

/** Adds, fills in and indexes `runs.workflow_run_id`. */
export const RUN_WORKFLOW_MIGRATION: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('runs').addColumn('workflow_run_id', 'text').execute();
    await sql`
      update runs set workflow_run_id = (
        select workflow_runs.id from workflow_runs where workflow_runs.trace_id = runs.trace_id
      )
      where source = 'workflow'
        and (select count(*) from workflow_runs where workflow_runs.trace_id = runs.trace_id) = 1
    `.execute(db);
    await db.schema.createIndex('runs_workflow_run').on('runs').column('workflow_run_id').execute();
  },
};
