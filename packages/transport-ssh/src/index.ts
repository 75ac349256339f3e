/**
 * @rune/transport-ssh — RUNE's default transport: agentless execution on Linux hosts over
 * OpenSSH (ssh2), with known_hosts verification, ~/.ssh/config support, ProxyJump, connection
 * reuse and a one-round-trip hot path.
 *
 * This file is the complete public surface of the package; real sshd servers for tests are at
 * `@rune/transport-ssh/testing`. The Transport contract it implements is in `@rune/transport`.
 */

export {
  checkHostKey,
  type HostKeyCheck,
  type KnownHostEntry,
  knownHostName,
  parseKnownHosts,
  sshFingerprint,
} from './known-hosts.js';
export type { HostKeyChecking, SshConnectionFactory, SshSocketRequest } from './ssh-connector.js';
export {
  createSshTransport,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_KEEPALIVE_COUNT_MAX,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_KNOWN_HOSTS_FILES,
  DEFAULT_MAX_CONCURRENT_HANDSHAKES,
  DEFAULT_MAX_SESSIONS_PER_CONNECTION,
  DEFAULT_PASSPHRASE_ENV,
  DEFAULT_REMOTE_CACHE_DIR,
  DEFAULT_REMOTE_PLUGIN_DIR,
  defaultRuneKnownHostsFile,
  type SshTransportOptions,
} from './ssh-transport.js';
export {
  createTtyPassphrasePrompt,
  type TtyPassphrasePromptOptions,
} from './tty-passphrase-prompt.js';
export { VERSION } from './version.js';
