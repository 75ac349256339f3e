/**
 * The one builder of the run documents front ends print or return: the run-result document
 * (`rune run --output json`, the future `GET /v1/runs/{id}`), the JSONL node line and the JSONL
 * summary line. It has no runtime imports (types only), so the CLI can build the document of an
 * early error without loading TypeBox; `documents.test.ts` validates what it builds against the
 * run v1 schemas.
 */
import type { EpsError } from '../../eps/v1/schema.js';
import type {
  RUN_RESULT_V1,
  RunNodeLine,
  RunNodeResult,
  RunResultDocument,
  RunSummaryLine,
} from './schema.js';

/** `RUN_RESULT_V1`, spelled here so this module loads nothing (the type keeps them equal). */
const RESULT_SCHEMA: typeof RUN_RESULT_V1 = 'rune-run-result/v1';

/**
 * What a run-result document is built from: everything optional but the exit code (null only
 * while a run is queued or running).
 */
export type RunResultParts = Partial<Omit<RunResultDocument, 'schema' | 'exit_code'>> &
  Pick<RunResultDocument, 'exit_code'>;

/**
 * Builds a run-result document, always the same shape (also for a refused or crashed run: then
 * `nodes` is empty and `error` is the EPS error). `trace_id` defaults to the error's.
 */
export function runResultDocument(parts: RunResultParts): RunResultDocument {
  const error: EpsError | null = parts.error ?? null;
  const { audit, id, status, principal, source, created_at, started_at, finished_at } = parts;
  return {
    schema: RESULT_SCHEMA,
    ...(id === undefined ? {} : { id }),
    ...(status === undefined ? {} : { status }),
    ...(principal === undefined ? {} : { principal }),
    ...(source === undefined ? {} : { source }),
    ...(created_at === undefined ? {} : { created_at }),
    ...(started_at === undefined ? {} : { started_at }),
    ...(finished_at === undefined ? {} : { finished_at }),
    trace_id: parts.trace_id ?? error?.trace_id ?? null,
    action: parts.action ?? null,
    dry_run: parts.dry_run ?? false,
    exit_code: parts.exit_code,
    summary: parts.summary ?? null,
    nodes: parts.nodes ?? [],
    plan: parts.plan ?? null,
    error,
    ...(audit === undefined ? {} : { audit }),
    warnings: [...(parts.warnings ?? [])],
  };
}

/** The JSONL line of one node: `type`, the run's `trace_id`, then the node result. */
export function runNodeLine(result: RunNodeResult, traceId: string): RunNodeLine {
  return { type: 'node', trace_id: traceId, ...result };
}

/** The final JSONL line: `type`, then every member of the run-result document but `nodes`. */
export function runSummaryLine(document: RunResultDocument): RunSummaryLine {
  const { nodes: _nodes, ...rest } = document;
  return { type: 'summary', ...rest };
}
