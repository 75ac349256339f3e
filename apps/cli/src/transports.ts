/**
 * The remote transports, loaded only when a node needs them (so `rune --help` and local runs
 * never pay for ssh2 or the AWS SDK). Config sections map to the factories' options: snake_case
 * keys become camelCase, `[ssh] passphrase_env` names the variable holding the key passphrase,
 * `[remote_plugins] base_dir` becomes `remotePluginDir`.
 *
 * SSH options that ~/.ssh/config can also decide (`user`, `port`, `host_key_checking`,
 * `connect_timeout_ms`, `keepalive_interval_ms`) are passed only when the operator set them (a config file, a `RUNE_SSH_*` variable, a flag): the built-in default port 22
 * must not override a `Port` in ~/.ssh/config. An empty `known_hosts_files` means the OpenSSH
 * default files. Encrypted keys without a passphrase variable are unlocked on the TTY.
 */
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  DEFAULT_CONFIG_VALUES,
  type LoadedConfig,
  type RuneConfig,
  type TransportProvider,
} from '@rune/core';
import { RuneError } from '@rune/protocol';
import type { Transport } from '@rune/transport';

type Options = Record<string, unknown>;

/** The effective config, with the source of every value when known. */
export type TransportConfigInput = RuneConfig | LoadedConfig;

const compact = (options: Options): Options =>
  Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));

function splitConfig(input: TransportConfigInput): {
  config: RuneConfig;
  sources: LoadedConfig['sources'] | undefined;
} {
  return 'sources' in input && 'config' in input
    ? { config: input.config, sources: input.sources }
    : { config: input, sources: undefined };
}

/**
 * `value` when the operator set `section.key` (any source but the built-in default), else
 * undefined. Without recorded sources, a value equal to the built-in default counts as unset.
 */
function explicitValue<T>(
  value: T | undefined,
  keyPath: `${'core' | 'ssh'}.${string}`,
  sources: LoadedConfig['sources'] | undefined,
): T | undefined {
  if (value === undefined) return undefined;
  if (sources !== undefined) {
    const source = sources[keyPath];
    return source === undefined || source === 'default' ? undefined : value;
  }
  const [section, key] = keyPath.split('.') as ['core' | 'ssh', string];
  const fallback = (DEFAULT_CONFIG_VALUES[section] as Record<string, unknown> | undefined)?.[key];
  return fallback !== undefined && isDeepStrictEqual(value, fallback) ? undefined : value;
}

/** Options for `createSshTransport` from the effective config (pass `LoadedConfig` when you can). */
export function sshTransportOptions(
  input: TransportConfigInput,
  env: Readonly<Record<string, string | undefined>>,
  onWarning?: (message: string) => void,
): Options {
  const { config, sources } = splitConfig(input);
  const ssh = config.ssh;
  const passphraseEnv = ssh.passphrase_env ?? 'RUNE_SSH_PASSPHRASE';
  const knownHostsFiles =
    ssh.known_hosts_files !== undefined && ssh.known_hosts_files.length > 0
      ? ssh.known_hosts_files
      : undefined;
  return compact({
    user:
      explicitValue(ssh.user, 'ssh.user', sources) ??
      explicitValue(config.core.default_user, 'core.default_user', sources),
    port: explicitValue(ssh.port, 'ssh.port', sources),
    identityFiles: ssh.identity_files,
    knownHostsFiles,
    // ~/.ssh/config StrictHostKeyChecking, ConnectTimeout and ServerAliveInterval decide
    // unless the operator set these (the built-in defaults then come from the transport).
    hostKeyChecking: explicitValue(ssh.host_key_checking, 'ssh.host_key_checking', sources),
    connectTimeoutMs: explicitValue(ssh.connect_timeout_ms, 'ssh.connect_timeout_ms', sources),
    keepaliveIntervalMs: explicitValue(
      ssh.keepalive_interval_ms,
      'ssh.keepalive_interval_ms',
      sources,
    ),
    keepaliveCountMax: explicitValue(ssh.keepalive_count_max, 'ssh.keepalive_count_max', sources),
    useAgent: ssh.use_agent,
    useSshConfig: ssh.use_ssh_config,
    sshConfigFile: ssh.ssh_config_file,
    proxyJump: ssh.proxy_jump,
    maxSessionsPerConnection: ssh.max_sessions_per_connection,
    passphrase: env[passphraseEnv],
    passphraseEnv,
    remoteCacheDir: ssh.remote_cache_dir,
    remotePluginDir: config.remote_plugins.base_dir,
    onWarning,
  });
}

