/**
 * A run's lifecycle states and its sources, with no dependency: `schema.ts` builds its schemas
 * from them, and the dashboard bundles this module (`@rune/protocol/run-states`) for its history
 * filters.
 */

/** The lifecycle states of a run. */
export const RUN_STATUSES = [
  'queued',
  // Held until enough other principals approve it (RBAC four-eyes, issue 14); not started yet.
  'awaiting_approval',
  'running',
  'succeeded',
  'failed',
  'partial',
  'cancelled',
  'interrupted',
] as const;
/** A run's lifecycle state. */
export type RunStatus = (typeof RUN_STATUSES)[number];

/** Where a run was asked for. */
export const RUN_SOURCES = ['cli', 'api', 'alert', 'workflow'] as const;
/** Where a run was asked for. */
export type RunSource = (typeof RUN_SOURCES)[number];
