/**
 * Webhook spans end to end: a real `rune serve` (in process) with the OpenTelemetry SDK on, real
 * Alertmanager-format webhooks over HTTP, the runs they start on the local transport, and the
 * exporter's real OTLP/HTTP output decoded by the in-process receiver. One `rune.webhook` span per
 * webhook (a child of the request span, so of the sender's `traceparent`), one `rune.alert` per
 * alert decided (rule, outcome, run id), and the run as a child of its alert span in the same
 * trace; a refused webhook's span carries the EPS code.
 *
 * The SDK reads `process.env`, so the variables are set before the server starts (vitest runs
 * each test file in its own process).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuneServer } from '../src/index.js';
import {
  type OtlpReceiver,
  spanReferenceProblems,
  startOtlpReceiver,
  type WireSpan,
} from '../src/testing/index.js';
import { amPayload as amNotification } from './alert-server.js';
import {
  createTestHome,
  startTestServer,
  type TestHome,
  type TestServer,
  waitForRun,
} from './harness.js';

const AM_TOKEN = 'am-secret-token-0987654321';
const CALLER_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CALLER_SPAN = 'b7ad6b7169203331';
const FLOW_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

let receiver: OtlpReceiver;
let home: TestHome;
let t: TestServer | undefined;
let first: TestServer | undefined;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = `${receiver.url}/v1/traces`;
  home = createTestHome();
  const token = join(home.dir, 'am.token');
  writeFileSync(token, `${AM_TOKEN}\n`, { mode: 0o600 });
  const rules = join(home.dir, 'alert-rules.yaml');
  writeFileSync(
    rules,
    `schema_version: rune-alert-rules/v1
receivers:
  am: { kind: alertmanager, bearer_token: "file:${token}" }
rules:
  - name: echo
    match: { labels: { alertname: Echo } }
    action: noop
    params: { message: { from_annotation: summary } }
  - name: flow
    match: { labels: { alertname: Flow } }
    workflow: one-step
`,
  );
  const workflows = join(home.dir, 'workflows');
  mkdirSync(workflows);
  writeFileSync(
    join(workflows, 'one-step.yaml'),
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a workflow expression, not a template
    'schema_version: workflow_v1\nname: one-step\ninputs:\n  nodes: { type: array, required: true }\nsteps:\n  - { id: only, action: noop, nodes: "${{ inputs.nodes }}" }\n',
  );
  const inventory = join(home.dir, 'inventory.yaml');
  writeFileSync(inventory, 'nodes:\n  web1: { address: localhost }\n');
  writeFileSync(
    home.configFile,
    readFileSync(home.configFile, 'utf8')
      .replace('[core]\n', `[core]\ninventory = ${JSON.stringify(inventory)}\n`)
      .replace(
        '[server]\n',
        `[server]\nalert_rules = ${JSON.stringify(rules)}\nworkflows = ${JSON.stringify(workflows)}\n`,
      ),
  );
  t = await startTestServer(home);
  first = t;
});

afterAll(async () => {
  await t?.close();
  await receiver?.close();
  home?.remove();
});

/** An Alertmanager v4 notification of `alerts` on web1. */
const amPayload = (alerts: { alertname: string; summary?: string }[]): Record<string, unknown> =>
  amNotification(
    alerts.map((alert) => ({
      labels: { alertname: alert.alertname, instance: 'web1' },
      ...(alert.summary === undefined ? {} : { annotations: { summary: alert.summary } }),
    })),
  );

async function post(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${(t as TestServer).url}/v1/hooks/alertmanager/am`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${AM_TOKEN}`,
      ...headers,
    },
    body: JSON.stringify(body),
  });
}

