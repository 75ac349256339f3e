/**
 * The run store: one typed query layer (Kysely) over the tables of `schema.ts`. Nothing here is
 * SQLite-specific — the engine is chosen in `sqlite-dialect.ts` — so a PostgreSQL store is a
 * second dialect, not a second set of queries.
 *
 * Every write that must agree with another is one transaction: a run with its nodes and its
 * idempotency key; an event with the node state and run status it implies.
 */
import type { HeapReclaim } from '@rune/core/memory';
import type { RunEvent, RunNodeResult } from '@rune/protocol';
import { RuneError } from '@rune/protocol';
import type { Kysely, LogEvent, Selectable, Transaction } from 'kysely';
import {
  createTokenCache,
  registerTokenCache,
  type TokenCache,
  tokenEpochPath,
} from '../auth/token-cache.js';
import { retryOnUniqueViolation } from './constraint-errors.js';
import { MIGRATION_NAMES, migrateStore } from './migrations.js';
import {
  type OperationResult,
  type OperationStatement,
  runOperation,
  runStatementsIn,
} from './operation.js';
import {
  checkPostgres,
  isPostgresUrl,
  numberRun,
  openPostgresDatabase,
  openPostgresPool,
  provisionalPosition,
} from './postgres-dialect.js';
import { preparedQuery } from './prepared.js';
import type { ApiTokensTable, RunNodesTable, RunsTable, StoreDatabase } from './schema.js';
import { sqliteFileBytes } from './sqlite-dialect.js';
import { openSqliteWorkerDatabase, reclaimSqliteWorkerMemory } from './sqlite-worker/dialect.js';
import { createWriteBatcher, type WriteBatcher } from './write-batch.js';

/** A run row as read. */
export type StoredRun = Selectable<RunsTable>;
/** A node row as read. */
export type StoredNode = Selectable<RunNodesTable>;
/** A token row as read. */
export type StoredToken = Selectable<ApiTokensTable>;

/**
 * A run to insert (position and last_seq are assigned by the store); `workflow_run_id` only for a
 * workflow's step run.
 */
export type NewRun = Omit<RunsTable, 'position' | 'last_seq' | 'workflow_run_id'> &
  Partial<Pick<RunsTable, 'workflow_run_id'>>;

/** Filters of {@link RunStore.listRuns}; all optional, combined with AND. */
export interface RunFilter {
  action?: string;
  node?: string;
  status?: string;
  principal?: string;
  source?: string;
  /** created_at >= since (ISO). */
  since?: string;
  /** created_at < until (ISO). */
  until?: string;
}

/** A position in a listing: runs strictly before it (newest first). */
export interface RunCursor {
  position: number;
}

/** The run store. */
export interface RunStore {
  /** The Kysely instance (for tests and the next dialect). */
  readonly db: Kysely<StoreDatabase>;
  /** Which engine: the embedded SQLite file, or a PostgreSQL shared by several instances. */
  readonly engine: StoreEngine;
  /**
   * Inserts a run, its planned nodes (state pending) and, when given, its idempotency key, in one
   * transaction. When the key exists already, nothing is written and the existing entry returned;
   * otherwise the run row as stored (RETURNING: no second read).
   */
  insertRun(
    run: NewRun,
    nodes: readonly string[],
    idempotency?: { key: string; bodySha256: string },
    events?: readonly RunEvent[],
    within?: (trx: Transaction<StoreDatabase>) => Promise<void>,
  ): Promise<
    { inserted: true; run: StoredRun } | { inserted: false; runId: string; bodySha256: string }
  >;
  /** The idempotency entry of `principal` + `key`. */
  findIdempotencyKey(
    principal: string,
    key: string,
  ): Promise<{ run_id: string; body_sha256: string } | undefined>;
  getRun(id: string): Promise<StoredRun | undefined>;
  getNodes(runId: string): Promise<StoredNode[]>;
  getNode(runId: string, node: string): Promise<StoredNode | undefined>;
  /** Newest first, `limit` rows after `cursor`. */
  listRuns(filter: RunFilter, limit: number, cursor?: RunCursor): Promise<StoredRun[]>;
  /** Runs in one of `statuses`, oldest first (recovery, queue reload). */
  runsWithStatus(statuses: readonly string[]): Promise<StoredRun[]>;
  /**
   * Appends one run event and applies what it implies (run-start: running; node-start: the node
   * runs; node-end: its result; run-end: the final status, summary and error), in one transaction.
   * Extra run columns (audit report) may be set with it.
   */
  appendEvent(event: RunEvent, extra?: Partial<Pick<RunsTable, 'audit_json'>>): Promise<void>;
  /** Events of a run with seq > `afterSeq`, in order. */
  listEvents(runId: string, afterSeq: number, limit?: number): Promise<RunEvent[]>;
  /**
   * Sets the final state of a run core never ran (a queued run cancelled or interrupted), with
   * the events the server writes for it (see `runs/unstarted-events.ts`), in one transaction.
   */
  finishWithoutEvents(
    runId: string,
    fields: Pick<RunsTable, 'status' | 'exit_code' | 'error_json' | 'finished_at'>,
    events?: readonly RunEvent[],
  ): Promise<void>;
  /** Deletes runs finished before `before` (ISO); returns how many. */
  pruneFinishedBefore(before: string): Promise<number>;
  insertToken(token: ApiTokensTable): Promise<void>;
  getToken(id: string): Promise<StoredToken | undefined>;
  getTokenByName(name: string): Promise<StoredToken | undefined>;
  listTokens(): Promise<StoredToken[]>;
  /** Marks a token revoked; false when no unrevoked token has that name. */
  revokeToken(name: string, at: string): Promise<boolean>;
  touchToken(id: string, at: string): Promise<void>;
  /** Bytes the store occupies on disk. */
  sizeBytes(): number;
  /** True when a write transaction succeeds (readiness). */
  writable(): Promise<boolean>;
  /**
   * One full garbage collection in the embedded store's SQLite worker thread (the server is
   * idle); undefined on PostgreSQL (no thread of its own) or when the worker is not running.
   */
  reclaimMemory(): Promise<HeapReclaim | undefined>;
  close(): Promise<void>;
}

