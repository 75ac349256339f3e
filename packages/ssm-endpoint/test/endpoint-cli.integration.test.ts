/**
 * The `rune-ssm-endpoint` bin as a user starts it (the built `dist/endpoint-cli.js` behind the
 * committed `bin/` entry): bad input is a usage error with its EPS code, never a stack trace; a
 * good start prints the URL and this start's key pair, answers the real SDK with that pair, and
 * stops cleanly on SIGINT. Needs the build (`npx -y pnpm@10.34.9 build`).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DescribeInstanceInformationCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../bin/rune-ssm-endpoint.js', import.meta.url));
const children: ChildProcess[] = [];
/** The endpoint generates its pair unless these are set: keep the caller's out. */
const withoutChosenKeys = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !key.startsWith('RUNE_SSM_ENDPOINT_')),
);

beforeAll(() => {
  if (!existsSync(new URL('../dist/endpoint-cli.js', import.meta.url))) {
    throw new Error('packages/ssm-endpoint is not built: run `npx -y pnpm@10.34.9 build` first');
  }
});
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

function runBin(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('rune-ssm-endpoint', () => {
  it('refuses a malformed instance id with INVALID_ARGUMENT, exit 2, no stack trace', async () => {
    const result = await runBin(['--port', '0', '--instances', 'web-1']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'rune-ssm-endpoint: INVALID_ARGUMENT: not an instance id: "web-1" (i- + 8 or 17 hex digits, or mi- + 17)\n',
    );
  });

  it('refuses a non-loopback host and an unknown option (exit 2)', async () => {
    const host = await runBin(['--port', '0', '--host', '0.0.0.0']);
    expect(host.code).toBe(2);
    expect(host.stderr).toContain(
      'INVALID_ARGUMENT: the local SSM endpoint only listens on loopback',
    );
    const option = await runBin(['--bogus']);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("Unknown option '--bogus'");
    expect(`${host.stderr}${option.stderr}`).not.toMatch(/\n\s+at /);
  });

  it('prints its URL and key pair, answers requests signed with them, and stops on SIGINT', async () => {
    const child = spawn(
      process.execPath,
      [BIN, '--port', '0', '--instances', 'i-0abc123456789def0=web-1'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: withoutChosenKeys },
    );
    children.push(child);
    // Readiness: the banner, printed once the endpoint listens.
    const banner = await new Promise<string>((resolve, reject) => {
      let output = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (output.includes('Ctrl-C to stop.')) resolve(output);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${output}`)));
    });
    const url = /listening on (http:\/\/\S+)/.exec(banner)?.[1];
    const keys = /AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)/.exec(banner);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(banner).toContain('instances: i-0abc123456789def0 (web-1)');
    const client = new SSMClient({
      endpoint: url!,
      region: 'us-east-1',
      credentials: { accessKeyId: keys![1]!, secretAccessKey: keys![2]! },
      maxAttempts: 1,
    });
    const answer = await client.send(new DescribeInstanceInformationCommand({}));
    client.destroy();
    expect(answer.InstanceInformationList?.map((item) => item.InstanceId)).toEqual([
      'i-0abc123456789def0',
    ]);
    const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    expect(await exit).toBe(0);
  });
});
