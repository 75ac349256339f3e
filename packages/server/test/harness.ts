/**
 * Test harness: a real `createRuneServer()` listening on 127.0.0.1 (a free port) with its own
 * XDG directories, config file, audit log and store, the built-in plugins plus the fixtures of
 * test/fixtures/plugins, and optionally the SSH transport against a real sshd fleet. Requests
 * go over real HTTP (`fetch`).
 */
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TransportProvider } from '@rune/core';
import { createSshTransport } from '@rune/transport-ssh';
import type { SshdFleet } from '@rune/transport-ssh/testing';
import {
  createRuneServer,
  createToken,
  type RuneServer,
  type RuneServerOptions,
} from '../src/index.js';

export const FIXTURE_PLUGINS = realpathSync(
  new URL('./fixtures/plugins', import.meta.url).pathname,
);

/** A temporary RUNE home: env with XDG dirs, a config file, and cleanup. */
export interface TestHome {
  dir: string;
  env: Record<string, string>;
  configFile: string;
  auditLog: string;
  storePath: string;
  remove(): void;
}

/** Creates a home whose config has `[server]`, `[core]` and `[plugins]` set for tests. */
export function createTestHome(extraToml = '', options: { inventory?: string } = {}): TestHome {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'rune-server-test-')));
  const env: Record<string, string> = {
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_STATE_HOME: join(dir, 'state'),
    XDG_DATA_HOME: join(dir, 'data'),
    XDG_CACHE_HOME: join(dir, 'cache'),
    PATH: process.env.PATH ?? '/usr/bin:/bin',
  };
  const auditLog = join(dir, 'audit.jsonl');
  const storePath = join(dir, 'server.sqlite');
  const inventory =
    options.inventory === undefined ? '' : `inventory = ${JSON.stringify(options.inventory)}\n`;
  const configFile = join(dir, 'rune.toml');
  writeFileSync(
    configFile,
    `[core]\naudit_log = ${JSON.stringify(auditLog)}\nartifact_dir = ${JSON.stringify(join(dir, 'artifacts'))}\n${inventory}\n[plugins]\nplugin_dir = ${JSON.stringify(FIXTURE_PLUGINS)}\n\n[server]\nlisten = "127.0.0.1:0"\nstore = ${JSON.stringify(storePath)}\nshutdown_grace = "5s"\n${extraToml}`,
  );
  return {
    dir,
    env,
    configFile,
    auditLog,
    storePath,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The SSH transport against a test fleet (strict host keys, the fleet's known_hosts). */
export function sshProvider(fleet: SshdFleet): TransportProvider {
  return () =>
    createSshTransport({
      identityFiles: [fleet.clientKey.privateKeyFile],
      knownHostsFiles: [fleet.knownHostsFile],
      runeKnownHostsFile: join(fleet.hosts[0]?.dir ?? tmpdir(), 'rune_known_hosts'),
      remoteCacheDir: fleet.hosts[0]?.remoteCacheDir,
      useSshConfig: false,
      useAgent: false,
    });
}

/** An inventory file naming every fleet host `nodeN`. */
export function fleetInventory(home: TestHome, fleet: SshdFleet): string {
  const file = join(home.dir, 'fleet.yaml');
  const user = fleet.hosts[0]?.user ?? 'root';
  const lines = fleet.hosts.map(
    (host, index) =>
      `  node${index + 1}: { address: ${host.address}, port: ${host.port}, user: ${user}, tags: [test] }`,
  );
  writeFileSync(file, `nodes:\n${lines.join('\n')}\n`);
  return file;
}

/** A started server plus tokens and an HTTP helper. */
export interface TestServer {
  server: RuneServer;
  url: string;
  home: TestHome;
  operator: string;
  viewer: string;
  /** fetch with the operator token (or `token`, or none when null). */
  request(
    path: string,
    init?: RequestInit & { token?: string | null; json?: unknown },
  ): Promise<Response>;
  close(): Promise<void>;
}

/** Starts a server in this process on a free loopback port. */
export async function startTestServer(
  home: TestHome,
  transports: Record<string, TransportProvider> = {},
  serverOptions: Partial<RuneServerOptions> = {},
): Promise<TestServer> {
  const server = await createRuneServer({
    configFile: home.configFile,
    env: home.env,
    transports,
    port: 0,
    ...serverOptions,
  });
  const url = await server.listen();
  const operator = (
    await createToken(server.store, { name: 'ops', role: 'operator', expires: '1d' })
  ).token;
  const viewer = (await createToken(server.store, { name: 'dash', role: 'viewer', expires: '1d' }))
    .token;
  const request: TestServer['request'] = (path, init = {}) => {
    const { token, json, headers, ...rest } = init;
    const bearer = token === undefined ? operator : token;
    return fetch(`${url}${path}`, {
      ...rest,
      headers: {
        ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }),
        ...(json === undefined ? {} : { 'content-type': 'application/json' }),
        ...(headers as Record<string, string> | undefined),
      },
      ...(json === undefined ? {} : { body: JSON.stringify(json), method: rest.method ?? 'POST' }),
    });
  };
  return { server, url, home, operator, viewer, request, close: () => server.close() };
}

/** Polls `GET /v1/runs/{id}?wait=` until the run ended; returns the document. */
export async function waitForRun(
  t: TestServer,
  id: string,
): Promise<Record<string, unknown> & { status: string }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const response = await t.request(`/v1/runs/${id}?wait=10s`);
    const document = (await response.json()) as Record<string, unknown> & { status: string };
    if (!['queued', 'running'].includes(document.status)) return document;
  }
  throw new Error(`run ${id} did not end`);
}

/**
 * The secret part of an API token `rune_<id>_<secret>`. The secret is base64url and may itself
 * contain `_`, so it is everything after the second underscore (not `split('_')[2]`, which can be
 * a fragment as short as one letter and then "appears" in any text).
 */
export function tokenSecret(token: string): string {
  return token.split('_').slice(2).join('_');
}
