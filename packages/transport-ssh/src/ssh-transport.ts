/**
 * The SSH transport: runs a RUNE plugin on a Linux host over OpenSSH, agentless.
 *
 * Hot path (deploy mode `ship`, plugin already cached on the node): ONE exec round trip on a
 * reused connection — a fixed bootstrap in the command verifies `<cache>/<sha256>` and execs it
 * with the RCS document alone on stdin (see remote-command.ts). On a cache miss the transport
 * uploads the plugin with a second exec (stdin = plugin bytes) and runs again.
 *
 * Containment: every exec gets a fresh run marker; the bootstrap starts the plugin with
 * `RUNE_RUN_MARKER=<marker>` and, when the plugin exits, sweeps every process still carrying it
 * and reports the count in a trailer. The run ends when the plugin process ends: a background
 * child holding stdout open is killed by that sweep and neither delays the result nor turns it
 * into a timeout. On timeout AND on cancel the transport sweeps the marker from a second channel
 * (as the run-as user), backed by a detached remote watchdog that sweeps on its own when the
 * control node disappears. Every result carries a `containment` report.
 *
 * Liveness: ssh2 keepalives (default 5 s x 3) turn a peer that stops answering mid-run into
 * CONNECTION_LOST, and `close()` ends each connection, then destroys its socket after a short
 * grace, so a frozen host can never keep the process alive.
 *
 * Failure to reach or start is thrown as a RuneError with a precise EPS code; a process that ran
 * is a result, whatever it did.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { type ErrorCode, isActionName, RuneError } from '@rune/protocol';
import {
  type ContainmentReport,
  createRunMarker,
  type FetchedArtifact,
  HeadCapture,
  parseSweepOutput,
  runeStateDir,
  type SweepOutcome,
  TailCapture,
  type TargetNode,
  TIMEOUT_GRACE_MS,
  TRANSPORT_SPECIFICATION_VERSION,
  type Transport,
  type TransportCapabilities,
  type TransportExecRequest,
  type TransportExecResult,
} from '@rune/transport';
import type { ClientChannel, ParsedKey } from 'ssh2';
import ssh2 from 'ssh2';
import { ConnectionPool, Semaphore, SshConnection } from './connection-pool.js';
import { KnownHostsStore } from './known-hosts.js';
import {
  BootstrapStderr,
  type BootstrapTrailer,
  buildBootstrapCommand,
  buildKillCommand,
  buildSudoCheckCommand,
  isSafeRemotePath,
  MAX_COMMAND_BYTES,
  SHA256_HEX_PATTERN,
  signalOfShellStatus,
  USER_NAME_PATTERN,
} from './remote-command.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_SERVER_ALIVE_COUNT_MAX,
  DEFAULT_USER_KNOWN_HOSTS_FILES,
  defaultSshConfigContext,
  expandHome,
  type HostKeyChecking,
  ProxyJumpSyntaxError,
  type ResolvedEndpoint,
  type ResolvedRoute,
  type RuneEndpointSettings,
  readSshConfig,
  resolveRoute,
  type SshConfigContext,
  type SshConfigFile,
} from './ssh-config.js';
import {
  type ConnectSettings,
  connectEndpoint,
  type KeySource,
  type SshConnectionFactory,
  tcpConnectionFactory,
} from './ssh-connector.js';
import { VERSION } from './version.js';

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
/** How long the bootstrap may take to start the plugin before the run counts as timed out. */
const BOOTSTRAP_START_TIMEOUT_MS = 60_000;
/** Least time allowed for uploading a plugin on a cache miss. */
const UPLOAD_TIMEOUT_MS = 60_000;
/** After a kill, how long to wait for the channel to close before closing it ourselves. */
const FORCE_CLOSE_MS = 5_000;
/** After a timeout or abort before the plugin started, how long to wait for its pgid. */
const FORCE_CLOSE_UNSTARTED_MS = 10_000;
/** Default per-user known_hosts files (when neither RUNE nor UserKnownHostsFile names any). */
export const DEFAULT_KNOWN_HOSTS_FILES = DEFAULT_USER_KNOWN_HOSTS_FILES;
/**
 * After the exit status arrived, how long the channel may stay silent before the transport closes
 * it: only a process that escaped the run marker can still hold the output open then.
 */
const EXIT_DRAIN_IDLE_MS = 2_000;
/** How long the control side's sweep may take. */
const SWEEP_TIMEOUT_MS = 10_000;

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

interface NodeSettings {
  identityFiles?: string[];
  proxyJump?: string;
  knownHostsFile?: string;
  hostKeyChecking?: HostKeyChecking;
}

function invalid(message: string, node?: string): RuneError {
  return new RuneError('INVALID_CONFIG', message, {
    source: { component: 'transport-ssh', ...(node === undefined ? {} : { node }) },
  });
}

function readNodeSettings(node: TargetNode): NodeSettings {
  const raw = node.settings ?? {};
  const result: NodeSettings = {};
  const files: string[] = [];
  for (const key of ['identity_file', 'identity_files'] as const) {
    const value = raw[key];
    if (value === undefined) continue;
    if (typeof value === 'string') files.push(value);
    else if (Array.isArray(value) && value.every((item) => typeof item === 'string'))
      files.push(...value);
    else
      throw invalid(
        `node ${node.name}: settings.${key} must be a string or a list of strings`,
        node.name,
      );
  }
  if (files.length > 0) result.identityFiles = files;
  const jump = raw.proxy_jump;
  if (jump !== undefined) {
    if (typeof jump !== 'string')
      throw invalid(`node ${node.name}: settings.proxy_jump must be a string`, node.name);
    result.proxyJump = jump;
  }
  const knownHosts = raw.known_hosts_file;
  if (knownHosts !== undefined) {
    if (typeof knownHosts !== 'string') {
      throw invalid(`node ${node.name}: settings.known_hosts_file must be a string`, node.name);
    }
    result.knownHostsFile = knownHosts;
  }
  const mode = raw.host_key_checking;
  if (mode !== undefined) {
    if (mode !== 'strict' && mode !== 'accept-new' && mode !== 'off') {
      throw invalid(
        `node ${node.name}: settings.host_key_checking must be strict, accept-new or off`,
        node.name,
      );
    }
    result.hostKeyChecking = mode;
  }
  return result;
}

