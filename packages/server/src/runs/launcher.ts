/**
 * Every call the server makes into @rune/core, in one module: planning a request (target
 * selection, parameters, fleet policy), starting a planned run through core's run handle,
 * listing actions, previewing a selection, and reading the audit trail. The rest of the server
 * sees only {@link ServerLauncher}.
 *
 * The principal: core records one `operator` per facade. The server serves many principals with
 * one facade, so the audit sink is wrapped and every record written while a request is being
 * planned or a run executes (an AsyncLocalStorage context that follows the run's promises)
 * carries that request's principal (`token:grafana`) instead of the OS user.
 *
 * Target selection is core's (`PlanRequest.selections`), exactly as for `rune run`; only the
 * selector preview of `GET /v1/nodes` calls `selectTargets` itself.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { hostname } from 'node:os';
import {
  type AuditEntry,
  type AuditRecord,
  type AuditSink,
  type AuditVerification,
  createFileAuditSink,
  createRune,
  type ExecutionPlan,
  type FileAuditSink,
  type HeapReclaim,
  type LoadedConfig,
  loadInventory,
  MAX_POLICY_COUNT,
  newTraceId,
  type PlanRequest,
  parseDuration,
  parseFailureBudget,
  parsePolicyInteger,
  type Rune,
  type RuneRunOptions,
  type RunHandle,
  readAuditLog,
  readAuditPublicKey,
  redactPlan,
  resolveAuditKeyFile,
  resolveAuditLogPath,
  selectTargets,
  type TransportProvider,
  validateFleetPolicy,
  verifyAuditLog,
} from '@rune/core';
import type { MrsManifest, RunNodeResult, RunSource } from '@rune/protocol';
import { RuneError } from '@rune/protocol';
import type { PolicySubject } from '../policy/policy.js';
import { SERVER_VERSION } from '../version.js';

/** Who asked, and through what: recorded on the run and on every audit record it writes. */
export interface LaunchContext {
  principal: string;
  source: RunSource;
  /** A workflow step: the workflow's trace id (default: a fresh one per run). */
  traceId?: string;
  /** A workflow step: facts for the `metadata` of the run's audit records. */
  auditMetadata?: Record<string, unknown>;
  /** A workflow step: the workflow run it is a step of (stored as `runs.workflow_run_id`). */
  workflowRunId?: string;
  /** Who the policy decides for (subjects, roles); absent: the principal as its only subject. */
  subject?: PolicySubject;
}

/** The run request of the API (`POST /v1/runs`), as validated by its schema. */
export interface LaunchRequest {
  action: string;
  targets: string[];
  params?: Record<string, unknown>;
  options?: {
    dry_run?: boolean;
    timeout?: string;
    concurrency?: number;
    canary?: number;
    max_failures?: string;
    deadline?: string;
    confirm?: boolean;
    transport?: string;
  };
}

/** The fleet policy of a run (canary, failure budget, deadline). */
export type LaunchPolicy = NonNullable<RuneRunOptions['policy']>;

/** A validated request, ready to run. */
export interface PlannedLaunch {
  /** The plan (sensitive values in clear: keep it in memory only). */
  plan: ExecutionPlan;
  /** The plan with sensitive values redacted (what may be stored and shown). */
  redactedPlan: ExecutionPlan;
  policy: LaunchPolicy;
  /** True when the manifest says running twice equals running once (no per-node lock). */
  idempotent: boolean;
}

/** One action as listed. */
export interface ActionSummary {
  name: string;
  version: string;
  description: string;
  source: string;
  inferred: boolean;
  problem: string | null;
}

/** One inventory node as shown by `GET /v1/nodes`. */
export interface NodeSummary {
  name: string;
  address: string | null;
  port: number | null;
  transport: string;
  tags: string[];
  source: 'inventory' | 'ad-hoc';
}

/** Filters of the audit listing. */
export interface AuditFilter {
  action?: string;
  node?: string;
  trace_id?: string;
  run_id?: string;
  operator?: string;
  since?: string;
  limit: number;
}

