/**
 * The embedded store's SQLite over a worker thread: a Kysely dialect whose connections post each
 * compiled query to the thread that owns node-sqlite3-wasm (`worker.ts`) and await its answer.
 *
 * Why: node-sqlite3-wasm is synchronous, and a durable commit (`synchronous = FULL`) is several
 * fsyncs of 5-30 ms on a busy disk. On the event loop, every request waited for every commit in
 * flight; in the worker, the loop keeps reading, planning and answering while a group commit is
 * synced, and "acknowledged = durable" holds as before: a query's promise resolves only with the
 * worker's answer, which it sends after the statement (the COMMIT included) returned.
 *
 * Transactions: each Kysely connection (one per query, one per transaction) has an id, and the
 * worker runs the statements of an open transaction's connection only, holding the others until
 * it ends — Kysely's transactions, controlled transactions and savepoints (group commit) work
 * unchanged, and queries outside a transaction are pipelined without a mutex on this side.
 *
 * A worker that stops (crash, out of memory, terminated) fails every pending and later query with
 * STORE_UNAVAILABLE, so nothing is acknowledged that did not commit, and readiness turns 503.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type HeapReclaim, WORKER_RESOURCE_LIMITS } from '@rune/core/memory';
import { RuneError } from '@rune/protocol';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  Kysely,
  type LogEvent,
  type QueryResult,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type TransactionSettings,
} from 'kysely';
import type { OperationResult, OperationStatement } from '../operation.js';
import { toBindValues } from '../sqlite-dialect.js';
import type {
  WorkerError,
  WorkerReplies,
  WorkerReply,
  WorkerRequest,
  WorkerStart,
  WorkerStatement,
} from './protocol.js';

/** Options of {@link openSqliteWorkerDatabase}. */
export interface SqliteWorkerOptions {
  /** Wait this long for a held `<db>.lock` before removing it as stale. */
  staleLockWaitMs?: number;
  /** Receives a line when a stale lock was removed, and when the worker stopped. */
  onWarning?: (message: string) => void;
  /** Kysely's query log (timings for the store latency metric). */
  log?: (event: LogEvent) => void;
}

/** The compiled worker: beside this module in dist/, or dist/ when run from the sources (tests). */
function workerPath(): string {
  const here = import.meta.url;
  const path = here.endsWith('.ts')
    ? fileURLToPath(new URL('../../../dist/store/sqlite-worker/worker.js', here))
    : fileURLToPath(new URL('./worker.js', here));
  if (!existsSync(path)) {
    throw new RuneError(
      'INTERNAL_ERROR',
      `the run store's SQLite worker ${path} is missing (build @rune/server first)`,
      { details: { path } },
    );
  }
  return path;
}

function fromWorkerError(error: WorkerError): Error {
  if (error.code !== undefined && error.name === 'RuneError') {
    return new RuneError(error.code as 'INVALID_CONFIG', error.message, {
      ...(error.details === undefined ? {} : { details: error.details }),
    });
  }
  // The SQLite error as the synchronous driver threw it (same name and message), so callers that
  // recognise constraint violations or wrap it with RuneError.from see what they saw before.
  const rebuilt = new Error(error.message);
  rebuilt.name = error.name;
  return rebuilt;
}

/** A reply that answers a request. */
type Answer = Extract<WorkerReply, { op: 'result' | 'operation-result' | 'reclaimed' }>;

interface Pending {
  resolve: (reply: Answer) => void;
  reject: (error: unknown) => void;
}

/** The thread and its in-flight requests; shared by every connection of one database. */
class SqliteWorkerClient {
  readonly #path: string;
  readonly #options: SqliteWorkerOptions;
  #worker: Worker | undefined;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #failure: RuneError | undefined;
  #closing = false;

  constructor(path: string, options: SqliteWorkerOptions) {
    this.#path = path;
    this.#options = options;
  }

  /** The worker thread (tests kill it to check what a crash does). */
  get thread(): Worker | undefined {
    return this.#worker;
  }

