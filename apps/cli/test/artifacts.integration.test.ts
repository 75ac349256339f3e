/**
 * Fetched artifacts end to end with the BUILT CLI and the real gather-logs plugin on localhost:
 * pretty output says where the archive went without `-v`, and once its sha256 and size are
 * verified the node-side archive is removed (and the result says so).
 */

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliSandbox, createCliSandbox } from './cli-harness.js';

let sandbox: CliSandbox;
beforeAll(() => {
  sandbox = createCliSandbox();
});
afterAll(() => sandbox?.cleanup());

const args = ['run', 'gather-logs', '--node', 'localhost', '-p', 'archive=true', '-p', 'lines=20'];

describe('gather-logs --fetch-artifacts on localhost', () => {
  it('stores the verified archive, removes the node copy, and says so in the result', async () => {
    const result = await sandbox.run([...args, '--fetch-artifacts', '-o', 'json']);
    expect(result.code, result.stdout).toBe(0);
    const document = JSON.parse(result.stdout) as {
      nodes: {
        artifacts: {
          path: string;
          sha256: string;
          local_path: string;
          status: string;
          removal?: { status: string; error: unknown };
        }[];
      }[];
    };
    const artifact = document.nodes[0]?.artifacts[0];
    expect(artifact?.status).toBe('fetched');
    expect(artifact?.removal).toEqual({ status: 'removed', error: null });
    expect(existsSync(artifact!.path)).toBe(false);
    // Only the file is removed (the transport contract); its private directory stays, empty.
    rmSync(dirname(artifact!.path), { recursive: true, force: true });
    const stored = readFileSync(artifact!.local_path);
    expect(createHash('sha256').update(stored).digest('hex')).toBe(artifact?.sha256);
  });

  it('pretty output names the stored file without -v', async () => {
    const result = await sandbox.run([...args, '--fetch-artifacts']);
    expect(result.code, result.stderr).toBe(0);
    const line = result.stdout.split('\n').find((text) => text.includes('artifact '));
    expect(line).toMatch(
      /^ {4}artifact \/\S+\/artifacts\/[0-9a-f]{32}\/localhost\/gather-logs-\S+\.tar\.gz \(from \/\S+\.tar\.gz, sha256 verified; removed from the node\)$/,
    );
    const remote = /\(from (\S+), sha256/.exec(line ?? '')?.[1];
    expect(remote !== undefined && existsSync(remote)).toBe(false);
    if (remote !== undefined) rmSync(dirname(remote), { recursive: true, force: true });
  });

  it('without --fetch-artifacts the archive stays on the node, and the output says where', async () => {
    const result = await sandbox.run(args);
    expect(result.code, result.stderr).toBe(0);
    const remote = /artifact (\S+) left on the node \(--fetch-artifacts downloads it\)/.exec(
      result.stdout,
    )?.[1];
    expect(remote).toBeDefined();
    expect(existsSync(remote!)).toBe(true);
    rmSync(dirname(remote!), { recursive: true, force: true });
  });
});
