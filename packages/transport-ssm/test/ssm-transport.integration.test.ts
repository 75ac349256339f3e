/**
 * The SSM transport with the REAL @aws-sdk/client-ssm against the local SSM endpoint, which
 * really runs the generated wrapper with sh on this machine. One test per fault and limit.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SSMClient } from '@aws-sdk/client-ssm';
import { RuneError } from '@rune/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSsmTransport } from '../src/index.js';
import {
  type Harness,
  INSTANCE,
  OTHER_INSTANCE,
  plugin,
  request,
  startHarness,
  text,
} from './helpers.js';

let harness: Harness;
let scratch: string;
beforeAll(async () => {
  harness = await startHarness({ pendingMs: 10 });
  scratch = mkdtempSync(join(tmpdir(), 'rune-ssm-it-'));
});
afterAll(async () => {
  await harness.close();
  rmSync(scratch, { recursive: true, force: true });
});
afterEach(() => {
  harness.endpoint.setFaults('*', {});
  harness.endpoint.setFaults(INSTANCE, {});
  harness.endpoint.setPingStatus(INSTANCE, 'Online');
  harness.endpoint.throttle(0);
});

const codeOf = (promise: Promise<unknown>): Promise<string> =>
  promise.then(
    () => 'resolved',
    (error: unknown) => (RuneError.is(error) ? error.code : `not a RuneError: ${String(error)}`),
  );

/** True while `pid` exists and is not a zombie waiting for init to reap it. */
const alive = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** Waits (bounded) until every pid is gone; returns the survivors. */
async function survivors(pids: number[]): Promise<number[]> {
  for (let i = 0; i < 40 && pids.some(alive); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return pids.filter(alive);
}

describe('SSM transport against the local endpoint (real SDK)', () => {
  it('runs a plugin: stdin in, stdout and stderr out, exit 0', async () => {
    const result = await harness
      .transport()
      .exec(request(INSTANCE, plugin('#!/bin/sh\ncat\necho working >&2\n')));
    expect(result).toMatchObject({ termination: 'exit', exitCode: 0, signal: null });
    expect(text(result.stdout)).toBe('{"hello":"world"}');
    expect(text(result.stderr)).toBe('working\n');
    expect(result.metadata).toMatchObject({
      embeds_request: true,
      shipped: true,
      ssm_status: 'Success',
      instance_id: INSTANCE,
    });
  });

  it('reports a plugin failure as a result, not an error', async () => {
    const result = await harness
      .transport()
      .exec(request(INSTANCE, plugin('#!/bin/sh\necho \'{"failed":true}\'\nexit 1\n')));
    expect(result).toMatchObject({ termination: 'exit', exitCode: 1 });
    expect(text(result.stdout)).toBe('{"failed":true}\n');
    expect(result.metadata).toMatchObject({ ssm_status: 'Failed' });
  });

  it('resolves names through [ssm.instances]', async () => {
    const transport = harness.transport({ instances: { web: OTHER_INSTANCE } });
    const result = await transport.exec(request('web', plugin('#!/bin/sh\necho ok\n')));
    expect(result.metadata).toMatchObject({ instance_id: OTHER_INSTANCE });
  });

  it('exit 194 and 137 never reach the agent: no reboot, no fake timeout', async () => {
    const transport = harness.transport();
    const reboot = await transport.exec(request(INSTANCE, plugin('#!/bin/sh\nexit 194\n')));
    expect(reboot).toMatchObject({ termination: 'exit', exitCode: 194 });
    expect(reboot.metadata).toMatchObject({ ssm_status: 'Failed', ssm_response_code: 1 });
    expect(harness.endpoint.rebootCount(INSTANCE)).toBe(0);
    const preempted = await transport.exec(request(INSTANCE, plugin('#!/bin/sh\nexit 137\n')));
    // The shell cannot tell `exit 137` from death by SIGKILL; either way it is no SSM timeout.
    expect(preempted).toMatchObject({ termination: 'signal', signal: 'SIGKILL' });
    expect(preempted.metadata).toMatchObject({ ssm_status: 'Failed', ssm_response_code: 1 });
  });

  // Moved from the endpoint's own auth tests (packages/ssm-endpoint), which assert the 403.
  it('AUTH_FAILED when the endpoint refuses the access key (UnrecognizedClientException 403)', async () => {
    const stranger = new SSMClient({
      endpoint: harness.endpoint.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDSTRANGER00000000', secretAccessKey: 'guess' },
      maxAttempts: 1,
    });
    const marker = join(scratch, 'stranger');
    const transport = createSsmTransport({ client: stranger, pollIntervalMs: 20 });
    const code = await codeOf(
      transport.exec(request(INSTANCE, plugin(`#!/bin/sh\ntouch ${marker}\n`))),
    );
    expect(code).toBe('AUTH_FAILED');
    await transport.close();
    stranger.destroy();
    expect(existsSync(marker)).toBe(false);
  });

  it('INSTANCE_UNKNOWN for an id SSM does not know', async () => {
    expect(
      await codeOf(harness.transport().exec(request('i-0000000000000dead', plugin('#!/bin/sh\n')))),
    ).toBe('INSTANCE_UNKNOWN');
  });

  it('INSTANCE_OFFLINE for an agent with PingStatus ConnectionLost', async () => {
    harness.endpoint.setPingStatus(INSTANCE, 'ConnectionLost');
    expect(await codeOf(harness.transport().exec(request(INSTANCE, plugin('#!/bin/sh\n'))))).toBe(
      'INSTANCE_OFFLINE',
    );
  });

  it('DELIVERY_TIMEOUT when SSM cannot deliver the command', async () => {
    harness.endpoint.setFaults(INSTANCE, { deliveryTimeout: true });
    const transport = harness.transport();
    expect(
      await codeOf(transport.exec(request(INSTANCE, plugin('#!/bin/sh\n'), { timeoutMs: 500 }))),
    ).toBe('DELIVERY_TIMEOUT');
  });

  it('UNDELIVERABLE when SSM reports the command undeliverable', async () => {
    harness.endpoint.setFaults(INSTANCE, { undeliverable: true });
    expect(await codeOf(harness.transport().exec(request(INSTANCE, plugin('#!/bin/sh\n'))))).toBe(
      'UNDELIVERABLE',
    );
  });

  it('THROTTLED once throttling outlasts the SDK retry budget; fewer throttles are absorbed', async () => {
    harness.endpoint.throttle(2, ['DescribeInstanceInformation']);
    const ok = await harness.transport().exec(request(INSTANCE, plugin('#!/bin/sh\necho ok\n')));
    expect(ok.exitCode).toBe(0);
    harness.endpoint.throttle(10, ['DescribeInstanceInformation']);
    expect(await codeOf(harness.transport().exec(request(INSTANCE, plugin('#!/bin/sh\n'))))).toBe(
      'THROTTLED',
    );
  });

  it('keeps polling through a slow start', async () => {
    harness.endpoint.setFaults(INSTANCE, { slowStartMs: 700 });
    const result = await harness
      .transport()
      .exec(request(INSTANCE, plugin('#!/bin/sh\necho late\n')));
    expect(text(result.stdout)).toBe('late\n');
  });

  it('waits out InvocationDoesNotExist after SendCommand, within invocationWaitMs', async () => {
    harness.endpoint.setFaults(INSTANCE, { invocationDoesNotExistMs: 600 });
    const result = await harness
      .transport({ invocationWaitMs: 5000 })
      .exec(request(INSTANCE, plugin('#!/bin/sh\necho there\n')));
    expect(text(result.stdout)).toBe('there\n');
    const sawMissing = harness.endpoint.requests.some(
      (entry) => entry.operation === 'GetCommandInvocation',
    );
    expect(sawMissing).toBe(true);
  });

  it('gives up on InvocationDoesNotExist after invocationWaitMs (CONNECTION_LOST, command cancelled)', async () => {
    harness.endpoint.setFaults(INSTANCE, { invocationDoesNotExistMs: 60_000 });
    expect(
      await codeOf(
        harness
          .transport({ invocationWaitMs: 400 })
          .exec(request(INSTANCE, plugin('#!/bin/sh\nsleep 30\n'))),
      ),
    ).toBe('CONNECTION_LOST');
    expect(harness.endpoint.requests.at(-1)?.operation).toBe('CancelCommand');
  });

  it('flags stdout and stderr beyond the GetCommandInvocation limits as truncated without S3', async () => {
    const warnings: string[] = [];
    const result = await harness
      .transport({ onWarning: (message) => warnings.push(message) })
      .exec(request(INSTANCE, plugin('#!/bin/sh\nseq 1 20000\nseq 1 5000 >&2\n')));
    const out = Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join('');
    const err = Array.from({ length: 5000 }, (_, i) => `${i + 1}\n`).join('');
    expect(result.stdoutTruncated).toBe(true);
    expect(result.stdout.byteLength).toBeGreaterThan(20_000);
    expect(result.stdout.byteLength).toBeLessThan(24_000);
    expect(out.startsWith(text(result.stdout))).toBe(true);
    expect(result.stderrTruncated).toBe(true);
    expect(err.endsWith(text(result.stderr))).toBe(true);
    expect(warnings.join('\n')).toMatch(/output_s3_bucket/);
  });

  it('reads the full output from S3 when outputS3Bucket is configured', async () => {
    const result = await harness
      .transport({ outputS3Bucket: 'rune-output', outputS3Prefix: 'runs/' })
      .exec(request(INSTANCE, plugin('#!/bin/sh\nseq 1 20000\nseq 1 5000 >&2\n')));
    const out = Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join('');
    const err = Array.from({ length: 5000 }, (_, i) => `${i + 1}\n`).join('');
    expect(result.stdoutTruncated).toBe(false);
    expect(text(result.stdout)).toBe(out);
    expect(result.stderrTruncated).toBe(false);
    expect(text(result.stderr)).toBe(err);
    expect(result.metadata).toMatchObject({ output_source: 's3' });
  });

  it('timeout: the node kills the whole process group and the result says timeout', async () => {
    const pidFile = join(scratch, 'timeout.pids');
    const script = `#!/bin/sh\nsleep 60 &\necho "$$ $!" > ${pidFile}\nwait\n`;
    const started = Date.now();
    const result = await harness
      .transport()
      .exec(request(INSTANCE, plugin(script), { timeoutMs: 1000 }));
    expect(result).toMatchObject({ termination: 'timeout', exitCode: null });
    expect(Date.now() - started).toBeLessThan(8000);
    const pids = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
    expect(pids.length).toBe(2);
    expect(await survivors(pids)).toEqual([]);
    expect(() => execFileSync('pgrep', ['-f', pidFile])).toThrow();
    expect(harness.endpoint.runningProcessGroups()).toEqual([]);
  });

  it('cancellation: CancelCommand kills the process group and the result says cancelled', async () => {
    const pidFile = join(scratch, 'cancel.pids');
    const script = `#!/bin/sh\nsleep 60 &\necho "$$ $!" > ${pidFile}\nwait\n`;
    const controller = new AbortController();
    const run = harness
      .transport()
      .exec(request(INSTANCE, plugin(script), { timeoutMs: 60_000, signal: controller.signal }));
    for (let i = 0; i < 100; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      try {
        if (readFileSync(pidFile, 'utf8').includes(' ')) break;
      } catch {}
    }
    controller.abort();
    const result = await run;
    expect(result).toMatchObject({ termination: 'cancelled', exitCode: null });
    expect(harness.endpoint.requests.some((entry) => entry.operation === 'CancelCommand')).toBe(
      true,
    );
    const pids = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
    expect(await survivors(pids)).toEqual([]);
  });

  it('honors the 50-id limit: one instance per SendCommand even under concurrency', async () => {
    const before = harness.endpoint.requests.length;
    const transport = harness.transport();
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        transport.exec(
          request(i % 2 ? INSTANCE : OTHER_INSTANCE, plugin(`#!/bin/sh\necho ${i}\n`)),
        ),
      ),
    );
    results.forEach((result, i) => {
      expect(text(result.stdout)).toBe(`${i}\n`);
    });
    const sends = harness.endpoint.requests
      .slice(before)
      .filter((entry) => entry.operation === 'SendCommand');
    expect(sends.length).toBe(8);
    for (const send of sends) expect((send.body.InstanceIds as string[]).length).toBe(1);
  });

  it('PAYLOAD_TOO_LARGE: client-side before the API, and when the API refuses the size', async () => {
    const noise = new Uint8Array(randomBytes(200_000));
    const before = harness.endpoint.requests.length;
    expect(
      await codeOf(
        harness.transport().exec(request(INSTANCE, plugin('#!/bin/sh\n'), { stdin: noise })),
      ),
    ).toBe('PAYLOAD_TOO_LARGE');
    expect(harness.endpoint.requests.length).toBe(before);
    const strict = await startHarness({ maxParametersBytes: 10_000 });
    try {
      const transport = strict.transport({ maxCommandBytes: 1_000_000 });
      expect(
        await codeOf(
          transport.exec(
            request(INSTANCE, plugin('#!/bin/sh\n'), { stdin: noise.subarray(0, 20_000) }),
          ),
        ),
      ).toBe('PAYLOAD_TOO_LARGE');
    } finally {
      await strict.close();
    }
  });

  it('PLUGIN_INTEGRITY_FAILED when the plugin does not match its sha256', async () => {
    const bad = { ...plugin('#!/bin/sh\necho hi\n'), sha256: 'c'.repeat(64) };
    expect(await codeOf(harness.transport().exec(request(INSTANCE, bad)))).toBe(
      'PLUGIN_INTEGRITY_FAILED',
    );
  });

  it('an already-aborted signal sends nothing', async () => {
    const before = harness.endpoint.requests.length;
    const result = await harness
      .transport()
      .exec(request(INSTANCE, plugin('#!/bin/sh\n'), { signal: AbortSignal.abort() }));
    expect(result.termination).toBe('cancelled');
    expect(harness.endpoint.requests.length).toBe(before);
  });
});
