/**
 * The result of one node: its type ({@link NodeRunResult}, the wire shape of the CLI's JSON output
 * and of run/v1's node result), the empty result every node starts from, and how an error turns
 * it into a failure. Nothing here talks to a transport.
 */
import type { BpcsResponse, EpsError, RunArtifactRemoval, RuneError } from '@rune/protocol';
import type { ContainmentReport, Termination } from '@rune/transport';
import type { ExecutionPlan, PlannedNode } from '../planning/plan-run.js';

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

/** The result a node starts from: a failure with nothing known yet. */
export function emptyNodeResult(planned: PlannedNode): NodeRunResult {
  return {
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
  };
}

/** Marks `result` failed with `error`, which gets the node, action and trace id added. */
export function failNodeResult(
  result: NodeRunResult,
  error: RuneError,
  plan: Pick<ExecutionPlan, 'action' | 'trace_id'>,
): NodeRunResult {
  const contextual = error.withContext({
    node: result.node,
    action: plan.action,
    traceId: plan.trace_id,
  });
  result.status = 'failure';
  result.error = contextual.toJSON();
  result.exit_code = contextual.exitCode;
  return result;
}
