/**
 * Single sign-on against a real OIDC provider (the certified `oidc-provider` package) started on
 * 127.0.0.1 by the test, and a real `rune serve`: authorization code + PKCE, the ID token
 * verified, the groups claim mapped to policy subjects, a session cookie opened through the
 * dashboard's session module, and the policy deciding for the signed-in user (view allowed, a
 * run outside the group's grant refused, CSRF required for a state-changing request). Bad
 * inputs: a forged or replayed state, a user the policy grants nothing, an expired session.
 */

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SessionServer, startSessionServer, type TestHome } from './harness.js';

type Json = Record<string, unknown>;

const ACCOUNTS: Record<string, { email: string; groups: string[] }> = {
  alice: { email: 'alice@example.com', groups: ['soc-analysts'] },
  mallory: { email: 'mallory@example.com', groups: ['strangers'] },
};

let t: SessionServer;
let home: TestHome;
let url = '';
let nextAccount = 'alice';

/** A minimal cookie jar per host:port, for a scripted browser. */
class Jar {
  readonly cookies = new Map<string, Map<string, string>>();
  store(target: URL, response: Response): void {
    const jar = this.cookies.get(target.host) ?? new Map<string, string>();
    for (const header of response.headers.getSetCookie()) {
      const [pair] = header.split(';');
      const index = (pair ?? '').indexOf('=');
      const name = (pair ?? '').slice(0, index).trim();
      const value = (pair ?? '').slice(index + 1).trim();
      if (value === '' || /max-age=0/i.test(header)) jar.delete(name);
      else jar.set(name, value);
    }
    this.cookies.set(target.host, jar);
  }
  header(target: URL): string {
    return [...(this.cookies.get(target.host) ?? new Map()).entries()]
      .map(([name, value]) => `${name}=${value}`)
      .join('; ');
  }
}

/**
 * Follows redirects by hand (cookies per host) until a response that is not a redirect. A
 * redirect off loopback is not followed (the test sends nothing anywhere else): it ends there,
 * with status 0.
 */
async function browse(start: string, jar: Jar): Promise<{ response: Response; url: URL }> {
  let target = new URL(start);
  for (let hop = 0; hop < 20; hop++) {
    if (target.protocol !== 'http:' || !['127.0.0.1', 'localhost'].includes(target.hostname))
      return { response: Response.error(), url: target };
    const response = await fetch(target, {
      redirect: 'manual',
      headers: { cookie: jar.header(target) },
    });
    jar.store(target, response);
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || location === null)
      return { response, url: target };
    await response.body?.cancel();
    target = new URL(location, target);
  }
  throw new Error('too many redirects');
}

const policy = `version: rune-policy/v1
roles:
  soc-analyst:
    rules:
      - id: soc-view
        verbs: [view]
        actions: ['*']
        nodes: ['*']
      - id: soc-diagnostics
        verbs: [dry-run, run]
        actions: [check-disk]
        nodes: [localhost]
bindings:
  - subjects: [group:soc-analysts]
    roles: [soc-analyst]
`;

beforeAll(async () => {
  t = await startSessionServer({
    policy,
    serverToml: 'session_idle = "3s"\n',
    oidc: {
      accounts: ACCOUNTS,
      // The test's own login/consent step finishes the interaction for `nextAccount`.
      async interaction(provider, req, res) {
        const details = await provider.interactionDetails(req, res);
        const grant = new provider.Grant({
          accountId: nextAccount,
          clientId: details.params.client_id as string,
        });
        grant.addOIDCScope('openid email profile groups');
        const grantId = await grant.save();
        await provider.interactionFinished(
          req,
          res,
          { login: { accountId: nextAccount }, consent: { grantId } },
          { mergeWithLastSubmission: false },
        );
      },
    },
  });
  url = t.url;
  home = t.home;
});
afterAll(async () => {
  await t?.close();
});

