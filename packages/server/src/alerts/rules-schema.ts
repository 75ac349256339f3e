/**
 * The alert rules file (`[server] alert_rules`), schema `rune-alert-rules/v1`: receivers (who may
 * post alerts and how they prove it), rules (which alert runs which action on which node),
 * throttling, the storm breaker and notifiers. specs/alert-rules-v1.md is the normative text;
 * specs/alert-rules-v1.schema.json is generated from this schema (a test checks drift).
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';

const closed = <T extends Parameters<typeof Type.Object>[0]>(
  properties: T,
  options: Parameters<typeof Type.Object>[1] = {},
) => Type.Object(properties, { additionalProperties: false, ...options });
const opt = <T extends TSchema>(schema: T) => Type.Optional(schema);

/** Names of receivers, rules and notifiers: they appear in URLs, principals and metrics. */
const Name = Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' });
/** A label or annotation name (Prometheus' grammar). */
const LabelName = Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' });
const Duration = Type.String({
  pattern: '^[0-9]+(ms|s|m|h|d)$',
  description: 'A duration: 30s, 10m, 2h, 1d.',
});
/**
 * A secret is never written in the rules file itself: `env:NAME` reads the server's environment,
 * `file:/path` reads a file (trailing newline dropped), both when the rules are loaded.
 */
const SecretRef = Type.String({
  pattern: '^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+)$',
  description: 'env:NAME or file:/absolute/path — never the secret itself.',
});

/** One matcher of a label or annotation value. A bare string is equality. */
export const MatcherSchema = Type.Union([
  Type.String({ maxLength: 1024, description: 'The value equals this string.' }),
  closed({ equals: Type.String({ maxLength: 1024 }) }),
  closed({
    regex: Type.String({
      minLength: 1,
      maxLength: 1024,
      description: 'The whole value matches this regular expression (anchored, like Alertmanager).',
    }),
  }),
  closed({
    present: Type.Boolean({ description: 'The label is present (true) or absent (false).' }),
  }),
]);

/** Takes a value from the alert. */
export const ExtractSchema = closed(
  {
    from_label: opt(LabelName),
    from_annotation: opt(LabelName),
    pattern: opt(
      Type.String({
        minLength: 1,
        maxLength: 1024,
        description: 'A regular expression with one capture group: the value is the capture.',
      }),
    ),
    strip_port: opt(
      Type.Boolean({
        description: 'Drop a trailing :port (and [ ] of IPv6). Default: true for targets.',
      }),
    ),
    as: opt(
      Type.Union(
        [
          Type.Literal('string'),
          Type.Literal('integer'),
          Type.Literal('number'),
          Type.Literal('boolean'),
        ],
        {
          description:
            'Convert the text to this JSON type (strictly; "12abc" is not an integer). Without it the value stays a string.',
        },
      ),
    ),
  },
  { description: 'A value taken from the alert: exactly one of from_label, from_annotation.' },
);

/** A parameter: a literal JSON value, or a value taken from the alert. */
const ParamValue = Type.Union([
  Type.String(),
  Type.Number(),
  Type.Boolean(),
  Type.Array(Type.Unknown()),
  ExtractSchema,
]);

/** Throttling of one rule. */
export const ThrottleSchema = closed({
  group_by: opt(
    Type.Union(
      [Type.Literal('fingerprint'), Type.Array(LabelName, { minItems: 1, maxItems: 16 })],
      {
        description: 'Labels naming the group (default [alertname, instance]), or "fingerprint".',
      },
    ),
  ),
  once_within: opt(Duration),
  once_after: opt(Duration),
  accumulate_within: opt(Duration),
  threshold: opt(Type.Integer({ minimum: 1, maximum: 10_000 })),
});

/** One rule. */
export const RuleSchema = closed({
  name: Name,
  description: opt(Type.String({ maxLength: 500 })),
  receivers: opt(Type.Array(Name, { minItems: 1, description: 'Only alerts of these receivers.' })),
  match: closed({
    status: opt(
      Type.Union([Type.Literal('firing'), Type.Literal('resolved'), Type.Literal('any')], {
        description:
          'Default firing. A resolved alert that matches no rule cancels what its firing alert queued.',
      }),
    ),
    labels: opt(Type.Record(LabelName, MatcherSchema)),
    annotations: opt(Type.Record(LabelName, MatcherSchema)),
  }),
  action: opt(
    Type.String({
      pattern: '^[a-z0-9][a-z0-9._-]{0,63}$',
      description: 'The action to run on the node (exactly one of action, workflow).',
    }),
  ),
  workflow: opt(
    Type.String({
      pattern: '^[a-z0-9][a-z0-9._-]{0,63}$',
      description:
        'The workflow of [server] workflows to run (exactly one of action, workflow); the node goes into its input node_input.',
    }),
  ),
  node_input: opt(
    Type.String({
      pattern: '^[a-z][a-z0-9_]{0,63}$',
      description:
        'The workflow input that receives the node (default nodes): the node name, or a list of it for an array input.',
    }),
  ),
  target: opt(ExtractSchema),
  params: opt(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' }), ParamValue)),
  inputs: opt(
    Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }), ParamValue, {
      description:
        "The workflow's inputs (workflow rules only): literal values or values taken from the alert, checked against the workflow's typed inputs.",
    }),
  ),
  options: opt(
    closed({
      dry_run: opt(Type.Boolean()),
      timeout: opt(Duration),
      deadline: opt(Duration),
      confirm: opt(
        Type.Boolean({ description: 'Allow a dangerous action (the rule author confirms).' }),
      ),
      if_busy: opt(Type.Union([Type.Literal('queue'), Type.Literal('refuse')])),
    }),
  ),
  throttle: opt(ThrottleSchema),
});

