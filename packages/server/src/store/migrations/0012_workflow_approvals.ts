/**
 * Migration 0012 (issues 15 and 18: storm-held workflows, durable run-end notifications,
 * idempotent alert-started workflows):
 *
 * - `alert_workflow_runs.episode_key`: the alert episode (receiver, fingerprint, start, rule) a
 *   workflow run was started for, unique: the same alert delivered twice, or to two instances of
 *   one PostgreSQL store, is one workflow run. The database decides, not a map in one process.
 *   Rows from before this migration have none (NULL is not unique-checked on either engine).
 * - `alert_run_notices`: a `run_ended` notification owed to a notifier, written when the run (or
 *   workflow run) is started and marked delivered only after the notifier answered 2xx, so a
 *   restart before the run ends, or a notifier that is down, loses nothing. Its `id` is the
 *   `Idempotency-Key` the receiver sees on every attempt.
 */
import type { Kysely, Migration } from 'kysely';

/** Migration 0012_workflow_approvals. */
export const WORKFLOW_APPROVALS_MIGRATION: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('alert_workflow_runs').addColumn('episode_key', 'text').execute();
    await db.schema
      .createIndex('alert_workflow_runs_episode')
      .on('alert_workflow_runs')
      .column('episode_key')
      .unique()
      .execute();
    await db.schema
      .createTable('alert_run_notices')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('alert_id', 'text', (c) => c.notNull())
      .addColumn('notifier', 'text', (c) => c.notNull())
      .addColumn('run_kind', 'text', (c) => c.notNull())
      .addColumn('run_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('next_at', 'text', (c) => c.notNull())
      .addColumn('lease_until', 'text')
      .addColumn('delivered_at', 'text')
      .addColumn('last_error', 'text')
      .execute();
    await db.schema
      .createIndex('alert_run_notices_due')
      .on('alert_run_notices')
      .columns(['delivered_at', 'next_at'])
      .execute();
  },
};
