/**
 * The SSH transport: runs a RUNE plugin on a Linux host over OpenSSH, agentless. This class is
 * the facade of the package; each job lives in its own module:
 *
 * - ssh-options.ts — options, defaults, their checks;
 * - node-settings.ts — per-node `settings` from the inventory;
 * - connect-route.ts — route resolution (~/.ssh/config, ProxyJump) and the connection pool;
 * - keys.ts — private keys and passphrases;
 * - plugin-exec.ts — the exec flow (one round trip on the hot path, upload on a cache miss);
 * - exec-session.ts — one bootstrap exec on a channel (timeouts, cancel, drain, sweeps);
 * - exec-result.ts, bootstrap-failure.ts — what a run means: result, containment, precise errors;
 * - artifacts.ts — fetching and removing artifacts over SFTP;
 * - remote-command.ts — the fixed bootstrap and the command lines that invoke it.
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
import {
  type FetchedArtifact,
  type TargetNode,
  TRANSPORT_SPECIFICATION_VERSION,
  type Transport,
  type TransportCapabilities,
  type TransportExecRequest,
  type TransportExecResult,
} from '@rune/transport';
import { type ArtifactContext, fetchArtifact, removeArtifact } from './artifacts.js';
import { RouteConnector } from './connect-route.js';
import { execPlugin } from './plugin-exec.js';
import {
  type ResolvedSshTransportOptions,
  resolveSshTransportOptions,
  type SshTransportOptions,
} from './ssh-options.js';
import { VERSION } from './version.js';

export {
  DEFAULT_CLOSE_GRACE_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_KEEPALIVE_COUNT_MAX,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_KNOWN_HOSTS_FILES,
  DEFAULT_MAX_ARTIFACT_BYTES,
  DEFAULT_MAX_CONCURRENT_HANDSHAKES,
  DEFAULT_MAX_PLUGIN_BYTES,
  DEFAULT_MAX_SESSIONS_PER_CONNECTION,
  DEFAULT_MAX_STDIN_BYTES,
  DEFAULT_PASSPHRASE_ENV,
  DEFAULT_REMOTE_CACHE_DIR,
  DEFAULT_REMOTE_PLUGIN_DIR,
  DEFAULT_WATCHDOG_GRACE_S,
  defaultRuneKnownHostsFile,
  type SshTransportOptions,
} from './ssh-options.js';

class SshTransport implements Transport {
  readonly specificationVersion = TRANSPORT_SPECIFICATION_VERSION;
  readonly name = 'ssh';
  readonly capabilities: TransportCapabilities;
  private readonly options: ResolvedSshTransportOptions;
  private readonly connector: RouteConnector;
  private closed = false;

  constructor(options: SshTransportOptions) {
    this.options = resolveSshTransportOptions(options);
    this.connector = new RouteConnector(this.options);
    this.capabilities = {
      deployModes: ['ship', 'preinstalled'],
      maxStdinBytes: this.options.maxStdinBytes,
      artifacts: true,
      runAs: true,
      maxConcurrentExecsPerNode: this.options.maxSessionsPerConnection,
    };
  }

  exec(request: TransportExecRequest): Promise<TransportExecResult> {
    return execPlugin(
      { options: this.options, connector: this.connector, isClosed: () => this.closed },
      request,
    );
  }

  fetchArtifact(
    node: TargetNode,
    remotePath: string,
    signal: AbortSignal,
  ): Promise<FetchedArtifact> {
    return fetchArtifact(this.artifactContext(), node, remotePath, signal);
  }

  removeArtifact(node: TargetNode, remotePath: string, signal: AbortSignal): Promise<void> {
    return removeArtifact(this.artifactContext(), node, remotePath, signal);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.connector.close(this.options.closeGraceMs);
  }

  private artifactContext(): ArtifactContext {
    return { connector: this.connector, maxArtifactBytes: this.options.maxArtifactBytes };
  }
}

/** Creates the SSH transport. Call `close()` when done to end every connection. */
export function createSshTransport(options: SshTransportOptions = {}): Transport {
  return new SshTransport(options);
}

export { VERSION };
