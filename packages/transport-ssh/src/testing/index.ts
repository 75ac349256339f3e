/**
 * @rune/transport-ssh/testing — the complete public surface for tests: real OpenSSH servers on
 * loopback for integration tests and benchmarks (used by this package, the fleet tests and
 * bench/).
 */

export { sshConfigHost } from './ssh-config-host.js';
export {
  type ClientKey,
  freePort,
  generateClientKey,
  type HostKeyType,
  randomLoopbackAddress,
  refusedEndpoint,
  type SilentHost,
  SSHD_PATH,
  type SshdFleet,
  type SshdInstance,
  type StartSshdOptions,
  startSilentHost,
  startSshd,
  startSshdFleet,
} from './sshd.js';
