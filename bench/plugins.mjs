#!/usr/bin/env node
/**
 * Node-side CPU of every built-in plugin: `node bench/plugins.mjs [--runs N] [--builtin-dir DIR]
 * [--before-dir DIR] [--instructions] [--no-perf]` (after a build).
 *
 * --before-dir DIR: another build of the built-ins (e.g. main's) measured in the same run, its
 * samples taking turns with this build's, so both see the same load. --instructions: also the
 * instructions each row executes (valgrind's callgrind, one run): unlike CPU time, that count
 * does not move with the load of a shared machine.
 *
 * Each row runs one assembled plugin (packages/core/dist/builtin-plugins, exactly the bytes RUNE
 * ships) N times with a valid RCS request on stdin, as a transport would, and reports the median
 * CPU of the plugin process and everything it starts: `perf stat -e task-clock` when perf is
 * there and allowed to count (the kernel's task clock of the process tree, in nanoseconds), else
 * bash's `times` for its children (user+sys, quantised to the kernel's 1-4 ms ticks, so a
 * 4 ms plugin reads 2, 4 or 6). --no-perf forces `times`. The JSON says which clock was used. Side by side in the same run: an empty bash script, a
 * minimal plugin without the library, the library alone (a plugin that includes it and calls
 * bpcs_init + bpcs_success, assembled as RUNE ships it; with --before-dir also the library in
 * DIR/../bash-lib, when there), noop's failure paths (a refused parameter, a request that is not
 * canonical: both load the deferred library functions) and noop forced onto the jq parser. The restart plugins run as dry runs (they must not restart
 * anything here; without docker/nomad on the machine they stop at their precondition check,
 * exit 3, after the library did its work); check-disk and gather-logs run for real here. Never part of
 * the tests: CPU depends on the machine and its load; run it on a quiet one (`uptime`).
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dirFlag = process.argv.indexOf('--builtin-dir');
// --builtin-dir DIR: measure another build of the built-ins (e.g. an older commit's) side by side.
const builtinDir =
  dirFlag === -1 ? join(root, 'packages/core/dist/builtin-plugins') : process.argv[dirFlag + 1];
const libDir = join(root, 'packages/core/dist/bash-lib');
const beforeFlag = process.argv.indexOf('--before-dir');
const beforeDir = beforeFlag === -1 ? undefined : process.argv[beforeFlag + 1];
const countInstructions = process.argv.includes('--instructions');
const runsFlag = process.argv.indexOf('--runs');
const runs = runsFlag === -1 ? 21 : Number(process.argv[runsFlag + 1]);
if (!Number.isInteger(runs) || runs < 1) {
  process.stderr.write('usage: node bench/plugins.mjs [--runs N] [--builtin-dir DIR]\n');
  process.exit(2);
}
let names;
try {
  names = readdirSync(builtinDir)
    .filter((name) => name.endsWith('.sh'))
    .map((name) => name.slice(0, -3))
    .sort();
} catch {
  process.stderr.write(`no built-in plugins in ${builtinDir}: run npx -y pnpm@10.34.9 build\n`);
  process.exit(2);
}

const scratch = mkdtempSync(join(tmpdir(), 'rune-bench-plugins-'));
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: scratch, TMPDIR: scratch };

function request(action, parameters, dryRun) {
  return JSON.stringify({
    message_metadata: {
      message_id: '5b0c0f9e-7d4a-4a47-9a55-0e0f6c2d7b11',
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      timestamp: '2026-01-01T00:00:00.000Z',
      sender: { component: 'rune-bench', version: '0.0.0', host: 'bench' },
    },
    routing: { action, node: 'localhost', transport: 'local', deploy_mode: 'ship' },
    payload: {
      schema_version: 'rcs_v1',
      data: { input_parameters: parameters, options: { dry_run: dryRun, timeout_ms: 30000 } },
    },
  });
}

/** Whether `perf stat` can count the task clock here (installed, and perf_event_paranoid allows it). */
function perfWorks() {
  if (process.argv.includes('--no-perf')) return false;
  const out = join(scratch, 'perf-probe.txt');
  const probe = spawnSync('perf', ['stat', '-x,', '-e', 'task-clock', '-o', out, '--', 'true'], {
    encoding: 'utf8',
  });
  return (
    probe.status === 0 && existsSync(out) && /,msec,task-clock/.test(readFileSync(out, 'utf8'))
  );
}
const usePerf = perfWorks();
const clock = usePerf ? 'perf stat task-clock' : 'bash times (user+sys)';

