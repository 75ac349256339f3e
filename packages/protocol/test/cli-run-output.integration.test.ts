/**
 * The run documents must represent exactly what the CLI prints today, so that the CLI can be
 * switched to them without changing its output. This test runs the BUILT CLI (apps/cli/dist) for
 * real — a successful run, a failing run, a fleet run with a timeout and skipped nodes, a partial
 * result, refusals and usage errors, dry runs with a sensitive parameter — in json and jsonl, and
 * checks every document with the TypeBox validators (schema and rules beyond it) and with Ajv
 * against the generated JSON Schemas. Nothing is skipped: without a build it fails and says how
 * to build.
 */
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildJsonSchemas,
  type ParseResult,
  parseRunOutputLine,
  parseRunResultDocument,
  RUN_JSON_SCHEMA_FILES,
  type RunNodeLine,
  type RunOutputLine,
  type RunResultDocument,
  type RunSummaryLine,
} from '../src/index.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const cliBin = join(repoRoot, 'apps/cli/bin/rune.js');
const cliDist = join(repoRoot, 'apps/cli/dist/main.js');
const fixturePlugins = join(repoRoot, 'packages/core/test/fixtures/plugins');
const SECRET = 'hunter2-do-not-print';

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

let root = '';
let env: Record<string, string> = {};

