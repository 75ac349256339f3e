/**
 * Issue 7 end to end: the BUILT CLI against a REAL fleet of OpenSSH servers on loopback
 * (`startSshdFleet`), selected from a YAML inventory. Covers the fleet success path with a live
 * progress bar (under a pseudo-terminal), the canary, the failure budget, Ctrl-C on the CLI
 * process (summary, audit record per node, remote processes gone, exit 130), unknown nodes,
 * --dry-run and jsonl streaming. A failing node is an inventory entry pointing at a port where
 * nothing listens (CONNECTION_REFUSED). Build first: `npx turbo run build --filter=@rune/cli...`.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, randomInt } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { refusedEndpoint, type SshdFleet, startSshdFleet } from '@rune/transport-ssh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertCliBuildFresh,
  CLI_BIN,
  type CliResult,
  type CliSandbox,
  createCliSandbox,
  waitFor,
  writeFleetFiles,
} from './cli-harness.js';

const HOSTS = 4;
/**
 * noop's `sleep_ms` for runs that must still be running when interrupted. Random, so that its
 * `sleep 29.xyz` command line marks this file's remote processes (another copy of this suite may
 * run on the same machine).
 */
const SLOW_SLEEP_MS = 29_001 + randomInt(999);
const SLOW_MARKER = `sleep ${(SLOW_SLEEP_MS / 1000).toFixed(3)}`;

let sandbox: CliSandbox;
let fleet: SshdFleet;
let inventory: string;
let hostNames: string[];
/** `rune run noop` on the inventory's `@web` group: the start of most commands below. */
const noopOnWeb = (): string[] => ['run', 'noop', '-n', '@web', '--inventory', inventory];

interface NodeDocument {
  node: string;
  status: string;
  started_at: string | null;
  error: { code: string } | null;
}
interface RunDocument {
  trace_id: string;
  exit_code: number;
  error: { code: string; message: string } | null;
  nodes: NodeDocument[];
  summary: {
    total: number;
    succeeded: number;
    partial: number;
    failed: number;
    skipped: number;
    policy?: { concurrency: number; canary: number | null; max_failures: string | null };
  } | null;
  plan: { nodes: { target: { name: string; address?: string; port?: number } }[] } | null;
}

function parse(result: CliResult): RunDocument {
  try {
    return JSON.parse(result.stdout) as RunDocument;
  } catch {
    throw new Error(
      `stdout is not one JSON document:\n${result.stdout}\nstderr:\n${result.stderr}`,
    );
  }
}

const byNode = (document: RunDocument): Record<string, NodeDocument> =>
  Object.fromEntries(document.nodes.map((node) => [node.node, node]));

/** PIDs of processes whose command line contains `marker` (like `pgrep -f`). */
function pgrep(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (cmdline.includes(marker) && state !== 'Z') pids.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return pids;
}

