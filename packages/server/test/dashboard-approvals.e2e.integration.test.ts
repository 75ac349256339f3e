/**
 * The dashboard's approvals inbox against the real RBAC policy: Debian's chromium driven by
 * playwright-core, a real server in this process with a policy file, the local transport and the
 * real bash plugins. Principal A (requester) may run `noop` only after approval and, to show the
 * four-eyes rule is what hides the buttons, also holds approve; principal B may approve. Every wait
 * is for something the page shows, never a fixed sleep.
 *
 * Needs the built dashboard (`npx -y pnpm@10.34.9 build`).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createToken } from '../src/index.js';
import {
  axeViolations,
  createTestHome,
  launchChromium,
  startTestServer,
  type TestHome,
  type TestServer,
} from './harness.js';

type Json = Record<string, unknown>;
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const POLICY = `version: rune-policy/v1
roles:
  requester:
    rules:
      - id: requester-view
        verbs: [view]
        actions: ['*']
        nodes: ['@all']
      - id: requester-noop-held
        verbs: [dry-run, run]
        actions: [noop]
        nodes: ['@all']
        require_approval: true
      - id: requester-also-approves
        verbs: [approve]
        actions: [noop]
        nodes: ['@all']
  approver:
    rules:
      - id: approver-noop
        verbs: [view, approve]
        actions: [noop]
        nodes: ['@all']
bindings:
  - subjects: [token:alice]
    roles: [requester]
  - subjects: [token:lead]
    roles: [approver]
approvals:
  quorum: 1
  expires: 1h
`;

let home: TestHome;
let t: TestServer;
let browser: Browser;
const tokens: Record<string, string> = {};
const contexts: BrowserContext[] = [];
const consoleErrors: string[] = [];

beforeAll(async () => {
  home = createTestHome('', { inventory: 'PLACEHOLDER' });
  const inventory = join(home.dir, 'inventory.yaml');
  writeFileSync(inventory, 'nodes:\n  web1: { address: localhost, tags: [web] }\n');
  const policyFile = join(home.dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
  writeFileSync(
    home.configFile,
    readFileSync(home.configFile, 'utf8').replace('"PLACEHOLDER"', JSON.stringify(inventory)) +
      `policy = ${JSON.stringify(policyFile)}\nrate_limit = 100000\n`,
  );
  t = await startTestServer(home);
  const knownRoles = [...t.server.policy.current().roles.keys()];
  for (const [name, role] of [
    ['alice', 'requester'],
    ['lead', 'approver'],
  ] as const) {
    tokens[name] = (
      await createToken(t.server.store, { name, role, expires: '1d', knownRoles })
    ).token;
  }
  browser = await launchChromium();
});
afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await t?.close();
  home?.remove();
});

async function signedIn(token: string, hash = ''): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  contexts.push(context);
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      consoleErrors.push(message.text());
    }
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  await page.goto(`${t.url}/${hash}`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
  return page;
}

async function call(
  as: string,
  path: string,
  json?: unknown,
): Promise<{ status: number; body: Json }> {
  const response = await fetch(`${t.url}${path}`, {
    method: json === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${tokens[as]}`,
      ...(json === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(json === undefined ? {} : { body: JSON.stringify(json) }),
  });
  return { status: response.status, body: (await response.json()) as Json };
}

const runStatus = (page: Page, status: string) =>
  page.locator(`.page-head [data-status="${status}"]`).waitFor({ timeout: 60_000 });

describe('approvals inbox under the RBAC policy', () => {
  it('A submits a held run, cannot approve it; B approves it with a comment from the inbox; it runs and succeeds', async () => {
    const alice = await signedIn(tokens.alice as string, '#/actions/noop');
    await alice.locator('#targets').fill('web1');
    await alice.locator('#param-message').fill('four eyes');
    await alice.getByRole('button', { name: 'Run', exact: true }).click();
    await alice.waitForURL(/#\/runs\/[0-9a-f-]+/);
    await runStatus(alice, 'awaiting_approval');
    await alice.getByText('Held for approval').waitFor();
    const id = /#\/runs\/([0-9a-f-]+)/.exec(alice.url())?.[1] as string;
    expect((await call('alice', `/v1/runs/${id}`)).body.status).toBe('awaiting_approval');

    // A holds approve on noop, yet the inbox offers no way to approve its own run.
    await alice.goto(`${t.url}/#/approvals`);
    const own = alice.locator('.card').filter({ has: alice.locator(`a[href="#/runs/${id}"]`) });
    await own.waitFor();
    await own.getByText(/your own request/i).waitFor();
    expect(await own.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    expect(await own.getByRole('button', { name: 'Reject' }).count()).toBe(0);
    // Forced through the API, the server refuses.
    const forced = await call('alice', `/v1/runs/${id}/approve`, { comment: 'me' });
    expect(forced.status).toBe(403);
    expect((forced.body.error as Json).code).toBe('APPROVAL_SELF_FORBIDDEN');

    const lead = await signedIn(tokens.lead as string);
    await lead.getByRole('link', { name: 'Approvals' }).click();
    const card = lead.locator('.card').filter({ has: lead.locator(`a[href="#/runs/${id}"]`) });
    await card.waitFor();
    await card.getByText('0 of 1 approval').waitFor();
    // The inbox (with a card to vote on) and the held run's page pass axe-core too.
    expect(await axeViolations(lead)).toEqual([]);
    expect(await axeViolations(alice)).toEqual([]);
    await card.getByLabel('Comment').fill('looked at it, fine');
    await card.getByRole('button', { name: 'Approve' }).click();
    // The inbox empties once the quorum of one is reached.
    await card.waitFor({ state: 'detached', timeout: 30_000 });

    await alice.goto(`${t.url}/#/runs/${id}`);
    await runStatus(alice, 'succeeded');
    const approval = await call('lead', `/v1/runs/${id}/approval`);
    expect(approval.body).toMatchObject({ state: 'approved', approvals: 1 });
    expect(approval.body.votes).toMatchObject([
      { approver: 'token:lead', decision: 'approve', comment: 'looked at it, fine' },
    ]);
    expect((await call('alice', `/v1/runs/${id}`)).body.status).toBe('succeeded');
    expect(consoleErrors).toEqual([]);
  });

  it('B rejects a held run from the inbox with a comment; the run ends cancelled with APPROVAL_REJECTED', async () => {
    const accepted = await call('alice', '/v1/runs', { action: 'noop', targets: ['web1'] });
    expect(accepted.body.status).toBe('awaiting_approval');
    const id = accepted.body.id as string;
    const lead = await signedIn(tokens.lead as string, '#/approvals');
    const card = lead.locator('.card').filter({ has: lead.locator(`a[href="#/runs/${id}"]`) });
    await card.getByText('0 of 1 approval').waitFor();
    await card.getByLabel('Comment').fill('not during the freeze');
    await card.getByRole('button', { name: 'Reject' }).click();
    await card.waitFor({ state: 'detached', timeout: 30_000 });
    const document = (await call('alice', `/v1/runs/${id}`)).body;
    expect(document.status).toBe('cancelled');
    expect((document.error as Json).code).toBe('APPROVAL_REJECTED');
    expect((await call('lead', `/v1/runs/${id}/approval`)).body.votes).toMatchObject([
      { approver: 'token:lead', decision: 'reject', comment: 'not during the freeze' },
    ]);
    expect(consoleErrors).toEqual([]);
  });

  it('the catalog offers Run only for what the policy lets the principal run', async () => {
    const alice = await signedIn(tokens.alice as string);
    await alice.getByRole('link', { name: 'Run noop' }).waitFor();
    expect(await alice.getByRole('link', { name: 'Run check-disk' }).count()).toBe(0);
    await alice.getByRole('heading', { name: 'check-disk' }).waitFor();
    const lead = await signedIn(tokens.lead as string);
    await lead.getByRole('heading', { name: 'noop' }).waitFor();
    // lead may view and approve noop but not run it.
    await lead
      .locator('.card')
      .filter({ has: lead.getByRole('heading', { name: 'noop', exact: true }) })
      .getByRole('link', { name: 'Details' })
      .waitFor();
    expect(await lead.getByRole('link', { name: /^Run / }).count()).toBe(0);
  });
});
