/**
 * `rune run --rerun all|failed --trace ID` end to end: the BUILT CLI runs a fixture plugin on a
 * real sshd fleet on loopback (two hosts), a node whose port refuses connections, and localhost
 * (local transport); then re-runs from the audit trail. Sensitive parameters were never recorded
 * and must be supplied again. Also `--output-dir` (one result file per node). Build first: `npx -y pnpm@10.34.9 build`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { validateRunNodeResult } from '@rune/protocol';
import { refusedEndpoint, type SshdFleet, startSshdFleet } from '@rune/transport-ssh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliResult,
  type CliSandbox,
  createCliSandbox,
  writeFleetFiles,
} from './cli-harness.js';

let sandbox: CliSandbox;
let fleet: SshdFleet;
let inventory: string;

interface RunDocument {
  trace_id: string;
  exit_code: number;
  error: { code: string; message: string } | null;
  nodes: { node: string; transport: string; status: string; error: { code: string } | null }[];
  plan: {
    parameters: Record<string, unknown>;
    nodes: { target: { name: string }; transport: string }[];
  } | null;
}

function parse(result: CliResult): RunDocument {
  try {
    return JSON.parse(result.stdout) as RunDocument;
  } catch {
    throw new Error(`stdout is not one JSON document:\n${result.stdout}\n${result.stderr}`);
  }
}

const run = (args: string[]): Promise<CliResult> =>
  sandbox.run(['run', ...args, '--inventory', inventory, '-o', 'json']);

beforeAll(async () => {
  sandbox = createCliSandbox();
  fleet = await startSshdFleet(2);
  const refused = await refusedEndpoint();
  const user = fleet.hosts[0]?.user ?? 'root';
  inventory = writeFleetFiles(sandbox, {
    user,
    nodes: [
      ...fleet.hosts.map((host, index) => ({
        name: `web${index + 1}`,
        address: host.address,
        port: host.port,
      })),
      { name: 'down', address: refused.address, port: refused.port },
    ],
    clientKeyFile: fleet.clientKey.privateKeyFile,
    knownHostsFile: fleet.knownHostsFile,
  });
});

afterAll(async () => {
  await fleet?.stop();
  sandbox?.cleanup();
});

describe('rune run --rerun', () => {
  let trace: string;

  beforeAll(async () => {
    const first = parse(
      await run([
        'params',
        '--node',
        'web1,web2,down,localhost',
        '-p',
        'name=alpha',
        '-p',
        'count=5',
        '-p',
        'items=["a","b"]',
        '-p',
        'secret=s3cr3t',
      ]),
    );
    expect(first.exit_code).toBe(3);
    expect(first.nodes.map((node) => [node.node, node.status])).toEqual([
      ['web1', 'success'],
      ['web2', 'success'],
      ['down', 'failure'],
      ['localhost', 'success'],
    ]);
    trace = first.trace_id;
  });

  it('refuses until the sensitive parameter is supplied again, naming it', async () => {
    const result = await run(['--rerun', 'failed', '--trace', trace]);
    const document = parse(result);
    expect(result.code).toBe(2);
    expect(document.error?.code).toBe('INVALID_PARAMETERS');
    expect(document.error?.message).toContain('secret');
    expect(document.error?.message).toContain('-p secret=...');
    expect(document.error?.message).not.toContain('s3cr3t');
  });

  it('failed: plans only the node that failed, with the recorded parameters', async () => {
    const result = await run([
      '--rerun',
      'failed',
      '--trace',
      trace,
      '-p',
      'secret=x',
      '--dry-run',
    ]);
    const document = parse(result);
    expect(result.code, result.stdout).toBe(0);
    expect(document.plan?.nodes.map((node) => node.target.name)).toEqual(['down']);
    expect(document.plan?.parameters).toEqual({
      name: 'alpha',
      count: 5,
      items: ['a', 'b'],
      force: false,
      secret: '[REDACTED]',
    });
  });

  it('failed: runs it for real (a new trace), and it fails again the same way', async () => {
    const result = await run(['--rerun', 'failed', '--trace', trace, '-p', 'secret=x']);
    const document = parse(result);
    expect(result.code).toBe(3);
    expect(document.trace_id).not.toBe(trace);
    expect(document.nodes.map((node) => [node.node, node.error?.code])).toEqual([
      ['down', 'CONNECTION_REFUSED'],
    ]);
  });

  it('all: every node again, each by the transport it used (localhost stays local)', async () => {
    const result = await run([
      '--rerun',
      'all',
      '--trace',
      trace,
      '-p',
      'secret=x',
      '-p',
      'count=7',
    ]);
    const document = parse(result);
    expect(result.code).toBe(3);
    expect(document.nodes.map((node) => [node.node, node.transport, node.status])).toEqual([
      ['web1', 'ssh', 'success'],
      ['web2', 'ssh', 'success'],
      ['down', 'ssh', 'failure'],
      ['localhost', 'local', 'success'],
    ]);
  });

  it('a local failure is re-run locally; nothing left to re-run is NO_TARGETS', async () => {
    // `fail` has no manifest, so it counts as dangerous: a re-run must be confirmed again.
    const failed = parse(await run(['fail', '--node', 'localhost', '--yes']));
    expect(failed.nodes.map((node) => [node.node, node.status])).toEqual([
      ['localhost', 'failure'],
    ]);
    const unconfirmed = parse(await run(['--rerun', 'failed', '--trace', failed.trace_id]));
    expect(unconfirmed.error?.code).toBe('DANGEROUS_ACTION_REFUSED');
    const again = parse(await run(['--rerun', 'failed', '--trace', failed.trace_id, '--yes']));
    expect(again.nodes.map((node) => [node.node, node.transport, node.status])).toEqual([
      ['localhost', 'local', 'failure'],
    ]);

    const ok = parse(await run(['ok', '--node', 'localhost', '--yes']));
    expect(ok.exit_code).toBe(0);
    const none = await run(['--rerun', 'failed', '--trace', ok.trace_id]);
    expect(none.code).toBe(2);
    expect(parse(none).error?.code).toBe('NO_TARGETS');
  });

  it('refuses an unknown trace, another action, and --node alongside', async () => {
    const unknown = await run(['--rerun', 'failed', '--trace', 'f'.repeat(32)]);
    expect(unknown.code).toBe(2);
    expect(parse(unknown).error?.code).toBe('INVALID_ARGUMENT');
    expect(parse(unknown).error?.message).toContain('has no record');

    const other = await run(['noop', '--rerun', 'all', '--trace', trace, '-p', 'secret=x']);
    expect(parse(other).error?.message).toContain('ran params, not noop');

    const withNode = await run(['--rerun', 'all', '--trace', trace, '--node', 'web1']);
    expect(parse(withNode).error?.code).toBe('INVALID_ARGUMENT');

    const noTrace = await sandbox.run(['run', '--rerun', 'failed']);
    expect(noTrace.code).toBe(2);
    expect(noTrace.stderr).toContain('--rerun needs --trace');

    const noAction = await sandbox.run(['run', '--node', 'localhost']);
    expect(noAction.code).toBe(2);
    expect(noAction.stderr).toContain('name an action');
  });
});

describe('rune run --output-dir', () => {
  it('writes one schema-valid result file per node (ssh, refused, local) into a 0700 directory', async () => {
    const dir = join(sandbox.root, 'results');
    const result = await sandbox.run([
      'run',
      'params',
      '--node',
      'web1,down,localhost',
      '--inventory',
      inventory,
      '-p',
      'name=alpha',
      '--output-dir',
      dir,
    ]);
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).toContain(`results of 3 nodes written to ${dir}`);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const files = readdirSync(dir)
      .filter((file) => file.endsWith('.json'))
      .sort();
    expect(files).toEqual(['down.json', 'localhost.json', 'web1.json']);
    for (const file of files) {
      const document = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      const validated = validateRunNodeResult(document);
      expect(validated.ok, JSON.stringify(validated)).toBe(true);
      expect(statSync(join(dir, file)).mode & 0o777).toBe(0o600);
    }
    const down = JSON.parse(readFileSync(join(dir, 'down.json'), 'utf8'));
    expect(down.error.code).toBe('CONNECTION_REFUSED');
  });
});
