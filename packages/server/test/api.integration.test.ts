/**
 * The API over real HTTP on loopback against a real server (local transport, real bash plugins,
 * the real file audit log and SQLite store): every endpoint that needs no remote node, and the
 * bad-input list of issue 13, each with its EPS code and HTTP status.
 */
import { readFileSync } from 'node:fs';
import { type RunEvent, validateRunEventStream, validateRunResultDocument } from '@rune/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, revokeToken } from '../src/index.js';
import {
  createTestHome,
  startTestServer,
  type TestHome,
  type TestServer,
  waitForRun,
} from './harness.js';

let home: TestHome;
let t: TestServer;
beforeAll(async () => {
  home = createTestHome('rate_limit = 1000\nbody_limit_bytes = 4096\n');
  t = await startTestServer(home);
});
afterAll(async () => {
  await t?.close();
  home?.remove();
});

type Json = Record<string, unknown>;
const body = async (response: Response): Promise<Json> => (await response.json()) as Json;
const errorOf = async (response: Response): Promise<{ status: number; code: unknown }> => ({
  status: response.status,
  code: ((await body(response)).error as Json | undefined)?.code,
});

async function submit(json: unknown, headers: Record<string, string> = {}): Promise<Json> {
  const response = await t.request('/v1/runs', { json, headers });
  expect(response.status).toBe(202);
  return body(response);
}

/** Reads an SSE stream to its end (the server closes it after run-end). */
async function readEvents(
  id: string,
  headers: Record<string, string> = {},
): Promise<{ ids: number[]; events: RunEvent[] }> {
  const response = await t.request(`/v1/runs/${id}/events`, { headers });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const text = await response.text();
  const ids: number[] = [];
  const events: RunEvent[] = [];
  for (const block of text.split('\n\n')) {
    const idLine = /^id: (\d+)$/m.exec(block);
    const data = /^data: (.*)$/m.exec(block);
    if (idLine !== null && data !== null) {
      ids.push(Number(idLine[1]));
      events.push(JSON.parse(data[1] as string) as RunEvent);
    }
  }
  return { ids, events };
}

