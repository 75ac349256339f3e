#!/usr/bin/env node
// RUNE fan-out benchmark (never part of the test suite). See bench/README.md.
//
//   node bench/fanout.mjs [--hosts 10,100] [--startup-runs 11] [--skip-startup] [--startup-only] [--api-only]
//                         [--login-user auto|current] [--cli-without-otel]
//
// For each fleet size N: starts N real sshd "hosts" on loopback, then measures in the same run
//   rune-fresh    `rune run noop --node @all --inventory fleet.yaml` (new process, empty remote cache)
//   rune-cached   the same command again (new process and connections, plugin cached)
//   rune-cached-traced  the same with tracing on (OTLP to bench/lib/otlp-sink.mjs), then rune-cached again
//   rune-warm     a second action in the same process over warm connections (@rune/core API)
//   ssh-fresh     N parallel OpenSSH clients shipping + running the plugin
//   ssh-cached    N parallel OpenSSH clients running the cached plugin
// reporting wall time, control-node CPU per host (user+sys of the process tree, /usr/bin/time)
// and peak RSS; then the start-up times of bench/startup.mjs (`rune --help`, `rune --version`,
// `rune run noop --node localhost`: wall and CPU).
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCliWithoutOtel } from './lib/cli-without-otel.mjs';
import { benchLoginUser } from './lib/login-user.mjs';
import { startOtlpSink } from './lib/otlp-sink.mjs';
import { startBenchSshdFleet } from './lib/sshd-fleet.mjs';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(`--${name}`);
  return index === -1 ? fallback : args[index + 1];
};
// --startup-only: only the start-up medians (no fleet).
const sizes = args.includes('--startup-only')
  ? []
  : option('hosts', '10,100').split(',').map(Number);
const startupRuns = Number(option('startup-runs', '11'));
const cli = join(root, 'apps/cli/bin/rune.js');
// --cli-without-otel: after the off / traced / off rows, `rune-cached-no-otel`: the same command
// with a build of the CLI that has no OpenTelemetry code at all (bench/lib/cli-without-otel.mjs).
const withoutOtel = args.includes('--cli-without-otel') ? buildCliWithoutOtel() : undefined;
// --api-only: measure through the @rune/core API only (no CLI runs, no start-up times).
const apiOnly = args.includes('--api-only');
if (!apiOnly && !existsSync(join(root, 'apps/cli/dist/main.js'))) {
  console.error('bench: build first (npx -y pnpm@10.34.9 build), or use --api-only');
  process.exit(2);
}
// CPU and peak RSS of whole process trees come from GNU time: without it the numbers would be wrong.
if (!existsSync('/usr/bin/time')) {
  console.error(
    'bench: /usr/bin/time not found. It measures CPU and peak memory of each run; install it:\n' +
      '  apt-get install time      (Debian/Ubuntu; `dnf install time` on Fedora/RHEL)',
  );
  process.exit(2);
}

function findNoop() {
  const dir = join(root, 'packages/core/dist/builtin-plugins');
  if (existsSync(dir)) {
    const file = readdirSync(dir).find((name) => /^noop(\.sh)?$/.test(name));
    if (file !== undefined) return join(dir, file);
  }
  throw new Error(`noop plugin not found in ${dir}; run the build`);
}

/** Runs a command under /usr/bin/time; returns wall ms, CPU ms (user+sys of the tree), max RSS MB. */
function timed(command, commandArgs, options = {}) {
  const timeFile = join(work, `time-${randomUUID()}`);
  const result = spawnSync(
    '/usr/bin/time',
    ['-o', timeFile, '-f', '%e %U %S %M', command, ...commandArgs],
    { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...options },
  );
  const [elapsed, user, sys, maxKb] = readFileSync(timeFile, 'utf8')
    .trim()
    .split('\n')
    .at(-1)
    .split(' ')
    .map(Number);
  rmSync(timeFile, { force: true });
  return {
    status: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
    wallMs: elapsed * 1000,
    cpuMs: (user + sys) * 1000,
    rssMb: maxKb / 1024,
  };
}

