/**
 * One delivering instance per sink (migration 0013_ship_lease). Every instance of a shared
 * PostgreSQL store runs a shipper, and all of them read the one spool and the one cursor per
 * sink; without a lease two of them would deliver the same batch at the same time. A row of
 * `shipping_leases` per sink names the instance that alone may deliver to it until `expires_ms`
 * (on the database clock, like the cluster's heartbeats: no skew between hosts):
 *
 * - **Take**: an instance takes a row that expired (or was released) with one conditional UPDATE;
 *   PostgreSQL re-checks the condition of a second UPDATE on the row after the first commits, so
 *   only one of two instances racing for it matches. Taking bumps `epoch`.
 * - **Deliver within the lease**: the holder renews just before each delivery and starts it only
 *   while the rest of its lease (measured on its own monotonic clock from before the renewal)
 *   covers the whole delivery timeout. A delivery is aborted at that timeout, so it is over
 *   before another instance can take the row.
 * - **Fenced cursor**: the cursor moves in the transaction that renews the lease, matching
 *   `holder` and `epoch`; a holder that lost the lease (stalled past it) commits nothing and
 *   stops.
 * - **Hand-over**: a holder that dies (`kill -9`) is replaced once its lease expires; one that
 *   stops cleanly releases the row, and the next instance's pass takes it.
 *
 * Delivery stays at-least-once: a holder that dies (or stalls past its lease) after a delivery
 * and before its cursor commit leaves that one batch to be sent again by the next holder.
 *
 * The embedded SQLite store has one instance (its file lock): {@link createSoloLease} holds
 * every sink without a query.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { type Kysely, sql } from 'kysely';
import type { StoreDatabase } from '../store/schema.js';
import { writeCursor } from './spool.js';

/** A held lease of one sink. */
export interface LeaseGrant {
  /** The `epoch` this instance took the sink's row with (its fencing token). */
  readonly epoch: number;
  /** Milliseconds of the lease left now (this instance's monotonic clock; never too high). */
  remainingMs(): number;
}

/** The shipping leases seen by one instance. */
export interface SinkLeases {
  /** This shipper's id in `shipping_leases.holder`. */
  readonly holder: string;
  /** The lease length. */
  readonly leaseMs: number;
  /**
   * Renews this instance's lease of `sink`, or takes it when it expired or was released;
   * undefined while another instance holds it.
   */
  hold(sink: string): Promise<LeaseGrant | undefined>;
  /**
   * Moves the sink's cursor to `seq` under the lease and renews it (the grant returned counts
   * from this commit); undefined, with nothing written, when the lease was lost to another
   * instance.
   */
  commit(
    sink: string,
    grant: LeaseGrant,
    seq: number,
    now: () => Date,
  ): Promise<LeaseGrant | undefined>;
  /** Gives the sinks' leases up so that another instance takes them at once. */
  release(sinks: readonly string[]): Promise<void>;
}

/** What a take-over of a sink's lease reports (for the log). */
export interface LeaseTaken {
  sink: string;
  /** The previous holder ('' when none held it before). */
  from: string;
  epoch: number;
}

/** Options of {@link createDatabaseLeases}. */
export interface DatabaseLeasesOptions {
  db: Kysely<StoreDatabase>;
  leaseMs: number;
  /** Called when this instance takes a sink over (not at renewals). */
  onTaken?: (taken: LeaseTaken) => void;
}

/** The database clock in epoch ms (PostgreSQL). */
const dbNow = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

class LeaseLost extends Error {}