/** Waits up to 10 s for every process matching `marker` to be gone; returns the survivors. */
async function survivors(marker: string): Promise<number[]> {
  const deadline = Date.now() + 10_000;
  while (pgrep(marker).length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return pgrep(marker);
}

async function auditRecords(
  trace: string,
  event = 'run',
): Promise<
  {
    node: string | null;
    status: string;
    error_code: string | null;
    metadata: { fleet_policy?: { canary: number | null; max_failures: string | null } };
  }[]
> {
  const result = await sandbox.run(['audit', '--trace', trace, '-o', 'json']);
  expect(result.code, result.stderr).toBe(0);
  const { records } = JSON.parse(result.stdout) as { records: { event: string }[] };
  // A run's intent record precedes its outcomes; the outcomes are what these tests check.
  if (event === 'run') expect(records[0]?.event).toBe('intent');
  return records.filter((record) => record.event === event) as never[];
}

beforeAll(async () => {
  assertCliBuildFresh();
  sandbox = createCliSandbox();
  fleet = await startSshdFleet(HOSTS);
  const refused = await refusedEndpoint();
  hostNames = fleet.hosts.map((_, index) => `web${index + 1}`);
  const user = fleet.hosts[0]?.user ?? 'root';
  inventory = writeFleetFiles(sandbox, {
    user,
    nodes: [
      ...fleet.hosts.map((host, index) => ({
        name: hostNames[index] ?? '',
        address: host.address,
        port: host.port,
        tags: ['web'],
      })),
      { name: 'down', address: refused.address, port: refused.port, tags: ['broken'] },
    ],
    groups: { web: hostNames },
    clientKeyFile: fleet.clientKey.privateKeyFile,
    knownHostsFile: fleet.knownHostsFile,
    hostKeyChecking: 'strict',
  });
});

afterAll(async () => {
  for (const pid of pgrep(SLOW_MARKER)) process.kill(pid, 'SIGKILL');
  await fleet?.stop();
  sandbox?.cleanup();
});

describe('rune run across a real sshd fleet', () => {
  it('check-disk on @all of an inventory: every node succeeds, summary table', async () => {
    const result = await sandbox.run([
      'run',
      'check-disk',
      '--node',
      '@web',
      '--inventory',
      inventory,
      '-p',
      'warning_percent=99',
      '-p',
      'critical_percent=100',
    ]);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    for (const name of hostNames) expect(result.stdout).toMatch(new RegExp(`✔ success\\s+${name}`));
    expect(result.stdout).toContain(`Summary  check-disk on ${HOSTS} nodes`);
    expect(result.stdout).toMatch(new RegExp(`succeeded ${HOSTS}\\s+failed 0\\s+skipped 0`));
    expect(result.stdout).toContain('Slowest nodes');
    expect(result.stdout).not.toContain('Errors by code');
    // No terminal on stderr: no progress bar.
    expect(result.stderr).not.toContain('\r');
  });

  it('draws a live progress bar on a terminal, then the summary (pseudo-terminal via script)', async () => {
    const quote = (arg: string): string => `'${arg.replace(/'/g, `'\\''`)}'`;
    const command = [process.execPath, CLI_BIN, 'run', 'check-disk', '--node', '@all,!down']
      .concat(['--inventory', inventory, '-p', 'warning_percent=99', '-p', 'critical_percent=100'])
      .map(quote)
      .join(' ');
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        'script',
        ['-qec', command, '/dev/null'],
        { env: sandbox.env, cwd: sandbox.root, timeout: 60_000 },
        (error, stdout) => (error === null ? resolve(stdout) : reject(error)),
      );
    });
    // The bar is redrawn in place on stderr: carriage return + erase line, then "[###...] n/N".
    expect(output).toContain('\r\x1b[2K[');
    expect(output).toMatch(new RegExp(`\\[#+\\] +${HOSTS}/${HOSTS} +ok ${HOSTS}`));
    expect(output).toContain(`Summary  check-disk on ${HOSTS} nodes`);
  });

  it('a failing canary stops the rest: they are skipped with CANARY_FAILED, and audited', async () => {
    const result = await sandbox.run([
      'run',
      'noop',
      '--node',
      'down,@web',
      '--inventory',
      inventory,
      '--canary',
      '1',
      '-o',
      'json',
    ]);
    const document = parse(result);
    const nodes = byNode(document);
    expect(nodes.down?.error?.code).toBe('CONNECTION_REFUSED');
    for (const name of hostNames) {
      expect(nodes[name]?.status).toBe('skipped');
      expect(nodes[name]?.error?.code).toBe('CANARY_FAILED');
      expect(nodes[name]?.started_at).toBeNull();
    }
    expect(document.summary).toMatchObject({ total: HOSTS + 1, failed: 1, skipped: HOSTS });
    expect(document.summary?.policy?.canary).toBe(1);
    expect(result.code).toBe(4); // CANARY_FAILED (policy) outranks CONNECTION_REFUSED (transport)
    const records = await auditRecords(document.trace_id);
    expect(records.map((record) => record.node).sort()).toEqual(['down', ...hostNames].sort());
    for (const record of records) expect(record.metadata.fleet_policy?.canary).toBe(1);
  });

  it('--max-failures 0: the first failure stops new starts; the node in flight finishes', async () => {
    const [first, ...rest] = hostNames;
    const result = await sandbox.run([
      'run',
      'noop',
      '--node',
      `down,${first},@web`,
      '--inventory',
      inventory,
      '--concurrency',
      '2',
      '--max-failures',
      '0',
      '-p',
      'sleep_ms=1500',
      '-o',
      'json',
    ]);
    const document = parse(result);
    const nodes = byNode(document);
    expect(nodes.down?.error?.code).toBe('CONNECTION_REFUSED');
    expect(nodes[first as string]?.status, JSON.stringify(nodes[first as string])).toBe('success');
    for (const name of rest) expect(nodes[name]?.error?.code).toBe('MAX_FAILURES_EXCEEDED');
    expect(document.summary?.policy?.max_failures).toBe('0');
    expect(result.code).toBe(4);
    const records = await auditRecords(document.trace_id);
    expect(records).toHaveLength(HOSTS + 1);
    for (const record of records) expect(record.metadata.fleet_policy?.max_failures).toBe('0');
  });

  it('--deadline: running nodes are cancelled and unstarted ones skipped, both DEADLINE_EXCEEDED', async () => {
    const result = await sandbox.run([
      ...noopOnWeb(),
      '--concurrency',
      '2',
      '--deadline',
      '1500ms',
      '-p',
      `sleep_ms=${SLOW_SLEEP_MS}`,
      '-o',
      'json',
    ]);
    const document = parse(result);
    expect(result.code).toBe(5);
    for (const node of document.nodes) expect(node.error?.code).toBe('DEADLINE_EXCEEDED');
    expect(document.nodes.filter((node) => node.started_at !== null)).toHaveLength(2);
    expect(document.summary).toMatchObject({ total: HOSTS, failed: 2, skipped: 2 });
    expect(await survivors(SLOW_MARKER)).toEqual([]);
  });

  it('Ctrl-C (SIGINT) mid-run: summary printed, every node audited, remote processes killed, exit 130', async () => {
    const { child, stdout, stderr, exited } = sandbox.start([
      ...noopOnWeb(),
      '--concurrency',
      '2',
      '-p',
      `sleep_ms=${SLOW_SLEEP_MS}`,
      '-o',
      'jsonl',
    ]);
    // Readiness: both remote plugins' sleep processes are visible (concurrency 2).
    await waitFor(() => pgrep(SLOW_MARKER).length >= 2, 'two plugins running remotely');
    expect(pgrep(SLOW_MARKER), 'two plugins running remotely').toHaveLength(2);
    child.kill('SIGINT');
    const code = await exited;
    expect(code, stderr()).toBe(130);
    const lines = stdout()
      .trim()
      .split('\n')
      .map(
        (line) =>
          JSON.parse(line) as NodeDocument & {
            type: string;
            summary: RunDocument['summary'];
            trace_id: string;
          },
      );
    expect(lines.map((line) => line.type)).toEqual([...hostNames.map(() => 'node'), 'summary']);
    const nodes = lines.filter((line) => line.type === 'node');
    for (const node of nodes) expect(node.error?.code).toBe('RUN_CANCELLED');
    // Two were running (cancelled, killed), two had not started (skipped).
    expect(nodes.filter((node) => node.started_at !== null)).toHaveLength(2);
    expect(lines.at(-1)?.summary).toMatchObject({ total: HOSTS, skipped: 2, failed: 2 });
    const records = await auditRecords(lines[0]?.trace_id ?? '');
    expect(records.map((record) => record.node).sort()).toEqual([...hostNames].sort());
    for (const record of records) expect(record.error_code).toBe('RUN_CANCELLED');
    // The remote plugins (and their sleep) are gone, not orphaned.
    expect(await survivors(SLOW_MARKER)).toEqual([]);
    expect(pgrep(join(sandbox.root, 'remote-cache'))).toEqual([]);
  });

  it('SIGTERM is handled like Ctrl-C; pretty output still ends with the summary table', async () => {
    const { child, stdout, exited } = sandbox.start([
      ...noopOnWeb(),
      '-p',
      `sleep_ms=${SLOW_SLEEP_MS}`,
    ]);
    // Readiness: every node's plugin is running remotely; a timed-out wait fails, never signals.
    await waitFor(() => pgrep(SLOW_MARKER).length >= HOSTS, `${HOSTS} plugins running remotely`);
    child.kill('SIGTERM');
    expect(await exited).toBe(130);
    expect(stdout()).toMatch(/Summary {2}noop on 4 nodes in .*\(interrupted\)/);
    expect(stdout()).toMatch(/RUN_CANCELLED \(4\)/);
    expect(await survivors(SLOW_MARKER)).toEqual([]);
    expect(pgrep(join(sandbox.root, 'remote-cache'))).toEqual([]);
  });

  it('malformed fleet flags are INVALID_ARGUMENT before anything runs', async () => {
    for (const flags of [
      ['--canary', 'two'],
      ['--max-failures', '150%'],
      ['--max-failures', '-1'],
      ['--deadline', 'soon'],
    ]) {
      const result = await sandbox.run([...noopOnWeb(), ...flags, '-o', 'json']);
      expect(result.code, flags.join(' ')).toBe(2);
      expect(parse(result).error?.code, flags.join(' ')).toBe('INVALID_ARGUMENT');
    }
    const both = await sandbox.run(
      ['run', 'noop', '--nodes-file', '-', '--params', '-', '--inventory', inventory, '-o', 'json'],
      { input: 'web1\n' },
    );
    expect(parse(both).error?.code).toBe('INVALID_ARGUMENT');
  });

  it('an unknown node is UNKNOWN_NODE before anything runs (nothing contacted, refusal audited)', async () => {
    const result = await sandbox.run([
      'run',
      'noop',
      '--node',
      '@web,web9,@nope',
      '--inventory',
      inventory,
      '-o',
      'json',
    ]);
    const document = parse(result);
    expect(result.code).toBe(2);
    expect(document.error?.code).toBe('UNKNOWN_NODE');
    expect(document.error?.message).toContain('web9');
    expect(document.error?.message).toContain('@nope');
    expect(document.nodes).toEqual([]);
    const records = await auditRecords(document.trace_id, 'refusal');
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ node: null, error_code: 'UNKNOWN_NODE' });
  });

  it('--dry-run lists the resolved nodes (selectors, tags, globs, --nodes-file -)', async () => {
    const pretty = await sandbox.run(
      ['run', 'noop', '--nodes-file', '-', '--inventory', inventory, '--dry-run'],
      { input: '# from another tool\ntag:web+web[12]\ndown\n' },
    );
    expect(pretty.code, pretty.stderr).toBe(0);
    expect(pretty.stdout).toContain('nodes (3)');
    const host = fleet.hosts[0];
    expect(pretty.stdout).toMatch(
      new RegExp(`web1\\s+ssh\\s+${host?.user}@${host?.address}:${host?.port}`),
    );
    const json = parse(
      await sandbox.run([
        'run',
        'noop',
        '-n',
        'web*,!web2',
        '--inventory',
        inventory,
        '--dry-run',
        '-o',
        'json',
      ]),
    );
    expect(json.plan?.nodes.map((node) => node.target.name)).toEqual(
      hostNames.filter((name) => name !== 'web2'),
    );
  });

  it('--output jsonl writes each node line as soon as that node finishes', async () => {
    // down fails at once; the web nodes sleep 2 s: the first line must arrive well before the end.
    const child = spawn(
      process.execPath,
      [
        CLI_BIN,
        'run',
        'noop',
        '-n',
        'down,@web',
        '--inventory',
        inventory,
        '-p',
        'sleep_ms=2000',
        '-o',
        'jsonl',
      ],
      { env: sandbox.env, cwd: sandbox.root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const arrivals: { at: number; line: { type: string; node?: string } }[] = [];
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline = buffer.indexOf('\n');
      while (newline !== -1) {
        arrivals.push({ at: Date.now(), line: JSON.parse(buffer.slice(0, newline)) });
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf('\n');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(3);
    expect(arrivals.map((arrival) => arrival.line.type)).toEqual([
      ...Array(HOSTS + 1).fill('node'),
      'summary',
    ]);
    expect(arrivals[0]?.line.node).toBe('down');
    const end = arrivals.at(-1)?.at ?? 0;
    expect(end - (arrivals[0]?.at ?? end)).toBeGreaterThan(1000);
  });
});

describe('host key warnings reach the operator', () => {
  /** The OpenSSH SHA256 fingerprint of a `type base64` public key line. */
  const fingerprint = (line: string): string =>
    `SHA256:${createHash('sha256')
      .update(Buffer.from(line.split(' ')[1] ?? '', 'base64'))
      .digest('base64')
      .replace(/=+$/, '')}`;

  /** A config file merged after ./rune.toml: this mode, and a known_hosts file with no host. */
  function hostKeyConfig(mode: 'off' | 'accept-new'): string {
    const empty = join(sandbox.root, `empty-known-hosts-${mode}`);
    writeFileSync(empty, '');
    const config = join(sandbox.root, `host-keys-${mode}.toml`);
    writeFileSync(
      config,
      `[ssh]\nhost_key_checking = "${mode}"\nknown_hosts_files = ["${empty}"]\n`,
    );
    return config;
  }

  it('host_key_checking = "off": one unmissable stderr line per node, in every output format', async () => {
    const config = hostKeyConfig('off');
    const nodes = hostNames.slice(0, 2);
    const pretty = await sandbox.run(
      ['run', 'noop', '-n', nodes.join(','), '--inventory', inventory, '--config', config],
      // A fresh state dir: no key recorded by another test can make the run look verified.
      { env: { XDG_STATE_HOME: join(sandbox.root, 'state-off') } },
    );
    expect(pretty.code, pretty.stderr).toBe(0);
    const lines = pretty.stderr.split('\n').filter((line) => /host key checking is OFF/.test(line));
    expect(lines).toHaveLength(2);
    for (const host of fleet.hosts.slice(0, 2)) {
      expect(pretty.stderr).toContain(`${host.address}:${host.port} without verification`);
    }
    for (const format of ['json', 'jsonl']) {
      const result = await sandbox.run(
        [
          'run',
          'noop',
          '-n',
          nodes[0] ?? '',
          '--inventory',
          inventory,
          '--config',
          config,
          '-o',
          format,
        ],
        { env: { XDG_STATE_HOME: join(sandbox.root, 'state-off') } },
      );
      expect(result.code, result.stderr).toBe(0);
      const last = result.stdout.trim().split('\n').at(-1) ?? '';
      const document = JSON.parse(format === 'json' ? result.stdout : last) as {
        warnings: string[];
      };
      expect(document.warnings.some((warning) => /host key checking is OFF/.test(warning))).toBe(
        true,
      );
      expect(result.stderr, format).toMatch(/host key checking is OFF/);
    }
  });

  it('accept-new: says which host key it recorded (host and fingerprint), and only the first time', async () => {
    const config = hostKeyConfig('accept-new');
    const state = join(sandbox.root, 'state-accept-new');
    mkdirSync(state, { recursive: true });
    const host = fleet.hosts[0];
    if (host === undefined) throw new Error('no host');
    const args = ['run', 'noop', '-n', 'web1', '--inventory', inventory, '--config', config];
    const first = await sandbox.run(args, { env: { XDG_STATE_HOME: state } });
    expect(first.code, first.stderr).toBe(0);
    const recorded = first.stderr.split('\n').filter((line) => line.includes('accept-new'));
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toContain(`${host.address}:${host.port}`);
    const presented = host.hostPublicKeys.map(fingerprint);
    expect(presented.some((print) => recorded[0]?.includes(print))).toBe(true);
    expect(readFileSync(join(state, 'rune', 'known_hosts'), 'utf8')).toContain(host.address);
    // The key is known now: nothing new to say.
    const second = await sandbox.run([...args, '-o', 'json'], { env: { XDG_STATE_HOME: state } });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).not.toContain('accept-new');
    expect((JSON.parse(second.stdout) as { warnings: string[] }).warnings).toEqual([]);
  });
});
