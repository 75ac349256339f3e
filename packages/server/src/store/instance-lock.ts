/**
 * One server per embedded store: `<store>.pid` names the process that serves it. A live holder on
 * this host refuses the second server (two processes appending events to one SQLite file would
 * each believe they own the queue); a dead one (kill -9) is recognised at once by `kill(pid, 0)`
 * and replaced. PostgreSQL mode (several instances) will use leases in the database instead.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { RuneError } from '@rune/protocol';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock of `storePath`; returns its release. Throws INVALID_CONFIG when held. */
export function acquireInstanceLock(storePath: string): () => void {
  const file = `${storePath}.pid`;
  const me = `${process.pid} ${hostname()}\n`;
  mkdirSync(dirname(storePath), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, me, { flag: 'wx', mode: 0o600 });
      return () => {
        try {
          if (readFileSync(file, 'utf8') === me) rmSync(file, { force: true });
        } catch {
          // already gone
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new RuneError('INVALID_CONFIG', `cannot create ${file}`, {
          cause: error,
          details: { key: 'server.store', path: file },
        });
      }
    }
    let holder = '';
    try {
      holder = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const [pidText, host] = holder.trim().split(' ');
    const pid = Number(pidText);
    if (host === hostname() && Number.isInteger(pid) && pid > 0 && alive(pid)) {
      throw new RuneError(
        'INVALID_CONFIG',
        `the run store ${storePath} is served by another rune serve (pid ${pid}); one server per embedded store`,
        { details: { key: 'server.store', pid } },
      );
    }
    if (host !== undefined && host !== hostname()) {
      throw new RuneError(
        'INVALID_CONFIG',
        `the run store ${storePath} is marked in use by host ${host}; remove ${file} if that server is gone`,
        { details: { key: 'server.store', host } },
      );
    }
    rmSync(file, { force: true });
  }
  throw new RuneError('INVALID_CONFIG', `cannot take ${file}`, {
    details: { key: 'server.store', path: file },
  });
}
