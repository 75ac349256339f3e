/**
 * `workflow_runs`: one row per workflow run of `POST /v1/workflows/{name}/runs`, holding its
 * `rune-workflow-run/v1` record as it progresses. Its steps' runs are ordinary rows of `runs`
 * (source `workflow`); this table ties them together and survives a restart, when a workflow
 * still `running` is marked `interrupted` (it is not resumed).
 */
import type { Kysely, Migration } from 'kysely';

/** Migration 0007 (issue 18, workflows). */
export const WORKFLOWS_MIGRATION: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('workflow_runs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workflow', 'text', (c) => c.notNull())
      .addColumn('trace_id', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('principal', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('record_json', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('workflow_runs_status')
      .on('workflow_runs')
      .column('status')
      .execute();
  },
};
