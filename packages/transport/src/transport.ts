/**
 * The Transport interface: how @rune/core reaches a node.
 *
 * A transport moves bytes and processes, nothing more. It receives a fully validated request —
 * which node, which plugin (content + sha256, or a preinstalled path), the exact stdin bytes (the
 * RCS document), limits, a timeout and an AbortSignal — and reports what the process did: exit
 * code or signal, bounded stdout and stderr, timings. It never parses stdout: judging the BPCS
 * result is the execution step's job, so every transport is judged by the same rules.
 *
 * Failures to *reach or run* are thrown as `RuneError`s with transport/policy codes from the EPS
 * catalog (CONNECTION_REFUSED, HOST_KEY_MISMATCH, ...). A process that ran and exited badly is
 * not an error: it is a `TransportExecResult`. Timeouts and cancellations are reported in the
 * result (`termination`), after the transport has killed the remote process group.
 *
 * Third-party transports implement this interface and prove it with
 * `describeTransportConformance()` from `@rune/transport/testing`.
 */
import type { DeployMode } from '@rune/protocol';
import type { TransportPhaseHook } from './phase-span.js';

/** The Transport specification version this core implements. */
export const TRANSPORT_SPECIFICATION_VERSION = 'rune-transport-v1' as const;

/** A node as resolved by planning (from the command line, config or inventory). */
export interface TargetNode {
  /** The name the operator used; appears in results, audit and RCS `routing.node`. */
  name: string;
  /** Network address or host name to connect to (defaults to `name`). */
  address?: string;
  /** Port (SSH: 22 unless set). */
  port?: number;
  /** Login user. */
  user?: string;
  /** SSM instance id (`i-...` or `mi-...`). */
  instanceId?: string;
  /** Run the plugin as this user (through non-interactive sudo). */
  runAs?: string;
  /** Transport-specific per-node settings from config or inventory (e.g. identity_file, proxy_jump). */
  settings?: Readonly<Record<string, unknown>>;
}

/** The plugin a transport runs. */
export interface TransportPlugin {
  /** Action name (validated against the action-name grammar). */
  action: string;
  /** Plugin version from its manifest. */
  version: string;
  /** Lowercase hex sha256 of `content`. */
  sha256: string;
  /** The exact bytes of the plugin file (deploy mode `ship`). */
  content: Uint8Array;
  /** Absolute path of the plugin on the node (deploy mode `preinstalled`). */
  remotePath?: string;
  /**
   * Path of the plugin file on the control node, set by core. Informative only (audit, messages):
   * no transport executes it — a file re-read by path could have been swapped since it was
   * hashed; every transport runs `content`, whose sha256 is the one planned and approved.
   */
  localPath?: string;
}

/** Output capture limits. */
export interface OutputLimits {
  /** Keep at most this many bytes of stdout; beyond it set `stdoutTruncated`. */
  maxStdoutBytes: number;
  /** Keep at most the *last* this many bytes of stderr; beyond it set `stderrTruncated`. */
  maxStderrBytes: number;
}

/** One execution request. */
export interface TransportExecRequest {
  node: TargetNode;
  plugin: TransportPlugin;
  deployMode: DeployMode;
  /** Bytes for the plugin's stdin (the RCS document). Delivered byte-exact, then stdin is closed. */
  stdin: Uint8Array;
  /** Kill the remote process group after this many milliseconds and report `termination: 'timeout'`. */
  timeoutMs: number;
  limits: OutputLimits;
  /** Aborting kills the remote process group and resolves with `termination: 'cancelled'`. */
  signal: AbortSignal;
  /** Trace id of the run, for the transport's own logs and error context. */
  traceId: string;
  /** Run as this user via non-interactive sudo (overrides `node.runAs`). */
  runAs?: string;
  /**
   * Checks the transport makes on the node in the same round trip, right before it starts the
   * plugin (see {@link TransportPreflight}). Absent: no checks.
   */
  preflight?: TransportPreflight;
  /**
   * Optional span hook (tracing): wrap connect, upload and exec in `withPhaseSpan(request, ...)`.
   * Absent when tracing is off; a transport that never calls it is still conformant.
   */
  phaseSpan?: TransportPhaseHook;
}

/**
 * What a node must have before the plugin starts, from the manifest's `requires`. The transport
 * runs {@link PREFLIGHT_FUNCTION_SH} (or the same rule in its own language) in the round trip that
 * starts the plugin, never in an extra one. When a command is missing the plugin is NOT started
 * and the transport rejects with `RuneError('PLUGIN_PRECONDITION_FAILED')` whose message names
 * every missing command and whose `details.missing_commands` lists them.
 */
export interface TransportPreflight {
  /** Commands the plugin calls (`requires.commands`), each looked up with `command -v`. */
  commands: readonly string[];
}

/** How the process ended. */
export type Termination = 'exit' | 'signal' | 'timeout' | 'cancelled';

