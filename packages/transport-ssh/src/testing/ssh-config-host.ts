import type { SshdInstance } from './sshd.js';

/**
 * An OpenSSH client config (`~/.ssh/config` syntax) whose one `Host alias` reaches `sshd`: its
 * address, port, user and client key. For tests of how a reader's own OpenSSH setup is honoured.
 */
export function sshConfigHost(sshd: SshdInstance, alias: string): string {
  return [
    `Host ${alias}`,
    `  HostName ${sshd.address}`,
    `  Port ${sshd.port}`,
    `  User ${sshd.user}`,
    `  IdentityFile ${sshd.clientKey.privateKeyFile}`,
    '',
  ].join('\n');
}
