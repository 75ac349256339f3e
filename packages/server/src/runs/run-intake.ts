/**
 * The run intake (`<store>.run-intake`, the embedded store only): a dry run submitted without an
 * Idempotency-Key is answered once its audit records and its row are durable — the audit log's
 * `fdatasync` and the intake's (store/intake.ts), side by side — and its row reaches SQLite right
 * after, off the answer's path.
 *
 * Why: measured with the submit probe (submit-phases.ts, bench/README.md), a dry run's answer
 * waited for two durable stages one after the other: the audit batch, then the SQLite worker's
 * queue and a group COMMIT (four fsyncs, a lock directory made and removed), which under load was
 * the larger part of its p99. A dry run changes nothing on any node, so what its answer owes the
 * client is that the run and its records exist and stay: the intake gives that with one write,
 * made while the audit log makes its own.
 *
 * What keeps it correct:
 * - **Nothing acknowledged is lost**: the answer waits for the intake's `fdatasync` and the audit
 *   log's; the next start stores every row of the intake the store lacks (by id), before
 *   anything is served.
 * - **The store never holds a run the audit log lacks**: the insert is handed to the store only
 *   after the audit records are durable, and the replay stores only rows whose `dry-run` audit
 *   record exists (a crash between the two writes left a row that was never answered).
 * - **Reads see the run at once**: the insert is handed to the store's worker before the answer
 *   is written. The worker runs statements in the order they were sent, and answers a read that
 *   follows a write only after that write's COMMIT, so a read sent after the answer (the client's
 *   `GET /v1/runs/{id}`, a listing, the event stream) finds the run.
 * - **No Idempotency-Key**: a key's uniqueness is decided by the store's guard inside the insert;
 *   answering before the insert could answer two runs for one key. Those submissions wait for the
 *   store as before, and so does any submission when the intake is full or cannot be written, or
 *   when {@link MAX_INSERTS_IN_FLIGHT} admitted rows are not in the store yet (backpressure).
 * - **A failed insert is kept**: the row stays owed in the intake, is retried every second while
 *   the server runs, and is replayed by the next start.
 */
import type { RunEvent } from '@rune/protocol';
import { RuneError } from '@rune/protocol';
import { type Intake, openIntake } from '../store/intake.js';
import type { NewRun, RunStore } from '../store/run-store.js';

/** A dry run made durable before the store has it: its row and its events. */
export interface IntakeRun {
  run: NewRun;
  events: RunEvent[];
}

/** The run intake of one embedded store. */
export interface RunIntake {
  /** The intake file. */
  readonly path: string;
  /**
   * Makes `entry` durable (every entry of one turn of the event loop shares one write and one
   * `fdatasync`) and resolves true; then call {@link RunIntake.store} or {@link RunIntake.drop}.
   * Resolves false when the intake cannot take it (full, unwritable, closed): the caller writes
   * the store itself.
   */
  write(entry: IntakeRun): Promise<boolean>;
  /** Hands a written entry's insert to the store (once its audit records are durable). */
  store(entry: IntakeRun): void;
  /** A written entry whose submission failed (its audit records were not written): never stored. */
  drop(entry: IntakeRun): void;
  /**
   * Inserts what the previous process made durable and the store lacks, when `audited` (the
   * trace ids among those given that have a `dry-run` audit record) has it; the number inserted.
   */
  replay(audited: (entries: readonly IntakeRun[]) => Promise<ReadonlySet<string>>): Promise<number>;
  /** Waits for the inserts in flight, then closes the file (what is owed stays for the next start). */
  close(): Promise<void>;
}

/** How long a failed insert waits before it is tried again. */
const RETRY_MS = 1_000;

/**
 * Most dry runs admitted to the intake and not yet committed to the store. Beyond it, submissions wait for the
 * store as without the intake: answers must not outrun the store without bound (each insert
 * waiting in the worker's queue holds its row in memory).
 */
export const MAX_INSERTS_IN_FLIGHT = 256;

