import { createHash } from 'node:crypto';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { RuneError } from '@rune/protocol';
import type { TransportExecRequest } from '@rune/transport';
import { describe, expect, it } from 'vitest';
import { toRuneError } from './aws-errors.js';
import {
  createSsmTransport,
  interpretExitStatus,
  type SsmTransportOptions,
} from './ssm-transport.js';

const content = new TextEncoder().encode('#!/bin/sh\ncat\n');
const plugin = {
  action: 'noop',
  version: '1.0.0',
  sha256: createHash('sha256').update(content).digest('hex'),
  content,
};

function request(overrides: Partial<TransportExecRequest> = {}): TransportExecRequest {
  return {
    node: { name: 'i-0123456789abcdef0' },
    plugin,
    deployMode: 'ship',
    stdin: new TextEncoder().encode('{}'),
    timeoutMs: 10_000,
    limits: { maxStdoutBytes: 1000, maxStderrBytes: 1000 },
    signal: new AbortController().signal,
    traceId: 'a'.repeat(32),
    ...overrides,
  };
}

function awsError(name: string, message = ''): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: 400 } });
}

/** A scripted SSM client: answers by command name; records every call. */
function fakeClient(handlers: Record<string, (input: Record<string, unknown>) => unknown>) {
  const calls: { name: string; input: Record<string, unknown> }[] = [];
  const client = {
    async send(command: { constructor: { name: string }; input: Record<string, unknown> }) {
      const name = command.constructor.name.replace(/Command$/, '');
      calls.push({ name, input: command.input });
      const handler = handlers[name];
      if (handler === undefined) throw new Error(`unexpected ${name}`);
      return handler(command.input);
    },
    destroy() {},
  };
  return { client: client as unknown as SSMClient, calls };
}

const online = () => ({
  InstanceInformationList: [{ InstanceId: 'i-0123456789abcdef0', PingStatus: 'Online' }],
});

/** A manual clock: sleep advances time instantly and records the requested delays. */
function manualTime() {
  let now = 1_000_000;
  const sleeps: number[] = [];
  return {
    sleeps,
    options: {
      clock: () => now,
      sleep: async (ms: number) => {
        sleeps.push(ms);
        now += ms;
      },
      random: () => 0.5,
    } satisfies Partial<SsmTransportOptions>,
  };
}

describe('createSsmTransport', () => {
  it('declares the transport contract', () => {
    const transport = createSsmTransport({ client: fakeClient({}).client });
    expect(transport.name).toBe('ssm');
    expect(transport.specificationVersion).toBe('rune-transport-v1');
    expect(transport.capabilities).toMatchObject({
      artifacts: false,
      runAs: true,
      embedsRequestInCommand: true,
    });
    expect(transport.capabilities.maxStdinBytes).toBeGreaterThan(30_000);
  });

  it('rejects an unsafe remote cache dir and bad [ssm.instances] at construction', () => {
    expect(() => createSsmTransport({ remoteCacheDir: '/tmp/$(reboot)' })).toThrow(RuneError);
    expect(() => createSsmTransport({ instances: { web: 'not-an-id' } })).toThrow(/instance id/);
  });

  it('resolves instanceId, [ssm.instances] names and id-shaped names; refuses others', async () => {
    const { client, calls } = fakeClient({
      DescribeInstanceInformation: () => ({ InstanceInformationList: [] }),
    });
    const transport = createSsmTransport({ client, instances: { web: 'i-0aaaaaaaaaaaaaaaa' } });
    const codeOf = (node: TransportExecRequest['node']) =>
      transport.exec(request({ node })).catch((error: RuneError) => error.code);
    expect(await codeOf({ name: 'web' })).toBe('INSTANCE_UNKNOWN');
    expect(await codeOf({ name: 'x', instanceId: 'mi-0123456789abcdef0' })).toBe(
      'INSTANCE_UNKNOWN',
    );
    expect(await codeOf({ name: 'db.example.com' })).toBe('INVALID_TARGET');
    expect(
      calls.map((call) => (call.input.Filters as { Values: string[] }[])[0]!.Values[0]),
    ).toEqual(['i-0aaaaaaaaaaaaaaaa', 'mi-0123456789abcdef0']);
  });

  it('refuses payloads above maxCommandBytes before calling any API', async () => {
    const { client, calls } = fakeClient({});
    const transport = createSsmTransport({ client, maxCommandBytes: 2000 });
    const big = new Uint8Array(5000).map((_, i) => (i * 7919) % 256);
    await expect(transport.exec(request({ stdin: big }))).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
    });
    expect(calls).toEqual([]);
  });

  it('refuses run_as other than root (SSM runs as root)', async () => {
    const transport = createSsmTransport({ client: fakeClient({}).client });
    await expect(transport.exec(request({ runAs: 'postgres' }))).rejects.toMatchObject({
      code: 'UNSUPPORTED_FEATURE',
    });
  });

  it('maps PingStatus to INSTANCE_OFFLINE', async () => {
    const { client } = fakeClient({
      DescribeInstanceInformation: () => ({
        InstanceInformationList: [{ InstanceId: 'i-0123456789abcdef0', PingStatus: 'Inactive' }],
      }),
    });
    await expect(createSsmTransport({ client }).exec(request())).rejects.toMatchObject({
      code: 'INSTANCE_OFFLINE',
    });
  });

  it('retries InvocationDoesNotExist for a bounded window, then cancels and reports CONNECTION_LOST', async () => {
    const time = manualTime();
    const { client, calls } = fakeClient({
      DescribeInstanceInformation: online,
      SendCommand: () => ({ Command: { CommandId: 'c-1' } }),
      GetCommandInvocation: () => {
        throw awsError('InvocationDoesNotExist');
      },
      CancelCommand: () => ({}),
    });
    const transport = createSsmTransport({
      client,
      ...time.options,
      pollIntervalMs: 100,
      maxPollIntervalMs: 1000,
      invocationWaitMs: 5000,
    });
    await expect(transport.exec(request())).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
    const polls = calls.filter((call) => call.name === 'GetCommandInvocation').length;
    expect(polls).toBeGreaterThan(3);
    expect(polls).toBeLessThan(30);
    expect(calls.at(-1)?.name).toBe('CancelCommand');
    // Backoff grows from 100 ms (with jitter factor 1.0 at random 0.5) and stops at the ceiling.
    expect(time.sleeps.slice(0, 4)).toEqual([100, 100, 150, 225]);
    expect(Math.max(...time.sleeps)).toBeLessThanOrEqual(1000);
  });

  it('cancels past the deadline: timeout when started, DELIVERY_TIMEOUT when never started', async () => {
    for (const [status, expected] of [
      ['InProgress', 'timeout'],
      ['Pending', 'DELIVERY_TIMEOUT'],
    ] as const) {
      const time = manualTime();
      let cancelled = false;
      const { client } = fakeClient({
        DescribeInstanceInformation: online,
        SendCommand: () => ({ Command: { CommandId: 'c-2' } }),
        GetCommandInvocation: () =>
          cancelled
            ? { Status: 'Cancelled', StatusDetails: 'Cancelled' }
            : { Status: status, StatusDetails: status },
        CancelCommand: () => {
          cancelled = true;
          return {};
        },
      });
      const transport = createSsmTransport({ client, ...time.options, pollIntervalMs: 200 });
      const outcome = await transport.exec(request({ timeoutMs: 2000 })).then(
        (result) => result.termination,
        (error: RuneError) => error.code,
      );
      expect(outcome).toBe(expected);
    }
  });

  it('turns every documented failure status into its EPS code', async () => {
    for (const [details, code] of [
      ['Undeliverable', 'UNDELIVERABLE'],
      ['DeliveryTimedOut', 'DELIVERY_TIMEOUT'],
    ] as const) {
      const { client } = fakeClient({
        DescribeInstanceInformation: online,
        SendCommand: () => ({ Command: { CommandId: 'c-3' } }),
        GetCommandInvocation: () => ({
          Status: details === 'Undeliverable' ? 'Failed' : 'TimedOut',
          StatusDetails: details,
          ResponseCode: -1,
        }),
      });
      const transport = createSsmTransport({ client, ...manualTime().options });
      await expect(transport.exec(request())).rejects.toMatchObject({ code });
    }
  });
});

