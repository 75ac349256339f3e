/**
 * Loading the alert rules file (YAML, errors located by file, JSON pointer and line:column),
 * resolving receiver secrets, and the pure parts of deciding: which rule matches an alert, and
 * the run request that alert's values build.
 *
 * Values from an alert are data. A target is one inventory node named exactly (after the port is
 * dropped), never a selector: a label value such as `*`, `@all` or `tag:x` is refused, not
 * expanded, and a name the inventory does not hold is refused, never guessed. Parameters travel
 * in the JSON request and are checked by the manifest's schema when the run is planned, exactly
 * like a parameter of `POST /v1/runs`; nothing from an alert is ever placed in a command line.
 */
import { readFileSync } from 'node:fs';
import { parseLocatedYaml, yamlValue } from '@rune/core';
import { listViolations, RuneError } from '@rune/protocol';
import { parseLongDuration } from '../config/long-duration.js';
import type { LaunchRequest } from '../runs/launcher.js';
import type { IfBusy } from '../runs/run-manager.js';
import {
  type AlertRulesFile,
  AlertRulesFileSchema,
  type ExtractSpec,
  type MatcherSpec,
  type ReceiverSpec,
  type RuleSpec,
} from './rules-schema.js';

const source = { component: 'rune-server' } as const;

/** One alert, whatever receiver brought it. */
export interface NormalizedAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** The source's identity of the alert (Alertmanager fingerprint, PagerDuty incident id). */
  fingerprint: string;
  /** ISO time the alert started, when the source says. */
  startsAt?: string;
}

/** A receiver with its secrets read. */
export type ResolvedReceiver =
  | {
      name: string;
      kind: 'alertmanager';
      principal: string;
      bearerToken?: string;
      basicAuth?: { username: string; password: string };
    }
  | { name: string; kind: 'pagerduty'; principal: string; secrets: string[] }
  | { name: string; kind: 'generic'; principal: string; secrets: string[]; replayWindowMs: number };

/** A rule with its matchers compiled. */
export interface CompiledRule {
  spec: RuleSpec;
  labels: Array<[string, (value: string | undefined) => boolean]>;
  annotations: Array<[string, (value: string | undefined) => boolean]>;
  throttle: ThrottleSettings;
}

/** Throttling of a rule, durations in ms. */
export interface ThrottleSettings {
  groupBy: 'fingerprint' | string[];
  onceWithinMs?: number;
  onceAfterMs?: number;
  accumulateWithinMs?: number;
  threshold?: number;
}

/** The storm breaker. */
export interface StormSettings {
  maxRuns: number;
  windowMs: number;
  holdExpiresMs: number;
}

/** A notifier with its URL read. */
export interface ResolvedNotifier {
  name: string;
  kind: 'slack' | 'webhook';
  url: string;
  outcomes: string[];
}

/** The loaded rules file. */
export interface AlertRules {
  file: string;
  publicUrl?: string;
  receivers: Map<string, ResolvedReceiver>;
  rules: CompiledRule[];
  storm: StormSettings;
  notifiers: ResolvedNotifier[];
}

/** What an alert asks to run. */
export interface AlertRunRequest {
  /** The run request; a workflow rule's says `workflow:<name>` with the inputs as params. */
  request: LaunchRequest;
  node: string;
  ifBusy: IfBusy;
  /** Set for a rule with a `workflow:` target. */
  workflow?: AlertWorkflowRequest;
}

/** The workflow run a rule with a `workflow:` target asks for. */
export interface AlertWorkflowRequest {
  name: string;
  /** The inputs from the rule (the node is added by `nodeInput`). */
  inputs: Record<string, unknown>;
  /** The input that receives the node. */
  nodeInput: string;
  confirm: boolean;
  dryRun: boolean;
}

const DEFAULT_GROUP_BY = ['alertname', 'instance'];
const DEFAULT_OUTCOMES = ['ran', 'held', 'refused'];
/** An inventory node name as a target may name it: never a selector (`*`, `@group`, `tag:`). */
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const MAX_VALUE_LENGTH = 4096;

interface Location {
  line: number;
  column: number;
}

