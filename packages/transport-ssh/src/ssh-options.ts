/**
 * The SSH transport's options: the public {@link SshTransportOptions} type, every library default
 * (`DEFAULT_*`), and {@link resolveSshTransportOptions}, which checks the options once and fills
 * the defaults once, so that no other module re-defaults a value with `??`.
 *
 * Values that ~/.ssh/config may decide (user, port, identity files, known_hosts files, host key
 * checking, timeouts, keepalives) are NOT defaulted here: they stay unset so that ssh-config.ts
 * can apply OpenSSH's order (RUNE config, then ~/.ssh/config, then OpenSSH's default).
 */
import { join } from 'node:path';
import { RuneError } from '@rune/protocol';
import { runeStateDir, TIMEOUT_GRACE_MS } from '@rune/transport';
import { isSafeRemotePath } from './remote-command.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_SERVER_ALIVE_COUNT_MAX,
  DEFAULT_USER_KNOWN_HOSTS_FILES,
  type HostKeyChecking,
} from './ssh-config.js';
import type { SshConnectionFactory } from './ssh-connector.js';

export { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_KEEPALIVE_INTERVAL_MS };
/** Default number of unanswered keepalives after which the connection counts as lost. */
export const DEFAULT_KEEPALIVE_COUNT_MAX = DEFAULT_SERVER_ALIVE_COUNT_MAX;
/** How long `close()` waits for a connection to end cleanly before destroying its socket. */
export const DEFAULT_CLOSE_GRACE_MS = 1_000;
/** Default session channels per connection (OpenSSH MaxSessions is 10; one is kept for kills). */
export const DEFAULT_MAX_SESSIONS_PER_CONNECTION = 8;
/** Default number of SSH handshakes in flight at once (OpenSSH MaxStartups starts at 10). */
export const DEFAULT_MAX_CONCURRENT_HANDSHAKES = 8;
/** Default remote plugin cache, relative to the remote user's home. */
export const DEFAULT_REMOTE_CACHE_DIR = '~/.cache/rune/plugins';
/** Default directory of preinstalled plugins on the node. */
export const DEFAULT_REMOTE_PLUGIN_DIR = '/opt/rune/plugins';
/** Default environment variable holding the private key passphrase. */
export const DEFAULT_PASSPHRASE_ENV = 'RUNE_SSH_PASSPHRASE';
/** Default largest stdin (RCS document) accepted. */
export const DEFAULT_MAX_STDIN_BYTES = 16 * 1024 * 1024;
/** Default largest plugin file accepted for shipping. */
export const DEFAULT_MAX_PLUGIN_BYTES = 16 * 1024 * 1024;
/** Default largest artifact fetched. */
export const DEFAULT_MAX_ARTIFACT_BYTES = 64 * 1024 * 1024;
/**
 * Extra seconds the remote watchdog allows beyond the exec timeout before it sweeps the run: the
 * timeout rule's grace (stage 3, `timeoutStages` in @rune/transport).
 */
export const DEFAULT_WATCHDOG_GRACE_S = TIMEOUT_GRACE_MS / 1000;
/** Default per-user known_hosts files (when neither RUNE nor UserKnownHostsFile names any). */
export const DEFAULT_KNOWN_HOSTS_FILES = DEFAULT_USER_KNOWN_HOSTS_FILES;

/** The RUNE-owned known_hosts file: always read, and where `accept-new` records keys. */
export function defaultRuneKnownHostsFile(): string {
  return join(runeStateDir(), 'known_hosts');
}