/** What the control side's sweep over a second channel achieved. */
interface ControlSweep {
  outcome: SweepOutcome | undefined;
  /** Why there is no outcome (the channel could not be opened, no answer, ...). */
  failure: string | undefined;
}

/** Raw outcome of one bootstrap exec. */
interface RawRun {
  exitCode: number | null;
  signal: string | null;
  stdout: HeadCapture;
  stderr: TailCapture;
  bootstrap: BootstrapStderr;
  interrupted: 'timeout' | 'cancelled' | undefined;
  /** The channel closed without an exit status and we did not kill it. */
  lost: RuneError | undefined;
  /** The control side's sweep, when a timeout or cancel sent one (settles in bounded time). */
  sweep: Promise<ControlSweep> | undefined;
  /** The exit status arrived but the output stayed open until the transport closed it. */
  heldOpen: boolean;
}

const NOTHING_RAN: ContainmentReport = { method: 'run-marker', killed: 0, complete: true };

const endpointKey = (endpoint: ResolvedEndpoint): string =>
  `${endpoint.user}@${endpoint.host}:${endpoint.port}`;

class SshTransport implements Transport {
  readonly specificationVersion = TRANSPORT_SPECIFICATION_VERSION;
  readonly name = 'ssh';
  readonly capabilities: TransportCapabilities;
  private readonly pool = new ConnectionPool();
  private readonly handshakes: Semaphore;
  private readonly store = new KnownHostsStore();
  private readonly keyCache = new Map<string, Promise<{ key: ParsedKey } | { skipped: string }>>();
  private readonly warned = new Set<string>();
  private sshConfig: Promise<SshConfigFile | undefined> | undefined;
  private readonly env: Readonly<Record<string, string | undefined>>;
  private readonly configContext: SshConfigContext;
  private readonly maxSessions: number;
  private closed = false;

