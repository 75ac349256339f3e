// A minimal fleet of real OpenSSH sshd "hosts" on loopback for the benchmark: one sshd process
// per host, each on its own 127.0.x.y address and the same port, sharing one host key, one user
// key and one generated sshd_config (MaxStartups and MaxSessions raised: the same server config
// serves the RUNE side and the OpenSSH-client side, so the comparison is fair).
// Used only when @rune/transport-ssh/testing (startSshdFleet) is not built.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';

/** Loopback address of host `index` (0-based): 127.0.1.1, 127.0.1.2, ... 127.0.2.1, ... */
export function hostAddress(index) {
  return `127.0.${1 + Math.floor(index / 250)}.${1 + (index % 250)}`;
}

function waitForPort(host, port, deadline) {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = createConnection({ host, port });
      socket.once('data', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`sshd on ${host}:${port} did not start`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/**
 * Starts `count` sshd processes under `dir`, accepting the generated key for `user` (default: the
 * current user; another user needs `dir` and its parents traversable). Returns { hosts, user,
 * identityFile, knownHostsFile, sshdConfig, stop() }. Every process is killed by stop() (also
 * registered on exit).
 */
export async function startBenchSshdFleet({
  count,
  dir,
  port = 20000 + Math.floor(Math.random() * 20000),
  user = userInfo().username,
}) {
  const otherUser = user !== userInfo().username;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // sshd reads AuthorizedKeysFile as the login user.
  if (otherUser) chmodSync(dir, 0o711);
  mkdirSync('/run/sshd', { recursive: true });
  const hostKey = join(dir, 'host_ed25519');
  const userKey = join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', userKey]);
  const authorizedKeys = join(dir, 'authorized_keys');
  writeFileSync(authorizedKeys, readFileSync(`${userKey}.pub`));
  chmodSync(authorizedKeys, otherUser ? 0o644 : 0o600);
  const hostPub = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  const hosts = Array.from({ length: count }, (_, i) => ({
    name: `h${String(i + 1).padStart(3, '0')}`,
    address: hostAddress(i),
    port,
  }));
  const knownHostsFile = join(dir, 'known_hosts');
  writeFileSync(knownHostsFile, hosts.map((h) => `[${h.address}]:${h.port} ${hostPub}\n`).join(''));
  const sshdConfig = join(dir, 'sshd_config');
  writeFileSync(
    sshdConfig,
    [
      `HostKey ${hostKey}`,
      'PidFile none',
      'UsePAM no',
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      `AuthorizedKeysFile ${authorizedKeys}`,
      'PermitRootLogin prohibit-password',
      'MaxStartups 2000:30:4000',
      'MaxSessions 200',
      'LogLevel ERROR',
      'UseDNS no',
      '',
    ].join('\n'),
  );
  const processes = hosts.map((h) =>
    spawn(
      '/usr/sbin/sshd',
      ['-D', '-e', '-f', sshdConfig, '-p', String(h.port), '-o', `ListenAddress=${h.address}`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    ),
  );
  const stop = () => {
    for (const child of processes) if (child.exitCode === null) child.kill('SIGTERM');
  };
  process.once('exit', stop);
  try {
    const deadline = Date.now() + 20_000;
    await Promise.all(hosts.map((h) => waitForPort(h.address, h.port, deadline)));
  } catch (error) {
    stop();
    throw error;
  }
  return {
    hosts,
    user,
    identityFile: userKey,
    knownHostsFile,
    sshdConfig,
    processes,
    stop: async () => {
      stop();
      await Promise.all(
        processes.map((child) =>
          child.exitCode === null && child.signalCode === null
            ? new Promise((resolve) => child.once('exit', resolve))
            : undefined,
        ),
      );
    },
  };
}
