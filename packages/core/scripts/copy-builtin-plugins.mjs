#!/usr/bin/env node
/**
 * Assembles RUNE's built-in plugins into dist/builtin-plugins (part of `pnpm build`).
 *
 * Runs `node plugins/build.mjs <outdir>` from the repository (the plugins package owns the
 * assembly: library inlining, manifests, SHA256SUMS). Without that script (a partial checkout)
 * the directory is created empty, which the registry treats as "no built-in plugins". The
 * manifests are then validated and recorded in .validated-manifests.json.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(packageDir, 'dist', 'builtin-plugins');
const buildScript = resolve(packageDir, '..', '..', 'plugins', 'build.mjs');

rmSync(outDir, { recursive: true, force: true });
if (!existsSync(buildScript)) {
  mkdirSync(outDir, { recursive: true });
  process.stderr.write(`copy-builtin-plugins: ${buildScript} not found; no built-in plugins\n`);
  process.exit(0);
}
const result = spawnSync(process.execPath, [buildScript, outDir], { stdio: 'inherit' });
if (result.status !== 0) {
  process.stderr.write(`copy-builtin-plugins: ${buildScript} failed (exit ${result.status})\n`);
  process.exit(result.status ?? 1);
}
// Validate the manifests once, now, so that discovery need not compile the MRS validator at
// every start-up (see src/plugins/validated-manifests.ts).
const { writeValidatedManifests } = await import('../dist/plugins/validated-manifests.js');
const report = writeValidatedManifests(outDir);
for (const { file, message } of report.invalid) {
  process.stderr.write(`copy-builtin-plugins: ${file} is not a valid MRS manifest: ${message}\n`);
}