/** Options of {@link createSshTransport}; camelCase forms of the `[ssh]` config keys. */
export interface SshTransportOptions {
  /** Login user (default: ~/.ssh/config `User`, else the local user). */
  user?: string;
  /** Port (default: ~/.ssh/config `Port`, else 22). Leave unset to let ~/.ssh/config decide. */
  port?: number;
  /** Private key files to try, before ~/.ssh/config `IdentityFile`s. */
  identityFiles?: string[];
  /**
   * Per-user known_hosts files; a non-empty list replaces ~/.ssh/config `UserKnownHostsFile`
   * (default, also when empty: `UserKnownHostsFile`, else `~/.ssh/known_hosts`,
   * `~/.ssh/known_hosts2`). `GlobalKnownHostsFile` (default `/etc/ssh/ssh_known_hosts{,2}`) is
   * read too.
   */
  knownHostsFiles?: string[];
  /** RUNE's own known_hosts file: always read; `accept-new` appends here. */
  runeKnownHostsFile?: string;
  /**
   * `strict`, `accept-new` or `off` (loud warning, recorded in metadata). Default:
   * ~/.ssh/config `StrictHostKeyChecking` (yes/ask -> strict), else `strict`.
   */
  hostKeyChecking?: HostKeyChecking;
  /** TCP connect timeout (default: ~/.ssh/config `ConnectTimeout`, else 10000). */
  connectTimeoutMs?: number;
  /** SSH handshake + authentication timeout (default: the connect timeout). */
  handshakeTimeoutMs?: number;
  /**
   * Keepalive interval (default: ~/.ssh/config `ServerAliveInterval`, else 5000; 0 = off). A peer
   * that leaves `keepaliveCountMax` keepalives in a row unanswered is dropped: a run on it ends as
   * CONNECTION_LOST after about interval x (countMax + 1).
   */
  keepaliveIntervalMs?: number;
  /** Unanswered keepalives before the connection counts as lost (default: ~/.ssh/config `ServerAliveCountMax`, else 3). */
  keepaliveCountMax?: number;
  /** How long `close()` waits for each connection to end before destroying its socket (default 1000). */
  closeGraceMs?: number;
  /**
   * Seconds the remote watchdog adds to the exec timeout before it sweeps the run on its own
   * (default 5); it only matters when the control node could not stop the run itself.
   */
  watchdogGraceSeconds?: number;
  /**
   * `false`: never use ssh-agent. Otherwise the agent is ~/.ssh/config `IdentityAgent`, else
   * `SSH_AUTH_SOCK` (default true).
   */
  useAgent?: boolean;
  /** Read ~/.ssh/config (default true). */
  useSshConfig?: boolean;
  /** OpenSSH client config file (default `~/.ssh/config`). */
  sshConfigFile?: string;
  /** Jump hosts for every node: `[user@]host[:port]`, comma separated. */
  proxyJump?: string;
  /** Session channels per connection (default 8); keep below the server's MaxSessions. */
  maxSessionsPerConnection?: number;
  /** SSH handshakes in flight at once, across all nodes (default 8). */
  maxConcurrentHandshakes?: number;
  /** Passphrase for encrypted private keys. */
  passphrase?: string;
  /** Environment variable holding the passphrase (default `RUNE_SSH_PASSPHRASE`). */
  passphraseEnv?: string;
  /** Asks for a key's passphrase (e.g. on the TTY); called once per key file. */
  passphrasePrompt?: (keyFile: string) => Promise<string | undefined>;
  /** Remote plugin cache, private per user (default `~/.cache/rune/plugins`). */
  remoteCacheDir?: string;
  /** Directory of preinstalled plugins on the node (default `/opt/rune/plugins`). */
  remotePluginDir?: string;
  /** Largest stdin accepted (default 16 MiB); beyond it PAYLOAD_TOO_LARGE. */
  maxStdinBytes?: number;
  /** Largest plugin shipped (default 16 MiB). */
  maxPluginBytes?: number;
  /** Largest artifact fetched (default 64 MiB). */
  maxArtifactBytes?: number;
  /** Opens the stream to the first hop (default: TCP). */
  connectionFactory?: SshConnectionFactory;
  /** Environment (SSH_AUTH_SOCK, passphrase variable); default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Receives warnings (host key checking off, accept-new recorded a key, bad known_hosts lines). */
  onWarning?: (message: string) => void;
}

/**
 * The options with every library default filled in (see the module header for the ones left to
 * ~/.ssh/config, and `runeKnownHostsFile`, whose default follows the XDG state dir when it is
 * used). Built once per transport by {@link resolveSshTransportOptions}.
 */
