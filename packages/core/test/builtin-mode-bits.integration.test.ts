/**
 * Built-in plugins installed without their execute bit still run through the local transport.
 *
 * `pnpm pack` (and so `pnpm publish`) writes every file that is not a `bin` with mode 0644, so a
 * `rune` installed from such a tarball has built-in plugins that are not executable. What runs is
 * the content, verified by sha256 right before execution, so neither the registry nor the local
 * transport may depend on that bit: the transport runs a private 0700 copy of the verified bytes.
 */
import { chmodSync, copyFileSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalTransport, createRune, type Rune } from '../src/index.js';
import { createFixtureEnv, FIXTURE_PLUGIN_DIR, type FixtureEnv } from './fixture-env.js';

let fx: FixtureEnv;
let rune: Rune;
let builtinDir: string;

beforeAll(() => {
  fx = createFixtureEnv();
  builtinDir = join(fx.root, 'installed-builtin-plugins');
  mkdirSync(builtinDir);
  copyFileSync(join(FIXTURE_PLUGIN_DIR, 'ok.sh'), join(builtinDir, 'ok.sh'));
  chmodSync(join(builtinDir, 'ok.sh'), 0o644);
  rune = createRune({
    env: fx.env,
    home: fx.home,
    cwd: fx.root,
    pluginSources: [{ kind: 'builtin', dir: builtinDir }],
    transports: { local: () => createLocalTransport({ env: fx.env, killGraceMs: 300 }) },
  });
});
afterAll(async () => {
  await rune.close();
  fx.cleanup();
});

describe('a built-in plugin packed without mode bits (mode 0644)', () => {
  it('runs through the local transport from a verified private copy', async () => {
    const report = await rune.run({
      action: 'ok',
      selections: ['localhost'],
      confirmDangerous: true,
    });
    const node = report.outcome?.nodes[0];
    expect(node?.error ?? null).toBeNull();
    expect(node?.status).toBe('success');
    expect(node?.response?.payload.summary).toBe('all good');
    // The installed file is left as it is (RUNE never chmods files it does not own).
    expect(statSync(join(builtinDir, 'ok.sh')).mode & 0o777).toBe(0o644);
  });
});
