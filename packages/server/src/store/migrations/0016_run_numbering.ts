/**
 * `0016_run_numbering`: one counter row (`run_numbering`, id 1) holds the last `runs.position`
 * handed out on PostgreSQL (store/postgres-dialect.ts `numberRun`). A run's insert transaction
 * writes the run under a provisional position and numbers it in its LAST statement before COMMIT,
 * by updating this row: the row lock serialises numbering across instances only from that
 * statement to COMMIT (an advisory lock had to be taken in a statement of its own before the
 * `max + 1` read, and was held through the whole transaction), and positions still become
 * visible in commit order, which cursor pagination, the cluster's FIFO queue and the shipping
 * watermark rely on. The embedded SQLite store (one writer) keeps numbering by `max + 1`.
 * Seeded with the highest position stored. Portable types only.
 */
import type { Kysely, Migration } from 'kysely';

interface SeedDatabase {
  runs: { position: number };
  run_numbering: { id: number; last_position: number };
}

/** Creates and seeds `run_numbering`. */
export const RUN_NUMBERING_MIGRATION: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('run_numbering')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('last_position', 'bigint', (c) => c.notNull())
      .execute();
    const typed = db as unknown as Kysely<SeedDatabase>;
    const top = await typed
      .selectFrom('runs')
      .select((eb) => eb.fn.max('position').as('position'))
      .executeTakeFirst();
    await typed
      .insertInto('run_numbering')
      .values({ id: 1, last_position: Number(top?.position ?? 0) })
      .execute();
  },
};