const work = mkdtempSync(join(tmpdir(), 'rune-bench-'));
// Who the SSH sessions log in as (see lib/login-user.mjs: a throw-away /bin/sh user when root).
const login = benchLoginUser(sizes.length === 0 ? 'current' : option('login-user', 'auto'));
if (login.created) chmodSync(work, 0o711);
if (sizes.length > 0)
  console.error(
    `bench: SSH sessions log in as ${login.name} (shell ${login.shell}${login.created ? ', temporary user' : ''})`,
  );
if (sizes.length > 0 && !login.created && /bash$/.test(login.shell))
  console.error(
    `bench: note: bash sources ${login.home}/.bashrc for every SSH command; its cost is in every row`,
  );
// The remote plugin caches of this run (all "hosts" are this machine and this login user), in the
// login user's home but private to this run: the benchmark never empties ~/.cache/rune, which
// tests or operators may be using at the same time.
const cacheRelative = `.cache/rune-bench-${process.pid}`;
const runeCache = join(login.home, cacheRelative, 'rune');
const rows = [];
let fleet;
const cleanup = async () => {
  if (fleet !== undefined) await fleet.stop();
  fleet = undefined;
  rmSync(join(login.home, cacheRelative), { recursive: true, force: true });
  login.remove();
  rmSync(work, { recursive: true, force: true });
};
process.once('SIGINT', () => cleanup().then(() => process.exit(130)));

