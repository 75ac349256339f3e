/**
 * The OpenAPI 3.1 document is generated from the route schemas and committed as
 * specs/server-openapi-v1.json; this test fails when the routes and the committed file drift.
 * After changing a route: `RUNE_UPDATE_OPENAPI=1 npx vitest run test/openapi.integration.test.ts`
 * in packages/server, then review the diff.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ERROR_CODES } from '@rune/protocol';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { httpStatusFor } from '../src/index.js';
import { createTestHome, startTestServer, type TestHome, type TestServer } from './harness.js';

const SPEC = new URL('../../../specs/server-openapi-v1.json', import.meta.url);

let home: TestHome;
let t: TestServer;
beforeAll(async () => {
  home = createTestHome();
  t = await startTestServer(home);
});
afterAll(async () => {
  await t?.close();
  home?.remove();
});

it('specs/server-openapi-v1.json is the document the server generates and serves', async () => {
  const served = `${JSON.stringify(await (await t.request('/openapi.json', { token: null })).json(), null, 2)}\n`;
  if (process.env.RUNE_UPDATE_OPENAPI === '1') writeFileSync(SPEC, served);
  expect(existsSync(SPEC), 'run with RUNE_UPDATE_OPENAPI=1 to write it').toBe(true);
  expect(served).toBe(readFileSync(SPEC, 'utf8'));
  const document = JSON.parse(served) as { openapi: string; paths: Record<string, unknown> };
  expect(document.openapi).toBe('3.1.0');
  expect(Object.keys(document.paths).sort()).toEqual(
    [
      '/livez',
      '/metrics',
      '/readyz',
      '/run/{action}',
      '/v1/actions',
      '/v1/actions/{action}',
      '/v1/audit',
      '/v1/audit/verify',
      '/v1/nodes',
      '/v1/runs',
      '/v1/runs/{id}',
      '/v1/runs/{id}/cancel',
      '/v1/runs/{id}/events',
      '/v1/runs/{id}/nodes/{node}',
      '/v1/runs/{id}/nodes/{node}/artifacts/{name}',
      // alert receivers (issue 15)
      '/v1/hooks/alertmanager/{receiver}',
      '/v1/hooks/pagerduty/{receiver}',
      '/v1/hooks/generic/{receiver}',
      '/v1/alerts',
      '/v1/alerts/{id}',
      '/v1/alerts/{id}/release',
      '/v1/runs/{id}/approval',
      '/v1/runs/{id}/approve',
      '/v1/runs/{id}/reject',
      '/v1/tokens',
      '/v1/policy/check',
      '/v1/policy/checks',
      '/v1/session',
      '/v1/session/methods',
      '/v1/workflows/{name}/runs',
      '/v1/workflows/runs',
      '/v1/workflows/runs/{id}',
      '/v1/workflows/runs/{id}/cancel',
      // single sign-on: listed even though this server has no [server] oidc_issuer
      '/v1/auth/oidc/login',
      '/v1/auth/oidc/callback',
    ].sort(),
  );
});

it('without [server] oidc_issuer the single sign-on routes answer 404 NOT_FOUND, not a redirect', async () => {
  for (const path of ['/v1/auth/oidc/login', '/v1/auth/oidc/callback?code=x&state=y']) {
    const response = await t.request(path, { token: null, redirect: 'manual' });
    expect(response.status, path).toBe(404);
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toContain('single sign-on is not configured');
  }
});

it('every EPS code has an HTTP status in the documented range', () => {
  for (const code of ERROR_CODES) {
    expect([400, 401, 403, 404, 409, 413, 415, 429, 500, 502, 503, 504]).toContain(
      httpStatusFor(code),
    );
  }
});
