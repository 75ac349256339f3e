/**
 * The execution: executes an {@link ExecutionPlan} through transports and turns whatever
 * happens into one {@link NodeRunResult} per node — never a throw.
 *
 * Per node: check the plugin file still has the planned sha256, pick the transport, check its
 * capabilities (including: no supplied sensitive parameter on a transport that embeds the
 * request in its command), exec with a timeout and an AbortSignal, then judge the raw outcome with
 * `evaluatePluginOutput` from @rune/protocol (the same rules the plugin test kit applies).
 * Timeouts become PLUGIN_TIMEOUT, cancellations RUN_CANCELLED, RuneErrors thrown by a transport
 * keep their code (with node, action and trace id added), anything else is INTERNAL_ERROR.
 * Nodes are scheduled by `scheduleFleet` (bounded concurrency; fleet policies pass through), and
 * each result is emitted as soon as its node finishes.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  type BpcsResponse,
  type EpsError,
  evaluatePluginOutput,
  exitCodeFor,
  isErrorCode,
  type RunArtifactRemoval,
  RuneError,
} from '@rune/protocol';
import type {
  ContainmentReport,
  Termination,
  Transport,
  TransportExecResult,
  TransportPlugin,
} from '@rune/transport';
import { sha256Hex } from '@rune/transport';
import { type FleetPolicyRecord, fleetPolicyRecord } from '../fleet/policy.js';
import {
  abortReasonCode,
  type FleetPolicy,
  type ScheduledOutcome,
  scheduleFleet,
} from '../fleet/scheduler.js';
import type { ExecutionPlan, PlannedNode } from '../planning/plan-run.js';
import { removeNodeCopy } from './remove-artifact.js';
import { sensitiveParameterRefusal } from './sensitive-parameters.js';
import type { TransportRegistry } from './transport-registry.js';

/** How one node ended. `partial` counts as success for exit codes. */
export type NodeRunStatus = 'success' | 'partial' | 'failure' | 'skipped';

/** An artifact a plugin declared, and what became of it. */
export interface ArtifactRecord {
  /** Path on the node. */
  path: string;
  sha256: string;
  size: number;
  /** Where it was stored on the control node, when fetched. */
  local_path: string | null;
  status: 'fetched' | 'failed' | 'not-fetched';
  error: EpsError | null;
  /** What became of the node's copy once fetched and verified (fetched artifacts only). */
  removal?: RunArtifactRemoval;
}

/** The outcome of one node. Field names are the wire names of the CLI's JSON output. */
export interface NodeRunResult {
  node: string;
  transport: string;
  status: NodeRunStatus;
  /** The RCS message_id of the request sent to this node. */
  message_id: string;
  /** The validated BPCS result, when the plugin produced one (also for some failures). */
  response: BpcsResponse | null;
  /** The EPS error, for failures and skips. */
  error: EpsError | null;
  /** CLI exit code this node alone would give (0 for success/partial). */
  exit_code: number;
  /** The plugin process's exit code, when it exited. */
  plugin_exit_code: number | null;
  signal: string | null;
  termination: Termination | null;
  started_at: string | null;
  duration_ms: number;
  /** The tail of the plugin's stderr, decoded as UTF-8 (bounded by `max_stderr_bytes`). */
  stderr_tail: string;
  stderr_truncated: boolean;
  stdout_bytes: number;
  stdout_truncated: boolean;
  /** Transport facts (shipped, connection reused, command id, ...); also holds `containment`. */
  metadata: Record<string, unknown>;
  artifacts: ArtifactRecord[];
  /**
   * What the transport killed when the run ended and whether it could make sure nothing the run
   * started is still running (`complete`). Null when nothing was started on the node, or the
   * transport does not report it.
   */
  containment: ContainmentReport | null;
}

/** Totals of a run. */
export interface RunSummary {
  trace_id: string;
  action: string;
  total: number;
  succeeded: number;
  partial: number;
  failed: number;
  skipped: number;
  duration_ms: number;
  /** Aggregate CLI exit code; see {@link aggregateExitCode}. */
  exit_code: number;
  /** The fleet policy the run used (concurrency, canary, max_failures, deadline_ms). */
  policy?: FleetPolicyRecord;
}

