#!/usr/bin/env node
// RUNE dashboard first-render benchmark (never part of the test suite). See bench/README.md,
// "Dashboard".
//
//   node bench/dashboard.mjs [--loads 7] [--actions 150] [--baseline-rev 6864bc1]
//
// Builds the dashboard of --baseline-rev (its packages/dashboard/ui and scripts, from git, with
// this checkout's node_modules) next to the current build, starts two real `createRuneServer()`
// (built @rune/server) on 127.0.0.1, one serving each bundle, both with the same catalog of
// --actions generated actions, and drives Debian's chromium (playwright-core) through --loads cold
// loads of each, alternating which goes first, so both columns come from one run on one machine
// load. Per load: first contentful paint and the sign-in form ready (navigation start to the
// token field visible); then, after Sign in, the time to the whole catalog shown and to the last
// permission answer, and how many API requests that took.
// Needs `npx -y pnpm@10.34.9 build` first. Loopback only; every loop is bounded.
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRuneServer, createToken } from '@rune/server';

const { values } = parseArgs({
  options: {
    loads: { type: 'string', default: '7' },
    actions: { type: 'string', default: '150' },
    'baseline-rev': { type: 'string', default: '6864bc1' },
  },
});
const loads = Math.min(50, Math.max(1, Number(values.loads)));
const actions = Math.min(1000, Math.max(1, Number(values.actions)));
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dashboard = join(root, 'packages/dashboard');
// playwright-core is a dev dependency of @rune/server (its browser tests), not of the root.
const { chromium } = createRequire(join(root, 'packages/server/package.json'))('playwright-core');
const work = mkdtempSync(join(tmpdir(), 'rune-bench-dashboard-'));

function buildBaseline() {
  const target = join(work, 'baseline');
  mkdirSync(target);
  const archive = execFileSync(
    'git',
    ['archive', values['baseline-rev'], 'packages/dashboard/ui', 'packages/dashboard/scripts'],
    { cwd: root, maxBuffer: 64 * 1024 * 1024 },
  );
  execFileSync('tar', ['-x', '-C', target], { input: archive });
  const copy = join(target, 'packages/dashboard');
  symlinkSync(join(dashboard, 'node_modules'), join(copy, 'node_modules'));
  const line = execFileSync('node', [join(copy, 'scripts/build-ui.mjs')], { encoding: 'utf8' });
  return { publicDir: join(copy, 'dist/public'), line: line.trim() };
}

function home(name) {
  const dir = join(work, name);
  const plugins = join(dir, 'plugins');
  mkdirSync(plugins, { recursive: true });
  const script =
    '#!/usr/bin/env bash\ncat > /dev/null\nprintf \'{"message_metadata":{"trace_id":"0","timestamp":"2026-01-01T00:00:00Z"},"payload":{"schema_version":"bpcs_v1","result":"success","summary":"ok","output_data":{}},"error":null}\\n\'\n';
  for (let index = 1; index <= actions; index++) {
    const action = `act-${String(index).padStart(4, '0')}`;
    writeFileSync(join(plugins, `${action}.sh`), script, { mode: 0o755 });
    writeFileSync(
      join(plugins, `${action}.manifest.json`),
      JSON.stringify({
        schema_version: 'mrs_v1',
        name: action,
        version: '1.0.0',
        description: `Generated action ${index}.`,
        entrypoint: `${action}.sh`,
        parameters: { type: 'object', properties: {}, additionalProperties: false },
        tags: ['generated'],
        requirements: { commands: [], privilege: 'user', os: ['linux'] },
        timeout_ms: 10000,
        idempotent: true,
        supports_dry_run: false,
        dangerous: false,
        accepts: ['rcs_v1'],
      }),
    );
  }
  const configFile = join(dir, 'rune.toml');
  writeFileSync(
    configFile,
    `[core]\naudit_log = ${JSON.stringify(join(dir, 'audit.jsonl'))}\n\n[plugins]\nplugin_dir = ${JSON.stringify(plugins)}\n\n[server]\nlisten = "127.0.0.1:0"\nstore = ${JSON.stringify(join(dir, 'server.sqlite'))}\nrate_limit = 100000\n`,
  );
  return {
    configFile,
    env: {
      HOME: dir,
      XDG_CONFIG_HOME: join(dir, 'config'),
      XDG_STATE_HOME: join(dir, 'state'),
      XDG_DATA_HOME: join(dir, 'data'),
      XDG_CACHE_HOME: join(dir, 'cache'),
      PATH: process.env.PATH ?? '/usr/bin:/bin',
    },
  };
}

