/**
 * Opening one authenticated SSH connection to one endpoint, with a precise EPS error for every way
 * it can fail.
 *
 * The TCP socket is opened here (or by an injected {@link SshConnectionFactory}), not by ssh2, so
 * that the phases can be told apart: DNS failure, refusal, network unreachable and connect timeout
 * happen before the socket connects; a host that accepts TCP but never completes the SSH handshake
 * is a HANDSHAKE_TIMEOUT; then host key verification (our `hostVerifier`, which records why it
 * refused), then authentication (our `authHandler`, which records every method tried).
 */
import { isIP, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type ErrorCode, RuneError } from '@rune/protocol';
import type { AnyAuthMethod, AuthenticationType, ClientErrorExtensions, ParsedKey } from 'ssh2';
import ssh2 from 'ssh2';
import { createIdentitiesOnlyAgent } from './identities-only-agent.js';
import {
  checkHostKey,
  type KnownHostsStore,
  keyTypeOfBlob,
  preferredHostKeyAlgorithms,
  sshFingerprint,
} from './known-hosts.js';
import type { HostKeyChecking, ResolvedEndpoint } from './ssh-config.js';

export type { HostKeyChecking } from './ssh-config.js';

const { Client } = ssh2;
/** An ssh2 client. */
export type SshClient = InstanceType<typeof ssh2.Client>;

/** What a connection factory is asked for. */
export interface SshSocketRequest {
  host: string;
  port: number;
  /** Give up (CONNECT_TIMEOUT) after this long. */
  timeoutMs: number;
}

/**
 * Opens the byte stream to the first hop (TCP by default). Substitute it to test failure
 * handling or to tunnel through something else; reject with a RuneError to choose the code.
 */
export type SshConnectionFactory = (request: SshSocketRequest) => Promise<Duplex>;

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA']);
const UNREACHABLE_CODES = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN']);

/** Maps a socket error to its EPS code. */
export function socketErrorCode(error: NodeJS.ErrnoException): ErrorCode {
  const code = error.code ?? '';
  if (DNS_CODES.has(code)) return 'DNS_LOOKUP_FAILED';
  if (code === 'ECONNREFUSED') return 'CONNECTION_REFUSED';
  if (UNREACHABLE_CODES.has(code)) return 'HOST_UNREACHABLE';
  if (code === 'ETIMEDOUT') return 'CONNECT_TIMEOUT';
  return 'CONNECTION_LOST';
}

