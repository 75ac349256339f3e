/**
 * The store's SQLite worker thread: it owns the node-sqlite3-wasm connection, so SQLite's work
 * and its synchronous fsyncs (the VFS calls `fsyncSync`) block this thread, not the server's
 * event loop, which keeps parsing requests and answering while a commit is being synced.
 *
 * One connection, several Kysely "connections": every statement names the connection it came
 * from. A BEGIN pins the database to that connection until its transaction ends; statements of
 * other connections that arrive meanwhile wait here, in arrival order, and run after the COMMIT
 * or ROLLBACK — so nothing runs inside (or sees) another caller's open transaction, which is what
 * Kysely's connection mutex guaranteed on one thread. Outside transactions, the reads of one turn
 * of this thread share a read transaction (`adapt` in sqlite-dialect.ts, unchanged).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RuneError } from '@rune/protocol';
import type { SqliteDatabase } from 'kysely';
import { adapt, openSqliteConnection, READER, type SqliteConnection } from '../sqlite-dialect.js';
import type {
  WorkerError,
  WorkerMessage,
  WorkerReply,
  WorkerRequest,
  WorkerStart,
} from './protocol.js';

const port = parentPort;
if (port === null) throw new Error('the SQLite worker runs only as a worker thread');
const start = workerData as WorkerStart;
// Replies are collected while a message is handled and posted together (one wake-up of the
// event loop for all of them); notices outside a message go at once.
let outbox: WorkerReply[] | undefined;
const send = (reply: WorkerReply): void => {
  if (outbox === undefined) port.postMessage([reply]);
  else outbox.push(reply);
};

function toWorkerError(error: unknown): WorkerError {
  if (RuneError.is(error)) {
    return {
      name: error.name,
      message: error.message,
      code: error.code,
      ...(error.details === undefined ? {} : { details: { ...error.details } }),
    };
  }
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'Error', message: String(error) };
}

let raw: SqliteConnection;
let db: SqliteDatabase;
try {
  raw = openSqliteConnection(start.path, {
    ...(start.staleLockWaitMs === undefined ? {} : { staleLockWaitMs: start.staleLockWaitMs }),
    onWarning: (message) => send({ op: 'warning', message }),
  });
  db = adapt(raw);
  send({ op: 'ready' });
} catch (error) {
  send({ op: 'open-failed', error: toWorkerError(error) });
  port.close();
  process.exit(0);
}

/** The connection whose explicit transaction is open, if any. */
let owner: number | undefined;
/** Statements of other connections that arrived while `owner` held a transaction. */
let waiting: Array<Extract<WorkerRequest, { op: 'query' }>> = [];
const BEGIN = /^\s*begin\b/i;

function execute(request: Extract<WorkerRequest, { op: 'query' }>): void {
  const { id, conn, sql, params } = request;
  if (owner === undefined && BEGIN.test(sql)) owner = conn;
  try {
    const statement = db.prepare(sql);
    if (READER.test(sql)) {
      send({ op: 'result', id, rows: statement.all(params) as Record<string, unknown>[] });
    } else {
      const { changes, lastInsertRowid } = statement.run(params);
      send({
        op: 'result',
        id,
        changes: Number(changes ?? 0),
        ...(lastInsertRowid === undefined ? {} : { lastInsertRowid }),
      });
    }
  } catch (error) {
    send({ op: 'error', id, error: toWorkerError(error) });
  }
  // The transaction ended (COMMIT, ROLLBACK, or SQLite rolled it back after an error): the
  // waiting statements of other connections may run now.
  if (owner === conn && !raw.inTransaction) owner = undefined;
}

function drain(): void {
  while (owner === undefined && waiting.length > 0) {
    const next = waiting[0]!;
    waiting = waiting.slice(1);
    execute(next);
  }
  // A BEGIN among them pinned the database again: keep the rest (of other connections) waiting,
  // but run the new owner's own statements, which can only be behind its BEGIN.
}

function handle(request: WorkerRequest): void {
  if (request.op === 'close') {
    try {
      db.close();
      send({ op: 'result', id: request.id, changes: 0 });
    } catch (error) {
      send({ op: 'error', id: request.id, error: toWorkerError(error) });
    }
    closed = true;
    return;
  }
  if (owner !== undefined && owner !== request.conn) {
    waiting.push(request);
    return;
  }
  execute(request);
  if (owner === undefined) drain();
}

let closed = false;
port.on('message', (message: WorkerMessage) => {
  outbox = [];
  for (const request of message) {
    if (!closed) handle(request);
  }
  const replies = outbox;
  outbox = undefined;
  if (replies.length > 0) port.postMessage(replies);
  if (closed) port.close();
});