try {
  const pluginFile = findNoop();
  const plugin = readFileSync(pluginFile);
  const sha256 = createHash('sha256').update(plugin).digest('hex');
  const requestFile = join(work, 'request.json');
  writeFileSync(
    requestFile,
    JSON.stringify({
      message_metadata: {
        message_id: randomUUID(),
        trace_id: randomBytes(16).toString('hex'),
        timestamp: new Date().toISOString(),
        sender: { component: 'rune-bench', version: '0.0.0', host: 'bench' },
      },
      routing: { action: 'noop', node: 'bench', transport: 'ssh', deploy_mode: 'ship' },
      payload: {
        schema_version: 'rcs_v1',
        data: { input_parameters: {}, options: { dry_run: false, timeout_ms: 30000 } },
      },
    }),
  );

  for (const count of sizes) {
    fleet = await startBenchSshdFleet({
      count,
      dir: join(work, `fleet-${count}`),
      user: login.name,
    });
    const inventory = join(work, `fleet-${count}.yaml`);
    writeFileSync(
      inventory,
      [
        'defaults:',
        `  user: ${fleet.user}`,
        `  identity_file: ${fleet.identityFile}`,
        `  known_hosts_file: ${fleet.knownHostsFile}`,
        '  host_key_checking: strict',
        'nodes:',
        ...fleet.hosts.map((h) => `  ${h.name}: { address: ${h.address}, port: ${h.port} }`),
        '',
      ].join('\n'),
    );
    const auditLog = join(work, `audit-${count}.jsonl`);
    const config = join(work, `config-${count}.toml`);
    writeFileSync(
      config,
      [
        '[core]',
        `audit_log = "${auditLog}"`,
        `inventory = "${inventory}"`,
        '[execution]',
        `concurrency = ${Math.max(count, 50)}`,
        '[ssh]',
        'use_agent = false',
        'use_ssh_config = false',
        `remote_cache_dir = "~/${cacheRelative}/rune"`,
        '',
      ].join('\n'),
    );
    const env = { ...process.env, RUNE_CONFIG: config, NO_COLOR: '1' };
    const runeArgs = [
      cli,
      'run',
      'noop',
      '--node',
      '@all',
      '--inventory',
      inventory,
      '--output',
      'json',
    ];
    const record = (label, m, ok) => {
      rows.push({
        hosts: count,
        label,
        ok,
        wallMs: Math.round(m.wallMs),
        cpuMsPerHost: +(m.cpuMs / count).toFixed(1),
        rssMb: m.rssMb === undefined ? null : Math.round(m.rssMb),
      });
      console.error(`  N=${count} ${label.padEnd(12)} ${JSON.stringify(rows.at(-1))}`);
    };
    const runeOk = (m) => {
      try {
        const out = JSON.parse(m.stdout);
        return out.summary?.succeeded === count;
      } catch {
        return false;
      }
    };

    rmSync(runeCache, { recursive: true, force: true });
    if (!apiOnly) {
      const runeFresh = timed('node', runeArgs, { env });
      record('rune-fresh', runeFresh, runeOk(runeFresh));
      if (!runeOk(runeFresh))
        console.error(runeFresh.stderr.slice(0, 2000), runeFresh.stdout.slice(0, 2000));
      const runeCached = timed('node', runeArgs, { env });
      record('rune-cached', runeCached, runeOk(runeCached));
      // The same again with tracing on (spans exported to bench/lib/otlp-sink.mjs), side by side.
      const otlp = await startOtlpSink();
      const tracedEnv = { ...env, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlp.endpoint };
      const runeTraced = timed('node', runeArgs, { env: tracedEnv });
      record('rune-cached-traced', runeTraced, runeOk(runeTraced));
      rows.at(-1).spans = await otlp.stop();
      const runeUntraced = timed('node', runeArgs, { env });
      record('rune-cached', runeUntraced, runeOk(runeUntraced));
      if (withoutOtel !== undefined) {
        const runeNoOtel = timed('node', [withoutOtel.bin, ...runeArgs.slice(1)], { env });
        record('rune-cached-no-otel', runeNoOtel, runeOk(runeNoOtel));
      }
      rmSync(runeCache, { recursive: true, force: true });
    }

    const warm = timed('node', [join(root, 'bench/lib/warm.mjs'), inventory, config], { env });
    try {
      const measured = JSON.parse(warm.stdout.trim().split('\n').at(-1));
      const first = measured.first;
      rows.push({
        hosts: count,
        label: 'rune-api-first',
        ok: first.ok,
        wallMs: Math.round(first.wallMs),
        cpuMsPerHost: +(first.cpuMs / count).toFixed(1),
        rssMb: null,
      });
      console.error(`  N=${count} rune-api-1st ${JSON.stringify(rows.at(-1))}`);
      rows.push({
        hosts: count,
        label: 'rune-warm',
        ok: measured.ok,
        wallMs: Math.round(measured.wallMs),
        cpuMsPerHost: +(measured.cpuMs / count).toFixed(1),
        rssMb: Math.round(warm.rssMb),
      });
      console.error(`  N=${count} rune-warm    ${JSON.stringify(rows.at(-1))}`);
    } catch {
      console.error(`  N=${count} rune-warm    unavailable: ${warm.stderr.slice(0, 500)}`);
    }

    const spec = join(work, `ssh-${count}.json`);
    writeFileSync(
      spec,
      JSON.stringify({
        hosts: fleet.hosts,
        user: fleet.user,
        identityFile: fleet.identityFile,
        knownHostsFile: fleet.knownHostsFile,
        pluginFile,
        requestFile,
        sha256,
        cacheDir: `${cacheRelative}/ssh`,
      }),
    );
    rmSync(join(login.home, cacheRelative, 'ssh'), { recursive: true, force: true });
    for (const mode of ['fresh', 'cached']) {
      const m = timed('node', [join(root, 'bench/lib/ssh-parallel.mjs'), spec, mode]);
      const inner = JSON.parse(m.stdout.trim() || '{}');
      if (inner.failed)
        console.error(
          `  ssh-${mode}: ${inner.failed} failed, e.g. ${JSON.stringify(inner.firstFailure)}`,
        );
      record(`ssh-${mode}`, { ...m, rssMb: undefined }, m.status === 0);
    }
    await fleet.stop();
    fleet = undefined;
  }

  if (!apiOnly && !args.includes('--skip-startup')) {
    // One start-up benchmark: bench/startup.mjs (also `npx -y pnpm@10.34.9 bench:startup`).
    const startup = spawnSync(
      'node',
      [join(root, 'bench/startup.mjs'), '--runs', String(startupRuns)],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    if (startup.status !== 0) throw new Error(`bench/startup.mjs exited ${startup.status}`);
    for (const row of JSON.parse(startup.stdout).rows) {
      rows.push({ ...row, medianMs: row.wallMedianMs, minMs: row.wallMinMs });
    }
  }
  process.stdout.write(
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        loginUser: { name: login.name, shell: login.shell, temporary: login.created },
        rows,
      },
      null,
      2,
    )}\n`,
  );
} finally {
  await cleanup();
  withoutOtel?.remove();
}
