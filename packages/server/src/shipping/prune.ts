/**
 * Pruning of the shipping spool. A record is deleted once (a) every configured sink's cursor has
 * passed it and (b) it was spooled more than `retention` ago. A sink without a cursor (it never
 * delivered) holds everything back, so nothing a configured sink has not delivered is ever
 * deleted. A cursor whose sink is no longer configured is not counted — a removed sink does not
 * pin the spool — and is itself deleted once it has not moved for `retention`.
 *
 * One more bound: the runs ingester re-reads every ended run from its watermark (the oldest run
 * still open) on each pass, recognising those already spooled by their `record_id`. A record of
 * such a run must stay, or it would be spooled, and shipped, again: nothing spooled after the
 * oldest run at or above the watermark was created (less a margin for clocks) is pruned while it
 * is open. Audit records have no such bound (their reader only moves forward).
 *
 * Deletes go in batches (`batchSize` rows each, at most `maxBatches` per pass), so a pass over a
 * large backlog never holds the store for long; the next pass continues.
 */
import type { Kysely } from 'kysely';
import type { StoreDatabase } from '../store/schema.js';

/** Options of {@link pruneSpool}. */
export interface PruneSpoolOptions {
  /** The names of the sinks configured now. */
  sinks: readonly string[];
  retentionMs: number;
  now: Date;
  batchSize?: number;
  maxBatches?: number;
}

/** What one pass did. */
export interface PruneResult {
  /** Records deleted. */
  deleted: number;
  /** Cursors of sinks no longer configured that were dropped. */
  droppedCursors: number;
  /** Whether the pass stopped at `maxBatches` with more to delete. */
  more: boolean;
}

/** One pruning pass (see the module comment for the rule). */
export async function pruneSpool(
  db: Kysely<StoreDatabase>,
  options: PruneSpoolOptions,
): Promise<PruneResult> {
  const batchSize = options.batchSize ?? 500;
  const maxBatches = options.maxBatches ?? 10;
  const retentionCutoff = new Date(options.now.getTime() - options.retentionMs).toISOString();
  const result: PruneResult = { deleted: 0, droppedCursors: 0, more: false };
  if (options.sinks.length === 0) return result;
  const cursors = await db
    .selectFrom('shipping_cursors')
    .select(['sink', 'last_seq', 'updated_at'])
    .execute();
  const configured = new Set(options.sinks);
  const stale = cursors
    .filter((cursor) => !configured.has(cursor.sink) && cursor.updated_at < retentionCutoff)
    .map((cursor) => cursor.sink);
  if (stale.length > 0) {
    const dropped = await db.deleteFrom('shipping_cursors').where('sink', 'in', stale).execute();
    result.droppedCursors = dropped.reduce((sum, row) => sum + Number(row.numDeletedRows), 0);
  }
  const delivered = new Map(
    cursors
      .filter((cursor) => configured.has(cursor.sink))
      .map((cursor) => [cursor.sink, Number(cursor.last_seq)]),
  );
  if (delivered.size < configured.size) return result; // a sink that never delivered
  const bound = Math.min(...delivered.values());
  const runCutoff = await rescanCutoff(db, retentionCutoff);
  for (let batch = 0; batch < maxBatches; batch++) {
    const rows = await db
      .selectFrom('shipping_outbox')
      .select('seq')
      .where('seq', '<=', bound)
      .where('created_at', '<', retentionCutoff)
      .where((eb) => eb.or([eb('kind', '!=', 'run'), eb('created_at', '<', runCutoff)]))
      .orderBy('seq')
      .limit(batchSize)
      .execute();
    const last = rows.at(-1);
    if (last === undefined) return result;
    const deleted = await db
      .deleteFrom('shipping_outbox')
      .where('seq', '<=', Number(last.seq))
      .where('seq', '<=', bound)
      .where('created_at', '<', retentionCutoff)
      .where((eb) => eb.or([eb('kind', '!=', 'run'), eb('created_at', '<', runCutoff)]))
      .executeTakeFirst();
    result.deleted += Number(deleted.numDeletedRows);
    if (rows.length < batchSize) return result;
  }
  result.more = true;
  return result;
}

/** Clocks of several instances may differ by this much (records are stamped by each). */
const CLOCK_MARGIN_MS = 5 * 60 * 1000;

/** The retention cut-off, moved back before the runs the runs ingester still re-reads. */
async function rescanCutoff(db: Kysely<StoreDatabase>, retentionCutoff: string): Promise<string> {
  const source = await db
    .selectFrom('shipping_sources')
    .select('position')
    .where('source', '=', 'runs')
    .executeTakeFirst();
  if (source === undefined) return retentionCutoff;
  const { watermark } = JSON.parse(source.position) as { watermark: number };
  const oldest = await db
    .selectFrom('runs')
    .select((eb) => eb.fn.min('created_at').as('created_at'))
    .where('position', '>=', watermark)
    .executeTakeFirst();
  if (oldest?.created_at === null || oldest?.created_at === undefined) return retentionCutoff;
  const rescanned = new Date(Date.parse(oldest.created_at) - CLOCK_MARGIN_MS).toISOString();
  return rescanned < retentionCutoff ? rescanned : retentionCutoff;
}