  constructor(private readonly options: SshTransportOptions) {
    this.env = options.env ?? process.env;
    this.configContext = defaultSshConfigContext(this.env);
    this.maxSessions = options.maxSessionsPerConnection ?? DEFAULT_MAX_SESSIONS_PER_CONNECTION;
    if (!Number.isSafeInteger(this.maxSessions) || this.maxSessions < 1) {
      throw invalid('maxSessionsPerConnection must be a positive integer');
    }
    for (const [name, value] of [
      ['keepaliveIntervalMs', options.keepaliveIntervalMs],
      ['keepaliveCountMax', options.keepaliveCountMax],
      ['closeGraceMs', options.closeGraceMs],
      ['watchdogGraceSeconds', options.watchdogGraceSeconds],
    ] as const) {
      if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
        throw invalid(`${name} must be a non-negative integer`);
      }
    }
    this.handshakes = new Semaphore(
      options.maxConcurrentHandshakes ?? DEFAULT_MAX_CONCURRENT_HANDSHAKES,
    );
    for (const [name, value] of [
      ['remoteCacheDir', options.remoteCacheDir ?? DEFAULT_REMOTE_CACHE_DIR],
      ['remotePluginDir', options.remotePluginDir ?? DEFAULT_REMOTE_PLUGIN_DIR],
    ] as const) {
      if (!isSafeRemotePath(value)) {
        throw invalid(
          `${name} must be an absolute or ~/ path of [A-Za-z0-9._+/-] without "..": ${value}`,
        );
      }
    }
    const mode = options.hostKeyChecking ?? 'strict';
    if (mode !== 'strict' && mode !== 'accept-new' && mode !== 'off') {
      throw invalid(`hostKeyChecking must be strict, accept-new or off, not ${String(mode)}`);
    }
    this.capabilities = {
      deployModes: ['ship', 'preinstalled'],
      maxStdinBytes: options.maxStdinBytes ?? DEFAULT_MAX_STDIN_BYTES,
      artifacts: true,
      runAs: true,
      maxConcurrentExecsPerNode: this.maxSessions,
    };
  }

  async exec(request: TransportExecRequest): Promise<TransportExecResult> {
    const started = performance.now();
    const node = request.node;
    const context = (error: unknown): RuneError =>
      RuneError.from(error).withContext({
        component: 'transport-ssh',
        node: node.name,
        action: request.plugin.action,
        traceId: request.traceId,
      });
    const cancelled = (metadata: Record<string, unknown>): TransportExecResult => ({
      termination: 'cancelled',
      exitCode: null,
      signal: null,
      stdout: new Uint8Array(0),
      stdoutTruncated: false,
      stderr: new Uint8Array(0),
      stderrTruncated: false,
      timings: { connectMs: 0, execMs: 0, totalMs: performance.now() - started },
      metadata: { ...metadata, started: false },
      containment: NOTHING_RAN,
    });
    try {
      this.validate(request);
      if (request.signal.aborted) return cancelled({});
      const runAs = request.runAs ?? node.runAs;
      const settings = readNodeSettings(node);
      const route = await this.route(node, settings);
      const hostKeyChecking = route.target.strictHostKeyChecking;
      const connectStart = performance.now();
      let acquired: { connection: SshConnection; reused: boolean };
      try {
        acquired = await this.connect(route, settings, request.signal);
      } catch (error) {
        if (request.signal.aborted) return cancelled({ connect_error: RuneError.from(error).code });
        throw error;
      }
      const connectMs = acquired.reused ? 0 : performance.now() - connectStart;
      const connection = acquired.connection;
      const metadata: Record<string, unknown> = {
        deploy_mode: request.deployMode,
        connection_id: connection.id,
        connection_reused: acquired.reused,
        host_key_checking: hostKeyChecking,
        exec_round_trips: 0,
      };
      if (route.jumps.length > 0) metadata.proxy_jump = route.jumps.map(endpointKey);
      if (runAs !== undefined) metadata.run_as = runAs;
      if (request.signal.aborted) return cancelled(metadata);

      const execStart = performance.now();
      const watchdogSeconds =
        Math.ceil(request.timeoutMs / 1000) +
        (this.options.watchdogGraceSeconds ?? DEFAULT_WATCHDOG_GRACE_S);
      const runOnce = async (): Promise<RawRun> => {
        const marker = createRunMarker();
        const location =
          request.deployMode === 'ship'
            ? (this.options.remoteCacheDir ?? DEFAULT_REMOTE_CACHE_DIR)
            : this.preinstalledPath(request);
        const command = buildBootstrapCommand({
          op: request.deployMode === 'ship' ? 'ship' : 'preinstalled',
          sha256: request.plugin.sha256,
          location,
          watchdogSeconds,
          marker,
          ...(runAs === undefined ? {} : { runAs }),
        });
        metadata.exec_round_trips = (metadata.exec_round_trips as number) + 1;
        return this.run(connection, command, request.stdin, request, runAs, 'plugin', marker);
      };

      let raw = await runOnce();
      if (request.deployMode === 'ship') {
        metadata.cache_hit = raw.bootstrap.find('miss') === undefined;
        metadata.shipped = false;
        if (
          raw.bootstrap.find('miss') !== undefined &&
          raw.interrupted === undefined &&
          raw.lost === undefined
        ) {
          metadata.exec_round_trips = (metadata.exec_round_trips as number) + 1;
          const interrupted = await this.upload(connection, request, runAs);
          metadata.shipped = interrupted === undefined;
          if (interrupted === undefined) raw = await runOnce();
          else raw.interrupted = interrupted;
          if (raw.bootstrap.find('miss') !== undefined && raw.interrupted === undefined) {
            throw new RuneError(
              'PLUGIN_INTEGRITY_FAILED',
              `the plugin ${request.plugin.action} was uploaded but the cached copy on ${node.name} does not verify; nothing was executed`,
              { details: { sha256: request.plugin.sha256 } },
            );
          }
        }
      }
      if (raw.interrupted === undefined) await this.checkBootstrap(connection, raw, request, runAs);
      if (raw.lost !== undefined) throw raw.lost;
      if (raw.bootstrap.pgid !== undefined) metadata.remote_pgid = raw.bootstrap.pgid;
      const containment = containmentOf(raw, raw.sweep === undefined ? undefined : await raw.sweep);
      const execMs = performance.now() - execStart;
      const stdout = raw.stdout.bytes();
      const stderr = raw.stderr.bytes();
      const base = {
        stdout,
        stdoutTruncated: raw.stdout.truncated,
        stderr,
        stderrTruncated: raw.stderr.truncated,
        timings: { connectMs, execMs, totalMs: performance.now() - started },
        metadata,
        containment,
      };
      if (raw.interrupted !== undefined) {
        return { termination: raw.interrupted, exitCode: null, signal: null, ...base };
      }
      const trailer = trustedTrailer(raw);
      if (trailer !== undefined) {
        // The bootstrap ran the plugin in the foreground: sh reports its death by signal n as
        // 128+n, which is read back as the signal (what `exec` used to give sshd directly).
        const signal = signalOfShellStatus(trailer.status);
        if (signal !== undefined) return { termination: 'signal', exitCode: null, signal, ...base };
        return { termination: 'exit', exitCode: trailer.status, signal: null, ...base };
      }
      if (raw.signal !== null) {
        return { termination: 'signal', exitCode: null, signal: raw.signal, ...base };
      }
      return { termination: 'exit', exitCode: raw.exitCode, signal: null, ...base };
    } catch (error) {
      throw context(error);
    }
  }

  async fetchArtifact(
    node: TargetNode,
    remotePath: string,
    signal: AbortSignal,
  ): Promise<FetchedArtifact> {
    const fail = (message: string, cause?: unknown, retryable?: boolean): RuneError =>
      new RuneError('ARTIFACT_FETCH_FAILED', message, {
        source: { component: 'transport-ssh', node: node.name },
        details: { path: remotePath },
        cause,
        ...(retryable === undefined ? {} : { retryable }),
      });
    if (!remotePath.startsWith('/') || remotePath.includes('\0')) {
      throw fail(`artifact path must be absolute: ${JSON.stringify(remotePath)}`, undefined, false);
    }
    const limit = this.options.maxArtifactBytes ?? DEFAULT_MAX_ARTIFACT_BYTES;
    const settings = readNodeSettings(node);
    let connection: SshConnection;
    try {
      const route = await this.route(node, settings);
      connection = (await this.connect(route, settings, signal)).connection;
    } catch (error) {
      throw RuneError.from(error).withContext({ component: 'transport-ssh', node: node.name });
    }
    if (signal.aborted) throw new RuneError('RUN_CANCELLED', 'artifact fetch cancelled');
    const sftp = await connection.sftp(signal).catch((error: unknown) => {
      throw fail(`cannot open SFTP on ${node.name}: ${String(error)}`, error);
    });
    try {
      const size = await new Promise<number>((resolve, reject) => {
        sftp.stat(remotePath, (error, stats) => {
          if (error) return reject(error);
          if (!stats.isFile()) return reject(new Error('not a regular file'));
          resolve(stats.size);
        });
      }).catch((error: unknown) => {
        throw fail(`cannot stat ${remotePath} on ${node.name}: ${String(error)}`, error, false);
      });
      if (size > limit) {
        throw fail(
          `${remotePath} on ${node.name} is ${size} bytes, above the ${limit}-byte artifact limit`,
          undefined,
          false,
        );
      }
      return await new Promise<FetchedArtifact>((resolve, reject) => {
        const chunks: Buffer[] = [];
        let total = 0;
        const stream = sftp.createReadStream(remotePath);
        const onAbort = (): void => {
          stream.destroy();
          reject(new RuneError('RUN_CANCELLED', 'artifact fetch cancelled'));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        stream.on('data', (chunk: Buffer) => {
          total += chunk.byteLength;
          if (total > limit) {
            stream.destroy();
            reject(
              fail(`${remotePath} grew above the ${limit}-byte artifact limit`, undefined, false),
            );
            return;
          }
          chunks.push(chunk);
        });
        stream.on('error', (error: Error) =>
          reject(fail(`cannot read ${remotePath}: ${error.message}`, error)),
        );
        stream.on('end', () => {
          signal.removeEventListener('abort', onAbort);
          resolve({ content: new Uint8Array(Buffer.concat(chunks, total)) });
        });
      });
    } finally {
      sftp.end();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.pool.close(this.options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS);
  }

  // --- validation and resolution -------------------------------------------------------------

  private validate(request: TransportExecRequest): void {
    const { plugin } = request;
    if (this.closed) throw new RuneError('TRANSPORT_UNAVAILABLE', 'the SSH transport is closed');
    if (!isActionName(plugin.action)) {
      throw new RuneError(
        'INVALID_ACTION_NAME',
        `invalid action name: ${JSON.stringify(plugin.action)}`,
      );
    }
    if (request.deployMode !== 'ship' && request.deployMode !== 'preinstalled') {
      throw new RuneError(
        'UNSUPPORTED_FEATURE',
        `deploy mode ${String(request.deployMode)} is not supported over SSH`,
      );
    }
    if (request.deployMode === 'ship') {
      if (!SHA256_HEX_PATTERN.test(plugin.sha256)) {
        throw new RuneError('INVALID_ARGUMENT', 'plugin.sha256 must be 64 lowercase hex digits');
      }
      const maxPlugin = this.options.maxPluginBytes ?? DEFAULT_MAX_PLUGIN_BYTES;
      if (plugin.content.byteLength > maxPlugin) {
        throw new RuneError(
          'PAYLOAD_TOO_LARGE',
          `the plugin is ${plugin.content.byteLength} bytes; the SSH transport ships at most ${maxPlugin}`,
          { details: { plugin_bytes: plugin.content.byteLength, limit: maxPlugin } },
        );
      }
    }
    const maxStdin = this.capabilities.maxStdinBytes ?? DEFAULT_MAX_STDIN_BYTES;
    if (request.stdin.byteLength > maxStdin) {
      throw new RuneError(
        'PAYLOAD_TOO_LARGE',
        `the request document is ${request.stdin.byteLength} bytes; the SSH transport accepts at most ${maxStdin}`,
        { details: { stdin_bytes: request.stdin.byteLength, limit: maxStdin } },
      );
    }
    const runAs = request.runAs ?? request.node.runAs;
    if (runAs !== undefined && !USER_NAME_PATTERN.test(runAs)) {
      throw new RuneError('INVALID_ARGUMENT', `invalid run_as user name: ${JSON.stringify(runAs)}`);
    }
    if (!Number.isFinite(request.timeoutMs) || request.timeoutMs <= 0) {
      throw new RuneError('INVALID_ARGUMENT', 'timeoutMs must be a positive number');
    }
  }

  private preinstalledPath(request: TransportExecRequest): string {
    const path =
      request.plugin.remotePath ??
      `${this.options.remotePluginDir ?? DEFAULT_REMOTE_PLUGIN_DIR}/${request.plugin.action}.sh`;
    if (!isSafeRemotePath(path) || path.startsWith('~')) {
      throw new RuneError(
        'INVALID_ARGUMENT',
        `unsafe preinstalled plugin path: ${JSON.stringify(path)}`,
      );
    }
    return path;
  }

  private async route(node: TargetNode, settings: NodeSettings): Promise<ResolvedRoute> {
    if (this.options.useSshConfig !== false && this.sshConfig === undefined) {
      this.sshConfig = readSshConfig(this.options.sshConfigFile ?? '~/.ssh/config', {
        context: this.configContext,
      });
    }
    const sshConfig = this.options.useSshConfig === false ? undefined : await this.sshConfig;
    const nodeInputs: Parameters<typeof resolveRoute>[0]['node'] = {};
    if (node.address !== undefined) nodeInputs.address = node.address;
    if (node.port !== undefined) nodeInputs.port = node.port;
    if (node.user !== undefined) nodeInputs.user = node.user;
    if (settings.identityFiles !== undefined) nodeInputs.identityFiles = settings.identityFiles;
    if (settings.proxyJump !== undefined) nodeInputs.proxyJump = settings.proxyJump;
    if (settings.hostKeyChecking !== undefined)
      nodeInputs.hostKeyChecking = settings.hostKeyChecking;
    const rune: RuneEndpointSettings = {};
    const { options } = this;
    if (options.user !== undefined) rune.user = options.user;
    if (options.port !== undefined) rune.port = options.port;
    if (options.identityFiles !== undefined) rune.identityFiles = options.identityFiles;
    if (options.proxyJump !== undefined) rune.proxyJump = options.proxyJump;
    if (options.knownHostsFiles !== undefined) rune.knownHostsFiles = options.knownHostsFiles;
    if (options.hostKeyChecking !== undefined) rune.hostKeyChecking = options.hostKeyChecking;
    if (options.connectTimeoutMs !== undefined) rune.connectTimeoutMs = options.connectTimeoutMs;
    if (options.keepaliveIntervalMs !== undefined) {
      rune.keepaliveIntervalMs = options.keepaliveIntervalMs;
    }
    if (options.keepaliveCountMax !== undefined) rune.keepaliveCountMax = options.keepaliveCountMax;
    if (options.useAgent === false) rune.useAgent = false;
    try {
      const route = resolveRoute({
        name: node.name,
        node: nodeInputs,
        rune,
        context: this.configContext,
        ...(sshConfig ? { sshConfig } : {}),
      });
      for (const warning of route.warnings) this.warn(warning);
      return route;
    } catch (error) {
      if (error instanceof ProxyJumpSyntaxError) throw invalid(error.message, node.name);
      throw error;
    }
  }

  private knownHostsFiles(endpoint: ResolvedEndpoint, settings: NodeSettings): string[] {
    const files = [
      // Resolved (and expanded) in ssh-config.ts: RUNE's list, else UserKnownHostsFile, else
      // the OpenSSH defaults; then GlobalKnownHostsFile (or /etc/ssh/ssh_known_hosts{,2}).
      ...endpoint.userKnownHostsFiles,
      ...endpoint.globalKnownHostsFiles,
      this.runeKnownHostsFile(),
      ...(settings.knownHostsFile === undefined ? [] : [expandHome(settings.knownHostsFile)]),
    ];
    return [...new Set(files)];
  }

  private runeKnownHostsFile(): string {
    return expandHome(this.options.runeKnownHostsFile ?? defaultRuneKnownHostsFile());
  }

  private warn(message: string, once = message): void {
    if (this.warned.has(once)) return;
    this.warned.add(once);
    this.options.onWarning?.(message);
  }

  // --- connections --------------------------------------------------------------------------

  /** Connect settings for one endpoint: everything ~/.ssh/config can decide comes resolved. */
  private connectSettings(endpoint: ResolvedEndpoint, settings: NodeSettings): ConnectSettings {
    const agent = endpoint.identityAgent;
    const result: ConnectSettings = {
      handshakeTimeoutMs: this.options.handshakeTimeoutMs ?? endpoint.connectTimeoutMs,
      keepaliveIntervalMs: endpoint.serverAliveIntervalSeconds * 1000,
      keepaliveCountMax: endpoint.serverAliveCountMax,
      hostKeyChecking: endpoint.strictHostKeyChecking,
      knownHostsFiles: this.knownHostsFiles(endpoint, settings),
      acceptNewFile: this.runeKnownHostsFile(),
      store: this.store,
      keys: this.keySource,
      warn: (message) => this.warn(message),
    };
    if (agent !== undefined) result.agentSocket = agent;
    return result;
  }

  /** Connects the whole route (jump hosts first), reusing pooled connections at every hop. */
  private async connect(
    route: ResolvedRoute,
    settings: NodeSettings,
    signal: AbortSignal,
  ): Promise<{ connection: SshConnection; reused: boolean }> {
    const chain = [...route.jumps, route.target];
    const factory = this.options.connectionFactory ?? tcpConnectionFactory;
    let previous: SshConnection | undefined;
    let result: { connection: SshConnection; reused: boolean } | undefined;
    for (let index = 0; index < chain.length; index++) {
      const endpoint = chain[index] as ResolvedEndpoint;
      const key = chain
        .slice(0, index + 1)
        .map(endpointKey)
        .join(' > ');
      const via = previous;
      const isJump = index < chain.length - 1;
      const connectSettings = this.connectSettings(endpoint, settings);
      const connectTimeoutMs = endpoint.connectTimeoutMs;
      const open = async (): Promise<SshConnection> => {
        await this.handshakes.acquire(signal);
        try {
          return await this.openWithRetry(endpoint, connectSettings, key, async () => {
            if (via === undefined) {
              return factory({
                host: endpoint.host,
                port: endpoint.port,
                timeoutMs: connectTimeoutMs,
              });
            }
            return this.forward(via, endpoint, connectTimeoutMs);
          });
        } finally {
          this.handshakes.release();
        }
      };
      try {
        result = await this.pool.get(key, open);
      } catch (error) {
        const rune = RuneError.from(error);
        if (isJump && !rune.details?.hop) {
          throw rune.withContext({ details: { hop: endpointKey(endpoint), hop_role: 'jump' } });
        }
        throw rune;
      }
      previous = result.connection;
    }
    if (result === undefined) throw new RuneError('INTERNAL_ERROR', 'empty route');
    return result;
  }

  /** Opens one SSH connection; retries a few times when the server drops us before the handshake. */
  private async openWithRetry(
    endpoint: ResolvedEndpoint,
    settings: ConnectSettings,
    key: string,
    stream: () => Promise<Duplex>,
  ): Promise<SshConnection> {
    for (let attempt = 0; ; attempt++) {
      const sock = await stream();
      try {
        const connected = await connectEndpoint(endpoint, sock, settings);
        const connection = new SshConnection(
          key,
          connected.client,
          this.maxSessions,
          endpointKey(endpoint),
          sock,
        );
        return connection;
      } catch (error) {
        const rune = RuneError.from(error);
        const dropped = rune.code === 'CONNECTION_LOST' && rune.details?.phase === 'handshake';
        if (!dropped || attempt >= 2) throw rune;
        // MaxStartups drops unauthenticated connections at random under load: back off and retry.
        await new Promise((resolve) =>
          setTimeout(resolve, 150 * (attempt + 1) + Math.random() * 200),
        );
      }
    }
  }

  /** A stream to `endpoint` through the jump connection `via` (ProxyJump). */
  private forward(
    via: SshConnection,
    endpoint: ResolvedEndpoint,
    timeoutMs: number,
  ): Promise<Duplex> {
    return new Promise<Duplex>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new RuneError(
            'PROXY_JUMP_FAILED',
            `jump host ${via.description} did not open a channel to ${endpoint.host}:${endpoint.port} within ${timeoutMs} ms`,
            { details: { jump: via.description, target: `${endpoint.host}:${endpoint.port}` } },
          ),
        );
      }, timeoutMs);
      try {
        via.client.forwardOut('127.0.0.1', 0, endpoint.host, endpoint.port, (error, channel) => {
          clearTimeout(timer);
          if (error) {
            reject(
              new RuneError(
                'PROXY_JUMP_FAILED',
                `jump host ${via.description} could not connect to ${endpoint.host}:${endpoint.port}: ${error.message}`,
                {
                  details: { jump: via.description, target: `${endpoint.host}:${endpoint.port}` },
                  cause: error,
                },
              ),
            );
            return;
          }
          resolve(channel);
        });
      } catch (error) {
        clearTimeout(timer);
        reject(via.closed ? via.lostError() : RuneError.from(error, 'PROXY_JUMP_FAILED'));
      }
    });
  }

  private readonly keySource: KeySource = {
    load: (file) => {
      let cached = this.keyCache.get(file);
      if (cached === undefined) {
        cached = this.loadKey(file);
        this.keyCache.set(file, cached);
      }
      return cached;
    },
  };

  private async loadKey(file: string): Promise<{ key: ParsedKey } | { skipped: string }> {
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return { skipped: code === 'ENOENT' ? 'missing' : `unreadable (${code ?? 'error'})` };
    }
    const parse = (passphrase?: string): ParsedKey | Error => {
      const parsed = ssh2.utils.parseKey(data, passphrase);
      return Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
    };
    let parsed = parse();
    if (parsed instanceof Error && /passphrase|encrypted/i.test(parsed.message)) {
      const envName = this.options.passphraseEnv ?? DEFAULT_PASSPHRASE_ENV;
      let passphrase = this.options.passphrase ?? this.env[envName];
      if (passphrase === undefined && this.options.passphrasePrompt !== undefined) {
        passphrase = await this.options.passphrasePrompt(file);
      }
      if (passphrase === undefined) {
        return { skipped: `encrypted, no passphrase (set ${envName} or use a TTY)` };
      }
      parsed = parse(passphrase);
      if (parsed instanceof Error) return { skipped: 'wrong passphrase' };
    }
    if (parsed instanceof Error) return { skipped: `not a usable private key (${parsed.message})` };
    if (!parsed.isPrivateKey()) return { skipped: 'not a private key' };
    return { key: parsed };
  }

  // --- execution ----------------------------------------------------------------------------

  /** One bootstrap exec: streams captured, timeout and cancellation enforced. */
  private async run(
    connection: SshConnection,
    command: string,
    stdin: Uint8Array,
    request: TransportExecRequest,
    runAs: string | undefined,
    phase: 'plugin' | 'upload' = 'plugin',
    marker?: string,
  ): Promise<RawRun> {
    if (Buffer.byteLength(command) > MAX_COMMAND_BYTES) {
      throw new RuneError('PAYLOAD_TOO_LARGE', 'the remote command line is too long');
    }
    const stdout = new HeadCapture(request.limits.maxStdoutBytes);
    const stderr = new TailCapture(request.limits.maxStderrBytes);
    const bootstrap = new BootstrapStderr((chunk) => stderr.push(chunk));
    const raw: RawRun = {
      exitCode: null,
      signal: null,
      stdout,
      stderr,
      bootstrap,
      interrupted: undefined,
      lost: undefined,
      sweep: undefined,
      heldOpen: false,
    };
    let channel: ClientChannel;
    try {
      channel = await connection.exec(command, request.signal);
    } catch (error) {
      if (request.signal.aborted) {
        raw.interrupted = 'cancelled';
        return raw;
      }
      throw error;
    }
    return new Promise<RawRun>((resolve) => {
      let sawExit = false;
      let finished = false;
      let forceTimer: NodeJS.Timeout | undefined;
      let drainTimer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        clearTimeout(forceTimer);
        clearTimeout(drainTimer);
        request.signal.removeEventListener('abort', onAbort);
        removeCloseListener();
        bootstrap.flush();
        if (!sawExit && raw.interrupted === undefined) {
          raw.lost = new RuneError(
            'CONNECTION_LOST',
            `the connection to ${connection.description} was lost while the plugin was running; its outcome is unknown`,
            {
              details: {
                connection: connection.description,
                stdout_bytes: stdout.totalBytes,
                stderr_bytes: stderr.totalBytes,
                started: bootstrap.pgid !== undefined,
              },
            },
          );
        }
        resolve(raw);
      };
      // Closes the channel ourselves, and resolves even if the close is never confirmed.
      const forceClose = (): void => {
        channel.close();
        setTimeout(finish, 500);
      };
      const kill = (): void => {
        if (raw.sweep !== undefined || finished || marker === undefined) return;
        if (bootstrap.pgid === undefined) return; // retried when the plugin has started
        raw.sweep = sweepRemote(connection, marker, runAs);
      };
      const interrupt = (reason: 'timeout' | 'cancelled'): void => {
        if (finished || raw.interrupted !== undefined) return;
        raw.interrupted = reason;
        kill();
        // Resolve in bounded time whatever happens remotely (the watchdog finishes the job):
        // give a bootstrap that has not announced itself time to do so, then close.
        forceTimer = setTimeout(
          forceClose,
          bootstrap.pgid === undefined && phase === 'plugin'
            ? FORCE_CLOSE_UNSTARTED_MS
            : FORCE_CLOSE_MS,
        );
      };
      const onAbort = (): void => interrupt('cancelled');
      // After the exit status, the run is over: output that is still flowing is drained, but a
      // channel that stays silent and open is held by something that escaped the marker.
      const armDrain = (): void => {
        if (!sawExit || finished || raw.interrupted !== undefined) return;
        clearTimeout(drainTimer);
        drainTimer = setTimeout(() => {
          raw.heldOpen = true;
          forceClose();
        }, EXIT_DRAIN_IDLE_MS);
      };
      const onExit = (): void => {
        sawExit = true;
        // The plugin has ended: a later timer must not turn its result into a timeout.
        clearTimeout(timer);
        armDrain();
      };
      // The plugin's timeout starts when it starts (the pgid line); until then the bootstrap
      // (and an upload) get their own bound, so a slow session start never eats the plugin's time.
      let timer = setTimeout(
        () => interrupt('timeout'),
        phase === 'upload'
          ? Math.max(UPLOAD_TIMEOUT_MS, request.timeoutMs)
          : BOOTSTRAP_START_TIMEOUT_MS,
      );
      request.signal.addEventListener('abort', onAbort, { once: true });
      const removeCloseListener = connection.onClose(() => setImmediate(finish));

      channel.on('data', (chunk: Buffer) => {
        stdout.push(chunk);
        armDrain();
      });
      channel.stderr.on('data', (chunk: Buffer) => {
        armDrain();
        const hadPgid = bootstrap.pgid !== undefined;
        bootstrap.push(chunk);
        if (hadPgid || bootstrap.pgid === undefined) return;
        if (raw.interrupted !== undefined) {
          kill();
        } else if (!sawExit) {
          clearTimeout(timer);
          timer = setTimeout(() => interrupt('timeout'), request.timeoutMs);
        }
      });
      channel.on('error', () => undefined);
      channel.on('exit', (code: number | null, signal?: string) => {
        if (typeof code === 'number') raw.exitCode = code;
        else if (typeof signal === 'string')
          raw.signal = signal.startsWith('SIG') ? signal : `SIG${signal}`;
        onExit();
      });
      // ssh2 emits 'exit' while it parses a read. When the exit status arrives in the same read
      // as the reply to the exec request (a fast command, a busy event loop), 'exit' fires before
      // these listeners exist. 'close' comes only after the streams ended and repeats the status
      // (ssh2 passes the exit code, or null and the signal name): without it a clean exit would
      // look like a lost connection. With no exit status at all, ssh2 passes undefined.
      channel.on('close', (code?: number | null, signal?: string) => {
        if (!sawExit && typeof code === 'number') {
          sawExit = true;
          raw.exitCode = code;
        } else if (!sawExit && code === null && typeof signal === 'string') {
          sawExit = true;
          raw.signal = signal.startsWith('SIG') ? signal : `SIG${signal}`;
        }
        finish();
      });
      channel.end(Buffer.from(stdin.buffer, stdin.byteOffset, stdin.byteLength));
      if (request.signal.aborted) onAbort();
    });
  }

  /** Second round trip on a cache miss: stdin = plugin bytes, stored after the sha256 check. */
  private async upload(
    connection: SshConnection,
    request: TransportExecRequest,
    runAs: string | undefined,
  ): Promise<'timeout' | 'cancelled' | undefined> {
    const command = buildBootstrapCommand({
      op: 'upload',
      sha256: request.plugin.sha256,
      location: this.options.remoteCacheDir ?? DEFAULT_REMOTE_CACHE_DIR,
      watchdogSeconds: 0,
      ...(runAs === undefined ? {} : { runAs }),
    });
    const raw = await this.run(
      connection,
      command,
      request.plugin.content,
      { ...request, limits: { maxStdoutBytes: 4096, maxStderrBytes: 8192 } },
      runAs,
      'upload',
    );
    if (raw.lost !== undefined) throw raw.lost;
    if (raw.interrupted !== undefined) return raw.interrupted;
    if (raw.bootstrap.find('stored') !== undefined) return undefined;
    const integrity = raw.bootstrap.find('integrity');
    if (integrity !== undefined) {
      throw new RuneError(
        'PLUGIN_INTEGRITY_FAILED',
        `the uploaded plugin ${request.plugin.action} hashed to ${integrity.args[0]} on the node, expected ${request.plugin.sha256}; nothing was executed`,
        { details: { expected_sha256: request.plugin.sha256, actual_sha256: integrity.args[0] } },
      );
    }
    await this.checkBootstrap(connection, raw, request, runAs);
    throw new RuneError(
      'PLUGIN_NOT_EXECUTABLE',
      `uploading the plugin to ${request.node.name} failed`,
      {
        details: { exit_code: raw.exitCode, stderr: raw.bootstrap.preamble },
      },
    );
  }

  /**
   * Failure path only: sudo -n says "a password is required" both when a password rule exists
   * and (by design, to hide its policy) when nothing allows the command. `sudo -n -l` tells them
   * apart without a password when the user has any NOPASSWD rule; when it cannot, the answer is
   * "password required".
   */
  private async sudoAllowed(connection: SshConnection, runAs: string): Promise<boolean> {
    try {
      const channel = await connection.exec(buildSudoCheckCommand(runAs));
      return await new Promise<boolean>((resolve) => {
        let stderr = '';
        let code: number | null = null;
        channel.on('data', () => undefined);
        channel.stderr.on('data', (chunk: Buffer) => {
          if (stderr.length < 4096) stderr += chunk.toString();
        });
        channel.on('exit', (exitCode: number | null) => {
          code = exitCode;
        });
        channel.on('close', () => resolve(code === 0 || /password is required/i.test(stderr)));
        channel.end();
      });
    } catch {
      return true;
    }
  }

  /** Turns a bootstrap that did not start the plugin into the precise error. */
  private async checkBootstrap(
    connection: SshConnection,
    raw: RawRun,
    request: TransportExecRequest,
    runAs: string | undefined,
  ): Promise<void> {
    const { bootstrap } = raw;
    if (bootstrap.pgid !== undefined) return;
    if (bootstrap.find('stored') !== undefined) return;
    if (raw.lost !== undefined) return;
    const node = request.node.name;
    if (bootstrap.find('notinstalled') !== undefined) {
      throw new RuneError(
        'PLUGIN_NOT_INSTALLED',
        `deploy mode preinstalled: ${this.preinstalledPath(request)} does not exist on ${node}`,
        { details: { path: this.preinstalledPath(request) } },
      );
    }
    const unsafe = bootstrap.find('unsafe');
    if (unsafe !== undefined) {
      const component = unsafe.args.join(' ');
      const location =
        request.deployMode === 'ship'
          ? (this.options.remoteCacheDir ?? DEFAULT_REMOTE_CACHE_DIR)
          : this.preinstalledPath(request);
      throw new RuneError(
        'PLUGIN_CACHE_UNSAFE',
        `${request.deployMode === 'ship' ? 'the plugin cache' : 'the preinstalled plugin'} ${location} on ${node} is not safe: ${component} is a symlink, not owned by the remote user or root, or writable by others; nothing was executed`,
        {
          details: { path: location, unsafe_component: component, deploy_mode: request.deployMode },
        },
      );
    }
    const error = bootstrap.find('error');
    const text = bootstrap.preamble;
    if (runAs !== undefined && error === undefined && bootstrap.statuses.length === 0) {
      let code: ErrorCode | undefined;
      if (/password is required|a terminal is required|askpass/i.test(text)) {
        code = (await this.sudoAllowed(connection, runAs))
          ? 'PRIVILEGE_PASSWORD_REQUIRED'
          : 'PRIVILEGE_DENIED';
      } else if (
        /not allowed|not in the sudoers|may not run sudo|unknown user|sudo: .*not found/i.test(text)
      )
        code = 'PRIVILEGE_DENIED';
      else if (raw.exitCode === 127) code = 'PRIVILEGE_DENIED';
      if (code !== undefined) {
        throw new RuneError(
          code,
          code === 'PRIVILEGE_PASSWORD_REQUIRED'
            ? `sudo on ${node} needs a password to run as ${runAs}; RUNE only uses non-interactive sudo (add a NOPASSWD rule)`
            : `the login user on ${node} may not run the plugin as ${runAs} through sudo: ${text.trim()}`,
          { details: { run_as: runAs, sudo_message: text.trim(), exit_code: raw.exitCode } },
        );
      }
    }
    if (error !== undefined && error.args[0] === 'no-sha256') {
      throw new RuneError(
        'PLUGIN_INTEGRITY_FAILED',
        `${node} has neither sha256sum nor shasum: the cached plugin cannot be verified, nothing was executed`,
      );
    }
    if (bootstrap.find('miss') !== undefined) return;
    throw new RuneError(
      'PLUGIN_NOT_EXECUTABLE',
      error !== undefined
        ? `the RUNE bootstrap on ${node} could not prepare the plugin (${error.args.join(' ')}); check the remote cache dir ${this.options.remoteCacheDir ?? DEFAULT_REMOTE_CACHE_DIR}`
        : `the RUNE bootstrap did not start on ${node} (exit ${raw.exitCode ?? raw.signal}): ${text.trim() || 'no output'}`,
      {
        details: {
          exit_code: raw.exitCode,
          signal: raw.signal,
          stderr: text.trim(),
          bootstrap: error?.args,
        },
      },
    );
  }
}

