/**
 * `rune run` tracing end to end, with no server: the BUILT CLI with the standard `OTEL_*`
 * variables, a fan-out over SSH to a real sshd fleet with artifacts fetched, and an in-process
 * OTLP/HTTP receiver decoding what the real exporter sent. Checks the trace id is RUNE's (the
 * run document's and the audit records'), every parent link (rune.plan and rune.run roots,
 * rune.node under the run, rune.connect / rune.upload / rune.exec / rune.fetch under a node), the
 * documented attributes, and that the process flushes at exit: the batch processor's timer is
 * set far beyond the test's timeout, so spans arrive only because `rune run` flushed them before
 * it exited. With `OTEL_SDK_DISABLED=true`, or with no `OTEL_*` variable, nothing is sent.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  type OtlpReceiver,
  spanReferenceProblems,
  startOtlpReceiver,
  type WireSpan,
} from '@rune/server/testing';
import { type SshdFleet, startSshdFleet } from '@rune/transport-ssh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliSandbox, createCliSandbox } from './cli-harness.js';

const HOSTS = 3;
const DOC = new URL('../../../docs/observability.md', import.meta.url);
let sandbox: CliSandbox;
let fleet: SshdFleet;
let receiver: OtlpReceiver;
let inventory: string;

beforeAll(async () => {
  sandbox = createCliSandbox();
  receiver = await startOtlpReceiver();
  fleet = await startSshdFleet(HOSTS);
  const user = fleet.hosts[0]?.user ?? 'root';
  inventory = join(sandbox.root, 'fleet.yaml');
  writeFileSync(
    inventory,
    [
      'nodes:',
      ...fleet.hosts.map(
        (host, index) =>
          `  web${index + 1}: { address: "${host.address}", port: ${host.port}, user: ${user}, tags: [web] }`,
      ),
      'groups:',
      `  web: [${fleet.hosts.map((_, index) => `web${index + 1}`).join(', ')}]`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(sandbox.root, 'rune.toml'),
    [
      '[ssh]',
      `identity_files = ["${fleet.clientKey.privateKeyFile}"]`,
      `known_hosts_files = ["${fleet.knownHostsFile}"]`,
      'host_key_checking = "strict"',
      'use_agent = false',
      'use_ssh_config = false',
      `remote_cache_dir = "${join(sandbox.root, 'remote-cache')}"`,
      '',
    ].join('\n'),
  );
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
  await receiver?.close();
  sandbox?.cleanup();
});

const traced = (extra: Record<string, string> = {}): Record<string, string> => ({
  OTEL_TRACES_EXPORTER: 'otlp',
  OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
  // Far beyond the harness's 60 s timeout: only the flush at exit can deliver the spans.
  OTEL_BSP_SCHEDULE_DELAY: '600000',
  ...extra,
});

const fanOut = (): string[] => [
  'run',
  'gather-logs',
  '--node',
  '@web',
  '--inventory',
  inventory,
  '-p',
  'archive=true',
  '-p',
  'lines=5',
  '--fetch-artifacts',
  '-o',
  'json',
];

describe('rune run with OTEL_* set', () => {
  it('exports the fan-out in RUNE trace id with every parent link, and flushes before exiting', async () => {
    const before = receiver.requests();
    const result = await sandbox.run(fanOut(), { env: traced() });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    const document = JSON.parse(result.stdout) as { trace_id: string; id?: string };
    const traceId = document.trace_id;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    // Exited, and the spans were already there: flushed at exit, not by the (600 s) timer.
    expect(receiver.requests()).toBeGreaterThan(before);
    expect(receiver.rejected()).toBe(0);

    // The audit records carry the same trace id.
    const audit = await sandbox.run(['audit', '--trace', traceId, '-o', 'json']);
    expect(audit.code, audit.stderr).toBe(0);
    const { records } = JSON.parse(audit.stdout) as { records: { trace_id: string }[] };
    expect(records.length).toBeGreaterThanOrEqual(HOSTS + 1);
    for (const record of records) expect(record.trace_id).toBe(traceId);

    const trace = receiver.spans.filter((span) => span.traceId === traceId);
    const named = (name: string): WireSpan[] => trace.filter((span) => span.name === name);
    // No request span: rune.plan and rune.run are the two roots of the trace.
    const [plan] = named('rune.plan');
    const [run] = named('rune.run');
    expect(plan?.parentSpanId).toBeUndefined();
    expect(run?.parentSpanId).toBeUndefined();
    expect(plan?.attributes).toMatchObject({
      'rune.action': 'gather-logs',
      'rune.nodes.count': HOSTS,
      'rune.result': 'planned',
      'rune.dry_run': false,
    });
    expect(plan?.attributes['rune.plugin.sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(run?.attributes).toMatchObject({
      'rune.action': 'gather-logs',
      'rune.nodes.count': HOSTS,
      'rune.result': 'succeeded',
      'rune.plugin.sha256': plan?.attributes['rune.plugin.sha256'],
    });
    expect(run?.attributes['rune.run.id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(run?.attributes['rune.plugin.version']).toEqual(expect.any(String));

    const nodes = named('rune.node');
    expect(nodes.map((span) => span.attributes['rune.node']).sort()).toEqual([
      'web1',
      'web2',
      'web3',
    ]);
    for (const node of nodes) {
      expect(node.parentSpanId).toBe(run?.spanId);
      expect(node.attributes).toMatchObject({
        'rune.action': 'gather-logs',
        'rune.transport': 'ssh',
        'rune.result': 'success',
        'rune.plugin.version': run?.attributes['rune.plugin.version'],
        'rune.plugin.sha256': run?.attributes['rune.plugin.sha256'],
      });
      const children = trace.filter((span) => span.parentSpanId === node.spanId);
      const names = children.map((span) => span.name);
      expect(names).toContain('rune.connect');
      expect(names).toContain('rune.exec');
      expect(names).toContain('rune.fetch');
      const fetch = children.find((span) => span.name === 'rune.fetch');
      expect(fetch?.attributes['rune.artifacts.count']).toBeGreaterThanOrEqual(1);
      const connect = children.find((span) => span.name === 'rune.connect');
      expect(connect?.attributes).toMatchObject({ 'rune.connection.reused': false });
      // The SSH handshake of the new connection, inside the connect phase.
      const handshake = trace.filter((span) => span.parentSpanId === connect?.spanId);
      expect(handshake.map((span) => span.name)).toEqual(['rune.handshake']);
      expect(handshake[0]?.status?.code ?? 0).not.toBe(2);
    }
    // A fresh remote cache shared by the loopback hosts: at least one node uploaded the plugin.
    const uploads = named('rune.upload');
    expect(uploads.length).toBeGreaterThanOrEqual(1);
    for (const upload of uploads) {
      expect(nodes.map((node) => node.spanId)).toContain(upload.parentSpanId);
    }
    // Every span of the trace is in the span reference, with the attributes it lists.
    expect(spanReferenceProblems(readFileSync(DOC, 'utf8'), trace)).toEqual([]);
  }, 120_000);

  it('rune workflow run: one workflow span, each step a child, each step run under its step', async () => {
    const file = join(sandbox.root, 'two-steps.yaml');
    writeFileSync(
      file,
      [
        'schema_version: workflow_v1',
        'name: two-steps',
        'steps:',
        '  - { id: first, action: noop, nodes: localhost }',
        '  - { id: second, action: noop, nodes: [web1, web2] }',
        '',
      ].join('\n'),
    );
    const result = await sandbox.run(
      ['workflow', 'run', file, '--inventory', inventory, '-o', 'json'],
      { env: traced() },
    );
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    const record = JSON.parse(result.stdout) as { trace_id: string; status: string };
    expect(record.status).toBe('succeeded');
    const trace = receiver.spans.filter((span) => span.traceId === record.trace_id);
    const [workflow, ...others] = trace.filter((span) => span.name === 'rune.workflow');
    expect(others).toEqual([]);
    expect(workflow?.parentSpanId).toBeUndefined();
    expect(workflow?.attributes).toMatchObject({
      'rune.workflow.name': 'two-steps',
      'rune.result': 'succeeded',
      'rune.dry_run': false,
    });
    const steps = trace.filter((span) => span.name === 'rune.workflow.step');
    expect(steps.map((span) => span.attributes['rune.workflow.step']).sort()).toEqual([
      'first',
      'second',
    ]);
    const runs = trace.filter((span) => span.name === 'rune.run');
    expect(runs).toHaveLength(2);
    for (const step of steps) {
      expect(step.parentSpanId).toBe(workflow?.spanId);
      expect(step.attributes).toMatchObject({ 'rune.action': 'noop', 'rune.result': 'succeeded' });
      expect(runs.filter((run) => run.parentSpanId === step.spanId)).toHaveLength(1);
    }
    const second = steps.find((span) => span.attributes['rune.workflow.step'] === 'second');
    const secondRun = runs.find((run) => run.parentSpanId === second?.spanId);
    const nodes = trace.filter(
      (span) => span.name === 'rune.node' && span.parentSpanId === secondRun?.spanId,
    );
    expect(nodes.map((span) => span.attributes['rune.node']).sort()).toEqual(['web1', 'web2']);
    expect(spanReferenceProblems(readFileSync(DOC, 'utf8'), trace)).toEqual([]);
  }, 120_000);

  it('a failed artifact fetch is an error span with its EPS code, under the failed node', async () => {
    // The fixture plugin `artifact` with its directory fixed (a plugin's environment is minimal)
    // and a sha256 that does not match the file it wrote.
    const fixture = readFileSync(join(sandbox.pluginDir, 'artifact.sh'), 'utf8')
      .replace(
        `"\${RUNE_FIXTURE_ARTIFACT_DIR:?}"`,
        JSON.stringify(join(sandbox.root, 'bad-artifact')),
      )
      .replace(`"\${RUNE_FIXTURE_BAD_SHA:-}"`, '"1"');
    writeFileSync(join(sandbox.pluginDir, 'bad-artifact.sh'), fixture, { mode: 0o755 });
    const result = await sandbox.run(
      ['run', 'bad-artifact', '--node', 'localhost', '--fetch-artifacts', '--yes', '-o', 'json'],
      { env: traced() },
    );
    expect(result.code, result.stderr).not.toBe(0);
    const document = JSON.parse(result.stdout) as {
      trace_id: string;
      nodes: { status: string; error: { code: string } | null }[];
    };
    expect(document.nodes.map((node) => [node.status, node.error?.code])).toEqual([
      ['failure', 'ARTIFACT_FETCH_FAILED'],
    ]);
    const trace = receiver.spans.filter((span) => span.traceId === document.trace_id);
    const [node] = trace.filter((span) => span.name === 'rune.node');
    const fetches = trace.filter((span) => span.name === 'rune.fetch');
    expect(fetches).toHaveLength(1);
    const [fetch] = fetches;
    expect(fetch?.parentSpanId).toBe(node?.spanId);
    // Status ERROR (2), the EPS code as an attribute, no artifact fetched.
    expect(fetch?.status?.code).toBe(2);
    expect(fetch?.attributes).toMatchObject({
      'rune.error.code': 'ARTIFACT_FETCH_FAILED',
      'rune.artifacts.count': 0,
    });
    expect(node?.status?.code).toBe(2);
    expect(node?.attributes).toMatchObject({
      'rune.result': 'failure',
      'rune.error.code': 'ARTIFACT_FETCH_FAILED',
    });
    expect(spanReferenceProblems(readFileSync(DOC, 'utf8'), trace)).toEqual([]);
  }, 120_000);

  it('a collector that never answers delays the exit by the exporter timeout, never the run', async () => {
    const { createServer } = await import('node:net');
    const held: { destroy(): void }[] = [];
    const silent = createServer((socket) => {
      held.push(socket);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const result = await sandbox.run(['run', 'noop', '--node', 'localhost', '-o', 'json'], {
        env: traced({
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
          OTEL_EXPORTER_OTLP_TIMEOUT: '1000',
        }),
      });
      // The harness kills a process after 60 s (code 999): the run ended with its own code.
      expect(result.code, result.stderr).toBe(0);
      const document = JSON.parse(result.stdout) as {
        exit_code: number;
        nodes: { status: string }[];
      };
      expect(document.exit_code).toBe(0);
      expect(document.nodes.map((node) => node.status)).toEqual(['success']);
      expect(held.length).toBeGreaterThanOrEqual(1);
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  }, 120_000);

  it('warns about an exporter or protocol RUNE does not support, and runs anyway', async () => {
    const zipkin = await sandbox.run(['run', 'noop', '--node', 'localhost', '-o', 'json'], {
      env: { OTEL_TRACES_EXPORTER: 'zipkin' },
    });
    expect(zipkin.code, zipkin.stderr).toBe(0);
    expect(zipkin.stderr).toContain(
      'warning: OTEL_TRACES_EXPORTER names zipkin, which RUNE does not support (only otlp, console, none): tracing is off',
    );
    const before = receiver.requests();
    const grpc = await sandbox.run(['run', 'noop', '--node', 'localhost', '-o', 'json'], {
      env: traced({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }),
    });
    expect(grpc.code, grpc.stderr).toBe(0);
    expect(grpc.stderr).toContain('warning: OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported');
    // Still OTLP/HTTP JSON, which this receiver decodes.
    expect(receiver.requests()).toBeGreaterThan(before);
    const plain = await sandbox.run(['run', 'noop', '--node', 'localhost', '-o', 'json'], {
      env: traced(),
    });
    expect(plain.stderr).not.toContain('warning');
  }, 120_000);

  it('sends nothing and loads no SDK, no @opentelemetry module at all, with OTEL_SDK_DISABLED=true, OTEL_TRACES_EXPORTER=none, or no OTEL_*', async () => {
    // A module resolve hook records every specifier the process resolves, so "the SDK was not
    // loaded" is observed, not assumed; the traced run first shows the hook sees the SDK.
    const loads = join(sandbox.root, 'loads.txt');
    const hooks = join(sandbox.root, 'hooks.mjs');
    writeFileSync(
      hooks,
      `import { appendFileSync } from 'node:fs';\nexport async function resolve(specifier, context, next) {\n  appendFileSync(${JSON.stringify(loads)}, specifier + '\\n');\n  return next(specifier, context);\n}\n`,
    );
    const register = join(sandbox.root, 'register.mjs');
    writeFileSync(
      register,
      `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
    );
    const observed = async (
      env: Record<string, string>,
    ): Promise<{ sdk: boolean; otelModules: string[]; sent: boolean }> => {
      writeFileSync(loads, '');
      const before = receiver.requests();
      const result = await sandbox.run(['run', 'noop', '--node', 'localhost', '-o', 'json'], {
        env: { ...env, NODE_OPTIONS: `--import ${register}` },
      });
      expect(result.code, result.stderr).toBe(0);
      const resolved = readFileSync(loads, 'utf8');
      return {
        sdk: /@rune\/server\/telemetry|sdk-trace/.test(resolved),
        // Every @opentelemetry package the process resolved (the API is bundled into the CLI, so
        // off there is none: no OpenTelemetry module is loaded at all).
        otelModules: [...new Set(resolved.match(/@opentelemetry\/[a-z-]+/g) ?? [])].sort(),
        sent: receiver.requests() > before,
      };
    };
    const on = await observed(traced());
    expect(on).toMatchObject({ sdk: true, sent: true });
    expect(on.otelModules).toEqual(expect.arrayContaining(['@opentelemetry/sdk-trace-node']));
    for (const env of [
      traced({ OTEL_SDK_DISABLED: 'true' }),
      traced({ OTEL_TRACES_EXPORTER: 'none' }),
      {},
    ]) {
      expect(await observed(env)).toEqual({ sdk: false, otelModules: [], sent: false });
    }
  }, 120_000);
});
