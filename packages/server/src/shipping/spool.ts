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
  hooks: SpoolHooks = {},
): Promise<number> {
  return db.transaction().execute(async (tx) => {
    let added = 0;
    // First statement: the counter row's lock is held to the commit, so instances insert one at
    // a time and `seq` order is commit order (0010_shipping_seq). Never reorder this below a read.
    const counter = await tx
      .updateTable('shipping_seq')
      .set((eb) => ({ last_seq: eb('last_seq', '+', 0) }))
      .where('name', '=', 'outbox')
      .returning('last_seq')
      .executeTakeFirstOrThrow();
    let seq = Number(counter.last_seq);
    const first = seq;
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
    if (seq !== first) {
      await tx
        .updateTable('shipping_seq')
        .set({ last_seq: seq })
        .where('name', '=', 'outbox')
        .execute();
    }
    await tx
      .insertInto('shipping_sources')
      .values({ source, position: JSON.stringify(position) })
      .onConflict((conflict) =>
        conflict.column('source').doUpdateSet({ position: JSON.stringify(position) }),
      )
      .execute();
    await hooks.beforeCommit?.();
    return added;
  });
}

/** Test hooks of the ingesters (a pause before the commit, to interleave two instances). */
export interface SpoolHooks {
  beforeCommit?: () => Promise<void>;
  /** Between the runs ingester's two reads of `runs` (where a run may end meanwhile). */
  betweenReads?: () => Promise<void>;
}

/** What a first start with shipping on spools (`[server.shipping] ship_from`). */
export type ShipFrom = 'start' | 'now';

/**
 * The position of `source`; on the first pass (no row yet) `initial` decides it and it is
 * stored at once, insert-if-absent, so two instances starting together agree on one.
 */
async function startPosition<T>(
  db: Kysely<StoreDatabase>,
  source: string,
  fallback: T,
  initial: () => Promise<T> | T,
): Promise<T> {
  const row = await db
    .selectFrom('shipping_sources')
    .select('position')
    .where('source', '=', source)
    .executeTakeFirst();
  if (row !== undefined) return JSON.parse(row.position) as T;
  const chosen = await initial();
  if (chosen === fallback) return fallback;
  await db
    .insertInto('shipping_sources')
    .values({ source, position: JSON.stringify(chosen) })
    .onConflict((conflict) => conflict.column('source').doNothing())
    .execute();
  return readPosition(db, source, chosen);
}

/** The offset just past the last complete line of a file (where "now" starts in an audit log). */
function endOfLastLine(path: string): number {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return 0;
  }
  try {
    const size = fstatSync(fd).size;
    let end = size;
    const chunk = Buffer.alloc(64 * 1024);
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const read = readSync(fd, chunk, 0, end - start, start);
      const newline = chunk.subarray(0, read).lastIndexOf(0x0a);
      if (newline >= 0) return start + newline + 1;
      end = start;
    }
    return 0;
  } finally {
    closeSync(fd);
  }
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
  shipFrom: ShipFrom = 'start',
  hooks: SpoolHooks = {},
): Promise<number> {
  const origin = { offset: 0 };
  const position = await startPosition(db, 'audit', origin, () =>
    shipFrom === 'now' ? { offset: endOfLastLine(path) } : origin,
  );
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
  return insertRecords(db, records, 'audit', { offset }, now().toISOString(), hooks);
}

/**
 * The audit chain of a shared PostgreSQL store (`audit_records`, src/cluster/database-audit.ts)
 * read in its own `seq` order. Appends are serialized by an advisory lock, so a chain `seq` is
 * committed only after every lower one: reading `seq > position` skips nothing.
 */
export async function ingestAuditTable(
  db: Kysely<StoreDatabase>,
  now: () => Date,
  shipFrom: ShipFrom = 'start',
  hooks: SpoolHooks = {},
): Promise<number> {
  const origin = { seq: 0 };
  const position = await startPosition(db, 'audit-db', origin, async () => {
    if (shipFrom === 'start') return origin;
    const top = await db
      .selectFrom('audit_records')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .executeTakeFirst();
    return { seq: Number(top?.seq ?? 0) };
  });
  const rows = await db
    .selectFrom('audit_records')
    .select(['seq', 'hash', 'record_json'])
    .where('seq', '>', position.seq)
    .orderBy('seq')
    .limit(1000)
    .execute();
  const last = rows.at(-1);
  if (last === undefined) return 0;
  const records = rows.map((row) => ({
    record_id: `audit:${row.hash}`,
    kind: 'audit' as const,
    body: JSON.parse(row.record_json) as unknown,
  }));
  return insertRecords(
    db,
    records,
    'audit-db',
    { seq: Number(last.seq) },
    now().toISOString(),
    hooks,
  );
}

