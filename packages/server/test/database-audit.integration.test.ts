/**
 * The audit chain of a shared PostgreSQL store (src/cluster/database-audit.ts) on a real
 * PostgreSQL: appends are group-committed — one transaction, one advisory lock and one insert per
 * batch — and a batch is all or nothing.
 *
 * - Two sinks on two pools (two instances) append 500 records concurrently: one chain that
 *   verifies, no seq gap, every caller gets its own record back, as stored. Each row's `xmin`
 *   (the id of the transaction that inserted it) counts the transactions: one per record without
 *   batching, so the test fails with batching off. A burst is cut into batches of at most 256.
 * - No caller is answered while its batch's COMMIT has not completed (a deferred trigger holds
 *   the COMMIT): acknowledged = durable.
 * - A batch whose insert fails part-way (a trigger refuses one row of it): retried, then every
 *   caller in it gets AUDIT_WRITE_FAILED, no row of it is stored, and the chain goes on.
 * - The batch's backend terminated mid-insert (pg_terminate_backend): the batch is retried and
 *   lands once.
 * - A commit whose answer is lost (a loopback proxy drops the connection as PostgreSQL reports
 *   COMMIT): the retry finds the batch committed and appends nothing twice.
 * - A process killed (SIGKILL) mid-batch: its callers were never answered and nothing of the
 *   batch is stored.
 *
 * Triggers and an advisory lock held by the test stop a batch at a known point, so nothing here
 * waits on time.
 */
import { spawn } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AuditEntry,
  type AuditRecord,
  type AuditSink,
  loadOrCreateAuditKey,
} from '@rune/core';
import { RuneError } from '@rune/protocol';
import { sql } from 'kysely';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createDatabaseAuditSink,
  MAX_DATABASE_AUDIT_BATCH,
  verifyDatabaseAudit,
} from '../src/cluster/database-audit.js';
import { openRunStore, type RunStore } from '../src/index.js';
import { until } from './harness.js';
import { postgresAvailable, usePostgresPerFile } from './postgres.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const { freshUrl } = usePostgresPerFile('audit');

/** The advisory lock key a test trigger waits on (held by the test to stop a batch mid-insert). */
const GATE_KEY = 4242;

async function openStore(url: string): Promise<RunStore> {
  const store = await openRunStore(url);
  cleanups.push(() => store.close());
  return store;
}

async function client(url: string): Promise<pg.Client> {
  const connection = new pg.Client({ connectionString: url });
  await connection.connect();
  cleanups.push(() => connection.end().catch(() => undefined));
  return connection;
}

function keyFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rune-db-audit-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'audit.key');
}

const entry = (runId: string): AuditEntry => ({
  event: 'dry-run',
  run_id: runId,
  operator: 'token:test',
  action: 'noop',
  plugin: null,
  node: null,
  nodes: ['localhost'],
  transport: null,
  status: 'planned',
  error_code: null,
  error_message: null,
  duration_ms: null,
  trace_id: 'a'.repeat(32),
  params: {},
  metadata: {},
});

async function rows(store: RunStore): Promise<{ seq: number; record: AuditRecord; tx: string }[]> {
  const result = await sql<{ seq: number; record_json: string; tx: string }>`
    select seq, record_json, xmin::text as tx from audit_records order by seq`.execute(store.db);
  return result.rows.map((row) => ({
    seq: Number(row.seq),
    record: JSON.parse(row.record_json) as AuditRecord,
    tx: row.tx,
  }));
}

async function verified(store: RunStore, key: string): Promise<boolean> {
  const publicKey = createPublicKey((await loadOrCreateAuditKey(key)).publicKeyPem);
  const verification = await verifyDatabaseAudit(store.db, 'test', { publicKey });
  return verification.ok;
}

/** Resolves with the rejection of `promise` (it must reject). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** Polls (no fixed sleep) until `check` returns a value. */
/** The pid of the backend waiting for the gate lock (a batch stopped mid-insert). */
function gateWaiter(admin: pg.Client, other?: number): Promise<number> {
  return until(
    'a batch waiting in the trigger',
    async () => {
      const result = await admin.query<{ pid: number }>(
        `select pid from pg_locks where locktype = 'advisory' and objid = ${GATE_KEY} and not granted`,
      );
      const pid = result.rows[0]?.pid;
      return pid === undefined || pid === other ? undefined : pid;
    },
    30_000,
    20,
  );
}