/**
 * One run of `file` with the request in `input`: the CPU ms of it and its children, exit code.
 * With perf: its task clock, the plugin started by perf itself (stdin from the file), so neither
 * perf nor a wrapper shell is counted.
 */
function sample(file, input, extraEnv) {
  if (usePerf) {
    const out = join(scratch, 'perf.txt');
    const stdin = openSync(input, 'r');
    let result;
    try {
      result = spawnSync('perf', ['stat', '-x,', '-e', 'task-clock', '-o', out, '--', file], {
        env: { ...env, ...extraEnv },
        stdio: [stdin, 'ignore', 'ignore'],
      });
    } finally {
      closeSync(stdin);
    }
    const match = /^([\d.]+),msec,task-clock/m.exec(readFileSync(out, 'utf8'));
    if (match === null)
      throw new Error(`cannot read perf stat output: ${readFileSync(out, 'utf8')}`);
    return { ms: Math.round(Number(match[1]) * 100) / 100, exitCode: result.status };
  }
  const result = spawnSync(
    'bash',
    ['-c', '"$0" < "$1" > /dev/null 2>&1; status=$?; times; exit "$status"', file, input],
    { env: { ...env, ...extraEnv }, encoding: 'utf8' },
  );
  const children = result.stdout.trim().split('\n').pop() ?? '';
  const match = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(children);
  if (match === null) throw new Error(`cannot read times output: ${result.stdout}`);
  const ms = Math.round((+match[1] * 60 + +match[2] + +match[3] * 60 + +match[4]) * 1000);
  return { ms, exitCode: result.status };
}

/** Instructions (millions) one run of `file` executes, children included (callgrind). */
function instructions(file, input, extraEnv) {
  const logs = mkdtempSync(join(scratch, 'callgrind-'));
  spawnSync(
    'valgrind',
    [
      '--tool=callgrind',
      '--callgrind-out-file=/dev/null',
      '--trace-children=yes',
      `--log-file=${join(logs, 'log.%p')}`,
      'bash',
      '-c',
      '"$0" < "$1" > /dev/null 2>&1',
      file,
      input,
    ],
    { env: { ...env, ...extraEnv }, encoding: 'utf8' },
  );
  let total = 0;
  for (const name of readdirSync(logs)) {
    for (const match of readFileSync(join(logs, name), 'utf8').matchAll(/Collected : (\d+)/g)) {
      total += Number(match[1]);
    }
  }
  rmSync(logs, { recursive: true, force: true });
  return Math.round(total / 1e4) / 100;
}

const medianOf = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * Median user+sys ms of each file run `runs` times with `stdin` (the files take turns, so load
 * hits them alike); also their last exit codes.
 */
function measure(files, stdin, extraEnv = {}) {
  const input = join(scratch, 'request.json');
  writeFileSync(input, stdin);
  const samples = files.map(() => []);
  const exitCodes = files.map(() => null);
  for (let i = 0; i < runs; i++) {
    files.forEach((file, index) => {
      const { ms, exitCode } = sample(file, input, extraEnv);
      samples[index].push(ms);
      exitCodes[index] = exitCode;
    });
  }
  return files.map((file, index) => ({
    median_ms: medianOf(samples[index]),
    exit_code: exitCodes[index],
    ...(countInstructions ? { instructions_m: instructions(file, input, extraEnv) } : {}),
  }));
}

function script(name, text) {
  const file = join(scratch, name);
  writeFileSync(file, text, { mode: 0o755 });
  return file;
}

const rows = [];
/** A row; with `before`, the same row for the other build, measured in the same rounds. */
const add = (row, file, stdin, extraEnv, before) => {
  const [after, old] = measure(before === undefined ? [file] : [file, before], stdin, extraEnv);
  rows.push({ row, ...after, bytes: readFileSync(file).byteLength });
  if (old !== undefined) {
    rows.push({ row: `${row} [before]`, ...old, bytes: readFileSync(before).byteLength });
  }
};
const loadBefore = loadavg()[0];