/** One receiver. */
export const ReceiverSchema = Type.Union([
  closed({
    kind: Type.Literal('alertmanager'),
    principal: opt(Type.String({ pattern: '^[A-Za-z0-9:._-]{1,100}$' })),
    bearer_token: opt(SecretRef),
    basic_auth: opt(
      closed({ username: Type.String({ minLength: 1, maxLength: 200 }), password: SecretRef }),
    ),
  }),
  closed({
    kind: Type.Literal('pagerduty'),
    principal: opt(Type.String({ pattern: '^[A-Za-z0-9:._-]{1,100}$' })),
    secrets: Type.Array(SecretRef, {
      minItems: 1,
      maxItems: 8,
      description: 'Every secret that is valid now (several while rotating).',
    }),
  }),
  closed({
    kind: Type.Literal('generic'),
    principal: opt(Type.String({ pattern: '^[A-Za-z0-9:._-]{1,100}$' })),
    secrets: Type.Array(SecretRef, { minItems: 1, maxItems: 8 }),
    replay_window: opt(Duration),
  }),
]);

/** One notifier. */
export const NotifierSchema = closed({
  name: Name,
  kind: Type.Union([Type.Literal('slack'), Type.Literal('webhook')]),
  url: Type.Union([Type.String({ pattern: '^https?://' }), SecretRef], {
    description: 'Where to POST; a Slack incoming-webhook URL is a secret: use env: or file:.',
  }),
  outcomes: opt(
    Type.Array(
      Type.Union(
        [
          'ran',
          'deduplicated',
          'throttled',
          'pending',
          'held',
          'released',
          'expired',
          'refused',
          'no_rule',
          'resolved',
          'cancelled',
          'run_ended',
        ].map((name) => Type.Literal(name)),
      ),
      {
        description:
          'Default: ran, held, refused. run_ended: once more when the run of a ran or released alert ended, with its status.',
      },
    ),
  ),
});

/** The whole file. */
export const AlertRulesFileSchema = closed(
  {
    schema_version: Type.Literal('rune-alert-rules/v1'),
    public_url: opt(
      Type.String({
        pattern: '^https?://',
        description: 'Base URL of this server for links in notifications.',
      }),
    ),
    receivers: Type.Record(Name, ReceiverSchema),
    storm: opt(
      closed({
        max_runs: opt(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
        window: opt(Duration),
        hold_expires: opt(Duration),
      }),
    ),
    notifiers: opt(Type.Array(NotifierSchema, { maxItems: 32 })),
    rules: Type.Array(RuleSchema, { maxItems: 1000 }),
  },
  {
    $id: 'https://rune.dev/schemas/alert-rules-v1.schema.json',
    title: 'RUNE alert rules v1',
    description: 'Receivers, rules, throttling, storm breaker and notifiers of `rune serve`.',
    examples: [
      {
        schema_version: 'rune-alert-rules/v1',
        receivers: { prometheus: { kind: 'alertmanager', bearer_token: 'env:RUNE_AM_TOKEN' } },
        storm: { max_runs: 10, window: '10m', hold_expires: '1h' },
        rules: [
          {
            name: 'disk-full',
            match: { labels: { alertname: 'DiskFull', severity: { regex: 'critical|page' } } },
            action: 'check-disk',
            params: { warning_percent: { from_label: 'warn', as: 'integer' } },
            throttle: { once_within: '30m' },
          },
        ],
      },
    ],
  },
);

/** The rules file as written. */
export type AlertRulesFile = Static<typeof AlertRulesFileSchema>;
/** One rule as written. */
export type RuleSpec = Static<typeof RuleSchema>;
/** One receiver as written. */
export type ReceiverSpec = Static<typeof ReceiverSchema>;
/** A value taken from the alert. */
export type ExtractSpec = Static<typeof ExtractSchema>;
/** One matcher. */
export type MatcherSpec = Static<typeof MatcherSchema>;
