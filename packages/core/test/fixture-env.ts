/** Temporary HOME / XDG dirs and a copy of the fixture plugins, for integration tests. */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The fixture plugin sources. */
export const FIXTURE_PLUGIN_DIR = fileURLToPath(new URL('./fixtures/plugins', import.meta.url));

/** A throw-away environment. */
export interface FixtureEnv {
  root: string;
  home: string;
  env: Record<string, string>;
  /** Where the fixture plugins were copied (the user plugin dir). */
  pluginDir: string;
  auditLog: string;
  /** The audit signing key (created by the first audited run). */
  auditKey: string;
  cleanup(): void;
}

/** Creates a temp HOME with XDG dirs; copies fixture plugins to $XDG_DATA_HOME/rune/plugins. */
export function createFixtureEnv(): FixtureEnv {
  const root = mkdtempSync(join(tmpdir(), 'rune-core-it-'));
  const home = join(root, 'home');
  const env: Record<string, string> = {
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local/share'),
    XDG_STATE_HOME: join(home, '.local/state'),
    XDG_CACHE_HOME: join(home, '.cache'),
    PATH: process.env.PATH ?? '/usr/bin:/bin',
  };
  const pluginDir = join(env.XDG_DATA_HOME!, 'rune', 'plugins');
  mkdirSync(pluginDir, { recursive: true });
  for (const name of readdirSync(FIXTURE_PLUGIN_DIR)) {
    copyFileSync(join(FIXTURE_PLUGIN_DIR, name), join(pluginDir, name));
    chmodSync(join(pluginDir, name), name.endsWith('.sh') && name !== 'noexec.sh' ? 0o755 : 0o644);
  }
  return {
    root,
    home,
    env,
    pluginDir,
    auditLog: join(env.XDG_STATE_HOME!, 'rune', 'audit.jsonl'),
    auditKey: join(env.XDG_CONFIG_HOME!, 'rune', 'audit-key.pem'),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}
