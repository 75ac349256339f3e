import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeRunResult } from '@rune/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createNodeOutputWriter, nodeFileStem } from './output-dir.js';

const roots: string[] = [];
const scratch = (): string => {
  const root = mkdtempSync(join(tmpdir(), 'rune-output-dir-'));
  roots.push(root);
  return root;
};
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

const result = (node: string, stderr = ''): NodeRunResult =>
  ({ node, status: 'success', stderr_tail: stderr }) as unknown as NodeRunResult;

describe('nodeFileStem', () => {
  it('keeps plain names and marks every changed one with a digest', () => {
    expect(nodeFileStem('web1.example.net')).toBe('web1.example.net');
    expect(nodeFileStem('ops@10.0.0.1:2222')).toMatch(/^ops@10\.0\.0\.1_2222-[0-9a-f]{12}$/);
    for (const hostile of [
      '../../etc/passwd',
      '..',
      '.',
      '/abs',
      'a/b',
      '.hidden',
      '',
      'x\0y',
      'é\u202e',
    ]) {
      const stem = nodeFileStem(hostile);
      expect(stem, hostile).toMatch(/^[A-Za-z0-9_@-][A-Za-z0-9._@-]*$/);
      expect(stem).not.toContain('/');
    }
    // Names that clean up alike still get different files.
    expect(nodeFileStem('a/b')).not.toBe(nodeFileStem('a:b'));
    expect(nodeFileStem('a_b')).not.toBe(nodeFileStem('a/b'));
    expect(nodeFileStem('x'.repeat(300)).length).toBeLessThan(120);
  });
});

describe('createNodeOutputWriter', () => {
  it('creates DIR 0700 and one 0600 file per node inside it, whatever the name', () => {
    const dir = join(scratch(), 'out', 'nested');
    const warnings: string[] = [];
    const writer = createNodeOutputWriter(dir, (message) => warnings.push(message));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    writer.write(result('web1', 'some\nstderr\n'));
    writer.write(result('../../escape'));
    writer.write(result('/etc/cron.d/x'));
    expect(warnings).toEqual([]);
    expect(writer.written).toBe(3);
    const files = readdirSync(dir).sort();
    expect(files).toHaveLength(4);
    expect(files).toContain('web1.json');
    expect(readFileSync(join(dir, 'web1.stderr.txt'), 'utf8')).toBe('some\nstderr\n');
    for (const file of files) expect(statSync(join(dir, file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(dir, 'web1.json'), 'utf8')).node).toBe('web1');
    // Nothing was written next to DIR.
    expect(readdirSync(join(dir, '..'))).toEqual(['nested']);
  });

  it('refuses a DIR others can write to, and a file that is not one', () => {
    const shared = scratch();
    chmodSync(shared, 0o777);
    expect(() => createNodeOutputWriter(shared, () => {})).toThrow(/writable by group or others/);
    const file = join(scratch(), 'file');
    writeFileSync(file, '');
    expect(() => createNodeOutputWriter(file, () => {})).toThrow(
      /is not a directory|cannot create/,
    );
  });

  it('never follows a link planted where a result goes; the run goes on with a warning', () => {
    const dir = scratch();
    chmodSync(dir, 0o700);
    const target = join(scratch(), 'target');
    writeFileSync(target, 'keep');
    symlinkSync(target, join(dir, 'web1.json'));
    const warnings: string[] = [];
    createNodeOutputWriter(dir, (message) => warnings.push(message)).write(result('web1'));
    expect(readFileSync(target, 'utf8')).toBe('keep');
    expect(warnings[0]).toContain('could not write the result of web1');
  });
});
