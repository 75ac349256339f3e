/**
 * `@rune/transport-ssh/config`: the `[ssh]` config section — its schema, its documented defaults
 * and how the SSH transport is built from it. This entry point imports only TypeBox and
 * `@rune/transport`, so validating a config file never loads ssh2; `fromConfig` imports the
 * transport itself when a node needs it.
 *
 * Only the keys the operator set become options: a key left unset is decided by `~/.ssh/config`
 * (`User`, `Port`, `StrictHostKeyChecking`, `ConnectTimeout`, `ServerAliveInterval`, ...) and
 * then by the transport's built-in default, which {@link sshConfigDefaults} documents. A key set
 * to the default value still overrides `~/.ssh/config`.
 */
import type { TransportConfigContext, TransportModule } from '@rune/transport';
import { type Static, Type } from '@sinclair/typebox';
import type { SshTransportOptions } from './ssh-transport.js';

const opt = Type.Optional;
const nonEmpty = (description: string) => Type.String({ minLength: 1, description });
const positiveInt = (description: string) => Type.Integer({ minimum: 1, description });

/** The `[ssh]` section as an operator may write it: every key optional, unknown keys rejected. */
export const SshConfigSectionSchema = Type.Object(
  {
    user: opt(nonEmpty('Login user (default: ~/.ssh/config User, else [core] default_user).')),
    port: opt(
      Type.Integer({
        minimum: 1,
        maximum: 65_535,
        description: 'Port (default: ~/.ssh/config Port, else 22).',
      }),
    ),
    identity_files: opt(Type.Array(nonEmpty('A private key file.'))),
    known_hosts_files: opt(
      Type.Array(nonEmpty('A known_hosts file.'), {
        description: 'Per-user known_hosts files; empty means the OpenSSH defaults.',
      }),
    ),
    host_key_checking: opt(
      Type.Union([Type.Literal('strict'), Type.Literal('accept-new'), Type.Literal('off')]),
    ),
    connect_timeout_ms: opt(positiveInt('TCP + handshake timeout.')),
    keepalive_interval_ms: opt(Type.Integer({ minimum: 0 })),
    keepalive_count_max: opt(Type.Integer({ minimum: 0 })),
    use_agent: opt(Type.Boolean()),
    use_ssh_config: opt(Type.Boolean()),
    ssh_config_file: opt(nonEmpty('OpenSSH client config file.')),
    proxy_jump: opt(nonEmpty('Jump hosts for every node: [user@]host[:port], comma separated.')),
    max_sessions_per_connection: opt(positiveInt('Channels per connection.')),
    passphrase_env: opt(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' })),
    remote_cache_dir: opt(nonEmpty('The per-user private plugin cache on the nodes.')),
  },
  { additionalProperties: false },
);

/** The `[ssh]` section as written. */
export type SshConfigSection = Static<typeof SshConfigSectionSchema>;

/**
 * What the SSH transport does for a key nobody set (neither `[ssh]` nor `~/.ssh/config`): the
 * transport's own defaults, listed for `rune config show` and `rune config init`. A test checks
 * them against the transport's `DEFAULT_*` constants.
 */
export const sshConfigDefaults: Readonly<SshConfigSection> = {
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
};

/**
 * The options of `createSshTransport` that the `[ssh]` section (as written) and the shared
 * settings give: only what was set, so `~/.ssh/config` and the transport decide the rest. Paths
 * on the control node are resolved like core's; remote paths are left as written.
 */
export function sshTransportOptions(
  section: Readonly<SshConfigSection> | undefined,
  context: TransportConfigContext,
): SshTransportOptions {
  const ssh = section ?? {};
  const local = (path: string): string => context.resolveLocalPath(path);
  const user = ssh.user ?? context.shared.defaultUser;
  // The transport reads a key's passphrase from `env` (the variable `passphraseEnv` names).
  const options: SshTransportOptions = {
    env: context.env,
    remotePluginDir: context.shared.remotePluginDir,
    runeKnownHostsFile: `${context.stateDir.replace(/\/+$/, '')}/known_hosts`,
  };
  if (ssh.passphrase_env !== undefined) options.passphraseEnv = ssh.passphrase_env;
  if (user !== undefined) options.user = user;
  if (ssh.port !== undefined) options.port = ssh.port;
  if (ssh.identity_files !== undefined) options.identityFiles = ssh.identity_files.map(local);
  // An empty list means "the OpenSSH default files": the transport's own default.
  if (ssh.known_hosts_files !== undefined && ssh.known_hosts_files.length > 0)
    options.knownHostsFiles = ssh.known_hosts_files.map(local);
  if (ssh.host_key_checking !== undefined) options.hostKeyChecking = ssh.host_key_checking;
  if (ssh.connect_timeout_ms !== undefined) options.connectTimeoutMs = ssh.connect_timeout_ms;
  if (ssh.keepalive_interval_ms !== undefined)
    options.keepaliveIntervalMs = ssh.keepalive_interval_ms;
  if (ssh.keepalive_count_max !== undefined) options.keepaliveCountMax = ssh.keepalive_count_max;
  if (ssh.use_agent !== undefined) options.useAgent = ssh.use_agent;
  if (ssh.use_ssh_config !== undefined) options.useSshConfig = ssh.use_ssh_config;
  if (ssh.ssh_config_file !== undefined) options.sshConfigFile = local(ssh.ssh_config_file);
  if (ssh.proxy_jump !== undefined) options.proxyJump = ssh.proxy_jump;
  if (ssh.max_sessions_per_connection !== undefined)
    options.maxSessionsPerConnection = ssh.max_sessions_per_connection;
  if (ssh.remote_cache_dir !== undefined) options.remoteCacheDir = ssh.remote_cache_dir;
  if (context.onWarning !== undefined) options.onWarning = context.onWarning;
  return options;
}

/**
 * The `[ssh]` module. `fromConfig` loads `@rune/transport-ssh` on first use; in an interactive
 * process an encrypted key without a passphrase variable is unlocked on the terminal (never when
 * stdin is not a TTY).
 */
/** The terminal prompt, run through the context's `aroundPrompt` when the caller gave one. */
function guardedPrompt(
  prompt: (keyFile: string) => Promise<string | undefined>,
  context: TransportConfigContext,
): (keyFile: string) => Promise<string | undefined> {
  const around = context.aroundPrompt;
  return around === undefined ? prompt : (keyFile) => around(() => prompt(keyFile));
}

/** The `[ssh]` body of the starter config (`rune config init`). */
const SSH_CONFIG_TEMPLATE = `# user = "ops"
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
`;

export const sshTransportModule: TransportModule<SshConfigSection> = {
  name: 'ssh',
  configSchema: SshConfigSectionSchema,
  configDefaults: sshConfigDefaults,
  configTemplate: SSH_CONFIG_TEMPLATE,
  async fromConfig(section, context) {
    // By package name, not by path: a bundle of the CLI keeps ssh2 and its addons out.
    const { createSshTransport, createTtyPassphrasePrompt } = await import('@rune/transport-ssh');
    return createSshTransport({
      ...sshTransportOptions(section, context),
      ...(context.interactive
        ? { passphrasePrompt: guardedPrompt(createTtyPassphrasePrompt(), context) }
        : {}),
    });
  },
};
