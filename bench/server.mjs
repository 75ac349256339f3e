#!/usr/bin/env node
// RUNE service benchmark (never part of the test suite). See bench/README.md, "rune serve".
//
//   node bench/server.mjs [--seconds 30] [--noop-seconds S] [--rate 200] [--runs 10000] [--sse 100]
//                         [--warmup 3] [--skip-noop] [--dry-run-only] [--baseline DIR] [--postgres]
//
// Starts a real `createRuneServer()` (built @rune/server) on 127.0.0.1 with a throw-away home,
// then measures, one scenario after the other:
//   dry-run   POST /v1/runs dry runs of noop at --rate req/s for --seconds, twice: steady (evenly
//             spaced, from a client process of its own, bench/lib/steady-load.mjs: latencies from
//             each request's scheduled time) and with autocannon (whose overallRate sends each
//             second's quota in a burst; see steady-load.mjs for why its percentiles mislead)
//   noop      the same with real noop runs on localhost (the local transport): submit latency
//   sse       --sse clients on the event stream of one run: all receive run-end, time to the last
//   store     --runs dry runs in total: RSS of the process after them, store bytes per run
// Every request goes to loopback only; every loop is bounded in count and time.
// --warmup S: each server first gets S seconds of the dry-run load, not measured (default 3): the
// first requests of a fresh process load modules, compile, and open the audit key and files, and
// took up to ~800 ms each (a cold start, not the steady state the targets are about).
// --baseline DIR: first runs the dry-run scenario against another build of the server (DIR holds
// a copy of packages/ with their dist/, e.g. taken before a change), then against this one, so
// both rows come from one run on one machine load. --dry-run-only stops after the dry runs.
// --postgres: the store is a real PostgreSQL (@rune/server/testing; a fresh database for each
// server) instead of the SQLite file, so the audit chain is the database's (audit_records).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as current from '@rune/server';
import { startPostgres } from '@rune/server/testing';
import autocannon from 'autocannon';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    rate: { type: 'string', default: '200' },
    runs: { type: 'string', default: '10000' },
    sse: { type: 'string', default: '100' },
    warmup: { type: 'string', default: '3' },
    'noop-seconds': { type: 'string' },
    'skip-noop': { type: 'boolean', default: false },
    'dry-run-only': { type: 'boolean', default: false },
    baseline: { type: 'string' },
    postgres: { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const rate = Number(values.rate);

const rows = [];
const phaseRows = [];
const postgres = values.postgres ? await startPostgres() : undefined;
let databases = 0;
const dryRunBody = { action: 'noop', targets: ['localhost'], options: { dry_run: true } };

/** Starts a server of `module` in a throw-away home; returns what the scenarios need. */
async function start(module) {
  const home = mkdtempSync(join(tmpdir(), 'rune-bench-server-'));
  const env = {
    HOME: home,
    XDG_CONFIG_HOME: join(home, 'config'),
    XDG_STATE_HOME: join(home, 'state'),
    XDG_DATA_HOME: join(home, 'data'),
    PATH: process.env.PATH,
  };
  const store =
    postgres === undefined
      ? join(home, 'server.sqlite')
      : await postgres.createDatabase(`bench_${++databases}`);
  const configFile = join(home, 'rune.toml');
  writeFileSync(
    configFile,
    `[server]\nlisten = "127.0.0.1:0"\nstore = ${JSON.stringify(store)}\nrate_limit = 1000000\nqueue_size = 100000\n`,
  );
  const server = await module.createRuneServer({ configFile, env, port: 0 });
  const url = await server.listen();
  const { token } = await module.createToken(server.store, {
    name: 'bench',
    role: 'operator',
    expires: '1d',
  });
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  return { home, store, server, url, headers };
}

if (values.baseline !== undefined) {
  const baseline = await import(join(values.baseline, 'packages/server/dist/index.js'));
  const base = await start(baseline);
  await warmUp(base);
  await steady('dry-run steady (baseline)', base, baseline);
  await load('dry-run autocannon (baseline)', dryRunBody, seconds, base, baseline);
  await base.server.close();
  rmSync(base.home, { recursive: true, force: true });
}
const { home, store, server, url, headers } = await start(current);

/**
 * CPU ticks (user + system, 1/100 s) of each thread of this process, from /proc (Linux only;
 * empty elsewhere): the main thread is the one whose id is the pid, the others are the store's
 * worker, libuv's pool (audit appends) and V8's helpers.
 */
function threadTicks() {
  const ticks = new Map();
  let tids = [];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return ticks;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks.set(tid, Number(fields[11]) + Number(fields[12]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return ticks;
}

/** p50 and p99 of `values` (ms), rounded to 0.01. */
function percentiles(values) {
  const sorted = values.slice().sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { p50: Number(at(0.5).toFixed(2)), p99: Number(at(0.99).toFixed(2)) };
}

/** The unmeasured warm-up of a fresh server (see --warmup). */
async function warmUp(target) {
  const duration = Number(values.warmup);
  if (!(duration > 0)) return;
  await autocannon({
    url: `${target.url}/v1/runs`,
    method: 'POST',
    headers: target.headers,
    body: JSON.stringify(dryRunBody),
    connections: 20,
    overallRate: rate,
    duration,
  });
}

/**
 * Runs one scenario: `generate()` produces the load and resolves with the client's row (its
 * latencies, counts, and `answered`); this adds where each request's time went on the server
 * (servers that record it: see submit-phases.ts), how late the event loop was (waiting shows
 * there, working shows in CPU per request), and CPU per answered request of the main thread
 * (the server's event loop, and autocannon when it runs in this process) and of every other
 * thread of the process.
 */
async function measured(name, module, generate) {
  const before = threadTicks();
  const phases = [];
  module.recordSubmitPhases?.((entry) => phases.push(entry));
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const { answered, ...client } = await generate();
  loopDelay.disable();
  module.recordSubmitPhases?.(undefined);
  const row = {
    scenario: name,
    ...client,
    load: Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]),
    'loop delay p50/p99 ms': `${(loopDelay.percentile(50) / 1e6).toFixed(1)}/${(loopDelay.percentile(99) / 1e6).toFixed(1)}`,
  };
  const after = threadTicks();
  let main = 0;
  let others = 0;
  for (const [tid, ticks] of after) {
    const spent = ticks - (before.get(tid) ?? 0);
    if (tid === String(process.pid)) main += spent;
    else others += spent;
  }
  if (after.size > 0) {
    row['main CPU ms/req'] = Number(((main * 10) / Math.max(1, answered)).toFixed(2));
    row['other threads CPU ms/req'] = Number(((others * 10) / Math.max(1, answered)).toFixed(2));
  }
  rows.push(row);
  console.log(row);
  if (phases.length > 0) {
    const breakdown = {};
    for (const phase of Object.keys(phases[0])) {
      breakdown[phase] = percentiles(phases.map((entry) => entry[phase]));
    }
    phaseRows.push({ scenario: name, requests: phases.length, ...breakdown });
    console.log({ scenario: name, phases: breakdown });
  }
}

/**
 * The steady scenario: `rate` dry runs a second, evenly spaced, from a client in its own process
 * (bench/lib/steady-load.mjs), latencies from each request's scheduled time.
 */
function steady(name, target, module) {
  return measured(name, module, async () => {
    const child = spawn(
      process.execPath,
      [
        fileURLToPath(new URL('./lib/steady-load.mjs', import.meta.url)),
        JSON.stringify({
          url: `${target.url}/v1/runs`,
          headers: target.headers,
          body: dryRunBody,
          rate,
          seconds,
        }),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    await new Promise((resolve) => child.once('exit', resolve));
    const result = JSON.parse(output);
    const answered = result['2xx'] + result.non2xx;
    return {
      'req/s': Math.round(answered / result.seconds),
      'p50 ms': result.fromSchedule.p50,
      'p99 ms': result.fromSchedule.p99,
      'max ms': result.fromSchedule.max,
      '2xx': result['2xx'],
      non2xx: result.non2xx,
      errors: result.errors,
      answered,
    };
  });
}

/** The same load from autocannon in this process (see steady-load.mjs for its percentiles). */
function load(name, body, duration = seconds, target = undefined, module = current) {
  return measured(name, module, async () => {
    const result = await autocannon({
      url: `${(target ?? { url }).url}/v1/runs`,
      method: 'POST',
      headers: (target ?? { headers }).headers,
      body: JSON.stringify(body),
      connections: 20,
      overallRate: rate,
      duration,
    });
    return {
      'req/s': Math.round(result.requests.average),
      'p50 ms': result.latency.p50,
      'p99 ms': result.latency.p99,
      'max ms': result.latency.max,
      '2xx': result['2xx'],
      non2xx: result.non2xx,
      errors: result.errors + result.timeouts,
      answered: result['2xx'] + result.non2xx,
    };
  });
}

const drain = async () => {
  const deadline = Date.now() + 600_000;
  while (Date.now() < deadline) {
    const { queued, running } = server.manager.depth();
    if (queued + running === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
};

await warmUp({ url, headers });
await steady('dry-run steady', { url, headers }, current);
await load('dry-run autocannon', dryRunBody);
if (values['dry-run-only']) {
  await server.close();
  rmSync(home, { recursive: true, force: true });
  await postgres?.stop();
  printTable();
  process.exit(0);
}
if (!values['skip-noop']) {
  await load(
    'noop (local)',
    { action: 'noop', targets: ['localhost'] },
    Number(values['noop-seconds'] ?? seconds),
  );
  await drain();
}

// SSE: clients connect while the run holds (sleep_ms), all must see run-end.
const submit = await fetch(`${url}/v1/runs`, {
  method: 'POST',
  headers,
  body: JSON.stringify({ action: 'noop', targets: ['localhost'], params: { sleep_ms: 3000 } }),
});
const { id } = await submit.json();
const clients = Number(values.sse);
const ended = [];
await Promise.all(
  Array.from({ length: clients }, async () => {
    const response = await fetch(`${url}/v1/runs/${id}/events`, { headers });
    const text = await response.text();
    if (text.includes('event: run-end')) ended.push(Date.now());
  }),
);
const runDoc = await (await fetch(`${url}/v1/runs/${id}`, { headers })).json();
const lastMs = Math.max(...ended) - Date.parse(runDoc.finished_at);
console.log({
  scenario: 'sse',
  clients,
  received_run_end: ended.length,
  last_client_after_end_ms: lastMs,
});

// Store: fill up to --runs runs, then RSS and bytes per run.
const target = Number(values.runs);
const countRuns = async () =>
  Number(
    (
      await server.store.db
        .selectFrom('runs')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );
let count = await countRuns();
const body = JSON.stringify({ action: 'noop', targets: ['localhost'], options: { dry_run: true } });
while (count < target) {
  const batch = Math.min(50, target - count);
  await Promise.all(
    Array.from({ length: batch }, () =>
      fetch(`${url}/v1/runs`, { method: 'POST', headers, body }).then((r) => r.arrayBuffer()),
    ),
  );
  count += batch;
}
globalThis.gc?.();
const rssMb = Math.round(process.memoryUsage().rss / 1048576);
const bytes = postgres === undefined ? statSync(store).size : Number.NaN;
console.log({
  scenario: 'store',
  runs: count,
  rss_mb: rssMb,
  store_bytes: bytes,
  bytes_per_run: Math.round(bytes / count),
});

await server.close();
rmSync(home, { recursive: true, force: true });
await postgres?.stop();
printTable();

function printTable() {
  const cpu = rows.some((row) => 'main CPU ms/req' in row);
  console.log(
    `\n| scenario | req/s | p50 ms | p99 ms | max ms | 2xx | non-2xx | errors | load | loop delay p50/p99 ms |${cpu ? ' main CPU ms/req | other threads CPU ms/req |' : ''}`,
  );
  console.log(
    `| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |${cpu ? ' --- | --- |' : ''}`,
  );
  for (const row of rows) console.log(`| ${Object.values(row).join(' | ')} |`);
  if (phaseRows.length === 0) return;
  const names = Object.keys(phaseRows[0]).slice(2);
  console.log(`\n| scenario (p50 / p99 ms) | requests | ${names.join(' | ')} |`);
  console.log(`| --- | --- |${names.map(() => ' --- |').join('')}`);
  for (const row of phaseRows) {
    const cells = names.map((phase) => `${row[phase].p50} / ${row[phase].p99}`);
    console.log(`| ${row.scenario} | ${row.requests} | ${cells.join(' | ')} |`);
  }
}
