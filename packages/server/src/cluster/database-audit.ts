/**
 * The audit trail of a shared PostgreSQL store: one hash chain in `audit_records`, appended by
 * every instance. Appends are batched (group commit): one transaction per batch, which first
 * takes a transaction-scoped advisory lock (`pg_advisory_xact_lock`): batches from all instances
 * are serialized in the database, each reads the head the previous one committed, and the lock
 * goes with the commit or with the connection of a killed process — nothing to clean up. The
 * primary key on `seq` and the unique `hash` would refuse a forked chain even without the lock.
 * One lock per batch instead of one per record: with several instances the lock was what every
 * append waited on (bench/README.md, "HA").
 *
 * Records are sealed and verified by core's own functions (`prepareAuditRecord`,
 * `verifyAuditText`), so a database chain and a file chain are the same format: `rune audit
 * verify --store postgres://...` checks it like a file. Every instance must sign with the same
 * `[audit] key_file` (distribute one key), or verification reports the other key's records.
 */
import {
  AUDIT_GENESIS_HASH,
  type AuditEntry,
  type AuditRecord,
  type AuditSigner,
  type AuditSink,
  type AuditVerification,
  loadOrCreateAuditKey,
  type PreparedAuditRecord,
  prepareAuditRecord,
  type VerifyAuditLogOptions,
  verifyAuditText,
} from '@rune/core';
import { RuneError } from '@rune/protocol';
import { type Kysely, sql } from 'kysely';
import type { LauncherAuditTrail } from '../runs/launcher.js';
import {
  checkPostgres,
  isPostgresUrl,
  openPostgresDatabase,
  openPostgresPool,
  redactDatabaseUrl,
} from '../store/postgres-dialect.js';
import type { StoreDatabase } from '../store/schema.js';

/** The advisory lock key of audit appends ("RUNEAUDT" as a 64-bit integer). */
export const AUDIT_LOCK_KEY = 0x52554e4541554454n;

/** Options of {@link createDatabaseAuditSink}. */
export interface DatabaseAuditSinkOptions {
  db: Kysely<StoreDatabase>;
  host: string;
  /** `[audit] key_file`: the signing key (created 0600 on first use, as for the file sink). */
  keyFile?: string;
  now?: () => Date;
  /** How long a batch is retried while the database is unreachable. Default 30 s. */
  retryMs?: number;
}

/** How long an append is retried while the database is unreachable. */
const APPEND_RETRY_MS = 30_000;

/**
 * Most records one transaction appends: a bound on the statement (4 parameters a record, each
 * record at most 64 KiB) and on how long one instance holds the lock while the others wait.
 */
export const MAX_DATABASE_AUDIT_BATCH = 256;

interface Waiting {
  entry: AuditEntry;
  resolve: (record: AuditRecord) => void;
  reject: (error: unknown) => void;
}

function appendFailed(error: unknown): RuneError {
  if (RuneError.is(error) && error.code === 'AUDIT_WRITE_FAILED') return error;
  return new RuneError('AUDIT_WRITE_FAILED', 'cannot append to the audit trail in the database', {
    cause: error,
    source: { component: 'rune-server' },
  });
}

/**
 * The audit sink over `audit_records` (PostgreSQL), with group commit. Appends that arrive while
 * a transaction is in flight wait and go together in the next one: it takes the advisory lock
 * once, reads the head once, seals every waiting record in order and inserts them in one
 * statement. Each caller is answered only after that COMMIT (acknowledged = durable), and a
 * batch is all or nothing. A failed batch is retried whole for `retryMs` (a restart or
 * fail-over of the database); past that every caller in it gets AUDIT_WRITE_FAILED.
 */
