/**
 * The writer thread of rune serve's audit sink (audit-writer.ts): a batch is one message there
 * and one back, and the calling thread neither touches the file nor signs. Counted, not timed:
 * the sink's message counters, and every asynchronous file-system and signing request the
 * calling thread creates (async_hooks sees each one, whoever starts it).
 * Runs the compiled worker (dist/audit/audit-writer.worker.js): build @rune/core first.
 */
import { createHook } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WORKER_RESOURCE_LIMITS } from '../memory/reclaim.js';
import { readAuditPublicKey } from './audit-key.js';
import { type AuditEntry, createFileAuditSink, verifyAuditLog } from './audit-log.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rune-audit-writer-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const ROUNDS = Number(process.env.ROUNDS ?? 10);

const entry = (node: string): AuditEntry => ({
  event: 'dry-run',
  operator: 'token:bench',
  action: 'noop',
  plugin: null,
  node,
  transport: 'local',
  status: 'planned',
  error_code: null,
  error_message: null,
  duration_ms: null,
  trace_id: 'a'.repeat(32),
  params: { n: 1 },
  metadata: {},
});

/** Counts the asynchronous resources of the given kinds that this thread creates meanwhile. */
async function counting<T>(kinds: RegExp, work: () => Promise<T>) {
  const counts: Record<string, number> = {};
  const hook = createHook({
    init(_id, type) {
      if (kinds.test(type)) counts[type] = (counts[type] ?? 0) + 1;
    },
  });
  hook.enable();
  try {
    return { result: await work(), counts };
  } finally {
    hook.disable();
  }
}

