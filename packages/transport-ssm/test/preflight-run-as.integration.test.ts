/**
 * Preflight and run_as over SSM, with the REAL @aws-sdk/client-ssm against the local endpoint
 * (which runs the wrapper with sh as the user running the tests): the required commands are
 * checked on the node inside the one SendCommand that would start the plugin, a missing one is
 * PLUGIN_PRECONDITION_FAILED naming it and the plugin never starts; `runAs: 'root'` needs no sudo
 * on SSM (the agent runs as root) and the wrapper proves it runs as uid 0 before anything else.
 */
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryAuditSink, createRune, type Rune } from '@rune/core';
import { RuneError } from '@rune/protocol';
import type { TransportExecRequest } from '@rune/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, INSTANCE, plugin, request, startHarness, text } from './helpers.js';

let harness: Harness;
let scratch: string;
beforeAll(async () => {
  harness = await startHarness({ pendingMs: 10 });
  scratch = mkdtempSync(join(tmpdir(), 'rune-ssm-preflight-'));
});
afterAll(async () => {
  await harness.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** The API calls the endpoint saw for one run (the transport puts the trace id in the Comment). */
const callsOf = (traceId: string) => {
  const commands = harness.endpoint.requests.filter(
    (call) => call.operation === 'SendCommand' && String(call.body.Comment).includes(traceId),
  );
  return { sendCommands: commands.length };
};

const failure = (promise: Promise<unknown>): Promise<RuneError> =>
  promise.then(
    () => {
      throw new Error('resolved, expected a RuneError');
    },
    (error: unknown) => {
      if (!RuneError.is(error)) throw error;
      return error;
    },
  );

const markerPlugin = (marker: string) =>
  plugin(`#!/bin/sh\ntouch ${marker}\necho '{"ran":true}'\n`);

describe('SSM preflight: in the same SendCommand, before the plugin', () => {
  it('a missing command is PLUGIN_PRECONDITION_FAILED naming it; the plugin never starts; one SendCommand', async () => {
    const marker = join(scratch, 'missing-ran');
    const exec: TransportExecRequest = request(INSTANCE, markerPlugin(marker), {
      preflight: { commands: ['sh', 'rune-no-such-command', 'cat', 'rune-no-such-either'] },
    });
    const error = await failure(harness.transport().exec(exec));
    expect(error.code).toBe('PLUGIN_PRECONDITION_FAILED');
    expect(error.message).toContain('rune-no-such-command, rune-no-such-either');
    expect(error.details).toMatchObject({
      missing_commands: ['rune-no-such-command', 'rune-no-such-either'],
      instance_id: INSTANCE,
    });
    expect(error.source).toMatchObject({ component: 'transport-ssm', node: INSTANCE });
    expect(existsSync(marker)).toBe(false);
    expect(callsOf(exec.traceId)).toEqual({ sendCommands: 1 });
  });

  it('present commands: the plugin runs, still one SendCommand', async () => {
    const marker = join(scratch, 'present-ran');
    const exec = request(INSTANCE, markerPlugin(marker), {
      preflight: { commands: ['sh', 'cat', 'touch'] },
    });
    const result = await harness.transport().exec(exec);
    expect(result).toMatchObject({ termination: 'exit', exitCode: 0 });
    expect(text(result.stdout)).toBe('{"ran":true}\n');
    expect(existsSync(marker)).toBe(true);
    expect(callsOf(exec.traceId)).toEqual({ sendCommands: 1 });
  });

  it('a hostile name is INVALID_ARGUMENT before any API call; nothing runs', async () => {
    const pwned = join(scratch, 'pwned');
    const before = harness.endpoint.requests.length;
    const exec = request(INSTANCE, plugin('#!/bin/sh\necho ran\n'), {
      preflight: { commands: ['sh', `x';touch ${pwned};'`] },
    });
    const error = await failure(harness.transport().exec(exec));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.source).toMatchObject({ component: 'transport-ssm', node: INSTANCE });
    expect(harness.endpoint.requests.length).toBe(before);
    expect(existsSync(pwned)).toBe(false);
  });
});

// The endpoint runs commands as the user running this test: root in the test container, where
// run_as root must run; anyone else sees the wrapper refuse (as on a node whose agent is not root).
const testsRunAsRoot = process.getuid?.() === 0;

describe('SSM run_as', () => {
  it(
    testsRunAsRoot
      ? "runAs: 'root' runs the plugin as uid 0, without sudo"
      : "runAs: 'root' on an agent that is not root is PRIVILEGE_DENIED, nothing runs",
    async () => {
      const marker = join(scratch, 'root-ran');
      const exec = request(INSTANCE, plugin(`#!/bin/sh\ntouch ${marker}\nid -u\n`), {
        runAs: 'root',
      });
      if (testsRunAsRoot) {
        const result = await harness.transport().exec(exec);
        expect(result).toMatchObject({ termination: 'exit', exitCode: 0 });
        expect(text(result.stdout)).toBe('0\n');
      } else {
        expect((await failure(harness.transport().exec(exec))).code).toBe('PRIVILEGE_DENIED');
        expect(existsSync(marker)).toBe(false);
      }
      expect(callsOf(exec.traceId)).toEqual({ sendCommands: 1 });
    },
  );

  it("node.runAs 'root' is honoured the same way", async () => {
    const exec = request(INSTANCE, plugin('#!/bin/sh\necho ok\n'));
    exec.node = { name: INSTANCE, runAs: 'root' };
    const outcome = await harness
      .transport()
      .exec(exec)
      .then(
        (result) => result.exitCode,
        (error: unknown) => (RuneError.is(error) ? error.code : String(error)),
      );
    expect(outcome).toBe(testsRunAsRoot ? 0 : 'PRIVILEGE_DENIED');
  });

  it('any other runAs stays UNSUPPORTED_FEATURE, before any API call', async () => {
    const before = harness.endpoint.requests.length;
    for (const exec of [
      request(INSTANCE, plugin('#!/bin/sh\n'), { runAs: 'postgres' }),
      { ...request(INSTANCE, plugin('#!/bin/sh\n')), node: { name: INSTANCE, runAs: 'deploy' } },
    ]) {
      expect((await failure(harness.transport().exec(exec))).code).toBe('UNSUPPORTED_FEATURE');
    }
    expect(harness.endpoint.requests.length).toBe(before);
  });
});

describe('SSM run_as through core', () => {
  let rune: Rune | undefined;
  let pluginDir: string;
  beforeAll(() => {
    pluginDir = mkdtempSync(join(tmpdir(), 'rune-ssm-runas-'));
    const trace = `input=$(cat)
trace=$(printf '%s' "$input" | grep -o '"trace_id":"[0-9a-f]*"' | head -n1 | cut -d'"' -f4)
ts=$(date -u +%Y-%m-%dT%H:%M:%SZ)
printf '{"message_metadata":{"trace_id":"%s","timestamp":"%s"},"payload":{"schema_version":"bpcs_v1","result":"success","summary":"uid %s","output_data":{}},"error":null}\\n' "$trace" "$ts" "$(id -u)"
`;
    writeFileSync(join(pluginDir, 'whoami-uid.sh'), `#!/usr/bin/env bash\n${trace}`);
    chmodSync(join(pluginDir, 'whoami-uid.sh'), 0o755);
    writeFileSync(
      join(pluginDir, 'whoami-uid.manifest.json'),
      JSON.stringify({
        schema_version: 'mrs_v1',
        name: 'whoami-uid',
        version: '1.0.0',
        description: 'prints the uid it runs as',
        parameters: { type: 'object', properties: {} },
        tags: [],
        requirements: { commands: [], privilege: 'user' },
        timeout_ms: 20_000,
        idempotent: true,
        supports_dry_run: false,
        dangerous: false,
        accepts: ['rcs_v1'],
      }),
    );
    rune = createRune({
      env: { HOME: pluginDir },
      home: pluginDir,
      cwd: pluginDir,
      auditSink: createMemoryAuditSink(),
      pluginSources: [{ kind: 'user', dir: pluginDir }],
      transports: { ssm: () => harness.transport() },
    });
  });
  afterAll(async () => {
    await rune?.close();
    rmSync(pluginDir, { recursive: true, force: true });
  });

  it('a run with run_as root reaches the SSM transport (capabilities.runAs) and, as root, succeeds', async () => {
    const report = await rune!.run({
      action: 'whoami-uid',
      selections: [INSTANCE],
      transport: 'ssm',
      runAs: 'root',
    });
    const node = report.outcome?.nodes[0];
    if (testsRunAsRoot) {
      expect(node?.error).toBeNull();
      expect(node?.status).toBe('success');
    } else {
      expect(node?.error?.code).toBe('PRIVILEGE_DENIED');
    }
  });
});
