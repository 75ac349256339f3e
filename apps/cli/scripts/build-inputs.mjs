/**
 * What the built CLI (dist/) is made of, so tests can tell a stale build from a fresh one.
 *
 * `bundle.mjs` records a sha256 of every input file in dist/build-stamp.json; the integration
 * test harness recomputes it before running the built CLI and fails with "run the build" when any
 * input changed since. Content hashes rather than mtimes: a `git checkout` or `touch` changes
 * mtimes without changing what the bundle would contain, and an edit inside the same second
 * leaves mtimes equal. Tests, test helpers (`testing/`) and docs are not inputs.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (apps/cli/scripts/../../..). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Directories (relative to the repository root) whose files end up in, or next to, the CLI. */
export const BUILD_INPUT_DIRS = [
  'apps/cli/src',
  'apps/cli/scripts',
  'packages/protocol/src',
  'packages/core/src',
  'packages/core/scripts',
  'packages/transport-ssh/src',
  'packages/transport-ssm/src',
  'packages/server/src',
  'plugins/builtin',
  'plugins/lib',
];

/** Packages the CLI bundles or loads at run time from their own dist/. */
export const DEPENDENCY_PACKAGES = [
  'packages/protocol',
  'packages/core',
  'packages/transport-ssh',
  'packages/transport-ssm',
  'packages/server',
];

const isInput = (path) =>
  !/\.test\.ts$/.test(path) && !path.split('/').includes('testing') && !path.endsWith('.md');

function walk(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, out);
    else if (entry.isFile()) out.push(path);
  }
}

/** Every input file (repository-relative, `/`-separated, sorted). */
export function listBuildInputs(root = REPO_ROOT) {
  const files = [];
  for (const dir of BUILD_INPUT_DIRS) walk(join(root, dir), files);
  return files
    .map((file) => relative(root, file).split(sep).join('/'))
    .filter(isInput)
    .sort();
}

/** sha256 of each input file, and one sha256 over all of them. */
export function hashBuildInputs(root = REPO_ROOT) {
  const files = {};
  const total = createHash('sha256');
  for (const file of listBuildInputs(root)) {
    const digest = createHash('sha256')
      .update(readFileSync(join(root, file)))
      .digest('hex');
    files[file] = digest;
    total.update(`${file}\0${digest}\n`);
  }
  return { sha256: total.digest('hex'), files };
}

/**
 * Dependency packages whose dist/ is older than their newest source file: bundling them would
 * pack yesterday's code under today's stamp (e.g. `npm run build` in apps/cli alone).
 */
export function staleDependencies(root = REPO_ROOT) {
  const stale = [];
  for (const pkg of DEPENDENCY_PACKAGES) {
    const sources = [];
    walk(join(root, pkg, 'src'), sources);
    const newest = Math.max(
      0,
      ...sources.filter((f) => isInput(f)).map((f) => statSync(f).mtimeMs),
    );
    let built = 0;
    try {
      built = statSync(join(root, pkg, 'dist', 'index.js')).mtimeMs;
    } catch {
      built = 0;
    }
    if (built < newest) stale.push(pkg);
  }
  return stale;
}
