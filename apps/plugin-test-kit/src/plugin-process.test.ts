import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProcessAlive } from '@rune/transport/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { runPluginProcess } from './plugin-process.js';

const dir = mkdtempSync(join(tmpdir(), 'rune-plugin-process-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function plugin(name: string, body: string, executable = true): string {
  const file = join(dir, name);
  writeFileSync(file, `#!/bin/bash\n${body}`);
  if (executable) chmodSync(file, 0o755);
  return file;
}

const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

describe('runPluginProcess (the local transport runner, as the test kit uses it)', () => {
  it('runs a source file without the executable bit through its #! line', async () => {
    const result = await runPluginProcess({
      file: plugin('not-executable.sh', 'cat\n', false),
      stdin: new TextEncoder().encode('{"hello":1}'),
      env,
      cwd: dir,
      timeoutMs: 10_000,
    });
    expect(result.timedOut).toBe(false);
    expect(result.exitCode).toBe(0);
    expect(new TextDecoder().decode(result.stdout)).toBe('{"hello":1}');
  });

  it('kills a plugin at its timeout and reports it timed out, with no exit code', async () => {
    const result = await runPluginProcess({
      file: plugin('hangs.sh', 'trap "" TERM\nsleep 30\n'),
      stdin: new Uint8Array(),
      env,
      cwd: dir,
      timeoutMs: 200,
    });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBeNull();
    expect(result.signal).toBeNull();
  });

  it('sweeps a leftover that left the process group when the plugin exits', async () => {
    const pidFile = join(dir, 'leftover.pid');
    await runPluginProcess({
      file: plugin(
        'leaves.sh',
        `setsid sleep 300 >/dev/null 2>&1 &\nb=$!\nwhile [ "$(ps -o sid= -p "$b" | tr -d ' ')" != "$b" ]; do sleep 0.01; done\necho "$b" > ${pidFile}\necho '{}'\n`,
      ),
      stdin: new Uint8Array(),
      env,
      cwd: dir,
      timeoutMs: 10_000,
    });
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    expect(isProcessAlive(pid)).toBe(false);
  });
});
