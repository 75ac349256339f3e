/**
 * Versioned migrations of the run store, applied in order by Kysely's Migrator (which records them
 * in `kysely_migration` and serializes concurrent migrators with a lock table). A store written by
 * a newer RUNE (a migration this build does not know) is refused, never altered.
 *
 * Rules for a new migration: append it, never edit a released one; portable column types only
 * (TEXT, INTEGER); the test `store.test.ts` migrates from empty and from every older version.
 */

import { RuneError } from '@rune/protocol';
import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import { MIGRATION_0002_SESSIONS } from './migrations/0002_sessions.js';
import { policyApprovalsMigration } from './migrations/0003_policy_approvals.js';
import { alertsMigration } from './migrations/0004_alerts.js';
import { CLUSTER_MIGRATION } from './migrations/0005_cluster.js';
import { shippingMigration } from './migrations/0006_shipping.js';
import { WORKFLOWS_MIGRATION } from './migrations/0007_workflows.js';
import { ALERT_WORKFLOWS_MIGRATION } from './migrations/0008_alert_workflows.js';
import { CLUSTER_QUEUE_MIGRATION } from './migrations/0009_cluster_queue.js';
import { SHIPPING_SEQ_MIGRATION } from './migrations/0010_shipping_seq.js';
import { SESSION_AUDIT_MIGRATION } from './migrations/0011_session_audit.js';
import { WORKFLOW_APPROVALS_MIGRATION } from './migrations/0012_workflow_approvals.js';
import { SHIP_LEASE_MIGRATION } from './migrations/0013_ship_lease.js';
import { RUN_NUMBERING_MIGRATION } from './migrations/0016_run_numbering.js';
import { WORKFLOW_OWNER_MIGRATION } from './migrations/0017_workflow_owner.js';
import { RUN_WORKFLOW_MIGRATION } from './migrations/0018_run_workflow.js';

/** The migrations, by name; names sort in the order they apply. */
export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '0001_runs_events_tokens': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('runs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('position', 'integer', (c) => c.notNull().unique())
        .addColumn('trace_id', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('principal', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('dry_run', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .addColumn('exit_code', 'integer')
        .addColumn('nodes', 'text', (c) => c.notNull())
        .addColumn('request_json', 'text', (c) => c.notNull())
        .addColumn('has_sensitive', 'integer', (c) => c.notNull())
        .addColumn('plan_json', 'text', (c) => c.notNull())
        .addColumn('summary_json', 'text')
        .addColumn('error_json', 'text')
        .addColumn('audit_json', 'text')
        .addColumn('last_seq', 'integer', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('runs_status').on('runs').column('status').execute();
      await db.schema
        .createIndex('runs_created')
        .on('runs')
        .columns(['created_at', 'position'])
        .execute();
      await db.schema
        .createTable('run_nodes')
        .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
        .addColumn('node', 'text', (c) => c.notNull())
        .addColumn('position', 'integer', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text')
        .addColumn('error_code', 'text')
        .addColumn('stdout_truncated', 'integer', (c) => c.notNull())
        .addColumn('stderr_truncated', 'integer', (c) => c.notNull())
        .addColumn('stderr_tail', 'text', (c) => c.notNull())
        .addColumn('result_json', 'text')
        .addPrimaryKeyConstraint('run_nodes_pk', ['run_id', 'node'])
        .execute();
      await db.schema
        .createTable('run_events')
        .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('event_json', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('run_events_pk', ['run_id', 'seq'])
        .execute();
      await db.schema
        .createTable('api_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('secret_sha256', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('revoked_at', 'text')
        .addColumn('last_used_at', 'text')
        .execute();
    },
  },
  '0002_idempotency_keys': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('idempotency_keys')
        .addColumn('principal', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('body_sha256', 'text', (c) => c.notNull())
        .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('idempotency_keys_pk', ['principal', 'key'])
        .execute();
      await db.schema.createIndex('runs_principal').on('runs').column('principal').execute();
    },
  },
  '0002_sessions': MIGRATION_0002_SESSIONS,
  '0004_alerts': alertsMigration,
  '0007_workflows': WORKFLOWS_MIGRATION,
  '0006_shipping': shippingMigration,
  '0003_policy_approvals': policyApprovalsMigration,
  '0005_cluster': CLUSTER_MIGRATION,
  '0008_alert_workflows': ALERT_WORKFLOWS_MIGRATION,
  '0009_cluster_queue': CLUSTER_QUEUE_MIGRATION,
  '0010_shipping_seq': SHIPPING_SEQ_MIGRATION,
  '0011_session_audit': SESSION_AUDIT_MIGRATION,
  '0012_workflow_approvals': WORKFLOW_APPROVALS_MIGRATION,
  '0013_ship_lease': SHIP_LEASE_MIGRATION,
  '0016_run_numbering': RUN_NUMBERING_MIGRATION,
  '0017_workflow_owner': WORKFLOW_OWNER_MIGRATION,
  '0018_run_workflow': RUN_WORKFLOW_MIGRATION,
};

/** The names of every migration, in order. */
export const MIGRATION_NAMES: readonly string[] = Object.keys(MIGRATIONS).sort();

/** A provider over {@link MIGRATIONS}, or over its first `upTo` entries (tests of old versions). */
export function migrationProvider(upTo: number = MIGRATION_NAMES.length): MigrationProvider {
  return {
    getMigrations: async () =>
      Object.fromEntries(
        MIGRATION_NAMES.slice(0, upTo).map((name) => [name, MIGRATIONS[name] as Migration]),
      ),
  };
}

/**
 * Brings the store to the newest schema (or to the first `upTo` migrations). Throws INVALID_CONFIG
 * when the store holds a migration this build does not know (written by a newer RUNE) or a
 * migration fails.
 */
export async function migrateStore(db: Kysely<unknown>, upTo?: number): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider(upTo) });
  const known = new Set(MIGRATION_NAMES.slice(0, upTo ?? MIGRATION_NAMES.length));
  const applied = await migrator.getMigrations();
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
  if (tables.some((table) => table.name === 'kysely_migration')) {
    const rows = await sql<{ name: string }>`select name from kysely_migration`.execute(db);
    const unknown = rows.rows.map((row) => row.name).filter((name) => !known.has(name));
    if (unknown.length > 0) {
      throw new RuneError(
        'INVALID_CONFIG',
        `the run store was written by a newer RUNE (migrations ${unknown.join(', ')}); this server does not know them and will not touch the store`,
        { details: { key: 'server.store', unknown_migrations: unknown } },
      );
    }
  }
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    throw new RuneError('INVALID_CONFIG', 'the run store could not be migrated', {
      cause: error,
      details: { key: 'server.store', results: results ?? [], known: applied.length },
    });
  }
  return (results ?? [])
    .filter((result) => result.status === 'Success')
    .map((r) => r.migrationName);
}
