/**
 * The shipper: every `interval` it spools what is new (audit records, ended runs; spool.ts) and
 * lets each sink catch up from its cursor. Each sink has a loop of its own, so a sink that is
 * down or never answers holds back nobody but itself: a delivery is bounded by `timeout`, a
 * failed one is retried with a back-off (up to 30 s), and runs never wait for any of it — the
 * run path does not know the shipper exists; it reads the store and the audit log after the
 * fact.
 *
 * On a shared PostgreSQL store every instance runs a shipper, but for each sink one instance at a
 * time delivers: the holder of the sink's lease (lease.ts). The others only spool; one of them
 * takes the sink over when the holder dies or stops.
 */
import type { Kysely } from 'kysely';
import type { ServerMetrics } from '../metrics.js';
import type { StoreDatabase } from '../store/schema.js';
import { createDatabaseLeases, createSoloLease, type SinkLeases } from './lease.js';
import { type PruneResult, pruneSpool } from './prune.js';
import type { ShippingSink } from './sinks.js';
import {
  ingestAuditLog,
  ingestAuditTable,
  ingestEndedRuns,
  readCursor,
  readSpool,
  type ShipFrom,
} from './spool.js';

/** Options of {@link createShipper}. */
export interface ShipperOptions {
  db: Kysely<StoreDatabase>;
  /**
   * Where the server's audit records are: the audit log file (JSON lines), or `store` for the
   * chain in a shared PostgreSQL store (`audit_records`).
   */
  audit: { file: string } | 'store';
  sinks: readonly ShippingSink[];
  intervalMs: number;
  timeoutMs: number;
  batchSize: number;
  /** What a first start spools: the whole existing audit log and runs, or from now on. */
  shipFrom?: ShipFrom;
  /** Delivered records are kept this long, then pruned (default 24 h). */
  retentionMs?: number;
  /** How often the spool is pruned (default 1 min). */
  pruneIntervalMs?: number;
  metrics?: ServerMetrics;
  now?: () => Date;
  onWarning?: (message: string) => void;
  /** Informational lines (a sink taken over from another instance). */
  onInfo?: (message: string) => void;
  /**
   * A shared store (several instances): the server's `lease`. Each sink is then delivered to by
   * one instance at a time, for a lease of this long but at least twice `timeoutMs` (a delivery
   * must fit in it). Unset: the embedded store's one instance delivers to every sink.
   */
  leaseMs?: number;
}

/** A running shipper. */
export interface Shipper {
  /** Spools and delivers now (what the timer does); resolves when this pass is done. */
  runOnce(): Promise<void>;
  /** One pruning pass now (what the prune timer does). */
  prune(): Promise<PruneResult>;
  /** Stops the timer, lets running deliveries end (bounded by the timeout), closes the sinks. */
  close(): Promise<void>;
}

const MAX_BACKOFF_MS = 30_000;
/** Lease time a delivery must leave unused (timers fire late on a loaded host). */
const MAX_LEASE_MARGIN_MS = 1_000;
const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;

