/**
 * Loading the effective configuration.
 *
 * Layers, later wins, key by key: built-in defaults → /etc/rune/config.toml →
 * $XDG_CONFIG_HOME/rune/config.toml → ./rune.toml → the file named by `--config` (or
 * `RUNE_CONFIG` when no flag is given) → `RUNE_<SECTION>_<KEY>` environment variables → flags.
 * Every layer is validated on its own against core's sections plus the sections of the section
 * modules the caller passes (`transportModules`, `configModules`: `@rune/transport`'s
 * `ConfigSectionModule`), so an error names the file, line and column (or variable) and the key
 * path that is wrong, an unknown key gets a "did you mean", and a section no module owns is an
 * unknown key. Core knows no key of a module's section. Every effective value remembers where it
 * came from, which `rune config show` prints.
 *
 * Core's sections come out resolved (every default filled, from `CONFIG_DEFAULTS`); a module's
 * section comes out as written (merged, validated, its `localPathKeys` expanded, no default
 * filled): the module's package applies its defaults (a transport in `fromConfig`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listViolations, RuneError } from '@rune/protocol';
import type { ConfigSectionModule, TransportConfigContext, TransportModule } from '@rune/transport';
import type { TObject } from '@sinclair/typebox';
import { parse as parseToml, TomlError } from 'smol-toml';
import { suggestNames } from '../inventory/did-you-mean.js';
import { localTransportModule } from '../transport/local-transport-module.js';
import {
  CONFIG_DEFAULTS,
  CORE_CONFIG_SECTIONS,
  type ConfigFile,
  configFileSchema,
  LOCAL_PATH_KEYS,
  type ResolvedConfig,
} from './config-schema.js';
import { locateTomlKey } from './toml-locate.js';
import {
  defaultAuditKeyFile,
  defaultAuditLogPath,
  type EnvironmentOptions,
  expandLocalPath,
  resolveXdgDirs,
  runeStateDir,
  type XdgDirs,
} from './xdg-dirs.js';

/** The system-wide config file. */
export const SYSTEM_CONFIG_PATH = '/etc/rune/config.toml';
/** The per-directory config file name. */
export const LOCAL_CONFIG_FILE_NAME = 'rune.toml';

/**
 * Where a value came from: `default`, `flag`, `env:<VARIABLE>`, or the absolute path of the
 * config file that set it.
 */
export type ConfigSource = string;

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions extends EnvironmentOptions {
  /** An explicit config file (`--config`); overrides `RUNE_CONFIG`. It must exist. */
  configFile?: string;
  /** Values from command-line flags (highest precedence); a module's section too (`server`). */
  overrides?: ConfigOverrides;
  /** Replaces the system file path (tests). */
  systemConfigPath?: string;
  /** File reader; returns undefined when the file does not exist. Injectable for tests. */
  readFile?: (path: string) => string | undefined;
  /**
   * The transports whose sections a config may have (`[ssh]` from `@rune/transport-ssh/config`,
   * ...). The local transport's module is always included. A section of a transport not listed
   * is an unknown key.
   */
  transportModules?: readonly TransportModule[];
  /**
   * Sections owned by other packages (`[server]` from `@rune/server/config`). A section of a
   * module not listed is an unknown key.
   */
  configModules?: readonly ConfigSectionModule[];
}

/** Flag values over core's sections and any module's section, e.g. `{ server: { listen } }`. */
export type ConfigOverrides = ConfigFile & {
  readonly [section: string]: Readonly<Record<string, unknown>> | undefined;
};

/** The effective configuration and the source of every value. */
export interface LoadedConfig {
  /** Core's sections, every default filled in. */
  config: ResolvedConfig;
  /** Each transport's section as written (merged over the layers, validated, no defaults). */
  transportSections: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** The transport modules the configuration was validated with (the local one first). */
  transportModules: readonly TransportModule[];
  /** The other section modules the configuration was validated with (`[server]`, ...). */
  configModules: readonly ConfigSectionModule[];
  /**
   * Every module's section as written (merged over the layers, validated, `localPathKeys`
   * expanded, no defaults), transports' and others' alike; a section nobody set is absent.
   */
  sections: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** `section.key` (and `section.key.<entry>` for maps) → source of the effective value. */
  sources: Record<string, ConfigSource>;
  /** Config files that were found and read, in merge order. */
  files: string[];
  /** The XDG directories the defaults were computed from. */
  dirs: XdgDirs;
  /** The working directory relative paths resolve against. */
  cwd: string;
}

function defaultReadFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new RuneError('INVALID_CONFIG', `cannot read config file ${path}: ${code ?? error}`, {
      cause: error,
      source: { component: 'rune-core' },
      details: { file: path },
    });
  }
}

const pointerToKeyPath = (pointer: string): string =>
  pointer.replace(/^\//, '').split('/').join('.').replaceAll('~1', '/').replaceAll('~0', '~');

type Layer = Record<string, Record<string, unknown> | undefined>;

/** The schema a JSON pointer's segments lead to inside an object schema, if any. */
function schemaAt(schema: unknown, segments: readonly string[]): unknown {
  let current = schema as
    | { properties?: Record<string, unknown>; items?: unknown; additionalProperties?: unknown }
    | undefined;
  for (const segment of segments) {
    if (current === undefined) return undefined;
    const next: unknown =
      current.properties?.[segment] ??
      (/^\d+$/.test(segment) && current.items !== undefined ? current.items : undefined) ??
      (typeof current.additionalProperties === 'object' ? current.additionalProperties : undefined);
    current = next as typeof current;
  }
  return current;
}

/** Known keys close to an unknown one, as full key paths (`server.listen`). */
function suggestKeys(schema: TObject, segments: readonly string[]): string[] {
  const parent = schemaAt(schema, segments.slice(0, -1)) as
    | { properties?: Record<string, unknown> }
    | undefined;
  const known = Object.keys(parent?.properties ?? {});
  const prefix = segments.slice(0, -1).join('.');
  return suggestNames(segments.at(-1) ?? '', known).map((key) =>
    prefix === '' ? key : `${prefix}.${key}`,
  );
}

/**
 * Validates one layer; an error names the file (with line and column when the layer's TOML text
 * is given), every offending key path, and for an unknown key the known keys it is close to.
 */
function validateLayer(schema: TObject, value: unknown, origin: string, text?: string): Layer {
  const violations = listViolations(schema, value);
  if (violations.length === 0) return value as Layer;
  const items = violations.map((violation) => {
    const keyPath = pointerToKeyPath(violation.pointer);
    const segments = keyPath === '' ? [] : keyPath.split('.');
    const unknownKey = /unexpected property/i.test(violation.message);
    const suggestions = unknownKey ? suggestKeys(schema, segments) : [];
    const position = text === undefined ? undefined : locateTomlKey(text, segments);
    return {
      key: keyPath === '' ? '(root)' : keyPath,
      message: unknownKey
        ? `unknown key${suggestions.length > 0 ? `; did you mean ${suggestions.join(' or ')}?` : ''}`
        : violation.message,
      ...(position === undefined ? {} : position),
      ...(suggestions.length > 0 ? { suggestions } : {}),
    };
  });
  // TypeBox reports a union mismatch twice (member and union); keep one per key.
  const unique = items.filter(
    (item, index) => items.findIndex((other) => other.key === item.key) === index,
  );
  const first = unique[0]!;
  const where = first.line === undefined ? origin : `${origin}:${first.line}:${first.column}`;
  return fail(
    `${where}: ${first.key}: ${first.message}${unique.length > 1 ? ` (and ${unique.length - 1} more)` : ''}`,
    {
      file: origin,
      key: first.key,
      ...(first.line === undefined ? {} : { line: first.line, column: first.column }),
      violations: unique,
    },
  );
}

function fail(message: string, details: Record<string, unknown>): never {
  throw new RuneError('INVALID_CONFIG', message, {
    source: { component: 'rune-core' },
    details,
  });
}

function parseFile(schema: TObject, path: string, text: string): Layer {
  let parsed: unknown;
  try {
    parsed = parseToml(text);
  } catch (error) {
    if (error instanceof TomlError) {
      fail(`${path}: not valid TOML at line ${error.line}, column ${error.column}`, {
        file: path,
        line: error.line,
        column: error.column,
      });
    }
    fail(`${path}: not valid TOML`, { file: path });
  }
  return validateLayer(schema, parsed, path, text);
}

type Leaf = { section: string; key: string; value: unknown };

function* leaves(layer: Layer, sections: readonly string[]): Generator<Leaf> {
  for (const section of sections) {
    const table = layer[section];
    if (table === undefined) continue;
    for (const [key, value] of Object.entries(table)) {
      if (value !== undefined) yield { section, key, value };
    }
  }
}

/** Environment variable that overrides `section.key`: `RUNE_EXECUTION_CONCURRENCY`. */
export function configEnvName(section: string, key: string): string {
  return `RUNE_${section}_${key}`.toUpperCase();
}

/** The key schemas of one section of a composed config schema. */
function sectionProperties(schema: TObject, section: string): Record<string, { type?: string }> {
  const sectionSchema = schema.properties[section] as unknown as
    | { properties?: Record<string, { type?: string }> }
    | undefined;
  return sectionSchema?.properties ?? {};
}

/** Reads `RUNE_<SECTION>_<KEY>` variables into a layer, coercing by the schema type. */
function envLayer(
  schema: TObject,
  sections: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): {
  layer: Layer;
  names: Map<string, string>;
} {
  const layer: Record<string, Record<string, unknown>> = {};
  const names = new Map<string, string>();
  for (const section of sections) {
    const properties = sectionProperties(schema, section);
    for (const [key, schema] of Object.entries(properties)) {
      const name = configEnvName(section, key);
      const raw = env[name];
      if (raw === undefined || schema.type === 'object') continue;
      let value: unknown = raw;
      if (schema.type === 'integer' || schema.type === 'number') {
        value = /^-?\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : raw;
      } else if (schema.type === 'boolean') {
        value = raw === 'true' ? true : raw === 'false' ? false : raw;
      } else if (schema.type === 'array') {
        value = raw === '' ? [] : raw.split(',').map((part) => part.trim());
      }
      layer[section] ??= {};
      layer[section][key] = value;
      names.set(`${section}.${key}`, name);
    }
  }
  for (const [keyPath, name] of names) {
    try {
      const [section, key] = keyPath.split('.') as [string, string];
      validateLayer(schema, { [section]: { [key]: layer[section]?.[key] } }, name);
    } catch (error) {
      throw RuneError.from(error).withContext({ details: { variable: name } });
    }
  }
  return { layer, names };
}

/** Composed schemas by module lists, so a validator is compiled once per pair of lists. */
const composedSchemas = new WeakMap<
  readonly TransportModule[],
  WeakMap<readonly ConfigSectionModule[], TObject>
>();

const LOCAL_ONLY: readonly TransportModule[] = [localTransportModule];
const NO_MODULES: readonly ConfigSectionModule[] = [];

function modulesOf(options: LoadConfigOptions): readonly TransportModule[] {
  const given = options.transportModules;
  if (given === undefined || given.length === 0) return LOCAL_ONLY;
  return given.some((module) => module.name === localTransportModule.name)
    ? given
    : [localTransportModule, ...given];
}

function schemaFor(
  modules: readonly ConfigSectionModule[],
  transportKey: readonly TransportModule[],
  configKey: readonly ConfigSectionModule[],
): TObject {
  let byConfig = composedSchemas.get(transportKey);
  if (byConfig === undefined) {
    byConfig = new WeakMap();
    composedSchemas.set(transportKey, byConfig);
  }
  let schema = byConfig.get(configKey);
  if (schema === undefined) {
    const names = new Set<string>(CORE_CONFIG_SECTIONS);
    for (const module of modules) {
      if (names.has(module.name)) {
        throw new RuneError(
          'INVALID_CONFIG',
          `two config sections are named [${module.name}]: a config module cannot own a section core or another module owns`,
          { source: { component: 'rune-core' }, details: { section: module.name } },
        );
      }
      names.add(module.name);
    }
    schema = configFileSchema(modules);
    byConfig.set(configKey, schema);
  }
  return schema;
}

/** A URL (`postgres://...`): a path key's value left as written by the local-path expansion. */
const URL_VALUE = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * Loads, validates and merges the configuration. Throws `RuneError` INVALID_CONFIG naming the
 * file and key for an unreadable file, invalid TOML, an unknown key or a wrong type.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const dirs = resolveXdgDirs(options);
  const cwd = options.cwd ?? process.cwd();
  const read = options.readFile ?? defaultReadFile;
  const modules = modulesOf(options);
  const configModules = options.configModules ?? NO_MODULES;
  const allModules: readonly ConfigSectionModule[] = [...modules, ...configModules];
  const schema = schemaFor(allModules, options.transportModules ?? LOCAL_ONLY, configModules);
  const sections = [...CORE_CONFIG_SECTIONS, ...allModules.map((module) => module.name)];

  const config: Record<string, Record<string, unknown>> = {};
  const sources: Record<string, ConfigSource> = {};
  for (const section of sections) config[section] = {};

  const apply = (layer: Layer, source: (keyPath: string) => ConfigSource): void => {
    for (const { section, key, value } of leaves(layer, sections)) {
      const target = config[section]!;
      const keyPath = `${section}.${key}`;
      if (sectionProperties(schema, section)[key]?.type === 'object') {
        // A map (`[ssm.instances]`): merged entry by entry, each entry with its own source.
        const merged = { ...(target[key] as Record<string, unknown> | undefined) };
        for (const [name, entry] of Object.entries(value as Record<string, unknown>)) {
          merged[name] = structuredClone(entry);
          sources[`${keyPath}.${name}`] = source(keyPath);
        }
        target[key] = merged;
        sources[keyPath] = source(keyPath);
        continue;
      }
      target[key] = structuredClone(value);
      sources[keyPath] = source(keyPath);
    }
  };

  apply(CONFIG_DEFAULTS, () => 'default');
  apply(
    {
      core: {
        audit_log: defaultAuditLogPath(dirs),
        artifact_dir: join(runeStateDir(dirs), 'artifacts'),
      },
      audit: { key_file: defaultAuditKeyFile(dirs) },
    },
    () => 'default',
  );

  const files: string[] = [];
  const candidates = [
    options.systemConfigPath ?? SYSTEM_CONFIG_PATH,
    join(dirs.configHome, 'rune', 'config.toml'),
    join(cwd, LOCAL_CONFIG_FILE_NAME),
  ];
  for (const path of candidates) {
    const text = read(path);
    if (text === undefined) continue;
    apply(parseFile(schema, path, text), () => path);
    files.push(path);
  }

  const explicit = options.configFile ?? (env.RUNE_CONFIG === '' ? undefined : env.RUNE_CONFIG);
  if (explicit !== undefined) {
    const path = expandLocalPath(explicit, dirs.home, cwd);
    const text = read(path);
    if (text === undefined) {
      fail(`config file ${path} does not exist`, {
        file: path,
        from: options.configFile === undefined ? 'RUNE_CONFIG' : '--config',
      });
    }
    apply(parseFile(schema, path, text), () => path);
    files.push(path);
  }

  const fromEnv = envLayer(schema, sections, env);
  apply(fromEnv.layer, (keyPath) => `env:${fromEnv.names.get(keyPath) ?? keyPath}`);

  // An empty layer is valid by construction: skipping it spares compiling the schema validator.
  if (options.overrides !== undefined && Object.keys(options.overrides).length > 0) {
    apply(validateLayer(schema, options.overrides, 'command-line flags'), () => 'flag');
  }

  const pathKeys = [
    ...LOCAL_PATH_KEYS,
    ...configModules.flatMap((module) =>
      (module.localPathKeys ?? []).map((key) => `${module.name}.${key}`),
    ),
  ];
  for (const keyPath of pathKeys) {
    const [section, key] = keyPath.split('.') as [string, string];
    const value = config[section]?.[key];
    // A path key may take a URL instead (`[server] store = "postgres://..."`): left as written.
    if (typeof value === 'string' && !URL_VALUE.test(value)) {
      config[section]![key] = expandLocalPath(value, dirs.home, cwd);
    }
  }

  const moduleSections: Record<string, Record<string, unknown>> = {};
  for (const module of allModules) {
    const section = config[module.name]!;
    if (Object.keys(section).length > 0) moduleSections[module.name] = section;
    delete config[module.name];
  }
  const transportSections: Record<string, Record<string, unknown>> = {};
  for (const module of modules) {
    const section = moduleSections[module.name];
    if (section !== undefined) transportSections[module.name] = section;
  }
  return {
    config: config as unknown as ResolvedConfig,
    transportSections,
    transportModules: modules,
    configModules,
    sections: moduleSections,
    sources,
    files,
    dirs,
    cwd,
  };
}

