/**
 * The schema of RUNE's TOML configuration and the one table of its defaults.
 *
 * Core owns five sections (`[core]`, `[execution]`, `[plugins]`, `[remote_plugins]`,
 * `[audit]`); every other section belongs to a package that brings its schema and defaults in a
 * `ConfigSectionModule` (`@rune/transport`): each transport (its `TransportModule`), and
 * `rune serve` (`[server]`, from `@rune/server/config`). {@link configFileSchema} composes them,
 * so a config file is validated against exactly the modules the caller loads. Every key is optional
 * in a file and unknown keys are rejected. {@link CONFIG_DEFAULTS} is the only place a default of
 * a core key is written; {@link ResolvedConfig} is the configuration with all of them filled in,
 * so nothing downstream re-defaults with `??`. Keys are snake_case, exactly as written in TOML.
 */
import type { DeployMode } from '@rune/protocol';
import type { ConfigSectionModule } from '@rune/transport';
import { type Static, type TObject, type TSchema, Type } from '@sinclair/typebox';
import { DEFAULT_AUDIT_LOCK_TIMEOUT_MS } from '../audit/audit-lock.js';
import { DEFAULT_CONCURRENCY, MAX_CONCURRENCY } from '../fleet/policy.js';
import { DEFAULT_TRANSPORT } from '../planning/targets.js';

const closed = <T extends Record<string, TSchema>>(properties: T) =>
  Type.Object(properties, { additionalProperties: false });
const opt = Type.Optional;
const path = (description: string) => Type.String({ minLength: 1, description });
const positiveInt = (description: string) => Type.Integer({ minimum: 1, description });

/** `[core]`: defaults of every run. */
export const CoreSectionSchema = closed({
  default_transport: opt(
    Type.String({
      pattern: '^[a-z][a-z0-9-]{0,31}$',
      description:
        'Transport for nodes that are not local (localhost/local/127.0.0.1 use "local").',
    }),
  ),
  default_user: opt(Type.String({ minLength: 1, description: 'Login user for remote nodes.' })),
  timeout_ms: opt(
    Type.Integer({ minimum: 1, maximum: 86_400_000, description: 'Per-node plugin timeout.' }),
  ),
  output: opt(
    Type.Union([Type.Literal('pretty'), Type.Literal('json'), Type.Literal('jsonl')], {
      description: 'Default output format of `rune run`.',
    }),
  ),
  audit_log: opt(path('Path of the JSONL audit log.')),
  inventory: opt(path('Path of the inventory file.')),
  artifact_dir: opt(path('Where fetched artifacts are stored.')),
});

/** `[execution]`: how plugins are run. */
export const ExecutionSectionSchema = closed({
  deploy_mode: opt(Type.Union([Type.Literal('ship'), Type.Literal('preinstalled')])),
  concurrency: opt(
    Type.Integer({ minimum: 1, maximum: MAX_CONCURRENCY, description: 'Nodes run at once.' }),
  ),
  max_stdout_bytes: opt(positiveInt('stdout capture limit (head).')),
  max_stderr_bytes: opt(positiveInt('stderr capture limit (tail).')),
  run_as: opt(Type.String({ minLength: 1, description: 'Run plugins as this user (sudo -n).' })),
  fetch_artifacts: opt(Type.Boolean({ description: 'Download artifacts plugins declare.' })),
});

/** `[plugins]`: where plugins are discovered on the control node. */
export const PluginsSectionSchema = closed({
  plugin_dir: opt(path('Directory of site plugins (lowest precedence).')),
});

/** `[remote_plugins]`: where preinstalled plugins live on nodes. */
export const RemotePluginsSectionSchema = closed({
  base_dir: opt(path('Directory of preinstalled plugins on the nodes.')),
});

/** `[audit]`: how the audit trail is signed and locked. */
export const AuditSectionSchema = closed({
  key_file: opt(
    path(
      'Ed25519 private key (PEM) that signs every audit record; created 0600 on first use. Must not be readable by group or others.',
    ),
  ),
  lock_timeout_ms: opt(
    Type.Integer({
      minimum: 1,
      maximum: 600_000,
      description: 'How long to wait for the audit lock file held by a live process.',
    }),
  ),
});

