/**
 * HTTP hygiene that depends on configuration: the listener rules (loopback by default; TLS or an
 * explicit TLS proxy otherwise), HTTPS from config, CORS for allow-listed origins only, and the
 * per-token rate limit. Real servers on 127.0.0.1.
 */
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '@rune/core';
import { RuneError } from '@rune/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createRuneServer,
  createToken,
  resolveServerSettings,
  serverConfigModule,
} from '../src/index.js';
import { createTestHome, startTestServer, type TestHome, type TestServer } from './harness.js';

const configModules = [serverConfigModule];

const homes: TestHome[] = [];
const servers: TestServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
  for (const home of homes.splice(0)) home.remove();
});

function home(extra: string): TestHome {
  const created = createTestHome(extra);
  homes.push(created);
  return created;
}

function settingsError(extra: string): RuneError {
  const test = home(extra);
  try {
    resolveServerSettings(
      loadConfig({ env: test.env, configFile: test.configFile, configModules }),
    );
  } catch (error) {
    if (RuneError.is(error)) return error;
    throw error;
  }
  throw new Error('expected INVALID_CONFIG');
}

describe('listener rules', () => {
  it('refuses a non-loopback listener without TLS, and a TLS proxy without trusted proxies', () => {
    // The section's own keys override the harness's listen: a later key in TOML is an error, so
    // these configs use a second [server] file through RUNE_SERVER_LISTEN.
    const open = home('');
    const refused = (() => {
      try {
        resolveServerSettings(
          loadConfig({
            env: { ...open.env, RUNE_SERVER_LISTEN: '0.0.0.0:8421' },
            configFile: open.configFile,
            configModules,
          }),
        );
      } catch (error) {
        return RuneError.from(error);
      }
      return undefined;
    })();
    expect(refused?.code).toBe('INVALID_CONFIG');
    expect(refused?.message).toMatch(/without TLS/);
    expect(settingsError('behind_tls_proxy = true\n').details).toMatchObject({
      key: 'server.trusted_proxies',
    });
    expect(settingsError('tls_cert_file = "/nonexistent/cert.pem"\n').details).toMatchObject({
      key: 'server.tls_key_file',
    });
    expect(settingsError('retention = "forever"\n').details).toMatchObject({
      key: 'server.retention',
    });
  });

  it('accepts a non-loopback listener behind a declared TLS proxy', () => {
    const proxied = home('behind_tls_proxy = true\ntrusted_proxies = ["127.0.0.1"]\n');
    const settings = resolveServerSettings(
      loadConfig({
        env: { ...proxied.env, RUNE_SERVER_LISTEN: '0.0.0.0:8421' },
        configFile: proxied.configFile,
        configModules,
      }),
    );
    expect(settings).toMatchObject({
      host: '0.0.0.0',
      behindTlsProxy: true,
      trustedProxies: ['127.0.0.1'],
    });
  });

  it('speaks HTTPS with the configured certificate', async () => {
    const test = home('');
    const cert = join(test.dir, 'cert.pem');
    const key = join(test.dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const server = await createRuneServer({
      configFile: test.configFile,
      env: { ...test.env, RUNE_SERVER_TLS_CERT_FILE: cert, RUNE_SERVER_TLS_KEY_FILE: key },
      port: 0,
    });
    try {
      const url = await server.listen();
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      // Asynchronously: the server answers from this very process.
      const { stdout } = await promisify(execFile)('curl', [
        '-sS',
        '--cacert',
        cert,
        `${url}/livez`,
      ]);
      expect(JSON.parse(stdout)).toEqual({ status: 'live' });
    } finally {
      await server.close();
    }
  });

  it('refuses a second server on the same store', async () => {
    const test = home('');
    const first = await startTestServer(test);
    servers.push(first);
    await expect(
      createRuneServer({ configFile: test.configFile, env: test.env, port: 0 }),
    ).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
  });
});

describe('CORS and rate limits', () => {
  it('answers CORS only for an allow-listed origin', async () => {
    const test = await startTestServer(home('cors_origins = ["https://grafana.example.net"]\n'));
    servers.push(test);
    const allowed = await test.request('/v1/runs', {
      headers: { origin: 'https://grafana.example.net' },
    });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://grafana.example.net');
    const other = await test.request('/v1/runs', { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('limits requests per token: 429 RATE_LIMITED with Retry-After; another token is unaffected', async () => {
    const test = await startTestServer(home('rate_limit = 3\n'));
    servers.push(test);
    const statuses: number[] = [];
    for (let index = 0; index < 4; index++) statuses.push((await test.request('/v1/runs')).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limited = await test.request('/v1/runs');
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
    const other = await createToken(test.server.store, {
      name: 'other',
      role: 'viewer',
      expires: '1h',
    });
    expect((await test.request('/v1/runs', { token: other.token })).status).toBe(200);
    // Probes are never limited.
    expect((await test.request('/livez', { token: null })).status).toBe(200);
  });
});
