#!/usr/bin/env node
// RUNE start-up benchmark (never part of the test suite). See bench/README.md.
//
//   node bench/startup.mjs [--runs 11] [--cli-before DIR/bin/rune.js] [--node PATH]
//                          [--unset-extra-ca-certs] [--skip-tracing] [--cli-without-otel]
//
// --cli-before: another build of the CLI (e.g. main's) whose rows run in the same rounds, so
// before and after see the same load. --node: the Node binary to start (default: `node`).
// --cli-without-otel: also a build of this CLI with no OpenTelemetry code at all
// (bench/lib/cli-without-otel.mjs), its rows `[no OTel code]` (all but the traced one) in the
// same rounds: what "tracing off" costs against a CLI that cannot trace.
// --unset-extra-ca-certs: drop NODE_EXTRA_CA_CERTS from the environment (Node reads and parses
// that file at every start; the row `node -e 0` shows what Node alone costs).
//
// Measures, side by side in one run, the wall time and CPU time (user + sys of the whole process
// tree, from /usr/bin/time) of three fresh `rune` processes:
//   rune --help
//   rune --version
//   rune run noop --node localhost --output json
//   the same with tracing on (OTLP/HTTP to a local receiver, bench/lib/otlp-sink.mjs)
//   the same with tracing off again (off / on / off in every round)
// The three commands take turns (one sample of each per round), so background load on the shared
// machine changes all three alike. Reports median and min of each; JSON on stdout, a table on
// stderr. The `run` samples write their audit records into a throw-away XDG state directory.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCliWithoutOtel } from './lib/cli-without-otel.mjs';
import { startOtlpSink } from './lib/otlp-sink.mjs';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(`--${name}`);
  return index === -1 ? fallback : args[index + 1];
};
const runs = Number(option('runs', '11'));
if (!Number.isInteger(runs) || runs < 1) {
  console.error('bench: --runs takes a positive integer');
  process.exit(2);
}
const cli = join(root, 'apps/cli/bin/rune.js');
const cliBefore = option('cli-before', undefined);
const nodeBinary = option('node', 'node');
const skipTracing = args.includes('--skip-tracing');
if (!existsSync(join(root, 'apps/cli/dist/main.js'))) {
  console.error('bench: build first (npx -y pnpm@10.34.9 build)');
  process.exit(2);
}
// CPU of the process tree (node + the noop plugin's bash, jq, ...) comes from GNU time.
if (!existsSync('/usr/bin/time')) {
  console.error(
    'bench: /usr/bin/time not found. It measures the CPU of each run; install it:\n' +
      '  apt-get install time      (Debian/Ubuntu; `dnf install time` on Fedora/RHEL)',
  );
  process.exit(2);
}

const baseCommands = [
  { label: 'rune --help', args: ['--help'] },
  { label: 'rune --version', args: ['--version'] },
  {
    label: 'rune run noop --node localhost',
    args: ['run', 'noop', '--node', 'localhost', '--output', 'json'],
  },
  // The same with tracing on (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT -> bench/lib/otlp-sink.mjs): the
  // SDK is loaded and the spans exported before exit. Side by side with the row above (off).
  {
    label: 'rune run noop (tracing on)',
    args: ['run', 'noop', '--node', 'localhost', '--output', 'json'],
    tracing: true,
  },
  // Off again after the traced row in every round (off / on / off): two "off" rows that differ
  // as much from each other as from "on" would say the noise, not tracing, is what differs.
  {
    label: 'rune run noop (off, again)',
    args: ['run', 'noop', '--node', 'localhost', '--output', 'json'],
  },
].filter((command) => !(skipTracing && command.tracing));
const withoutOtel = args.includes('--cli-without-otel') ? buildCliWithoutOtel() : undefined;
// Node alone, then every row for this build and, with --cli-before, the other build's rows.
const commands = [
  { label: 'node -e 0', args: ['-e', '0'], bare: true },
  ...baseCommands.map((command) => ({ ...command, cli })),
  ...(cliBefore === undefined
    ? []
    : baseCommands.map((command) => ({
        ...command,
        label: `${command.label} [before]`,
        cli: cliBefore,
      }))),
  ...(withoutOtel === undefined
    ? []
    : baseCommands
        .filter((command) => !command.tracing)
        .map((command) => ({
          ...command,
          label: `${command.label} [no OTel code]`,
          cli: withoutOtel.bin,
        }))),
];

