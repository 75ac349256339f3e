/**
 * 0006_shipping: the spool of record shipping (src/shipping/). `shipping_outbox` holds every
 * record to ship once, numbered by `seq` and unique by `record_id` (so ingesting the same audit
 * line or run twice adds nothing); `shipping_cursors` is each sink's last delivered `seq`;
 * `shipping_sources` is where each ingester stopped reading (the audit log's byte offset, the
 * runs' watermark). Portable types only.
 */
import type { Kysely, Migration } from 'kysely';

/** The migration. */
export const shippingMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('shipping_outbox')
      .addColumn('seq', 'bigint', (c) => c.primaryKey())
      .addColumn('record_id', 'text', (c) => c.notNull().unique())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('body_json', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('shipping_cursors')
      .addColumn('sink', 'text', (c) => c.primaryKey())
      .addColumn('last_seq', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('shipping_sources')
      .addColumn('source', 'text', (c) => c.primaryKey())
      .addColumn('position', 'text', (c) => c.notNull())
      .execute();
  },
};
