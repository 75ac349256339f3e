/**
 * The plugin registry (MRS): which plugin file runs for which action name.
 *
 * Discovery reads three directories in precedence order — the built-in plugins shipped inside
 * @rune/core, the user's `$XDG_DATA_HOME/rune/plugins`, then `[plugins] plugin_dir` — and the
 * FIRST directory that has an action wins. Built-ins therefore cannot be silently replaced: a
 * file named `restart-docker.sh` dropped into a writable plugin dir does not change what
 * `rune run restart-docker` executes; it is kept as a shadowed candidate and shown by
 * `rune plugin-info`, with a warning. To run a modified copy, give it a new name.
 *
 * A plugin is a file `<action>.sh` (or the `entrypoint` a manifest names) plus an optional
 * `<action>.manifest.json` (MRS v1). Without a manifest it is registered with an inferred one
 * (`inferred: true`, version 0.0.0, `dangerous: true` so it needs explicit confirmation, any
 * scalar parameters passed through). The registry assembles every plugin file
 * (assemble-plugin.ts: `# @rune-include` lines replaced by the libraries they name) and hashes the
 * assembled bytes (sha256) — what is hashed, audited and shipped is one self-contained file; the
 * execution step assembles again and re-checks the hash right before execution. A plugin whose
 * includes cannot be assembled is kept as a candidate and refused with PLUGIN_INCLUDE_FAILED when
 * its action is resolved.
 * Built-in manifests validated at build time are not validated again (see validated-manifests.ts).
 * Plugins are executed directly (never through a shell), so a plugin the user installed must be
 * executable; that is checked here and reported as PLUGIN_NOT_EXECUTABLE when the action is
 * resolved. Built-in plugins are exempt: their execute bit carries no information (the build
 * writes every one 0755) and package managers do not keep it (`pnpm pack` writes 0644 for every
 * file that is not a `bin`), while what runs is the content, checked against its sha256 right
 * before execution. Transports ship that content and set its mode themselves; the local
 * transport runs a non-executable file from a private copy of the verified bytes.
 */
import { constants, type Dirent, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  inferMrsManifest,
  isActionName,
  type MrsManifest,
  parseMrsManifest,
  RuneError,
} from '@rune/protocol';
import { sha256Hex } from '@rune/transport';
import { assemblePluginSource, type PluginInclude } from './assemble-plugin.js';
import {
  readValidatedManifests,
  VALIDATED_MANIFESTS_FILE,
  type ValidatedManifest,
} from './validated-manifests.js';

/** Where a plugin directory sits in the precedence order. */
export type PluginSourceKind = 'builtin' | 'user' | 'plugin_dir';

/** One directory searched for plugins. */
export interface PluginSourceDir {
  kind: PluginSourceKind;
  dir: string;
}

/** One plugin file found on disk. */
export interface PluginCandidate {
  action: string;
  /** Absolute path of the plugin file. */
  path: string;
  /** Absolute path of its manifest, when it has one. */
  manifestPath: string | null;
  source: PluginSourceKind;
  /** The manifest (inferred when the plugin has none; null when the manifest is invalid). */
  manifest: MrsManifest | null;
  /** Why the manifest was refused (INVALID_MANIFEST), when it was. */
  manifestError: RuneError | null;
  /** Lowercase hex sha256 of the assembled plugin (the file itself when it includes nothing). */
  sha256: string;
  /** Size in bytes of the assembled plugin. */
  size: number;
  /** Libraries inlined by `# @rune-include` lines (empty for a self-contained file). */
  includes: readonly PluginInclude[];
  /** Why the plugin could not be assembled (PLUGIN_INCLUDE_FAILED), when it could not. */
  assemblyError: RuneError | null;
  /** True when some execute bit is set on the file (not required of built-in plugins). */
  executable: boolean;
}

/** A resolved action: the winning candidate plus everything it shadows. */
export interface RegisteredPlugin extends PluginCandidate {
  manifest: MrsManifest;
  /** Candidates with the same action name from lower-precedence directories. */
  shadowed: PluginCandidate[];
}

/** Options of {@link discoverPlugins}. */
export interface PluginRegistryOptions {
  /** Directories in precedence order (first wins). See {@link defaultPluginSources}. */
  sources: readonly PluginSourceDir[];
  /** Receives warnings (skipped files, shadowed plugins, orphan manifests). */
  onWarning?: (message: string) => void;
}

