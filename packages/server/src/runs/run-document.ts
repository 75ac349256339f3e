/**
 * Stored rows -> the protocol's run-result document (`rune-run-result/v1` with the service
 * members `id`, `status`, `principal`, `source` and timestamps). The API returns exactly this
 * document; `run-document.test.ts` validates it with the protocol's validator in every state.
 */
import {
  type EpsError,
  RUN_RESULT_V1,
  type RunNodeResult,
  type RunPlan,
  type RunResultDocument,
  type RunSource,
  type RunStatus,
  type RunSummary,
} from '@rune/protocol';
import type { StoredNode, StoredRun } from '../store/run-store.js';

type RunAuditReportDocument = NonNullable<RunResultDocument['audit']>;

const parseOr = <T>(text: string | null): T | null =>
  text === null ? null : (JSON.parse(text) as T);

/** The run-result document of a stored run and its nodes. */
export function runDocument(run: StoredRun, nodes: readonly StoredNode[]): RunResultDocument {
  const status = run.status as RunStatus;
  const results = nodes.flatMap((node) =>
    node.result_json === null ? [] : [JSON.parse(node.result_json) as RunNodeResult],
  );
  const audit = parseOr<RunAuditReportDocument>(run.audit_json);
  return {
    schema: RUN_RESULT_V1,
    id: run.id,
    status,
    principal: run.principal,
    source: run.source as RunSource,
    created_at: run.created_at,
    ...(run.started_at === null ? {} : { started_at: run.started_at }),
    ...(run.finished_at === null ? {} : { finished_at: run.finished_at }),
    trace_id: run.trace_id,
    action: run.action,
    dry_run: run.dry_run === 1,
    exit_code: run.exit_code,
    summary: parseOr<RunSummary>(run.summary_json),
    nodes: status === 'queued' || status === 'awaiting_approval' ? [] : results,
    plan: parseOr<RunPlan>(run.plan_json),
    error: parseOr<EpsError>(run.error_json),
    ...(audit === null ? {} : { audit }),
    warnings: [],
  };
}

/** The states in which a run is over. */
export const ENDED_STATUSES: ReadonlySet<string> = new Set([
  'succeeded',
  'failed',
  'partial',
  'cancelled',
  'interrupted',
]);
