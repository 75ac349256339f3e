/**
 * Loading the effective configuration.
 *
 * Layers, later wins, key by key: built-in defaults → /etc/rune/config.toml →
 * $XDG_CONFIG_HOME/rune/config.toml → ./rune.toml → the file named by `--config` (or
 * `RUNE_CONFIG` when no flag is given) → `RUNE_<SECTION>_<KEY>` environment variables → flags.
 * Every layer is validated on its own against {@link ConfigFileSchema}, so an error names the
 * file (or variable) and the key path that is wrong. Every effective value remembers where it
 * came from, which `rune config show` prints.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listViolations, RuneError } from '@rune/protocol';
import { parse as parseToml, TomlError } from 'smol-toml';
import {
  CONFIG_SECTIONS,
  type ConfigFile,
  ConfigFileSchema,
  type ConfigSectionName,
  DEFAULT_CONFIG_VALUES,
  LOCAL_PATH_KEYS,
  LOCAL_PATH_LIST_KEYS,
  type RuneConfig,
} from './config-schema.js';
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
  /** Values from command-line flags (highest precedence). */
  overrides?: ConfigFile;
  /** Replaces the system file path (tests). */
  systemConfigPath?: string;
  /** File reader; returns undefined when the file does not exist. Injectable for tests. */
  readFile?: (path: string) => string | undefined;
}

