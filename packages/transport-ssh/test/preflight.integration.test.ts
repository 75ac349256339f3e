/**
 * Preflight over SSH against a real sshd: the commands a plugin requires are looked up on the node
 * by the bootstrap, in the SAME exec that would start the plugin. A missing one rejects with
 * PLUGIN_PRECONDITION_FAILED naming it, and the plugin never starts (it would write a file).
 *
 * Round trips are counted on the server side: sshd at LogLevel VERBOSE logs one "Starting session:
 * command" line per exec channel, so an extra round trip cannot hide in the transport's metadata.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Transport } from '@rune/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SshdInstance, startSshd } from '../src/testing/index.js';
import { plugin, rejection, request, text, transportFor } from './helpers.js';

let sshd: SshdInstance;
let transport: Transport;

beforeAll(async () => {
  sshd = await startSshd({ logLevel: 'VERBOSE' });
  transport = transportFor(sshd);
});
afterAll(async () => {
  await transport?.close();
  await sshd?.stop();
});

const count = (pattern: RegExp): number => sshd.logs().match(pattern)?.length ?? 0;
const STARTED = /Starting session: command/g;
const CLOSED = /Close session:/g;

/** Exec sessions sshd started so far, once every one of them has also been logged as closed. */
async function sessionsStarted(): Promise<number> {
  const deadline = Date.now() + 10_000;
  while (count(CLOSED) < count(STARTED) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return count(STARTED);
}

/** A plugin that proves it ran by writing `file`. */
function writer(file: string, action: string) {
  return plugin(`echo ran > ${file}\necho '{"ok":true}'`, action);
}

describe('preflight over SSH', () => {
  it('a missing command on a cached plugin: PLUGIN_PRECONDITION_FAILED naming each, one exec, nothing ran', async () => {
    const proof = join(sshd.dir, 'preflight-cached-ran');
    const thePlugin = writer(proof, 'preflight-cached');
    await transport.exec(request(sshd.node(), thePlugin)); // caches it
    rmSync(proof, { force: true });
    const before = await sessionsStarted();
    const error = await rejection(
      transport.exec(
        request(sshd.node(), thePlugin, {
          preflight: { commands: ['sh', 'rune-missing-a', 'cat', 'rune-missing-b'] },
        }),
      ),
    );
    expect(error.code).toBe('PLUGIN_PRECONDITION_FAILED');
    expect(error.message).toContain('rune-missing-a, rune-missing-b');
    expect(error.details).toMatchObject({ missing_commands: ['rune-missing-a', 'rune-missing-b'] });
    expect(error.source).toMatchObject({ component: 'transport-ssh', node: sshd.node().name });
    expect(existsSync(proof)).toBe(false);
    expect((await sessionsStarted()) - before).toBe(1);
  });

  it('a missing command on a plugin the node does not have: no upload either, one exec', async () => {
    const proof = join(sshd.dir, 'preflight-uncached-ran');
    const thePlugin = writer(proof, 'preflight-uncached');
    const before = await sessionsStarted();
    const error = await rejection(
      transport.exec(
        request(sshd.node(), thePlugin, { preflight: { commands: ['rune-missing-c'] } }),
      ),
    );
    expect(error.code).toBe('PLUGIN_PRECONDITION_FAILED');
    expect(error.details).toMatchObject({ missing_commands: ['rune-missing-c'] });
    expect(existsSync(proof)).toBe(false);
    expect(existsSync(join(sshd.remoteCacheDir, thePlugin.sha256))).toBe(false);
    expect((await sessionsStarted()) - before).toBe(1);
  });

  it('every command present: the cached run is still ONE exec round trip', async () => {
    const proof = join(sshd.dir, 'preflight-present-ran');
    const thePlugin = writer(proof, 'preflight-present');
    await transport.exec(request(sshd.node(), thePlugin));
    rmSync(proof, { force: true });
    const before = await sessionsStarted();
    const result = await transport.exec(
      request(sshd.node(), thePlugin, { preflight: { commands: ['sh', 'cat', 'sha256sum'] } }),
    );
    expect(result).toMatchObject({ termination: 'exit', exitCode: 0 });
    expect(text(result.stdout)).toBe('{"ok":true}\n');
    expect(result.metadata).toMatchObject({ exec_round_trips: 1, cache_hit: true });
    expect(existsSync(proof)).toBe(true);
    expect((await sessionsStarted()) - before).toBe(1);
  });

  it('preinstalled: a missing command stops the installed plugin too', async () => {
    const pluginDir = join(sshd.dir, 'preflight-installed');
    mkdirSync(pluginDir, { recursive: true, mode: 0o755 });
    const proof = join(sshd.dir, 'preflight-installed-ran');
    writeFileSync(join(pluginDir, 'preflight-pre.sh'), `#!/bin/sh\necho ran > ${proof}\n`, {
      mode: 0o755,
    });
    const before = await sessionsStarted();
    const error = await rejection(
      transport.exec(
        request(
          sshd.node(),
          { ...plugin('', 'preflight-pre'), remotePath: join(pluginDir, 'preflight-pre.sh') },
          { deployMode: 'preinstalled', preflight: { commands: ['rune-missing-d'] } },
        ),
      ),
    );
    expect(error.code).toBe('PLUGIN_PRECONDITION_FAILED');
    expect(existsSync(proof)).toBe(false);
    expect((await sessionsStarted()) - before).toBe(1);
  });

  it('a name outside the grammar is refused before anything is contacted', async () => {
    const before = await sessionsStarted();
    const error = await rejection(
      transport.exec(
        request(sshd.node(), plugin('true', 'preflight-hostile'), {
          preflight: { commands: ['x;touch /tmp/rune-preflight-pwned'] },
        }),
      ),
    );
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(existsSync('/tmp/rune-preflight-pwned')).toBe(false);
    expect(await sessionsStarted()).toBe(before);
  });
});
