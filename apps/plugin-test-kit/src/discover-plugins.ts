/**
 * Finding the plugins under a path, with their manifests and cases files.
 *
 * A plugin is a `*.sh` file, any executable file, or the entrypoint a manifest names. Its manifest
 * is the `*.manifest.json` whose entrypoint (default `<name>.sh`) is the file; its cases file is
 * `<stem>.cases.yaml` next to it. Source plugins that pull in a shared library with a
 * `# @rune-include <file>` marker are assembled first — by the tree's own `build.mjs` when there is
 * one (so the kit tests exactly what ships), else by inlining the named file — and the assembled
 * file is what runs.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { RuneError } from '@rune/protocol';

const execFileAsync = promisify(execFile);

/** The marker a source plugin uses to include a library file. */
export const INCLUDE_MARKER = /#[ \t]*@rune-include[ \t]+(\S+)[ \t]*$/m;

/** One plugin found under the path given to rune-plugin-test. */
export interface DiscoveredPlugin {
  /** Path shown to the user (the source file). */
  file: string;
  /** The source file. */
  sourceFile: string;
  /** The file that runs (the assembled one when `assembled`). */
  runFile: string;
  manifestFile?: string;
  casesFile?: string;
  assembled: boolean;
}

/** The plugins under a path, and a cleanup for assembled copies. */
export interface Discovery {
  plugins: DiscoveredPlugin[];
  /** Notes for the user (how plugins were assembled). */
  notes: string[];
  cleanup(): Promise<void>;
}

const IGNORED = /\.(json|ya?ml|md|mjs|cjs|js|ts|txt|bak|orig)$|^\./;

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Reads the entrypoint a manifest names, without validating the rest (the checker does that). */
async function manifestEntrypoint(path: string): Promise<string | undefined> {
  try {
    const value = JSON.parse(await readFile(path, 'utf8')) as {
      entrypoint?: unknown;
      name?: unknown;
    };
    if (typeof value.entrypoint === 'string') return value.entrypoint;
    if (typeof value.name === 'string') return `${value.name}.sh`;
  } catch {
    // Unreadable or invalid: fall back to the file name.
  }
  return `${basename(path, '.manifest.json')}.sh`;
}

/** Finds plugins in a file or directory (not recursive). */
export async function discoverPlugins(target: string): Promise<Discovery> {
  const path = resolve(target);
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (cause) {
    throw new RuneError('INVALID_ARGUMENT', `${target} does not exist`, { cause });
  }
  const directory = info.isDirectory() ? path : dirname(path);
  const names = await readdir(directory);
  const manifests = new Map<string, string>();
  for (const name of names.filter((entry) => entry.endsWith('.manifest.json'))) {
    const file = join(directory, name);
    manifests.set((await manifestEntrypoint(file)) ?? name, file);
  }
  let candidates: string[];
  if (info.isDirectory()) {
    const found = new Set<string>(manifests.keys());
    for (const name of names) {
      if (IGNORED.test(name)) continue;
      if (name.endsWith('.sh') || (await isExecutableFile(join(directory, name)))) found.add(name);
    }
    candidates = [...found].sort();
  } else {
    candidates = [basename(path)];
  }
  const plugins: DiscoveredPlugin[] = [];
  for (const name of candidates) {
    const sourceFile = join(directory, name);
    const stem = name.replace(/\.[A-Za-z0-9]{1,16}$/, '');
    const plugin: DiscoveredPlugin = {
      file: sourceFile,
      sourceFile,
      runFile: sourceFile,
      assembled: false,
    };
    const manifest =
      manifests.get(name) ?? (await existing(join(directory, `${stem}.manifest.json`)));
    if (manifest !== undefined) plugin.manifestFile = manifest;
    const cases = await existing(join(directory, `${stem}.cases.yaml`));
    if (cases !== undefined) plugin.casesFile = cases;
    plugins.push(plugin);
  }
  const assembly = await assemble(directory, plugins);
  return { plugins, notes: assembly.notes, cleanup: assembly.cleanup };
}

async function existing(path: string): Promise<string | undefined> {
  return (await exists(path)) ? path : undefined;
}

