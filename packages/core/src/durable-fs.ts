/**
 * Durability helpers shared by everything RUNE writes that must survive a crash (the audit log,
 * its signing key, the server's alert intake).
 */
import { closeSync, constants, fsyncSync, openSync } from 'node:fs';

/**
 * Flushes `path` — a file, or a directory after a file was created, renamed or removed in it,
 * so that the entry itself survives a crash (POSIX does not promise that from the file's fsync).
 */
export function fsyncPath(path: string): void {
  const fd = openSync(path, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