/** The engines of the store. */
export type StoreEngine = 'sqlite' | 'postgres';

/** Options of {@link openRunStore}. */
export interface OpenRunStoreOptions {
  /** Apply only the first `migrateTo` migrations (tests of older versions). */
  migrateTo?: number;
  onWarning?: (message: string) => void;
  /** Receives every query's duration and outcome (the store latency metric). */
  onQuery?: (event: LogEvent) => void;
  /** Receives the names of the migrations applied by this open (none when up to date). */
  onApplied?: (names: string[]) => void;
}

const parse = <T>(text: string): T => JSON.parse(text) as T;

/**
 * Opens the store at `path` (an SQLite file, or a `postgres://` URL) and migrates it. Several
 * instances may open one PostgreSQL store at once; the migrator serializes them.
 */
export async function openRunStore(
  path: string,
  options: OpenRunStoreOptions = {},
): Promise<RunStore> {
  const warning = options.onWarning === undefined ? {} : { onWarning: options.onWarning };
  const postgres = isPostgresUrl(path);
  const pool = postgres ? openPostgresPool(path, warning) : undefined;
  const db =
    pool === undefined
      ? openSqliteWorkerDatabase<StoreDatabase>(path, {
          ...warning,
          ...(options.onQuery === undefined ? {} : { log: options.onQuery }),
        })
      : openPostgresDatabase<StoreDatabase>(pool);
  try {
    if (pool !== undefined) await checkPostgres(pool, path);
    const applied = await migrateStore(db as unknown as Kysely<unknown>, options.migrateTo);
    options.onApplied?.(applied);
  } catch (error) {
    await db.destroy();
    throw RuneError.from(error, 'INVALID_CONFIG');
  }
  return pool === undefined
    ? createRunStore(db, () => sqliteFileBytes(path), 'sqlite', {
        tokenCache: createTokenCache(tokenEpochPath(path)),
      })
    : createRunStore(db, () => 0, 'postgres', {
        // A store opened at an older schema (tests of older versions) has no counter row.
        numberLast:
          options.migrateTo === undefined ||
          options.migrateTo > MIGRATION_NAMES.indexOf('0016_run_numbering'),
      });
}

function nodeResultColumns(result: RunNodeResult): Partial<RunNodesTable> {
  return {
    state: result.status,
    error_code: result.error?.code ?? null,
    stdout_truncated: result.stdout_truncated ? 1 : 0,
    stderr_truncated: result.stderr_truncated ? 1 : 0,
    stderr_tail: result.stderr_tail,
    result_json: JSON.stringify(result),
    started_at: result.started_at,
  };
}

