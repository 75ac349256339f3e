/**
 * The audit trail: JSON lines, hash-chained and signed, written ahead of every run.
 *
 * A run writes an `intent` record (who, what, where, parameters, run id) before anything is sent
 * to any node, then one `run` record (the outcome) per node. Dry runs and refusals write one
 * record each. A run whose nodes have no outcome record was attempted and never finished
 * recording (rune was killed, or the disk filled up): see {@link findRunsWithoutOutcome}.
 *
 * Each record carries `seq` (1-based position in the log), `prev_hash` (the previous record's
 * `hash`, 64 zeros for the first), `hash` = sha256 of the canonical JSON (keys sorted, no
 * whitespace) of the record without `hash` and `sig`, and `sig`, an Ed25519 signature over `hash`
 * by the key in `[audit] key_file` (see audit-key.ts), identified by `key_id`. Whoever can write
 * the log but not read the key cannot alter, insert, reorder or remove a record inside the chain
 * without {@link verifyAuditLog} noticing; removing records from the END is detected against an
 * anchored head (`seq` + `hash` kept elsewhere). Logs of older RUNE versions (v1 records: no seq,
 * no signature) still verify: unsigned records are accepted as a prefix sealed by a later signed
 * record (whose hash chains them), and a log with no signed record at all only when asked.
 *
 * The file sink creates the file 0600 in a 0700 directory, appends with O_APPEND under a lock
 * file (see audit-lock.ts) so concurrent `rune` processes keep one chain, and syncs the file
 * (fdatasync; and the directory when it created the file) before an append resolves. A batch is
 * a short run of synchronous system calls under the lock ({@link appendAuditBatch}): in the
 * calling thread for the CLI (a `rune` process starts no thread), or in a writer thread that
 * owns the file for rune serve (`writer: 'thread'`, audit-writer.ts), where one batch is one
 * message there and one back and the server's event loop neither signs nor waits on the disk.
 * Every record is bounded (audit-bounds.ts).
 */
import type { KeyObject } from 'node:crypto';
import {
  closeSync,
  constants,
  existsSync,
  fdatasyncSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  writeSync,
} from 'node:fs';
import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import { RuneError } from '@rune/protocol';
import { sha256Hex } from '@rune/transport';
import { fsyncPath } from '../durable-fs.js';
import type { HeapReclaim } from '../memory/reclaim.js';
import { boundAuditEntry } from './audit-bounds.js';
import {
  type AuditSigner,
  auditKeyId,
  loadOrCreateAuditKey,
  verifyAuditSignature,
} from './audit-key.js';
import {
  type AuditLockOptions,
  acquireAuditLock,
  DEFAULT_AUDIT_LOCK_TIMEOUT_MS,
} from './audit-lock.js';
import { createAuditWriterThread } from './audit-writer.js';

/** `prev_hash` of the first record. */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

/** The record version this RUNE writes (1: unsigned, no seq; 2: seq, key_id, sig). */
export const AUDIT_RECORD_VERSION = 2;

/**
 * What kind of event a record describes: `intent` (a run is about to start, written before
 * anything is sent), `run` (the outcome of one node), `dry-run`, `refusal`, `policy` (an RBAC
 * decision of rune serve, allow or deny, with the deciding rule) and `approval` (a four-eyes vote).
 */
/**
 * `alert`: a received alert and its outcome (@rune/server's alert receivers); `policy` and
 * `approval`: a policy decision and an approval vote (@rune/server's RBAC); `session`: a
 * dashboard sign-in, sign-out or session expiry (@rune/server's browser sessions); `workflow`: a
 * workflow run (of `rune workflow run` or @rune/server) refused, started or ended (its `run_id`
 * is the workflow run id; the end record lists each step's run ids).
 */
export type AuditEvent =
  | 'intent'
  | 'run'
  | 'dry-run'
  | 'refusal'
  | 'alert'
  | 'policy'
  | 'approval'
  | 'session'
  | 'workflow';