/** Creates and starts the shipper. */
export function createShipper(options: ShipperOptions): Shipper {
  const { db, sinks, metrics } = options;
  const now = options.now ?? (() => new Date());
  const warn = options.onWarning ?? (() => {});
  const shipFrom = options.shipFrom ?? 'now';
  const retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
  let closed = false;
  let ingesting: Promise<void> | undefined;
  const loops = new Map<string, Promise<void>>();
  const state = new Map(sinks.map((sink) => [sink.name, { failures: 0, retryAt: 0 }]));
  const leases: SinkLeases =
    options.leaseMs === undefined
      ? createSoloLease(db)
      : createDatabaseLeases({
          db,
          leaseMs: Math.max(options.leaseMs, 2 * options.timeoutMs),
          onTaken: ({ sink, from, epoch }) => {
            if (from === '') return;
            options.onInfo?.(
              `shipping: this instance (${leases.holder}) delivers to sink ${sink} now, taken over from ${from} (epoch ${epoch})`,
            );
          },
        });
  const leaseMargin = Math.min(MAX_LEASE_MARGIN_MS, leases.leaseMs / 10);

  const ingest = (): Promise<void> => {
    ingesting ??= (async () => {
      try {
        if (options.audit === 'store') await ingestAuditTable(db, now, shipFrom);
        else await ingestAuditLog(db, options.audit.file, now, shipFrom);
        await ingestEndedRuns(db, now, shipFrom);
      } catch (error) {
        warn(`shipping: could not spool new records: ${(error as Error).message}`);
      } finally {
        ingesting = undefined;
      }
    })();
    return ingesting;
  };

  /**
   * Delivers batches to one sink until it is caught up, fails, or the shipper closes — when this
   * instance holds the sink's lease; otherwise another instance delivers and this pass is empty.
   */
  const drain = async (sink: ShippingSink): Promise<void> => {
    const sinkState = state.get(sink.name) ?? { failures: 0, retryAt: 0 };
    if (Date.now() < sinkState.retryAt) return;
    let lease = await leases.hold(sink.name);
    if (lease === undefined) return;
    // Read after taking the lease: the previous holder's last cursor commit is visible.
    let cursor = await readCursor(db, sink.name);
    while (!closed) {
      const { records, last } = await readSpool(db, cursor, options.batchSize, sink.kinds);
      if (last === undefined) break;
      if (records.length > 0 && lease.remainingMs() < options.timeoutMs + leaseMargin) {
        // A delivery starts only when the lease outlasts its timeout: it is over (delivered or
        // aborted) before another instance may take the sink.
        lease = await leases.hold(sink.name);
        if (lease === undefined) return;
      }
      try {
        if (records.length > 0) await sink.deliver(records, AbortSignal.timeout(options.timeoutMs));
      } catch (error) {
        sinkState.failures++;
        sinkState.retryAt =
          Date.now() + Math.min(MAX_BACKOFF_MS, options.intervalMs * 2 ** sinkState.failures);
        metrics?.shippedRecords.inc({ sink: sink.name, outcome: 'failed' }, records.length);
        if (sinkState.failures === 1 || sinkState.failures % 10 === 0) {
          warn(
            `shipping: sink ${sink.name} failed (${(error as Error).message}); ${records.length}+ record(s) stay spooled and are retried`,
          );
        }
        return;
      }
      const renewed = await leases.commit(sink.name, lease, last, now);
      if (renewed === undefined) {
        // This instance stalled past its lease and another took the sink over: that one sends
        // this batch again (at-least-once) and goes on from the cursor it found.
        warn(
          `shipping: sink ${sink.name}: the lease was taken over by another instance during a delivery; it delivers from now on`,
        );
        return;
      }
      lease = renewed;
      cursor = last;
      if (sinkState.failures > 0) warn(`shipping: sink ${sink.name} recovered`);
      sinkState.failures = 0;
      sinkState.retryAt = 0;
      if (records.length > 0) {
        metrics?.shippedRecords.inc({ sink: sink.name, outcome: 'delivered' }, records.length);
      }
    }
  };

  let pruning: Promise<PruneResult> | undefined;
  const prune = (): Promise<PruneResult> => {
    pruning ??= pruneSpool(db, {
      sinks: sinks.map((sink) => sink.name),
      retentionMs,
      now: now(),
    }).finally(() => {
      pruning = undefined;
    });
    return pruning;
  };

  const kick = (): void => {
    for (const sink of sinks) {
      if (loops.has(sink.name)) continue;
      const loop = drain(sink)
        .catch((error: unknown) => warn(`shipping: sink ${sink.name}: ${(error as Error).message}`))
        .finally(() => loops.delete(sink.name));
      loops.set(sink.name, loop);
    }
  };

  const runOnce = async (): Promise<void> => {
    await ingest();
    kick();
    await Promise.all(loops.values());
  };

  const timer = setInterval(() => {
    if (closed) return;
    void ingest().then(kick);
  }, options.intervalMs);
  timer.unref();
  const pruneTimer = setInterval(() => {
    if (closed) return;
    prune().catch((error: unknown) =>
      warn(`shipping: could not prune the spool: ${(error as Error).message}`),
    );
  }, options.pruneIntervalMs ?? 60_000);
  pruneTimer.unref();
  void ingest().then(kick);

  return {
    runOnce,
    prune,
    async close() {
      if (closed) return;
      clearInterval(timer);
      clearInterval(pruneTimer);
      // One last pass picks up the records of runs that ended while draining; a sink that does
      // not answer keeps its records for the next start, after at most two timeouts.
      await ingest();
      kick();
      let grace: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all(loops.values()),
        new Promise((resolve) => {
          grace = setTimeout(resolve, options.timeoutMs);
        }),
      ]);
      clearTimeout(grace);
      closed = true;
      await Promise.all(loops.values());
      // The next instance's pass takes the sinks over at once, not after the lease.
      await leases.release(sinks.map((sink) => sink.name)).catch(() => undefined);
      await pruning?.catch(() => undefined);
      await Promise.all(sinks.map((sink) => sink.close().catch(() => undefined)));
    },
  };
}
