// RSS of a real `rune serve` process after 10 000 runs, and after it has been idle (benchmarks only,
// never part of the test suite):
//
//   npx -y pnpm@10.34.9 build && node bench/serve-rss.mjs
//   node bench/serve-rss.mjs --runs 10000 --concurrency 50 --rounds 3 --variants off,on,on-arena2
//
// Each variant is a `rune serve` process of its own (the built CLI, a throw-away home, the embedded
// SQLite store, a token made with `rune token create`) on 127.0.0.1. This process sends it --runs
// dry runs of noop, --concurrency at a time, reads the server's VmRSS from /proc right after the
// last answer, waits --wait seconds without a request (the idle reclaim's 10 s and some), and reads
// VmRSS again, with the reclaims and pauses from /metrics (a /metrics request is not activity), and
// the server's CPU time per run (/proc/PID/stat, all threads: less sensitive to the machine's load
// than the runs per second).
// Variants (comma-separated), each `off` or `on`, optionally followed by `+`-separated additions:
//   off         [server] idle_reclaim = "off"
//   on          idle_reclaim as configured by --idle (default "10s", the default)
//   +arena2     MALLOC_ARENA_MAX=2 in the server's environment (glibc: at most two malloc arenas
//               instead of 8 per core; it can only be set before the process starts); `on-arena2`
//               is the same as `on+arena2`
//   +old        the CLI given with --cli-old (another build, e.g. a copy of main's), side by side
//   +NAME=VALUE an environment variable of the server (NODE_OPTIONS=--max-semi-space-size=4, ...)
// --breakdown adds where the memory is, right after the runs and after the wait: resident MB by
// kind of mapping (bench/lib/smaps.mjs) and each thread's V8 heap (bench/lib/heap-probe.cjs,
// loaded into every thread with NODE_OPTIONS=--require).
// The variants take turns: one server of each per round, the order rotated every round, so the
// machine's background load falls on all alike. JSON lines on stdout, a table on stderr.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '@rune/server/testing';
import { smapsBreakdown } from './lib/smaps.mjs';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
    idle: { type: 'string', default: '10s' },
    wait: { type: 'string', default: '16' },
    variants: { type: 'string', default: 'off,on,on-arena2' },
    cli: { type: 'string' },
    'cli-old': { type: 'string' },
    breakdown: { type: 'boolean', default: false },
  },
});
const CLI = values.cli ?? fileURLToPath(new URL('../apps/cli/bin/rune.js', import.meta.url));
const PROBE = fileURLToPath(new URL('./lib/heap-probe.cjs', import.meta.url));
const RUNS = Number(values.runs);
const CONCURRENCY = Number(values.concurrency);
const WAIT_MS = Number(values.wait) * 1000;
const variants = values.variants.split(',');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** VmRSS of `pid` in MB. */
const rssMb = (pid) => {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(match?.[1]) / 1024);
};

/** CPU time (user + system, all threads) of `pid` so far, in ms. */
const cpuMs = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
};

/** Reclaims and pause sums by thread, from the Prometheus text. */
function reclaimsOf(text) {
  const out = {};
  for (const [, thread, value] of text.matchAll(
    /^rune_memory_reclaims_total\{thread="(\w+)"\} (\d+)/gm,
  )) {
    out[thread] = { reclaims: Number(value) };
  }
  for (const [, thread, value] of text.matchAll(
    /^rune_memory_reclaim_pause_seconds_sum\{thread="(\w+)"\} ([\d.e-]+)/gm,
  )) {
    out[thread] = { ...out[thread], pause_ms: Math.round(Number(value) * 10000) / 10 };
  }
  return out;
}

/** A variant's reclaim setting, CLI and extra environment. */
function parseVariant(variant) {
  const [base, ...additions] = variant.replace(/-arena2$/, '+arena2').split('+');
  if (base !== 'on' && base !== 'off') throw new Error(`variant ${variant}: on or off first`);
  let cli = CLI;
  const env = {};
  for (const addition of additions) {
    if (addition === 'arena2') env.MALLOC_ARENA_MAX = '2';
    else if (addition === 'old') {
      if (values['cli-old'] === undefined) throw new Error(`variant ${variant} needs --cli-old`);
      cli = values['cli-old'];
    } else if (addition.includes('=')) {
      const at = addition.indexOf('=');
      env[addition.slice(0, at)] = addition.slice(at + 1);
    } else throw new Error(`variant ${variant}: unknown addition ${addition}`);
  }
  return { reclaim: base === 'on' ? values.idle : 'off', cli, env };
}

/** Each thread's heap, from the probe's files (written within ~200 ms of the trigger). */
async function heapsOf(dir) {
  writeFileSync(join(dir, 'trigger'), String(Date.now()));
  const started = Date.now();
  await sleep(600);
  const out = {};
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.json')) continue;
    const probe = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    if (probe.written < started) continue;
    const mb = (bytes) => Math.round(bytes / 1048576);
    out[probe.thread] = {
      committed: mb(probe.heap.total_heap_size),
      physical: mb(probe.heap.total_physical_size),
      used: mb(probe.heap.used_heap_size),
      limit: mb(probe.heap.heap_size_limit),
      young: mb(probe.spaces.new_space?.size ?? 0),
      young_large: mb(probe.spaces.new_large_object_space?.size ?? 0),
      old: mb(probe.spaces.old_space?.size ?? 0),
      large: mb(probe.spaces.large_object_space?.size ?? 0),
      code: mb(
        (probe.spaces.code_space?.size ?? 0) + (probe.spaces.code_large_object_space?.size ?? 0),
      ),
      external: mb(probe.heap.external_memory),
      malloced: mb(probe.heap.malloced_memory),
    };
  }
  return out;
}

