/**
 * The remote plugin cache and preinstalled plugins must sit in paths nobody else can change
 * (rune_safe_path): otherwise PLUGIN_CACHE_UNSAFE names the component and nothing runs. Against a
 * real sshd; the tests run as root, so "another user" is `nobody` (uid 65534) via chown.
 */
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Transport } from '@rune/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SshdInstance, startSshd } from '../src/testing/index.js';
import {
  describeWithPrerequisites,
  missingPrerequisites,
  plugin,
  rejection,
  request,
  text,
  transportFor,
} from './helpers.js';

let sshd: SshdInstance;
const opened: Transport[] = [];

beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(async () => {
  await Promise.all(opened.map((transport) => transport.close()));
  await sshd?.stop();
});

/** A plugin that leaves a file behind when it runs: proof that it ran. */
function witness(name: string): { file: string; script: string } {
  const file = join(sshd.dir, `${name}.ran`);
  return { file, script: `touch ${file}\necho ran` };
}

function transportWithCache(remoteCacheDir: string): Transport {
  const transport = transportFor(sshd, { remoteCacheDir });
  opened.push(transport);
  return transport;
}

describe('remote plugin cache safety (PLUGIN_CACHE_UNSAFE, nothing runs)', () => {
  it('a cache dir under a world-writable, non-sticky parent', async () => {
    const parent = join(sshd.dir, 'world-writable');
    mkdirSync(parent);
    chmodSync(parent, 0o777);
    const { file, script } = witness('ww');
    const error = await rejection(
      transportWithCache(join(parent, 'cache')).exec(request(sshd.node(), plugin(script, 'ww'))),
    );
    expect(error.code).toBe('PLUGIN_CACHE_UNSAFE');
    expect(error.details?.unsafe_component).toBe(parent);
    expect(error.message).toContain(parent);
    expect(existsSync(file)).toBe(false);
  });

  it('a cache dir that is a symlink: refused, and its target is NOT chmodded', async () => {
    const target = join(sshd.dir, 'link-target');
    mkdirSync(target);
    chmodSync(target, 0o755);
    const link = join(sshd.dir, 'link-cache');
    symlinkSync(target, link);
    const { file, script } = witness('symlink');
    const error = await rejection(
      transportWithCache(link).exec(request(sshd.node(), plugin(script, 'symlink'))),
    );
    expect(error.code).toBe('PLUGIN_CACHE_UNSAFE');
    expect(error.details?.unsafe_component).toBe(link);
    expect(statSync(target).mode & 0o7777).toBe(0o755);
    expect(existsSync(file)).toBe(false);
  });

  it('creates a missing cache path component by component, each 0700', async () => {
    const base = join(sshd.dir, 'fresh');
    const { file, script } = witness('fresh');
    const result = await transportWithCache(join(base, 'a', 'b')).exec(
      request(sshd.node(), plugin(script, 'fresh')),
    );
    expect(text(result.stdout)).toBe('ran\n');
    for (const dir of [base, join(base, 'a'), join(base, 'a', 'b')]) {
      expect(statSync(dir).mode & 0o777).toBe(0o700);
    }
    expect(existsSync(file)).toBe(true);
  });

  it('a cached file others could write is not run: it is replaced by a verified upload', async () => {
    const cache = join(sshd.dir, 'writable-file-cache');
    const transport = transportWithCache(cache);
    const good = plugin('echo genuine', 'writable-file');
    await transport.exec(request(sshd.node(), good));
    chmodSync(join(cache, good.sha256), 0o777);
    const result = await transport.exec(request(sshd.node(), good));
    expect(text(result.stdout)).toBe('genuine\n');
    expect(result.metadata).toMatchObject({ cache_hit: false, shipped: true });
    expect(statSync(join(cache, good.sha256)).mode & 0o777).toBe(0o700);
  });
});

describe('preinstalled plugin safety', () => {
  it('a preinstalled plugin in a world-writable dir is refused and never runs', async () => {
    const dir = join(sshd.dir, 'unsafe-installed');
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    const { file, script } = witness('pre');
    writeFileSync(join(dir, 'pre-unsafe.sh'), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    const transport = transportFor(sshd, { remotePluginDir: dir });
    opened.push(transport);
    const error = await rejection(
      transport.exec(
        request(sshd.node(), plugin('', 'pre-unsafe'), { deployMode: 'preinstalled' }),
      ),
    );
    expect(error.code).toBe('PLUGIN_CACHE_UNSAFE');
    expect(error.details?.unsafe_component).toBe(dir);
    expect(existsSync(file)).toBe(false);
  });

  it('a group-writable preinstalled plugin file is refused', async () => {
    const dir = join(sshd.dir, 'installed-gw');
    mkdirSync(dir, { mode: 0o755 });
    const { file, script } = witness('pre-gw');
    const path = join(dir, 'pre-gw.sh');
    writeFileSync(path, `#!/bin/sh\n${script}\n`);
    chmodSync(path, 0o775);
    const transport = transportFor(sshd, { remotePluginDir: dir });
    opened.push(transport);
    const error = await rejection(
      transport.exec(request(sshd.node(), plugin('', 'pre-gw'), { deployMode: 'preinstalled' })),
    );
    expect(error.code).toBe('PLUGIN_CACHE_UNSAFE');
    expect(error.details?.unsafe_component).toBe(path);
    expect(existsSync(file)).toBe(false);
  });
});

describeWithPrerequisites(
  'remote plugin cache owned by another user',
  missingPrerequisites({ root: true }),
  'run the tests as root: they chown a directory to nobody',
  () => {
    it('a cache dir owned by another user', async () => {
      const cache = join(sshd.dir, 'foreign-cache');
      mkdirSync(cache, { mode: 0o700 });
      chownSync(cache, 65534, 65534);
      const { file, script } = witness('foreign');
      const error = await rejection(
        transportWithCache(cache).exec(request(sshd.node(), plugin(script, 'foreign'))),
      );
      expect(error.code).toBe('PLUGIN_CACHE_UNSAFE');
      expect(error.details?.unsafe_component).toBe(cache);
      expect(existsSync(file)).toBe(false);
    });
  },
);
