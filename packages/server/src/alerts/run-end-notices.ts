/**
 * Durable `run_ended` notifications (`alert_run_notices`, migration 0012_workflow_approvals).
 *
 * When an alert's run (or workflow run) is started, one row per notifier that lists `run_ended`
 * is written with the decision, so what is owed survives a restart. A deliverer (every instance,
 * every second) posts the rows whose run has ended — also a run the restart itself marked
 * `interrupted` — and marks a row delivered only after a 2xx answer:
 *
 * - **At least once**: a failure (network, timeout, non-2xx) is retried with back-off until
 *   {@link GIVE_UP_MS} after the row was written; a crash between the POST and the mark sends it
 *   again. Every attempt carries the same `Idempotency-Key` (the row id), so a receiver can
 *   de-duplicate.
 * - **One deliverer at a time**: an instance takes a row with a lease (a conditional update), so
 *   two instances on one PostgreSQL store do not both post it while it is being delivered.
 * - **One notice per run and notifier**: the id is derived from them, so the same run reached by
 *   two alert records (a retry decided after a restart) is announced once.
 */
import { sha256Hex } from '@rune/transport';
import type { Kysely } from 'kysely';
import { ENDED_STATUSES } from '../runs/run-document.js';
import { isUniqueViolation } from '../store/constraint-errors.js';
import type { AlertRunNoticesTable, StoreDatabase } from '../store/schema.js';

/** A row is given up this long after it was written (logged). */
export const GIVE_UP_MS = 24 * 3_600_000;
const LEASE_MS = 30_000;
const MAX_BACKOFF_MS = 300_000;

/** What a notice announces: a run, or a workflow run. */
export type NoticeRunKind = 'run' | 'workflow';

/** The notice's id, also its `Idempotency-Key`: one per run (or workflow run) and notifier. */
export function noticeId(kind: NoticeRunKind, runId: string, notifier: string): string {
  return `rune-run-ended-${sha256Hex(`${kind}\n${runId}\n${notifier}`).slice(0, 40)}`;
}

/** Records the notices owed for a run; an existing one (the same run and notifier) stays. */
export async function recordRunEndNotices(
  db: Kysely<StoreDatabase>,
  notice: { alertId: string; kind: NoticeRunKind; runId: string; notifiers: readonly string[] },
  now: Date,
): Promise<void> {
  for (const notifier of notice.notifiers) {
    try {
      await db
        .insertInto('alert_run_notices')
        .values({
          id: noticeId(notice.kind, notice.runId, notifier),
          alert_id: notice.alertId,
          notifier,
          run_kind: notice.kind,
          run_id: notice.runId,
          created_at: now.toISOString(),
          attempts: 0,
          next_at: now.toISOString(),
          lease_until: null,
          delivered_at: null,
          last_error: null,
        })
        .execute();
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
    }
  }
}

/** Undelivered notices due now, oldest first. */
export function dueNotices(
  db: Kysely<StoreDatabase>,
  now: Date,
  limit = 200,
): Promise<AlertRunNoticesTable[]> {
  return db
    .selectFrom('alert_run_notices')
    .selectAll()
    .where('delivered_at', 'is', null)
    .where('next_at', '<=', now.toISOString())
    .orderBy('created_at')
    .limit(limit)
    .execute();
}

/** How the run of a notice stands: ended (with its status and exit code) or not yet. */
export async function runEnd(
  db: Kysely<StoreDatabase>,
  notice: Pick<AlertRunNoticesTable, 'run_kind' | 'run_id'>,
): Promise<{ status: string; exitCode: number | null } | 'running' | 'gone'> {
  if (notice.run_kind === 'workflow') {
    const row = await db
      .selectFrom('workflow_runs')
      .select(['status', 'record_json'])
      .where('id', '=', notice.run_id)
      .executeTakeFirst();
    if (row === undefined) return 'gone';
    if (row.status === 'running') return 'running';
    const record = JSON.parse(row.record_json) as { exit_code?: number | null };
    return { status: row.status, exitCode: record.exit_code ?? null };
  }
  const run = await db
    .selectFrom('runs')
    .select(['status', 'exit_code'])
    .where('id', '=', notice.run_id)
    .executeTakeFirst();
  if (run === undefined) return 'gone';
  if (!ENDED_STATUSES.has(run.status)) return 'running';
  return { status: run.status, exitCode: run.exit_code };
}

/** Takes a notice for delivery until the lease ends; false when another deliverer holds it. */
export async function leaseNotice(
  db: Kysely<StoreDatabase>,
  id: string,
  now: Date,
): Promise<boolean> {
  const result = await db
    .updateTable('alert_run_notices')
    .set({ lease_until: new Date(now.getTime() + LEASE_MS).toISOString() })
    .where('id', '=', id)
    .where('delivered_at', 'is', null)
    .where((eb) =>
      eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now.toISOString())]),
    )
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Marks a notice delivered (or given up, with why). */
export async function settleNotice(
  db: Kysely<StoreDatabase>,
  id: string,
  now: Date,
  error: string | null = null,
): Promise<void> {
  await db
    .updateTable('alert_run_notices')
    .set({ delivered_at: now.toISOString(), lease_until: null, last_error: error })
    .where('id', '=', id)
    .execute();
}

/** Records a failed attempt: the next one after an exponential back-off (1 s doubling, 5 min). */
export async function deferNotice(
  db: Kysely<StoreDatabase>,
  notice: Pick<AlertRunNoticesTable, 'id' | 'attempts'>,
  now: Date,
  error: string,
): Promise<void> {
  const attempts = notice.attempts + 1;
  const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(attempts - 1, 20));
  await db
    .updateTable('alert_run_notices')
    .set({
      attempts,
      next_at: new Date(now.getTime() + backoff).toISOString(),
      lease_until: null,
      last_error: error.slice(0, 500),
    })
    .where('id', '=', notice.id)
    .execute();
}

/** Deletes settled notices written before `before` (the server's retention). */
export async function pruneNotices(db: Kysely<StoreDatabase>, before: Date): Promise<number> {
  const result = await db
    .deleteFrom('alert_run_notices')
    .where('delivered_at', 'is not', null)
    .where('created_at', '<', before.toISOString())
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