/** The leases of the sinks of a shared PostgreSQL store. */
export function createDatabaseLeases(options: DatabaseLeasesOptions): SinkLeases {
  const { db, leaseMs } = options;
  const host = hostname() === '' ? 'localhost' : hostname();
  const holder = `${host}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const held = new Map<string, number>();

  /** A grant whose lease runs from `startedAt` (taken before the statement was sent). */
  const grant = (epoch: number, startedAt: number): LeaseGrant => ({
    epoch,
    remainingMs: () => startedAt + leaseMs - performance.now(),
  });

  const renew = async (sink: string, epoch: number): Promise<LeaseGrant | undefined> => {
    const startedAt = performance.now();
    const renewed = await db
      .updateTable('shipping_leases')
      .set({ expires_ms: sql<number>`${dbNow} + ${leaseMs}` })
      .where('sink', '=', sink)
      .where('holder', '=', holder)
      .where('epoch', '=', epoch)
      .executeTakeFirst();
    return Number(renewed.numUpdatedRows) === 0 ? undefined : grant(epoch, startedAt);
  };

  const take = async (sink: string): Promise<LeaseGrant | undefined> => {
    // One read while another instance holds the row (every pass of every instance asks).
    const row = await db
      .selectFrom('shipping_leases')
      .select(['holder', sql<boolean>`expires_ms < ${dbNow}`.as('expired')])
      .where('sink', '=', sink)
      .executeTakeFirst();
    if (row === undefined) {
      await db
        .insertInto('shipping_leases')
        .values({ sink, holder: '', epoch: 0, expires_ms: 0 })
        .onConflict((conflict) => conflict.column('sink').doNothing())
        .execute();
    } else if (!row.expired) {
      return undefined;
    }
    const startedAt = performance.now();
    const taken = await db
      .updateTable('shipping_leases')
      .set((eb) => ({
        holder,
        epoch: eb('epoch', '+', 1),
        expires_ms: sql<number>`${dbNow} + ${leaseMs}`,
      }))
      .where('sink', '=', sink)
      .where(sql<boolean>`expires_ms < ${dbNow}`)
      .returning('epoch')
      .executeTakeFirst();
    if (taken === undefined) return undefined;
    const epoch = Number(taken.epoch);
    held.set(sink, epoch);
    options.onTaken?.({ sink, from: row?.holder ?? '', epoch });
    return grant(epoch, startedAt);
  };

  return {
    holder,
    leaseMs,
    async hold(sink) {
      const epoch = held.get(sink);
      if (epoch !== undefined) {
        const renewed = await renew(sink, epoch);
        if (renewed !== undefined) return renewed;
        held.delete(sink);
      }
      return take(sink);
    },
    async commit(sink, current, seq, now) {
      const startedAt = performance.now();
      try {
        await db.transaction().execute(async (trx) => {
          const renewed = await trx
            .updateTable('shipping_leases')
            .set({ expires_ms: sql<number>`${dbNow} + ${leaseMs}` })
            .where('sink', '=', sink)
            .where('holder', '=', holder)
            .where('epoch', '=', current.epoch)
            .executeTakeFirst();
          if (Number(renewed.numUpdatedRows) === 0) throw new LeaseLost();
          await writeCursor(trx, sink, seq, now);
        });
      } catch (error) {
        if (!(error instanceof LeaseLost)) throw error;
        held.delete(sink);
        return undefined;
      }
      return grant(current.epoch, startedAt);
    },
    async release(sinks) {
      for (const sink of sinks) {
        const epoch = held.get(sink);
        if (epoch === undefined) continue;
        held.delete(sink);
        await db
          .updateTable('shipping_leases')
          .set({ expires_ms: 0 })
          .where('sink', '=', sink)
          .where('holder', '=', holder)
          .where('epoch', '=', epoch)
          .execute();
      }
    },
  };
}

/** The embedded store's single instance: it holds every sink, and commits are plain writes. */
export function createSoloLease(db: Kysely<StoreDatabase>): SinkLeases {
  const always: LeaseGrant = { epoch: 0, remainingMs: () => Number.POSITIVE_INFINITY };
  return {
    holder: 'solo',
    leaseMs: Number.POSITIVE_INFINITY,
    hold: async () => always,
    async commit(sink, _grant, seq, now) {
      await writeCursor(db, sink, seq, now);
      return always;
    },
    release: async () => {},
  };
}
