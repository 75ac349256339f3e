/**
 * `0017_workflow_owner`: `workflow_runs.instance_id`, the instance executing a workflow run (the
 * cluster's instance id, src/cluster/), so that on a shared PostgreSQL store a starting instance
 * interrupts only the workflows of instances that are no longer live, and a dead instance's
 * workflows are taken over by exactly one live instance (a conditional UPDATE of this column,
 * src/workflows/workflow-owner.ts). Null on the embedded store (one instance) and on rows written
 * before this migration. Portable types only.
 */
import type { Kysely, Migration } from 'kysely';

/** Adds `workflow_runs.instance_id`. */
export const WORKFLOW_OWNER_MIGRATION: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('workflow_runs').addColumn('instance_id', 'text').execute();
  },
};