const work = mkdtempSync(join(tmpdir(), 'rune-bench-startup-'));
const inherited = { ...process.env };
if (args.includes('--unset-extra-ca-certs')) delete inherited.NODE_EXTRA_CA_CERTS;
const env = {
  ...inherited,
  NO_COLOR: '1',
  XDG_STATE_HOME: join(work, 'state'),
  XDG_CACHE_HOME: join(work, 'cache'),
};

const otlp = await startOtlpSink();
const tracedEnv = { ...env, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlp.endpoint };

/** One spawn under /usr/bin/time: wall ms (measured here) and CPU ms of the tree (from time). */
function sample(command) {
  const { args: commandArgs, tracing = false } = command;
  const timeFile = join(work, `time-${randomUUID()}`);
  const started = performance.now();
  const result = spawnSync(
    '/usr/bin/time',
    [
      '-o',
      timeFile,
      '-f',
      '%U %S',
      nodeBinary,
      ...(command.bare ? [] : [command.cli]),
      ...commandArgs,
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      encoding: 'utf8',
      env: tracing ? tracedEnv : env,
    },
  );
  const wallMs = performance.now() - started;
  if (result.status !== 0) {
    throw new Error(`rune ${commandArgs.join(' ')} exited ${result.status}: ${result.stderr}`);
  }
  const [user, sys] = readFileSync(timeFile, 'utf8')
    .trim()
    .split('\n')
    .at(-1)
    .split(' ')
    .map(Number);
  rmSync(timeFile, { force: true });
  return { wallMs, cpuMs: (user + sys) * 1000 };
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

try {
  const loadBefore = loadavg()[0];
  const samples = commands.map(() => []);
  // One warm-up round (page cache, the first audit file), not counted.
  for (const command of commands) sample(command);
  for (let round = 0; round < runs; round++) {
    commands.forEach((command, index) => {
      samples[index].push(sample(command));
    });
  }
  const rows = commands.map((command, index) => {
    const wall = samples[index].map((s) => s.wallMs);
    const cpu = samples[index].map((s) => s.cpuMs);
    return {
      label: command.label,
      wallMedianMs: Math.round(median(wall)),
      wallMinMs: Math.round(Math.min(...wall)),
      cpuMedianMs: Math.round(median(cpu)),
      cpuMinMs: Math.round(Math.min(...cpu)),
    };
  });
  const loadAfter = loadavg()[0];
  const spans = await otlp.stop();
  console.error(
    `bench: start-up, median of ${runs} (load average ${loadBefore.toFixed(1)} -> ${loadAfter.toFixed(1)}; ${nodeBinary} ${spawnSync(nodeBinary, ['--version'], { encoding: 'utf8' }).stdout.trim()}; NODE_EXTRA_CA_CERTS ${env.NODE_EXTRA_CA_CERTS === undefined ? 'unset' : 'set'})`,
  );
  for (const row of rows) {
    console.error(
      `  ${row.label.padEnd(43)} wall ${String(row.wallMedianMs).padStart(4)} ms (min ${row.wallMinMs})   CPU ${String(row.cpuMedianMs).padStart(4)} ms (min ${row.cpuMinMs})`,
    );
  }
  process.stdout.write(
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        node: spawnSync(nodeBinary, ['--version'], { encoding: 'utf8' }).stdout.trim(),
        extraCaCerts: env.NODE_EXTRA_CA_CERTS !== undefined,
        runs,
        loadAverage: { before: loadBefore, after: loadAfter },
        spansExported: spans,
        rows,
      },
      null,
      2,
    )}\n`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
  withoutOtel?.remove();
}
