/**
 * A private, content-addressed directory of plugin copies on the control node, for the local
 * transport.
 *
 * Hashing a file and then executing it *by path* is a race: whoever can replace the file between
 * the two wins. So the local transport never runs the registry's file. It takes the bytes the
 * execution step read and hashed once (the planned sha256, which is what was approved), writes them
 * into a directory only this user (or root) can change, and executes that copy:
 *
 * - the directory must pass the safe-path rule (`findUnsafePathComponent`): it and every
 *   directory above it owned by this user or root and not writable by group or others (root-owned
 *   sticky parents such as /tmp allowed), else PLUGIN_CACHE_UNSAFE and nothing runs;
 * - each copy is named by its sha256, created under a fresh name with `O_CREAT | O_EXCL |
 *   O_NOFOLLOW` (so it cannot be a file or symlink someone prepared), made 0700, renamed into
 *   place, then verified: a regular file, not a symlink, owned by this user, no group/other bits,
 *   its bytes hashing to the expected sha256. An existing copy is reused only after the same check.
 *
 * What remains: this user and root can still change the copy between the check and the exec;
 * they can also change RUNE itself, so that is outside what a file check can defend.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readFile, rename, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuneError, type RuneErrorOptions } from '@rune/protocol';
import { findUnsafePathComponent, sha256Hex } from '@rune/transport';

/** Options of {@link createPrivatePluginCache}. */
export interface PrivatePluginCacheOptions {
  /**
   * A persistent cache directory (e.g. `$XDG_CACHE_HOME/rune/plugins`), created 0700 when
   * missing. Default: a fresh 0700 `mkdtemp` directory under the OS temporary directory, removed by
   * `close()`.
   */
  dir?: string;
  /** The user the directory must belong to; default the effective uid of this process. */
  uid?: number;
}

/** A private plugin cache; see the module documentation. */
export interface PrivatePluginCache {
  /**
   * Writes (or reuses) the copy of `content` named `sha256` and returns its path, after checking
   * that `content` hashes to `sha256` (PLUGIN_INTEGRITY_FAILED otherwise) and that the cache
   * passes the safe-path rule (PLUGIN_CACHE_UNSAFE otherwise).
   */
  materialize(
    content: Uint8Array,
    sha256: string,
    errorOptions?: RuneErrorOptions,
  ): Promise<string>;
  /** Removes a temporary cache directory (a persistent `dir` is kept). Idempotent. */
  close(): Promise<void>;
}

const SHA256_PATTERN = /^[0-9a-f]{64}$/;

/** The effective uid, or -1 where there is none (then only root-owned paths would pass). */
export function effectiveUid(): number {
  return process.geteuid?.() ?? -1;
}

/** Creates a {@link PrivatePluginCache}. Nothing touches the disk until the first `materialize`. */
export function createPrivatePluginCache(
  options: PrivatePluginCacheOptions = {},
): PrivatePluginCache {
  const uid = options.uid ?? effectiveUid();
  let directory: Promise<string> | undefined;
  const copies = new Map<string, Promise<string>>();

  const unsafe = (component: string, dir: string, errorOptions: RuneErrorOptions): RuneError =>
    new RuneError(
      'PLUGIN_CACHE_UNSAFE',
      `the private plugin cache ${dir} is not safe: ${component} is a symlink, not owned by this user or root, or writable by others; nothing was executed`,
      { ...errorOptions, details: { ...errorOptions.details, path: dir, component } },
    );

  const prepareDirectory = async (errorOptions: RuneErrorOptions): Promise<string> => {
    let dir: string;
    try {
      if (options.dir === undefined) {
        dir = await mkdtemp(join(tmpdir(), 'rune-local-plugins-'));
      } else {
        dir = options.dir;
        await mkdir(dir, { recursive: true, mode: 0o700 });
      }
    } catch (error) {
      throw new RuneError(
        'PLUGIN_NOT_EXECUTABLE',
        `cannot create the private plugin cache${options.dir === undefined ? '' : ` ${options.dir}`}`,
        { ...errorOptions, cause: error },
      );
    }
    const component = await findUnsafePathComponent(dir, uid);
    if (component !== undefined) throw unsafe(component, dir, errorOptions);
    return dir;
  };

  /** True when `file` is a verified copy: regular, ours, private, with the expected bytes. */
  const isVerifiedCopy = async (file: string, sha256: string): Promise<boolean> => {
    try {
      const info = await lstat(file);
      if (!info.isFile() || info.uid !== uid || (info.mode & 0o077) !== 0) return false;
      return sha256Hex(await readFile(file)) === sha256;
    } catch {
      return false;
    }
  };

  const writeCopy = async (
    dir: string,
    content: Uint8Array,
    sha256: string,
    errorOptions: RuneErrorOptions,
  ): Promise<string> => {
    const file = join(dir, sha256);
    // Re-checked on every run: the directory may have been changed since it was created.
    const component = await findUnsafePathComponent(dir, uid);
    if (component !== undefined) throw unsafe(component, dir, errorOptions);
    if (await isVerifiedCopy(file, sha256)) return file;
    const partial = join(dir, `.${sha256}.${randomBytes(8).toString('hex')}`);
    try {
      const handle = await open(
        partial,
        fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW,
        0o700,
      );
      try {
        await handle.writeFile(content);
        // The umask may have removed bits; the copy must be exactly 0700.
        await handle.chmod(0o700);
      } finally {
        await handle.close();
      }
      // Atomic: a concurrent run sees the old verified copy or the new one, never half a file.
      await rename(partial, file);
    } catch (error) {
      await unlink(partial).catch(() => {});
      throw new RuneError('PLUGIN_NOT_EXECUTABLE', `cannot write the plugin copy ${file}`, {
        ...errorOptions,
        cause: error,
        details: { ...errorOptions.details, path: file },
      });
    }
    if (!(await isVerifiedCopy(file, sha256))) {
      throw new RuneError(
        'PLUGIN_INTEGRITY_FAILED',
        `the plugin copy ${file} does not verify after writing; nothing was executed`,
        { ...errorOptions, details: { ...errorOptions.details, path: file, expected: sha256 } },
      );
    }
    return file;
  };

  return {
    async materialize(content, sha256, errorOptions = {}) {
      if (!SHA256_PATTERN.test(sha256) || sha256Hex(content) !== sha256) {
        throw new RuneError(
          'PLUGIN_INTEGRITY_FAILED',
          'plugin content does not match its sha256; nothing was executed',
          { ...errorOptions, details: { ...errorOptions.details, expected: sha256 } },
        );
      }
      directory ??= prepareDirectory(errorOptions);
      let dir: string;
      try {
        dir = await directory;
      } catch (error) {
        // Not cached: a later run may find the problem fixed.
        directory = undefined;
        throw error;
      }
      // One writer per sha256 in this process; each run still re-verifies the copy it executes.
      const pending = copies.get(sha256);
      if (pending !== undefined) {
        await pending.catch(() => {});
      }
      const written = writeCopy(dir, content, sha256, errorOptions);
      copies.set(sha256, written);
      try {
        return await written;
      } finally {
        if (copies.get(sha256) === written) copies.delete(sha256);
      }
    },
    async close() {
      const pending = directory;
      directory = undefined;
      copies.clear();
      if (pending === undefined || options.dir !== undefined) return;
      const dir = await pending.catch(() => undefined);
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    },
  };
}
