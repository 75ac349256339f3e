#!/usr/bin/env node
// Alert receiver benchmark (never part of the test suite). See bench/README.md, "Alert receivers".
//
//   node bench/alerts.mjs [--notifications 10000] [--keys 1000] [--nodes 10] [--seconds 60]
//                         [--connections 16] [--server-from DIR] [--before DIR --pairs 2]
//                         [--no-phases]
//
// --server-from DIR: benchmark another build of the server instead (DIR holds a copy of packages/
// with their dist/, e.g. taken before a change); run both back to back to compare on one load.
// --before DIR: does that itself — --pairs pairs of runs, that build and this one alternating,
// each in a fresh process — and prints every run's result with the load average it started at.
// The phases (on unless --no-phases): the server's probe (RUNE_BENCH_WEBHOOK_PHASES=1) of
// where each webhook's answer time went, printed as p50/p99 per phase.
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

const { values } = parseArgs({
  options: {
    notifications: { type: 'string', default: '10000' },
    keys: { type: 'string', default: '1000' },
    nodes: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '60' },
    connections: { type: 'string', default: '16' },
    'server-from': { type: 'string' },
    before: { type: 'string' },
    pairs: { type: 'string', default: '2' },
    'no-phases': { type: 'boolean', default: false },
  },
});

// --before DIR: side by side in one invocation — alternate runs of that build and this one, each
// in a fresh process, and print their results together (the load moves; pairs share it).
if (values.before !== undefined) {
  const { execFileSync } = await import('node:child_process');
  const { loadavg } = await import('node:os');
  const passOn = ['notifications', 'keys', 'nodes', 'seconds', 'connections'].flatMap((key) => [
    `--${key}`,
    values[key],
  ]);
  const rows = [];
  for (let pair = 0; pair < Number(values.pairs); pair++) {
    for (const build of pair % 2 === 0 ? ['before', 'after'] : ['after', 'before']) {
      const args = [
        new URL(import.meta.url).pathname,
        ...passOn,
        ...(build === 'before' ? ['--server-from', values.before] : []),
      ];
      const load = loadavg()[0].toFixed(1);
      let output;
      try {
        output = execFileSync(process.execPath, args, {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'inherit'],
        });
      } catch (error) {
        output = error.stdout;
      }
      const result = JSON.parse(output);
      rows.push({ pair, build, load, ...result });
      process.stderr.write(
        `pair ${pair} ${build} (load ${load}): p50 ${result.webhook_ms.p50} p99 ${result.webhook_ms.p99} ms, server <=10 ms ${result.server_answer_share_within['10 ms']}\n`,
      );
    }
  }
  process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  process.exit(rows.every((row) => row.exactly_one_run_per_key && row.none_lost) ? 0 : 1);
}
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
// The phase probe (alerts/webhook-phases.ts) reads its variable when the server's modules load,
// and the store's worker thread inherits it: set before the import.
if (!values['no-phases']) process.env.RUNE_BENCH_WEBHOOK_PHASES = '1';
const serverModule =
  values['server-from'] === undefined
    ? await import('@rune/server')
    : await import(join(values['server-from'], 'packages/server/dist/index.js'));
const { createRuneServer, createToken } = serverModule;
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

// The event loop's delay and the process's CPU while notifications are sent (server and this
// client share the loop): what the machine's load takes away shows here, not in the phases.
const { monitorEventLoopDelay } = await import('node:perf_hooks');
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
const cpuBefore = process.cpuUsage();
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
loopDelay.disable();
const cpuWhileSending = process.cpuUsage(cpuBefore);

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
  load_average: (await import('node:os')).loadavg().map((value) => Math.round(value * 10) / 10),
  event_loop_delay_ms_while_sending: {
    p50: Math.round(loopDelay.percentile(50) / 1e4) / 100,
    p99: Math.round(loopDelay.percentile(99) / 1e4) / 100,
    max: Math.round(loopDelay.max / 1e4) / 100,
  },
  process_cpu_ms_per_notification_while_sending:
    Math.round(((cpuWhileSending.user + cpuWhileSending.system) / 1000 / total) * 100) / 100,
  ...phaseSummary(),
};

/**
 * Where each webhook's answer went (the server's probe, RUNE_BENCH_WEBHOOK_PHASES): p50/p99 of
 * every phase, from Fastify's onRequest to onResponse. A build without the probe gives nothing.
 */
function phaseSummary() {
  const samples = serverModule.takeWebhookPhaseSamples?.() ?? [];
  if (samples.length === 0) return {};
  const phases = {
    read_body_and_hooks: (s) => s.handler - s.request,
    auth: (s) => s.authenticated - s.handler,
    parse: (s) => s.parsed - s.authenticated,
    normalize: (s) => s.normalized - s.parsed,
    engine_batch_wait: (s) => s.storeAsked - s.accepted,
    intake_write_fdatasync: (s) => s.intakeMs,
    to_worker: (s) => s.store?.received - s.storeAsked,
    worker_statements: (s) => s.store?.ran - s.store?.received,
    worker_group_wait: (s) => s.store?.commitStarted - s.store?.ran,
    worker_commit: (s) => s.store?.committed - s.store?.commitStarted,
    commit_fsync_time: (s) => s.store?.fsyncMs,
    to_main: (s) => s.stored - s.store?.committed,
    durable_total: (s) => s.stored - s.storeAsked,
    after_store: (s) => s.replied - s.stored,
    send: (s) => s.responded - s.replied,
    total: (s) => s.responded - s.request,
  };
  const quantiles = (values) => {
    const sorted = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
    if (sorted.length === 0) return null;
    const at = (p) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
    const round = (value) => Math.round(value * 100) / 100;
    return { p50: round(at(0.5)), p99: round(at(0.99)), max: round(sorted.at(-1)) };
  };
  return {
    phase_samples: samples.length,
    phases_ms: Object.fromEntries(
      Object.entries(phases).map(([name, of]) => [name, quantiles(samples.map(of))]),
    ),
    fsyncs_per_commit: quantiles(samples.map((s) => s.store?.fsyncs)),
    operations_per_commit: quantiles(samples.map((s) => s.store?.groupSize)),
    store_operations_per_webhook: quantiles(samples.map((s) => s.storeOperations)),
  };
}
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
agent.destroy();
await server.close();
rmSync(home, { recursive: true, force: true });
process.exit(result.exactly_one_run_per_key && result.none_lost ? 0 : 1);
