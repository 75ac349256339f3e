/**
 * The audit trail: one JSON line per attempted node run, dry run and refusal, hash-chained.
 *
 * Each record carries `prev_hash` (the previous record's `hash`, 64 zeros for the first) and
 * `hash` = sha256 of the canonical JSON (keys sorted, no whitespace) of the record without
 * `hash`. Altering, removing or reordering a record breaks the chain, which
 * {@link verifyAuditLog} reports with the first broken line. Removing records from the *end*
 * cannot be detected from the file alone (keep a copy of the last hash elsewhere for that).
 *
 * The file sink appends with O_APPEND, creates the file 0600 in a 0700 directory, and takes a
 * lock file around "read last hash, append" so that concurrent `rune` processes keep one chain.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import { RuneError } from '@rune/protocol';

/** `prev_hash` of the first record. */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

/** What kind of event a record describes. */
export type AuditEvent = 'run' | 'dry-run' | 'refusal';

/** The fields a caller supplies; the sink adds timestamp, chain and hash. */
export interface AuditEntry {
  event: AuditEvent;
  operator: string;
  action: string;
  plugin: { version: string; sha256: string; path: string; source: string } | null;
  /** The node, or null for a refusal before any node ran (or a whole-plan dry run). */
  node: string | null;
  transport: string | null;
  /** success | partial | failure | skipped | planned | refused */
  status: string;
  error_code: string | null;
  error_message: string | null;
  duration_ms: number | null;
  trace_id: string;
  /** Parameters with sensitive values replaced by "[REDACTED]". */
  params: Record<string, unknown> | null;
  /** Nodes of a dry run or refusal, when not one record per node. */
  nodes?: string[];
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
  v: 1;
  timestamp: string;
  /** Host name of the control node. */
  host: string;
  prev_hash: string;
  hash: string;
}

/** Where audit records go. Injectable: tests and services provide their own. */
export interface AuditSink {
  /** Appends one record; throws AUDIT_WRITE_FAILED when it cannot. */
  append(entry: AuditEntry): Promise<AuditRecord>;
  /** Throws AUDIT_WRITE_FAILED unless a record could be appended now (checked before a run). */
  assertWritable?(): Promise<void>;
}

/** Options of {@link createFileAuditSink}. */
export interface FileAuditSinkOptions {
  path: string;
  /** Clock (injectable). */
  now?: () => Date;
  /** Host name recorded in each record. */
  host: string;
  /** How long to wait for the lock file before failing. Default 5000 ms. */
  lockTimeoutMs?: number;
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

/** The hash of a record: sha256 over the canonical JSON of everything but `hash`. */
export function hashAuditRecord(record: Omit<AuditRecord, 'hash'> | AuditRecord): string {
  const { hash: _ignored, ...rest } = record as AuditRecord;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex');
}

function writeFailed(path: string, error: unknown): RuneError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return new RuneError(
    'AUDIT_WRITE_FAILED',
    `cannot write the audit log ${path}${code === undefined ? '' : ` (${code})`}; RUNE refuses to run unaudited`,
    { cause: error, source: { component: 'rune-core' }, details: { path, errno: code } },
  );
}

