/**
 * `0002_sessions`: browser sessions of the dashboard. The row is keyed by the sha256 of the
 * session secret, so a copy of the store opens no session.
 */
import type { Kysely, Migration } from 'kysely';

/** Creates `browser_sessions`. */
export const MIGRATION_0002_SESSIONS: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('browser_sessions')
      .addColumn('id_sha256', 'text', (c) => c.primaryKey())
      .addColumn('principal', 'text', (c) => c.notNull())
      .addColumn('principal_json', 'text', (c) => c.notNull())
      .addColumn('token_id', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('last_seen_at', 'text', (c) => c.notNull())
      .addColumn('idle_ms', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('revoked_at', 'text')
      .execute();
    await db.schema
      .createIndex('browser_sessions_principal')
      .on('browser_sessions')
      .column('principal')
      .execute();
  },
};
