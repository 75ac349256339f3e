/**
 * The bad-input matrix of issue 3, end to end through the built CLI: every case asserts the EPS
 * code AND the process exit code, and that an audit record was written. Build first:
 * `npx turbo run build --filter=@rune/cli...`.
 */

import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateBpcsResponse } from '@rune/protocol';
import { isProcessAlive } from '@rune/transport/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertCliBuildFresh,
  type CliResult,
  type CliSandbox,
  createCliSandbox,
  waitFor,
} from './cli-harness.js';

let sandbox: CliSandbox;

beforeAll(() => {
  assertCliBuildFresh();
  sandbox = createCliSandbox();
});
afterAll(() => sandbox?.cleanup());

interface RunDocument {
  schema: string;
  trace_id: string;
  exit_code: number;
  error: { code: string; message: string; trace_id: string } | null;
  nodes: {
    node: string;
    status: string;
    error: { code: string } | null;
    response: unknown;
    stdout_bytes: number;
  }[];
  summary: { exit_code: number; total: number } | null;
  plan: {
    plugin: { sha256: string; path: string };
    nodes: { request: { payload: { data: { input_parameters: Record<string, unknown> } } } }[];
  } | null;
}

/**
 * A per-test HOME with the fixture output directory: the local transport passes plugins only a
 * minimal environment, so fixtures find where to write their pids and stdin through HOME (see
 * packages/core/test/README.md). XDG dirs stay the sandbox's.
 */
function fixtureHome(name: string): { HOME: string; out: string } {
  const home = join(sandbox.root, `home-${name}`);
  const out = join(home, 'rune-fixture-out');
  mkdirSync(out, { recursive: true });
  return { HOME: home, out };
}

function parseDocument(result: CliResult): RunDocument {
  try {
    return JSON.parse(result.stdout) as RunDocument;
  } catch {
    throw new Error(
      `stdout is not one JSON document:\n${result.stdout}\nstderr:\n${result.stderr}`,
    );
  }
}

/** The code of the run: the top-level error, else the first node's error. */
function codeOf(document: RunDocument): string | undefined {
  return document.error?.code ?? document.nodes[0]?.error?.code;
}

function auditRecords(): {
  trace_id: string;
  event: string;
  error_code: string | null;
  node: string | null;
  params: unknown;
}[] {
  if (!existsSync(sandbox.auditLog)) return [];
  return readFileSync(sandbox.auditLog, 'utf8')
    .trim()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
}

async function expectRun(
  args: string[],
  code: string,
  exit: number,
  env?: Record<string, string>,
): Promise<RunDocument> {
  const result = await sandbox.run(
    ['run', ...args, '--output', 'json'],
    env === undefined ? {} : { env },
  );
  const document = parseDocument(result);
  expect(document.schema).toBe('rune-run-result/v1');
  expect(codeOf(document), `${args.join(' ')}\n${result.stderr}`).toBe(code);
  expect(result.code, args.join(' ')).toBe(exit);
  expect(document.exit_code).toBe(exit);
  expect(result.stderr).not.toMatch(/\n\s+at .+\(.+:\d+:\d+\)/); // no stack trace
  const records = auditRecords().filter((record) => record.trace_id === document.trace_id);
  expect(records.length, `audit record for ${args.join(' ')}`).toBeGreaterThan(0);
  expect(records.some((record) => record.error_code === code)).toBe(true);
  return document;
}

