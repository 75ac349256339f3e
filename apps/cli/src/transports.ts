/**
 * The remote transports, loaded only when a node needs them (so `rune --help` and local runs
 * never pay for ssh2 or the AWS SDK). Config sections map to the factories' options: snake_case
 * keys become camelCase, `[ssh] passphrase_env` names the variable holding the key passphrase,
 * `[remote_plugins] base_dir` becomes `remotePluginDir`.
 */
import type { RuneConfig, Transport, TransportProvider } from '@rune/core';
import { RuneError } from '@rune/protocol';

type Options = Record<string, unknown>;

const compact = (options: Options): Options =>
  Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));

/** Options for `createSshTransport` from the effective config. */
export function sshTransportOptions(
  config: RuneConfig,
  env: Readonly<Record<string, string | undefined>>,
  onWarning?: (message: string) => void,
): Options {
  const ssh = config.ssh;
  const passphraseEnv = ssh.passphrase_env ?? 'RUNE_SSH_PASSPHRASE';
  return compact({
    user: ssh.user ?? config.core.default_user,
    port: ssh.port,
    identityFiles: ssh.identity_files,
    knownHostsFiles: ssh.known_hosts_files,
    hostKeyChecking: ssh.host_key_checking,
    connectTimeoutMs: ssh.connect_timeout_ms,
    keepaliveIntervalMs: ssh.keepalive_interval_ms,
    useAgent: ssh.use_agent,
    useSshConfig: ssh.use_ssh_config,
    sshConfigFile: ssh.ssh_config_file,
    proxyJump: ssh.proxy_jump,
    maxSessionsPerConnection: ssh.max_sessions_per_connection,
    passphrase: env[passphraseEnv],
    remoteCacheDir: ssh.remote_cache_dir,
    remotePluginDir: config.remote_plugins.base_dir,
    onWarning,
  });
}

/** Options for `createSsmTransport` from the effective config. */
export function ssmTransportOptions(
  config: RuneConfig,
  onWarning?: (message: string) => void,
): Options {
  const ssm = config.ssm;
  return compact({
    region: ssm.region,
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

async function loadFactory(
  specifier: string,
  factoryName: string,
  transport: string,
): Promise<(options: Options) => Transport> {
  let module: Record<string, unknown>;
  try {
    module = (await import(specifier)) as Record<string, unknown>;
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
  const factory = module[factoryName];
  if (typeof factory !== 'function') {
    throw new RuneError('TRANSPORT_UNAVAILABLE', `${specifier} does not export ${factoryName}()`, {
      source: { component: 'rune-cli' },
      details: { transport, package: specifier },
    });
  }
  return factory as (options: Options) => Transport;
}

/** Lazy providers for the `ssh` and `ssm` transports. */
export function remoteTransportProviders(
  config: RuneConfig,
  env: Readonly<Record<string, string | undefined>>,
  onWarning?: (message: string) => void,
): Record<string, TransportProvider> {
  return {
    ssh: async () =>
      (await loadFactory('@rune/transport-ssh', 'createSshTransport', 'ssh'))(
        sshTransportOptions(config, env, onWarning),
      ),
    ssm: async () =>
      (await loadFactory('@rune/transport-ssm', 'createSsmTransport', 'ssm'))(
        ssmTransportOptions(config, onWarning),
      ),
  };
}
