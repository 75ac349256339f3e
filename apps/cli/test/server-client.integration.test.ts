/**
 * `rune run ... --server URL` against a real `rune serve` (both the built CLI): the run is
 * submitted to the server, followed over SSE and rendered like a local run (pretty, json,
 * jsonl); `-p` values are typed with the server's parameter schema; the exit code is the run's;
 * a missing token is AUTH_TOKEN_MISSING (exit 4).
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli, type ServeProcess, serveHome, startServeProcess } from './cli-harness.js';

const { dir, env } = serveHome('rune-server-client-');
let serve: ServeProcess | undefined;
let url = '';
let token = '';

const rune = (args: string[], extra: Record<string, string> = {}) =>
  runCli(args, { ...env, ...extra });

beforeAll(async () => {
  token = (await rune(['token', 'create', '--name', 'client', '--role', 'operator'])).stdout.trim();
  serve = await startServeProcess(undefined, env, ['--listen', '127.0.0.1:0']);
  url = serve.url;
}, 60_000);
afterAll(async () => {
  await serve?.stop();
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
