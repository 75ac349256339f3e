/**
 * The queries of the alert receivers over the store's `alerts` table (Kysely's query builder
 * only, so the same code serves SQLite and PostgreSQL).
 */
import type { Kysely, Selectable, Updateable } from 'kysely';
import { type OperationStatement, runOperation } from '../store/operation.js';
import type { AlertsTable, StoreDatabase } from '../store/schema.js';
import type { StoreOperationTiming } from '../store/sqlite-worker/probe.js';

/** An alert row as read. */
export type StoredAlert = Selectable<AlertsTable>;

/** The columns of an alert that its decision fills in, as they are when it is received. */
export const UNDECIDED_ALERT = {
  rule: null,
  group_key: null,
  action: null,
  node: null,
  outcome: 'received',
  reason: null,
  error_json: null,
  run_id: null,
  request_json: null,
  due_at: null,
  held_until: null,
  released_by: null,
  automatic: 0,
  decided_at: null,
} as const satisfies Partial<AlertsTable>;

/** Filters of {@link listAlerts}. */
export interface AlertFilter {
  receiver?: string;
  outcome?: string;
  rule?: string;
  node?: string;
  alertname?: string;
  fingerprint?: string;
  run_id?: string;
  since?: string;
  until?: string;
}

/**
 * Inserts received alerts atomically and durably: one store operation (on the embedded store one
 * message to its worker, committed with its group; on PostgreSQL one transaction).
 * `skipExisting`: a row whose id is stored already is left as it is (the intake's replay and
 * retries: a row may have been stored by the attempt that seemed to fail).
 */
export async function insertAlerts(
  db: Kysely<StoreDatabase>,
  rows: readonly AlertsTable[],
  options: { skipExisting?: boolean } = {},
): Promise<StoreOperationTiming | undefined> {
  if (rows.length === 0) return undefined;
  const statements: OperationStatement[] = [];
  // Bounded batches: SQLite limits the number of bound variables per statement.
  for (let index = 0; index < rows.length; index += 20) {
    statements.push({
      query: (options.skipExisting === true
        ? db
            .insertInto('alerts')
            .values(rows.slice(index, index + 20))
            .onConflict((conflict) => conflict.column('id').doNothing())
        : db.insertInto('alerts').values(rows.slice(index, index + 20))
      ).compile(),
    });
  }
  return (await runOperation(db, statements)).timing;
}

