/**
 * The SSM transport: runs a RUNE plugin through AWS Systems Manager Run Command
 * (`AWS-RunShellScript`) with the real `@aws-sdk/client-ssm`.
 *
 * One exec = DescribeInstanceInformation (is the agent online?) + one SendCommand (one instance
 * per command; the wrapper checks the request's preflight on the node before the plugin starts,
 * in that same command) + GetCommandInvocation polled with backoff and jitter until a terminal
 * state (+ CancelCommand on timeout or abort, + S3 GetObject when the output was cut). The
 * plugin and the request travel inside the command (see wrapper-script.ts), which makes them
 * visible to anyone allowed ssm:ListCommands or reading CloudTrail: the transport advertises
 * that as `capabilities.embedsRequestInCommand`, so core refuses any run that supplies a
 * sensitive parameter before calling `exec`, and in its result metadata (`embeds_request: true`).
 *
 * No batching: each RCS request is specific to its node (routing.node, message id), so two
 * execs practically never share the identical command text a multi-instance SendCommand needs.
 * Every SendCommand therefore names exactly one instance, far below the API's 50-id limit.
 */

import { constants as osConstants } from 'node:os';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  CancelCommandCommand,
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  SendCommandCommand,
  SSMClient,
  type SSMClientConfig,
} from '@aws-sdk/client-ssm';
import { type ErrorCode, RuneError } from '@rune/protocol';
import {
  type ContainmentReport,
  createRunMarker,
  HeadCapture,
  interruptedResult,
  notStartedResult,
  preflightFailure,
  TailCapture,
  type TargetNode,
  TIMEOUT_GRACE_MS,
  TRANSPORT_SPECIFICATION_VERSION,
  type Transport,
  type TransportCapabilities,
  type TransportExecRequest,
  type TransportExecResult,
  type TransportPhaseRecorder,
  validatePreflightCommands,
  withPhaseSpan,
} from '@rune/transport';
import { awsErrorName, isThrottlingError, toRuneError } from './aws-errors.js';
import { mapInvocationStatus } from './invocation-status.js';
import {
  buildWrapperScript,
  isDoneLine,
  isSafeRemotePath,
  parseWrapperOutput,
  type ReceivedStream,
  receiveStream,
} from './wrapper-script.js';

/** Default private plugin cache on the node (SSM runs commands as root). */
export const DEFAULT_SSM_REMOTE_CACHE_DIR = '/var/lib/rune/plugins';
/** Default first poll interval of GetCommandInvocation. */
export const DEFAULT_SSM_POLL_INTERVAL_MS = 1000;
/** Default ceiling of the poll interval once backoff has grown it. */
export const DEFAULT_SSM_MAX_POLL_INTERVAL_MS = 5000;
/** Default SDK attempts per API call (retries throttling with `retryMode: 'adaptive'`). */
export const DEFAULT_SSM_MAX_ATTEMPTS = 10;
/** Default SendCommand `TimeoutSeconds`: how long SSM may take to deliver (API minimum 30). */
export const DEFAULT_SSM_DELIVERY_TIMEOUT_S = 120;
/** How long `InvocationDoesNotExist` right after SendCommand is retried before giving up. */
export const DEFAULT_SSM_INVOCATION_WAIT_MS = 30_000;
/** How long the transport waits for the command to reach a terminal state after CancelCommand. */
export const DEFAULT_SSM_CANCEL_WAIT_MS = 15_000;
/**
 * Containment after a timeout or cancel: the agent SIGKILLs the command's process group, and the
 * wrapper's detached reaper sweeps the run marker once the wrapper is gone — but nothing can
 * report back through SSM after the command ended, so the transport cannot claim it.
 */
const UNREPORTED_CONTAINMENT: ContainmentReport = {
  method: 'run-marker',
  killed: 0,
  complete: false,
  detail:
    "the agent killed the command's process group; the node-side reaper then sweeps the run marker (setsid children included), but its outcome cannot be reported through SSM",
};

/**
 * Extra time the control node allows beyond `timeoutMs` before it cancels the command itself: the
 * timeout rule's grace (stage 3, `timeoutStages` in @rune/transport).
 */
export const DEFAULT_SSM_TIMEOUT_GRACE_MS = TIMEOUT_GRACE_MS;
/** `SendCommand` accepts at most this many InstanceIds (the transport sends one per command). */
export const SSM_MAX_INSTANCE_IDS_PER_COMMAND = 50;
/** The agent's hard ceiling for the `executionTimeout` parameter of AWS-RunShellScript (48 h). */
export const SSM_MAX_EXECUTION_TIMEOUT_S = 172_800;
/**
 * Client-side ceiling for the generated command (wrapper + gzip/base64 plugin + request), in
 * bytes. AWS documents a 64 KB limit for an SSM document (MaxDocumentSizeExceeded) and no separate
 * figure for SendCommand `Parameters` that we could verify; the command is kept below 64,000
 * bytes so it also fits when the agent receives the document with the parameters resolved.
 */
