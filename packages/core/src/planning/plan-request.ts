/**
 * The request a front end (the CLI, a server, a Node tool) hands to `rune.plan()`, `rune.run()`
 * and `rune.start()`: what to run and which nodes, in the words the operator used — selector
 * strings, an inventory path, node-list files, durations as typed. {@link resolvePlanRequest}
 * turns it into a {@link PlanInput}: it loads the inventory, reads the node lists, reconciles
 * `useSsm` with `transport`, selects and validates the targets (once) and parses every value.
 * Whatever is wrong is a RuneError, thrown before anything runs (and audited by the caller, once).
 */
import { readFileSync } from 'node:fs';
import { type DeployMode, RuneError } from '@rune/protocol';
import type { ResolvedConfig } from '../config/config-schema.js';
import { parseDuration } from '../duration.js';
import {
  type FailureBudget,
  MAX_CONCURRENCY,
  MAX_POLICY_COUNT,
  parseFailureBudget,
  parsePolicyInteger,
  validateFleetPolicy,
} from '../fleet/policy.js';
import { type Inventory, loadInventory } from '../inventory/inventory.js';
import { type ReadNodeListOptions, readNodeList } from '../inventory/node-list.js';
import { selectTargets } from '../inventory/select-targets.js';
import type { PlanInput } from './plan-run.js';

/** The fleet policy of a request, as typed (`"10%"`, `"5m"`) or as numbers. */
export interface PlanRequestPolicy {
  /** Canary wave size: a whole number. */
  canary?: number | string;
  /** Failure budget: a count (`3`) or a percentage (`"10%"`). */
  maxFailures?: number | string | FailureBudget;
  /** Overall deadline: milliseconds or a duration (`"30s"`, `"5m"`). */
  deadline?: number | string;
}

/**
 * What to run, where, with what: the request of `rune.plan()`, `rune.run()` and `rune.start()`.
 * Every member but `action` is optional; targets come from `selections` and `nodeLists`.
 *
 * Three members read the control node's files (or standard input): `inventory` given as a path,
 * `nodeLists` and `paramsSource`. They exist for an operator's own front end (the CLI); a service
 * that takes requests from clients must set them itself (or not at all) and pass clients'
 * parameters as `params` and their selectors as `selections`.
 */
export interface PlanRequest {
  /** The action (plugin) name. */
  action: string;
  /**
   * Selector strings as an operator types them (`--node`, `--group`, positional): names,
   * `[user@]host[:port]`, `@group`, `tag:x`, globs, `!exclusions`, comma lists. Groups, tags and
   * globs need an inventory. `localhost` (and `local`, `127.0.0.1`, `::1`) runs on this machine.
   */
  selections?: readonly string[];
  /** Node-list files, one selection per line (`#` comments); `-` reads standard input. */
  nodeLists?: readonly string[];
  /**
   * The inventory: a file path (RUNE YAML or Ansible INI/YAML) or an already parsed one. Default:
   * `[core] inventory`; without either, only ad-hoc nodes can be selected.
   */
  inventory?: string | Inventory;
  /** Transport for every node, over the inventory and the local rule. */
  transport?: string;
  /** Shorthand for `transport: 'ssm'`; naming another transport too is INVALID_ARGUMENT. */
  useSsm?: boolean;
  /** Typed parameters. */
  params?: Readonly<Record<string, unknown>>;
  /**
   * Parameters as text, the way `--params` takes them: `@file.json`, `-` (standard input) or an
   * inline JSON object. Applied over `params`.
   */
  paramsSource?: string;
  /** `key=value` strings, coerced by the manifest types; applied last. */
  paramArgs?: readonly string[];
  /** Per-node timeout: milliseconds or a duration (`"30s"`); over `[core] timeout_ms` and the manifest. */
  timeout?: number | string;
  /** Nodes at once (1..10000); over `[execution] concurrency`. */
  concurrency?: number | string;
  /** Canary, failure budget, deadline. */
  policy?: PlanRequestPolicy;
  deployMode?: DeployMode;
  /** Run the plugin as this user (non-interactive sudo). */
  runAs?: string;
  /** Download the artifacts the plugin declares. */
  fetchArtifacts?: boolean;
  /** Plan only: `rune.run()` audits and returns the plan, nothing runs. */
  dryRun?: boolean;
  /** Required to run an action whose manifest says `dangerous: true` (not for dry runs). */
  confirmDangerous?: boolean;
}

/** The fleet policy fields the scheduler takes (concurrency comes from the plan). */
export interface ResolvedPolicy {
  canary?: number;
  maxFailures?: FailureBudget;
  deadlineMs?: number;
}

/** A request ready for `planRun`, with what resolving it found out. */
export interface ResolvedPlanRequest {
  input: PlanInput;
  policy: ResolvedPolicy;
  /** What the inventory asks for and RUNE ignores on purpose (e.g. an Ansible password). */
  warnings: string[];
}

/** Options of {@link resolvePlanRequest}. */
export interface ResolvePlanRequestOptions {
  config: ResolvedConfig;
  /** Standard input for `-` in `nodeLists` (default `process.stdin`). */
  stdin?: ReadNodeListOptions['stdin'];
  /** Reads all of standard input for `paramsSource: '-'` (default: fd 0). */
  readStdin?: () => string;
}

const invalidArgument = (message: string): RuneError =>
  new RuneError('INVALID_ARGUMENT', message, { source: { component: 'rune-core' } });

/**
 * Reads parameters given as text: `@file.json`, `-` (standard input) or an inline JSON object.
 * Throws INVALID_PARAMETERS when it is unreadable or not a JSON object.
 */
