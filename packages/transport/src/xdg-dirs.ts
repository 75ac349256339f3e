/**
 * XDG base directories (config, data, state, cache), computed from an injectable environment
 * and home directory so that tests never touch the real home.
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/** The environment a path computation sees. */
export interface EnvironmentOptions {
  /** Environment variables; defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Home directory; defaults to `$HOME`, then `os.homedir()`. */
  home?: string;
  /** Working directory; defaults to `process.cwd()`. */
  cwd?: string;
}

/** The four XDG base directories RUNE uses. */
export interface XdgDirs {
  home: string;
  configHome: string;
  dataHome: string;
  stateHome: string;
  cacheHome: string;
}

/** Resolves the XDG base directories (an unset or relative variable falls back to the default). */
export function resolveXdgDirs(options: EnvironmentOptions = {}): XdgDirs {
  const env = options.env ?? process.env;
  const home = options.home ?? env.HOME ?? homedir();
  const pick = (name: string, fallback: string): string => {
    const value = env[name];
    return value !== undefined && value !== '' && isAbsolute(value) ? value : join(home, fallback);
  };
  return {
    home,
    configHome: pick('XDG_CONFIG_HOME', '.config'),
    dataHome: pick('XDG_DATA_HOME', '.local/share'),
    stateHome: pick('XDG_STATE_HOME', '.local/state'),
    cacheHome: pick('XDG_CACHE_HOME', '.cache'),
  };
}

/**
 * RUNE's state directory, `$XDG_STATE_HOME/rune`: the audit log, fetched artifacts and RUNE's own
 * known_hosts live there. Every package asks here so they all agree on one directory.
 */
export function runeStateDir(dirs: Pick<XdgDirs, 'stateHome'> = resolveXdgDirs()): string {
  return join(dirs.stateHome, 'rune');
}

/** Expands a leading `~` or `~/` to `home` and resolves a relative path against `cwd`. */
export function expandLocalPath(path: string, home: string, cwd: string): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return join(home, path.slice(2));
  return resolve(cwd, path);
}
