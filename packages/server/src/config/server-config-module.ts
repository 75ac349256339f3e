/**
 * The `[server]` config section, owned by `rune serve` (@rune/server): its TypeBox schema, the
 * defaults the server applies, the keys naming control-node files, and its part of the starter
 * config `rune config init` writes. Core's config loader knows none of these keys: whoever loads
 * a config that may hold `[server]` (the CLI, `createRuneServer`) passes
 * {@link serverConfigModule} in `loadConfig({ configModules })`, and core validates the section
 * generically (file:line:column, unknown keys with a "did you mean"). This file is the light
 * entry point `@rune/server/config`: TypeBox only, so every CLI command can validate `[server]`
 * without loading Fastify or the store. Durations are written like `--timeout` (`30s`, `90d`).
 */
import type { LoadedConfig } from '@rune/core';
import type { ConfigSectionModule } from '@rune/transport';
import { type Static, type TSchema, Type } from '@sinclair/typebox';

const closed = <T extends Record<string, TSchema>>(properties: T) =>
  Type.Object(properties, { additionalProperties: false });
const opt = Type.Optional;
const path = (description: string) => Type.String({ minLength: 1, description });

/** `[server]`: `rune serve`; every key optional. */
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
  idle_reclaim: opt(
    Type.String({
      minLength: 1,
      description:
        'After this long without requests or runs, one full garbage collection in each server thread gives memory back (10s; "off": never).',
    }),
  ),
  heap_growth: opt(
    Type.String({
      minLength: 1,
      description:
        'How far each V8 heap of the server may grow beyond what survived its last full collection before the next one ("30%"; "off": as V8 decides, up to 4x).',
    }),
  ),
});

/** `[server]` as written in a file. */
export type ServerSection = Static<typeof ServerSectionSchema>;

/** The defaults the server applies to `[server]`: the only place they are written. */
export const SERVER_CONFIG_DEFAULTS = {
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
  idle_reclaim: '10s',
  heap_growth: '30%',
} as const satisfies ServerSection;

/** `[server]` keys naming files on the control node (`store` may also be a `postgres://` URL). */
const SERVER_LOCAL_PATH_KEYS = [
  'store',
  'tls_cert_file',
  'tls_key_file',
  'alert_rules',
  'workflows',
  'policy',
] as const satisfies readonly (keyof ServerSection)[];

/** The `[server]` body of the starter config (`rune config init`). */
const SERVER_CONFIG_TEMPLATE = `# \`rune serve\` (docs/server.md). Loopback by default; any other address needs TLS (the two
# tls_* files) or behind_tls_proxy = true with the proxy's address in trusted_proxies.
# listen = "127.0.0.1:8421"
# store = "~/.local/state/rune/server.sqlite"
# Runs waiting to start (a full queue answers 503 QUEUE_FULL), and runs executing at once.
# queue_size = 1000
# concurrency = 8
# Runs older than this are pruned from the store.
# retention = "90d"
# On SIGTERM: how long running runs may finish before they are cancelled.
# shutdown_grace = "30s"
# Runs still queued at start-up: "start" them, or mark them "interrupt"(ed).
# on_restart = "start"
# tls_cert_file = "/etc/rune/tls/cert.pem"
# tls_key_file = "/etc/rune/tls/key.pem"
# behind_tls_proxy = false
# trusted_proxies = ["127.0.0.1"]
# Browser origins allowed to call the API (none: CORS off).
# cors_origins = ["https://grafana.example.net"]
# Requests per minute per token, and the largest request body.
# rate_limit = 600
# body_limit_bytes = 1048576
# Alert receivers, rules and throttling (docs/alerts.md).
# alert_rules = "/etc/rune/alert-rules.yaml"
# Dashboard sessions end after this long idle, and this long after sign-in (docs/dashboard.md).
# session_idle = "30m"
# session_lifetime = "12h"
# Workflow files (<name>.yaml) that POST /v1/workflows/{name}/runs may run (none: the route is off).
# workflows = "/etc/rune/workflows"
# "json": JSON log lines with trace ids (docs/observability.md).
# log_format = "human"
# Audit records and run results to syslog, Splunk HEC or stdout (docs/observability.md).
# shipping = { interval = "1s", sinks = [{ name = "collector", type = "stdout" }] }
# The RBAC policy (docs/rbac.md); without it the built-in roles viewer, operator and admin apply.
# policy = "/etc/rune/policy.yaml"
# Single sign-on (OIDC code + PKCE) into a dashboard session; the client secret, if any, comes
# from the environment variable named by oidc_client_secret_env.
# oidc_issuer = "https://login.example.com/realms/ops"
# oidc_client_id = "rune"
# oidc_client_secret_env = "RUNE_OIDC_CLIENT_SECRET"
# oidc_redirect_url = "https://rune.example.com/v1/auth/oidc/callback"
# oidc_groups_claim = "groups"
# oidc_scopes = "openid email profile groups"
# Several instances on one PostgreSQL (docs/ha.md): store = "postgres://rune@db/rune?sslmode=verify-full",
# and how long an instance may miss heartbeats before another takes over its runs.
# lease = "15s"
# After this long without requests or runs, give memory back: one full garbage collection in each
# server thread ("off": never).
# idle_reclaim = "10s"
# While busy, let each heap grow this far beyond what is live before V8 collects it ("off": as V8
# decides, up to 4x).
# heap_growth = "30%"
`;

/** The `[server]` config section module; pass it to `loadConfig({ configModules })`. */
export const serverConfigModule: ConfigSectionModule<ServerSection> = {
  name: 'server',
  configSchema: ServerSectionSchema,
  configDefaults: SERVER_CONFIG_DEFAULTS,
  localPathKeys: SERVER_LOCAL_PATH_KEYS,
  configTemplate: SERVER_CONFIG_TEMPLATE,
};

/** `[server]` of a loaded configuration with {@link SERVER_CONFIG_DEFAULTS} filled in. */
export type ResolvedServerSection = ServerSection &
  Required<Pick<ServerSection, keyof typeof SERVER_CONFIG_DEFAULTS>>;

/**
 * `[server]` of a configuration loaded with {@link serverConfigModule} (as written, paths
 * expanded), with the server's defaults under it. A configuration loaded without the module has
 * no `[server]` (a file that had one was refused), so this gives the defaults.
 */
export function serverSection(loaded: Pick<LoadedConfig, 'sections'>): ResolvedServerSection {
  const written = (loaded.sections.server ?? {}) as ServerSection;
  return { ...SERVER_CONFIG_DEFAULTS, ...written } as ResolvedServerSection;
}
