/**
 * The audit record of a workflow run as a whole (`event: "workflow"`), one builder for every front
 * end: `rune workflow run` (Rune.recordWorkflow) and `rune serve` (start-workflow.ts). The records
 * of its steps' runs are those runs' own.
 */
import type { AuditEntry } from '../audit/audit-log.js';

/** What the `workflow` audit record says of a workflow run. */
export interface WorkflowAuditFacts {
  workflowRunId: string;
  /** The workflow's name (or, refused before it was read, the file it names). */
  name: string;
  traceId: string;
  /** `refused`, `started` or the workflow run's final status. */
  status: string;
  error: { code: string; message: string } | null;
  /** More facts: the step outcomes, the exit code, the input names (never their values). */
  metadata?: Readonly<Record<string, unknown>>;
}

/**
 * The `workflow` audit entry of `facts`, written by `operator`: node null, `run_id` the workflow
 * run id, `action` `workflow:<name>`, no parameters (input values may be what a step treats as
 * sensitive), the name bounded to 64 and the error message to 1 000 characters.
 */
export function workflowAuditEntry(facts: WorkflowAuditFacts, operator: string): AuditEntry {
  const name = facts.name.slice(0, 64);
  return {
    event: 'workflow',
    run_id: facts.workflowRunId,
    operator,
    action: `workflow:${name}`,
    plugin: null,
    node: null,
    transport: null,
    status: facts.status,
    error_code: facts.error?.code ?? null,
    error_message: facts.error?.message.slice(0, 1000) ?? null,
    duration_ms: null,
    trace_id: facts.traceId,
    params: null,
    metadata: { workflow: { name, run_id: facts.workflowRunId }, ...facts.metadata },
  };
}
