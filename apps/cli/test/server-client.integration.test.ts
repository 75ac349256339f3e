/**
 * `rune run ... --server URL` against a real `rune serve` (both the built CLI): the run is
 * submitted to the server, followed over SSE and rendered like a local run (pretty, json,
 * jsonl); `-p` values are typed with the server's parameter schema; the exit code is the run's;
 * a missing token is AUTH_TOKEN_MISSING (exit 4).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI_BIN } from './cli-harness.js';

const dir = mkdtempSync(join(tmpdir(), 'rune-server-client-'));
const env = {
  HOME: dir,
  XDG_CONFIG_HOME: join(dir, 'config'),
  XDG_STATE_HOME: join(dir, 'state'),
  XDG_DATA_HOME: join(dir, 'data'),
  PATH: process.env.PATH ?? '/usr/bin:/bin',
};
let child: ChildProcess | undefined;
let url = '';
let token = '';

const rune = (args: string[], extra: Record<string, string> = {}) =>
  promisify(execFile)(process.execPath, [CLI_BIN, ...args], { env: { ...env, ...extra } }).then(
    (result) => ({ code: 0, ...result }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );

beforeAll(async () => {
  token = (await rune(['token', 'create', '--name', 'client', '--role', 'operator'])).stdout.trim();
  const started = spawn(process.execPath, [CLI_BIN, 'serve', '--listen', '127.0.0.1:0'], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child = started;
  let log = '';
  url = await new Promise<string>((resolve, reject) => {
    started.stderr?.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (match !== null) resolve(match[1] as string);
    });
    started.once('exit', (code) => reject(new Error(`rune serve exited ${code}: ${log}`)));
  });
}, 60_000);
afterAll(async () => {
  if (child !== undefined && child.exitCode === null) {
    const exit = new Promise((resolve) => child?.once('exit', resolve));
    child.kill('SIGTERM');
    await exit;
  }
  rmSync(dir, { recursive: true, force: true });
});

it('pretty: the node line and the summary, exit 0', async () => {
  const result = await rune(
    ['run', 'noop', '--node', 'localhost', '-p', 'sleep_ms=1', '--server', url],
    {
      RUNE_TOKEN: token,
    },
  );
  expect(result.code, result.stderr).toBe(0);
  expect(result.stdout).toMatch(/success\s+localhost/);
  expect(result.stderr).toMatch(/^run [0-9a-f-]{36} on http/m);
});

it('json and jsonl: the run documents, rendered from the event stream', async () => {
  const json = await rune(
    ['run', 'noop', '--node', 'localhost,127.0.0.1', '-o', 'json', '--server', url],
    {
      RUNE_TOKEN: token,
    },
  );
  expect(json.code, json.stderr).toBe(0);
  const document = JSON.parse(json.stdout) as {
    exit_code: number;
    nodes: unknown[];
    summary: { total: number };
  };
  expect(document).toMatchObject({ exit_code: 0, summary: { total: 2 } });
  expect(document.nodes).toHaveLength(2);
  const jsonl = await rune(['run', 'noop', '--node', 'localhost', '-o', 'jsonl', '--server', url], {
    RUNE_TOKEN: token,
  });
  const lines = jsonl.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string });
  expect(lines.map((line) => line.type)).toEqual(['node', 'summary']);
});

it('a failure keeps its exit code; a missing token is AUTH_TOKEN_MISSING (exit 4)', async () => {
  const bad = await rune(
    ['run', 'noop', '--node', 'localhost', '-p', 'sleep_ms=soon', '--server', url],
    {
      RUNE_TOKEN: token,
    },
  );
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('INVALID_PARAMETERS');
  const anonymous = await rune(['run', 'noop', '--node', 'localhost', '--server', url]);
  expect(anonymous.code).toBe(4);
  expect(anonymous.stderr).toContain('AUTH_TOKEN_MISSING');
});