/** The registry built by discovery. */
export interface PluginRegistry {
  /** Directories searched, in precedence order. */
  readonly sources: readonly PluginSourceDir[];
  /** Every action name, sorted. */
  actions(): string[];
  /** Every candidate of an action in precedence order (winner first). Empty when unknown. */
  candidates(action: string): PluginCandidate[];
  /**
   * The plugin that runs for `action`. Throws INVALID_ACTION_NAME, UNKNOWN_ACTION (with
   * suggestions), INVALID_MANIFEST, PLUGIN_INCLUDE_FAILED or PLUGIN_NOT_EXECUTABLE.
   */
  resolve(action: string): RegisteredPlugin;
  /** Warnings collected during discovery. */
  readonly warnings: readonly string[];
}

/** The built-in plugin directory: `dist/builtin-plugins` next to the compiled core. */
export function builtinPluginDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/plugins/plugin-registry.js → dist/builtin-plugins; src/plugins (tests) → dist/builtin-plugins
  return join(here, '..', '..', 'dist', 'builtin-plugins');
}

/** The standard plugin directories: built-in, `<dataHome>/rune/plugins`, then `pluginDir`. */
export function defaultPluginSources(options: {
  dataHome: string;
  pluginDir?: string;
  builtinDir?: string;
}): PluginSourceDir[] {
  const sources: PluginSourceDir[] = [
    { kind: 'builtin', dir: options.builtinDir ?? builtinPluginDir() },
    { kind: 'user', dir: join(options.dataHome, 'rune', 'plugins') },
  ];
  if (options.pluginDir !== undefined) sources.push({ kind: 'plugin_dir', dir: options.pluginDir });
  return sources;
}

const MANIFEST_SUFFIX = '.manifest.json';
const PLUGIN_SUFFIX = '.sh';
/** Files a plugin directory may hold that are not plugins (checksums, docs), skipped silently. */
const IGNORED_FILES = new Set(['SHA256SUMS', 'README.md', 'README']);

/** The manifest RUNE infers for a plugin file without one (MRS rules, from @rune/protocol). */
export function inferManifest(fileName: string): MrsManifest {
  const inferred = inferMrsManifest(fileName);
  if (!inferred.ok) throw inferred.error;
  return inferred.value;
}

