/**
 * Group commit for the run store: write transactions requested in the same turn of the event
 * loop share one database transaction, so one commit (one set of fsyncs) serves many writers.
 *
 * Why: a commit is durable when it returns (`synchronous = FULL`), and each costs several
 * fsyncs; with one transaction per request, fsyncs bounded the server at a few dozen writes a
 * second and queued every request behind them. Batching keeps "acknowledged = durable": a
 * caller's promise resolves only after the commit that contains its writes returned.
 *
 * Each job runs inside its own SAVEPOINT: a job that throws is rolled back alone and rejects
 * alone, the others still commit. Jobs run in the order they were submitted, within a batch and
 * across batches, so the events of one run stay in order. Only portable SQL (SAVEPOINT, RELEASE,
 * ROLLBACK TO) through Kysely's controlled transactions: SQLite and PostgreSQL alike.
 */
import type { Kysely, Transaction } from 'kysely';
import type { StoreDatabase } from './schema.js';

/** Most jobs in one transaction (a bound on how long one commit holds the database). */
export const MAX_WRITE_BATCH = 256;

/** Runs write jobs in shared transactions. */
export interface WriteBatcher {
  /** Runs `work` in the next batch's transaction; resolves after that transaction committed. */
  run<T>(work: (trx: Transaction<StoreDatabase>) => Promise<T>): Promise<T>;
}

interface Job {
  work: (trx: Transaction<StoreDatabase>) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** A batcher over `db`; every write of the store that must be durable goes through one. */
export function createWriteBatcher(db: Kysely<StoreDatabase>): WriteBatcher {
  let pending: Job[] = [];
  let flushing = false;
  let scheduled = false;

  const schedule = (): void => {
    if (scheduled || flushing) return;
    scheduled = true;
    // setImmediate: after the I/O callbacks of this turn, so requests parsed together batch.
    setImmediate(() => {
      scheduled = false;
      void flush();
    });
  };

  const flush = async (): Promise<void> => {
    flushing = true;
    const jobs = pending.slice(0, MAX_WRITE_BATCH);
    pending = pending.slice(jobs.length);
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      const trx = await db.startTransaction().execute();
      try {
        for (const job of jobs) {
          const savepoint = await trx.savepoint('rune_job').execute();
          try {
            const value = await job.work(savepoint);
            await savepoint.releaseSavepoint('rune_job').execute();
            outcomes.push({ ok: true, value });
          } catch (error) {
            await savepoint.rollbackToSavepoint('rune_job').execute();
            await savepoint.releaseSavepoint('rune_job').execute();
            outcomes.push({ ok: false, error });
          }
        }
        await trx.commit().execute();
      } catch (error) {
        await trx
          .rollback()
          .execute()
          .catch(() => undefined);
        throw error;
      }
      jobs.forEach((job, index) => {
        const outcome = outcomes[index]!;
        if (outcome.ok) job.resolve(outcome.value);
        else job.reject(outcome.error);
      });
    } catch (error) {
      // The transaction itself failed (begin, a savepoint or the commit): nothing of it stayed.
      for (const job of jobs) job.reject(error);
    } finally {
      flushing = false;
      if (pending.length > 0) schedule();
    }
  };

  return {
    run<T>(work: (trx: Transaction<StoreDatabase>) => Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        pending.push({ work, resolve: resolve as (value: unknown) => void, reject });
        schedule();
      });
    },
  };
}
