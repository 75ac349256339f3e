/**
 * Offline decisions for `rune policy check` and `rune policy test`: the policy file and the
 * inventory are loaded as the server loads them, the request is planned by core exactly as
 * `RunManager.submit()` plans it (selectors resolved, parameters typed and defaulted), and the
 * one decision function decides. Nothing runs and nothing is written to the audit log (a check
 * is not a request): the facade gets an audit sink that keeps nothing.
 */
import { type AuditSink, createRune, type LoadedConfig, loadInventory } from '@rune/core';
import { RuneError } from '@rune/protocol';
import { parse as parseYaml } from 'yaml';
import { serverSection } from '../config/server-config-module.js';
import { loadServerPolicy } from './enforcer.js';
import { type CompiledPolicy, decide, type PolicyDecision, type PolicySubject } from './policy.js';
import { POLICY_VERBS, type PolicyVerb } from './policy-schema.js';

/** One offline question. */
export interface OfflineQuestion {
  /** `token:ci`, `user:alice`, `service:alerts`; a bare name means `user:<name>`. */
  as: string;
  groups?: readonly string[];
  /** Roles carried directly (a token's roles). */
  roles?: readonly string[];
  verb: PolicyVerb;
  action?: string;
  /** Node selections in the CLI grammar. */
  nodes?: readonly string[];
  params?: Readonly<Record<string, unknown>>;
  /** `key=value` strings, coerced like `rune run --param`. */
  paramArgs?: readonly string[];
}

/** The answer: the decision, the nodes the selection resolved to, and whether approval is needed. */
export interface OfflineAnswer {
  decision: PolicyDecision;
  nodes: string[];
  /** `allow`, `deny` or `approval` (allowed, but held for approvals). */
  outcome: 'allow' | 'deny' | 'approval';
  approvals: number;
}

/** An offline checker bound to one configuration and policy. */
export interface OfflineChecker {
  readonly policy: CompiledPolicy;
  check(question: OfflineQuestion): Promise<OfflineAnswer>;
  close(): Promise<void>;
}

const NO_AUDIT: AuditSink = {
  append: async () => {
    throw new RuneError('INTERNAL_ERROR', 'an offline policy check writes no audit record');
  },
};

/** The subject of `--as`, `--group` and `--role`. */
export function offlineSubject(
  question: Pick<OfflineQuestion, 'as' | 'groups' | 'roles'>,
): PolicySubject {
  const principal = /^(token|user|group|service):/.test(question.as)
    ? question.as
    : `user:${question.as}`;
  return {
    principal,
    subjects: [principal, ...(question.groups ?? []).map((group) => `group:${group}`)],
    roles: question.roles ?? [],
  };
}

/** Creates a checker. Throws INVALID_POLICY, INVALID_CONFIG. */
export function createOfflineChecker(options: {
  config: LoadedConfig;
  env: Readonly<Record<string, string | undefined>>;
  /** A policy file; default `[server] policy` (then the built-in roles without one). */
  policyPath?: string;
}): OfflineChecker {
  const policy = loadServerPolicy(options.policyPath ?? serverSection(options.config).policy);
  const rune = createRune({ config: options.config, env: options.env, auditSink: NO_AUDIT });
  const inventoryPath = options.config.config.core.inventory;
  return {
    policy,
    async check(question) {
      if (!(POLICY_VERBS as readonly string[]).includes(question.verb)) {
        throw new RuneError('INVALID_ARGUMENT', `--verb must be one of ${POLICY_VERBS.join(', ')}`);
      }
      const subject = offlineSubject(question);
      const inventory =
        inventoryPath === undefined ? undefined : await loadInventory(inventoryPath);
      if (question.action === undefined || question.verb === 'admin') {
        const decision = decide(policy, subject, { verb: question.verb }, { inventory });
        return { decision, nodes: [], outcome: decision.allowed ? 'allow' : 'deny', approvals: 0 };
      }
      const plan = await rune.plan({
        action: question.action,
        selections: question.nodes ?? [],
        params: question.params ?? {},
        ...(question.paramArgs === undefined ? {} : { paramArgs: question.paramArgs }),
        dryRun: question.verb === 'dry-run',
        confirmDangerous: true,
      });
      const manifest = rune.registry().resolve(plan.action).manifest;
      const nodes = plan.nodes.map((node) => node.target.name);
      const decision = decide(
        policy,
        subject,
        {
          verb: question.verb,
          action: plan.action,
          tags: manifest.tags,
          nodes,
          params: plan.parameters,
        },
        { inventory },
      );
      const dangerous = question.verb === 'run' && policy.approvals.dangerous && manifest.dangerous;
      const approvals = Math.max(decision.quorum, dangerous ? policy.approvals.quorum : 0);
      return {
        decision,
        nodes,
        outcome: !decision.allowed
          ? 'deny'
          : approvals > 0 && question.verb === 'run'
            ? 'approval'
            : 'allow',
        approvals: question.verb === 'run' ? approvals : 0,
      };
    },
    close: () => rune.close(),
  };
}

