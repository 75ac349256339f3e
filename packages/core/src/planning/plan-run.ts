/**
 * The planning: turns "run this action on these nodes with these parameters" into an
 * {@link ExecutionPlan} — validated, fully resolved and serializable — without contacting any
 * node. `rune run --dry-run` prints the plan; the execution step executes it. Everything that can be
 * refused before a node is touched is refused here or in `resolvePlanRequest` (targets), as a
 * RuneError. The configuration arrives resolved: every default is already filled in.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  createRcsRequest,
  type DeployMode,
  MAX_TIMEOUT_MS,
  type MrsManifest,
  type RcsRequest,
  type RcsSender,
  RuneError,
  validateRcsRequest,
} from '@rune/protocol';
import type { TargetNode } from '@rune/transport';
import type { ResolvedConfig } from '../config/config-schema.js';
import { MAX_CONCURRENCY } from '../fleet/policy.js';
import type { PluginRegistry, PluginSourceKind } from '../plugins/plugin-registry.js';
import {
  redactParameters,
  resolveRunParameters,
  sensitiveParameterNames,
} from './resolve-parameters.js';
import { LOCAL_TRANSPORT } from './targets.js';

/** A node with the transport that reaches it (`selectTargets` output). */
export interface PlanTarget {
  node: TargetNode;
  transport: string;
}

/**
 * What {@link planRun} builds a plan from: a request whose targets are selected (validated,
 * de-duplicated, each with its transport, by `resolvePlanRequest`) and whose values are parsed.
 */
export interface PlanInput {
  action: string;
  /** The nodes, in order, each once. */
  targets: readonly PlanTarget[];
  /** Typed parameters. */
  params?: Readonly<Record<string, unknown>>;
  /** `key=value` strings, coerced by the manifest types; applied after `params`. */
  paramArgs?: readonly string[];
  /** Per-node timeout in ms; overrides `core.timeout_ms` and the manifest. */
  timeoutMs?: number;
  deployMode?: DeployMode;
  runAs?: string;
  fetchArtifacts?: boolean;
  concurrency?: number;
  /** Mark the plan as a dry run (nothing will be executed). */
  dryRun?: boolean;
  /** Required to plan an action whose manifest says `dangerous: true` (except for dry runs). */
  confirmDangerous?: boolean;
}

/** Inputs of {@link planRun} that do not change per request. */
export interface PlanContext {
  registry: PluginRegistry;
  config: ResolvedConfig;
  /** Identifies the control node in RCS `message_metadata.sender`. */
  sender: RcsSender;
  now?: () => Date;
  /** Reuse a trace id (e.g. one the caller already logged); default: a fresh random one. */
  traceId?: string;
  /** UUID generator for message ids (injectable for tests). */
  randomUUID?: () => string;
}

/** The plugin a plan runs. */
export interface PlannedPlugin {
  action: string;
  version: string;
  description: string;
  sha256: string;
  size: number;
  /** Absolute path of the plugin file on the control node. */
  path: string;
  manifest_path: string | null;
  source: PluginSourceKind;
  inferred: boolean;
  dangerous: boolean;
  supports_dry_run: boolean;
  entrypoint: string;
}

/** One node of a plan. */
export interface PlannedNode {
  target: TargetNode;
  transport: string;
  /** The exact RCS document the plugin receives on stdin. */
  request: RcsRequest;
  /** For `preinstalled`: where the plugin is expected on the node. */
  remote_path: string | null;
  /** One line saying what would run on the node. */
  would_run: string;
}

/** A validated, serializable execution plan. */
export interface ExecutionPlan {
  schema: 'rune-execution-plan/v1';
  trace_id: string;
  action: string;
  created_at: string;
  dry_run: boolean;
  plugin: PlannedPlugin;
  /** Effective parameters (defaults filled). Sensitive values are in clear: see `redactPlan`. */
  parameters: Record<string, unknown>;
  sensitive_parameters: string[];
  /**
   * The sensitive parameters the caller supplied (not merely filled from a manifest default). A
   * transport that embeds the request in its command refuses the run when this is not empty.
   */
  supplied_sensitive_parameters: string[];
  timeout_ms: number;
  timeout_source: 'flag' | 'config' | 'manifest';
  deploy_mode: DeployMode;
  concurrency: number;
  limits: { max_stdout_bytes: number; max_stderr_bytes: number };
  run_as: string | null;
  /**
   * Where `run_as` came from: `flag` (the request), `config` (`[execution] run_as`) or
   * `manifest` (`requirements.privilege: root` and nothing explicit). An explicit value wins over
   * the manifest; null when the plan runs as the login user.
   */
  run_as_source: 'flag' | 'config' | 'manifest' | null;
  /** Commands the node must have (manifest `requirements.commands`), checked before the plugin starts. */
  preflight_commands: string[];
  fetch_artifacts: boolean;
  artifact_dir: string;
  nodes: PlannedNode[];
}

