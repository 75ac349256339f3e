/**
 * The shared store's PostgreSQL engine: Kysely's own `PostgresDialect` over a `pg` pool (pure
 * JavaScript; `pg-native` is not enabled). Everything PostgreSQL-specific of the store lives here
 * and in `src/cluster/` (SKIP LOCKED, LISTEN/NOTIFY), so the query layer of `run-store.ts` stays
 * one for both engines.
 *
 * TLS is the URL's business, as for every libpq client: `?sslmode=verify-full` (certificate and
 * host name checked against the system CAs, or `&sslrootcert=/etc/rune/db-ca.pem`),
 * `?sslmode=require` (encrypted; pg 8 verifies like verify-full), `?sslmode=no-verify`
 * (encrypted, unverified: only for tests), `?sslmode=disable` or no parameter (clear text: only
 * for a database on loopback or a private socket). The password belongs in `PGPASSWORD` or
 * `~/.pgpass`, not in the config file.
 */
import { RuneError } from '@rune/protocol';
import { Kysely, PostgresDialect, type Selectable, sql, type Transaction } from 'kysely';
import pg from 'pg';
import type { RunsTable, StoreDatabase } from './schema.js';

/** Connections per instance (runs, SSE reads and the claim loop share them). */
export const DEFAULT_POOL_SIZE = 10;

/** True for a `postgres://` or `postgresql://` URL. */
export function isPostgresUrl(store: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(store);
}

/** The URL with its password (if any) replaced, for logs and error messages. */
export function redactDatabaseUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]+):[^@]*@/i, '$1:***@');
}

// int8 (COUNT, bigint columns) arrives as a string by default; every value the store keeps in a
// bigint is a millisecond timestamp or a counter, far below 2^53.
pg.types.setTypeParser(20, (value: string) => Number(value));

/** Options of {@link openPostgresPool}. */
export interface OpenPostgresOptions {
  poolSize?: number;
  /** Receives a line when an idle pooled connection fails (the pool replaces it). */
  onWarning?: (message: string) => void;
}

/** A `pg` pool for `url`. Throws INVALID_CONFIG for a URL `pg` cannot parse. */
export function openPostgresPool(url: string, options: OpenPostgresOptions = {}): pg.Pool {
  let pool: pg.Pool;
  try {
    pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? DEFAULT_POOL_SIZE,
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
      application_name: 'rune-serve',
    });
  } catch (error) {
    throw new RuneError('INVALID_CONFIG', `cannot use the store ${redactDatabaseUrl(url)}`, {
      cause: error,
      details: { key: 'server.store' },
    });
  }
  // A connection that dies while idle (database restart) must not crash the process.
  const reported = new WeakSet<Error>();
  pool.on('error', (error) => {
    reported.add(error);
    options.onWarning?.(`a pooled database connection failed: ${error.message}`);
  });
  // pg-pool listens for a client's errors only while it is idle. A connection that dies while
  // checked out between two queries (a transaction awaiting its caller when the database
  // restarts) emits 'error' with no listener: an uncaught exception, the process gone (seen in
  // the HA test: an instance exited 70 at a PostgreSQL restart). With this listener the client's
  // next query fails instead, the caller's retry takes another connection, and the pool drops
  // the dead one when it is released.
  pool.on('connect', (client) => {
    client.on('error', (error) => {
      // An idle client's error reaches the pool's listener in the same emit: said once.
      queueMicrotask(() => {
        if (!reported.has(error)) {
          options.onWarning?.(`a database connection in use failed: ${error.message}`);
        }
      });
    });
  });
  return pool;
}

/** A Kysely instance over a pool. */
export function openPostgresDatabase<DB>(pool: pg.Pool): Kysely<DB> {
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
}

/** Checks that the database answers; throws INVALID_CONFIG naming the (redacted) URL. */
export async function checkPostgres(pool: pg.Pool, url: string): Promise<void> {
  try {
    await pool.query('select 1');
  } catch (error) {
    throw new RuneError(
      'INVALID_CONFIG',
      `cannot connect to the store ${redactDatabaseUrl(url)}: ${(error as Error).message}`,
      { cause: error, details: { key: 'server.store' } },
    );
  }
}

/**
 * The provisional `runs.position` of a run being inserted, until {@link numberRun} numbers it in
 * the same transaction: negative (no committed run has one) and unique among the transactions in
 * flight (one per backend), so the unique index never makes two inserts wait for each other.
 */
export const provisionalPosition = sql<number>`-pg_backend_pid()`;

const numbered = new WeakMap<object, Selectable<RunsTable>>();

/**
 * Numbers run `runId` (inserted in `trx` with {@link provisionalPosition}): the next position,
 * from the counter row of `run_numbering`, in ONE statement that returns the run row. Call it as
 * late as the transaction allows: the counter's row lock, which serialises numbering across
 * instances so that positions become visible in commit order, is held from here until COMMIT.
 * One statement suffices (an advisory lock needed a statement of its own, since a `max + 1`
 * read sees only what committed before its statement began): a waiter re-reads the counter's
 * committed row once the holder commits (READ COMMITTED re-evaluation). `greatest` with the
 * highest stored position keeps a database correct that an instance of an older version (which
 * numbers by `max + 1`) still writes to. Once per transaction: a second call returns the first
 * call's row.
 */
export async function numberRun(
  trx: Transaction<StoreDatabase>,
  runId: string,
): Promise<Selectable<RunsTable>> {
  const known = numbered.get(trx);
  if (known !== undefined && known.id === runId) return known;
  const row = await trx
    .with('next', (db) =>
      db
        .updateTable('run_numbering')
        .set({
          last_position: sql<number>`greatest(last_position, (select coalesce(max(position), 0) from runs)) + 1`,
        })
        .where('id', '=', 1)
        .returning('last_position'),
    )
    .updateTable('runs')
    .set((eb) => ({ position: eb.selectFrom('next').select('last_position') }))
    .where('id', '=', runId)
    .returningAll()
    .executeTakeFirst();
  if (row === undefined) {
    throw new RuneError('INTERNAL_ERROR', `run ${runId} vanished before it was numbered`);
  }
  numbered.set(trx, row);
  return row;
}
