/**
 * Tracing end to end: a real `rune serve` (in process) with the OpenTelemetry SDK turned on by
 * the standard variables, a fan-out over SSH to a real sshd fleet, and an in-process OTLP/HTTP
 * receiver that decodes what the real exporter sent on the wire. Asserts the trace id is RUNE's,
 * a `traceparent` is continued, and every span's parent link: request -> plan, run -> node ->
 * connect / upload / exec.
 *
 * The SDK reads `process.env`, so this file sets the variables before the server starts (vitest
 * runs each test file in its own process).
 */

import { readFileSync } from 'node:fs';
import { type SshdFleet, startSshdFleet } from '@rune/transport-ssh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type OtlpReceiver,
  spanReferenceProblems,
  startOtlpReceiver,
} from '../src/testing/index.js';
import {
  createTestHome,
  fleetInventory,
  sshProvider,
  startTestServer,
  type TestHome,
  type TestServer,
  waitForRun,
} from './harness.js';

let fleet: SshdFleet;
let receiver: OtlpReceiver;
let home: TestHome;
let t: TestServer | undefined;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = `${receiver.url}/v1/traces`;
  process.env.OTEL_SERVICE_NAME = 'rune-test';
  fleet = await startSshdFleet(3);
  home = createTestHome('', { inventory: '' });
  const inventory = fleetInventory(home, fleet);
  const { mkdirSync, readFileSync, writeFileSync } = await import('node:fs');
  const workflows = `${home.dir}/workflows`;
  mkdirSync(workflows);
  writeFileSync(
    `${workflows}/two-steps.yaml`,
    'schema_version: workflow_v1\nname: two-steps\nsteps:\n  - { id: first, action: noop, nodes: node1 }\n  - { id: second, action: noop, nodes: [node2, node3] }\n',
  );
  writeFileSync(
    home.configFile,
    `${readFileSync(home.configFile, 'utf8').replace(
      'inventory = ""',
      `inventory = ${JSON.stringify(inventory)}`,
    )}workflows = ${JSON.stringify(workflows)}\n`,
  );
  t = await startTestServer(home, { ssh: sshProvider(fleet) });
});

afterAll(async () => {
  await t?.close();
  await fleet?.stop();
  await receiver?.close();
  home?.remove();
});

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const WORKFLOW_CALLER_TRACE = '0af7651916cd43dd8448eb211c80319c';