/** A fresh W3C trace id: 32 lowercase hex digits, never all zero. */
export function newTraceId(): string {
  for (;;) {
    const id = randomBytes(16).toString('hex');
    if (!/^0+$/.test(id)) return id;
  }
}

/** Names of the parameters a request supplies itself (`params` keys and `--param` keys). */
function suppliedParameterNames(request: PlanInput): Set<string> {
  const names = new Set<string>();
  if (typeof request.params === 'object' && request.params !== null) {
    for (const name of Object.keys(request.params)) names.add(name);
  }
  for (const arg of request.paramArgs ?? []) {
    const equals = arg.indexOf('=');
    if (equals > 0) names.add(arg.slice(0, equals));
  }
  return names;
}

function plannedPlugin(
  resolved: ReturnType<PluginRegistry['resolve']>,
  manifest: MrsManifest,
): PlannedPlugin {
  return {
    action: resolved.action,
    version: manifest.version,
    description: manifest.description,
    sha256: resolved.sha256,
    size: resolved.size,
    path: resolved.path,
    manifest_path: resolved.manifestPath,
    source: resolved.source,
    inferred: manifest.inferred === true,
    dangerous: manifest.dangerous,
    supports_dry_run: manifest.supports_dry_run,
    entrypoint: resolved.path.slice(resolved.path.lastIndexOf('/') + 1),
  };
}

/**
 * Validates a run request and builds its execution plan. Throws RuneError:
 * INVALID_ACTION_NAME, UNKNOWN_ACTION, INVALID_MANIFEST, PLUGIN_NOT_EXECUTABLE,
 * INVALID_PARAMETERS, NO_TARGETS, INVALID_ARGUMENT, DANGEROUS_ACTION_REFUSED.
 */
