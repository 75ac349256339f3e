/**
 * `rune run ... --server URL` against a real `rune serve` (both the built CLI): the run is
 * submitted to the server, followed over SSE and rendered like a local run (pretty, json,
 * jsonl); `-p` values are typed with the server's parameter schema; the exit code is the run's;
 * a missing token is AUTH_TOKEN_MISSING (exit 4). Ctrl-C cancels the run on the server, also
 * when it comes before the server answered the request (a relay holds that answer).
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type CliChild,
  type HoldingProxy,
  runCli,
  type ServeProcess,
  serveHome,
  startCli,
  startHoldingProxy,
  startServeProcess,
  waitFor,
  waitForStderr,
} from './cli-harness.js';

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
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
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

/** `rune run noop` sleeping 20 s on localhost through `server`, started to be signalled. */
function startSleepingRun(server: string): CliChild {
  const started = startCli(
    ['run', 'noop', '--node', 'localhost', '-p', 'sleep_ms=20000', '--server', server],
    { ...env, RUNE_TOKEN: token },
  );
  children.push(started.child);
  return started;
}

const getRun = async (id: string): Promise<{ status: string; exit_code: number | null }> =>
  (await (
    await fetch(`${url}/v1/runs/${id}`, { headers: { authorization: `Bearer ${token}` } })
  ).json()) as { status: string; exit_code: number | null };

/** The run whose events the CLI reads through `proxy`, once it does (it knows the id then). */
async function followedRunId(proxy: HoldingProxy): Promise<string> {
  const followed = () =>
    proxy.requests
      .map((line) => /^GET \/v1\/runs\/([0-9a-f-]{36})\/events/.exec(line)?.[1])
      .find((id) => id !== undefined);
  await waitFor(() => followed() !== undefined, 'the CLI to follow the run');
  return followed() ?? '';
}

it('Ctrl-C while it follows the run cancels it on the server (exit 130)', async () => {
  // The relay holds nothing: it shows when the CLI follows the run's events.
  const proxy = await startHoldingProxy(url, () => false);
  try {
    const { child, stdout, stderr, exited } = startSleepingRun(proxy.url);
    const id = await followedRunId(proxy);
    expect((await getRun(id)).status).toMatch(/^(queued|running)$/);
    child.kill('SIGINT');
    expect(await exited, stderr()).toBe(130);
    expect(stderr()).toContain('cancelling: no new nodes start, running ones are stopped');
    expect(stdout()).toMatch(/cancelled/);
    expect(await getRun(id)).toMatchObject({ status: 'cancelled', exit_code: 130 });
  } finally {
    await proxy.close();
  }
});

it('Ctrl-C before the server answered the request: the cancel goes with the answer (exit 130)', async () => {
  const proxy = await startHoldingProxy(
    url,
    (method, path) => method === 'POST' && path === '/v1/runs',
  );
  try {
    const cli = startSleepingRun(proxy.url);
    const { child, stderr, exited } = cli;
    // The server accepted the run (it is queued or running there); its answer waits in the relay.
    const answer = await proxy.held;
    expect(answer.status).toBe(202);
    const id = (JSON.parse(answer.body) as { id: string }).id;
    child.kill('SIGINT');
    await waitForStderr(
      cli,
      'cancelling: the run is cancelled as soon as the server answers its request',
    );
    proxy.release();
    expect(await exited, stderr()).toBe(130);
    expect(stderr()).toContain(`run ${id} on ${proxy.url}`);
    expect(await getRun(id)).toMatchObject({ status: 'cancelled', exit_code: 130 });
  } finally {
    await proxy.close();
  }
});

it('Ctrl-C while -p is typed by the server (before anything was submitted): nothing is submitted (exit 130)', async () => {
  // The answer to the parameter schema's request is held: the Ctrl-C comes before the POST.
  const proxy = await startHoldingProxy(
    url,
    (method, path) => method === 'GET' && path === '/v1/actions/noop',
  );
  try {
    const cli = startSleepingRun(proxy.url);
    expect((await proxy.held).status).toBe(200);
    cli.child.kill('SIGINT');
    await waitForStderr(
      cli,
      'cancelling: the run is cancelled as soon as the server answers its request',
    );
    proxy.release();
    expect(await cli.exited, cli.stderr()).toBe(130);
    expect(cli.stderr()).toContain('interrupted before the run was submitted');
    expect(proxy.requests.filter((line) => line.startsWith('POST '))).toEqual([]);
  } finally {
    await proxy.close();
  }
});

it('a second Ctrl-C quits at once, naming the run that may still be running on the server', async () => {
  // The cancel's answer is held: the CLI waits for it after the run ended, until Ctrl-C again.
  const proxy = await startHoldingProxy(
    url,
    (method, path) => method === 'POST' && /^\/v1\/runs\/[0-9a-f-]{36}\/cancel$/.test(path),
  );
  try {
    const { child, stderr, exited } = startSleepingRun(proxy.url);
    const id = await followedRunId(proxy);
    child.kill('SIGINT');
    expect((await proxy.held).status).toBe(202);
    child.kill('SIGINT');
    expect(await exited, stderr()).toBe(130);
    expect(stderr()).toContain(
      `warning: quitting: run ${id} may still be running on ${proxy.url} (POST /v1/runs/${id}/cancel cancels it)`,
    );
    // The server took the cancel (only its answer was held): the run ends cancelled there.
    await waitFor(async () => (await getRun(id)).status === 'cancelled', `run ${id} to end`);
  } finally {
    await proxy.close();
  }
});
