/**
 * `log_format = "json"`: Fastify's pino logger writes one JSON object per request with the
 * request's trace id — the caller's from `traceparent`, and the same trace id as the run it
 * submitted — and never a query string, header or body.
 */
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestHome,
  startTestServer,
  type TestHome,
  type TestServer,
  waitForRun,
} from './harness.js';

let home: TestHome;
let t: TestServer;
const lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  home = createTestHome('log_format = "json"\n');
  const destination = new PassThrough();
  let pending = '';
  destination.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    for (const part of parts) if (part !== '') lines.push(JSON.parse(part));
  });
  // An exporter RUNE lacks: the server says so at start-up (and traces stay off).
  process.env.OTEL_TRACES_EXPORTER = 'zipkin';
  try {
    t = await startTestServer(home, {}, { logDestination: destination });
  } finally {
    delete process.env.OTEL_TRACES_EXPORTER;
  }
});
afterAll(async () => {
  await t?.close();
  home?.remove();
});

describe('JSON logs', () => {
  it('warns at start-up about OTEL_* settings RUNE does not support', () => {
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'OTEL_TRACES_EXPORTER names zipkin, which RUNE does not support (only otlp, console, none): tracing is off',
      }),
    );
  });

  it('logs each request as JSON with its trace id, which is the run trace id', async () => {
    const trace = '0af7651916cd43dd8448eb211c80319c';
    const response = await t.request('/v1/runs?probe=hunter2', {
      json: { action: 'noop', targets: ['localhost'], params: { message: 'json-log-secret' } },
      headers: { traceparent: `00-${trace}-b7ad6b7169203331-01` },
    });
    const accepted = (await response.json()) as { id: string; trace_id: string };
    expect(accepted.trace_id).toBe(trace);
    await waitForRun(t, accepted.id);
    const line = lines.find((entry) => entry.route === '/v1/runs' && entry.method === 'POST');
    expect(line).toMatchObject({
      level: 'info',
      service: 'rune-server',
      trace_id: trace,
      status: 202,
      principal: 'token:ops',
      msg: 'request',
    });
    expect(typeof line?.time).toBe('string');
    const text = JSON.stringify(lines);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('json-log-secret');
    expect(text).not.toContain(t.operator);
    // A request without traceparent gets a fresh trace id of RUNE's format.
    await t.request('/v1/runs');
    const listing = lines.find((entry) => entry.route === '/v1/runs' && entry.method === 'GET');
    expect(listing?.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(listing?.trace_id).not.toBe(trace);
  });
});
