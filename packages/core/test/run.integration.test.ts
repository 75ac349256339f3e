import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RuneError } from '@rune/protocol';
import type { TRANSPORT_SPECIFICATION_VERSION } from '@rune/transport';
import { isProcessAlive } from '@rune/transport/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createLocalTransport,
  createRune,
  type NodeRunResult,
  type PlanRequest,
  type Rune,
  readAuditPublicKey,
  verifyAuditLog,
} from '../src/index.js';
import { createFixtureEnv, type FixtureEnv } from './fixture-env.js';

let fx: FixtureEnv;
let rune: Rune;

beforeAll(() => {
  fx = createFixtureEnv();
  rune = createRune({
    env: fx.env,
    home: fx.home,
    cwd: fx.root,
    pluginSources: [{ kind: 'user', dir: fx.pluginDir }],
    configOverrides: { execution: { max_stdout_bytes: 1_048_576 } },
    transports: { local: () => createLocalTransport({ env: fx.env, killGraceMs: 300 }) },
  });
});
afterAll(async () => {
  await rune.close();
  fx.cleanup();
});

async function runOne(action: string, extra: Partial<PlanRequest> = {}): Promise<NodeRunResult> {
  const report = await rune.run({
    action,
    selections: ['localhost'],
    confirmDangerous: true,
    ...extra,
  });
  const node = report.outcome?.nodes[0];
  if (node === undefined) throw new Error('no node result');
  return node;
}

