/**
 * `createRune()`: the one object a Node tool author needs. It loads the configuration,
 * discovers plugins, plans and executes runs through the registered transports, and writes the
 * audit trail so that embedding RUNE in another tool keeps the same guarantees as the CLI.
 *
 * Audit is write-ahead: `execute()` durably records an `intent` (who, what, where, parameters,
 * run id) before anything is sent to any node, and refuses the run with AUDIT_WRITE_FAILED when
 * it cannot. Each node's outcome is recorded as it ends; an outcome that cannot be recorded does
 * not drop the results (the plugin already ran): the run report carries AUDIT_WRITE_FAILED and
 * its exit code. Dry runs and refusals write one record each.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { context as otelContext } from '@opentelemetry/api';
import type {
  EpsError,
  RcsSender,
  RunEventType,
  RunSummary,
  TerminalRunStatus,
} from '@rune/protocol';
import { RUN_EVENT_V1, RuneError } from '@rune/protocol';
import type { ConfigSectionModule, TransportModule } from '@rune/transport';
import {
  type AuditEntry,
  type AuditSink,
  createFileAuditSink,
  currentOperator,
  refusalEntry,
} from './audit/audit-log.js';
import {
  type ConfigOverrides,
  type LoadedConfig,
  loadConfig,
  resolveAuditKeyFile,
  resolveAuditLogPath,
  transportConfigContext,
} from './config/load-config.js';
import {
  defaultAuditKeyFile,
  defaultAuditLogPath,
  type EnvironmentOptions,
  resolveXdgDirs,
} from './config/xdg-dirs.js';
import { createRunEventBuffer, type RuneRunEvent } from './events/run-event-buffer.js';
import {
  aggregateExitCode,
  type ExecutePlanOptions,
  executePlan,
  type NodeRunResult,
  type RunOutcome,
} from './execution/execute-plan.js';
import { assertSensitiveParametersAllowed } from './execution/sensitive-parameters.js';
import {
  createTransportRegistry,
  type TransportProvider,
  type TransportRegistry,
} from './execution/transport-registry.js';
import { fleetPolicyRecord } from './fleet/policy.js';
import {
  mentionedNodes,
  type PlanRequest,
  type ResolvedPolicy,
  requestedTransport,
  resolvePlanRequest,
} from './planning/plan-request.js';
import { type ExecutionPlan, newTraceId, planRun, redactPlan } from './planning/plan-run.js';
import { redactParameters } from './planning/resolve-parameters.js';
import {
  defaultPluginSources,
  discoverPlugins,
  type PluginCandidate,
  type PluginRegistry,
  type PluginSourceDir,
  pluginRegistryIsCurrent,
} from './plugins/plugin-registry.js';
import { endRunSpan, failRunSpan, startRunSpan, tracePlanning } from './telemetry/run-spans.js';
import { endSpanWithError } from './telemetry/tracing.js';
import { CORE_VERSION } from './version.js';
import { type WorkflowAuditFacts, workflowAuditEntry } from './workflows/workflow-audit.js';

/** What a warning passed to {@link RuneOptions.onWarning} is about. */
export type RuneWarningOrigin = 'registry' | 'transport' | 'inventory';