/** The audit log of a loaded configuration (`[core] audit_log`). */
export function resolveAuditLogPath(loaded: LoadedConfig): string {
  return loaded.config.core.audit_log;
}

/** The audit signing key of a loaded configuration (`[audit] key_file`). */
export function resolveAuditKeyFile(loaded: LoadedConfig): string {
  return loaded.config.audit.key_file;
}

/**
 * The config file an error about a missing setting should name: the last file read (the one
 * with the highest precedence, e.g. `RUNE_CONFIG=./rune.toml`), else the user's config file.
 */
export function configFileToEdit(loaded: Pick<LoadedConfig, 'files' | 'dirs'>): string {
  return loaded.files.at(-1) ?? join(loaded.dirs.configHome, 'rune', 'config.toml');
}

/** Options of {@link transportConfigContext}. */
export interface TransportContextOptions {
  /** Environment the transports may read (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Whether the process may prompt on its terminal (default false). */
  interactive?: boolean;
  /** Wraps terminal prompts (see `TransportConfigContext.aroundPrompt`). */
  aroundPrompt?: <T>(ask: () => Promise<T>) => Promise<T>;
  /** Receives transport warnings. */
  onWarning?: (message: string) => void;
}

/** What a transport module's `fromConfig` gets besides its section, from a loaded configuration. */
export function transportConfigContext(
  loaded: LoadedConfig,
  options: TransportContextOptions = {},
): TransportConfigContext {
  const defaultUser = loaded.config.core.default_user;
  return {
    env: options.env ?? process.env,
    stateDir: runeStateDir(loaded.dirs),
    resolveLocalPath: (path) => expandLocalPath(path, loaded.dirs.home, loaded.cwd),
    shared: {
      ...(defaultUser === undefined ? {} : { defaultUser }),
      remotePluginDir: loaded.config.remote_plugins.base_dir,
    },
    configFile: configFileToEdit(loaded),
    interactive: options.interactive === true,
    ...(options.aroundPrompt === undefined ? {} : { aroundPrompt: options.aroundPrompt }),
    ...(options.onWarning === undefined ? {} : { onWarning: options.onWarning }),
  };
}

