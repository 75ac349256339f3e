import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AUDIT_GENESIS_HASH,
  type AuditEntry,
  canonicalJson,
  createFileAuditSink,
  readAuditLog,
  verifyAuditLog,
} from './audit-log.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rune-audit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const entry = (node: string): AuditEntry => ({
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
  params: { b: 1, a: 2 },
  metadata: {},
});

describe('audit log', () => {
  it('canonical JSON sorts keys and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: undefined }] })).toBe('{"a":[{"d":1}],"b":1}');
  });

  it('chains records, creates private files, and verifies', async () => {
    const path = join(dir, 'state', 'rune', 'audit.jsonl');
    const sink = createFileAuditSink({
      path,
      host: 'h',
      now: () => new Date('2026-01-01T00:00:00Z'),
    });
    const first = await sink.append(entry('a'));
    const [second, third] = await Promise.all([sink.append(entry('b')), sink.append(entry('c'))]);
    expect(first.prev_hash).toBe(AUDIT_GENESIS_HASH);
    expect(second?.prev_hash).toBe(first.hash);
    expect(third?.prev_hash).toBe(second?.hash);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'state', 'rune')).mode & 0o777).toBe(0o700);
    expect(readAuditLog(path).map((record) => record.node)).toEqual(['a', 'b', 'c']);
    expect(verifyAuditLog(path)).toMatchObject({ ok: true, verified: 3 });
    // A second sink (another process) continues the same chain.
    const again = await createFileAuditSink({ path, host: 'h' }).append(entry('d'));
    expect(again.prev_hash).toBe(third?.hash);
  });

  it('finds the first altered, removed or reordered record', async () => {
    const path = join(dir, 'audit.jsonl');
    const sink = createFileAuditSink({ path, host: 'h' });
    for (const node of ['a', 'b', 'c', 'd']) await sink.append(entry(node));
    const lines = readFileSync(path, 'utf8').trim().split('\n');

    writeFileSync(path, `${[lines[0], lines[2], lines[3]].join('\n')}\n`);
    expect(verifyAuditLog(path)).toMatchObject({ ok: false, brokenLine: 2 });

    writeFileSync(path, `${[lines[0], lines[2], lines[1], lines[3]].join('\n')}\n`);
    expect(verifyAuditLog(path).brokenLine).toBe(2);

    const altered = [...lines];
    altered[2] = altered[2]!.replace('"status":"success"', '"status":"failure"');
    writeFileSync(path, `${altered.join('\n')}\n`);
    const verdict = verifyAuditLog(path);
    expect(verdict).toMatchObject({ ok: false, brokenLine: 3, verified: 2 });
    expect(verdict.error?.code).toBe('AUDIT_CHAIN_BROKEN');

    writeFileSync(path, `${lines.join('\n')}\nnot json\n`);
    expect(verifyAuditLog(path).brokenLine).toBe(5);
  });

  it('fails with AUDIT_WRITE_FAILED when the log cannot be written', async () => {
    writeFileSync(join(dir, 'file'), 'x');
    const sink = createFileAuditSink({
      path: join(dir, 'file', 'audit.jsonl'),
      host: 'h',
      lockTimeoutMs: 50,
    });
    await expect(sink.append(entry('a'))).rejects.toMatchObject({ code: 'AUDIT_WRITE_FAILED' });
    await expect(sink.assertWritable?.()).rejects.toMatchObject({ code: 'AUDIT_WRITE_FAILED' });
  });
});
