#!/usr/bin/env node
// Alert receiver benchmark (never part of the test suite). See bench/README.md, "Alert receivers".
//
//   node bench/alerts.mjs [--notifications 10000] [--keys 1000] [--nodes 10] [--seconds 60]
//                         [--connections 16] [--server-from DIR]
//
// --server-from DIR: benchmark another build of the server instead (DIR holds a copy of packages/
// with their dist/, e.g. taken before a change); run both back to back to compare on one load.
//
// Starts a real `createRuneServer()` (built @rune/server) on 127.0.0.1 with a throw-away home, an
// inventory of --nodes nodes (key i names node i mod --nodes; core reads the inventory file on
// every plan, so a 1000-node inventory measures YAML parsing, not the receivers) and one rule (dry runs of noop: the decision path, planning and the
// store are real; no plugin executes). Posts --notifications Alertmanager v4 webhooks, one alert
// each, for --keys distinct alerts (fingerprint k<i>, on node n<i mod nodes>), spread evenly over
// --seconds, on --connections keep-alive connections. Measures each webhook answer (client side,
// request written -> response ended), waits until every alert is decided, and counts: runs
// started (must be exactly --keys), alerts ran/deduplicated, none left undecided or lost; and,
// from the server's latency histogram, the share of webhook answers within 5/10/25/100/1000 ms
// of the server's own time (without the client's queueing).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as currentServer from '@rune/server';

const { values } = parseArgs({
  options: {
    notifications: { type: 'string', default: '10000' },
    keys: { type: 'string', default: '1000' },
    nodes: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '60' },
    connections: { type: 'string', default: '16' },
    'server-from': { type: 'string' },
  },
});
const total = Number(values.notifications);
const keys = Number(values.keys);
const nodes = Number(values.nodes);
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const TOKEN = 'bench-alertmanager-token';

const home = mkdtempSync(join(tmpdir(), 'rune-bench-alerts-'));
const env = {
  HOME: home,
  XDG_CONFIG_HOME: join(home, 'config'),
  XDG_STATE_HOME: join(home, 'state'),
  XDG_DATA_HOME: join(home, 'data'),
  PATH: process.env.PATH,
  RUNE_BENCH_AM_TOKEN: TOKEN,
};
const name = (i) => `n${String(i).padStart(5, '0')}`;
const inventory = join(home, 'inventory.yaml');
writeFileSync(
  inventory,
  `nodes:\n${Array.from({ length: nodes }, (_, i) => `  ${name(i)}: { address: localhost }`).join('\n')}\n`,
);
const rules = join(home, 'alert-rules.yaml');
writeFileSync(
  rules,
  `schema_version: rune-alert-rules/v1
receivers:
  bench: { kind: alertmanager, bearer_token: "env:RUNE_BENCH_AM_TOKEN" }
storm: { max_runs: 1000000, window: 1m }
rules:
  - name: bench
    match: { labels: { alertname: Bench } }
    action: noop
    options: { dry_run: true }
    throttle: { group_by: fingerprint }
`,
);
const configFile = join(home, 'rune.toml');
writeFileSync(
  configFile,
  `[core]\ninventory = ${JSON.stringify(inventory)}\naudit_log = ${JSON.stringify(join(home, 'audit.jsonl'))}\n[server]\nlisten = "127.0.0.1:0"\nstore = ${JSON.stringify(join(home, 'server.sqlite'))}\nqueue_size = 100000\nalert_rules = ${JSON.stringify(rules)}\n`,
);
// The server reads env: secrets from process.env (as `rune serve` does).
process.env.RUNE_BENCH_AM_TOKEN = TOKEN;
const { createRuneServer, createToken } =
  values['server-from'] === undefined
    ? currentServer
    : await import(join(values['server-from'], 'packages/server/dist/index.js'));
const server = await createRuneServer({ configFile, env, port: 0 });
const url = new URL(await server.listen());
const agent = new Agent({ keepAlive: true, maxSockets: connections });

const body = (i) =>
  JSON.stringify({
    version: '4',
    groupKey: `{}:{alertname="Bench",key="k${i}"}`,
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'rune',
    groupLabels: { alertname: 'Bench' },
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager.bench',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'Bench', instance: `${name(i % nodes)}:9100`, key: `k${i}` },
        annotations: { summary: 'bench' },
        startsAt: '2026-01-01T00:00:00Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus.bench',
        fingerprint: `k${i}`,
      },
    ],
  });

