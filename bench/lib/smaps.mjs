// Where a process's resident memory is, from /proc/PID/smaps (benchmarks only; Linux).
import { readFileSync } from 'node:fs';

const KB = 1024;
const MB = 1024 * 1024;
/** glibc's non-main malloc arenas are heaps of at most 64 MB, aligned to 64 MB (HEAP_MAX_SIZE). */
const ARENA = 64 * MB;

/**
 * Resident MB of `pid` by kind of mapping:
 * - `file`: file-backed (the node binary, shared libraries, ICU data; mostly code, shared);
 * - `brk`: the `[heap]` of brk (glibc's main malloc arena);
 * - `arenas`: glibc's other malloc arenas (anonymous, starting on a 64 MB boundary);
 * - `stacks`: thread stacks (anonymous, right above a 4 KB guard page) and `[stack]`;
 * - `wasm`: anonymous reservations of 1 GB or more (WebAssembly memories with their guard
 *   regions: node-sqlite3-wasm's SQLite heap);
 * - `anon`: the other anonymous mappings: V8's heap pages and code of every thread, and
 *   malloc's large blocks (mmap'd on their own).
 */
export function smapsBreakdown(pid) {
  const text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const out = { file: 0, brk: 0, arenas: 0, stacks: 0, wasm: 0, anon: 0, total: 0 };
  let previous;
  let current;
  const close = () => {
    if (current === undefined) return;
    out[current.kind] += current.rss;
    out.total += current.rss;
  };
  for (const line of text.split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (header) {
      close();
      const start = Number.parseInt(header[1], 16);
      const end = Number.parseInt(header[2], 16);
      const perms = header[3];
      const inode = header[4];
      const name = header[5];
      let kind;
      if (name === '[heap]') kind = 'brk';
      else if (name === '[stack]') kind = 'stacks';
      else if (inode !== '0' || name.startsWith('/')) kind = 'file';
      else if (end - start >= 1024 * MB) kind = 'wasm';
      else if (start % ARENA === 0 && perms.startsWith('rw')) kind = 'arenas';
      else if (
        previous !== undefined &&
        previous.end === start &&
        previous.perms === '---p' &&
        previous.end - previous.start === 4 * KB &&
        perms.startsWith('rw')
      )
        kind = 'stacks';
      else kind = 'anon';
      current = { kind, rss: 0 };
      previous = { start, end, perms };
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && current !== undefined) current.rss += Number(rss[1]) * KB;
  }
  close();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Math.round(v / MB)]));
}
