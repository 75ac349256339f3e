/**
 * The shipper: every `interval` it spools what is new (audit records, ended runs; spool.ts) and
 * lets each sink catch up from its cursor. Each sink has a loop of its own, so a sink that is
 * down or never answers holds back nobody but itself: a delivery is bounded by `timeout`, a
 * failed one is retried with a back-off (up to 30 s), and runs never wait for any of it — the
 * run path does not know the shipper exists; it reads the store and the audit log after the
 * fact.
 */
import type { Kysely } from 'kysely';
import type { ServerMetrics } from '../metrics.js';
import type { StoreDatabase } from '../store/schema.js';
import type { ShippingSink } from './sinks.js';
import { ingestAuditLog, ingestEndedRuns, readCursor, readSpool, writeCursor } from './spool.js';

/** Options of {@link createShipper}. */
export interface ShipperOptions {
  db: Kysely<StoreDatabase>;
  /** The audit log the server's runs write (JSON lines). */
  auditLogPath: string;
  sinks: readonly ShippingSink[];
  intervalMs: number;
  timeoutMs: number;
  batchSize: number;
  metrics?: ServerMetrics;
  now?: () => Date;
  onWarning?: (message: string) => void;
}

/** A running shipper. */
export interface Shipper {
  /** Spools and delivers now (what the timer does); resolves when this pass is done. */
  runOnce(): Promise<void>;
  /** Stops the timer, lets running deliveries end (bounded by the timeout), closes the sinks. */
  close(): Promise<void>;
}

const MAX_BACKOFF_MS = 30_000;

/** Creates and starts the shipper. */
export function createShipper(options: ShipperOptions): Shipper {
  const { db, sinks, metrics } = options;
  const now = options.now ?? (() => new Date());
  const warn = options.onWarning ?? (() => {});
  let closed = false;
  let ingesting: Promise<void> | undefined;
  const loops = new Map<string, Promise<void>>();
  const state = new Map(sinks.map((sink) => [sink.name, { failures: 0, retryAt: 0 }]));

  const ingest = (): Promise<void> => {
    ingesting ??= (async () => {
      try {
        await ingestAuditLog(db, options.auditLogPath, now);
        await ingestEndedRuns(db, now);
      } catch (error) {
        warn(`shipping: could not spool new records: ${(error as Error).message}`);
      } finally {
        ingesting = undefined;
      }
    })();
    return ingesting;
  };

  /** Delivers batches to one sink until it is caught up, fails, or the shipper closes. */
  const drain = async (sink: ShippingSink): Promise<void> => {
    const sinkState = state.get(sink.name) ?? { failures: 0, retryAt: 0 };
    if (Date.now() < sinkState.retryAt) return;
    let cursor = await readCursor(db, sink.name);
    while (!closed) {
      const records = await readSpool(db, cursor, options.batchSize, sink.kinds);
      const last = records.at(-1);
      if (last === undefined) break;
      try {
        await sink.deliver(records, AbortSignal.timeout(options.timeoutMs));
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
      await writeCursor(db, sink.name, last.seq, now);
      cursor = last.seq;
      if (sinkState.failures > 0) warn(`shipping: sink ${sink.name} recovered`);
      sinkState.failures = 0;
      sinkState.retryAt = 0;
      metrics?.shippedRecords.inc({ sink: sink.name, outcome: 'delivered' }, records.length);
    }
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
  void ingest().then(kick);

  return {
    runOnce,
    async close() {
      if (closed) return;
      clearInterval(timer);
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
      await Promise.all(sinks.map((sink) => sink.close().catch(() => undefined)));
    },
  };
}