  start(): Promise<void> {
    const start: WorkerStart = {
      path: this.#path,
      ...(this.#options.staleLockWaitMs === undefined
        ? {}
        : { staleLockWaitMs: this.#options.staleLockWaitMs }),
    };
    const worker = new Worker(workerPath(), {
      workerData: start,
      resourceLimits: { ...WORKER_RESOURCE_LIMITS },
    });
    this.#worker = worker;
    return new Promise<void>((resolve, reject) => {
      let opened = false;
      const receive = (reply: WorkerReply): void => {
        switch (reply.op) {
          case 'ready':
            opened = true;
            worker.unref();
            resolve();
            return;
          case 'open-failed':
            reject(fromWorkerError(reply.error));
            return;
          case 'warning':
            this.#options.onWarning?.(reply.message);
            return;
          case 'result':
          case 'operation-result':
          case 'reclaimed':
          case 'error': {
            const pending = this.#pending.get(reply.id);
            if (pending === undefined) return;
            this.#pending.delete(reply.id);
            if (this.#pending.size === 0) worker.unref();
            if (reply.op === 'error') pending.reject(fromWorkerError(reply.error));
            else pending.resolve(reply);
            return;
          }
        }
      };
      worker.on('message', (replies: WorkerReplies) => {
        for (const reply of replies) receive(reply);
      });
      const stopped = (cause: unknown): void => {
        if (this.#failure !== undefined) return;
        this.#failure = new RuneError(
          'STORE_UNAVAILABLE',
          this.#closing
            ? 'the run store is closed'
            : `the run store's SQLite worker stopped (${cause instanceof Error ? cause.message : String(cause)}); writes not answered were not acknowledged — restart rune serve`,
          { cause, details: { path: this.#path } },
        );
        if (!this.#closing) this.#options.onWarning?.(this.#failure.message);
        for (const pending of this.#pending.values()) pending.reject(this.#failure);
        this.#pending.clear();
        if (!opened) reject(this.#failure);
      };
      worker.on('error', stopped);
      worker.on('exit', (code) => stopped(new Error(`exit code ${code}`)));
    });
  }

  request(
    message:
      | Omit<Extract<WorkerRequest, { op: 'query' }>, 'id'>
      | Omit<Extract<WorkerRequest, { op: 'operation' }>, 'id'>
      | { op: 'close' }
      | { op: 'reclaim' },
  ): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      if (this.#failure !== undefined || this.#worker === undefined) {
        reject(this.#failure ?? new RuneError('STORE_UNAVAILABLE', 'the run store is not open'));
        return;
      }
      const id = this.#nextId++;
      if (this.#pending.size === 0) this.#worker.ref();
      this.#pending.set(id, { resolve, reject });
      this.#outbox.push({ ...message, id } as WorkerRequest);
      if (this.#outbox.length === 1) queueMicrotask(this.#flush);
    });
  }

  /**
   * The queries asked for in one run of microtasks go in one message (concurrent callers, a
   * Promise.all): each message costs a structured clone and a wake-up of the worker, and on a
   * loaded machine every wake-up waits for a core.
   */
  #outbox: WorkerRequest[] = [];
  readonly #flush = (): void => {
    const batch = this.#outbox;
    this.#outbox = [];
    if (this.#failure !== undefined) return;
    this.#worker?.postMessage(batch);
  };

  /** Connection ids of operations: never one of a Kysely connection (those count up from 1). */
  #nextOperationConn = -1;

  /** Runs a whole operation in the worker (one message; see protocol.ts). */
  async operation(
    statements: readonly WorkerStatement[],
  ): Promise<Extract<WorkerReply, { op: 'operation-result' }>> {
    const reply = await this.request({
      op: 'operation',
      conn: this.#nextOperationConn--,
      statements: [...statements],
    });
    if (reply.op !== 'operation-result') {
      throw new RuneError('INTERNAL_ERROR', 'the SQLite worker answered an operation wrongly');
    }
    return reply;
  }

  /**
   * The query log (the store latency metric) gets one event per operation, as the kind of its
   * first write: an operation is one unit of waiting for the caller, like one query was.
   */
  logOperation(statements: readonly OperationStatement[], millis: number, error?: unknown): void {
    const log = this.#options.log;
    const first = statements.find((s) => s.query.query.kind !== 'SelectQueryNode') ?? statements[0];
    if (log === undefined || first === undefined) return;
    if (error === undefined)
      log({ level: 'query', query: first.query, queryDurationMillis: millis });
    else log({ level: 'error', error, query: first.query, queryDurationMillis: millis });
  }

  /** One full garbage collection in the worker (the server is idle); undefined when it is not running. */
  async reclaim(): Promise<HeapReclaim | undefined> {
    if (this.#worker === undefined || this.#closing || this.#failure !== undefined)
      return undefined;
    const reply = await this.request({ op: 'reclaim' });
    return reply.op === 'reclaimed' ? reply.reclaimed : undefined;
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    if (worker === undefined || this.#closing) return;
    this.#closing = true;
    try {
      if (this.#failure === undefined) await this.request({ op: 'close' });
    } finally {
      await worker.terminate();
    }
  }
}

class WorkerConnection implements DatabaseConnection {
  readonly #client: SqliteWorkerClient;
  readonly #id: number;

  constructor(client: SqliteWorkerClient, id: number) {
    this.#client = client;
    this.#id = id;
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const reply = await this.#client.request({
      op: 'query',
      conn: this.#id,
      sql: compiledQuery.sql,
      params: toBindValues(compiledQuery.parameters),
    });
    if (reply.op !== 'result') {
      throw new RuneError('INTERNAL_ERROR', 'the SQLite worker answered a query wrongly');
    }
    if (reply.rows !== undefined) return { rows: reply.rows as R[] };
    return {
      numAffectedRows: BigInt(reply.changes ?? 0),
      ...(reply.lastInsertRowid === undefined ? {} : { insertId: BigInt(reply.lastInsertRowid) }),
      rows: [],
    };
  }

  // biome-ignore lint/correctness/useYield: Kysely's interface; the store never streams.
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new RuneError('INTERNAL_ERROR', 'the SQLite worker driver does not stream queries');
  }
}

class WorkerDriver implements Driver {
  readonly #client: SqliteWorkerClient;
  #nextConnection = 1;

  constructor(client: SqliteWorkerClient) {
    this.#client = client;
  }

  init(): Promise<void> {
    return this.#client.start();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new WorkerConnection(this.#client, this.#nextConnection++);
  }

  async beginTransaction(
    connection: DatabaseConnection,
    _settings: TransactionSettings,
  ): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin'));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  async savepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`savepoint ${quoteName(name)}`));
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`rollback to ${quoteName(name)}`));
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`release ${quoteName(name)}`));
  }

  async releaseConnection(): Promise<void> {}

  destroy(): Promise<void> {
    return this.#client.close();
  }
}

/** A savepoint name as an SQLite identifier. */
function quoteName(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

const threads = new WeakMap<object, SqliteWorkerClient>();

/**
 * The Kysely instance of the SQLite store at `path`, its connection owned by a worker thread
 * started on first use. Opening errors (INVALID_CONFIG) surface at the first query.
 */
export function openSqliteWorkerDatabase<DB>(
  path: string,
  options: SqliteWorkerOptions = {},
): Kysely<DB> {
  const client = new SqliteWorkerClient(path, options);
  const dialect: Dialect = {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new WorkerDriver(client),
    createIntrospector: (db) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  };
  const db = new Kysely<DB>({
    dialect,
    ...(options.log === undefined ? {} : { log: options.log }),
  });
  threads.set(db, client);
  return db;
}

/**
 * Runs compiled statements as one operation in the worker of `db` (see protocol.ts); undefined
 * when `db` was not opened by {@link openSqliteWorkerDatabase}.
 */
export function sqliteWorkerOperation(
  db: object,
): ((statements: readonly OperationStatement[]) => Promise<OperationResult>) | undefined {
  const client = threads.get(db);
  if (client === undefined) return undefined;
  return async (statements) => {
    const started = performance.now();
    let reply: Extract<WorkerReply, { op: 'operation-result' }>;
    try {
      reply = await client.operation(
        statements.map(({ query, stopIfRows }) => ({
          sql: query.sql,
          params: toBindValues(query.parameters),
          ...(stopIfRows === true ? { stopIfRows } : {}),
        })),
      );
    } catch (error) {
      client.logOperation(statements, performance.now() - started, error);
      throw error;
    }
    client.logOperation(statements, performance.now() - started);
    return {
      stopped: reply.stopped,
      results: reply.results.map((result) => ({
        rows: result.rows ?? [],
        affected: result.changes ?? result.rows?.length ?? 0,
      })),
      ...(reply.timing === undefined ? {} : { timing: reply.timing }),
    };
  };
}

/**
 * One full garbage collection in the worker thread of `db` (see @rune/core/memory); undefined
 * when `db` was not opened by {@link openSqliteWorkerDatabase} or its worker is not running.
 */
export function reclaimSqliteWorkerMemory(db: object): Promise<HeapReclaim | undefined> {
  return threads.get(db)?.reclaim() ?? Promise.resolve(undefined);
}

/** The worker thread of a database opened by {@link openSqliteWorkerDatabase} (tests). */
export function sqliteWorkerThread(db: object): Worker | undefined {
  return threads.get(db)?.thread;
}