/** The fields a caller supplies; the sink adds timestamp, chain and hash. */
export interface AuditEntry {
  event: AuditEvent;
  /** Ties an `intent` record to the `run` records of its nodes. */
  run_id?: string;
  operator: string;
  action: string;
  plugin: { version: string; sha256: string; path: string; source: string } | null;
  /** The node, or null for a refusal before any node ran (or a whole-plan dry run). */
  node: string | null;
  transport: string | null;
  /** started (intent) | success | partial | failure | skipped | planned | refused */
  status: string;
  error_code: string | null;
  error_message: string | null;
  duration_ms: number | null;
  trace_id: string;
  /** Parameters with sensitive values replaced by "[REDACTED]". */
  params: Record<string, unknown> | null;
  /** Nodes of an intent, dry run or refusal, when not one record per node (at most 100). */
  nodes?: string[];
  /** How many nodes there were, when `nodes` lists only the first ones. */
  nodes_total?: number;
  /** Transport facts (shipped, connection reused, host key checking, ...). */
  metadata: Record<string, unknown>;
}

/** What a refusal record says: a run stopped before any node was contacted. */
export interface RefusalFacts {
  operator: string;
  action: string;
  nodes: readonly string[];
  transport: string | null;
  error: { code: string; message: string; traceId?: string | undefined };
  /** Trace id to use when the error carries none. */
  traceId: string;
  dryRun: boolean;
}

/**
 * The audit entry for a refused run (validation or policy error before any node ran). One
 * builder serves the facade and the CLI's early refusals, so both records have one shape.
 */
export function refusalEntry(facts: RefusalFacts): AuditEntry {
  return {
    event: 'refusal',
    operator: facts.operator,
    action: facts.action.slice(0, 128),
    plugin: null,
    node: null,
    nodes: facts.nodes.slice(0, 100).map((node) => node.slice(0, 255)),
    transport: facts.transport,
    status: 'refused',
    error_code: facts.error.code,
    error_message: facts.error.message,
    duration_ms: null,
    trace_id: facts.error.traceId ?? facts.traceId,
    params: null,
    metadata: { dry_run: facts.dryRun },
  };
}

/** One stored audit record. */
export interface AuditRecord extends AuditEntry {
  /** 1: written by RUNE before records were signed (no seq, no sig). */
  v: 1 | 2;
  /** 1-based position in the log (v2). */
  seq?: number;
  timestamp: string;
  /** Host name of the control node. */
  host: string;
  prev_hash: string;
  /** Key id of the signing key (v2, signed). */
  key_id?: string;
  hash: string;
  /** Base64 Ed25519 signature over `hash` (v2, signed); not part of the hashed content. */
  sig?: string;
}

/** Where audit records go. Injectable: tests and services provide their own. */
export interface AuditSink {
  /**
   * Appends one record and resolves once it is durable; throws AUDIT_WRITE_FAILED when it
   * cannot. Entries are bounded (`boundAuditEntry`) before they are stored.
   */
  append(entry: AuditEntry): Promise<AuditRecord>;
}

/** Options of {@link createFileAuditSink}. */
export interface FileAuditSinkOptions {
  path: string;
  /** Clock (injectable). */
  now?: () => Date;
  /** Host name recorded in each record. */
  host: string;
  /** How long to wait for a lock file held by a live process. Default 5000 ms. */
  lockTimeoutMs?: number;
  /**
   * The Ed25519 private key (PEM) that signs every record, created 0600 on first use
   * (`[audit] key_file`). Without it (and without `signer`) records are unsigned.
   */
  keyFile?: string;
  /** A signer to use instead of `keyFile`. */
  signer?: AuditSigner;
  /**
   * `thread`: batches are written by a worker thread that owns the file for this sink (lock,
   * tail, hash chain, signature, write, fdatasync: one message there, one back), so a busy event
   * loop (rune serve) neither signs nor waits between file operations. Needs `keyFile` (not
   * `signer`) and the real clock (no `now`); otherwise, and by default (`inline`: a short-lived
   * CLI must not pay a thread's start-up), batches are written in the calling thread with
   * synchronous system calls under the lock.
   */
  writer?: 'inline' | 'thread';
}

/** The OS user running RUNE (`os.userInfo()`, falling back to `$USER`, then "unknown"). */
export function currentOperator(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  try {
    return userInfo().username;
  } catch {
    return env.USER ?? env.LOGNAME ?? 'unknown';
  }
}

/** Canonical JSON: object keys sorted, no whitespace; the input of the record hash. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
}

/**
 * The hash of a record: sha256 over the canonical JSON of everything but `hash` and `sig` —
 * every field a caller supplied (parameters included), the chain link and the key id.
 */
