/**
 * The store latency metric from Kysely's query log: one observation per query, labelled with
 * the statement kind (never the SQL text or its parameters, which could carry request values).
 */
import type { LogEvent } from 'kysely';
import type { ServerMetrics } from '../metrics.js';

const KINDS: Readonly<Record<string, string>> = {
  SelectQueryNode: 'select',
  InsertQueryNode: 'insert',
  UpdateQueryNode: 'update',
  DeleteQueryNode: 'delete',
};

/** The `onQuery` callback of `openRunStore()` that feeds `rune_store_query_duration_seconds`. */
export function observeStoreQuery(metrics: ServerMetrics): (event: LogEvent) => void {
  return (event) => {
    metrics.storeQueryDuration.observe(
      {
        operation: KINDS[event.query.query.kind] ?? 'other',
        outcome: event.level === 'error' ? 'error' : 'ok',
      },
      event.queryDurationMillis / 1000,
    );
  };
}