/** Options of {@link createRune}. */
export interface RuneOptions extends EnvironmentOptions {
  /**
   * An already loaded configuration (its `transportModules` are the transports then); otherwise
   * it is loaded with `configFile`, `configOverrides`, `transportModules` and `configModules`.
   */
  config?: LoadedConfig;
  /** Explicit config file (like `--config`). */
  configFile?: string;
  /** Config values with flag precedence. */
  configOverrides?: ConfigOverrides;
  /**
   * The transports that own config sections (`sshTransportModule` from
   * `@rune/transport-ssh/config`, `ssmTransportModule` from `@rune/transport-ssm/config`, your
   * own): their sections are validated at load and each transport is built by its module's
   * `fromConfig` when a node first needs it. The local transport's module is always included.
   */
  transportModules?: readonly TransportModule[];
  /** Other packages' config sections a file may have (`[server]` from `@rune/server/config`). */
  configModules?: readonly ConfigSectionModule[];
  /**
   * Transports by name that replace or add to the modules' (a test double, a preconfigured
   * instance). `local` is registered unless replaced.
   */
  transports?: Readonly<Record<string, TransportProvider>>;
  /** Whether transports may ask the operator on the terminal (a key passphrase); default false. */
  interactive?: boolean;
  /**
   * Wraps every terminal prompt of a transport (the CLI pauses its progress bar while one runs).
   */
  aroundPrompt?: <T>(ask: () => Promise<T>) => Promise<T>;
  /** Where audit records go; default: the JSONL file at `core.audit_log`. */
  auditSink?: AuditSink;
  /** RCS sender identity; default `{ component: 'rune-core', version, host: os.hostname() }`. */
  sender?: Partial<RcsSender>;
  /** OS user recorded in audit records; default `os.userInfo().username`. */
  operator?: string;
  /** Plugin directories in precedence order; default built-in, user data dir, `plugins.plugin_dir`. */
  pluginSources?: readonly PluginSourceDir[];
  /** Clock (injectable). */
  now?: () => Date;
  /**
   * Receives non-fatal warnings: `registry` (skipped plugin files, shadowed plugins), `transport`
   * (host key checking off, a host key recorded by accept-new, SSM output cut short: a security
   * check was relaxed or output was lost) and `inventory` (what an inventory asks for and RUNE
   * ignores on purpose, e.g. an Ansible password).
   */
  onWarning?: (message: string, origin: RuneWarningOrigin) => void;
}

/** Options of {@link Rune.execute}, {@link Rune.run} and {@link Rune.start}. */
export interface RuneRunOptions {
  /** Aborting it cancels the run like {@link RunHandle.cancel}. */
  signal?: AbortSignal;
  /** Called as each node finishes (after its audit record is written). */
  onNodeResult?: (result: NodeRunResult, index: number) => void;
  onNodeStart?: ExecutePlanOptions['onNodeStart'];
  /**
   * Fleet policy fields passed to the scheduler (canary, maxFailures, deadlineMs), for
   * {@link Rune.execute} and {@link Rune.startPlan}; a request's own `policy` wins over them.
   */
  policy?: ExecutePlanOptions['policy'];
  /** {@link Rune.run} and {@link Rune.start}: the trace id to use (default: a fresh one). */
  traceId?: string;
  /** {@link Rune.run} only: called with the plan before anything runs (not for dry runs). */
  onPlan?: (plan: ExecutionPlan) => void;
  /**
   * Facts recorded in the `metadata` of this run's audit records (intent and outcomes), e.g.
   * `{ workflow: { name, run_id, step } }` for a step of a workflow. They never replace the facts
   * core records itself.
   */
  auditMetadata?: Readonly<Record<string, unknown>>;
  /**
   * The run id to use (a lowercase UUID; default: a fresh one). A service that accepts a run
   * before it starts (a queue) names it at acceptance and passes the same id here, so the
   * stored run, its events and its audit records share one id.
   */
  runId?: string;
}

/** What became of a run's audit records. */
export interface RunAuditReport {
  /** Ties the intent record to the outcome records (`run_id` in each). */
  run_id: string;
  /** The intent record, written before anything was sent. */
  intent: { seq: number | null; hash: string };
  /** Outcome records written. */
  outcomes_recorded: number;
  /** Nodes whose outcome record could not be written. */
  outcomes_missing: string[];
  /**
   * AUDIT_WRITE_FAILED when an outcome could not be recorded (the run's results are still
   * complete; the summary's exit code then is 70), else null.
   */
  error: EpsError | null;
}

/** The outcome of {@link Rune.execute}: the execution step's outcome plus its audit report. */
export interface RuneRunOutcome extends RunOutcome {
  audit: RunAuditReport;
}

/** The final outcome of a run started with {@link Rune.start}: the outcome, its id and status. */
export interface RunHandleOutcome extends RuneRunOutcome {
  /** The run id: the audit `run_id` and every event's `run_id`. */
  id: string;
  /** The status of the run-end event (`succeeded`, `failed`, `partial`, `cancelled`, ...). */
  status: TerminalRunStatus;
}

/**
 * A run in progress, returned by {@link Rune.start} once the run is planned and its intent record
 * is durable. Nothing about it throws: `result` resolves with every node's result (it rejects only
 * when a caller's `onNodeStart`/`onNodeResult` callback threw, which is a bug in the caller).
 */
