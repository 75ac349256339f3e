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
import { Kysely, PostgresDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';

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

/** The advisory lock key that serializes run numbering ("RUNERUNS" as a 64-bit integer). */
export const RUN_NUMBERING_LOCK_KEY = 0x52554e4552554e53n;

/**
 * Serializes the numbering of runs (`runs.position`, max + 1) across instances until the
 * transaction ends. Without it, concurrent inserts from several instances read the same max and
 * all but one retry, again and again under load.
 */
export async function lockRunNumbering(trx: Transaction<unknown>): Promise<void> {
  await sql`select pg_advisory_xact_lock(${sql.lit(RUN_NUMBERING_LOCK_KEY.toString())}::bigint)`.execute(
    trx,
  );
}