describe('runs', () => {
  it('POST /v1/runs: 202 with id, trace id and links, then a valid run document', async () => {
    const accepted = await submit({
      action: 'noop',
      targets: ['localhost'],
      params: { message: 'hi' },
    });
    expect(accepted).toMatchObject({
      status: 'queued',
      links: { self: `/v1/runs/${accepted.id}`, events: `/v1/runs/${accepted.id}/events` },
    });
    expect(accepted.trace_id).toMatch(/^[0-9a-f]{32}$/);
    const document = await waitForRun(t, accepted.id as string);
    const verdict = validateRunResultDocument(document);
    expect(verdict.ok ? 'ok' : verdict.error.toJSON()).toBe('ok');
    expect(document).toMatchObject({
      id: accepted.id,
      status: 'succeeded',
      principal: 'token:ops',
      source: 'api',
      exit_code: 0,
      trace_id: accepted.trace_id,
    });
    expect((document.nodes as Json[])[0]).toMatchObject({ node: 'localhost', status: 'success' });
    // The audit records carry the principal, not the OS user, and the run id.
    const records = readFileSync(home.auditLog, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json)
      .filter((record) => record.trace_id === accepted.trace_id);
    // The RBAC decision (built-in role operator) comes first, then the run's own records.
    expect(records.map((record) => record.event)).toEqual(['policy', 'intent', 'run']);
    expect(records.every((record) => record.operator === 'token:ops')).toBe(true);
    expect(records.every((record) => record.run_id === accepted.id)).toBe(true);
  });

  it('POST /run/{action}: the short form, same semantics', async () => {
    const response = await t.request('/run/noop', { json: { node: 'localhost', params: {} } });
    expect(response.status).toBe(202);
    const document = await waitForRun(t, (await body(response)).id as string);
    expect(document).toMatchObject({ status: 'succeeded', action: 'noop' });
  });

  it('a dry run is stored with its plan and nothing runs', async () => {
    const accepted = await submit({
      action: 'hold',
      targets: ['localhost'],
      params: { hold_ms: 1, secret: 'hunter2' },
      options: { dry_run: true },
    });
    const document = await waitForRun(t, accepted.id as string);
    expect(document).toMatchObject({ status: 'succeeded', dry_run: true, nodes: [] });
    expect((document.plan as Json).parameters).toMatchObject({ secret: '[REDACTED]' });
    expect(JSON.stringify(document)).not.toContain('hunter2');
    // Its event stream: run-start with the redacted plan, run-end succeeded; replayed, closed.
    const { ids, events } = await readEvents(accepted.id as string);
    expect(ids).toEqual([1, 2]);
    expect(events.map((event) => event.type)).toEqual(['run-start', 'run-end']);
    expect(events[0]).toMatchObject({
      run_id: accepted.id,
      trace_id: accepted.trace_id,
      principal: 'token:ops',
      source: 'api',
      plan: { dry_run: true, parameters: { secret: '[REDACTED]' } },
    });
    expect(events[1]).toMatchObject({
      status: 'succeeded',
      exit_code: 0,
      summary: null,
      error: null,
    });
    expect(validateRunEventStream(events).ok).toBe(true);
    expect(JSON.stringify(events)).not.toContain('hunter2');
  });

  it('a sensitive value runs, but is never written to the store, the events or the audit log', async () => {
    const secret = `s3cr3t-${Date.now()}`;
    const accepted = await submit({
      action: 'hold',
      targets: ['localhost'],
      params: { hold_ms: 1, secret },
    });
    const document = await waitForRun(t, accepted.id as string);
    expect(document.status).toBe('succeeded');
    const events = await readEvents(accepted.id as string);
    expect(JSON.stringify(events.events)).not.toContain(secret);
    expect(JSON.stringify(document)).not.toContain(secret);
    const row = await t.server.store.getRun(accepted.id as string);
    expect(row?.has_sensitive).toBe(1);
    expect(JSON.parse(row?.request_json ?? '{}')).toMatchObject({
      params: { secret: '[REDACTED]' },
    });
    expect(readFileSync(home.storePath).includes(secret)).toBe(false);
    expect(readFileSync(home.auditLog).includes(secret)).toBe(false);
  });

  it('Idempotency-Key: same key and body -> same run (200); other body -> 409', async () => {
    const request = { action: 'noop', targets: ['localhost'] };
    const key = { 'idempotency-key': 'deploy-42' };
    const first = await submit(request, key);
    const again = await t.request('/v1/runs', { json: request, headers: key });
    expect(again.status).toBe(200);
    expect((await body(again)).id).toBe(first.id);
    const other = await t.request('/v1/runs', {
      json: { ...request, params: { message: 'x' } },
      headers: key,
    });
    expect(await errorOf(other)).toEqual({ status: 409, code: 'IDEMPOTENCY_KEY_REUSED' });
    // Keys are per principal: another token may use the same key for its own run.
    const viewerKey = await createToken(t.server.store, {
      name: 'ci',
      role: 'operator',
      expires: '1h',
    });
    const theirs = await t.request('/v1/runs', {
      json: request,
      headers: key,
      token: viewerKey.token,
    });
    expect(theirs.status).toBe(202);
    expect((await body(theirs)).id).not.toBe(first.id);
  });

  it('SSE: every event once, in order; Last-Event-ID resumes with nothing lost or repeated', async () => {
    const accepted = await submit({ action: 'noop', targets: ['localhost', '127.0.0.1'] });
    await waitForRun(t, accepted.id as string);
    const all = await readEvents(accepted.id as string);
    expect(all.ids).toEqual(all.events.map((event) => event.seq));
    const verdict = validateRunEventStream(all.events);
    expect(verdict.ok ? 'ok' : verdict.error.toJSON()).toBe('ok');
    expect(all.events[0]).toMatchObject({
      type: 'run-start',
      principal: 'token:ops',
      source: 'api',
    });
    expect(all.events.at(-1)?.type).toBe('run-end');
    const resumed = await readEvents(accepted.id as string, { 'last-event-id': '3' });
    expect(resumed.ids).toEqual(all.ids.filter((id) => id > 3));
    expect(resumed.events).toEqual(all.events.slice(3));
  });

  it('SSE of a live run: a client connected before the end gets the whole stream', async () => {
    const accepted = await submit({
      action: 'hold',
      targets: ['localhost'],
      params: { hold_ms: 400 },
    });
    const live = await readEvents(accepted.id as string);
    expect(live.events.map((event) => event.type)).toEqual([
      'run-start',
      'node-start',
      'node-end',
      'run-end',
    ]);
  });

  it('GET /v1/runs: filters, stable newest-first order and cursor pagination', async () => {
    const ids: string[] = [];
    for (let index = 0; index < 3; index++) {
      const accepted = await submit({
        action: 'noop',
        targets: ['localhost'],
        options: { dry_run: true },
      });
      ids.push(accepted.id as string);
    }
    const page1 = await body(await t.request('/v1/runs?action=noop&limit=2&source=api'));
    const runs1 = page1.runs as Json[];
    expect(runs1.map((run) => run.id)).toEqual([ids[2], ids[1]]);
    expect(typeof page1.next_cursor).toBe('string');
    const page2 = await body(
      await t.request(`/v1/runs?action=noop&limit=2&cursor=${page1.next_cursor as string}`),
    );
    expect((page2.runs as Json[])[0]?.id).toBe(ids[0]);
    const everything = await body(await t.request('/v1/runs?limit=200'));
    const seen = (everything.runs as Json[]).map((run) => run.id);
    expect(new Set(seen).size).toBe(seen.length);
    const byNode = await body(await t.request('/v1/runs?node=127.0.0.1&status=succeeded'));
    expect(
      (byNode.runs as Json[]).every((run) => (run.nodes as string[]).includes('127.0.0.1')),
    ).toBe(true);
    const principal = await body(await t.request('/v1/runs?principal=token:nobody'));
    expect(principal.runs).toEqual([]);
    const future = await body(await t.request('/v1/runs?since=2999-01-01T00:00:00Z'));
    expect(future.runs).toEqual([]);
  });

  it('cancel: a queued run ends cancelled without running; an ended run stays as it is', async () => {
    // Fill the single... the default concurrency is 8: hold a node, then queue behind it.
    const holder = await submit({
      action: 'hold',
      targets: ['localhost'],
      params: { hold_ms: 1500 },
    });
    const queued = await submit({ action: 'hold', targets: ['localhost'], params: { hold_ms: 1 } });
    const state = await body(await t.request(`/v1/runs/${queued.id as string}`));
    expect(state.status).toBe('queued');
    const cancel = await t.request(`/v1/runs/${queued.id as string}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(202);
    expect((await body(cancel)).status).toBe('cancelled');
    const document = await waitForRun(t, queued.id as string);
    expect(document).toMatchObject({ status: 'cancelled', exit_code: 130, nodes: [] });
    expect((document.error as Json).code).toBe('RUN_CANCELLED');
    expect(validateRunResultDocument(document).ok).toBe(true);
    // A client following the run sees it start and end cancelled, with no node run.
    const { ids, events } = await readEvents(queued.id as string);
    expect(ids).toEqual([1, 2]);
    expect(events.map((event) => event.type)).toEqual(['run-start', 'run-end']);
    expect(events[1]).toMatchObject({ status: 'cancelled', exit_code: 130, summary: null });
    expect((events[1] as { error: Json }).error.code).toBe('RUN_CANCELLED');
    expect(validateRunEventStream(events).ok).toBe(true);
    const ended = await waitForRun(t, holder.id as string);
    expect(ended.status).toBe('succeeded');
    const again = await t.request(`/v1/runs/${holder.id as string}/cancel`, { method: 'POST' });
    expect((await body(again)).status).toBe('succeeded');
  });

  it('cancel mid-run: the plugin is killed, the run ends cancelled with every node ended', async () => {
    const accepted = await submit({
      action: 'hold',
      targets: ['localhost'],
      params: { hold_ms: 30000 },
    });
    const id = accepted.id as string;
    for (let i = 0; i < 100; i++) {
      const run = await body(await t.request(`/v1/runs/${id}/nodes/localhost`));
      if (run.state === 'running') break;
      await t.server.manager.waitForChange(id, 200);
    }
    await t.request(`/v1/runs/${id}/cancel`, { method: 'POST' });
    const document = await waitForRun(t, id);
    expect(document.status).toBe('cancelled');
    expect((document.nodes as Json[])[0]).toMatchObject({
      status: 'failure',
      error: { code: 'RUN_CANCELLED' },
    });
  });

  it('GET /v1/runs/{id}/nodes/{node}: the state and the full node result', async () => {
    const accepted = await submit({ action: 'noop', targets: ['localhost'] });
    await waitForRun(t, accepted.id as string);
    const node = await body(await t.request(`/v1/runs/${accepted.id as string}/nodes/localhost`));
    expect(node).toMatchObject({ node: 'localhost', state: 'success' });
    expect((node.result as Json).stderr_truncated).toBe(false);
    const missing = await t.request(`/v1/runs/${accepted.id as string}/nodes/web9`);
    expect(await errorOf(missing)).toEqual({ status: 404, code: 'NOT_FOUND' });
  });
});

describe('catalog, inventory, audit, health', () => {
  it('GET /v1/actions and /v1/actions/{name}: the manifest and the parameters JSON Schema', async () => {
    const list = await body(await t.request('/v1/actions', { token: t.viewer }));
    const names = (list.actions as Json[]).map((action) => action.name);
    expect(names).toEqual(expect.arrayContaining(['noop', 'check-disk', 'hold']));
    const noop = await body(await t.request('/v1/actions/noop', { token: t.viewer }));
    expect(noop).toMatchObject({
      name: 'noop',
      manifest: { idempotent: true },
      parameters_schema: {
        type: 'object',
        additionalProperties: false,
        properties: { sleep_ms: { type: 'integer' } },
      },
    });
    expect(await errorOf(await t.request('/v1/actions/nope'))).toEqual({
      status: 404,
      code: 'UNKNOWN_ACTION',
    });
    expect(await errorOf(await t.request('/v1/actions/Bad%20Name'))).toEqual({
      status: 400,
      code: 'INVALID_ACTION_NAME',
    });
  });

  it('GET /v1/nodes?selector=: ad-hoc preview without an inventory', async () => {
    const nodes = await body(await t.request('/v1/nodes?selector=localhost'));
    expect(nodes).toEqual({ nodes: [], matched: ['localhost'] });
    expect(await errorOf(await t.request('/v1/nodes?selector=@web'))).toMatchObject({
      status: 400,
    });
  });

  it('GET /v1/audit filters by principal and run; /v1/audit/verify verifies the chain', async () => {
    const accepted = await submit({ action: 'noop', targets: ['localhost'] });
    await waitForRun(t, accepted.id as string);
    const audit = await body(await t.request(`/v1/audit?run_id=${accepted.id as string}`));
    expect((audit.records as Json[]).map((record) => record.event)).toEqual([
      'policy',
      'intent',
      'run',
    ]);
    const mine = await body(await t.request('/v1/audit?principal=token:ops&limit=5'));
    expect((mine.records as Json[]).every((record) => record.operator === 'token:ops')).toBe(true);
    const verify = await body(await t.request('/v1/audit/verify', { token: t.viewer }));
    expect(verify).toMatchObject({ ok: true, error: null });
    expect(verify.verified).toBe(verify.total);
  });

  it('/livez and /readyz need no token; /metrics needs one and counts runs', async () => {
    expect((await t.request('/livez', { token: null })).status).toBe(200);
    const ready = await t.request('/readyz', { token: null });
    expect(await body(ready)).toMatchObject({
      status: 'ready',
      checks: { store_writable: true, plugins_loaded: true },
    });
    expect(await errorOf(await t.request('/metrics', { token: null }))).toEqual({
      status: 401,
      code: 'AUTH_TOKEN_MISSING',
    });
    const metrics = await (await t.request('/metrics', { token: t.viewer })).text();
    expect(metrics).toMatch(/rune_runs_total\{action="noop",status="succeeded"\} \d+/);
    expect(metrics).toMatch(
      /rune_node_results_total\{action="noop",code="OK",transport="local"\} \d+/,
    );
    expect(metrics).toContain('rune_queue_depth');
    expect(metrics).toContain('rune_sse_clients');
    expect(metrics).toContain('rune_run_duration_seconds_bucket');
  });

  it('security headers on every response, errors included; CORS off', async () => {
    for (const response of [
      await t.request('/livez', { token: null }),
      await t.request('/v1/runs/nope', { token: null }),
      await t.request('/v1/runs', { headers: { origin: 'https://evil.example' } }),
    ]) {
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
    }
  });

  it('serves its OpenAPI 3.1 document', async () => {
    const document = await body(await t.request('/openapi.json', { token: null }));
    expect(document.openapi).toBe('3.1.0');
    expect(Object.keys(document.paths as Json)).toEqual(
      expect.arrayContaining(['/v1/runs', '/v1/runs/{id}/events', '/run/{action}']),
    );
  });
});

describe('tokens', () => {
  it('missing, malformed, unknown, expired and revoked tokens: 401 with their own codes; roles enforced', async () => {
    expect(await errorOf(await t.request('/v1/runs', { token: null }))).toEqual({
      status: 401,
      code: 'AUTH_TOKEN_MISSING',
    });
    const missing = await t.request('/v1/runs', { token: null });
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await errorOf(await t.request('/v1/runs', { token: 'hunter2' }))).toEqual({
      status: 401,
      code: 'AUTH_TOKEN_INVALID',
    });
    const forged = `${t.operator.slice(0, -4)}AAAA`;
    expect(await errorOf(await t.request('/v1/runs', { token: forged }))).toEqual({
      status: 401,
      code: 'AUTH_TOKEN_INVALID',
    });
    const unknown = `rune_0123456789abcdef_${'A'.repeat(43)}`;
    expect(await errorOf(await t.request('/v1/runs', { token: unknown }))).toEqual({
      status: 401,
      code: 'AUTH_TOKEN_INVALID',
    });
    const old = await createToken(t.server.store, {
      name: 'old',
      role: 'admin',
      expires: '1s',
      now: new Date(Date.now() - 10_000),
    });
    expect(await errorOf(await t.request('/v1/runs', { token: old.token }))).toEqual({
      status: 401,
      code: 'AUTH_TOKEN_EXPIRED',
    });
    const gone = await createToken(t.server.store, { name: 'gone', role: 'admin', expires: '1d' });
    expect((await t.request('/v1/runs', { token: gone.token })).status).toBe(200);
    await revokeToken(t.server.store, 'gone');
    expect(await errorOf(await t.request('/v1/runs', { token: gone.token }))).toEqual({
      status: 401,
      code: 'AUTH_TOKEN_REVOKED',
    });
    const viewerRun = await t.request('/v1/runs', {
      token: t.viewer,
      json: { action: 'noop', targets: ['localhost'] },
    });
    expect(await errorOf(viewerRun)).toEqual({ status: 403, code: 'ROLE_FORBIDDEN' });
  });

  it('a token in the URL query string is refused before it is looked at', async () => {
    for (const query of [`?token=${t.operator}`, `?access_token=x`, `?x=${t.operator}`]) {
      expect(await errorOf(await t.request(`/v1/runs${query}`, { token: null }))).toEqual({
        status: 400,
        code: 'AUTH_TOKEN_IN_URL',
      });
    }
  });
});

describe('bad input: each with its EPS code and HTTP status', () => {
  const post = (payload: string | Buffer, contentType = 'application/json') =>
    t.request('/v1/runs', {
      method: 'POST',
      body: payload,
      headers: { 'content-type': contentType },
    });

  it('malformed JSON, empty body, wrong content type, huge body', async () => {
    expect(await errorOf(await post('{"action": "noop",'))).toEqual({
      status: 400,
      code: 'MALFORMED_JSON',
    });
    expect(await errorOf(await post(''))).toEqual({ status: 400, code: 'MALFORMED_JSON' });
    expect(await errorOf(await post('action=noop', 'application/x-www-form-urlencoded'))).toEqual({
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    });
    expect(await errorOf(await post('{"action":"noop"}', 'text/plain'))).toEqual({
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    });
    const huge = JSON.stringify({
      action: 'noop',
      targets: ['localhost'],
      params: { message: 'x'.repeat(10_000) },
    });
    expect(await errorOf(await post(huge))).toEqual({ status: 413, code: 'REQUEST_TOO_LARGE' });
  });

  it('unknown fields, wrong types, missing members, prototype keys', async () => {
    const cases: [unknown, string][] = [
      [{ action: 'noop', targets: ['localhost'], extra: 1 }, 'INVALID_ARGUMENT'],
      [{ action: 'noop', targets: ['localhost'], options: { yes: true } }, 'INVALID_ARGUMENT'],
      [{ action: 'noop', targets: 'localhost' }, 'INVALID_ARGUMENT'],
      [{ action: 'noop' }, 'INVALID_ARGUMENT'],
      [{ action: 'noop', targets: [] }, 'INVALID_ARGUMENT'],
      [
        { action: 'noop', targets: ['localhost'], params: { sleep_ms: 'soon' } },
        'INVALID_PARAMETERS',
      ],
      [{ action: 'noop', targets: ['localhost'], params: { nope: 1 } }, 'INVALID_PARAMETERS'],
      [
        { action: 'noop', targets: ['localhost'], options: { timeout: '5 parsecs' } },
        'INVALID_ARGUMENT',
      ],
      [{ action: 'noop', targets: ['localhost'], options: { concurrency: 0 } }, 'INVALID_ARGUMENT'],
    ];
    for (const [payload, code] of cases) {
      expect({ payload, ...(await errorOf(await post(JSON.stringify(payload)))) }).toEqual({
        payload,
        status: 400,
        code,
      });
    }
    const proto = '{"action":"noop","targets":["localhost"],"params":{"__proto__":{"x":1}}}';
    expect((await errorOf(await post(proto))).status).toBe(400);
  });

  it('bad selectors, unknown actions, shell metacharacters in every field: refused, executed nowhere', async () => {
    expect(
      await errorOf(await post(JSON.stringify({ action: 'nope', targets: ['localhost'] }))),
    ).toEqual({
      status: 404,
      code: 'UNKNOWN_ACTION',
    });
    const marker = `${home.dir}/pwned`;
    const evil = `$(touch ${marker});\`touch ${marker}\`|touch ${marker}`;
    const attempts: unknown[] = [
      { action: evil, targets: ['localhost'] },
      { action: 'noop', targets: [evil] },
      { action: 'noop', targets: ['@group;rm -rf /'] },
      { action: 'noop', targets: ['localhost'], options: { transport: evil } },
      { action: 'noop', targets: ['localhost'], options: { timeout: evil } },
      { action: 'noop', targets: ['localhost'], options: { max_failures: evil.slice(0, 16) } },
    ];
    for (const payload of attempts) {
      const result = await errorOf(await post(JSON.stringify(payload)));
      expect(result.status).toBe(400);
      expect([
        'INVALID_ACTION_NAME',
        'INVALID_TARGET',
        'UNKNOWN_NODE',
        'INVALID_ARGUMENT',
        'NO_TARGETS',
      ]).toContain(result.code);
    }
    // A parameter value is data: it reaches the plugin inside the JSON document, verbatim.
    const accepted = await submit({
      action: 'noop',
      targets: ['localhost'],
      params: { message: evil },
    });
    const document = await waitForRun(t, accepted.id as string);
    const output = (((document.nodes as Json[])[0]?.response ?? {}) as Json).payload as Json;
    expect((output.output_data as Json).message).toBe(evil);
    expect(() => readFileSync(marker)).toThrow();
  });

  it('SQL-like strings in filters, invalid cursors, bad ids, bad Last-Event-ID, bad Idempotency-Key', async () => {
    const sqlish = encodeURIComponent("noop' OR '1'='1");
    const filtered = await body(await t.request(`/v1/runs?action=${sqlish}`));
    expect(filtered.runs).toEqual([]);
    const node = await body(await t.request(`/v1/runs?node=${encodeURIComponent("%' --")}`));
    expect(node.runs).toEqual([]);
    expect(await errorOf(await t.request('/v1/runs?status=done'))).toEqual({
      status: 400,
      code: 'INVALID_ARGUMENT',
    });
    for (const cursor of ['abc', 'eyJwIjotMX0', "'; drop table runs; --", '%00']) {
      expect(
        await errorOf(await t.request(`/v1/runs?cursor=${encodeURIComponent(cursor)}`)),
      ).toEqual({ status: 400, code: 'INVALID_ARGUMENT' });
    }
    expect(await errorOf(await t.request('/v1/runs?since=yesterday'))).toEqual({
      status: 400,
      code: 'INVALID_ARGUMENT',
    });
    expect(await errorOf(await t.request('/v1/runs/not-a-run'))).toEqual({
      status: 404,
      code: 'NOT_FOUND',
    });
    const accepted = await submit({ action: 'noop', targets: ['localhost'] });
    expect(
      await errorOf(
        await t.request(`/v1/runs/${accepted.id as string}/events`, {
          headers: { 'last-event-id': '1; drop' },
        }),
      ),
    ).toEqual({ status: 400, code: 'INVALID_ARGUMENT' });
    expect(
      await errorOf(
        await t.request('/v1/runs', {
          json: { action: 'noop', targets: ['localhost'] },
          headers: { 'idempotency-key': 'x'.repeat(300) },
        }),
      ),
    ).toEqual({ status: 400, code: 'INVALID_ARGUMENT' });
    // The store survived all of it.
    expect((await t.request('/v1/runs?limit=1')).status).toBe(200);
  });

  it('path traversal in artifact names is refused', async () => {
    const accepted = await submit({ action: 'noop', targets: ['localhost'] });
    await waitForRun(t, accepted.id as string);
    for (const name of ['..%2F..%2Fetc%2Fpasswd', '.hidden', '..', 'a%00b']) {
      const response = await t.request(
        `/v1/runs/${accepted.id as string}/nodes/localhost/artifacts/${name}`,
      );
      expect([400, 404]).toContain(response.status);
      expect(['INVALID_ARGUMENT', 'NOT_FOUND']).toContain((await errorOf(response)).code);
    }
    const plain = await t.request(
      `/v1/runs/${accepted.id as string}/nodes/localhost/artifacts/report.txt`,
    );
    expect(await errorOf(plain)).toEqual({ status: 404, code: 'NOT_FOUND' });
  });

  it('unknown routes are EPS errors too', async () => {
    expect(await errorOf(await t.request('/v2/runs'))).toEqual({ status: 404, code: 'NOT_FOUND' });
  });
});