/**
 * Sweeps run `marker` on the node from a second channel (outside the session limit, as the
 * run-as user) and reads the sweep's `<killed> <complete>` line. Settles in bounded time and never
 * rejects: a failure is reported in `failure`.
 */
function sweepRemote(
  connection: SshConnection,
  marker: string,
  runAs: string | undefined,
): Promise<ControlSweep> {
  return new Promise<ControlSweep>((resolve) => {
    let settled = false;
    const settle = (result: ControlSweep): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const timer = setTimeout(
      () => settle({ outcome: undefined, failure: `no answer within ${SWEEP_TIMEOUT_MS} ms` }),
      SWEEP_TIMEOUT_MS,
    );
    let output = '';
    connection
      .execUnlimited(buildKillCommand(marker, runAs))
      .then((sweeper) => {
        sweeper.on('data', (chunk: Buffer) => {
          if (output.length < 4096) output += chunk.toString('latin1');
        });
        sweeper.stderr.on('data', () => undefined);
        sweeper.on('error', () => undefined);
        sweeper.on('close', () => {
          const outcome = parseSweepOutput(output);
          settle(
            outcome === undefined
              ? { outcome: undefined, failure: `unexpected sweep output ${JSON.stringify(output)}` }
              : { outcome, failure: undefined },
          );
        });
        sweeper.end();
      })
      .catch((error: unknown) =>
        settle({
          outcome: undefined,
          failure: `the kill channel could not be opened: ${error instanceof Error ? error.message : String(error)}`,
        }),
      );
  });
}

