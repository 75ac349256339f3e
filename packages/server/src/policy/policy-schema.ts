/**
 * The RBAC policy document (`rune-policy/v1`), as TypeBox schemas: the one definition from which
 * the loader validates a policy file and `specs/policy-v1.schema.json` is generated. Every
 * object is closed: an unknown key is an error (a misspelt `require_aproval` must never silently
 * drop a safeguard).
 */
import { type Static, Type } from '@sinclair/typebox';

/** The `version` of a v1 policy document. */
export const POLICY_V1 = 'rune-policy/v1';

/** What a grant may allow. `admin` is global (tokens, policy); the others are per action and node. */
export const POLICY_VERBS = ['view', 'dry-run', 'run', 'cancel', 'approve', 'admin'] as const;
/** One verb. */
export type PolicyVerb = (typeof POLICY_VERBS)[number];

/** Role names and rule ids. */
export const POLICY_NAME_PATTERN = '^[a-z0-9][a-z0-9_.-]{0,63}$';
/** `token:<name>`, `user:<subject or e-mail>`, `group:<name>` (OIDC groups claim), `service:<name>` (alert rules, workflows). */
export const SUBJECT_PATTERN = '^(token|user|group|service):[^\\s\\x00-\\x1f]{1,256}$';

const closed = <T extends Parameters<typeof Type.Object>[0]>(properties: T, description: string) =>
  Type.Object(properties, { additionalProperties: false, description });

const Scalar = Type.Union([Type.String(), Type.Number(), Type.Boolean()]);

/** A constraint on one parameter of the actions a rule allows. */
export const ParameterConstraintSchema = closed(
  {
    enum: Type.Optional(
      Type.Array(Scalar, {
        minItems: 1,
        description: 'The only values allowed, compared by JSON type and value ("5" is not 5).',
      }),
    ),
    pattern: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1024,
        description: 'A string value must match this regular expression (anchor it yourself).',
      }),
    ),
    minimum: Type.Optional(Type.Number({ description: 'A number value must be at least this.' })),
    maximum: Type.Optional(Type.Number({ description: 'A number value must be at most this.' })),
    max_items: Type.Optional(
      Type.Integer({ minimum: 0, description: 'An array value holds at most this many items.' }),
    ),
    max_age: Type.Optional(
      Type.String({
        minLength: 2,
        maxLength: 20,
        description:
          'A start time (journalctl --since style: "-2h", "-30min", "today", "2026-11-22 01:00:00") may lie at most this far back (e.g. 24h). Absent or unreadable values violate it.',
      }),
    ),
    required: Type.Optional(
      Type.Boolean({
        description:
          'Whether the parameter must be present (default true: an absent value violates the constraint, because absent often means "unbounded").',
      }),
    ),
  },
  'A parameter constraint. Checked on the effective, typed parameters after planning; a value of the wrong JSON type violates every constraint.',
);

/** One rule of a role. */
export const PolicyRuleSchema = closed(
  {
    id: Type.String({
      pattern: POLICY_NAME_PATTERN,
      description: 'Unique in the policy; named in every decision and audit record.',
    }),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    effect: Type.Optional(
      Type.Union([Type.Literal('allow'), Type.Literal('deny')], {
        description: 'allow (default) or deny. A matching deny wins over every allow.',
      }),
    ),
    verbs: Type.Array(
      Type.Union([...POLICY_VERBS.map((verb) => Type.Literal(verb)), Type.Literal('*')]),
      { minItems: 1, uniqueItems: true, description: 'What the rule allows or denies; * = all.' },
    ),
    actions: Type.Array(
      Type.String({
        minLength: 1,
        maxLength: 200,
        pattern: '^(\\*|tag:[a-z0-9][a-z0-9-]{0,31}|[a-z0-9*?][a-z0-9*?_.-]{0,127})$',
      }),
      {
        minItems: 1,
        description: 'Action names, globs (restart-*, *) or manifest tags (tag:diagnostics).',
      },
    ),
    nodes: Type.Array(Type.String({ minLength: 1, maxLength: 4096 }), {
      minItems: 1,
      description:
        "Node selections in the CLI's selector grammar (@group, tag:x, globs, !x, a+b), resolved against the inventory at each decision. Ad-hoc nodes match only by their exact name.",
    }),
    params: Type.Optional(
      Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }), ParameterConstraintSchema, {
        description: 'Constraints on parameters (allow rules only); all must hold.',
      }),
    ),
    require_approval: Type.Optional(
      Type.Boolean({
        description: 'Runs allowed by this rule wait in awaiting_approval (allow rules only).',
      }),
    ),
    quorum: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10,
        description: 'Approvers this rule needs (default approvals.quorum).',
      }),
    ),
  },
  'A grant (effect allow) or an explicit deny.',
);

/** A role: a named set of rules. */
export const PolicyRoleSchema = closed(
  {
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    rules: Type.Array(PolicyRuleSchema, { minItems: 1 }),
  },
  'A role: a set of rules.',
);

/** Which subjects hold which roles. */
export const PolicyBindingSchema = closed(
  {
    subjects: Type.Array(Type.String({ pattern: SUBJECT_PATTERN }), {
      minItems: 1,
      description: 'token:<name>, user:<OIDC subject or e-mail>, group:<OIDC group>.',
    }),
    roles: Type.Array(Type.String({ pattern: POLICY_NAME_PATTERN }), { minItems: 1 }),
  },
  'Binds subjects to roles.',
);

/** Approval settings. */
export const PolicyApprovalsSchema = closed(
  {
    quorum: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10,
        description: 'Distinct approvers a run needs (default 1).',
      }),
    ),
    expires: Type.Optional(
      Type.String({
        minLength: 2,
        maxLength: 20,
        description: 'How long a run may wait for approval (default 24h), e.g. 4h.',
      }),
    ),
    dangerous: Type.Optional(
      Type.Boolean({
        description: 'Whether actions whose manifest says dangerous need approval (default true).',
      }),
    ),
    webhook: Type.Optional(
      Type.String({
        pattern: '^https?://[^\\s]{1,2000}$',
        description: 'Slack-compatible incoming webhook notified of every pending approval.',
      }),
    ),
    link_base: Type.Optional(
      Type.String({
        pattern: '^https?://[^\\s]{1,500}$',
        description: 'Base URL of the server in webhook links (default the listener URL).',
      }),
    ),
  },
  'Four-eyes approvals.',
);

/** A whole policy file. */
export const PolicyDocumentSchema = Type.Object(
  {
    version: Type.Literal(POLICY_V1),
    roles: Type.Record(Type.String({ pattern: POLICY_NAME_PATTERN }), PolicyRoleSchema, {
      description: 'Roles by name.',
    }),
    bindings: Type.Optional(Type.Array(PolicyBindingSchema)),
    approvals: Type.Optional(PolicyApprovalsSchema),
  },
  {
    additionalProperties: false,
    $id: 'https://rune.dev/schemas/policy-v1.schema.json',
    title: 'RUNE RBAC policy v1',
    description:
      'Who may do what, on which actions and nodes, for rune serve. Default deny; an explicit deny wins. See specs/policy-v1.md.',
  },
);

/** A policy file as written. */
export type PolicyDocument = Static<typeof PolicyDocumentSchema>;
/** One rule as written. */
export type PolicyRule = Static<typeof PolicyRuleSchema>;
/** One parameter constraint as written. */
export type ParameterConstraint = Static<typeof ParameterConstraintSchema>;