export interface RunHandle {
  /** A fresh lowercase UUID: the `run_id` of the audit records and of every event. */
  readonly id: string;
  /** The trace id of the run (RCS requests, EPS errors, audit records). */
  readonly traceId: string;
  /** The plan being executed (sensitive values in clear; the run-start event carries it redacted). */
  readonly plan: ExecutionPlan;
  /**
   * The run's protocol events (`@rune/protocol` run v1) in order: run-start, node-start when a
   * node starts, node-end for every planned node (also skipped and cancelled ones), run-end; seq
   * from 1 without gaps. Every iteration starts at the first event, however late it begins, and
   * any number of consumers may iterate at once: the handle keeps all `2 × nodes + 2` events for
   * as long as it is referenced. An iteration ends after run-end. Treat events as read-only.
   */
  readonly events: AsyncIterable<RuneRunEvent>;
  /** Resolves when the run ended (after run-end was emitted). */
  readonly result: Promise<RunHandleOutcome>;
  /**
   * Cancels the run like Ctrl-C: no new node starts, running plugins are killed (with everything
   * they started), unstarted nodes end skipped with RUN_CANCELLED. Idempotent; a no-op once the
   * run has ended. `reason` becomes the message of the run-end error.
   */
  cancel(reason?: string): void;
}

/** What {@link Rune.run} returns: the plan, and the outcome unless it was a dry run. */
export interface RunReport {
  plan: ExecutionPlan;
  outcome: RuneRunOutcome | null;
}

/** Summary of one registered action, for listings. */
export interface ActionInfo {
  action: string;
  version: string;
  description: string;
  source: string;
  path: string;
  inferred: boolean;
  problem: string | null;
  shadowed: number;
}

/** Everything known about one action, for `rune plugin-info`. */
export interface PluginInfo {
  action: string;
  /** The candidate that runs, first; shadowed ones after it. */
  candidates: PluginCandidate[];
  /** Why the winner cannot run, if it cannot (INVALID_MANIFEST, PLUGIN_NOT_EXECUTABLE). */
  problem: ReturnType<RuneError['toJSON']> | null;
}

/** The RUNE facade. */
export interface Rune {
  /** The effective configuration and the source of every value. */
  readonly config: LoadedConfig;
  /** The transport registry (register your own transports here). */
  readonly transports: TransportRegistry;
  /** The plugin registry, discovered on first use. Throws PLUGIN_DIR_UNREADABLE. */
  registry(): PluginRegistry;
  /** Every action with its winning plugin. */
  listActions(): ActionInfo[];
  /** Everything known about one action. Throws INVALID_ACTION_NAME or UNKNOWN_ACTION. */
  pluginInfo(action: string): PluginInfo;
  /**
   * Validates a request and returns its plan, contacting nothing: selects the targets (inventory,
   * node lists, selectors, transports), resolves the plugin and parameters. A refusal is audited
   * (one record, node null) and rethrown as RuneError — including SENSITIVE_PARAMETER_REFUSED when
   * a sensitive parameter is supplied for a node whose transport embeds the request in its command.
   */
  plan(request: PlanRequest, traceId?: string): Promise<ExecutionPlan>;
  /**
   * Executes a plan: first writes the intent record (throws AUDIT_WRITE_FAILED when it cannot,
   * and then nothing is sent), then one outcome record per node. Never throws for node failures
   * or for an outcome record that cannot be written (see {@link RunAuditReport}).
   */
  execute(plan: ExecutionPlan, options?: RuneRunOptions): Promise<RuneRunOutcome>;
  /** plan() then, unless `request.dryRun`, execute(). A dry run is audited as one record. */
  run(request: PlanRequest, options?: RuneRunOptions): Promise<RunReport>;
  /**
   * Audits a plan made with {@link Rune.plan} as a dry run (the one record {@link Rune.run} writes
   * for a dry run), for a front end that already holds the plan and must not plan it again.
   */
  recordDryRun(plan: ExecutionPlan, options?: Pick<RuneRunOptions, 'auditMetadata'>): Promise<void>;
  /**
   * The one call a front end needs to run an action: plans `request` and starts it, resolving
   * with a {@link RunHandle} `{ id, traceId, plan, events, result, cancel }` once the intent
   * record is durable, while the nodes run. A server maps a `POST /v1/runs` body onto
   * {@link PlanRequest} member for member (selectors, parameters, timeout, policy), streams
   * `handle.events` (run v1 events; each node-end follows that node's audit record) and stores
   * `await handle.result`; `handle.cancel()` is its DELETE.
   *
   * Throws before anything runs, as RuneError with an EPS code, and audited once: what
   * {@link Rune.plan} throws (INVALID_ARGUMENT, INVALID_PARAMETERS, INVALID_TARGET, UNKNOWN_NODE,
   * NO_TARGETS, UNKNOWN_ACTION, DANGEROUS_ACTION_REFUSED, ...), AUDIT_WRITE_FAILED when the
   * intent cannot be written (nothing is sent), and INVALID_ARGUMENT for a dry run (use
   * {@link Rune.plan} or {@link Rune.run}: a dry run has no events). After it resolves, nothing
   * throws: every node ends in exactly one node-end event. `options.onPlan` is not called (the
   * handle carries the plan). `inventory` as a path, `nodeLists` and `paramsSource` read files
   * (or standard input) of this machine: a server sets them itself, never from a client.
   */
  start(request: PlanRequest, options?: RuneRunOptions): Promise<RunHandle>;
  /** Like {@link Rune.start} for a plan made with {@link Rune.plan}. */
  startPlan(plan: ExecutionPlan, options?: RuneRunOptions): Promise<RunHandle>;
  /**
   * Audits a refusal that happened before {@link Rune.plan} could run (e.g. a front end could
   * not parse its input): one record with node null. Refusals of plan, run and start are
   * audited by them already.
   */
  recordRefusal(request: RefusedRequest, error: RuneError): Promise<void>;
  /**
   * Audits a workflow run as a whole: one `workflow` record (node null, `run_id` the workflow run
   * id, `action` `workflow:<name>`) when it was refused before its first step, started, or ended
   * with its status. The records of its step runs are written by those runs. Throws
   * AUDIT_WRITE_FAILED when the record cannot be written.
   */
  recordWorkflow(facts: WorkflowAuditFacts): Promise<void>;
  /** Closes every transport. Idempotent. */
  close(): Promise<void>;
}

