/**
 * The compiled RBAC policy and its one decision function. A decision is made on what planning
 * resolved, never on what the request wrote: the action's canonical name and manifest tags, the
 * node names the selector expanded to, and the typed, effective parameters. So selector tricks
 * (`@all`, `!x`, globs, intersections, `user@host:port`, addresses, case and Unicode look-alikes)
 * cannot widen a grant: whatever they expand to is checked node by node, by exact name, against
 * the nodes each rule's own selections resolve to in the same inventory.
 *
 * Semantics: default deny; a matching deny rule wins over every allow; a request is allowed only
 * when every one of its nodes is covered by an allow rule of the subject whose parameter
 * constraints hold — otherwise it is refused whole and the refusal names the offending nodes.
 */
import {
  durationToMs,
  evaluateSelection,
  type Inventory,
  matchesGlob,
  type SelectionUniverse,
  type SelectorTerm,
} from '@rune/core';
import { LONG_DURATION_SYNTAX } from '../config/long-duration.js';
import type { ParameterConstraint, PolicyVerb } from './policy-schema.js';

/** A rule ready to evaluate. */
export interface CompiledRule {
  id: string;
  role: string;
  effect: 'allow' | 'deny';
  verbs: ReadonlySet<PolicyVerb | '*'>;
  actions: readonly string[];
  /** Parsed selections; undefined = every node (built-in roles only). */
  nodes: readonly SelectorTerm[] | undefined;
  /** The selections as written (for messages). */
  nodesText: readonly string[];
  params: Readonly<Record<string, CompiledConstraint>>;
  requireApproval: boolean;
  quorum: number | undefined;
}

/** A parameter constraint with its regular expression compiled. */
export interface CompiledConstraint extends ParameterConstraint {
  regex?: RegExp;
  maxAgeMs?: number;
}

/** Approval settings with defaults filled. */
export interface ApprovalSettings {
  quorum: number;
  expiresMs: number;
  dangerous: boolean;
  webhook: string | undefined;
  linkBase: string | undefined;
}

/** A policy ready to decide. */
export interface CompiledPolicy {
  /** `builtin` (no policy file: viewer, operator, admin) or the file path. */
  source: string;
  /** sha256 of the file (or `builtin`), recorded with every decision. */
  digest: string;
  roles: ReadonlyMap<string, readonly CompiledRule[]>;
  /** subject -> roles bound to it. */
  bindings: ReadonlyMap<string, readonly string[]>;
  approvals: ApprovalSettings;
}

/** Who asks: the principal's name, the subjects it is known by, and the roles it carries itself. */
export interface PolicySubject {
  /** `token:ci`, `user:alice@example.com`. */
  principal: string;
  /** Every subject string (`token:ci`; `user:alice`, `group:soc`). */
  subjects: readonly string[];
  /** Roles carried directly (a token's roles). */
  roles: readonly string[];
}

/** What is asked for, as planning resolved it. */
export interface AccessRequest {
  verb: PolicyVerb;
  /** Canonical action name; undefined for verbs that are not about one action (admin, listing). */
  action?: string;
  /** Manifest tags of the action. */
  tags?: readonly string[];
  /** Resolved node names; undefined when the verb is not about nodes. */
  nodes?: readonly string[];
  /** Effective typed parameters (checked for run and dry-run only). */
  params?: Readonly<Record<string, unknown>>;
}

/** Why one node was refused. */
export interface NodeRefusal {
  node: string;
  /** The deny rule, or the allow rule whose constraints failed, or `default-deny`. */
  rule: string;
  reason: string;
}

/** A decision. */
export interface PolicyDecision {
  allowed: boolean;
  /** The deciding rule id (`default-deny` when nothing matched). */
  rule: string;
  /** Every allow rule that decided (one per node at most), for the audit record. */
  rules: string[];
  reason: string;
  /** Refused nodes (empty when allowed). */
  offending: NodeRefusal[];
  /** Approvals the allowing rules ask for (0: none). */
  quorum: number;
  /** Roles the subject holds under this policy. */
  roles: string[];
}

/** The rule id of a refusal that no rule decided. */
export const DEFAULT_DENY = 'default-deny';

/** The roles a subject holds: its own, and those bound to any of its subjects. Unknown roles are dropped. */
export function rolesOf(policy: CompiledPolicy, subject: PolicySubject): string[] {
  const roles = new Set<string>();
  for (const role of subject.roles) if (policy.roles.has(role)) roles.add(role);
  for (const name of subject.subjects)
    for (const role of policy.bindings.get(name) ?? []) roles.add(role);
  return [...roles].sort();
}

