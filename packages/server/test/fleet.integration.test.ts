/**
 * The service against a real sshd fleet on loopback: per-node mutual exclusion (queue or refuse),
 * cancel mid-run with the remote processes gone, and `kill -9` of a real `rune serve` process
 * mid-run, then a restart: the in-flight run ends `interrupted` with each node's last state, the
 * queued run starts, the one whose sensitive value died with the process is interrupted, the
 * audit log agrees with the store and verifies, and nothing is left running on the node.
 *
 * Readiness is the plugin's own marker file on the node ("<sleep pid> <plugin pid>"), never a
 * fixed sleep. The crash test runs the built CLI (`npx -y pnpm@10.34.9 build` first).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isProcessAlive } from '@rune/transport/testing';
import { type SshdFleet, startSshdFleet } from '@rune/transport-ssh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, openRunStore } from '../src/index.js';
import {
  createTestHome,
  serveListening,
  sshProvider,
  startTestServer,
  type TestHome,
  type TestServer,
  waitForRun,
} from './harness.js';

type Json = Record<string, unknown>;
const CLI = new URL('../../../apps/cli/bin/rune.js', import.meta.url).pathname;

let fleet: SshdFleet;
beforeAll(async () => {
  fleet = await startSshdFleet(2);
});
afterAll(async () => {
  await fleet?.stop();
});

/** Waits for the plugin of `trace` on `node` to report its pids in `dir`. */
async function pluginPids(dir: string, trace: string, node: string): Promise<number[]> {
  const file = join(dir, `${trace}-${node}`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (/^\d+ \d+\n$/.test(text)) return text.trim().split(' ').map(Number);
    if (Date.now() > deadline) throw new Error(`the plugin on ${node} never started`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function gone(pids: readonly number[], withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (pids.every((pid) => !isProcessAlive(pid))) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

function sshToml(): string {
  return `\n[ssh]\nidentity_files = [${JSON.stringify(fleet.clientKey.privateKeyFile)}]\nknown_hosts_files = [${JSON.stringify(fleet.knownHostsFile)}]\nuse_ssh_config = false\nuse_agent = false\nremote_cache_dir = ${JSON.stringify(fleet.hosts[0]?.remoteCacheDir)}\n`;
}

describe('in process, over SSH', () => {
  let home: TestHome;
  let t: TestServer;
  let markers: string;
  beforeAll(async () => {
    home = createTestHome('', { fleet });
    markers = join(home.dir, 'markers');
    mkdirSync(markers);
    t = await startTestServer(home, { ssh: sshProvider(fleet) });
  });
  afterAll(async () => {
    await t?.close();
    home?.remove();
  });

  const hold = (node: string, ms: number, ifBusy?: 'queue' | 'refuse') =>
    t.request('/v1/runs', {
      json: {
        action: 'hold',
        targets: [node],
        params: { hold_ms: ms, marker_dir: markers },
        ...(ifBusy === undefined ? {} : { options: { if_busy: ifBusy } }),
      },
    });

  it('GET /v1/nodes previews a selection against the inventory', async () => {
    const response = (await (await t.request('/v1/nodes?selector=tag:test,!node2')).json()) as Json;
    expect(response.matched).toEqual(['node1']);
    expect((response.nodes as Json[]).map((node) => node.name)).toEqual(['node1', 'node2']);
    const unknown = (await (await t.request('/v1/nodes?selector=web9')).json()) as Json;
    expect((unknown.error as Json).code).toBe('UNKNOWN_NODE');
  });

  it('two requests for one busy node: the second waits (queue) or is refused (NODE_BUSY, 409)', async () => {
    const first = (await (await hold('node1', 1500)).json()) as Json;
    const firstPids = await pluginPids(markers, first.trace_id as string, 'node1');
    const refused = await hold('node1', 1, 'refuse');
    expect(refused.status).toBe(409);
    const error = ((await refused.json()) as Json).error as Json;
    expect(error).toMatchObject({ code: 'NODE_BUSY', details: { nodes: ['node1'] } });
    const queued = (await (await hold('node1', 1, 'queue')).json()) as Json;
    expect(
      ((await (await t.request(`/v1/runs/${queued.id as string}`)).json()) as Json).status,
    ).toBe('queued');
    // Another node is not held, and an idempotent action is never locked.
    const other = (await (await hold('node2', 1, 'refuse')).json()) as Json;
    expect((await waitForRun(t, other.id as string)).status).toBe('succeeded');
    const noop = await t.request('/v1/runs', {
      json: { action: 'noop', targets: ['node1'], options: { if_busy: 'refuse' } },
    });
    expect(noop.status).toBe(202);
    const firstDoc = await waitForRun(t, first.id as string);
    const queuedDoc = await waitForRun(t, queued.id as string);
    expect(firstDoc.status).toBe('succeeded');
    expect(queuedDoc.status).toBe('succeeded');
    // The queued run started only after the first one ended on node1.
    expect(Date.parse(queuedDoc.started_at as string)).toBeGreaterThanOrEqual(
      Date.parse(firstDoc.finished_at as string),
    );
    expect(await gone(firstPids, 1000)).toBe(true);
  });

  it('cancel mid-run over SSH: the remote plugin and its children are killed', async () => {
    const run = (await (await hold('node2', 60_000)).json()) as Json;
    const pids = await pluginPids(markers, run.trace_id as string, 'node2');
    const cancel = await t.request(`/v1/runs/${run.id as string}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(202);
    const document = await waitForRun(t, run.id as string);
    expect(document).toMatchObject({ status: 'cancelled', exit_code: 130 });
    expect(await gone(pids, 10_000)).toBe(true);
  });
});

/** A `rune serve` child process; resolves with its URL once it listens. */
function serve(
  home: TestHome,
): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--config', home.configFile, '--listen', '127.0.0.1:0'],
    {
      env: home.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const { url, stderr } = serveListening(child);
  return url.then((listening) => ({ child, url: listening, stderr }));
}

describe('rune serve logs transport warnings', () => {
  it('prints the host key accept-new records, like rune run', async () => {
    const home = createTestHome('', { fleet });
    // An empty known_hosts file and accept-new: the first connection records the key and warns.
    const knownHosts = join(home.dir, 'known_hosts');
    writeFileSync(knownHosts, '');
    writeFileSync(
      home.configFile,
      readFileSync(home.configFile, 'utf8') +
        sshToml().replace(JSON.stringify(fleet.knownHostsFile), JSON.stringify(knownHosts)) +
        'host_key_checking = "accept-new"\n',
    );
    const store = await openRunStore(home.storePath);
    const token = (await createToken(store, { name: 'ops', role: 'operator', expires: '1h' }))
      .token;
    await store.close();
    const server = await serve(home);
    try {
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const accepted = (await (
        await fetch(`${server.url}/v1/runs`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ action: 'noop', targets: ['node1'] }),
        })
      ).json()) as Json;
      const run = (await (
        await fetch(`${server.url}/v1/runs/${accepted.id as string}?wait=30s`, { headers })
      ).json()) as Json;
      expect(run.status).toBe('succeeded');
      // The same line `rune run` prints, on the server's log (stderr), once per new host key.
      expect(server.stderr()).toMatch(
        /\nwarning: accept-new: recorded \S+ key SHA256:\S+ of 127\.\d+\.\d+\.\d+:\d+ in \S+known_hosts\n/,
      );
    } finally {
      const exited = new Promise((resolve) => server.child.once('exit', resolve));
      server.child.kill('SIGTERM');
      await exited;
      home.remove();
    }
  });
});

describe('rune serve, kill -9 mid-run, restart', () => {
  it('in-flight -> interrupted with each node last state; queued starts; audit agrees; nothing left on the node', async () => {
    const home = createTestHome('on_restart = "start"\n', { fleet });
    writeFileSync(home.configFile, readFileSync(home.configFile, 'utf8') + sshToml());
    const markers = join(home.dir, 'markers');
    mkdirSync(markers);
    // The token is made the way an operator makes it: in the store, before the server starts.
    const store = await openRunStore(home.storePath);
    const token = (await createToken(store, { name: 'pager', role: 'operator', expires: '1h' }))
      .token;
    await store.close();
    const call = (url: string, path: string, json?: unknown) =>
      fetch(`${url}${path}`, {
        method: json === undefined ? 'GET' : 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          ...(json === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(json === undefined ? {} : { body: JSON.stringify(json) }),
      }).then(async (response) => (await response.json()) as Json);

    const first = await serve(home);
    let second: Awaited<ReturnType<typeof serve>> | undefined;
    try {
      // node1 and node2 in flight (a 4 s timeout: the node's watchdog kills at the deadline).
      const inflight = await call(first.url, '/v1/runs', {
        action: 'hold',
        targets: ['node1', 'node2'],
        params: { hold_ms: 120_000, marker_dir: markers },
        options: { timeout: '4s', canary: 1 },
      });
      const pids = await pluginPids(markers, inflight.trace_id as string, 'node1');
      // Queued behind node1's lock: one without and one with a sensitive value.
      const queued = await call(first.url, '/v1/runs', {
        action: 'hold',
        targets: ['node1'],
        params: { hold_ms: 1, marker_dir: markers },
      });
      const secret = await call(first.url, '/v1/runs', {
        action: 'hold',
        targets: ['node1'],
        params: { hold_ms: 1, secret: 'hunter2' },
      });
      expect([queued.status, secret.status]).toEqual(['queued', 'queued']);

      first.child.kill('SIGKILL');
      await new Promise((resolve) => first.child.once('exit', resolve));

      second = await serve(home);
      const running = await call(second.url, `/v1/runs/${inflight.id as string}`);
      expect(running).toMatchObject({ status: 'interrupted', exit_code: 130 });
      expect((running.error as Json).code).toBe('RUN_INTERRUPTED');
      const nodes = running.nodes as Json[];
      // canary 1: node1 was running (failure), node2 had not started (skipped).
      expect(nodes.map((node) => [node.node, node.status, (node.error as Json).code])).toEqual([
        ['node1', 'failure', 'RUN_INTERRUPTED'],
        ['node2', 'skipped', 'RUN_INTERRUPTED'],
      ]);
      const requeued = await call(second.url, `/v1/runs/${queued.id as string}?wait=20s`);
      expect(requeued.status).toBe('succeeded');
      const lost = await call(second.url, `/v1/runs/${secret.id as string}`);
      expect(lost).toMatchObject({ status: 'interrupted', error: { code: 'RUN_INTERRUPTED' } });
      expect(JSON.stringify(lost)).not.toContain('hunter2');
      // The store never held the secret in clear.
      expect(readFileSync(home.storePath).includes('hunter2')).toBe(false);
      expect(readFileSync(home.auditLog).includes('hunter2')).toBe(false);

      // The audit trail agrees with the store: the RBAC decision that let it in, the in-flight
      // run's intent, then one outcome per node.
      const records = readFileSync(home.auditLog, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Json)
        .filter((record) => record.run_id === inflight.id);
      expect(
        records.map((record) => [record.event, record.node, record.error_code ?? null]),
      ).toEqual([
        ['policy', null, null],
        ['intent', null, null],
        ['run', 'node1', 'RUN_INTERRUPTED'],
        ['run', 'node2', 'RUN_INTERRUPTED'],
      ]);
      expect(records.every((record) => record.operator === 'token:pager')).toBe(true);
      const verify = await call(second.url, '/v1/audit/verify');
      expect(verify).toMatchObject({ ok: true });

      // Nothing the killed server started is left on the node: the watchdog swept it at 4 s.
      expect(await gone(pids, 20_000)).toBe(true);
    } finally {
      first.child.kill('SIGKILL');
      if (second !== undefined) {
        second.child.kill('SIGTERM');
        await new Promise((resolve) => second?.child.once('exit', resolve));
      }
      home.remove();
    }
  }, 90_000);

  it('SIGTERM drains: a running run finishes, the server exits 0', async () => {
    const home = createTestHome();
    const store = await openRunStore(home.storePath);
    const token = (await createToken(store, { name: 'ops', role: 'operator', expires: '1h' }))
      .token;
    await store.close();
    const markers = join(home.dir, 'markers');
    mkdirSync(markers);
    const served = await serve(home);
    const response = await fetch(`${served.url}/v1/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        action: 'hold',
        targets: ['localhost'],
        params: { hold_ms: 1500, marker_dir: markers },
      }),
    });
    const accepted = (await response.json()) as Json;
    await pluginPids(markers, accepted.trace_id as string, 'localhost');
    const exit = new Promise<number | null>((resolve) => served.child.once('exit', resolve));
    served.child.kill('SIGTERM');
    expect(await exit).toBe(0);
    const after = await openRunStore(home.storePath);
    expect((await after.getRun(accepted.id as string))?.status).toBe('succeeded');
    await after.close();
    expect(served.stderr()).toMatch(/every record written/);
    home.remove();
  }, 60_000);
});
