/**
 * Where to connect and as whom: merges per-node settings, RUNE's configuration and the user's
 * OpenSSH client configuration (~/.ssh/config) into one resolved endpoint per node and hop.
 *
 * Precedence, highest first: per-node settings (inventory `address`/`port`/`user`,
 * `settings.identity_file`, `settings.proxy_jump`) > RUNE configuration (`[ssh]` section, i.e.
 * {@link SshTransportOptions}) > ~/.ssh/config (`Host` blocks matched against the node *name*,
 * first value wins as in OpenSSH) > defaults (port 22, the local user name, ~/.ssh/id_* keys).
 * Only HostName, User, Port, IdentityFile and ProxyJump are read; `Match exec` is never evaluated
 * (RUNE does not run commands from config files).
 */
import { readFile } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import SSHConfig from 'ssh-config';

/** The subset of an OpenSSH `Host` block RUNE uses. */
export interface SshConfigHost {
  hostName?: string;
  user?: string;
  port?: number;
  identityFiles?: string[];
  proxyJump?: string;
}

/** A parsed ~/.ssh/config. */
export interface SshConfigFile {
  /** Settings for `host` (a node or jump host name as the operator wrote it). */
  lookup(host: string): SshConfigHost;
}

/** Parses OpenSSH client configuration text. */
export function parseSshConfig(text: string): SshConfigFile {
  const config = SSHConfig.parse(text);
  return {
    lookup(host: string): SshConfigHost {
      const computed = config.compute(host, { ignoreCase: true, matchExec: false });
      const first = (key: string): string | undefined => {
        const value = computed[key];
        if (Array.isArray(value)) return value[0];
        return value;
      };
      const result: SshConfigHost = {};
      const hostName = first('hostname');
      if (hostName !== undefined) result.hostName = hostName;
      const user = first('user');
      if (user !== undefined) result.user = user;
      const port = first('port');
      if (port !== undefined && /^\d{1,5}$/.test(port)) result.port = Number(port);
      const identity = computed.identityfile;
      if (identity !== undefined) {
        result.identityFiles = Array.isArray(identity) ? [...identity] : [identity];
      }
      const jump = first('proxyjump');
      if (jump !== undefined) result.proxyJump = jump;
      return result;
    },
  };
}

/** Reads and parses an ssh config file; a missing file gives an empty config. */
export async function readSshConfig(file: string): Promise<SshConfigFile> {
  let text: string;
  try {
    text = await readFile(expandHome(file), 'utf8');
  } catch {
    text = '';
  }
  return parseSshConfig(text);
}

/** Expands a leading `~` to the local home directory. */
export function expandHome(path: string): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/')) return join(homedir(), path.slice(2));
  return path;
}

/** Expands `~` and the OpenSSH tokens %d %u %h %r %% in an IdentityFile value. */
export function expandIdentityPath(path: string, host: string, remoteUser: string): string {
  const expanded = path.replace(/%([duhr%])/g, (_match, token: string) => {
    switch (token) {
      case 'd':
        return homedir();
      case 'u':
        return localUserName();
      case 'h':
        return host;
      case 'r':
        return remoteUser;
      default:
        return '%';
    }
  });
  return expandHome(expanded);
}

/** The local user name (the OpenSSH default login name). */
export function localUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'root';
  }
}

/** One hop of a ProxyJump chain as written: `[user@]host[:port]`. */
export interface JumpSpec {
  host: string;
  user?: string;
  port?: number;
}

/**
 * Parses a ProxyJump value: a comma list of `[user@]host[:port]` (or `[user@][ipv6]:port`);
 * `none` or empty means no jump. Returns undefined for a malformed value.
 */
export function parseProxyJump(value: string | undefined): JumpSpec[] | undefined {
  if (value === undefined) return [];
  const trimmed = value.trim();
  if (trimmed === '' || trimmed.toLowerCase() === 'none') return [];
  const hops: JumpSpec[] = [];
  for (const part of trimmed.split(',')) {
    const match =
      /^(?:([A-Za-z0-9._][A-Za-z0-9._-]*)@)?(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+))(?::(\d{1,5}))?$/.exec(
        part.trim(),
      );
    if (match === null) return undefined;
    const hop: JumpSpec = { host: (match[2] ?? match[3]) as string };
    if (match[1] !== undefined) hop.user = match[1];
    if (match[4] !== undefined) {
      const port = Number(match[4]);
      if (port < 1 || port > 65535) return undefined;
      hop.port = port;
    }
    hops.push(hop);
  }
  return hops;
}