export function hashAuditRecord(record: Omit<AuditRecord, 'hash' | 'sig'> | AuditRecord): string {
  const { hash: _hash, sig: _sig, ...rest } = record as AuditRecord;
  return sha256Hex(canonicalJson(rest));
}

/** Where the chain stands: the last record's hash and seq. */
export interface ChainHead {
  hash: string;
  seq: number;
}

/** A record whose content is fixed and whose place in a chain is not yet: see {@link prepareAuditRecord}. */
export interface PreparedAuditRecord {
  /**
   * The record that follows `head`, hashed and signed, stamped `timestamp`. Only the chain
   * fields (`seq`, `timestamp`, `prev_hash`) are set here; each call returns a new record.
   */
  seal(head: ChainHead, timestamp: string): AuditRecord;
}

/** The fields a sink sets when it seals; everything else is fixed when the record is prepared. */
type ChainField = 'seq' | 'timestamp' | 'prev_hash';

/**
 * Bounds `entry` and builds the canonical JSON of everything but the chain fields, so that a
 * sink can do this work before it takes its lock and, holding the lock, pay only for the chain
 * link: placing three fields, one sha256 and the signature (which signs the hash and so cannot
 * move out). The hash is the one {@link hashAuditRecord} computes for the sealed record.
 */
export function prepareAuditRecord(
  entry: AuditEntry,
  facts: { host: string; signer: AuditSigner | undefined },
): PreparedAuditRecord {
  const signer = facts.signer;
  // Key order as the records have always been written (seq after v, prev_hash after the entry).
  const base: Omit<AuditRecord, 'hash' | 'sig'> = {
    v: 2,
    seq: 0,
    timestamp: '',
    host: facts.host.slice(0, 255),
    ...boundAuditEntry(entry),
    prev_hash: '',
    ...(signer === undefined ? {} : { key_id: signer.keyId }),
  };
  // The sink sets these, whatever an entry carried (assignment keeps each key's position).
  base.seq = 0;
  base.timestamp = '';
  base.prev_hash = '';
  // canonicalJson(base) as its sorted `"key":value` members, with a slot for each chain field.
  const keys = Object.entries(base)
    .filter(([, value]) => value !== undefined)
    .map(([key]) => key)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const members = keys.map((key) =>
    key === 'seq' || key === 'timestamp' || key === 'prev_hash'
      ? ''
      : `${JSON.stringify(key)}:${canonicalJson(base[key as keyof typeof base])}`,
  );
  const slot = (key: ChainField): number => keys.indexOf(key);
  const slots = { seq: slot('seq'), timestamp: slot('timestamp'), prev_hash: slot('prev_hash') };
  return {
    seal(head, timestamp) {
      const seq = head.seq + 1;
      const parts = members.slice();
      parts[slots.seq] = `"seq":${canonicalJson(seq)}`;
      parts[slots.timestamp] = `"timestamp":${canonicalJson(timestamp)}`;
      parts[slots.prev_hash] = `"prev_hash":${canonicalJson(head.hash)}`;
      const hash = sha256Hex(`{${parts.join(',')}}`);
      return {
        ...base,
        seq,
        timestamp,
        prev_hash: head.hash,
        hash,
        ...(signer === undefined ? {} : { sig: signer.sign(hash) }),
      };
    },
  };
}

/**
 * Builds, hashes and signs the record that follows `head` (the last record's hash and seq; the
 * genesis hash and 0 for an empty chain). Exported for sinks that keep the chain elsewhere, so
 * every chain is sealed by this one function ({@link prepareAuditRecord}, in one step).
 */
export function sealAuditRecord(
  entry: AuditEntry,
  head: ChainHead,
  facts: { timestamp: string; host: string; signer: AuditSigner | undefined },
): AuditRecord {
  return prepareAuditRecord(entry, facts).seal(head, facts.timestamp);
}

function writeFailed(path: string, error: unknown): RuneError {
  if (RuneError.is(error) && error.code === 'AUDIT_WRITE_FAILED') return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return new RuneError(
    'AUDIT_WRITE_FAILED',
    `cannot write the audit log ${path}${code === undefined ? '' : ` (${code})`}`,
    { cause: error, source: { component: 'rune-core' }, details: { path, errno: code } },
  );
}

