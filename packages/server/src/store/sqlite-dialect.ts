/**
 * The embedded store's SQLite engine: `node-sqlite3-wasm` (SQLite compiled to WebAssembly, with a
 * VFS over Node's `fs`), opened in the store's worker thread and reached through the Kysely dialect
 * in `sqlite-worker/`. Why this driver: it installs from the
 * npm registry alone on any Node >= 20 — better-sqlite3 downloads a prebuilt binary from GitHub or
 * compiles for minutes, `node:sqlite` needs Node 22 — and it writes a real file with real fsyncs.
 *
 * Everything SQLite-specific of the store lives in this module and `sqlite-worker/`, so the
 * PostgreSQL dialect sits beside it and the query layer stays one.
 *
 * Facts this adapter relies on (checked against node-sqlite3-wasm 0.8.60, SQLite 3.53):
 * - The VFS implements xSync with `fsyncSync`; it has no shared memory, so WAL is unavailable
 *   and the database stays in rollback-journal mode with `synchronous=FULL`: a commit is durable
 *   when it returns, and a process killed at any point leaves the last committed state. The
 *   journal mode is PERSIST (the `-journal` file stays and its header is zeroed at commit)
 *   rather than DELETE: creating and unlinking the journal at every commit cost two directory
 *   updates and a directory fsync each, the larger part of a commit under load.
 * - Its file lock is a directory `<db>.lock` made with `mkdir` and removed on unlock. A process
 *   killed inside a transaction leaves that directory behind and every later open would answer
 *   SQLITE_BUSY forever, so {@link openSqliteConnection} removes a lock that outlives a short wait
 *   (no transaction of RUNE holds it for more than milliseconds).
 * - Statements are not garbage-collected: each query here prepares, runs and finalizes at once.
 */
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { RuneError } from '@rune/protocol';
// Types only: this module is the store worker's, and loading Kysely's runtime there would add
// about 300 ms to every store open (the worker needs none of it).
import type { LogEvent, SqliteDatabase, SqliteStatement } from 'kysely';

// A CommonJS module whose exports Node's ESM loader cannot name; its types are ambient.
const sqlite = createRequire(import.meta.url)(
  'node-sqlite3-wasm',
) as typeof import('node-sqlite3-wasm');

/** How long an existing `<db>.lock` may be held by someone else before it is judged stale. */
export const STALE_LOCK_WAIT_MS = 2_000;

type BindValue = number | bigint | string | Uint8Array | null | boolean;

/** Kysely asks a statement whether it returns rows; these statements do. */
export const READER = /^\s*(select|with|pragma|values|explain)\b|\breturning\b/i;

/** Kysely's parameters as values node-sqlite3-wasm binds (undefined as NULL). */
export function toBindValues(parameters: ReadonlyArray<unknown>): BindValue[] {
  return parameters.map((value) => {
    if (value === undefined) return null;
    if (
      value === null ||
      typeof value === 'number' ||
      typeof value === 'bigint' ||
      typeof value === 'string' ||
      typeof value === 'boolean' ||
      value instanceof Uint8Array
    ) {
      return value;
    }
    throw new RuneError('INTERNAL_ERROR', `cannot bind a ${typeof value} to an SQLite parameter`);
  });
}

const SELECT = /^\s*select\b/i;
const BEGIN = /^\s*begin\b/i;
const END = /^\s*(commit|end|rollback)\s*(transaction)?\s*;?\s*$/i;

/**
 * The Kysely adapter. It also groups the reads of one event-loop turn: a SELECT outside a
 * transaction opens a read transaction that the next turn (setImmediate) ends, and further
 * SELECTs of the turn run inside it. Why: the VFS takes and drops its file lock (a `mkdir` and
 * an `rmdir`) around every statement outside a transaction, and under load those directory
 * operations cost more than the queries; a read transaction holds one SHARED lock for the
 * turn. Anything that is not a SELECT (a write, a pragma, a BEGIN) first ends the read
 * transaction and then runs exactly as before, so writes stay durable when they return.
 */
export function adapt(db: SqliteConnection): SqliteDatabase {
  let reading = false;
  let explicit = false;
  const endReads = (): void => {
    if (!reading) return;
    reading = false;
    try {
      db.exec('COMMIT');
    } catch {
      db.exec('ROLLBACK');
    }
  };
  const before = (sql: string): void => {
    if (explicit) {
      if (END.test(sql)) explicit = false;
      return;
    }
    if (SELECT.test(sql)) {
      if (!reading) {
        db.exec('BEGIN');
        reading = true;
        setImmediate(endReads);
      }
      return;
    }
    endReads();
    if (BEGIN.test(sql)) explicit = true;
  };
  return {
    close: () => {
      endReads();
      db.close();
    },
    prepare(sql: string): SqliteStatement {
      return {
        reader: READER.test(sql),
        all: (parameters) => {
          before(sql);
          return db.all(sql, toBindValues(parameters));
        },
        run: (parameters) => {
          before(sql);
          return db.run(sql, toBindValues(parameters));
        },
        *iterate(parameters) {
          before(sql);
          yield* db.all(sql, toBindValues(parameters));
        },
      };
    },
  };
}

/** Waits (synchronously, briefly) for a lock directory to go; removes it when it stays. */
function clearStaleLock(path: string, waitMs: number): boolean {
  const lock = `${path}.lock`;
  const deadline = Date.now() + waitMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (existsSync(lock)) {
    if (Date.now() >= deadline) {
      rmSync(lock, { recursive: true, force: true });
      return true;
    }
    Atomics.wait(pause, 0, 0, 50);
  }
  return false;
}

/** Options of opening the store's SQLite file (`openSqliteWorkerDatabase`). */
export interface OpenSqliteOptions {
  /** Wait this long for a held lock before removing it as stale (default {@link STALE_LOCK_WAIT_MS}). */
  staleLockWaitMs?: number;
  /** Receives a line when a stale lock was removed. */
  onWarning?: (message: string) => void;
  /** Kysely's query log (timings for the store latency metric). */
  log?: (event: LogEvent) => void;
}

/** An open node-sqlite3-wasm connection. */
export type SqliteConnection = InstanceType<typeof sqlite.Database>;

/**
 * Opens (creating) the SQLite file at `path` with durable settings: the raw connection, for
 * whoever owns it (the store's worker thread, see `sqlite-worker/`). Throws INVALID_CONFIG when
 * the file cannot be opened.
 */
export function openSqliteConnection(
  path: string,
  options: Pick<OpenSqliteOptions, 'staleLockWaitMs' | 'onWarning'> = {},
): SqliteConnection {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    if (clearStaleLock(path, options.staleLockWaitMs ?? STALE_LOCK_WAIT_MS)) {
      options.onWarning?.(`removed the stale SQLite lock ${path}.lock left by a killed process`);
    }
    const db = new sqlite.Database(path);
    // Durable commits in rollback-journal mode (WAL needs shared memory the VFS lacks); PERSIST
    // keeps the journal file between commits instead of creating and deleting it each time.
    db.exec('PRAGMA journal_mode = PERSIST');
    db.exec('PRAGMA synchronous = FULL');
    db.exec('PRAGMA foreign_keys = ON');
    db.exec('PRAGMA busy_timeout = 5000');
    return db;
  } catch (error) {
    throw new RuneError('INVALID_CONFIG', `cannot open the run store ${path}`, {
      cause: error,
      details: { path, key: 'server.store' },
    });
  }
}

/** Size in bytes of the store file (0 when absent), for metrics and the size-per-run figure. */
export function sqliteFileBytes(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
