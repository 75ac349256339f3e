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
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { reclaimHeap } from '@rune/core/memory';
import { RuneError } from '@rune/protocol';
import type { SqliteDatabase } from 'kysely';
import { UNHELD_READ_MARK } from '../prepared.js';
import { adapt, openSqliteConnection, READER, type SqliteConnection } from '../sqlite-dialect.js';
import { probeEnabled, probeNow, type StoreOperationTiming } from './probe.js';
import type {
  WorkerBindValue,
  WorkerError,
  WorkerMessage,
  WorkerReply,
  WorkerRequest,
  WorkerStart,
  WorkerStatementResult,
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

/**
 * The benchmark probe (probe.ts), off by default: the VFS calls `fs.fsyncSync` through the
 * module object, so counting its calls here counts the fsyncs of every COMMIT.
 */
const probe = { fsyncs: 0, fsyncMs: 0, received: 0 };
if (probeEnabled) {
  for (const name of ['fsyncSync', 'fdatasyncSync'] as const) {
    const original = fs[name];
    fs[name] = (fd: number): void => {
      const started = performance.now();
      try {
        original(fd);
      } finally {
        probe.fsyncs++;
        probe.fsyncMs += performance.now() - started;
      }
    };
  }
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
let waiting: Array<Exclude<WorkerRequest, { op: 'close' | 'reclaim' }>> = [];
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

/** A group older than this takes no new transaction: it commits first (bounds the wait). */
const GROUP_MAX_MS = 25;
let groupOpenedAt = 0;

function openGroup(): void {
  db.prepare('BEGIN').run([]);
  group = [];
  groupOpenedAt = Date.now();
  setImmediate(commitGroup);
}

/** Opens the group when none is open (or the open one is old); false (answered) on failure. */
function ensureGroup(id: number): boolean {
  if (group !== undefined && Date.now() - groupOpenedAt > GROUP_MAX_MS) commitGroup();
  if (group !== undefined) return true;
  try {
    openGroup();
    return true;
  } catch (error) {
    send({ op: 'error', id, error: toWorkerError(error) });
    return false;
  }
}

function commitGroup(): void {
  const held = group;
  // Never inside a caller's open transaction: its end schedules the commit again.
  if (held === undefined || owner !== undefined) return;
  group = undefined;
  try {
    const fsyncs = probe.fsyncs;
    const fsyncMs = probe.fsyncMs;
    const commitStarted = probeEnabled ? probeNow() : 0;
    db.prepare('COMMIT').run([]);
    if (probeEnabled) {
      const committed = probeNow();
      for (const reply of held) {
        if (reply.op !== 'operation-result' || reply.timing === undefined) continue;
        Object.assign(reply.timing, {
          commitStarted,
          committed,
          fsyncs: probe.fsyncs - fsyncs,
          fsyncMs: probe.fsyncMs - fsyncMs,
          groupSize: held.length,
        });
      }
    }
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

/** SQLite rolled the whole transaction back (an I/O error, a full disk): nothing of it stays. */
function checkGroupAlive(): void {
  if (group === undefined || raw.inTransaction) return;
  const lost = group;
  group = undefined;
  owner = undefined;
  const failure: WorkerError = {
    name: 'SQLite3Error',
    message: 'the transaction was rolled back by SQLite (an I/O error or a full disk)',
  };
  sendAll(lost.map((reply) => ({ op: 'error', id: (reply as { id: number }).id, error: failure })));
}

function runStatement(sql: string, params: WorkerBindValue[]): WorkerStatementResult {
  const statement = db.prepare(sql);
  if (READER.test(sql)) return { rows: statement.all(params) as Record<string, unknown>[] };
  const { changes, lastInsertRowid } = statement.run(params);
  return {
    changes: Number(changes ?? 0),
    ...(lastInsertRowid === undefined ? {} : { lastInsertRowid }),
  };
}

function run(sql: string, params: WorkerBindValue[], id: number): WorkerReply {
  return { op: 'result', id, ...runStatement(sql, params) };
}

/**
 * A whole store operation (see protocol.ts): one savepoint of the group, its statements in
 * order, answered with the group's COMMIT like any write of the group. A statement that fails
 * undoes the operation alone (ROLLBACK TO) and is answered at once; a guard that returns rows
 * undoes it too and answers what was read (the caller decides, e.g. "the key exists").
 */
function runOperation(request: Extract<WorkerRequest, { op: 'operation' }>): void {
  const { id, statements } = request;
  if (!ensureGroup(id)) return;
  const held = group as WorkerReply[];
  try {
    db.prepare('SAVEPOINT rune_op').run([]);
  } catch (error) {
    send({ op: 'error', id, error: toWorkerError(error) });
    return;
  }
  const results: WorkerStatementResult[] = [];
  let stopped = false;
  try {
    for (const statement of statements) {
      const result = runStatement(statement.sql, statement.params);
      results.push(result);
      if (statement.stopIfRows === true && (result.rows?.length ?? 0) > 0) {
        stopped = true;
        break;
      }
    }
    if (stopped) db.prepare('ROLLBACK TO rune_op').run([]);
    db.prepare('RELEASE rune_op').run([]);
    const timing: StoreOperationTiming | undefined = probeEnabled
      ? {
          received: probe.received,
          ran: probeNow(),
          commitStarted: 0,
          committed: 0,
          fsyncs: 0,
          fsyncMs: 0,
          groupSize: 0,
        }
      : undefined;
    held.push({
      op: 'operation-result',
      id,
      results,
      stopped,
      ...(timing === undefined ? {} : { timing }),
    });
  } catch (error) {
    try {
      db.prepare('ROLLBACK TO rune_op').run([]);
      db.prepare('RELEASE rune_op').run([]);
    } catch {
      // the group itself is gone: checkGroupAlive answers the others
    }
    send({ op: 'error', id, error: toWorkerError(error) });
    checkGroupAlive();
  }
}

const END_TX = /^\s*(commit|end|rollback)\s*(transaction)?\s*;?\s*$/i;
const COMMIT = /^\s*(commit|end)\b/i;

/**
 * A statement of the connection whose transaction is open. Its transaction is a savepoint of the
 * group (`BEGIN` → SAVEPOINT rune_tx), so transactions that follow one another share one COMMIT:
 * its own statements are answered at once (it needs their results), its COMMIT only when the
 * group committed; a ROLLBACK undoes its savepoint alone and is answered at once.
 */
function ownerStatement(request: Extract<WorkerRequest, { op: 'query' }>): void {
  const { id, sql, params } = request;
  const held = group;
  if (END_TX.test(sql)) {
    try {
      if (COMMIT.test(sql)) {
        db.prepare('RELEASE rune_tx').run([]);
        held?.push({ op: 'result', id, changes: 0 });
      } else {
        db.prepare('ROLLBACK TO rune_tx').run([]);
        db.prepare('RELEASE rune_tx').run([]);
        send({ op: 'result', id, changes: 0 });
      }
    } catch (error) {
      send({ op: 'error', id, error: toWorkerError(error) });
    }
    owner = undefined;
    checkGroupAlive();
    setImmediate(commitGroup);
    return;
  }
  try {
    send(run(sql, params, id));
  } catch (error) {
    send({ op: 'error', id, error: toWorkerError(error) });
  }
  checkGroupAlive();
}

function execute(request: Exclude<WorkerRequest, { op: 'close' | 'reclaim' }>): void {
  if (request.op === 'operation') {
    runOperation(request);
    return;
  }
  const { id, conn, sql, params } = request;
  if (owner === conn) {
    ownerStatement(request);
    return;
  }
  if (BEGIN.test(sql)) {
    if (!ensureGroup(id)) return;
    try {
      db.prepare('SAVEPOINT rune_tx').run([]);
      owner = conn;
      send({ op: 'result', id, changes: 0 });
    } catch (error) {
      send({ op: 'error', id, error: toWorkerError(error) });
    }
    return;
  }
  if (DML.test(sql)) {
    if (!ensureGroup(id)) return;
    const held = group as WorkerReply[];
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
        // the group itself is gone: checkGroupAlive answers the others
      }
      send({ op: 'error', id, error: toWorkerError(error) });
      checkGroupAlive();
    }
    return;
  }
  // DDL, a pragma, a stray COMMIT: never inside the group. Reads join it (answered with it).
  if (!READER.test(sql)) commitGroup();
  try {
    const reply = run(sql, params, id);
    if (group !== undefined && !sql.endsWith(UNHELD_READ_MARK)) group.push(reply);
    else send(reply);
  } catch (error) {
    send({ op: 'error', id, error: toWorkerError(error) });
  }
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
  // Outside the statements' order: it touches no database state, and waits for no transaction.
  if (request.op === 'reclaim') {
    send({ op: 'reclaimed', id: request.id, reclaimed: reclaimHeap() });
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
  if (probeEnabled) probe.received = probeNow();
  outbox = [];
  for (const request of message) {
    if (!closed) handle(request);
  }
  const replies = outbox;
  outbox = undefined;
  if (replies.length > 0) port.postMessage(replies);
  if (closed) port.close();
});