export const DEFAULT_SSM_MAX_COMMAND_BYTES = 64_000;
/** Without S3, the wrapper sends at most this much stderr tail (GetCommandInvocation keeps 8,000 chars). */
export const SSM_INLINE_STDERR_BYTES = 7000;
/** Characters of stdout / stderr GetCommandInvocation returns. */
export const SSM_API_OUTPUT_LIMITS = { stdout: 24_000, stderr: 8000 } as const;
/**
 * Instance ids the transport accepts: the SendCommand `InstanceIds` pattern (`i-` + 8 or 17 hex
 * digits, `mi-` + 17), so a malformed id is INVALID_TARGET before any API call.
 */
export const INSTANCE_ID_PATTERN = /^(i-([0-9a-f]{8}|[0-9a-f]{17})|mi-[0-9a-f]{17})$/;

const WRAPPER_RESERVE_BYTES = 16 * 1024;

/** Options of {@link createSsmTransport}; camelCase forms of the `[ssm]` config keys. */
export interface SsmTransportOptions {
  /** AWS region (`[ssm] region`); otherwise the SDK's chain (AWS_REGION, profile). */
  region?: string;
  /**
   * The RUNE configuration file to name when a setting such as the region is missing (the CLI
   * passes the file the operator uses); without it, errors name the usual config locations.
   */
  configFile?: string;
  /** Shared-config profile (`[ssm] profile`). */
  profile?: string;
  /** API endpoint override (`[ssm] endpoint`), e.g. a local `rune-ssm-endpoint`. */
  endpoint?: string;
  /** Explicit credentials; otherwise the SDK's default provider chain. */
  credentials?: SSMClientConfig['credentials'];
  /** Bucket for full command output (`[ssm] output_s3_bucket`); needs s3:GetObject. */
  outputS3Bucket?: string;
  /** Key prefix in that bucket (`[ssm] output_s3_prefix`). */
  outputS3Prefix?: string;
  /** S3 endpoint override (path-style), e.g. the local endpoint's built-in S3 stand-in. */
  s3Endpoint?: string;
  /** First GetCommandInvocation poll interval (`[ssm] poll_interval_ms`, default 1000). */
  pollIntervalMs?: number;
  /** Ceiling of the poll interval after backoff (default 5000, at least pollIntervalMs). */
  maxPollIntervalMs?: number;
  /** SDK attempts per API call (`[ssm] max_attempts`, default 10, adaptive retry mode). */
  maxAttempts?: number;
  /**
   * Node-side execution timeout in seconds (`[ssm] execution_timeout_s`). Default: the request's
   * timeout rounded up. The agent SIGKILLs the command's process group when it passes.
   */
  executionTimeoutS?: number;
  /** SendCommand TimeoutSeconds (delivery timeout), default 120 (API range 30..2592000). */
  deliveryTimeoutS?: number;
  /** Private plugin cache on the node (`[ssm] remote_cache_dir`), absolute. */
  remoteCacheDir?: string;
  /** Node name -> instance id (`[ssm.instances]`). */
  instances?: Readonly<Record<string, string>>;
  /** Ceiling for the generated command in bytes (default 64,000). */
  maxCommandBytes?: number;
  /** How long to retry `InvocationDoesNotExist` after SendCommand (default 30 s). */
  invocationWaitMs?: number;
  /** How long to wait for a terminal status after CancelCommand (default 15 s). */
  cancelWaitMs?: number;
  /** Extra time beyond `timeoutMs` before the control node cancels (default 5 s). */
  timeoutGraceMs?: number;
  /** An SSM client to use instead of building one (tests, custom middleware). */
  client?: SSMClient;
  /** An S3 client for output retrieval instead of building one. */
  s3Client?: S3Client;
  /** Receives non-fatal warnings (e.g. output cut without an S3 bucket). */
  onWarning?: (message: string) => void;
  /** Clock in ms (tests). */
  clock?: () => number;
  /** Sleep that resolves early when `signal` aborts (tests). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Random number in [0, 1) for jitter (tests). */
  random?: () => number;
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, Math.max(0, ms));
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(osConstants.signals).map(([name, number]) => [number, name]),
);

/** Reads an exit status as the shell reports it: 128+n for a process killed by signal n. */
export function interpretExitStatus(status: number): {
  termination: 'exit' | 'signal';
  exitCode: number | null;
  signal: string | null;
} {
  if (status > 128 && status < 128 + 65) {
    const name = SIGNAL_NAMES.get(status - 128);
    if (name !== undefined) return { termination: 'signal', exitCode: null, signal: name };
  }
  return { termination: 'exit', exitCode: status, signal: null };
}

