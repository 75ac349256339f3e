import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
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
      // Gone when the sweep reports, not some time later (the sweep waits for SIGKILL to land).
      for (const pid of pids) expect(isProcessAlive(pid)).toBe(false);
      expect(isProcessAlive(bystander.pid!)).toBe(true);
      expect(parseSweepOutput(sweep(marker, shell))).toEqual({ killed: 0, complete: true });
      bystander.kill('SIGKILL');
      parent.kill('SIGKILL');
      rmSync(pidFile, { force: true });
      rmSync(`${pidFile}.c`, { force: true });
    },
  );

  // A process frozen by the cgroup v1 freezer takes SIGKILL but dies only when thawed: a stand-in,
  // deterministic, for a victim the scheduler reaches late on a loaded machine. Root only.
  const freezer = '/sys/fs/cgroup/freezer';
  it.skipIf(process.getuid?.() !== 0 || !existsSync(`${freezer}/cgroup.procs`))(
    'reports only once every killed process is gone, even one that dies late',
    async () => {
      const marker = createRunMarker();
      const group = `${freezer}/rune-sweep-test-${marker.slice(0, 8)}`;
      mkdirSync(group);
      const victim = spawn('sleep', ['305'], {
        env: { ...process.env, [RUN_MARKER_VARIABLE]: marker },
        stdio: 'ignore',
      });
      try {
        writeFileSync(`${group}/cgroup.procs`, String(victim.pid));
        writeFileSync(`${group}/freezer.state`, 'FROZEN');
        // Thawed 600 ms from now by another process, while the sweep below blocks this one.
        const thaw = spawn('sh', ['-c', `sleep 0.6; echo THAWED > "${group}/freezer.state"`], {
          stdio: 'ignore',
        });
        const started = Date.now();
        expect(parseSweepOutput(sweep(marker))).toEqual({ killed: 1, complete: true });
        expect(isProcessAlive(victim.pid!)).toBe(false);
        expect(Date.now() - started).toBeGreaterThanOrEqual(500);
        await new Promise((resolve) => thaw.on('close', resolve));
      } finally {
        writeFileSync(`${group}/freezer.state`, 'THAWED');
        victim.kill('SIGKILL');
        await waitFor(() => !isProcessAlive(victim.pid!));
        await waitFor(() => {
          try {
            rmdirSync(group);
            return true;
          } catch {
            return false;
          }
        });
      }
    },
  );
});
