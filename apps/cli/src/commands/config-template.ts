/**
 * The starter configuration `rune config init` writes. Every key of the config schema appears,
 * commented out with its default (or an example), so the file documents itself and changes
 * nothing until a line is uncommented. Core's sections are written here; every other section
 * comes from the module that owns it (`configTemplate` of the transports' and the server's config
 * modules, or lines generated from its schema and defaults), so a module's keys are listed where
 * they are defined. Tests check that the file loads, that uncommenting every key still gives a
 * valid configuration, and that no schema key is missing.
 */
import type { ConfigSectionModule } from '@rune/transport';
import { CLI_CONFIG_MODULES, CLI_TRANSPORT_MODULES } from '../transports.js';

/** The starter text of core's sections (`[core]` ... `[audit]`). */
const CORE_SECTIONS_TOML = `# RUNE configuration (TOML). Written by \`rune config init\`; see docs/cli.md for every key.
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
`;

/** A TOML literal of a default value (strings, numbers, booleans, arrays of those). */
function tomlValue(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(tomlValue).join(', ')}]`;
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** The starter body of a module's section: its own text, else one line per key with a default. */
export function sectionTemplate(module: ConfigSectionModule): string {
  if (module.configTemplate !== undefined) return module.configTemplate;
  const schema = module.configSchema as {
    properties?: Record<string, { description?: string }>;
  };
  const defaults = module.configDefaults as Record<string, unknown>;
  return Object.entries(schema.properties ?? {})
    .filter(([key]) => defaults[key] !== undefined)
    .map(
      ([key, property]) =>
        `${property.description === undefined ? '' : `# ${property.description}\n`}# ${key} = ${tomlValue(defaults[key])}\n`,
    )
    .join('');
}

/** The text of the starter `config.toml`: core's sections, then each module's. */
export const STARTER_CONFIG_TOML = [
  CORE_SECTIONS_TOML,
  ...[...CLI_TRANSPORT_MODULES, ...CLI_CONFIG_MODULES].map(
    (module) => `[${module.name}]\n${sectionTemplate(module)}`,
  ),
].join('\n');