const rulesError = (
  file: string,
  pointer: string,
  message: string,
  at?: Location,
  details: Record<string, unknown> = {},
): RuneError =>
  new RuneError(
    'INVALID_ALERT_RULES',
    `${file}${at === undefined ? '' : `:${at.line}:${at.column}`}: ${pointer === '' ? '' : `${pointer}: `}${message}`,
    { source, details: { file, pointer, ...(at ?? {}), ...details } },
  );

/** Options of {@link parseAlertRules}. */
export interface AlertRulesOptions {
  /** false: leave secrets unread (offline tools: `rune rules test`, `rune rules list`). */
  readSecrets?: boolean;
}

/** Reads a secret reference (`env:NAME`, `file:/path`). */
function readSecretRef(
  reference: string,
  env: Readonly<Record<string, string | undefined>>,
  file: string,
  pointer: string,
): string {
  if (reference.startsWith('env:')) {
    const value = env[reference.slice(4)];
    if (value === undefined || value === '') {
      throw rulesError(file, pointer, `the environment variable ${reference.slice(4)} is not set`);
    }
    return value;
  }
  let text: string;
  try {
    text = readFileSync(reference.slice(5), 'utf8');
  } catch (error) {
    throw rulesError(file, pointer, `cannot read ${reference.slice(5)}`, undefined, {
      reason: (error as NodeJS.ErrnoException).code ?? 'unreadable',
    });
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw rulesError(file, pointer, `${reference.slice(5)} is empty`);
  return value;
}

function compileRegex(text: string, file: string, pointer: string): RegExp {
  try {
    return new RegExp(`^(?:${text})$`, 'u');
  } catch (error) {
    throw rulesError(
      file,
      pointer,
      `is not a valid regular expression (${(error as Error).message})`,
    );
  }
}

function compileMatcher(
  matcher: MatcherSpec,
  file: string,
  pointer: string,
): (value: string | undefined) => boolean {
  if (typeof matcher === 'string') return (value) => value === matcher;
  if ('equals' in matcher) return (value) => value === matcher.equals;
  if ('present' in matcher) return (value) => (value !== undefined) === matcher.present;
  const regex = compileRegex(matcher.regex, file, pointer);
  return (value) => value !== undefined && regex.test(value);
}

function duration(text: string | undefined, file: string, pointer: string): number | undefined {
  if (text === undefined) return undefined;
  try {
    return parseLongDuration(text, pointer, 'INVALID_ALERT_RULES');
  } catch (error) {
    throw rulesError(file, pointer, RuneError.from(error).message);
  }
}

function checkExtract(spec: ExtractSpec, file: string, pointer: string): void {
  if ((spec.from_label === undefined) === (spec.from_annotation === undefined)) {
    throw rulesError(file, pointer, 'needs exactly one of from_label and from_annotation');
  }
  if (spec.pattern !== undefined) {
    const regex = compileRegex(spec.pattern, file, `${pointer}/pattern`);
    if (new RegExp(`${regex.source}|`, 'u').exec('')?.length !== 2) {
      throw rulesError(file, `${pointer}/pattern`, 'needs exactly one capture group');
    }
  }
}

/**
 * Parses and checks a rules file's text. Throws INVALID_ALERT_RULES naming the file, the JSON
 * pointer and the line:column of the first problem.
 */
export function parseAlertRules(
  text: string,
  file: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
  options: AlertRulesOptions = {},
): AlertRules {
  const readSecret =
    options.readSecrets === false
      ? () => ''
      : (reference: string, e: typeof env, f: string, pointer: string) =>
          readSecretRef(reference, e, f, pointer);
  const { document, syntaxError: syntax, locate } = parseLocatedYaml(text);
  if (syntax !== undefined) {
    throw rulesError(file, '', `is not valid YAML: ${syntax.message}`, syntax.location);
  }
  let value: unknown;
  try {
    value = yamlValue(document);
  } catch (error) {
    throw rulesError(file, '', `cannot be read: ${(error as Error).message}`);
  }
  const violations = listViolations(AlertRulesFileSchema, value);
  const first = violations[0];
  if (first !== undefined) {
    const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : '';
    throw rulesError(file, first.pointer, `${first.message}${more}`, locate(first.pointer), {
      violations: violations.map((violation) => ({ ...violation, ...locate(violation.pointer) })),
    });
  }
  const parsed = value as AlertRulesFile;
  const fail = (pointer: string, message: string): never => {
    throw rulesError(file, pointer, message, locate(pointer));
  };

  const receivers = new Map<string, ResolvedReceiver>();
  for (const [name, spec] of Object.entries(parsed.receivers) as Array<[string, ReceiverSpec]>) {
    const at = `/receivers/${name}`;
    const principal = spec.principal ?? `alert:${name}`;
    if (spec.kind === 'alertmanager') {
      if (spec.bearer_token === undefined && spec.basic_auth === undefined) {
        fail(
          at,
          'an alertmanager receiver needs bearer_token or basic_auth (Alertmanager http_config)',
        );
      }
      receivers.set(name, {
        name,
        kind: 'alertmanager',
        principal,
        ...(spec.bearer_token === undefined
          ? {}
          : { bearerToken: readSecret(spec.bearer_token, env, file, `${at}/bearer_token`) }),
        ...(spec.basic_auth === undefined
          ? {}
          : {
              basicAuth: {
                username: spec.basic_auth.username,
                password: readSecret(
                  spec.basic_auth.password,
                  env,
                  file,
                  `${at}/basic_auth/password`,
                ),
              },
            }),
      });
    } else {
      const secrets = spec.secrets.map((ref, index) =>
        readSecret(ref, env, file, `${at}/secrets/${index}`),
      );
      receivers.set(
        name,
        spec.kind === 'pagerduty'
          ? { name, kind: 'pagerduty', principal, secrets }
          : {
              name,
              kind: 'generic',
              principal,
              secrets,
              replayWindowMs:
                duration(spec.replay_window ?? '5m', file, `${at}/replay_window`) ?? 300_000,
            },
      );
    }
  }

  const names = new Set<string>();
  const rules = parsed.rules.map((spec, index): CompiledRule => {
    const at = `/rules/${index}`;
    if (names.has(spec.name)) fail(`${at}/name`, `the rule name "${spec.name}" is used twice`);
    names.add(spec.name);
    for (const [position, receiver] of (spec.receivers ?? []).entries()) {
      if (!receivers.has(receiver))
        fail(`${at}/receivers/${position}`, `no receiver "${receiver}"`);
    }
    if ((spec.action === undefined) === (spec.workflow === undefined)) {
      fail(at, 'a rule names exactly one of action and workflow');
    }
    if (spec.workflow === undefined) {
      if (spec.inputs !== undefined)
        fail(`${at}/inputs`, 'inputs go with workflow (params with action)');
      if (spec.node_input !== undefined) fail(`${at}/node_input`, 'node_input goes with workflow');
    } else {
      if (spec.params !== undefined)
        fail(`${at}/params`, 'a workflow rule gives inputs, not params');
      for (const option of ['timeout', 'deadline', 'if_busy'] as const) {
        if (spec.options?.[option] !== undefined) {
          fail(
            `${at}/options/${option}`,
            `${option} is a run option: a workflow's steps set their own (only confirm and dry_run apply to a workflow)`,
          );
        }
      }
      for (const [key, input] of Object.entries(spec.inputs ?? {})) {
        if (isExtract(input)) checkExtract(input, file, `${at}/inputs/${key}`);
      }
    }
    if (spec.target !== undefined) checkExtract(spec.target, file, `${at}/target`);
    for (const [key, param] of Object.entries(spec.params ?? {})) {
      if (isExtract(param)) checkExtract(param, file, `${at}/params/${key}`);
    }
    const throttle = spec.throttle ?? {};
    if ((throttle.accumulate_within === undefined) !== (throttle.threshold === undefined)) {
      fail(`${at}/throttle`, 'accumulate_within and threshold go together');
    }
    return {
      spec,
      labels: Object.entries(spec.match.labels ?? {}).map(([name, matcher]) => [
        name,
        compileMatcher(matcher, file, `${at}/match/labels/${name}`),
      ]),
      annotations: Object.entries(spec.match.annotations ?? {}).map(([name, matcher]) => [
        name,
        compileMatcher(matcher, file, `${at}/match/annotations/${name}`),
      ]),
      throttle: {
        groupBy: throttle.group_by ?? DEFAULT_GROUP_BY,
        ...optionalMs(
          'onceWithinMs',
          duration(throttle.once_within, file, `${at}/throttle/once_within`),
        ),
        ...optionalMs(
          'onceAfterMs',
          duration(throttle.once_after, file, `${at}/throttle/once_after`),
        ),
        ...optionalMs(
          'accumulateWithinMs',
          duration(throttle.accumulate_within, file, `${at}/throttle/accumulate_within`),
        ),
        ...(throttle.threshold === undefined ? {} : { threshold: throttle.threshold }),
      },
    };
  });

  const notifiers = (parsed.notifiers ?? []).map((spec, index) => ({
    name: spec.name,
    kind: spec.kind,
    url: /^https?:\/\//.test(spec.url)
      ? spec.url
      : readSecret(spec.url, env, file, `/notifiers/${index}/url`),
    outcomes: spec.outcomes ?? DEFAULT_OUTCOMES,
  }));
  return {
    file,
    ...(parsed.public_url === undefined
      ? {}
      : { publicUrl: parsed.public_url.replace(/\/+$/, '') }),
    receivers,
    rules,
    storm: {
      maxRuns: parsed.storm?.max_runs ?? 20,
      windowMs: duration(parsed.storm?.window ?? '10m', file, '/storm/window') ?? 600_000,
      holdExpiresMs:
        duration(parsed.storm?.hold_expires ?? '1h', file, '/storm/hold_expires') ?? 3_600_000,
    },
    notifiers,
  };
}

function optionalMs<K extends string>(
  key: K,
  value: number | undefined,
): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}