/** Non-empty lines of the whole file (used once for a log whose last record has no seq). */
function countRecords(fd: number, size: number): number {
  const buffer = Buffer.alloc(size);
  readSync(fd, buffer, 0, size, 0);
  return buffer
    .toString('utf8')
    .split('\n')
    .filter((line) => line.trim() !== '').length;
}

/** The hash and seq of the last record in the file (genesis for an empty file). */
function chainHead(fd: number): ChainHead {
  const size = fstatSync(fd).size;
  if (size === 0) return { hash: AUDIT_GENESIS_HASH, seq: 0 };
  let window = Math.min(size, 64 * 1024);
  for (;;) {
    const buffer = Buffer.alloc(window);
    readSync(fd, buffer, 0, window, size - window);
    const text = buffer.toString('utf8').replace(/\n+$/, '');
    const newline = text.lastIndexOf('\n');
    if (newline >= 0 || window === size) {
      const line = text.slice(newline + 1);
      try {
        const parsed = JSON.parse(line) as { hash?: unknown; seq?: unknown };
        if (typeof parsed.hash === 'string') {
          return {
            hash: parsed.hash,
            seq: typeof parsed.seq === 'number' ? parsed.seq : countRecords(fd, size),
          };
        }
      } catch {
        // fall through: a damaged last line; chain from its content hash so verify flags it
      }
      return { hash: sha256Hex(line), seq: countRecords(fd, size) };
    }
    window = Math.min(size, window * 4);
  }
}

/** Most records one group commit of the file sink writes (a bound on one write's size). */
const MAX_AUDIT_BATCH = 256;

/** What seals and places a batch: see {@link appendAuditBatch}. */
export interface AuditBatchTarget {
  path: string;
  host: string;
  lockTimeoutMs: number;
  /** The lock holder token (a writer thread's fixed one), or a fresh one per batch. */
  lockToken?: string;
  signer: AuditSigner | undefined;
  /** The timestamp of each record, taken when it is sealed. */
  timestamp: () => string;
}

/**
 * Bounds and serialises `entries` (before the lock: other writers wait only for the chain), then
 * under the lock: opens the log, reads its last record, seals the batch (hash chain and
 * signature), writes it with one write and syncs it with one fdatasync (and the directory when
 * the file was created). Every step is one synchronous system call, with nothing in between: no
 * thread-pool round trip and no event-loop turn per step. `lock` takes the lock (the CLI's
 * driver waits on a timer, the writer thread's blocks). Throws AUDIT_WRITE_FAILED.
 */
export async function appendAuditBatch(
  target: AuditBatchTarget,
  entries: readonly AuditEntry[],
  lock: (options: AuditLockOptions) => (() => void) | Promise<() => void>,
): Promise<AuditRecord[]> {
  const { path } = target;
  let release: () => void;
  let prepared: PreparedAuditRecord[];
  try {
    prepared = entries.map((entry) =>
      prepareAuditRecord(entry, { host: target.host, signer: target.signer }),
    );
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    release = await lock({
      lockPath: `${path}.lock`,
      logPath: path,
      host: target.host,
      timeoutMs: target.lockTimeoutMs,
      ...(target.lockToken === undefined ? {} : { token: target.lockToken }),
    });
  } catch (error) {
    throw writeFailed(path, error);
  }
  let fd: number | undefined;
  try {
    const created = !existsSync(path);
    fd = openSync(path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o600);
    let head = chainHead(fd);
    const records: AuditRecord[] = [];
    for (const record of prepared) {
      const sealed = record.seal(head, target.timestamp());
      records.push(sealed);
      head = { hash: sealed.hash, seq: head.seq + 1 };
    }
    const line = Buffer.from(records.map((record) => `${JSON.stringify(record)}\n`).join(''));
    let written = 0;
    while (written < line.byteLength) written += writeSync(fd, line, written);
    // Durable before the caller acts on it: the intent record must survive a crash of the
    // control node right after the plugin was sent. fdatasync: the data and the file size
    // (what a reader needs), without the timestamps a full fsync also writes.
    fdatasyncSync(fd);
    if (created) fsyncPath(dirname(path));
    return records;
  } catch (error) {
    throw writeFailed(path, error);
  } finally {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // the batch is synced; a failed close loses nothing
      }
    }
    release();
  }
}

