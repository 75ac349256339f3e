/**
 * The machine output of `rune run --output json`: ONE document, always the same shape, also
 * when the run was refused or crashed (then `nodes` is empty and `error` is the EPS error).
 * The shape is documented in docs/cli.md; `schema` names its version.
 */
import type { ExecutionPlan, NodeRunResult, RunAuditReport, RunSummary } from '@rune/core';
import type { EpsError } from '@rune/protocol';

/** The `schema` value of the run document. */
export const RUN_RESULT_SCHEMA = 'rune-run-result/v1';

/** The document `rune run --output json` prints. */
export interface RunResultDocument {
  schema: typeof RUN_RESULT_SCHEMA;
  trace_id: string | null;
  action: string | null;
  dry_run: boolean;
  /** The process exit code. */
  exit_code: number;
  summary: RunSummary | null;
  nodes: NodeRunResult[];
  /** The execution plan (sensitive parameters redacted); only for --dry-run. */
  plan: ExecutionPlan | null;
  /**
   * Set when the run as a whole failed (refused, invalid input, internal error), and to
   * AUDIT_WRITE_FAILED when the run ran but an outcome record could not be written (then
   * `summary` and `nodes` are complete).
   */
  error: EpsError | null;
  /** The run's audit records (run id, intent, outcomes written); absent unless it ran. */
  audit?: RunAuditReport;
  /**
   * Warnings of the run, in order: transport warnings (host key checking off, a host key
   * recorded by accept-new, SSM output cut short) and registry warnings. Also printed on stderr.
   */
  warnings: string[];
}

/** Builds the run document. */
export function runResultDocument(
  parts: Partial<RunResultDocument> & { exit_code: number },
): RunResultDocument {
  return {
    schema: RUN_RESULT_SCHEMA,
    trace_id: parts.trace_id ?? parts.error?.trace_id ?? null,
    action: parts.action ?? null,
    dry_run: parts.dry_run ?? false,
    exit_code: parts.exit_code,
    summary: parts.summary ?? null,
    nodes: parts.nodes ?? [],
    plan: parts.plan ?? null,
    error: parts.error ?? null,
    ...(parts.audit === undefined ? {} : { audit: parts.audit }),
    warnings: [...(parts.warnings ?? [])],
  };
}

/** Serializes a document for stdout (pretty-printed, newline-terminated). */
export function formatJson(document: unknown): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}
