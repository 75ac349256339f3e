/**
 * `0005_cluster`: what several instances on one PostgreSQL coordinate through (src/cluster/).
 * The tables exist in the SQLite store too (one schema for both engines), where they stay empty.
 *
 * - `cluster_instances`: one row per `rune serve` process ever started on the store, with its
 *   heartbeat (database clock, ms) and its state (active, draining, stopped, dead).
 * - `run_claims`: which instance owns an unfinished run, and whether it was already handed to
 *   core (`running`: never started again) or still waits (`queued`: may be adopted).
 * - `node_locks`: the per-node mutual exclusion across instances; the primary key is the lock.
 * - `audit_records`: the audit chain in the database (PostgreSQL mode), one row per record; the
 *   primary key on `seq` and the unique `hash` make a fork of the chain impossible to commit.
 */
import type { Kysely, Migration } from 'kysely';

/** The migration. */
export const CLUSTER_MIGRATION: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('cluster_instances')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('host', 'text', (c) => c.notNull())
      .addColumn('pid', 'integer', (c) => c.notNull())
      .addColumn('started_at', 'text', (c) => c.notNull())
      .addColumn('heartbeat_ms', 'bigint', (c) => c.notNull())
      .addColumn('lease_ms', 'integer', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('taken_over_by', 'text')
      .execute();
    await db.schema
      .createTable('run_claims')
      .addColumn('run_id', 'text', (c) => c.primaryKey().references('runs.id').onDelete('cascade'))
      .addColumn('instance_id', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('claimed_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('run_claims_instance')
      .on('run_claims')
      .column('instance_id')
      .execute();
    await db.schema
      .createTable('node_locks')
      .addColumn('node', 'text', (c) => c.primaryKey())
      .addColumn('run_id', 'text', (c) => c.notNull())
      .addColumn('instance_id', 'text', (c) => c.notNull())
      .addColumn('acquired_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('node_locks_run').on('node_locks').column('run_id').execute();
    await db.schema
      .createTable('audit_records')
      .addColumn('seq', 'integer', (c) => c.primaryKey())
      .addColumn('hash', 'text', (c) => c.notNull().unique())
      .addColumn('timestamp', 'text', (c) => c.notNull())
      .addColumn('record_json', 'text', (c) => c.notNull())
      .execute();
  },
};