/** One row of {@link describeConfig}. */
export interface ConfigRow {
  /** `section.key`. */
  key: string;
  /** The effective value; for an unset transport key, the transport's documented default. */
  value: unknown;
  /** Where it came from: a file, `env:<VARIABLE>`, `flag`, `default`, or `unset`. */
  source: ConfigSource | 'unset';
}

/**
 * Lists every key of core's sections and of each module's section (transports, then the others)
 * with its effective value and source, in schema order (for `rune config show`). A module key
 * nobody set shows the default its module documents, with source `default`.
 */
export function describeConfig(loaded: LoadedConfig): ConfigRow[] {
  const rows: ConfigRow[] = [];
  const modules: readonly ConfigSectionModule[] = [
    ...loaded.transportModules,
    ...loaded.configModules,
  ];
  const schema = configFileSchema(modules);
  const resolved = loaded.config as unknown as Record<string, Record<string, unknown>>;
  for (const section of CORE_CONFIG_SECTIONS) {
    const values = resolved[section] ?? {};
    for (const key of Object.keys(sectionProperties(schema, section))) {
      const keyPath = `${section}.${key}`;
      rows.push({
        key: keyPath,
        value: values[key] ?? null,
        source: loaded.sources[keyPath] ?? 'unset',
      });
    }
  }
  for (const module of modules) {
    const written = loaded.sections[module.name] ?? {};
    const defaults = module.configDefaults as Record<string, unknown>;
    for (const key of Object.keys(sectionProperties(schema, module.name))) {
      const keyPath = `${module.name}.${key}`;
      const source = loaded.sources[keyPath];
      if (source !== undefined && written[key] !== undefined) {
        rows.push({ key: keyPath, value: written[key], source });
      } else if (defaults[key] !== undefined) {
        rows.push({ key: keyPath, value: defaults[key], source: 'default' });
      } else {
        rows.push({ key: keyPath, value: null, source: 'unset' });
      }
    }
  }
  return rows;
}