/** The one object through which the server uses core. */
export interface ServerLauncher {
  readonly config: LoadedConfig;
  listActions(): ActionSummary[];
  /** The winning manifest of an action. Throws INVALID_ACTION_NAME, UNKNOWN_ACTION, ... */
  describeAction(name: string): { manifest: MrsManifest; path: string; source: string };
  /** Inventory nodes, and which nodes `selectors` match (all of them without selectors). */
  previewNodes(selectors: readonly string[]): Promise<{ nodes: NodeSummary[]; matched: string[] }>;
  /** Validates and plans a request (refusals are audited under the principal). */
  plan(request: LaunchRequest, context: LaunchContext, traceId: string): Promise<PlannedLaunch>;
  /** Plans and records a dry run; returns the redacted plan. */
  dryRun(request: LaunchRequest, context: LaunchContext, traceId: string): Promise<ExecutionPlan>;
  /** Records a dry run already planned with {@link ServerLauncher.plan}; returns the redacted plan. */
  recordDryRun(planned: PlannedLaunch, context: LaunchContext): Promise<ExecutionPlan>;
  /** Starts a planned run under `runId` (the intent record is durable when this resolves). */
  start(planned: PlannedLaunch, context: LaunchContext, runId: string): Promise<RunHandle>;
  /** A fresh trace id. */
  newTraceId(): string;
  /**
   * Audits a request that was accepted or validated but never started (refused as busy or for a
   * full queue, cancelled or interrupted while queued): one record with node null.
   */
  recordNotStarted(
    run: { action: string; nodes: readonly string[]; dryRun: boolean },
    error: RuneError,
    context: LaunchContext,
  ): Promise<void>;
  /**
   * Writes the outcome records of nodes whose run was interrupted (the server stopped before they
   * ended), so that the audit trail and the store agree: one `run` record per node, tied to the
   * run's intent by `run_id`.
   */
  recordInterruptedNodes(
    run: { id: string; traceId: string; plan: ExecutionPlan },
    results: readonly RunNodeResult[],
    context: LaunchContext,
  ): Promise<void>;
  /** Audits a received alert and its outcome (`event: "alert"`, the alert receivers). */
  recordAlert(facts: AlertAuditFacts, context: LaunchContext): Promise<void>;
  /** Appends one record (policy decisions, approval votes) under the context's principal. */
  recordAudit(entry: AuditEntry, context: LaunchContext): Promise<void>;
  /** Audit records matching `filter`, newest last. */
  readAudit(filter: AuditFilter): Promise<AuditRecord[]>;
  /** Verifies the audit log with the public half of the signing key. */
  verifyAudit(): Promise<AuditVerification>;
  /**
   * One full garbage collection in the audit writer thread (the server is idle); undefined when
   * there is none (the store's audit trail on PostgreSQL, or no record written yet).
   */
  reclaimAuditMemory(): Promise<HeapReclaim | undefined>;
  close(): Promise<void>;
}

/** What the audit record of a received alert says (the alert receivers). */
export interface AlertAuditFacts {
  action: string;
  node: string | null;
  /** The alert's outcome: ran, deduplicated, throttled, held, refused, ... */
  outcome: string;
  errorCode: string | null;
  errorMessage: string | null;
  traceId: string | undefined;
  metadata: Record<string, unknown>;
}

/** Options of {@link createServerLauncher}. */
export interface ServerLauncherOptions {
  config: LoadedConfig;
  env: Readonly<Record<string, string | undefined>>;
  transports?: Readonly<Record<string, TransportProvider>>;
  onWarning?: (message: string) => void;
  /**
   * Where the audit chain is kept instead of the `[core] audit_log` file: a shared store's
   * database (several instances append to one chain there).
   */
  audit?: LauncherAuditTrail;
}

/** An audit chain kept elsewhere than the local file: its sink, reader and verifier. */
export interface LauncherAuditTrail {
  /** Builds the sink; `host` is recorded in each record. */
  sink(host: string, keyFile: string): AuditSink;
  read(): Promise<AuditRecord[]>;
  verify(options: {
    publicKey?: ReturnType<typeof readAuditPublicKey>;
  }): Promise<AuditVerification>;
}

const serverSource = { component: 'rune-server' } as const;

/** The fleet policy fields of a request, validated with core's rules. */
function launchPolicy(options: LaunchRequest['options']): LaunchPolicy {
  const policy: LaunchPolicy = {};
  if (options?.canary !== undefined)
    policy.canary = parsePolicyInteger(String(options.canary), 'canary', 0, MAX_POLICY_COUNT);
  if (options?.max_failures !== undefined)
    policy.maxFailures = parseFailureBudget(options.max_failures);
  if (options?.deadline !== undefined)
    policy.deadlineMs = parseDuration(options.deadline, 'deadline');
  validateFleetPolicy({ concurrency: 1, ...policy });
  return policy;
}

