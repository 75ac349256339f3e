/**
 * Durable `run_ended` notifications of a real `rune serve` process (the built CLI): an alert
 * starts a run, the server is killed (SIGKILL: no shutdown, nothing flushed) before the run ends,
 * and a restarted server on the same store delivers what was owed — the run the restart marked
 * `interrupted` — to a real HTTP receiver on loopback. The receiver refuses the first attempt
 * (HTTP 503): the notice is retried with the same `Idempotency-Key`, so the receiver can
 * de-duplicate, and delivered once it answered 2xx.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, postAlertmanager, type ServeProcess, startServeProcess } from './cli-harness.js';

const dir = mkdtempSync(join(tmpdir(), 'rune-run-end-'));
const env = {
  HOME: dir,
  XDG_CONFIG_HOME: join(dir, 'config'),
  XDG_STATE_HOME: join(dir, 'state'),
  XDG_DATA_HOME: join(dir, 'data'),
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  RUNE_AM_TOKEN: 'am-run-end-token',
};
const configFile = join(dir, 'rune.toml');

interface Post {
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  answered: number;
}
const posts: Post[] = [];
/** The receiver answers 503 to the first `run_ended` post it gets, 204 to everything else. */
let refusedOnce = false;
let receiver: Server;
const servers: ServeProcess[] = [];
let token = '';

beforeAll(async () => {
  receiver = createServer((request, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
    });
    request.on('end', () => {
      const body = JSON.parse(text) as Record<string, unknown>;
      const refuse = body.outcome === 'run_ended' && !refusedOnce;
      if (refuse) refusedOnce = true;
      posts.push({ headers: request.headers, body, answered: refuse ? 503 : 204 });
      response.writeHead(refuse ? 503 : 204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const address = receiver.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const rules = join(dir, 'alert-rules.yaml');
  writeFileSync(
    rules,
    `schema_version: rune-alert-rules/v1
receivers:
  am: { kind: alertmanager, bearer_token: "env:RUNE_AM_TOKEN" }
notifiers:
  - { name: hook, kind: webhook, url: "http://127.0.0.1:${port}/hook", outcomes: [ran, run_ended] }
rules:
  - name: slow
    match: { labels: { alertname: Slow } }
    action: noop
    params: { sleep_ms: { from_label: sleep, as: integer } }
`,
  );
  writeFileSync(join(dir, 'inventory.yaml'), 'nodes:\n  web1: { address: localhost }\n');
  writeFileSync(
    configFile,
    `[core]\ninventory = ${JSON.stringify(join(dir, 'inventory.yaml'))}\naudit_log = ${JSON.stringify(join(dir, 'audit.jsonl'))}\n\n[server]\nlisten = "127.0.0.1:0"\nstore = ${JSON.stringify(join(dir, 'server.sqlite'))}\nalert_rules = ${JSON.stringify(rules)}\nshutdown_grace = "5s"\n`,
  );
  token = (
    await promisify(execFile)(
      process.execPath,
      [CLI_BIN, 'token', 'create', '--name', 'reader', '--role', 'viewer', '--config', configFile],
      { env },
    )
  ).stdout.trim();
}, 120_000);

afterAll(async () => {
  for (const server of servers) {
    if (server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGKILL');
    }
  }
  await new Promise((resolve) => receiver?.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

const serve = async (): Promise<ServeProcess> => {
  const server = await startServeProcess(configFile, env);
  servers.push(server);
  return server;
};

const get = async (url: string, path: string): Promise<Record<string, unknown>> =>
  (await (
    await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } })
  ).json()) as Record<string, unknown>;

const until = async <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> => {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

describe('rune serve: run_ended notifications survive a restart', () => {
  it('a run interrupted by a crash is announced by the next server, at least once, under one Idempotency-Key', async () => {
    const first = await serve();
    const [alertId] = await postAlertmanager(first.url, 'am', env.RUNE_AM_TOKEN, [
      {
        labels: { alertname: 'Slow', instance: 'web1:9100', sleep: '4000' },
        fingerprint: 'run-end-1',
      },
    ]);
    const alert = await until('the decision', async () => {
      const document = await get(first.url, `/v1/alerts/${alertId}`);
      return document.outcome === 'received' ? undefined : document;
    });
    expect(alert.outcome).toBe('ran');
    const runId = alert.run_id as string;
    await until('the run to start', async () =>
      (await get(first.url, `/v1/runs/${runId}`)).status === 'running' ? true : undefined,
    );

    // The decision's own notice is best effort (notifiers.ts): it is not retried, so a crash while
    // it is in flight loses it. Wait for it, so that the crash below only stands between the run
    // and its durable run_ended notice.
    await until('the decision notice', async () =>
      posts.some((post) => post.body.outcome === 'ran') ? true : undefined,
    );

    // A crash while the run runs: the process that was to announce its end is gone.
    const exited = new Promise((resolve) => first.child.once('exit', resolve));
    first.child.kill('SIGKILL');
    await exited;
    expect(posts.some((post) => post.body.outcome === 'run_ended')).toBe(false);

    const second = await serve();
    expect((await get(second.url, `/v1/runs/${runId}`)).status).toBe('interrupted');
    const delivered = await until('a delivered run_ended', async () =>
      posts.find((post) => post.body.outcome === 'run_ended' && post.answered === 204),
    );
    const ended = posts.filter((post) => post.body.outcome === 'run_ended');
    // The first attempt was refused (503) and retried: the same key on every attempt.
    expect(ended.map((post) => post.answered)).toEqual([503, 204]);
    const key = ended[0]?.headers['idempotency-key'];
    expect(key).toMatch(/^rune-run-ended-[0-9a-f]{40}$/);
    expect(ended.map((post) => post.headers['idempotency-key'])).toEqual([key, key]);
    expect(delivered.body).toMatchObject({ alert_id: alertId, run_id: runId });
    expect(String(delivered.body.reason)).toMatch(/ended interrupted/);
    // The decision's own post carries a key of its own.
    const ran = posts.find((post) => post.body.outcome === 'ran');
    expect(ran?.headers['idempotency-key']).toMatch(/^rune-alert-[0-9a-f]{40}$/);

    // Delivered is settled: another restart sends nothing again.
    await second.stop();
    const third = await serve();
    await third.logLine(/listening on/);
    // The deliverer runs at start-up and every second: give it two passes.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(posts.filter((post) => post.body.outcome === 'run_ended')).toHaveLength(2);
    await third.stop();
  }, 240_000);
});
