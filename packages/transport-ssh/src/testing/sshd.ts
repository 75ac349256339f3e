/**
 * A test harness that starts REAL OpenSSH servers on loopback.
 *
 * Each {@link startSshd} call generates its own host keys and client key with `ssh-keygen`, writes
 * an sshd_config into a private temp dir (keys-only auth, `StrictModes no`, `UsePAM no`, its own
 * AuthorizedKeysFile and PidFile) and runs `/usr/sbin/sshd -D -e -f <config>` on a random
 * 127.x.y.z address and a free port — random addresses keep parallel test files from colliding.
 * `stop()` kills the server and every process it spawned, then removes the temp dir. Used by this
 * package's integration tests, the fleet tests and the benchmark.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TargetNode } from '@rune/transport';

const run = promisify(execFile);

/** Path of the OpenSSH server binary. */
export const SSHD_PATH = '/usr/sbin/sshd';

/** Host key types the harness can generate. */
export type HostKeyType = 'ed25519' | 'ecdsa' | 'rsa';

/** A client key pair generated for the tests. */
export interface ClientKey {
  /** Private key file (OpenSSH format). */
  privateKeyFile: string;
  /** The public key line (`ssh-ed25519 AAAA... comment`). */
  publicKey: string;
  /** Passphrase, when the key is encrypted. */
  passphrase?: string;
}

/** Options of {@link startSshd}. */
export interface StartSshdOptions {
  /** Listen address (default: a random 127.x.y.z). */
  address?: string;
  /** Listen port (default: a free port). */
  port?: number;
  /** sshd `MaxSessions` (default 10). */
  maxSessions?: number;
  /** sshd `MaxStartups` (default `10:30:100`). */
  maxStartups?: string;
  /** Host key types to generate (default `['ed25519']`). */
  hostKeyTypes?: HostKeyType[];
  /** Use these host key files instead of generating (e.g. to restart "the same host"). */
  hostKeyFiles?: string[];
  /** The client key to authorize (default: a new ed25519 key). */
  clientKey?: ClientKey;
  /** Passphrase for the generated client key. */
  clientKeyPassphrase?: string;
  /** More public key lines to authorize. */
  authorizedKeys?: string[];
  /** Extra sshd_config lines. */
  extraConfig?: string[];
  /** sshd `LogLevel` (default `ERROR`). */
  logLevel?: string;
  /**
   * Let users other than the current one log in with the client key (sshd reads the
   * AuthorizedKeysFile as the login user): makes the temp dir traversable (0711) and the
   * authorized keys readable (0644). Needed for tests that log in as a test user.
   */
  allowOtherUsers?: boolean;
}