const STAGE_ERRORS: Record<string, { code: ErrorCode; message: string }> = {
  integrity: {
    code: 'PLUGIN_INTEGRITY_FAILED',
    message: 'the plugin on the node does not match its sha256; nothing was executed',
  },
  'not-installed': {
    code: 'PLUGIN_NOT_INSTALLED',
    message: 'the preinstalled plugin is not present on the node',
  },
  'cache-dir': {
    code: 'TRANSPORT_UNAVAILABLE',
    message: 'the remote cache dir cannot be created as a private directory on the node',
  },
  'cache-unsafe': {
    code: 'PLUGIN_CACHE_UNSAFE',
    message:
      'the remote cache dir is in a path another user could change (a symlink, not owned by root, or writable by others); nothing was executed',
  },
  'plugin-unsafe': {
    code: 'PLUGIN_CACHE_UNSAFE',
    message:
      'the preinstalled plugin is in a path another user could change (a symlink, not owned by root, or writable by others); nothing was executed',
  },
  decode: {
    code: 'TRANSPORT_API_ERROR',
    message: 'the plugin or request did not decode on the node (corrupted in transit?)',
  },
  'not-root': {
    code: 'PRIVILEGE_DENIED',
    message:
      'the plugin is to run as root, but the SSM agent runs commands as another user on this node; nothing was executed',
  },
};

/** The one user the SSM transport can run a plugin as: the agent's own, root. */
const SSM_RUN_AS_USER = 'root';

interface RunState {
  request: TransportExecRequest;
  /** The validated preflight commands the wrapper checks. */
  preflight: readonly string[];
  instanceId: string;
  commandId: string;
  nonce: string;
  started: number;
  sentAt: number;
  /** The `exec` phase's recorder (tracing): the polls made and the final SSM status. */
  recorder?: TransportPhaseRecorder;
}

class SsmTransport implements Transport {
  readonly specificationVersion = TRANSPORT_SPECIFICATION_VERSION;
  readonly name = 'ssm';
  readonly capabilities: TransportCapabilities;

  private readonly client: SSMClient;
  private readonly ownsClient: boolean;
  private s3: S3Client | undefined;
  private readonly ownsS3: boolean;
  private readonly clock: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  private readonly cacheDir: string;
  private readonly pollIntervalMs: number;
  private readonly maxPollIntervalMs: number;
  private readonly maxCommandBytes: number;
  private closed = false;

  constructor(private readonly options: SsmTransportOptions) {
    this.cacheDir = options.remoteCacheDir ?? DEFAULT_SSM_REMOTE_CACHE_DIR;
    if (!isSafeRemotePath(this.cacheDir)) {
      throw new RuneError(
        'INVALID_CONFIG',
        `[ssm] remote_cache_dir must be an absolute path of [A-Za-z0-9._-/] without "..": ${JSON.stringify(this.cacheDir)}`,
        { source: { component: 'transport-ssm' } },
      );
    }
    for (const [name, id] of Object.entries(options.instances ?? {})) {
      if (!INSTANCE_ID_PATTERN.test(id)) {
        throw new RuneError(
          'INVALID_CONFIG',
          `[ssm.instances] ${name} = ${JSON.stringify(id)} is not an instance id (i-... or mi-...)`,
          { source: { component: 'transport-ssm' } },
        );
      }
    }
    this.pollIntervalMs = Math.max(1, options.pollIntervalMs ?? DEFAULT_SSM_POLL_INTERVAL_MS);
    this.maxPollIntervalMs = Math.max(
      this.pollIntervalMs,
      options.maxPollIntervalMs ?? DEFAULT_SSM_MAX_POLL_INTERVAL_MS,
    );
    this.maxCommandBytes = options.maxCommandBytes ?? DEFAULT_SSM_MAX_COMMAND_BYTES;
    this.clock = options.clock ?? Date.now;
    this.sleep = options.sleep ?? defaultSleep;
    this.random = options.random ?? Math.random;
    this.ownsClient = options.client === undefined;
    this.client =
      options.client ??
      new SSMClient({
        ...(options.region ? { region: options.region } : {}),
        ...(options.profile ? { profile: options.profile } : {}),
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        ...(options.credentials ? { credentials: options.credentials } : {}),
        maxAttempts: options.maxAttempts ?? DEFAULT_SSM_MAX_ATTEMPTS,
        retryMode: 'adaptive',
      });
    this.s3 = options.s3Client;
    this.ownsS3 = options.s3Client === undefined;
    this.capabilities = {
      deployModes: ['ship', 'preinstalled'],
      // Worst case (incompressible stdin): base64 grows it by 4/3; keep room for wrapper + plugin.
      maxStdinBytes: Math.max(
        1024,
        Math.floor(((this.maxCommandBytes - WRAPPER_RESERVE_BYTES) * 3) / 4) - 1024,
      ),
      artifacts: false,
      // SSM runs commands as root, so run_as root needs no sudo; exec refuses any other user
      // (UNSUPPORTED_FEATURE) before calling the API, as core does for a transport without runAs.
      runAs: true,
      maxConcurrentExecsPerNode: 4,
      // The plugin and the RCS request are embedded in the command: core refuses sensitive
      // parameters on this transport.
      embedsRequestInCommand: true,
    };
  }

