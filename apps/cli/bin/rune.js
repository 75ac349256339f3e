#!/usr/bin/env node
// Stable entry point committed to the repo so that package managers can link the `rune` bin
// before the TypeScript build has run. The real program lives in dist/main.js.
import { existsSync, lstatSync, mkdirSync } from 'node:fs';
import module from 'node:module';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/**
 * Node >= 22.1 keeps V8's compiled code of the bundle between runs (`module.enableCompileCache`):
 * parsing and compiling the CLI's JavaScript is the largest part of its start-up. Node 20 has no
 * such API, and this does nothing there. The cache lives in the user's own cache directory
 * (`$XDG_CACHE_HOME/rune/compile-cache`, mode 0700), not in Node's default under the shared
 * temp directory: V8 trusts the code it loads from there, so a directory another user can write
 * is never used. NODE_COMPILE_CACHE (Node's own switch) takes precedence; any failure means no
 * cache, never an error.
 */
function enableCompileCache() {
  if (typeof module.enableCompileCache !== 'function' || process.env.NODE_COMPILE_CACHE) return;
  try {
    const xdg = process.env.XDG_CACHE_HOME;
    const base =
      xdg !== undefined && xdg !== '' && isAbsolute(xdg)
        ? xdg
        : join(process.env.HOME ?? homedir(), '.cache');
    const dir = join(base, 'rune', 'compile-cache');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stats = lstatSync(dir);
    const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
    if (!stats.isDirectory() || stats.uid !== uid || (stats.mode & 0o077) !== 0) return;
    module.enableCompileCache(dir);
  } catch {
    // No cache: start as without one.
  }
}
enableCompileCache();

import('../dist/main.js').catch((error) => {
  if (
    error &&
    error.code === 'ERR_MODULE_NOT_FOUND' &&
    String(error.message).includes('dist/main.js')
  ) {
    // A checkout has the sources next to dist/; an installed package ships only dist/.
    const checkout = existsSync(new URL('../src/main.ts', import.meta.url));
    process.stderr.write(
      checkout
        ? 'rune: the CLI is not built yet. Run `npx -y pnpm@10.34.9 build` in the repository root.\n'
        : 'rune: this installation of @rune/cli is incomplete (dist/main.js is missing); reinstall @rune/cli (see the README, section Install).\n',
    );
    process.exit(70);
  }
  throw error;
});
