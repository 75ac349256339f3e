/**
 * Single sign-on clicked through in a real browser: Debian's chromium (playwright-core) against a
 * real `rune serve` and the real `oidc-provider` package on 127.0.0.1, with the provider's own
 * login and consent pages (its dev interactions). The dashboard's "Sign in with Single sign-on"
 * goes to the provider's login form, then its consent page, then back to the dashboard signed in
 * with what the policy grants the user's groups; the sign-in and the sign-out are audit records
 * visible in the audit view, and the chain verifies; a user the policy grants nothing lands on
 * the sign-in page with a plain explanation.
 *
 * The catalog has 150 generated actions and the rate limit is 60 requests a minute: the
 * permission check at sign-in is one request (`POST /v1/policy/checks`), so nothing is refused
 * with 429 (asking per action and verb, as before, took 750 requests).
 *
 * Needs the built dashboard (`npx -y pnpm@10.34.9 build`).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  launchChromium,
  type SessionServer,
  startSessionServer,
  type TestHome,
} from './harness.js';

const ACTIONS = 150;
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const ACCOUNTS: Record<string, { email: string; groups: string[] }> = {
  alice: { email: 'alice@example.com', groups: ['soc-analysts'] },
  mallory: { email: 'mallory@example.com', groups: ['strangers'] },
};

// Analysts see everything and may dry-run and run the first nine generated actions.
const POLICY = `version: rune-policy/v1
roles:
  soc-analyst:
    rules:
      - id: soc-view
        verbs: [view]
        actions: ['*']
        nodes: ['*']
      - id: soc-run
        verbs: [dry-run, run]
        actions: ['act-00*']
        nodes: [localhost]
bindings:
  - subjects: [group:soc-analysts]
    roles: [soc-analyst]
`;

let t: SessionServer;
let home: TestHome;
let url = '';
let browser: Browser;
const contexts: BrowserContext[] = [];
const pageErrors: string[] = [];

/** A plugin dir with the fixtures plus `act-001` … `act-150` (a trivial action each). */
function writePlugins(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const script = `#!/usr/bin/env bash
cat > /dev/null
printf '{"message_metadata":{"trace_id":"0","timestamp":"2026-01-01T00:00:00Z"},"payload":{"schema_version":"bpcs_v1","result":"success","summary":"ok","output_data":{}},"error":null}\\n'
`;
  for (let index = 1; index <= ACTIONS; index++) {
    const name = `act-${String(index).padStart(3, '0')}`;
    writeFileSync(join(dir, `${name}.sh`), script, { mode: 0o755 });
    writeFileSync(
      join(dir, `${name}.manifest.json`),
      JSON.stringify({
        schema_version: 'mrs_v1',
        name,
        version: '1.0.0',
        description: `Generated action ${index} of ${ACTIONS}.`,
        entrypoint: `${name}.sh`,
        parameters: { type: 'object', properties: {}, additionalProperties: false },
        tags: ['generated'],
        requirements: { commands: [], privilege: 'user', os: ['linux'] },
        timeout_ms: 10_000,
        idempotent: true,
        supports_dry_run: false,
        dangerous: false,
        accepts: ['rcs_v1'],
      }),
    );
  }
}

beforeAll(async () => {
  t = await startSessionServer({
    policy: POLICY,
    serverToml: 'rate_limit = 60\n',
    plugins: (home) => {
      const plugins = join(home.dir, 'plugins');
      writePlugins(plugins);
      return plugins;
    },
    // No interaction handler: the provider's own login form and consent page (the login is the
    // account id).
    oidc: { accounts: ACCOUNTS },
  });
  url = t.url;
  home = t.home;
  browser = await launchChromium();
});
afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await t?.close();
});

interface Traffic {
  page: Page;
  /** Every API path the page asked for, in order. */
  requests: string[];
  /** Statuses of the API's answers. */
  statuses: number[];
}

async function openPage(): Promise<Traffic> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  contexts.push(context);
  // Loopback only: the provider's dev pages import a web font, which stays unfetched.
  await context.route(
    (target) => !['127.0.0.1', 'localhost'].includes(target.hostname),
    (route) => route.abort(),
  );
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  const traffic: Traffic = { page, requests: [], statuses: [] };
  page.on('request', (request) => {
    const target = new URL(request.url());
    if (target.origin === url && target.pathname.startsWith('/v1/')) {
      traffic.requests.push(`${request.method()} ${target.pathname}`);
    }
  });
  page.on('response', (response) => {
    const target = new URL(response.url());
    if (target.origin === url && target.pathname.startsWith('/v1/')) {
      traffic.statuses.push(response.status());
    }
  });
  return traffic;
}

