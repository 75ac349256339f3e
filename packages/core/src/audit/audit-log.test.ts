import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuneError } from '@rune/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AUDIT_PARAM_VALUE_MAX_BYTES,
  AUDIT_RECORD_MAX_BYTES,
  boundAuditEntry,
} from './audit-bounds.js';
import { createAuditSigner, loadOrCreateAuditKey, readAuditPublicKey } from './audit-key.js';
import {
  AUDIT_GENESIS_HASH,
  type AuditEntry,
  type AuditRecord,
  canonicalJson,
  createFileAuditSink,
  hashAuditRecord,
  prepareAuditRecord,
  readAuditLog,
  sealAuditRecord,
  verifyAuditLog,
} from './audit-log.js';

/** The RuneError a promise rejects with. */
async function catchRuneError(promise: Promise<unknown>): Promise<RuneError> {
  try {
    await promise;
  } catch (error) {
    if (RuneError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a RuneError');
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rune-audit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const entry = (node: string, params: Record<string, unknown> = { b: 1, a: 2 }): AuditEntry => ({
  event: 'run',
  operator: 'op',
  action: 'noop',
  plugin: null,
  node,
  transport: 'local',
  status: 'success',
  error_code: null,
  error_message: null,
  duration_ms: 1,
  trace_id: 'a'.repeat(32),
  params,
  metadata: {},
});

/** A signed log of `nodes.length` records, and its verification key. */
async function signedLog(nodes: string[], params?: Record<string, unknown>) {
  const path = join(dir, 'audit.jsonl');
  const keyFile = join(dir, 'keys', 'audit-key.pem');
  const sink = createFileAuditSink({ path, host: 'h', keyFile });
  for (const node of nodes) await sink.append(entry(node, params));
  return { path, keyFile, publicKey: readAuditPublicKey(keyFile) };
}

const lines = (path: string): string[] => readFileSync(path, 'utf8').trim().split('\n');
const write = (path: string, records: unknown[]): void =>
  writeFileSync(path, `${records.map((record) => JSON.stringify(record)).join('\n')}\n`);

/** What a forger without the key can do: re-link and re-hash every record from `from` on. */
function rechain(records: AuditRecord[], from: number): AuditRecord[] {
  const out = records.map((record) => ({ ...record }));
  for (let index = from; index < out.length; index++) {
    const record = out[index]!;
    record.prev_hash = index === 0 ? AUDIT_GENESIS_HASH : out[index - 1]!.hash;
    record.hash = hashAuditRecord(record);
  }
  return out;
}

describe('audit log', () => {
  it('canonical JSON sorts keys and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: undefined }] })).toBe('{"a":[{"d":1}],"b":1}');
  });

  it('chains, numbers and signs records, creates private files and key, and verifies', async () => {
    const path = join(dir, 'state', 'rune', 'audit.jsonl');
    const keyFile = join(dir, 'config', 'rune', 'audit-key.pem');
    const sink = createFileAuditSink({
      path,
      host: 'h',
      keyFile,
      now: () => new Date('2026-01-01T00:00:00Z'),
    });
    const first = await sink.append(entry('a'));
    const [second, third] = await Promise.all([sink.append(entry('b')), sink.append(entry('c'))]);
    expect(first.prev_hash).toBe(AUDIT_GENESIS_HASH);
    expect(second?.prev_hash).toBe(first.hash);
    expect(third?.prev_hash).toBe(second?.hash);
    expect([first.seq, second?.seq, third?.seq]).toEqual([1, 2, 3]);
    expect(first.v).toBe(2);
    expect(first.sig).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'state', 'rune')).mode & 0o777).toBe(0o700);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'config', 'rune')).mode & 0o777).toBe(0o700);
    expect(readAuditLog(path).map((record) => record.node)).toEqual(['a', 'b', 'c']);
    const publicKey = readAuditPublicKey(keyFile);
    expect(verifyAuditLog(path, { publicKey })).toMatchObject({
      ok: true,
      verified: 3,
      signed: 3,
      unsigned: 0,
      head: { seq: 3, hash: third?.hash, sig: third?.sig },
    });
    // Without a key, signed records cannot be checked: never reported as intact.
    expect(verifyAuditLog(path).error?.code).toBe('INVALID_ARGUMENT');
    // A second sink (another process) continues the same chain with the same key.
    const again = await createFileAuditSink({ path, host: 'h', keyFile }).append(entry('d'));
    expect(again).toMatchObject({ prev_hash: third?.hash, seq: 4, key_id: first.key_id });
  });

  it('writes concurrent appends as group commits: one chain in call order, each record durable on resolve', async () => {
    const path = join(dir, 'audit.jsonl');
    const keyFile = join(dir, 'keys', 'audit-key.pem');
    const sink = createFileAuditSink({ path, host: 'h', keyFile });
    await sink.append(entry('first'));
    const nodes = Array.from({ length: 60 }, (_, index) => `n${index}`);
    const records = await Promise.all(
      nodes.map(async (node) => {
        const record = await sink.append(entry(node));
        // Resolved only once its batch is on disk.
        expect(readAuditLog(path).some((line) => line.hash === record.hash)).toBe(true);
        return record;
      }),
    );
    expect(records.map((record) => record.seq)).toEqual(nodes.map((_, index) => index + 2));
    expect(readAuditLog(path).map((record) => record.node)).toEqual(['first', ...nodes]);
    expect(verifyAuditLog(path, { publicKey: readAuditPublicKey(keyFile) })).toMatchObject({
      ok: true,
      verified: 61,
      signed: 61,
    });
  });

  it('two writers appending at once (two processes: one lock file) keep one verifiable chain', async () => {
    // The batches of the two sinks alternate in one file; each reads the head under the lock
    // file, so neither chains from a head the other has moved on from. (Batches that really
    // race, from another process: audit-writer.test.ts.)
    const path = join(dir, 'audit.jsonl');
    const keyFile = join(dir, 'keys', 'audit-key.pem');
    const one = createFileAuditSink({ path, host: 'h', keyFile });
    const two = createFileAuditSink({ path, host: 'h', keyFile });
    const writes: Promise<AuditRecord>[] = [];
    for (let round = 0; round < 20; round++) {
      writes.push(one.append(entry(`one-${round}`)), two.append(entry(`two-${round}`)));
      // A turn between rounds: the next appends go into new batches, racing the pending ones.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const records = await Promise.all(writes);
    expect(new Set(records.map((record) => record.seq)).size).toBe(40);
    expect(verifyAuditLog(path, { publicKey: readAuditPublicKey(keyFile) })).toMatchObject({
      ok: true,
      verified: 40,
      signed: 40,
    });
  });

  it('finds the first removed or reordered record', async () => {
    const { path, publicKey } = await signedLog(['a', 'b', 'c', 'd']);
    const original = lines(path);
    writeFileSync(path, `${[original[0], original[2], original[3]].join('\n')}\n`);
    expect(verifyAuditLog(path, { publicKey })).toMatchObject({ ok: false, brokenLine: 2 });
    writeFileSync(path, `${[original[0], original[2], original[1], original[3]].join('\n')}\n`);
    expect(verifyAuditLog(path, { publicKey }).brokenLine).toBe(2);
    writeFileSync(path, `${original.join('\n')}\nnot json\n`);
    expect(verifyAuditLog(path, { publicKey }).brokenLine).toBe(5);
  });

  it('an edited record whose plain hash chain was recomputed fails on its signature', async () => {
    const { path, publicKey } = await signedLog(['a', 'b', 'c', 'd']);
    const records = readAuditLog(path);
    records[2]!.status = 'failure';
    write(path, rechain(records, 2));
    const verdict = verifyAuditLog(path, { publicKey });
    expect(verdict).toMatchObject({ ok: false, brokenLine: 3, verified: 2 });
    expect(verdict.error?.code).toBe('AUDIT_CHAIN_BROKEN');
    expect(verdict.error?.message).toContain('signature does not verify');
    // Stripping the signatures instead: an unsigned record after signed ones.
    const stripped = rechain(readAuditLog(path), 2).map((record, index) =>
      index >= 2 ? { ...record, sig: undefined, key_id: undefined } : record,
    );
    write(path, rechain(stripped, 2));
    expect(verifyAuditLog(path, { publicKey })).toMatchObject({ ok: false, brokenLine: 3 });
  });

  it('a changed parameter value, everything re-hashed, is AUDIT_CHAIN_BROKEN naming its line', async () => {
    const { path, publicKey } = await signedLog(['a', 'b', 'c'], { target: 'db1' });
    const records = readAuditLog(path);
    records[1]!.params = { target: 'db2' };
    write(path, rechain(records, 1));
    const verdict = verifyAuditLog(path, { publicKey });
    expect(verdict.ok).toBe(false);
    expect(verdict.error?.code).toBe('AUDIT_CHAIN_BROKEN');
    expect(verdict.brokenLine).toBe(2);
    expect(verdict.error?.message).toContain(`${path}:2:`);
  });

  it('records removed from the end fail against the anchored head', async () => {
    const { path, publicKey } = await signedLog(['a', 'b', 'c']);
    const head = verifyAuditLog(path, { publicKey }).head;
    expect(head?.seq).toBe(3);
    const anchor = { seq: head!.seq, hash: head!.hash };
    expect(verifyAuditLog(path, { publicKey, anchor, expectHead: anchor.hash }).ok).toBe(true);
    writeFileSync(path, `${lines(path).slice(0, 2).join('\n')}\n`);
    // The file alone still verifies: that is what the anchor is for.
    expect(verifyAuditLog(path, { publicKey }).ok).toBe(true);
    const byHash = verifyAuditLog(path, { publicKey, expectHead: anchor.hash });
    expect(byHash.ok).toBe(false);
    expect(byHash.error?.code).toBe('AUDIT_CHAIN_BROKEN');
    const byAnchor = verifyAuditLog(path, { publicKey, anchor });
    expect(byAnchor.error?.code).toBe('AUDIT_CHAIN_BROKEN');
    expect(byAnchor.error?.message).toContain('1 record(s) were removed');
  });

  it('a record signed by another key fails; the public key alone verifies', async () => {
    const { path, publicKey } = await signedLog(['a']);
    const other = generateKeyPairSync('ed25519');
    const forged = createFileAuditSink({
      path,
      host: 'h',
      signer: createAuditSigner(other.privateKey),
    });
    await forged.append(entry('b'));
    const verdict = verifyAuditLog(path, { publicKey });
    expect(verdict).toMatchObject({ ok: false, brokenLine: 2 });
    expect(verdict.error?.message).toContain('signed by key');
    const publicFile = join(dir, 'public.pem');
    writeFileSync(publicFile, other.publicKey.export({ type: 'spki', format: 'pem' }));
    expect(verifyAuditLog(path, { publicKey: readAuditPublicKey(publicFile) }).brokenLine).toBe(1);
  });

  it('reads legacy v1 logs: an unsigned prefix sealed by signed records is accepted', async () => {
    const path = join(dir, 'audit.jsonl');
    // Two records as RUNE wrote them before signing (v 1, no seq, no sig).
    const legacy: AuditRecord[] = [];
    for (const node of ['old1', 'old2']) {
      const base = {
        v: 1 as const,
        timestamp: '2025-01-01T00:00:00.000Z',
        host: 'h',
        ...entry(node),
        prev_hash: legacy.at(-1)?.hash ?? AUDIT_GENESIS_HASH,
      };
      legacy.push({ ...base, hash: hashAuditRecord(base) });
    }
    write(path, legacy);
    expect(verifyAuditLog(path)).toMatchObject({ ok: false, unsigned: 2 });
    expect(verifyAuditLog(path).error?.message).toContain('--allow-unsigned');
    expect(verifyAuditLog(path, { allowUnsigned: true })).toMatchObject({ ok: true, unsigned: 2 });
    const keyFile = join(dir, 'key.pem');
    const next = await createFileAuditSink({ path, host: 'h', keyFile }).append(entry('new'));
    expect(next).toMatchObject({ seq: 3, prev_hash: legacy[1]?.hash });
    const publicKey = readAuditPublicKey(keyFile);
    expect(verifyAuditLog(path, { publicKey })).toMatchObject({ ok: true, signed: 1, unsigned: 2 });
    // The sealed prefix cannot be edited: the signed record chains it.
    const records = readAuditLog(path);
    records[0]!.status = 'failure';
    write(path, rechain(records, 0).slice(0, 2).concat(records[2]!));
    expect(verifyAuditLog(path, { publicKey }).ok).toBe(false);
  });

  it('bounds a 20 MB parameter value to a digest and keeps the record under the maximum', async () => {
    const huge = 'x'.repeat(20 * 1024 * 1024);
    const { path, publicKey } = await signedLog(['a'], { huge, small: 'kept' });
    const size = statSync(path).size;
    expect(size).toBeLessThan(AUDIT_RECORD_MAX_BYTES);
    const [record] = readAuditLog(path);
    expect(record?.params).toMatchObject({
      small: 'kept',
      huge: {
        truncated: true,
        bytes: huge.length + 2,
        sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      },
    });
    expect(JSON.stringify(record?.params?.huge).length).toBeLessThan(AUDIT_PARAM_VALUE_MAX_BYTES);
    expect(verifyAuditLog(path, { publicKey }).ok).toBe(true);
  });

  it('bounds error messages, metadata and many nodes', async () => {
    const path = join(dir, 'audit.jsonl');
    const sink = createFileAuditSink({ path, host: 'h' });
    await sink.append({
      ...entry('a'),
      error_message: 'é'.repeat(100_000),
      nodes: Array.from({ length: 5000 }, (_, index) => `node-${index}-${'n'.repeat(240)}`),
      metadata: { blob: 'm'.repeat(1_000_000), many: Array.from({ length: 10_000 }, () => 'v') },
      params: Object.fromEntries(
        Array.from({ length: 2000 }, (_, index) => [`p${index}`, 'y'.repeat(1000)]),
      ),
    });
    expect(statSync(path).size).toBeLessThanOrEqual(AUDIT_RECORD_MAX_BYTES);
    const [record] = readAuditLog(path);
    expect(record?.error_message).toContain('…[truncated, 200000 bytes]');
    expect(record?.nodes_total).toBe(5000);
    expect(verifyAuditLog(path, { allowUnsigned: true }).ok).toBe(true);
  });

  it('fails with AUDIT_WRITE_FAILED when the log cannot be written', async () => {
    writeFileSync(join(dir, 'file'), 'x');
    const sink = createFileAuditSink({
      path: join(dir, 'file', 'audit.jsonl'),
      host: 'h',
      lockTimeoutMs: 50,
    });
    const error = await catchRuneError(sink.append(entry('a')));
    expect(error.code).toBe('AUDIT_WRITE_FAILED');
  });

  it('refuses a key file that group or others can read', async () => {
    const keyFile = join(dir, 'keys', 'audit-key.pem');
    await loadOrCreateAuditKey(keyFile);
    chmodSync(keyFile, 0o640);
    const sink = createFileAuditSink({ path: join(dir, 'audit.jsonl'), host: 'h', keyFile });
    const error = await catchRuneError(sink.append(entry('a')));
    expect(error.code).toBe('AUDIT_WRITE_FAILED');
    expect(error.message).toContain('mode 0640');
    expect(existsSync(join(dir, 'audit.jsonl'))).toBe(false);
  });
});

