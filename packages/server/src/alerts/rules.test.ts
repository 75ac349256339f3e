import { readFileSync, writeFileSync } from 'node:fs';
import { RuneError } from '@rune/protocol';
import { describe, expect, it } from 'vitest';
import {
  buildRunRequest,
  type CompiledRule,
  groupKey,
  matchRule,
  type NormalizedAlert,
  parseAlertRules,
  stripPort,
} from './rules.js';
import { AlertRulesFileSchema } from './rules-schema.js';

const FILE = 'alert-rules.yaml';
const env = { AM_TOKEN: 'secret' };
const header =
  'schema_version: rune-alert-rules/v1\nreceivers:\n  am: { kind: alertmanager, bearer_token: "env:AM_TOKEN" }\n';
const parse = (rules: string) => parseAlertRules(`${header}rules:\n${rules}`, FILE, env);
const alert = (
  labels: Record<string, string>,
  over: Partial<NormalizedAlert> = {},
): NormalizedAlert => ({
  status: 'firing',
  labels,
  annotations: {},
  fingerprint: 'f1',
  ...over,
});
const catchError = (fn: () => unknown): RuneError => {
  try {
    fn();
  } catch (error) {
    if (RuneError.is(error)) return error;
    throw error;
  }
  throw new Error('did not throw');
};
const inventory = new Set(['web1', 'web2', '::1']);

