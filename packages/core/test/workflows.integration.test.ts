/**
 * The workflow engine end to end on the local transport: the real `wf-probe` bash plugin (it
 * behaves by node name: fail*, flaky*, slow*), the real file audit sink, `rune.start()` for every
 * step. Each control construct of specs/workflow-v1.md has a test; every record is checked with
 * the protocol's own validator; cancellation waits for the plugin's pid file (its readiness) and
 * then checks that the process is gone.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  RuneError,
  validateWorkflowRunRecord,
  type WorkflowRunRecord,
  type WorkflowStepRecord,
} from '@rune/protocol';
import { isProcessAlive } from '@rune/transport/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createLocalTransport,
  createRune,
  loadWorkflowText,
  type Rune,
  type RunWorkflowOptions,
  runeStepRunner,
  runWorkflow,
  type WorkflowStepRun,
  type WorkflowStepRunner,
} from '../src/index.js';
import { createFixtureEnv, type FixtureEnv } from './fixture-env.js';

const PROBE = new URL('./fixtures/workflows/wf-probe.sh', import.meta.url).pathname;

let fx: FixtureEnv;
let rune: Rune;
let pidDir: string;

beforeAll(() => {
  fx = createFixtureEnv();
  pidDir = join(fx.root, 'pids');
  mkdirSync(pidDir);
  copyFileSync(PROBE, join(fx.pluginDir, 'wf-probe.sh'));
  rune = createRune({
    env: fx.env,
    home: fx.home,
    cwd: fx.root,
    pluginSources: [{ kind: 'user', dir: fx.pluginDir }],
    transports: {
      local: () =>
        createLocalTransport({
          env: { ...fx.env, RUNE_FLEET_PIDDIR: pidDir },
          killGraceMs: 300,
          isLocalNode: () => true,
        }),
    },
  });
});
afterAll(async () => {
  await rune.close();
  fx.cleanup();
});
beforeEach(() => {
  rmSync(pidDir, { recursive: true, force: true });
  mkdirSync(pidDir);
});

/** `node value` lines the plugin appended, one per run on a node. */
const calls = (): string[] => {
  const file = join(pidDir, 'calls');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .sort();
};

const probe = (id: string, nodes: unknown, extra: Record<string, unknown> = {}) => ({
  id,
  action: 'wf-probe',
  nodes,
  transport: 'local',
  ...extra,
});

function workflow(steps: unknown[], extra: Record<string, unknown> = {}) {
  return loadWorkflowText(
    JSON.stringify({ schema_version: 'workflow_v1', name: 'test-flow', steps, ...extra }),
    'test-flow.json',
    { registry: rune.registry() },
  ).definition;
}

async function run(
  steps: unknown[],
  extra: Record<string, unknown> = {},
  options: Partial<RunWorkflowOptions> = {},
): Promise<WorkflowRunRecord> {
  const record = await runWorkflow(workflow(steps, extra), {
    runner: runeStepRunner(rune),
    registry: rune.registry(),
    confirmDangerous: true,
    ...options,
  });
  const verdict = validateWorkflowRunRecord(record);
  expect(verdict.ok ? 'ok' : verdict.error.toJSON()).toBe('ok');
  return record;
}

const step = (record: WorkflowRunRecord, id: string): WorkflowStepRecord => {
  const found = record.steps.find((candidate) => candidate.id === id);
  if (found === undefined) throw new Error(`no step ${id}`);
  return found;
};

