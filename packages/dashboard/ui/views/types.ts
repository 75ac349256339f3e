/** The API's documents, as far as the dashboard reads them. */

/** `GET /v1/actions` entries. */
export interface ActionEntry {
  name: string;
  version: string;
  description: string;
  source: string;
  inferred: boolean;
  problem: string | null;
}

/** A JSON Schema of one parameter (the members a form uses). */
export interface ParamSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  sensitive?: boolean;
  items?: ParamSchema;
  format?: string;
}

/** The MRS v1 manifest (the members the dashboard shows). */
export interface Manifest {
  name: string;
  version: string;
  description: string;
  tags?: string[];
  dangerous?: boolean;
  idempotent?: boolean;
  supports_dry_run?: boolean;
  timeout_ms?: number;
  produces_artifacts?: boolean;
  requirements?: { commands?: string[]; privilege?: string; os?: string[] };
}

/** `GET /v1/actions/{name}`. */
export interface ActionDetail {
  name: string;
  source: string;
  manifest: Manifest;
  parameters_schema: { properties?: Record<string, ParamSchema>; required?: string[] };
}

/** An EPS error inside a document. */
export interface EpsLike {
  code: string;
  message: string;
  hint?: string;
}

/** A node result of run v1. */
export interface NodeResult {
  node: string;
  transport: string;
  status: string;
  error: EpsLike | null;
  exit_code: number;
  duration_ms?: number;
  started_at?: string;
  stderr_tail?: string;
  stderr_truncated?: boolean;
  response: { payload?: { summary?: string; output_data?: unknown; result?: string } } | null;
  artifacts?: Array<{ path: string; status: string; local_path: string | null }>;
}

/** A planned node. */
export interface PlannedNode {
  target: { name: string };
  transport: string;
  would_run: string;
  remote_path: string | null;
}

/** A run v1 result document. */
export interface RunDocument {
  id: string;
  status: string;
  principal: string;
  source: string;
  action: string;
  dry_run: boolean;
  created_at: string;
  started_at?: string | null;
  finished_at?: string | null;
  trace_id: string;
  exit_code: number | null;
  summary: {
    total: number;
    succeeded: number;
    partial: number;
    failed: number;
    skipped: number;
    duration_ms: number;
  } | null;
  nodes: NodeResult[];
  plan: {
    nodes: PlannedNode[];
    parameters: Record<string, unknown>;
    timeout_ms: number;
    plugin: { sha256: string; version: string };
  } | null;
  error: EpsLike | null;
}

/** `GET /v1/runs` entries. */
export interface RunListEntry {
  id: string;
  status: string;
  action: string;
  principal: string;
  source: string;
  dry_run: boolean;
  nodes: string[];
  created_at: string;
  finished_at: string | null;
}
