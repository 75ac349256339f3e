#!/usr/bin/env node
/**
 * Build step: copies RUNE's Bash plugin library (plugins/lib/*.sh: bpcs.sh, service.sh) into
 * dist/bash-lib, so that it ships with the plugin test kit — the package plugin authors install.
 * `rune-plugin-test` inlines `# @rune-include <lib>` lines from there when the plugin's own tree
 * has no copy, and authors can `source` it from the installed package (docs/writing-plugins.md).
 * Without plugins/lib (a partial checkout) the directory stays empty, with a warning.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(packageDir, 'dist', 'bash-lib');
const libDir = resolve(packageDir, '..', '..', 'plugins', 'lib');

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
if (!existsSync(libDir)) {
  process.stderr.write(`copy-bash-library: ${libDir} not found; no Bash library shipped\n`);
  process.exit(0);
}
for (const name of readdirSync(libDir).sort()) {
  if (!name.endsWith('.sh')) continue;
  copyFileSync(join(libDir, name), join(outDir, name));
  // A library is sourced, never executed: a fixed mode keeps the tarball deterministic.
  chmodSync(join(outDir, name), 0o644);
}