  /** The instance id for a node: `instanceId`, `[ssm.instances]`, or a name that is an id. */
  resolveInstanceId(node: TargetNode): string {
    const candidate = node.instanceId ?? this.options.instances?.[node.name] ?? node.name;
    if (!INSTANCE_ID_PATTERN.test(candidate)) {
      throw new RuneError(
        'INVALID_TARGET',
        `node ${JSON.stringify(node.name)} is not an SSM instance id (i-... / mi-...) and has no entry in [ssm.instances]`,
        { source: { component: 'transport-ssm', node: node.name } },
      );
    }
    return candidate;
  }

  async exec(request: TransportExecRequest): Promise<TransportExecResult> {
    if (this.closed) {
      throw new RuneError('TRANSPORT_UNAVAILABLE', 'the SSM transport is closed', {
        source: { component: 'transport-ssm', node: request.node.name },
      });
    }
    const started = this.clock();
    const node = request.node.name;
    const source = { component: 'transport-ssm', node, action: request.plugin.action };
    const instanceId = this.resolveInstanceId(request.node);
    const runAs = request.runAs ?? request.node.runAs;
    if (runAs !== undefined && runAs !== SSM_RUN_AS_USER) {
      throw new RuneError(
        'UNSUPPORTED_FEATURE',
        `the SSM transport runs plugins as root: run_as = "root" needs no sudo there, any other user (${JSON.stringify(runAs)}) is not supported`,
        { source, traceId: request.traceId },
      );
    }
    let preflight: string[];
    try {
      preflight = validatePreflightCommands(request.preflight?.commands ?? []);
    } catch (error) {
      throw RuneError.from(error, 'INVALID_ARGUMENT').withContext({
        component: source.component,
        node,
        action: source.action,
        traceId: request.traceId,
      });
    }
    const preinstalled = request.deployMode === 'preinstalled';
    if (preinstalled && !isSafeRemotePath(request.plugin.remotePath ?? '')) {
      throw new RuneError(
        'INVALID_ARGUMENT',
        `preinstalled plugin path must be absolute and made of [A-Za-z0-9._-/]: ${JSON.stringify(request.plugin.remotePath)}`,
        { source, traceId: request.traceId },
      );
    }
    const executionTimeoutS = Math.min(
      SSM_MAX_EXECUTION_TIMEOUT_S,
      Math.max(1, this.options.executionTimeoutS ?? Math.ceil(request.timeoutMs / 1000)),
    );
    const wrapper = buildWrapperScript({
      executionTimeoutS,
      runMarker: createRunMarker(),
      sha256: request.plugin.sha256,
      ...(preinstalled
        ? { remotePath: request.plugin.remotePath! }
        : { content: request.plugin.content }),
      stdin: request.stdin,
      cacheDir: this.cacheDir,
      preflight,
      requireRoot: runAs === SSM_RUN_AS_USER,
      maxStdoutBytes: request.limits.maxStdoutBytes,
      maxStderrBytes:
        this.options.outputS3Bucket !== undefined
          ? request.limits.maxStderrBytes
          : Math.min(request.limits.maxStderrBytes, SSM_INLINE_STDERR_BYTES),
    });
    const commandBytes = Buffer.byteLength(wrapper.script, 'utf8');
    if (commandBytes > this.maxCommandBytes) {
      throw new RuneError(
        'PAYLOAD_TOO_LARGE',
        `the SSM command would be ${commandBytes} bytes (plugin ${request.plugin.content.byteLength} + request ${request.stdin.byteLength} bytes, gzip+base64); the limit is ${this.maxCommandBytes}. Use deploy mode preinstalled or a smaller request.`,
        {
          source,
          traceId: request.traceId,
          details: { command_bytes: commandBytes, max_command_bytes: this.maxCommandBytes },
        },
      );
    }
    if (request.signal.aborted) return this.cancelledBeforeStart(started);

    // Phases (tracing, docs/observability.md): connect = the agent check, upload = SendCommand
    // (the command carries the plugin and the request), exec = polling the invocation to its end,
    // fetch = the full output from S3.
    await withPhaseSpan(request, 'connect', async (phase) => {
      phase.setAttributes({ 'rune.ssm.instance_id': instanceId });
      await this.checkOnline(instanceId, node, request.traceId);
    });
    if (request.signal.aborted) return this.cancelledBeforeStart(started);

    const commandId = await withPhaseSpan(request, 'upload', async (phase) => {
      phase.setAttributes({
        'rune.ssm.command_bytes': commandBytes,
        'rune.ssm.plugin_inline': !preinstalled,
      });
      const id = await this.sendCommand(request, instanceId, executionTimeoutS, wrapper.script);
      phase.setAttributes({ 'rune.ssm.command_id': id });
      return id;
    });
    return withPhaseSpan(request, 'exec', (phase) => {
      phase.setAttributes({ 'rune.ssm.command_id': commandId });
      return this.follow({
        request,
        preflight,
        instanceId,
        commandId,
        nonce: wrapper.nonce,
        started,
        sentAt: this.clock(),
        recorder: phase,
      });
    });
  }

