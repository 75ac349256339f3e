/**
 * The planning: turns "run this action on these nodes with these parameters" into an
 * {@link ExecutionPlan} — validated, fully resolved and serializable — without contacting any
 * node. `rune run --dry-run` prints the plan; the execution step executes it. Everything that can be
 * refused before a node is touched is refused here, as a RuneError.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  type DeployMode,
  MAX_TIMEOUT_MS,
  type MrsManifest,
  RCS_V1,
  type RcsRequest,
  type RcsSender,
  RuneError,
  validateRcsRequest,
} from '@rune/protocol';
import type { TargetNode } from '@rune/transport';
import type { RuneConfig } from '../config/config-schema.js';
import { MAX_CONCURRENCY } from '../fleet/policy.js';
import type { PluginRegistry, PluginSourceKind } from '../plugins/plugin-registry.js';
import {
  redactParameters,
  resolveRunParameters,
  sensitiveParameterNames,
} from './resolve-parameters.js';

/** Node names that always mean "this machine" and use the `local` transport by default. */
export const LOCAL_NODE_NAMES: readonly string[] = ['localhost', 'local', '127.0.0.1', '::1'];

/** The name of the local transport. */
export const LOCAL_TRANSPORT_NAME = 'local';

/** A node already resolved with its transport (e.g. by `selectTargets` from an inventory). */
export interface PlanTarget {
  node: TargetNode;
  transport: string;
}

/** What to run, where, with what. */
export interface PlanRequest {
  action: string;
  /**
   * Node names, resolved nodes, or nodes with their transport (`selectTargets` output). A plain
   * name or node uses the localhost rule and `core.default_transport`.
   */
  nodes: readonly (string | TargetNode | PlanTarget)[];
  /** Typed parameters (e.g. from `--params @file.json`). */
  params?: Readonly<Record<string, unknown>>;
  /** `key=value` strings (`--param`), coerced by the manifest types; applied after `params`. */
  paramArgs?: readonly string[];
  /** Transport for every node; overrides the localhost rule and `core.default_transport`. */
  transport?: string;
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
  config: RuneConfig;
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

const NODE_NAME = /^[^\s/\\\p{Cc}-][^\s/\\\p{Cc}]{0,254}$/u;

/** A node with the transport it asked for, if any. */
export interface ResolvedTarget {
  node: TargetNode;
  transport: string | undefined;
}

/** The display name of a request node. */
export function targetName(node: string | TargetNode | PlanTarget): string {
  if (typeof node === 'string') return node;
  return 'node' in node ? node.node.name : node.name;
}

/** Validates node names and turns strings into nodes; duplicates are dropped. */
export function resolveTargets(
  nodes: readonly (string | TargetNode | PlanTarget)[],
): ResolvedTarget[] {
  const seen = new Set<string>();
  const targets: ResolvedTarget[] = [];
  for (const node of nodes) {
    const target = typeof node === 'string' ? { name: node } : 'node' in node ? node.node : node;
    const transport = typeof node === 'object' && 'node' in node ? node.transport : undefined;
    if (
      typeof target.name !== 'string' ||
      !NODE_NAME.test(target.name) ||
      target.name === '.' ||
      target.name === '..'
    ) {
      throw new RuneError(
        'INVALID_TARGET',
        `"${String(target.name).slice(0, 80)}" is not a valid node name (no whitespace, slashes or control characters; must not start with "-")`,
        {
          source: { component: 'rune-core' },
          details: { node: String(target.name).slice(0, 256) },
        },
      );
    }
    if (seen.has(target.name)) continue;
    seen.add(target.name);
    targets.push({ node: target, transport });
  }
  if (targets.length === 0) {
    throw new RuneError('NO_TARGETS', 'no node given: use --node <host>', {
      source: { component: 'rune-core' },
    });
  }
  return targets;
}

/** Names of the parameters a request supplies itself (`params` keys and `--param` keys). */
function suppliedParameterNames(request: PlanRequest): Set<string> {
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

function transportFor(target: ResolvedTarget, request: PlanRequest, config: RuneConfig): string {
  if (request.transport !== undefined) return request.transport;
  if (target.transport !== undefined) return target.transport;
  if (LOCAL_NODE_NAMES.includes(target.node.name)) return LOCAL_TRANSPORT_NAME;
  return config.core.default_transport ?? 'ssh';
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
 * INVALID_PARAMETERS, INVALID_TARGET, NO_TARGETS, INVALID_ARGUMENT, DANGEROUS_ACTION_REFUSED.
 */
export function planRun(request: PlanRequest, context: PlanContext): ExecutionPlan {
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
    const targets = resolveTargets(request.nodes);
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
    const concurrency = request.concurrency ?? config.execution.concurrency ?? 50;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
      throw new RuneError(
        'INVALID_ARGUMENT',
        `concurrency must be an integer from 1 to ${MAX_CONCURRENCY}, not ${concurrency}`,
        { source: { component: 'rune-core' }, details: { concurrency } },
      );
    }

    const deployMode = request.deployMode ?? config.execution.deploy_mode ?? 'ship';
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
    const baseDir = (config.remote_plugins.base_dir ?? '/opt/rune/plugins').replace(/\/+$/, '');
    const instances = config.ssm.instances ?? {};

    const nodes = targets.map((resolvedTarget): PlannedNode => {
      const transport = transportFor(resolvedTarget, request, config);
      const target: TargetNode = { ...resolvedTarget.node };
      if (transport === 'ssm' && target.instanceId === undefined) {
        const mapped = instances[target.name];
        if (mapped !== undefined) target.instanceId = mapped;
      }
      if (runAs !== null && target.runAs === undefined) target.runAs = runAs;
      const rcs: RcsRequest = {
        message_metadata: {
          message_id: uuid(),
          trace_id: traceId,
          timestamp: now.toISOString(),
          sender: context.sender,
        },
        routing: { action: manifest.name, node: target.name, transport, deploy_mode: deployMode },
        payload: {
          schema_version: RCS_V1,
          data: {
            input_parameters: structuredClone(parameters),
            options: { dry_run: false, timeout_ms: timeoutMs },
          },
        },
      };
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
        transport === LOCAL_TRANSPORT_NAME
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
        max_stdout_bytes: config.execution.max_stdout_bytes ?? 1_048_576,
        max_stderr_bytes: config.execution.max_stderr_bytes ?? 65_536,
      },
      run_as: runAs,
      run_as_source: runAsSource,
      preflight_commands: [...manifest.requirements.commands],
      fetch_artifacts: request.fetchArtifacts ?? config.execution.fetch_artifacts ?? false,
      artifact_dir: config.core.artifact_dir ?? 'rune-artifacts',
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
