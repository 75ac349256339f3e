/**
 * Runs the BUILT CLI (`node apps/cli/bin/rune.js`, i.e. dist/) as a child process in a throw-away
 * HOME whose XDG dirs are set, so no test ever reads or writes the real home. Fixture plugins
 * (packages/core/test/fixtures/plugins) are copied into $XDG_DATA_HOME/rune/plugins.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type SshdInstance, sshConfigHost } from '@rune/transport-ssh/testing';
import { hashBuildInputs } from '../scripts/build-inputs.mjs';

export const CLI_BIN = fileURLToPath(new URL('../bin/rune.js', import.meta.url));
export const CLI_DIST = fileURLToPath(new URL('../dist/main.js', import.meta.url));
export const FIXTURE_PLUGINS = fileURLToPath(
  new URL('../../../packages/core/test/fixtures/plugins', import.meta.url),
);

/** What one CLI invocation did. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A temporary home for CLI runs. */
export interface CliSandbox {
  root: string;
  home: string;
  env: Record<string, string>;
  pluginDir: string;
  auditLog: string;
  run(
    args: readonly string[],
    options?: { env?: Record<string, string>; input?: string; wrap?: string[] },
  ): Promise<CliResult>;
  /** Starts the CLI without waiting (for tests that signal it); see {@link CliChild}. */
  start(args: readonly string[], options?: { env?: Record<string, string> }): CliChild;
  cleanup(): void;
}

/** A CLI process started by {@link CliSandbox.start}: stdout and stderr collected as it goes. */
export interface CliChild {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** The exit code (null when a signal ended it). */
  exited: Promise<number | null>;
}

/** True when the built CLI exists (tests build it first with turbo). */
export function cliIsBuilt(): boolean {
  return existsSync(CLI_DIST);
}

/** The stamp `scripts/bundle.mjs` writes next to the bundle. */
export const CLI_BUILD_STAMP = fileURLToPath(new URL('../dist/build-stamp.json', import.meta.url));

const REBUILD = 'run `npx -y pnpm@10.34.9 build` in the repository root';

/**
 * Why the built CLI cannot be trusted for these tests, or undefined when it can: missing, no
 * stamp, a dependency bundled from a stale dist/, or any input file (the CLI's sources, the
 * packages it bundles, the built-in plugins) changed since the build. `stampFile` and `root`
 * are for the harness's own test.
 */
export function staleBuildReason(
  stampFile: string = CLI_BUILD_STAMP,
  root?: string,
): string | undefined {
  if (!existsSync(CLI_DIST) && root === undefined) return `the CLI is not built: ${REBUILD}`;
  let stamp: {
    inputs_sha256?: string;
    stale_dependencies?: string[];
    files?: Record<string, string>;
  };
  try {
    stamp = JSON.parse(readFileSync(stampFile, 'utf8'));
  } catch {
    return `the built CLI has no build stamp (${stampFile}): ${REBUILD}`;
  }
  if ((stamp.stale_dependencies ?? []).length > 0) {
    return `the CLI was bundled from a stale dist/ of ${stamp.stale_dependencies?.join(', ')}: ${REBUILD}`;
  }
  const current = hashBuildInputs(root);
  if (current.sha256 === stamp.inputs_sha256) return undefined;
  const recorded = stamp.files ?? {};
  const changed = [
    ...Object.keys(current.files).filter((file) => recorded[file] !== current.files[file]),
    ...Object.keys(recorded).filter((file) => !(file in current.files)),
  ];
  const shown = changed.slice(0, 5).join(', ');
  const more = changed.length > 5 ? ` and ${changed.length - 5} more` : '';
  return `the built CLI in dist/ is stale: ${shown}${more} changed since it was built; ${REBUILD}`;
}

/** Throws unless dist/ holds a build of the current sources (see {@link staleBuildReason}). */
export function assertCliBuildFresh(): void {
  const reason = staleBuildReason();
  if (reason !== undefined) throw new Error(reason);
}

/**
 * Creates a sandbox HOME with XDG dirs and the fixture plugins installed as user plugins. Throws
 * first when dist/ is missing or stale ({@link assertCliBuildFresh}).
 */
