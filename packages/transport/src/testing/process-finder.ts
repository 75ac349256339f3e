import { readdir, readFile } from 'node:fs/promises';

/**
 * The pids of live processes on this machine whose command line contains `fragment`, read from
 * `/proc/<pid>/cmdline` (arguments joined by spaces). Zombies count as gone: in some containers
 * PID 1 never reaps orphans. Rejects when `/proc` cannot be read (not Linux).
 */
export async function findProcessesByCommandLine(fragment: string): Promise<number[]> {
  const entries = await readdir('/proc');
  const found: number[] = [];
  await Promise.all(
    entries
      .filter((entry) => /^\d+$/.test(entry))
      .map(async (entry) => {
        try {
          const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replaceAll('\0', ' ');
          if (!cmdline.includes(fragment)) return;
          const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
          const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
          if (state !== 'Z' && state !== 'X') found.push(Number(entry));
        } catch {
          // The process exited while we looked.
        }
      }),
  );
  return found.sort((a, b) => a - b);
}
