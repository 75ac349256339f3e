/**
 * The audit log's lock file: one writer at a time across `rune` processes, so that "read the
 * last record, append the next one" keeps a single chain.
 *
 * The lock is a file created atomically with its content (written to a private temporary file,
 * then `link()`ed into place, which fails when the lock exists), naming the holder's pid, host
 * and a random token. It is held only while one record is appended and fsynced (milliseconds),
 * so a waiter that finds it decides from the holder, not from a clock:
 * - same host, holder pid gone (`kill(pid, 0)` = ESRCH): the holder died; the lock is broken at
 *   once;
 * - same host, holder alive: wait, and after the timeout fail with AUDIT_WRITE_FAILED naming the
 *   lock file and the holder — never hang;
 * - another host (a shared file system) or an unreadable lock (e.g. written by an older RUNE):
 *   broken when its mtime is older than {@link AUDIT_LOCK_FOREIGN_STALE_MS}.
 * Breaking is itself serialized by a second lock (`<lock>.break`), and the breaker re-reads the
 * lock before removing it, so two waiters never both remove a lock that a third just took.
 *
 * Each attempt is a handful of synchronous system calls (no libuv pool round trip per step, no
 * event-loop turn between them); only the wait for a live holder differs between the two
 * drivers: {@link acquireAuditLock} waits on a timer (a CLI process keeps its event loop), and
 * {@link acquireAuditLockSync} blocks its thread (rune serve's audit writer worker, whose thread
 * does nothing else).
 *
 * Why not `proper-lockfile`: it judges staleness by mtime alone (a dead holder blocks everyone
 * for the stale period; a live holder must keep a timer refreshing the mtime), its sync API
 * cannot wait, and it has had no release since 2021. The holder's pid answers "is it dead?"
 * exactly and at once.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { RuneError } from '@rune/protocol';

/** A lock of another host (or an unreadable one) older than this is taken to be stale. */
export const AUDIT_LOCK_FOREIGN_STALE_MS = 30_000;

/** Default time to wait for a lock held by a live process. */
export const DEFAULT_AUDIT_LOCK_TIMEOUT_MS = 5000;

/** Options of {@link acquireAuditLock}. */
export interface AuditLockOptions {
  /** Path of the lock file. */
  lockPath: string;
  /** The log the lock protects (named in errors). */
  logPath: string;
  /** Host name written into the lock; a lock of another host is judged by age. */
  host: string;
  /** How long to wait for a live holder. */
  timeoutMs: number;
  /**
   * The holder token written into the lock (default: fresh random bytes). A writer thread gets a
   * fixed one, so that its owner can remove the lock if the thread dies holding it
   * ({@link removeAuditLockOf}): the pid in the lock is the owner's, alive.
   */
  token?: string;
}

/** What a lock file says about its holder. */
interface LockHolder {
  pid: number;
  host: string;
  token: string;
  created: string;
}

function readHolder(path: string): LockHolder | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockHolder>;
    if (
      typeof parsed.pid === 'number' &&
      typeof parsed.host === 'string' &&
      typeof parsed.token === 'string'
    ) {
      return {
        pid: parsed.pid,
        host: parsed.host,
        token: parsed.token,
        created: String(parsed.created ?? ''),
      };
    }
  } catch {
    // missing, or not ours: judged by age
  }
  return undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Creates `path` atomically with `holder` as content; false when it already exists. */
function tryCreate(path: string, holder: LockHolder): boolean {
  const temporary = `${path}.${holder.pid}.${randomBytes(6).toString('hex')}`;
  writeFileSync(temporary, `${JSON.stringify(holder)}\n`, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(temporary, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      // gone already
    }
  }
}

function removeIfToken(path: string, token: string | undefined): void {
  try {
    if (token === undefined || readHolder(path)?.token === token) unlinkSync(path);
  } catch {
    // already gone
  }
}

/**
 * Removes the lock at `lockPath` if `token` holds it: the owner of a writer thread that died
 * while holding the lock (no other process could break it: its pid is alive).
 */
export function removeAuditLockOf(lockPath: string, token: string): void {
  removeIfToken(lockPath, token);
}

/** Why the lock at `path` may be broken now, or undefined while its holder may be alive. */
function staleReason(path: string, host: string): { token: string | undefined } | undefined {
  const holder = readHolder(path);
  if (holder !== undefined && holder.host === host) {
    return isAlive(holder.pid) ? undefined : { token: holder.token };
  }
  try {
    const age = Date.now() - statSync(path).mtimeMs;
    return age > AUDIT_LOCK_FOREIGN_STALE_MS ? { token: holder?.token } : undefined;
  } catch {
    return undefined; // released meanwhile
  }
}

