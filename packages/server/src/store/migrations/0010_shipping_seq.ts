/**
 * 0010_shipping_seq: the shipping spool's sequence numbers come from the database. One counter row
 * (`shipping_seq`, name `outbox`) holds the last `seq` handed out; an ingesting transaction
 * updates it first, so the row lock it takes serializes every instance's inserts until commit
 * (on PostgreSQL; SQLite has one writer anyway). A `seq` is therefore visible only after every
 * lower one committed, and a sink reading `seq > cursor` cannot step over a number that commits
 * later — which an identity column alone would allow (values are handed out before commit, and
 * commit in any order). Seeded with the highest `seq` already spooled. Portable types only.
 */
import type { Kysely, Migration } from 'kysely';

interface SeedDatabase {
  shipping_outbox: { seq: number };
  shipping_seq: { name: string; last_seq: number };
}

/** The migration. */
export const SHIPPING_SEQ_MIGRATION: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('shipping_seq')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('last_seq', 'bigint', (c) => c.notNull())
      .execute();
    const typed = db as unknown as Kysely<SeedDatabase>;
    const top = await typed
      .selectFrom('shipping_outbox')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .executeTakeFirst();
    await typed
      .insertInto('shipping_seq')
      .values({ name: 'outbox', last_seq: Number(top?.seq ?? 0) })
      .execute();
    // Pruning (src/shipping/prune.ts) deletes by age below every sink's cursor.
    await db.schema
      .createIndex('shipping_outbox_created')
      .on('shipping_outbox')
      .column('created_at')
      .execute();
  },
};