/** Stores events as they are, without applying them to the run (the caller sets the run). */
function eventRowStatements(
  db: Kysely<StoreDatabase>,
  events: readonly RunEvent[],
): OperationStatement[] {
  const statements: OperationStatement[] = [];
  // Bounded statements: SQLite limits the number of bound variables per statement.
  for (let index = 0; index < events.length; index += 100) {
    const query = db
      .insertInto('run_events')
      .values(
        events.slice(index, index + 100).map((event) => ({
          run_id: event.run_id,
          seq: event.seq,
          type: event.type,
          event_json: JSON.stringify(event),
        })),
      )
      .compile();
    statements.push({ query });
  }
  return statements;
}

/** One event and what it implies for its run and node, as one operation's statements. */
function eventStatements(
  db: Kysely<StoreDatabase>,
  event: RunEvent,
  extra: Partial<Pick<RunsTable, 'audit_json'>>,
): OperationStatement[] {
  const statements = eventRowStatements(db, [event]);
  const run: Partial<RunsTable> = { last_seq: event.seq, ...extra };
  switch (event.type) {
    case 'run-start':
      run.status = 'running';
      run.started_at = event.timestamp;
      break;
    case 'node-start':
      statements.push({
        query: db
          .updateTable('run_nodes')
          .set({ state: 'running', started_at: event.timestamp })
          .where('run_id', '=', event.run_id)
          .where('node', '=', event.node)
          .compile(),
      });
      break;
    case 'node-end':
      statements.push({
        query: db
          .updateTable('run_nodes')
          .set(nodeResultColumns(event.result))
          .where('run_id', '=', event.run_id)
          .where('node', '=', event.result.node)
          .compile(),
      });
      break;
    case 'run-end':
      run.status = event.status;
      run.exit_code = event.exit_code;
      run.finished_at = event.timestamp;
      run.summary_json = event.summary === null ? null : JSON.stringify(event.summary);
      run.error_json = event.error === null ? null : JSON.stringify(event.error);
      break;
  }
  statements.push({
    query: db.updateTable('runs').set(run).where('id', '=', event.run_id).compile(),
  });
  return statements;
}

/**
 * A run's insert as one operation: the idempotency guard (stops when the key exists), the run
 * numbered by a subquery in its own INSERT (no read round trip), its events, nodes and key. With
 * `provisional`, the run is inserted under {@link provisionalPosition} instead, for the caller to
 * number it last (PostgreSQL: `numberRun`).
 */
function insertRunStatements(
  db: Kysely<StoreDatabase>,
  run: NewRun,
  nodes: readonly string[],
  idempotency: { key: string; bodySha256: string } | undefined,
  events: readonly RunEvent[],
  provisional = false,
): OperationStatement[] {
  const statements: OperationStatement[] = [];
  if (idempotency !== undefined) {
    statements.push({
      query: db
        .selectFrom('idempotency_keys')
        .select(['run_id', 'body_sha256'])
        .where('principal', '=', run.principal)
        .where('key', '=', idempotency.key)
        .compile(),
      stopIfRows: true,
    });
  }
  statements.push({
    query: db
      .insertInto('runs')
      .values({
        ...run,
        position: provisional
          ? provisionalPosition
          : (eb) =>
              eb
                .selectFrom('runs')
                .select((inner) =>
                  inner(inner.fn.coalesce(inner.fn.max('position'), inner.lit(0)), '+', 1).as(
                    'next',
                  ),
                ),
        last_seq: events.at(-1)?.seq ?? 0,
      })
      .returningAll()
      .compile(),
  });
  statements.push(...eventRowStatements(db, events));
  for (let index = 0; index < nodes.length; index += 50) {
    statements.push({
      query: db
        .insertInto('run_nodes')
        .values(
          nodes.slice(index, index + 50).map((node, offset) => ({
            run_id: run.id,
            node,
            position: index + offset,
            state: 'pending',
            started_at: null,
            error_code: null,
            stdout_truncated: 0,
            stderr_truncated: 0,
            stderr_tail: '',
            result_json: null,
          })),
        )
        .compile(),
    });
  }
  if (idempotency !== undefined) {
    statements.push({
      query: db
        .insertInto('idempotency_keys')
        .values({
          principal: run.principal,
          key: idempotency.key,
          body_sha256: idempotency.bodySha256,
          run_id: run.id,
          created_at: run.created_at,
        })
        .compile(),
    });
  }
  return statements;
}

// Read by (nearly) every request: compiled once per database (store/prepared.ts).
const runById = preparedQuery<StoreDatabase, StoredRun>(1, (db, id) =>
  db.selectFrom('runs').selectAll().where('id', '=', id),
);
// Every request's token: answered without waiting for the group commit it may run inside. No
// uncommitted write can make it wrong in a harmful way: a token being created is presented by
// nobody before its creation is answered (after the COMMIT), one being revoked refuses at once,
// and last_used_at decides nothing.
const tokenById = preparedQuery<StoreDatabase, StoredToken>(
  1,
  (db, id) => db.selectFrom('api_tokens').selectAll().where('id', '=', id),
  { unheld: true },
);

