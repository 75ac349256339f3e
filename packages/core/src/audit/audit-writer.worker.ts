/**
 * The audit writer thread (see audit-writer.ts): one batch per message, written with
 * synchronous system calls under the lock, answered with the sealed records once they are
 * durable. Batches are written in the order they arrive; those that queue up while one is being
 * synced are written together.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { RuneError } from '@rune/protocol';
import { reclaimHeap } from '../memory/reclaim.js';
import { type AuditSigner, loadOrCreateAuditKey } from './audit-key.js';
import { acquireAuditLockSync } from './audit-lock.js';
import { appendAuditBatch } from './audit-log.js';
import type {
  AuditWriterMessage,
  AuditWriterReply,
  AuditWriterRequest,
  AuditWriterStart,
} from './audit-writer.js';

const start = workerData as AuditWriterStart;
let signer: Promise<AuditSigner | undefined> | undefined;

const getSigner = (): Promise<AuditSigner | undefined> => {
  signer ??=
    start.keyFile === undefined ? Promise.resolve(undefined) : loadOrCreateAuditKey(start.keyFile);
  // A key that could not be loaded is retried with the next batch (the operator may fix it).
  signer.catch(() => {
    signer = undefined;
  });
  return signer;
};

/** Most records written with one fdatasync when batches queue up here. */
const MAX_COALESCED_RECORDS = 1024;

/**
 * Writes `requests` as one batch (one lock hold, one write, one fdatasync) and answers each. A
 * failure fails them all, as a failed batch of the calling side fails all its callers.
 */
const write = async (requests: readonly AuditWriterRequest[]): Promise<AuditWriterReply[]> => {
  try {
    const records = await appendAuditBatch(
      {
        path: start.path,
        host: start.host,
        lockTimeoutMs: start.lockTimeoutMs,
        lockToken: start.lockToken,
        signer: await getSigner(),
        timestamp: () => new Date().toISOString(),
      },
      requests.flatMap((request) => request.entries),
      acquireAuditLockSync,
    );
    let offset = 0;
    return requests.map((request) => {
      const mine = records.slice(offset, offset + request.entries.length);
      offset += request.entries.length;
      return { id: request.id, records: mine };
    });
  } catch (error) {
    const runeError = RuneError.from(error, 'AUDIT_WRITE_FAILED');
    const failure = {
      message: runeError.message,
      ...(runeError.details === undefined ? {} : { details: runeError.details }),
    };
    return requests.map((request) => ({ id: request.id, error: failure }));
  }
};

if (parentPort === null) throw new Error('the audit writer runs only as a worker thread');
const port = parentPort;
let pending: AuditWriterRequest[] = [];
let running = false;

/**
 * A batch joins `pending`; a reclaim (the server found itself idle) is one full garbage
 * collection of this thread, answered at once, between batches.
 */
const accept = (message: AuditWriterMessage): void => {
  if ('reclaim' in message) {
    port.postMessage([{ id: message.id, reclaimed: reclaimHeap() }] satisfies AuditWriterReply[]);
    return;
  }
  pending.push(message);
};

/**
 * Batches that arrived while the last one was being synced are written together: the calling
 * side does not wait for an answer before it sends the next batch, so under load they queue
 * here and share one fdatasync (in arrival order: the chain's order).
 */
const run = async (): Promise<void> => {
  running = true;
  try {
    while (pending.length > 0) {
      for (
        let more = receiveMessageOnPort(port);
        more !== undefined;
        more = receiveMessageOnPort(port)
      ) {
        accept(more.message as AuditWriterMessage);
      }
      let count = 0;
      let take = 0;
      while (
        take < pending.length &&
        (take === 0 || count + pending[take]!.entries.length <= MAX_COALESCED_RECORDS)
      ) {
        count += pending[take]!.entries.length;
        take++;
      }
      const requests = pending.slice(0, take);
      pending = pending.slice(take);
      // All answers in one message: one wake-up of the server's event loop.
      port.postMessage(await write(requests));
    }
  } finally {
    running = false;
  }
};

port.on('message', (message: AuditWriterMessage) => {
  accept(message);
  if (!running && pending.length > 0) void run();
});
