/**
 * `rune workflow` end to end: the built CLI runs examples/workflows/restart-then-diagnose.yaml
 * against two real sshd hosts on loopback with the real restart-docker and gather-logs plugins.
 * Docker and systemd are absent here, so each host gets PATH shims (sshd `SetEnv PATH=`) for
 * `systemctl`, `docker` and `journalctl`, whose behaviour a test picks per host through a mode
 * file: `ok` (the restart works), `fail` (systemctl restart exits 1), `hang` (it never returns;
 * its pids are written, which is the readiness a cancellation waits for). Every shipped example
 * is validated too.
 */
import type { ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  validateWorkflowRunRecord,
  validateWorkflowStepLine,
  type WorkflowRunRecord,
} from '@rune/protocol';
import { isProcessAlive } from '@rune/transport/testing';
import { generateClientKey, type SshdInstance, startSshd } from '@rune/transport-ssh/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type CliSandbox, createCliSandbox, waitFor, writeFleetFiles } from './cli-harness.js';

const EXAMPLES = new URL('../../../examples/workflows/', import.meta.url).pathname;
const RESTART_THEN_DIAGNOSE = join(EXAMPLES, 'restart-then-diagnose.yaml');
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

let sandbox: CliSandbox;
const hosts: SshdInstance[] = [];
const shimDirs: string[] = [];
const children: ChildProcess[] = [];

/** The shims of one host; `state` holds the mode file and what the shims record. */
function writeShims(bin: string, state: string): void {
  mkdirSync(bin, { recursive: true });
  mkdirSync(state, { recursive: true });
  const shim = (name: string, body: string): void => {
    writeFileSync(join(bin, name), `#!/bin/bash\nstate=${JSON.stringify(state)}\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  shim(
    'systemctl',
    `mode=$(cat "$state/mode" 2>/dev/null || echo ok)
case "$1" in
  show)
    if [ -e "$state/restarted" ]; then pid=5678; else pid=1234; fi
    printf 'LoadState=loaded\\nActiveState=active\\nSubState=running\\nMainPID=%s\\n' "$pid" ;;
  restart)
    case "$mode" in
      fail) echo "Job for docker.service failed because the control process exited with error code." >&2; exit 1 ;;
      hang) sleep 300 & echo "$! $$" > "$state/hang.pids"; wait ;;
      *) : > "$state/restarted" ;;
    esac ;;
  is-active) echo active ;;
esac
exit 0`,
  );
  shim('docker', 'echo 27.3.1');
  shim(
    'journalctl',
    'echo "Dec 01 10:00:01 node dockerd[1234]: failed to start daemon: containerd is not running"',
  );
}

const mode = (index: number, value: 'ok' | 'fail' | 'hang'): void =>
  writeFileSync(join(shimDirs[index] ?? '', 'state', 'mode'), value);
const restarted = (index: number): boolean =>
  existsSync(join(shimDirs[index] ?? '', 'state', 'restarted'));

beforeAll(async () => {
  sandbox = createCliSandbox();
  const clientKey = await generateClientKey(sandbox.root);
  for (const index of [0, 1]) {
    const dir = join(sandbox.root, `node${index + 1}-shims`);
    writeShims(join(dir, 'bin'), join(dir, 'state'));
    shimDirs.push(dir);
    hosts.push(
      await startSshd({
        clientKey,
        extraConfig: [`SetEnv PATH=${join(dir, 'bin')}:${SYSTEM_PATH}`],
      }),
    );
  }
  const knownHosts = join(sandbox.root, 'known_hosts');
  writeFileSync(knownHosts, `${hosts.flatMap((host) => host.knownHostsLines).join('\n')}\n`);
  writeFleetFiles(sandbox, {
    nodes: hosts.map((host, index) => ({
      name: `node${index + 1}`,
      address: host.address,
      port: host.port,
      user: host.user,
    })),
    clientKeyFile: clientKey.privateKeyFile,
    knownHostsFile: knownHosts,
    configInventory: true,
  });
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await Promise.all(hosts.map((host) => host.stop()));
  sandbox?.cleanup();
});

beforeEach(() => {
  // Every test starts from a daemon that was not restarted yet and no hanging restart.
  for (const dir of shimDirs) {
    for (const file of ['restarted', 'hang.pids'])
      rmSync(join(dir, 'state', file), { force: true });
  }
});

function parseRecord(stdout: string): WorkflowRunRecord {
  const record = JSON.parse(stdout) as WorkflowRunRecord;
  const verdict = validateWorkflowRunRecord(record);
  expect(verdict.ok ? 'ok' : verdict.error.toJSON()).toBe('ok');
  return record;
}

const stepOf = (record: WorkflowRunRecord, id: string) => {
  const found = record.steps.find((step) => step.id === id);
  if (found === undefined) throw new Error(`no step ${id}`);
  return found;
};

describe('the shipped example workflows', () => {
  const files = readdirSync(EXAMPLES).filter((name) => name.endsWith('.yaml'));
  it('are the three runbooks of docs/workflows.md', () => {
    expect(files.sort()).toEqual([
      'canary-then-rest.yaml',
      'diagnose-unhealthy.yaml',
      'restart-then-diagnose.yaml',
    ]);
  });
  it.each(files)('%s is quoted verbatim in docs/workflows.md', (file) => {
    const docs = readFileSync(new URL('../../../docs/workflows.md', import.meta.url), 'utf8');
    expect(docs).toContain(`\`\`\`yaml\n${readFileSync(join(EXAMPLES, file), 'utf8')}\`\`\``);
  });
  it.each(files)('%s passes rune workflow validate', async (file) => {
    const result = await sandbox.run(['workflow', 'validate', join(EXAMPLES, file)]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('valid');
  });
});

