/**
 * The alert tests' server: a real `rune serve` from the harness (createTestHome +
 * startTestServer) with an alert rules file, an inventory (three local nodes, or a real sshd
 * fleet over the SSH transport), optionally a policy file and workflows, and a real HTTP sink the
 * notifiers post to. One helper for every alert test: the setup used to be repeated per block.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { TransportProvider } from '@rune/core';
import type { SshdFleet } from '@rune/transport-ssh/testing';
import { expect } from 'vitest';
import { createRuneServer, createToken } from '../src/index.js';
import {
  createTestHome,
  fleetInventory,
  sshProvider,
  startTestServer,
  type TestHome,
  type TestServer,
} from './harness.js';

export type Json = Record<string, unknown>;
export type AlertDoc = Json & {
  id: string;
  outcome: string;
  run_id: string | null;
  reason: string | null;
};

export const AM_TOKEN = 'am-secret-token-1234567890';
export const PD_OLD = 'pd-old-secret';
export const PD_NEW = 'pd-new-secret';
export const GEN_SECRET = 'generic-secret-abc';

export interface Captured {
  path: string;
  body: Json;
}

/** A real HTTP server on 127.0.0.1 that records what notifiers post. */
export interface Sink {
  server: Server;
  url: string;
  posts: Captured[];
}

async function startSink(): Promise<Sink> {
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

/** The receivers, storm and notifiers every rules file of the tests starts with. */
export function rulesHeader(
  home: TestHome,
  sinkUrl: string,
  stormMax: number,
  holdExpires = '1h',
  outcomes = '[ran, refused, held]',
): string {
  const secret = (name: string, value: string): string => {
    const file = join(home.dir, name);
    writeFileSync(file, `${value}\n`, { mode: 0o600 });
    return `file:${file}`;
  };
  return `schema_version: rune-alert-rules/v1
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
  - { name: hook, kind: webhook, url: "${sinkUrl}/hook", outcomes: ${outcomes} }
  - { name: chat, kind: slack, url: "${sinkUrl}/slack", outcomes: [ran] }
`;
}

/** The rules of the receiver tests. */
export const DEFAULT_RULES = `rules:
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
`;

/** Options of {@link startAlertServer}. */
export interface AlertServerOptions {
  /** The storm breaker's max_runs (default 1000: no storm). */
  stormMax?: number;
  holdExpires?: string;
  /** The `rules:` part of the rules file (default {@link DEFAULT_RULES}). */
  rules?: string;
  /** Notifier outcomes of the `hook` notifier (default `[ran, refused, held]`). */
  hookOutcomes?: string;
  /** A policy file's YAML (`[server] policy`); default the built-in roles. */
  policy?: string;
  /** Nodes node1..N of this real sshd fleet (SSH transport) instead of web1..3 (local). */
  fleet?: SshdFleet;
  /** A directory of workflow files (`[server] workflows`). */
  workflowsDir?: string;
}

/** A started alert server. */
export interface AlertServer extends TestServer {
  sink: Sink;
  rulesFile: string;
  /** An admin token (holds `approve` in the built-in roles). */
  admin: string;
  /** Stops this server and starts another on the same home (store, audit log, rules). */
  restart(): Promise<void>;
  /** Stops the server and the sink and removes the home. */
  stop(): Promise<void>;
}

/** Starts a server with alert rules (see {@link AlertServerOptions}). */
export async function startAlertServer(options: AlertServerOptions = {}): Promise<AlertServer> {
  const sink = await startSink();
  const home = createTestHome();
  try {
    const rulesFile = join(home.dir, 'alert-rules.yaml');
    writeFileSync(
      rulesFile,
      rulesHeader(
        home,
        sink.url,
        options.stormMax ?? 1000,
        options.holdExpires,
        options.hookOutcomes,
      ) + (options.rules ?? DEFAULT_RULES),
    );
    let inventory = join(home.dir, 'inventory.yaml');
    if (options.fleet === undefined) {
      writeFileSync(
        inventory,
        'nodes:\n  web1: { address: localhost }\n  web2: { address: 127.0.0.1 }\n  web3: { address: localhost }\n',
      );
    } else {
      inventory = fleetInventory(home, options.fleet);
    }
    let server = `alert_rules = ${JSON.stringify(rulesFile)}\n`;
    if (options.policy !== undefined) {
      const policy = join(home.dir, 'policy.yaml');
      writeFileSync(policy, options.policy);
      server += `policy = ${JSON.stringify(policy)}\n`;
    }
    if (options.workflowsDir !== undefined) {
      server += `workflows = ${JSON.stringify(options.workflowsDir)}\n`;
    }
    writeFileSync(
      home.configFile,
      readFileSync(home.configFile, 'utf8')
        .replace('[core]\n', `[core]\ninventory = ${JSON.stringify(inventory)}\n`)
        .replace('[server]\n', `[server]\n${server}`),
    );
    const transports: Record<string, TransportProvider> =
      options.fleet === undefined ? {} : { ssh: sshProvider(options.fleet) };
    let t = await startTestServer(home, transports);
    const mintAdmin = async (): Promise<string> =>
      (
        await createToken(t.server.store, {
          name: `approver-${Date.now().toString(36)}`,
          role: 'admin',
          expires: '1d',
        })
      ).token;
    const alertServer: AlertServer = {
      ...t,
      sink,
      rulesFile,
      admin: await mintAdmin(),
      async restart() {
        await t.close();
        // The store keeps the tokens: the old ones go on working on the new server.
        const server = await createRuneServer({
          configFile: home.configFile,
          env: home.env,
          transports,
          port: 0,
        });
        const url = await server.listen();
        const previous = t;
        t = {
          ...previous,
          server,
          url,
          close: () => server.close(),
          request: (path, init = {}) => {
            const { token, json, headers, ...rest } = init;
            const bearer = token === undefined ? previous.operator : token;
            return fetch(`${url}${path}`, {
              ...rest,
              headers: {
                ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }),
                ...(json === undefined ? {} : { 'content-type': 'application/json' }),
                ...(headers as Record<string, string> | undefined),
              },
              ...(json === undefined
                ? {}
                : { body: JSON.stringify(json), method: rest.method ?? 'POST' }),
            });
          },
        };
        Object.assign(alertServer, t);
      },
      async stop() {
        await t.close();
        await new Promise((resolve) => sink.server.close(resolve));
        home.remove();
      },
    };
    return alertServer;
  } catch (error) {
    await new Promise((resolve) => sink.server.close(resolve));
    home.remove();
    throw error;
  }
}