/**
 * The config file an error about a missing setting should name: the last file read (the one
 * with the highest precedence, e.g. `RUNE_CONFIG=./rune.toml`), else the user's config file.
 * Undefined without a `LoadedConfig`, where the transport names the usual locations itself.
 */
function configFileToEdit(input: TransportConfigInput): string | undefined {
  if (!('files' in input && 'dirs' in input)) return undefined;
  return input.files.at(-1) ?? join(input.dirs.configHome, 'rune', 'config.toml');
}

/** Options for `createSsmTransport` from the effective config. */
export function ssmTransportOptions(
  input: TransportConfigInput,
  onWarning?: (message: string) => void,
): Options {
  const { config } = splitConfig(input);
  const ssm = config.ssm;
  return compact({
    region: ssm.region,
    configFile: configFileToEdit(input),
    profile: ssm.profile,
    endpoint: ssm.endpoint,
    outputS3Bucket: ssm.output_s3_bucket,
    outputS3Prefix: ssm.output_s3_prefix,
    pollIntervalMs: ssm.poll_interval_ms,
    maxAttempts: ssm.max_attempts,
    executionTimeoutS: ssm.execution_timeout_s,
    remoteCacheDir: ssm.remote_cache_dir,
    remotePluginDir: config.remote_plugins.base_dir,
    instances: ssm.instances,
    onWarning,
  });
}

/** The AWS SDK's documented switch for its Node.js version support warning (aws-sdk-js-v3#7983). */
export const AWS_SDK_NODE_VERSION_WARNING_VARIABLE =
  'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

/**
 * Turns off the AWS SDK's 9-line NodeVersionSupportWarning for this `rune` process, unless the
 * operator set the variable. The SDK prints it at the first client on Node < 22, i.e. on every
 * `--use-ssm` run on Node 20, which RUNE supports; an operator cannot act on it, and RUNE's own
 * Node requirement is its `engines` field. Only this warning: other process warnings still print.
 */
export function quietAwsSdkNodeVersionWarning(
  env: Record<string, string | undefined> = process.env,
): void {
  env[AWS_SDK_NODE_VERSION_WARNING_VARIABLE] ??= 'true';
}

async function loadModule(specifier: string, transport: string): Promise<Record<string, unknown>> {
  try {
    return (await import(specifier)) as Record<string, unknown>;
  } catch (error) {
    throw new RuneError(
      'TRANSPORT_UNAVAILABLE',
      `the ${transport} transport (${specifier}) cannot be loaded`,
      {
        cause: error,
        source: { component: 'rune-cli' },
        details: { transport, package: specifier },
      },
    );
  }
}

function factoryOf(
  module: Record<string, unknown>,
  specifier: string,
  factoryName: string,
  transport: string,
): (options: Options) => Transport {
  const factory = module[factoryName];
  if (typeof factory !== 'function') {
    throw new RuneError('TRANSPORT_UNAVAILABLE', `${specifier} does not export ${factoryName}()`, {
      source: { component: 'rune-cli' },
      details: { transport, package: specifier },
    });
  }
  return factory as (options: Options) => Transport;
}

/**
 * Lazy providers for the `ssh` and `ssm` transports. The SSH transport asks for the passphrase
 * of an encrypted key on the terminal (never when stdin is not a TTY) when no passphrase
 * variable is set; `aroundPrompt` gets the terminal to itself for it (the progress bar pauses).
 */
export function remoteTransportProviders(
  config: TransportConfigInput,
  env: Readonly<Record<string, string | undefined>>,
  onWarning?: (message: string) => void,
  aroundPrompt?: <T>(ask: () => Promise<T>) => Promise<T>,
): Record<string, TransportProvider> {
  return {
    ssh: async () => {
      const specifier = '@rune/transport-ssh';
      const module = await loadModule(specifier, 'ssh');
      const create = factoryOf(module, specifier, 'createSshTransport', 'ssh');
      const createPrompt = module.createTtyPassphrasePrompt;
      const prompt =
        typeof createPrompt === 'function'
          ? (createPrompt as () => (keyFile: string) => Promise<string | undefined>)()
          : undefined;
      return create({
        ...sshTransportOptions(config, env, onWarning),
        ...(prompt === undefined
          ? {}
          : {
              passphrasePrompt:
                aroundPrompt === undefined
                  ? prompt
                  : (keyFile: string) => aroundPrompt(() => prompt(keyFile)),
            }),
      });
    },
    ssm: async () => {
      quietAwsSdkNodeVersionWarning();
      const specifier = '@rune/transport-ssm';
      const module = await loadModule(specifier, 'ssm');
      return factoryOf(
        module,
        specifier,
        'createSsmTransport',
        'ssm',
      )(ssmTransportOptions(config, onWarning));
    },
  };
}
