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
 * Why not `proper-lockfile`: it judges staleness by mtime alone (a dead holder blocks everyone
 * for the stale period; a live holder must keep a timer refreshing the mtime), its sync API
 * cannot wait, and it has had no release since 2021. The holder's pid answers "is it dead?"
 * exactly and at once.
 */
import { randomBytes } from 'node:crypto';
import { link, readFile, stat, unlink, writeFile } from 'node:fs/promises';
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
}

/** What a lock file says about its holder. */
interface LockHolder {
  pid: number;
  host: string;
  token: string;
  created: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function readHolder(path: string): Promise<LockHolder | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<LockHolder>;
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
async function tryCreate(path: string, holder: LockHolder): Promise<boolean> {
  const temporary = `${path}.${holder.pid}.${randomBytes(6).toString('hex')}`;
  await writeFile(temporary, `${JSON.stringify(holder)}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(temporary, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

async function removeIfToken(path: string, token: string | undefined): Promise<void> {
  try {
    if (token === undefined || (await readHolder(path))?.token === token) await unlink(path);
  } catch {
    // already gone
  }
}

/** Why the lock at `path` may be broken now, or undefined while its holder may be alive. */
async function staleReason(
  path: string,
  host: string,
): Promise<{ token: string | undefined } | undefined> {
  const holder = await readHolder(path);
  if (holder !== undefined && holder.host === host) {
    return isAlive(holder.pid) ? undefined : { token: holder.token };
  }
  try {
    const age = Date.now() - (await stat(path)).mtimeMs;
    return age > AUDIT_LOCK_FOREIGN_STALE_MS ? { token: holder?.token } : undefined;
  } catch {
    return undefined; // released meanwhile
  }
}

async function tryBreak(lockPath: string, self: LockHolder): Promise<void> {
  const breakPath = `${lockPath}.break`;
  let breaking = false;
  try {
    breaking = await tryCreate(breakPath, self);
  } catch {
    return;
  }
  if (!breaking) {
    // A breaker that died inside this tiny window leaves the break lock: clear it the same way.
    const stuck = await staleReason(breakPath, self.host);
    if (stuck !== undefined) await removeIfToken(breakPath, stuck.token);
    return;
  }
  try {
    const stale = await staleReason(lockPath, self.host);
    if (stale === undefined) return;
    if (stale.token === undefined) {
      // An unreadable lock: remove it only if it is still the same old file.
      const age = Date.now() - (await stat(lockPath)).mtimeMs;
      if (age > AUDIT_LOCK_FOREIGN_STALE_MS) await unlink(lockPath);
    } else {
      await removeIfToken(lockPath, stale.token);
    }
  } catch {
    // raced with a release
  } finally {
    await removeIfToken(breakPath, self.token);
  }
}

/**
 * Takes the audit lock; resolves to its release function. Every file operation is asynchronous
 * (fs.promises): a busy server waits for the disk on libuv's thread pool, not on its event loop. Throws AUDIT_WRITE_FAILED naming the
 * lock file (and its holder) when a live holder keeps it past `timeoutMs`, or when the lock cannot
 * be created at all.
 */
export async function acquireAuditLock(options: AuditLockOptions): Promise<() => Promise<void>> {
  const { lockPath } = options;
  const self: LockHolder = {
    pid: process.pid,
    host: options.host,
    token: randomBytes(12).toString('hex'),
    created: new Date().toISOString(),
  };
  const deadline = Date.now() + options.timeoutMs;
  let delay = 5;
  for (;;) {
    try {
      if (await tryCreate(lockPath, self)) return () => removeIfToken(lockPath, self.token);
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
    await tryBreak(lockPath, self);
    if (Date.now() >= deadline) {
      const holder = await readHolder(lockPath);
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
    await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
    delay = Math.min(delay * 2, 50);
  }
}