/** The hash of the last record in the file (genesis for an empty or missing file). */
function lastHash(fd: number): string {
  const size = fstatSync(fd).size;
  if (size === 0) return AUDIT_GENESIS_HASH;
  let window = Math.min(size, 64 * 1024);
  for (;;) {
    const buffer = Buffer.alloc(window);
    readSync(fd, buffer, 0, window, size - window);
    const text = buffer.toString('utf8').replace(/\n+$/, '');
    const newline = text.lastIndexOf('\n');
    if (newline >= 0 || window === size) {
      const line = text.slice(newline + 1);
      try {
        const parsed = JSON.parse(line) as { hash?: unknown };
        if (typeof parsed.hash === 'string') return parsed.hash;
      } catch {
        // fall through: a damaged last line; chain from its content hash so verify flags it
      }
      return createHash('sha256').update(line).digest('hex');
    }
    window = Math.min(size, window * 4);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Creates the append-only, hash-chained JSONL audit sink. */
export function createFileAuditSink(options: FileAuditSinkOptions): AuditSink {
  const path = options.path;
  const lockPath = `${path}.lock`;
  const now = options.now ?? (() => new Date());
  const lockTimeoutMs = options.lockTimeoutMs ?? 5000;
  let queue: Promise<unknown> = Promise.resolve();

  const ensureDir = (): void => {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  };

  const acquireLock = async (): Promise<void> => {
    const deadline = Date.now() + lockTimeoutMs;
    for (;;) {
      try {
        closeSync(
          openSync(lockPath, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600),
        );
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        try {
          // A lock older than 30 s belongs to a crashed process.
          if (Date.now() - statSync(lockPath).mtimeMs > 30_000) unlinkSync(lockPath);
        } catch {
          // raced with its owner releasing it
        }
        if (Date.now() > deadline) throw error;
        await sleep(10);
      }
    }
  };

  const appendNow = async (entry: AuditEntry): Promise<AuditRecord> => {
    try {
      ensureDir();
      await acquireLock();
    } catch (error) {
      throw writeFailed(path, error);
    }
    let fd: number | undefined;
    try {
      fd = openSync(path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o600);
      const base: Omit<AuditRecord, 'hash'> = {
        v: 1,
        timestamp: now().toISOString(),
        host: options.host,
        ...entry,
        prev_hash: lastHash(fd),
      };
      const record: AuditRecord = { ...base, hash: hashAuditRecord(base) };
      const line = Buffer.from(`${JSON.stringify(record)}\n`);
      let written = 0;
      while (written < line.byteLength) written += writeSync(fd, line, written);
      return record;
    } catch (error) {
      throw writeFailed(path, error);
    } finally {
      if (fd !== undefined) closeSync(fd);
      try {
        unlinkSync(lockPath);
      } catch {
        // already gone
      }
    }
  };

  return {
    append(entry) {
      const next = queue.then(() => appendNow(entry));
      queue = next.catch(() => undefined);
      return next;
    },
    async assertWritable() {
      try {
        ensureDir();
        closeSync(
          openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600),
        );
      } catch (error) {
        throw writeFailed(path, error);
      }
    },
  };
}

/** An in-memory sink (tests, embedding). Records are chained exactly like the file sink's. */
export function createMemoryAuditSink(
  options: { now?: () => Date; host?: string } = {},
): AuditSink & {
  records: AuditRecord[];
} {
  const records: AuditRecord[] = [];
  const now = options.now ?? (() => new Date());
  return {
    records,
    async append(entry) {
      const base: Omit<AuditRecord, 'hash'> = {
        v: 1,
        timestamp: now().toISOString(),
        host: options.host ?? 'memory',
        ...entry,
        prev_hash: records.at(-1)?.hash ?? AUDIT_GENESIS_HASH,
      };
      const record = { ...base, hash: hashAuditRecord(base) };
      records.push(record);
      return record;
    },
  };
}

/** The verdict of {@link verifyAuditLog}. */
export interface AuditVerification {
  ok: boolean;
  /** Records that verified before the first break (all of them when ok). */
  verified: number;
  /** Total non-empty lines. */
  total: number;
  /** 1-based line number of the first broken record. */
  brokenLine?: number;
  /** AUDIT_CHAIN_BROKEN describing the first break. */
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

/** Verifies the hash chain of an audit log and finds the first broken record. */
export function verifyAuditLog(path: string): AuditVerification {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      return { ok: true, verified: 0, total: 0 };
    throw new RuneError('INVALID_ARGUMENT', `cannot read the audit log ${path}`, {
      cause: error,
      details: { path },
    });
  }
  const lines = text.split('\n');
  let previous = AUDIT_GENESIS_HASH;
  let verified = 0;
  const total = lines.filter((line) => line.trim() !== '').length;
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '') continue;
    const lineNumber = index + 1;
    const broken = (reason: string): AuditVerification => ({
      ok: false,
      verified,
      total,
      brokenLine: lineNumber,
      error: new RuneError('AUDIT_CHAIN_BROKEN', `${path}:${lineNumber}: ${reason}`, {
        source: { component: 'rune-core' },
        details: { path, line: lineNumber, reason },
      }),
    });
    let record: AuditRecord;
    try {
      record = JSON.parse(line) as AuditRecord;
    } catch {
      return broken('the line is not valid JSON');
    }
    if (typeof record !== 'object' || record === null || typeof record.hash !== 'string') {
      return broken('the record has no hash');
    }
    if (record.prev_hash !== previous) {
      return broken(
        'prev_hash does not match the previous record (a record was removed, inserted or reordered)',
      );
    }
    if (hashAuditRecord(record) !== record.hash) {
      return broken('the record content does not match its hash (the record was altered)');
    }
    previous = record.hash;
    verified++;
  }
  return { ok: true, verified, total };
}
