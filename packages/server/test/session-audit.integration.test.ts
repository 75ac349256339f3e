/**
 * The audit trail of dashboard sessions and the batched permission check, over real HTTP against
 * a real server: a token sign-in, a sign-out and each way a session expires (idle, absolute
 * lifetime, its token revoked, noticed by a request or by the pruning) become `event: "session"`
 * records naming who, how and the session by the sha256 of its secret — never the secret or the
 * token — each end recorded once, and the hash chain still verifies. `POST /v1/policy/checks`
 * answers many questions in order and refuses a batch above its bound.
 */
import { readFileSync } from 'node:fs';
import { loadConfig } from '@rune/core';
import { sha256Hex } from '@rune/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, revokeToken, serverConfigModule } from '../src/index.js';
import { MAX_POLICY_CHECKS } from '../src/policy/routes-checks.js';
import { createServerLauncher } from '../src/runs/launcher.js';
import { createSession, pruneSessions } from '../src/sessions/sessions.js';
import {
  type SessionServer,
  startSessionServer,
  type TokenSession,
  tokenSecret,
  tokenSignIn,
} from './harness.js';

type Json = Record<string, unknown>;
let t: SessionServer;
beforeAll(async () => {
  t = await startSessionServer({ serverToml: 'rate_limit = 1000\n' });
});
afterAll(async () => {
  await t?.close();
});

const signIn = (token: string): Promise<TokenSession> => tokenSignIn(t, token);

/** The session records of the server's audit trail (through the API, as the dashboard reads it). */
async function sessionRecords(): Promise<Json[]> {
  const response = await t.request('/v1/audit?limit=1000');
  const { records } = (await response.json()) as { records: Json[] };
  return records.filter((record) => record.event === 'session');
}

const ofSession = (records: Json[], secret: string) =>
  records.filter(
    (record) => (record.metadata as Json | undefined)?.session_sha256 === sha256Hex(secret),
  );

async function verified(): Promise<Json> {
  return (await (await t.request('/v1/audit/verify')).json()) as Json;
}

