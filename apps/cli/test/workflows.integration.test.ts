/**
 * `rune workflow` end to end: the built CLI runs examples/workflows/restart-then-diagnose.yaml
 * against two real sshd hosts on loopback with the real restart-docker and gather-logs plugins.
 * Docker and systemd are absent here, so each host gets PATH shims (sshd `SetEnv PATH=`) for
 * `systemctl`, `docker` and `journalctl`, whose behaviour a test picks per host through a mode
 * file: `ok` (the restart works), `fail` (systemctl restart exits 1), `hang` (it never returns;
 * its pids are written, which is the readiness a cancellation waits for). Every shipped example
 * is validated too.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
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
import {
  type CliSandbox,
  createCliSandbox,
  type ServeProcess,
  startHoldingProxy,
  startServeProcess,
  waitFor,
  waitForStderr,
  writeFleetFiles,
} from './cli-harness.js';

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
  // `barrier` (written by a test) holds "<my marker> <peer marker>": journalctl writes its own and
  // waits (bounded) for the peer's, so it returns only when the peer's plugin runs at the same
  // time; `journal` replaces the journal line.
  shim(
    'journalctl',
    `if [ -f "$state/barrier" ]; then
  read -r mine peer < "$state/barrier"
  : > "$mine"
  for _ in $(seq 1 200); do [ -e "$peer" ] && break; sleep 0.1; done
  if [ ! -e "$peer" ]; then echo "the parallel branch never arrived" >&2; exit 1; fi
fi
if [ -f "$state/journal" ]; then cat "$state/journal"; exit 0; fi
echo "Dec 01 10:00:01 node dockerd[1234]: failed to start daemon: containerd is not running"`,
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
        // RUNE_FIXTURE_CAPTURE: the `params` fixture plugin writes the JSON request it got there.
        extraConfig: [
          `SetEnv PATH=${join(dir, 'bin')}:${SYSTEM_PATH} RUNE_FIXTURE_CAPTURE=${join(dir, 'state', 'request.json')}`,
        ],
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
    for (const file of ['restarted', 'hang.pids', 'barrier', 'journal', 'request.json'])
      rmSync(join(dir, 'state', file), { force: true });
  }
});

/** Waits until node1's `systemctl restart` hangs (mode `hang`); returns its pids. */
async function hangingRestartPids(): Promise<number[]> {
  const pidFile = join(shimDirs[0] ?? '', 'state', 'hang.pids');
  await waitFor(
    () => existsSync(pidFile) && /^\d+ \d+\n$/.test(readFileSync(pidFile, 'utf8')),
    'systemctl restart to hang on node1',
  );
  return readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
}

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
    const pids = await hangingRestartPids();
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