/** Creates the launcher: one core facade for the server's lifetime. */
export function createServerLauncher(options: ServerLauncherOptions): ServerLauncher {
  const { config: loaded } = options;
  const principals = new AsyncLocalStorage<LaunchContext>();
  const host = hostname() === '' ? 'localhost' : hostname();
  let localSink: FileAuditSink | undefined;
  let fileSink: AuditSink;
  if (options.audit === undefined) {
    localSink = createFileAuditSink({
      path: resolveAuditLogPath(loaded),
      host,
      keyFile: resolveAuditKeyFile(loaded),
      // A batch is one message to a thread that owns the file (and signs), not a dozen file
      // operations each waiting for a turn of this busy event loop.
      writer: 'thread',
      ...(loaded.config.audit.lock_timeout_ms === undefined
        ? {}
        : { lockTimeoutMs: loaded.config.audit.lock_timeout_ms }),
    });
    fileSink = localSink;
  } else {
    fileSink = options.audit.sink(host, resolveAuditKeyFile(loaded));
  }
  const auditSink: AuditSink = {
    append(entry: AuditEntry) {
      const context = principals.getStore();
      return fileSink.append(
        context === undefined
          ? entry
          : {
              ...entry,
              operator: context.principal,
              metadata: { ...entry.metadata, source: context.source },
            },
      );
    },
  };
  const rune: Rune = createRune({
    config: loaded,
    env: options.env,
    auditSink,
    sender: { component: 'rune-server', version: SERVER_VERSION, host },
    ...(options.transports === undefined ? {} : { transports: options.transports }),
    ...(options.onWarning === undefined ? {} : { onWarning: options.onWarning }),
  });

  // Target selection is core's: the request carries the selector strings and core resolves them
  // against `[core] inventory` with the one local-node rule (the same path as `rune run`).
  const planRequest = async (request: LaunchRequest): Promise<PlanRequest> => {
    const opts = request.options;
    return {
      action: request.action,
      selections: request.targets,
      params: request.params ?? {},
      dryRun: opts?.dry_run === true,
      confirmDangerous: opts?.confirm === true,
      ...(opts?.transport === undefined ? {} : { transport: opts.transport }),
      ...(opts?.timeout === undefined ? {} : { timeout: opts.timeout }),
      ...(opts?.concurrency === undefined ? {} : { concurrency: opts.concurrency }),
    };
  };

  /** Builds the PlanRequest, auditing a refusal that happens before core's planner runs. */
  const toPlanRequest = async (
    request: LaunchRequest,
    traceId: string,
  ): Promise<{ planRequest: PlanRequest; policy: LaunchPolicy }> => {
    try {
      return { planRequest: await planRequest(request), policy: launchPolicy(request.options) };
    } catch (error) {
      const runeError = RuneError.from(error, 'INVALID_ARGUMENT', {
        traceId,
        source: serverSource,
      });
      await rune
        .recordRefusal(
          {
            action: request.action,
            selections: request.targets.slice(0, 100),
            dryRun: request.options?.dry_run === true,
          },
          runeError,
        )
        .catch(() => undefined);
      throw runeError;
    }
  };

  const isIdempotent = (action: string): boolean => {
    try {
      return rune.registry().resolve(action).manifest.idempotent;
    } catch {
      return false;
    }
  };

  return {
    config: loaded,

    listActions: () =>
      rune.listActions().map((action) => ({
        name: action.action,
        version: action.version,
        description: action.description,
        source: action.source,
        inferred: action.inferred,
        problem: action.problem,
      })),

    describeAction(name) {
      const plugin = rune.registry().resolve(name);
      return { manifest: plugin.manifest, path: plugin.path, source: plugin.source };
    },

    async previewNodes(selectors) {
      const inventoryPath = loaded.config.core.inventory;
      const inventory =
        inventoryPath === undefined ? undefined : await loadInventory(inventoryPath);
      const defaultTransport = loaded.config.core.default_transport ?? 'ssh';
      const nodes: NodeSummary[] = (inventory?.nodes ?? []).map((node) => ({
        name: node.name,
        address: node.address ?? null,
        port: node.port ?? null,
        transport: node.transport ?? defaultTransport,
        tags: node.tags,
        source: 'inventory',
      }));
      if (selectors.length === 0) return { nodes, matched: nodes.map((node) => node.name) };
      const selected = selectTargets(selectors, {
        ...(inventory === undefined ? {} : { inventory }),
        defaultTransport,
      });
      return { nodes, matched: selected.map((target) => target.node.name) };
    },

    plan: (request, context, traceId) =>
      principals.run(context, async () => {
        const { planRequest: planned, policy } = await toPlanRequest(request, traceId);
        const plan = await rune.plan(planned, traceId);
        return {
          plan,
          redactedPlan: redactPlan(plan),
          policy,
          idempotent: isIdempotent(plan.action),
        };
      }),

    dryRun: (request, context, traceId) =>
      principals.run(context, async () => {
        const { planRequest: planned, policy } = await toPlanRequest(request, traceId);
        const report = await rune.run({ ...planned, dryRun: true }, { traceId, policy });
        return redactPlan(report.plan);
      }),

    recordDryRun: (planned, context) =>
      principals.run(context, async () => {
        await rune.recordDryRun(planned.plan);
        return planned.redactedPlan;
      }),

    start: (planned, context, runId) =>
      principals.run(context, () =>
        rune.startPlan(planned.plan, {
          policy: planned.policy,
          traceId: planned.plan.trace_id,
          runId,
          ...(context.auditMetadata === undefined ? {} : { auditMetadata: context.auditMetadata }),
        }),
      ),

    newTraceId,

    recordNotStarted: (run, error, context) =>
      principals.run(context, () =>
        rune.recordRefusal(
          { action: run.action, selections: run.nodes.slice(0, 100), dryRun: run.dryRun },
          error,
        ),
      ),

    recordInterruptedNodes: (run, results, context) =>
      principals.run(context, async () => {
        for (const result of results) {
          await auditSink.append({
            event: 'run',
            run_id: run.id,
            operator: context.principal,
            action: run.plan.action,
            plugin: {
              version: run.plan.plugin.version,
              sha256: run.plan.plugin.sha256,
              path: run.plan.plugin.path,
              source: run.plan.plugin.source,
            },
            node: result.node,
            transport: result.transport,
            status: result.status,
            error_code: result.error?.code ?? null,
            error_message: result.error?.message ?? null,
            duration_ms: result.duration_ms,
            trace_id: run.traceId,
            params: run.plan.parameters,
            metadata: { interrupted: true },
          });
        }
      }),

    recordAlert: (facts, context) =>
      principals
        .run(context, () =>
          auditSink.append({
            event: 'alert',
            operator: context.principal,
            action: facts.action,
            plugin: null,
            node: facts.node,
            transport: null,
            status: facts.outcome,
            error_code: facts.errorCode,
            error_message: facts.errorMessage,
            duration_ms: null,
            trace_id: facts.traceId ?? newTraceId(),
            params: null,
            metadata: facts.metadata,
          }),
        )
        .then(() => undefined),
    recordAudit: (entry, context) =>
      principals.run(context, async () => {
        await auditSink.append(entry);
      }),

    async readAudit(filter) {
      const since = filter.since === undefined ? undefined : Date.parse(filter.since);
      const all =
        options.audit === undefined
          ? readAuditLog(resolveAuditLogPath(loaded))
          : await options.audit.read();
      const records = all.filter(
        (record) =>
          (filter.action === undefined || record.action === filter.action) &&
          (filter.node === undefined ||
            record.node === filter.node ||
            (record.nodes ?? []).includes(filter.node)) &&
          (filter.trace_id === undefined || record.trace_id === filter.trace_id) &&
          (filter.run_id === undefined || record.run_id === filter.run_id) &&
          (filter.operator === undefined || record.operator === filter.operator) &&
          (since === undefined || Date.parse(record.timestamp) >= since),
      );
      return records.slice(-filter.limit);
    },

    async verifyAudit() {
      const keyFile = resolveAuditKeyFile(loaded);
      let publicKey: ReturnType<typeof readAuditPublicKey> | undefined;
      try {
        publicKey = readAuditPublicKey(keyFile);
      } catch {
        // No key yet: nothing has been signed, and verification says so.
      }
      const verifyOptions = publicKey === undefined ? {} : { publicKey };
      return options.audit === undefined
        ? verifyAuditLog(resolveAuditLogPath(loaded), verifyOptions)
        : options.audit.verify(verifyOptions);
    },

    reclaimAuditMemory: () => localSink?.reclaimMemory() ?? Promise.resolve(undefined),

    close: async () => {
      await rune.close();
      await localSink?.close();
    },
  };
}