/** What a file sink did: batches written, and the messages to and from its writer thread. */
export interface AuditSinkStats {
  batches: number;
  records: number;
  /** Batches posted to the writer thread (0 for the in-process writer). */
  messagesPosted: number;
  /** Answers received from the writer thread. */
  messagesReceived: number;
}

/** The file sink: {@link AuditSink} plus its counters and its end. */
export interface FileAuditSink extends AuditSink {
  readonly stats: Readonly<AuditSinkStats>;
  /**
   * One full garbage collection in the writer thread (rune serve, when idle); undefined without
   * a running thread (the in-process writer, or none started yet).
   */
  reclaimMemory(): Promise<HeapReclaim | undefined>;
  /** Waits for the batches under way, then stops the writer thread (if any). */
  close(): Promise<void>;
}

/** Creates the append-only, hash-chained, signed JSONL audit sink. */
export function createFileAuditSink(options: FileAuditSinkOptions): FileAuditSink {
  const path = options.path;
  const now = options.now ?? (() => new Date());
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_AUDIT_LOCK_TIMEOUT_MS;
  const stats: AuditSinkStats = { batches: 0, records: 0, messagesPosted: 0, messagesReceived: 0 };
  // A writer thread only for what can cross to it: a key file (not a signer object) and the
  // real clock.
  const thread =
    options.writer === 'thread' && options.signer === undefined && options.now === undefined
      ? createAuditWriterThread(
          {
            path,
            host: options.host,
            lockTimeoutMs,
            ...(options.keyFile === undefined ? {} : { keyFile: options.keyFile }),
          },
          stats,
        )
      : undefined;
  let signer: Promise<AuditSigner | undefined> | undefined;

  const getSigner = (): Promise<AuditSigner | undefined> => {
    signer ??=
      options.signer !== undefined
        ? Promise.resolve(options.signer)
        : options.keyFile === undefined
          ? Promise.resolve(undefined)
          : loadOrCreateAuditKey(options.keyFile);
    // A key that could not be loaded is retried next time (the operator may fix it).
    signer.catch(() => {
      signer = undefined;
    });
    return signer;
  };

  /**
   * Appends `entries` in order under one lock hold, with one write and one fsync: group commit.
   * Entries that arrive while a batch is being written wait and go together in the next one, so
   * a busy writer (the server) pays one fsync per batch instead of one per record, and every
   * record is still durable before its append resolves. With the writer thread, the whole batch
   * is one message there and one back (which may carry the answers of other batches written
   * with the same sync).
   */
  const appendNow = async (entries: readonly AuditEntry[]): Promise<AuditRecord[]> => {
    stats.batches++;
    stats.records += entries.length;
    if (thread !== undefined) return thread.write(entries);
    return appendAuditBatch(
      {
        path,
        host: options.host,
        lockTimeoutMs,
        signer: await getSigner(),
        timestamp: () => now().toISOString(),
      },
      entries,
      acquireAuditLock,
    );
  };

  interface Waiting {
    entry: AuditEntry;
    resolve: (record: AuditRecord) => void;
    reject: (error: unknown) => void;
  }
  let waiting: Waiting[] = [];
  let writing: Promise<void> | undefined;
  /** Batches posted to the writer thread and not answered yet. */
  const posted = new Set<Promise<void>>();
  const settle = async (batch: readonly Waiting[], records: Promise<AuditRecord[]>) => {
    try {
      const written = await records;
      for (const [index, item] of batch.entries()) item.resolve(written[index]!);
    } catch (error) {
      for (const item of batch) item.reject(error);
    }
  };
  const drain = async (): Promise<void> => {
    try {
      while (waiting.length > 0) {
        const batch = waiting.slice(0, MAX_AUDIT_BATCH);
        waiting = waiting.slice(batch.length);
        const records = appendNow(batch.map((item) => item.entry));
        if (thread === undefined) {
          await settle(batch, records);
        } else {
          // Posted without waiting for the previous batch's answer: the thread writes batches
          // in the order they arrive (one chain), and those that queue up there share a sync.
          const settled = settle(batch, records).finally(() => posted.delete(settled));
          posted.add(settled);
        }
      }
    } finally {
      writing = undefined;
    }
  };

  return {
    stats,
    append(entry) {
      return new Promise<AuditRecord>((resolve, reject) => {
        waiting.push({ entry, resolve, reject });
        if (writing !== undefined) return;
        // On the next turn: the appends of this turn (e.g. many requests parsed together) go in
        // the same batch.
        writing = new Promise<void>((started) => setImmediate(started)).then(drain);
      });
    },
    reclaimMemory() {
      return thread?.reclaim() ?? Promise.resolve(undefined);
    },
    async close() {
      while (writing !== undefined || posted.size > 0) {
        await writing;
        await Promise.all(posted);
      }
      await thread?.close();
    },
  };
}

