/**
 * Durable `run_ended` notifications (`alert_run_notices`, migration 0012_workflow_approvals).
 *
 * When an alert's run (or workflow run) is started, one row per notifier that lists `run_ended`
 * is written with the decision, so what is owed survives a restart. A deliverer (every instance,
 * every second) posts the rows whose run has ended — also a run the restart itself marked
 * `interrupted` — and marks a row delivered only after a 2xx answer:
 *
 * - **At least once**: a failure (network, timeout, non-2xx) is retried with back-off, up to
 *   {@link MAX_ATTEMPTS} attempts (about two hours); a crash between the POST and the mark sends it
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

/** A notice is given up (logged) after this many failed attempts: about two hours of back-off. */
export const MAX_ATTEMPTS = 30;
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

/** An undelivered notice whose run ended (or vanished): what to post. */
export interface DueNotice extends AlertRunNoticesTable {
  /** The run's (or workflow run's) end, or `gone` when the run was pruned. */
  end: { status: string; exitCode: number | null } | 'gone';
}

/**
 * Undelivered notices due now whose run has ended (or is gone), oldest first. The run's state is
 * joined in, so notices of runs still running are not read at all: however many wait, they
 * never crowd out the ones that are due.
 */
export async function dueNotices(
  db: Kysely<StoreDatabase>,
  now: Date,
  limit = 200,
): Promise<DueNotice[]> {
  const at = now.toISOString();
  const runs = await db
    .selectFrom('alert_run_notices as n')
    .leftJoin('runs', 'runs.id', 'n.run_id')
    .selectAll('n')
    .select(['runs.status as run_status', 'runs.exit_code as run_exit_code'])
    .where('n.delivered_at', 'is', null)
    .where('n.next_at', '<=', at)
    .where('n.run_kind', '=', 'run')
    .where((eb) =>
      eb.or([eb('runs.status', 'is', null), eb('runs.status', 'in', [...ENDED_STATUSES])]),
    )
    .orderBy('n.created_at')
    .limit(limit)
    .execute();
  const workflows = await db
    .selectFrom('alert_run_notices as n')
    .leftJoin('workflow_runs', 'workflow_runs.id', 'n.run_id')
    .selectAll('n')
    .select(['workflow_runs.status as run_status', 'workflow_runs.record_json as record_json'])
    .where('n.delivered_at', 'is', null)
    .where('n.next_at', '<=', at)
    .where('n.run_kind', '=', 'workflow')
    .where((eb) =>
      eb.or([eb('workflow_runs.status', 'is', null), eb('workflow_runs.status', '!=', 'running')]),
    )
    .orderBy('n.created_at')
    .limit(limit)
    .execute();
  return [
    ...runs.map(({ run_status, run_exit_code, ...notice }) => ({
      ...notice,
      end:
        run_status === null
          ? ('gone' as const)
          : { status: run_status, exitCode: run_exit_code ?? null },
    })),
    ...workflows.map(({ run_status, record_json, ...notice }) => ({
      ...notice,
      end:
        run_status === null || record_json === null
          ? ('gone' as const)
          : {
              status: run_status,
              exitCode:
                (JSON.parse(record_json) as { exit_code?: number | null }).exit_code ?? null,
            },
    })),
  ].sort((a, b) => a.created_at.localeCompare(b.created_at));
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

/**
 * Deletes notices written before `before` (the server's retention): settled ones, and those of a
 * run that never ended within it.
 */
export async function pruneNotices(db: Kysely<StoreDatabase>, before: Date): Promise<number> {
  const result = await db
    .deleteFrom('alert_run_notices')
    .where('created_at', '<', before.toISOString())
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
