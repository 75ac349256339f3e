import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findUnsafePathComponent, SAFE_PATH_FUNCTION_SH } from './safe-path.js';

const root = mkdtempSync(join(tmpdir(), 'rune-safe-path-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const uid = process.getuid!();

function shellCheck(path: string, shell: string): string | undefined {
  const result = spawnSync(
    shell,
    ['-c', `${SAFE_PATH_FUNCTION_SH}\nrune_safe_path "$1"`, 'rune', path],
    {
      encoding: 'utf8',
    },
  );
  if (result.status === 0) return undefined;
  return result.stdout.trim();
}

function dir(...parts: string[]): string {
  const path = join(root, ...parts);
  mkdirSync(path, { recursive: true, mode: 0o700 });
  return path;
}

// Each case: a path and the component expected to be reported (undefined = safe).
const cases: [string, () => [string, string | undefined]][] = [
  ['a private directory', () => [dir('ok', 'cache'), undefined]],
  [
    'a private file',
    () => {
      const file = join(dir('okfile'), 'plugin');
      writeFileSync(file, '#!/bin/sh\n', { mode: 0o700 });
      return [file, undefined];
    },
  ],
  [
    'a world-writable parent',
    () => {
      const parent = dir('open');
      chmodSync(parent, 0o777);
      return [dir('open', 'cache'), parent];
    },
  ],
  [
    'a group-writable last component',
    () => {
      const path = dir('group', 'cache');
      chmodSync(path, 0o770);
      return [path, path];
    },
  ],
  [
    'a group-writable file',
    () => {
      const file = join(dir('gfile'), 'plugin');
      writeFileSync(file, '#!/bin/sh\n', { mode: 0o770 });
      chmodSync(file, 0o770);
      return [file, file];
    },
  ],
  [
    'a symlink as the last component',
    () => {
      const target = dir('target');
      const link = join(root, 'link');
      symlinkSync(target, link);
      return [link, link];
    },
  ],
  [
    'a symlinked parent that resolves to a safe place',
    () => {
      dir('real', 'cache');
      const link = join(root, 'parentlink');
      symlinkSync(join(root, 'real'), link);
      return [join(link, 'cache'), undefined];
    },
  ],
  ['a missing path', () => [join(root, 'missing'), join(root, 'missing')]],
  [
    'a root-owned sticky world-writable parent (like /tmp) when root owns it',
    () => {
      const sticky = dir('sticky');
      chmodSync(sticky, 0o1777);
      return [dir('sticky', 'cache'), uid === 0 ? undefined : sticky];
    },
  ],
  [
    'a sticky world-writable directory as the last component',
    () => {
      const sticky = dir('sticky-last');
      chmodSync(sticky, 0o1777);
      return [sticky, sticky];
    },
  ],
];
if (uid === 0) {
  cases.push([
    'a parent owned by another user',
    () => {
      const parent = dir('other');
      chownSync(parent, 65534, 65534);
      return [dir('other', 'cache'), parent];
    },
  ]);
}

describe('safe plugin paths, one rule in sh, bash and Node', () => {
  const built = cases.map(([name, make]) => [name, ...make()] as const);
  it.each(built)('%s', async (_name, path, unsafe) => {
    expect(await findUnsafePathComponent(path, uid)).toBe(unsafe);
    expect(shellCheck(path, 'sh')).toBe(unsafe);
    expect(shellCheck(path, 'bash')).toBe(unsafe);
  });
});