async function signIn(
  account: string,
  returnTo?: string,
): Promise<{ jar: Jar; landed: { response: Response; url: URL } }> {
  nextAccount = account;
  const jar = new Jar();
  const query = returnTo === undefined ? '' : `?return_to=${encodeURIComponent(returnTo)}`;
  const landed = await browse(`${url}/v1/auth/oidc/login${query}`, jar);
  return { jar, landed };
}

describe('single sign-on', () => {
  it('signs alice in with code + PKCE; her groups claim maps to the policy; the policy decides', async () => {
    const methods = (await (await fetch(`${url}/v1/session/methods`)).json()) as {
      methods: Json[];
    };
    expect(methods.methods.map((method) => method.id)).toContain('oidc');
    const { jar, landed } = await signIn('alice');
    // The callback redirected to the dashboard (`/`), which this server does not serve: 404.
    expect(landed.url.pathname).toBe('/');
    const cookieHeader = jar.header(new URL(url));
    expect(cookieHeader).toMatch(/rune_session=/);
    const session = (await (
      await fetch(`${url}/v1/session`, { headers: { cookie: cookieHeader } })
    ).json()) as Json;
    expect(session).toMatchObject({ principal: 'user:alice@example.com', role: 'soc-analyst' });
    const csrf = session.csrf_token as string;
    // A run inside the group's grant, with the CSRF token: accepted, recorded under the user.
    const allowed = await fetch(`${url}/v1/runs`, {
      method: 'POST',
      headers: {
        cookie: cookieHeader,
        'content-type': 'application/json',
        'x-csrf-token': csrf,
        origin: url,
      },
      body: JSON.stringify({
        action: 'check-disk',
        targets: ['localhost'],
        options: { dry_run: true },
      }),
    });
    expect(allowed.status).toBe(202);
    // Outside it: POLICY_DENIED.
    const denied = await fetch(`${url}/v1/runs`, {
      method: 'POST',
      headers: {
        cookie: cookieHeader,
        'content-type': 'application/json',
        'x-csrf-token': csrf,
        origin: url,
      },
      body: JSON.stringify({ action: 'noop', targets: ['localhost'], options: { dry_run: true } }),
    });
    expect(denied.status).toBe(403);
    expect(((await denied.json()) as { error: Json }).error.code).toBe('POLICY_DENIED');
    // Without the CSRF token: refused.
    const forged = await fetch(`${url}/v1/runs`, {
      method: 'POST',
      headers: { cookie: cookieHeader, 'content-type': 'application/json', origin: url },
      body: JSON.stringify({
        action: 'check-disk',
        targets: ['localhost'],
        options: { dry_run: true },
      }),
    });
    expect(forged.status).toBe(403);
    expect(((await forged.json()) as { error: Json }).error.code).toBe('CSRF_REJECTED');
    const audit = readFileSync(home.auditLog, 'utf8');
    expect(audit).toMatch(/"operator":"user:alice@example.com"/);
    // The sign-in itself is a session record: how, the groups that decided, the session's hash.
    const signIns = audit
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json)
      .filter((record) => record.event === 'session' && record.status === 'signed_in');
    expect(signIns.at(-1)).toMatchObject({
      operator: 'user:alice@example.com',
      metadata: {
        method: 'oidc',
        roles: 'soc-analyst',
        subjects: expect.arrayContaining(['group:soc-analysts']),
        session_sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      },
    });
    expect(audit).not.toContain(cookieHeader.split('=')[1] as string);
  });

  it('returns the user to the page they asked for; a return_to off this server is ignored', async () => {
    const page = '/#/history?status=failed&source=api';
    const back = await signIn('alice', page);
    expect(`${back.landed.url.pathname}${back.landed.url.search}${back.landed.url.hash}`).toBe(
      page,
    );
    expect(back.jar.header(new URL(url))).toMatch(/rune_session=/);
    const foreign = [
      'https://evil.example/#/runs/x',
      '//evil.example/',
      '/\\evil.example/',
      '/\t/evil.example/',
      'javascript:alert(1)',
      'evil.example/',
      `${url}/#/audit`,
      '/v1/auth/oidc/login',
    ];
    for (const returnTo of foreign) {
      const { landed, jar } = await signIn('alice', returnTo);
      expect({ returnTo, landed: landed.url.href }).toEqual({ returnTo, landed: `${url}/` });
      expect(jar.header(new URL(url))).toMatch(/rune_session=/);
    }
  });

  it('refuses a user the policy grants nothing', async () => {
    const { landed } = await signIn('mallory');
    expect(landed.response.status).toBe(401);
    expect(((await landed.response.json()) as { error: Json }).error.code).toBe(
      'OIDC_LOGIN_FAILED',
    );
    const refused = readFileSync(home.auditLog, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json)
      .filter((record) => record.event === 'session' && record.status === 'refused');
    expect(refused.at(-1)).toMatchObject({
      operator: 'user:mallory@example.com',
      error_code: 'OIDC_LOGIN_FAILED',
      metadata: { method: 'oidc', subjects: expect.arrayContaining(['group:strangers']) },
    });
  });

  it('a browser navigation that fails lands on the sign-in page with the code, not JSON', async () => {
    const forged = await fetch(`${url}/v1/auth/oidc/callback?code=x&state=forged`, {
      headers: { cookie: 'rune_oidc_state=forged', accept: 'text/html,*/*;q=0.8' },
      redirect: 'manual',
    });
    expect(forged.status).toBe(303);
    // Only the code travels; the words are the dashboard's.
    expect(forged.headers.get('location')).toBe('/#/?sign_in_error=OIDC_LOGIN_FAILED');
  });

  it('refuses a forged, foreign or replayed state', async () => {
    const forged = await fetch(`${url}/v1/auth/oidc/callback?code=x&state=forged`, {
      headers: { cookie: 'rune_oidc_state=forged' },
    });
    expect(forged.status).toBe(401);
    expect(((await forged.json()) as { error: Json }).error.code).toBe('OIDC_LOGIN_FAILED');
    // Start a real sign-in, stop at the callback, and present its state without the browser's cookie.
    nextAccount = 'alice';
    const jar = new Jar();
    let target = new URL(`${url}/v1/auth/oidc/login`);
    let callback: URL | undefined;
    for (let hop = 0; hop < 20 && callback === undefined; hop++) {
      const response = await fetch(target, {
        redirect: 'manual',
        headers: { cookie: jar.header(target) },
      });
      jar.store(target, response);
      await response.body?.cancel();
      target = new URL(response.headers.get('location') as string, target);
      if (target.pathname === '/v1/auth/oidc/callback') callback = target;
    }
    expect(callback).toBeDefined();
    const foreign = await fetch(callback as URL, { redirect: 'manual' });
    expect(foreign.status).toBe(401);
    expect(((await foreign.json()) as { error: Json }).error.code).toBe('OIDC_LOGIN_FAILED');
    // The state was single use: the right browser cannot use it after that either.
    const replay = await fetch(callback as URL, {
      redirect: 'manual',
      headers: { cookie: jar.header(callback as URL) },
    });
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { error: Json }).error.code).toBe('OIDC_LOGIN_FAILED');
  });

  it('an idle session expires', async () => {
    const { jar } = await signIn('alice');
    const cookieHeader = jar.header(new URL(url));
    expect((await fetch(`${url}/v1/session`, { headers: { cookie: cookieHeader } })).status).toBe(
      200,
    );
    // session_idle = 3s: wait past the idle deadline (a deadline, not a readiness wait).
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    const expired = await fetch(`${url}/v1/session`, { headers: { cookie: cookieHeader } });
    expect(expired.status).toBe(401);
    expect(((await expired.json()) as { error: Json }).error.code).toBe('AUTH_SESSION_EXPIRED');
  });
});