/** What the audit record of a refusal names of a request. */
export type RefusedRequest = Pick<
  PlanRequest,
  'action' | 'selections' | 'transport' | 'useSsm' | 'dryRun'
>;

function refusedTransport(request: RefusedRequest): string | null {
  try {
    return requestedTransport(request) ?? null;
  } catch {
    return request.transport ?? null;
  }
}

/**
 * Audits a refusal when no configuration could be loaded (the config file itself is invalid):
 * one record in the default audit log of the environment, best effort — a failure to write it is
 * ignored, since the refusal is reported to the caller either way.
 */
export async function recordUnconfiguredRefusal(
  request: RefusedRequest,
  error: RuneError,
  environment: EnvironmentOptions = {},
): Promise<void> {
  try {
    const dirs = resolveXdgDirs(environment);
    const sink = createFileAuditSink({
      path: defaultAuditLogPath(dirs),
      host: 'localhost',
      keyFile: defaultAuditKeyFile(dirs),
    });
    await sink.append(
      refusalEntry({
        operator: currentOperator(environment.env),
        action: String(request.action),
        nodes: mentionedNodes(request),
        transport: refusedTransport(request),
        error,
        traceId: error.traceId ?? newTraceId(),
        dryRun: request.dryRun === true,
      }),
    );
  } catch {
    // The configuration is broken; the refusal is still reported to the caller.
  }
}

const RUN_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The members every run event starts with. */
interface RunEventHeader<T extends RunEventType> {
  schema_version: typeof RUN_EVENT_V1;
  seq: number;
  run_id: string;
  trace_id: string;
  type: T;
  timestamp: string;
}

/**
 * The run-end status of a finished run (specs/run-v1.md, "Run status"). A cancelled run that
 * still ended with exit code 0 (every node had finished) succeeded. An exit code that is not 0
 * although every node succeeded comes from an outcome record that could not be written: the
 * protocol has no status for "ran, but not fully audited", so it is `interrupted`, with the
 * AUDIT_WRITE_FAILED error.
 */
export function runStatus(summary: RunSummary, cancelled: boolean): TerminalRunStatus {
  if (summary.exit_code === 0) return 'succeeded';
  if (cancelled) return 'cancelled';
  const succeeded = summary.succeeded + summary.partial;
  if (succeeded === 0) return 'failed';
  if (summary.failed + summary.skipped > 0) return 'partial';
  return 'interrupted';
}