/** A trigger that makes the insert of the row with `seq` wait for the gate lock. */
async function gateAt(admin: pg.Client, seq: number): Promise<void> {
  await admin.query(`
    create function rune_test_gate() returns trigger language plpgsql as $$
    begin
      if new.seq = ${seq} then perform pg_advisory_xact_lock(${GATE_KEY}); end if;
      return new;
    end $$;
    create trigger rune_test_gate before insert on audit_records
      for each row execute function rune_test_gate();`);
}

/** Holds the gate lock in an open transaction of its own connection until `release()`. */
async function holdGate(url: string): Promise<{ release(): Promise<void> }> {
  const holder = await client(url);
  await holder.query('begin');
  await holder.query(`select pg_advisory_xact_lock(${GATE_KEY})`);
  return {
    async release() {
      await holder.query('commit');
    },
  };
}

describe.skipIf(!postgresAvailable)('database audit sink (real PostgreSQL)', () => {
  it('two instances appending 500 records concurrently write one verifying chain, in batches', async () => {
    const url = await freshUrl();
    const key = keyFile();
    await loadOrCreateAuditKey(key);
    const stores = [await openStore(url), await openStore(url)];
    const sinks = stores.map((store, index) =>
      createDatabaseAuditSink({ db: store.db, host: `instance-${index}`, keyFile: key }),
    );
    // Ten callers per instance, each appending its next record once the last one is answered.
    const answered = new Map<string, AuditRecord>();
    await Promise.all(
      sinks.flatMap((sink, instance) =>
        Array.from({ length: 10 }, async (_, caller) => {
          for (let n = 0; n < 25; n++) {
            const runId = `r-${instance}-${caller}-${n}`;
            const record = await sink.append(entry(runId));
            expect(record.run_id).toBe(runId);
            answered.set(runId, record);
          }
        }),
      ),
    );
    expect(answered.size).toBe(500);
    const stored = await rows(stores[0]!);
    expect(stored.map((row) => row.seq)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    // Every caller's answer is the record as stored (hash, seq, signature: all of it).
    for (const row of stored) {
      expect(answered.get(row.record.run_id ?? '')).toEqual(row.record);
    }
    expect(new Set(stored.map((row) => row.record.host))).toEqual(
      new Set(['instance-0', 'instance-1']),
    );
    expect(await verified(stores[0]!, key)).toBe(true);
    // One transaction per batch: about one per round of the ten callers of an instance (2 x 25),
    // never one per record (500 without batching).
    const transactions = new Set(stored.map((row) => row.tx)).size;
    expect(transactions).toBeLessThanOrEqual(100);
  });

  it('cuts a burst into batches of at most 256, each one transaction, in call order', async () => {
    const url = await freshUrl();
    const store = await openStore(url);
    const sink = createDatabaseAuditSink({ db: store.db, host: 'h' });
    const count = 2 * MAX_DATABASE_AUDIT_BATCH + 88;
    const records = await Promise.all(
      Array.from({ length: count }, (_, n) => sink.append(entry(`r-${n}`))),
    );
    expect(records.map((record) => record.seq)).toEqual(
      Array.from({ length: count }, (_, i) => i + 1),
    );
    expect(records.map((record) => record.run_id)).toEqual(
      Array.from({ length: count }, (_, n) => `r-${n}`),
    );
    const sizes = new Map<string, number>();
    for (const row of await rows(store)) sizes.set(row.tx, (sizes.get(row.tx) ?? 0) + 1);
    expect([...sizes.values()]).toEqual([MAX_DATABASE_AUDIT_BATCH, MAX_DATABASE_AUDIT_BATCH, 88]);
    expect(await verifyDatabaseAudit(store.db, 'test', { allowUnsigned: true })).toMatchObject({
      ok: true,
    });
  });

  it('answers no caller before the COMMIT of its batch has completed', async () => {
    const url = await freshUrl();
    const store = await openStore(url);
    const sink = createDatabaseAuditSink({ db: store.db, host: 'h' });
    const admin = await client(url);
    // A deferred constraint trigger runs inside COMMIT: with the gate held, the batch's COMMIT
    // is sent and cannot complete.
    await admin.query(`
      create function rune_test_commit_gate() returns trigger language plpgsql as $$
      begin
        perform pg_advisory_xact_lock(${GATE_KEY});
        return null;
      end $$;
      create constraint trigger rune_test_commit_gate after insert on audit_records
        deferrable initially deferred for each row execute function rune_test_commit_gate();`);
    const gate = await holdGate(url);
    let settled = 0;
    const appends = Array.from({ length: 10 }, (_, n) =>
      sink.append(entry(`r-${n}`)).finally(() => {
        settled++;
      }),
    );
    const waiter = await gateWaiter(admin);
    const state = await admin.query<{ query: string }>(
      'select query from pg_stat_activity where pid = $1',
      [waiter],
    );
    expect(state.rows[0]?.query.trim().toLowerCase()).toBe('commit');
    // The COMMIT is in progress and cannot finish: nobody may have been answered yet.
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(0);
    await gate.release();
    const records = await Promise.all(appends);
    expect(records.map((record) => record.seq)).toEqual(
      Array.from({ length: 10 }, (_, i) => i + 1),
    );
    expect(settled).toBe(10);
  });

  it('a batch whose insert fails part-way is retried, then fails every caller in it, and stores none of it', async () => {
    const url = await freshUrl();
    const key = keyFile();
    const store = await openStore(url);
    const sink = createDatabaseAuditSink({ db: store.db, host: 'h', keyFile: key, retryMs: 500 });
    await Promise.all([1, 2, 3].map((n) => sink.append(entry(`r-before-${n}`))));
    const admin = await client(url);
    // Refuses the 6th row of the next batch, after five rows of it were inserted; counts tries.
    await admin.query(`
      create sequence rune_test_tries;
      create function rune_test_refuse() returns trigger language plpgsql as $$
      begin
        if new.record_json like '%r-poison%' then
          perform nextval('rune_test_tries');
          raise exception 'refused by the test';
        end if;
        return new;
      end $$;
      create trigger rune_test_refuse before insert on audit_records
        for each row execute function rune_test_refuse();`);
    const batch = Array.from({ length: 10 }, (_, n) =>
      sink.append(entry(n === 5 ? 'r-poison' : `r-batch-${n}`)),
    );
    const errors = await Promise.all(batch.map(rejection));
    for (const error of errors) {
      expect(RuneError.is(error) && error.code).toBe('AUDIT_WRITE_FAILED');
    }
    const tries = await admin.query<{ last_value: string }>(
      'select last_value from rune_test_tries',
    );
    expect(Number(tries.rows[0]?.last_value)).toBeGreaterThan(1);
    expect((await rows(store)).map((row) => row.record.run_id)).toEqual([
      'r-before-1',
      'r-before-2',
      'r-before-3',
    ]);
    await admin.query('drop trigger rune_test_refuse on audit_records');
    const after = await sink.append(entry('r-after'));
    expect(after.seq).toBe(4);
    expect(await verified(store, key)).toBe(true);
  });

  it('a batch whose backend is terminated mid-insert is retried and lands once', async () => {
    const url = await freshUrl();
    const key = keyFile();
    const store = await openStore(url);
    const sink = createDatabaseAuditSink({ db: store.db, host: 'h', keyFile: key });
    const admin = await client(url);
    await gateAt(admin, 5);
    const gate = await holdGate(url);
    const appends = Array.from({ length: 20 }, (_, n) => sink.append(entry(`r-${n}`)));
    // Rows 1-4 of the batch are inserted in its transaction, row 5 waits: end that backend.
    const first = await gateWaiter(admin);
    await admin.query('select pg_terminate_backend($1)', [first]);
    await gateWaiter(admin, first);
    await gate.release();
    const records = await Promise.all(appends);
    expect(records.map((record) => record.seq)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    const stored = await rows(store);
    expect(stored.map((row) => row.record.run_id)).toEqual(
      Array.from({ length: 20 }, (_, n) => `r-${n}`),
    );
    expect(new Set(stored.map((row) => row.tx)).size).toBe(1);
    expect(await verified(store, key)).toBe(true);
  });

  it('a commit whose answer is lost is found on the retry: the batch is stored once', async () => {
    const url = await freshUrl();
    const store = await openStore(url);
    // A loopback proxy to PostgreSQL that, once armed, drops both sides of the connection when
    // the server's answer to COMMIT passes (CommandComplete "COMMIT"): committed, never told.
    const target = new URL(url);
    let armed = false;
    let dropped = 0;
    const sockets = new Set<Socket>();
    const proxy = createServer((inbound) => {
      const outbound = connect(Number(target.port), target.hostname);
      sockets.add(inbound);
      sockets.add(outbound);
      inbound.on('data', (chunk: Buffer) => outbound.write(chunk));
      outbound.on('data', (chunk: Buffer) => {
        if (armed && chunk.includes(Buffer.from('COMMIT\0'))) {
          armed = false;
          dropped++;
          inbound.destroy();
          outbound.destroy();
          return;
        }
        inbound.write(chunk);
      });
      const close = () => {
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on('error', close);
      outbound.on('error', close);
      inbound.on('close', close);
      outbound.on('close', close);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          proxy.close(() => resolve());
        }),
    );
    const address = proxy.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const proxied = new URL(url);
    proxied.port = String(port);
    const viaProxy = await openStore(proxied.toString());
    const sink = createDatabaseAuditSink({ db: viaProxy.db, host: 'h' });
    await sink.append(entry('r-first'));
    armed = true;
    const records = await Promise.all(
      Array.from({ length: 5 }, (_, n) => sink.append(entry(`r-${n}`))),
    );
    expect(dropped).toBe(1);
    expect(records.map((record) => record.seq)).toEqual([2, 3, 4, 5, 6]);
    const stored = await rows(store);
    expect(stored.map((row) => row.record.run_id)).toEqual([
      'r-first',
      'r-0',
      'r-1',
      'r-2',
      'r-3',
      'r-4',
    ]);
    for (const record of records) expect(stored[(record.seq ?? 0) - 1]?.record).toEqual(record);
  });

  it('a process killed mid-batch answered none of its callers and stored none of the batch', async () => {
    const dist = join(import.meta.dirname, '../dist/cluster/database-audit.js');
    const storeDist = join(import.meta.dirname, '../dist/store/run-store.js');
    if (!existsSync(dist)) throw new Error('build @rune/server first (npx pnpm build)');
    const url = await freshUrl();
    const store = await openStore(url);
    const sink: AuditSink = createDatabaseAuditSink({ db: store.db, host: 'h' });
    await sink.append(entry('r-first'));
    const admin = await client(url);
    await gateAt(admin, 4);
    const gate = await holdGate(url);
    // A writer process: ten appends in one batch; it prints each answer it gets.
    const script = `
      const { createDatabaseAuditSink } = await import(${JSON.stringify(dist)});
      const { openRunStore } = await import(${JSON.stringify(storeDist)});
      const store = await openRunStore(${JSON.stringify(url)});
      const sink = createDatabaseAuditSink({ db: store.db, host: 'killed' });
      const entry = ${JSON.stringify(entry('r-x'))};
      for (let n = 0; n < 10; n++) {
        sink.append({ ...entry, run_id: 'r-killed-' + n }).then((record) => {
          process.stdout.write('answered ' + record.seq + '\\n');
        });
      }`;
    const writer = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    writer.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    writer.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise((resolve) => writer.once('exit', resolve));
    cleanups.push(async () => {
      writer.kill('SIGKILL');
      await exited;
    });
    // Rows 2 and 3 of its batch are inserted in its transaction, row 4 waits: kill -9 it.
    const backend = await gateWaiter(admin);
    writer.kill('SIGKILL');
    await exited;
    expect(output).toBe('');
    await gate.release();
    // The backend finds its client gone once it has the lock, and rolls the batch back.
    await until(
      'the killed writer’s backend to end',
      async () => {
        const alive = await admin.query('select 1 from pg_stat_activity where pid = $1', [backend]);
        return alive.rowCount === 0 ? true : undefined;
      },
      30_000,
      20,
    );
    expect((await rows(store)).map((row) => row.record.run_id)).toEqual(['r-first']);
    await admin.query('drop trigger rune_test_gate on audit_records');
    expect((await sink.append(entry('r-after'))).seq).toBe(2);
    expect(await verifyDatabaseAudit(store.db, 'test', { allowUnsigned: true })).toMatchObject({
      ok: true,
    });
  });
});
