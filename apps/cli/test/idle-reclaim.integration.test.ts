/**
 * `[server] idle_reclaim` through a real `rune serve` of the built CLI: after that long without a
 * request and without a run, each thread of the server (main, the store's SQLite worker, the
 * audit writer) collects its garbage once, counted by `rune_memory_reclaims_total`; not while
 * requests keep coming, not while a run executes, not again while only /metrics is read, and
 * again after new requests. What it gives back is measured in bench/serve-rss.mjs, not here.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type CliSandbox,
  createCliSandbox,
  type ServeProcess,
  startServeProcess,
} from './cli-harness.js';

const IDLE_MS = 3_000;
const THREADS = ['main', 'store', 'audit'] as const;

let sandbox: CliSandbox;
let serve: ServeProcess;
let headers: Record<string, string>;

beforeAll(async () => {
  sandbox = createCliSandbox();
  const configDir = join(sandbox.env.XDG_CONFIG_HOME!, 'rune');
  mkdirSync(configDir, { recursive: true });
  writeFileSync(
    join(configDir, 'config.toml'),
    `[server]\nidle_reclaim = "${IDLE_MS / 1000}s"\nrate_limit = 100000\n`,
  );
  const created = await sandbox.run(['token', 'create', '--name', 'reclaim', '--role', 'operator']);
  expect(created.code, created.stderr).toBe(0);
  headers = {
    authorization: `Bearer ${created.stdout.trim()}`,
    'content-type': 'application/json',
  };
  serve = await startServeProcess(undefined, sandbox.env, ['--listen', '127.0.0.1:0']);
}, 60_000);

afterAll(async () => {
  await serve?.stop();
  sandbox?.cleanup();
});

/** `rune_memory_reclaims_total` by thread (a /metrics request is not activity). */
async function reclaims(): Promise<Record<string, number>> {
  const text = await (await fetch(`${serve.url}/metrics`, { headers })).text();
  const counts: Record<string, number> = {};
  for (const [, thread, value] of text.matchAll(
    /^rune_memory_reclaims_total\{thread="(\w+)"\} (\d+)$/gm,
  )) {
    counts[thread as string] = Number(value);
  }
  return counts;
}

async function waitForReclaims(
  what: string,
  atLeast: Record<string, number>,
): Promise<Record<string, number>> {
  let counts: Record<string, number> = {};
  const deadline = Date.now() + 60_000;
  for (;;) {
    counts = await reclaims();
    if (THREADS.every((thread) => (counts[thread] ?? 0) >= (atLeast[thread] ?? 0))) return counts;
    if (Date.now() > deadline)
      throw new Error(`no reclaim ${what}: ${JSON.stringify(counts)}\n${serve.log()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const dryRun = async (): Promise<void> => {
  const response = await fetch(`${serve.url}/v1/runs`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ action: 'noop', targets: ['localhost'], options: { dry_run: true } }),
  });
  expect(response.status).toBe(202);
  await response.arrayBuffer();
};

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it('reclaims in every thread once the server is idle, never while requests flow', async () => {
  // Requests one after the other for three times idle_reclaim: no reclaim.
  await dryRun();
  const before = await reclaims();
  const flowUntil = Date.now() + 3 * IDLE_MS;
  let sent = 0;
  while (Date.now() < flowUntil) {
    await dryRun();
    sent++;
  }
  expect(await reclaims(), `${sent} requests`).toEqual(before);

  // Then quiet: each thread once (the audit writer and the store worker have work behind them).
  const expected = Object.fromEntries(THREADS.map((thread) => [thread, (before[thread] ?? 0) + 1]));
  const after = await waitForReclaims('after the requests stopped', expected);
  expect(after, JSON.stringify(before)).toEqual(expected);

  // Only /metrics for another two idle spells: nothing to give back, no second reclaim.
  await pause(2 * IDLE_MS);
  expect(await reclaims()).toEqual(expected);

  // New requests, then quiet again: a new reclaim.
  await dryRun();
  const again = Object.fromEntries(THREADS.map((thread) => [thread, (expected[thread] ?? 0) + 1]));
  expect(await waitForReclaims('after the second spell', again)).toEqual(again);
}, 120_000);

it('waits while a run executes, and reclaims once it ended', async () => {
  const response = await fetch(`${serve.url}/v1/runs`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ action: 'hang', targets: ['localhost'], options: { confirm: true } }),
  });
  expect(response.status, await response.clone().text()).toBe(202);
  const { id } = (await response.json()) as { id: string };
  // The run is queued or running: no request for three idle spells, and still no reclaim.
  const before = await reclaims();
  await pause(3 * IDLE_MS);
  expect(await reclaims()).toEqual(before);

  const cancelled = await fetch(`${serve.url}/v1/runs/${id}/cancel`, {
    method: 'POST',
    headers: { authorization: headers.authorization as string },
  });
  expect(cancelled.status, await cancelled.clone().text()).toBe(202);
  await cancelled.arrayBuffer();
  const expected = Object.fromEntries(THREADS.map((thread) => [thread, (before[thread] ?? 0) + 1]));
  expect(await waitForReclaims('after the run ended', expected)).toEqual(expected);
}, 120_000);
