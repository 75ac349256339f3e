/**
 * Messages between the store's SQLite worker thread (`worker.ts`) and its Kysely driver
 * (`dialect.ts`). Plain data only: everything crosses `postMessage` by structured clone.
 */
import type { HeapReclaim } from '@rune/core/memory';
import type { StoreOperationTiming } from './probe.js';

/** A value node-sqlite3-wasm binds. */
export type WorkerBindValue = number | bigint | string | Uint8Array | null | boolean;

/** What the worker is started with (`workerData`). */
export interface WorkerStart {
  path: string;
  staleLockWaitMs?: number;
}

/** Main thread → worker: the requests of one turn, in order, in one message. */
export type WorkerMessage = WorkerRequest[];

/** One request to the worker. */
export type WorkerRequest =
  | {
      op: 'query';
      id: number;
      /** The Kysely connection the statement belongs to (a transaction pins one). */
      conn: number;
      sql: string;
      params: WorkerBindValue[];
    }
  | {
      /**
       * A whole store operation: its statements run in order inside one savepoint of the
       * worker's group commit, answered together after that group's COMMIT (one message, one
       * wake-up of the worker, instead of one round trip per statement).
       */
      op: 'operation';
      id: number;
      conn: number;
      statements: WorkerStatement[];
    }
  | { op: 'close'; id: number }
  /** One full garbage collection of the worker's heap now (the server is idle), answered at once. */
  | { op: 'reclaim'; id: number };

/** One compiled statement of an operation. */
export interface WorkerStatement {
  sql: string;
  params: WorkerBindValue[];
  /**
   * A guard (e.g. "this idempotency key exists"): when it returns rows, the operation stops
   * there and is undone (ROLLBACK TO its savepoint); the rows read so far are answered.
   */
  stopIfRows?: boolean;
}

/** What one statement of an operation gave. */
export interface WorkerStatementResult {
  rows?: Record<string, unknown>[];
  changes?: number;
  lastInsertRowid?: number | bigint;
}

/** An error as it crosses the thread boundary (name and message kept, as SQLite gave them). */
export interface WorkerError {
  name: string;
  message: string;
  /** A RuneError's EPS code (INVALID_CONFIG when the file cannot be opened). */
  code?: string;
  details?: Record<string, unknown>;
}

/** Worker → main thread: the replies to one message (or one notice), in order. */
export type WorkerReplies = WorkerReply[];

/** One reply of the worker. */
export type WorkerReply =
  | { op: 'ready' }
  | { op: 'open-failed'; error: WorkerError }
  | { op: 'warning'; message: string }
  | {
      op: 'result';
      id: number;
      rows?: Record<string, unknown>[];
      changes?: number;
      lastInsertRowid?: number | bigint;
    }
  | {
      op: 'operation-result';
      id: number;
      results: WorkerStatementResult[];
      /** True when a guard returned rows: nothing of the operation was kept. */
      stopped: boolean;
      /** The benchmark probe's moments (probe.ts); only when it is on. */
      timing?: StoreOperationTiming;
    }
  | { op: 'error'; id: number; error: WorkerError }
  | { op: 'reclaimed'; id: number; reclaimed: HeapReclaim };