/** Spools the run-result document of every run that ended since the last pass. */
export async function ingestEndedRuns(
  db: Kysely<StoreDatabase>,
  now: () => Date,
  shipFrom: ShipFrom = 'start',
  hooks: SpoolHooks = {},
): Promise<number> {
  const origin: { watermark: number; since?: string } = { watermark: 0 };
  // "now": runs that end from now on, including those already running (the watermark stays at
  // the lowest open run; `since` drops the ones above it that had ended before).
  const position = await startPosition(db, 'runs', origin, async () => {
    if (shipFrom === 'start') return origin;
    const open = await db
      .selectFrom('runs')
      .select((eb) => eb.fn.min('position').as('position'))
      .where('finished_at', 'is', null)
      .executeTakeFirst();
    const top = await db
      .selectFrom('runs')
      .select((eb) => eb.fn.max('position').as('position'))
      .executeTakeFirst();
    const watermark =
      open?.position === null || open === undefined
        ? Number(top?.position ?? -1) + 1
        : Number(open.position);
    return { watermark, since: now().toISOString() };
  });
  // Read the open runs BEFORE the ended ones: a run that ends between the two reads must not be
  // stepped over. Every run below `open` had ended at this point (an end is final), so the scan
  // below sees it; runs created after this point are above `top`.
  const bounds = await db
    .selectFrom('runs')
    .select((eb) => [
      eb.fn.min('position').filterWhere('finished_at', 'is', null).as('open'),
      eb.fn.max('position').as('top'),
    ])
    .where('position', '>=', position.watermark)
    .executeTakeFirst();
  const openPosition =
    bounds?.open === null || bounds === undefined ? undefined : Number(bounds.open);
  const top = bounds?.top === null || bounds === undefined ? undefined : Number(bounds.top);
  await hooks.betweenReads?.();
  let query = db
    .selectFrom('runs')
    .selectAll()
    .where('position', '>=', position.watermark)
    .where('finished_at', 'is not', null);
  if (position.since !== undefined) query = query.where('finished_at', '>=', position.since);
  const candidates = await query.orderBy('position').limit(500).execute();
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
  const last = candidates.at(-1)?.position;
  const limitReached = candidates.length === 500 && last !== undefined;
  const watermark = Math.max(
    position.watermark,
    Math.min(
      openPosition ?? (top === undefined ? position.watermark : top + 1),
      limitReached ? last + 1 : Number.POSITIVE_INFINITY,
    ),
  );
  if (records.length === 0 && watermark === position.watermark) return 0;
  const next = position.since === undefined ? { watermark } : { watermark, since: position.since };
  return insertRecords(db, records, 'runs', next, now().toISOString(), hooks);
}

/**
 * The next `limit` records after `cursor` (in `seq` order), and those of them a sink with `kinds`
 * takes. `last` is the highest `seq` read: the sink's cursor moves over records of other kinds
 * too, so a sink that takes only `run` records does not hold back pruning of `audit` ones.
 */
export async function readSpool(
  db: Kysely<StoreDatabase>,
  cursor: number,
  limit: number,
  kinds: readonly ShippedKind[],
): Promise<{ records: SpooledRecord[]; last: number | undefined }> {
  const rows = await db
    .selectFrom('shipping_outbox')
    .selectAll()
    .where('seq', '>', cursor)
    .orderBy('seq')
    .limit(limit)
    .execute();
  const last = rows.at(-1);
  return {
    last: last === undefined ? undefined : Number(last.seq),
    records: rows
      .filter((row) => kinds.includes(row.kind as ShippedKind))
      .map((row) => ({
        seq: Number(row.seq),
        record_id: row.record_id,
        kind: row.kind as ShippedKind,
        body: JSON.parse(row.body_json) as Record<string, unknown>,
        created_at: row.created_at,
      })),
  };
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
