#!/usr/bin/env node
/**
 * Assembles RUNE's built-in plugins: `node build.mjs <outdir>` (needs @rune/core built).
 *
 * The build lives in @rune/core (packages/core/scripts/build-builtin-plugins.mjs) and assembles
 * with core's one assembler — the function the plugin registry and rune-plugin-test use — so what
 * this writes is exactly what RUNE registers, tests and ships. This file is the entry point for
 * the repository's plugin tests and for contributors.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BuildError,
  build,
  DEFAULT_BUILTIN_DIR,
  DEFAULT_LIB_DIR,
} from '../packages/core/scripts/build-builtin-plugins.mjs';

export { BuildError, build, DEFAULT_BUILTIN_DIR, DEFAULT_LIB_DIR };

const invokedDirectly =
  process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const outDir = process.argv[2];
  if (outDir === undefined || process.argv.length > 3) {
    process.stderr.write('usage: node build.mjs <outdir>\n');
    process.exit(2);
  }
  try {
    const names = build(resolve(outDir));
    process.stdout.write(`built ${names.length} plugins into ${outDir}: ${names.join(', ')}\n`);
  } catch (error) {
    if (error instanceof BuildError) {
      process.stderr.write(`build.mjs: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}