/** The result of executing a plan. */
export interface RunOutcome {
  plan: ExecutionPlan;
  nodes: NodeRunResult[];
  summary: RunSummary;
}

/** Options of {@link executePlan}. */
export interface ExecutePlanOptions {
  transports: TransportRegistry;
  /** Aborting cancels the run: running plugins are killed, unstarted nodes are skipped. */
  signal?: AbortSignal;
  /** Called when a node starts. */
  onNodeStart?: (node: PlannedNode, index: number) => void;
  /** Called as soon as each node has its final result (in completion order). */
  onNodeResult?: (result: NodeRunResult, index: number) => void | Promise<void>;
  /** Fleet policy fields passed through to `scheduleFleet` (canary, maxFailures, deadline). */
  policy?: Omit<FleetPolicy, 'concurrency'>;
  /** Wall clock in ms (injectable). */
  now?: () => number;
  /** Reads a plugin file (injectable). */
  readPluginFile?: (path: string) => Promise<Uint8Array>;
  /**
   * Extra time beyond the plan timeout after which the execution step gives up on a transport that
   * has not returned (it aborts the exec and reports PLUGIN_TIMEOUT). Default 30 s.
   */
  transportGraceMs?: number;
}

/**
 * Severity of CLI exit codes, most severe first: a bug in RUNE (70), a cancelled run (130), a
 * broken plugin protocol (6), a timeout (5), a policy refusal (4), an unreachable node (3), bad
 * input (2), a plugin that reported failure (1).
 */
export const EXIT_CODE_SEVERITY: readonly number[] = [70, 130, 6, 5, 4, 3, 2, 1];

/** The exit code of a set of nodes: 0 when all succeeded, else the most severe failure's code. */
export function aggregateExitCode(results: readonly Pick<NodeRunResult, 'exit_code'>[]): number {
  let worst = 0;
  let worstRank = Number.POSITIVE_INFINITY;
  for (const { exit_code: code } of results) {
    if (code === 0) continue;
    const rank = EXIT_CODE_SEVERITY.indexOf(code);
    const effective = rank === -1 ? EXIT_CODE_SEVERITY.length : rank;
    if (effective < worstRank) {
      worstRank = effective;
      worst = code;
    }
  }
  return worst;
}

