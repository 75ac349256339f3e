#!/usr/bin/env node
/**
 * Node-side CPU of every built-in plugin: `node bench/plugins.mjs [--runs N] [--builtin-dir DIR]`
 * (after a build).
 *
 * Each row runs one assembled plugin (packages/core/dist/builtin-plugins, exactly the bytes RUNE
 * ships) N times with a valid RCS request on stdin, as a transport would, and reports the median
 * user+sys CPU of the plugin process and everything it starts (bash's `times` for its children:
 * millisecond resolution, no extra tool). Side by side in the same run: an empty bash script, a
 * minimal plugin without the library, the library alone (include + bpcs_init + bpcs_success), and
 * noop forced onto the jq parser. The restart plugins run as dry runs (they must not restart
 * anything here; without docker/nomad on the machine they stop at their precondition check,
 * exit 3, after the library did its work); check-disk and gather-logs run for real here. Never part of
 * the tests: CPU depends on the machine and its load; run it on a quiet one (`uptime`).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dirFlag = process.argv.indexOf('--builtin-dir');
// --builtin-dir DIR: measure another build of the built-ins (e.g. an older commit's) side by side.
const builtinDir =
  dirFlag === -1 ? join(root, 'packages/core/dist/builtin-plugins') : process.argv[dirFlag + 1];
const libDir = join(root, 'packages/core/dist/bash-lib');
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

/** Median user+sys ms of `file` run `runs` times with `stdin`; also its last exit code. */
function measure(file, stdin, extraEnv = {}) {
  const input = join(scratch, 'request.json');
  writeFileSync(input, stdin);
  const samples = [];
  let exitCode = null;
  for (let i = 0; i < runs; i++) {
    const result = spawnSync(
      'bash',
      ['-c', '"$0" < "$1" > /dev/null 2>&1; status=$?; times; exit "$status"', file, input],
      { env: { ...env, ...extraEnv }, encoding: 'utf8' },
    );
    exitCode = result.status;
    const children = result.stdout.trim().split('\n').pop() ?? '';
    const match = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(children);
    if (match === null) throw new Error(`cannot read times output: ${result.stdout}`);
    samples.push(Math.round((+match[1] * 60 + +match[2] + +match[3] * 60 + +match[4]) * 1000));
  }
  samples.sort((a, b) => a - b);
  return { median_ms: samples[Math.floor(samples.length / 2)], exit_code: exitCode };
}

function script(name, text) {
  const file = join(scratch, name);
  writeFileSync(file, text, { mode: 0o755 });
  return file;
}

const rows = [];
const add = (row, file, stdin, extraEnv) =>
  rows.push({ row, ...measure(file, stdin, extraEnv), bytes: readFileSync(file).byteLength });

add('empty bash script', script('empty.sh', '#!/usr/bin/env bash\nexit 0\n'), '{}');
add(
  'minimal plugin, no library',
  script(
    'minimal.sh',
    '#!/usr/bin/env bash\nread -r -d "" -N 1048577 input || true\nprintf \'{"ok":true}\\n\'\n',
  ),
  request('minimal', {}, false),
);
const library = readFileSync(join(libDir, 'bpcs.sh'), 'utf8').replace(/^#!.*\n/, '');
add(
  'library only (bpcs_init + bpcs_success; this checkout)',
  script(
    'library-only.sh',
    `#!/usr/bin/env bash\nset -euo pipefail\n${library}\nbpcs_init library-only 1.0.0\nbpcs_success ok\n`,
  ),
  request('library-only', {}, false),
);
for (const name of names) {
  const restart = name.startsWith('restart-');
  add(
    `${name}${restart ? ' (dry run)' : ''}`,
    join(builtinDir, `${name}.sh`),
    request(name, {}, restart),
  );
}
add('noop, jq parser forced', join(builtinDir, 'noop.sh'), request('noop', {}, false), {
  BPCS_JSON_PARSER: 'jq',
});
rmSync(scratch, { recursive: true, force: true });

const width = Math.max(...rows.map((row) => row.row.length));
process.stderr.write(`median of ${runs} runs, user+sys CPU of the plugin and its children\n`);
for (const row of rows) {
  process.stderr.write(
    `${row.row.padEnd(width)}  ${String(row.median_ms).padStart(4)} ms  exit ${row.exit_code}  ${row.bytes} bytes\n`,
  );
}
process.stdout.write(`${JSON.stringify({ runs, rows }, null, 2)}\n`);
