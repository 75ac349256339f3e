/**
 * The node-side check that a plugin path cannot be changed by another user.
 *
 * A sha256 check proves nothing if someone else can replace the file between the check and the
 * exec. That is impossible only when nobody else can write the file *or any directory on its
 * path*: a writable parent lets its owner rename the cache directory away and put their own in its
 * place. So every transport checks the physical path (symlinks resolved), component by
 * component, the way OpenSSH's StrictModes checks `~/.ssh`: each directory from `/` down and the
 * file itself must be owned by the user running the check or by root, and must not be writable
 * by group or others — except a root-owned directory with the sticky bit (`/tmp`), where others
 * cannot rename or remove entries they do not own. The last component must not be a symlink at
 * all (nothing is ever chmodded through one).
 *
 * {@link SAFE_PATH_FUNCTION_SH} is the POSIX `sh` implementation the SSH bootstrap and the SSM
 * wrapper embed; {@link findUnsafePathComponent} is the same rule for the local transport.
 */
import { lstat, realpath, stat } from 'node:fs/promises';
import { dirname, sep } from 'node:path';

/**
 * A POSIX `sh` function: `rune_safe_path PATH` returns 0 when `PATH` (an existing file or
 * directory) and every directory above it are safe, else prints the first unsafe component on
 * stdout and returns 1. Needs GNU or busybox `stat -c`.
 */
export const SAFE_PATH_FUNCTION_SH = [
  'rune_safe_path() {',
  '  [ -L "$1" ] && { printf "%s\\n" "$1"; return 1; }',
  '  [ -e "$1" ] || { printf "%s\\n" "$1"; return 1; }',
  '  _sp_u=$(id -u)',
  '  if [ -d "$1" ]; then _sp_t=$(cd -P -- "$1" 2>/dev/null && pwd -P) || { printf "%s\\n" "$1"; return 1; }',
  '  else _sp_t=$(cd -P -- "$(dirname -- "$1")" 2>/dev/null && pwd -P) || { printf "%s\\n" "$1"; return 1; }',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  '    _sp_t=${_sp_t%/}/$(basename -- "$1"); fi',
  '  _sp_c=$_sp_t',
  '  _sp_last=1',
  '  while :; do',
  '    _sp_s=$(stat -c "%u %a" -- "$_sp_c" 2>/dev/null) || { printf "%s\\n" "$_sp_c"; return 1; }',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  '    _sp_o=${_sp_s% *} _sp_m=${_sp_s#* }',
  '    if [ "$_sp_o" != "$_sp_u" ] && [ "$_sp_o" != 0 ]; then printf "%s\\n" "$_sp_c"; return 1; fi',
  '    if [ $((0$_sp_m & 022)) -ne 0 ]; then',
  '      if [ "$_sp_last" = 1 ] || [ "$_sp_o" != 0 ] || [ $((0$_sp_m & 01000)) -eq 0 ]; then printf "%s\\n" "$_sp_c"; return 1; fi',
  '    fi',
  '    [ "$_sp_c" = / ] && return 0',
  '    _sp_c=$(dirname -- "$_sp_c") _sp_last=0',
  '  done',
  '}',
].join('\n');

/**
 * The same rule in Node, for the local transport: resolves to the first unsafe component of
 * `path` (an existing file or directory), or undefined when the whole path is safe for the user
 * with uid `uid`.
 */
export async function findUnsafePathComponent(
  path: string,
  uid: number,
): Promise<string | undefined> {
  try {
    if ((await lstat(path)).isSymbolicLink()) return path;
    let current = await realpath(path);
    let last = true;
    for (;;) {
      const info = await stat(current);
      if (info.uid !== uid && info.uid !== 0) return current;
      if ((info.mode & 0o022) !== 0 && (last || info.uid !== 0 || (info.mode & 0o1000) === 0)) {
        return current;
      }
      const parent = dirname(current);
      if (parent === current || current === sep) return undefined;
      current = parent;
      last = false;
    }
  } catch {
    return path;
  }
}