/** The default factory: a TCP connection with a connect timeout and precise errors. */
export const tcpConnectionFactory: SshConnectionFactory = ({ host, port, timeoutMs }) =>
  new Promise<Duplex>((resolve, reject) => {
    const socket = new Socket();
    let resolved = false;
    let lookedUp = isIP(host) !== 0;
    const fail = (error: RuneError): void => {
      if (resolved) return;
      resolved = true;
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(() => {
      if (!lookedUp) {
        fail(
          new RuneError(
            'DNS_LOOKUP_FAILED',
            `DNS lookup of ${host} timed out after ${timeoutMs} ms`,
            {
              details: { host, port, timeout_ms: timeoutMs },
            },
          ),
        );
      } else {
        fail(
          new RuneError(
            'CONNECT_TIMEOUT',
            `no TCP connection to ${host}:${port} within ${timeoutMs} ms`,
            {
              details: { host, port, timeout_ms: timeoutMs },
            },
          ),
        );
      }
    }, timeoutMs);
    socket.once('lookup', (error) => {
      if (error === null) lookedUp = true;
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      const code = socketErrorCode(error);
      const what =
        code === 'DNS_LOOKUP_FAILED'
          ? `cannot resolve ${host}`
          : code === 'CONNECTION_REFUSED'
            ? `${host}:${port} refused the connection`
            : `cannot connect to ${host}:${port}`;
      fail(
        new RuneError(code, `${what} (${error.code ?? error.message})`, {
          details: { host, port, errno: error.code },
          cause: error,
        }),
      );
    });
    socket.once('connect', () => {
      if (resolved) return;
      resolved = true;
      clearTimeout(timer);
      socket.setNoDelay(true);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.connect({ host, port });
  });

/** Loads private keys (with passphrases) once per file. */
export interface KeySource {
  /** The parsed key, or a reason it cannot be used (missing, wrong passphrase, ...). */
  load(file: string): Promise<{ key: ParsedKey } | { skipped: string }>;
}

/** Everything {@link connectEndpoint} needs besides the endpoint. */
export interface ConnectSettings {
  handshakeTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  hostKeyChecking: HostKeyChecking;
  /** known_hosts files to read, in order. */
  knownHostsFiles: readonly string[];
  /** Where accept-new records new keys. */
  acceptNewFile: string;
  store: KnownHostsStore;
  keys: KeySource;
  /** ssh-agent socket (SSH_AUTH_SOCK) when the agent may be used. */
  agentSocket?: string;
  warn: (message: string) => void;
}

/** A connected, authenticated client and what was learned on the way. */
export interface ConnectedEndpoint {
  client: SshClient;
  hostKeyFingerprint: string;
  /** accept-new recorded this host's key during this connect. */
  hostKeyRecorded: boolean;
  /** The method that authenticated (`publickey <file>` or `agent`). */
  authenticatedWith: string;
}

type HostKeyFailure = { code: ErrorCode; message: string; details: Record<string, unknown> };

/**
 * Connects and authenticates to `endpoint` over `sock` (an already-open stream: TCP or a
 * forwarded channel through a jump host). Rejects with a RuneError; the socket is destroyed.
 */
export async function connectEndpoint(
  endpoint: ResolvedEndpoint,
  sock: Duplex,
  settings: ConnectSettings,
): Promise<ConnectedEndpoint> {
  const { host, port, user } = endpoint;
  const where = `${user}@${host}:${port}`;
  // HostKeyAlias: known_hosts is searched for the alias itself, without a port (sshconnect.c).
  const keyHost = endpoint.hostKeyAlias ?? host;
  const keyPort = endpoint.hostKeyAlias === undefined ? port : 22;
  const known = await settings.store.load(settings.knownHostsFiles);
  let hostKeyFailure: HostKeyFailure | undefined;
  let hostKeyFingerprint = '';
  let hostKeyRecorded = false;

  const hostVerifier = (key: Buffer, verify: (valid: boolean) => void): void => {
    hostKeyFingerprint = sshFingerprint(key);
    const keyType = keyTypeOfBlob(key) ?? 'unknown';
    const base = {
      host,
      port,
      key_type: keyType,
      fingerprint: hostKeyFingerprint,
      ...(endpoint.hostKeyAlias === undefined ? {} : { host_key_alias: endpoint.hostKeyAlias }),
    };
    if (settings.hostKeyChecking === 'off') {
      settings.warn(
        `WARNING: host key checking is OFF: accepting ${keyType} key ${hostKeyFingerprint} of ${host}:${port} without verification`,
      );
      verify(true);
      return;
    }
    const check = checkHostKey(known.entries, keyHost, keyPort, key);
    switch (check.status) {
      case 'trusted':
        verify(true);
        return;
      case 'revoked':
        hostKeyFailure = {
          code: 'HOST_KEY_REVOKED',
          message: `the ${keyType} host key ${hostKeyFingerprint} of ${host}:${port} is marked @revoked (${check.entry.file}:${check.entry.line}); nothing was executed`,
          details: { ...base, file: check.entry.file, line: check.entry.line },
        };
        verify(false);
        return;
      case 'mismatch': {
        const expected = check.recorded.map((entry) => ({
          key_type: entry.keyType,
          fingerprint: sshFingerprint(entry.key),
          file: entry.file,
          line: entry.line,
        }));
        hostKeyFailure = {
          code: 'HOST_KEY_MISMATCH',
          message: `HOST KEY MISMATCH for ${host}:${port}: it presented ${keyType} ${hostKeyFingerprint}, known_hosts records ${expected
            .map((entry) => `${entry.key_type} ${entry.fingerprint} (${entry.file}:${entry.line})`)
            .join(', ')}; nothing was executed`,
          details: { ...base, expected, same_key_type_recorded: check.sameType },
        };
        verify(false);
        return;
      }
      case 'cert-authority-only':
        hostKeyFailure = {
          code: 'UNSUPPORTED_FEATURE',
          message: `${host}:${port} is trusted only through @cert-authority lines (${check.entries[0]?.file}:${check.entries[0]?.line}); OpenSSH host certificates are not supported, add the host key itself to known_hosts`,
          details: { ...base, feature: 'openssh-certificates' },
        };
        verify(false);
        return;
      case 'unknown':
        if (settings.hostKeyChecking === 'accept-new') {
          settings.store.append(settings.acceptNewFile, keyHost, keyPort, key).then(
            (added) => {
              hostKeyRecorded = added;
              if (added) {
                settings.warn(
                  `accept-new: recorded ${keyType} key ${hostKeyFingerprint} of ${host}:${port} in ${settings.acceptNewFile}`,
                );
              }
              verify(true);
            },
            (error: unknown) => {
              hostKeyFailure = {
                code: 'HOST_KEY_UNKNOWN',
                message: `cannot record the host key of ${host}:${port} in ${settings.acceptNewFile}: ${String(error)}`,
                details: { ...base, file: settings.acceptNewFile },
              };
              verify(false);
            },
          );
          return;
        }
        hostKeyFailure = {
          code: 'HOST_KEY_UNKNOWN',
          message: `${host}:${port} is not in known_hosts (it presented ${keyType} ${hostKeyFingerprint}); add it (ssh-keyscan, or connect once with ssh) or use host_key_checking = "accept-new"`,
          details: { ...base, known_hosts_files: settings.knownHostsFiles },
        };
        verify(false);
        return;
    }
  };

  const tried: string[] = [];
  let serverMethods: string[] = [];
  const attempts = authAttempts(endpoint, settings, tried);
  const authHandler = (
    methodsLeft: AuthenticationType[] | null,
    _partialSuccess: boolean | null,
    next: (method: AnyAuthMethod) => void,
  ): void => {
    if (Array.isArray(methodsLeft)) serverMethods = methodsLeft;
    const stop = false as unknown as AnyAuthMethod;
    void (async () => {
      for (;;) {
        const attempt = attempts.shift();
        if (attempt === undefined) return next(stop);
        const method = await attempt();
        if (method === undefined) continue;
        if (serverMethods.length > 0 && !serverMethods.includes('publickey')) {
          tried.push('(server does not offer publickey)');
          return next(stop);
        }
        return next(method);
      }
    })();
  };

  const client = new Client();
  return new Promise<ConnectedEndpoint>((resolve, reject) => {
    let settled = false;
    const fail = (error: RuneError): void => {
      if (settled) return;
      settled = true;
      client.removeAllListeners('ready');
      client.on('error', () => undefined);
      client.end();
      sock.destroy();
      reject(error);
    };
    client.once('ready', () => {
      if (settled) return;
      settled = true;
      resolve({
        client,
        hostKeyFingerprint,
        hostKeyRecorded,
        authenticatedWith: tried[tried.length - 1] ?? 'none',
      });
    });
    client.on('error', (error: Error & ClientErrorExtensions) => {
      if (hostKeyFailure !== undefined) {
        fail(
          new RuneError(hostKeyFailure.code, hostKeyFailure.message, {
            details: hostKeyFailure.details,
            cause: error,
          }),
        );
      } else if (error.level === 'client-authentication') {
        fail(
          new RuneError(
            'AUTH_FAILED',
            `authentication as ${user} to ${host}:${port} failed; tried: ${tried.length > 0 ? tried.join(', ') : 'nothing (no usable key and no agent)'}`,
            {
              details: { host, port, user, methods_tried: tried, server_methods: serverMethods },
              cause: error,
            },
          ),
        );
      } else if (error.level === 'client-timeout') {
        fail(
          new RuneError(
            'HANDSHAKE_TIMEOUT',
            `${host}:${port} accepted the connection but did not complete the SSH handshake within ${settings.handshakeTimeoutMs} ms`,
            { details: { host, port, timeout_ms: settings.handshakeTimeoutMs }, cause: error },
          ),
        );
      } else {
        fail(
          new RuneError(
            'CONNECTION_LOST',
            `SSH connection to ${where} failed during the handshake: ${error.message}`,
            {
              details: { host, port, phase: 'handshake', level: error.level },
              cause: error,
            },
          ),
        );
      }
    });
    client.once('close', () => {
      fail(
        new RuneError(
          'CONNECTION_LOST',
          `${host}:${port} closed the connection during the SSH handshake`,
          {
            details: { host, port, phase: 'handshake' },
          },
        ),
      );
    });
    try {
      client.connect({
        sock,
        username: user,
        readyTimeout: settings.handshakeTimeoutMs,
        keepaliveInterval: settings.keepaliveIntervalMs,
        keepaliveCountMax: settings.keepaliveCountMax,
        hostVerifier,
        authHandler,
        algorithms: {
          serverHostKey: preferredHostKeyAlgorithms(known.entries, keyHost, keyPort) as never,
        },
      });
    } catch (error) {
      fail(
        new RuneError(
          'CONNECTION_LOST',
          `cannot start the SSH handshake with ${where}: ${String(error)}`,
          {
            cause: error,
          },
        ),
      );
    }
  });
}

/** The authentication attempts for an endpoint, in order; each records itself in `tried`. */
function authAttempts(
  endpoint: ResolvedEndpoint,
  settings: ConnectSettings,
  tried: string[],
): Array<() => Promise<AnyAuthMethod | undefined>> {
  const username = endpoint.user;
  const fromFile = (file: string) => async (): Promise<AnyAuthMethod | undefined> => {
    const loaded = await settings.keys.load(file);
    if ('skipped' in loaded) {
      // Missing default keys are normal; anything else is worth listing.
      if (endpoint.identityFilesConfigured || loaded.skipped !== 'missing') {
        tried.push(`publickey ${file} (skipped: ${loaded.skipped})`);
      }
      return undefined;
    }
    tried.push(`publickey ${file}`);
    return { type: 'publickey', username, key: loaded.key };
  };
  const attempts: Array<() => Promise<AnyAuthMethod | undefined>> = [];
  const files = endpoint.identityFiles;
  if (endpoint.identityFilesConfigured) attempts.push(...files.map(fromFile));
  if (settings.agentSocket !== undefined) {
    const socket = settings.agentSocket;
    attempts.push(async () => {
      if (!endpoint.identitiesOnly) {
        tried.push('agent');
        return { type: 'agent', username, agent: socket };
      }
      // IdentitiesOnly: only the agent's copies of the configured identity files' keys.
      const agent = await createIdentitiesOnlyAgent(socket, endpoint.identityFiles);
      if (agent === undefined) return undefined;
      tried.push('agent (IdentitiesOnly)');
      return { type: 'agent', username, agent };
    });
  }
  if (!endpoint.identityFilesConfigured) attempts.push(...files.map(fromFile));
  return attempts;
}