export function readParamsSource(
  value: string,
  readStdin: () => string = () => readFileSync(0, 'utf8'),
): Record<string, unknown> {
  let text: string;
  let origin: string;
  if (value === '-') {
    origin = 'stdin';
    text = readStdin();
  } else if (value.startsWith('@')) {
    origin = value.slice(1);
    try {
      text = readFileSync(origin, 'utf8');
    } catch (error) {
      throw new RuneError('INVALID_PARAMETERS', `cannot read --params file ${origin}`, {
        cause: error,
        source: { component: 'rune-core' },
        details: { file: origin, errno: (error as NodeJS.ErrnoException).code },
      });
    }
  } else {
    origin = 'the --params value';
    text = value;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new RuneError(
      'INVALID_PARAMETERS',
      `${origin} is not valid JSON: ${(error as Error).message}`,
      { source: { component: 'rune-core' }, details: { source: origin } },
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new RuneError('INVALID_PARAMETERS', `${origin} must be a JSON object of parameters`, {
      source: { component: 'rune-core' },
      details: { source: origin },
    });
  }
  return parsed as Record<string, unknown>;
}

/** The transport a request names for every node, if any. */
export function requestedTransport(
  request: Pick<PlanRequest, 'transport' | 'useSsm'>,
): string | undefined {
  if (request.useSsm === true) {
    if (request.transport !== undefined && request.transport !== 'ssm')
      throw invalidArgument(`--use-ssm contradicts --transport ${request.transport}`);
    return 'ssm';
  }
  return request.transport;
}

/**
 * The node names a request mentions as written (comma lists split), for the audit record of a
 * refusal that happened before its targets were selected.
 */
export function mentionedNodes(request: Pick<PlanRequest, 'selections'>): string[] {
  return (request.selections ?? [])
    .flatMap((selection) => String(selection).split(','))
    .map((value) => value.trim())
    .filter((value) => value !== '');
}

const asText = (value: number | string): string => String(value);

function resolvePolicy(policy: PlanRequestPolicy | undefined): ResolvedPolicy {
  const resolved: ResolvedPolicy = {};
  if (policy === undefined) return resolved;
  if (policy.canary !== undefined)
    resolved.canary = parsePolicyInteger(asText(policy.canary), 'canary', 0, MAX_POLICY_COUNT);
  if (policy.maxFailures !== undefined)
    resolved.maxFailures =
      typeof policy.maxFailures === 'object'
        ? policy.maxFailures
        : parseFailureBudget(asText(policy.maxFailures));
  if (policy.deadline !== undefined)
    resolved.deadlineMs = parseDuration(asText(policy.deadline), 'deadline');
  validateFleetPolicy({ concurrency: 1, ...resolved });
  return resolved;
}

/**
 * Resolves a request: parses its values, reads its parameter and node-list sources, loads the
 * inventory and selects the targets with their transports. Throws INVALID_ARGUMENT,
 * INVALID_PARAMETERS, INVALID_INVENTORY, INVALID_TARGET, UNKNOWN_NODE or NO_TARGETS.
 */
export async function resolvePlanRequest(
  request: PlanRequest,
  options: ResolvePlanRequestOptions,
): Promise<ResolvedPlanRequest> {
  const config = options.config;
  if (typeof request.action !== 'string')
    throw invalidArgument('the request names no action (a string)');
  const transport = requestedTransport(request);
  const nodeLists = request.nodeLists ?? [];
  if (request.paramsSource === '-' && nodeLists.includes('-'))
    throw invalidArgument('--nodes-file - and --params - cannot both read standard input');
  const policy = resolvePolicy(request.policy);
  const input: Omit<PlanInput, 'targets'> = { action: request.action };
  const params =
    request.paramsSource === undefined
      ? request.params
      : { ...request.params, ...readParamsSource(request.paramsSource, options.readStdin) };
  if (params !== undefined) input.params = params;
  if (request.paramArgs !== undefined) input.paramArgs = request.paramArgs.map(String);
  if (request.timeout !== undefined)
    input.timeoutMs =
      typeof request.timeout === 'number'
        ? request.timeout
        : parseDuration(request.timeout, 'timeout');
  if (request.concurrency !== undefined)
    input.concurrency =
      typeof request.concurrency === 'number'
        ? request.concurrency
        : parsePolicyInteger(request.concurrency, 'concurrency', 1, MAX_CONCURRENCY);
  if (request.deployMode !== undefined) input.deployMode = request.deployMode;
  if (request.runAs !== undefined) input.runAs = request.runAs;
  if (request.fetchArtifacts !== undefined) input.fetchArtifacts = request.fetchArtifacts;
  if (request.dryRun !== undefined) input.dryRun = request.dryRun;
  if (request.confirmDangerous !== undefined) input.confirmDangerous = request.confirmDangerous;

  const source = request.inventory ?? config.core.inventory;
  const inventory = typeof source === 'string' ? await loadInventory(source) : source;
  const selections = (request.selections ?? [])
    .map((selection) => String(selection).trim())
    .filter((selection) => selection !== '');
  for (const list of nodeLists) {
    selections.push(
      ...(await readNodeList(list, options.stdin === undefined ? {} : { stdin: options.stdin })),
    );
  }
  const targets =
    selections.length === 0
      ? []
      : selectTargets(selections, {
          ...(inventory === undefined ? {} : { inventory }),
          defaultTransport: config.core.default_transport,
          ...(transport === undefined ? {} : { transport }),
        }).map(({ node, transport: chosen }) => ({ node, transport: chosen }));
  return { input: { ...input, targets }, policy, warnings: [...(inventory?.warnings ?? [])] };
}