/** Writes a workflow file into the sandbox; its path. */
function workflowFile(name: string, lines: readonly string[]): string {
  const file = join(sandbox.root, `${name}.yaml`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

const stateFile = (index: number, name: string): string =>
  join(shimDirs[index] ?? '', 'state', name);

/** The JSON request the `params` fixture plugin received on host `index`. */
function receivedParams(index: number): Record<string, unknown> {
  const request = JSON.parse(readFileSync(stateFile(index, 'request.json'), 'utf8')) as {
    payload: { data: { input_parameters: Record<string, unknown> } };
  };
  return request.payload.data.input_parameters;
}

/** The pretty stdout of restart-then-diagnose where node1's restart works and node2's fails. */
function expectRestartThenDiagnosePretty(stdout: string): void {
  const lines = stdout.trimEnd().split('\n');
  const duration = String.raw`(\d+ m )?[\d.]+ (ms|s)`;
  expect(lines[0]).toMatch(
    new RegExp(
      `^! restart restart-docker partial on node1, node2 \\(failed: node2\\) ${duration} — on_failure: diagnose$`,
    ),
  );
  expect(lines[1]).toMatch(/^ {4}PLUGIN_FAILED: /);
  expect(lines[2]).toMatch(new RegExp(`^✓ diagnose gather-logs succeeded on node2 ${duration}`));
  expect(lines.slice(3)).toEqual([
    'workflow restart-then-diagnose failed: 1 succeeded, 1 partial, 0 failed, 0 skipped',
    '  restarted = ["node1"]',
    '  failed = ["node2"]',
    '  diagnosed = ["node2"]',
  ]);
}

/** jsonl step lines: one per step as it ended (restart, then diagnose), each that step of `record`. */
/** `-o jsonl` output: a valid record last, each line before it a step line of that record. */
function parseJsonl(stdout: string): WorkflowRunRecord {
  const lines = stdout.trim().split('\n');
  const record = parseRecord(lines.at(-1) ?? '');
  expectStepLinesOf(
    lines.slice(0, -1).map((line) => JSON.parse(line) as Record<string, unknown>),
    record,
  );
  return record;
}

function expectStepLinesOf(stepLines: Record<string, unknown>[], record: WorkflowRunRecord): void {
  // One line per step as it ended, in the order they ended, each equal to the record's step.
  expect(stepLines.map((line) => (line.step as { id: string }).id)).toEqual([
    'restart',
    'diagnose',
  ]);
  for (const line of stepLines) {
    expect(validateWorkflowStepLine(line).ok).toBe(true);
    expect(line).toMatchObject({
      workflow_run_id: record.workflow_run_id,
      trace_id: record.trace_id,
    });
    expect(line.step).toEqual(stepOf(record, (line.step as { id: string }).id));
  }
}

describe('rune workflow validate: findings with their place', () => {
  it('prints FILE:line:column: CODE message for each problem and exits 2', async () => {
    const file = workflowFile('bad', [
      'schema_version: workflow_v1',
      'name: bad',
      'steps:',
      '  - id: first',
      '    action: no-such-action',
      '    nodes: node1',
      '  - id: second',
      '    action: noop',
      '    nodes: node1',
      '    params: { message: hi, colour: red }',
      '  - id: third',
      '    action: noop',
      '    nodes: node1',
      '    when: steps.nowhere.status == "failed"',
    ]);
    const result = await sandbox.run(['workflow', 'validate', file]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trim().split('\n');
    for (const line of lines) {
      expect(line).toMatch(new RegExp(`^${file.replaceAll('/', '\\/')}:\\d+:\\d+: [A-Z_]+ \\S`));
    }
    const places = lines.map((line) => line.slice(file.length + 1).split(' ')[0]);
    // One finding per problem, each at the line of the member it is about.
    expect(places.map((place) => place?.split(':')[0])).toEqual(['5', '10', '14']);
    expect(lines[0]).toContain('no-such-action');
    expect(lines[1]).toContain('colour');
    expect(lines[2]).toContain('nowhere');
  });
});

describe('computed parameters with shell metacharacters over sshd', () => {
  it('arrive verbatim in the plugin’s JSON request and execute nothing', async () => {
    const marker = join(sandbox.root, 'pwned');
    const nasty = [
      `$(touch ${marker})`,
      `\`touch ${marker}\``,
      `"double" 'single'`,
      `a;touch ${marker}`,
      `a && touch ${marker}`,
      'line1\nline2',
    ];
    const text = nasty.join(' | ');
    // The earlier step's output (a journal line) carries them too.
    const journal = `Dec 01 10:00:01 node app: $(touch ${marker}); \`touch ${marker}\` 'q' "dq"`;
    writeFileSync(stateFile(0, 'journal'), `${journal}\n`);
    const file = workflowFile('metacharacters', [
      'schema_version: workflow_v1',
      'name: metacharacters',
      'inputs:',
      '  text: { type: string, required: true }',
      '  items: { type: array, required: true }',
      'steps:',
      '  - id: logs',
      '    action: gather-logs',
      '    nodes: node1',
      '    params: { lines: 5 }',
      '  - id: from_inputs',
      '    action: params',
      '    nodes: node1',
      '    params: { name: "${{ inputs.text }}", items: "${{ inputs.items }}" }',
      '  - id: from_output',
      '    action: params',
      '    nodes: node2',
      '    params:',
      '      name: "${{ steps.logs.nodes.node1.output_data.journal.excerpt.lines[0] }}"',
      '      items: "${{ [inputs.text + \';\'] + steps.logs.nodes.node1.output_data.journal.excerpt.lines }}"',
    ]);
    const result = await sandbox.run([
      'workflow',
      'run',
      file,
      '-i',
      `text=${text}`,
      '-i',
      `items=${nasty.join(',')}`,
      '-o',
      'json',
    ]);
    expect(result.code, `${result.stdout}${result.stderr}`).toBe(0);
    const record = parseRecord(result.stdout);
    expect(record.steps.map((step) => [step.id, step.status])).toEqual([
      ['logs', 'succeeded'],
      ['from_inputs', 'succeeded'],
      ['from_output', 'succeeded'],
    ]);
    expect(receivedParams(0)).toMatchObject({ name: text, items: nasty });
    const fromOutput = receivedParams(1);
    expect(fromOutput).toMatchObject({ name: journal, items: [`${text};`, journal] });
    expect(existsSync(marker)).toBe(false);
  });
});

describe('parallel branches and retries over sshd', () => {
  it('the branches of a parallel group run at the same time (each waits for the other)', async () => {
    const barrier = join(sandbox.root, 'barrier');
    rmSync(barrier, { recursive: true, force: true });
    mkdirSync(barrier);
    writeFileSync(stateFile(0, 'barrier'), `${join(barrier, 'left')} ${join(barrier, 'right')}\n`);
    writeFileSync(stateFile(1, 'barrier'), `${join(barrier, 'right')} ${join(barrier, 'left')}\n`);
    const file = workflowFile('barrier', [
      'schema_version: workflow_v1',
      'name: barrier',
      'steps:',
      '  - id: both',
      '    parallel:',
      '      - { id: left, action: gather-logs, nodes: node1, params: { lines: 5 } }',
      '      - { id: right, action: gather-logs, nodes: node2, params: { lines: 5 } }',
    ]);
    const result = await sandbox.run(['workflow', 'run', file, '-o', 'json']);
    expect(result.code, result.stderr).toBe(0);
    const record = parseRecord(result.stdout);
    // Each journalctl returned only after the other branch's had started: a branch run after
    // the other would have found no peer and fallen back (a partial result with a warning).
    for (const id of ['left', 'right']) {
      expect(stepOf(record, id).attempts[0]?.nodes[0]?.status, id).toBe('success');
    }
    expect(stepOf(record, 'both').status).toBe('succeeded');
  });

  it('a retry waits its delay: the record’s attempt times are at least that far apart', async () => {
    mode(1, 'fail');
    const file = workflowFile('retry-delay', [
      'schema_version: workflow_v1',
      'name: retry-delay',
      'steps:',
      '  - id: restart',
      '    action: restart-docker',
      '    nodes: node2',
      '    retry: { count: 2, delay: 2s, on: [PLUGIN_FAILED] }',
    ]);
    const result = await sandbox.run(['workflow', 'run', file, '--yes', '-o', 'json']);
    expect(result.code, result.stderr).toBe(1);
    const record = parseRecord(result.stdout);
    const attempts = stepOf(record, 'restart').attempts;
    expect(attempts.map((attempt) => attempt.status)).toEqual(['failed', 'failed', 'failed']);
    for (let index = 1; index < attempts.length; index++) {
      const previous = attempts[index - 1];
      const next = attempts[index];
      const gap = Date.parse(next?.started_at ?? '') - Date.parse(previous?.ended_at ?? '');
      expect(gap, `between attempts ${index - 1} and ${index}`).toBeGreaterThanOrEqual(2000);
    }
  });
});

describe('rune workflow run: the output formats over sshd', () => {
  it('pretty: a line per step as it ends, the totals and the outputs', async () => {
    mode(0, 'ok');
    mode(1, 'fail');
    const result = await sandbox.run([
      'workflow',
      'run',
      RESTART_THEN_DIAGNOSE,
      '-i',
      'nodes=node1,node2',
      '--yes',
    ]);
    expect(result.code, result.stderr).toBe(1);
    expectRestartThenDiagnosePretty(result.stdout);
    // The header names the workflow run and its trace: the audit trail has them.
    const header =
      /^workflow restart-then-diagnose \(run ([0-9a-f-]{36}), trace ([0-9a-f]{32})\)$/m.exec(
        result.stderr,
      );
    expect(header, result.stderr).not.toBeNull();
    const audit = await sandbox.run(['audit', '--trace', header?.[2] ?? '', '-o', 'json']);
    const { records } = JSON.parse(audit.stdout) as {
      records: { event: string; status: string; run_id: string }[];
    };
    expect(
      records
        .filter((entry) => entry.event === 'workflow')
        .map((entry) => [entry.status, entry.run_id]),
    ).toEqual([
      ['started', header?.[1]],
      ['failed', header?.[1]],
    ]);
  });

  it('json and jsonl: the record, and each step line is that step of the record', async () => {
    mode(0, 'ok');
    mode(1, 'fail');
    const args = ['workflow', 'run', RESTART_THEN_DIAGNOSE, '-i', 'nodes=node1,node2', '--yes'];
    const jsonl = await sandbox.run([...args, '-o', 'jsonl']);
    expect(jsonl.code, jsonl.stderr).toBe(1);
    const record = parseJsonl(jsonl.stdout);
    // -o json prints the same kind of record (another run of it): the same steps and statuses,
    // and the audit trail's end record lists exactly its runs.
    const json = await sandbox.run([...args, '-o', 'json']);
    const other = parseRecord(json.stdout);
    const shape = (of: WorkflowRunRecord) =>
      of.steps.map((step) => [step.id, step.status, step.targets, step.failed_nodes]);
    expect(shape(other)).toEqual(shape(record));
    expect(other.outputs).toEqual(record.outputs);
    const audit = await sandbox.run(['audit', '--trace', other.trace_id, '-o', 'json']);
    const { records } = JSON.parse(audit.stdout) as {
      records: { event: string; status: string; metadata: { steps?: unknown } }[];
    };
    expect(
      records.find((entry) => entry.event === 'workflow' && entry.status === 'failed')?.metadata
        .steps,
    ).toEqual(
      other.steps.map((step) => ({
        id: step.id,
        status: step.status,
        run_ids: step.attempts.map((attempt) => attempt.run_id),
      })),
    );
  });
});

describe('rune serve: workflows over the API (the curl examples of docs/workflows.md, --server)', () => {
  let serve: ServeProcess | undefined;
  let token = '';
  beforeAll(async () => {
    // The server runs the shipped examples by name, on this fleet; docs/workflows.md names its
    // nodes web01 and web02 (the same two hosts as node1 and node2).
    const workflows = join(sandbox.root, 'server-workflows');
    mkdirSync(workflows, { recursive: true });
    copyFileSync(RESTART_THEN_DIAGNOSE, join(workflows, 'restart-then-diagnose.yaml'));
    const inventory = join(sandbox.root, 'fleet.yaml');
    const fleet = readFileSync(inventory, 'utf8');
    if (!fleet.includes('web01:')) {
      const aliases = hosts.map(
        (host, index) =>
          `  web0${index + 1}: { address: "${host.address}", port: ${host.port}, user: ${host.user} }`,
      );
      writeFileSync(inventory, fleet.replace('nodes:\n', `nodes:\n${aliases.join('\n')}\n`));
    }
    const config = join(sandbox.root, 'rune.toml');
    writeFileSync(
      config,
      `${readFileSync(config, 'utf8')}\n[server]\nworkflows = ${JSON.stringify(workflows)}\n`,
    );
    const created = await sandbox.run([
      'token',
      'create',
      '--name',
      'ops',
      '--role',
      'operator',
      '--config',
      config,
    ]);
    expect(created.code, created.stderr).toBe(0);
    token = created.stdout.trim();
    serve = await startServeProcess(config, sandbox.env, ['--listen', '127.0.0.1:0']);
  }, 60_000);
  afterAll(async () => {
    await serve?.stop();
  });

  /** `rune workflow run restart-then-diagnose` on node1 and node2 through the server at `url`. */
  const remoteArgs = (url: string): string[] => [
    'workflow',
    'run',
    'restart-then-diagnose',
    '-i',
    'nodes=node1,node2',
    '--yes',
    '--server',
    url,
  ];

  const api = async (path: string): Promise<WorkflowRunRecord> => {
    const response = await fetch(`${serve?.url}${path}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    return (await response.json()) as WorkflowRunRecord;
  };

  it('docs/workflows.md: the curl examples run against it (start, read while running, cancel)', async () => {
    const docs = readFileSync(new URL('../../../docs/workflows.md', import.meta.url), 'utf8');
    const section = docs.slice(docs.indexOf('## With the server'));
    const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    expect(block).toContain('/v1/workflows/restart-then-diagnose/runs');
    mode(0, 'hang'); // web01's restart hangs: the workflow is still running when read and cancelled
    mode(1, 'ok');
    const work = join(sandbox.root, 'doc-work');
    mkdirSync(work, { recursive: true });
    // Each answer on a line of its own (curl prints none after the body).
    const script = `curl() { command curl -w '\\n' "$@"; }\n${block}`;
    const bash = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn('bash', ['-euo', 'pipefail', '-c', script], {
        cwd: work,
        env: { ...sandbox.env, RUNE_URL: serve?.url ?? '', RUNE_TOKEN: token },
      });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      child.stderr.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      child.once('exit', (code) => resolve({ code, out }));
    });
    expect(bash.code, `${bash.out}\n--- server log ---\n${serve?.log()}`).toBe(0);
    const answers = bash.out
      .trim()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    // tee printed the 202, then the record, then the cancel's 202.
    expect(answers).toHaveLength(3);
    const [started, read, cancelled] = answers;
    expect(started).toMatchObject({ status: 'running' });
    const id = started?.workflow_run_id as string;
    expect(started?.links).toEqual({ self: `/v1/workflows/runs/${id}` });
    expect(read).toMatchObject({ workflow_run_id: id, status: 'running' });
    expect(cancelled).toMatchObject({ workflow_run_id: id, trace_id: started?.trace_id });
    const record = await waitForRecord(id);
    expect(record).toMatchObject({ status: 'cancelled', exit_code: 130 });
    expect(stepOf(record, 'restart').status).toBe('cancelled');
    expect(stepOf(record, 'diagnose')).toMatchObject({ status: 'skipped', reason: 'cancelled' });
  });

  /** The record once the workflow ended (readiness: its status, polled). */
  async function waitForRecord(id: string): Promise<WorkflowRunRecord> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const record = await api(`/v1/workflows/runs/${id}`);
      if (record.status !== 'running') return record;
      if (Date.now() > deadline) throw new Error(`workflow run ${id} did not end`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('while a step runs, the record names its run (attempt running with its run id)', async () => {
    mode(0, 'hang');
    mode(1, 'ok');
    const response = await fetch(`${serve?.url}/v1/workflows/restart-then-diagnose/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: { nodes: ['node1'] }, confirm: true }),
    });
    expect(response.status).toBe(202);
    const { workflow_run_id: id } = (await response.json()) as { workflow_run_id: string };
    await hangingRestartPids();
    // The plugin runs on the node: the saved record already says which run that is.
    const running = await api(`/v1/workflows/runs/${id}`);
    expect(validateWorkflowRunRecord(running).ok).toBe(true);
    const restart = stepOf(running, 'restart');
    expect(restart.status).toBe('running');
    expect(restart.attempts).toEqual([
      expect.objectContaining({ status: 'running', nodes: [], ended_at: null }),
    ]);
    const runId = restart.attempts[0]?.run_id;
    const run = (await (
      await fetch(`${serve?.url}/v1/runs/${runId}`, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).json()) as { status: string; trace_id: string };
    expect(run).toMatchObject({ status: 'running', trace_id: running.trace_id });
    await fetch(`${serve?.url}/v1/workflows/runs/${id}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    const ended = await waitForRecord(id);
    expect(stepOf(ended, 'restart').attempts).toEqual([
      expect.objectContaining({ run_id: runId, status: 'cancelled' }),
    ]);
  });

  it('rune workflow run --server: the same pretty output, rendered from the server’s record', async () => {
    mode(0, 'ok');
    mode(1, 'fail');
    const result = await sandbox.run(remoteArgs(serve?.url ?? ''), { env: { RUNE_TOKEN: token } });
    expect(result.code, result.stderr).toBe(1);
    expectRestartThenDiagnosePretty(result.stdout);
    expect(result.stderr).toMatch(/^workflow run [0-9a-f-]{36} on http:\/\/127\.0\.0\.1:\d+$/m);
  });

  it('rune workflow run --server -o json and jsonl: the server’s record, step lines equal to it', async () => {
    mode(0, 'ok');
    mode(1, 'fail');
    const args = [
      'workflow',
      'run',
      'restart-then-diagnose.yaml', // a file name stands for the server's workflow of that name
      '-i',
      'nodes=node1,node2',
      '--yes',
      '--server',
      serve?.url ?? '',
    ];
    const json = await sandbox.run([...args, '-o', 'json'], { env: { RUNE_TOKEN: token } });
    expect(json.code, json.stderr).toBe(1);
    const record = parseRecord(json.stdout);
    expect(record).toEqual(await api(`/v1/workflows/runs/${record.workflow_run_id}`));
    expect(record.outputs).toEqual({
      restarted: ['node1'],
      failed: ['node2'],
      diagnosed: ['node2'],
    });
    const jsonl = await sandbox.run([...args, '-o', 'jsonl'], { env: { RUNE_TOKEN: token } });
    expect(jsonl.code, jsonl.stderr).toBe(1);
    const last = parseJsonl(jsonl.stdout);
    expect(last).toEqual(await api(`/v1/workflows/runs/${last.workflow_run_id}`));
  });

  it('rune workflow run --server: Ctrl-C cancels the workflow on the server (exit 130, nothing left running)', async () => {
    mode(0, 'hang');
    mode(1, 'ok');
    const { child, stdout, stderr, exited } = sandbox.start(
      [...remoteArgs(serve?.url ?? ''), '-o', 'json'],
      { env: { RUNE_TOKEN: token } },
    );
    children.push(child);
    const pids = await hangingRestartPids();
    child.kill('SIGINT');
    expect(await exited, stderr()).toBe(130);
    const record = parseRecord(stdout());
    expect(record).toMatchObject({ status: 'cancelled', exit_code: 130 });
    expect(record.error?.message).toBe('cancelled by token:ops');
    expect(stepOf(record, 'diagnose')).toMatchObject({ status: 'skipped', reason: 'cancelled' });
    for (const pid of pids) expect(isProcessAlive(pid), `pid ${pid}`).toBe(false);
  });

  it('rune workflow run --server --dry-run (the command of docs/workflows.md): the server plans every step, pretty, json and jsonl; nothing runs', async () => {
    mode(0, 'ok');
    mode(1, 'ok');
    const url = serve?.url ?? '';
    const docs = readFileSync(new URL('../../../docs/workflows.md', import.meta.url), 'utf8');
    const line = /^rune workflow run \S+ .*--server "\$RUNE_URL" --dry-run$/m.exec(docs)?.[0];
    expect(line, 'the --server --dry-run example of docs/workflows.md').toBeDefined();
    // As a reader's shell would split it, with the server's URL for $RUNE_URL.
    const args = (line ?? '').replace('"$RUNE_URL"', url).split(' ').slice(1);
    const env = { env: { RUNE_TOKEN: token } };
    const pretty = await sandbox.run(args, env);
    expect(pretty.code, pretty.stderr).toBe(0);
    expect(pretty.stderr).toMatch(
      /^dry run of restart-then-diagnose \(run [0-9a-f-]{36}, trace [0-9a-f]{32}\)$/m,
    );
    expect(pretty.stdout.trimEnd().split('\n')).toEqual([
      '· restart restart-docker pending on web01, web02 — would run restart-docker on web01 (ssh), web02 (ssh)',
      '· diagnose gather-logs pending — would run gather-logs on the nodes where restart fails',
      'workflow restart-then-diagnose succeeded: 2 step(s) planned',
    ]);

    const json = await sandbox.run([...args, '-o', 'json'], env);
    expect(json.code, json.stderr).toBe(0);
    const record = parseRecord(json.stdout);
    expect(record).toMatchObject({
      workflow: 'restart-then-diagnose',
      dry_run: true,
      status: 'succeeded',
      exit_code: 0,
      inputs: { nodes: ['web01', 'web02'], lines: 500 },
    });
    expect(record.steps.map((step) => [step.id, step.status, step.targets, step.attempts])).toEqual(
      [
        ['restart', 'pending', ['web01', 'web02'], []],
        ['diagnose', 'pending', [], []],
      ],
    );
    // A plan is not kept as a workflow run; the step the server could plan is audited `dry-run`.
    const stored = await fetch(`${url}/v1/workflows/runs/${record.workflow_run_id}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(stored.status).toBe(404);
    const audit = (await (
      await fetch(`${url}/v1/audit?trace_id=${record.trace_id}`, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).json()) as { records: { event: string; action: string; nodes: string[] }[] };
    expect(audit.records.map(({ event, action, nodes }) => ({ event, action, nodes }))).toEqual([
      { event: 'dry-run', action: 'restart-docker', nodes: ['web01', 'web02'] },
    ]);

    const jsonl = await sandbox.run([...args, '-o', 'jsonl'], env);
    expect(jsonl.code, jsonl.stderr).toBe(0);
    const last = parseJsonl(jsonl.stdout);
    expect(last).toMatchObject({ dry_run: true, status: 'succeeded' });
    expect(last.steps.map((step) => step.status)).toEqual(['pending', 'pending']);

    // A step that cannot be planned says why, and the exit code is that failure's.
    const unknown = await sandbox.run(
      [
        'workflow',
        'run',
        'restart-then-diagnose',
        '-i',
        'nodes=nowhere',
        '--server',
        url,
        '--dry-run',
      ],
      env,
    );
    expect(unknown.code, unknown.stderr).toBe(2);
    expect(unknown.stdout).toContain('· restart restart-docker pending — would fail: UNKNOWN_NODE');
    expect(restarted(0) || restarted(1)).toBe(false);
  });

  /** A relay to the server that holds its answer to the start of restart-then-diagnose. */
  const holdStart = () =>
    startHoldingProxy(
      serve?.url ?? '',
      (method, path) => method === 'POST' && path === '/v1/workflows/restart-then-diagnose/runs',
    );
  const startRemote = (url: string) => {
    const started = sandbox.start(remoteArgs(url), { env: { RUNE_TOKEN: token } });
    children.push(started.child);
    return started;
  };
  const PENDING = 'interrupted: the workflow is cancelled as soon as the server answers its start';

  it('rune workflow run --server: Ctrl-C before the server answered the start cancels it once it has (exit 130)', async () => {
    mode(0, 'hang');
    mode(1, 'ok');
    const proxy = await holdStart();
    try {
      const cli = startRemote(proxy.url);
      const { child, stdout, stderr, exited } = cli;
      // The server took the start and runs the workflow; its answer waits in the relay.
      const answer = await proxy.held;
      expect(answer.status).toBe(202);
      const id = (JSON.parse(answer.body) as { workflow_run_id: string }).workflow_run_id;
      const pids = await hangingRestartPids();
      child.kill('SIGINT');
      // The CLI took the Ctrl-C while it did not know the workflow's id yet.
      await waitForStderr(cli, PENDING);
      proxy.release();
      expect(await exited, stderr()).toBe(130);
      expect(stderr()).toContain(`workflow run ${id} on ${proxy.url}`);
      expect(stdout()).toMatch(/cancelled/);
      const record = await waitForRecord(id);
      expect(record).toMatchObject({ status: 'cancelled', exit_code: 130 });
      expect(record.error?.message).toBe('cancelled by token:ops');
      expect(stepOf(record, 'restart').status).toBe('cancelled');
      expect(stepOf(record, 'diagnose')).toMatchObject({ status: 'skipped', reason: 'cancelled' });
      // No step run keeps running: each ended, and the plugin's processes on the node are gone.
      for (const step of record.steps) {
        for (const attempt of step.attempts) {
          const run = (await (
            await fetch(`${serve?.url}/v1/runs/${attempt.run_id}`, {
              headers: { authorization: `Bearer ${token}` },
            })
          ).json()) as { status: string };
          expect(run.status).toBe('cancelled');
        }
      }
      for (const pid of pids) expect(isProcessAlive(pid), `pid ${pid}`).toBe(false);
    } finally {
      await proxy.close();
    }
  });

  it('rune workflow run --server: a second Ctrl-C quits at once and says the workflow may still run there', async () => {
    mode(0, 'hang');
    mode(1, 'ok');
    const proxy = await holdStart();
    try {
      const cli = startRemote(proxy.url);
      const { child, stderr, exited } = cli;
      const id = (JSON.parse((await proxy.held).body) as { workflow_run_id: string })
        .workflow_run_id;
      child.kill('SIGINT');
      await waitForStderr(cli, PENDING);
      child.kill('SIGINT');
      expect(await exited, stderr()).toBe(130);
      expect(stderr()).toContain(
        `warning: quitting before ${proxy.url} answered: the workflow run may have started there and may still be running (its id is not known yet)`,
      );
      // It does: nobody cancelled it. The test does, and waits for its end.
      expect((await api(`/v1/workflows/runs/${id}`)).status).toBe('running');
      await fetch(`${serve?.url}/v1/workflows/runs/${id}/cancel`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      expect((await waitForRecord(id)).status).toBe('cancelled');
    } finally {
      await proxy.close();
    }
  });

  it('rune workflow run --server: no token is AUTH_TOKEN_MISSING (exit 4); bad inputs exit 2', async () => {
    const base = ['workflow', 'run', 'restart-then-diagnose', '--server', serve?.url ?? ''];
    const anonymous = await sandbox.run([...base, '-i', 'nodes=node1']);
    expect(anonymous.code).toBe(4);
    expect(anonymous.stderr).toContain('AUTH_TOKEN_MISSING');
    const bad = await sandbox.run([...base, '-i', 'nodes=node1', '-i', 'lines=many', '--yes'], {
      env: { RUNE_TOKEN: token },
    });
    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.stderr).toContain('input lines must be an integer');
    expect(restarted(0)).toBe(false);
  });
});