describe('OpenTelemetry traces over OTLP/HTTP', () => {
  const runs: { id: string; traceId: string }[] = [];
  let workflowTrace = '';

  it('runs a fan-out continuing the caller traceparent, one without, and a failing one', async () => {
    const server = t as TestServer;
    const continued = await server.request('/v1/runs', {
      json: { action: 'noop', targets: ['tag:test'], params: { message: 'traced' } },
      headers: { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` },
    });
    expect(continued.status).toBe(202);
    const first = (await continued.json()) as { id: string; trace_id: string };
    // The run's trace id IS the caller's: RUNE's records and the backend share one id.
    expect(first.trace_id).toBe(CALLER_TRACE);
    expect((await waitForRun(server, first.id)).status).toBe('succeeded');
    runs.push({ id: first.id, traceId: first.trace_id });

    const fresh = await server.request('/v1/runs', {
      json: { action: 'noop', targets: ['node1'] },
    });
    const second = (await fresh.json()) as { id: string; trace_id: string };
    expect(second.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(second.trace_id).not.toBe(CALLER_TRACE);
    expect((await waitForRun(server, second.id)).status).toBe('succeeded');
    runs.push({ id: second.id, traceId: second.trace_id });

    const failing = await server.request('/v1/runs', {
      json: {
        action: 'noop',
        targets: ['node2'],
        params: { sleep_ms: 5000 },
        options: { timeout: '1s' },
      },
    });
    const third = (await failing.json()) as { id: string; trace_id: string };
    expect((await waitForRun(server, third.id)).status).toBe('failed');
    runs.push({ id: third.id, traceId: third.trace_id });

    const workflow = await server.request('/v1/workflows/two-steps/runs', {
      json: {},
      headers: { traceparent: `00-${WORKFLOW_CALLER_TRACE}-${CALLER_SPAN}-01` },
    });
    expect(workflow.status).toBe(202);
    const started = (await workflow.json()) as { workflow_run_id: string; trace_id: string };
    // The workflow, like a run, continues the caller's trace.
    expect(started.trace_id).toBe(WORKFLOW_CALLER_TRACE);
    for (let attempt = 0; attempt < 600; attempt++) {
      const record = (await (
        await server.request(`/v1/workflows/runs/${started.workflow_run_id}`)
      ).json()) as { status: string };
      if (record.status !== 'running') {
        expect(record.status).toBe('succeeded');
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    workflowTrace = started.trace_id;

    // close() shuts the SDK down, which flushes every buffered span to the receiver.
    await server.close();
    t = undefined;
  });

  it('exports the fan-out with its parent links', () => {
    const first = runs[0];
    if (first === undefined) throw new Error('the first test did not run');
    const trace = receiver.spans.filter((span) => span.traceId === first.traceId);
    const byName = (name: string) => trace.filter((span) => span.name === name);
    const [request] = byName('POST /v1/runs');
    expect(request?.parentSpanId).toBe(CALLER_SPAN);
    expect(request?.kind).toBe(2); // SERVER
    const [plan] = byName('rune.plan');
    expect(plan?.parentSpanId).toBe(request?.spanId);
    expect(plan?.attributes['rune.action']).toBe('noop');
    expect(plan?.attributes['rune.nodes.count']).toBe(3);
    const [run] = byName('rune.run');
    expect(run?.parentSpanId).toBe(request?.spanId);
    expect(run?.attributes['rune.run.id']).toBe(first.id);
    expect(run?.attributes['rune.result']).toBe('succeeded');
    expect(run?.attributes['rune.plugin.sha256']).toMatch(/^[0-9a-f]{64}$/);

    const nodes = byName('rune.node');
    expect(nodes.map((span) => span.attributes['rune.node']).sort()).toEqual([
      'node1',
      'node2',
      'node3',
    ]);
    for (const node of nodes) {
      expect(node.parentSpanId).toBe(run?.spanId);
      expect(node.attributes).toMatchObject({
        'rune.action': 'noop',
        'rune.transport': 'ssh',
        'rune.result': 'success',
        'rune.plugin.version': '1.0.0',
        'rune.plugin.sha256': run?.attributes['rune.plugin.sha256'],
      });
      const children = trace.filter((span) => span.parentSpanId === node.spanId);
      const names = children.map((span) => span.name);
      expect(names).toContain('rune.connect');
      expect(names).toContain('rune.exec');
      const connect = children.find((span) => span.name === 'rune.connect');
      expect(connect?.attributes['rune.connection.reused']).toBe(false);
      // A new connection: its SSH handshake is a child of the connect phase.
      const handshakes = trace.filter((span) => span.parentSpanId === connect?.spanId);
      expect(handshakes.map((span) => span.name)).toEqual(['rune.handshake']);
    }
    // A fresh fleet (one cache directory shared by its loopback hosts): the first node to get
    // there uploaded the plugin, as a child of its node span.
    const uploads = byName('rune.upload');
    expect(uploads.length).toBeGreaterThanOrEqual(1);
    for (const upload of uploads) {
      expect(nodes.map((node) => node.spanId)).toContain(upload.parentSpanId);
    }
    // Nothing is exported outside RUNE's documented attributes and the HTTP ones.
    for (const span of trace) {
      for (const key of Object.keys(span.attributes)) {
        expect(key).toMatch(/^(rune\.|http\.)/);
      }
    }
  });

  it('a workflow is one span, each step a child span, each step run a child of its step', () => {
    const trace = receiver.spans.filter((span) => span.traceId === workflowTrace);
    const [workflow] = trace.filter((span) => span.name === 'rune.workflow');
    const request = trace.find((span) => span.name === 'POST /v1/workflows/:name/runs');
    expect(request?.parentSpanId).toBe(CALLER_SPAN);
    expect(workflow?.parentSpanId).toBe(request?.spanId);
    expect(workflow?.attributes).toMatchObject({
      'rune.workflow.name': 'two-steps',
      'rune.result': 'succeeded',
    });
    const steps = trace.filter((span) => span.name === 'rune.workflow.step');
    expect(steps.map((span) => span.attributes['rune.workflow.step']).sort()).toEqual([
      'first',
      'second',
    ]);
    const runSpans = trace.filter((span) => span.name === 'rune.run');
    expect(runSpans).toHaveLength(2);
    for (const step of steps) {
      expect(step.parentSpanId).toBe(workflow?.spanId);
      expect(step.attributes['rune.result']).toBe('succeeded');
      expect(runSpans.filter((run) => run.parentSpanId === step.spanId)).toHaveLength(1);
    }
    // The nodes of the second step's run are children of that run.
    const second = steps.find((span) => span.attributes['rune.workflow.step'] === 'second');
    const secondRun = runSpans.find((run) => run.parentSpanId === second?.spanId);
    expect(
      trace.filter((span) => span.name === 'rune.node' && span.parentSpanId === secondRun?.spanId),
    ).toHaveLength(2);
  });

  it('gives a run without traceparent a root span in its own trace id', () => {
    const second = runs[1];
    if (second === undefined) throw new Error('the first test did not run');
    const trace = receiver.spans.filter((span) => span.traceId === second.traceId);
    const request = trace.find((span) => span.name === 'POST /v1/runs');
    expect(request).toBeDefined();
    expect(request?.parentSpanId).toBeUndefined();
    const run = trace.find((span) => span.name === 'rune.run');
    expect(run?.parentSpanId).toBe(request?.spanId);
    const node = trace.find((span) => span.name === 'rune.node');
    const children = trace.filter((span) => span.parentSpanId === node?.spanId);
    // The plugin is cached on the node now: no upload.
    expect(children.map((span) => span.name)).not.toContain('rune.upload');
    // The server's pool kept node1's connection from the fan-out: reused, so no handshake.
    const connect = children.find((span) => span.name === 'rune.connect');
    expect(connect?.attributes['rune.connection.reused']).toBe(true);
    expect(trace.filter((span) => span.parentSpanId === connect?.spanId)).toEqual([]);
  });

  it('exports only the spans and attributes of the span reference in docs/observability.md', () => {
    const page = readFileSync(new URL('../../../docs/observability.md', import.meta.url), 'utf8');
    expect(receiver.spans.length).toBeGreaterThan(20);
    expect(spanReferenceProblems(page, receiver.spans)).toEqual([]);
  });

  it('records the EPS code of a failed node', () => {
    const third = runs[2];
    if (third === undefined) throw new Error('the first test did not run');
    const trace = receiver.spans.filter((span) => span.traceId === third.traceId);
    const node = trace.find((span) => span.name === 'rune.node');
    expect(node?.attributes['rune.result']).toBe('failure');
    expect(node?.attributes['rune.error.code']).toBe('PLUGIN_TIMEOUT');
    expect(node?.status?.code).toBe(2); // ERROR
    const run = trace.find((span) => span.name === 'rune.run');
    expect(run?.attributes['rune.result']).toBe('failed');
  });
});
