/**
 * `runAs: 'root'` (a manifest's `privilege: root`) on the local transport, with the real sudo:
 * no sudo when this process already is root; non-interactive `sudo -n` otherwise, and a clear
 * PRIVILEGE_PASSWORD_REQUIRED / PRIVILEGE_DENIED — with the plugin never started — when sudo does
 * not allow it. The unprivileged side runs the built core (`dist/`) as the user `nobody` through
 * `runuser`, so build first (`npx -y pnpm@10.34.9 build`).
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { RuneError } from '@rune/protocol';
import type { TransportExecRequest } from '@rune/transport';
import { createTestPlugin } from '@rune/transport/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalTransport } from '../src/transport/local-transport.js';

const CORE_DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const TRANSPORT_DIST = fileURLToPath(new URL('../../transport/dist/index.js', import.meta.url));
const isRoot = process.geteuid?.() === 0;
const scratch = mkdtempSync(join(tmpdir(), 'rune-privilege-'));
chmodSync(scratch, 0o755);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion in the probe script
const WHOAMI = '#!/bin/sh\nprintf "uid=%s marker=%s\\n" "$(id -u)" "${RUNE_RUN_MARKER:+set}"\n';

function request(extra: Partial<TransportExecRequest> = {}): TransportExecRequest {
  return {
    node: { name: 'localhost' },
    plugin: createTestPlugin(WHOAMI, { action: 'whoami' }),
    deployMode: 'ship',
    stdin: new Uint8Array(),
    timeoutMs: 10_000,
    limits: { maxStdoutBytes: 4096, maxStderrBytes: 4096 },
    signal: new AbortController().signal,
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    ...extra,
  };
}

/**
 * Runs one exec with `runAs: 'root'` in a separate node process as `nobody` (built core), and
 * returns what happened: the plugin's stdout, or the RuneError code and message.
 */
function execAsNobody(
  sudo?: string,
): Promise<{ stdout?: string; code?: string; message?: string }> {
  const script = `
    const { createLocalTransport } = await import(${JSON.stringify(pathToFileURL(CORE_DIST).href)});
    const { createTestPlugin } = await import(${JSON.stringify(pathToFileURL(TRANSPORT_DIST).href.replace(/index\.js$/, 'testing/test-plugin.js'))});
    const transport = createLocalTransport(${sudo === undefined ? '' : JSON.stringify({ sudo })});
    try {
      const result = await transport.exec({
        node: { name: 'localhost' },
        plugin: createTestPlugin(${JSON.stringify(WHOAMI)}, { action: 'whoami' }),
        deployMode: 'ship',
        stdin: new Uint8Array(),
        timeoutMs: 10000,
        limits: { maxStdoutBytes: 4096, maxStderrBytes: 4096 },
        signal: new AbortController().signal,
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        runAs: 'root',
        preflight: { commands: ['sh'] },
      });
      console.log(JSON.stringify({ stdout: new TextDecoder().decode(result.stdout) }));
    } catch (error) {
      console.log(JSON.stringify({ code: error.code, message: error.message }));
    } finally {
      await transport.close();
    }
  `;
  return new Promise((resolve, reject) => {
    execFile(
      'runuser',
      ['-u', 'nobody', '--', process.execPath, '--input-type=module', '-e', script],
      { cwd: scratch, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: scratch } },
      (error, stdout, stderr) => {
        if (error !== null && stdout === '') reject(new Error(`${error.message}\n${stderr}`));
        else resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '{}'));
      },
    );
  });
}

describe('runAs root on the local transport', () => {
  it('runs the plugin directly, without sudo, when rune already runs as root', async () => {
    if (!isRoot) {
      // Not root here: the unprivileged path is this process itself.
      const transport = createLocalTransport();
      try {
        const outcome = await transport.exec(request({ runAs: 'root' })).then(
          (result) => ({ ok: new TextDecoder().decode(result.stdout) }),
          (error: unknown) => ({ code: RuneError.is(error) ? error.code : String(error) }),
        );
        if ('ok' in outcome) expect(outcome.ok).toBe('uid=0 marker=set\n');
        else expect(['PRIVILEGE_PASSWORD_REQUIRED', 'PRIVILEGE_DENIED']).toContain(outcome.code);
      } finally {
        await transport.close();
      }
      return;
    }
    // A sudo that does not exist proves that none is called.
    const transport = createLocalTransport({ sudo: join(scratch, 'no-such-sudo') });
    try {
      const result = await transport.exec(request({ runAs: 'root' }));
      expect(new TextDecoder().decode(result.stdout)).toBe('uid=0 marker=set\n');
      expect(result.metadata).toMatchObject({ run_as: 'root', sudo: false });
    } finally {
      await transport.close();
    }
  });

  it('refuses run_as users other than root and itself (UNSUPPORTED_FEATURE)', async () => {
    const transport = createLocalTransport();
    try {
      await expect(transport.exec(request({ runAs: 'postgres' }))).rejects.toMatchObject({
        code: isRoot ? 'UNSUPPORTED_FEATURE' : expect.any(String),
      });
      await expect(transport.exec(request({ runAs: 'Bad User;' }))).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    } finally {
      await transport.close();
    }
  });

  it.runIf(isRoot)(
    'as an unprivileged user: sudo -n that wants a password is PRIVILEGE_PASSWORD_REQUIRED, nothing runs',
    async () => {
      const outcome = await execAsNobody();
      expect(outcome.stdout, 'the plugin must not have run').toBeUndefined();
      expect(outcome.code).toBe('PRIVILEGE_PASSWORD_REQUIRED');
      expect(outcome.message).toMatch(/non-interactive sudo/);
    },
  );

  it.runIf(isRoot)(
    'as an unprivileged user without sudo installed: PRIVILEGE_DENIED naming it, nothing runs',
    async () => {
      const outcome = await execAsNobody('/nonexistent/sudo');
      expect(outcome.stdout).toBeUndefined();
      expect(outcome.code).toBe('PRIVILEGE_DENIED');
      expect(outcome.message).toContain('/nonexistent/sudo');
    },
  );
});