/** A running sshd. */
export interface SshdInstance {
  address: string;
  port: number;
  /** Private temp dir (removed by `stop()`). */
  dir: string;
  /** PID of the sshd listener. */
  pid: number;
  /** The user tests log in as (the current user). */
  user: string;
  clientKey: ClientKey;
  /** Host private key files (pass to another startSshd to impersonate this host). */
  hostKeyFiles: string[];
  /** Host public key lines (`type base64`). */
  hostPublicKeys: string[];
  /** known_hosts lines for this server (`[address]:port type base64`). */
  knownHostsLines: string[];
  /** A known_hosts file in `dir` with exactly {@link knownHostsLines}. */
  knownHostsFile: string;
  /** A directory in `dir` to use as the transport's remote plugin cache. */
  remoteCacheDir: string;
  /** A TargetNode for this server (overrides merged in). */
  node(overrides?: Partial<TargetNode>): TargetNode;
  /** sshd's log output so far. */
  logs(): string;
  /** PIDs of every process below the listener (connection handlers, sessions, plugins). */
  descendants(): number[];
  /** SIGKILLs every connection handler and session (the listener stays up). */
  killConnections(): void;
  /** Stops the server and its sessions and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** A random loopback address 127.a.b.c (never .0 or .255 in the last octet). */
export function randomLoopbackAddress(): string {
  return `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}

/** A free TCP port on `address` (bound and released; random addresses make reuse unlikely). */
export function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, address, () => {
      const bound = server.address();
      const port = typeof bound === 'object' && bound !== null ? bound.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Generates an ed25519 client key in `dir` (optionally encrypted). */
export async function generateClientKey(dir: string, passphrase?: string): Promise<ClientKey> {
  const file = join(dir, `client_ed25519_${randomInt(1e9)}`);
  await run('ssh-keygen', [
    '-q',
    '-t',
    'ed25519',
    '-N',
    passphrase ?? '',
    '-C',
    'rune-test',
    '-f',
    file,
  ]);
  const publicKey = (await readFile(`${file}.pub`, 'utf8')).trim();
  return passphrase === undefined
    ? { privateKeyFile: file, publicKey }
    : { privateKeyFile: file, publicKey, passphrase };
}

function listDescendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const parent = Number(fields[1]);
      const list = children.get(parent) ?? [];
      list.push(Number(entry));
      children.set(parent, list);
    } catch {
      // the process ended meanwhile
    }
  }
  const result: number[] = [];
  const queue = [...(children.get(root) ?? [])];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    result.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return result;
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function waitForBanner(
  address: string,
  port: number,
  child: ChildProcess,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) {
        reject(new Error(`sshd exited (${child.exitCode ?? child.signalCode})`));
        return;
      }
      const socket = createConnection({ host: address, port });
      let done = false;
      const retry = (): void => {
        if (done) return;
        done = true;
        socket.destroy();
        if (Date.now() > deadline) reject(new Error('sshd did not start in time'));
        else setTimeout(attempt, 50);
      };
      socket.once('data', (data: Buffer) => {
        if (done) return;
        done = true;
        socket.destroy();
        if (data.toString('latin1').startsWith('SSH-')) resolve();
        else reject(new Error('not an SSH banner'));
      });
      socket.once('error', retry);
      socket.setTimeout(2000, retry);
    };
    attempt();
  });
}

/**
 * Starts a real sshd as the current user (root in CI) on loopback. Retries on a port collision.
 * Call `stop()` in afterAll (it is safe to call on failure paths too).
 */
export async function startSshd(options: StartSshdOptions = {}): Promise<SshdInstance> {
  if (!existsSync(SSHD_PATH)) throw new Error(`${SSHD_PATH} not found: install openssh-server`);
  // sshd refuses to start without its privilege separation directory.
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = await mkdtemp(join(tmpdir(), 'rune-sshd-'));
  try {
    let hostKeyFiles = options.hostKeyFiles;
    if (hostKeyFiles === undefined) {
      hostKeyFiles = [];
      for (const type of options.hostKeyTypes ?? ['ed25519']) {
        const file = join(dir, `ssh_host_${type}_key`);
        const bits = type === 'rsa' ? ['-b', '2048'] : [];
        await run('ssh-keygen', [
          '-q',
          '-t',
          type,
          ...bits,
          '-N',
          '',
          '-C',
          'rune-test-host',
          '-f',
          file,
        ]);
        hostKeyFiles.push(file);
      }
    }
    const hostPublicKeys: string[] = [];
    for (const file of hostKeyFiles) {
      const { stdout } = await run('ssh-keygen', ['-y', '-f', file]);
      hostPublicKeys.push(stdout.trim().split(' ').slice(0, 2).join(' '));
    }
    const clientKey =
      options.clientKey ?? (await generateClientKey(dir, options.clientKeyPassphrase));
    const authorized = join(dir, 'authorized_keys');
    await writeFile(
      authorized,
      `${[clientKey.publicKey, ...(options.authorizedKeys ?? [])].join('\n')}\n`,
      {
        mode: 0o600,
      },
    );
    if (options.allowOtherUsers === true) {
      await chmod(dir, 0o711);
      await chmod(authorized, 0o644);
    }
    const remoteCacheDir = join(dir, 'remote-cache');
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const address = options.address ?? randomLoopbackAddress();
      const port = options.port ?? (await freePort(address));
      const config = join(dir, 'sshd_config');
      await writeFile(
        config,
        [
          `ListenAddress ${address}:${port}`,
          ...hostKeyFiles.map((file) => `HostKey ${file}`),
          `PidFile ${join(dir, 'sshd.pid')}`,
          `AuthorizedKeysFile ${authorized}`,
          'StrictModes no',
          'UsePAM no',
          'PermitRootLogin prohibit-password',
          'PubkeyAuthentication yes',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'PermitEmptyPasswords no',
          'UseDNS no',
          'PrintMotd no',
          'PrintLastLog no',
          'AllowTcpForwarding yes',
          'X11Forwarding no',
          `MaxSessions ${options.maxSessions ?? 10}`,
          `MaxStartups ${options.maxStartups ?? '10:30:100'}`,
          'Subsystem sftp internal-sftp',
          `LogLevel ${options.logLevel ?? 'ERROR'}`,
          ...(options.extraConfig ?? []),
          '',
        ].join('\n'),
      );
      const child = spawn(SSHD_PATH, ['-D', '-e', '-f', config], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let log = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        if (log.length < 1_000_000) log += chunk.toString();
      });
      try {
        await waitForBanner(address, port, child, 10_000);
      } catch (error) {
        lastError = new Error(`${String(error)}; sshd log: ${log.trim()}`);
        child.kill('SIGKILL');
        if (options.port !== undefined) break;
        continue;
      }
      const pid = child.pid as number;
      const knownHostsLines = hostPublicKeys.map((key) => `[${address}]:${port} ${key}`);
      const knownHostsFile = join(dir, 'known_hosts');
      await writeFile(knownHostsFile, `${knownHostsLines.join('\n')}\n`);
      const user = userInfo().username;
      let stopped: Promise<void> | undefined;
      const instance: SshdInstance = {
        address,
        port,
        dir,
        pid,
        user,
        clientKey,
        hostKeyFiles,
        hostPublicKeys,
        knownHostsLines,
        knownHostsFile,
        remoteCacheDir,
        node: (overrides = {}) => ({
          name: `sshd-${address}-${port}`,
          address,
          port,
          user,
          ...overrides,
        }),
        logs: () => log,
        descendants: () => listDescendants(pid),
        killConnections: () => killAll(listDescendants(pid)),
        stop: () => {
          stopped ??= (async () => {
            killAll(listDescendants(pid));
            if (child.exitCode === null && child.signalCode === null) {
              const exited = new Promise((resolve) => child.once('exit', resolve));
              child.kill('SIGKILL');
              await exited;
            }
            killAll(listDescendants(pid));
            await rm(dir, { recursive: true, force: true });
          })();
          return stopped;
        },
      };
      return instance;
    }
    throw lastError ?? new Error('sshd did not start');
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Several sshd instances sharing one client key. */
export interface SshdFleet {
  hosts: SshdInstance[];
  clientKey: ClientKey;
  /** A known_hosts file with every host's keys. */
  knownHostsFile: string;
  /** Stops every host and removes the shared temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** Starts `count` sshd instances (distinct random loopback addresses), `concurrency` at a time. */
export async function startSshdFleet(
  count: number,
  options: Omit<StartSshdOptions, 'address' | 'port' | 'clientKey'> & { concurrency?: number } = {},
): Promise<SshdFleet> {
  const dir = await mkdtemp(join(tmpdir(), 'rune-sshd-fleet-'));
  const hosts: SshdInstance[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(hosts.map((host) => host.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const clientKey = await generateClientKey(dir, options.clientKeyPassphrase);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        next++;
        hosts.push(await startSshd({ ...options, clientKey }));
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker));
    const knownHostsFile = join(dir, 'known_hosts');
    await writeFile(
      knownHostsFile,
      `${hosts.flatMap((host) => host.knownHostsLines).join('\n')}\n`,
    );
    return { hosts, clientKey, knownHostsFile, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A TCP server that accepts connections and never says a word (a "silent host"). */
export interface SilentHost {
  address: string;
  port: number;
  /** Connections accepted so far. */
  accepted(): number;
  close(): Promise<void>;
}

/** Starts a {@link SilentHost} on a random loopback address. */
export async function startSilentHost(): Promise<SilentHost> {
  const address = randomLoopbackAddress();
  const sockets = new Set<Socket>();
  let count = 0;
  const server: Server = createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, resolve);
  });
  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : 0;
  return {
    address,
    port,
    accepted: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An address and port where nothing listens (connections are refused). */
export async function refusedEndpoint(): Promise<{ address: string; port: number }> {
  const address = randomLoopbackAddress();
  return { address, port: await freePort(address) };
}