describe('audit lock', () => {
  it('a lock held by a live process times out with AUDIT_WRITE_FAILED naming the lock file', async () => {
    const path = join(dir, 'audit.jsonl');
    // This test process is alive: its lock is held.
    writeFileSync(
      `${path}.lock`,
      JSON.stringify({ pid: process.pid, host: 'h', token: 't', created: 'now' }),
    );
    const sink = createFileAuditSink({ path, host: 'h', lockTimeoutMs: 100 });
    const error = await catchRuneError(sink.append(entry('a')));
    expect(error.code).toBe('AUDIT_WRITE_FAILED');
    expect(error.message).toContain(`${path}.lock`);
    expect(error.message).toContain(`pid ${process.pid}`);
    expect(existsSync(path)).toBe(false);
  });

  it('a lock left by a dead process is recovered at once', async () => {
    const path = join(dir, 'audit.jsonl');
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    const pid = child.pid!;
    await new Promise((resolve) => child.on('exit', resolve));
    writeFileSync(`${path}.lock`, JSON.stringify({ pid, host: 'h', token: 'dead', created: 'x' }));
    // A timeout far shorter than any age-based staleness: only the pid check can free it.
    const sink = createFileAuditSink({ path, host: 'h', lockTimeoutMs: 200 });
    const record = await sink.append(entry('a'));
    expect(record.seq).toBe(1);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('a lock of another host, or an unreadable one, is judged by age', async () => {
    const path = join(dir, 'audit.jsonl');
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${path}.lock`, '');
    const young = createFileAuditSink({ path, host: 'h', lockTimeoutMs: 50 });
    expect((await catchRuneError(young.append(entry('a')))).code).toBe('AUDIT_WRITE_FAILED');
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${path}.lock`, old, old);
    expect((await young.append(entry('a'))).seq).toBe(1);
  });
});

describe('prepareAuditRecord', () => {
  const signer = createAuditSigner(generateKeyPairSync('ed25519').privateKey);
  const entries: AuditEntry[] = [
    entry('n1'),
    { ...entry('n2', { z: [1, { y: null, x: 'é' }], a: '"quoted"' }), run_id: 'r-1' },
    {
      ...entry('n3'),
      event: 'intent',
      node: null,
      nodes: ['a', 'b'],
      plugin: { version: '1', sha256: 'f'.repeat(64), path: '/p', source: 'dir' },
      metadata: { principal: 'token:x', nested: { b: 2, a: undefined } },
    },
  ];

  it('seals the hash that hashAuditRecord computes, in the key order records always had', () => {
    for (const recordSigner of [undefined, signer]) {
      let head = { hash: AUDIT_GENESIS_HASH, seq: 0 };
      for (const item of entries) {
        const record = prepareAuditRecord(item, { host: 'h', signer: recordSigner }).seal(
          head,
          '2026-12-01T00:00:00.000Z',
        );
        // The record as sealAuditRecord built it before records were prepared, byte for byte.
        const before = {
          v: 2 as const,
          seq: head.seq + 1,
          timestamp: '2026-12-01T00:00:00.000Z',
          host: 'h',
          ...boundAuditEntry(item),
          prev_hash: head.hash,
          ...(recordSigner === undefined ? {} : { key_id: recordSigner.keyId }),
        };
        const hash = hashAuditRecord(before);
        expect(JSON.stringify(record)).toBe(
          JSON.stringify({
            ...before,
            hash,
            ...(recordSigner === undefined ? {} : { sig: recordSigner.sign(hash) }),
          }),
        );
        expect(
          sealAuditRecord(item, head, {
            timestamp: '2026-12-01T00:00:00.000Z',
            host: 'h',
            signer: recordSigner,
          }),
        ).toEqual(record);
        head = { hash: record.hash, seq: record.seq ?? 0 };
      }
    }
  });

  it('sets the chain fields itself, whatever the entry carried, and seals anew at each head', () => {
    const forged = { ...entry('n1'), seq: 99, prev_hash: 'x', timestamp: 'then' } as AuditEntry;
    const prepared = prepareAuditRecord(forged, { host: 'h', signer });
    const first = prepared.seal({ hash: AUDIT_GENESIS_HASH, seq: 0 }, 't1');
    const second = prepared.seal({ hash: first.hash, seq: 1 }, 't2');
    expect([first.seq, first.prev_hash, first.timestamp]).toEqual([1, AUDIT_GENESIS_HASH, 't1']);
    expect([second.seq, second.prev_hash, second.timestamp]).toEqual([2, first.hash, 't2']);
    expect(first.hash).toBe(hashAuditRecord(first));
    expect(second.hash).toBe(hashAuditRecord(second));
    const path = join(dir, 'chain.jsonl');
    writeFileSync(path, `${JSON.stringify(first)}\n${JSON.stringify(second)}\n`);
    const publicFile = join(dir, 'key.pub');
    writeFileSync(publicFile, signer.publicKeyPem);
    expect(verifyAuditLog(path, { publicKey: readAuditPublicKey(publicFile) }).ok).toBe(true);
  });
});
