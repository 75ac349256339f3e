/**
 * Loading a policy: the YAML file (parsed with the `yaml` package so every error has a line and
 * column), the schema (closed objects: unknown keys are errors), then the rules no schema can
 * say — unique rule ids, known roles in bindings, node selections in core's selector grammar
 * (core's own parser, never a second one), compilable patterns, readable durations, and deny
 * rules without allow-only keys. Any problem is one INVALID_POLICY naming file, line, column and
 * key; nothing half-loaded is ever used.
 *
 * Without a policy file the three roles of the first server version stay, as built-in roles:
 * `viewer` (view), `operator` (view, dry-run, run, cancel) and `admin` (every verb), each on
 * every action and node, so existing tokens keep their meaning.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { jsonPointerSegments, parseLocatedYaml, parseSelection, yamlValue } from '@rune/core';
import { listViolations, RuneError } from '@rune/protocol';
import {
  type ApprovalSettings,
  type CompiledConstraint,
  type CompiledPolicy,
  type CompiledRule,
  longDurationMs,
} from './policy.js';
import { type PolicyDocument, PolicyDocumentSchema, type PolicyVerb } from './policy-schema.js';

const DAY_MS = 86_400_000;
const MAX_POLICY_BYTES = 4 * 1024 * 1024;

/** The built-in roles (no policy file). */
export const BUILTIN_ROLES = ['viewer', 'operator', 'admin'] as const;

const DEFAULT_APPROVALS: ApprovalSettings = {
  quorum: 1,
  expiresMs: DAY_MS,
  dangerous: true,
  webhook: undefined,
  linkBase: undefined,
};

function builtinRule(role: string, verbs: (PolicyVerb | '*')[]): CompiledRule {
  return {
    id: `builtin-${role}`,
    role,
    effect: 'allow',
    verbs: new Set(verbs),
    actions: ['*'],
    nodes: undefined,
    nodesText: ['*'],
    params: {},
    requireApproval: false,
    quorum: undefined,
  };
}

/**
 * The policy without a file. Approvals of dangerous actions are off here: the first server
 * version asked for `confirm: true` instead, and that keeps working.
 */
export const BUILTIN_POLICY: CompiledPolicy = {
  source: 'builtin',
  digest: 'builtin',
  roles: new Map([
    ['viewer', [builtinRule('viewer', ['view'])]],
    ['operator', [builtinRule('operator', ['view', 'dry-run', 'run', 'cancel'])]],
    ['admin', [builtinRule('admin', ['*'])]],
  ]),
  bindings: new Map(),
  approvals: { ...DEFAULT_APPROVALS, dangerous: false },
};

interface Location {
  line: number;
  column: number;
}