/** From the dashboard's sign-in page through the provider's login form and consent. */
async function ssoSignIn(page: Page, account: string, hash = ''): Promise<void> {
  await page.goto(`${url}/${hash}`);
  await page.getByRole('link', { name: 'Sign in with Single sign-on' }).click();
  // The provider's login form.
  await page.waitForURL((target) => target.origin !== url);
  await page.locator('input[name="login"]').fill(account);
  await page.locator('input[name="password"]').fill('any password');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  // Its consent page.
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL((target) => target.origin === url);
}

/** Waits until `locator` (its first match) shows `text`. */
const shows = (locator: Locator, text: string | RegExp) =>
  locator.filter({ hasText: text }).first().waitFor({ timeout: 30_000 });

describe('single sign-on in the browser', () => {
  it("login form, consent, back signed in with the groups' permissions; one permission request for 150 actions", async () => {
    const { page, requests, statuses } = await openPage();
    await ssoSignIn(page, 'alice');
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    await shows(page.locator('.who'), 'user:alice@example.com');
    expect(await page.locator('.who').textContent()).toContain('soc-analyst');
    // The policy's answers arrive: Run where the group may run, Details elsewhere.
    await page.getByRole('link', { name: 'Run act-001' }).waitFor({ timeout: 30_000 });
    const card = (name: string) => page.locator(`[data-action="${name}"]`);
    expect(await card('act-009').getByRole('link', { name: 'Run act-009' }).count()).toBe(1);
    expect(await card('act-010').getByRole('link', { name: /^Run/ }).count()).toBe(0);
    expect(await card('act-150').getByRole('link', { name: 'Details' }).count()).toBe(1);
    expect(await page.locator('.action-card').count()).toBeGreaterThanOrEqual(ACTIONS);
    const checks = requests.filter((line) => line.startsWith('POST /v1/policy/check'));
    expect(checks).toEqual(['POST /v1/policy/checks']);
    expect(statuses).not.toContain(429);
    expect(requests.length).toBeLessThan(20);

    // The sign-in is in the audit view.
    await page.goto(`${url}/#/audit`);
    await shows(page.getByRole('status'), 'Hash chain verified');
    await shows(page.locator('table.audit tbody tr'), /signed_in.*via oidc|via oidc.*signed_in/);
    const signedIn = page.locator('table.audit tbody tr', { hasText: 'signed_in' }).first();
    expect(await signedIn.textContent()).toContain('user:alice@example.com');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('link', { name: 'Sign in with Single sign-on' }).waitFor();
    // Signed out for real: the cookie no longer opens anything.
    expect(await page.evaluate(async () => (await fetch('/v1/session')).status)).toBe(401);
    const records = readFileSync(home.auditLog, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter(
        (record) => record.event === 'session' && record.operator === 'user:alice@example.com',
      );
    expect(records.map((record) => record.status)).toEqual(['signed_in', 'signed_out']);

    // Back in (the provider still knows her: straight back, no form), the sign-out is in the
    // audit view too, and the chain still verifies.
    await page.getByRole('link', { name: 'Sign in with Single sign-on' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    await page.goto(`${url}/#/audit`);
    await shows(page.getByRole('status'), 'Hash chain verified');
    await shows(page.locator('table.audit tbody tr'), 'signed_out');
    const out = page.locator('table.audit tbody tr', { hasText: 'signed_out' }).first();
    expect(await out.textContent()).toMatch(/user:alice@example\.com.*via oidc, signed out/);
  });

  it('a user the policy grants nothing sees a plain explanation on the sign-in page', async () => {
    const { page } = await openPage();
    await ssoSignIn(page, 'mallory');
    await shows(page.locator('#sign-in-notice'), 'grants your account nothing');
    expect(await page.getByRole('navigation', { name: 'Main' }).count()).toBe(0);
    await page.getByLabel('API token').waitFor();
    // The words are the dashboard's: a crafted link shows only its fixed texts.
    await page.goto(`${url}/#/?sign_in_error=${encodeURIComponent('<b>call 555</b>')}`);
    await page.reload();
    await shows(page.locator('#sign-in-notice'), '(error)');
    expect(await page.locator('#sign-in-notice').textContent()).not.toContain('555');
  });

  it('a pasted link survives the sign-in: back on the page that was asked for', async () => {
    const { page } = await openPage();
    await ssoSignIn(page, 'alice', '#/history?source=api&status=succeeded');
    await page.getByRole('heading', { name: 'History' }).waitFor();
    expect(new URL(page.url()).hash).toBe('#/history?source=api&status=succeeded');
    expect(await page.getByLabel('Source').inputValue()).toBe('api');
    expect(await page.getByLabel('Status').inputValue()).toBe('succeeded');
  });

  it('no page threw', () => {
    expect(pageErrors).toEqual([]);
  });
});
