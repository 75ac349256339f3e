/**
 * `0013_ship_lease`: one delivering instance per shipping sink (src/shipping/lease.ts). A row per
 * sink names the instance that may deliver to it (`holder`) until `expires_ms` on the database
 * clock; `epoch` grows with every hand-over, so a cursor commit of a holder that lost the lease
 * matches no row and is refused. An expired row is taken by the first instance whose conditional
 * UPDATE matches it. Portable types only.
 */
import type { Kysely, Migration } from 'kysely';

/** Creates `shipping_leases`. */
export const SHIP_LEASE_MIGRATION: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('shipping_leases')
      .addColumn('sink', 'text', (c) => c.primaryKey())
      .addColumn('holder', 'text', (c) => c.notNull())
      .addColumn('epoch', 'bigint', (c) => c.notNull())
      .addColumn('expires_ms', 'bigint', (c) => c.notNull())
      .execute();
  },
};
