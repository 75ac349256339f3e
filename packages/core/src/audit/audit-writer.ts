/**
 * rune serve's audit writer thread, the calling side: a worker thread that owns the audit file
 * for one sink. A batch is one message there (the entries) and one back (the sealed records,
 * durable) — instead of a dozen file operations, each a thread-pool round trip plus an
 * event-loop turn on a main thread that is busy answering requests. The worker takes the lock,
 * reads the tail, seals (hash chain and Ed25519 signature: signing moves off the event loop
 * too), writes, syncs and releases with synchronous calls (audit-writer.worker.ts).
 *
 * CLI processes appending to the same file meanwhile are unaffected: the worker holds the lock
 * only while it writes one batch, as an inline writer does. If the thread dies, every batch
 * under way fails with AUDIT_WRITE_FAILED, a lock it held is removed (its pid — ours — is alive,
 * so nobody else could break it), and the next batch starts a new thread.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { RuneError } from '@rune/protocol';
import { type HeapReclaim, WORKER_RESOURCE_LIMITS } from '../memory/reclaim.js';
import { removeAuditLockOf } from './audit-lock.js';
import type { AuditEntry, AuditRecord, AuditSinkStats } from './audit-log.js';

/** What the writer thread is started with. */
export interface AuditWriterStart {
  path: string;
  host: string;
  lockTimeoutMs: number;
  keyFile?: string;
  /** The thread's lock holder token (see {@link removeAuditLockOf}). */
  lockToken: string;
}

/** A batch to write. */
export interface AuditWriterRequest {
  id: number;
  entries: readonly AuditEntry[];
}

/** What the thread is sent: a batch, or a request to collect its garbage now. */
export type AuditWriterMessage = AuditWriterRequest | { id: number; reclaim: true };

/** The answer to one batch (the thread posts the answers of the batches it wrote together as one array). */
export type AuditWriterReply =
  | { id: number; records: AuditRecord[] }
  | {
      id: number;
      error: { message: string; details?: Record<string, unknown> };
    }
  | { id: number; reclaimed: HeapReclaim };

/** The calling side of the writer thread. */
export interface AuditWriterThread {
  /** Writes one batch; resolves with its records once they are durable. */
  write(entries: readonly AuditEntry[]): Promise<AuditRecord[]>;
  /**
   * One full garbage collection in the thread (rune serve, when idle); undefined when no thread
   * is running (none started yet, or it died: nothing to give back).
   */
  reclaim(): Promise<HeapReclaim | undefined>;
  close(): Promise<void>;
}

/** The compiled worker: beside this module in dist/, or dist/ when run from the sources (tests). */
function workerPath(): string {
  const here = import.meta.url;
  const path = here.endsWith('.ts')
    ? fileURLToPath(new URL('../../dist/audit/audit-writer.worker.js', here))
    : fileURLToPath(new URL('./audit-writer.worker.js', here));
  if (!existsSync(path)) {
    throw new RuneError(
      'AUDIT_WRITE_FAILED',
      `the audit writer thread ${path} is missing (build @rune/core first)`,
      { source: { component: 'rune-core' }, details: { worker: path } },
    );
  }
  return path;
}

function failed(path: string, message: string, cause?: unknown): RuneError {
  return new RuneError('AUDIT_WRITE_FAILED', `cannot write the audit log ${path}: ${message}`, {
    source: { component: 'rune-core' },
    details: { path },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Creates the calling side; the thread starts with the first batch (and again after a death). */
export function createAuditWriterThread(
  start: Omit<AuditWriterStart, 'lockToken'>,
  stats: AuditSinkStats,
): AuditWriterThread {
  const lockToken = `writer-${randomBytes(12).toString('hex')}`;
  const workerData: AuditWriterStart = { ...start, lockToken };
  const pending = new Map<
    number,
    { resolve: (records: AuditRecord[]) => void; reject: (error: unknown) => void }
  >();
  const reclaims = new Map<number, (reclaimed: HeapReclaim | undefined) => void>();
  let worker: Worker | undefined;
  let nextId = 1;
  let closing = false;

  const fail = (dead: Worker, error: RuneError): void => {
    if (worker !== dead) return;
    worker = undefined;
    removeAuditLockOf(`${start.path}.lock`, lockToken);
    for (const item of pending.values()) item.reject(error);
    pending.clear();
    for (const resolve of reclaims.values()) resolve(undefined);
    reclaims.clear();
  };

  const spawn = (): Worker => {
    const thread = new Worker(workerPath(), {
      workerData,
      resourceLimits: { ...WORKER_RESOURCE_LIMITS },
    });
    thread.on('message', (replies: AuditWriterReply[]) => {
      stats.messagesReceived++;
      for (const reply of replies) {
        if ('reclaimed' in reply) {
          reclaims.get(reply.id)?.(reply.reclaimed);
          reclaims.delete(reply.id);
          continue;
        }
        const item = pending.get(reply.id);
        if (item === undefined) continue;
        pending.delete(reply.id);
        if ('records' in reply) {
          item.resolve(reply.records);
        } else {
          item.reject(
            new RuneError('AUDIT_WRITE_FAILED', reply.error.message, {
              source: { component: 'rune-core' },
              ...(reply.error.details === undefined ? {} : { details: reply.error.details }),
            }),
          );
        }
      }
      if (pending.size === 0 && reclaims.size === 0) thread.unref();
    });
    thread.on('error', (error) =>
      fail(thread, failed(start.path, 'its writer thread failed', error)),
    );
    thread.on('exit', (code) =>
      fail(thread, failed(start.path, `its writer thread exited (code ${code})`)),
    );
    return thread;
  };

  return {
    write(entries) {
      if (closing) return Promise.reject(failed(start.path, 'the audit sink is closed'));
      let thread: Worker;
      try {
        worker ??= spawn();
        thread = worker;
      } catch (error) {
        return Promise.reject(RuneError.from(error, 'AUDIT_WRITE_FAILED'));
      }
      const id = nextId++;
      return new Promise<AuditRecord[]>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        thread.ref();
        const request: AuditWriterRequest = { id, entries };
        try {
          thread.postMessage(request);
        } catch {
          // Not structured-cloneable (a class instance in metadata): what the log will hold is
          // its JSON anyway, so send that.
          thread.postMessage({ id, entries: JSON.parse(JSON.stringify(entries)) });
        }
        stats.messagesPosted++;
      });
    },
    reclaim() {
      const thread = worker;
      if (closing || thread === undefined) return Promise.resolve(undefined);
      const id = nextId++;
      return new Promise<HeapReclaim | undefined>((resolve) => {
        reclaims.set(id, resolve);
        thread.ref();
        thread.postMessage({ id, reclaim: true } satisfies AuditWriterMessage);
      });
    },
    async close() {
      closing = true;
      const thread = worker;
      worker = undefined;
      if (thread !== undefined) await thread.terminate();
      for (const resolve of reclaims.values()) resolve(undefined);
      reclaims.clear();
    },
  };
}