/** Reads and parses the rules file at `path`. Throws INVALID_ALERT_RULES. */
export function loadAlertRules(
  path: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
  options: AlertRulesOptions = {},
): AlertRules {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new RuneError('INVALID_ALERT_RULES', `cannot read the alert rules file ${path}`, {
      source,
      cause: error,
      details: { file: path, reason: (error as NodeJS.ErrnoException).code ?? 'unreadable' },
    });
  }
  return parseAlertRules(text, path, env, options);
}

function isExtract(value: unknown): value is ExtractSpec {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    ('from_label' in value || 'from_annotation' in value)
  );
}

/** The first rule that matches `alert` from `receiver`, or undefined. */
export function matchRule(
  rules: readonly CompiledRule[],
  alert: NormalizedAlert,
  receiver: string,
): CompiledRule | undefined {
  return rules.find((rule) => {
    const status = rule.spec.match.status ?? 'firing';
    if (status !== 'any' && status !== alert.status) return false;
    if (rule.spec.receivers !== undefined && !rule.spec.receivers.includes(receiver)) return false;
    return (
      rule.labels.every(([name, test]) => test(own(alert.labels, name))) &&
      rule.annotations.every(([name, test]) => test(own(alert.annotations, name)))
    );
  });
}

const own = (record: Record<string, string>, key: string): string | undefined =>
  Object.hasOwn(record, key) ? record[key] : undefined;