describe('the rules file', () => {
  it('locates errors by file, JSON pointer and line:column', () => {
    const error = catchError(() =>
      parse('  - name: a\n    match: {}\n    action: noop\n    throttle: { once_within: soon }\n'),
    );
    expect(error.code).toBe('INVALID_ALERT_RULES');
    expect(error.message).toMatch(/^alert-rules\.yaml:8:17: \/rules\/0\/throttle\/once_within/);
    const yaml = catchError(() => parseAlertRules('receivers: [\n', FILE));
    expect(yaml.message).toMatch(/^alert-rules\.yaml:\d+:\d+: is not valid YAML/);
    const unknown = catchError(() => parse('  - { name: a, match: {}, action: noop, bogus: 1 }\n'));
    expect(unknown.details).toMatchObject({ pointer: expect.stringContaining('/rules/0') });
  });

  it('refuses secrets that are not references, unset variables, bad regexes, duplicate names', () => {
    const literal = catchError(() =>
      parseAlertRules(
        'schema_version: rune-alert-rules/v1\nreceivers:\n  am: { kind: alertmanager, bearer_token: hunter2 }\nrules: []\n',
        FILE,
      ),
    );
    expect(literal.message).toMatch(/bearer_token/);
    expect(catchError(() => parseAlertRules(`${header}rules: []\n`, FILE, {})).message).toMatch(
      /AM_TOKEN is not set/,
    );
    expect(
      catchError(() =>
        parse('  - { name: a, match: { labels: { x: { regex: "(" } } }, action: noop }\n'),
      ).message,
    ).toMatch(/regular expression/);
    expect(
      catchError(() =>
        parse(
          '  - { name: a, match: {}, action: noop }\n  - { name: a, match: {}, action: noop }\n',
        ),
      ).message,
    ).toMatch(/used twice/);
    expect(
      catchError(() =>
        parse('  - { name: a, match: {}, action: noop, throttle: { threshold: 2 } }\n'),
      ).message,
    ).toMatch(/go together/);
    const noCredentials = catchError(() =>
      parseAlertRules(
        'schema_version: rune-alert-rules/v1\nreceivers:\n  am: { kind: alertmanager }\nrules: []\n',
        FILE,
      ),
    );
    expect(noCredentials.message).toMatch(/bearer_token or basic_auth/);
  });

  it('specs/alert-rules-v1.schema.json is the schema (RUNE_UPDATE_SPECS=1 rewrites it)', () => {
    const file = new URL('../../../../specs/alert-rules-v1.schema.json', import.meta.url);
    const text = `${JSON.stringify(AlertRulesFileSchema, null, 2)}\n`;
    if (process.env.RUNE_UPDATE_SPECS === '1') writeFileSync(file, text);
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  it('the examples in specs/alert-rules-examples parse', () => {
    for (const name of ['alertmanager.yaml', 'pagerduty-and-generic.yaml']) {
      const file = new URL(`../../../../specs/alert-rules-examples/${name}`, import.meta.url);
      const rules = parseAlertRules(readFileSync(file, 'utf8'), name, {
        RUNE_AM_TOKEN: 't',
        RUNE_PD_SECRET: 'a',
        RUNE_PD_SECRET_NEXT: 'b',
        RUNE_HOOK_SECRET: 'c',
        RUNE_SLACK_URL: 'https://hooks.slack.example/x',
      });
      expect(rules.rules.length).toBeGreaterThan(0);
    }
  });
});

describe('workflow targets', () => {
  it('a workflow rule builds the workflow request: inputs converted strictly, the node as node_input', () => {
    const rules = parse(`  - name: wf
    match: { labels: { alertname: W } }
    workflow: restart-then-diagnose
    inputs: { lines: { from_label: lines, as: integer }, extra: 3 }
    options: { confirm: true }
`).rules;
    const rule = rules[0] as CompiledRule;
    const built = buildRunRequest(
      rule,
      alert({ alertname: 'W', instance: 'web1:9100', lines: '200' }),
      new Set(['web1']),
    );
    expect(built.workflow).toEqual({
      name: 'restart-then-diagnose',
      inputs: { lines: 200, extra: 3 },
      nodeInput: 'nodes',
      confirm: true,
      dryRun: false,
    });
    expect(built.request).toMatchObject({
      action: 'workflow:restart-then-diagnose',
      targets: ['web1'],
      params: { lines: 200, extra: 3, nodes: 'web1' },
    });
    expect(() =>
      buildRunRequest(
        rule,
        alert({ alertname: 'W', instance: 'web1', lines: '2x' }),
        new Set(['web1']),
      ),
    ).toThrow(/not an integer/);
    expect(() =>
      buildRunRequest(
        rule,
        alert({ alertname: 'W', instance: 'db9', lines: '2' }),
        new Set(['web1']),
      ),
    ).toThrow(/not in the inventory/);
  });

  it.each([
    [
      'both action and workflow',
      'action: noop\n    workflow: w',
      /exactly one of action and workflow/,
    ],
    ['neither', '', /exactly one of action and workflow/],
    ['params on a workflow', 'workflow: w\n    params: { a: 1 }', /inputs, not params/],
    ['inputs on an action', 'action: noop\n    inputs: { a: 1 }', /inputs go with workflow/],
    [
      'a run option on a workflow',
      'workflow: w\n    options: { timeout: 1m }',
      /timeout is a run option/,
    ],
  ])('refuses %s', (_name, body, message) => {
    expect(() =>
      parse(`  - name: bad\n    match: { labels: { alertname: X } }\n    ${body}\n`),
    ).toThrow(message);
  });
});

describe('matching', () => {
  const rules =
    parse(`  - { name: resolved-only, match: { status: resolved, labels: { alertname: A } }, action: noop }
  - name: eq-regex-presence
    match:
      labels: { alertname: A, severity: { regex: "page|critical" }, team: { present: true }, silenced: { present: false } }
      annotations: { runbook: { equals: "x" } }
    action: noop
  - { name: any, match: { status: any }, action: check-disk, receivers: [am] }
`).rules;
  it('equality, anchored regex, presence and absence, annotations, status, first match wins', () => {
    const full = alert(
      { alertname: 'A', severity: 'page', team: 'ops' },
      { annotations: { runbook: 'x' } },
    );
    expect(matchRule(rules, full, 'am')?.spec.name).toBe('eq-regex-presence');
    // regex is anchored: "paged" is not "page"
    expect(
      matchRule(rules, { ...full, labels: { ...full.labels, severity: 'paged' } }, 'am')?.spec.name,
    ).toBe('any');
    expect(
      matchRule(rules, { ...full, labels: { ...full.labels, silenced: '' } }, 'am')?.spec.name,
    ).toBe('any');
    expect(matchRule(rules, { ...full, annotations: {} }, 'am')?.spec.name).toBe('any');
    expect(matchRule(rules, { ...full, status: 'resolved' }, 'am')?.spec.name).toBe(
      'resolved-only',
    );
    expect(matchRule(rules, full, 'other')?.spec.name).toBe('eq-regex-presence');
    expect(matchRule(rules, alert({ x: 'y' }), 'other')).toBeUndefined();
  });

  it('an inherited property is not a label', () => {
    const only = parse(
      '  - { name: p, match: { labels: { constructor: { present: true } } }, action: noop }\n',
    ).rules;
    expect(matchRule(only, alert({}), 'am')).toBeUndefined();
  });
});

describe('value extraction', () => {
  const [rule, typed, pattern] = parse(`  - name: a
    match: {}
    action: noop
    params: { message: { from_annotation: summary }, sleep_ms: 5 }
  - name: typed
    match: {}
    action: check-disk
    params: { warning_percent: { from_label: warn, as: integer }, include_inodes: { from_label: inodes, as: boolean } }
    options: { dry_run: true, if_busy: refuse }
  - name: pattern
    match: {}
    action: noop
    target: { from_annotation: description, pattern: "host (\\\\S+) is down" }
`).rules;

  it('the node is labels.instance without its port, and must be an inventory node', () => {
    const built = buildRunRequest(
      rule!,
      alert({ instance: 'web1:9100' }, { annotations: { summary: 's' } }),
      inventory,
    );
    expect(built).toEqual({
      node: 'web1',
      ifBusy: 'queue',
      request: { action: 'noop', targets: ['web1'], params: { message: 's', sleep_ms: 5 } },
    });
    expect(stripPort('[::1]:9100')).toBe('::1');
    expect(stripPort('web1')).toBe('web1');
    for (const instance of [
      'web9:9100',
      '*',
      '@all',
      'tag:x',
      'web1,web2',
      '!web1',
      'web1;reboot',
      'root@web1',
      '',
    ]) {
      const error = catchError(() =>
        buildRunRequest(rule!, alert({ instance }, { annotations: { summary: 's' } }), inventory),
      );
      expect(error.code).toBe('UNKNOWN_NODE');
    }
    expect(catchError(() => buildRunRequest(rule!, alert({}), inventory)).code).toBe(
      'INVALID_PARAMETERS',
    );
  });

  it('"as" converts strictly; a missing label or annotation is refused', () => {
    const built = buildRunRequest(
      typed!,
      alert({ instance: 'web2', warn: '85', inodes: 'false' }),
      inventory,
    );
    expect(built.request).toEqual({
      action: 'check-disk',
      targets: ['web2'],
      params: { warning_percent: 85, include_inodes: false },
      options: { dry_run: true },
    });
    expect(built.ifBusy).toBe('refuse');
    for (const warn of ['85%', '8.5', '1e3', ' 85', '85; rm -rf /']) {
      expect(
        catchError(() =>
          buildRunRequest(typed!, alert({ instance: 'web2', warn, inodes: 'true' }), inventory),
        ).code,
      ).toBe('INVALID_PARAMETERS');
    }
    expect(
      catchError(() =>
        buildRunRequest(typed!, alert({ instance: 'web2', warn: '1', inodes: 'yes' }), inventory),
      ).code,
    ).toBe('INVALID_PARAMETERS');
  });

  it('a pattern captures the value', () => {
    const built = buildRunRequest(
      pattern!,
      alert({}, { annotations: { description: 'host web2 is down' } }),
      inventory,
    );
    expect(built.node).toBe('web2');
    expect(
      catchError(() =>
        buildRunRequest(pattern!, alert({}, { annotations: { description: 'other' } }), inventory),
      ).code,
    ).toBe('INVALID_PARAMETERS');
  });

  it('groups by alertname + instance by default, or by fingerprint', () => {
    const [byDefault, byFingerprint] = parse(
      '  - { name: d, match: {}, action: noop }\n  - { name: f, match: {}, action: noop, throttle: { group_by: fingerprint } }\n',
    ).rules;
    const a = alert({ alertname: 'X', instance: 'web1', disk: 'a' }, { fingerprint: 'fa' });
    const b = alert({ alertname: 'X', instance: 'web1', disk: 'b' }, { fingerprint: 'fb' });
    expect(groupKey(byDefault!, a)).toBe(groupKey(byDefault!, b));
    expect(groupKey(byFingerprint!, a)).not.toBe(groupKey(byFingerprint!, b));
  });
});
