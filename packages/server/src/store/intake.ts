/**
 * An intake: a small append-only file beside the embedded store (`<store>.alert-intake`,
 * `<store>.run-intake`) that makes rows durable before they reach SQLite, so an answer waits for
 * one write and one `fdatasync` instead of the SQLite worker's queue and its group COMMIT.
 *
 * Why: measured with the webhook probe (webhook-phases.ts, bench/README.md), an answer that waited
 * for the store waited for the worker's queue and a COMMIT of four fsyncs (rollback journal,
 * `synchronous=FULL`; the VFS has no WAL) and a lock directory's `mkdir` and `rmdir`, behind the
 * writes of earlier requests: p50 5-11 ms and p99 about 50 ms for the COMMIT alone on the loaded
 * machine. A write into space of the file that is already allocated and zero-filled changes no
 * metadata, so its `fdatasync` flushes data blocks only (no journal commit of the file system).
 *
 * What makes it safe:
 * - **Durable before the answer**: `append` returns after `fdatasync` returned.
 * - **Replayed at start**: rows of the current epoch are inserted into the store (those already
 *   there are skipped by id) before anything is served, so a row answered just before a crash
 *   is in the store after the restart, exactly as if it had reached the store.
 * - **Torn writes are detected**: each batch is one line `<epoch> <checksum> <json>`; reading
 *   stops at the first line that does not check (a batch whose `fdatasync` never returned was
 *   never answered).
 * - **Reset only when nothing is owed**: the file starts over (a new epoch in its header, so
 *   older lines are never read again) only when every appended row is acknowledged by the store.
 *   A full file, or one that cannot be written, is never a lost row: the caller then waits for
 *   the store as before.
 *
 * The embedded store only: on PostgreSQL several instances share the store and one instance's
 * local file would be lost with its machine, so those answers wait for the store's commit.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  fsyncSync,
  openSync,
  readSync,
  renameSync,
  write,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { fsyncPath } from '@rune/core';
import { RuneError } from '@rune/protocol';

/** Size of an intake file: preallocated (zero-filled) once. About 10 000 one-alert webhooks. */
export const INTAKE_BYTES = 8 * 1024 * 1024;
const HEADER_BYTES = 64;
const source = { component: 'rune-server' } as const;

/** What kind of intake a file is: its header's first words, and a noun for messages. */
export interface IntakeKind {
  /** The header's magic, e.g. `RUNE-ALERT-INTAKE v1` (at most 40 characters). */
  magic: string;
  /** What a row is, for messages: `alert`, `run`. */
  noun: string;
}

/** The intake of one store, holding rows of type `Row` (JSON-serializable). */
export interface Intake<Row> {
  /** The intake file. */
  readonly path: string;
  /**
   * Appends `rows` durably (one write, one fdatasync; callers append once per turn of the event
   * loop with every row of that turn). False when they do not fit (nothing was
   * written; the caller waits for the store instead). Throws when the file cannot be written.
   */
  append(rows: readonly Row[]): boolean;
  /**
   * As `append`, with the write and the `fdatasync` on libuv's thread pool, so the event loop
   * goes on meanwhile. Appends are written one after the other, in call order. Do not call
   * `append` or `checkpoint` while one is in flight.
   */
  appendOnPool(rows: readonly Row[]): Promise<boolean>;
  /** `count` appended rows are now acknowledged by the store (in the order they were appended). */
  stored(count: number): void;
  /** Rows appended and not yet acknowledged by the store. */
  readonly owed: number;
  /** The rows of the current epoch (what the previous process may not have stored). */
  replay(): Row[];
  /** Starts the file over when nothing is owed and something was written since the last time. */
  checkpoint(): void;
  close(): void;
}

const checksum = (json: string): string =>
  createHash('sha256').update(json).digest('hex').slice(0, 16);

const epochHex = (epoch: number): string => epoch.toString(16).padStart(12, '0');

function header(kind: IntakeKind, epoch: number): Buffer {
  const text = `${kind.magic} ${epochHex(epoch)}`;
  return Buffer.from(`${text.padEnd(HEADER_BYTES - 1, ' ')}\n`, 'utf8');
}

