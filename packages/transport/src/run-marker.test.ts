import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  createRunMarker,
  parseSweepOutput,
  RUN_MARKER_PATTERN,
  RUN_MARKER_VARIABLE,
  SWEEP_FUNCTION_SH,
} from './run-marker.js';
import { isProcessAlive } from './testing/process-alive.js';

function sweep(marker: string, shell = 'sh'): string {
  const result = spawnSync(shell, ['-c', `${SWEEP_FUNCTION_SH}\nrune_sweep "$1"`, 'rune', marker], {
    encoding: 'utf8',
  });
  return result.stdout;
}

async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('run marker', () => {
  it('makes unguessable markers that match the grammar', () => {
    const a = createRunMarker();
    expect(a).toMatch(RUN_MARKER_PATTERN);
    expect(createRunMarker()).not.toBe(a);
  });

  it('parses the sweep line and nothing else', () => {
    expect(parseSweepOutput('3 1\n')).toEqual({ killed: 3, complete: true });
    expect(parseSweepOutput('0 0')).toEqual({ killed: 0, complete: false });
    expect(parseSweepOutput('x 1')).toBeUndefined();
    expect(parseSweepOutput('')).toBeUndefined();
  });

  it.each(['sh', 'bash'])(
    'kills marked processes in other sessions and groups, and nothing else (%s)',
    async (shell) => {
      const marker = createRunMarker();
      const pidFile = `/tmp/rune-sweep-${marker}`;
      // A marked parent that starts a setsid child, a background child and a double fork, then
      // writes their pids; an unmarked sleep that must survive.
      const parent = spawn(
        'sh',
        [
          '-c',
          `setsid sleep 301 & a=$!; sleep 302 & b=$!; (sleep 303 & echo $! > "$1.c"); echo "$a $b" > "$1"; wait`,
          'rune',
          pidFile,
        ],
        { env: { ...process.env, [RUN_MARKER_VARIABLE]: marker }, stdio: 'ignore' },
      );
      const bystander = spawn('sleep', ['304'], { stdio: 'ignore' });
      const { readFileSync, existsSync, rmSync } = await import('node:fs');
      await waitFor(() => existsSync(pidFile) && existsSync(`${pidFile}.c`));
      const pids = [
        ...readFileSync(pidFile, 'utf8').trim().split(' '),
        readFileSync(`${pidFile}.c`, 'utf8').trim(),
      ].map(Number);
      const outcome = parseSweepOutput(sweep(marker, shell));
      // the parent sh and its three sleeps
      expect(outcome).toEqual({ killed: 4, complete: true });
      for (const pid of pids) await waitFor(() => !isProcessAlive(pid));
      expect(isProcessAlive(bystander.pid!)).toBe(true);
      expect(parseSweepOutput(sweep(marker, shell))).toEqual({ killed: 0, complete: true });
      bystander.kill('SIGKILL');
      parent.kill('SIGKILL');
      rmSync(pidFile, { force: true });
      rmSync(`${pidFile}.c`, { force: true });
    },
  );
});