function policyError(
  file: string,
  pointer: string,
  message: string,
  location: Location | undefined,
  details: Record<string, unknown> = {},
  cause?: unknown,
): RuneError {
  const at = location === undefined ? '' : `:${location.line}:${location.column}`;
  const key = pointer === '' ? '' : ` (${pointer.replace(/^\//, '').replaceAll('/', '.')})`;
  return new RuneError('INVALID_POLICY', `policy ${file}${at}${key}: ${message}`, {
    details: {
      file,
      pointer,
      key: pointer.replace(/^\//, '').replaceAll('/', '.'),
      ...(location ?? {}),
      ...details,
    },
    source: { component: 'rune-server' },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Parses, validates and compiles policy text. Throws INVALID_POLICY. */
export function parsePolicy(text: string, file = '<policy>'): CompiledPolicy {
  const { document, syntaxError: syntax, locate } = parseLocatedYaml(text);
  if (syntax !== undefined) {
    throw policyError(file, '', `is not valid YAML: ${syntax.message}`, syntax.location, {
      reason: syntax.code,
    });
  }
  let value: unknown;
  try {
    value = yamlValue(document);
  } catch (error) {
    throw policyError(
      file,
      '',
      `cannot be read: ${(error as Error).message}`,
      undefined,
      {},
      error,
    );
  }
  const violations = listViolations(PolicyDocumentSchema, value);
  const first = violations[0];
  if (first !== undefined) {
    // For an unknown key the pointer names the key itself; say so plainly.
    const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : '';
    const message =
      first.message === 'Unexpected property'
        ? `unknown key ${jsonPointerSegments(first.pointer).at(-1) ?? ''}`
        : first.message;
    throw policyError(file, first.pointer, `${message}${more}`, locate(first.pointer), {
      violations: violations.map((violation) => ({ ...violation, ...locate(violation.pointer) })),
    });
  }
  const parsed = value as PolicyDocument;
  const fail = (pointer: string, message: string, details: Record<string, unknown> = {}) =>
    policyError(file, pointer, message, locate(pointer), details);

  const ids = new Set<string>();
  const roles = new Map<string, CompiledRule[]>();
  const approvalsDoc = parsed.approvals ?? {};
  const expiresMs =
    approvalsDoc.expires === undefined
      ? DEFAULT_APPROVALS.expiresMs
      : longDurationMs(approvalsDoc.expires);
  if (expiresMs === undefined || expiresMs < 1) {
    throw fail('/approvals/expires', 'must be a duration such as 30m, 4h or 2d');
  }
  for (const [roleName, role] of Object.entries(parsed.roles)) {
    const compiled: CompiledRule[] = [];
    role.rules.forEach((rule, index) => {
      const at = `/roles/${roleName}/rules/${index}`;
      if (ids.has(rule.id)) throw fail(`${at}/id`, `rule id ${rule.id} is used twice`);
      ids.add(rule.id);
      const effect = rule.effect ?? 'allow';
      if (effect === 'deny') {
        for (const key of ['params', 'require_approval', 'quorum'] as const) {
          if (rule[key] !== undefined) {
            throw fail(
              `${at}/${key}`,
              `a deny rule cannot have ${key} (it denies whatever the parameters)`,
            );
          }
        }
      }
      const terms = rule.nodes.flatMap((selection, position) => {
        try {
          return parseSelection(selection);
        } catch (error) {
          throw policyError(
            file,
            `${at}/nodes/${position}`,
            `bad node selection: ${RuneError.from(error).message}`,
            locate(`${at}/nodes/${position}`),
            {},
            error,
          );
        }
      });
      const params: Record<string, CompiledConstraint> = {};
      for (const [name, constraint] of Object.entries(rule.params ?? {})) {
        const compiledConstraint: CompiledConstraint = { ...constraint };
        if (constraint.pattern !== undefined) {
          try {
            compiledConstraint.regex = new RegExp(constraint.pattern, 'u');
          } catch {
            throw fail(`${at}/params/${name}/pattern`, 'is not a valid regular expression');
          }
        }
        if (constraint.max_age !== undefined) {
          const ms = longDurationMs(constraint.max_age);
          if (ms === undefined || ms < 1) {
            throw fail(`${at}/params/${name}/max_age`, 'must be a duration such as 24h or 7d');
          }
          compiledConstraint.maxAgeMs = ms;
        }
        params[name] = compiledConstraint;
      }
      compiled.push({
        id: rule.id,
        role: roleName,
        effect,
        verbs: new Set(rule.verbs),
        actions: rule.actions,
        nodes: terms,
        nodesText: rule.nodes,
        params,
        requireApproval: rule.require_approval === true,
        quorum: rule.quorum,
      });
    });
    roles.set(roleName, compiled);
  }
  const bindings = new Map<string, string[]>();
  (parsed.bindings ?? []).forEach((binding, index) => {
    binding.roles.forEach((role, position) => {
      if (!roles.has(role)) {
        throw fail(`/bindings/${index}/roles/${position}`, `unknown role ${role}`, {
          roles: [...roles.keys()],
        });
      }
    });
    for (const subject of binding.subjects) {
      bindings.set(subject, [...new Set([...(bindings.get(subject) ?? []), ...binding.roles])]);
    }
  });
  return {
    source: file,
    digest: createHash('sha256').update(text).digest('hex'),
    roles,
    bindings,
    approvals: {
      quorum: approvalsDoc.quorum ?? DEFAULT_APPROVALS.quorum,
      expiresMs,
      dangerous: approvalsDoc.dangerous ?? true,
      webhook: approvalsDoc.webhook,
      linkBase: approvalsDoc.link_base,
    },
  };
}

/** Reads and compiles a policy file. Throws INVALID_POLICY. */
export function loadPolicyFile(path: string): CompiledPolicy {
  let text: string;
  try {
    const buffer = readFileSync(path);
    if (buffer.length > MAX_POLICY_BYTES) {
      throw policyError(path, '', `is larger than ${MAX_POLICY_BYTES} bytes`, undefined);
    }
    text = buffer.toString('utf8');
  } catch (error) {
    if (error instanceof RuneError) throw error;
    throw policyError(
      path,
      '',
      `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      undefined,
      {},
      error,
    );
  }
  return parsePolicy(text, path);
}
