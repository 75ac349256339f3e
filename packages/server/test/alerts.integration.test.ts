/**
 * The alert receivers against a real `rune serve` (in process, real HTTP on loopback, real SQLite
 * store, real audit log, real bash plugins on the local transport): Alertmanager with bearer and
 * basic auth, PagerDuty V3 signatures with rotation, the signed generic webhook with its replay
 * window, deduplication, throttling, the storm breaker and release, resolved alerts cancelling
 * queued and waiting work, notifiers posting to a real HTTP server, restart without re-firing,
 * and every bad input with its EPS code.
 */
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuneServer, createToken } from '../src/index.js';
import {
  createTestHome,
  startTestServer,
  type TestHome,
  type TestServer,
  waitForRun,
} from './harness.js';

type Json = Record<string, unknown>;
type AlertDoc = Json & {
  id: string;
  outcome: string;
  run_id: string | null;
  reason: string | null;
};

const AM_TOKEN = 'am-secret-token-1234567890';
const PD_OLD = 'pd-old-secret';
const PD_NEW = 'pd-new-secret';
const GEN_SECRET = 'generic-secret-abc';

interface Captured {
  path: string;
  body: Json;
}

/** A real HTTP server on 127.0.0.1 that records what notifiers post. */
async function startSink(): Promise<{ server: Server; url: string; posts: Captured[] }> {
  const posts: Captured[] = [];
  const server = createServer((request, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
    });
    request.on('end', () => {
      posts.push({ path: request.url ?? '', body: JSON.parse(text) as Json });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { server, url: `http://127.0.0.1:${port}`, posts };
}

function writeRules(home: TestHome, sinkUrl: string, stormMax: number, holdExpires = '1h'): string {
  const secret = (name: string, value: string): string => {
    const file = join(home.dir, name);
    writeFileSync(file, `${value}\n`, { mode: 0o600 });
    return `file:${file}`;
  };
  const rules = join(home.dir, 'alert-rules.yaml');
  writeFileSync(
    rules,
    `schema_version: rune-alert-rules/v1
public_url: http://rune.example
receivers:
  am: { kind: alertmanager, bearer_token: "${secret('am.token', AM_TOKEN)}" }
  am-basic:
    kind: alertmanager
    basic_auth: { username: prom, password: "${secret('am.pw', 'basic-pw')}" }
  pd: { kind: pagerduty, secrets: ["${secret('pd.old', PD_OLD)}", "${secret('pd.new', PD_NEW)}"] }
  gen: { kind: generic, secrets: ["${secret('gen.secret', GEN_SECRET)}"], replay_window: 5m }
storm: { max_runs: ${stormMax}, window: 1h, hold_expires: ${holdExpires} }
notifiers:
  - { name: hook, kind: webhook, url: "${sinkUrl}/hook", outcomes: [ran, refused, held] }
  - { name: chat, kind: slack, url: "${sinkUrl}/slack", outcomes: [ran] }
rules:
  - name: echo
    match: { labels: { alertname: Echo, severity: { regex: "page|critical" } } }
    action: noop
    params: { message: { from_annotation: summary } }
    throttle: { group_by: fingerprint }
  - name: typed
    match: { labels: { alertname: Typed } }
    action: noop
    params: { sleep_ms: { from_label: sleep } }
  - name: typed-strict
    match: { labels: { alertname: TypedStrict } }
    action: noop
    params: { sleep_ms: { from_label: sleep, as: integer } }
  - name: cooldown
    match: { labels: { alertname: Cooldown } }
    action: noop
    throttle: { once_within: 1h }
  - name: flapping
    match: { labels: { alertname: Flapping } }
    action: noop
    throttle: { accumulate_within: 1h, threshold: 2 }
  - name: later
    match: { labels: { alertname: Later } }
    action: noop
    throttle: { once_after: 1h }
  - name: soon
    match: { labels: { alertname: Soon } }
    action: noop
    throttle: { once_after: 1s }
  - name: busy
    match: { labels: { alertname: Busy } }
    action: hold
    params: { hold_ms: { from_label: hold, as: integer } }
    throttle: { group_by: fingerprint }
  - name: pager
    receivers: [pd]
    match: { labels: { alertname: pagerduty } }
    action: noop
    target: { from_label: title, pattern: "disk full on (\\\\S+)" }
  - name: generic
    receivers: [gen]
    match: { labels: { alertname: Generic } }
    action: noop
`,
  );
  return rules;
}

function withInventoryAndRules(home: TestHome, rules: string): void {
  const inventory = join(home.dir, 'inventory.yaml');
  writeFileSync(
    inventory,
    'nodes:\n  web1: { address: localhost }\n  web2: { address: 127.0.0.1 }\n  web3: { address: localhost }\n',
  );
  writeFileSync(
    home.configFile,
    readFileSync(home.configFile, 'utf8')
      .replace('[core]\n', `[core]\ninventory = ${JSON.stringify(inventory)}\n`)
      .replace('[server]\n', `[server]\nalert_rules = ${JSON.stringify(rules)}\n`),
  );
}

let sequence = 0;
/** An Alertmanager v4 payload. */
function amPayload(
  alerts: Array<{
    labels: Record<string, string>;
    annotations?: Record<string, string>;
    status?: string;
    fingerprint?: string;
    startsAt?: string;
  }>,
): Json {
  return {
    version: '4',
    groupKey: '{}:{alertname="x"}',
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'rune',
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager.example',
    alerts: alerts.map((alert) => ({
      status: alert.status ?? 'firing',
      labels: alert.labels,
      annotations: alert.annotations ?? {},
      startsAt: alert.startsAt ?? '2026-01-01T00:00:00Z',
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus.example/graph',
      fingerprint: alert.fingerprint ?? `fp${++sequence}`,
    })),
  };
}

async function postAm(t: TestServer, body: unknown, receiver = 'am', auth = `Bearer ${AM_TOKEN}`) {
  return fetch(`${t.url}/v1/hooks/alertmanager/${receiver}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: auth },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Waits until the alert is decided (polls the API: the decision is asynchronous). */
async function decided(t: TestServer, id: string): Promise<AlertDoc> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const document = (await (await t.request(`/v1/alerts/${id}`)).json()) as AlertDoc;
    if (document.outcome !== 'received') return document;
    if (Date.now() > deadline) throw new Error(`alert ${id} was never decided`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function accept(response: Response): Promise<string[]> {
  expect(response.status).toBe(202);
  return ((await response.json()) as { alert_ids: string[] }).alert_ids;
}

async function errorOf(
  response: Response,
): Promise<{ status: number; code: string; message: string }> {
  const body = (await response.json()) as { error: { code: string; message: string } };
  return { status: response.status, code: body.error.code, message: body.error.message };
}

describe('alert receivers', () => {
  let home: TestHome;
  let t: TestServer;
  let sink: Awaited<ReturnType<typeof startSink>>;
  beforeAll(async () => {
    sink = await startSink();
    home = createTestHome();
    withInventoryAndRules(home, writeRules(home, sink.url, 1000));
    t = await startTestServer(home);
  });
  afterAll(async () => {
    await t?.close();
    await new Promise((resolve) => sink?.server.close(resolve));
    home?.remove();
  });

  it('Alertmanager -> rule -> run on the node named by labels.instance; a retry is the same run', async () => {
    const payload = amPayload([
      {
        labels: { alertname: 'Echo', severity: 'page', instance: 'web1:9100' },
        annotations: { summary: 'disk nearly full' },
        fingerprint: 'echo-1',
      },
    ]);
    const [id] = await accept(await postAm(t, payload));
    const alert = await decided(t, id as string);
    expect(alert).toMatchObject({ outcome: 'ran', rule: 'echo', action: 'noop', node: 'web1' });
    const run = await waitForRun(t, alert.run_id as string);
    expect(run).toMatchObject({ status: 'succeeded', source: 'alert', principal: 'alert:am' });
    const nodes = run.nodes as Array<{
      node: string;
      response: { payload: { output_data: Json } };
    }>;
    expect(nodes[0]?.node).toBe('web1');
    expect(nodes[0]?.response.payload.output_data.message).toBe('disk nearly full');

    const [again] = await accept(await postAm(t, payload));
    const retry = await decided(t, again as string);
    expect(retry).toMatchObject({ outcome: 'deduplicated', run_id: alert.run_id });
    const runs = (await (await t.request('/v1/runs?source=alert&node=web1')).json()) as {
      runs: Json[];
    };
    expect(runs.runs.filter((r) => r.id === alert.run_id)).toHaveLength(1);
  });

  it('basic auth as Alertmanager http_config sends it', async () => {
    const auth = `Basic ${Buffer.from('prom:basic-pw').toString('base64')}`;
    const payload = amPayload([{ labels: { alertname: 'Nothing', instance: 'web1' } }]);
    const [id] = await accept(await postAm(t, payload, 'am-basic', auth));
    expect((await decided(t, id as string)).outcome).toBe('no_rule');
    const wrong = `Basic ${Buffer.from('prom:nope').toString('base64')}`;
    expect(await errorOf(await postAm(t, payload, 'am-basic', wrong))).toMatchObject({
      status: 401,
      code: 'WEBHOOK_AUTH_FAILED',
    });
  });

  it('refuses missing and wrong credentials, unknown receivers, API tokens in their place', async () => {
    const payload = amPayload([
      { labels: { alertname: 'Echo', severity: 'page', instance: 'web1' } },
    ]);
    for (const auth of [
      '',
      'Bearer wrong',
      `Bearer ${t.operator}`,
      `Basic ${Buffer.from(`x:${AM_TOKEN}`).toString('base64')}`,
    ]) {
      expect(await errorOf(await postAm(t, payload, 'am', auth))).toMatchObject({
        status: 401,
        code: 'WEBHOOK_AUTH_FAILED',
      });
    }
    expect(await errorOf(await postAm(t, payload, 'nobody'))).toMatchObject({
      status: 404,
      code: 'ALERT_RECEIVER_UNKNOWN',
    });
    // A receiver of another kind under this path is unknown too.
    expect(await errorOf(await postAm(t, payload, 'pd'))).toMatchObject({
      code: 'ALERT_RECEIVER_UNKNOWN',
    });
  });

  it('refuses malformed, oversized and mistyped payloads with their EPS codes', async () => {
    expect(await errorOf(await postAm(t, '{"version":"4",'))).toMatchObject({
      status: 400,
      code: 'MALFORMED_JSON',
    });
    expect(await errorOf(await postAm(t, { version: '4' }))).toMatchObject({
      status: 400,
      code: 'INVALID_ARGUMENT',
    });
    expect(await errorOf(await postAm(t, { ...amPayload([]), version: '3' }))).toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    const badLabels = amPayload([{ labels: { alertname: 'Echo' } }]);
    ((badLabels.alerts as Json[])[0] as Json).labels = { alertname: 42 };
    expect(await errorOf(await postAm(t, badLabels))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const huge = JSON.stringify(amPayload([{ labels: { alertname: 'x'.repeat(2_000_000) } }]));
    expect(await errorOf(await postAm(t, huge))).toMatchObject({
      status: 413,
      code: 'REQUEST_TOO_LARGE',
    });
    const text = await fetch(`${t.url}/v1/hooks/alertmanager/am`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', authorization: `Bearer ${AM_TOKEN}` },
      body: 'hello',
    });
    expect(await errorOf(text)).toMatchObject({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
  });

  it('label values are data: shell metacharacters are executed nowhere, unknown nodes are refused', async () => {
    const marker = join(home.dir, 'pwned');
    const evil = [
      `$(touch ${marker})`,
      `; touch ${marker}`,
      `\`touch ${marker}\``,
      `' && touch ${marker} #`,
    ].join(' | ');
    const [ranId, badNode, star, group, far] = await accept(
      await postAm(
        t,
        amPayload([
          {
            labels: { alertname: 'Echo', severity: 'critical', instance: 'web2:9100' },
            annotations: { summary: evil },
          },
          {
            labels: { alertname: 'Echo', severity: 'page', instance: `web1;touch ${marker}` },
            annotations: { summary: 'x' },
          },
          {
            labels: { alertname: 'Echo', severity: 'page', instance: '*' },
            annotations: { summary: 'x' },
          },
          {
            labels: { alertname: 'Echo', severity: 'page', instance: '@all' },
            annotations: { summary: 'x' },
          },
          {
            labels: { alertname: 'Echo', severity: 'page', instance: 'db9.example:9100' },
            annotations: { summary: 'x' },
          },
        ]),
      ),
    );
    const ran = await decided(t, ranId as string);
    expect(ran.outcome).toBe('ran');
    const run = await waitForRun(t, ran.run_id as string);
    const nodes = run.nodes as Array<{ response: { payload: { output_data: Json } } }>;
    expect(nodes[0]?.response.payload.output_data.message).toBe(evil);
    for (const id of [badNode, star, group, far]) {
      const alert = await decided(t, id as string);
      expect(alert.outcome).toBe('refused');
      expect((alert.error as Json).code).toBe('UNKNOWN_NODE');
      expect(alert.run_id).toBeNull();
    }
    expect(existsSync(marker)).toBe(false);
  });

  it('a parameter of the wrong type from a label is refused (manifest schema, and strict "as")', async () => {
    const [loose, strict] = await accept(
      await postAm(
        t,
        amPayload([
          { labels: { alertname: 'Typed', instance: 'web1', sleep: '10' } },
          { labels: { alertname: 'TypedStrict', instance: 'web1', sleep: '10; rm -rf /' } },
        ]),
      ),
    );
    const first = await decided(t, loose as string);
    expect(first.outcome).toBe('refused');
    expect((first.error as Json).code).toBe('INVALID_PARAMETERS');
    const second = await decided(t, strict as string);
    expect(second.outcome).toBe('refused');
    expect((second.error as Json).code).toBe('INVALID_PARAMETERS');
  });

  it('once_within throttles the group; accumulate_within waits for the threshold; once_after is pending', async () => {
    const [a, b] = await accept(
      await postAm(
        t,
        amPayload([
          { labels: { alertname: 'Cooldown', instance: 'web1', disk: 'a' } },
          { labels: { alertname: 'Cooldown', instance: 'web1', disk: 'b' } },
        ]),
      ),
    );
    expect((await decided(t, a as string)).outcome).toBe('ran');
    const throttled = await decided(t, b as string);
    expect(throttled.outcome).toBe('throttled');
    expect(throttled.reason).toMatch(/once_within 1h/);

    const [f1] = await accept(
      await postAm(t, amPayload([{ labels: { alertname: 'Flapping', instance: 'web2', n: '1' } }])),
    );
    expect((await decided(t, f1 as string)).reason).toMatch(/1 of 2/);
    const [f2] = await accept(
      await postAm(t, amPayload([{ labels: { alertname: 'Flapping', instance: 'web2', n: '2' } }])),
    );
    expect((await decided(t, f2 as string)).outcome).toBe('ran');

    const startsAt = new Date().toISOString();
    const [p] = await accept(
      await postAm(
        t,
        amPayload([
          { labels: { alertname: 'Later', instance: 'web3' }, fingerprint: 'later-1', startsAt },
        ]),
      ),
    );
    const pending = await decided(t, p as string);
    expect(pending.outcome).toBe('pending');
    expect(Date.parse(pending.due_at as string)).toBe(Date.parse(startsAt) + 3_600_000);
    // Resolved before it was due: cancelled, nothing ran.
    const [r] = await accept(
      await postAm(
        t,
        amPayload([
          {
            labels: { alertname: 'Later', instance: 'web3' },
            fingerprint: 'later-1',
            startsAt,
            status: 'resolved',
          },
        ]),
      ),
    );
    expect((await decided(t, r as string)).outcome).toBe('resolved');
    expect((await decided(t, p as string)).outcome).toBe('cancelled');
  });

  it('a resolved alert cancels its queued run (the node is busy with another run)', async () => {
    const [first, second] = await accept(
      await postAm(
        t,
        amPayload([
          { labels: { alertname: 'Busy', instance: 'web3', hold: '6000' }, fingerprint: 'busy-1' },
          { labels: { alertname: 'Busy', instance: 'web3', hold: '0' }, fingerprint: 'busy-2' },
        ]),
      ),
    );
    const running = await decided(t, first as string);
    const queued = await decided(t, second as string);
    expect(queued.outcome).toBe('ran');
    expect(((await (await t.request(`/v1/runs/${queued.run_id}`)).json()) as Json).status).toBe(
      'queued',
    );
    await accept(
      await postAm(
        t,
        amPayload([
          {
            labels: { alertname: 'Busy', instance: 'web3', hold: '0' },
            fingerprint: 'busy-2',
            status: 'resolved',
          },
        ]),
      ),
    );
    const cancelled = await waitForRun(t, queued.run_id as string);
    expect(cancelled.status).toBe('cancelled');
    expect((await waitForRun(t, running.run_id as string)).status).toBe('succeeded');
  });

  it('PagerDuty V3: any configured secret verifies (rotation); a bad or missing signature is refused', async () => {
    const body = JSON.stringify({
      event: {
        id: '01DEN3TW3Y1FTSGXJ2VBKNV71P',
        event_type: 'incident.triggered',
        resource_type: 'incident',
        occurred_at: '2026-01-01T00:00:00.000Z',
        data: {
          id: 'PINC123',
          type: 'incident',
          title: 'disk full on web2',
          urgency: 'high',
          service: { summary: 'web' },
        },
      },
    });
    const sign = (secret: string) =>
      `v1=${createHmac('sha256', secret).update(body).digest('hex')}`;
    const post = (signature?: string) =>
      fetch(`${t.url}/v1/hooks/pagerduty/pd`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(signature === undefined ? {} : { 'x-pagerduty-signature': signature }),
        },
        body,
      });
    const [id] = await accept(await post(`${sign('unrelated')},${sign(PD_NEW)}`));
    const alert = await decided(t, id as string);
    expect(alert).toMatchObject({ outcome: 'ran', node: 'web2', rule: 'pager' });
    const [retry] = await accept(await post(sign(PD_OLD)));
    expect((await decided(t, retry as string)).outcome).toBe('deduplicated');
    for (const signature of [undefined, sign('wrong'), 'v1=zz', `v0=${sign(PD_NEW).slice(3)}`]) {
      expect(await errorOf(await post(signature))).toMatchObject({
        status: 401,
        code: 'WEBHOOK_SIGNATURE_INVALID',
      });
    }
  });

  it('generic webhook: HMAC over timestamp and body; replays outside the window refused', async () => {
    const body = JSON.stringify({
      alerts: [{ status: 'firing', labels: { alertname: 'Generic', instance: 'web1' } }],
    });
    const post = (timestamp: number, secret = GEN_SECRET, signedBody = body) =>
      fetch(`${t.url}/v1/hooks/generic/gen`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-rune-timestamp': String(timestamp),
          'x-rune-signature': `sha256=${createHmac('sha256', secret).update(`${timestamp}.${signedBody}`).digest('hex')}`,
        },
        body,
      });
    const now = Math.floor(Date.now() / 1000);
    const [id] = await accept(await post(now));
    expect((await decided(t, id as string)).outcome).toBe('ran');
    expect(await errorOf(await post(now - 3600))).toMatchObject({
      status: 401,
      code: 'WEBHOOK_REPLAYED',
    });
    expect(await errorOf(await post(now + 3600))).toMatchObject({ code: 'WEBHOOK_REPLAYED' });
    expect(await errorOf(await post(now, 'wrong'))).toMatchObject({
      status: 401,
      code: 'WEBHOOK_SIGNATURE_INVALID',
    });
    expect(await errorOf(await post(now, GEN_SECRET, `${body} `))).toMatchObject({
      code: 'WEBHOOK_SIGNATURE_INVALID',
    });
    const unsigned = await fetch(`${t.url}/v1/hooks/generic/gen`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(await errorOf(unsigned)).toMatchObject({ code: 'WEBHOOK_SIGNATURE_INVALID' });
  });

  it('every alert is recorded: GET /v1/alerts filters, the audit trail, metrics, notifiers', async () => {
    const refused = (await (await t.request('/v1/alerts?outcome=refused&limit=2')).json()) as {
      alerts: AlertDoc[];
      next_cursor: string | null;
    };
    expect(refused.alerts).toHaveLength(2);
    expect(refused.alerts.every((alert) => alert.outcome === 'refused')).toBe(true);
    const next = (await (
      await t.request(`/v1/alerts?outcome=refused&limit=2&cursor=${refused.next_cursor}`)
    ).json()) as {
      alerts: AlertDoc[];
    };
    expect(next.alerts[0]?.id).not.toBe(refused.alerts[0]?.id);
    expect((await errorOf(await t.request('/v1/alerts?cursor=bogus'))).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect((await t.request('/v1/alerts', { token: t.viewer })).status).toBe(200);
    expect((await t.request('/v1/alerts', { token: null })).status).toBe(401);

    const audit = readFileSync(home.auditLog, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json);
    const alertRecords = audit.filter((record) => record.event === 'alert');
    expect(new Set(alertRecords.map((record) => record.status))).toEqual(
      new Set([
        'ran',
        'deduplicated',
        'no_rule',
        'refused',
        'throttled',
        'pending',
        'resolved',
        'cancelled',
      ]),
    );
    expect(alertRecords.every((record) => String(record.operator).startsWith('alert:'))).toBe(true);
    expect(((await (await t.request('/v1/audit/verify')).json()) as Json).ok).toBe(true);

    const metrics = await (await t.request('/metrics')).text();
    expect(metrics).toMatch(/rune_alerts_total\{receiver="am",outcome="ran"\} \d+/);

    const deadline = Date.now() + 10_000;
    while (!sink.posts.some((post) => post.path === '/slack') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const hook = sink.posts.find((post) => post.path === '/hook' && post.body.outcome === 'ran');
    expect(hook?.body).toMatchObject({
      schema_version: 'rune-alert-outcome/v1',
      receiver: expect.any(String),
    });
    expect(String(hook?.body.run_url)).toMatch(/^http:\/\/rune\.example\/v1\/runs\/[0-9a-f-]{36}$/);
    expect(
      sink.posts.some((post) => post.path === '/hook' && post.body.outcome === 'refused'),
    ).toBe(true);
    const slack = sink.posts.find((post) => post.path === '/slack');
    expect(String(slack?.body.text)).toMatch(/-> \*ran\*.*<http:\/\/rune\.example\/v1\/runs\//);
  });

  it('a restart never re-fires: the same alert after a restart is deduplicated', async () => {
    const payload = amPayload([
      {
        labels: { alertname: 'Echo', severity: 'page', instance: 'web3' },
        annotations: { summary: 'x' },
        fingerprint: 'restart-1',
      },
    ]);
    const [id] = await accept(await postAm(t, payload));
    const first = await decided(t, id as string);
    expect(first.outcome).toBe('ran');
    await waitForRun(t, first.run_id as string);
    await t.close();
    const server = await createRuneServer({ configFile: home.configFile, env: home.env, port: 0 });
    const url = await server.listen();
    const token = (
      await createToken(server.store, { name: 'after', role: 'viewer', expires: '1d' })
    ).token;
    t = {
      ...t,
      server,
      url,
      close: () => server.close(),
      request: (path, init = {}) =>
        fetch(`${url}${path}`, { ...init, headers: { authorization: `Bearer ${token}` } }),
    };
    const [again] = await accept(await postAm(t, payload));
    expect(await decided(t, again as string)).toMatchObject({
      outcome: 'deduplicated',
      run_id: first.run_id,
    });
    const runs = (await (await t.request('/v1/runs?source=alert&node=web3')).json()) as {
      runs: Json[];
    };
    expect(runs.runs.filter((run) => run.id === first.run_id)).toHaveLength(1);
  });
});

describe('alert runs under an RBAC policy', () => {
  let home: TestHome;
  let t: TestServer;
  let sink: Awaited<ReturnType<typeof startSink>>;
  beforeAll(async () => {
    sink = await startSink();
    home = createTestHome();
    withInventoryAndRules(home, writeRules(home, sink.url, 1000));
    // The alert rules' principal gets noop on web1 only; the test's tokens keep their roles.
    const policy = join(home.dir, 'policy.yaml');
    writeFileSync(
      policy,
      `version: rune-policy/v1
roles:
  operator:
    rules:
      - { id: ops-all, verbs: [view, dry-run, run, cancel], actions: ["*"], nodes: ["@all"] }
  viewer:
    rules:
      - { id: view-all, verbs: [view], actions: ["*"], nodes: ["@all"] }
  alert-responder:
    rules:
      - { id: alerts-noop-web1, verbs: [run], actions: [noop], nodes: [web1] }
bindings:
  - subjects: [service:alerts]
    roles: [alert-responder]
`,
    );
    writeFileSync(
      home.configFile,
      readFileSync(home.configFile, 'utf8').replace(
        '[server]\n',
        `[server]\npolicy = ${JSON.stringify(policy)}\n`,
      ),
    );
    t = await startTestServer(home);
  });
  afterAll(async () => {
    await t?.close();
    await new Promise((resolve) => sink?.server.close(resolve));
    home?.remove();
  });

  it('runs what service:alerts is granted and refuses the rest with POLICY_DENIED', async () => {
    const [allowed, denied] = await accept(
      await postAm(
        t,
        amPayload([
          {
            labels: { alertname: 'Echo', severity: 'page', instance: 'web1:9100' },
            annotations: { summary: 'granted' },
          },
          {
            labels: { alertname: 'Echo', severity: 'page', instance: 'web2:9100' },
            annotations: { summary: 'not granted' },
          },
        ]),
      ),
    );
    const ran = await decided(t, allowed as string);
    expect(ran.outcome).toBe('ran');
    expect(await waitForRun(t, ran.run_id as string)).toMatchObject({
      status: 'succeeded',
      principal: 'alert:am',
    });
    const refused = await decided(t, denied as string);
    expect(refused.outcome).toBe('refused');
    expect((refused.error as Json).code).toBe('POLICY_DENIED');
    expect(refused.run_id).toBeNull();
  });
});

describe('storm breaker', () => {
  let home: TestHome;
  let t: TestServer;
  let sink: Awaited<ReturnType<typeof startSink>>;
  beforeAll(async () => {
    sink = await startSink();
    home = createTestHome();
    withInventoryAndRules(home, writeRules(home, sink.url, 2));
    t = await startTestServer(home);
  });
  afterAll(async () => {
    await t?.close();
    await new Promise((resolve) => sink?.server.close(resolve));
    home?.remove();
  });

  it('holds matches beyond max_runs in the window until a person releases them', async () => {
    const ids = await accept(
      await postAm(
        t,
        amPayload(
          ['web1', 'web2', 'web3', 'web1'].map((node, index) => ({
            labels: { alertname: 'Echo', severity: 'page', instance: node, n: String(index) },
            annotations: { summary: `storm ${index}` },
          })),
        ),
      ),
    );
    const outcomes = await Promise.all(ids.map((id) => decided(t, id)));
    expect(outcomes.map((alert) => alert.outcome)).toEqual(['ran', 'ran', 'held', 'held']);
    const held = outcomes[2] as AlertDoc;
    expect(held.reason).toMatch(/storm breaker/);
    expect(held.run_id).toBeNull();

    const byViewer = await t.request(`/v1/alerts/${held.id}/release`, {
      method: 'POST',
      token: t.viewer,
    });
    expect((await errorOf(byViewer)).code).toBe('ROLE_FORBIDDEN');
    const released = (await (
      await t.request(`/v1/alerts/${held.id}/release`, { method: 'POST' })
    ).json()) as AlertDoc;
    expect(released).toMatchObject({ outcome: 'released', released_by: 'token:ops' });
    const run = await waitForRun(t, released.run_id as string);
    expect(run).toMatchObject({ status: 'succeeded', source: 'alert', principal: 'alert:am' });
    const twice = await t.request(`/v1/alerts/${held.id}/release`, { method: 'POST' });
    expect(await errorOf(twice)).toMatchObject({ status: 409, code: 'ALERT_NOT_HELD' });
    expect(
      (await errorOf(await t.request('/v1/alerts/nope/release', { method: 'POST' }))).code,
    ).toBe('NOT_FOUND');

    // The other held alert resolves: nothing runs for it.
    const last = outcomes[3] as AlertDoc;
    await accept(
      await postAm(
        t,
        amPayload([
          {
            labels: { alertname: 'Echo', severity: 'page', instance: 'web1', n: '3' },
            fingerprint: last.fingerprint as string,
            status: 'resolved',
          },
        ]),
      ),
    );
    const deadline = Date.now() + 10_000;
    let state = last;
    while (state.outcome === 'held' && Date.now() < deadline) {
      state = (await (await t.request(`/v1/alerts/${last.id}`)).json()) as AlertDoc;
    }
    expect(state.outcome).toBe('cancelled');
    expect(sink.posts.some((post) => post.body.outcome === 'held')).toBe(true);
  });
});

describe('due and expiring alerts (the sweeper)', () => {
  let home: TestHome;
  let t: TestServer;
  let sink: Awaited<ReturnType<typeof startSink>>;
  beforeAll(async () => {
    sink = await startSink();
    home = createTestHome();
    withInventoryAndRules(home, writeRules(home, sink.url, 1, '1s'));
    t = await startTestServer(home);
  });
  afterAll(async () => {
    await t?.close();
    await new Promise((resolve) => sink?.server.close(resolve));
    home?.remove();
  });

  /** Polls until the alert's outcome is no longer `from`. */
  async function changed(id: string, from: string): Promise<AlertDoc> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const document = (await (await t.request(`/v1/alerts/${id}`)).json()) as AlertDoc;
      if (document.outcome !== from && document.outcome !== 'received') return document;
      if (Date.now() > deadline) throw new Error(`alert ${id} stayed ${from}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it('a pending alert runs when once_after is over; a held alert expires', async () => {
    const [pending] = await accept(
      await postAm(
        t,
        amPayload([
          { labels: { alertname: 'Soon', instance: 'web1' }, startsAt: new Date().toISOString() },
        ]),
      ),
    );
    expect((await decided(t, pending as string)).outcome).toBe('pending');
    const due = await changed(pending as string, 'pending');
    expect(due.outcome).toBe('ran');
    expect((await waitForRun(t, due.run_id as string)).status).toBe('succeeded');
    // max_runs 1: that run filled the storm window; the next match is held, then expires (1s).
    const [held] = await accept(
      await postAm(
        t,
        amPayload([
          {
            labels: { alertname: 'Echo', severity: 'page', instance: 'web2' },
            annotations: { summary: 'x' },
          },
        ]),
      ),
    );
    expect((await decided(t, held as string)).outcome).toBe('held');
    const expired = await changed(held as string, 'held');
    expect(expired).toMatchObject({ outcome: 'expired', run_id: null });
    expect(
      (await errorOf(await t.request(`/v1/alerts/${held}/release`, { method: 'POST' }))).code,
    ).toBe('ALERT_NOT_HELD');
  });
});
