/**
 * `rune db migrate`: brings a store (SQLite file or PostgreSQL URL) to this build's schema and
 * says where it stands. The servers migrate at start-up too; running this first, once, keeps a
 * rolling upgrade of several instances from racing each other's start-up (the migrator locks,
 * but an old instance would then refuse to start against the new schema — as it must).
 */
import { sql } from 'kysely';
import { MIGRATION_NAMES } from './migrations.js';
import { redactDatabaseUrl } from './postgres-dialect.js';
import { openRunStore } from './run-store.js';

/** What {@link migrateRunStore} did. */
export interface MigrationReport {
  /** The store, a password in its URL replaced. */
  store: string;
  engine: 'sqlite' | 'postgres';
  /** Migrations applied now. */
  applied: string[];
  /** Every migration the store holds, in order (this build's whole list after success). */
  schema: string[];
}

/** Migrates the store at `location`. Throws INVALID_CONFIG (newer schema, unreachable store). */
export async function migrateRunStore(location: string): Promise<MigrationReport> {
  const applied: string[] = [];
  const store = await openRunStore(location, { onApplied: (names) => applied.push(...names) });
  try {
    const rows = await sql<{
      name: string;
    }>`select name from kysely_migration order by name`.execute(store.db);
    return {
      store: redactDatabaseUrl(location),
      engine: store.engine,
      applied,
      schema: rows.rows.map((row) => row.name),
    };
  } finally {
    await store.close();
  }
}

/** The migrations this build knows, in order. */
export const KNOWN_MIGRATIONS: readonly string[] = MIGRATION_NAMES;