function tryBreak(lockPath: string, self: LockHolder): void {
  const breakPath = `${lockPath}.break`;
  let breaking = false;
  try {
    breaking = tryCreate(breakPath, self);
  } catch {
    return;
  }
  if (!breaking) {
    // A breaker that died inside this tiny window leaves the break lock: clear it the same way.
    const stuck = staleReason(breakPath, self.host);
    if (stuck !== undefined) removeIfToken(breakPath, stuck.token);
    return;
  }
  try {
    const stale = staleReason(lockPath, self.host);
    if (stale === undefined) return;
    if (stale.token === undefined) {
      // An unreadable lock: remove it only if it is still the same old file.
      const age = Date.now() - statSync(lockPath).mtimeMs;
      if (age > AUDIT_LOCK_FOREIGN_STALE_MS) unlinkSync(lockPath);
    } else {
      removeIfToken(lockPath, stale.token);
    }
  } catch {
    // raced with a release
  } finally {
    removeIfToken(breakPath, self.token);
  }
}

/** One step of taking the lock: taken (with its release), or wait this long and try again. */
type LockStep = { release: () => void } | { waitMs: number };

/**
 * The attempts of one acquisition, shared by both drivers: each call of the returned function
 * is one synchronous attempt (create, else break a stale lock), and throws AUDIT_WRITE_FAILED
 * naming the lock file (and its holder) once a live holder kept it past `timeoutMs`, or when the
 * lock cannot be created at all.
 */
function lockAttempts(options: AuditLockOptions): () => LockStep {
  const { lockPath } = options;
  const self: LockHolder = {
    pid: process.pid,
    host: options.host,
    token: options.token ?? randomBytes(12).toString('hex'),
    created: new Date().toISOString(),
  };
  const deadline = Date.now() + options.timeoutMs;
  let delay = 5;
  return () => {
    try {
      if (tryCreate(lockPath, self)) return { release: () => removeIfToken(lockPath, self.token) };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new RuneError(
        'AUDIT_WRITE_FAILED',
        `cannot create the audit lock file ${lockPath}${code === undefined ? '' : ` (${code})`}`,
        {
          cause: error,
          source: { component: 'rune-core' },
          details: { path: options.logPath, lock: lockPath, errno: code },
        },
      );
    }
    tryBreak(lockPath, self);
    if (Date.now() >= deadline) {
      const holder = readHolder(lockPath);
      const who =
        holder === undefined
          ? ''
          : ` by pid ${holder.pid} on ${holder.host}${holder.created === '' ? '' : ` since ${holder.created}`}`;
      throw new RuneError(
        'AUDIT_WRITE_FAILED',
        `the audit lock file ${lockPath} is held${who}; gave up after ${options.timeoutMs} ms (remove it if that process is gone)`,
        {
          source: { component: 'rune-core' },
          details: {
            path: options.logPath,
            lock: lockPath,
            timeout_ms: options.timeoutMs,
            ...(holder === undefined ? {} : { holder_pid: holder.pid, holder_host: holder.host }),
          },
        },
      );
    }
    const waitMs = Math.min(delay, Math.max(1, deadline - Date.now()));
    delay = Math.min(delay * 2, 50);
    return { waitMs };
  };
}

/**
 * Takes the audit lock; resolves to its (synchronous) release function. A free lock is taken in
 * the call itself; a held one is retried on a timer, so the event loop keeps running while a
 * live holder finishes its append. Throws AUDIT_WRITE_FAILED as {@link lockAttempts} says.
 */
export async function acquireAuditLock(options: AuditLockOptions): Promise<() => void> {
  const attempt = lockAttempts(options);
  for (;;) {
    const step = attempt();
    if ('release' in step) return step.release;
    await new Promise((resolve) => setTimeout(resolve, step.waitMs));
  }
}

/** One cell to block on: Atomics.wait on it only ever times out. */
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * Takes the audit lock, blocking the calling thread while a live holder keeps it. Only for a
 * thread that does nothing else (rune serve's audit writer worker); the CLI uses
 * {@link acquireAuditLock}.
 */
export function acquireAuditLockSync(options: AuditLockOptions): () => void {
  const attempt = lockAttempts(options);
  for (;;) {
    const step = attempt();
    if ('release' in step) return step.release;
    Atomics.wait(sleepCell, 0, 0, step.waitMs);
  }
}
