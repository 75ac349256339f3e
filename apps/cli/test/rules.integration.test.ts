/**
 * `rune rules test` and `rune rules list` (the built CLI, offline): which rule matches each alert
 * of an Alertmanager payload and what would run, refusals named with their EPS code, no receiver
 * secret read, and a bad rules file refused with its line and column.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliSandbox, createCliSandbox } from './cli-harness.js';

let sandbox: CliSandbox;
let rules: string;
let payload: string;
beforeAll(() => {
  sandbox = createCliSandbox();
  rules = join(sandbox.root, 'alert-rules.yaml');
  const inventory = join(sandbox.root, 'inventory.yaml');
  writeFileSync(inventory, 'nodes:\n  web1: { address: localhost }\n');
  writeFileSync(
    join(sandbox.root, 'rune.toml'),
    `[core]\ninventory = ${JSON.stringify(inventory)}\n[server]\nalert_rules = ${JSON.stringify(rules)}\n`,
  );
  writeFileSync(
    rules,
    `schema_version: rune-alert-rules/v1
receivers:
  prom: { kind: alertmanager, bearer_token: "env:NOT_SET_ANYWHERE" }
rules:
  - name: disk
    match: { labels: { alertname: DiskFull } }
    action: check-disk
    params: { warning_percent: { from_label: warn, as: integer } }
    throttle: { once_within: 30m }
  - name: docker
    match: { labels: { alertname: DockerStuck } }
    workflow: restart-then-diagnose
    inputs: { lines: { from_label: lines, as: integer } }
    options: { confirm: true }
`,
  );
  payload = join(sandbox.root, 'alert.json');
  const alert = (labels: Record<string, string>) => ({
    status: 'firing',
    labels,
    annotations: {},
    fingerprint: labels.instance,
  });
  writeFileSync(
    payload,
    JSON.stringify({
      version: '4',
      status: 'firing',
      alerts: [
        alert({ alertname: 'DiskFull', instance: 'web1:9100', warn: '85' }),
        alert({ alertname: 'DiskFull', instance: 'db9:9100', warn: '85' }),
        alert({ alertname: 'DiskFull', instance: 'web1:9100', warn: '85%' }),
        alert({ alertname: 'Other', instance: 'web1' }),
        alert({ alertname: 'DockerStuck', instance: 'web1:9100', lines: '300' }),
      ],
    }),
  );
});
afterAll(() => sandbox?.cleanup());

describe('rune rules', () => {
  it('test: the matching rule and the run it would submit, or why not', async () => {
    const result = await sandbox.run(['rules', 'test', payload, '-o', 'json']);
    expect(result.code).toBe(0);
    const alerts = (JSON.parse(result.stdout) as { alerts: Array<Record<string, unknown>> }).alerts;
    expect(alerts[0]).toMatchObject({
      rule: 'disk',
      node: 'web1',
      request: { action: 'check-disk', targets: ['web1'], params: { warning_percent: 85 } },
      refused: null,
    });
    expect(alerts[1]).toMatchObject({ rule: 'disk', refused: { code: 'UNKNOWN_NODE' } });
    expect(alerts[2]).toMatchObject({ rule: 'disk', refused: { code: 'INVALID_PARAMETERS' } });
    expect(alerts[3]).toMatchObject({ rule: null });
    const pretty = await sandbox.run(['rules', 'test', payload]);
    expect(pretty.stdout).toMatch(
      /rule disk: would run check-disk on web1 with \{"warning_percent":85\}/,
    );
    expect(pretty.stdout).toMatch(/no rule matches/);
    // A workflow target: the workflow it would start, with its inputs and the node.
    expect(alerts[4]).toMatchObject({
      rule: 'docker',
      node: 'web1',
      request: {
        action: 'workflow:restart-then-diagnose',
        params: { lines: 300, nodes: 'web1' },
        options: { confirm: true },
      },
      refused: null,
    });
    expect(pretty.stdout).toMatch(
      /rule docker: would run workflow:restart-then-diagnose on web1 with \{"lines":300,"nodes":"web1"\}/,
    );
  });

  it('list: receivers and rules', async () => {
    const result = await sandbox.run(['rules', 'list', '--rules', rules]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /disk: firing alertname=DiskFull -> check-disk; throttle once_within 30m/,
    );
    expect(result.stdout).toMatch(
      /docker: firing alertname=DockerStuck -> workflow restart-then-diagnose/,
    );
  });

  it('refuses a bad rules file with its line and column, and a missing payload', async () => {
    const bad = join(sandbox.root, 'bad.yaml');
    writeFileSync(
      bad,
      'schema_version: rune-alert-rules/v1\nreceivers: {}\nrules:\n  - { name: x, match: {}, action: "rm -rf" }\n',
    );
    const result = await sandbox.run(['rules', 'list', '--rules', bad]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /error INVALID_ALERT_RULES: .*bad\.yaml:4:\d+: \/rules\/0\/action/,
    );
    const missing = await sandbox.run(['rules', 'test', join(sandbox.root, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/error INVALID_ARGUMENT: cannot read/);
  });
});
