/**
 * SIGHUP re-reads `[server] alert_rules` of a real `rune serve` process (the built CLI): a
 * broken rules file keeps the rules in force and the log says why; a good one is in force for
 * the next alert. Alerts are posted to the real Alertmanager receiver over loopback.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  postAlertmanager,
  runCli,
  type ServeProcess,
  serveHome,
  startServeProcess,
} from './cli-harness.js';

const { dir, env } = serveHome('rune-rules-reload-', { RUNE_AM_TOKEN: 'am-reload-token' });
const rulesFile = join(dir, 'alert-rules.yaml');
const configFile = join(dir, 'rune.toml');
const rulesFor = (alertname: string): string => `schema_version: rune-alert-rules/v1
receivers:
  am: { kind: alertmanager, bearer_token: "env:RUNE_AM_TOKEN" }
rules:
  - { name: ${alertname.toLowerCase()}, match: { labels: { alertname: ${alertname} } }, action: noop }
`;

let serve: ServeProcess;
let url = '';
let token = '';

beforeAll(async () => {
  writeFileSync(join(dir, 'inventory.yaml'), 'nodes:\n  web1: { address: localhost }\n');
  writeFileSync(rulesFile, rulesFor('Before'));
  writeFileSync(
    configFile,
    `[core]\ninventory = ${JSON.stringify(join(dir, 'inventory.yaml'))}\naudit_log = ${JSON.stringify(join(dir, 'audit.jsonl'))}\n\n[server]\nlisten = "127.0.0.1:0"\nstore = ${JSON.stringify(join(dir, 'server.sqlite'))}\nalert_rules = ${JSON.stringify(rulesFile)}\nshutdown_grace = "5s"\n`,
  );
  const created = await runCli(
    ['token', 'create', '--name', 'reader', '--role', 'viewer', '--config', configFile],
    env,
  );
  expect(created.code, created.stderr).toBe(0);
  token = created.stdout.trim();
  serve = await startServeProcess(configFile, env);
  url = serve.url;
}, 120_000);
afterAll(async () => {
  await serve?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const logLine = (pattern: RegExp): Promise<string> => serve.logLine(pattern);

let sequence = 0;
/** Posts one alert named `alertname` for web1 and returns what became of it. */
async function outcomeOf(alertname: string): Promise<{ outcome: string; rule: string | null }> {
  const [id] = await postAlertmanager(url, 'am', env.RUNE_AM_TOKEN as string, [
    { labels: { alertname, instance: 'web1:9100' }, fingerprint: `reload-${++sequence}` },
  ]);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const alert = (await (
      await fetch(`${url}/v1/alerts/${id}`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as { outcome: string; rule: string | null };
    if (alert.outcome !== 'received') return alert;
    if (Date.now() > deadline) throw new Error(`alert ${id} was never decided`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('rune serve: SIGHUP reloads the alert rules', () => {
  it('a broken file keeps the rules in force; a good one is in force for the next alert', async () => {
    expect(await outcomeOf('Before')).toMatchObject({ outcome: 'ran', rule: 'before' });

    writeFileSync(rulesFile, `${rulesFor('After')}surprise: true\n`);
    serve.child.kill('SIGHUP');
    expect(await logLine(/SIGHUP: alert rules NOT reloaded[^\n]*/)).toMatch(/surprise/);
    expect(await outcomeOf('Before')).toMatchObject({ outcome: 'ran', rule: 'before' });
    expect(await outcomeOf('After')).toMatchObject({ outcome: 'no_rule' });

    writeFileSync(rulesFile, rulesFor('After'));
    serve.child.kill('SIGHUP');
    await logLine(/SIGHUP: alert rules reloaded \(1 rule\(s\)\)/);
    expect(await outcomeOf('After')).toMatchObject({ outcome: 'ran', rule: 'after' });
    expect(await outcomeOf('Before')).toMatchObject({ outcome: 'no_rule' });
  });
});
