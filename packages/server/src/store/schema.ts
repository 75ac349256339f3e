/**
 * The run store's tables as Kysely sees them. Columns are portable types only (TEXT, INTEGER);
 * JSON documents are stored as text so the same schema serves SQLite and PostgreSQL. Timestamps
 * are ISO-8601 UTC strings, which sort as time in both engines.
 */
/** `runs`: one row per accepted request (also dry runs). */
export interface RunsTable {
  id: string;
  /** Insertion order: the stable tiebreak of listings and cursors. */
  position: number;
  trace_id: string;
  action: string;
  status: string;
  principal: string;
  source: string;
  dry_run: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  exit_code: number | null;
  /** Node names of the plan (a JSON array); `run_nodes` holds one row per node. */
  nodes: string;
  /** The request as submitted, sensitive values replaced by `[REDACTED]`. */
  request_json: string;
  /** 1 when the request carried sensitive values that only the process memory holds. */
  has_sensitive: number;
  /** The redacted plan. */
  plan_json: string;
  summary_json: string | null;
  error_json: string | null;
  audit_json: string | null;
  /** Highest event seq written. */
  last_seq: number;
  /** The workflow run this run is a step of (migration 0018); null for any other run. */
  workflow_run_id: string | null;
}

/** `run_nodes`: the last known state of every planned node. */
export interface RunNodesTable {
  run_id: string;
  node: string;
  position: number;
  /** pending | running | success | partial | failure | skipped */
  state: string;
  started_at: string | null;
  error_code: string | null;
  stdout_truncated: number;
  stderr_truncated: number;
  stderr_tail: string;
  /** The full normalized node result (run v1), once the node ended. */
  result_json: string | null;
}

/** `run_events`: every run v1 event, for SSE replay and resume. */
export interface RunEventsTable {
  run_id: string;
  seq: number;
  type: string;
  event_json: string;
}

/** `idempotency_keys`: `Idempotency-Key` per principal -> the run it created. */
export interface IdempotencyKeysTable {
  principal: string;
  key: string;
  body_sha256: string;
  run_id: string;
  created_at: string;
}