/** Creates the zero-filled file under a temporary name and renames it into place (atomic). */
function createIntakeFile(kind: IntakeKind, path: string): void {
  const temporary = `${path}.new`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    const chunk = Buffer.alloc(1024 * 1024);
    header(kind, 1).copy(chunk, 0);
    for (let offset = 0; offset < INTAKE_BYTES; offset += chunk.length) {
      writeSync(fd, chunk, 0, Math.min(chunk.length, INTAKE_BYTES - offset), offset);
      if (offset === 0) chunk.fill(0, 0, HEADER_BYTES);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
  fsyncPath(dirname(path));
}

/** Reads the file: its epoch, the rows of that epoch, and where the next line goes. */
function readIntake<Row>(
  kind: IntakeKind,
  fd: number,
): { epoch: number; rows: Row[]; end: number } {
  const buffer = Buffer.alloc(INTAKE_BYTES);
  let read = 0;
  while (read < buffer.length) {
    const n = readSync(fd, buffer, read, buffer.length - read, read);
    if (n === 0) break;
    read += n;
  }
  const head = buffer.subarray(0, HEADER_BYTES).toString('utf8');
  const match = new RegExp(`^${kind.magic} ([0-9a-f]{12}) *\\n$`).exec(head);
  if (match === null || read < INTAKE_BYTES) {
    throw new RuneError(
      'INVALID_CONFIG',
      `the ${kind.noun} intake file is not one this server wrote`,
      {
        source,
      },
    );
  }
  const epoch = Number.parseInt(match[1] as string, 16);
  const prefix = `${epochHex(epoch)} `;
  const rows: Row[] = [];
  let offset = HEADER_BYTES;
  for (;;) {
    const newline = buffer.indexOf(10, offset);
    if (newline < 0 || buffer[offset] === 0) break;
    const line = buffer.subarray(offset, newline).toString('utf8');
    if (!line.startsWith(prefix)) break;
    const sum = line.slice(prefix.length, prefix.length + 16);
    const json = line.slice(prefix.length + 17);
    if (checksum(json) !== sum) break;
    rows.push(...(JSON.parse(json) as Row[]));
    offset = newline + 1;
  }
  return { epoch, rows, end: offset };
}

/**
 * Opens (creating) the intake `path` of `kind`. Throws INVALID_CONFIG when it exists but is not
 * an intake file of that kind (never overwritten: it may hold rows).
 */
export function openIntake<Row>(kind: IntakeKind, path: string): Intake<Row> {
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw RuneError.from(error, 'INVALID_CONFIG', { source, details: { path } });
    }
    createIntakeFile(kind, path);
    fd = openSync(path, 'r+');
  }
  let state: { epoch: number; rows: Row[]; end: number };
  try {
    state = readIntake<Row>(kind, fd);
  } catch (error) {
    closeSync(fd);
    throw RuneError.from(error, 'INVALID_CONFIG', { source, details: { path } });
  }
  let { epoch } = state;
  let offset = state.end;
  let owed = state.rows.length;
  let open = true;

  /**
   * Writes `bytes` at `at` and waits until they are on the disk, on this thread (`append`, and
   * `checkpoint`). The alert receivers append this way: measured side by side on the loaded
   * machine, the same write and fdatasync on the libuv pool then took 6-16 ms (p50) instead of
   * 2-4 ms, its threads queueing behind the audit log's syncs, which since moved to a thread of
   * their own. Dry runs append with `appendOnPool`: a synchronous fdatasync blocks the event loop
   * for as long as the disk takes, and under another process's writes that was tens of
   * milliseconds for every request in flight (bench/README.md, "rune serve").
   */
  const writeDurably = (bytes: Buffer, at: number): void => {
    let written = 0;
    while (written < bytes.length) {
      written += writeSync(fd, bytes, written, bytes.length - written, at + written);
    }
    fdatasyncSync(fd);
  };

  /** The next line's bytes and place, or undefined when it does not fit. */
  const place = (
    rows: readonly Row[],
  ): { bytes: Buffer; at: number; next: number; end: number } | undefined => {
    // Nothing owed: this batch starts a new epoch at the top of the file, header and line in
    // one write (a torn one leaves a line that does not check, never an old line read).
    const restart = owed === 0 && offset > HEADER_BYTES;
    const next = restart ? epoch + 1 : epoch;
    const json = JSON.stringify(rows);
    const line = Buffer.from(`${epochHex(next)} ${checksum(json)} ${json}\n`, 'utf8');
    const at = restart ? HEADER_BYTES : offset;
    if (at + line.length > INTAKE_BYTES) return undefined;
    return restart
      ? { bytes: Buffer.concat([header(kind, next), line]), at: 0, next, end: at + line.length }
      : { bytes: line, at, next, end: at + line.length };
  };
  const placed = (rows: readonly Row[], line: { next: number; end: number }): void => {
    epoch = line.next;
    offset = line.end;
    owed += rows.length;
  };

  const writeOnPool = promisify(write);
  const syncOnPool = promisify(fdatasync);
  let poolChain: Promise<unknown> = Promise.resolve();
  const appendOnPool = async (rows: readonly Row[]): Promise<boolean> => {
    if (!open) return false;
    const line = place(rows);
    if (line === undefined) return false;
    let written = 0;
    while (written < line.bytes.length) {
      const { bytesWritten } = await writeOnPool(
        fd,
        line.bytes,
        written,
        line.bytes.length - written,
        line.at + written,
      );
      written += bytesWritten;
    }
    await syncOnPool(fd);
    placed(rows, line);
    return true;
  };

  return {
    path,
    get owed() {
      return owed;
    },

    append(rows) {
      if (!open) return false;
      const line = place(rows);
      if (line === undefined) return false;
      writeDurably(line.bytes, line.at);
      placed(rows, line);
      return true;
    },

    appendOnPool(rows) {
      const appended = poolChain.then(() => appendOnPool(rows));
      poolChain = appended.catch(() => undefined);
      return appended;
    },

    stored(count) {
      owed = Math.max(0, owed - count);
    },

    replay() {
      return readIntake<Row>(kind, fd).rows;
    },

    checkpoint() {
      if (!open || owed > 0 || offset === HEADER_BYTES) return;
      writeDurably(header(kind, epoch + 1), 0);
      epoch++;
      offset = HEADER_BYTES;
    },

    close() {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
}