function readDirectory(source: PluginSourceDir): Dirent[] {
  try {
    return readdirSync(source.dir, { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    throw new RuneError(
      'PLUGIN_DIR_UNREADABLE',
      `plugin directory ${source.dir} cannot be read (${code ?? 'error'})`,
      {
        cause: error,
        source: { component: 'rune-core' },
        details: { dir: source.dir, kind: source.kind, errno: code },
      },
    );
  }
}

function loadManifest(
  path: string,
  action: string,
  validated?: ValidatedManifest,
): { manifest: MrsManifest | null; error: RuneError | null } {
  const invalid = (message: string, details: Record<string, unknown> = {}) => ({
    manifest: null,
    error: new RuneError('INVALID_MANIFEST', `${path}: ${message}`, {
      source: { component: 'rune-core', action },
      details: { file: path, ...details },
    }),
  });
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    return invalid(`cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  // A built-in manifest validated at build time and unchanged since: no need to validate again.
  const parsed =
    validated !== undefined && sha256Hex(bytes) === validated.sha256
      ? { ok: true as const, value: validated.manifest }
      : parseMrsManifest(bytes);
  if (!parsed.ok)
    return invalid(parsed.error.message, {
      cause_code: parsed.error.code,
      ...parsed.error.details,
    });
  if (parsed.value.name !== action) {
    return invalid(`declares name "${parsed.value.name}" but the file is named for "${action}"`);
  }
  return { manifest: parsed.value, error: null };
}

function scanDirectory(
  source: PluginSourceDir,
  warn: (message: string) => void,
): PluginCandidate[] {
  const entries = readDirectory(source);
  const validated =
    source.kind === 'builtin' && entries.some((entry) => entry.name === VALIDATED_MANIFESTS_FILE)
      ? readValidatedManifests(source.dir)
      : undefined;
  const names = new Set(entries.filter((entry) => !entry.isDirectory()).map((entry) => entry.name));
  const candidates: PluginCandidate[] = [];
  const usedFiles = new Set<string>();

  // Manifests first: they may name an entrypoint other than <action>.sh.
  const manifests = new Map<
    string,
    { path: string; manifest: MrsManifest | null; error: RuneError | null }
  >();
  for (const name of names) {
    if (!name.endsWith(MANIFEST_SUFFIX)) continue;
    const action = name.slice(0, -MANIFEST_SUFFIX.length);
    usedFiles.add(name);
    if (!isActionName(action)) {
      warn(`${join(source.dir, name)}: skipped, "${action}" is not a valid action name`);
      continue;
    }
    manifests.set(action, {
      path: join(source.dir, name),
      ...loadManifest(join(source.dir, name), action, validated?.get(name)),
    });
  }

  const pluginFiles = new Map<string, string>();
  for (const [action, entry] of manifests) {
    const entrypoint = entry.manifest?.entrypoint ?? `${action}${PLUGIN_SUFFIX}`;
    if (!names.has(entrypoint)) {
      warn(`${entry.path}: skipped, its plugin file ${entrypoint} is missing`);
      continue;
    }
    pluginFiles.set(action, entrypoint);
    usedFiles.add(entrypoint);
  }
  for (const name of names) {
    if (usedFiles.has(name) || name.startsWith('.') || IGNORED_FILES.has(name)) continue;
    if (!name.endsWith(PLUGIN_SUFFIX)) {
      warn(`${join(source.dir, name)}: skipped, plugin files are named <action>${PLUGIN_SUFFIX}`);
      continue;
    }
    const action = name.slice(0, -PLUGIN_SUFFIX.length);
    if (!isActionName(action)) {
      warn(`${join(source.dir, name)}: skipped, "${action}" is not a valid action name`);
      continue;
    }
    pluginFiles.set(action, name);
  }

  for (const [action, fileName] of pluginFiles) {
    const path = join(source.dir, fileName);
    let content: Buffer;
    let mode: number;
    try {
      const stats = statSync(path);
      if (!stats.isFile()) {
        warn(`${path}: skipped, not a regular file`);
        continue;
      }
      mode = stats.mode;
      content = readFileSync(path);
    } catch (error) {
      warn(
        `${path}: skipped, cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
      continue;
    }
    const entry = manifests.get(action);
    const manifest = entry === undefined ? inferManifest(fileName) : entry.manifest;
    let assembled: Buffer = content;
    let includes: readonly PluginInclude[] = [];
    let assemblyError: RuneError | null = null;
    try {
      const result = assemblePluginSource(content, path);
      assembled = result.content;
      includes = result.includes;
    } catch (error) {
      assemblyError = RuneError.from(error, 'PLUGIN_INCLUDE_FAILED', {
        source: { component: 'rune-core', action },
      });
    }
    candidates.push({
      action,
      path,
      manifestPath: entry?.path ?? null,
      source: source.kind,
      manifest,
      manifestError: entry?.error ?? null,
      sha256: sha256Hex(assembled),
      size: assembled.byteLength,
      includes,
      assemblyError,
      executable: (mode & (constants.S_IXUSR | constants.S_IXGRP | constants.S_IXOTH)) !== 0,
    });
  }
  return candidates;
}

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  const previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = previous[0]!;
    previous[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = previous[j]!;
      previous[j] = Math.min(
        above + 1,
        previous[j - 1]! + 1,
        diagonal + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      diagonal = above;
    }
  }
  return previous[b.length]!;
}

/** Known actions close to `action` (edit distance ≤ 3 or a shared prefix/substring). */
export function suggestActions(action: string, known: readonly string[]): string[] {
  return known
    .map((name) => ({ name, distance: editDistance(action, name) }))
    .filter(
      ({ name, distance }) =>
        distance <= Math.max(2, Math.floor(name.length / 3)) ||
        (action.length >= 3 && (name.includes(action) || action.includes(name))),
    )
    .sort((a, b) => a.distance - b.distance || a.name.localeCompare(b.name))
    .slice(0, 3)
    .map(({ name }) => name);
}

/**
 * Discovers plugins in `options.sources`. Throws PLUGIN_DIR_UNREADABLE when a directory exists
 * but cannot be listed (a missing directory is simply empty).
 */
