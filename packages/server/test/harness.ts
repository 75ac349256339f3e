/**
 * Test harness: a real `createRuneServer()` listening on 127.0.0.1 (a free port) with its own
 * XDG directories, config file, audit log and store, the built-in plugins plus the fixtures of
 * test/fixtures/plugins, and optionally the SSH transport against a real sshd fleet. Requests
 * go over real HTTP (`fetch`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createRequire } from 'node:module';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TransportProvider } from '@rune/core';
import type { WorkflowRunRecord } from '@rune/protocol';
import { createSshTransport } from '@rune/transport-ssh';
import type { SshdFleet } from '@rune/transport-ssh/testing';
import type Provider from 'oidc-provider';
import type { Browser, Page } from 'playwright-core';
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

/**
 * Creates a home whose config has `[server]`, `[core]` and `[plugins]` set for tests. With
 * `fleet`, `[core] inventory` is the fleet's inventory ({@link fleetInventory}) in the home.
 */
export function createTestHome(
  extraToml = '',
  options: { inventory?: string; fleet?: SshdFleet } = {},
): TestHome {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'rune-server-test-')));
  if (options.fleet !== undefined) {
    options = { ...options, inventory: writeFleetInventory(dir, options.fleet) };
  }
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
  return writeFleetInventory(home.dir, fleet);
}

