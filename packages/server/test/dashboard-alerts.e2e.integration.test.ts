/**
 * The alerts view against real alerts: real webhook payloads (Alertmanager v4 with its bearer
 * token, the HMAC-signed generic webhook) sent over HTTP to a real `rune serve` with an alert
 * rules file, decided by its engine into real runs of the built-in `noop` action, then Debian's
 * chromium (playwright-core) showing what arrived, which rule matched, what ran (a link that opens
 * the run) or why nothing did — deduplicated, throttled, refused with its EPS code, no rule — with
 * hostile label values shown as text. The view reads only `GET /v1/alerts`.
 *
 * Needs the built dashboard (`npx -y pnpm@10.34.9 build`).
 */
import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { amPayload } from './alert-server.js';
import {
  axeViolations,
  createTestHome,
  launchChromium,
  startTestServer,
  type TestHome,
  type TestServer,
} from './harness.js';

const XSS = '<img src=x onerror=alert(1)>';
const AM_TOKEN = 'am-secret-token-dashboard';
const GEN_SECRET = 'generic-secret-dashboard';
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

type Json = Record<string, unknown>;
interface AlertDoc {
  id: string;
  outcome: string;
  rule: string | null;
  run_id: string | null;
  reason: string | null;
  error: Json | null;
}

let home: TestHome;
let t: TestServer;
let browser: Browser;
const dialogs: string[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  home = createTestHome();
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
  gen: { kind: generic, secrets: ["${secret('gen.secret', GEN_SECRET)}"], replay_window: 5m }
rules:
  - name: echo
    match: { labels: { alertname: Echo } }
    action: noop
    params: { message: { from_annotation: summary } }
    throttle: { group_by: fingerprint }
  - name: cooldown
    match: { labels: { alertname: Cooldown } }
    action: noop
    throttle: { once_within: 1h }
  - name: generic
    receivers: [gen]
    match: { labels: { alertname: Generic } }
    action: noop
`,
  );
  const inventory = join(home.dir, 'inventory.yaml');
  writeFileSync(
    inventory,
    'nodes:\n  web1: { address: localhost }\n  web2: { address: localhost }\n',
  );
  writeFileSync(
    home.configFile,
    readFileSync(home.configFile, 'utf8')
      .replace('[core]\n', `[core]\ninventory = ${JSON.stringify(inventory)}\n`)
      .replace('[server]\n', `[server]\nalert_rules = ${JSON.stringify(rules)}\n`),
  );
  t = await startTestServer(home);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await t?.close();
  home?.remove();
});

async function postAm(body: Json): Promise<string[]> {
  const response = await fetch(`${t.url}/v1/hooks/alertmanager/am`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${AM_TOKEN}` },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { alert_ids: string[] }).alert_ids;
}

async function postGeneric(body: Json): Promise<string[]> {
  const text = JSON.stringify(body);
  const timestamp = Math.floor(Date.now() / 1000);
  const signature = createHmac('sha256', GEN_SECRET).update(`${timestamp}.${text}`).digest('hex');
  const response = await fetch(`${t.url}/v1/hooks/generic/gen`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-rune-timestamp': String(timestamp),
      'x-rune-signature': `sha256=${signature}`,
    },
    body: text,
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { alert_ids: string[] }).alert_ids;
}