  /** SendCommand of one wrapper script to one instance; resolves its CommandId. */
  private async sendCommand(
    request: TransportExecRequest,
    instanceId: string,
    executionTimeoutS: number,
    script: string,
  ): Promise<string> {
    const node = request.node.name;
    const source = { component: 'transport-ssm', node, action: request.plugin.action };
    try {
      const sent = await this.client.send(
        new SendCommandCommand({
          DocumentName: 'AWS-RunShellScript',
          InstanceIds: [instanceId],
          Parameters: {
            commands: [script],
            executionTimeout: [String(executionTimeoutS)],
          },
          TimeoutSeconds: Math.max(
            30,
            this.options.deliveryTimeoutS ?? DEFAULT_SSM_DELIVERY_TIMEOUT_S,
          ),
          Comment: `rune ${request.plugin.action} ${request.traceId}`.slice(0, 100),
          ...(this.options.outputS3Bucket !== undefined
            ? {
                OutputS3BucketName: this.options.outputS3Bucket,
                ...(this.options.outputS3Prefix
                  ? { OutputS3KeyPrefix: this.options.outputS3Prefix }
                  : {}),
              }
            : {}),
        }),
      );
      const id = sent.Command?.CommandId;
      if (id === undefined) {
        throw new RuneError('TRANSPORT_API_ERROR', 'SendCommand returned no CommandId', {
          source,
          traceId: request.traceId,
        });
      }
      return id;
    } catch (error) {
      throw toRuneError(error, {
        operation: 'SendCommand',
        node,
        instanceId,
        configFile: this.options.configFile,
        traceId: request.traceId,
      });
    }
  }

  private cancelledBeforeStart(started: number): TransportExecResult {
    const totalMs = Math.max(0, this.clock() - started);
    return notStartedResult(
      { connectMs: 0, execMs: 0, totalMs },
      { embeds_request: true, command_sent: false },
    );
  }

  /** DescribeInstanceInformation: the instance is known and its agent online, or nothing is sent. */
  private async checkOnline(instanceId: string, node: string, traceId: string): Promise<void> {
    let ping: string | undefined;
    let found = false;
    try {
      const answer = await this.client.send(
        new DescribeInstanceInformationCommand({
          Filters: [{ Key: 'InstanceIds', Values: [instanceId] }],
        }),
      );
      const info = answer.InstanceInformationList?.find((item) => item.InstanceId === instanceId);
      found = info !== undefined;
      ping = info?.PingStatus;
    } catch (error) {
      throw toRuneError(error, {
        operation: 'DescribeInstanceInformation',
        node,
        instanceId,
        configFile: this.options.configFile,
        traceId,
      });
    }
    const source = { component: 'transport-ssm', node };
    if (!found) {
      throw new RuneError(
        'INSTANCE_UNKNOWN',
        `SSM does not know instance ${instanceId} (not a managed node in this account and region?)`,
        { source, traceId, details: { instance_id: instanceId } },
      );
    }
    if (ping !== 'Online') {
      throw new RuneError(
        'INSTANCE_OFFLINE',
        `the SSM agent on ${instanceId} is not online (PingStatus ${ping ?? 'unknown'})`,
        { source, traceId, details: { instance_id: instanceId, ping_status: ping ?? null } },
      );
    }
  }

  private async cancel(run: RunState): Promise<void> {
    try {
      await this.client.send(
        new CancelCommandCommand({ CommandId: run.commandId, InstanceIds: [run.instanceId] }),
      );
    } catch (error) {
      this.options.onWarning?.(
        `CancelCommand ${run.commandId} on ${run.instanceId} failed: ${awsErrorName(error) ?? ''} ${String((error as Error)?.message ?? error)}`,
      );
    }
  }