/** Opens (creating) the run intake `path` of `store`. INVALID_CONFIG when it is not one. */
export function openRunIntake(
  store: RunStore,
  path: string,
  warn: (message: string) => void,
): RunIntake {
  const intake: Intake<IntakeRun> = openIntake<IntakeRun>(
    { magic: 'RUNE-RUN-INTAKE v1', noun: 'run' },
    path,
  );
  let turn: Array<{ entry: IntakeRun; resolve: (admitted: boolean) => void }> = [];
  const inFlight = new Set<Promise<void>>();
  let retry: IntakeRun[] = [];
  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;
  let warned = false;
  /** Entries written (or being written) and not yet committed to the store or dropped. */
  let outstanding = 0;

  const insert = (entry: IntakeRun): void => {
    const done = store.insertRun(entry.run, [], undefined, entry.events).then(
      () => {
        outstanding--;
        intake.stored(1);
      },
      (error: unknown) => {
        warn(
          `run ${entry.run.id} is durable in the run intake and not yet in the store (retried): ${RuneError.from(error).message}`,
        );
        retry.push(entry);
        if (retryTimer === undefined && !closed) {
          retryTimer = setTimeout(() => {
            retryTimer = undefined;
            const again = retry;
            retry = [];
            for (const item of again) insert(item);
          }, RETRY_MS);
          retryTimer.unref();
        }
      },
    );
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  };

  /**
   * Writes what was admitted, one write and one `fdatasync` (on libuv's pool: the event loop goes
   * on) for everything admitted since the last one started: group commit, like the audit log's.
   */
  let writing = false;
  const flush = async (): Promise<void> => {
    if (writing) return;
    writing = true;
    try {
      while (turn.length > 0) {
        const batch = turn;
        turn = [];
        let appended = false;
        if (!closed || closing) {
          try {
            appended = await intake.appendOnPool(batch.map((item) => item.entry));
          } catch (error) {
            if (!warned) {
              warned = true;
              warn(
                `the run intake ${path} cannot be written; dry runs wait for the store: ${RuneError.from(error).message}`,
              );
            }
          }
        }
        if (!appended) outstanding -= batch.length;
        for (const item of batch) item.resolve(appended);
      }
    } finally {
      writing = false;
    }
  };
  let flushed: Promise<void> = Promise.resolve();
  let closing = false;

  return {
    path,

    write(entry) {
      if (closed || outstanding >= MAX_INSERTS_IN_FLIGHT) return Promise.resolve(false);
      outstanding++;
      return new Promise<boolean>((resolve) => {
        turn.push({ entry, resolve });
        // After the I/O callbacks of this turn: the audit writer answers many submissions in one
        // message, and they share this write.
        if (turn.length === 1 && !writing) {
          setImmediate(() => {
            flushed = flush();
          });
        }
      });
    },

    store(entry) {
      insert(entry);
    },

    drop() {
      outstanding--;
      intake.stored(1);
    },

    async replay(audited) {
      const missing: IntakeRun[] = [];
      for (const entry of intake.replay()) {
        if ((await store.getRun(entry.run.id)) === undefined) missing.push(entry);
      }
      const withAudit = missing.length === 0 ? new Set<string>() : await audited(missing);
      let inserted = 0;
      for (const entry of missing) {
        // No audit record: the previous process died between the two writes, before answering.
        if (!withAudit.has(entry.run.trace_id)) continue;
        await store.insertRun(entry.run, [], undefined, entry.events);
        inserted++;
      }
      intake.stored(intake.owed);
      intake.checkpoint();
      return inserted;
    },

    async close() {
      if (closed) return;
      closed = true;
      closing = true;
      clearTimeout(retryTimer);
      // What was admitted before the close is still written and stored.
      await flushed;
      if (turn.length > 0) await flush();
      closing = false;
      while (inFlight.size > 0) await Promise.all([...inFlight]);
      try {
        intake.checkpoint();
      } finally {
        intake.close();
      }
    },
  };
}
