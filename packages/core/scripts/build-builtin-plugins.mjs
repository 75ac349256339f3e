/**
 * Builds RUNE's built-in plugins: every plugins/builtin/<name>.sh becomes one self-contained
 * executable <outdir>/<name>.sh, assembled by core's one assembler (src/plugins/assemble-plugin.ts,
 * the same function the plugin registry and rune-plugin-test use, so the bytes built here are the
 * bytes tested, hashed and shipped). <name>.manifest.json is copied next to it, and SHA256SUMS
 * lists both. The output is deterministic (no timestamps, sorted order, fixed mode 0755). Any
 * inconsistency (missing or unsafe include, missing manifest, manifest name/version not matching
 * the plugin's `bpcs_init` line) fails the build with a BuildError.
 *
 * Needs core's dist/ (run after tsc); used by copy-builtin-plugins.mjs and plugins/build.mjs.
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assemblePluginSource, defaultIncludeDirs } from '../dist/plugins/assemble-plugin.js';

const repository = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** Default source directories: the repository's plugins/builtin and plugins/lib. */
export const DEFAULT_BUILTIN_DIR = join(repository, 'plugins', 'builtin');
export const DEFAULT_LIB_DIR = join(repository, 'plugins', 'lib');
const INIT_LINE = /^\s*bpcs_init\s+['"]?([a-z0-9-]+)['"]?\s+['"]?([0-9A-Za-z.+-]+)['"]?\s*$/m;

/** A build problem in the sources (reported without a stack trace). */
export class BuildError extends Error {}

const sha256 = (data) => createHash('sha256').update(data).digest('hex');

/** Builds one plugin; returns the files to write as [fileName, content] pairs. */
function buildOne(name, builtinDir, libDir) {
  const scriptPath = join(builtinDir, `${name}.sh`);
  const manifestPath = join(builtinDir, `${name}.manifest.json`);
  if (!existsSync(manifestPath)) {
    throw new BuildError(`builtin/${name}.sh has no manifest builtin/${name}.manifest.json`);
  }
  const manifestText = readFileSync(manifestPath, 'utf8');
  let manifest;
  try {
    manifest = JSON.parse(manifestText);
  } catch (error) {
    throw new BuildError(`builtin/${name}.manifest.json is not valid JSON: ${error.message}`);
  }
  if (manifest.name !== name) {
    throw new BuildError(
      `builtin/${name}.manifest.json names '${manifest.name}', expected '${name}'`,
    );
  }
  if (manifest.entrypoint !== undefined && manifest.entrypoint !== `${name}.sh`) {
    throw new BuildError(`builtin/${name}.manifest.json: entrypoint must be ${name}.sh`);
  }
  const source = readFileSync(scriptPath);
  const init = INIT_LINE.exec(source.toString('utf8'));
  if (init === null) {
    throw new BuildError(`builtin/${name}.sh never calls 'bpcs_init <name> <version>'`);
  }
  if (init[1] !== manifest.name || init[2] !== manifest.version) {
    throw new BuildError(
      `builtin/${name}.sh calls bpcs_init ${init[1]} ${init[2]}, but its manifest says ${manifest.name} ${manifest.version}`,
    );
  }
  let assembled;
  try {
    assembled = assemblePluginSource(source, scriptPath, {
      includeDirs: libDir === undefined ? defaultIncludeDirs(scriptPath) : [libDir],
    });
  } catch (error) {
    throw new BuildError(error.message);
  }
  if (!assembled.includes.some((include) => include.name === 'bpcs.sh')) {
    throw new BuildError(`builtin/${name}.sh does not include bpcs.sh`);
  }
  return [
    [`${name}.sh`, assembled.content],
    [`${name}.manifest.json`, manifestText],
  ];
}

/**
 * Builds every plugin in builtin/ into `outDir`; returns the plugin names.
 * `options.builtinDir` / `options.libDir` override the source directories (tests); without
 * `libDir` includes are looked up as the registry does (plugins/lib for the repository's tree).
 */
export function build(outDir, options = {}) {
  const builtinDir = options.builtinDir ?? DEFAULT_BUILTIN_DIR;
  const libDir = options.libDir;
  const entries = readdirSync(builtinDir).sort();
  const names = entries.filter((file) => file.endsWith('.sh')).map((file) => basename(file, '.sh'));
  for (const file of entries) {
    if (
      file.endsWith('.manifest.json') &&
      !names.includes(file.slice(0, -'.manifest.json'.length))
    ) {
      throw new BuildError(`builtin/${file} has no plugin script next to it`);
    }
  }
  if (names.length === 0) throw new BuildError('no plugins found in builtin/');
  const files = names.flatMap((name) => buildOne(name, builtinDir, libDir));
  mkdirSync(outDir, { recursive: true });
  // Remove what an earlier build wrote, so a deleted plugin does not linger.
  for (const file of readdirSync(outDir)) {
    if (file.endsWith('.sh') || file.endsWith('.manifest.json') || file === 'SHA256SUMS') {
      rmSync(join(outDir, file), { force: true });
    }
  }
  const sums = [];
  for (const [file, content] of files) {
    const target = join(outDir, file);
    writeFileSync(target, content);
    chmodSync(target, file.endsWith('.sh') ? 0o755 : 0o644);
    sums.push(`${sha256(content)}  ${file}`);
  }
  writeFileSync(join(outDir, 'SHA256SUMS'), `${sums.join('\n')}\n`);
  chmodSync(join(outDir, 'SHA256SUMS'), 0o644);
  return names;
}
