/**
 * The events of a run that core never executed: a dry run (planned, nothing sent) and a queued
 * run that was cancelled or interrupted before it started. The run/v1 stream of such a run is
 * run-start (seq 1, the redacted plan) and run-end (seq 2, the final status, summary null: no
 * node ran), so a client following `/v1/runs/{id}/events` sees the same shape for every run and
 * the stream replays and closes like any ended run's.
 */
import type { RunEndEvent, RunEvent, RunPlan, RunSource, RunStartEvent } from '@rune/protocol';

/** What the two events are built from. */
export interface UnstartedRun {
  id: string;
  traceId: string;
  /** The redacted plan (never one with sensitive values in clear). */
  plan: RunPlan;
  principal: string;
  source: RunSource;
}

/** The run's end: status, exit code and error (null for a dry run). */
export interface UnstartedEnd {
  status: RunEndEvent['status'];
  exitCode: number;
  error: RunEndEvent['error'];
}

/** run-start and run-end of a run that never ran, both stamped `timestamp`. */
export function unstartedRunEvents(
  run: UnstartedRun,
  end: UnstartedEnd,
  timestamp: string,
): RunEvent[] {
  const start: RunStartEvent = {
    schema_version: 'rune-run-event/v1',
    seq: 1,
    run_id: run.id,
    trace_id: run.traceId,
    type: 'run-start',
    timestamp,
    plan: run.plan,
    principal: run.principal,
    source: run.source,
  };
  const finish: RunEndEvent = {
    schema_version: 'rune-run-event/v1',
    seq: 2,
    run_id: run.id,
    trace_id: run.traceId,
    type: 'run-end',
    timestamp,
    status: end.status,
    exit_code: end.exitCode,
    summary: null,
    error: end.error,
  };
  return [start, finish];
}
