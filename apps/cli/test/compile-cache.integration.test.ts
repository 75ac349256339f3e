/**
 * bin/rune.js and V8's compile cache (`module.enableCompileCache`, Node >= 22.1): the cache is
 * kept in the user's private `$XDG_CACHE_HOME/rune/compile-cache` (0700), and a cache directory
 * that others could write is never used (V8 trusts the code it loads from there). On a Node
 * without the API (Node 20) nothing is created. RUNE_TEST_NODE runs the same checks with another
 * Node binary (e.g. a Node 22 next to the Node 20 the suite runs on).
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cliIsBuilt } from './cli-harness.js';

const bin = fileURLToPath(new URL('../bin/rune.js', import.meta.url));
const node = process.env.RUNE_TEST_NODE ?? process.execPath;
const scratch = mkdtempSync(join(tmpdir(), 'rune-compile-cache-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const hasCompileCache =
  spawnSync(
    node,
    ['-e', "process.stdout.write(typeof require('node:module').enableCompileCache)"],
    { encoding: 'utf8' },
  ).stdout === 'function';

function version(cacheHome: string): void {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cacheHome };
  delete env.NODE_COMPILE_CACHE;
  const run = spawnSync(node, [bin, '--version'], { env, encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  expect(run.stdout).toMatch(/^rune \d/);
}

describe.skipIf(!cliIsBuilt())('the CLI and the V8 compile cache', () => {
  it.runIf(hasCompileCache)('keeps the cache in a private directory and uses no other', () => {
    const home = join(scratch, 'private');
    const dir = join(home, 'rune', 'compile-cache');
    version(home);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readdirSync(dir).length).toBeGreaterThan(0);
    // A cache directory others may write (prepared by someone else): never used.
    const sharedDir = join(scratch, 'shared', 'rune', 'compile-cache');
    mkdirSync(sharedDir, { recursive: true });
    chmodSync(sharedDir, 0o777);
    version(join(scratch, 'shared'));
    expect(readdirSync(sharedDir)).toEqual([]);
  });

  it.skipIf(hasCompileCache)('creates nothing on a Node without the API', () => {
    const home = join(scratch, 'node20');
    version(home);
    expect(existsSync(join(home, 'rune'))).toBe(false);
  });
});
