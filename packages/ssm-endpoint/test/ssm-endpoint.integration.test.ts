/**
 * The local SSM endpoint on its own, driven by the REAL @aws-sdk/client-ssm: wire shapes, the
 * agent's reserved exit codes, the 50-id limit and loopback-only listening.
 */

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CancelCommandCommand,
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  ListCommandInvocationsCommand,
  SendCommandCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSsmEndpoint } from '../src/index.js';
import { type Harness, INSTANCE, OTHER_INSTANCE, startHarness } from './helpers.js';

let harness: Harness;
let client: SSMClient;
beforeAll(async () => {
  harness = await startHarness({ pendingMs: 10, rebootMs: 100, maxReboots: 2 });
  client = harness.client;
});
afterAll(async () => harness.close());

/** True while `pid` exists and is not a zombie. */
const alive = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

async function run(commands: string[], instanceIds = [INSTANCE], executionTimeout = '30') {
  const sent = await client.send(
    new SendCommandCommand({
      DocumentName: 'AWS-RunShellScript',
      InstanceIds: instanceIds,
      Parameters: { commands, executionTimeout: [executionTimeout] },
    }),
  );
  const commandId = sent.Command!.CommandId!;
  for (let i = 0; i < 200; i++) {
    try {
      const invocation = await client.send(
        new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceIds[0] }),
      );
      if (!['Pending', 'InProgress', 'Delayed', 'Cancelling'].includes(invocation.Status!)) {
        return { commandId, invocation };
      }
    } catch (error) {
      if ((error as Error).name !== 'InvocationDoesNotExist') throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('command did not finish');
}