async function refusal(request: PlanRequest): Promise<RuneError> {
  try {
    await rune.plan(request);
  } catch (error) {
    if (RuneError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('run through the local transport', () => {
  it('succeeds with a valid BPCS result and captures stderr', async () => {
    const node = await runOne('ok');
    expect(node.status).toBe('success');
    expect(node.exit_code).toBe(0);
    expect(node.transport).toBe('local');
    expect(node.response?.payload.summary).toBe('all good');
    expect(node.stderr_tail).toContain('ok stderr line');
  });

  it('maps partial, failure and protocol violations to EPS codes', async () => {
    expect((await runOne('partial')).status).toBe('partial');
    const cases: [string, string, number][] = [
      ['fail', 'PLUGIN_FAILED', 1],
      ['text-before', 'OUTPUT_TEXT_BEFORE_JSON', 6],
      ['two-docs', 'OUTPUT_MULTIPLE_DOCUMENTS', 6],
      ['empty', 'OUTPUT_EMPTY', 6],
      ['not-json', 'OUTPUT_NOT_JSON', 6],
      ['exit0-failure', 'EXIT_CODE_MISMATCH', 6],
      ['crash', 'PLUGIN_CRASHED', 1],
    ];
    for (const [action, code, exit] of cases) {
      const node = await runOne(action);
      expect(node.status, action).toBe('failure');
      expect(node.error?.code, action).toBe(code);
      expect(node.exit_code, action).toBe(exit);
      expect(node.error?.trace_id, action).toMatch(/^[0-9a-f]{32}$/);
      expect(node.error?.source.node, action).toBe('localhost');
    }
  });

  it('caps 50 MB of stdout at the limit', async () => {
    const before = process.memoryUsage().rss;
    const node = await runOne('big');
    expect(node.error?.code).toBe('OUTPUT_TOO_LARGE');
    expect(node.stdout_truncated).toBe(true);
    expect(node.stdout_bytes).toBe(1_048_576);
    expect(node.metadata.stdout_bytes).toBe(52_428_800);
    // Bounded: far less than the 50 MB the plugin printed was retained.
    expect(process.memoryUsage().rss - before).toBeLessThan(40 * 1024 * 1024);
  });

  it('kills a hanging plugin and its whole process group at the timeout', async () => {
    const pidFile = join(fx.root, 'hang.pids');
    const transport = createLocalTransport({
      env: { ...fx.env, RUNE_FIXTURE_PIDFILE: pidFile },
      killGraceMs: 200,
    });
    rune.transports.register('local', transport);
    try {
      const started = Date.now();
      const node = await runOne('hang', { timeout: 500 });
      expect(node.error?.code).toBe('PLUGIN_TIMEOUT');
      expect(node.exit_code).toBe(5);
      expect(Date.now() - started).toBeLessThan(5000);
      const pids = readFileSync(pidFile, 'utf8').trim().split('\n').map(Number);
      expect(pids).toHaveLength(2);
      for (const pid of pids) {
        expect(isProcessAlive(pid), `pid ${pid} still alive`).toBe(false);
      }
    } finally {
      rune.transports.register('local', () =>
        createLocalTransport({ env: fx.env, killGraceMs: 300 }),
      );
    }
  });

  it('cancels a run with an AbortSignal', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const report = await rune.run(
      { action: 'hang', selections: ['localhost'], confirmDangerous: true },
      { signal: controller.signal },
    );
    expect(report.outcome?.nodes[0]?.error?.code).toBe('RUN_CANCELLED');
    expect(report.outcome?.summary.exit_code).toBe(130);
  });

  it('requires confirmation for plugins without a manifest (inferred: dangerous)', async () => {
    const error = await refusal({ action: 'ok', selections: ['localhost'] });
    expect(error.code).toBe('DANGEROUS_ACTION_REFUSED');
    expect(error.exitCode).toBe(4);
  });

  it('refuses a plugin that is not executable', async () => {
    expect((await refusal({ action: 'noexec', selections: ['localhost'] })).code).toBe(
      'PLUGIN_NOT_EXECUTABLE',
    );
  });

  it('refuses bad action names, unknown actions and bad parameters', async () => {
    for (const action of ['../../etc/passwd', 'A B', 'rm;ls']) {
      const error = await refusal({ action, selections: ['localhost'] });
      expect(error.code).toBe('INVALID_ACTION_NAME');
      expect(error.exitCode).toBe(2);
    }
    expect((await refusal({ action: 'okk', selections: ['localhost'] })).message).toContain(
      'did you mean ok',
    );
    const missing = await refusal({ action: 'params', selections: ['localhost'] });
    expect(missing.code).toBe('INVALID_PARAMETERS');
    expect(missing.message).toContain('name: required parameter is missing');
    const wrong = await refusal({
      action: 'params',
      selections: ['localhost'],
      paramArgs: ['name=x', 'count=abc', 'force=yes', 'bogus=1', 'mode=medium'],
    });
    const violations = (wrong.details?.violations ?? []) as { parameter: string }[];
    expect(violations.map((v) => v.parameter).sort()).toEqual(['bogus', 'count', 'force', 'mode']);
    expect((await refusal({ action: 'ok', selections: ['-oProxyCommand=x'] })).code).toBe(
      'INVALID_TARGET',
    );
    expect((await refusal({ action: 'ok', selections: [] })).code).toBe('NO_TARGETS');
  });

  it('passes shell metacharacters verbatim and executes nothing', async () => {
    const marker = join(fx.root, 'pwned');
    const capture = join(fx.root, 'captured.json');
    rune.transports.register('local', () =>
      createLocalTransport({ env: { ...fx.env, RUNE_FIXTURE_CAPTURE: capture } }),
    );
    const nasty = `$(touch ${marker}) \`touch ${marker}\` "quoted" 'single' ; rm -rf / \n second line`;
    const node = await runOne('params', {
      paramArgs: [`name=${nasty}`, 'count=7', 'items=a,b ,c', 'secret=hunter2'],
    });
    expect(node.status).toBe('success');
    const received = JSON.parse(readFileSync(capture, 'utf8'));
    expect(received.payload.data.input_parameters).toEqual({
      name: nasty,
      count: 7,
      force: false,
      items: ['a', 'b ', 'c'],
      secret: 'hunter2',
    });
    expect(existsSync(marker)).toBe(false);
  });

  it('audits runs, dry runs and refusals in a verifiable chain, with secrets redacted', async () => {
    // This test makes every record it checks (it used to find the refusal, the success and the
    // PLUGIN_TIMEOUT records of earlier tests, and failed when run alone or shuffled).
    const traces = {
      dryRun: 'd'.repeat(32),
      refusal: 'e'.repeat(32),
      success: 'a1'.repeat(16),
      timeout: 'b2'.repeat(16),
    };
    await rune.run(
      {
        action: 'params',
        selections: ['localhost'],
        paramArgs: ['name=n', 'secret=s3cr3t'],
        dryRun: true,
      },
      { traceId: traces.dryRun },
    );
    await expect(
      rune.run(
        { action: 'params', selections: ['localhost'], paramArgs: ['secret=hunter2'] },
        { traceId: traces.refusal },
      ),
    ).rejects.toMatchObject({ code: 'INVALID_PARAMETERS' });
    await rune.run(
      { action: 'ok', selections: ['localhost'], confirmDangerous: true },
      { traceId: traces.success },
    );
    await rune.run(
      { action: 'hang', selections: ['localhost'], confirmDangerous: true, timeout: 500 },
      { traceId: traces.timeout },
    );
    const text = readFileSync(fx.auditLog, 'utf8');
    expect(text).not.toContain('s3cr3t');
    expect(text).not.toContain('hunter2');
    const lines = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const of = (trace: string) => lines.filter((record) => record.trace_id === trace);
    expect(of(traces.refusal)).toEqual([
      expect.objectContaining({ event: 'refusal', node: null, error_code: 'INVALID_PARAMETERS' }),
    ]);
    expect(of(traces.dryRun)).toEqual([expect.objectContaining({ event: 'dry-run' })]);
    // A run is its write-ahead intent, then its outcome.
    expect(of(traces.success)).toEqual([
      expect.objectContaining({ event: 'intent' }),
      expect.objectContaining({ event: 'run', status: 'success' }),
    ]);
    expect(of(traces.timeout)).toEqual([
      expect.objectContaining({ event: 'intent' }),
      expect.objectContaining({ event: 'run', error_code: 'PLUGIN_TIMEOUT' }),
    ]);
    const publicKey = readAuditPublicKey(fx.auditKey);
    expect(verifyAuditLog(fx.auditLog, { publicKey })).toMatchObject({ ok: true, unsigned: 0 });
    // Tamper with one record.
    const tampered = text.replace('"status":"success"', '"status":"failure"');
    writeFileSync(fx.auditLog, tampered);
    const verdict = verifyAuditLog(fx.auditLog, { publicKey });
    expect(verdict.ok).toBe(false);
    expect(verdict.error?.code).toBe('AUDIT_CHAIN_BROKEN');
    writeFileSync(fx.auditLog, text);
  });

  it('refuses a transport of another specification version', async () => {
    rune.transports.register('weird', () => ({
      ...createLocalTransport(),
      specificationVersion: 'rune-transport-v0' as typeof TRANSPORT_SPECIFICATION_VERSION,
    }));
    const node = await runOne('ok', { transport: 'weird' });
    expect(node.error?.code).toBe('TRANSPORT_UNAVAILABLE');
    const missing = await runOne('ok', { transport: 'nope' });
    expect(missing.error?.code).toBe('TRANSPORT_UNAVAILABLE');
  });

  it('refuses to run unaudited (AUDIT_WRITE_FAILED, nothing executed)', async () => {
    const blocker = join(fx.root, 'not-a-dir');
    writeFileSync(blocker, 'x');
    const capture = join(fx.root, 'unaudited.json');
    const unaudited = createRune({
      env: fx.env,
      home: fx.home,
      cwd: fx.root,
      pluginSources: [{ kind: 'user', dir: fx.pluginDir }],
      configOverrides: { core: { audit_log: join(blocker, 'audit.jsonl') } },
      transports: {
        local: () => createLocalTransport({ env: { ...fx.env, RUNE_FIXTURE_CAPTURE: capture } }),
      },
    });
    try {
      const error = await unaudited
        .run({ action: 'ok', selections: ['localhost'], confirmDangerous: true })
        .then(
          () => undefined,
          (caught: unknown) => caught,
        );
      expect(RuneError.is(error) && error.code).toBe('AUDIT_WRITE_FAILED');
      expect(RuneError.is(error) && error.exitCode).toBe(70);
      expect(existsSync(capture)).toBe(false);
    } finally {
      await unaudited.close();
    }
  });

  it('detects a plugin changed after planning', async () => {
    const plan = await rune.plan({
      action: 'ok',
      selections: ['localhost'],
      confirmDangerous: true,
    });
    const path = plan.plugin.path;
    const original = readFileSync(path);
    writeFileSync(path, `${original.toString()}\n# changed\n`);
    try {
      const outcome = await rune.execute(plan);
      expect(outcome.nodes[0]?.error?.code).toBe('PLUGIN_INTEGRITY_FAILED');
    } finally {
      writeFileSync(path, original);
    }
  });
});
