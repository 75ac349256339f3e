/**
 * Re-running a past run from the audit trail (like Bolt's `--rerun`): the intent record of a
 * trace names the action, its parameters and its nodes, and the `run` records of the same run id
 * say how each node ended. A node listed in the intent without an outcome record counts as not
 * done (it was attempted; whether it ran is unknown), so `failed` selects it too.
 *
 * Parameters are taken as recorded. Those the audit never held — sensitive values (stored as
 * `[REDACTED]`) and values too long to keep (stored as a digest) — are returned by name so that
 * the caller can require them again instead of sending the placeholder to a node.
 */
import { RuneError } from '@rune/protocol';
import { REDACTED } from '../planning/resolve-parameters.js';
import type { AuditRecord } from './audit-log.js';
import { readAuditLog } from './audit-log.js';

/** Which nodes of a past run to run again. */
export type RerunWhich = 'all' | 'failed';

/** The values `--rerun` accepts. */
export const RERUN_CHOICES: readonly RerunWhich[] = ['all', 'failed'];

/** How a node of the original run ended (`no-outcome`: attempted, outcome never recorded). */
export type RerunNodeOutcome = 'success' | 'partial' | 'failure' | 'skipped' | 'no-outcome';

/** What to run again, read from the audit trail. */
export interface RerunSelection {
  /** Trace id of the original run. */
  traceId: string;
  /** Run id of the original run (ties its intent to its outcome records). */
  runId: string;
  action: string;
  /** The plugin that ran then (version, sha256, path, source). */
  plugin: AuditRecord['plugin'];
  /** The nodes to run on, in the order of the original run. */
  nodes: string[];
  /** The transport each selected node used (from its outcome record, else the intent's). */
  transports: Record<string, string>;
  /** How every node of the original run ended. */
  outcomes: Record<string, RerunNodeOutcome>;
  /** Parameters as recorded, without those in {@link RerunSelection.unrecordedParameters}. */
  parameters: Record<string, unknown>;
  /** Parameters whose values were never recorded (sensitive, or kept only as a digest). */
  unrecordedParameters: string[];
}

const TRACE_ID = /^[0-9a-f]{32}$/;

function isDigest(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { truncated?: unknown }).truncated === true &&
    typeof (value as { sha256?: unknown }).sha256 === 'string'
  );
}

function usage(message: string, details: Record<string, unknown>): RuneError {
  return new RuneError('INVALID_ARGUMENT', message, {
    source: { component: 'rune-core' },
    details,
  });
}

/**
 * Selects from `records` (a whole audit log, in order) what `--rerun which --trace traceId`
 * runs again. Throws INVALID_ARGUMENT when the trace id is malformed, names no run (or only a
 * dry run or a refusal), or the log no longer lists every node that would be selected.
 */
export function selectRerun(
  records: readonly AuditRecord[],
  traceId: string,
  which: RerunWhich,
): RerunSelection {
  if (!RERUN_CHOICES.includes(which)) {
    throw usage(`--rerun must be one of ${RERUN_CHOICES.join(', ')} (got ${String(which)})`, {
      rerun: which,
    });
  }
  if (!TRACE_ID.test(traceId)) {
    throw usage(`--trace must be a trace id (32 lowercase hex digits), got ${traceId}`, {
      trace_id: traceId,
    });
  }
  const ofTrace = records.filter((record) => record.trace_id === traceId);
  const intents = ofTrace.filter((record) => record.event === 'intent');
  const intent = intents.at(-1);
  if (intent === undefined || intent.run_id === undefined) {
    const kinds = [...new Set(ofTrace.map((record) => record.event))];
    const why =
      kinds.length === 0
        ? 'the audit log has no record of it'
        : `the audit log holds only ${kinds.join(' and ')} records for it: nothing ran`;
    throw usage(`trace ${traceId} names no run to re-run (${why})`, {
      trace_id: traceId,
      events: kinds,
    });
  }
  const runId = intent.run_id;
  const outcomeRecords = ofTrace.filter(
    (record) => record.event === 'run' && record.run_id === runId && record.node !== null,
  );
  const listed = intent.nodes ?? [];
  const total = intent.nodes_total ?? listed.length;
  // The intent lists at most the first 100 nodes; outcome records name the rest that ended.
  const order: string[] = [...listed];
  const seen = new Set(order);
  const outcomes: Record<string, RerunNodeOutcome> = {};
  const transports: Record<string, string> = {};
  for (const record of outcomeRecords) {
    const node = record.node as string;
    if (!seen.has(node)) {
      seen.add(node);
      order.push(node);
    }
    outcomes[node] = (
      ['success', 'partial', 'failure', 'skipped'].includes(record.status)
        ? record.status
        : 'failure'
    ) as RerunNodeOutcome;
    if (record.transport !== null) transports[node] = record.transport;
  }
  const intentTransports = (intent.transport ?? '').split(',').filter((name) => name !== '');
  for (const node of order) {
    outcomes[node] ??= 'no-outcome';
    if (transports[node] === undefined && intentTransports.length === 1) {
      transports[node] = intentTransports[0] as string;
    }
  }
  if (order.length < total) {
    // Nodes beyond the listed ones that never recorded an outcome cannot be named.
    throw usage(
      `trace ${traceId} ran on ${total} nodes; the audit log names only ${order.length} of them (the intent lists the first ${listed.length}, and the others recorded no outcome), so RUNE cannot tell which nodes to run again`,
      { trace_id: traceId, nodes_total: total, nodes_known: order.length },
    );
  }
  const nodes =
    which === 'all'
      ? order
      : order.filter((node) => !['success', 'partial'].includes(outcomes[node] as string));
  const parameters: Record<string, unknown> = {};
  const unrecordedParameters: string[] = [];
  for (const [name, value] of Object.entries(intent.params ?? {})) {
    if (value === REDACTED || isDigest(value)) unrecordedParameters.push(name);
    else parameters[name] = value;
  }
  return {
    traceId,
    runId,
    action: intent.action,
    plugin: intent.plugin,
    nodes,
    transports: Object.fromEntries(
      nodes.flatMap((node) => (transports[node] === undefined ? [] : [[node, transports[node]]])),
    ),
    outcomes,
    parameters,
    unrecordedParameters,
  };
}

/** {@link selectRerun} over the audit log at `auditPath` (see `resolveAuditLogPath`). */
export function rerunSelection(
  auditPath: string,
  traceId: string,
  which: RerunWhich,
): RerunSelection {
  return selectRerun(readAuditLog(auditPath), traceId, which);
}