/** Drops a trailing `:port` (`node1:9100` -> `node1`, `[::1]:9100` -> `::1`). */
export function stripPort(value: string): string {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(value);
  if (v6 !== null) return v6[1] as string;
  const match = /^([^:]+):\d+$/.exec(value);
  return match === null ? value : (match[1] as string);
}

/** The value `spec` takes from `alert`, as text, or a RuneError naming what is missing. */
function extractText(
  spec: ExtractSpec,
  alert: NormalizedAlert,
  what: string,
  stripByDefault: boolean,
): string {
  const name = (spec.from_label ?? spec.from_annotation) as string;
  const where = spec.from_label !== undefined ? 'label' : 'annotation';
  const raw = own(spec.from_label !== undefined ? alert.labels : alert.annotations, name);
  if (raw === undefined) {
    throw new RuneError('INVALID_PARAMETERS', `${what}: the alert has no ${where} "${name}"`, {
      source,
      details: { [where]: name },
    });
  }
  if (raw.length > MAX_VALUE_LENGTH) {
    throw new RuneError('INVALID_PARAMETERS', `${what}: the ${where} "${name}" is too long`, {
      source,
      details: { [where]: name, length: raw.length },
    });
  }
  let value = raw;
  if (spec.pattern !== undefined) {
    const captured = new RegExp(`^(?:${spec.pattern})$`, 'u').exec(value)?.[1];
    if (captured === undefined) {
      throw new RuneError(
        'INVALID_PARAMETERS',
        `${what}: the ${where} "${name}" does not match the rule's pattern`,
        { source, details: { [where]: name } },
      );
    }
    value = captured;
  }
  return (spec.strip_port ?? stripByDefault) ? stripPort(value) : value;
}

