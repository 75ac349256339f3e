/** Rows the store tests insert directly (through `RunStore`), with the fields no test cares about filled in. */
import type { NewRun } from '../src/store/run-store.js';

/** A queued, one-node `noop` run of `token:ops` from the API; `overrides` set what a test needs. */
export function newRun(id: string, overrides: Partial<NewRun> = {}): NewRun {
  return {
    id,
    trace_id: 'a'.repeat(32),
    action: 'noop',
    status: 'queued',
    principal: 'token:ops',
    source: 'api',
    dry_run: 0,
    created_at: '2026-12-01T10:00:00.000Z',
    started_at: null,
    finished_at: null,
    exit_code: null,
    nodes: '["web1"]',
    request_json: '{}',
    has_sensitive: 0,
    plan_json: '{}',
    summary_json: null,
    error_json: null,
    audit_json: null,
    ...overrides,
  };
}
