/**
 * `rune run --use-ssm` tracing end to end: the BUILT CLI with the standard `OTEL_*` variables, the
 * real @aws-sdk/client-ssm against the local SSM endpoint (`rune-ssm-endpoint` of
 * packages/ssm-endpoint, a child process on 127.0.0.1 that really runs the wrapper with sh), and
 * an in-process OTLP/HTTP receiver decoding what the real exporter sent. Checks the SSM phase
 * spans on the wire, their parents and attributes: `rune.connect` (the agent check),
 * `rune.upload` (SendCommand) and `rune.exec` (the invocation polled to its end) under each
 * `rune.node`, under `rune.run`; and an instance whose agent is offline: an error span
 * `rune.connect` with INSTANCE_OFFLINE, and no upload or exec for it. (`rune.fetch` of the full
 * output from S3 needs an S3 endpoint the CLI does not configure: it is checked through the
 * transport's phase hook in packages/transport-ssm/test/phase-spans.integration.test.ts.)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type OtlpReceiver,
  spanReferenceProblems,
  startOtlpReceiver,
  type WireSpan,
} from '@rune/server/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliSandbox, createCliSandbox } from './cli-harness.js';

const DOC = new URL('../../../docs/observability.md', import.meta.url);
const ENDPOINT_BIN = fileURLToPath(
  new URL('../../../packages/ssm-endpoint/bin/rune-ssm-endpoint.js', import.meta.url),
);
const ONLINE = ['i-0abc123456789def0', 'i-0abc123456789def1'];
const OFFLINE = 'i-0def123456789abc0';
const ACCESS_KEY_ID = `AKIARUNE${randomBytes(6).toString('hex').toUpperCase()}`;
const SECRET_ACCESS_KEY = randomBytes(24).toString('base64');

let sandbox: CliSandbox;
let receiver: OtlpReceiver;
let endpoint: ChildProcess | undefined;

beforeAll(async () => {
  sandbox = createCliSandbox();
  receiver = await startOtlpReceiver();
  endpoint = spawn(
    process.execPath,
    [
      ENDPOINT_BIN,
      '--port',
      '0',
      ...ONLINE.flatMap((id) => ['--instances', id]),
      '--offline',
      OFFLINE,
    ],
    {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: sandbox.home,
        RUNE_SSM_ENDPOINT_ACCESS_KEY_ID: ACCESS_KEY_ID,
        RUNE_SSM_ENDPOINT_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const child = endpoint;
  // Readiness: the endpoint prints its URL once it listens.
  const url = await new Promise<string>((resolve, reject) => {
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match?.[1] !== undefined) resolve(match[1]);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.once('exit', (code) => reject(new Error(`rune-ssm-endpoint exited ${code}: ${output}`)));
  });
  expect(new URL(url).hostname).toBe('127.0.0.1');
  writeFileSync(
    join(sandbox.root, 'rune.toml'),
    [
      '[ssm]',
      `endpoint = "${url}"`,
      'region = "us-east-1"',
      'poll_interval_ms = 50',
      `remote_cache_dir = "${join(sandbox.root, 'ssm-cache')}"`,
      '',
    ].join('\n'),
  );
}, 120_000);

afterAll(async () => {
  endpoint?.kill('SIGTERM');
  await receiver?.close();
  sandbox?.cleanup();
});

describe('rune run --use-ssm with OTEL_* set', () => {
  it('exports connect, upload and exec of every instance under its node, and an offline agent as an error connect', async () => {
    const before = receiver.requests();
    const result = await sandbox.run(
      ['run', 'noop', '--node', [...ONLINE, OFFLINE].join(','), '--use-ssm', '-o', 'json'],
      {
        env: {
          AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
          AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          // Only the flush at exit can deliver the spans.
          OTEL_BSP_SCHEDULE_DELAY: '600000',
        },
      },
    );
    // One node failed (offline): a partial fleet's exit code, never a crash.
    expect(result.code, result.stderr).not.toBe(0);
    expect(result.stdout, result.stderr).not.toBe('');
    const document = JSON.parse(result.stdout) as {
      trace_id: string;
      nodes: { node: string; status: string; transport: string; error: { code: string } | null }[];
    };
    expect(
      Object.fromEntries(
        document.nodes.map((node) => [node.node, [node.transport, node.status, node.error?.code]]),
      ),
    ).toEqual({
      [ONLINE[0] as string]: ['ssm', 'success', undefined],
      [ONLINE[1] as string]: ['ssm', 'success', undefined],
      [OFFLINE]: ['ssm', 'failure', 'INSTANCE_OFFLINE'],
    });
    expect(receiver.requests()).toBeGreaterThan(before);
    expect(receiver.rejected()).toBe(0);

    const trace = receiver.spans.filter((span) => span.traceId === document.trace_id);
    const [run] = trace.filter((span) => span.name === 'rune.run');
    expect(run?.parentSpanId).toBeUndefined();
    const nodes = trace.filter((span) => span.name === 'rune.node');
    expect(nodes.map((span) => span.attributes['rune.node']).sort()).toEqual(
      [...ONLINE, OFFLINE].sort(),
    );
    const childrenOf = (span: WireSpan | undefined): WireSpan[] =>
      trace.filter((each) => each.parentSpanId === span?.spanId);
    for (const node of nodes) {
      expect(node.parentSpanId).toBe(run?.spanId);
      expect(node.attributes['rune.transport']).toBe('ssm');
      const instance = node.attributes['rune.node'] as string;
      const phases = childrenOf(node);
      const connect = phases.find((span) => span.name === 'rune.connect');
      expect(connect?.attributes['rune.ssm.instance_id']).toBe(instance);
      if (instance === OFFLINE) {
        // The agent check failed: an error span with its EPS code, and nothing after it.
        expect(phases.map((span) => span.name)).toEqual(['rune.connect']);
        expect(connect?.status?.code).toBe(2);
        expect(connect?.attributes['rune.error.code']).toBe('INSTANCE_OFFLINE');
        expect(node.status?.code).toBe(2);
        expect(node.attributes).toMatchObject({
          'rune.result': 'failure',
          'rune.error.code': 'INSTANCE_OFFLINE',
        });
        continue;
      }
      expect(phases.map((span) => span.name).sort()).toEqual([
        'rune.connect',
        'rune.exec',
        'rune.upload',
      ]);
      for (const phase of phases) expect(phase.status?.code ?? 0).not.toBe(2);
      const upload = phases.find((span) => span.name === 'rune.upload');
      const exec = phases.find((span) => span.name === 'rune.exec');
      expect(upload?.attributes['rune.ssm.command_id']).toEqual(expect.any(String));
      expect(upload?.attributes['rune.ssm.command_bytes']).toBeGreaterThan(0);
      expect(exec?.attributes).toMatchObject({
        'rune.ssm.command_id': upload?.attributes['rune.ssm.command_id'],
        'rune.ssm.status': 'Success',
      });
      expect(exec?.attributes['rune.ssm.polls']).toBeGreaterThanOrEqual(1);
    }
    // Every span of the trace is in the span reference, with the attributes it lists.
    expect(spanReferenceProblems(readFileSync(DOC, 'utf8'), trace)).toEqual([]);
  }, 120_000);
});