async function decided(id: string): Promise<{ outcome: string; run_id: string | null }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const response = await (t as TestServer).request(`/v1/alerts/${id}`);
    const document = (await response.json()) as { outcome: string; run_id: string | null };
    if (document.outcome !== 'received') return document;
    if (Date.now() > deadline) throw new Error(`alert ${id} was never decided`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const facts: { continued?: { alert: string; run: string }; pair?: string[]; runs: string[] } = {
  runs: [],
};

describe('webhook spans', () => {
  it('receives webhooks with and without traceparent, and a refused one', async () => {
    const first = await post(amPayload([{ alertname: 'Echo', summary: 'traced' }]), {
      traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01`,
    });
    expect(first.status).toBe(202);
    const [alert] = ((await first.json()) as { alert_ids: string[] }).alert_ids;
    const outcome = await decided(alert as string);
    expect(outcome.outcome, JSON.stringify(outcome)).toBe('ran');
    const run = await waitForRun(t as TestServer, outcome.run_id as string);
    expect(run.status).toBe('succeeded');
    // The run continues the webhook's trace, with tracing on or off.
    expect(run.trace_id).toBe(CALLER_TRACE);
    facts.continued = { alert: alert as string, run: outcome.run_id as string };

    const second = await post(
      amPayload([{ alertname: 'Echo', summary: 'two' }, { alertname: 'Unmatched' }]),
    );
    const pair = ((await second.json()) as { alert_ids: string[] }).alert_ids;
    const outcomes = await Promise.all(pair.map((id) => decided(id)));
    expect(outcomes.map((entry) => entry.outcome)).toEqual(['ran', 'no_rule']);
    expect((await waitForRun(t as TestServer, outcomes[0]?.run_id as string)).status).toBe(
      'succeeded',
    );
    facts.pair = pair;
    facts.runs.push(outcomes[0]?.run_id as string);

    // An alert whose rule starts a workflow: the workflow continues the alert's trace.
    const flow = await post(amPayload([{ alertname: 'Flow' }]), {
      traceparent: `00-${FLOW_TRACE}-${CALLER_SPAN}-01`,
    });
    const [flowAlert] = ((await flow.json()) as { alert_ids: string[] }).alert_ids;
    const flowOutcome = (await decided(flowAlert as string)) as {
      outcome: string;
      reason?: string;
    };
    expect(flowOutcome.outcome).toBe('ran');
    const workflowRunId = /run ([0-9a-f-]{36}) started/.exec(flowOutcome.reason ?? '')?.[1];
    expect(workflowRunId, flowOutcome.reason).toBeDefined();
    for (let attempt = 0; ; attempt++) {
      const record = (await (
        await (t as TestServer).request(`/v1/workflows/runs/${workflowRunId}`)
      ).json()) as { status: string; trace_id: string };
      if (record.status !== 'running') {
        expect(record).toMatchObject({ status: 'succeeded', trace_id: FLOW_TRACE });
        break;
      }
      expect(attempt).toBeLessThan(300);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const refused = await post(amPayload([{ alertname: 'Echo' }]), {
      authorization: 'Bearer wrong',
    });
    expect(refused.status).toBe(401);

    // close() shuts the SDK down, which flushes every span to the receiver.
    await (t as TestServer).close();
    t = undefined;
  });

  it('one rune.webhook per webhook under the caller, rune.alert under it, the run under that', () => {
    const trace = receiver.spans.filter((span) => span.traceId === CALLER_TRACE);
    const named = (name: string): WireSpan[] => trace.filter((span) => span.name === name);
    const [request] = named('POST /v1/hooks/alertmanager/:receiver');
    expect(request?.parentSpanId).toBe(CALLER_SPAN);
    const webhooks = named('rune.webhook');
    expect(webhooks.length).toBe(1);
    const webhook = webhooks[0];
    expect(webhook?.parentSpanId).toBe(request?.spanId);
    expect(webhook?.attributes).toEqual({
      'rune.webhook.kind': 'alertmanager',
      'rune.webhook.receiver': 'am',
      'rune.webhook.alerts': 1,
    });
    const [alert] = named('rune.alert');
    expect(alert?.parentSpanId).toBe(webhook?.spanId);
    expect(alert?.attributes).toEqual({
      'rune.alert.id': facts.continued?.alert,
      'rune.alert.rule': 'echo',
      'rune.alert.outcome': 'ran',
      'rune.action': 'noop',
      'rune.run.id': facts.continued?.run,
    });
    const [plan] = named('rune.plan');
    const [run] = named('rune.run');
    expect(plan?.parentSpanId).toBe(alert?.spanId);
    expect(run?.parentSpanId).toBe(alert?.spanId);
    expect(run?.attributes['rune.run.id']).toBe(facts.continued?.run);
    expect(named('rune.node')[0]?.parentSpanId).toBe(run?.spanId);
  });

  it('a workflow an alert starts is a child of its rune.alert span, in the webhook trace', () => {
    const trace = receiver.spans.filter((span) => span.traceId === FLOW_TRACE);
    const alert = trace.find((span) => span.name === 'rune.alert');
    expect(alert?.attributes['rune.alert.rule']).toBe('flow');
    const workflow = trace.find((span) => span.name === 'rune.workflow');
    expect(workflow?.parentSpanId).toBe(alert?.spanId);
    const step = trace.find((span) => span.name === 'rune.workflow.step');
    expect(step?.parentSpanId).toBe(workflow?.spanId);
    const run = trace.find((span) => span.name === 'rune.run');
    expect(run?.parentSpanId).toBe(step?.spanId);
  });

  it('a webhook of two alerts: one decision span each, in the webhook trace', () => {
    const webhook = receiver.spans.find(
      (span) =>
        span.name === 'rune.webhook' &&
        span.traceId !== CALLER_TRACE &&
        span.attributes['rune.webhook.alerts'] === 2,
    );
    expect(webhook).toBeDefined();
    const alerts = receiver.spans.filter(
      (span) => span.name === 'rune.alert' && span.parentSpanId === webhook?.spanId,
    );
    expect(alerts.map((span) => span.attributes['rune.alert.id']).sort()).toEqual(
      [...(facts.pair ?? [])].sort(),
    );
    const unmatched = alerts.find((span) => span.attributes['rune.alert.outcome'] === 'no_rule');
    expect(unmatched?.attributes['rune.alert.rule']).toBeUndefined();
    const ran = alerts.find((span) => span.attributes['rune.alert.outcome'] === 'ran');
    const run = receiver.spans.find(
      (span) => span.name === 'rune.run' && span.attributes['rune.run.id'] === facts.runs[0],
    );
    expect(run?.traceId).toBe(webhook?.traceId);
    expect(run?.parentSpanId).toBe(ran?.spanId);
  });

  it('a refused webhook has its span with the EPS code', () => {
    const refused = receiver.spans.filter(
      (span) => span.name === 'rune.webhook' && span.attributes['rune.error.code'] !== undefined,
    );
    expect(refused.length).toBe(1);
    expect(refused[0]?.attributes['rune.error.code']).toBe('WEBHOOK_AUTH_FAILED');
    expect(refused[0]?.status?.code).toBe(2);
  });

  it('exports only the spans and attributes of the span reference in docs/observability.md', () => {
    const page = readFileSync(new URL('../../../docs/observability.md', import.meta.url), 'utf8');
    expect(receiver.spans.some((span) => span.name === 'rune.alert')).toBe(true);
    expect(spanReferenceProblems(page, receiver.spans)).toEqual([]);
  });

  it('with tracing off, the run of a webhook with traceparent still takes the caller trace id', async () => {
    delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
    // The same home and store: the first server's token still works.
    const server = await createRuneServer({ configFile: home.configFile, env: home.env, port: 0 });
    const url = await server.listen();
    t = {
      ...(first as TestServer),
      server,
      url,
      close: () => server.close(),
      request: (path) =>
        fetch(`${url}${path}`, {
          headers: { authorization: `Bearer ${(first as TestServer).operator}` },
        }),
    };
    const before = receiver.requests();
    const other = '5b8aa5a2d2c872e8321cf37308d69df2';
    const response = await post(amPayload([{ alertname: 'Echo', summary: 'off' }]), {
      traceparent: `00-${other}-${CALLER_SPAN}-01`,
    });
    const [alert] = ((await response.json()) as { alert_ids: string[] }).alert_ids;
    const outcome = await decided(alert as string);
    expect(outcome.outcome).toBe('ran');
    const run = await waitForRun(t, outcome.run_id as string);
    expect(run.trace_id).toBe(other);
    await t.close();
    t = undefined;
    expect(receiver.requests()).toBe(before);
  });
});
