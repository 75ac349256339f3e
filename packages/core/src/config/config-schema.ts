/**
 * The schema of RUNE's TOML configuration. One TypeBox schema describes what a config *file* may
 * contain (every key optional, unknown keys rejected); {@link DEFAULT_CONFIG_VALUES} gives the
 * default of every key that has one. Keys are snake_case, exactly as written in TOML.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { MAX_CONCURRENCY } from '../fleet/policy.js';

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

/** `[ssh]`: options of the SSH transport. */
export const SshSectionSchema = closed({
  user: opt(Type.String({ minLength: 1 })),
  port: opt(Type.Integer({ minimum: 1, maximum: 65_535 })),
  identity_files: opt(Type.Array(Type.String({ minLength: 1 }))),
  known_hosts_files: opt(Type.Array(Type.String({ minLength: 1 }))),
  host_key_checking: opt(
    Type.Union([Type.Literal('strict'), Type.Literal('accept-new'), Type.Literal('off')]),
  ),
  connect_timeout_ms: opt(positiveInt('TCP + handshake timeout.')),
  keepalive_interval_ms: opt(Type.Integer({ minimum: 0 })),
  keepalive_count_max: opt(Type.Integer({ minimum: 0 })),
  use_agent: opt(Type.Boolean()),
  use_ssh_config: opt(Type.Boolean()),
  ssh_config_file: opt(Type.String({ minLength: 1 })),
  proxy_jump: opt(Type.String({ minLength: 1 })),
  max_sessions_per_connection: opt(positiveInt('Channels per connection.')),
  passphrase_env: opt(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' })),
  remote_cache_dir: opt(Type.String({ minLength: 1 })),
});

/** `[ssm]`: options of the AWS SSM transport. */
export const SsmSectionSchema = closed({
  region: opt(Type.String({ minLength: 1 })),
  profile: opt(Type.String({ minLength: 1 })),
  endpoint: opt(Type.String({ minLength: 1 })),
  output_s3_bucket: opt(Type.String({ minLength: 1 })),
  output_s3_prefix: opt(Type.String()),
  poll_interval_ms: opt(positiveInt('GetCommandInvocation poll interval.')),
  max_attempts: opt(positiveInt('SDK retry attempts.')),
  execution_timeout_s: opt(positiveInt('SSM executionTimeout.')),
  remote_cache_dir: opt(Type.String({ minLength: 1 })),
  instances: opt(Type.Record(Type.String(), Type.String({ pattern: '^m?i-[0-9a-f]{8,17}$' }))),
});

/**
 * `[server]`: `rune serve` (@rune/server). Durations are written like `--timeout` (`30s`, `90d`).
 * The keys are declared here so that one config file validates as a whole; @rune/server reads
 * and checks them (listener, TLS and proxy rules) when it starts.
 */
export const ServerSectionSchema = closed({
  listen: opt(
    Type.String({
      minLength: 1,
      maxLength: 300,
      description: 'host:port to listen on (default 127.0.0.1:8421; [::1]:8421 for IPv6).',
    }),
  ),
  store: opt(path('The run store: an SQLite file (default $XDG_STATE_HOME/rune/server.sqlite).')),
  queue_size: opt(
    Type.Integer({ minimum: 1, maximum: 100_000, description: 'Runs that may wait in the queue.' }),
  ),
  concurrency: opt(
    Type.Integer({ minimum: 1, maximum: 1_000, description: 'Runs executing at once.' }),
  ),
  retention: opt(Type.String({ minLength: 1, description: 'Prune runs older than this (90d).' })),
  shutdown_grace: opt(
    Type.String({
      minLength: 1,
      description: 'On SIGTERM, how long running runs may finish before they are cancelled.',
    }),
  ),
  on_restart: opt(
    Type.Union([Type.Literal('start'), Type.Literal('interrupt')], {
      description: 'What becomes of runs still queued when the server (re)starts.',
    }),
  ),
  tls_cert_file: opt(path('PEM certificate chain; with tls_key_file the server speaks HTTPS.')),
  tls_key_file: opt(path('PEM private key of tls_cert_file.')),
  behind_tls_proxy: opt(
    Type.Boolean({
      description:
        'Allow a non-loopback listener without TLS because a TLS proxy is in front (trusted_proxies).',
    }),
  ),
  trusted_proxies: opt(
    Type.Array(Type.String({ minLength: 1 }), {
      description: 'Addresses/CIDRs whose X-Forwarded-* headers are believed.',
    }),
  ),
  cors_origins: opt(
    Type.Array(Type.String({ minLength: 1 }), {
      description: 'Browser origins allowed by CORS (default none: CORS off).',
    }),
  ),
  rate_limit: opt(
    Type.Integer({ minimum: 1, description: 'Requests per minute per token (429 beyond).' }),
  ),
  body_limit_bytes: opt(
    Type.Integer({ minimum: 1024, maximum: 16_777_216, description: 'Largest request body.' }),
  ),
});

/** What one TOML config file may contain. Every key is optional; unknown keys are errors. */
export const ConfigFileSchema = closed({
  core: opt(CoreSectionSchema),
  execution: opt(ExecutionSectionSchema),
  plugins: opt(PluginsSectionSchema),
  remote_plugins: opt(RemotePluginsSectionSchema),
  audit: opt(AuditSectionSchema),
  ssh: opt(SshSectionSchema),
  ssm: opt(SsmSectionSchema),
  server: opt(ServerSectionSchema),
});

/** The contents of one config file (or a partial override, e.g. from flags). */
export type ConfigFile = Static<typeof ConfigFileSchema>;

/** The config sections, in display order. */
export const CONFIG_SECTIONS = [
  'core',
  'execution',
  'plugins',
  'remote_plugins',
  'audit',
  'ssh',
  'ssm',
  'server',
] as const;

/** One config section name. */
export type ConfigSectionName = (typeof CONFIG_SECTIONS)[number];

/** The effective configuration: every section present, keys set or left undefined. */
export type RuneConfig = { [S in ConfigSectionName]: NonNullable<ConfigFile[S]> };

/** Keys holding control-node paths: `~` is expanded and relative paths resolve against the cwd. */
export const LOCAL_PATH_KEYS: readonly string[] = [
  'core.audit_log',
  'core.inventory',
  'core.artifact_dir',
  'audit.key_file',
  'plugins.plugin_dir',
  'ssh.ssh_config_file',
  'server.store',
  'server.tls_cert_file',
  'server.tls_key_file',
];

/** Keys holding lists of control-node paths. */
export const LOCAL_PATH_LIST_KEYS: readonly string[] = [
  'ssh.identity_files',
  'ssh.known_hosts_files',
];

/** Defaults that do not depend on the environment. Paths under XDG dirs are filled at load time. */
export const DEFAULT_CONFIG_VALUES: ConfigFile = {
  core: { default_transport: 'ssh', output: 'pretty' },
  execution: {
    deploy_mode: 'ship',
    concurrency: 50,
    max_stdout_bytes: 1_048_576,
    max_stderr_bytes: 65_536,
    fetch_artifacts: false,
  },
  plugins: { plugin_dir: '/opt/rune/plugins' },
  remote_plugins: { base_dir: '/opt/rune/plugins' },
  audit: { lock_timeout_ms: 5000 },
  ssh: {
    port: 22,
    identity_files: [],
    known_hosts_files: [],
    host_key_checking: 'strict',
    connect_timeout_ms: 10_000,
    keepalive_interval_ms: 5_000,
    keepalive_count_max: 3,
    use_agent: true,
    use_ssh_config: true,
    ssh_config_file: '~/.ssh/config',
    max_sessions_per_connection: 8,
    passphrase_env: 'RUNE_SSH_PASSPHRASE',
    remote_cache_dir: '~/.cache/rune/plugins',
  },
  ssm: {
    poll_interval_ms: 1000,
    max_attempts: 10,
    remote_cache_dir: '/var/lib/rune/plugins',
    instances: {},
  },
  server: {
    listen: '127.0.0.1:8421',
    queue_size: 1000,
    concurrency: 8,
    retention: '90d',
    shutdown_grace: '30s',
    on_restart: 'start',
    behind_tls_proxy: false,
    trusted_proxies: [],
    cors_origins: [],
    rate_limit: 600,
    body_limit_bytes: 1_048_576,
  },
};