describe('restart-then-diagnose against an sshd fleet', () => {
  it('restarts Docker; where that failed, gathers the logs there — one trace, every run audited', async () => {
    mode(0, 'ok');
    mode(1, 'fail');
    const result = await sandbox.run([
      'workflow',
      'run',
      RESTART_THEN_DIAGNOSE,
      '-i',
      'nodes=node1,node2',
      '--yes',
      '-o',
      'json',
    ]);
    const record = parseRecord(result.stdout);
    // The restart failed on node2: the handler ran, and the workflow reports the failure.
    expect(result.code, result.stderr).toBe(1);
    expect(record.status).toBe('failed');
    expect(stepOf(record, 'restart')).toMatchObject({
      status: 'partial',
      failed_nodes: ['node2'],
      reason: 'on_failure: diagnose',
    });
    expect(stepOf(record, 'restart').error?.code).toBe('PLUGIN_FAILED');
    expect(stepOf(record, 'diagnose')).toMatchObject({ status: 'succeeded', targets: ['node2'] });
    expect(record.outputs).toEqual({
      restarted: ['node1'],
      failed: ['node2'],
      diagnosed: ['node2'],
    });
    expect(restarted(0)).toBe(true);
    expect(restarted(1)).toBe(false);

    // Each step is a normal run with its own audit records, all under the workflow's trace id.
    const audit = await sandbox.run(['audit', '--trace', record.trace_id, '-o', 'json']);
    expect(audit.code, audit.stderr).toBe(0);
    const { records } = JSON.parse(audit.stdout) as {
      records: {
        event: string;
        action: string;
        status: string;
        node: string | null;
        run_id: string;
        metadata: { workflow?: { run_id: string; step: string } };
      }[];
    };
    const outcomes = records
      .filter((entry) => entry.event === 'run')
      .map((entry) => `${entry.action}@${entry.node}`)
      .sort();
    expect(outcomes).toEqual(['gather-logs@node2', 'restart-docker@node1', 'restart-docker@node2']);
    for (const entry of records) {
      expect(entry.metadata.workflow?.run_id).toBe(record.workflow_run_id);
    }
    const stepRecords = records.filter((entry) => entry.event !== 'workflow');
    const runIds = new Set(stepRecords.map((entry) => entry.run_id));
    expect(runIds.size).toBe(2);
    // The workflow as a whole: started before its first step, then its end with every step's runs.
    const own = records.filter((entry) => entry.event === 'workflow');
    expect(own.map((entry) => [entry.status, entry.action, entry.run_id])).toEqual([
      ['started', 'workflow:restart-then-diagnose', record.workflow_run_id],
      ['failed', 'workflow:restart-then-diagnose', record.workflow_run_id],
    ]);
    expect(records.indexOf(own[0] as (typeof records)[number])).toBe(0);
    expect(own[1]).toMatchObject({
      error_code: 'PLUGIN_FAILED',
      metadata: {
        inputs: ['nodes'],
        exit_code: 1,
        steps: record.steps.map((step) => ({
          id: step.id,
          status: step.status,
          run_ids: step.attempts.map((attempt) => attempt.run_id),
        })),
      },
    });
  });

  it('nothing to diagnose when every restart worked (exit 0), and jsonl streams each step', async () => {
    mode(0, 'ok');
    mode(1, 'ok');
    const result = await sandbox.run([
      'workflow',
      'run',
      RESTART_THEN_DIAGNOSE,
      '-i',
      'nodes=node1,node2',
      '--yes',
      '-o',
      'jsonl',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as unknown);
    const record = lines.at(-1) as WorkflowRunRecord;
    expect(validateWorkflowRunRecord(record).ok).toBe(true);
    for (const line of lines.slice(0, -1)) expect(validateWorkflowStepLine(line).ok).toBe(true);
    expect(stepOf(record, 'diagnose')).toMatchObject({
      status: 'skipped',
      reason: 'not on the path taken',
    });
  });

  it('a dry run says what would run where and restarts nothing', async () => {
    mode(0, 'ok');
    const result = await sandbox.run([
      'workflow',
      'run',
      RESTART_THEN_DIAGNOSE,
      '-i',
      'nodes=node1,node2',
      '--dry-run',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('would run restart-docker on node1 (ssh), node2 (ssh)');
    expect(result.stdout).toContain('would run gather-logs on the nodes where restart fails');
    expect(restarted(0)).toBe(false);
  });

  /** The error of a refused `workflow run -o json` (its stdout) and the audit records of its trace. */
  async function refusedWithRecords(stdout: string) {
    const { error } = JSON.parse(stdout) as { error: { code: string; trace_id: string } };
    const audit = await sandbox.run(['audit', '--trace', error.trace_id, '-o', 'json']);
    expect(audit.code, audit.stderr).toBe(0);
    const { records } = JSON.parse(audit.stdout) as { records: Record<string, unknown>[] };
    return { error, records };
  }

  it('without --yes the dangerous restart is refused before anything runs', async () => {
    const result = await sandbox.run([
      'workflow',
      'run',
      RESTART_THEN_DIAGNOSE,
      '-i',
      'nodes=node1',
    ]);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('DANGEROUS_ACTION_REFUSED');
    expect(restarted(0)).toBe(false);
    // Refused before its first step, the workflow still leaves a record of its own.
    const json = await sandbox.run([
      'workflow',
      'run',
      RESTART_THEN_DIAGNOSE,
      '-i',
      'nodes=node1',
      '-o',
      'json',
    ]);
    const { error, records } = await refusedWithRecords(json.stdout);
    expect(error.code).toBe('DANGEROUS_ACTION_REFUSED');
    expect(records.map((entry) => [entry.event, entry.status, entry.error_code])).toEqual([
      ['workflow', 'refused', 'DANGEROUS_ACTION_REFUSED'],
    ]);
  });

  it('an invalid file or bad inputs are refused before anything runs, and audited', async () => {
    const result = await sandbox.run([
      'workflow',
      'run',
      RESTART_THEN_DIAGNOSE,
      '-i',
      'nodes=node1',
      '-i',
      'lines=many',
      '--yes',
      '-o',
      'json',
    ]);
    expect(result.code).toBe(2);
    const { error, records } = await refusedWithRecords(result.stdout);
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(records).toEqual([
      expect.objectContaining({
        event: 'workflow',
        action: 'workflow:restart-then-diagnose',
        status: 'refused',
        error_code: 'INVALID_ARGUMENT',
        // Only the names of the inputs, never their values.
        metadata: expect.objectContaining({ inputs: ['nodes', 'lines'] }),
      }),
    ]);
    expect(JSON.stringify(records)).not.toContain('many');
    expect(restarted(0)).toBe(false);
  });

  it('Ctrl-C mid-workflow: the running restart is killed on the node, the rest is skipped, exit 130', async () => {
    mode(0, 'hang');
    mode(1, 'ok');
    const { child, stdout, stderr, exited } = sandbox.start([
      'workflow',
      'run',
      RESTART_THEN_DIAGNOSE,
      '-i',
      'nodes=node1,node2',
      '--yes',
      '-o',
      'json',
    ]);
    children.push(child);
    const pidFile = join(shimDirs[0] ?? '', 'state', 'hang.pids');
    await waitFor(
      () => existsSync(pidFile) && /^\d+ \d+\n$/.test(readFileSync(pidFile, 'utf8')),
      'systemctl restart to hang on node1',
    );
    const pids = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
    child.kill('SIGINT');
    expect(await exited, stderr()).toBe(130);
    const record = parseRecord(stdout());
    expect(record.status).toBe('cancelled');
    expect(record.error?.code).toBe('RUN_CANCELLED');
    expect(stepOf(record, 'restart').status).toBe('cancelled');
    expect(stepOf(record, 'diagnose')).toMatchObject({ status: 'skipped', reason: 'cancelled' });
    // Nothing keeps running on the node.
    for (const pid of pids) expect(isProcessAlive(pid), `pid ${pid}`).toBe(false);
  });
});