/** `api_tokens`: only a hash of each secret is kept. */
export interface ApiTokensTable {
  id: string;
  name: string;
  role: string;
  secret_sha256: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

// RBAC policy and approvals (migration 0003_policy_approvals, src/policy/).
/** `approval_requests`: one per run that waits (or waited) for four-eyes approval. */
export interface ApprovalRequestsTable {
  run_id: string;
  requester: string;
  /**
   * The requester's policy subject (subjects and roles) when the run was held: what the policy
   * decides for again at the quorum, on any instance and after a restart.
   */
  requester_subject_json: string | null;
  /** sha256 of the canonical binding (action, plugin sha256, nodes, parameters hash). */
  binding_sha256: string;
  binding_json: string;
  quorum: number;
  reason: string;
  rules_json: string;
  /** pending | approved | rejected | expired | invalidated | cancelled */
  state: string;
  created_at: string;
  expires_at: string;
  decided_at: string | null;
}

/** `approval_votes`: one vote per approver and run. */
export interface ApprovalVotesTable {
  run_id: string;
  approver: string;
  /** approve | reject */
  decision: string;
  comment: string;
  binding_sha256: string;
  created_at: string;
}

/** `token_bounds`: the creator of a token minted through the API, whose rights bound the token's. */
export interface TokenBoundsTable {
  token_id: string;
  creator: string;
  /** JSON array of policy subjects (`{principal, subjects, roles}`), creator first. */
  bounds_json: string;
}

// Several instances on one PostgreSQL (migration 0005_cluster, src/cluster/).
/** `cluster_instances`: every `rune serve` process of a shared store, with its heartbeat. */
export interface ClusterInstancesTable {
  id: string;
  host: string;
  pid: number;
  started_at: string;
  /** Database clock (epoch ms) of the last heartbeat: one clock for every instance. */
  heartbeat_ms: number;
  lease_ms: number;
  /** active | draining | stopped | dead */
  state: string;
  taken_over_by: string | null;
}

/** `run_claims`: the instance owning an unfinished run. */
export interface RunClaimsTable {
  run_id: string;
  instance_id: string;
  /** queued (may be adopted) | running (handed to core: never started again) */
  state: string;
  claimed_at: string;
}

/** `node_locks`: one row per node held by a run of a non-idempotent action, cluster-wide. */
export interface NodeLocksTable {
  node: string;
  run_id: string;
  instance_id: string;
  acquired_at: string;
}

/** `node_queue`: a node a queued run of a non-idempotent action waits for, in submission order. */
export interface NodeQueueTable {
  node: string;
  run_id: string;
  /** The run's `runs.position`: its place in the submission order of every instance. */
  position: number;
}

/** `audit_records`: the audit hash chain kept in the database (PostgreSQL mode). */
export interface AuditRecordsTable {
  seq: number;
  hash: string;
  timestamp: string;
  record_json: string;
}

/** Every table of the store. */
export interface StoreDatabase {
  runs: RunsTable;
  run_nodes: RunNodesTable;
  run_events: RunEventsTable;
  idempotency_keys: IdempotencyKeysTable;
  api_tokens: ApiTokensTable;
  // alert receivers (issue 15, migration 0004_alerts)
  alerts: AlertsTable;
  // RBAC (0003_policy_approvals)
  approval_requests: ApprovalRequestsTable;
  approval_votes: ApprovalVotesTable;
  token_bounds: TokenBoundsTable;
  // Dashboard browser sessions (migration 0002_sessions).
  browser_sessions: BrowserSessionsTable;
  // workflows (issue 18): migration 0007_workflows
  workflow_runs: WorkflowRunsTable;
  // Record shipping (0006_shipping, src/shipping/): the outbox, each sink's cursor, each source's position.
  shipping_outbox: ShippingOutboxTable;
  shipping_cursors: ShippingCursorsTable;
  shipping_sources: ShippingSourcesTable;
  // Several instances on one PostgreSQL (0005_cluster, src/cluster/).
  cluster_instances: ClusterInstancesTable;
  run_claims: RunClaimsTable;
  node_locks: NodeLocksTable;
  audit_records: AuditRecordsTable;
  // The cluster-wide wait queue of busy nodes (0009_cluster_queue, src/cluster/).
  node_queue: NodeQueueTable;
  // The spool's sequence counter (0010_shipping_seq, src/shipping/spool.ts).
  shipping_seq: ShippingSeqTable;
  // How browser sessions ended, audited once each (0011_session_audit, src/sessions/).
  session_ends: SessionEndsTable;
  // Approvers of a held run and workflows started by alerts (0008_alert_workflows).
  approval_approvers: ApprovalApproversTable;
  alert_workflow_runs: AlertWorkflowRunsTable;
  // run_ended notifications owed to notifiers (0012_workflow_approvals, src/alerts/run-end-notices.ts).
  alert_run_notices: AlertRunNoticesTable;
  // One delivering instance per shipping sink (0013_ship_lease, src/shipping/lease.ts).
  shipping_leases: ShippingLeasesTable;
  // The run-numbering counter of PostgreSQL stores (0016_run_numbering, store/postgres-dialect.ts).
  run_numbering: RunNumberingTable;
}

// Migration 0012_workflow_approvals (src/alerts/run-end-notices.ts).
/** `alert_run_notices`: a `run_ended` notification owed to one notifier for one alert. */
export interface AlertRunNoticesTable {
  /** Also the `Idempotency-Key` header of every delivery attempt. */
  id: string;
  alert_id: string;
  notifier: string;
  /** `run` (an action target) or `workflow` (a workflow run id). */
  run_kind: string;
  run_id: string;
  created_at: string;
  attempts: number;
  /** Not before this (ISO): the back-off after a failed attempt. */
  next_at: string;
  /** An instance delivering it holds it until then (ISO); others leave it alone. */
  lease_until: string | null;
  delivered_at: string | null;
  last_error: string | null;
}

// Migration 0008_alert_workflows (src/policy/approval-desk.ts, src/alerts/).
/** `approval_approvers`: who alone may approve a held run (a workflow step's `approvers`). */
export interface ApprovalApproversTable {
  run_id: string;
  /** JSON array of principals, subjects or roles. */
  approvers_json: string;
}

/** `alert_workflow_runs`: the workflow run an alert started. */
export interface AlertWorkflowRunsTable {
  alert_id: string;
  workflow: string;
  workflow_run_id: string;
  /** The alert episode it was started for, unique (0012_workflow_approvals); null before 0012. */
  episode_key: string | null;
}

/**
 * `alerts`: one row per received alert (one notification may carry several) and what became of
 * it. `outcome`: received (not decided yet) | ran | deduplicated | throttled | pending |
 * held | released | expired | refused | no_rule | resolved | cancelled.
 */
export interface AlertsTable {
  id: string;
  received_at: string;
  receiver: string;
  /** alertmanager | pagerduty | generic */
  kind: string;
  /** firing | resolved */
  status: string;
  /** The alert's identity at its source (Alertmanager fingerprint, PagerDuty incident id, ...). */
  fingerprint: string;
  /** When the alert started firing (ISO), or the first receipt when the source does not say. */
  starts_at: string;
  /** 1 once a resolved notification ended this firing episode. */
  closed: number;
  alertname: string;
  labels_json: string;
  annotations_json: string;
  rule: string | null;
  group_key: string | null;
  action: string | null;
  node: string | null;
  outcome: string;
  reason: string | null;
  error_json: string | null;
  run_id: string | null;
  /** The run request a pending or held alert submits when it is due or released. */
  request_json: string | null;
  due_at: string | null;
  held_until: string | null;
  released_by: string | null;
  /** 1 when a run was started without a person (counted by the storm breaker). */
  automatic: number;
  decided_at: string | null;
}

// --- Dashboard browser sessions (migration 0002_sessions) ---

/** `browser_sessions`: one row per sign-in; only the sha256 of the cookie's secret is kept. */
export interface BrowserSessionsTable {
  id_sha256: string;
  /** The principal's name (`token:<name>`, `oidc:<subject>`): to list and revoke by principal. */
  principal: string;
  /** The whole principal as signed in (role, groups, ...), restored on every request. */
  principal_json: string;
  /** The API token the session was opened with: revoking or expiring it ends the session too. */
  token_id: string | null;
  created_at: string;
  last_seen_at: string;
  /** Idle lifetime in ms, fixed at sign-in. */
  idle_ms: number;
  /** The absolute end of the session. */
  expires_at: string;
  revoked_at: string | null;
}

/** `workflow_runs`: a workflow run and its `rune-workflow-run/v1` record (JSON). */
export interface WorkflowRunsTable {
  id: string;
  workflow: string;
  trace_id: string;
  status: string;
  principal: string;
  created_at: string;
  updated_at: string;
  record_json: string;
  /**
   * The instance executing it (0017_workflow_owner, src/workflows/workflow-owner.ts): the
   * cluster's instance id on PostgreSQL; null on the embedded store and before 0017.
   */
  instance_id: string | null;
}

/** `shipping_outbox`: every record to ship, once (unique `record_id`), in `seq` order. */
export interface ShippingOutboxTable {
  seq: number;
  record_id: string;
  /** `audit` (an audit log record) or `run` (the run-result document of an ended run). */
  kind: string;
  body_json: string;
  created_at: string;
}

/** `shipping_cursors`: the last `seq` each sink has delivered. */
export interface ShippingCursorsTable {
  sink: string;
  last_seq: number;
  updated_at: string;
}

/** `shipping_sources`: where each ingester stopped (a JSON document of its own). */
export interface ShippingSourcesTable {
  source: string;
  position: string;
}

/** `shipping_seq`: the last spool `seq` handed out (one row, `outbox`); its row lock orders inserts. */
export interface ShippingSeqTable {
  name: string;
  last_seq: number;
}

/** `session_ends`: how a browser session ended; one row each, so its audit record is written once. */
export interface SessionEndsTable {
  id_sha256: string;
  /** signed_out | idle | lifetime | token_revoked | token_expired */
  reason: string;
  ended_at: string;
}

// Migration 0013_ship_lease (src/shipping/lease.ts).
/** `shipping_leases`: the instance that alone delivers to a sink, until `expires_ms`. */
export interface ShippingLeasesTable {
  sink: string;
  /** The shipper id of the holding instance (host-pid-random); '' before anyone held it. */
  holder: string;
  /** Grows by one with every hand-over: the fencing token of the holder's cursor commits. */
  epoch: number;
  /** Database clock (epoch ms) until which the holder may deliver. */
  expires_ms: number;
}

// Migration 0016_run_numbering (store/postgres-dialect.ts `numberRun`).
/** `run_numbering`: the last `runs.position` handed out (one row, id 1); its row lock orders numbering. */
export interface RunNumberingTable {
  id: number;
  last_position: number;
}