describe('local SSM endpoint (real SDK)', () => {
  it('SendCommand returns a Command with real member names and Date timestamps', async () => {
    const sent = await client.send(
      new SendCommandCommand({
        DocumentName: 'AWS-RunShellScript',
        InstanceIds: [INSTANCE],
        Parameters: { commands: ['echo one', 'echo two'] },
        Comment: 'shape check',
      }),
    );
    expect(sent.Command).toMatchObject({
      DocumentName: 'AWS-RunShellScript',
      InstanceIds: [INSTANCE],
      Status: 'Pending',
      Comment: 'shape check',
    });
    expect(sent.Command?.RequestedDateTime).toBeInstanceOf(Date);
    expect(sent.Command?.CommandId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('joins commands with newlines and runs them with sh, stdin at /dev/null', async () => {
    const { invocation } = await run([
      'echo one',
      'read line || echo "stdin is empty"',
      'echo err >&2',
    ]);
    expect(invocation).toMatchObject({
      Status: 'Success',
      StatusDetails: 'Success',
      ResponseCode: 0,
      PluginName: 'aws:runShellScript',
      StandardOutputContent: 'one\nstdin is empty\n',
      StandardErrorContent: 'err\n',
    });
    expect(invocation.ExecutionStartDateTime).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('a non-zero exit is Failed with the exit code as ResponseCode', async () => {
    const { invocation } = await run(['exit 3']);
    expect(invocation).toMatchObject({
      Status: 'Failed',
      StatusDetails: 'Failed',
      ResponseCode: 3,
    });
  });

  it('exit 137 reads as an execution timeout, as on the agent', async () => {
    const { invocation } = await run(['exit 137']);
    expect(invocation).toMatchObject({ Status: 'TimedOut', StatusDetails: 'ExecutionTimedOut' });
  });

  it('exit 194 reboots the instance and runs the script again', async () => {
    const before = harness.endpoint.rebootCount(OTHER_INSTANCE);
    const { invocation } = await run(['exit 194'], [OTHER_INSTANCE]);
    expect(harness.endpoint.rebootCount(OTHER_INSTANCE) - before).toBe(3);
    expect(invocation).toMatchObject({ Status: 'Failed', ResponseCode: 194 });
  });

  it('enforces executionTimeout by killing the process group', async () => {
    const started = Date.now();
    const { invocation } = await run(['sleep 30 & wait'], [INSTANCE], '1');
    expect(invocation).toMatchObject({ Status: 'TimedOut', StatusDetails: 'ExecutionTimedOut' });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(harness.endpoint.runningProcessGroups()).toEqual([]);
  });

  it.each(['timeout', 'cancel'] as const)(
    'on %s SIGKILLs the whole process group, like the agent, and nothing outside it',
    async (ending) => {
      const dir = mkdtempSync(join(tmpdir(), 'rune-ssm-group-'));
      const pids = join(dir, 'pids');
      const sent = await client.send(
        new SendCommandCommand({
          DocumentName: 'AWS-RunShellScript',
          InstanceIds: [INSTANCE],
          Parameters: {
            commands: [
              'sleep 300 &',
              'a=$!',
              `setsid sh -c 'echo $$ > ${pids}.s; exec sleep 300' &`,
              `while [ ! -s ${pids}.s ]; do sleep 0.05; done`,
              `echo "$$ $a $(cat ${pids}.s)" > ${pids}`,
              'wait',
            ],
            executionTimeout: [ending === 'timeout' ? '1' : '60'],
          },
        }),
      );
      const commandId = sent.Command!.CommandId!;
      let written = '';
      for (let i = 0; i < 200 && written.split(' ').length < 3; i++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        written = existsSync(pids) ? readFileSync(pids, 'utf8').trim() : '';
      }
      const [shell, inGroup, outside] = written.split(' ').map(Number);
      if (ending === 'cancel') {
        await client.send(
          new CancelCommandCommand({ CommandId: commandId, InstanceIds: [INSTANCE] }),
        );
      }
      try {
        let status = '';
        for (let i = 0; i < 200 && !['TimedOut', 'Cancelled'].includes(status); i++) {
          await new Promise((resolve) => setTimeout(resolve, 25));
          status = (
            await client.send(
              new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: INSTANCE }),
            )
          ).Status!;
        }
        expect(status).toBe(ending === 'timeout' ? 'TimedOut' : 'Cancelled');
        for (let i = 0; i < 40 && [shell!, inGroup!].some(alive); i++) {
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
        expect([shell!, inGroup!].filter(alive)).toEqual([]);
        // The agent kills the group only: a setsid child survives it (RUNE's reaper handles it).
        expect(alive(outside!)).toBe(true);
      } finally {
        if (outside !== undefined) process.kill(outside, 'SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it('truncates GetCommandInvocation output at 24,000 / 8,000 characters with the agent markers', async () => {
    const { invocation } = await run([
      'head -c 30000 /dev/zero | tr "\\0" a',
      'head -c 9000 /dev/zero | tr "\\0" b >&2',
    ]);
    expect(invocation.StandardOutputContent).toHaveLength(24_000);
    expect(invocation.StandardOutputContent?.endsWith('\n---Output truncated---')).toBe(true);
    expect(invocation.StandardErrorContent).toHaveLength(8000);
    expect(invocation.StandardErrorContent?.endsWith('\n---Error truncated----')).toBe(true);
  });

  it('ListCommandInvocations with Details returns CommandPlugins and the combined Output', async () => {
    const { commandId } = await run(['echo listed']);
    const listed = await client.send(
      new ListCommandInvocationsCommand({ CommandId: commandId, Details: true }),
    );
    const item = listed.CommandInvocations?.[0];
    expect(item?.RequestedDateTime).toBeInstanceOf(Date);
    expect(item?.CommandPlugins?.[0]).toMatchObject({
      Name: 'aws:runShellScript',
      Status: 'Success',
      ResponseCode: 0,
      Output: 'listed\n',
    });
  });

  it('CancelCommand cancels a running invocation', async () => {
    const sent = await client.send(
      new SendCommandCommand({
        DocumentName: 'AWS-RunShellScript',
        InstanceIds: [INSTANCE],
        Parameters: { commands: ['sleep 30'] },
      }),
    );
    const commandId = sent.Command!.CommandId!;
    await new Promise((resolve) => setTimeout(resolve, 200));
    await client.send(new CancelCommandCommand({ CommandId: commandId, InstanceIds: [INSTANCE] }));
    let status = '';
    for (let i = 0; i < 100 && status !== 'Cancelled'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      status = (
        await client.send(
          new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: INSTANCE }),
        )
      ).Status!;
    }
    expect(status).toBe('Cancelled');
  });

  it('rejects more than 50 InstanceIds, unknown ids and other documents with the real error names', async () => {
    const ids = Array.from({ length: 51 }, (_, i) => `i-${(i + 1).toString(16).padStart(17, '0')}`);
    const nameOf = (promise: Promise<unknown>) =>
      promise.then(
        () => 'ok',
        (error: Error) => error.name,
      );
    expect(
      await nameOf(
        client.send(
          new SendCommandCommand({
            DocumentName: 'AWS-RunShellScript',
            InstanceIds: ids,
            Parameters: { commands: ['true'] },
          }),
        ),
      ),
    ).toBe('ValidationException');
    expect(
      await nameOf(
        client.send(
          new SendCommandCommand({
            DocumentName: 'AWS-RunShellScript',
            InstanceIds: ['i-0000000000000dead'],
            Parameters: { commands: ['true'] },
          }),
        ),
      ),
    ).toBe('InvalidInstanceId');
    expect(
      await nameOf(
        client.send(
          new SendCommandCommand({
            DocumentName: 'AWS-RunPowerShellScript',
            InstanceIds: [INSTANCE],
            Parameters: { commands: ['true'] },
          }),
        ),
      ),
    ).toBe('InvalidDocument');
    expect(
      await nameOf(
        client.send(
          new GetCommandInvocationCommand({
            CommandId: '00000000-0000-0000-0000-000000000000',
            InstanceId: INSTANCE,
          }),
        ),
      ),
    ).toBe('InvocationDoesNotExist');
  });

  it('DescribeInstanceInformation reports PingStatus with both filter styles', async () => {
    harness.endpoint.setPingStatus(OTHER_INSTANCE, 'ConnectionLost');
    const answer = await client.send(
      new DescribeInstanceInformationCommand({
        Filters: [{ Key: 'InstanceIds', Values: [OTHER_INSTANCE] }],
      }),
    );
    expect(answer.InstanceInformationList?.[0]).toMatchObject({
      InstanceId: OTHER_INSTANCE,
      PingStatus: 'ConnectionLost',
      PlatformType: 'Linux',
    });
    expect(answer.InstanceInformationList?.[0]?.LastPingDateTime).toBeInstanceOf(Date);
    const legacy = await client.send(
      new DescribeInstanceInformationCommand({
        InstanceInformationFilterList: [{ key: 'InstanceIds', valueSet: [INSTANCE] }],
      }),
    );
    expect(legacy.InstanceInformationList?.map((item) => item.InstanceId)).toEqual([INSTANCE]);
    harness.endpoint.setPingStatus(OTHER_INSTANCE, 'Online');
  });

  it('ThrottlingException is retried by the SDK and surfaces once the attempts run out', async () => {
    harness.endpoint.throttle(5, ['DescribeInstanceInformation']);
    const error = await client
      .send(new DescribeInstanceInformationCommand({}))
      .catch((caught: Error) => caught);
    expect((error as Error).name).toBe('ThrottlingException');
    expect((error as { $metadata: { attempts: number } }).$metadata.attempts).toBe(3);
    harness.endpoint.throttle(0);
  });

  it('listens on loopback only', async () => {
    await expect(startSsmEndpoint({ host: '0.0.0.0' })).rejects.toThrow(/loopback/);
  });
});
