/**
 * Browser sessions over real HTTP against a real server: one test per promise of
 * src/sessions/sessions.ts (cookie attributes, hashed storage, CSRF and Origin checks on
 * state-changing requests, sign-out, idle and absolute expiry, the token's revocation, roles).
 */
import { readFileSync } from 'node:fs';
import { sha256Hex } from '@rune/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerSettings } from '../src/config/server-config.js';
import { revokeToken } from '../src/index.js';
import {
  authenticateSession,
  createSession,
  pruneSessions,
  SESSION_COOKIE_NAME_TLS,
  sessionCookieSettings,
} from '../src/sessions/sessions.js';
import {
  type SessionServer,
  startSessionServer,
  type TokenSession,
  tokenSecret,
  tokenSignIn,
} from './harness.js';

let t: SessionServer;
beforeAll(async () => {
  t = await startSessionServer({ serverToml: 'rate_limit = 1000\n' });
});
afterAll(async () => {
  await t?.close();
});

type Json = Record<string, unknown>;
const signIn = (token: string): Promise<TokenSession> => tokenSignIn(t, token);

const codeOf = async (response: Response): Promise<[number, unknown]> => [
  response.status,
  ((await response.json()) as { error?: Json }).error?.code,
];

const noopRun = { action: 'noop', targets: ['localhost'], options: { dry_run: true } };