describe('session audit', () => {
  it('a token sign-in and a sign-out are recorded: who, how, the session hash, never a secret', async () => {
    const session = await signIn(t.operator);
    const out = await t.request('/v1/session', {
      token: null,
      method: 'DELETE',
      headers: { cookie: session.cookie, origin: t.url, 'x-csrf-token': session.csrf },
    });
    expect(out.status).toBe(204);
    const records = ofSession(await sessionRecords(), session.secret);
    expect(records.map((record) => record.status)).toEqual(['signed_in', 'signed_out']);
    expect(records[0]).toMatchObject({
      operator: 'token:ops',
      metadata: {
        method: 'token',
        roles: 'operator',
        remote_address: '127.0.0.1',
        session_sha256: sha256Hex(session.secret),
      },
    });
    expect(records[1]).toMatchObject({
      operator: 'token:ops',
      metadata: { method: 'token', reason: 'signed_out' },
    });
    expect(typeof records[1]?.duration_ms).toBe('number');
    // Neither the session secret, its CSRF token nor the API token's secret is in the log.
    const log = readFileSync(t.home.auditLog, 'utf8');
    expect(log).not.toContain(session.secret);
    expect(log).not.toContain(session.csrf);
    expect(log).not.toContain(tokenSecret(t.operator));
    expect(await verified()).toMatchObject({ ok: true });
  });

  it('an idle, an outlived and a revoked-token session are each recorded once when presented', async () => {
    const db = t.server.store.db;
    const principal = { name: 'token:ops', tokenId: 'none', role: 'operator' as const };
    const cookie = { name: 'rune_session', secure: false, idleMs: 60_000, maxMs: 3_600_000 };
    const secretOf = (created: { setCookie: string }) =>
      (created.setCookie.split(';')[0] as string).split('=')[1] as string;
    // Opened two minutes ago, idle for one: expired by idleness, not by its lifetime.
    const idle = secretOf(
      await createSession(db, principal, { cookie, now: new Date(Date.now() - 120_000) }),
    );
    // Opened two hours ago with a one-hour lifetime.
    const outlived = secretOf(
      await createSession(db, principal, {
        cookie: { ...cookie, idleMs: 86_400_000 },
        now: new Date(Date.now() - 7_200_000),
      }),
    );
    const short = await createToken(t.server.store, {
      name: 'short',
      role: 'viewer',
      expires: '1d',
    });
    const revoked = await signIn(short.token);
    await revokeToken(t.server.store, 'short');

    for (const [secret, code] of [
      [idle, 'AUTH_SESSION_EXPIRED'],
      [outlived, 'AUTH_SESSION_EXPIRED'],
      [revoked.secret, 'AUTH_SESSION_INVALID'],
    ] as const) {
      // Presented three times: refused each time, recorded once.
      for (let attempt = 0; attempt < 3; attempt++) {
        const response = await t.request('/v1/actions', {
          token: null,
          headers: { cookie: `rune_session=${secret}` },
        });
        expect(response.status).toBe(401);
        expect(((await response.json()) as { error: Json }).error.code).toBe(code);
      }
    }
    const records = await sessionRecords();
    const ends = (secret: string) =>
      ofSession(records, secret)
        .filter((record) => record.status === 'expired')
        .map((record) => (record.metadata as Json).reason);
    expect(ends(idle)).toEqual(['idle']);
    expect(ends(outlived)).toEqual(['lifetime']);
    expect(ends(revoked.secret)).toEqual(['token_revoked']);
    expect(ofSession(records, revoked.secret)[0]).toMatchObject({
      status: 'signed_in',
      operator: 'token:short',
      metadata: { method: 'token', roles: 'viewer' },
    });
    expect(await verified()).toMatchObject({ ok: true });
  });

  it('a session nobody presents again is recorded as expired by the pruning, once', async () => {
    const db = t.server.store.db;
    const principal = { name: 'token:ops', tokenId: 'none', role: 'operator' as const };
    const cookie = { name: 'rune_session', secure: false, idleMs: 60_000, maxMs: 600_000 };
    const created = await createSession(db, principal, {
      cookie,
      now: new Date(Date.now() - 3_600_000),
    });
    // The server's own pruning runs hourly; a second launcher on the same config and audit log
    // (the file sink locks and chains across writers) runs it now.
    const launcher = createServerLauncher({
      config: loadConfig({
        env: t.home.env,
        configFile: t.home.configFile,
        configModules: [serverConfigModule],
      }),
      env: t.home.env,
    });
    try {
      await pruneSessions(db, new Date(), launcher);
      await pruneSessions(db, new Date(), launcher);
    } finally {
      await launcher.close();
    }
    const records = (await sessionRecords()).filter(
      (record) => (record.metadata as Json).session_sha256 === created.idHash,
    );
    expect(records.map((record) => [record.status, (record.metadata as Json).reason])).toEqual([
      ['expired', 'idle'],
    ]);
    const left = await db
      .selectFrom('session_ends')
      .select('id_sha256')
      .where('id_sha256', '=', created.idHash)
      .execute();
    expect(left).toEqual([]);
    expect(await verified()).toMatchObject({ ok: true });
  });
});

describe('POST /v1/policy/checks', () => {
  it('answers every question in order, for the caller', async () => {
    const checks = [
      { verb: 'view', action: 'noop' },
      { verb: 'run', action: 'noop' },
      { verb: 'admin' },
    ];
    const asViewer = await t.request('/v1/policy/checks', { token: t.viewer, json: { checks } });
    expect(asViewer.status).toBe(200);
    const { decisions } = (await asViewer.json()) as { decisions: Json[] };
    expect(decisions.map((decision) => [decision.verb, decision.action, decision.allowed])).toEqual(
      [
        ['view', 'noop', true],
        ['run', 'noop', false],
        ['admin', null, false],
      ],
    );
    const asOperator = (await (
      await t.request('/v1/policy/checks', { json: { checks } })
    ).json()) as { decisions: Json[] };
    expect(asOperator.decisions.map((decision) => decision.allowed)).toEqual([true, true, false]);
  });

  it(`refuses more than ${MAX_POLICY_CHECKS} questions whole (INVALID_ARGUMENT)`, async () => {
    const question = { verb: 'view', action: 'noop' };
    const full = await t.request('/v1/policy/checks', {
      json: { checks: Array.from({ length: MAX_POLICY_CHECKS }, () => question) },
    });
    expect(full.status).toBe(200);
    expect(((await full.json()) as { decisions: Json[] }).decisions).toHaveLength(
      MAX_POLICY_CHECKS,
    );
    const over = await t.request('/v1/policy/checks', {
      json: { checks: Array.from({ length: MAX_POLICY_CHECKS + 1 }, () => question) },
    });
    expect(over.status).toBe(400);
    const error = ((await over.json()) as { error: Json }).error;
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/checks/);
    const empty = await t.request('/v1/policy/checks', { json: { checks: [] } });
    expect(empty.status).toBe(400);
  });
});