function rune(args: readonly string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cliBin, ...args],
      { env, cwd: root, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const ajv = new Ajv({ strict: false, allErrors: true });
const schemas = buildJsonSchemas();
const compile = (file: string): ValidateFunction => {
  const schema = schemas[file];
  if (schema === undefined) throw new Error(`no generated schema ${file}`);
  return ajv.compile(schema);
};
const ajvResult = compile(RUN_JSON_SCHEMA_FILES.result);
const ajvLine = compile(RUN_JSON_SCHEMA_FILES.line);

const verdict = <T>(result: ParseResult<T>): unknown => (result.ok ? 'ok' : result.error.toJSON());

/** Parses `rune -o json` output with both validators; the value must be the printed document. */
function checkJson(run: CliRun): RunResultDocument {
  const printed = JSON.parse(run.stdout) as unknown;
  const parsed = parseRunResultDocument(run.stdout);
  expect(verdict(parsed), run.stdout).toBe('ok');
  expect(ajvResult(printed) ? 'ok' : ajvResult.errors).toBe('ok');
  if (!parsed.ok) throw new Error('unreachable');
  expect(parsed.value).toEqual(printed);
  expect(parsed.value.exit_code).toBe(run.code);
  return parsed.value;
}

/** Parses `rune -o jsonl` output line by line; the last line is the summary line. */
function checkJsonl(run: CliRun): { nodes: RunNodeLine[]; summary: RunSummaryLine } {
  expect(run.stdout.endsWith('\n')).toBe(true);
  const lines = run.stdout.slice(0, -1).split('\n');
  const parsed: RunOutputLine[] = lines.map((line) => {
    const result = parseRunOutputLine(line);
    expect(verdict(result), line).toBe('ok');
    expect(ajvLine(JSON.parse(line)) ? 'ok' : ajvLine.errors).toBe('ok');
    if (!result.ok) throw new Error('unreachable');
    expect(result.value).toEqual(JSON.parse(line));
    return result.value;
  });
  const summary = parsed.at(-1);
  if (summary?.type !== 'summary') throw new Error(`last line is not the summary: ${run.stdout}`);
  const nodes = parsed.slice(0, -1);
  for (const node of nodes) expect(node.type).toBe('node');
  expect(summary.exit_code).toBe(run.code);
  return { nodes: nodes as RunNodeLine[], summary };
}

beforeAll(() => {
  if (!existsSync(cliDist)) {
    throw new Error(
      `the CLI is not built (${cliDist} is missing): run \`npx -y pnpm@10.34.9 build\` in the repository root first`,
    );
  }
  root = mkdtempSync(join(tmpdir(), 'rune-run-docs-'));
  const home = join(root, 'home');
  env = {
    HOME: home,
    USER: 'rune-test',
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local/share'),
    XDG_STATE_HOME: join(home, '.local/state'),
    XDG_CACHE_HOME: join(home, '.cache'),
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    NO_COLOR: '1',
  };
  const pluginDir = join(env.XDG_DATA_HOME ?? '', 'rune', 'plugins');
  mkdirSync(pluginDir, { recursive: true });
  mkdirSync(env.XDG_CONFIG_HOME ?? '', { recursive: true });
  for (const name of ['fail.sh', 'partial.sh', 'params.sh', 'params.manifest.json']) {
    copyFileSync(join(fixturePlugins, name), join(pluginDir, name));
    chmodSync(join(pluginDir, name), name.endsWith('.sh') ? 0o755 : 0o644);
  }
});

afterAll(() => {
  if (root !== '') rmSync(root, { recursive: true, force: true });
});

describe('rune run --output json prints a valid run-result document', () => {
  it('for a successful run', async () => {
    const document = checkJson(await rune(['run', 'noop', '--node', 'localhost', '-o', 'json']));
    expect(document.nodes.map((node) => node.status)).toEqual(['success']);
    expect(document.summary?.succeeded).toBe(1);
  });

  it('for a run whose plugin reports failure', async () => {
    const document = checkJson(
      await rune(['run', 'fail', '--node', 'localhost', '--yes', '-o', 'json']),
    );
    expect(document.exit_code).toBe(1);
    expect(document.nodes[0]?.status).toBe('failure');
    expect(document.nodes[0]?.response?.payload.result).toBe('failure');
  });

  it('for a partial result', async () => {
    const document = checkJson(
      await rune(['run', 'partial', '--node', 'localhost', '--yes', '-o', 'json']),
    );
    expect(document.nodes[0]?.status).toBe('partial');
  });

  it('for an unknown action', async () => {
    const document = checkJson(
      await rune(['run', 'no-such-action', '-n', 'localhost', '-o', 'json']),
    );
    expect(document.error?.code).toBe('UNKNOWN_ACTION');
  });

  it('for an action name that is not one', async () => {
    const document = checkJson(await rune(['run', 'Bad/../x', '-n', 'localhost', '-o', 'json']));
    expect(document.error?.code).toBe('INVALID_ACTION_NAME');
    expect(document.action).toBe('Bad/../x');
  });

  it('for a dangerous action without --yes', async () => {
    const document = checkJson(await rune(['run', 'fail', '-n', 'localhost', '-o', 'json']));
    expect(document.error?.code).toBe('DANGEROUS_ACTION_REFUSED');
  });

  it('for a usage error found by the argument parser (the hand-written document)', async () => {
    const document = checkJson(await rune(['run', 'noop', '--bogus', '-o', 'json']));
    expect(document.error?.code).toBe('INVALID_ARGUMENT');
    expect(document.action).toBeNull();
  });

  it('for --dry-run', async () => {
    const document = checkJson(
      await rune(['run', 'noop', '--node', 'localhost', '--dry-run', '-o', 'json']),
    );
    expect(document.dry_run).toBe(true);
    expect(document.plan?.nodes).toHaveLength(1);
  });

  it('for --dry-run with a sensitive parameter, redacted', async () => {
    const run = await rune([
      'run',
      'params',
      '-n',
      'localhost',
      '-p',
      'name=x',
      '-p',
      `secret=${SECRET}`,
      '--dry-run',
      '-o',
      'json',
    ]);
    const document = checkJson(run);
    expect(run.stdout).not.toContain(SECRET);
    expect(document.plan?.parameters.secret).toBe('[REDACTED]');
    expect(document.plan?.sensitive_parameters).toEqual(['secret']);
  });
});

describe('rune run --output jsonl prints valid output lines', () => {
  it('for a successful run', async () => {
    const { nodes, summary } = checkJsonl(
      await rune(['run', 'noop', '--node', 'localhost', '-o', 'jsonl']),
    );
    expect(nodes.map((node) => node.status)).toEqual(['success']);
    expect(nodes[0]?.trace_id).toBe(summary.trace_id);
  });

  it('for a fleet run with a timeout and nodes skipped by the canary', async () => {
    const run = await rune([
      'run',
      'noop',
      '--node',
      'localhost,local,127.0.0.1',
      '--canary',
      '1',
      '-p',
      'sleep_ms=20000',
      '--timeout',
      '500ms',
      '-o',
      'jsonl',
    ]);
    const { nodes, summary } = checkJsonl(run);
    expect(run.code).toBe(5);
    expect(nodes.map((node) => node.status).sort()).toEqual(['failure', 'skipped', 'skipped']);
    expect(summary.summary?.policy?.canary).toBe(1);
  });

  it('for a run whose plugin reports failure', async () => {
    const { nodes } = checkJsonl(
      await rune(['run', 'fail', '--node', 'localhost', '--yes', '-o', 'jsonl']),
    );
    expect(nodes[0]?.error?.code).toBe('PLUGIN_FAILED');
  });

  it('for an unknown action (only the summary line)', async () => {
    const { nodes, summary } = checkJsonl(
      await rune(['run', 'no-such-action', '-n', 'localhost', '-o', 'jsonl']),
    );
    expect(nodes).toEqual([]);
    expect(summary.error?.code).toBe('UNKNOWN_ACTION');
  });

  it('for a usage error found by the argument parser', async () => {
    const { summary } = checkJsonl(await rune(['run', 'noop', '--bogus', '-o', 'jsonl']));
    expect(summary.error?.code).toBe('INVALID_ARGUMENT');
  });

  it('for --dry-run', async () => {
    const { nodes, summary } = checkJsonl(
      await rune(['run', 'noop', '--node', 'localhost', '--dry-run', '-o', 'jsonl']),
    );
    expect(nodes).toEqual([]);
    expect(summary.plan?.dry_run).toBe(true);
  });
});