export function discoverPlugins(options: PluginRegistryOptions): PluginRegistry {
  const warnings: string[] = [];
  const warn = (message: string): void => {
    warnings.push(message);
    options.onWarning?.(message);
  };
  const byAction = new Map<string, PluginCandidate[]>();
  for (const source of options.sources) {
    for (const candidate of scanDirectory(source, warn)) {
      const list = byAction.get(candidate.action) ?? [];
      list.push(candidate);
      byAction.set(candidate.action, list);
    }
  }
  for (const [action, list] of byAction) {
    if (list.length > 1) {
      warn(
        `action ${action}: ${list[0]!.path} (${list[0]!.source}) shadows ${list
          .slice(1)
          .map((candidate) => candidate.path)
          .join(', ')}`,
      );
    }
  }
  const actions = [...byAction.keys()].sort();

  const registry: PluginRegistry = {
    sources: options.sources,
    warnings,
    actions: () => [...actions],
    candidates: (action) => [...(byAction.get(action) ?? [])],
    resolve(action) {
      const source = { component: 'rune-core' };
      if (!isActionName(action)) {
        throw new RuneError(
          'INVALID_ACTION_NAME',
          `"${String(action).slice(0, 80)}" is not a valid action name (lowercase letters, digits and dashes; at most 64 characters)`,
          { source, details: { action: String(action).slice(0, 256) } },
        );
      }
      const list = byAction.get(action);
      const winner = list?.[0];
      if (list === undefined || winner === undefined) {
        const suggestions = suggestActions(action, actions);
        throw new RuneError(
          'UNKNOWN_ACTION',
          `no plugin is registered for action "${action}"${
            suggestions.length > 0 ? `; did you mean ${suggestions.join(', ')}?` : ''
          }`,
          { source: { ...source, action }, details: { action, suggestions } },
        );
      }
      if (winner.manifest === null) {
        throw (
          winner.manifestError ??
          new RuneError('INVALID_MANIFEST', `${winner.manifestPath}: invalid`, { source })
        );
      }
      if (winner.assemblyError !== null) throw winner.assemblyError;
      if (!winner.executable && winner.source !== 'builtin') {
        throw new RuneError(
          'PLUGIN_NOT_EXECUTABLE',
          `plugin file ${winner.path} is not executable; RUNE runs plugins directly (chmod +x it)`,
          { source: { ...source, action }, details: { path: winner.path } },
        );
      }
      return { ...winner, manifest: winner.manifest, shadowed: list.slice(1) };
    },
  };
  discoveryStamps.set(registry, {
    dirs: options.sources.map((source) => ({ path: source.dir, stamp: fileStamp(source.dir) })),
    byAction: new Map(
      [...byAction].map(([action, list]) => [
        action,
        list.flatMap(candidateFiles).map((path) => ({ path, stamp: fileStamp(path) })),
      ]),
    ),
  });
  return registry;
}

/**
 * What identifies one version of a file without reading it: inode, size, mtime and ctime (ctime
 * also moves when mtime is set back, and on a rename over the file), or `missing`.
 */
function fileStamp(path: string): string {
  try {
    const stats = statSync(path, { bigint: true });
    return `${stats.ino}:${stats.size}:${stats.mtimeNs}:${stats.ctimeNs}`;
  } catch {
    return 'missing';
  }
}

/** The files a candidate's sha256 and manifest come from: the plugin, its manifest, its includes. */
function candidateFiles(candidate: PluginCandidate): string[] {
  return [
    candidate.path,
    ...(candidate.manifestPath === null ? [] : [candidate.manifestPath]),
    ...candidate.includes.map((include) => include.path),
  ];
}

interface StampedFile {
  path: string;
  stamp: string;
}

/** The file stamps each registry was discovered from (kept beside it, not in its public shape). */
const discoveryStamps = new WeakMap<
  PluginRegistry,
  { dirs: StampedFile[]; byAction: Map<string, StampedFile[]> }
>();

/**
 * Whether a registry still describes the files on disk: no plugin directory gained or lost an
 * entry (its stamp moved) and, for `action`, none of the files its candidates were hashed from
 * (plugin, manifest, included libraries) changed. A few `stat` calls, no reading or hashing, so
 * a long-lived process (`rune serve`) can ask before every plan and rediscover when it is false:
 * a plugin edited under a running server then plans with its new sha256, and an approval bound
 * to the old one is refused. A registry this module did not build is taken as current.
 */
export function pluginRegistryIsCurrent(registry: PluginRegistry, action?: string): boolean {
  const stamps = discoveryStamps.get(registry);
  if (stamps === undefined) return true;
  const unchanged = (file: StampedFile): boolean => fileStamp(file.path) === file.stamp;
  if (!stamps.dirs.every(unchanged)) return false;
  if (action === undefined) return true;
  return (stamps.byAction.get(action) ?? []).every(unchanged);
}