async function needsAssembly(file: string): Promise<boolean> {
  try {
    return INCLUDE_MARKER.test(await readFile(file, 'utf8'));
  } catch {
    return false;
  }
}

/** Finds a file by name anywhere under a directory. */
async function findFile(root: string, name: string): Promise<string | undefined> {
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (entry.isFile() && entry.name === name) return join(root, entry.name);
  }
  for (const entry of entries) {
    if (entry.isDirectory()) {
      const found = await findFile(join(root, entry.name), name);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

async function assemble(
  directory: string,
  plugins: DiscoveredPlugin[],
): Promise<{ notes: string[]; cleanup: () => Promise<void> }> {
  const pending: DiscoveredPlugin[] = [];
  for (const plugin of plugins) if (await needsAssembly(plugin.sourceFile)) pending.push(plugin);
  if (pending.length === 0) return { notes: [], cleanup: async () => {} };
  const out = await mkdtemp(join(tmpdir(), 'rune-plugin-test-build-'));
  const cleanup = () => rm(out, { recursive: true, force: true });
  const notes: string[] = [];
  const buildScript =
    (await existing(join(directory, 'build.mjs'))) ??
    (await existing(join(directory, '..', 'build.mjs')));
  try {
    if (buildScript !== undefined) {
      try {
        await execFileAsync(process.execPath, [buildScript, out], {
          cwd: dirname(buildScript),
          timeout: 120_000,
        });
      } catch (cause) {
        const stderr = (cause as { stderr?: string }).stderr ?? '';
        throw new RuneError(
          'INVALID_ARGUMENT',
          `${buildScript} failed: ${stderr.trim().slice(-2000)}`,
          { cause },
        );
      }
      notes.push(`assembled with ${buildScript}`);
      for (const plugin of pending) {
        const built = await findFile(out, basename(plugin.sourceFile));
        if (built !== undefined) {
          plugin.runFile = built;
          plugin.assembled = true;
        }
      }
    }
    for (const plugin of pending.filter((entry) => !entry.assembled)) {
      plugin.runFile = join(out, basename(plugin.sourceFile));
      await writeFile(plugin.runFile, await inlineIncludes(plugin.sourceFile), { mode: 0o700 });
      plugin.assembled = true;
      notes.push(`assembled ${basename(plugin.sourceFile)} by inlining its @rune-include files`);
    }
  } catch (error) {
    await cleanup();
    throw error;
  }
  return { notes, cleanup };
}

/**
 * RUNE's Bash plugin library as shipped inside this package (`dist/bash-lib`, copied from
 * plugins/lib at build time): the fallback for `# @rune-include` outside RUNE's repository.
 */
export function bundledBashLibraryDir(): string {
  // dist/discover-plugins.js and src/discover-plugins.ts (tests) both reach dist/bash-lib.
  return join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bash-lib');
}

/**
 * Replaces each `# @rune-include <file>` line with the file: relative to the plugin, then in
 * ../lib, then RUNE's library shipped with this package ({@link bundledBashLibraryDir}).
 */
export async function inlineIncludes(file: string): Promise<string> {
  const source = await readFile(file, 'utf8');
  const lines: string[] = [];
  for (const line of source.split('\n')) {
    const match = new RegExp(INCLUDE_MARKER.source).exec(line);
    if (match === null) {
      lines.push(line);
      continue;
    }
    const name = match[1]!;
    const candidates = [
      resolve(dirname(file), name),
      resolve(dirname(file), '..', 'lib', basename(name)),
      join(bundledBashLibraryDir(), basename(name)),
    ];
    let included: string | undefined;
    for (const candidate of candidates) {
      included = await readFile(candidate, 'utf8').catch(() => undefined);
      if (included !== undefined) break;
    }
    if (included === undefined) {
      throw new RuneError('INVALID_ARGUMENT', `${file}: cannot find included file ${name}`);
    }
    lines.push(`# --- begin ${name} ---`, included.replace(/\n$/, ''), `# --- end ${name} ---`);
  }
  return lines.join('\n');
}