/** One alert. */
export async function getAlert(
  db: Kysely<StoreDatabase>,
  id: string,
): Promise<StoredAlert | undefined> {
  return db.selectFrom('alerts').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Updates one alert. */
export async function updateAlert(
  db: Kysely<StoreDatabase>,
  id: string,
  fields: Updateable<AlertsTable>,
): Promise<void> {
  await db.updateTable('alerts').set(fields).where('id', '=', id).execute();
}

/** Alerts with `outcome`, oldest first. */
export async function alertsWithOutcome(
  db: Kysely<StoreDatabase>,
  outcome: string,
  limit = 10_000,
): Promise<StoredAlert[]> {
  return db
    .selectFrom('alerts')
    .selectAll()
    .where('outcome', '=', outcome)
    .orderBy('received_at')
    .orderBy('id')
    .limit(limit)
    .execute();
}

/**
 * The open record of this firing episode that already stands for it (ran, pending, held or
 * released): a retry of the same alert is deduplicated against it.
 */
export async function findEpisode(
  db: Kysely<StoreDatabase>,
  receiver: string,
  fingerprint: string,
  startsAt: string,
  status: string,
  excludeId: string,
): Promise<StoredAlert | undefined> {
  return db
    .selectFrom('alerts')
    .selectAll()
    .where('receiver', '=', receiver)
    .where('fingerprint', '=', fingerprint)
    .where('starts_at', '=', startsAt)
    .where('closed', '=', 0)
    .where('status', '=', status)
    .where('outcome', 'in', ['ran', 'pending', 'held', 'released'])
    .where('id', '!=', excludeId)
    .orderBy('received_at')
    .limit(1)
    .executeTakeFirst();
}

/** The first receipt of an open episode without a start time (the generic receiver may omit it). */
export async function firstOpenReceipt(
  db: Kysely<StoreDatabase>,
  receiver: string,
  fingerprint: string,
): Promise<StoredAlert | undefined> {
  return db
    .selectFrom('alerts')
    .selectAll()
    .where('receiver', '=', receiver)
    .where('fingerprint', '=', fingerprint)
    .where('closed', '=', 0)
    .where('status', '=', 'firing')
    .orderBy('received_at')
    .limit(1)
    .executeTakeFirst();
}

/** Firing records of an episode that a resolved alert closes (all of the fingerprint). */
export async function openFiringRecords(
  db: Kysely<StoreDatabase>,
  receiver: string,
  fingerprint: string,
): Promise<StoredAlert[]> {
  return db
    .selectFrom('alerts')
    .selectAll()
    .where('receiver', '=', receiver)
    .where('fingerprint', '=', fingerprint)
    .where('closed', '=', 0)
    .where('status', '=', 'firing')
    .execute();
}

/** The group's last run (ran or released), by decision time. */
export async function lastGroupRun(
  db: Kysely<StoreDatabase>,
  group: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('alerts')
    .select('decided_at')
    .where('group_key', '=', group)
    .where('outcome', 'in', ['ran', 'released'])
    .orderBy('decided_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row?.decided_at ?? undefined;
}

/** Firing episodes (fingerprint + start) of the group decided at or after `since`. */
export async function groupEpisodesSince(
  db: Kysely<StoreDatabase>,
  group: string,
  since: string,
): Promise<Array<{ fingerprint: string; starts_at: string }>> {
  return db
    .selectFrom('alerts')
    .select(['fingerprint', 'starts_at'])
    .distinct()
    .where('group_key', '=', group)
    .where('status', '=', 'firing')
    .where('decided_at', '>=', since)
    .limit(100_000)
    .execute();
}

/** Automatic runs started at or after `since` (the storm breaker's count). */
export async function automaticRunsSince(
  db: Kysely<StoreDatabase>,
  since: string,
): Promise<number> {
  const row = await db
    .selectFrom('alerts')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('automatic', '=', 1)
    .where('decided_at', '>=', since)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** Alerts newest first, `limit` rows strictly before the cursor (received_at, id). */
export async function listAlerts(
  db: Kysely<StoreDatabase>,
  filter: AlertFilter,
  limit: number,
  cursor?: { receivedAt: string; id: string },
): Promise<StoredAlert[]> {
  let query = db.selectFrom('alerts').selectAll();
  for (const key of [
    'receiver',
    'outcome',
    'rule',
    'node',
    'alertname',
    'fingerprint',
    'run_id',
  ] as const) {
    const value = filter[key];
    if (value !== undefined) query = query.where(key, '=', value);
  }
  if (filter.since !== undefined) query = query.where('received_at', '>=', filter.since);
  if (filter.until !== undefined) query = query.where('received_at', '<', filter.until);
  if (cursor !== undefined) {
    query = query.where((eb) =>
      eb.or([
        eb('received_at', '<', cursor.receivedAt),
        eb.and([eb('received_at', '=', cursor.receivedAt), eb('id', '<', cursor.id)]),
      ]),
    );
  }
  return query.orderBy('received_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
}

/** Deletes decided alerts received before `before` (ISO); waiting ones stay. Returns how many. */
export async function pruneAlertsBefore(
  db: Kysely<StoreDatabase>,
  before: string,
): Promise<number> {
  const result = await db
    .deleteFrom('alerts')
    .where('received_at', '<', before)
    .where('outcome', 'not in', ['received', 'pending', 'held'])
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
