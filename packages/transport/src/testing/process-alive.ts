import { readFileSync } from 'node:fs';

/**
 * True when `pid` is a live process. A zombie (exited, not yet reaped) counts as dead: in some
 * containers PID 1 never reaps orphans, so `kill -0` alone would report killed processes alive.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