/**
 * The bootstrap's trailer when it can be believed: it is the last thing on stderr (a plugin's
 * forgery before it is passed through as text) and it names the status the bootstrap exited with.
 */
function trustedTrailer(raw: RawRun): BootstrapTrailer | undefined {
  const trailer = raw.bootstrap.trailer;
  if (trailer === undefined || raw.signal !== null || raw.exitCode !== trailer.status)
    return undefined;
  return trailer;
}

/** What the run left behind and whether all of it was found and killed. */
function containmentOf(raw: RawRun, sweep: ControlSweep | undefined): ContainmentReport {
  if (raw.bootstrap.pgid === undefined) {
    // Stopped before the plugin started: if the bootstrap still starts it, the watchdog sweeps.
    return raw.interrupted === undefined
      ? NOTHING_RAN
      : {
          method: 'run-marker',
          killed: 0,
          complete: false,
          detail:
            'the run was stopped before the bootstrap started the plugin; the remote watchdog sweeps it if it starts later',
        };
  }
  // Either sweep, complete, leaves nothing marked alive: the control side's stops and kills
  // everything at timeout/cancel, the bootstrap's runs once the plugin has ended.
  const trailer = trustedTrailer(raw);
  const killed = (sweep?.outcome?.killed ?? 0) + (trailer?.killed ?? 0);
  const swept = sweep?.outcome?.complete === true || trailer?.complete === true;
  if (swept && !raw.heldOpen) return { method: 'run-marker', killed, complete: true };
  const details: string[] = [];
  if (raw.heldOpen) {
    details.push(
      'the output stayed open after the plugin ended: a process without the run marker holds it',
    );
  }
  if (sweep !== undefined && sweep.outcome === undefined) {
    details.push(`the control-side sweep failed: ${sweep.failure ?? 'unknown'}`);
  }
  if (sweep?.outcome?.complete === false || trailer?.complete === false) {
    details.push('the node has no readable /proc: processes the plugin started cannot be found');
  }
  if (trailer === undefined && !swept) details.push('the bootstrap did not report its final sweep');
  return { method: 'run-marker', killed, complete: false, detail: details.join('; ') };
}

/** Creates the SSH transport. Call `close()` when done to end every connection. */
export function createSshTransport(options: SshTransportOptions = {}): Transport {
  return new SshTransport(options);
}

export { VERSION };
