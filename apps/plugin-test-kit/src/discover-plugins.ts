/**
 * Finding the plugins under a path, with their manifests and cases files.
 *
 * A plugin is a `*.sh` file, any executable file, or the entrypoint a manifest names. Its manifest
 * is the `*.manifest.json` whose entrypoint (default `<name>.sh`) is the file; its cases file is
 * `<stem>.cases.yaml` next to it. Source plugins that pull in a shared library with a
 * `# @rune-include <file>` line are assembled first by @rune/core's assembler, the one the plugin
 * registry uses, so the bytes the kit runs are the bytes RUNE hashes and ships (their sha256 is
 * in the report).
 */
import { constants } from 'node:fs';
import { access, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { assemblePluginSource } from '@rune/core';
import { RuneError } from '@rune/protocol';
import { sha256Hex } from '@rune/transport';

/** One plugin found under the path given to rune-plugin-test. */
export interface DiscoveredPlugin {
  /** Path shown to the user (the source file). */
  file: string;
  /** The source file. */
  sourceFile: string;
  /** The file that runs (the assembled one when `assembled`). */
  runFile: string;
  /** sha256 of the bytes that run: the sha256 RUNE registers for this plugin. */
  sha256?: string;
  /** Why the plugin cannot be assembled (PLUGIN_INCLUDE_FAILED): RUNE would not register it. */
  assemblyError?: RuneError;
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
  const assembly = await assemble(plugins);
  return { plugins, notes: assembly.notes, cleanup: assembly.cleanup };
}

async function existing(path: string): Promise<string | undefined> {
  return (await exists(path)) ? path : undefined;
}

/**
 * Assembles every plugin with core's assembler — the function the plugin registry runs when it
 * registers a plugin — and writes the assembled bytes to a private temporary file that runs
 * instead of the source. Self-contained plugins run as they are.
 */
async function assemble(
  plugins: DiscoveredPlugin[],
): Promise<{ notes: string[]; cleanup: () => Promise<void> }> {
  let out: string | undefined;
  const cleanup = async (): Promise<void> => {
    if (out !== undefined) await rm(out, { recursive: true, force: true });
  };
  const notes: string[] = [];
  try {
    for (const plugin of plugins) {
      let source: Buffer;
      try {
        source = await readFile(plugin.sourceFile);
      } catch {
        continue; // reported by the checker ("plugin file exists")
      }
      let assembled: ReturnType<typeof assemblePluginSource>;
      try {
        assembled = assemblePluginSource(source, plugin.sourceFile);
      } catch (error) {
        // RUNE would refuse to register it; the checker reports that as a failed check.
        plugin.assemblyError = RuneError.from(error, 'PLUGIN_INCLUDE_FAILED');
        continue;
      }
      plugin.sha256 = sha256Hex(assembled.content);
      if (!assembled.assembled) continue;
      out ??= await mkdtemp(join(tmpdir(), 'rune-plugin-test-build-'));
      // One directory per plugin: two plugins of a tree may share a file name only in theory.
      const dir = await mkdtemp(join(out, 'p-'));
      plugin.runFile = join(dir, basename(plugin.sourceFile));
      await writeFile(plugin.runFile, assembled.content, { mode: 0o700 });
      plugin.assembled = true;
      notes.push(
        `assembled ${basename(plugin.sourceFile)} as RUNE registers it (inlined ${assembled.includes
          .map((include) => `${include.name} from ${include.path}`)
          .join(', ')}; sha256 ${plugin.sha256})`,
      );
    }
  } catch (error) {
    await cleanup();
    throw error;
  }
  return { notes, cleanup };
}
