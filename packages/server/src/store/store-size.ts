/**
 * The size of the run store, for `rune_store_size_bytes` (read at each scrape).
 *
 * - SQLite: the bytes of the store file.
 * - PostgreSQL: the sum of `pg_total_relation_size` (heap, indexes, TOAST, free-space and
 *   visibility maps) over the tables of the connection's schema (`current_schema()`, the store's
 *   tables and Kysely's migration tables). Not `pg_database_size`: a database may hold other
 *   applications' schemas, and RUNE reports what RUNE stores. Rows deleted by pruning count until
 *   autovacuum makes the space reusable; the figure does not shrink until a `VACUUM FULL`.
 */
import { sql } from 'kysely';
import { Gauge } from 'prom-client';
import type { ServerMetrics } from '../metrics.js';
import type { RunStore } from './run-store.js';

/** Bytes the store occupies (see the module comment for what each engine counts). */
export async function storeSizeBytes(store: RunStore): Promise<number> {
  if (store.engine === 'sqlite') return store.sizeBytes();
  const result = await sql<{ bytes: string | number | null }>`
    select coalesce(sum(pg_total_relation_size(c.oid)), 0) as bytes
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = current_schema() and c.relkind in ('r', 'p')`.execute(store.db);
  return Number(result.rows[0]?.bytes ?? 0);
}

/**
 * Registers `rune_store_size_bytes` on the server's registry. A scrape while the database is
 * away keeps the last value rather than failing the whole `/metrics` answer.
 */
export function registerStoreSizeMetric(metrics: ServerMetrics, store: RunStore): Gauge {
  let last = 0;
  return new Gauge({
    name: 'rune_store_size_bytes',
    help: 'Bytes of the run store: the SQLite file, or the PostgreSQL tables of the store schema (pg_total_relation_size: data, indexes, TOAST).',
    registers: [metrics.registry],
    async collect() {
      last = await storeSizeBytes(store).catch(() => last);
      this.set(last);
    },
  });
}
