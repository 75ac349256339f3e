#!/usr/bin/env node
/**
 * Build step (after tsc, part of `pnpm build`): ships the Bash plugin library and the built-in
 * plugins inside @rune/core.
 *
 * - plugins/lib/*.sh (bpcs.sh, service.sh) -> dist/bash-lib (mode 0644: sourced, never run). The
 *   registry's assembler finds `# @rune-include bpcs.sh` there for any plugin outside the
 *   repository, and `rune plugin new` scaffolds plugins that use it.
 * - plugins/builtin -> dist/builtin-plugins, assembled by build-builtin-plugins.mjs with core's
 *   assembler; the manifests are then validated once and recorded in .validated-manifests.json
 *   (see src/plugins/validated-manifests.ts), so discovery need not compile the MRS validator at
 *   every start-up.
 *
 * Without plugins/ (a partial checkout) both directories stay empty, with a warning.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(packageDir, 'dist', 'builtin-plugins');
const libOutDir = join(packageDir, 'dist', 'bash-lib');
const pluginsDir = resolve(packageDir, '..', '..', 'plugins');
const libDir = join(pluginsDir, 'lib');

rmSync(outDir, { recursive: true, force: true });
rmSync(libOutDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
mkdirSync(libOutDir, { recursive: true });
if (!existsSync(libDir) || !existsSync(join(pluginsDir, 'builtin'))) {
  process.stderr.write(
    `copy-builtin-plugins: ${pluginsDir} has no builtin/ and lib/; no built-in plugins, no Bash library\n`,
  );
  process.exit(0);
}
for (const name of readdirSync(libDir).sort()) {
  if (!name.endsWith('.sh')) continue;
  copyFileSync(join(libDir, name), join(libOutDir, name));
  chmodSync(join(libOutDir, name), 0o644);
}
const { build, BuildError } = await import('./build-builtin-plugins.mjs');
try {
  build(outDir);
} catch (error) {
  if (!(error instanceof BuildError)) throw error;
  process.stderr.write(`copy-builtin-plugins: ${error.message}\n`);
  process.exit(1);
}
const { writeValidatedManifests } = await import('../dist/plugins/validated-manifests.js');
const report = writeValidatedManifests(outDir);
for (const { file, message } of report.invalid) {
  process.stderr.write(`copy-builtin-plugins: ${file} is not a valid MRS manifest: ${message}\n`);
}