/** Write transactions one at a time, in the order they were asked for (PostgreSQL). */
function orderedWrites(db: Kysely<StoreDatabase>): WriteBatcher {
  let tail: Promise<unknown> = Promise.resolve();
  return {
    run(work) {
      const result = tail.then(() => db.transaction().execute(work));
      tail = result.catch(() => undefined);
      return result;
    },
  };
}

/** The store over an opened Kysely instance (any dialect). */
export function createRunStore(
  db: Kysely<StoreDatabase>,
  sizeBytes: () => number,
  engine: StoreEngine = 'sqlite',
  options: {
    /**
     * PostgreSQL: insert a run under a provisional position and number it last, from the
     * counter row of `run_numbering` (default true; false numbers by `max + 1` in the INSERT).
     */
    numberLast?: boolean;
    /** Token reads from memory under the token epoch (auth/token-cache.ts; the embedded store). */
    tokenCache?: TokenCache;
  } = {},
): RunStore {
  const numberLast = engine === 'postgres' && options.numberLast !== false;
  const { tokenCache } = options;
  if (tokenCache !== undefined) registerTokenCache(db, tokenCache);
  // SQLite: each write is one operation, one message to the worker thread that owns the
  // connection (store/sqlite-worker/), which runs them in arrival order — a run's events stay in
  // order — and groups their commits; a write with a callback (`within`) goes through the
  // main-thread group commit instead. PostgreSQL: a transaction per write, one after another in
  // the order asked — a run's events are written without waiting for each other, and pooled
  // transactions side by side could commit out of order (a reader would see run-end before
  // node-end and stop).
  const writes: WriteBatcher = engine === 'sqlite' ? createWriteBatcher(db) : orderedWrites(db);
  const write = (statements: readonly OperationStatement[]): Promise<OperationResult> =>
    engine === 'sqlite'
      ? runOperation(db, statements)
      : writes.run((trx) => runStatementsIn(trx, statements));
  const store: RunStore = {
    db,
    engine,

    async insertRun(run, nodes, idempotency, events = [], within) {
      const statements = insertRunStatements(db, run, nodes, idempotency, events, numberLast);
      let numberedRun: StoredRun | undefined;
      const outcome =
        engine === 'sqlite' && within === undefined
          ? await runOperation(db, statements)
          : await writes.run(async (trx) => {
              const done = await runStatementsIn(trx, statements);
              if (done.stopped) return done;
              // What must commit with the run (its claim by this instance, in PostgreSQL mode);
              // a claim that needs the position or the numbering lock numbers the run itself.
              await within?.(trx);
              // Last, so that the numbering lock is held only from here to COMMIT.
              if (numberLast) numberedRun = await numberRun(trx, run.id);
              return done;
            });
      if (outcome.stopped) {
        const existing = outcome.results.at(-1)?.rows[0] as
          | { run_id: string; body_sha256: string }
          | undefined;
        if (existing !== undefined) {
          return { inserted: false, runId: existing.run_id, bodySha256: existing.body_sha256 };
        }
      }
      const stored = numberedRun ?? outcome.results[idempotency === undefined ? 0 : 1]?.rows[0];
      if (stored === undefined) throw new RuneError('INTERNAL_ERROR', 'a stored run vanished');
      return { inserted: true as const, run: stored as StoredRun };
    },

    findIdempotencyKey: (principal, key) =>
      db
        .selectFrom('idempotency_keys')
        .select(['run_id', 'body_sha256'])
        .where('principal', '=', principal)
        .where('key', '=', key)
        .executeTakeFirst(),

    getRun: async (id) => (await runById(db, id))[0],

    getNodes: (runId) =>
      db
        .selectFrom('run_nodes')
        .selectAll()
        .where('run_id', '=', runId)
        .orderBy('position')
        .execute(),

    getNode: (runId, node) =>
      db
        .selectFrom('run_nodes')
        .selectAll()
        .where('run_id', '=', runId)
        .where('node', '=', node)
        .executeTakeFirst(),

    async listRuns(filter, limit, cursor) {
      let query = db.selectFrom('runs').selectAll();
      if (filter.action !== undefined) query = query.where('action', '=', filter.action);
      if (filter.status !== undefined) query = query.where('status', '=', filter.status);
      if (filter.principal !== undefined) query = query.where('principal', '=', filter.principal);
      if (filter.source !== undefined) query = query.where('source', '=', filter.source);
      if (filter.since !== undefined) query = query.where('created_at', '>=', filter.since);
      if (filter.until !== undefined) query = query.where('created_at', '<', filter.until);
      if (filter.node !== undefined) {
        const node = filter.node;
        query = query.where((eb) =>
          eb.exists(
            eb
              .selectFrom('run_nodes')
              .select('run_nodes.node')
              .whereRef('run_nodes.run_id', '=', 'runs.id')
              .where('run_nodes.node', '=', node),
          ),
        );
      }
      if (cursor !== undefined) query = query.where('position', '<', cursor.position);
      return query.orderBy('position', 'desc').limit(limit).execute();
    },

    runsWithStatus: (statuses) =>
      db
        .selectFrom('runs')
        .selectAll()
        .where('status', 'in', [...statuses])
        .orderBy('position')
        .execute(),

    async appendEvent(event, extra = {}) {
      await write(eventStatements(db, event, extra));
    },

    async listEvents(runId, afterSeq, limit = 10_000) {
      const rows = await db
        .selectFrom('run_events')
        .select('event_json')
        .where('run_id', '=', runId)
        .where('seq', '>', afterSeq)
        .orderBy('seq')
        .limit(limit)
        .execute();
      return rows.map((row) => parse<RunEvent>(row.event_json));
    },

    async finishWithoutEvents(runId, fields, events = []) {
      const last = events.at(-1)?.seq;
      await write([
        ...eventRowStatements(db, events),
        {
          query: db
            .updateTable('runs')
            .set(last === undefined ? fields : { ...fields, last_seq: last })
            .where('id', '=', runId)
            .compile(),
        },
      ]);
    },

    async pruneFinishedBefore(before) {
      return db.transaction().execute(async (trx) => {
        const old = trx
          .selectFrom('runs')
          .select('id')
          .where('finished_at', 'is not', null)
          .where('finished_at', '<', before);
        await trx.deleteFrom('idempotency_keys').where('run_id', 'in', old).execute();
        await trx.deleteFrom('run_events').where('run_id', 'in', old).execute();
        await trx.deleteFrom('run_nodes').where('run_id', 'in', old).execute();
        await trx.deleteFrom('approval_votes').where('run_id', 'in', old).execute();
        await trx.deleteFrom('approval_requests').where('run_id', 'in', old).execute();
        const result = await trx
          .deleteFrom('runs')
          .where('finished_at', 'is not', null)
          .where('finished_at', '<', before)
          .executeTakeFirst();
        return Number(result.numDeletedRows);
      });
    },

    async insertToken(token) {
      try {
        await db.insertInto('api_tokens').values(token).execute();
        tokenCache?.changed();
      } catch (error) {
        const existing = await db
          .selectFrom('api_tokens')
          .select('id')
          .where('name', '=', token.name)
          .executeTakeFirst();
        if (existing !== undefined) {
          throw new RuneError('INVALID_ARGUMENT', `a token named ${token.name} exists already`, {
            details: { name: token.name },
          });
        }
        throw RuneError.from(error, 'INTERNAL_ERROR');
      }
    },

    getToken: async (id) => (await tokenById(db, id))[0],

    getTokenByName: (name) =>
      db.selectFrom('api_tokens').selectAll().where('name', '=', name).executeTakeFirst(),

    listTokens: () => db.selectFrom('api_tokens').selectAll().orderBy('created_at').execute(),

    async revokeToken(name, at) {
      const result = await db
        .updateTable('api_tokens')
        .set({ revoked_at: at })
        .where('name', '=', name)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      tokenCache?.changed();
      return Number(result.numUpdatedRows) > 0;
    },

    async touchToken(id, at) {
      await db.updateTable('api_tokens').set({ last_used_at: at }).where('id', '=', id).execute();
    },

    sizeBytes,

    async writable() {
      try {
        await db.transaction().execute(async (trx) => {
          await trx.updateTable('runs').set({ status: 'probe' }).where('id', '=', '').execute();
        });
        return true;
      } catch {
        return false;
      }
    },

    reclaimMemory: () => reclaimSqliteWorkerMemory(db),

    close: () => db.destroy(),
  };
  // Another instance may number a run (or store the same key) at the same moment: the unique
  // constraints decide, and the retry reads the winner's key or the next position.
  const insertOnce = store.insertRun;
  store.insertRun = (...args) => retryOnUniqueViolation(() => insertOnce(...args));
  return store;
}