function post(i) {
  const payload = body(i);
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: '/v1/hooks/alertmanager/bench',
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          authorization: `Bearer ${TOKEN}`,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }),
        );
      },
    );
    req.on('error', () =>
      resolve({ status: 0, ms: Number(process.hrtime.bigint() - started) / 1e6 }),
    );
    req.end(payload);
  });
}

const latencies = [];
const statuses = new Map();
const intervalMs = (seconds * 1000) / total;
const start = Date.now();
const pending = [];
for (let n = 0; n < total; n++) {
  // Even spacing: notification n leaves at start + n * interval (never earlier).
  const due = start + n * intervalMs;
  const wait = due - Date.now();
  if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
  pending.push(
    post(n % keys).then((result) => {
      latencies.push(result.ms);
      statuses.set(result.status, (statuses.get(result.status) ?? 0) + 1);
    }),
  );
}
await Promise.all(pending);
const sentMs = Date.now() - start;

// Wait until every alert is decided (bounded: 10 minutes).
const db = server.store.db;
const deadline = Date.now() + 600_000;
let undecided = -1;
while (Date.now() < deadline) {
  const row = await db
    .selectFrom('alerts')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('outcome', '=', 'received')
    .executeTakeFirst();
  undecided = Number(row?.n ?? 0);
  if (undecided === 0) break;
  await new Promise((resolve) => setTimeout(resolve, 200));
}
const drainedMs = Date.now() - start;
const outcomes = await db
  .selectFrom('alerts')
  .select(['outcome', (eb) => eb.fn.countAll().as('n')])
  .groupBy('outcome')
  .execute();
const recorded = outcomes.reduce((sum, row) => sum + Number(row.n), 0);
const runs = await db
  .selectFrom('runs')
  .select((eb) => eb.fn.countAll().as('n'))
  .where('source', '=', 'alert')
  .executeTakeFirst();
// The server's own time per webhook answer (Fastify's, request read -> reply sent), from its
// latency histogram: what the client's times add is its wait for a socket and for this process.
const { token: metricsToken } = await createToken(server.store, {
  name: 'bench-metrics',
  role: 'viewer',
  expires: '1d',
});
const metricsText = await fetch(new URL('/metrics', url), {
  headers: { authorization: `Bearer ${metricsToken}` },
}).then((response) => response.text());
const hookBuckets = {};
for (const line of metricsText.split('\n')) {
  if (!line.startsWith('rune_http_request_duration_seconds_bucket{')) continue;
  if (!line.includes('route="/v1/hooks/alertmanager/:receiver"')) continue;
  const le = /le="([^"]+)"/.exec(line)?.[1];
  if (le !== undefined) hookBuckets[le] = Number(line.slice(line.lastIndexOf(' ') + 1));
}
const hookCount = hookBuckets['+Inf'] ?? 0;
latencies.sort((a, b) => a - b);
const pct = (p) =>
  latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)];
const result = {
  notifications: total,
  keys,
  nodes,
  connections,
  sent_within_s: Math.round(sentMs / 100) / 10,
  all_decided_after_s: Math.round(drainedMs / 100) / 10,
  http_statuses: Object.fromEntries(statuses),
  webhook_ms: {
    p50: Math.round(pct(50) * 100) / 100,
    p90: Math.round(pct(90) * 100) / 100,
    p99: Math.round(pct(99) * 100) / 100,
    max: Math.round(latencies.at(-1) * 100) / 100,
  },
  server_answer_share_within: Object.fromEntries(
    ['0.005', '0.01', '0.025', '0.1', '1']
      .filter((le) => le in hookBuckets && hookCount > 0)
      .map((le) => [
        `${Number(le) * 1000} ms`,
        Math.round((hookBuckets[le] / hookCount) * 1000) / 1000,
      ]),
  ),
  alerts_recorded: recorded,
  outcomes: Object.fromEntries(outcomes.map((row) => [row.outcome, Number(row.n)])),
  undecided,
  runs_started: Number(runs?.n ?? 0),
  exactly_one_run_per_key: Number(runs?.n ?? 0) === keys,
  none_lost: recorded === total && undecided === 0,
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
agent.destroy();
await server.close();
rmSync(home, { recursive: true, force: true });
process.exit(result.exactly_one_run_per_key && result.none_lost ? 0 : 1);