export interface ResolvedSshTransportOptions
  extends Omit<
    SshTransportOptions,
    | 'closeGraceMs'
    | 'watchdogGraceSeconds'
    | 'maxSessionsPerConnection'
    | 'maxConcurrentHandshakes'
    | 'passphraseEnv'
    | 'remoteCacheDir'
    | 'remotePluginDir'
    | 'maxStdinBytes'
    | 'maxPluginBytes'
    | 'maxArtifactBytes'
    | 'env'
    | 'sshConfigFile'
  > {
  closeGraceMs: number;
  watchdogGraceSeconds: number;
  maxSessionsPerConnection: number;
  maxConcurrentHandshakes: number;
  passphraseEnv: string;
  remoteCacheDir: string;
  remotePluginDir: string;
  maxStdinBytes: number;
  maxPluginBytes: number;
  maxArtifactBytes: number;
  env: Readonly<Record<string, string | undefined>>;
  sshConfigFile: string;
}

/** An INVALID_CONFIG error from the SSH transport (about `node` when given). */
export function invalidConfig(message: string, node?: string): RuneError {
  return new RuneError('INVALID_CONFIG', message, {
    source: { component: 'transport-ssh', ...(node === undefined ? {} : { node }) },
  });
}

/**
 * Checks `options` (INVALID_CONFIG naming the bad option) and fills every library default. The
 * remote paths are checked here because they become bootstrap arguments on every node.
 */
export function resolveSshTransportOptions(
  options: SshTransportOptions,
): ResolvedSshTransportOptions {
  const maxSessions = options.maxSessionsPerConnection ?? DEFAULT_MAX_SESSIONS_PER_CONNECTION;
  if (!Number.isSafeInteger(maxSessions) || maxSessions < 1) {
    throw invalidConfig('maxSessionsPerConnection must be a positive integer');
  }
  for (const [name, value] of [
    ['keepaliveIntervalMs', options.keepaliveIntervalMs],
    ['keepaliveCountMax', options.keepaliveCountMax],
    ['closeGraceMs', options.closeGraceMs],
    ['watchdogGraceSeconds', options.watchdogGraceSeconds],
  ] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
      throw invalidConfig(`${name} must be a non-negative integer`);
    }
  }
  const remoteCacheDir = options.remoteCacheDir ?? DEFAULT_REMOTE_CACHE_DIR;
  const remotePluginDir = options.remotePluginDir ?? DEFAULT_REMOTE_PLUGIN_DIR;
  for (const [name, value] of [
    ['remoteCacheDir', remoteCacheDir],
    ['remotePluginDir', remotePluginDir],
  ] as const) {
    if (!isSafeRemotePath(value)) {
      throw invalidConfig(
        `${name} must be an absolute or ~/ path of [A-Za-z0-9._+/-] without "..": ${value}`,
      );
    }
  }
  const mode = options.hostKeyChecking ?? 'strict';
  if (mode !== 'strict' && mode !== 'accept-new' && mode !== 'off') {
    throw invalidConfig(`hostKeyChecking must be strict, accept-new or off, not ${String(mode)}`);
  }
  return {
    ...options,
    closeGraceMs: options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS,
    watchdogGraceSeconds: options.watchdogGraceSeconds ?? DEFAULT_WATCHDOG_GRACE_S,
    maxSessionsPerConnection: maxSessions,
    maxConcurrentHandshakes: options.maxConcurrentHandshakes ?? DEFAULT_MAX_CONCURRENT_HANDSHAKES,
    passphraseEnv: options.passphraseEnv ?? DEFAULT_PASSPHRASE_ENV,
    remoteCacheDir,
    remotePluginDir,
    maxStdinBytes: options.maxStdinBytes ?? DEFAULT_MAX_STDIN_BYTES,
    maxPluginBytes: options.maxPluginBytes ?? DEFAULT_MAX_PLUGIN_BYTES,
    maxArtifactBytes: options.maxArtifactBytes ?? DEFAULT_MAX_ARTIFACT_BYTES,
    env: options.env ?? process.env,
    sshConfigFile: options.sshConfigFile ?? '~/.ssh/config',
  };
}