/** One case of a `rune policy test` table. */
export interface PolicyTestCase extends OfflineQuestion {
  name: string;
  expect: 'allow' | 'deny' | 'approval';
  /** The rule that must decide (optional). */
  rule?: string;
}

/** The result of one case. */
export interface PolicyTestResult {
  name: string;
  passed: boolean;
  expected: string;
  actual: string;
  rule: string;
  reason: string;
}

const CASE_KEYS = new Set([
  'name',
  'as',
  'groups',
  'roles',
  'verb',
  'action',
  'nodes',
  'params',
  'expect',
  'rule',
]);

/** Parses a cases file (`cases:` list). Throws INVALID_ARGUMENT naming the case and key. */
export function parsePolicyCases(
  text: string,
  file: string,
): { policy?: string; cases: PolicyTestCase[] } {
  let document: unknown;
  try {
    document = parseYaml(text, { uniqueKeys: true });
  } catch (error) {
    throw new RuneError(
      'INVALID_ARGUMENT',
      `${file}: not valid YAML: ${(error as Error).message.split('\n')[0]}`,
    );
  }
  const root = document as { policy?: unknown; cases?: unknown } | null;
  if (root === null || typeof root !== 'object' || !Array.isArray(root.cases)) {
    throw new RuneError('INVALID_ARGUMENT', `${file}: must be a mapping with a "cases" list`);
  }
  const bad = (index: number, message: string) =>
    new RuneError('INVALID_ARGUMENT', `${file}: cases[${index}]: ${message}`, {
      details: { file, case: index },
    });
  const cases = root.cases.map((entry: unknown, index: number): PolicyTestCase => {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry))
      throw bad(index, 'must be a mapping');
    const item = entry as Record<string, unknown>;
    for (const key of Object.keys(item))
      if (!CASE_KEYS.has(key)) throw bad(index, `unknown key ${key}`);
    if (typeof item.as !== 'string') throw bad(index, '"as" (the subject) is required');
    if (!['allow', 'deny', 'approval'].includes(String(item.expect)))
      throw bad(index, '"expect" must be allow, deny or approval');
    const verb = String(item.verb ?? 'run');
    if (!(POLICY_VERBS as readonly string[]).includes(verb))
      throw bad(index, `"verb" must be one of ${POLICY_VERBS.join(', ')}`);
    const strings = (key: string): string[] | undefined => {
      const value = item[key];
      if (value === undefined) return undefined;
      if (typeof value === 'string') return [value];
      if (Array.isArray(value) && value.every((v) => typeof v === 'string'))
        return value as string[];
      throw bad(index, `"${key}" must be a string or a list of strings`);
    };
    if (
      item.params !== undefined &&
      (item.params === null || typeof item.params !== 'object' || Array.isArray(item.params))
    ) {
      throw bad(index, '"params" must be a mapping');
    }
    const nodes = strings('nodes');
    const groups = strings('groups');
    const roles = strings('roles');
    return {
      name: typeof item.name === 'string' ? item.name : `case ${index + 1}`,
      as: item.as,
      verb: verb as PolicyVerb,
      ...(typeof item.action === 'string' ? { action: item.action } : {}),
      ...(nodes === undefined ? {} : { nodes }),
      ...(groups === undefined ? {} : { groups }),
      ...(roles === undefined ? {} : { roles }),
      ...(item.params === undefined ? {} : { params: item.params as Record<string, unknown> }),
      expect: item.expect as PolicyTestCase['expect'],
      ...(typeof item.rule === 'string' ? { rule: item.rule } : {}),
    };
  });
  return { ...(typeof root.policy === 'string' ? { policy: root.policy } : {}), cases };
}

/** Runs the cases; a case whose request cannot even be planned fails with that error as its result. */
export async function runPolicyCases(
  checker: OfflineChecker,
  cases: readonly PolicyTestCase[],
): Promise<PolicyTestResult[]> {
  const results: PolicyTestResult[] = [];
  for (const testCase of cases) {
    try {
      const answer = await checker.check(testCase);
      const passed =
        answer.outcome === testCase.expect &&
        (testCase.rule === undefined ||
          answer.decision.rule === testCase.rule ||
          answer.decision.rules.includes(testCase.rule));
      results.push({
        name: testCase.name,
        passed,
        expected: `${testCase.expect}${testCase.rule === undefined ? '' : ` (${testCase.rule})`}`,
        actual: `${answer.outcome} (${answer.decision.rule})`,
        rule: answer.decision.rule,
        reason: answer.decision.reason,
      });
    } catch (error) {
      const runeError = RuneError.from(error);
      results.push({
        name: testCase.name,
        passed: false,
        expected: testCase.expect,
        actual: `error ${runeError.code}`,
        rule: '',
        reason: runeError.message,
      });
    }
  }
  return results;
}