function writeFleetInventory(dir: string, fleet: SshdFleet): string {
  const file = join(dir, 'fleet.yaml');
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

/** The accounts a {@link startSessionServer} OIDC provider knows: login → email and groups. */
export type TestOidcAccounts = Readonly<
  Record<string, { readonly email: string; readonly groups: readonly string[] }>
>;

/** The OIDC provider of {@link startSessionServer}: the real `oidc-provider` on loopback. */
export interface TestOidcOptions {
  accounts: TestOidcAccounts;
  /**
   * Finishes a login by hand: called for every request to `/interaction/<uid>` (the provider's
   * own login and consent pages, its dev interactions, serve otherwise).
   */
  interaction?: (provider: Provider, req: IncomingMessage, res: ServerResponse) => Promise<void>;
}

/** What {@link startSessionServer} starts the server with. */
export interface SessionServerOptions {
  /** Lines added to `[server]` (e.g. `rate_limit = 1000`). */
  serverToml?: string;
  /** A policy document: written into the home and named by `[server] policy`. */
  policy?: string;
  /** Fills a plugin directory in the home, used instead of the fixtures; returns its path. */
  plugins?: (home: TestHome) => string;
  /** Starts an OIDC provider and points `[server] oidc_*` at it (client `rune`, PKCE). */
  oidc?: TestOidcOptions;
}

/** A {@link TestServer} for the session and sign-on suites; `close()` also ends the rest. */
export interface SessionServer extends TestServer {
  /** The provider's issuer URL, when `oidc` was asked for. */
  issuer?: string;
}

/**
 * Starts a server in this process for the browser-session and single-sign-on suites: a new
 * {@link createTestHome} with `options` applied and, with `oidc`, the real `oidc-provider` on a
 * free loopback port whose one client `rune` (public, PKCE required) redirects to this server's
 * callback. `close()` stops the server and the provider and removes the home.
 */
export async function startSessionServer(
  options: SessionServerOptions = {},
): Promise<SessionServer> {
  const home = createTestHome();
  let idp: { issuer: string; close(): Promise<void> } | undefined;
  try {
    let config = readFileSync(home.configFile, 'utf8');
    if (options.plugins !== undefined) {
      const plugins = options.plugins(home);
      config = config.replace(
        `plugin_dir = ${JSON.stringify(FIXTURE_PLUGINS)}`,
        `plugin_dir = ${JSON.stringify(plugins)}`,
      );
    }
    let serverToml = options.serverToml ?? '';
    let port = 0;
    if (options.policy !== undefined) {
      const policyFile = join(home.dir, 'policy.yaml');
      writeFileSync(policyFile, options.policy);
      serverToml += `policy = ${JSON.stringify(policyFile)}\n`;
    }
    if (options.oidc !== undefined) {
      // The provider registers the callback URL, so this server's port is reserved first.
      port = await reservePort();
      const callback = `http://127.0.0.1:${port}/v1/auth/oidc/callback`;
      idp = await startOidcProvider(options.oidc, callback);
      config = config.replace('listen = "127.0.0.1:0"', `listen = "127.0.0.1:${port}"`);
      serverToml += `oidc_issuer = ${JSON.stringify(idp.issuer)}\noidc_client_id = "rune"\noidc_redirect_url = ${JSON.stringify(callback)}\n`;
    }
    writeFileSync(home.configFile, `${config}${serverToml}`);
    const t = await startTestServer(home, {}, { port });
    const provider = idp;
    return {
      ...t,
      ...(provider === undefined ? {} : { issuer: provider.issuer }),
      async close() {
        await t.close();
        await provider?.close();
        home.remove();
      },
    };
  } catch (error) {
    await idp?.close();
    home.remove();
    throw error;
  }
}

/** A free loopback port (listened on and closed again). */
async function reservePort(): Promise<number> {
  const probe = createNetServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** The real `oidc-provider` on a free loopback port, for {@link startSessionServer}. */
async function startOidcProvider(
  options: TestOidcOptions,
  callback: string,
): Promise<{ issuer: string; close(): Promise<void> }> {
  // Loaded only by the suites that sign on, not by every suite that imports the harness.
  const { default: OidcProvider } = await import('oidc-provider');
  let provider: Provider | undefined;
  const interaction = options.interaction;
  const idp = createHttpServer((req, res) => {
    if (
      interaction !== undefined &&
      provider !== undefined &&
      req.url?.startsWith('/interaction/')
    ) {
      interaction(provider, req, res).catch((error: unknown) => {
        res.writeHead(500).end(String(error));
      });
      return;
    }
    provider?.callback()(req, res);
  });
  await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
  const { accounts } = options;
  provider = new OidcProvider(issuer, {
    clients: [
      {
        client_id: 'rune',
        token_endpoint_auth_method: 'none',
        redirect_uris: [callback],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    pkce: { required: () => true },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
    conformIdTokenClaims: false,
    // Without a hand-written interaction, the provider's own login form and consent page.
    features: { devInteractions: { enabled: interaction === undefined } },
    ...(interaction === undefined
      ? {}
      : {
          interactions: {
            url: (_ctx: unknown, pending: { uid: string }) => `/interaction/${pending.uid}`,
          },
        }),
    findAccount: (_ctx: unknown, id: string) => {
      const account = accounts[id];
      return account === undefined
        ? undefined
        : {
            accountId: id,
            claims: () => ({
              sub: id,
              email: account.email,
              email_verified: true,
              groups: [...account.groups],
            }),
          };
    },
  });
  return { issuer, close: () => new Promise((resolve) => idp.close(() => resolve())) };
}

/** A browser session opened with an API token (`POST /v1/session`). */
export interface TokenSession {
  /** The `name=value` pair to send back as `cookie`. */
  cookie: string;
  /** The session secret (the cookie's value). */
  secret: string;
  csrf: string;
  /** The whole `set-cookie` header. */
  setCookie: string;
}

/** Trades `token` for a browser session; throws unless the server answers 201. */
export async function tokenSignIn(
  t: TestServer,
  token: string,
  headers: Record<string, string> = {},
): Promise<TokenSession> {
  const response = await t.request('/v1/session', { token: null, json: { token }, headers });
  if (response.status !== 201) {
    throw new Error(`POST /v1/session answered ${response.status}: ${await response.text()}`);
  }
  const setCookie = response.headers.get('set-cookie') ?? '';
  const pair = setCookie.split(';')[0] as string;
  const body = (await response.json()) as { csrf_token: string };
  return {
    cookie: pair,
    secret: pair.slice(pair.indexOf('=') + 1),
    csrf: body.csrf_token,
    setCookie,
  };
}

/** Debian's chromium, the browser of the dashboard suites. */
export const CHROMIUM = '/usr/bin/chromium';

/** Launches {@link CHROMIUM} headless through playwright-core (no sandbox when run as root). */
export async function launchChromium(): Promise<Browser> {
  // Loaded only by the browser suites, not by every suite that imports the harness.
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
}

/**
 * The serious and critical axe-core violations of the page as it is now (id, impact, help, the
 * elements). axe runs through Runtime.evaluate, which the page's CSP does not govern (an
 * injected <script> would be refused).
 */
export async function axeViolations(page: Page): Promise<Array<Record<string, unknown>>> {
  const source = readFileSync(
    createRequire(import.meta.url).resolve('axe-core/axe.min.js'),
    'utf8',
  );
  await page.evaluate(source);
  const result = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] })`)) as {
    violations: Array<Record<string, unknown> & { impact: string; nodes: unknown[] }>;
  };
  return result.violations
    .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
    .map(({ id, impact, help, nodes }) => ({
      id,
      impact,
      help,
      targets: (nodes as Array<{ target: unknown }>).map((node) => node.target),
    }));
}

/** What {@link serveListening} reads from a `rune serve` child's stderr. */
export interface ServeListening {
  /** The URL it announced ("listening on http://127.0.0.1:PORT"); rejects, with its stderr, if it exits first. */
  url: Promise<string>;
  /** Everything it wrote to stderr so far (kept collecting after the announcement). */
  stderr: () => string;
}

/** Reads the URL a `rune serve` child process announces once it listens (readiness, no sleeps). */
export function serveListening(child: ChildProcess): ServeListening {
  let stderr = '';
  const url = new Promise<string>((resolve, reject) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (match !== null) resolve(match[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`rune serve exited ${code}: ${stderr}`)));
  });
  return { url, stderr: () => stderr };
}

/** The built CLI (`apps/cli/bin/rune.js`). */
export const RUNE_CLI = new URL('../../../apps/cli/bin/rune.js', import.meta.url).pathname;

/**
 * A built `rune serve` on `home`'s config as a child process (stderr piped for its announcement),
 * added to `children` (for the test's cleanup): the child, the URL it announced, and its exit.
 */
export function spawnServe(
  home: Pick<TestHome, 'configFile' | 'env'>,
  children: Set<ChildProcess>,
): { child: ChildProcess; url: Promise<string>; exited: Promise<void> } {
  const child = spawn(
    process.execPath,
    [RUNE_CLI, 'serve', '--config', home.configFile, '--listen', '127.0.0.1:0'],
    { env: home.env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, url: serveListening(child).url, exited };
}

/**
 * A workflow of two steps, `hold` (the fixture plugin that waits, recording its pids in
 * `inputs.marker_dir`) then `noop`: the tests' way to have a workflow mid-step on demand.
 */
export const HOLD_THEN_NOOP = new URL('./fixtures/workflows/hold-then-noop.yaml', import.meta.url)
  .pathname;

/**
 * Polls `probe` every `everyMs` until it gives a value, and returns it; throws naming `what` after
 * `withinMs`. Readiness for tests, never a fixed sleep.
 */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  withinMs = 30_000,
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * Polls `GET /v1/workflows/runs/{id}` through `request` (a test server's, with its token) until
 * `done(record)`, by default until the workflow ended; throws after a minute.
 */
export function waitForWorkflow<T extends { status: string } = WorkflowRunRecord>(
  request: (path: string) => Promise<Response>,
  id: string,
  done: (record: T) => boolean = (record) => record.status !== 'running',
): Promise<T> {
  return until(
    `workflow ${id} to get there`,
    async () => {
      const response = await request(`/v1/workflows/runs/${id}`);
      if (response.status !== 200) return undefined;
      const record = (await response.json()) as T;
      return done(record) ? record : undefined;
    },
    60_000,
    50,
  );
}