export function createCliSandbox(): CliSandbox {
  // Every CLI integration test starts here: none of them may run a stale dist/ unnoticed.
  assertCliBuildFresh();
  const root = mkdtempSync(join(tmpdir(), 'rune-cli-it-'));
  const home = join(root, 'home');
  const env: Record<string, string> = {
    HOME: home,
    USER: 'rune-test',
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local/share'),
    XDG_STATE_HOME: join(home, '.local/state'),
    XDG_CACHE_HOME: join(home, '.cache'),
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    NO_COLOR: '1',
  };
  const pluginDir = join(env.XDG_DATA_HOME!, 'rune', 'plugins');
  mkdirSync(pluginDir, { recursive: true });
  mkdirSync(env.XDG_CONFIG_HOME!, { recursive: true });
  for (const name of readdirSync(FIXTURE_PLUGINS)) {
    copyFileSync(join(FIXTURE_PLUGINS, name), join(pluginDir, name));
    chmodSync(join(pluginDir, name), name.endsWith('.sh') && name !== 'noexec.sh' ? 0o755 : 0o644);
  }
  return {
    root,
    home,
    env,
    pluginDir,
    auditLog: join(env.XDG_STATE_HOME!, 'rune', 'audit.jsonl'),
    run(args, options = {}) {
      const command = options.wrap === undefined ? process.execPath : options.wrap[0]!;
      const commandArgs = [
        ...(options.wrap?.slice(1) ?? []),
        ...(options.wrap === undefined ? [] : [process.execPath]),
        CLI_BIN,
        ...args,
      ];
      return execResult(command, commandArgs, {
        env: { ...env, ...options.env },
        cwd: root,
        input: options.input,
      });
    },
    start: (args, options = {}) => startCli(args, { ...env, ...options.env }, root),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

/**
 * Starts the BUILT CLI with `args` in `env` (and `cwd`) without waiting, for tests that signal
 * it: stdout and stderr are collected as it goes.
 */
export function startCli(
  args: readonly string[],
  env: Record<string, string>,
  cwd?: string,
): CliChild {
  const child = spawn(process.execPath, [CLI_BIN, ...args], {
    env,
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/**
 * Polls `ready` (every 50 ms) until it is true; throws naming `what` after `timeoutMs`. Tests wait
 * for a readiness signal this way (a pid file the plugin wrote, its processes visible in /proc)
 * before they send a signal: never a fixed sleep, and never a signal sent after a timed-out wait.
 */
export async function waitFor(
  ready: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Waits until the CLI process `started` wrote `text` on stderr (the readiness of a test that
 * signals it again, or releases what it waits for); throws with its stderr if it exited first.
 */
export async function waitForStderr(started: CliChild, text: string): Promise<void> {
  await waitFor(
    () => started.stderr().includes(text) || started.child.exitCode !== null,
    `the CLI to write "${text}"`,
  );
  if (!started.stderr().includes(text)) {
    throw new Error(
      `the CLI exited ${started.child.exitCode} without writing "${text}": ${started.stderr()}`,
    );
  }
}

/** One firing alert of a notification posted by {@link postAlertmanager}. */
export interface FiringAlert {
  labels: Record<string, string>;
  fingerprint: string;
}

/**
 * Posts what Alertmanager sends (a webhook notification, version 4) with firing `alerts` to
 * receiver `receiver` of the `rune serve` at `url`, authorized by `bearerToken`; returns the ids
 * of the alerts it recorded. Throws unless it answered 202.
 */
export async function postAlertmanager(
  url: string,
  receiver: string,
  bearerToken: string,
  alerts: readonly FiringAlert[],
): Promise<string[]> {
  const response = await fetch(`${url}/v1/hooks/alertmanager/${receiver}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bearerToken}` },
    body: JSON.stringify({
      version: '4',
      status: 'firing',
      alerts: alerts.map((alert) => ({
        status: 'firing',
        labels: alert.labels,
        annotations: {},
        startsAt: new Date().toISOString(),
        fingerprint: alert.fingerprint,
      })),
    }),
  });
  if (response.status !== 202) {
    throw new Error(`receiver ${receiver} answered ${response.status}: ${await response.text()}`);
  }
  return ((await response.json()) as { alert_ids: string[] }).alert_ids;
}

/** One node of a test inventory written by {@link writeFleetFiles}. */
export interface FleetFileNode {
  name: string;
  address: string;
  port: number;
  user?: string;
  tags?: readonly string[];
}

/** What {@link writeFleetFiles} writes: an inventory and the `[ssh]` settings that reach it. */
export interface FleetFiles {
  nodes: readonly FleetFileNode[];
  /** `defaults.user` of the inventory. */
  user?: string;
  groups?: Readonly<Record<string, readonly string[]>>;
  clientKeyFile: string;
  knownHostsFile: string;
  hostKeyChecking?: 'strict' | 'accept-new' | 'off';
  /** Also name the inventory in `[core] inventory` (otherwise tests pass `--inventory`). */
  configInventory?: boolean;
}

/**
 * Writes `fleet.yaml` and `./rune.toml` (the sandbox's cwd config) for a fleet of test sshd hosts:
 * the client key and known_hosts only, no agent and no ~/.ssh/config, and a remote cache inside the
 * sandbox. Returns the inventory's path.
 */
export function writeFleetFiles(sandbox: CliSandbox, files: FleetFiles): string {
  const inventory = join(sandbox.root, 'fleet.yaml');
  const node = ({ name, address, port, user, tags }: FleetFileNode): string => {
    const fields = [`address: "${address}"`, `port: ${port}`];
    if (user !== undefined) fields.push(`user: ${user}`);
    if (tags !== undefined) fields.push(`tags: [${tags.join(', ')}]`);
    return `  ${name}: { ${fields.join(', ')} }`;
  };
  const groups = Object.entries(files.groups ?? {});
  writeFileSync(
    inventory,
    [
      ...(files.user === undefined ? [] : ['defaults:', `  user: ${files.user}`]),
      'nodes:',
      ...files.nodes.map(node),
      ...(groups.length === 0 ? [] : ['groups:']),
      ...groups.map(([name, members]) => `  ${name}: [${members.join(', ')}]`),
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(sandbox.root, 'rune.toml'),
    [
      ...(files.configInventory === true ? ['[core]', `inventory = "${inventory}"`] : []),
      '[ssh]',
      `identity_files = ["${files.clientKeyFile}"]`,
      `known_hosts_files = ["${files.knownHostsFile}"]`,
      ...(files.hostKeyChecking === undefined
        ? []
        : [`host_key_checking = "${files.hostKeyChecking}"`]),
      'use_agent = false',
      'use_ssh_config = false',
      `remote_cache_dir = "${join(sandbox.root, 'remote-cache')}"`,
      '',
    ].join('\n'),
  );
  return inventory;
}

/**
 * Writes the sandbox's `~/.ssh/config` with one `Host alias` for the test sshd (its address,
 * port, user and client key) and its `~/.ssh/known_hosts`: how a reader's own OpenSSH setup
 * reaches a node.
 */
export function writeSshConfigHost(sandbox: CliSandbox, alias: string, sshd: SshdInstance): void {
  const sshDir = join(sandbox.home, '.ssh');
  mkdirSync(sshDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(sshDir, 'config'), sshConfigHost(sshd, alias), { mode: 0o600 });
  writeFileSync(join(sshDir, 'known_hosts'), `${sshd.knownHostsLines.join('\n')}\n`);
}

/** A `rune serve` child process started by {@link startServeProcess}. */
export interface ServeProcess {
  url: string;
  child: ChildProcess;
  /** Everything the server wrote on stderr so far. */
  log(): string;
  /** Waits (up to 20 s) until the log has a line matching `pattern`; returns the match. */
  logLine(pattern: RegExp): Promise<string>;
  /** SIGTERM, and waits for the exit. */
  stop(): Promise<void>;
}

/** A throw-away HOME for tests that run `rune serve` and its clients: {@link serveHome}. */
export interface ServeHome {
  dir: string;
  /** HOME and the XDG dirs inside `dir`, the caller's PATH, and `extra`. */
  env: Record<string, string>;
}

/**
 * Creates an empty HOME (no fixture plugins, unlike {@link createCliSandbox}) whose XDG dirs lie
 * inside it, for a `rune serve` process and the CLI commands that talk to it. The caller removes
 * `dir`.
 */
export function serveHome(prefix: string, extra: Record<string, string> = {}): ServeHome {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    env: {
      HOME: dir,
      XDG_CONFIG_HOME: join(dir, 'config'),
      XDG_STATE_HOME: join(dir, 'state'),
      XDG_DATA_HOME: join(dir, 'data'),
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...extra,
    },
  };
}

/**
 * Runs the BUILT CLI with `args` in `env` and resolves with its exit code and output (a non-zero
 * exit resolves too).
 */
export function runCli(args: readonly string[], env: Record<string, string>): Promise<CliResult> {
  return execResult(process.execPath, [CLI_BIN, ...args], { env });
}

/** Runs `command` (stdin closed after `input`; killed after 60 s); a failure resolves too. */
function execResult(
  command: string,
  args: readonly string[],
  options: { env: Record<string, string>; cwd?: string; input?: string | undefined },
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      command,
      args,
      { env: options.env, cwd: options.cwd, maxBuffer: 64 * 1024 * 1024, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 999;
        resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/**
 * Starts the BUILT `rune serve` (with `--config configFile` unless it is undefined, then `args`)
 * and resolves once it logs where it listens; rejects with its log when it exits first.
 */
export async function startServeProcess(
  configFile: string | undefined,
  env: Record<string, string>,
  args: readonly string[] = [],
): Promise<ServeProcess> {
  const configArgs = configFile === undefined ? [] : ['--config', configFile];
  const child = spawn(process.execPath, [CLI_BIN, 'serve', ...configArgs, ...args], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    const check = (): void => {
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (match !== null) resolve(match[1] as string);
    };
    child.stderr?.on('data', check);
    child.once('exit', (code) => reject(new Error(`rune serve exited ${code}: ${log}`)));
  });
  return {
    url,
    child,
    log: () => log,
    async logLine(pattern) {
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        const match = pattern.exec(log);
        if (match !== null) return match[0];
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      throw new Error(`no log line ${pattern}: ${log}`);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exit = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exit;
    },
  };
}

/** The server's answer to a request a {@link HoldingProxy} holds. */
export interface HeldAnswer {
  status: number;
  body: string;
}

/**
 * A loopback HTTP relay in front of a real `rune serve` that holds the server's answer to chosen
 * requests until the test releases it: the request reached the server and was acted on (a run
 * or workflow started), but the client has not heard back yet. How a test puts a Ctrl-C exactly
 * in that window, deterministically. Every other request, event streams included, passes as it
 * comes.
 */
export interface HoldingProxy {
  /** The relay's URL (a client's `--server`). */
  url: string;
  /** Every request relayed so far, as `METHOD /path?query`. */
  requests: string[];
  /** Resolves with the server's answer to the first held request, once it arrived here. */
  held: Promise<HeldAnswer>;
  /** Passes the held answers on (and every later one to a held request at once). */
  release(): void;
  close(): Promise<void>;
}

/** Starts a {@link HoldingProxy} to `target` holding the answers to requests `holds` picks. */
export async function startHoldingProxy(
  target: string,
  holds: (method: string, path: string) => boolean,
): Promise<HoldingProxy> {
  const upstream = new URL(target);
  const requests: string[] = [];
  let released = false;
  const waiting: (() => void)[] = [];
  let heldAnswer!: (answer: HeldAnswer) => void;
  const held = new Promise<HeldAnswer>((resolve) => {
    heldAnswer = resolve;
  });
  const server = createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    const hold = holds(request.method ?? 'GET', request.url ?? '/');
    const forwarded = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: request.method,
        path: request.url,
        headers: request.headers,
      },
      (answer) => {
        if (!hold) {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(response);
          return;
        }
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          const body = Buffer.concat(chunks);
          const pass = (): void => {
            response.writeHead(answer.statusCode ?? 502, answer.headers);
            response.end(body);
          };
          heldAnswer({ status: answer.statusCode ?? 0, body: body.toString() });
          if (released) pass();
          else waiting.push(pass);
        });
      },
    );
    forwarded.on('error', () => response.destroy());
    request.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    held,
    release() {
      released = true;
      for (const pass of waiting.splice(0)) pass();
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
