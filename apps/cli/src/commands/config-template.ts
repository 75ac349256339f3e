/**
 * The starter configuration `rune config init` writes. Every key of the config schema appears,
 * commented out with its default (or an example), so the file documents itself and changes
 * nothing until a line is uncommented. Tests check that the file loads, that uncommenting every
 * key still gives a valid configuration, and that no schema key is missing.
 */

/** The text of the starter `config.toml`. */
export const STARTER_CONFIG_TOML = `# RUNE configuration (TOML). Written by \`rune config init\`; see docs/cli.md for every key.
# Files are layered, later wins key by key: /etc/rune/config.toml, ~/.config/rune/config.toml,
# ./rune.toml, then --config FILE (or RUNE_CONFIG); RUNE_<SECTION>_<KEY> variables and flags
# override them. Lines starting with "#" are defaults or examples: uncomment to change one.
# \`rune config show\` prints the effective value of every key and where it came from.

[core]
# Inventory: a RUNE YAML file, or an Ansible INI/YAML inventory (docs/fleet.md).
# inventory = "~/fleet/fleet.yaml"
# Transport for nodes that are not local (localhost uses "local").
# default_transport = "ssh"
# default_user = "ops"
# Per-node plugin timeout in ms (a plugin's manifest may set its own default).
# timeout_ms = 60000
# Output of \`rune run\`: "pretty", "json" or "jsonl".
# output = "pretty"
# Defaults below live in $XDG_STATE_HOME/rune (~/.local/state/rune).
# audit_log = "~/.local/state/rune/audit.jsonl"
# artifact_dir = "~/.local/state/rune/artifacts"

[execution]
# "ship": send the plugin (verified by sha256) with every run; "preinstalled": run the copy
# already on the node under [remote_plugins] base_dir.
# deploy_mode = "ship"
# Nodes run at once.
# concurrency = 50
# Output kept per node: the first max_stdout_bytes of stdout, the last max_stderr_bytes of stderr.
# max_stdout_bytes = 1048576
# max_stderr_bytes = 65536
# Run every plugin as this user through non-interactive sudo (sudo -n).
# run_as = "root"
# Download the artifacts plugins declare.
# fetch_artifacts = false

[plugins]
# Site plugins on this machine (lowest precedence after the user's and the built-in ones).
# plugin_dir = "/opt/rune/plugins"

[remote_plugins]
# Where preinstalled plugins live on the nodes (deploy_mode = "preinstalled").
# base_dir = "/opt/rune/plugins"

[audit]
# The Ed25519 key that signs audit records (created 0600 on first use; keep it outside the log).
# key_file = "~/.config/rune/audit-key.pem"
# How long to wait for an audit lock held by a live rune process.
# lock_timeout_ms = 5000

[ssh]
# user = "ops"
# port = 22
# identity_files = ["~/.ssh/id_ed25519"]
# Extra known_hosts files, read besides ~/.ssh/known_hosts.
# known_hosts_files = ["~/fleet/known_hosts"]
# "strict": an unknown or changed host key executes nothing; "accept-new" records new keys;
# "off" verifies nothing (loud and audited).
# host_key_checking = "strict"
# connect_timeout_ms = 10000
# SSH keepalive (0 = off); after keepalive_count_max unanswered ones a silent host is
# CONNECTION_LOST. Unset, ~/.ssh/config ServerAliveInterval/ServerAliveCountMax decide.
# keepalive_interval_ms = 5000
# keepalive_count_max = 3
# use_agent = true
# Honour ~/.ssh/config as OpenSSH reads it (Include, Host/Match, known_hosts files, ...).
# use_ssh_config = true
# ssh_config_file = "~/.ssh/config"
# proxy_jump = "ops@bastion.example.com:22"
# max_sessions_per_connection = 8
# Environment variable holding the passphrase of an encrypted key.
# passphrase_env = "RUNE_SSH_PASSPHRASE"
# The per-user private plugin cache on the nodes.
# remote_cache_dir = "~/.cache/rune/plugins"

[ssm]
# region = "eu-west-1"
# profile = "ops"
# endpoint = "http://127.0.0.1:4566"
# Full output needs an S3 bucket (GetCommandInvocation returns only the first 24,000 characters).
# output_s3_bucket = "my-rune-output"
# output_s3_prefix = "rune/"
# poll_interval_ms = 1000
# max_attempts = 10
# SSM executionTimeout in seconds.
# execution_timeout_s = 3600
# remote_cache_dir = "/var/lib/rune/plugins"
# Node name -> instance id, so --node web01 --use-ssm reaches i-...
# instances = { web01 = "i-0123456789abcdef0" }

[server]
# \`rune serve\` (docs/server.md). Loopback by default; any other address needs TLS (the two
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
`;
