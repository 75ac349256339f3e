/**
 * End to end with the real monitoring stack: `/usr/bin/prometheus` evaluates an always-firing
 * alerting rule (`vector(1) > 0`, its `instance` label naming a node of a real sshd fleet),
 * `/usr/bin/prometheus-alertmanager` posts it (bearer token from a credentials file, as its
 * http_config sends it) to a real `rune serve`, which runs the `noop` plugin on that node over
 * SSH and stores the result. Alertmanager's repeated notification is deduplicated (still one
 * run); then the rule is changed to `vector(0) > 0` and Prometheus reloaded, and the resolved
 * notification is recorded as resolved. Everything listens on 127.0.0.1; readiness is each
 * daemon's /-/ready endpoint, never a fixed sleep; every process is stopped even on failure.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, type SshdFleet, startSshdFleet } from '@rune/transport-ssh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestHome,
  fleetInventory,
  sshProvider,
  startTestServer,
  type TestHome,
  type TestServer,
  waitForRun,
} from './harness.js';

type Json = Record<string, unknown>;
const PROMETHEUS = '/usr/bin/prometheus';
const ALERTMANAGER = '/usr/bin/prometheus-alertmanager';
const TOKEN = 'e2e-alertmanager-token-0123456789';
const available = existsSync(PROMETHEUS) && existsSync(ALERTMANAGER);

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms = 90_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const ready = (url: string) => () =>
  fetch(url).then((response) => (response.ok ? true : undefined));

function stop(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

describe.skipIf(!available)('Prometheus -> Alertmanager -> rune serve -> sshd fleet', () => {
  let fleet: SshdFleet;
  let home: TestHome;
  let t: TestServer;
  let prometheus: ChildProcess | undefined;
  let alertmanager: ChildProcess | undefined;
  let promRules: string;
  let logs: string;

  beforeAll(async () => {
    fleet = await startSshdFleet(1);
    home = createTestHome();
    logs = join(home.dir, 'logs');
    mkdirSync(logs);
    const inventory = fleetInventory(home, fleet);
    const tokenFile = join(home.dir, 'am.token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const rules = join(home.dir, 'alert-rules.yaml');
    writeFileSync(
      rules,
      `schema_version: rune-alert-rules/v1
receivers:
  prom: { kind: alertmanager, bearer_token: "file:${tokenFile}" }
rules:
  - name: heal
    match: { labels: { alertname: RuneE2E, severity: page } }
    action: noop
    params: { message: { from_annotation: summary } }
    throttle: { group_by: fingerprint }
`,
    );
    writeFileSync(
      home.configFile,
      readFileSync(home.configFile, 'utf8')
        .replace('[core]\n', `[core]\ninventory = ${JSON.stringify(inventory)}\n`)
        .replace('[server]\n', `[server]\nalert_rules = ${JSON.stringify(rules)}\n`),
    );
    t = await startTestServer(home, { ssh: sshProvider(fleet) });

    const amPort = await freePort('127.0.0.1');
    const amDir = join(home.dir, 'alertmanager');
    mkdirSync(amDir);
    writeFileSync(
      join(amDir, 'alertmanager.yml'),
      `route:
  receiver: rune
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: rune
    webhook_configs:
      - url: ${t.url}/v1/hooks/alertmanager/prom
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: ${tokenFile}
`,
    );
    alertmanager = spawn(
      ALERTMANAGER,
      [
        `--config.file=${join(amDir, 'alertmanager.yml')}`,
        `--storage.path=${join(amDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${amPort}`,
        // No cluster listener (it would bind every interface).
        '--cluster.listen-address=',
      ],
      {
        stdio: ['ignore', openSync(join(logs, 'am.out'), 'w'), openSync(join(logs, 'am.err'), 'w')],
      },
    );
    await waitFor('alertmanager', ready(`http://127.0.0.1:${amPort}/-/ready`));

    const promPort = await freePort('127.0.0.1');
    const promDir = join(home.dir, 'prometheus');
    mkdirSync(promDir);
    promRules = join(promDir, 'rules.yml');
    writeRule('vector(1) > 0');
    writeFileSync(
      join(promDir, 'prometheus.yml'),
      `global:
  evaluation_interval: 1s
rule_files: [${JSON.stringify(promRules)}]
alerting:
  alertmanagers:
    - static_configs: [{ targets: ["127.0.0.1:${amPort}"] }]
`,
    );
    prometheus = spawn(
      PROMETHEUS,
      [
        `--config.file=${join(promDir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(promDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--rules.alert.resend-delay=1s',
      ],
      {
        stdio: [
          'ignore',
          openSync(join(logs, 'prom.out'), 'w'),
          openSync(join(logs, 'prom.err'), 'w'),
        ],
      },
    );
    await waitFor('prometheus', ready(`http://127.0.0.1:${promPort}/-/ready`));
  }, 120_000);

  afterAll(async () => {
    await stop(prometheus);
    await stop(alertmanager);
    await t?.close();
    await fleet?.stop();
    home?.remove();
  }, 60_000);

  function writeRule(expr: string): void {
    writeFileSync(
      promRules,
      `groups:
  - name: rune-e2e
    interval: 1s
    rules:
      - alert: RuneE2E
        expr: ${expr}
        labels: { severity: page, instance: "node1:9100" }
        annotations: { summary: "healed by rune; $(touch /tmp/rune-e2e-pwned) \`id\`" }
`,
    );
  }

  const alerts = async (): Promise<Array<Json & { outcome: string; status: string }>> =>
    (
      (await (await t.request('/v1/alerts?receiver=prom&limit=500')).json()) as {
        alerts: Array<Json & { outcome: string; status: string }>;
      }
    ).alerts;

  it('fires, runs on the node over SSH, deduplicates the repeat, handles the resolution', async () => {
    const ran = await waitFor('a run from the alert', async () =>
      (await alerts()).find((alert) => alert.outcome === 'ran'),
    );
    expect(ran).toMatchObject({
      rule: 'heal',
      node: 'node1',
      status: 'firing',
      kind: 'alertmanager',
    });
    const run = await waitForRun(t, ran.run_id as string);
    expect(run).toMatchObject({ status: 'succeeded', source: 'alert', principal: 'alert:prom' });
    const node = (run.nodes as Array<Json & { response: { payload: { output_data: Json } } }>)[0];
    expect(node).toMatchObject({ node: 'node1', transport: 'ssh', status: 'success' });
    expect(node?.response.payload.output_data.message).toBe(
      'healed by rune; $(touch /tmp/rune-e2e-pwned) `id`',
    );

    // Alertmanager repeats the notification (repeat_interval 2s): the same run, no second one.
    const repeat = await waitFor('the repeated notification', async () =>
      (await alerts()).find((alert) => alert.outcome === 'deduplicated'),
    );
    expect(repeat).toMatchObject({ run_id: ran.run_id, fingerprint: ran.fingerprint });

    writeRule('vector(0) > 0');
    prometheus?.kill('SIGHUP');
    const resolved = await waitFor('the resolved notification', async () =>
      (await alerts()).find((alert) => alert.status === 'resolved' && alert.outcome !== 'received'),
    );
    expect(resolved).toMatchObject({ outcome: 'resolved', fingerprint: ran.fingerprint });

    const runs = (await (await t.request('/v1/runs?source=alert')).json()) as { runs: Json[] };
    expect(runs.runs).toHaveLength(1);
    expect(existsSync('/tmp/rune-e2e-pwned')).toBe(false);
  }, 180_000);
});