  /** Polls the invocation until a terminal state, cancelling on timeout or abort. */
  private async follow(run: RunState): Promise<TransportExecResult> {
    const { request } = run;
    const node = request.node.name;
    const deadline =
      run.sentAt +
      request.timeoutMs +
      (this.options.timeoutGraceMs ?? DEFAULT_SSM_TIMEOUT_GRACE_MS);
    const invocationWaitMs = this.options.invocationWaitMs ?? DEFAULT_SSM_INVOCATION_WAIT_MS;
    const cancelWaitMs = this.options.cancelWaitMs ?? DEFAULT_SSM_CANCEL_WAIT_MS;
    let interval = this.pollIntervalMs;
    let started = false;
    let cancelled: 'timeout' | 'cancelled' | 'delivery' | undefined;
    let cancelDeadline = Number.POSITIVE_INFINITY;
    let failures = 0;
    let polls = 0;
    const context = {
      node,
      instanceId: run.instanceId,
      traceId: request.traceId,
    };

    // First look after a short pause: the invocation rarely exists at once.
    await this.sleep(Math.min(interval, 250), request.signal);
    for (;;) {
      const now = this.clock();
      if (cancelled === undefined && (request.signal.aborted || now >= deadline)) {
        cancelled = request.signal.aborted ? 'cancelled' : started ? 'timeout' : 'delivery';
        await this.cancel(run);
        cancelDeadline = this.clock() + cancelWaitMs;
        interval = this.pollIntervalMs;
      }
      if (cancelled !== undefined && this.clock() >= cancelDeadline) {
        this.options.onWarning?.(
          `command ${run.commandId} on ${run.instanceId} did not confirm the cancel within ${cancelWaitMs} ms`,
        );
        if (cancelled === 'delivery') {
          throw new RuneError(
            'DELIVERY_TIMEOUT',
            `SSM did not start the command on ${run.instanceId} within the timeout`,
            {
              source: { component: 'transport-ssm', node },
              traceId: request.traceId,
              details: { command_id: run.commandId, cancel_confirmed: false },
            },
          );
        }
        return this.interrupted(run, cancelled, { cancel_confirmed: false });
      }

      let invocation: GetCommandInvocationCommandOutput | undefined;
      polls++;
      run.recorder?.setAttributes({ 'rune.ssm.polls': polls });
      try {
        invocation = await this.client.send(
          new GetCommandInvocationCommand({
            CommandId: run.commandId,
            InstanceId: run.instanceId,
          }),
        );
        failures = 0;
      } catch (error) {
        const name = awsErrorName(error);
        const sinceSend = this.clock() - run.sentAt;
        if (name === 'InvocationDoesNotExist' && sinceSend < invocationWaitMs) {
          // Normal right after SendCommand: SSM has not materialized the invocation yet.
        } else if (isThrottlingError(error)) {
          // The SDK already retried; keep the run alive and slow down instead of abandoning it.
          interval = this.maxPollIntervalMs;
        } else {
          failures += 1;
          if (failures >= 3 || name === 'InvocationDoesNotExist') {
            await this.cancel(run);
            const cause = toRuneError(error, { operation: 'GetCommandInvocation', ...context });
            throw new RuneError(
              'CONNECTION_LOST',
              `lost track of SSM command ${run.commandId} on ${run.instanceId}: ${cause.message}`,
              {
                cause: error,
                source: { component: 'transport-ssm', node },
                traceId: request.traceId,
                details: { ...cause.details, command_id: run.commandId },
              },
            );
          }
        }
      }

      if (invocation !== undefined) {
        run.recorder?.setAttributes({ 'rune.ssm.status': invocation.Status ?? 'unknown' });
        const outcome = mapInvocationStatus(invocation.Status, invocation.StatusDetails);
        switch (outcome.kind) {
          case 'running':
            started ||= outcome.started;
            break;
          case 'finished':
            return this.finished(run, invocation);
          case 'timeout':
            return this.interrupted(run, 'timeout', statusFacts(invocation));
          case 'cancelled':
            if (cancelled === 'delivery') {
              throw this.deliveryTimeout(run, invocation);
            }
            return this.interrupted(
              run,
              cancelled === 'timeout' ? 'timeout' : 'cancelled',
              statusFacts(invocation),
            );
          case 'error':
            throw new RuneError(outcome.code, `${outcome.message} (${run.instanceId})`, {
              source: { component: 'transport-ssm', node },
              traceId: request.traceId,
              details: { command_id: run.commandId, ...statusFacts(invocation) },
            });
        }
      }

      const jitter = 0.8 + 0.4 * this.random();
      await this.sleep(Math.round(interval * jitter), request.signal);
      interval = Math.min(this.maxPollIntervalMs, Math.ceil(interval * 1.5));
    }
  }

  private deliveryTimeout(run: RunState, invocation: GetCommandInvocationCommandOutput): RuneError {
    return new RuneError(
      'DELIVERY_TIMEOUT',
      `SSM did not start the command on ${run.instanceId} within the timeout; it was cancelled`,
      {
        source: { component: 'transport-ssm', node: run.request.node.name },
        traceId: run.request.traceId,
        details: { command_id: run.commandId, ...statusFacts(invocation) },
      },
    );
  }

  private timings(run: RunState): TransportExecResult['timings'] {
    const now = this.clock();
    const totalMs = Math.max(0, now - run.started);
    const execMs = Math.min(totalMs, Math.max(0, now - run.sentAt));
    return { connectMs: Math.max(0, run.sentAt - run.started), execMs, totalMs };
  }

  private interrupted(
    run: RunState,
    termination: 'timeout' | 'cancelled',
    facts: Record<string, unknown>,
  ): TransportExecResult {
    return {
      ...interruptedResult(termination, this.timings(run), {
        embeds_request: true,
        command_id: run.commandId,
        instance_id: run.instanceId,
        ...facts,
      }),
      containment: { ...UNREPORTED_CONTAINMENT },
    };
  }