/** The sections core owns, in display order. */
export const CORE_CONFIG_SECTIONS = [
  'core',
  'execution',
  'plugins',
  'remote_plugins',
  'audit',
] as const;

/** One section core owns. */
export type CoreConfigSectionName = (typeof CORE_CONFIG_SECTIONS)[number];

/** The schemas of the sections core owns. */
export const CORE_SECTION_SCHEMAS = {
  core: CoreSectionSchema,
  execution: ExecutionSectionSchema,
  plugins: PluginsSectionSchema,
  remote_plugins: RemotePluginsSectionSchema,
  audit: AuditSectionSchema,
} as const satisfies Record<CoreConfigSectionName, TObject>;

/** What one TOML config file may contain of core's sections. Every key is optional. */
export const ConfigFileSchema = closed({
  core: opt(CoreSectionSchema),
  execution: opt(ExecutionSectionSchema),
  plugins: opt(PluginsSectionSchema),
  remote_plugins: opt(RemotePluginsSectionSchema),
  audit: opt(AuditSectionSchema),
});

/** Core's sections of one config file (or a partial override, e.g. from flags). */
export type ConfigFile = Static<typeof ConfigFileSchema>;

/**
 * The schema of a whole config file for the given section modules: core's sections plus one
 * section per module (`[ssh]` from the SSH transport module, `[server]` from @rune/server's, ...).
 * Any other section is an unknown key.
 */
export function configFileSchema(modules: readonly ConfigSectionModule[]): TObject {
  const properties: Record<string, TSchema> = {};
  for (const section of CORE_CONFIG_SECTIONS)
    properties[section] = opt(CORE_SECTION_SCHEMAS[section]);
  for (const module of modules) properties[module.name] = opt(module.configSchema);
  return closed(properties);
}

/** An output format of `rune run`. */
export type OutputFormat = 'pretty' | 'json' | 'jsonl';

/**
 * The effective configuration of core's sections, every default filled in (by `loadConfig`,
 * from {@link CONFIG_DEFAULTS} and the XDG directories). Keys without a default stay optional:
 * their absence means something (`timeout_ms`: the manifest decides; `inventory`: ad-hoc nodes
 * only; `default_user`: the transport decides; `run_as`: the login user).
 */
export interface ResolvedConfig {
  core: {
    default_transport: string;
    default_user?: string;
    timeout_ms?: number;
    output: OutputFormat;
    audit_log: string;
    inventory?: string;
    artifact_dir: string;
  };
  execution: {
    deploy_mode: DeployMode;
    concurrency: number;
    max_stdout_bytes: number;
    max_stderr_bytes: number;
    run_as?: string;
    fetch_artifacts: boolean;
  };
  plugins: { plugin_dir: string };
  remote_plugins: { base_dir: string };
  audit: { key_file: string; lock_timeout_ms: number };
}

/**
 * The defaults of core's keys that do not depend on the environment: the only place they are
 * written. The audit log, the artifact directory and the audit key default to paths under the
 * XDG state and config directories, filled in at load time.
 */
export const CONFIG_DEFAULTS = {
  core: { default_transport: DEFAULT_TRANSPORT, output: 'pretty' },
  execution: {
    deploy_mode: 'ship',
    concurrency: DEFAULT_CONCURRENCY,
    max_stdout_bytes: 1_048_576,
    max_stderr_bytes: 65_536,
    fetch_artifacts: false,
  },
  plugins: { plugin_dir: '/opt/rune/plugins' },
  remote_plugins: { base_dir: '/opt/rune/plugins' },
  audit: { lock_timeout_ms: DEFAULT_AUDIT_LOCK_TIMEOUT_MS },
} as const satisfies ConfigFile;

/** Keys holding control-node paths: `~` is expanded and relative paths resolve against the cwd. */
export const LOCAL_PATH_KEYS: readonly string[] = [
  'core.audit_log',
  'core.inventory',
  'core.artifact_dir',
  'audit.key_file',
  'plugins.plugin_dir',
];