/** Run options with a request's policy over the caller's. */
function withPolicy(options: RuneRunOptions, policy: ResolvedPolicy): RuneRunOptions {
  return Object.keys(policy).length === 0
    ? options
    : { ...options, policy: { ...options.policy, ...policy } };
}

/** Creates the RUNE facade. Throws INVALID_CONFIG when the configuration is invalid. */
export function createRune(options: RuneOptions = {}): Rune {
  const environment: EnvironmentOptions = {
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.home === undefined ? {} : { home: options.home }),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  };
  const loaded =
    options.config ??
    loadConfig({
      ...environment,
      ...(options.configFile === undefined ? {} : { configFile: options.configFile }),
      ...(options.configOverrides === undefined ? {} : { overrides: options.configOverrides }),
      ...(options.transportModules === undefined
        ? {}
        : { transportModules: options.transportModules }),
      ...(options.configModules === undefined ? {} : { configModules: options.configModules }),
    });
  const config = loaded.config;
  const host = hostname();
  const sender: RcsSender = {
    component: options.sender?.component ?? 'rune-core',
    version: options.sender?.version ?? CORE_VERSION,
    host: options.sender?.host ?? (host === '' ? 'localhost' : host),
  };
  const operator = options.operator ?? currentOperator(options.env);
  const now = options.now ?? (() => new Date());
  const audit =
    options.auditSink ??
    createFileAuditSink({
      path: resolveAuditLogPath(loaded),
      host: sender.host,
      now,
      keyFile: resolveAuditKeyFile(loaded),
      lockTimeoutMs: config.audit.lock_timeout_ms,
    });
  const warn = options.onWarning;
  const context = transportConfigContext(loaded, {
    env: options.env ?? process.env,
    interactive: options.interactive === true,
    ...(options.aroundPrompt === undefined ? {} : { aroundPrompt: options.aroundPrompt }),
    ...(warn === undefined ? {} : { onWarning: (message: string) => warn(message, 'transport') }),
  });
  const moduleProviders: Record<string, TransportProvider> = {};
  for (const module of loaded.transportModules) {
    moduleProviders[module.name] = () =>
      module.fromConfig(loaded.transportSections[module.name], context);
  }
  const transports = createTransportRegistry({ ...moduleProviders, ...options.transports });
  let registry: PluginRegistry | undefined;
  // What was found current in this event-loop turn. A server asks up to three times per
  // submission (plan, the policy's facts, idempotency) and for many submissions per turn; the
  // answer holds until the next turn, so each file is stat'ed once per turn, not per question.
  let currentThisTurn: Set<string> | undefined;
  const isCurrent = (known: PluginRegistry, action: string | undefined): boolean => {
    const key = action ?? '';
    if (currentThisTurn?.has(key) === true) return true;
    if (!pluginRegistryIsCurrent(known, action)) return false;
    if (currentThisTurn === undefined) {
      currentThisTurn = new Set();
      setImmediate(() => {
        currentThisTurn = undefined;
      }).unref();
    }
    currentThisTurn.add(key);
    return true;
  };

  // Rediscovered when a plugin file or directory changed since (a few stats per turn): what a
  // long-lived facade plans is what is on disk now, with its current sha256.
  const getRegistry = (action?: string): PluginRegistry => {
    if (registry !== undefined && !isCurrent(registry, action)) {
      registry = undefined;
      currentThisTurn = undefined;
    }
    registry ??= discoverPlugins({
      sources:
        options.pluginSources ??
        defaultPluginSources({
          dataHome: loaded.dirs.dataHome,
          pluginDir: config.plugins.plugin_dir,
        }),
      ...(warn === undefined ? {} : { onWarning: (message: string) => warn(message, 'registry') }),
    });
    return registry;
  };

  const pluginFacts = (plan: ExecutionPlan): AuditEntry['plugin'] => ({
    version: plan.plugin.version,
    sha256: plan.plugin.sha256,
    path: plan.plugin.path,
    source: plan.plugin.source,
  });

  /**
   * Who the plugin runs as, for every record of a plan: `run_as` and where it came from
   * (`manifest` when `privilege: root` chose it; `flag`/`config` when an explicit one won).
   */
  const privilegeFacts = (plan: ExecutionPlan): Record<string, unknown> =>
    plan.run_as === null ? {} : { run_as: plan.run_as, run_as_source: plan.run_as_source };

  /** The record of a whole plan (intent or dry run): every node named, no node result yet. */
  const planEntry = (
    plan: ExecutionPlan,
    fields: Pick<AuditEntry, 'event' | 'status' | 'params' | 'metadata'> & { run_id?: string },
  ): AuditEntry => ({
    ...fields,
    metadata: { ...fields.metadata, ...privilegeFacts(plan) },
    operator,
    action: plan.action,
    plugin: pluginFacts(plan),
    node: null,
    nodes: plan.nodes.map((node) => node.target.name),
    transport: [...new Set(plan.nodes.map((node) => node.transport))].join(','),
    error_code: null,
    error_message: null,
    duration_ms: null,
    trace_id: plan.trace_id,
  });

  const writeRefusal = (request: RefusedRequest, nodes: string[], error: RuneError) =>
    audit.append(
      refusalEntry({
        operator,
        action: String(request.action),
        nodes,
        transport: refusedTransport(request),
        error,
        traceId: error.traceId ?? newTraceId(),
        dryRun: request.dryRun === true,
      }),
    );

  /**
   * Resolves and plans a request. Every refusal before a run (a bad value, an unknown node, an
   * unknown action, a sensitive parameter on an embedding transport) is audited here, once.
   */
  const planRequest = async (
    request: PlanRequest,
    trace: string,
  ): Promise<{ plan: ExecutionPlan; policy: ResolvedPolicy }> => {
    let nodes = mentionedNodes(request);
    try {
      const resolved = await resolvePlanRequest(request, { config });
      nodes = resolved.input.targets.map((target) => target.node.name);
      for (const message of resolved.warnings) warn?.(message, 'inventory');
      const plan = planRun(resolved.input, {
        registry: getRegistry(resolved.input.action),
        config,
        sender,
        now,
        traceId: trace,
      });
      await assertSensitiveParametersAllowed(plan, transports);
      return { plan, policy: resolved.policy };
    } catch (error) {
      const runeError = RuneError.from(error).withContext({ traceId: trace });
      // A refusal runs nothing either way: when its record cannot be written, the refusal is
      // still what the caller needs to hear, with the audit failure attached.
      const unaudited = await writeRefusal(request, nodes, runeError).then(
        () => undefined,
        (auditError: unknown) => RuneError.from(auditError, 'AUDIT_WRITE_FAILED'),
      );
      if (unaudited === undefined) throw runeError;
      throw runeError.withContext({
        details: { audit_error: { code: unaudited.code, message: unaudited.message } },
      });
    }
  };

  const tracedPlanRequest = (request: PlanRequest, trace: string) =>
    tracePlanning(String(request.action), trace, () => planRequest(request, trace));

  const rune: Rune = {
    config: loaded,
    transports,
    registry: () => getRegistry(),

    listActions() {
      const reg = getRegistry();
      return reg.actions().map((action) => {
        const [winner, ...shadowed] = reg.candidates(action);
        let problem: string | null = null;
        try {
          reg.resolve(action);
        } catch (error) {
          problem = RuneError.from(error).code;
        }
        return {
          action,
          version: winner?.manifest?.version ?? '?',
          description: winner?.manifest?.description ?? winner?.manifestError?.message ?? '',
          source: winner?.source ?? '?',
          path: winner?.path ?? '',
          inferred: winner?.manifest?.inferred === true,
          problem,
          shadowed: shadowed.length,
        };
      });
    },

    pluginInfo(action) {
      const reg = getRegistry();
      let problem: PluginInfo['problem'] = null;
      try {
        reg.resolve(action);
      } catch (error) {
        const runeError = RuneError.from(error);
        if (runeError.code === 'INVALID_ACTION_NAME' || runeError.code === 'UNKNOWN_ACTION') {
          throw runeError;
        }
        problem = runeError.toJSON();
      }
      return { action, candidates: reg.candidates(action), problem };
    },

    async plan(request, traceId) {
      return (await tracedPlanRequest(request, traceId ?? newTraceId())).plan;
    },

    async startPlan(plan, runOptions = {}) {
      // The run id is a UUID because run events and the run-result document require one.
      if (runOptions.runId !== undefined && !RUN_ID_PATTERN.test(runOptions.runId)) {
        throw new RuneError('INVALID_ARGUMENT', 'runId must be a lowercase UUID', {
          source: { component: 'rune-core', action: plan.action },
        });
      }
      const runId = runOptions.runId ?? randomUUID();
      const runSpan = startRunSpan(plan, runId);
      const params = redactParameters(plan.parameters, plan.sensitive_parameters);
      const fleetPolicy = fleetPolicyRecord({
        ...runOptions.policy,
        concurrency: plan.concurrency,
      });
      // Write-ahead: nothing is sent to any node until this record is durable.
      let intent: Awaited<ReturnType<AuditSink['append']>>;
      try {
        intent = await audit.append(
          planEntry(plan, {
            event: 'intent',
            run_id: runId,
            status: 'started',
            params,
            metadata: {
              ...runOptions.auditMetadata,
              fleet_policy: fleetPolicy,
              timeout_ms: plan.timeout_ms,
            },
          }),
        );
      } catch (error) {
        const cause = RuneError.from(error, 'AUDIT_WRITE_FAILED');
        endSpanWithError(runSpan.span, cause);
        throw new RuneError(
          'AUDIT_WRITE_FAILED',
          `the intent record of this run could not be written (${cause.message}); nothing was sent to any node: RUNE does not run unaudited`,
          {
            cause,
            traceId: plan.trace_id,
            source: { component: 'rune-core', action: plan.action },
            details: { ...cause.details, phase: 'intent' },
          },
        );
      }
      const buffer = createRunEventBuffer();
      let seq = 0;
      const header = <T extends RunEventType>(type: T): RunEventHeader<T> => ({
        schema_version: RUN_EVENT_V1,
        seq: ++seq,
        run_id: runId,
        trace_id: plan.trace_id,
        type,
        timestamp: now().toISOString(),
      });
      buffer.push({ ...header('run-start'), plan: redactPlan(plan) });

      // Our own controller, so that cancel() works whether or not the caller passed a signal.
      const controller = new AbortController();
      const external = runOptions.signal;
      const forward = (): void => {
        if (!controller.signal.aborted) controller.abort(external?.reason);
      };
      if (external?.aborted) forward();
      else external?.addEventListener('abort', forward, { once: true });
      let cancelReason: string | undefined;
      let ended = false;
      const cancel = (reason?: string): void => {
        if (ended || controller.signal.aborted) return;
        cancelReason = reason;
        controller.abort(
          new RuneError('RUN_CANCELLED', reason ?? 'the run was cancelled', {
            source: { component: 'rune-core', action: plan.action },
            traceId: plan.trace_id,
          }),
        );
      };

      let recorded = 0;
      const missing: string[] = [];
      const failures: RuneError[] = [];
      const finish = async (): Promise<RunHandleOutcome> => {
        const outcome = await executePlan(plan, {
          transports,
          signal: controller.signal,
          ...(runOptions.policy === undefined ? {} : { policy: runOptions.policy }),
          onNodeStart: (node, index) => {
            buffer.push({
              ...header('node-start'),
              node: node.target.name,
              transport: node.transport,
              message_id: node.request.message_metadata.message_id,
            });
            runOptions.onNodeStart?.(node, index);
          },
          onNodeResult: async (result, index) => {
            try {
              await audit.append({
                event: 'run',
                run_id: runId,
                operator,
                action: plan.action,
                plugin: pluginFacts(plan),
                node: result.node,
                transport: result.transport,
                status: result.status,
                error_code: result.error?.code ?? null,
                error_message: result.error?.message ?? null,
                duration_ms: result.duration_ms,
                trace_id: plan.trace_id,
                params,
                metadata: {
                  ...runOptions.auditMetadata,
                  ...result.metadata,
                  ...privilegeFacts(plan),
                  fleet_policy: fleetPolicy,
                },
              });
              recorded++;
            } catch (error) {
              // The plugin already ran: its result is kept and the failure reported with it.
              missing.push(result.node);
              failures.push(RuneError.from(error, 'AUDIT_WRITE_FAILED'));
            }
            // After its audit record, before the caller's callback (which may throw).
            buffer.push({ ...header('node-end'), result });
            runOptions.onNodeResult?.(result, index);
          },
        });
        let auditError: EpsError | null = null;
        const firstFailure = failures[0];
        if (firstFailure !== undefined) {
          const error = new RuneError(
            'AUDIT_WRITE_FAILED',
            `the outcome of ${missing.length} node(s) (${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}) could not be written to the audit log (${firstFailure.message}); the plugin ran and its results are reported here, but the log holds only the intent record (run ${runId}) for them`,
            {
              cause: firstFailure,
              traceId: plan.trace_id,
              source: { component: 'rune-core', action: plan.action },
              details: {
                ...firstFailure.details,
                phase: 'outcome',
                run_id: runId,
                nodes: missing.slice(0, 100),
              },
            },
          );
          auditError = error.toJSON();
          outcome.summary.exit_code = aggregateExitCode([
            ...outcome.nodes,
            { exit_code: error.exitCode },
          ]);
        }
        const cancelled = controller.signal.aborted;
        const status = runStatus(outcome.summary, cancelled);
        const runError =
          auditError ??
          (cancelled && status === 'cancelled'
            ? new RuneError('RUN_CANCELLED', cancelReason ?? 'the run was cancelled', {
                source: { component: 'rune-core', action: plan.action },
                traceId: plan.trace_id,
              }).toJSON()
            : null);
        buffer.push({
          ...header('run-end'),
          status,
          exit_code: outcome.summary.exit_code,
          // run v1 requires a summary's exit code to be 0 when every node succeeded, but an
          // unwritten outcome record makes it 70: that run-end carries no summary (the node-end
          // events hold every result) until the protocol has a rule for this case.
          summary: status === 'interrupted' ? null : outcome.summary,
          error: runError,
        });
        return {
          ...outcome,
          id: runId,
          status,
          audit: {
            run_id: runId,
            intent: { seq: intent.seq ?? null, hash: intent.hash },
            outcomes_recorded: recorded,
            outcomes_missing: missing,
            error: auditError,
          },
        };
      };

      const result = otelContext
        .with(runSpan.context, finish)
        .then(endRunSpan(runSpan.span), failRunSpan(runSpan.span))
        .catch((error: unknown) => {
          // Only a caller's callback can make executePlan throw; the stream still ends.
          const runeError = RuneError.from(error).withContext({ traceId: plan.trace_id });
          buffer.push({
            ...header('run-end'),
            status: 'failed',
            exit_code: runeError.exitCode === 0 ? 70 : runeError.exitCode,
            summary: null,
            error: runeError.toJSON(),
          });
          throw runeError;
        })
        .finally(() => {
          ended = true;
          external?.removeEventListener('abort', forward);
          buffer.close();
        });
      // A caller that never awaits `result` must not crash the process with an unhandled rejection.
      result.catch(() => undefined);
      return {
        id: runId,
        traceId: plan.trace_id,
        plan,
        events: buffer.events,
        result,
        cancel,
      };
    },

    async execute(plan, runOptions = {}) {
      const handle = await rune.startPlan(plan, runOptions);
      return handle.result;
    },

    async start(request, runOptions = {}) {
      if (request.dryRun === true) {
        throw new RuneError(
          'INVALID_ARGUMENT',
          'start() runs a request; a dry run has no run to start: use plan() or run()',
          { source: { component: 'rune-core', action: String(request.action) } },
        );
      }
      const { plan, policy } = await tracedPlanRequest(request, runOptions.traceId ?? newTraceId());
      return rune.startPlan(plan, withPolicy(runOptions, policy));
    },

    async run(request, runOptions = {}) {
      const { plan, policy } = await tracedPlanRequest(request, runOptions.traceId ?? newTraceId());
      if (plan.dry_run) {
        await rune.recordDryRun(plan, runOptions);
        return { plan, outcome: null };
      }
      runOptions.onPlan?.(plan);
      const handle = await rune.startPlan(plan, withPolicy(runOptions, policy));
      return { plan, outcome: await handle.result };
    },

    async recordDryRun(plan, runOptions = {}) {
      await audit.append(
        planEntry(plan, {
          event: 'dry-run',
          status: 'planned',
          params: redactParameters(plan.parameters, plan.sensitive_parameters),
          metadata: { ...runOptions.auditMetadata },
        }),
      );
    },

    async recordRefusal(request, error) {
      await writeRefusal(request, mentionedNodes(request), error);
    },

    async recordWorkflow(facts) {
      await audit.append(workflowAuditEntry(facts, operator));
    },

    close: () => transports.close(),
  };
  return rune;
}