/**
 * How a transport made sure nothing the run started keeps running (see `run-marker.ts`).
 *
 * The rule every transport follows (the conformance suite checks it): **a run ends when the
 * plugin process itself exits** (or is killed on timeout or cancel). At that moment the transport
 * kills every process the run started that is still alive — children in the plugin's process
 * group, children that moved to a session of their own, a background child still holding stdout
 * open — and counts them here. Output written before that point is kept and judged as usual, so a
 * leftover child neither delays the result nor turns a valid result into a timeout.
 */
export interface ContainmentReport {
  /**
   * How processes were found: `run-marker` (every descendant, by the inherited
   * `RUNE_RUN_MARKER` variable), `process-group` (the plugin's group only: a child that called
   * `setsid` escapes), `none` (the transport cannot find them).
   */
  method: 'run-marker' | 'process-group' | 'none';
  /** Processes the run left behind (or that were running at timeout/cancel) and that were killed. */
  killed: number;
  /**
   * True when the transport could check that nothing the run started is still running. False
   * says a promise could not be kept on this node; `detail` says why.
   */
  complete: boolean;
  /** Why containment is incomplete (e.g. `/proc` not readable, the sweep could not be sent). */
  detail?: string;
}

/** What the process did. */
export interface TransportExecResult {
  termination: Termination;
  /** Exit code when `termination` is `exit`, else null. */
  exitCode: number | null;
  /** Signal name (e.g. `SIGKILL`) when `termination` is `signal`, else null. */
  signal: string | null;
  /** Captured stdout, at most `limits.maxStdoutBytes`. */
  stdout: Uint8Array;
  stdoutTruncated: boolean;
  /** The tail of stderr, at most `limits.maxStderrBytes`. */
  stderr: Uint8Array;
  stderrTruncated: boolean;
  /** Timings in milliseconds. `connectMs` is 0 for a reused connection or a local process. */
  timings: { connectMs: number; execMs: number; totalMs: number };
  /** Transport facts worth recording (shipped: boolean, command id, connection reused, ...). */
  metadata?: Record<string, unknown>;
  /**
   * What was killed when the run ended, and whether containment was complete. Transports that
   * implement this specification version set it on every result; core records it in the node
   * result and the audit trail.
   */
  containment?: ContainmentReport;
}

/** A file fetched from a node. */
export interface FetchedArtifact {
  content: Uint8Array;
}

/** What a transport can do, so core can refuse what it cannot. */
export interface TransportCapabilities {
  /** Deploy modes it supports. */
  deployModes: readonly DeployMode[];
  /** Largest stdin it can deliver (SSM embeds stdin in the command), or undefined for unbounded. */
  maxStdinBytes?: number;
  /** Whether `fetchArtifact` is implemented. */
  artifacts: boolean;
  /** Whether it supports `runAs` / sudo. */
  runAs: boolean;
  /** How many execs core should run at once on one node through this transport. */
  maxConcurrentExecsPerNode: number;
  /**
   * True when the transport carries the request (the RCS document, with every parameter value)
   * inside the remote command itself, so that it becomes visible in the provider's API history
   * and logs (e.g. SSM `ListCommands`, the console, CloudTrail). Core then refuses any run that
   * supplies a parameter the manifest marks `sensitive` (SENSITIVE_PARAMETER_REFUSED), before
   * contacting anything. Default false: the request travels privately (e.g. on SSH stdin).
   */
  embedsRequestInCommand?: boolean;
}

/** The contract every transport implements. */
export interface Transport {
  /** Must equal {@link TRANSPORT_SPECIFICATION_VERSION}; core refuses any other value. */
  readonly specificationVersion: typeof TRANSPORT_SPECIFICATION_VERSION;
  /** Transport name, matching the transport-name grammar (`local`, `ssh`, `ssm`, ...). */
  readonly name: string;
  readonly capabilities: TransportCapabilities;
  /**
   * Run one plugin on one node. Resolves with what the process did (including timeout and
   * cancellation); rejects only with a `RuneError` when the node could not be reached or the
   * plugin could not be started.
   */
  exec(request: TransportExecRequest): Promise<TransportExecResult>;
  /** Download a file the plugin reported as an artifact. Only when `capabilities.artifacts`. */
  fetchArtifact?(
    node: TargetNode,
    remotePath: string,
    signal: AbortSignal,
  ): Promise<FetchedArtifact>;
  /**
   * Remove a file the plugin reported as an artifact from the node, once core has fetched it and
   * verified its sha256 and size (the node-side archive must not linger, e.g. in /tmp). Only
   * removes a regular file at exactly `remotePath`, never follows a symlink in its last
   * component, and resolves when it is gone or was already gone. Only when
   * `capabilities.artifacts`; a transport without it leaves the file where the plugin put it.
   */
  removeArtifact?(node: TargetNode, remotePath: string, signal: AbortSignal): Promise<void>;
  /** Close every connection and release every resource. Idempotent. */
  close(): Promise<void>;
}

/** Creates a transport from its options; the shape every transport package exports. */
export type TransportFactory<Options> = (options: Options) => Transport;