export function planRun(request: PlanInput, context: PlanContext): ExecutionPlan {
  const traceId = context.traceId ?? newTraceId();
  const now = (context.now ?? (() => new Date()))();
  const uuid = context.randomUUID ?? randomUUID;
  const config = context.config;
  try {
    const resolved = context.registry.resolve(request.action);
    const manifest = resolved.manifest;
    const parameters = resolveRunParameters(manifest, {
      ...(request.params === undefined ? {} : { values: request.params }),
      ...(request.paramArgs === undefined ? {} : { args: request.paramArgs }),
    });
    const sensitive = sensitiveParameterNames(manifest);
    const supplied = suppliedParameterNames(request);
    const targets = request.targets;
    if (targets.length === 0) {
      throw new RuneError('NO_TARGETS', 'no node given: use --node <host>', {
        source: { component: 'rune-core' },
      });
    }
    if (manifest.dangerous && request.dryRun !== true && request.confirmDangerous !== true) {
      throw new RuneError(
        'DANGEROUS_ACTION_REFUSED',
        `action ${manifest.name} is marked dangerous; confirm it explicitly (--yes) or use --dry-run`,
        { source: { component: 'rune-core', action: manifest.name } },
      );
    }

    let timeoutMs: number;
    let timeoutSource: ExecutionPlan['timeout_source'];
    if (request.timeoutMs !== undefined) {
      timeoutMs = request.timeoutMs;
      timeoutSource = 'flag';
    } else if (config.core.timeout_ms !== undefined) {
      timeoutMs = config.core.timeout_ms;
      timeoutSource = 'config';
    } else {
      timeoutMs = manifest.timeout_ms;
      timeoutSource = 'manifest';
    }
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
      throw new RuneError(
        'INVALID_ARGUMENT',
        `timeout must be an integer between 1 ms and ${MAX_TIMEOUT_MS} ms, got ${timeoutMs}`,
        { source: { component: 'rune-core' }, details: { timeout_ms: timeoutMs } },
      );
    }
    const concurrency = request.concurrency ?? config.execution.concurrency;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
      throw new RuneError(
        'INVALID_ARGUMENT',
        `concurrency must be an integer from 1 to ${MAX_CONCURRENCY}, not ${concurrency}`,
        { source: { component: 'rune-core' }, details: { concurrency } },
      );
    }

    const deployMode = request.deployMode ?? config.execution.deploy_mode;
    // An operator's explicit run_as wins; else a manifest that needs root gets root (sudo -n).
    const explicitRunAs = request.runAs ?? config.execution.run_as;
    const runAsSource: ExecutionPlan['run_as_source'] =
      request.runAs !== undefined
        ? 'flag'
        : config.execution.run_as !== undefined
          ? 'config'
          : manifest.requirements.privilege === 'root'
            ? 'manifest'
            : null;
    const runAs = explicitRunAs ?? (runAsSource === 'manifest' ? 'root' : null);
    const plugin = plannedPlugin(resolved, manifest);
    const baseDir = config.remote_plugins.base_dir.replace(/\/+$/, '');

    const nodes = targets.map((selected): PlannedNode => {
      const transport = selected.transport;
      const target: TargetNode = { ...selected.node };
      if (runAs !== null && target.runAs === undefined) target.runAs = runAs;
      const rcs: RcsRequest = createRcsRequest({
        messageId: uuid(),
        traceId,
        timestamp: now,
        sender: context.sender,
        action: manifest.name,
        node: target.name,
        transport,
        deployMode,
        parameters,
        dryRun: false,
        timeoutMs,
      });
      const checked = validateRcsRequest(rcs, { traceId });
      if (!checked.ok) {
        throw new RuneError(
          'INVALID_ARGUMENT',
          `cannot build the RCS request: ${checked.error.message}`,
          {
            source: { component: 'rune-core', node: target.name, action: manifest.name },
            details: checked.error.details,
          },
        );
      }
      const remotePath = deployMode === 'preinstalled' ? `${baseDir}/${plugin.entrypoint}` : null;
      const nodeRunAs = target.runAs ?? null;
      const runAsText =
        nodeRunAs === null
          ? ''
          : ` as ${nodeRunAs} (sudo -n${runAsSource === 'manifest' && nodeRunAs === runAs ? ', the manifest requires root' : ''})`;
      const wouldRun =
        transport === LOCAL_TRANSPORT
          ? `exec ${remotePath ?? plugin.path}${runAsText} on this machine, RCS JSON on stdin, no shell`
          : deployMode === 'ship'
            ? `ship ${plugin.entrypoint} (sha256 ${plugin.sha256.slice(0, 12)}…) to the node's private plugin cache via ${transport}, verify its sha256, exec it${runAsText} with the RCS JSON on stdin`
            : `exec ${remotePath}${runAsText} on the node via ${transport} with the RCS JSON on stdin`;
      return { target, transport, request: rcs, remote_path: remotePath, would_run: wouldRun };
    });

    return {
      schema: 'rune-execution-plan/v1',
      trace_id: traceId,
      action: manifest.name,
      created_at: now.toISOString(),
      dry_run: request.dryRun === true,
      plugin,
      parameters,
      sensitive_parameters: sensitive,
      supplied_sensitive_parameters: sensitive.filter(
        (name) => supplied.has(name) && Object.hasOwn(parameters, name),
      ),
      timeout_ms: timeoutMs,
      timeout_source: timeoutSource,
      deploy_mode: deployMode,
      concurrency,
      limits: {
        max_stdout_bytes: config.execution.max_stdout_bytes,
        max_stderr_bytes: config.execution.max_stderr_bytes,
      },
      run_as: runAs,
      run_as_source: runAsSource,
      preflight_commands: [...manifest.requirements.commands],
      fetch_artifacts: request.fetchArtifacts ?? config.execution.fetch_artifacts,
      artifact_dir: config.core.artifact_dir,
      nodes,
    };
  } catch (error) {
    throw RuneError.from(error).withContext({ traceId });
  }
}

/** A copy of a plan safe to display or log: sensitive parameter values replaced by "[REDACTED]". */
export function redactPlan(plan: ExecutionPlan): ExecutionPlan {
  const sensitive = plan.sensitive_parameters;
  if (sensitive.length === 0) return plan;
  return {
    ...plan,
    parameters: redactParameters(plan.parameters, sensitive),
    nodes: plan.nodes.map((node) => ({
      ...node,
      request: {
        ...node.request,
        payload: {
          ...node.request.payload,
          data: {
            ...node.request.payload.data,
            input_parameters: redactParameters(
              node.request.payload.data.input_parameters,
              sensitive,
            ),
          },
        },
      },
    })),
  };
}
