/**
 * The alert receivers against a real `rune serve` (in process, real HTTP on loopback, real SQLite
 * store, real audit log, real bash plugins on the local transport): Alertmanager with bearer and
 * basic auth, PagerDuty V3 signatures with rotation, the signed generic webhook with its replay
 * window, deduplication, throttling, the storm breaker and release, resolved alerts cancelling
 * queued and waiting work, notifiers posting to a real HTTP server, restart without re-firing,
 * and every bad input with its EPS code.
 */
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type SshdFleet, startSshdFleet } from '@rune/transport-ssh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AlertDoc,
  type AlertServer,
  AM_TOKEN,
  accept,
  alertLeaves,
  amPayload,
  decided,
  echoAlert,
  errorOf,
  GEN_SECRET,
  type Json,
  PD_NEW,
  PD_OLD,
  postAm,
  startAlertServer,
} from './alert-server.js';
import { waitForRun, waitForWorkflow } from './harness.js';

describe('alert receivers', () => {
  let t: AlertServer;
  beforeAll(async () => {
    t = await startAlertServer();
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('Alertmanager -> rule -> run on the node named by labels.instance; a retry is the same run', async () => {
    const payload = amPayload([
      echoAlert('web1:9100', 'disk nearly full', { fingerprint: 'echo-1' }),
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
    const marker = join(t.home.dir, 'pwned');
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
          echoAlert('*', 'x'),
          echoAlert('@all', 'x'),
          echoAlert('db9.example:9100', 'x'),
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

    const audit = readFileSync(t.home.auditLog, 'utf8')
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
    while (!t.sink.posts.some((post) => post.path === '/slack') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const hook = t.sink.posts.find((post) => post.path === '/hook' && post.body.outcome === 'ran');
    expect(hook?.body).toMatchObject({
      schema_version: 'rune-alert-outcome/v1',
      receiver: expect.any(String),
    });
    expect(String(hook?.body.run_url)).toMatch(/^http:\/\/rune\.example\/v1\/runs\/[0-9a-f-]{36}$/);
    expect(
      t.sink.posts.some((post) => post.path === '/hook' && post.body.outcome === 'refused'),
    ).toBe(true);
    const slack = t.sink.posts.find((post) => post.path === '/slack');
    expect(String(slack?.body.text)).toMatch(/-> \*ran\*.*<http:\/\/rune\.example\/v1\/runs\//);
  });

  it('a restart never re-fires: the same alert after a restart is deduplicated', async () => {
    const payload = amPayload([echoAlert('web3', 'x', { fingerprint: 'restart-1' })]);
    const [id] = await accept(await postAm(t, payload));
    const first = await decided(t, id as string);
    expect(first.outcome).toBe('ran');
    await waitForRun(t, first.run_id as string);
    await t.restart();
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
  let t: AlertServer;
  beforeAll(async () => {
    // The alert rules' principal gets noop on web1 only; the test's tokens keep their roles.
    t = await startAlertServer({
      policy: `version: rune-policy/v1
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
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('runs what service:alerts is granted and refuses the rest with POLICY_DENIED', async () => {
    const [allowed, denied] = await accept(
      await postAm(
        t,
        amPayload([echoAlert('web1:9100', 'granted'), echoAlert('web2:9100', 'not granted')]),
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

describe('storm breaker -> RBAC approvals (sshd fleet)', () => {
  let fleet: SshdFleet | undefined;
  let t: AlertServer;
  beforeAll(async () => {
    fleet = await startSshdFleet(2);
    t = await startAlertServer({ stormMax: 2, fleet });
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
    await fleet?.stop();
  });

  const run = async (id: string): Promise<Json & { status: string }> =>
    (await (await t.request(`/v1/runs/${id}`)).json()) as Json & { status: string };

  it('matches beyond max_runs wait for approval; approve runs them over SSH; a restart keeps them waiting; resolved cancels', async () => {
    const ids = await accept(
      await postAm(
        t,
        amPayload(
          ['node1', 'node2', 'node1', 'node2', 'node1'].map((node, index) => ({
            labels: {
              alertname: 'Echo',
              severity: 'page',
              instance: `${node}:9100`,
              n: String(index),
            },
            annotations: { summary: `storm ${index}` },
            fingerprint: `storm-${index}`,
          })),
        ),
      ),
    );
    const outcomes = await Promise.all(ids.map((id) => decided(t, id)));
    expect(outcomes.map((alert) => alert.outcome)).toEqual(['ran', 'ran', 'held', 'held', 'held']);
    const [, , first, second, third] = outcomes as AlertDoc[];
    expect(first?.reason).toMatch(/storm breaker/);
    // A held match is a normal run in awaiting_approval, in the approvals inbox.
    expect(first?.run_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await run(first?.run_id as string)).toMatchObject({
      status: 'awaiting_approval',
      source: 'alert',
      principal: 'alert:am',
    });
    const approval = (await (await t.request(`/v1/runs/${first?.run_id}/approval`)).json()) as Json;
    expect(approval).toMatchObject({ state: 'pending', requester: 'alert:am', quorum: 1 });
    expect(String(approval.reason)).toMatch(/alert storm breaker/);
    const inbox = (await (await t.request('/v1/runs?status=awaiting_approval')).json()) as {
      runs: Json[];
    };
    expect(inbox.runs.map((entry) => entry.id).sort()).toEqual(
      [first?.run_id, second?.run_id, third?.run_id].sort(),
    );
    expect(t.sink.posts.some((post) => post.body.outcome === 'held')).toBe(true);

    // A restart keeps it waiting: nothing re-fires, the same alert again is the same run.
    await t.restart();
    expect((await run(first?.run_id as string)).status).toBe('awaiting_approval');
    const [again] = await accept(
      await postAm(
        t,
        amPayload([
          {
            labels: { alertname: 'Echo', severity: 'page', instance: 'node1:9100', n: '2' },
            annotations: { summary: 'storm 2' },
            fingerprint: 'storm-2',
          },
        ]),
      ),
    );
    expect(await decided(t, again as string)).toMatchObject({
      outcome: 'deduplicated',
      run_id: first?.run_id,
    });

    // The approval rules apply: a viewer may not vote, an operator holds no `approve` right in
    // the built-in roles (through the deprecated /release alias too).
    const byViewer = await t.request(`/v1/runs/${first?.run_id}/approve`, {
      json: {},
      token: t.viewer,
    });
    expect((await errorOf(byViewer)).code).toBe('POLICY_DENIED');
    const byOperator = await t.request(`/v1/alerts/${first?.id}/release`, { method: 'POST' });
    expect((await errorOf(byOperator)).code).toBe('POLICY_DENIED');
    expect((await run(first?.run_id as string)).status).toBe('awaiting_approval');

    // Approved: the run executes on the sshd fleet and the alert is released.
    const approved = (await (
      await t.request(`/v1/runs/${first?.run_id}/approve`, {
        json: { comment: 'storm looked at, go' },
        token: t.admin,
      })
    ).json()) as Json;
    expect(approved).toMatchObject({ state: 'approved', approvals: 1 });
    const done = await waitForRun(t, first?.run_id as string);
    expect(done.status).toBe('succeeded');
    expect((done.nodes as Json[])[0]).toMatchObject({
      node: 'node1',
      transport: 'ssh',
      status: 'success',
    });
    const released = await alertLeaves(t, first?.id as string, ['held']);
    expect(released.outcome).toBe('released');
    expect(String(released.released_by)).toMatch(/^token:approver-/);

    // The deprecated alias is one approval vote under the same rules.
    const alias = (await (
      await t.request(`/v1/alerts/${second?.id}/release`, { method: 'POST', token: t.admin })
    ).json()) as AlertDoc;
    expect(alias.outcome).toBe('released');
    expect((await waitForRun(t, second?.run_id as string)).status).toBe('succeeded');
    const twice = await t.request(`/v1/alerts/${second?.id}/release`, {
      method: 'POST',
      token: t.admin,
    });
    expect(await errorOf(twice)).toMatchObject({ status: 409, code: 'ALERT_NOT_HELD' });
    expect(
      (await errorOf(await t.request('/v1/alerts/nope/release', { method: 'POST' }))).code,
    ).toBe('NOT_FOUND');

    // The third resolves while its run awaits approval: the run is cancelled, never runs.
    await accept(
      await postAm(
        t,
        amPayload([
          {
            labels: { alertname: 'Echo', severity: 'page', instance: 'node1:9100', n: '4' },
            fingerprint: 'storm-4',
            status: 'resolved',
          },
        ]),
      ),
    );
    const cancelled = await alertLeaves(t, third?.id as string, ['held']);
    expect(cancelled.outcome).toBe('cancelled');
    const ended = await run(third?.run_id as string);
    expect(ended).toMatchObject({ status: 'cancelled' });
    expect((ended.error as Json).code).toBe('RUN_CANCELLED');
    expect(
      ((await (await t.request(`/v1/runs/${third?.run_id}/approval`)).json()) as Json).state,
    ).toBe('cancelled');
  }, 120_000);
});

describe('due and expiring alerts (the sweeper)', () => {
  let t: AlertServer;
  beforeAll(async () => {
    t = await startAlertServer({ stormMax: 1, holdExpires: '1s' });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('a pending alert runs when once_after is over; a held alert expires with its approval', async () => {
    const [pending] = await accept(
      await postAm(
        t,
        amPayload([
          { labels: { alertname: 'Soon', instance: 'web1' }, startsAt: new Date().toISOString() },
        ]),
      ),
    );
    expect((await decided(t, pending as string)).outcome).toBe('pending');
    const due = await alertLeaves(t, pending as string, ['pending']);
    expect(due.outcome).toBe('ran');
    expect((await waitForRun(t, due.run_id as string)).status).toBe('succeeded');
    // max_runs 1: that run filled the storm window; the next match is held, then expires (1s).
    const [held] = await accept(await postAm(t, amPayload([echoAlert('web2', 'x')])));
    const holding = await decided(t, held as string);
    expect(holding.outcome).toBe('held');
    const expired = await alertLeaves(t, held as string, ['held']);
    expect(expired).toMatchObject({ outcome: 'expired', run_id: holding.run_id });
    const run = (await (await t.request(`/v1/runs/${holding.run_id}`)).json()) as Json;
    expect(run.status).toBe('cancelled');
    expect((run.error as Json).code).toBe('APPROVAL_EXPIRED');
    expect(
      (
        await errorOf(
          await t.request(`/v1/alerts/${held}/release`, { method: 'POST', token: t.admin }),
        )
      ).code,
    ).toBe('ALERT_NOT_HELD');
  });
});

describe('alert rules that trigger a workflow (sshd fleet)', () => {
  let fleet: SshdFleet | undefined;
  let t: AlertServer;
  let workflowsDir: string;
  beforeAll(async () => {
    fleet = await startSshdFleet(2);
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    workflowsDir = mkdtempSync(join(tmpdir(), 'rune-alert-workflows-'));
    writeFileSync(
      join(workflowsDir, 'check-then-note.yaml'),
      [
        'schema_version: workflow_v1',
        'name: check-then-note',
        'inputs:',
        '  nodes: { type: array, required: true }',
        '  repeat: { type: integer, default: 1 }',
        '  note: { type: string, default: "-" }',
        'steps:',
        '  - id: check',
        '    action: noop',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a workflow expression, not JS
        '    nodes: ${{ inputs.nodes }}',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a workflow expression, not JS
        '    params: { message: "${{ \'checked \' + inputs.note }}" }',
        '  - id: note',
        '    action: noop',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a workflow expression, not JS
        '    nodes: ${{ inputs.nodes }}',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a workflow expression, not JS
        '    params: { message: "${{ \'repeat \' + string(inputs.repeat) }}" }',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(workflowsDir, 'fan-out.yaml'),
      [
        'schema_version: workflow_v1',
        'name: fan-out',
        'inputs:',
        '  nodes: { type: array, required: true }',
        'steps:',
        '  - id: both',
        '    parallel:',
        '      - id: left',
        '        action: noop',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a workflow expression, not JS
        '        nodes: ${{ inputs.nodes }}',
        '        params: { message: left }',
        '      - id: right',
        '        action: noop',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a workflow expression, not JS
        '        nodes: ${{ inputs.nodes }}',
        '        params: { message: right }',
        '',
      ].join('\n'),
    );
    t = await startAlertServer({
      fleet,
      workflowsDir,
      stormMax: 3,
      hookOutcomes: '[ran, refused, held, run_ended]',
      rules: `rules:
  - name: diagnose
    match: { labels: { alertname: NodeSick } }
    workflow: check-then-note
    inputs:
      repeat: { from_label: repeat, as: integer }
      note: { from_annotation: summary }
    throttle: { group_by: fingerprint }
  - name: fan-out
    match: { labels: { alertname: NodeFan } }
    workflow: fan-out
    throttle: { group_by: fingerprint }
  - name: loose
    match: { labels: { alertname: NodeLoose } }
    workflow: check-then-note
    inputs: { repeat: { from_label: repeat } }
`,
    });
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
    await fleet?.stop();
    if (workflowsDir !== undefined) rmSync(workflowsDir, { recursive: true, force: true });
  });

  const sick = (node: string, fingerprint: string, repeat = '2') => ({
    labels: { alertname: 'NodeSick', instance: `${node}:9100`, repeat },
    annotations: { summary: 'disk' },
    fingerprint,
  });

  async function workflowOf(alert: AlertDoc): Promise<Json & { status: string; steps: Json[] }> {
    const id = /workflow check-then-note run ([0-9a-f-]{36}) started/.exec(alert.reason ?? '')?.[1];
    expect(id).toBeDefined();
    const row = await t.server.store.db
      .selectFrom('alert_workflow_runs')
      .selectAll()
      .where('alert_id', '=', alert.id)
      .executeTakeFirst();
    expect(row).toMatchObject({ workflow: 'check-then-note', workflow_run_id: id });
    return waitForWorkflow<Json & { status: string; steps: Json[] }>(t.request, id as string);
  }

  it('runs the workflow with inputs from the alert on the node it names, over SSH; repeats are deduplicated', async () => {
    const [id] = await accept(await postAm(t, amPayload([sick('node1', 'wf-1')])));
    const alert = await decided(t, id as string);
    expect(alert).toMatchObject({
      outcome: 'ran',
      action: 'workflow:check-then-note',
      node: 'node1',
    });
    const record = await workflowOf(alert);
    expect(record.status).toBe('succeeded');
    expect(record.inputs).toEqual({ nodes: ['node1'], repeat: 2, note: 'disk' });
    for (const step of record.steps) {
      const runId = (step.attempts as Json[])[0]?.run_id as string;
      const run = await waitForRun(t, runId);
      expect(run).toMatchObject({ status: 'succeeded', source: 'workflow', principal: 'alert:am' });
      expect((run.nodes as Json[])[0]).toMatchObject({ node: 'node1', transport: 'ssh' });
    }
    // The workflow's own audit records carry the alert (the end record follows the stored end).
    const ownRecords = () =>
      readFileSync(t.home.auditLog, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Json)
        .filter((entry) => entry.event === 'workflow' && entry.run_id === record.workflow_run_id);
    const auditDeadline = Date.now() + 10_000;
    while (ownRecords().length < 2 && Date.now() < auditDeadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const own = ownRecords();
    expect(own.map((entry) => entry.status)).toEqual(['started', 'succeeded']);
    expect((own[0]?.metadata as Json | undefined)?.alert_id).toBe(id);

    // run_ended for a workflow: once, when the workflow run ended, with its status.
    const workflowEnded = () =>
      t.sink.posts.filter((post) => post.body.outcome === 'run_ended' && post.body.alert_id === id);
    const endDeadline = Date.now() + 15_000;
    while (workflowEnded().length === 0 && Date.now() < endDeadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(workflowEnded().map((post) => post.body.reason)).toEqual([
      `workflow run ${record.workflow_run_id} ended succeeded (exit code 0)`,
    ]);

    const [again] = await accept(await postAm(t, amPayload([sick('node1', 'wf-1')])));
    expect((await decided(t, again as string)).outcome).toBe('deduplicated');
  });

  it('strict conversion, the typed inputs and the inventory refuse before anything runs', async () => {
    const [badLabel, unknownNode, badType] = await accept(
      await postAm(
        t,
        amPayload([
          sick('node1', 'wf-2', '2x'),
          sick('db9', 'wf-3'),
          {
            labels: { alertname: 'NodeLoose', instance: 'node2', repeat: '3' },
            fingerprint: 'wf-4',
          },
        ]),
      ),
    );
    const first = await decided(t, badLabel as string);
    expect(first.outcome).toBe('refused');
    expect((first.error as Json).code).toBe('INVALID_PARAMETERS');
    const second = await decided(t, unknownNode as string);
    expect((second.error as Json).code).toBe('UNKNOWN_NODE');
    // "3" without `as: integer` is a string: the workflow's integer input refuses it.
    const third = await decided(t, badType as string);
    expect(third.outcome).toBe('refused');
    expect((third.error as Json).code).toBe('INVALID_ARGUMENT');
    expect(String(third.reason)).toMatch(/input repeat/);
    const refusals = readFileSync(t.home.auditLog, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json)
      .filter((entry) => entry.event === 'workflow' && entry.status === 'refused');
    expect(refusals.some((entry) => (entry.metadata as Json).alert_id === badType)).toBe(true);
  });

  /**
   * The runs of a workflow (every run stored with its workflow run id), oldest first. Not by
   * trace id: the workflows of one webhook's alerts share the webhook's trace.
   */
  const runsOfWorkflow = (workflowRunId: string) =>
    t.server.store.db
      .selectFrom('runs')
      .select(['id', 'status', 'action'])
      .where('workflow_run_id', '=', workflowRunId)
      .orderBy('position')
      .execute();
  const workflowRunOf = async (alertId: string): Promise<string> =>
    (
      await t.server.store.db
        .selectFrom('alert_workflow_runs')
        .select('workflow_run_id')
        .where('alert_id', '=', alertId)
        .executeTakeFirstOrThrow()
    ).workflow_run_id;
  const endedWorkflow = (id: string): Promise<Json & { status: string; steps: Json[] }> =>
    waitForWorkflow(t.request, id);

  it('the storm breaker holds a workflow match as one RBAC approval: approve (after a restart) runs it, reject and resolved cancel it', async () => {
    const ids = await accept(
      await postAm(
        t,
        amPayload([
          sick('node2', 'wf-5'),
          sick('node1', 'wf-6'),
          sick('node2', 'wf-7'),
          sick('node1', 'wf-8'),
          sick('node2', 'wf-9'),
        ]),
      ),
    );
    const outcomes = await Promise.all(ids.map((id) => decided(t, id)));
    // max_runs 3: wf-1 ran before; two more run, the rest are held.
    expect(outcomes.map((alert) => alert.outcome)).toEqual(['ran', 'ran', 'held', 'held', 'held']);
    const [, , approveMe, rejectMe, resolveMe] = outcomes as AlertDoc[];
    // A held workflow is a started workflow run whose first run awaits approval, in the inbox.
    const workflowRunId = await workflowRunOf(approveMe?.id as string);
    expect(approveMe?.reason).toMatch(/storm breaker/);
    expect(approveMe?.run_id).toMatch(/^[0-9a-f-]{36}$/);
    const approval = (await (
      await t.request(`/v1/runs/${approveMe?.run_id}/approval`)
    ).json()) as Json;
    expect(approval).toMatchObject({ state: 'pending', requester: 'alert:am' });
    expect(String(approval.reason)).toMatch(/alert storm breaker/);
    const inbox = (await (await t.request('/v1/runs?status=awaiting_approval')).json()) as {
      runs: Json[];
    };
    expect(inbox.runs.map((entry) => entry.id)).toEqual(
      expect.arrayContaining([approveMe?.run_id, rejectMe?.run_id, resolveMe?.run_id]),
    );
    // Nothing of the workflow ran: its one run is the held one.
    expect(await runsOfWorkflow(workflowRunId)).toEqual([
      { id: approveMe?.run_id, status: 'awaiting_approval', action: 'noop' },
    ]);
    const waiting = (await (
      await t.request(`/v1/workflows/runs/${workflowRunId}`)
    ).json()) as Json & { status: string; steps: Json[] };
    expect(waiting.status).toBe('running');
    // The one attempt is the held run's, not ended (a step's attempt is in the record from the
    // moment its run exists, status awaiting_approval while it waits for its approval, as the
    // step's).
    expect(waiting.steps.flatMap((step) => step.attempts as Json[])).toEqual([
      expect.objectContaining({ status: 'awaiting_approval', run_id: approveMe?.run_id }),
    ]);
    expect(waiting.steps[0]?.status).toBe('awaiting_approval');
    // The old hold (an alert waiting for /release, no run) is not used for workflows any more.
    const legacy = await t.server.store.db
      .selectFrom('alerts')
      .select('id')
      .where('outcome', '=', 'held')
      .where('run_id', 'is', null)
      .execute();
    expect(legacy).toEqual([]);

    // A restart keeps it: the workflow is not interrupted, its held run still waits.
    await t.restart();
    expect(((await (await t.request(`/v1/runs/${approveMe?.run_id}`)).json()) as Json).status).toBe(
      'awaiting_approval',
    );
    expect(
      ((await (await t.request(`/v1/workflows/runs/${workflowRunId}`)).json()) as Json).status,
    ).toBe('running');

    // The deprecated /release alias is one approval vote (admin: the operator holds no approve).
    expect(
      (await errorOf(await t.request(`/v1/alerts/${approveMe?.id}/release`, { method: 'POST' })))
        .code,
    ).toBe('POLICY_DENIED');
    const released = (await (
      await t.request(`/v1/alerts/${approveMe?.id}/release`, { method: 'POST', token: t.admin })
    ).json()) as AlertDoc;
    expect(released.outcome).toBe('released');
    const record = await endedWorkflow(workflowRunId);
    expect(record.status).toBe('succeeded');
    // The approved run is the first step's; the second step ran after it, not before.
    expect((record.steps[0]?.attempts as Json[] | undefined)?.[0]?.run_id).toBe(approveMe?.run_id);
    const runs = await runsOfWorkflow(workflowRunId);
    expect(runs.map((run) => run.status)).toEqual(['succeeded', 'succeeded']);
    expect(runs[0]?.id).toBe(approveMe?.run_id);

    // Rejected: the alert is cancelled, the workflow fails with the refusal, nothing ran.
    const rejected = await t.request(`/v1/runs/${rejectMe?.run_id}/reject`, {
      json: { comment: 'not now' },
      token: t.admin,
    });
    expect(rejected.status).toBe(200);
    expect((await alertLeaves(t, rejectMe?.id as string, ['held'])).outcome).toBe('cancelled');
    const rejectedWorkflow = await endedWorkflow(await workflowRunOf(rejectMe?.id as string));
    expect(rejectedWorkflow.status).toBe('failed');
    expect((rejectedWorkflow.error as Json).code).toBe('APPROVAL_REJECTED');
    expect(
      (await runsOfWorkflow(rejectedWorkflow.workflow_run_id as string)).map((r) => r.id),
    ).toEqual([rejectMe?.run_id]);

    // Resolved while held: the held run is cancelled, the workflow fails, nothing ran.
    await accept(await postAm(t, amPayload([{ ...sick('node2', 'wf-9'), status: 'resolved' }])));
    expect((await alertLeaves(t, resolveMe?.id as string, ['held'])).outcome).toBe('cancelled');
    const resolvedWorkflow = await endedWorkflow(await workflowRunOf(resolveMe?.id as string));
    expect(resolvedWorkflow.status).toBe('failed');
    expect((resolvedWorkflow.error as Json).code).toBe('RUN_CANCELLED');
    expect(
      (await runsOfWorkflow(resolvedWorkflow.workflow_run_id as string)).map((r) => r.status),
    ).toEqual(['cancelled']);
  }, 180_000);

  it('a held workflow whose first step is a parallel group: the other branch waits for the one approval', async () => {
    const [id] = await accept(
      await postAm(
        t,
        amPayload([
          { labels: { alertname: 'NodeFan', instance: 'node1:9100' }, fingerprint: 'wf-fan' },
        ]),
      ),
    );
    // The storm window is full (the tests before): held.
    const held = await decided(t, id as string);
    expect(held.outcome).toBe('held');
    const workflowRunId = await workflowRunOf(id as string);
    // Give the other branch every chance to start: it must not, while the approval is pending.
    await t.server.manager.waitForChange(held.run_id as string, 1_000);
    expect((await runsOfWorkflow(workflowRunId)).map((run) => run.status)).toEqual([
      'awaiting_approval',
    ]);
    const approved = await t.request(`/v1/runs/${held.run_id}/approve`, {
      json: {},
      token: t.admin,
    });
    expect(approved.status).toBe(200);
    expect((await endedWorkflow(workflowRunId)).status).toBe('succeeded');
    const runs = await runsOfWorkflow(workflowRunId);
    expect(runs.map((run) => run.status)).toEqual(['succeeded', 'succeeded']);
    expect(runs[0]?.id).toBe(held.run_id);
  }, 60_000);

  it('a workflow held the old way (an alert with no run) becomes an approval at start-up', async () => {
    const db = t.server.store.db;
    const model = await db
      .selectFrom('alerts')
      .selectAll()
      .where('rule', '=', 'diagnose')
      .where('outcome', '=', 'ran')
      .limit(1)
      .executeTakeFirstOrThrow();
    const id = '00000000-0000-4000-8000-00000000beef';
    // What a RUNE before 0012 left: held, no run, waiting for POST /v1/alerts/{id}/release.
    await db
      .insertInto('alerts')
      .values({
        ...model,
        id,
        fingerprint: 'wf-legacy',
        outcome: 'held',
        run_id: null,
        held_until: new Date(Date.now() + 3_600_000).toISOString(),
        reason: 'storm: 3 automatic runs within 1h; release it to start workflow check-then-note',
      })
      .execute();
    await t.restart();
    // The conversion is decided after start-up like any queued decision.
    let converted = (await (await t.request(`/v1/alerts/${id}`)).json()) as AlertDoc;
    const deadline = Date.now() + 30_000;
    while (converted.run_id === null && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      converted = (await (await t.request(`/v1/alerts/${id}`)).json()) as AlertDoc;
    }
    expect(converted).toMatchObject({ outcome: 'held' });
    expect(converted.run_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(((await (await t.request(`/v1/runs/${converted.run_id}`)).json()) as Json).status).toBe(
      'awaiting_approval',
    );
    const released = (await (
      await t.request(`/v1/alerts/${id}/release`, { method: 'POST', token: t.admin })
    ).json()) as AlertDoc;
    expect(released.outcome).toBe('released');
    expect((await endedWorkflow(await workflowRunOf(id))).status).toBe('succeeded');
  }, 60_000);

  it('one alert episode is one workflow run, by a database constraint: a decision made again after a crash finds the claim', async () => {
    const [id] = await accept(await postAm(t, amPayload([sick('node1', 'wf-claim')])));
    // The storm window is full by now: the match is held, which claims the episode too.
    const first = await decided(t, id as string);
    expect(['ran', 'held']).toContain(first.outcome);
    const claimed = await workflowRunOf(id as string);
    // As if the process died after starting the workflow, before recording the decision: the
    // alert is undecided again, and a restart decides it once more.
    await t.server.store.db
      .updateTable('alerts')
      .set({ outcome: 'received', run_id: null, reason: null, decided_at: null })
      .where('id', '=', id as string)
      .execute();
    await t.restart();
    const again = await alertLeaves(t, id as string, ['received']);
    expect(again.outcome).toBe('deduplicated');
    expect(again.reason).toContain(claimed);
    const rows = await t.server.store.db
      .selectFrom('alert_workflow_runs')
      .selectAll()
      .where('alert_id', '=', id as string)
      .execute();
    expect(rows).toHaveLength(1);
    const started = await t.server.store.db
      .selectFrom('workflow_runs')
      .select('id')
      .where(
        'id',
        'not in',
        (
          await t.server.store.db
            .selectFrom('alert_workflow_runs')
            .select('workflow_run_id')
            .execute()
        ).map((row) => row.workflow_run_id),
      )
      .execute();
    // Every workflow run of this server was claimed by an alert (no unclaimed second run).
    expect(started).toEqual([]);
  }, 60_000);
});

describe('notifiers at run end', () => {
  let t: AlertServer;
  beforeAll(async () => {
    t = await startAlertServer({ hookOutcomes: '[ran, run_ended]' });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('a notifier listing run_ended posts again when the run ended, with its status', async () => {
    const [id] = await accept(await postAm(t, amPayload([echoAlert('web1', 'run end')])));
    const alert = await decided(t, id as string);
    expect(alert.outcome).toBe('ran');
    const deadline = Date.now() + 30_000;
    const ended = () =>
      t.sink.posts.find((post) => post.path === '/hook' && post.body.outcome === 'run_ended');
    while (ended() === undefined && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(ended()?.body).toMatchObject({ alert_id: id, run_id: alert.run_id });
    expect(String(ended()?.body.reason)).toMatch(/ended succeeded \(exit code 0\)/);
    // The decision was posted first, at decision time.
    const posts = t.sink.posts
      .filter((post) => post.body.alert_id === id)
      .map((p) => p.body.outcome);
    expect(posts).toEqual(['ran', 'run_ended']);
  });
});
