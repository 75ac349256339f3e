/**
 * Messages between the store's SQLite worker thread (`worker.ts`) and its Kysely driver
 * (`dialect.ts`). Plain data only: everything crosses `postMessage` by structured clone.
 */

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
  | { op: 'close'; id: number };

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
  | { op: 'error'; id: number; error: WorkerError };