  private async finished(
    run: RunState,
    invocation: GetCommandInvocationCommandOutput,
  ): Promise<TransportExecResult> {
    const { request } = run;
    const node = request.node.name;
    let stdoutRaw: Uint8Array = Buffer.from(invocation.StandardOutputContent ?? '', 'utf8');
    let stderrRaw: Uint8Array = Buffer.from(invocation.StandardErrorContent ?? '', 'utf8');
    let parsed = parseWrapperOutput(stdoutRaw, run.nonce);
    let outputSource = 'api';

    const streams = (): { stdout: ReceivedStream; stderr: ReceivedStream } | undefined => {
      if (parsed === undefined || !isDoneLine(parsed.result)) return undefined;
      const line = parsed.result;
      return {
        stdout: receiveStream(parsed.body, line.stdoutEncoding, line.stdoutSent, line.stdoutSha256),
        stderr: receiveStream(stderrRaw, line.stderrEncoding, line.stderrSent, line.stderrSha256),
      };
    };
    let received = streams();

    if (
      (received === undefined || !received.stdout.intact || !received.stderr.intact) &&
      this.options.outputS3Bucket !== undefined
    ) {
      const fromS3 = await withPhaseSpan(run.request, 'fetch', (phase) => {
        phase.setAttributes({ 'rune.ssm.output_source': 's3' });
        return this.readS3Output(run);
      });
      if (fromS3 !== undefined) {
        const reparsed = parseWrapperOutput(fromS3.stdout, run.nonce);
        if (reparsed !== undefined) {
          parsed = reparsed;
          stdoutRaw = fromS3.stdout;
          stderrRaw = fromS3.stderr;
          outputSource = 's3';
          received = streams();
        }
      }
    }

    const facts = { ...statusFacts(invocation), output_source: outputSource };
    if (parsed === undefined) {
      throw new RuneError(
        'CONNECTION_LOST',
        `the command on ${run.instanceId} ended (${invocation.Status}/${invocation.StatusDetails}, response code ${invocation.ResponseCode}) without RUNE's result line: the wrapper was killed or could not start; the plugin's outcome is unknown`,
        {
          source: { component: 'transport-ssm', node },
          traceId: request.traceId,
          details: {
            command_id: run.commandId,
            ...facts,
            stderr_head: Buffer.from(stderrRaw.subarray(0, 500)).toString('utf8'),
          },
        },
      );
    }
    const result = parsed.result;
    if (result.stage === 'preflight' && !isDoneLine(result)) {
      throw this.preflightFailed(run, result.missing ?? [], facts);
    }
    if (!isDoneLine(result) || received === undefined) {
      const component = 'component' in result ? result.component : undefined;
      const known = STAGE_ERRORS[result.stage] ?? {
        code: 'TRANSPORT_UNAVAILABLE' as ErrorCode,
        message: result.stage.startsWith('missing-tool-')
          ? `the node lacks ${result.stage.slice('missing-tool-'.length)}, which the SSM wrapper needs`
          : `the SSM wrapper stopped at stage ${result.stage}`,
      };
      const where = component === undefined ? '' : `: ${JSON.stringify(component)} is unsafe`;
      throw new RuneError(known.code, `${known.message} (${run.instanceId}${where})`, {
        source: { component: 'transport-ssm', node },
        traceId: request.traceId,
        details: {
          command_id: run.commandId,
          stage: result.stage,
          ...(component === undefined ? {} : { component }),
          ...facts,
        },
      });
    }

    if (!received.stdout.intact && !received.stdout.cut) {
      // Not a cut (those are truncation): the bytes changed on the way. Judging the plugin on
      // them would blame it for what the channel did.
      throw new RuneError(
        'TRANSPORT_API_ERROR',
        `the output of command ${run.commandId} on ${run.instanceId} changed in transit (length or sha256 differ from what the node sent)`,
        {
          source: { component: 'transport-ssm', node },
          traceId: request.traceId,
          details: { command_id: run.commandId, ...facts },
        },
      );
    }
    const stdoutCapture = new HeadCapture(request.limits.maxStdoutBytes);
    stdoutCapture.push(received.stdout.bytes);
    const stdout = stdoutCapture.bytes();
    const stderrCapture = new TailCapture(request.limits.maxStderrBytes);
    stderrCapture.push(received.stderr.bytes);
    const stderr = stderrCapture.bytes();
    if (
      (!received.stdout.intact || !received.stderr.intact) &&
      this.options.outputS3Bucket === undefined
    ) {
      this.options.onWarning?.(
        `output of command ${run.commandId} on ${run.instanceId} exceeds what GetCommandInvocation returns (24,000/8,000 characters); set [ssm] output_s3_bucket for full output`,
      );
    }
    const status = interpretExitStatus(result.exitCode);
    const containment: ContainmentReport = {
      method: 'run-marker',
      killed: result.killed,
      complete: result.contained,
      ...(result.contained
        ? {}
        : {
            detail:
              'the node has no readable /proc: processes the plugin left behind could not be looked for',
          }),
    };
    return {
      ...status,
      stdout,
      stdoutTruncated: stdout.byteLength < result.stdoutBytes || !received.stdout.intact,
      stderr,
      stderrTruncated: stderr.byteLength < result.stderrBytes || !received.stderr.intact,
      timings: this.timings(run),
      containment,
      metadata: {
        embeds_request: true,
        shipped: request.deployMode === 'ship',
        command_id: run.commandId,
        instance_id: run.instanceId,
        remote_exit_status: result.exitCode,
        stdout_encoding: result.stdoutEncoding,
        ...facts,
      },
    };
  }