/** The effective configuration and the source of every value. */
export interface LoadedConfig {
  config: RuneConfig;
  /** `section.key` (and `ssm.instances.<name>`) → source of the effective value. */
  sources: Record<string, ConfigSource>;
  /** Config files that were found and read, in merge order. */
  files: string[];
  /** The XDG directories the defaults were computed from. */
  dirs: XdgDirs;
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

/** Validates one layer; an error names the file and every offending key path. */
function validateLayer(value: unknown, origin: string): ConfigFile {
  const violations = listViolations(ConfigFileSchema, value);
  if (violations.length === 0) return value as ConfigFile;
  const items = violations.map((violation) => {
    const keyPath = pointerToKeyPath(violation.pointer);
    const unknownKey = /unexpected property/i.test(violation.message);
    return {
      key: keyPath === '' ? '(root)' : keyPath,
      message: unknownKey ? 'unknown key' : violation.message,
    };
  });
  // TypeBox reports a union mismatch twice (member and union); keep one per key.
  const unique = items.filter(
    (item, index) => items.findIndex((other) => other.key === item.key) === index,
  );
  const first = unique[0]!;
  return fail(
    `${origin}: ${first.key}: ${first.message}${unique.length > 1 ? ` (and ${unique.length - 1} more)` : ''}`,
    { file: origin, key: first.key, violations: unique },
  );
}

function fail(message: string, details: Record<string, unknown>): never {
  throw new RuneError('INVALID_CONFIG', message, {
    source: { component: 'rune-core' },
    details,
  });
}

function parseFile(path: string, text: string): ConfigFile {
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
  return validateLayer(parsed, path);
}

type Leaf = { section: ConfigSectionName; key: string; value: unknown };

function* leaves(layer: ConfigFile): Generator<Leaf> {
  for (const section of CONFIG_SECTIONS) {
    const table = layer[section] as Record<string, unknown> | undefined;
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

/** Reads `RUNE_<SECTION>_<KEY>` variables into a layer, coercing by the schema type. */
function envLayer(env: Readonly<Record<string, string | undefined>>): {
  layer: ConfigFile;
  names: Map<string, string>;
} {
  const layer: Record<string, Record<string, unknown>> = {};
  const names = new Map<string, string>();
  for (const section of CONFIG_SECTIONS) {
    const sectionSchema = ConfigFileSchema.properties[section];
    const properties = (
      sectionSchema as unknown as { properties: Record<string, { type?: string }> }
    ).properties;
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
      validateLayer({ [section]: { [key]: layer[section]?.[key] } }, name);
    } catch (error) {
      throw RuneError.from(error).withContext({ details: { variable: name } });
    }
  }
  return { layer: layer as ConfigFile, names };
}

/** The audit log of a loaded configuration: `[core] audit_log` (default {@link defaultAuditLogPath}). */
export function resolveAuditLogPath(loaded: LoadedConfig): string {
  return loaded.config.core.audit_log ?? defaultAuditLogPath(loaded.dirs);
}

/** The audit signing key of a loaded configuration: `[audit] key_file` (default {@link defaultAuditKeyFile}). */
export function resolveAuditKeyFile(loaded: LoadedConfig): string {
  return loaded.config.audit.key_file ?? defaultAuditKeyFile(loaded.dirs);
}

/**
 * Loads, validates and merges the configuration. Throws `RuneError` INVALID_CONFIG naming the
 * file and key for an unreadable file, invalid TOML, an unknown key or a wrong type.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const dirs = resolveXdgDirs(options);
  const cwd = options.cwd ?? process.cwd();
  const read = options.readFile ?? defaultReadFile;

  const config: Record<string, Record<string, unknown>> = {};
  const sources: Record<string, ConfigSource> = {};
  for (const section of CONFIG_SECTIONS) config[section] = {};

  const apply = (layer: ConfigFile, source: (keyPath: string) => ConfigSource): void => {
    for (const { section, key, value } of leaves(layer)) {
      const target = config[section]!;
      if (section === 'ssm' && key === 'instances') {
        const instances = { ...(target.instances as Record<string, string> | undefined) };
        for (const [name, id] of Object.entries(value as Record<string, string>)) {
          instances[name] = id;
          sources[`ssm.instances.${name}`] = source(`ssm.instances`);
        }
        target.instances = instances;
        sources['ssm.instances'] = source('ssm.instances');
        continue;
      }
      target[key] = structuredClone(value);
      sources[`${section}.${key}`] = source(`${section}.${key}`);
    }
  };

  apply(DEFAULT_CONFIG_VALUES, () => 'default');
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
    apply(parseFile(path, text), () => path);
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
    apply(parseFile(path, text), () => path);
    files.push(path);
  }

  const fromEnv = envLayer(env);
  apply(fromEnv.layer, (keyPath) => `env:${fromEnv.names.get(keyPath) ?? keyPath}`);

  // An empty layer is valid by construction: skipping it spares compiling the schema validator.
  if (options.overrides !== undefined && Object.keys(options.overrides).length > 0) {
    apply(validateLayer(options.overrides, 'command-line flags'), () => 'flag');
  }

  for (const keyPath of LOCAL_PATH_KEYS) {
    const [section, key] = keyPath.split('.') as [string, string];
    const value = config[section]?.[key];
    if (typeof value === 'string') config[section]![key] = expandLocalPath(value, dirs.home, cwd);
  }
  for (const keyPath of LOCAL_PATH_LIST_KEYS) {
    const [section, key] = keyPath.split('.') as [string, string];
    const value = config[section]?.[key];
    if (Array.isArray(value)) {
      config[section]![key] = value.map((item: string) => expandLocalPath(item, dirs.home, cwd));
    }
  }

  return { config: config as RuneConfig, sources, files, dirs };
}

/** Lists every effective value with its source, in schema order (for `rune config show`). */
export function describeConfig(
  loaded: LoadedConfig,
): { key: string; value: unknown; source: ConfigSource | 'unset' }[] {
  const rows: { key: string; value: unknown; source: ConfigSource | 'unset' }[] = [];
  for (const section of CONFIG_SECTIONS) {
    const sectionSchema = ConfigFileSchema.properties[section] as unknown as {
      properties: Record<string, unknown>;
    };
    const values = loaded.config[section] as Record<string, unknown>;
    for (const key of Object.keys(sectionSchema.properties)) {
      const keyPath = `${section}.${key}`;
      rows.push({
        key: keyPath,
        value: values[key] ?? null,
        source: loaded.sources[keyPath] ?? 'unset',
      });
    }
  }
  return rows;
}
