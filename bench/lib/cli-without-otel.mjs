// A second build of the CLI with no OpenTelemetry code at all (bench/lib/otel-api-absent.mjs
// bundled in place of @opentelemetry/api, apps/cli/scripts/bundle.mjs), for `--cli-without-otel`
// of bench/startup.mjs and bench/fanout.mjs: "tracing off" (the default build, no OTEL_*) and a
// CLI that cannot trace, side by side in one run. Written under apps/cli/.bench-no-otel (so it
// resolves @rune/core and the transports from apps/cli/node_modules as dist/ does) and removed by
// `remove()`.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const cliDir = join(root, 'apps/cli');

/** Builds it; returns its bin (`node <bin> run ...`) and a function that removes it. */
export function buildCliWithoutOtel() {
  const out = join(cliDir, '.bench-no-otel');
  rmSync(out, { recursive: true, force: true });
  const built = spawnSync('node', [join(cliDir, 'scripts/bundle.mjs')], {
    cwd: cliDir,
    encoding: 'utf8',
    env: {
      ...process.env,
      RUNE_BUNDLE_OUTDIR: '.bench-no-otel/dist',
      RUNE_BUNDLE_OTEL_API: join(root, 'bench/lib/otel-api-absent.mjs'),
    },
  });
  if (built.status !== 0) {
    throw new Error(`bench: the CLI without OpenTelemetry did not build: ${built.stderr}`);
  }
  mkdirSync(join(out, 'bin'), { recursive: true });
  copyFileSync(join(cliDir, 'bin/rune.js'), join(out, 'bin/rune.js'));
  for (const file of ['help.txt', 'versions.json']) {
    if (existsSync(join(cliDir, 'dist', file))) {
      copyFileSync(join(cliDir, 'dist', file), join(out, 'dist', file));
    }
  }
  return {
    bin: join(out, 'bin/rune.js'),
    remove: () => rmSync(out, { recursive: true, force: true }),
  };
}
