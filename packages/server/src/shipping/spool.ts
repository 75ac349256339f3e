/**
 * The shipping spool, in the run store (migration 0006_shipping) rather than in a file of its
 * own: the store is already durable (fsynced commits), shared by every instance once it is
 * PostgreSQL, and a record's ingestion and its reader's new position commit in ONE transaction,
 * so a crash between the two cannot lose or double a record.
 *
 * Two ingesters fill `shipping_outbox`, both idempotent by `record_id`:
 * - **audit**: the audit log (JSON lines) is read from the byte offset where the last pass
 *   stopped; only complete lines count. `record_id` = `audit:<record hash>`.
 * - **run**: every ended run, as its run-result document (sensitive values already redacted in
 *   the store). A watermark (the lowest `position` of a run not yet ended) bounds the scan.
 *   `record_id` = `run:<run id>`.
 *
 * Each sink reads `seq > its cursor` in order and moves its cursor only after a delivery
 * succeeded: **at-least-once** per sink, with `record_id` as the de-duplication key a receiver
 * can use. After a clean stop or a sink outage nothing is re-sent (the cursor was committed with
 * the delivery); only a crash between a delivery and its cursor commit re-sends that one batch.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Kysely } from 'kysely';
import { runDocument } from '../runs/run-document.js';
import type { StoreDatabase } from '../store/schema.js';

/** The kinds of records shipped. */
export type ShippedKind = 'audit' | 'run';

/** One record of the outbox. */
export interface SpooledRecord {
  seq: number;
  record_id: string;
  kind: ShippedKind;
  body: Record<string, unknown>;
  created_at: string;
}

const READ_CHUNK = 1 << 20;

/** A position as stored: the audit offset, or the runs' watermark. */
async function readPosition<T>(db: Kysely<StoreDatabase>, source: string, fallback: T): Promise<T> {
  const row = await db
    .selectFrom('shipping_sources')
    .select('position')
    .where('source', '=', source)
    .executeTakeFirst();
  return row === undefined ? fallback : (JSON.parse(row.position) as T);
}

async function insertRecords(
  db: Kysely<StoreDatabase>,
  records: { record_id: string; kind: ShippedKind; body: unknown }[],
  source: string,
  position: unknown,
  now: string,
): Promise<number> {
  return db.transaction().execute(async (tx) => {
    let added = 0;
    const top = await tx
      .selectFrom('shipping_outbox')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .executeTakeFirst();
    let seq = Number(top?.seq ?? 0);
    for (const record of records) {
      const exists = await tx
        .selectFrom('shipping_outbox')
        .select('seq')
        .where('record_id', '=', record.record_id)
        .executeTakeFirst();
      if (exists !== undefined) continue;
      await tx
        .insertInto('shipping_outbox')
        .values({
          seq: ++seq,
          record_id: record.record_id,
          kind: record.kind,
          body_json: JSON.stringify(record.body),
          created_at: now,
        })
        .execute();
      added++;
    }
    await tx
      .insertInto('shipping_sources')
      .values({ source, position: JSON.stringify(position) })
      .onConflict((conflict) =>
        conflict.column('source').doUpdateSet({ position: JSON.stringify(position) }),
      )
      .execute();
    return added;
  });
}

/**
 * Reads the audit log from where the last pass stopped and spools every complete record.
 * Returns how many were added. A log shorter than the offset (replaced) is read from its start;
 * records already spooled are recognised by their hash.
 */