/** Where and how to connect to one host (a node or a jump host). */
export interface ResolvedEndpoint {
  /** The name the operator used (node name or hop as written). */
  name: string;
  /** Address to connect to; also the name host keys are looked up under. */
  host: string;
  port: number;
  user: string;
  /** Private key files to try, in order (already expanded). */
  identityFiles: string[];
  /** Whether `identityFiles` came from configuration (else they are the ~/.ssh/id_* defaults). */
  identityFilesConfigured: boolean;
}

/** A node endpoint plus the jump hosts in front of it (first hop first). */
export interface ResolvedRoute {
  target: ResolvedEndpoint;
  jumps: ResolvedEndpoint[];
}

/** The default identity files OpenSSH tries when none is configured. */
export const DEFAULT_IDENTITY_FILES = ['~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa'];

/** Inputs of {@link resolveRoute}, highest precedence first. */
export interface RouteInputs {
  /** Node name (matched against `Host` patterns). */
  name: string;
  node: {
    address?: string;
    port?: number;
    user?: string;
    identityFiles?: string[];
    proxyJump?: string;
  };
  rune: { user?: string; port?: number; identityFiles?: string[]; proxyJump?: string };
  sshConfig?: SshConfigFile;
}

/** Thrown by {@link resolveRoute} for a malformed ProxyJump value (the caller maps it). */
export class ProxyJumpSyntaxError extends Error {
  constructor(readonly value: string) {
    super(`malformed ProxyJump value: ${value}`);
  }
}

function endpoint(
  name: string,
  explicit: { host?: string; port?: number; user?: string; identityFiles?: string[] },
  rune: RouteInputs['rune'],
  fromConfig: SshConfigHost,
): ResolvedEndpoint {
  const host = explicit.host ?? fromConfig.hostName ?? name;
  const port = explicit.port ?? rune.port ?? fromConfig.port ?? 22;
  const user = explicit.user ?? rune.user ?? fromConfig.user ?? localUserName();
  const configured = [
    ...(explicit.identityFiles ?? []),
    ...(rune.identityFiles ?? []),
    ...(fromConfig.identityFiles ?? []),
  ];
  const identityFilesConfigured = configured.length > 0;
  const files = (identityFilesConfigured ? configured : DEFAULT_IDENTITY_FILES).map((file) =>
    expandIdentityPath(file, host, user),
  );
  return {
    name,
    host,
    port,
    user,
    identityFiles: [...new Set(files)],
    identityFilesConfigured,
  };
}

/**
 * Resolves a node to its endpoint and jump chain. Jump hosts are resolved through ~/.ssh/config
 * under their own names; a hop's `user@` and `:port` win over its config; RUNE's `user` applies to
 * hops only when neither gives one; RUNE's `port` never applies to hops.
 */
export function resolveRoute(inputs: RouteInputs): ResolvedRoute {
  const fromConfig = inputs.sshConfig?.lookup(inputs.name) ?? {};
  const explicit: { host?: string; port?: number; user?: string; identityFiles?: string[] } = {};
  if (inputs.node.address !== undefined) explicit.host = inputs.node.address;
  if (inputs.node.port !== undefined) explicit.port = inputs.node.port;
  if (inputs.node.user !== undefined) explicit.user = inputs.node.user;
  if (inputs.node.identityFiles !== undefined) explicit.identityFiles = inputs.node.identityFiles;
  const target = endpoint(inputs.name, explicit, inputs.rune, fromConfig);
  const jumpValue = inputs.node.proxyJump ?? inputs.rune.proxyJump ?? fromConfig.proxyJump;
  const specs = parseProxyJump(jumpValue);
  if (specs === undefined) throw new ProxyJumpSyntaxError(jumpValue ?? '');
  const jumps = specs.map((spec) => {
    const hopConfig = inputs.sshConfig?.lookup(spec.host) ?? {};
    const hopExplicit: { host?: string; port?: number; user?: string } = {};
    if (spec.port !== undefined) hopExplicit.port = spec.port;
    if (spec.user !== undefined) hopExplicit.user = spec.user;
    const hopRune: RouteInputs['rune'] = {};
    if (inputs.rune.identityFiles !== undefined) hopRune.identityFiles = inputs.rune.identityFiles;
    const hop = endpoint(spec.host, hopExplicit, hopRune, hopConfig);
    if (spec.user === undefined && hopConfig.user === undefined && inputs.rune.user !== undefined) {
      hop.user = inputs.rune.user;
    }
    return hop;
  });
  return { target, jumps };
}
