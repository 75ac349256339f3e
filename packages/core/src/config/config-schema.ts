/**
 * The schema of RUNE's TOML configuration and the one table of its defaults.
 *
 * Core owns five sections (`[core]`, `[execution]`, `[plugins]`, `[remote_plugins]`,
 * `[audit]`); every other section belongs to a transport, which brings its schema and defaults in
 * its `TransportModule` (`@rune/transport`): {@link configFileSchema} composes the two, so a
 * config file is validated against exactly the transports the caller loads. Every key is optional
 * in a file and unknown keys are rejected. {@link CONFIG_DEFAULTS} is the only place a default of
 * a core key is written; {@link ResolvedConfig} is the configuration with all of them filled in,
 * so nothing downstream re-defaults with `??`. Keys are snake_case, exactly as written in TOML.
 */
import type { DeployMode } from '@rune/protocol';
import type { TransportModule } from '@rune/transport';
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

/** `[server]` as written in a file. */
export type ServerSection = Static<typeof ServerSectionSchema>;

/** The sections core owns, in display order. */
export const CORE_CONFIG_SECTIONS = [
  'core',
  'execution',
  'plugins',
  'remote_plugins',
  'audit',
  'server',
] as const;

/** One section core owns. */
export type CoreConfigSectionName = (typeof CORE_CONFIG_SECTIONS)[number];

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
  store: opt(
    path(
      'The run store: an SQLite file (default $XDG_STATE_HOME/rune/server.sqlite), or a postgres:// URL shared by several instances.',
    ),
  ),
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
  workflows: opt(
    path('Directory of workflow files (<name>.yaml) that POST /v1/workflows/{name}/runs runs.'),
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
  alert_rules: opt(
    path('Alert rules (YAML, specs/alert-rules-v1.md): receivers, rules, throttling, notifiers.'),
  ),
  policy: opt(
    path(
      'RBAC policy file (YAML, specs/policy-v1.md); without it the built-in roles viewer, operator and admin apply.',
    ),
  ),
  // Single sign-on (OIDC authorization code + PKCE) into a browser session; docs/rbac.md.
  oidc_issuer: opt(
    Type.String({
      pattern: '^https?://',
      maxLength: 2000,
      description: 'OIDC issuer URL (https; http only on loopback). Enables single sign-on.',
    }),
  ),
  oidc_client_id: opt(
    Type.String({ minLength: 1, maxLength: 500, description: 'OIDC client id.' }),
  ),
  oidc_client_secret_env: opt(
    Type.String({
      pattern: '^[A-Z_][A-Z0-9_]{0,127}$',
      description:
        'Environment variable holding the client secret (default RUNE_OIDC_CLIENT_SECRET; unset: a public client, PKCE only).',
    }),
  ),
  oidc_redirect_url: opt(
    Type.String({
      pattern: '^https?://',
      maxLength: 2000,
      description:
        "This server's callback URL as registered with the provider (…/v1/auth/oidc/callback).",
    }),
  ),
  oidc_groups_claim: opt(
    Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'ID token claim whose strings become group:<name> subjects (default groups).',
    }),
  ),
  oidc_scopes: opt(
    Type.String({
      minLength: 6,
      maxLength: 500,
      description: 'Scopes requested (default "openid email profile groups").',
    }),
  ),
  session_idle: opt(
    Type.String({
      minLength: 1,
      description: 'A dashboard session ends after this long idle (30m).',
    }),
  ),
  session_lifetime: opt(
    Type.String({
      minLength: 1,
      description: 'A dashboard session ends this long after sign-in (12h).',
    }),
  ),
  // Observability (docs/observability.md): the log format and record shipping.
  log_format: opt(
    Type.Union([Type.Literal('human'), Type.Literal('json')], {
      description: 'human: one line per request; json: JSON lines (pino) with trace ids.',
    }),
  ),
  shipping: opt(
    closed({
      interval: opt(
        Type.String({ minLength: 1, description: 'How often the spool is read (default 1s).' }),
      ),
      timeout: opt(
        Type.String({ minLength: 1, description: 'Give up on one delivery after (default 10s).' }),
      ),
      batch_size: opt(
        Type.Integer({ minimum: 1, maximum: 1000, description: 'Records per delivery (100).' }),
      ),
      ship_from: opt(
        Type.Union([Type.Literal('start'), Type.Literal('now')], {
          description:
            'First start: ship the whole existing audit log and runs (start) or from now on (now, default).',
        }),
      ),
      retention: opt(
        Type.String({
          minLength: 1,
          description: 'Delivered records stay in the spool this long, then are pruned (24h).',
        }),
      ),
      sinks: opt(
        Type.Array(
          closed({
            name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,63}$', description: 'Sink id.' }),
            type: Type.Union([
              Type.Literal('syslog'),
              Type.Literal('splunk-hec'),
              Type.Literal('stdout'),
            ]),
            records: opt(
              Type.Array(Type.Union([Type.Literal('audit'), Type.Literal('run')]), {
                description: 'What this sink receives (default both).',
              }),
            ),
            address: opt(Type.String({ minLength: 1, description: 'syslog: host:port.' })),
            protocol: opt(Type.Union([Type.Literal('udp'), Type.Literal('tcp')])),
            facility: opt(
              Type.Integer({ minimum: 0, maximum: 23, description: 'syslog facility (16).' }),
            ),
            url: opt(Type.String({ minLength: 1, description: 'splunk-hec: base URL.' })),
            token_env: opt(
              Type.String({
                pattern: '^[A-Z_][A-Z0-9_]{0,127}$',
                description: 'splunk-hec: environment variable holding the HEC token.',
              }),
            ),
            index: opt(Type.String({ minLength: 1, maxLength: 200 })),
            sourcetype: opt(Type.String({ minLength: 1, maxLength: 200 })),
          }),
          { maxItems: 16 },
        ),
      ),
    }),
  ),
  lease: opt(
    Type.String({
      minLength: 1,
      description:
        'PostgreSQL mode: how long an instance may miss heartbeats before another takes over its runs (15s).',
    }),
  ),
});