function actionMatches(rule: CompiledRule, action: string, tags: readonly string[]): boolean {
  return rule.actions.some((pattern) => {
    if (pattern === '*') return true;
    if (pattern.startsWith('tag:')) return tags.includes(pattern.slice(4));
    return /[*?[]/.test(pattern) ? matchesGlob(pattern, action) : pattern === action;
  });
}

/** The inventory as the selector evaluator sees it. */
export function universeOf(inventory: Inventory | undefined): SelectionUniverse {
  return {
    nodes: inventory?.nodes ?? [],
    group: (name) => inventory?.groups.get(name),
  };
}

/** The nodes a rule covers in `universe` (undefined: every node). */
export function ruleNodes(
  rule: CompiledRule,
  universe: SelectionUniverse,
): Set<string> | undefined {
  if (rule.nodes === undefined) return undefined;
  // A name atom that is not an inventory node names an ad-hoc node by its exact text; atoms that
  // match nothing simply cover nothing (a group removed from the inventory narrows the grant).
  const evaluation = evaluateSelection(rule.nodes, universe, { acceptUnknownName: () => true });
  return new Set(evaluation.names);
}

const RELATIVE_SINCE =
  /^-\s*([0-9]{1,9})\s*(s|sec|second|seconds|m|min|minute|minutes|h|hour|hours|d|day|days|w|week|weeks)$/;
const UNIT_MS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
/** Absolute times; read as UTC, then given the widest time-zone slack (14 h) against the caller. */
const ABSOLUTE_SINCE = /^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?$/;
const ZONE_SLACK_MS = 14 * 3_600_000;

/** How far back a journalctl-style start time reaches, in ms; undefined when unreadable. */
export function sinceAgeMs(value: string, now: Date): number | undefined {
  const text = value.trim();
  if (text === 'now' || text === 'today') return text === 'now' ? 0 : 86_400_000;
  if (text === 'yesterday') return 2 * 86_400_000;
  const relative = RELATIVE_SINCE.exec(text);
  if (relative !== null) {
    const unit = (relative[2] ?? 's').startsWith('mi') ? 'm' : (relative[2] ?? 's').charAt(0);
    return Number(relative[1]) * (UNIT_MS[unit] ?? Number.POSITIVE_INFINITY);
  }
  if (ABSOLUTE_SINCE.test(text)) {
    const time = Date.parse(`${text.replace(' ', 'T')}${text.length === 10 ? 'T00:00:00' : ''}Z`);
    if (Number.isNaN(time)) return undefined;
    return Math.max(0, now.getTime() - time + ZONE_SLACK_MS);
  }
  return undefined;
}

/** The first violated constraint of `params`, or undefined when all hold. */
export function constraintViolation(
  constraints: Readonly<Record<string, CompiledConstraint>>,
  params: Readonly<Record<string, unknown>>,
  now: Date,
): string | undefined {
  for (const [name, constraint] of Object.entries(constraints)) {
    const present = Object.hasOwn(params, name) && params[name] !== undefined;
    if (!present) {
      if (constraint.required === false) continue;
      return `parameter ${name} is required by the grant`;
    }
    const value = params[name];
    if (constraint.enum !== undefined && !constraint.enum.some((allowed) => allowed === value)) {
      return `parameter ${name} must be one of ${constraint.enum.map((v) => JSON.stringify(v)).join(', ')}`;
    }
    if (
      constraint.regex !== undefined &&
      (typeof value !== 'string' || !constraint.regex.test(value))
    ) {
      return `parameter ${name} must match ${constraint.pattern}`;
    }
    if (
      constraint.minimum !== undefined &&
      (typeof value !== 'number' || value < constraint.minimum)
    ) {
      return `parameter ${name} must be a number >= ${constraint.minimum}`;
    }
    if (
      constraint.maximum !== undefined &&
      (typeof value !== 'number' || value > constraint.maximum)
    ) {
      return `parameter ${name} must be a number <= ${constraint.maximum}`;
    }
    if (
      constraint.max_items !== undefined &&
      (!Array.isArray(value) || value.length > constraint.max_items)
    ) {
      return `parameter ${name} must be an array of at most ${constraint.max_items} items`;
    }
    if (constraint.maxAgeMs !== undefined) {
      const age = typeof value === 'string' ? sinceAgeMs(value, now) : undefined;
      if (age === undefined || age > constraint.maxAgeMs) {
        return `parameter ${name} must be a start time at most ${constraint.max_age} ago`;
      }
    }
  }
  return undefined;
}

/** Options of {@link decide}. */
export interface DecideOptions {
  inventory?: Inventory | undefined;
  now?: Date;
}

function verbMatches(rule: CompiledRule, verb: PolicyVerb): boolean {
  return rule.verbs.has('*') || rule.verbs.has(verb);
}

/**
 * Decides one request. For `admin`, and for requests without an action (listing routes), the
 * subject needs an allow rule with the verb and no deny rule with it; otherwise every node must
 * be covered as the module comment says.
 */
export function decide(
  policy: CompiledPolicy,
  subject: PolicySubject,
  request: AccessRequest,
  options: DecideOptions = {},
): PolicyDecision {
  const now = options.now ?? new Date();
  const roles = rolesOf(policy, subject);
  const rules = roles.flatMap((role) => policy.roles.get(role) ?? []);
  const tags = request.tags ?? [];
  const applicable = rules.filter(
    (rule) =>
      verbMatches(rule, request.verb) &&
      (request.action === undefined || actionMatches(rule, request.action, tags)),
  );
  const deny = applicable.filter((rule) => rule.effect === 'deny');
  const allow = applicable.filter((rule) => rule.effect === 'allow');
  const base = { roles, quorum: 0 };
  const what = `${request.verb}${request.action === undefined ? '' : ` ${request.action}`}`;

  if (request.verb === 'admin' || request.nodes === undefined) {
    // Not about particular nodes: a deny that covers every node (or is global) wins.
    const denied =
      request.verb === 'admin'
        ? deny[0]
        : deny.find((rule) => rule.nodes === undefined || rule.nodesText.includes('*'));
    if (denied !== undefined) {
      return {
        ...base,
        allowed: false,
        rule: denied.id,
        rules: [],
        reason: `${subject.principal} may not ${what}: denied by rule ${denied.id}`,
        offending: [],
      };
    }
    const granted = allow[0];
    if (granted === undefined) {
      return {
        ...base,
        allowed: false,
        rule: DEFAULT_DENY,
        rules: [],
        reason: `${subject.principal} holds no rule that allows ${what} (roles: ${roles.join(', ') || 'none'})`,
        offending: [],
      };
    }
    return {
      ...base,
      allowed: true,
      rule: granted.id,
      rules: [granted.id],
      reason: `allowed by rule ${granted.id}`,
      offending: [],
    };
  }

  if (request.nodes.length === 0) {
    return {
      ...base,
      allowed: false,
      rule: DEFAULT_DENY,
      rules: [],
      reason: 'no node to decide on',
      offending: [],
    };
  }
  const universe = universeOf(options.inventory);
  const covered = new Map<CompiledRule, Set<string> | undefined>();
  const coverage = (rule: CompiledRule): Set<string> | undefined => {
    if (!covered.has(rule)) covered.set(rule, ruleNodes(rule, universe));
    return covered.get(rule);
  };
  const covers = (rule: CompiledRule, node: string): boolean => {
    const set = coverage(rule);
    return set === undefined || set.has(node);
  };
  const checkParams = request.verb === 'run' || request.verb === 'dry-run';
  const offending: NodeRefusal[] = [];
  const deciding = new Set<CompiledRule>();
  for (const node of request.nodes) {
    const denied = deny.find((rule) => covers(rule, node));
    if (denied !== undefined) {
      offending.push({ node, rule: denied.id, reason: `denied by rule ${denied.id}` });
      continue;
    }
    const candidates = allow.filter((rule) => covers(rule, node));
    if (candidates.length === 0) {
      offending.push({ node, rule: DEFAULT_DENY, reason: 'no rule grants this node' });
      continue;
    }
    const satisfied = checkParams
      ? candidates.filter(
          (rule) => constraintViolation(rule.params, request.params ?? {}, now) === undefined,
        )
      : candidates;
    if (satisfied.length === 0) {
      const first = candidates[0] as CompiledRule;
      offending.push({
        node,
        rule: first.id,
        reason: constraintViolation(first.params, request.params ?? {}, now) ?? 'constraint',
      });
      continue;
    }
    // The most demanding matching rule decides: a rule that asks for approval cannot be
    // sidestepped by a broader grant of the same action on the same node.
    const need = (rule: CompiledRule): number =>
      rule.requireApproval ? (rule.quorum ?? policy.approvals.quorum) : 0;
    const best = [...satisfied].sort((a, b) => need(b) - need(a))[0] as CompiledRule;
    deciding.add(best);
  }
  if (offending.length > 0) {
    const first = offending[0] as NodeRefusal;
    const names = offending.map((entry) => entry.node);
    const listed = `${names.slice(0, 10).join(', ')}${names.length > 10 ? `, … (${names.length} nodes)` : ''}`;
    return {
      ...base,
      allowed: false,
      rule: first.rule,
      rules: [],
      reason: `${subject.principal} may not ${what} on ${listed}: ${first.reason}${first.rule === DEFAULT_DENY ? '' : ` (rule ${first.rule})`}; the request is refused whole`,
      offending,
    };
  }
  const decidingRules = [...deciding];
  const quorum = Math.max(
    0,
    ...decidingRules.map((rule) =>
      rule.requireApproval ? (rule.quorum ?? policy.approvals.quorum) : 0,
    ),
  );
  const ids = decidingRules.map((rule) => rule.id);
  return {
    ...base,
    allowed: true,
    rule: ids[0] ?? DEFAULT_DENY,
    rules: ids,
    reason: `allowed by rule${ids.length > 1 ? 's' : ''} ${ids.join(', ')}${quorum > 0 ? ` (needs ${quorum} approval${quorum > 1 ? 's' : ''})` : ''}`,
    offending: [],
    quorum,
  };
}

/** Milliseconds of a long duration, or undefined. */
export const longDurationMs = (text: string): number | undefined =>
  durationToMs(text, LONG_DURATION_SYNTAX);
