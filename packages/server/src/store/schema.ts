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
  cluster_instances: ClusterInstancesTable;
  run_claims: RunClaimsTable;
  node_locks: NodeLocksTable;
  audit_records: AuditRecordsTable;
}
