/**
 * From a node to a live, pooled SSH connection: resolves the node's route (RUNE options, node
 * settings and ~/.ssh/config, with OpenSSH's precedence, in ssh-config.ts), then connects every
 * hop of it — jump hosts first, each through the previous one — reusing a pooled connection at
 * every hop that has one.
 *
 * New handshakes are paced by one semaphore shared by all nodes (OpenSSH `MaxStartups` drops
 * unauthenticated connections beyond 10), and a connection the server dropped before the
 * handshake is retried twice with a jittered back-off. Warnings (host key checking off, a key
 * recorded by accept-new, ~/.ssh/config keywords RUNE warns about) are given once each.
 */
import type { Duplex } from 'node:stream';
import { RuneError } from '@rune/protocol';
import type { TargetNode } from '@rune/transport';
import { ConnectionPool, Semaphore, SshConnection } from './connection-pool.js';
import { KeyLoader } from './keys.js';
import { KnownHostsStore } from './known-hosts.js';
import { type NodeSettings, readNodeSettings } from './node-settings.js';
import {
  defaultSshConfigContext,
  expandHome,
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
  tcpConnectionFactory,
} from './ssh-connector.js';
import {
  defaultRuneKnownHostsFile,
  invalidConfig,
  type ResolvedSshTransportOptions,
} from './ssh-options.js';

/** `user@host:port`: how an endpoint is named in pool keys, metadata and messages. */
export const endpointKey = (endpoint: ResolvedEndpoint): string =>
  `${endpoint.user}@${endpoint.host}:${endpoint.port}`;

/** A node's resolved route and settings, before anything is contacted. */
export interface PlannedRoute {
  settings: NodeSettings;
  route: ResolvedRoute;
}

/** A node's connection, and the route it took. */
export interface NodeConnection {
  route: ResolvedRoute;
  connection: SshConnection;
  /** True when the pool already had the target's connection. */
  reused: boolean;
  /** How long connecting took (0 for a reused connection). */
  connectMs: number;
}

/**
 * Wraps one SSH handshake (key exchange, host key check, authentication) of a new connection:
 * how the exec path reports it as its `handshake` phase. It must return what `step` returns and
 * rethrow what it throws.
 */
export type HandshakeHook = <T>(step: () => Promise<T>) => Promise<T>;

const direct: HandshakeHook = (step) => step();

/** Resolves routes and owns the connection pool of one transport. */
export class RouteConnector {
  private readonly pool = new ConnectionPool();
  private readonly handshakes: Semaphore;
  private readonly store = new KnownHostsStore();
  private readonly keys: KeySource;
  private readonly warned = new Set<string>();
  private readonly configContext: SshConfigContext;
  private sshConfig: Promise<SshConfigFile | undefined> | undefined;

  constructor(private readonly options: ResolvedSshTransportOptions) {
    this.configContext = defaultSshConfigContext(options.env);
    this.handshakes = new Semaphore(options.maxConcurrentHandshakes);
    this.keys = new KeyLoader({
      passphraseEnv: options.passphraseEnv,
      env: options.env,
      ...(options.passphrase === undefined ? {} : { passphrase: options.passphrase }),
      ...(options.passphrasePrompt === undefined ? {} : { prompt: options.passphrasePrompt }),
    });
  }

  /** Reads `node`'s settings and resolves its route; nothing is contacted yet. */
  async resolve(node: TargetNode): Promise<PlannedRoute> {
    const settings = readNodeSettings(node);
    return { settings, route: await this.route(node, settings) };
  }

  /**
   * Connects every hop of a resolved route, or takes it from the pool. Rejects with the RuneError
   * of the hop that failed. `handshake` wraps each SSH handshake this call performs itself (none
   * for a pooled connection, one per new hop, one per retry).
   */
  async open(
    planned: PlannedRoute,
    signal: AbortSignal,
    handshake: HandshakeHook = direct,
  ): Promise<NodeConnection> {
    const started = performance.now();
    const { connection, reused } = await this.connect(
      planned.route,
      planned.settings,
      signal,
      handshake,
    );
    return {
      route: planned.route,
      connection,
      reused,
      connectMs: reused ? 0 : performance.now() - started,
    };
  }

  /** {@link resolve} then {@link open}. */
  async connectNode(node: TargetNode, signal: AbortSignal): Promise<NodeConnection> {
    return this.open(await this.resolve(node), signal);
  }

  /** Ends every connection, destroying the sockets of those still open after `graceMs`. */
  close(graceMs: number): Promise<void> {
    return this.pool.close(graceMs);
  }

  private async route(node: TargetNode, settings: NodeSettings): Promise<ResolvedRoute> {
    const { options } = this;
    if (options.useSshConfig !== false && this.sshConfig === undefined) {
      this.sshConfig = readSshConfig(options.sshConfigFile, { context: this.configContext });
    }
    const sshConfig = options.useSshConfig === false ? undefined : await this.sshConfig;
    const nodeInputs: Parameters<typeof resolveRoute>[0]['node'] = {};
    if (node.address !== undefined) nodeInputs.address = node.address;
    if (node.port !== undefined) nodeInputs.port = node.port;
    if (node.user !== undefined) nodeInputs.user = node.user;
    if (settings.identityFiles !== undefined) nodeInputs.identityFiles = settings.identityFiles;
    if (settings.proxyJump !== undefined) nodeInputs.proxyJump = settings.proxyJump;
    if (settings.hostKeyChecking !== undefined)
      nodeInputs.hostKeyChecking = settings.hostKeyChecking;
    const rune: RuneEndpointSettings = {};
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
      if (error instanceof ProxyJumpSyntaxError) throw invalidConfig(error.message, node.name);
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
      keys: this.keys,
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
    handshake: HandshakeHook,
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
          return await this.openWithRetry(endpoint, connectSettings, key, handshake, async () => {
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
    handshake: HandshakeHook,
    stream: () => Promise<Duplex>,
  ): Promise<SshConnection> {
    for (let attempt = 0; ; attempt++) {
      const sock = await stream();
      try {
        const connected = await handshake(() => connectEndpoint(endpoint, sock, settings));
        return new SshConnection(
          key,
          connected.client,
          this.options.maxSessionsPerConnection,
          endpointKey(endpoint),
          sock,
        );
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
}