describe('audit writer thread', () => {
  it('reclaimMemory(): a collection in the running thread, between batches; none without a thread', async () => {
    const path = join(dir, 'audit.jsonl');
    const keyFile = join(dir, 'keys', 'audit-key.pem');
    const sink = createFileAuditSink({ path, host: 'h', keyFile, writer: 'thread' });
    const inline = createFileAuditSink({ path: join(dir, 'inline.jsonl'), host: 'h' });
    try {
      expect(await sink.reclaimMemory()).toBeUndefined();
      expect(await inline.reclaimMemory()).toBeUndefined();
      await sink.append(entry('n1'));
      const reclaimed = await sink.reclaimMemory();
      expect(reclaimed).toMatchObject({
        pauseMs: expect.any(Number),
        heapBefore: expect.any(Number),
        heapAfter: expect.any(Number),
        heapUsed: expect.any(Number),
      });
      // The thread's own heap, not this one's: a worker's is a few MB.
      expect(reclaimed?.heapAfter).toBeLessThan(64 * 1024 * 1024);
      // Batches after it are written as before, in one chain.
      await sink.append(entry('n2'));
      expect(verifyAuditLog(path, { publicKey: readAuditPublicKey(keyFile) })).toMatchObject({
        ok: true,
        verified: 2,
      });
    } finally {
      await sink.close();
      await inline.close();
    }
  });

  it("the thread runs with the workers' resource limits: its young generation stays within 8 MB under a stream of batches", async () => {
    const path = join(dir, 'audit.jsonl');
    const sink = createFileAuditSink({ path, host: 'h', writer: 'thread' });
    try {
      // Appends with large params, 2 000 at a time (batched by the sink): without a limit V8
      // grows the thread's young generation to 16-32 MB (two semi-spaces) under this (measured).
      const big = 'p'.repeat(2000);
      for (let round = 0; round < ROUNDS; round++) {
        await Promise.all(
          Array.from({ length: 2000 }, (_, i) =>
            sink.append({ ...entry(`n${round}-${i}`), params: { big, round, i } }),
          ),
        );
      }
      const reclaimed = await sink.reclaimMemory();
      const youngLimit = (WORKER_RESOURCE_LIMITS.maxYoungGenerationSizeMb ?? 0) * 1024 * 1024;
      expect(youngLimit).toBeGreaterThan(0);
      expect(reclaimed?.youngBefore).toBeGreaterThan(0);
      expect(reclaimed?.youngBefore).toBeLessThanOrEqual(youngLimit);
      // V8's heap limit in the thread counts the smaller young generation (this thread's has none).
      expect(reclaimed?.heapLimit).toBeLessThan(
        getHeapStatistics().heap_size_limit - 16 * 1024 * 1024,
      );
    } finally {
      await sink.close();
    }
  });

  it('writes each batch with one message there and one back; this thread neither touches the file nor signs', async () => {
    const path = join(dir, 'audit.jsonl');
    const keyFile = join(dir, 'keys', 'audit-key.pem');
    const sink = createFileAuditSink({ path, host: 'h', keyFile, writer: 'thread' });
    try {
      await sink.append(entry('warm-up')); // starts the thread, creates the key and the file
      const before = { ...sink.stats };
      const { counts } = await counting(/^(FSREQ|FILEHANDLE|SIGNREQUEST|STATWATCHER)/, async () => {
        for (let round = 0; round < 5; round++) {
          await Promise.all(
            Array.from({ length: 10 }, (_, index) => sink.append(entry(`n${round}-${index}`))),
          );
        }
      });
      // Ten appends of one turn are one batch; each batch is one message and one answer.
      expect(sink.stats.batches - before.batches).toBe(5);
      expect(sink.stats.records - before.records).toBe(50);
      expect(sink.stats.messagesPosted - before.messagesPosted).toBe(5);
      expect(sink.stats.messagesReceived - before.messagesReceived).toBe(5);
      // No file-system request and no signature on this thread: the lock, the tail, the write,
      // the fdatasync and the Ed25519 signatures all happened on the writer thread.
      expect(counts).toEqual({});
      expect(verifyAuditLog(path, { publicKey: readAuditPublicKey(keyFile) })).toMatchObject({
        ok: true,
        verified: 51,
        signed: 51,
      });
    } finally {
      await sink.close();
    }
  });

  it('keeps one verifiable chain with a CLI process appending to the same file at the same time', async () => {
    const path = join(dir, 'audit.jsonl');
    const keyFile = join(dir, 'keys', 'audit-key.pem');
    const sink = createFileAuditSink({ path, host: 'h', keyFile, writer: 'thread' });
    await sink.append(entry('first'));
    // Another process with the in-process writer (what `rune run` uses): its own batches under
    // the same lock file, racing the thread's.
    const script = join(dir, 'cli-writer.mjs');
    writeFileSync(
      script,
      [
        `import { createFileAuditSink } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)};`,
        `const sink = createFileAuditSink({ path: ${JSON.stringify(path)}, host: 'h', keyFile: ${JSON.stringify(keyFile)} });`,
        `const entry = ${JSON.stringify(entry('cli'))};`,
        'process.stdout.write("ready\\n");',
        'for (let i = 0; i < 40; i++) { await sink.append({ ...entry, node: "cli-" + i }); }',
      ].join('\n'),
    );
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`the CLI writer exited (${code})`)));
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      for (let round = 0; round < 40; round++) {
        await Promise.all([
          sink.append(entry(`srv-${round}-a`)),
          sink.append(entry(`srv-${round}-b`)),
        ]);
      }
      expect(await exited).toBe(0);
    } finally {
      child.kill();
      await sink.close();
    }
    const nodes = readFileSync(path, 'utf8')
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { node: string }).node);
    expect(nodes.filter((node) => node.startsWith('cli-'))).toHaveLength(40);
    expect(nodes.filter((node) => node.startsWith('srv-'))).toHaveLength(80);
    expect(verifyAuditLog(path, { publicKey: readAuditPublicKey(keyFile) })).toMatchObject({
      ok: true,
      verified: 121,
      signed: 121,
    });
  });

  it('a lock held by a live process fails the batch with AUDIT_WRITE_FAILED after the timeout, and the next batch succeeds', async () => {
    const path = join(dir, 'audit.jsonl');
    writeFileSync(
      `${path}.lock`,
      JSON.stringify({ pid: process.pid, host: 'h', token: 't', created: 'now' }),
    );
    const sink = createFileAuditSink({ path, host: 'h', lockTimeoutMs: 100, writer: 'thread' });
    try {
      const error = await sink.append(entry('a')).then(
        () => undefined,
        (failure: unknown) => failure as { code?: string; message?: string },
      );
      expect(error?.code).toBe('AUDIT_WRITE_FAILED');
      expect(error?.message).toContain(`${path}.lock`);
      rmSync(`${path}.lock`);
      expect((await sink.append(entry('b'))).seq).toBe(1);
    } finally {
      await sink.close();
    }
  });
});