async function measure(variant) {
  const home = mkdtempSync(join(tmpdir(), 'rune-bench-rss-'));
  const { reclaim, cli, env: extra } = parseVariant(variant);
  const probeDir = join(home, 'probe');
  const env = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, 'config'),
    XDG_STATE_HOME: join(home, 'state'),
    XDG_DATA_HOME: join(home, 'data'),
    ...extra,
  };
  if (values.breakdown) {
    mkdirSync(probeDir);
    env.RUNE_HEAP_PROBE = probeDir;
    env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --require ${PROBE}`.trim();
  }
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  mkdirSync(join(home, 'config', 'rune'), { recursive: true });
  writeFileSync(
    join(home, 'config', 'rune', 'config.toml'),
    `[server]\nlisten = "127.0.0.1:${port}"\nrate_limit = 1000000\nqueue_size = 100000\nidle_reclaim = "${reclaim}"\n`,
  );
  const { token } = JSON.parse(
    execFileSync(
      process.execPath,
      [cli, 'token', 'create', '--name', 'bench', '--role', 'operator', '--output', 'json'],
      { env, encoding: 'utf8' },
    ),
  );
  const server = spawn(process.execPath, [cli, 'serve'], { env, stdio: 'ignore' });
  try {
    for (let i = 0; ; i++) {
      if ((await fetch(`${url}/livez`).catch(() => undefined))?.ok) break;
      if (i > 150) throw new Error(`rune serve (${variant}) did not start`);
      await sleep(200);
    }
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const body = JSON.stringify({
      action: 'noop',
      targets: ['localhost'],
      options: { dry_run: true },
    });
    let failed = 0;
    const cpuBefore = cpuMs(server.pid);
    const started = performance.now();
    for (let sent = 0; sent < RUNS; sent += CONCURRENCY) {
      const answers = await Promise.all(
        Array.from({ length: Math.min(CONCURRENCY, RUNS - sent) }, () =>
          fetch(`${url}/v1/runs`, { method: 'POST', headers, body }).then(async (response) => {
            await response.arrayBuffer();
            return response.status;
          }),
        ),
      );
      failed += answers.filter((status) => status !== 202).length;
    }
    const seconds = (performance.now() - started) / 1000;
    const afterRuns = rssMb(server.pid);
    const cpuPerRun = (cpuMs(server.pid) - cpuBefore) / RUNS;
    const breakdown = {};
    if (values.breakdown) {
      breakdown.smaps_after_runs = smapsBreakdown(server.pid);
      breakdown.heaps_after_runs = await heapsOf(probeDir);
    }
    await sleep(WAIT_MS);
    const afterIdle = rssMb(server.pid);
    if (values.breakdown) {
      breakdown.smaps_after_idle = smapsBreakdown(server.pid);
      breakdown.heaps_after_idle = await heapsOf(probeDir);
    }
    const metrics = await (await fetch(`${url}/metrics`, { headers })).text();
    return {
      variant,
      runs: RUNS,
      failed,
      runs_per_s: Math.round(RUNS / seconds),
      server_cpu_ms_per_run: Math.round(cpuPerRun * 100) / 100,
      rss_after_runs_mb: afterRuns,
      rss_after_idle_mb: afterIdle,
      threads: reclaimsOf(metrics),
      ...breakdown,
    };
  } finally {
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
    rmSync(home, { recursive: true, force: true });
  }
}

const results = [];
for (let round = 0; round < Number(values.rounds); round++) {
  const order = variants.map((_, i) => variants[(i + round) % variants.length]);
  for (const variant of order) {
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
    const result = { round: round + 1, load: Number(load), ...(await measure(variant)) };
    results.push(result);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
}

const median = (xs) => {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (xs) => `${median(xs)} (${Math.min(...xs)}-${Math.max(...xs)})`;
process.stderr.write(
  '\n| variant | RSS after runs MB, median (min-max) | RSS after idle MB | reclaim pause ms main / store / audit | server CPU ms per run |\n',
);
process.stderr.write('| --- | --- | --- | --- | --- |\n');
for (const variant of variants) {
  const mine = results.filter((r) => r.variant === variant);
  const pause = (thread) => {
    const xs = mine.map((r) => r.threads[thread]?.pause_ms).filter((x) => x !== undefined);
    return xs.length === 0 ? '—' : String(median(xs));
  };
  process.stderr.write(
    `| ${variant} | ${spread(mine.map((r) => r.rss_after_runs_mb))} | ${spread(mine.map((r) => r.rss_after_idle_mb))} | ${pause('main')} / ${pause('store')} / ${pause('audit')} | ${spread(mine.map((r) => r.server_cpu_ms_per_run))} |\n`,
  );
}
if (values.breakdown) {
  process.stderr.write(
    '\n| variant | right after the runs, median MB: file-backed / malloc (brk + arenas) / V8 and other anonymous / stacks | V8 heap committed main (young + old) / store / audit |\n',
  );
  process.stderr.write('| --- | --- | --- |\n');
  for (const variant of variants) {
    const mine = results.filter((r) => r.variant === variant);
    const m = (pick) => median(mine.map(pick));
    const heap = (thread, key) => m((r) => r.heaps_after_runs?.[thread]?.[key] ?? 0);
    process.stderr.write(
      `| ${variant} | ${m((r) => r.smaps_after_runs.file)} / ${m((r) => r.smaps_after_runs.brk + r.smaps_after_runs.arenas)} / ${m((r) => r.smaps_after_runs.anon + r.smaps_after_runs.wasm)} / ${m((r) => r.smaps_after_runs.stacks)} | ${heap('main', 'committed')} (${heap('main', 'young')} + ${heap('main', 'old')}) / ${heap('store', 'committed')} / ${heap('audit', 'committed')} |\n`,
    );
  }
}
