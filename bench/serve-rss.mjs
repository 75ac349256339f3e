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
// VmRSS again, with the reclaims and pauses from /metrics (a /metrics request is not activity).
// Variants (comma-separated):
//   off         [server] idle_reclaim = "off"
//   on          idle_reclaim as configured by --idle (default "10s", the default)
//   *-arena2    the same with MALLOC_ARENA_MAX=2 in the server's environment (glibc: at most two
//               malloc arenas instead of 8 per core; it can only be set before the process starts)
// The variants take turns: one server of each per round, the order rotated every round, so the
// machine's background load falls on all alike. JSON lines on stdout, a table on stderr.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '@rune/server/testing';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
    idle: { type: 'string', default: '10s' },
    wait: { type: 'string', default: '16' },
    variants: { type: 'string', default: 'off,on,on-arena2' },
    cli: { type: 'string' },
  },
});
const CLI = values.cli ?? fileURLToPath(new URL('../apps/cli/bin/rune.js', import.meta.url));
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

async function measure(variant) {
  const home = mkdtempSync(join(tmpdir(), 'rune-bench-rss-'));
  const env = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, 'config'),
    XDG_STATE_HOME: join(home, 'state'),
    XDG_DATA_HOME: join(home, 'data'),
    ...(variant.endsWith('-arena2') ? { MALLOC_ARENA_MAX: '2' } : {}),
  };
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  mkdirSync(join(home, 'config', 'rune'), { recursive: true });
  const reclaim = variant.startsWith('on') ? values.idle : 'off';
  writeFileSync(
    join(home, 'config', 'rune', 'config.toml'),
    `[server]\nlisten = "127.0.0.1:${port}"\nrate_limit = 1000000\nqueue_size = 100000\nidle_reclaim = "${reclaim}"\n`,
  );
  const { token } = JSON.parse(
    execFileSync(
      process.execPath,
      [CLI, 'token', 'create', '--name', 'bench', '--role', 'operator', '--output', 'json'],
      { env, encoding: 'utf8' },
    ),
  );
  const server = spawn(process.execPath, [CLI, 'serve'], { env, stdio: 'ignore' });
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
    await sleep(WAIT_MS);
    const afterIdle = rssMb(server.pid);
    const metrics = await (await fetch(`${url}/metrics`, { headers })).text();
    return {
      variant,
      runs: RUNS,
      failed,
      runs_per_s: Math.round(RUNS / seconds),
      rss_after_runs_mb: afterRuns,
      rss_after_idle_mb: afterIdle,
      threads: reclaimsOf(metrics),
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
  '\n| variant | RSS after runs MB, median (min-max) | RSS after idle MB | reclaim pause ms main / store / audit |\n',
);
process.stderr.write('| --- | --- | --- | --- |\n');
for (const variant of variants) {
  const mine = results.filter((r) => r.variant === variant);
  const pause = (thread) => {
    const xs = mine.map((r) => r.threads[thread]?.pause_ms).filter((x) => x !== undefined);
    return xs.length === 0 ? '—' : String(median(xs));
  };
  process.stderr.write(
    `| ${variant} | ${spread(mine.map((r) => r.rss_after_runs_mb))} | ${spread(mine.map((r) => r.rss_after_idle_mb))} | ${pause('main')} / ${pause('store')} / ${pause('audit')} |\n`,
  );
}