const auditRecords = (): Record<string, unknown>[] =>
  readFileSync(fx.auditLog, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe('a sequence', () => {
  it('runs each step as a normal run under one trace id, linked by the workflow run id', async () => {
    const record = await run(
      [
        probe('first', '${{ inputs.nodes }}', { params: { value: '${{ "v-" + inputs.tag }}' } }),
        probe('second', ['ok2'], {
          params: { value: '${{ steps.first.nodes.ok1.output_data.value }}' },
        }),
      ],
      {
        inputs: { nodes: { type: 'array', required: true }, tag: { type: 'string', default: 'x' } },
        outputs: {
          done: 'steps.second.succeeded_nodes',
          total: 'steps.first.nodes.ok1.output_data.count + 1',
        },
      },
      { inputArgs: ['nodes=ok1,ok3', 'tag=seven'] },
    );
    expect(record.status).toBe('succeeded');
    expect(record.exit_code).toBe(0);
    expect(calls()).toEqual(['ok1 v-seven', 'ok2 v-seven', 'ok3 v-seven']);
    expect(record.outputs).toEqual({ done: ['ok2'], total: 4 });
    expect(record.inputs).toEqual({ nodes: ['ok1', 'ok3'], tag: 'seven' });

    const runIds = record.steps.flatMap((entry) => entry.attempts.map((attempt) => attempt.run_id));
    expect(runIds).toHaveLength(2);
    const ours = auditRecords().filter((entry) => runIds.includes(String(entry.run_id)));
    // One intent per run and one outcome per node, all with the workflow's trace id and run id.
    expect(ours.map((entry) => entry.event).sort()).toEqual([
      'intent',
      'intent',
      'run',
      'run',
      'run',
    ]);
    for (const entry of ours) {
      expect(entry.trace_id).toBe(record.trace_id);
      const metadata = entry.metadata as { workflow?: Record<string, unknown> };
      expect(metadata.workflow).toMatchObject({
        name: 'test-flow',
        run_id: record.workflow_run_id,
      });
    }
  });
});

describe('control', () => {
  it('when: a false condition skips the step and the workflow goes on', async () => {
    const record = await run([
      probe('first', 'ok1'),
      probe('skipped', 'ok2', { when: 'steps.first.status == "failed"' }),
      probe('third', 'ok3', { when: 'steps.skipped.status == "skipped"' }),
    ]);
    expect(step(record, 'skipped')).toMatchObject({ status: 'skipped', reason: 'when is false' });
    expect(step(record, 'third').status).toBe('succeeded');
    expect(calls()).toEqual(['ok1 ', 'ok3 ']);
  });

  it('on_failure abort (the default): the rest is skipped and the workflow fails', async () => {
    const record = await run([probe('first', 'fail1'), probe('second', 'ok2')]);
    expect(record.status).toBe('failed');
    expect(record.exit_code).toBe(1);
    expect(record.error?.code).toBe('PLUGIN_FAILED');
    expect(step(record, 'first')).toMatchObject({ status: 'failed', reason: 'on_failure: abort' });
    expect(step(record, 'second')).toMatchObject({
      status: 'skipped',
      reason: 'aborted after first',
    });
    expect(calls()).toEqual(['fail1 ']);
  });

  it('on_failure continue: the failure is tolerated', async () => {
    const record = await run([
      probe('first', ['fail1', 'ok1'], { on_failure: 'continue' }),
      probe('second', 'ok2'),
    ]);
    expect(record.status).toBe('succeeded');
    expect(step(record, 'first')).toMatchObject({ status: 'partial', failed_nodes: ['fail1'] });
    expect(step(record, 'second').status).toBe('succeeded');
  });

  it('on_failure <step>: jumps there; the steps in between are not on the path; the failure stands', async () => {
    const record = await run([
      probe('first', 'fail1', { on_failure: 'handler' }),
      probe('skipped', 'ok2', { next: 'end' }),
      probe('handler', 'ok3'),
    ]);
    expect(record.status).toBe('failed');
    expect(step(record, 'skipped')).toMatchObject({
      status: 'skipped',
      reason: 'not on the path taken',
    });
    expect(step(record, 'handler').status).toBe('succeeded');
    expect(calls()).toEqual(['fail1 ', 'ok3 ']);
  });

  it('next: end stops after success', async () => {
    const record = await run([
      probe('first', 'ok1', { next: 'end', on_failure: 'handler' }),
      probe('handler', 'ok2'),
    ]);
    expect(record.status).toBe('succeeded');
    expect(step(record, 'handler').status).toBe('skipped');
    expect(calls()).toEqual(['ok1 ']);
  });

  it('failed_in: the next step runs only on the nodes where the earlier one failed', async () => {
    const record = await run([
      probe('restart', ['ok1', 'fail1', 'fail2'], { on_failure: 'continue' }),
      {
        id: 'diagnose',
        action: 'wf-probe',
        failed_in: 'restart',
        transport: 'local',
        params: { value: 'logs' },
      },
    ]);
    expect(step(record, 'diagnose').targets.sort()).toEqual(['fail1', 'fail2']);
    expect(calls()).toEqual(['fail1 ', 'fail1 logs', 'fail2 ', 'fail2 logs', 'ok1 ']);
  });

  it('failed_in with no failures: the step is skipped (no targets)', async () => {
    const record = await run([
      probe('restart', ['ok1'], { on_failure: 'continue' }),
      { id: 'diagnose', action: 'wf-probe', failed_in: 'restart', transport: 'local' },
    ]);
    expect(step(record, 'diagnose')).toMatchObject({ status: 'skipped', reason: 'no targets' });
  });

  it('retry: runs again on the failed nodes only, with a code from `on`', async () => {
    const record = await run([
      probe('first', ['ok1', 'flaky1'], {
        retry: { count: 2, delay: '10ms', on: ['PLUGIN_FAILED'] },
      }),
    ]);
    expect(record.status).toBe('succeeded');
    const attempts = step(record, 'first').attempts;
    expect(attempts).toHaveLength(2);
    expect(attempts[1]?.nodes.map((node) => node.node)).toEqual(['flaky1']);
    expect(calls()).toEqual(['flaky1 ', 'flaky1 ', 'ok1 ']);
  });

  it('retry: a code not in `on` (or not retryable by default) is not retried', async () => {
    const record = await run([probe('first', ['fail1'], { retry: { count: 3 } })]);
    expect(step(record, 'first').attempts).toHaveLength(1);
  });

  it('timeout: a step whose nodes outlive it fails with PLUGIN_TIMEOUT', async () => {
    const record = await run([probe('first', 'slow1', { timeout: '500ms' })]);
    expect(step(record, 'first').error?.code).toBe('PLUGIN_TIMEOUT');
    expect(record.exit_code).toBe(5);
  });

  it('parallel: branches run together and join; a continue branch does not fail the group', async () => {
    const record = await run([
      {
        id: 'checks',
        parallel: [probe('a', 'ok1'), probe('b', 'fail1', { on_failure: 'continue' })],
        on_failure: 'diagnose',
      },
      probe('after', 'ok2', { next: 'end' }),
      probe('diagnose', 'ok3'),
    ]);
    expect(record.status).toBe('succeeded');
    expect(step(record, 'checks')).toMatchObject({ status: 'succeeded', failed_nodes: ['fail1'] });
    expect(step(record, 'a').group).toBe('checks');
    expect(step(record, 'after').status).toBe('succeeded');
    expect(step(record, 'diagnose').status).toBe('skipped');
  });

  it('parallel: a failing abort branch fails the group, whose on_failure applies', async () => {
    const record = await run([
      { id: 'checks', parallel: [probe('a', 'ok1'), probe('b', 'fail1')], on_failure: 'diagnose' },
      probe('after', 'ok2', { next: 'end' }),
      { id: 'diagnose', action: 'wf-probe', failed_in: 'b', transport: 'local' },
    ]);
    expect(step(record, 'checks')).toMatchObject({
      status: 'failed',
      reason: 'on_failure: diagnose',
    });
    expect(step(record, 'after').status).toBe('skipped');
    expect(step(record, 'diagnose').targets).toEqual(['fail1']);
  });

  it('approval: refused with APPROVAL_UNAVAILABLE, and nothing after it runs', async () => {
    const record = await run([
      probe('first', 'ok1'),
      { id: 'gate', approval: { message: 'go ahead?' } },
      probe('after', 'ok2'),
    ]);
    expect(record.status).toBe('failed');
    expect(record.exit_code).toBe(4);
    expect(step(record, 'gate')).toMatchObject({ status: 'failed' });
    expect(step(record, 'gate').error?.code).toBe('APPROVAL_UNAVAILABLE');
    expect(step(record, 'after').status).toBe('skipped');
    expect(calls()).toEqual(['ok1 ']);
  });
});

describe('runtime expression errors fail the step with WORKFLOW_EXPRESSION_ERROR', () => {
  it.each([
    ['a wrong type', { value: '${{ inputs.count + "x" }}' }],
    ['a missing field', { value: '${{ steps.first.nodes.nobody.output_data.value }}' }],
    ['a value with no JSON form', { value: '${{ b"bytes" }}' }],
  ])('%s', async (_name, params) => {
    const record = await run(
      [probe('first', 'ok1'), probe('second', 'ok2', { params }), probe('third', 'ok3')],
      { inputs: { count: { type: 'integer', default: 3 } } },
    );
    expect(step(record, 'second').status).toBe('failed');
    expect(step(record, 'second').error?.code).toBe('WORKFLOW_EXPRESSION_ERROR');
    expect(step(record, 'third').status).toBe('skipped');
    expect(record.exit_code).toBe(2);
    expect(calls()).toEqual(['ok1 ']);
  });

  it('a condition that is not a bool', async () => {
    const record = await run([probe('first', 'ok1', { when: 'inputs.count' })], {
      inputs: { count: { type: 'integer', default: 3 } },
    });
    expect(step(record, 'first').error?.code).toBe('WORKFLOW_EXPRESSION_ERROR');
  });

  it('targets that are not strings', async () => {
    const record = await run([probe('first', '${{ [1, 2] }}')]);
    expect(step(record, 'first').error?.code).toBe('WORKFLOW_EXPRESSION_ERROR');
    expect(calls()).toEqual([]);
  });
});

describe('bounds', () => {
  it('max_runs stops a workflow whose retries would start more runs', async () => {
    const record = await run(
      [
        probe('first', 'ok1'),
        probe('second', 'fail1', { retry: { count: 5, on: ['PLUGIN_FAILED'] } }),
      ],
      { max_runs: 3 },
    );
    expect(step(record, 'second').attempts).toHaveLength(2);
    expect(step(record, 'second').error?.code).toBe('WORKFLOW_RUN_LIMIT');
    expect(record.exit_code).toBe(4);
  });
});

describe('refusals before anything runs', () => {
  it.each([
    [['count=many'], 'input count must be an integer'],
    [['nope=1'], 'unknown input'],
    [[], 'input nodes is required'],
    [['nodes'], 'not key=value'],
  ])('inputs %j', async (inputArgs, message) => {
    const definition = workflow([probe('first', '${{ inputs.nodes }}')], {
      inputs: { nodes: { type: 'array', required: true }, count: { type: 'integer', default: 1 } },
    });
    const error = await runWorkflow(definition, {
      runner: runeStepRunner(rune),
      inputArgs,
    }).catch((caught: unknown) => caught);
    expect(RuneError.is(error) ? error.code : error).toBe('INVALID_ARGUMENT');
    expect((error as Error).message).toContain(message);
    expect(calls()).toEqual([]);
  });

  it('a dangerous action without confirmation', async () => {
    const definition = workflow([probe('first', 'ok1')]);
    const error = await runWorkflow(definition, {
      runner: runeStepRunner(rune),
      registry: rune.registry(),
    }).catch((caught: unknown) => caught);
    expect(RuneError.is(error) ? error.code : error).toBe('DANGEROUS_ACTION_REFUSED');
    expect(calls()).toEqual([]);
  });
});

describe('dry run', () => {
  it('says step by step what would run where and runs nothing', async () => {
    const record = await run(
      [
        probe('first', '${{ inputs.nodes }}'),
        probe('second', 'ok9', { when: 'steps.first.status == "failed"' }),
        { id: 'diagnose', action: 'wf-probe', failed_in: 'first', transport: 'local' },
        probe('never', 'ok8', { when: 'inputs.nodes.size() > 5' }),
      ],
      { inputs: { nodes: { type: 'array', default: ['ok1', 'ok2'] } } },
      { dryRun: true },
    );
    expect(record.dry_run).toBe(true);
    expect(calls()).toEqual([]);
    expect(step(record, 'first').reason).toBe('would run wf-probe on ok1 (local), ok2 (local)');
    expect(step(record, 'second').reason).toContain('decided at run time');
    expect(step(record, 'diagnose').reason).toBe(
      'would run wf-probe on the nodes where first fails',
    );
    expect(step(record, 'never').reason).toBe('would be skipped: when is false');
  });
});

/** Waits for the slow plugin's pid file on `node` (its readiness); returns its pids. */
async function slowPids(node: string): Promise<number[]> {
  const pidFile = join(pidDir, node);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const text = existsSync(pidFile) ? readFileSync(pidFile, 'utf8') : '';
    if (/^\d+ \d+\n$/.test(text)) return text.trim().split(' ').map(Number);
    if (Date.now() > deadline) throw new Error(`${node} never became ready`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('cancellation', () => {
  it('a step run cancelled on its own (not through the workflow) cancels the workflow; no failure handler runs', async () => {
    // What a server's POST /v1/runs/{id}/cancel does to a step's run: the run, not the workflow.
    const started: WorkflowStepRun[] = [];
    const inner = runeStepRunner(rune);
    const runner: WorkflowStepRunner = {
      plan: inner.plan,
      async start(request, context) {
        const stepRun = await inner.start(request, context);
        started.push(stepRun);
        return stepRun;
      },
    };
    const running = run(
      [
        probe('first', 'ok1'),
        probe('second', 'slow1', { on_failure: 'handler' }),
        probe('after', 'ok2', { next: 'end' }),
        probe('handler', 'ok3'),
      ],
      {},
      { runner },
    );
    const pids = await slowPids('slow1');
    started.at(-1)?.cancel('cancelled by token:ops');
    const record = await running;
    expect(record).toMatchObject({ status: 'cancelled', exit_code: 130 });
    expect(record.error).toMatchObject({
      code: 'RUN_CANCELLED',
      message: 'cancelled by token:ops',
    });
    expect(step(record, 'second')).toMatchObject({
      status: 'cancelled',
      reason: 'cancelled by token:ops',
    });
    expect(step(record, 'after')).toMatchObject({ status: 'skipped', reason: 'cancelled' });
    expect(step(record, 'handler')).toMatchObject({ status: 'skipped', reason: 'cancelled' });
    for (const pid of pids) expect(isProcessAlive(pid)).toBe(false);
    expect(calls()).toEqual(['ok1 ', 'slow1 ']);
  });

  it('stops the current step (its process is killed) and records the rest as skipped', async () => {
    const controller = new AbortController();
    const pidFile = join(pidDir, 'slow1');
    const watcher = (async () => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const text = existsSync(pidFile) ? readFileSync(pidFile, 'utf8') : '';
        if (/^\d+ \d+\n$/.test(text)) return text.trim().split(' ').map(Number);
        if (Date.now() > deadline) throw new Error('slow1 never became ready');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const running = run(
      [probe('first', 'ok1'), probe('second', 'slow1'), probe('third', 'ok3')],
      {},
      {
        signal: controller.signal,
      },
    );
    const pids = await watcher;
    controller.abort('stopped by the test');
    const record = await running;
    expect(record.status).toBe('cancelled');
    expect(record.exit_code).toBe(130);
    expect(record.error?.code).toBe('RUN_CANCELLED');
    expect(step(record, 'first').status).toBe('succeeded');
    expect(step(record, 'second').status).toBe('cancelled');
    expect(step(record, 'third')).toMatchObject({ status: 'skipped', reason: 'cancelled' });
    for (const pid of pids) expect(isProcessAlive(pid)).toBe(false);
    expect(calls()).toEqual(['ok1 ', 'slow1 ']);
  });
});
