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
  WorkerBindValue,
  WorkerError,
  WorkerMessage,
  WorkerReply,
  WorkerRequest,
  WorkerStart,
} from './protocol.js';

if (parentPort === null) throw new Error('the SQLite worker runs only as a worker thread');
const port = parentPort;
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

/** Writes outside a transaction: they join this turn's implicit group (see `openGroup`). */
const DML = /^\s*(insert|update|delete|replace)\b/i;
/**
 * The replies held back until the implicit group commits. Autocommit writes of one turn (an
 * alert's outcome, a token's last use, ...) would each be a commit of their own, with its fsyncs
 * and lock cycle; here they share one transaction, each statement in its own savepoint (one that
 * fails is undone and answered alone), and nothing that ran inside the group — writes, and reads
 * that might have seen them — is answered before its COMMIT returned: acknowledged = durable.
 */
let group: WorkerReply[] | undefined;

function sendAll(replies: WorkerReply[]): void {
  if (outbox === undefined) {
    if (replies.length > 0) port.postMessage(replies);
  } else {
    outbox.push(...replies);
  }
}

function openGroup(): void {
  db.prepare('BEGIN').run([]);
  group = [];
  setImmediate(commitGroup);
}

function commitGroup(): void {
  const held = group;
  if (held === undefined) return;
  group = undefined;
  try {
    db.prepare('COMMIT').run([]);
    sendAll(held);
  } catch (error) {
    try {
      if (raw.inTransaction) db.prepare('ROLLBACK').run([]);
    } catch {
      // rolled back already
    }
    const failure = toWorkerError(error);
    sendAll(
      held.map((reply) => ({ op: 'error', id: (reply as { id: number }).id, error: failure })),
    );
  }
}

function run(sql: string, params: WorkerBindValue[], id: number): WorkerReply {
  const statement = db.prepare(sql);
  if (READER.test(sql)) {
    return { op: 'result', id, rows: statement.all(params) as Record<string, unknown>[] };
  }
  const { changes, lastInsertRowid } = statement.run(params);
  return {
    op: 'result',
    id,
    changes: Number(changes ?? 0),
    ...(lastInsertRowid === undefined ? {} : { lastInsertRowid }),
  };
}

function execute(request: Extract<WorkerRequest, { op: 'query' }>): void {
  const { id, conn, sql, params } = request;
  if (owner === undefined) {
    if (BEGIN.test(sql)) {
      commitGroup();
      owner = conn;
    } else if (DML.test(sql)) {
      if (group === undefined) {
        try {
          openGroup();
        } catch (error) {
          send({ op: 'error', id, error: toWorkerError(error) });
          return;
        }
      }
    } else if (!READER.test(sql)) {
      // DDL, a pragma, a stray COMMIT: not inside the group.
      commitGroup();
    }
  }
  const held = owner === undefined ? group : undefined;
  if (held !== undefined && DML.test(sql)) {
    try {
      db.prepare('SAVEPOINT rune_auto').run([]);
    } catch (error) {
      send({ op: 'error', id, error: toWorkerError(error) });
      return;
    }
    try {
      const reply = run(sql, params, id);
      db.prepare('RELEASE rune_auto').run([]);
      held.push(reply);
    } catch (error) {
      try {
        db.prepare('ROLLBACK TO rune_auto').run([]);
        db.prepare('RELEASE rune_auto').run([]);
      } catch {
        // the group itself is gone; its commit answers the others
      }
      send({ op: 'error', id, error: toWorkerError(error) });
    }
    return;
  }
  try {
    const reply = run(sql, params, id);
    if (held !== undefined) held.push(reply);
    else send(reply);
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
    commitGroup();
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
