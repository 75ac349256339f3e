/**
 * `0009_cluster_queue`: the cluster-wide wait queue of busy nodes (src/cluster/). One row per
 * node of a queued run of a non-idempotent action, written with the run and deleted when the run
 * takes its node locks (or ends). `position` is the run's `runs.position`, numbered in commit
 * order under the run-numbering lock, so it is the submission order across every instance:
 *
 * - FIFO: a run takes a node only when no queued run submitted earlier waits for it;
 * - `if_busy: "refuse"` sees queued runs of every instance, not only its own.
 *
 * The table exists in the SQLite store too (one schema for both engines), where it stays empty.
 * Portable types only; the same migration runs on SQLite and PostgreSQL.
 */
import type { Kysely, Migration } from 'kysely';

/** The migration. */
export const CLUSTER_QUEUE_MIGRATION: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('node_queue')
      .addColumn('node', 'text', (c) => c.notNull())
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
      .addColumn('position', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('node_queue_pk', ['node', 'run_id'])
      .execute();
    await db.schema
      .createIndex('node_queue_order')
      .on('node_queue')
      .columns(['node', 'position'])
      .execute();
    await db.schema.createIndex('node_queue_run').on('node_queue').column('run_id').execute();
  },
};