/** Converts label text to the JSON type the rule asks for, strictly. */
function convert(text: string, as: ExtractSpec['as'], what: string): unknown {
  const wrong = (type: string): RuneError =>
    new RuneError('INVALID_PARAMETERS', `${what}: "${text.slice(0, 100)}" is not ${type}`, {
      source,
      details: { expected: type },
    });
  switch (as) {
    case undefined:
    case 'string':
      return text;
    case 'integer': {
      if (!/^-?\d{1,15}$/.test(text)) throw wrong('an integer');
      return Number(text);
    }
    case 'number': {
      if (!/^-?\d{1,15}(\.\d{1,15})?$/.test(text)) throw wrong('a number');
      return Number(text);
    }
    case 'boolean': {
      if (text !== 'true' && text !== 'false') throw wrong('true or false');
      return text === 'true';
    }
  }
}

/**
 * The run request `rule` builds from `alert`. `inventory` is the set of node names; a target
 * outside it is refused with UNKNOWN_NODE. Throws INVALID_PARAMETERS when a value is missing or
 * of the wrong form (the manifest's schema checks types again when the run is planned).
 */
export function buildRunRequest(
  rule: CompiledRule,
  alert: NormalizedAlert,
  inventory: ReadonlySet<string>,
): AlertRunRequest {
  const node = extractText(
    rule.spec.target ?? { from_label: 'instance' },
    alert,
    `rule ${rule.spec.name}: target`,
    true,
  );
  if (!NODE_NAME.test(node) || !inventory.has(node)) {
    throw new RuneError(
      'UNKNOWN_NODE',
      `rule ${rule.spec.name}: the alert names the node "${node.slice(0, 100)}", which is not in the inventory; alerts only reach inventory nodes named exactly`,
      { source, details: { node: node.slice(0, 253), rule: rule.spec.name } },
    );
  }
  const workflow = rule.spec.workflow;
  const params: Record<string, unknown> = {};
  const kind = workflow === undefined ? 'parameter' : 'input';
  for (const [key, value] of Object.entries(
    (workflow === undefined ? rule.spec.params : rule.spec.inputs) ?? {},
  )) {
    params[key] = isExtract(value)
      ? convert(
          extractText(value, alert, `rule ${rule.spec.name}: ${kind} ${key}`, false),
          value.as,
          `rule ${rule.spec.name}: ${kind} ${key}`,
        )
      : value;
  }
  const options = rule.spec.options ?? {};
  if (workflow !== undefined) {
    const nodeInput = rule.spec.node_input ?? 'nodes';
    return {
      request: {
        action: `workflow:${workflow}`,
        targets: [node],
        params: { ...params, [nodeInput]: node },
        ...(options.confirm === undefined ? {} : { options: { confirm: options.confirm } }),
      },
      node,
      ifBusy: 'queue',
      workflow: {
        name: workflow,
        inputs: params,
        nodeInput,
        confirm: options.confirm === true,
        dryRun: options.dry_run === true,
      },
    };
  }
  const runOptions: NonNullable<LaunchRequest['options']> = {};
  if (options.dry_run !== undefined) runOptions.dry_run = options.dry_run;
  if (options.timeout !== undefined) runOptions.timeout = options.timeout;
  if (options.deadline !== undefined) runOptions.deadline = options.deadline;
  if (options.confirm !== undefined) runOptions.confirm = options.confirm;
  return {
    request: {
      action: rule.spec.action as string,
      targets: [node],
      ...(Object.keys(params).length === 0 ? {} : { params }),
      ...(Object.keys(runOptions).length === 0 ? {} : { options: runOptions }),
    },
    node,
    ifBusy: options.if_busy ?? 'queue',
  };
}

/** The throttling group of `alert` under `rule`. */
export function groupKey(rule: CompiledRule, alert: NormalizedAlert): string {
  const parts =
    rule.throttle.groupBy === 'fingerprint'
      ? [`fingerprint=${alert.fingerprint}`]
      : rule.throttle.groupBy.map((name) => `${name}=${own(alert.labels, name) ?? ''}`);
  return JSON.stringify([rule.spec.name, ...parts]);
}