/** The CLI exit code of an EPS error (1 for codes outside the catalog, e.g. a plugin's own). */
export function exitCodeForError(error: Pick<EpsError, 'code'>): number {
  return isErrorCode(error.code) ? exitCodeFor(error.code) : 1;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

function safeFileName(path: string, index: number, used: Set<string>): string {
  let name = basename(path).replace(/[^A-Za-z0-9._-]/g, '_');
  if (name === '' || name === '.' || name === '..') name = 'artifact';
  if (used.has(name)) name = `${index}-${name}`;
  used.add(name);
  return name;
}

/** Summarizes node results. */
export function summarizeRun(
  plan: Pick<ExecutionPlan, 'trace_id' | 'action'>,
  nodes: readonly NodeRunResult[],
  durationMs: number,
): RunSummary {
  const count = (status: NodeRunStatus) => nodes.filter((node) => node.status === status).length;
  return {
    trace_id: plan.trace_id,
    action: plan.action,
    total: nodes.length,
    succeeded: count('success'),
    partial: count('partial'),
    failed: count('failure'),
    skipped: count('skipped'),
    duration_ms: durationMs,
    exit_code: aggregateExitCode(nodes),
  };
}

/** Executes a plan. Never throws for node failures; each node ends in a {@link NodeRunResult}. */
export async function executePlan(
  plan: ExecutionPlan,
  options: ExecutePlanOptions,
): Promise<RunOutcome> {
  const now = options.now ?? Date.now;
  const runStarted = now();
  const readPlugin = options.readPluginFile ?? ((path: string) => readFile(path));
  const graceMs = options.transportGraceMs ?? 30_000;
  let content: Promise<Uint8Array> | undefined;

  const loadPlugin = async (): Promise<Uint8Array> => {
    content ??= (async () => {
      let bytes: Uint8Array;
      try {
        bytes = await readPlugin(plan.plugin.path);
      } catch (error) {
        throw new RuneError(
          'PLUGIN_INTEGRITY_FAILED',
          `plugin ${plan.plugin.path} cannot be read`,
          {
            cause: error,
            details: { path: plan.plugin.path },
          },
        );
      }
      const actual = sha256Hex(bytes);
      if (actual !== plan.plugin.sha256) {
        throw new RuneError(
          'PLUGIN_INTEGRITY_FAILED',
          `plugin ${plan.plugin.path} changed since it was planned; nothing was executed`,
          { details: { path: plan.plugin.path, expected: plan.plugin.sha256, actual } },
        );
      }
      return bytes;
    })();
    return content;
  };

  const baseResult = (planned: PlannedNode): NodeRunResult => ({
    node: planned.target.name,
    transport: planned.transport,
    status: 'failure',
    message_id: planned.request.message_metadata.message_id,
    response: null,
    error: null,
    exit_code: 0,
    plugin_exit_code: null,
    signal: null,
    termination: null,
    started_at: null,
    duration_ms: 0,
    stderr_tail: '',
    stderr_truncated: false,
    stdout_bytes: 0,
    stdout_truncated: false,
    metadata: {},
    artifacts: [],
    containment: null,
  });

  const fail = (result: NodeRunResult, error: RuneError, planned: PlannedNode): NodeRunResult => {
    const contextual = error.withContext({
      node: planned.target.name,
      action: plan.action,
      traceId: plan.trace_id,
    });
    result.status = 'failure';
    result.error = contextual.toJSON();
    result.exit_code = contextual.exitCode;
    return result;
  };

  const fetchArtifacts = async (
    transport: Transport,
    planned: PlannedNode,
    response: BpcsResponse,
    signal: AbortSignal,
  ): Promise<{ records: ArtifactRecord[]; error: RuneError | null }> => {
    const declared = response.payload.artifacts ?? [];
    const records: ArtifactRecord[] = declared.map((artifact) => ({
      path: artifact.path,
      sha256: artifact.sha256,
      size: artifact.size,
      local_path: null,
      status: 'not-fetched',
      error: null,
    }));
    if (!plan.fetch_artifacts || declared.length === 0) return { records, error: null };
    let firstError: RuneError | null = null;
    const fetchOne = transport.fetchArtifact?.bind(transport);
    const dir = join(plan.artifact_dir, plan.trace_id, planned.target.name);
    const used = new Set<string>();
    for (const [index, record] of records.entries()) {
      try {
        if (fetchOne === undefined || !transport.capabilities.artifacts) {
          throw new RuneError(
            'ARTIFACT_FETCH_FAILED',
            `transport ${transport.name} cannot fetch artifacts`,
          );
        }
        const fetched = await fetchOne(planned.target, record.path, signal);
        const actual = sha256Hex(fetched.content);
        if (actual !== record.sha256 || fetched.content.byteLength !== record.size) {
          throw new RuneError(
            'ARTIFACT_FETCH_FAILED',
            `artifact ${record.path} does not match its declared sha256/size`,
            {
              details: {
                path: record.path,
                expected_sha256: record.sha256,
                actual_sha256: actual,
                expected_size: record.size,
                actual_size: fetched.content.byteLength,
              },
            },
          );
        }
        await mkdir(dir, { recursive: true, mode: 0o700 });
        const localPath = join(dir, safeFileName(record.path, index, used));
        await writeFile(localPath, fetched.content, { mode: 0o600 });
        record.local_path = localPath;
        record.status = 'fetched';
        record.removal = await removeNodeCopy(transport, planned.target, record.path, signal, {
          node: planned.target.name,
          action: plan.action,
          traceId: plan.trace_id,
        });
      } catch (error) {
        const runeError = RuneError.from(error, 'ARTIFACT_FETCH_FAILED').withContext({
          node: planned.target.name,
          action: plan.action,
          traceId: plan.trace_id,
        });
        record.status = 'failed';
        record.error = runeError.toJSON();
        firstError ??= runeError;
      }
    }
    return { records, error: firstError };
  };

  const runNode = async (planned: PlannedNode, signal: AbortSignal): Promise<NodeRunResult> => {
    const result = baseResult(planned);
    const started = now();
    result.started_at = new Date(started).toISOString();
    try {
      const bytes = await loadPlugin();
      const transport = await options.transports.get(planned.transport);
      const stdin = new TextEncoder().encode(JSON.stringify(planned.request));
      const capabilities = transport.capabilities;
      const refusal = sensitiveParameterRefusal(plan, transport, [planned.target.name]);
      if (refusal !== undefined) throw refusal;
      if (!capabilities.deployModes.includes(plan.deploy_mode)) {
        throw new RuneError(
          'UNSUPPORTED_FEATURE',
          `transport ${transport.name} does not support deploy mode ${plan.deploy_mode}`,
        );
      }
      if (
        capabilities.maxStdinBytes !== undefined &&
        stdin.byteLength > capabilities.maxStdinBytes
      ) {
        throw new RuneError(
          'PAYLOAD_TOO_LARGE',
          `the RCS request is ${stdin.byteLength} bytes; transport ${transport.name} carries at most ${capabilities.maxStdinBytes}`,
          { details: { bytes: stdin.byteLength, limit: capabilities.maxStdinBytes } },
        );
      }
      const runAs = planned.target.runAs ?? plan.run_as ?? undefined;
      if (runAs !== undefined && !capabilities.runAs) {
        throw new RuneError(
          'UNSUPPORTED_FEATURE',
          `transport ${transport.name} does not support run_as`,
        );
      }
      const plugin: TransportPlugin = {
        action: plan.action,
        version: plan.plugin.version,
        sha256: plan.plugin.sha256,
        content: bytes,
        localPath: plan.plugin.path,
      };
      if (planned.remote_path !== null) plugin.remotePath = planned.remote_path;

      const controller = new AbortController();
      const forward = (): void => controller.abort(signal.reason);
      if (signal.aborted) forward();
      else signal.addEventListener('abort', forward, { once: true });
      let guard: NodeJS.Timeout | undefined;
      let raw: TransportExecResult | 'stuck';
      try {
        raw = await Promise.race([
          transport.exec({
            node: planned.target,
            plugin,
            deployMode: plan.deploy_mode,
            stdin,
            timeoutMs: plan.timeout_ms,
            limits: {
              maxStdoutBytes: plan.limits.max_stdout_bytes,
              maxStderrBytes: plan.limits.max_stderr_bytes,
            },
            signal: controller.signal,
            traceId: plan.trace_id,
            ...(runAs === undefined ? {} : { runAs }),
          }),
          new Promise<'stuck'>((resolve) => {
            guard = setTimeout(() => resolve('stuck'), plan.timeout_ms + graceMs);
          }),
        ]);
      } finally {
        if (guard !== undefined) clearTimeout(guard);
        signal.removeEventListener('abort', forward);
      }
      if (raw === 'stuck') {
        controller.abort();
        result.containment = {
          method: 'none',
          killed: 0,
          complete: false,
          detail: `transport ${transport.name} did not return, so nobody confirmed that the plugin was stopped`,
        };
        result.metadata = { containment: result.containment };
        throw new RuneError(
          'PLUGIN_TIMEOUT',
          `transport ${transport.name} did not return within ${plan.timeout_ms + graceMs} ms`,
          { details: { timeout_ms: plan.timeout_ms, transport_grace_ms: graceMs } },
        );
      }

      result.plugin_exit_code = raw.exitCode;
      result.signal = raw.signal;
      result.termination = raw.termination;
      result.stderr_tail = decoder.decode(raw.stderr);
      result.stderr_truncated = raw.stderrTruncated;
      result.stdout_bytes = raw.stdout.byteLength;
      result.stdout_truncated = raw.stdoutTruncated;
      result.containment = raw.containment ?? null;
      // The audit record takes the node's metadata, so containment is recorded there too.
      result.metadata = {
        ...raw.metadata,
        timings: raw.timings,
        ...(raw.containment === undefined ? {} : { containment: raw.containment }),
      };

      if (raw.termination === 'timeout') {
        throw new RuneError(
          'PLUGIN_TIMEOUT',
          `plugin ran past its timeout of ${plan.timeout_ms} ms; its process group was killed`,
          { details: { timeout_ms: plan.timeout_ms } },
        );
      }
      if (raw.termination === 'cancelled') {
        // The scheduler aborts with DEADLINE_EXCEEDED when the overall deadline passed.
        throw abortReasonCode(signal) === 'DEADLINE_EXCEEDED'
          ? new RuneError('DEADLINE_EXCEEDED', 'the run deadline passed; the plugin was killed')
          : new RuneError('RUN_CANCELLED', 'the run was cancelled; the plugin was killed');
      }
      const verdict = evaluatePluginOutput(
        {
          exitCode: raw.exitCode,
          signal: raw.signal,
          stdout: raw.stdout,
          stdoutTruncated: raw.stdoutTruncated,
        },
        {
          traceId: plan.trace_id,
          action: plan.action,
          node: planned.target.name,
          requestMessageId: result.message_id,
          maxBytes: plan.limits.max_stdout_bytes,
        },
      );
      result.response = verdict.response;
      if (!verdict.ok) throw verdict.error;
      result.status = verdict.response.payload.result === 'partial' ? 'partial' : 'success';
      result.exit_code = 0;

      const artifacts = await fetchArtifacts(
        transport,
        planned,
        verdict.response,
        controller.signal,
      );
      result.artifacts = artifacts.records;
      if (artifacts.error !== null) throw artifacts.error;
      return result;
    } catch (error) {
      return fail(result, RuneError.from(error), planned);
    } finally {
      result.duration_ms = Math.max(0, Math.round(now() - started));
    }
  };

  const results: NodeRunResult[] = new Array(plan.nodes.length);
  const pending: Promise<void>[] = [];
  const emit = (result: NodeRunResult, index: number): void => {
    results[index] = result;
    if (options.onNodeResult !== undefined) {
      pending.push(
        (async () => {
          await options.onNodeResult?.(result, index);
        })(),
      );
    }
  };

  const outcomeToResult = (
    outcome: ScheduledOutcome<PlannedNode, NodeRunResult>,
  ): NodeRunResult => {
    if (outcome.status === 'completed') return outcome.result;
    const result = baseResult(outcome.node);
    const messages: Record<typeof outcome.reason, string> = {
      RUN_CANCELLED: 'the run was cancelled before this node started',
      CANARY_FAILED: 'the canary nodes did not all succeed; this node was not started',
      MAX_FAILURES_EXCEEDED: 'the failure budget was exceeded; this node was not started',
      DEADLINE_EXCEEDED: 'the run deadline passed before this node started',
    };
    const error = new RuneError(outcome.reason, messages[outcome.reason], {
      source: { component: 'rune-core', node: outcome.node.target.name, action: plan.action },
      traceId: plan.trace_id,
    });
    result.status = 'skipped';
    result.error = error.toJSON();
    result.exit_code = error.exitCode;
    return result;
  };

  await scheduleFleet(
    plan.nodes,
    { ...options.policy, concurrency: plan.concurrency },
    runNode,
    (result) => result.status === 'failure',
    {
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      onStart: (node, index) => options.onNodeStart?.(node, index),
      onOutcome: (outcome) => emit(outcomeToResult(outcome), outcome.index),
    },
  );
  const errors = await Promise.allSettled(pending);
  const rejected = errors.find((settled) => settled.status === 'rejected');
  if (rejected !== undefined && rejected.status === 'rejected')
    throw RuneError.from(rejected.reason);

  const nodes = plan.nodes.map((planned, index) => results[index] ?? baseResult(planned));
  const summary = summarizeRun(plan, nodes, Math.round(now() - runStarted));
  summary.policy = fleetPolicyRecord({ ...options.policy, concurrency: plan.concurrency });
  return { plan, nodes, summary };
}
