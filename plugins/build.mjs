#!/usr/bin/env node
/**
 * Assembles RUNE's built-in plugins: `node build.mjs <outdir>`.
 *
 * Each plugins/builtin/<name>.sh is turned into one self-contained executable file
 * <outdir>/<name>.sh: every line ending in `# @rune-include <lib>` (e.g. the `source` line that
 * makes the source runnable in a checkout) is replaced by the text of plugins/lib/<lib>, so the
 * node needs nothing but bash and the tools the plugin calls. <name>.manifest.json is copied
 * next to it, and SHA256SUMS lists both. The output is deterministic (no timestamps, sorted
 * order, fixed mode 0755), so the same sources always give the same sha256 — the control node
 * caches shipped plugins by that hash. Any inconsistency (missing include, missing manifest,
 * manifest name/version not matching the plugin's `bpcs_init` line) fails the build loudly.
 * No dependencies beyond Node itself.
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

const here = dirname(fileURLToPath(import.meta.url));
/** Default source directories: plugins/builtin and plugins/lib next to this file. */
export const DEFAULT_BUILTIN_DIR = join(here, 'builtin');
export const DEFAULT_LIB_DIR = join(here, 'lib');
const SHEBANG = '#!/usr/bin/env bash';
// Library functions a given plugin never calls look unreachable to ShellCheck (SC2317).
const HEADER = `${SHEBANG}\n# shellcheck disable=SC2317 # added by build.mjs: unused library functions\n# Assembled by plugins/build.mjs from builtin/%NAME%.sh; edit the sources, not this file.`;
const INCLUDE_MARKER = /#\s*@rune-include\s+(\S+)\s*$/;
const LIB_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*\.sh$/;
const SHELLCHECK_SOURCE = /^\s*#\s*shellcheck\s+source=/;
const INIT_LINE = /^\s*bpcs_init\s+['"]?([a-z0-9-]+)['"]?\s+['"]?([0-9A-Za-z.+-]+)['"]?\s*$/m;

/** A build problem in the sources (reported without a stack trace). */
export class BuildError extends Error {}

const sha256 = (text) => createHash('sha256').update(text).digest('hex');

/** Expands include markers in `text` (from `file`); libraries are inlined once each. */
function expandIncludes(text, file, seen, libDir) {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const out = [];
  lines.forEach((line, index) => {
    const match = INCLUDE_MARKER.exec(line);
    if (match === null) {
      out.push(line);
      return;
    }
    const lib = match[1];
    if (!LIB_NAME.test(lib)) {
      throw new BuildError(`${file}:${index + 1}: invalid include name '${lib}'`);
    }
    const libPath = join(libDir, lib);
    if (!existsSync(libPath)) {
      throw new BuildError(`${file}:${index + 1}: included library not found: ${libPath}`);
    }
    // A `# shellcheck source=...` directive belongs to the replaced source line.
    if (out.length > 0 && SHELLCHECK_SOURCE.test(out[out.length - 1])) out.pop();
    if (seen.has(lib)) {
      out.push(`# @rune-include ${lib}: already included above`);
      return;
    }
    seen.add(lib);
    let body = readFileSync(libPath, 'utf8').replace(/\r\n/g, '\n');
    if (body.startsWith('#!')) body = body.slice(body.indexOf('\n') + 1);
    body = body.replace(/\n+$/, '');
    const expanded = expandIncludes(body, `lib/${lib}`, seen, libDir);
    out.push(`# ---- begin @rune-include ${lib} (sha256 ${sha256(body)}) ----`);
    out.push(expanded);
    out.push(`# ---- end @rune-include ${lib} ----`);
  });
  return out.join('\n');
}

/** Builds one plugin; returns the files written as [fileName, content] pairs. */
function assemble(name, builtinDir, libDir) {
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
  const source = readFileSync(scriptPath, 'utf8');
  const init = INIT_LINE.exec(source);
  if (init === null) {
    throw new BuildError(`builtin/${name}.sh never calls 'bpcs_init <name> <version>'`);
  }
  if (init[1] !== manifest.name || init[2] !== manifest.version) {
    throw new BuildError(
      `builtin/${name}.sh calls bpcs_init ${init[1]} ${init[2]}, but its manifest says ${manifest.name} ${manifest.version}`,
    );
  }
  let body = source.replace(/\r\n/g, '\n');
  if (body.startsWith('#!')) body = body.slice(body.indexOf('\n') + 1);
  const expanded = expandIncludes(body, `builtin/${name}.sh`, new Set(), libDir);
  if (!expanded.includes('# ---- begin @rune-include bpcs.sh')) {
    throw new BuildError(`builtin/${name}.sh does not include bpcs.sh`);
  }
  const script = `${HEADER.replace('%NAME%', name)}\n${expanded.replace(/\n+$/, '')}\n`;
  return [
    [`${name}.sh`, script],
    [`${name}.manifest.json`, manifestText],
  ];
}

/**
 * Builds every plugin in builtin/ into `outDir`; returns the plugin names.
 * `options.builtinDir` / `options.libDir` override the source directories (tests).
 */
export function build(outDir, options = {}) {
  const builtinDir = options.builtinDir ?? DEFAULT_BUILTIN_DIR;
  const libDir = options.libDir ?? DEFAULT_LIB_DIR;
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
  const files = names.flatMap((name) => assemble(name, builtinDir, libDir));
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