add('empty bash script', script('empty.sh', '#!/usr/bin/env bash\nexit 0\n'), '{}');
add(
  'minimal plugin, no library',
  script(
    'minimal.sh',
    '#!/usr/bin/env bash\nread -r -d "" -N 1048577 input || true\nprintf \'{"ok":true}\\n\'\n',
  ),
  request('minimal', {}, false),
);
// The library alone, assembled by core's assembler exactly as a plugin that includes it ships.
const { assemblePluginSource } = await import(
  new URL('../packages/core/dist/plugins/assemble-plugin.js', import.meta.url).href
);
const libraryOnly = (name, dir) =>
  script(
    name,
    assemblePluginSource(
      Buffer.from(
        '#!/usr/bin/env bash\nset -euo pipefail\nsource bpcs.sh # @rune-include bpcs.sh\nbpcs_init library-only 1.0.0\nbpcs_success ok\n',
      ),
      join(scratch, name),
      { includeDirs: [dir] },
    ).content,
  );
const beforeLib = beforeDir === undefined ? undefined : join(beforeDir, '..', 'bash-lib');
add(
  'library only (bpcs_init + bpcs_success)',
  libraryOnly('library-only.sh', libDir),
  request('library-only', {}, false),
  {},
  beforeLib !== undefined && existsSync(join(beforeLib, 'bpcs.sh'))
    ? libraryOnly('library-only-before.sh', beforeLib)
    : undefined,
);
for (const name of names) {
  const restart = name.startsWith('restart-');
  add(
    `${name}${restart ? ' (dry run)' : ''}`,
    join(builtinDir, `${name}.sh`),
    request(name, {}, restart),
    {},
    beforeDir === undefined ? undefined : join(beforeDir, `${name}.sh`),
  );
}
// What `rune run noop` sends: the manifest's defaults filled in.
add(
  'noop, defaults filled ({"sleep_ms":0})',
  join(builtinDir, 'noop.sh'),
  request('noop', { sleep_ms: 0 }, false),
  {},
  beforeDir === undefined ? undefined : join(beforeDir, 'noop.sh'),
);
// The failure paths, which load the deferred library functions: a parameter the plugin refuses
// (its failure document), and a request that is not in the canonical encoding (pretty-printed:
// the general parser reads it).
add(
  'noop, invalid parameter (failure document)',
  join(builtinDir, 'noop.sh'),
  request('noop', { sleep_ms: -1 }, false),
  {},
  beforeDir === undefined ? undefined : join(beforeDir, 'noop.sh'),
);
add(
  'noop, request not canonical (pretty-printed)',
  join(builtinDir, 'noop.sh'),
  JSON.stringify(JSON.parse(request('noop', {}, false)), null, 2),
  {},
  beforeDir === undefined ? undefined : join(beforeDir, 'noop.sh'),
);
add(
  'noop, jq parser forced',
  join(builtinDir, 'noop.sh'),
  request('noop', {}, false),
  { BPCS_JSON_PARSER: 'jq' },
  beforeDir === undefined ? undefined : join(beforeDir, 'noop.sh'),
);
const loadAfter = loadavg()[0];
rmSync(scratch, { recursive: true, force: true });

const width = Math.max(...rows.map((row) => row.row.length));
process.stderr.write(
  `median of ${runs} runs, CPU of the plugin and its children by ${clock} (load average ${loadBefore.toFixed(1)} -> ${loadAfter.toFixed(1)})\n`,
);
for (const row of rows) {
  const count =
    row.instructions_m === undefined
      ? ''
      : `  ${row.instructions_m.toFixed(1).padStart(6)} M instructions`;
  process.stderr.write(
    `${row.row.padEnd(width)}  ${String(row.median_ms).padStart(6)} ms${count}  exit ${row.exit_code}  ${row.bytes} bytes\n`,
  );
}
process.stdout.write(
  `${JSON.stringify({ runs, clock, loadAverage: { before: loadBefore, after: loadAfter }, rows }, null, 2)}\n`,
);