let sequence = 0;
/** An Alertmanager v4 payload of the group `groupKey`. */
export function amPayload(
  alerts: Array<{
    labels: Record<string, string>;
    annotations?: Record<string, string>;
    status?: string;
    fingerprint?: string;
    startsAt?: string;
  }>,
  groupKey = '{}:{alertname="x"}',
): Json {
  return {
    version: '4',
    groupKey,
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

/** Posts an Alertmanager notification. */
export async function postAm(
  t: Pick<TestServer, 'url'>,
  body: unknown,
  receiver = 'am',
  auth = `Bearer ${AM_TOKEN}`,
): Promise<Response> {
  return fetch(`${t.url}/v1/hooks/alertmanager/${receiver}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: auth },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Polls `GET /v1/alerts/{id}` until the alert's outcome is not one of `from`. */
export async function alertLeaves(
  t: TestServer,
  id: string,
  from: readonly string[],
  ms = 30_000,
): Promise<AlertDoc> {
  const deadline = Date.now() + ms;
  for (;;) {
    const document = (await (await t.request(`/v1/alerts/${id}`)).json()) as AlertDoc;
    if (!from.includes(document.outcome)) return document;
    if (Date.now() > deadline) throw new Error(`alert ${id} stayed ${document.outcome}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits until the alert is decided (the decision is asynchronous). */
export function decided(t: TestServer, id: string): Promise<AlertDoc> {
  return alertLeaves(t, id, ['received']);
}

/** An Alertmanager alert the test rules map to the `echo` action: `Echo`, severity `page`. */
export function echoAlert(
  instance: string,
  summary: string,
  extra: { fingerprint?: string; startsAt?: string; status?: string } = {},
): Parameters<typeof amPayload>[0][number] {
  return {
    labels: { alertname: 'Echo', severity: 'page', instance },
    annotations: { summary },
    ...extra,
  };
}

/** The alert ids of a 202. */
export async function accept(response: Response): Promise<string[]> {
  expect(response.status).toBe(202);
  return ((await response.json()) as { alert_ids: string[] }).alert_ids;
}

/** The status and EPS code of an error answer. */
export async function errorOf(
  response: Response,
): Promise<{ status: number; code: string; message: string }> {
  const body = (await response.json()) as { error: { code: string; message: string } };
  return { status: response.status, code: body.error.code, message: body.error.message };
}
