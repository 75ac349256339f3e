/**
 * `0004_alerts`: every received alert with its outcome (the alert receivers of issue 15). The
 * throttling state is this table itself — the last run of a group, the alerts of a group in a
 * window, the automatic runs in the storm window — so a restart re-reads it and never re-fires.
 * Portable types only (text, integer): the same migration runs on SQLite and PostgreSQL.
 */
import type { Kysely, Migration } from 'kysely';

/** The migration. */
export const alertsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('alerts')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('received_at', 'text', (c) => c.notNull())
      .addColumn('receiver', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('fingerprint', 'text', (c) => c.notNull())
      .addColumn('starts_at', 'text', (c) => c.notNull())
      .addColumn('closed', 'integer', (c) => c.notNull())
      .addColumn('alertname', 'text', (c) => c.notNull())
      .addColumn('labels_json', 'text', (c) => c.notNull())
      .addColumn('annotations_json', 'text', (c) => c.notNull())
      .addColumn('rule', 'text')
      .addColumn('group_key', 'text')
      .addColumn('action', 'text')
      .addColumn('node', 'text')
      .addColumn('outcome', 'text', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('error_json', 'text')
      .addColumn('run_id', 'text')
      .addColumn('request_json', 'text')
      .addColumn('due_at', 'text')
      .addColumn('held_until', 'text')
      .addColumn('released_by', 'text')
      .addColumn('automatic', 'integer', (c) => c.notNull())
      .addColumn('decided_at', 'text')
      .execute();
    await db.schema
      .createIndex('alerts_fingerprint')
      .on('alerts')
      .columns(['receiver', 'fingerprint'])
      .execute();
    await db.schema
      .createIndex('alerts_group')
      .on('alerts')
      .columns(['group_key', 'decided_at'])
      .execute();
    await db.schema
      .createIndex('alerts_outcome')
      .on('alerts')
      .columns(['outcome', 'decided_at'])
      .execute();
    await db.schema.createIndex('alerts_received').on('alerts').column('received_at').execute();
  },
};