/** An in-memory sink (tests, embedding). Records are chained (and signed) like the file sink's. */
export function createMemoryAuditSink(
  options: { now?: () => Date; host?: string; signer?: AuditSigner } = {},
): AuditSink & {
  records: AuditRecord[];
} {
  const records: AuditRecord[] = [];
  const now = options.now ?? (() => new Date());
  return {
    records,
    async append(entry) {
      const last = records.at(-1);
      const record = sealAuditRecord(
        entry,
        { hash: last?.hash ?? AUDIT_GENESIS_HASH, seq: last?.seq ?? records.length },
        { timestamp: now().toISOString(), host: options.host ?? 'memory', signer: options.signer },
      );
      records.push(record);
      return record;
    },
  };
}

/** The last record of a log, as `rune audit head` prints it and `--anchor` reads it. */
export interface AuditHead {
  seq: number;
  hash: string;
  sig: string | null;
  key_id: string | null;
  timestamp: string;
}

/** Options of {@link verifyAuditLog}. */
export interface VerifyAuditLogOptions {
  /** The Ed25519 public key that must have signed every signed record. */
  publicKey?: KeyObject;
  /** Accept a log in which no record is signed (written before RUNE signed records). */
  allowUnsigned?: boolean;
  /** A record hash the log must still contain (an anchored head). */
  expectHead?: string;
  /** An anchored head (`rune audit head -o json`): the record at `seq` must have `hash`. */
  anchor?: Pick<AuditHead, 'seq' | 'hash'>;
}

/** The verdict of {@link verifyAuditLog}. */
export interface AuditVerification {
  ok: boolean;
  /** Records that verified before the first break (all of them when ok). */
  verified: number;
  /** Total non-empty lines. */
  total: number;
  /** Verified records that carry a valid signature. */
  signed: number;
  /**
   * Verified records without a signature. They are always lines 1..unsigned (an unsigned record
   * after a signed one is a break); a later signed record seals them through the chain.
   */
  unsigned: number;
  /** The key id of the verification key, when one was given. */
  keyId: string | null;
  /** The last verified record. */
  head: AuditHead | null;
  /** 1-based line number of the first broken record. */
  brokenLine?: number;
  /** AUDIT_CHAIN_BROKEN describing the first break (INVALID_ARGUMENT: no key to check with). */
  error?: RuneError;
}

/** Reads every record of an audit log (a missing file is empty). Unparsable lines are skipped. */
export function readAuditLog(path: string): AuditRecord[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new RuneError('INVALID_ARGUMENT', `cannot read the audit log ${path}`, {
      cause: error,
      details: { path },
    });
  }
  const records: AuditRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      records.push(JSON.parse(line) as AuditRecord);
    } catch {
      // verifyAuditLog reports damaged lines
    }
  }
  return records;
}

/** The head of a record. */
function headOf(record: AuditRecord, seq: number): AuditHead {
  return {
    seq: record.seq ?? seq,
    hash: record.hash,
    sig: record.sig ?? null,
    key_id: record.key_id ?? null,
    timestamp: record.timestamp,
  };
}

/**
 * Verifies an audit log: the hash chain, every signature (with `options.publicKey`), the
 * sequence numbers, and an anchored head; finds the first broken record.
 */
export function verifyAuditLog(
  path: string,
  options: VerifyAuditLogOptions = {},
): AuditVerification {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new RuneError('INVALID_ARGUMENT', `cannot read the audit log ${path}`, {
        cause: error,
        details: { path },
      });
    }
    text = '';
  }
  return verifyAuditText(text, path, options);
}

/**
 * Verifies audit records given as JSONL text (one record per line, in order), with the rules of
 * {@link verifyAuditLog}; `label` names the source in messages (a path, a database). The one
 * verifier of every chain, wherever it is kept.
 */