describe('interpretExitStatus', () => {
  it('reads 128+n as signal n and everything else as an exit code', () => {
    expect(interpretExitStatus(0)).toEqual({ termination: 'exit', exitCode: 0, signal: null });
    expect(interpretExitStatus(127)).toEqual({ termination: 'exit', exitCode: 127, signal: null });
    expect(interpretExitStatus(137)).toEqual({
      termination: 'signal',
      exitCode: null,
      signal: 'SIGKILL',
    });
    expect(interpretExitStatus(143)).toEqual({
      termination: 'signal',
      exitCode: null,
      signal: 'SIGTERM',
    });
    expect(interpretExitStatus(255)).toEqual({ termination: 'exit', exitCode: 255, signal: null });
  });
});

describe('toRuneError', () => {
  it.each([
    ['ThrottlingException', '', 'THROTTLED'],
    ['InvalidInstanceId', '', 'INSTANCE_UNKNOWN'],
    ['AccessDeniedException', '', 'AUTH_FAILED'],
    ['UnrecognizedClientException', '', 'AUTH_FAILED'],
    ['InvalidParameters', 'Parameters exceed the maximum allowed size', 'PAYLOAD_TOO_LARGE'],
    ['InvalidDocument', 'nope', 'TRANSPORT_API_ERROR'],
  ])('%s -> %s', (name, message, code) => {
    const error = toRuneError(awsError(name, message), { operation: 'SendCommand' });
    expect(error.code).toBe(code);
    expect(error.details).toMatchObject({ aws_error: name, operation: 'SendCommand' });
  });

  it('names the config file, the [ssm] region key and AWS_REGION when the region is missing', () => {
    const missing = new Error('Region is missing');
    const error = toRuneError(missing, {
      operation: 'DescribeInstanceInformation',
      configFile: '/home/op/.config/rune/config.toml',
    });
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toBe(
      'No AWS region for SSM: set region = "<aws-region>" in the [ssm] section of /home/op/.config/rune/config.toml, or export AWS_REGION',
    );
    expect(error.details).toMatchObject({
      config_file: '/home/op/.config/rune/config.toml',
      config_key: 'ssm.region',
    });
    const unnamed = toRuneError(missing, { operation: 'SendCommand' });
    expect(unnamed.message).toContain('~/.config/rune/config.toml or ./rune.toml');
    expect(unnamed.message).toContain('[ssm] section');
    expect(unnamed.message).toContain('AWS_REGION');
  });

  it('maps network errors from the SDK', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(toRuneError(refused, { operation: 'SendCommand' }).code).toBe('CONNECTION_REFUSED');
  });
});
