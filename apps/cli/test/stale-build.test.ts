/**
 * The guard of the CLI integration tests against a stale dist/ (build-inputs.mjs, the stamp
 * bundle.mjs writes): a fresh stamp passes, any changed, added or removed input fails with the
 * file named and the build command, and a stamp recording stale dependencies fails.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUILD_INPUT_DIRS, hashBuildInputs } from '../scripts/build-inputs.mjs';
import { staleBuildReason } from './cli-harness.js';

const root = mkdtempSync(join(tmpdir(), 'rune-stale-build-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A miniature repository: one file per input directory, and a stamp of it. */
function miniRepo(name: string): { dir: string; stamp: string } {
  const dir = join(root, name);
  for (const input of BUILD_INPUT_DIRS) {
    mkdirSync(join(dir, input), { recursive: true });
    writeFileSync(join(dir, input, 'index.ts'), `export const where = ${JSON.stringify(input)};\n`);
  }
  const stamp = join(dir, 'build-stamp.json');
  const hashed = hashBuildInputs(dir);
  writeFileSync(
    stamp,
    JSON.stringify({ inputs_sha256: hashed.sha256, stale_dependencies: [], files: hashed.files }),
  );
  return { dir, stamp };
}

describe('stale dist/ detection', () => {
  it('passes a stamp of the current sources', () => {
    const { dir, stamp } = miniRepo('fresh');
    expect(staleBuildReason(stamp, dir)).toBeUndefined();
  });

  it('names a changed source of the CLI or of a package it bundles, and the build command', () => {
    for (const input of ['apps/cli/src', 'packages/core/src', 'plugins/builtin']) {
      const { dir, stamp } = miniRepo(`changed-${input.replaceAll('/', '-')}`);
      writeFileSync(join(dir, input, 'index.ts'), 'export const where = "edited";\n');
      const reason = staleBuildReason(stamp, dir);
      expect(reason).toContain(`${input}/index.ts`);
      expect(reason).toContain('npx -y pnpm@10.34.9 build');
    }
  });

  it('notices added and removed files, but not tests or test helpers', () => {
    const { dir, stamp } = miniRepo('added');
    writeFileSync(join(dir, 'packages/protocol/src/new.ts'), 'export {};\n');
    expect(staleBuildReason(stamp, dir)).toContain('packages/protocol/src/new.ts');
    const removed = miniRepo('removed');
    rmSync(join(removed.dir, 'apps/cli/scripts/index.ts'));
    expect(staleBuildReason(removed.stamp, removed.dir)).toContain('apps/cli/scripts/index.ts');
    const tests = miniRepo('tests-only');
    writeFileSync(join(tests.dir, 'apps/cli/src/x.test.ts'), 'export {};\n');
    mkdirSync(join(tests.dir, 'packages/core/src/testing'));
    writeFileSync(join(tests.dir, 'packages/core/src/testing/helper.ts'), 'export {};\n');
    expect(staleBuildReason(tests.stamp, tests.dir)).toBeUndefined();
  });

  it('refuses a missing stamp and a bundle made from stale dependencies', () => {
    const { dir, stamp } = miniRepo('deps');
    expect(staleBuildReason(join(dir, 'nope.json'), dir)).toMatch(/no build stamp/);
    const copy = join(dir, 'stale-stamp.json');
    cpSync(stamp, copy);
    writeFileSync(
      copy,
      JSON.stringify({ inputs_sha256: 'x', stale_dependencies: ['packages/core'], files: {} }),
    );
    expect(staleBuildReason(copy, dir)).toMatch(/stale dist\/ of packages\/core/);
  });

  it('the real dist/ is fresh (else every CLI integration test refuses to run)', () => {
    expect(staleBuildReason()).toBeUndefined();
  });
});