describe('sign-in', () => {
  it('trades a token for an HttpOnly, SameSite=Strict cookie (not Secure on plain loopback)', async () => {
    const session = await signIn(t.operator);
    const attributes = session.setCookie.split(';').map((part) => part.trim());
    expect(session.cookie).toMatch(/^rune_session=[A-Za-z0-9_-]{43}$/);
    expect(attributes).toEqual(
      expect.arrayContaining(['HttpOnly', 'SameSite=Strict', 'Path=/', 'Max-Age=43200']),
    );
    expect(attributes).not.toContain('Secure');
    expect(session.secret).not.toContain(tokenSecret(t.operator));
    expect(session.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('over TLS the cookie is __Host- and Secure', () => {
    const settings = {
      tls: { cert: Buffer.alloc(0), key: Buffer.alloc(0) },
      behindTlsProxy: false,
    };
    const cookie = sessionCookieSettings({ ...t.server.settings, ...settings } as ServerSettings);
    expect(cookie).toMatchObject({ name: SESSION_COOKIE_NAME_TLS, secure: true });
    const proxied = sessionCookieSettings({ ...t.server.settings, behindTlsProxy: true });
    expect(proxied).toMatchObject({ name: SESSION_COOKIE_NAME_TLS, secure: true });
  });

  it('stores only a hash of the secret', async () => {
    const session = await signIn(t.operator);
    const rows = await t.server.store.db.selectFrom('browser_sessions').selectAll().execute();
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.some((row) => row.id_sha256 === session.secret)).toBe(false);
    for (const file of [t.home.storePath, `${t.home.storePath}-wal`]) {
      let bytes = '';
      try {
        bytes = readFileSync(file, 'latin1');
      } catch {
        continue;
      }
      expect(bytes.includes(session.secret)).toBe(false);
    }
  });

  it('refuses a bad token (401) and a sign-in from another origin (403)', async () => {
    const bad = await t.request('/v1/session', { token: null, json: { token: 'rune_nope' } });
    expect(await codeOf(bad)).toEqual([401, 'AUTH_TOKEN_INVALID']);
    const foreign = await t.request('/v1/session', {
      token: null,
      json: { token: t.operator },
      headers: { origin: 'https://evil.example' },
    });
    expect(await codeOf(foreign)).toEqual([403, 'CSRF_REJECTED']);
  });

  it('lists the sign-in methods without a credential', async () => {
    const response = await t.request('/v1/session/methods', { token: null });
    expect(await response.json()).toEqual({
      methods: [{ id: 'token', label: 'API token', url: null }],
    });
  });
});

describe('requests with the cookie', () => {
  it('authenticate reads as the principal of the token', async () => {
    const session = await signIn(t.viewer);
    const response = await t.request('/v1/session', {
      token: null,
      headers: { cookie: session.cookie },
    });
    expect(await response.json()).toMatchObject({
      principal: 'token:dash',
      role: 'viewer',
      csrf_token: session.csrf,
    });
    const actions = await t.request('/v1/actions', {
      token: null,
      headers: { cookie: session.cookie },
    });
    expect(actions.status).toBe(200);
    const none = await t.request('/v1/actions', { token: null });
    expect(await codeOf(none)).toEqual([401, 'AUTH_TOKEN_MISSING']);
  });

  it('an unknown or malformed cookie is 401 AUTH_SESSION_INVALID', async () => {
    for (const value of ['x'.repeat(43), 'short', "'; drop table runs; --"]) {
      const response = await t.request('/v1/actions', {
        token: null,
        headers: { cookie: `rune_session=${value}` },
      });
      expect(await codeOf(response)).toEqual([401, 'AUTH_SESSION_INVALID']);
    }
  });

  it('a state-changing request needs the CSRF token and the server origin', async () => {
    const session = await signIn(t.operator);
    const origin = t.url;
    const attempts: Array<[string, Record<string, string>]> = [
      ['no csrf token', { origin }],
      ['a wrong csrf token', { origin, 'x-csrf-token': 'A'.repeat(43) }],
      ['another session', { origin, 'x-csrf-token': (await signIn(t.operator)).csrf }],
      ['a foreign origin', { origin: 'http://127.0.0.2:1', 'x-csrf-token': session.csrf }],
      ['no origin', { 'x-csrf-token': session.csrf }],
    ];
    for (const [label, headers] of attempts) {
      const response = await t.request('/v1/runs', {
        token: null,
        json: noopRun,
        headers: { cookie: session.cookie, ...headers },
      });
      expect([label, ...(await codeOf(response))]).toEqual([label, 403, 'CSRF_REJECTED']);
    }
    const ok = await t.request('/v1/runs', {
      token: null,
      json: noopRun,
      headers: { cookie: session.cookie, origin, 'x-csrf-token': session.csrf },
    });
    expect(ok.status).toBe(202);
    expect(((await ok.json()) as Json).id).toBeTypeOf('string');
  });

  it('a bearer request needs no CSRF token, and a bearer header wins over a cookie', async () => {
    const viewer = await signIn(t.viewer);
    const response = await t.request('/v1/runs', {
      json: noopRun,
      headers: { cookie: viewer.cookie, origin: 'https://evil.example' },
    });
    expect(response.status).toBe(202);
  });

  it('a viewer session may not run (403 ROLE_FORBIDDEN)', async () => {
    const session = await signIn(t.viewer);
    const response = await t.request('/v1/runs', {
      token: null,
      json: noopRun,
      headers: { cookie: session.cookie, origin: t.url, 'x-csrf-token': session.csrf },
    });
    expect(await codeOf(response)).toEqual([403, 'ROLE_FORBIDDEN']);
  });
});

describe('the end of a session', () => {
  it('DELETE /v1/session (with CSRF) revokes it and clears the cookie', async () => {
    const session = await signIn(t.operator);
    const headers = { cookie: session.cookie, origin: t.url };
    const refused = await t.request('/v1/session', { token: null, method: 'DELETE', headers });
    expect(await codeOf(refused)).toEqual([403, 'CSRF_REJECTED']);
    const out = await t.request('/v1/session', {
      token: null,
      method: 'DELETE',
      headers: { ...headers, 'x-csrf-token': session.csrf },
    });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/^rune_session=; .*Max-Age=0/);
    const after = await t.request('/v1/actions', { token: null, headers });
    expect(await codeOf(after)).toEqual([401, 'AUTH_SESSION_INVALID']);
  });

  it('revoking the token ends its sessions', async () => {
    const { createToken } = await import('../src/index.js');
    const created = await createToken(t.server.store, {
      name: 'short',
      role: 'viewer',
      expires: '1d',
    });
    const session = await signIn(created.token);
    const headers = { cookie: session.cookie };
    expect((await t.request('/v1/actions', { token: null, headers })).status).toBe(200);
    await revokeToken(t.server.store, 'short');
    const after = await t.request('/v1/actions', { token: null, headers });
    expect(await codeOf(after)).toEqual([401, 'AUTH_SESSION_INVALID']);
  });

  it('idle and absolute lifetimes end a session', async () => {
    const db = t.server.store.db;
    const cookie = { name: 'rune_session', secure: false, idleMs: 60_000, maxMs: 300_000 };
    const t0 = Date.parse('2026-12-01T10:00:00.000Z');
    const at = (ms: number) => new Date(t0 + ms);
    const principal = { name: 'token:ops', tokenId: 'none', role: 'operator' as const };
    const secretOf = (setCookie: string) =>
      (setCookie.split(';')[0] as string).split('=')[1] as string;

    const idle = secretOf((await createSession(db, principal, { cookie, now: at(0) })).setCookie);
    await expect(authenticateSession(db, idle, at(59_000))).resolves.toMatchObject({ principal });
    await expect(authenticateSession(db, idle, at(59_000 + 60_000))).rejects.toMatchObject({
      code: 'AUTH_SESSION_EXPIRED',
    });

    const busy = secretOf((await createSession(db, principal, { cookie, now: at(0) })).setCookie);
    // A request every 50 s keeps it alive up to the absolute lifetime, not beyond.
    for (let ms = 50_000; ms < 300_000; ms += 50_000) {
      await expect(authenticateSession(db, busy, at(ms))).resolves.toMatchObject({ principal });
    }
    await expect(authenticateSession(db, busy, at(300_000))).rejects.toMatchObject({
      code: 'AUTH_SESSION_EXPIRED',
    });
    // Ended sessions are deleted by the hourly pruning; live ones stay.
    const live = secretOf(
      (await createSession(db, principal, { cookie, now: at(250_000) })).setCookie,
    );
    expect(await pruneSessions(db, at(300_001))).toBeGreaterThanOrEqual(2);
    const left = new Set(
      (await db.selectFrom('browser_sessions').select('id_sha256').execute()).map(
        (row) => row.id_sha256,
      ),
    );
    expect([idle, busy, live].map((secret) => left.has(sha256Hex(secret)))).toEqual([
      false,
      false,
      true,
    ]);
  });
});