describe('rune run: refusals before any node runs', () => {
  it.concurrent('unknown action', async () => {
    const document = await expectRun(['check-dsk', '-n', 'localhost'], 'UNKNOWN_ACTION', 2);
    expect(document.error?.message).toMatch(/did you mean/);
  });

  it.concurrent.each(['../../etc/passwd', 'A B', 'rm;ls'])(
    'invalid action name %j',
    async (name) => {
      await expectRun([name, '-n', 'localhost'], 'INVALID_ACTION_NAME', 2);
    },
  );

  it.concurrent('missing required parameter', async () => {
    const document = await expectRun(['params', '-n', 'localhost'], 'INVALID_PARAMETERS', 2);
    expect(document.error?.message).toContain('name');
  });

  it.concurrent('unknown parameter', async () => {
    const document = await expectRun(
      ['params', '-n', 'localhost', '-p', 'name=x', '-p', 'colour=red'],
      'INVALID_PARAMETERS',
      2,
    );
    expect(document.error?.message).toContain('colour');
  });

  it.concurrent('wrong parameter types, all listed', async () => {
    const document = await expectRun(
      [
        'params',
        '-n',
        'localhost',
        '-p',
        'name=x',
        '-p',
        'count=abc',
        '-p',
        'force=maybe',
        '-p',
        'ratio=1.5x',
      ],
      'INVALID_PARAMETERS',
      2,
    );
    for (const name of ['count', 'force', 'ratio']) expect(document.error?.message).toContain(name);
  });

  it.concurrent('a plugin that is not executable', async () => {
    await expectRun(['noexec', '-n', 'localhost', '--yes'], 'PLUGIN_NOT_EXECUTABLE', 1);
  });

  it.concurrent('an inferred (manifest-less) plugin without --yes', async () => {
    await expectRun(['ok', '-n', 'localhost'], 'DANGEROUS_ACTION_REFUSED', 4);
  });

  it.concurrent('a bad --timeout and a bad node name', async () => {
    await expectRun(['ok', '-n', 'localhost', '--yes', '--timeout', 'soon'], 'INVALID_ARGUMENT', 2);
    await expectRun(['ok', '--node=-oProxyCommand=touch', '--yes'], 'INVALID_TARGET', 2);
  });

  it.concurrent('a malformed config file (invalid TOML, unknown key, wrong type)', async () => {
    const badToml = join(sandbox.root, 'bad.toml');
    writeFileSync(badToml, '[core\noutput = "json"\n');
    const first = await sandbox.run([
      'run',
      'noop',
      '-n',
      'localhost',
      '-o',
      'json',
      '--config',
      badToml,
    ]);
    expect(parseDocument(first).error?.code).toBe('INVALID_CONFIG');
    expect(parseDocument(first).error?.message).toContain('bad.toml');
    expect(first.code).toBe(2);
    const unknownKey = join(sandbox.root, 'unknown.toml');
    writeFileSync(unknownKey, '[execution]\nconcurency = 5\n');
    const second = await sandbox.run(['run', 'noop', '-n', 'localhost', '-o', 'json'], {
      env: { RUNE_CONFIG: unknownKey },
    });
    expect(parseDocument(second).error?.message).toContain(
      'unknown.toml:2:1: execution.concurency: unknown key; did you mean execution.concurrency?',
    );
    expect(second.code).toBe(2);
    const wrongType = join(sandbox.root, 'wrong.toml');
    writeFileSync(wrongType, '[execution]\nconcurrency = "lots"\n');
    const third = await sandbox.run(['run', 'noop', '-n', 'localhost', '--config', wrongType]);
    expect(third.code).toBe(2);
    expect(third.stderr).toMatch(/INVALID_CONFIG: .*wrong\.toml:2:1: execution\.concurrency/);
    expect(third.stderr).toContain('hint:');
    // Refusals of a broken config are audited at the default location.
    expect(auditRecords().some((record) => record.error_code === 'INVALID_CONFIG')).toBe(true);
  });

  it.concurrent('a plugin directory that is not a directory', async () => {
    const notADir = join(sandbox.root, 'plugins-file');
    writeFileSync(notADir, 'x');
    const config = join(sandbox.root, 'plugin-dir-file.toml');
    writeFileSync(config, `[plugins]\nplugin_dir = "${notADir}"\n`);
    await expectRun(['noop', '-n', 'localhost', '--config', config], 'PLUGIN_DIR_UNREADABLE', 2);
  });

  it('an unreadable plugin directory (chmod 000, checked as an unprivileged user)', async () => {
    // root reads any directory regardless of its mode, so as root the check runs the CLI as
    // `nobody` through setpriv; otherwise chmod 000 is enough.
    const isRoot = process.getuid?.() === 0;
    const base = join(sandbox.root, 'unpriv');
    const home = join(base, 'home');
    const locked = join(base, 'locked-plugins');
    mkdirSync(home, { recursive: true });
    mkdirSync(locked, { recursive: true });
    writeFileSync(join(base, 'config.toml'), `[plugins]\nplugin_dir = "${locked}"\n`);
    chmodSync(locked, 0o000);
    chmodSync(base, 0o755);
    chmodSync(sandbox.root, 0o755);
    if (isRoot) chownSync(home, 65534, 65534);
    const env = {
      HOME: home,
      XDG_CONFIG_HOME: join(home, '.config'),
      XDG_DATA_HOME: join(home, '.local/share'),
      XDG_STATE_HOME: join(home, '.local/state'),
      XDG_CACHE_HOME: join(home, '.cache'),
    };
    const result = await sandbox.run(
      ['run', 'noop', '-n', 'localhost', '-o', 'json', '--config', join(base, 'config.toml')],
      isRoot
        ? { env, wrap: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'] }
        : { env },
    );
    chmodSync(locked, 0o755);
    const document = parseDocument(result);
    expect(document.error?.code).toBe('PLUGIN_DIR_UNREADABLE');
    expect(result.code).toBe(2);
    const audit = readFileSync(join(home, '.local/state/rune/audit.jsonl'), 'utf8');
    expect(audit).toContain('PLUGIN_DIR_UNREADABLE');
  });
});

describe('rune run: small input defects (issue 10)', () => {
  it.concurrent.each([
    ['--config', ['--config', 'a.toml', '--config', 'b.toml']],
    ['--params', ['--params', '{}', '--params', '{"name":"x"}']],
    ['--inventory', ['--inventory', 'a.yaml', '--inventory', 'b.yaml']],
    ['--timeout', ['--timeout', '1s', '--timeout', '2s']],
    ['--output', ['-o', 'json', '-o', 'jsonl']],
  ])('a repeated %s is a usage error naming it, not INTERNAL_ERROR', async (flag, flags) => {
    for (const output of [[], ['-o', 'json']]) {
      const result = await sandbox.run(['run', 'params', '-n', 'localhost', ...flags, ...output]);
      expect(result.code, result.stdout + result.stderr).toBe(2);
      const text = result.stdout + result.stderr;
      if (output.length > 0 && flag !== '--output') {
        expect(parseDocument(result).error?.code).toBe('INVALID_ARGUMENT');
      }
      expect(text).toContain('INVALID_ARGUMENT');
      expect(text).toContain(`${flag} may be given only once`);
    }
  });

  it.concurrent('-p secret:VALUE (a typo for =) never echoes the value: output and audit', async () => {
    const value = `hunter2-${Date.now()}`;
    const document = await expectRun(
      ['params', '-n', 'localhost', '-p', 'name=x', '-p', `secret:${value}`],
      'INVALID_PARAMETERS',
      2,
    );
    expect(document.error?.message).toContain('secret: expected key=value');
    const pretty = await sandbox.run(['run', 'params', '-n', 'localhost', '-p', `x${value}`]);
    expect(pretty.code).toBe(2);
    expect(pretty.stderr).toContain('INVALID_PARAMETERS');
    expect(JSON.stringify(document)).not.toContain(value);
    expect(pretty.stdout + pretty.stderr).not.toContain(value);
    expect(readFileSync(sandbox.auditLog, 'utf8')).not.toContain(value);
  });

  it.concurrent.each(['__proto__', 'constructor', 'prototype'])(
    'a parameter named %s is refused (INVALID_PARAMETERS) on every path',
    async (name) => {
      for (const action of ['params', 'ok']) {
        // params declares its parameters; ok is inferred (undeclared parameters allowed).
        await expectRun(
          [action, '-n', 'localhost', '--yes', '-p', 'name=x', '-p', `${name}=1`],
          'INVALID_PARAMETERS',
          2,
        );
        const json = `{"name":"x","${name}":{"polluted":true}}`;
        await expectRun(
          [action, '-n', 'localhost', '--yes', '--params', json],
          'INVALID_PARAMETERS',
          2,
        );
        const result = await sandbox.run(
          ['run', action, '-n', 'localhost', '--yes', '--params', '-', '-o', 'json'],
          { input: json },
        );
        expect(parseDocument(result).error?.code).toBe('INVALID_PARAMETERS');
        expect(result.code).toBe(2);
      }
    },
  );

  it.concurrent('a lone UTF-16 surrogate in a string parameter is INVALID_PARAMETERS', async () => {
    for (const json of ['{"name":"a\\ud800b"}', '{"name":"x","items":["\\udfff"]}']) {
      const document = await expectRun(
        ['params', '-n', 'localhost', '--params', json],
        'INVALID_PARAMETERS',
        2,
      );
      expect(document.error?.message).toMatch(/surrogate/);
    }
  });

  it.concurrent.each(['', '0x10', '1e3', ' 5', '5 ', '1.0', '99999999999999999999'])(
    'integer parameter text %j is INVALID_PARAMETERS (decimal integers only)',
    async (text) => {
      await expectRun(
        ['params', '-n', 'localhost', '-p', 'name=x', '-p', `count=${text}`],
        'INVALID_PARAMETERS',
        2,
      );
    },
  );

  it.concurrent.each([
    ['address', '"10.0.0.1\\0"'],
    ['address', '"evil\\e[2J"'],
    ['address', '"a\\x9b1m"'],
    ['user', '"ops\\r"'],
    ['proxy_jump', '"jump\\0"'],
  ])(
    'an inventory %s with a control character is INVALID_INVENTORY naming the node',
    async (key, value) => {
      const file = join(sandbox.root, `control-${key}-${value.length}-${Math.random()}.yaml`);
      writeFileSync(file, `nodes:\n  web7: { ${key}: ${value} }\n`);
      const document = await expectRun(
        ['noop', '-n', 'web7', '--inventory', file],
        'INVALID_INVENTORY',
        2,
      );
      expect(document.error?.message).toContain('node "web7"');
      expect(document.error?.message).toContain(`/nodes/web7/${key}`);
    },
  );

  it.concurrent.each([
    ['--concurrency', '1e21'],
    ['--concurrency', '0'],
    ['--concurrency', '-1'],
    ['--concurrency', '1.5'],
    ['--concurrency', 'NaN'],
    ['--concurrency', '0x10'],
    ['--concurrency', '10001'],
    ['--canary', '1e3'],
    ['--canary', '99999999999999999999'],
    ['--canary', '-1'],
    ['--max-failures', '1e21'],
    ['--max-failures', '99999999999999999'],
    ['--timeout', '1e21'],
    ['--timeout', '0'],
    ['--timeout', '25h'],
    ['--deadline', '1e400'],
    ['--deadline', '0'],
    ['--deadline', '999h'],
  ])('%s %s is INVALID_ARGUMENT', async (flag, value) => {
    const document = await expectRun(
      ['noop', '-n', 'localhost', `${flag}=${value}`],
      'INVALID_ARGUMENT',
      2,
    );
    expect(document.error?.message).toContain(flag.replace(/^--/, ''));
  });
});

describe('rune run: plugin misbehaviour', () => {
  it.concurrent.each([
    ['text-before', 'OUTPUT_TEXT_BEFORE_JSON', 6],
    ['two-docs', 'OUTPUT_MULTIPLE_DOCUMENTS', 6],
    ['empty', 'OUTPUT_EMPTY', 6],
    ['exit0-failure', 'EXIT_CODE_MISMATCH', 6],
    ['fail', 'PLUGIN_FAILED', 1],
  ] as const)('%s → %s (exit %d)', async (action, code, exit) => {
    await expectRun([action, '-n', 'localhost', '--yes'], code, exit);
  });

  it.concurrent('a plugin printing 50 MB is capped', async () => {
    const document = await expectRun(['big', '-n', 'localhost', '--yes'], 'OUTPUT_TOO_LARGE', 6);
    expect(document.nodes[0]?.stdout_bytes).toBe(1_048_576);
  });

  it.concurrent('a plugin hanging past its timeout is killed with its process group', async () => {
    const { HOME, out } = fixtureHome('hang-timeout');
    const pidFile = join(out, 'pids');
    const started = Date.now();
    await expectRun(['hang', '-n', 'localhost', '--yes', '--timeout', '1s'], 'PLUGIN_TIMEOUT', 5, {
      HOME,
    });
    expect(Date.now() - started).toBeLessThan(20_000);
    const pids = readFileSync(pidFile, 'utf8').trim().split('\n').map(Number);
    expect(pids.length).toBe(2);
    for (const pid of pids) expect(isProcessAlive(pid), `pid ${pid}`).toBe(false);
  });

  it.concurrent('shell metacharacters arrive verbatim and execute nothing', async () => {
    const marker = join(sandbox.root, 'pwned');
    const { HOME, out } = fixtureHome('metacharacters');
    const capture = join(out, 'stdin.json');
    const nasty = [
      `$(touch ${marker})`,
      `\`touch ${marker}\``,
      `"double" 'single'`,
      `a;touch ${marker}`,
      'line1\nline2',
    ];
    const args = [
      'params',
      '-n',
      'localhost',
      '-p',
      `name=${nasty.join(' | ')}`,
      '-p',
      `items=${nasty.join(',')}`,
    ];
    const result = await sandbox.run(['run', ...args, '-o', 'json'], { env: { HOME } });
    const document = parseDocument(result);
    expect(result.code, result.stderr).toBe(0);
    expect(document.nodes[0]?.status).toBe('success');
    const received = JSON.parse(readFileSync(capture, 'utf8'));
    expect(received.payload.data.input_parameters.name).toBe(nasty.join(' | '));
    expect(received.payload.data.input_parameters.items).toEqual(nasty.join(',').split(','));
    expect(existsSync(marker)).toBe(false);
  });
});

describe('rune run: cancellation', () => {
  it('Ctrl-C (SIGINT) cancels: exit 130, RUN_CANCELLED, plugin process group gone', async () => {
    const { HOME, out } = fixtureHome('sigint');
    const pidFile = join(out, 'pids');
    const { child, stdout, exited } = sandbox.start(
      ['run', 'hang', '-n', 'localhost', '--yes', '-o', 'json'],
      { env: { HOME } },
    );
    // Readiness: the plugin writes its pid and its background child's pid once both run.
    await waitFor(
      () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim().split('\n').length >= 2,
      'the hang plugin to write both pids',
    );
    child.kill('SIGINT');
    const code = await exited;
    expect(code).toBe(130);
    const document = JSON.parse(stdout()) as RunDocument;
    expect(document.nodes[0]?.error?.code).toBe('RUN_CANCELLED');
    const pids = readFileSync(pidFile, 'utf8').trim().split('\n').map(Number);
    for (const pid of pids) expect(isProcessAlive(pid), `pid ${pid}`).toBe(false);
  });
});

describe('rune run: success paths and output formats', () => {
  it('noop (built-in) returns a schema-valid BPCS result', async () => {
    const result = await sandbox.run(['run', 'noop', '--node', 'localhost', '--output', 'json']);
    const document = parseDocument(result);
    expect(result.code, result.stderr).toBe(0);
    expect(document.summary?.exit_code).toBe(0);
    expect(document.nodes[0]?.status).toBe('success');
    expect(validateBpcsResponse(document.nodes[0]?.response).ok).toBe(true);
  });

  it('jsonl prints one line per node then a summary line', async () => {
    const result = await sandbox.run([
      'run',
      'ok',
      '-n',
      'localhost,local',
      '--yes',
      '-o',
      'jsonl',
    ]);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines.map((line) => line.type)).toEqual(['node', 'node', 'summary']);
    expect(lines[2].summary.total).toBe(2);
    expect(result.code).toBe(0);
  });

  it('pretty output names the node, status and summary, without colour under NO_COLOR', async () => {
    const result = await sandbox.run(['run', 'fail', '-n', 'localhost', '--yes']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/✖ failure\s+localhost/);
    expect(result.stdout).toContain('PLUGIN_FAILED');
    expect(result.stdout).toContain('disk on fire');
    expect(result.stdout).not.toContain('\u001b[');
  });

  it('--dry-run prints the plan with sha256 and redacted secrets, runs nothing', async () => {
    const { HOME, out } = fixtureHome('dry-run');
    const capture = join(out, 'stdin.json');
    const result = await sandbox.run(
      [
        'run',
        'params',
        '-n',
        'localhost',
        '-p',
        'name=x',
        '-p',
        'secret=hunter2',
        '--dry-run',
        '-o',
        'json',
      ],
      { env: { HOME } },
    );
    expect(result.code).toBe(0);
    const document = parseDocument(result);
    expect(document.plan?.plugin.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(document.plan?.nodes[0]?.request.payload.data.input_parameters.secret).toBe(
      '[REDACTED]',
    );
    expect(result.stdout).not.toContain('hunter2');
    expect(existsSync(capture)).toBe(false);
    expect(readFileSync(sandbox.auditLog, 'utf8')).not.toContain('hunter2');
  });

  it('--params @file and - (stdin)', async () => {
    const file = join(sandbox.root, 'params.json');
    writeFileSync(file, JSON.stringify({ name: 'from-file', count: 4 }));
    const fromFile = await sandbox.run([
      'run',
      'params',
      '-n',
      'localhost',
      '--params',
      `@${file}`,
      '--dry-run',
      '-o',
      'json',
    ]);
    expect(
      parseDocument(fromFile).plan?.nodes[0]?.request.payload.data.input_parameters,
    ).toMatchObject({ name: 'from-file', count: 4 });
    const fromStdin = await sandbox.run(
      ['run', 'params', '-n', 'localhost', '--params', '-', '--dry-run', '-o', 'json'],
      {
        input: '{"name":"stdin","count":"4"}',
      },
    );
    // JSON values are never coerced: "4" is not an integer.
    expect(parseDocument(fromStdin).error?.code).toBe('INVALID_PARAMETERS');
    expect(fromStdin.code).toBe(2);
  });
});

describe('other commands', () => {
  it('list-actions and its alias', async () => {
    const result = await sandbox.run(['list-actions', '-o', 'json']);
    expect(result.code).toBe(0);
    const actions = JSON.parse(result.stdout).actions.map(
      (action: { action: string }) => action.action,
    );
    expect(actions).toContain('noop');
    expect(actions).toContain('params');
    const alias = await sandbox.run(['show-available-actions']);
    expect(alias.code).toBe(0);
    expect(alias.stdout).toContain('params');
  });

  it('plugin-info shows parameters, sha256 and shadowed copies', async () => {
    // Shadow the built-in noop with a user copy: the built-in must still win.
    writeFileSync(join(sandbox.pluginDir, 'noop.sh'), '#!/bin/sh\necho evil\n');
    chmodSync(join(sandbox.pluginDir, 'noop.sh'), 0o755);
    const result = await sandbox.run(['plugin-info', 'noop', '-o', 'json']);
    const info = JSON.parse(result.stdout);
    expect(info.plugin.source).toBe('builtin');
    expect(info.shadowed[0].source).toBe('user');
    const pretty = await sandbox.run(['plugin-info', 'params']);
    expect(pretty.stdout).toMatch(/count: integer, optional, default 3/);
    expect(pretty.stdout).toMatch(/secret: string, optional, sensitive/);
    expect(pretty.stdout).toMatch(/sha256\s+[0-9a-f]{64}/);
    const unknown = await sandbox.run(['plugin-info', 'nope', '-o', 'json']);
    expect(JSON.parse(unknown.stdout).error.code).toBe('UNKNOWN_ACTION');
    expect(unknown.code).toBe(2);
  });

  it('config show prints every value with its source', async () => {
    mkdirSync(join(sandbox.env.XDG_CONFIG_HOME!, 'rune'), { recursive: true });
    writeFileSync(
      join(sandbox.env.XDG_CONFIG_HOME!, 'rune', 'config.toml'),
      '[execution]\nconcurrency = 7\n',
    );
    const result = await sandbox.run(['config', 'show', '-o', 'json']);
    expect(result.code).toBe(0);
    const shown = JSON.parse(result.stdout);
    expect(shown.values['execution.concurrency']).toEqual({
      value: 7,
      source: join(sandbox.env.XDG_CONFIG_HOME!, 'rune', 'config.toml'),
    });
    expect(shown.values['ssh.port']).toEqual({ value: 22, source: 'default' });
    const pretty = await sandbox.run(['config', 'show'], { env: { RUNE_SSH_PORT: '2200' } });
    expect(pretty.stdout).toContain('port = 2200  # env:RUNE_SSH_PORT');
  });

  it('every command has --help with examples; completion works', async () => {
    for (const command of [
      [],
      ['run'],
      ['list-actions'],
      ['plugin-info'],
      ['config', 'show'],
      ['audit'],
      ['audit', 'verify'],
      ['audit', 'key'],
      ['audit', 'head'],
    ]) {
      const result = await sandbox.run([...command, '--help']);
      expect(result.code, command.join(' ')).toBe(0);
      if (command.length > 0) expect(result.stdout, command.join(' ')).toContain('Examples:');
    }
    const completion = await sandbox.run(['completion']);
    expect(completion.code).toBe(0);
    expect(completion.stdout).toContain('rune');
  });

  it('an unknown flag is a usage error in the requested format', async () => {
    const result = await sandbox.run(['run', 'noop', '-n', 'localhost', '--bogus', '-o', 'json']);
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout).error.code).toBe('INVALID_ARGUMENT');
  });

  it('audit lists and filters; audit verify detects a tampered line', async () => {
    // This test makes the records it checks (it used to rely on earlier tests' noop runs).
    for (const args of [['noop'], ['noop'], ['params', '-p', 'name=x']]) {
      const run = await sandbox.run(['run', ...args, '-n', 'localhost', '-o', 'json']);
      expect(run.code, run.stderr).toBe(0);
    }
    const listed = await sandbox.run(['audit', '--action', 'noop', '-o', 'json']);
    expect(listed.code).toBe(0);
    const records = JSON.parse(listed.stdout).records as { action: string }[];
    expect(records.length).toBeGreaterThan(0);
    expect(records.every((record) => record.action === 'noop')).toBe(true);

    const ok = await sandbox.run(['audit', 'verify']);
    expect(ok.code, ok.stderr).toBe(0);
    const text = readFileSync(sandbox.auditLog, 'utf8');
    const lines = text.trim().split('\n');
    const target = Math.floor(lines.length / 2);
    lines[target] = lines[target]!.replace('"operator":"', '"operator":"mallory-');
    writeFileSync(sandbox.auditLog, `${lines.join('\n')}\n`);
    const broken = await sandbox.run(['audit', 'verify', '-o', 'json']);
    expect(broken.code).toBe(70);
    const error = JSON.parse(broken.stdout).error;
    expect(error.code).toBe('AUDIT_CHAIN_BROKEN');
    expect(error.details.line).toBe(target + 1);
    writeFileSync(sandbox.auditLog, text);
  });
});
