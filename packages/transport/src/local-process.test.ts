import { describe, expect, it } from 'vitest';
import { runLocalProcess } from './local-process.js';
import { RUN_MARKER_PATTERN } from './run-marker.js';

const limits = { maxStdoutBytes: 1024, maxStderrBytes: 1024 };
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe('runLocalProcess', () => {
  it('runs without a shell, with exactly the given environment plus the run marker', async () => {
    const run = await runLocalProcess({
      command: '/bin/sh',
      args: ['-c', 'cat; env | sort', 'x'],
      stdin: new TextEncoder().encode('in;'),
      env: { ...env, ONLY: 'this' },
      timeoutMs: 10_000,
      limits,
    });
    expect(run.termination).toBe('exit');
    expect(run.exitCode).toBe(0);
    const out = text(run.stdout);
    expect(out.startsWith('in;')).toBe(true);
    expect(out).toContain('ONLY=this');
    const marker = /RUNE_RUN_MARKER=(\S+)/.exec(out)?.[1] ?? '';
    expect(RUN_MARKER_PATTERN.test(marker)).toBe(true);
  });

  it('stops a process at its timeout and sweeps a child that left the process group', async () => {
    const run = await runLocalProcess({
      command: '/bin/sh',
      args: ['-c', 'trap "" TERM; setsid sleep 30 & echo started; sleep 30'],
      stdin: new Uint8Array(),
      env,
      timeoutMs: 200,
      killGraceMs: 100,
      limits,
    });
    expect(run.termination).toBe('timeout');
    expect(run.exitCode).toBeNull();
    expect(run.stopped).toBe(true);
    expect(text(run.stdout)).toBe('started\n');
    expect(run.containment.killed).toBeGreaterThanOrEqual(1);
  });

  it('rejects with PLUGIN_NOT_EXECUTABLE when the file cannot be started', async () => {
    await expect(
      runLocalProcess({
        command: '/nonexistent/plugin',
        stdin: new Uint8Array(),
        env,
        timeoutMs: 1000,
        limits,
      }),
    ).rejects.toMatchObject({ code: 'PLUGIN_NOT_EXECUTABLE' });
  });
});