export async function ingestAuditLog(
  db: Kysely<StoreDatabase>,
  path: string,
  now: () => Date,
): Promise<number> {
  const position = await readPosition(db, 'audit', { offset: 0 });
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return 0; // No audit log yet: nothing was recorded.
  }
  let offset = position.offset;
  const records: { record_id: string; kind: ShippedKind; body: unknown }[] = [];
  try {
    const size = fstatSync(fd).size;
    if (size < offset) offset = 0;
    let pending = Buffer.alloc(0);
    let consumed = offset;
    while (offset < size) {
      const chunk = Buffer.alloc(Math.min(READ_CHUNK, size - offset));
      const read = readSync(fd, chunk, 0, chunk.length, offset);
      if (read <= 0) break;
      offset += read;
      pending = Buffer.concat([pending, chunk.subarray(0, read)]);
      for (;;) {
        const newline = pending.indexOf(0x0a);
        if (newline < 0) break;
        const line = pending.subarray(0, newline).toString('utf8').trim();
        pending = pending.subarray(newline + 1);
        consumed += newline + 1;
        if (line === '') continue;
        try {
          const record = JSON.parse(line) as { hash?: unknown };
          if (typeof record.hash !== 'string') continue;
          records.push({ record_id: `audit:${record.hash}`, kind: 'audit', body: record });
        } catch {
          // A torn or foreign line: `rune audit verify` reports it; it is not a record to ship.
        }
      }
      if (records.length >= 1000) break;
    }
    offset = consumed;
  } finally {
    closeSync(fd);
  }
  if (offset === position.offset && records.length === 0) return 0;
  return insertRecords(db, records, 'audit', { offset }, now().toISOString());
}

/** Spools the run-result document of every run that ended since the last pass. */
export async function ingestEndedRuns(db: Kysely<StoreDatabase>, now: () => Date): Promise<number> {
  const position = await readPosition(db, 'runs', { watermark: 0 });
  const candidates = await db
    .selectFrom('runs')
    .selectAll()
    .where('position', '>=', position.watermark)
    .where('finished_at', 'is not', null)
    .orderBy('position')
    .limit(500)
    .execute();
  const records: { record_id: string; kind: ShippedKind; body: unknown }[] = [];
  for (const run of candidates) {
    const nodes = await db
      .selectFrom('run_nodes')
      .selectAll()
      .where('run_id', '=', run.id)
      .orderBy('position')
      .execute();
    records.push({ record_id: `run:${run.id}`, kind: 'run', body: runDocument(run, nodes) });
  }
  const open = await db
    .selectFrom('runs')
    .select((eb) => eb.fn.min('position').as('position'))
    .where('position', '>=', position.watermark)
    .where('finished_at', 'is', null)
    .executeTakeFirst();
  const last = candidates.at(-1)?.position;
  const limitReached = candidates.length === 500 && last !== undefined;
  const openPosition =
    open?.position === null || open === undefined ? undefined : Number(open.position);
  const watermark = limitReached
    ? Math.min(last + 1, openPosition ?? Number.POSITIVE_INFINITY)
    : (openPosition ?? (last === undefined ? position.watermark : last + 1));
  if (records.length === 0 && watermark === position.watermark) return 0;
  return insertRecords(db, records, 'runs', { watermark }, now().toISOString());
}

/** The next records after `cursor` for a sink (in `seq` order), filtered by kind. */
export async function readSpool(
  db: Kysely<StoreDatabase>,
  cursor: number,
  limit: number,
  kinds: readonly ShippedKind[],
): Promise<SpooledRecord[]> {
  const rows = await db
    .selectFrom('shipping_outbox')
    .selectAll()
    .where('seq', '>', cursor)
    .where('kind', 'in', [...kinds])
    .orderBy('seq')
    .limit(limit)
    .execute();
  return rows.map((row) => ({
    seq: Number(row.seq),
    record_id: row.record_id,
    kind: row.kind as ShippedKind,
    body: JSON.parse(row.body_json) as Record<string, unknown>,
    created_at: row.created_at,
  }));
}

/** A sink's cursor (0 when it never delivered). */
export async function readCursor(db: Kysely<StoreDatabase>, sink: string): Promise<number> {
  const row = await db
    .selectFrom('shipping_cursors')
    .select('last_seq')
    .where('sink', '=', sink)
    .executeTakeFirst();
  return row === undefined ? 0 : Number(row.last_seq);
}

/** Moves a sink's cursor after a delivery. */
export async function writeCursor(
  db: Kysely<StoreDatabase>,
  sink: string,
  seq: number,
  now: () => Date,
): Promise<void> {
  const updatedAt = now().toISOString();
  await db
    .insertInto('shipping_cursors')
    .values({ sink, last_seq: seq, updated_at: updatedAt })
    .onConflict((conflict) =>
      conflict.column('sink').doUpdateSet({ last_seq: seq, updated_at: updatedAt }),
    )
    .execute();
}