export function verifyAuditText(
  text: string,
  label: string,
  options: VerifyAuditLogOptions = {},
): AuditVerification {
  const path = label;
  const keyId = options.publicKey === undefined ? null : auditKeyId(options.publicKey);
  const lines = text.split('\n');
  let previous = AUDIT_GENESIS_HASH;
  let verified = 0;
  let signed = 0;
  let unsigned = 0;
  let head: AuditHead | null = null;
  const hashes = new Map<string, number>();
  const total = lines.filter((line) => line.trim() !== '').length;
  const verdict = (
    lineNumber: number | undefined,
    reason: string,
    code: 'AUDIT_CHAIN_BROKEN' | 'INVALID_ARGUMENT' = 'AUDIT_CHAIN_BROKEN',
  ): AuditVerification => ({
    ok: false,
    verified,
    total,
    signed,
    unsigned,
    keyId,
    head,
    ...(lineNumber === undefined ? {} : { brokenLine: lineNumber }),
    error: new RuneError(
      code,
      `${path}${lineNumber === undefined ? '' : `:${lineNumber}`}: ${reason}`,
      {
        source: { component: 'rune-core' },
        details: { path, ...(lineNumber === undefined ? {} : { line: lineNumber }), reason },
      },
    ),
  });
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '') continue;
    const lineNumber = index + 1;
    const position = verified + 1;
    let record: AuditRecord;
    try {
      record = JSON.parse(line) as AuditRecord;
    } catch {
      return verdict(lineNumber, 'the line is not valid JSON');
    }
    if (typeof record !== 'object' || record === null || typeof record.hash !== 'string') {
      return verdict(lineNumber, 'the record has no hash');
    }
    if (record.prev_hash !== previous) {
      return verdict(
        lineNumber,
        'prev_hash does not match the previous record (a record was removed, inserted or reordered)',
      );
    }
    if ((record.v !== 1 || record.seq !== undefined) && record.seq !== position) {
      return verdict(
        lineNumber,
        `seq is ${String(record.seq)}, expected ${position} (a record was removed, inserted or reordered)`,
      );
    }
    if (hashAuditRecord(record) !== record.hash) {
      return verdict(
        lineNumber,
        'the record content does not match its hash (the record was altered)',
      );
    }
    if (record.sig !== undefined) {
      if (options.publicKey === undefined) {
        return verdict(
          lineNumber,
          'the record is signed but no public key was given to check it (--public-key FILE, or the [audit] key_file)',
          'INVALID_ARGUMENT',
        );
      }
      if (record.key_id !== keyId) {
        return verdict(
          lineNumber,
          `the record is signed by key ${String(record.key_id)}, not by the given key ${keyId}`,
        );
      }
      if (
        typeof record.sig !== 'string' ||
        !verifyAuditSignature(options.publicKey, record.hash, record.sig)
      ) {
        return verdict(
          lineNumber,
          'the signature does not verify: the record was altered (and re-hashed) without the signing key',
        );
      }
      signed++;
    } else {
      if (signed > 0) {
        return verdict(
          lineNumber,
          'an unsigned record after signed ones: it was written or rewritten without the signing key',
        );
      }
      unsigned++;
    }
    previous = record.hash;
    verified++;
    head = headOf(record, position);
    hashes.set(record.hash, position);
  }
  if (unsigned > 0 && signed === 0 && options.allowUnsigned !== true) {
    return verdict(
      undefined,
      `no record is signed: ${unsigned} unsigned record(s) (lines 1-${unsigned}) are not protected against rewriting; --allow-unsigned accepts them (a log written before RUNE signed its records)`,
    );
  }
  if (options.expectHead !== undefined && !hashes.has(options.expectHead)) {
    return verdict(
      undefined,
      `the anchored head ${options.expectHead} is not in the log: records were removed from its end (or the log was replaced)`,
    );
  }
  if (options.anchor !== undefined) {
    const { seq, hash } = options.anchor;
    if (verified < seq) {
      return verdict(
        undefined,
        `the log ends at seq ${verified}, the anchored head is seq ${seq}: ${seq - verified} record(s) were removed from its end`,
      );
    }
    if (hashes.get(hash) !== seq) {
      return verdict(
        undefined,
        `record seq ${seq} does not have the anchored hash ${hash}: the log was rewritten`,
      );
    }
  }
  return { ok: true, verified, total, signed, unsigned, keyId, head };
}