  /**
   * The plugin never started: the node lacks required commands. Only names that were asked for
   * count (the node cannot make up others); a preflight stop naming none is the channel's fault.
   */
  private preflightFailed(
    run: RunState,
    reported: readonly string[],
    facts: Record<string, unknown>,
  ): RuneError {
    const { request } = run;
    const node = request.node.name;
    const missing = reported.filter((name) => run.preflight.includes(name));
    const details = { command_id: run.commandId, instance_id: run.instanceId, ...facts };
    if (missing.length === 0) {
      return new RuneError(
        'TRANSPORT_API_ERROR',
        `the SSM wrapper on ${run.instanceId} stopped at its preflight without naming a required command`,
        { source: { component: 'transport-ssm', node }, traceId: request.traceId, details },
      );
    }
    return preflightFailure(missing, { node, transport: 'ssm' }).withContext({
      action: request.plugin.action,
      traceId: request.traceId,
      details,
    });
  }

  /** S3 key of one output stream, as the SSM agent writes it for AWS-RunShellScript. */
  outputKey(run: Pick<RunState, 'commandId' | 'instanceId'>, stream: 'stdout' | 'stderr'): string {
    const prefix = (this.options.outputS3Prefix ?? '').replace(/^\/+|\/+$/g, '');
    const key = `${run.commandId}/${run.instanceId}/awsrunShellScript/0.awsrunshellscript/${stream}`;
    return prefix === '' ? key : `${prefix}/${key}`;
  }

  private s3Client(): S3Client {
    if (this.s3 === undefined) {
      this.s3 = new S3Client({
        ...(this.options.region ? { region: this.options.region } : {}),
        ...(this.options.profile ? { profile: this.options.profile } : {}),
        ...(this.options.credentials ? { credentials: this.options.credentials } : {}),
        ...(this.options.s3Endpoint
          ? { endpoint: this.options.s3Endpoint, forcePathStyle: true }
          : {}),
        maxAttempts: this.options.maxAttempts ?? DEFAULT_SSM_MAX_ATTEMPTS,
        retryMode: 'adaptive',
      });
    }
    return this.s3;
  }

  private async readS3Output(
    run: RunState,
  ): Promise<{ stdout: Uint8Array; stderr: Uint8Array } | undefined> {
    const bucket = this.options.outputS3Bucket!;
    const read = async (stream: 'stdout' | 'stderr'): Promise<Uint8Array> => {
      try {
        const object = await this.s3Client().send(
          new GetObjectCommand({ Bucket: bucket, Key: this.outputKey(run, stream) }),
        );
        return object.Body === undefined
          ? new Uint8Array()
          : await object.Body.transformToByteArray();
      } catch (error) {
        // The agent writes no object for an empty stream.
        if (awsErrorName(error) === 'NoSuchKey') return new Uint8Array();
        throw error;
      }
    };
    try {
      const [stdout, stderr] = await Promise.all([read('stdout'), read('stderr')]);
      return { stdout, stderr };
    } catch (error) {
      this.options.onWarning?.(
        `could not read the output of ${run.commandId} from s3://${bucket}: ${awsErrorName(error) ?? ''} ${String((error as Error)?.message ?? error)}`,
      );
      return undefined;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsClient) this.client.destroy();
    if (this.ownsS3) this.s3?.destroy();
  }
}

function statusFacts(invocation: GetCommandInvocationCommandOutput): Record<string, unknown> {
  return {
    ssm_status: invocation.Status ?? null,
    ssm_status_details: invocation.StatusDetails ?? null,
    ssm_response_code: invocation.ResponseCode ?? null,
  };
}

/**
 * Creates the SSM transport. It runs plugins through `AWS-RunShellScript` with the real
 * `@aws-sdk/client-ssm`; see docs/ssm.md for the IAM permissions, the status table and the
 * limits (24,000/8,000 characters of output without S3, 64,000-byte commands, 50 ids per call).
 */
export function createSsmTransport(options: SsmTransportOptions = {}): Transport {
  return new SsmTransport(options);
}
