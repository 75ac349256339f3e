/**
 * `0011_session_audit`: how each browser session ended (signed out, idle, absolute lifetime, its
 * token revoked or expired). The primary key makes the end a one-time fact: whichever request,
 * instance or pruning pass sees it first writes the row and the audit record; the others find the
 * row and write nothing, so an expired cookie presented a hundred times is audited once.
 */
import type { Kysely, Migration } from 'kysely';

/** Creates `session_ends`. */
export const SESSION_AUDIT_MIGRATION: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('session_ends')
      .addColumn('id_sha256', 'text', (c) => c.primaryKey())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('ended_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('session_ends_at').on('session_ends').column('ended_at').execute();
  },
};