/** The schemas of the sections core owns. */
export const CORE_SECTION_SCHEMAS = {
  core: CoreSectionSchema,
  execution: ExecutionSectionSchema,
  plugins: PluginsSectionSchema,
  remote_plugins: RemotePluginsSectionSchema,
  audit: AuditSectionSchema,
  server: ServerSectionSchema,
} as const satisfies Record<CoreConfigSectionName, TObject>;

/** What one TOML config file may contain of core's sections. Every key is optional. */
export const ConfigFileSchema = closed({
  core: opt(CoreSectionSchema),
  execution: opt(ExecutionSectionSchema),
  plugins: opt(PluginsSectionSchema),
  remote_plugins: opt(RemotePluginsSectionSchema),
  audit: opt(AuditSectionSchema),
  server: opt(ServerSectionSchema),
});

/** Core's sections of one config file (or a partial override, e.g. from flags). */
export type ConfigFile = Static<typeof ConfigFileSchema>;

/**
 * The schema of a whole config file for the given transports: core's sections plus one section
 * per transport module (`[ssh]` from the SSH module, ...). Any other section is an unknown key.
 */
export function configFileSchema(modules: readonly TransportModule[]): TObject {
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
  /** `[server]` as written, with the defaults of {@link CONFIG_DEFAULTS}; @rune/server checks it. */
  server: ServerSection;
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
    session_idle: '30m',
    session_lifetime: '12h',
    lease: '15s',
  },
} as const satisfies ConfigFile;

/** Keys holding control-node paths: `~` is expanded and relative paths resolve against the cwd. */
export const LOCAL_PATH_KEYS: readonly string[] = [
  'core.audit_log',
  'core.inventory',
  'core.artifact_dir',
  'audit.key_file',
  'plugins.plugin_dir',
  'server.store',
  'server.tls_cert_file',
  'server.tls_key_file',
  'server.alert_rules',
  'server.workflows',
  'server.policy',
];