async function start(name) {
  const { configFile, env } = home(name);
  const server = await createRuneServer({ configFile, env, port: 0 });
  const url = await server.listen();
  const { token } = await createToken(server.store, {
    name: 'bench',
    role: 'operator',
    expires: '1d',
  });
  return { name, server, url, token };
}

const median = (list) => {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

async function measure(browser, target) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  try {
    const page = await context.newPage();
    await page.goto(`${target.url}/`);
    await page.getByLabel('API token').waitFor();
    const ready = await page.evaluate('performance.now()');
    const paint = await page.evaluate(
      `performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1`,
    );
    let requests = 0;
    let lastPolicy = 0;
    page.on('request', (request) => {
      if (new URL(request.url()).pathname.startsWith('/v1/')) requests++;
    });
    page.on('response', (response) => {
      if (new URL(response.url()).pathname.startsWith('/v1/policy/check')) {
        lastPolicy = Date.now();
      }
    });
    await page.getByLabel('API token').fill(target.token);
    const clicked = Date.now();
    await page.getByRole('button', { name: 'Sign in' }).click();
    const last = `act-${String(actions).padStart(4, '0')}`;
    await page
      .locator(`[data-action="${last}"]`)
      .waitFor({ state: 'attached', timeout: 120_000 })
      .catch(async (error) => {
        throw new Error(
          `${target.name}: ${(await page.locator('main').textContent())?.slice(0, 300)}`,
          { cause: error },
        );
      });
    const catalog = Date.now() - clicked;
    // The permission answers have arrived when no policy request is still open.
    await page.waitForLoadState('networkidle', { timeout: 120_000 });
    return {
      paint,
      ready,
      catalog,
      policy: lastPolicy === 0 ? 0 : lastPolicy - clicked,
      requests,
    };
  } finally {
    await context.close();
  }
}

const current = join(dashboard, 'dist/public');
if (!existsSync(current)) throw new Error('build first: npx -y pnpm@10.34.9 build');
const baseline = buildBaseline();
const targets = [];
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true });
try {
  // The server reads the dashboard's files once, when it is created: create the baseline's
  // server with the baseline bundle in place, then put the current bundle back.
  const aside = join(dashboard, 'dist/public.current');
  renameSync(current, aside);
  try {
    cpSync(baseline.publicDir, current, { recursive: true });
    targets.push(await start(`baseline ${values['baseline-rev']}`));
  } finally {
    rmSync(current, { recursive: true, force: true });
    renameSync(aside, current);
  }
  targets.push(await start('current'));
  const samples = new Map(targets.map((target) => [target.name, []]));
  for (let load = 0; load < loads; load++) {
    const order = load % 2 === 0 ? targets : [...targets].reverse();
    for (const target of order) samples.get(target.name).push(await measure(browser, target));
  }
  console.log(`baseline bundle: ${baseline.line}`);
  console.log(`${loads} cold loads each, ${actions} actions, medians (ms):`);
  console.log(
    '| build | first contentful paint | sign-in form ready | catalog shown after Sign in | last permission answer | API requests after Sign in |',
  );
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const [name, list] of samples) {
    const of = (key) => Math.round(median(list.map((sample) => sample[key])));
    console.log(
      `| ${name} | ${of('paint')} | ${of('ready')} | ${of('catalog')} | ${of('policy')} | ${of('requests')} |`,
    );
  }
} finally {
  await browser.close();
  for (const target of targets) await target.server.close();
  rmSync(work, { recursive: true, force: true });
}
