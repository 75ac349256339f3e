/**
 * Migration 0008 (issues 15 and 18 wired to the RBAC approvals):
 *
 * - `approval_approvers`: who may approve a held run beyond the policy's `approve` verb — a
 *   workflow approval step's `approvers` (principals, subjects or roles). A run without a row has
 *   no such restriction. Its own table, so `approval_requests` (0003) stays as released.
 * - `alert_workflow_runs`: the workflow run an alert started (a rule with a `workflow:` target);
 *   the alert's `run_id` stays for action targets.
 */
import type { Kysely, Migration } from 'kysely';

/** Migration 0008_alert_workflows. */
export const ALERT_WORKFLOWS_MIGRATION: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('approval_approvers')
      .addColumn('run_id', 'text', (c) => c.primaryKey())
      .addColumn('approvers_json', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('alert_workflow_runs')
      .addColumn('alert_id', 'text', (c) => c.primaryKey())
      .addColumn('workflow', 'text', (c) => c.notNull())
      .addColumn('workflow_run_id', 'text', (c) => c.notNull())
      .execute();
  },
};