/** Waits until the engine decided the alert (asynchronous after the 202). */
async function decided(id: string): Promise<AlertDoc> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const document = (await (await t.request(`/v1/alerts/${id}`)).json()) as AlertDoc;
    if (document.outcome !== 'received') return document;
    if (Date.now() > deadline) throw new Error(`alert ${id} was never decided`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function signedIn(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(`${t.url}/`);
  await page.getByLabel('API token').fill(t.viewer);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
  return page;
}

const textOf = async (locator: Locator): Promise<string> => (await locator.textContent()) ?? '';

describe('the alerts view', () => {
  it('shows what arrived, the rule, what ran or why not, and hostile labels as text', async () => {
    // What arrives: an alert that runs (with hostile label and annotation values), its retry, a
    // throttled pair, one naming no inventory node, one no rule matches, and a signed generic one.
    const echo = amPayload([
      {
        labels: { alertname: 'Echo', instance: 'web1:9100', team: XSS },
        annotations: { summary: `disk nearly full ${XSS}` },
        fingerprint: 'echo-1',
      },
    ]);
    const [ran] = await postAm(echo);
    const ranDoc = await decided(ran as string);
    expect(ranDoc).toMatchObject({ outcome: 'ran', rule: 'echo' });
    const [again] = await postAm(echo);
    const [first, second, nowhere, nothing] = await postAm(
      amPayload([
        { labels: { alertname: 'Cooldown', instance: 'web1', disk: 'a' }, fingerprint: 'cool-a' },
        { labels: { alertname: 'Cooldown', instance: 'web1', disk: 'b' }, fingerprint: 'cool-b' },
        { labels: { alertname: 'Echo', instance: '*' }, fingerprint: 'star' },
        { labels: { alertname: 'Nothing', instance: 'web1' }, fingerprint: 'none' },
      ]),
    );
    const [generic] = await postGeneric({
      alerts: [{ status: 'firing', labels: { alertname: 'Generic', instance: 'web2' } }],
    });
    const docs = Object.fromEntries(
      await Promise.all(
        Object.entries({ ran, again, first, second, nowhere, nothing, generic }).map(
          async ([key, id]) => [key, await decided(id as string)] as const,
        ),
      ),
    ) as Record<string, AlertDoc>;
    // What the server decided (the view must show exactly this).
    expect(docs.again).toMatchObject({ outcome: 'deduplicated', run_id: ranDoc.run_id });
    expect(docs.first?.outcome).toBe('ran');
    expect(docs.second).toMatchObject({ outcome: 'throttled', rule: 'cooldown' });
    expect(docs.nowhere).toMatchObject({ outcome: 'refused', run_id: null });
    expect(docs.nowhere?.error?.code).toBe('UNKNOWN_NODE');
    expect(docs.nothing).toMatchObject({ outcome: 'no_rule', rule: null });
    expect(docs.generic).toMatchObject({ outcome: 'ran', rule: 'generic' });

    const page = await signedIn();
    await page.getByRole('link', { name: 'Alerts' }).click();
    await page.getByRole('heading', { name: 'Alerts', level: 1 }).waitFor();
    const card = (id: string) => page.locator(`[data-alert="${id}"]`);
    await card(generic as string).waitFor();
    const field = (id: string, name: string) => card(id).locator(`[data-field="${name}"]`);

    // Ran: the rule, the action on its node, and a link to the run.
    expect(await card(ran as string).getAttribute('data-outcome')).toBe('ran');
    expect(await textOf(field(ran as string, 'rule'))).toBe('echo');
    expect(await textOf(field(ran as string, 'action'))).toBe('noop on web1');
    const runLink = field(ran as string, 'outcome').getByRole('link');
    expect(await runLink.getAttribute('href')).toBe(`#/runs/${ranDoc.run_id}`);
    // Deduplicated: suppressed, pointing at the same run.
    expect(await textOf(field(again as string, 'outcome'))).toMatch(/suppressed: a duplicate/);
    expect(
      await field(again as string, 'outcome')
        .getByRole('link')
        .getAttribute('href'),
    ).toBe(`#/runs/${ranDoc.run_id}`);
    // Throttled: why, in the rule's words.
    expect(await textOf(field(second as string, 'outcome'))).toMatch(/throttled by its rule/);
    expect(await textOf(field(second as string, 'reason'))).toBe(docs.second?.reason);
    expect(docs.second?.reason).toMatch(/once_within 1h/);
    // Refused: the EPS code and message, no run.
    expect(await textOf(card(nowhere as string).getByRole('alert'))).toMatch(/^UNKNOWN_NODE: /);
    expect(
      await field(nowhere as string, 'outcome')
        .getByRole('link')
        .count(),
    ).toBe(0);
    // No rule.
    expect(await textOf(field(nothing as string, 'rule'))).toBe('none matched');
    expect(await textOf(field(nothing as string, 'outcome'))).toMatch(/no rule matched/);
    // The generic webhook's alert, from its receiver.
    expect(await textOf(card(generic as string))).toMatch(/from gen \(generic\)/);

    // Hostile label and annotation values are characters on the page, never markup.
    const ranCard = card(ran as string);
    await ranCard.getByText('Labels and annotations').click();
    const team = ranCard.locator('tr', { has: page.locator('th', { hasText: /^team$/ }) });
    expect(await textOf(team.locator('td'))).toBe(XSS);
    expect(await textOf(ranCard)).toContain(`disk nearly full ${XSS}`);
    expect(await page.locator('main img').count()).toBe(0);
    expect(dialogs).toEqual([]);

    // Accessible: no serious or critical axe violation on the view.
    expect(await axeViolations(page)).toEqual([]);

    // The link opens the run the alert started.
    await runLink.click();
    await page.waitForURL(new RegExp(`#/runs/${ranDoc.run_id}$`));
    await page.locator('.page-head [data-status="succeeded"]').waitFor({ timeout: 60_000 });
    expect(pageErrors).toEqual([]);
  });
});
