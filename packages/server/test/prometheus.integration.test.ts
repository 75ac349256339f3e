/**
 * A real Prometheus (`/usr/bin/prometheus`, Debian package `prometheus`) scrapes a real
 * `rune serve` on loopback with a viewer token, and answers PromQL queries for RUNE metrics
 * through its HTTP API after runs went through the server.
 *
 * Readiness is Prometheus's own `/-/ready`, and the query is repeated until the scrape that
 * follows the runs has landed (bounded), never a fixed sleep.
 *
 * docs/observability.md is held to what the server does: Prometheus runs the page's scrape job
 * (target, token file and interval substituted), evaluates the page's PromQL block, and the
 * page's metric table must list exactly the metrics `/metrics` exports, with their types and
 * labels.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServerMetrics } from '../src/metrics.js';
import {
  createTestHome,
  startTestServer,
  type TestHome,
  type TestServer,
  waitForRun,
} from './harness.js';

const PROMETHEUS = '/usr/bin/prometheus';
const DOC = readFileSync(new URL('../../../docs/observability.md', import.meta.url), 'utf8');

/** The body of the first fenced block of `language` after `heading` in the page. */
function docBlock(heading: string, language: string): string {
  const section = DOC.slice(DOC.indexOf(heading));
  const match = new RegExp(`\`\`\`${language}\n([\\s\\S]*?)\`\`\``).exec(section);
  if (match?.[1] === undefined) throw new Error(`no ${language} block after ${heading}`);
  return match[1];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

let home: TestHome;
let t: TestServer;
let prometheus: ChildProcess | undefined;
let promUrl: string;
let promLog = '';

beforeAll(async () => {
  home = createTestHome();
  t = await startTestServer(home);
  const target = new URL(t.url);
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  const config = join(home.dir, 'prometheus.yml');
  const tokenFile = join(home.dir, 'rune.token');
  writeFileSync(tokenFile, t.viewer, { mode: 0o600 });
  // The scrape job of docs/observability.md, pointed at this server.
  const documented = docBlock('## Metrics (`GET /metrics`)', 'yaml');
  expect(documented).toContain('credentials_file: /etc/prometheus/rune.token');
  writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      documented
        .replace(/^# .*\n/, '')
        .replace(/\n\s*scrape_interval: .*/, '')
        .replace('/etc/prometheus/rune.token', tokenFile)
        .replace('127.0.0.1:8421', target.host),
    ].join('\n'),
  );
  prometheus = spawn(
    PROMETHEUS,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(home.dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  prometheus.stderr?.on('data', (chunk: Buffer) => {
    promLog = (promLog + chunk.toString()).slice(-4000);
  });
  await until('Prometheus to be ready', async () => {
    const response = await fetch(`${promUrl}/-/ready`);
    return response.ok ? true : undefined;
  });
}, 90_000);

afterAll(async () => {
  if (prometheus !== undefined && prometheus.exitCode === null) {
    const exited = new Promise((resolve) => prometheus?.once('exit', resolve));
    prometheus.kill('SIGTERM');
    await exited;
  }
  await t?.close();
  home?.remove();
});

interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(promql: string): Promise<VectorSample[]> {
  const response = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await response.json()) as { status: string; data: { result: VectorSample[] } };
  expect(body.status).toBe('success');
  return body.data.result;
}

/** Name -> type of every RUNE metric the server's `/metrics` declares (`# TYPE`). */
async function exportedMetrics(): Promise<Map<string, string>> {
  const response = await t.request('/metrics', { token: t.viewer });
  expect(response.status).toBe(200);
  const exported = new Map<string, string>();
  for (const match of (await response.text()).matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name = '', type = ''] = match;
    if (!name.startsWith('rune_server_')) exported.set(name, type);
  }
  return exported;
}

describe('a real Prometheus scraping rune serve', () => {
  it('answers PromQL for RUNE metrics after runs', async () => {
    for (let index = 0; index < 3; index++) {
      const response = await t.request('/v1/runs', {
        json: { action: 'noop', targets: ['localhost'], params: { message: `m${index}` } },
      });
      const { id } = (await response.json()) as { id: string };
      expect((await waitForRun(t, id)).status).toBe('succeeded');
    }
    const runs = await until(`rune_runs_total in Prometheus (log: ${promLog})`, async () => {
      const result = await query('sum by (action, status) (rune_runs_total)');
      const sample = result.find((entry) => entry.metric.action === 'noop');
      return sample !== undefined && Number(sample.value[1]) >= 3 ? result : undefined;
    });
    expect(runs.find((entry) => entry.metric.action === 'noop')?.metric.status).toBe('succeeded');

    const nodes = await query('rune_node_results_total{action="noop"}');
    expect(nodes[0]?.metric).toMatchObject({ code: 'OK', transport: 'local', job: 'rune' });
    const p95 = await query(
      'histogram_quantile(0.95, sum by (le) (rune_node_duration_seconds_bucket{action="noop"}))',
    );
    expect(Number(p95[0]?.value[1])).toBeGreaterThan(0);
    const store = await query('sum(rune_store_query_duration_seconds_count)');
    expect(Number(store[0]?.value[1])).toBeGreaterThan(0);
    const up = await query('up{job="rune"}');
    expect(up[0]?.value[1]).toBe('1');
  });

  it('evaluates every query docs/observability.md suggests', async () => {
    const queries = docBlock('Queries worth an alert:', 'promql')
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('#'));
    expect(queries.length).toBeGreaterThanOrEqual(4);
    const exported = await exportedMetrics();
    for (const promql of queries) {
      // A query naming a metric wrongly still "succeeds" with no series: each metric it names
      // must be one the server exports.
      await query(promql);
      for (const [name] of promql.matchAll(/\brune_[a-z_]+\b/g)) {
        expect(exported.has(name.replace(/_bucket$/, '')), `${name} in ${promql}`).toBe(true);
      }
    }
  });

  it('documents every exported metric, with its type and labels, and nothing else', async () => {
    const exported = await exportedMetrics();
    const labelsOf = new Map<string, string[]>();
    for (const metric of createServerMetrics().registry.getMetricsAsArray()) {
      labelsOf.set(metric.name, (metric as unknown as { labelNames: string[] }).labelNames);
    }
    const table = DOC.slice(DOC.indexOf('| metric '), DOC.indexOf('A Prometheus scrape job'));
    const documented = new Map<string, { type: string; labels: string[] }>();
    for (const row of table.matchAll(/^\| `(rune_[a-z_]+)`\s*\| (\w+)\s*\|([^|]*)\|/gm)) {
      const [, name = '', type = '', labels = ''] = row;
      const names = [...labels.matchAll(/`([a-z_]+)`/g)].map((label) => label[1] ?? '');
      documented.set(name, { type, labels: names });
    }
    expect(table).toContain('`rune_server_*`');
    expect([...documented.keys()].sort()).toEqual([...exported.keys()].sort());
    for (const [name, row] of documented) {
      expect(row.type, name).toBe(exported.get(name));
      expect(row.labels.sort(), name).toEqual([...(labelsOf.get(name) ?? [])].sort());
    }
  });
});