export function createDatabaseAuditSink(options: DatabaseAuditSinkOptions): AuditSink {
  const { db } = options;
  const now = options.now ?? (() => new Date());
  const retryMs = options.retryMs ?? APPEND_RETRY_MS;
  let signer: Promise<AuditSigner | undefined> | undefined;
  const getSigner = (): Promise<AuditSigner | undefined> => {
    signer ??=
      options.keyFile === undefined
        ? Promise.resolve(undefined)
        : loadOrCreateAuditKey(options.keyFile);
    signer.catch(() => {
      signer = undefined;
    });
    return signer;
  };

  /**
   * One attempt at appending `prepared`. `sealed` holds what the last attempt sealed: when the
   * connection died after its COMMIT was sent, that COMMIT may have gone through, so the first
   * record's hash is looked up before sealing anew — a batch is never appended twice.
   */
  const appendOnce = (
    prepared: readonly PreparedAuditRecord[],
    sealed: { records?: AuditRecord[] },
  ) =>
    db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(${sql.lit(AUDIT_LOCK_KEY.toString())}::bigint)`.execute(
        trx,
      );
      const earlier = sealed.records;
      if (earlier !== undefined) {
        const committed = await trx
          .selectFrom('audit_records')
          .select('seq')
          .where('hash', '=', earlier[0]!.hash)
          .executeTakeFirst();
        if (committed !== undefined) return earlier;
      }
      const last = await trx
        .selectFrom('audit_records')
        .select(['seq', 'hash'])
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      let head = { hash: last?.hash ?? AUDIT_GENESIS_HASH, seq: Number(last?.seq ?? 0) };
      const records: AuditRecord[] = [];
      for (const record of prepared) {
        const next = record.seal(head, now().toISOString());
        records.push(next);
        head = { hash: next.hash, seq: head.seq + 1 };
      }
      await trx
        .insertInto('audit_records')
        .values(
          records.map((record) => ({
            seq: record.seq ?? 0,
            hash: record.hash,
            timestamp: record.timestamp,
            record_json: JSON.stringify(record),
          })),
        )
        .execute();
      sealed.records = records;
      return records;
    });

  const appendBatch = async (prepared: readonly PreparedAuditRecord[]): Promise<AuditRecord[]> => {
    const giveUp = Date.now() + retryMs;
    const sealed: { records?: AuditRecord[] } = {};
    for (let attempt = 0; ; attempt++) {
      try {
        return await appendOnce(prepared, sealed);
      } catch (error) {
        // The database away for a moment (restart, fail-over): the batch is retried, so a run
        // does not fail for a blip; past the budget its callers get AUDIT_WRITE_FAILED.
        if (Date.now() >= giveUp) throw appendFailed(error);
        await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 100 * 2 ** attempt)));
      }
    }
  };

  let waiting: Waiting[] = [];
  let writing = false;
  const drain = async (): Promise<void> => {
    try {
      while (waiting.length > 0) {
        const batch = waiting.slice(0, MAX_DATABASE_AUDIT_BATCH);
        waiting = waiting.slice(batch.length);
        let recordSigner: AuditSigner | undefined;
        try {
          recordSigner = await getSigner();
        } catch (error) {
          for (const item of batch) item.reject(appendFailed(error));
          continue;
        }
        // Bounding and serialising each entry before the lock; an entry that cannot be
        // prepared fails its own caller only.
        const ready: { item: Waiting; prepared: PreparedAuditRecord }[] = [];
        for (const item of batch) {
          try {
            ready.push({
              item,
              prepared: prepareAuditRecord(item.entry, {
                host: options.host,
                signer: recordSigner,
              }),
            });
          } catch (error) {
            item.reject(appendFailed(error));
          }
        }
        if (ready.length === 0) continue;
        try {
          const records = await appendBatch(ready.map((one) => one.prepared));
          for (const [index, one] of ready.entries()) one.item.resolve(records[index]!);
        } catch (error) {
          for (const one of ready) one.item.reject(appendFailed(error));
        }
      }
    } finally {
      writing = false;
    }
  };

  return {
    append(entry: AuditEntry): Promise<AuditRecord> {
      return new Promise<AuditRecord>((resolve, reject) => {
        waiting.push({ entry, resolve, reject });
        if (writing) return;
        writing = true;
        // On the next turn, so that the appends of this turn go in the same batch.
        setImmediate(() => void drain());
      });
    },
  };
}

/** Every record of the database chain, in order. */
export async function readDatabaseAudit(db: Kysely<StoreDatabase>): Promise<AuditRecord[]> {
  const rows = await db.selectFrom('audit_records').select('record_json').orderBy('seq').execute();
  return rows.map((row) => JSON.parse(row.record_json) as AuditRecord);
}

/** Verifies the database chain with core's verifier (`label` names the store in messages). */
export async function verifyDatabaseAudit(
  db: Kysely<StoreDatabase>,
  label: string,
  options: VerifyAuditLogOptions = {},
): Promise<AuditVerification> {
  const rows = await db.selectFrom('audit_records').select('record_json').orderBy('seq').execute();
  return verifyAuditText(rows.map((row) => row.record_json).join('\n'), label, options);
}

/** The launcher's audit trail over the database chain of a shared store. */
export function databaseAuditTrail(
  db: Kysely<StoreDatabase>,
  storeUrl: string,
): LauncherAuditTrail {
  return {
    sink: (host, keyFile) => createDatabaseAuditSink({ db, host, keyFile }),
    read: () => readDatabaseAudit(db),
    verify: (options) => verifyDatabaseAudit(db, redactDatabaseUrl(storeUrl), options),
  };
}

/**
 * Opens a shared store read-only for the audit commands (no migration, no write), runs `read`
 * over its chain and closes it. Throws INVALID_ARGUMENT for a URL that is not `postgres://` or a
 * store that holds no audit chain (a schema before 0005_cluster), INVALID_CONFIG when it cannot
 * be reached.
 */
async function withStoreAudit<T>(
  url: string,
  read: (db: Kysely<StoreDatabase>) => Promise<T>,
): Promise<T> {
  if (!isPostgresUrl(url)) {
    throw new RuneError(
      'INVALID_ARGUMENT',
      '--store must be a postgres:// URL (a file audit log is read without it)',
      {
        details: { store: redactDatabaseUrl(url).slice(0, 200) },
      },
    );
  }
  const pool = openPostgresPool(url, { poolSize: 1 });
  const db = openPostgresDatabase<StoreDatabase>(pool);
  try {
    await checkPostgres(pool, url);
    const tables = await db.introspection.getTables();
    if (!tables.some((table) => table.name === 'audit_records')) {
      throw new RuneError(
        'INVALID_ARGUMENT',
        `the store ${redactDatabaseUrl(url)} holds no audit chain (run rune db migrate)`,
        {
          details: { store: redactDatabaseUrl(url) },
        },
      );
    }
    return await read(db);
  } finally {
    await db.destroy();
  }
}

/**
 * `rune audit verify --store postgres://...`: verifies the chain of a shared store without
 * migrating or otherwise writing it. Throws INVALID_CONFIG when the store cannot be reached and
 * INVALID_ARGUMENT when it holds no audit chain (a schema before 0005_cluster).
 */
export function verifyStoreAudit(
  url: string,
  options: VerifyAuditLogOptions = {},
): Promise<AuditVerification> {
  return withStoreAudit(url, (db) => verifyDatabaseAudit(db, redactDatabaseUrl(url), options));
}

/**
 * `rune audit --store postgres://...`: every record of a shared store's chain, in order, read
 * without migrating or writing the store (the same errors as {@link verifyStoreAudit}).
 */
export function readStoreAudit(url: string): Promise<AuditRecord[]> {
  return withStoreAudit(url, readDatabaseAudit);
}
