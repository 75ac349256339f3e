/**
 * Plugins that ship whole: a plugin that includes RUNE's Bash library (`# @rune-include
 * bpcs.sh`, as docs/writing-plugins.md and `rune plugin new` write it) runs with `rune run` on
 * localhost AND over SSH against a real sshd (ship mode sends one file: the registry assembled
 * it), and `rune-plugin-test` checks the very bytes RUNE registers (same sha256). Build first:
 * `npx -y pnpm@10.34.9 build`.
 */

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type SshdInstance, startSshd } from '@rune/transport-ssh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manifestTemplate } from '../src/commands/plugin-new.js';
import {
  type CliResult,
  type CliSandbox,
  createCliSandbox,
  writeSshConfigHost,
} from './cli-harness.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const TEST_KIT_BIN = join(REPO, 'apps/plugin-test-kit/bin/rune-plugin-test.js');

let sandbox: CliSandbox;
let sshd: SshdInstance;
let pluginDir: string;

function testKit(args: readonly string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [TEST_KIT_BIN, ...args],
      { env: sandbox.env, cwd: sandbox.root, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 999;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

interface RunDocument {
  exit_code: number;
  nodes: {
    node: string;
    transport: string;
    status: string;
    error: { code: string; message: string } | null;
    response: { payload: { output_data: Record<string, unknown> } } | null;
  }[];
}

async function runJson(args: readonly string[]): Promise<{ result: CliResult; doc: RunDocument }> {
  const result = await sandbox.run([...args, '-o', 'json']);
  return { result, doc: JSON.parse(result.stdout) as RunDocument };
}

/** sha256 RUNE registers for an action (rune plugin-info) and that the test kit tested. */
async function registeredAndTested(action: string, file: string): Promise<[string, string]> {
  const info = await sandbox.run(['plugin-info', action, '-o', 'json']);
  const registered = (JSON.parse(info.stdout) as { plugin: { sha256: string } }).plugin.sha256;
  const kit = await testKit([file, '--format', 'json']);
  expect(kit.code, kit.stdout + kit.stderr).toBe(0);
  const tested = (JSON.parse(kit.stdout) as { plugins: { sha256: string }[] }).plugins[0]!.sha256;
  return [registered, tested];
}

beforeAll(async () => {
  sandbox = createCliSandbox();
  sshd = await startSshd();
  writeSshConfigHost(sandbox, 'remote-node', sshd);
  pluginDir = join(sandbox.root, 'my-plugins');
  mkdirSync(join(sandbox.env.XDG_CONFIG_HOME!, 'rune'), { recursive: true });
  writeFileSync(
    join(sandbox.env.XDG_CONFIG_HOME!, 'rune', 'config.toml'),
    [
      '[plugins]',
      `plugin_dir = ${JSON.stringify(pluginDir)}`,
      '[ssh]',
      'use_agent = false',
      `remote_cache_dir = ${JSON.stringify(sshd.remoteCacheDir)}`,
      '',
    ].join('\n'),
  );
}, 120_000);
afterAll(async () => {
  await sshd?.stop();
  sandbox?.cleanup();
});

describe('rune plugin new', () => {
  it('scaffolds a plugin that passes rune-plugin-test and runs locally and over SSH as generated', async () => {
    const created = await sandbox.run(['plugin', 'new', 'greet', '--dir', pluginDir]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('rune-plugin-test');

    const kit = await testKit([join(pluginDir, 'greet.sh')]);
    expect(kit.code, kit.stdout + kit.stderr).toBe(0);
    expect(kit.stdout).toMatch(/^PASS greet /m);
    expect(kit.stdout).toMatch(/0 failed, 0 warnings/);

    const local = await runJson(['run', 'greet', '--node', 'localhost', '-p', 'message=hi']);
    expect(local.doc.nodes[0]?.error ?? null, local.result.stderr).toBeNull();
    expect(local.doc.nodes[0]?.response?.payload.output_data.said).toBe('hi');

    const remote = await runJson(['run', 'greet', '--node', 'remote-node', '-p', 'message=hi']);
    expect(remote.doc.nodes[0]?.error ?? null, remote.result.stderr).toBeNull();
    expect(remote.doc.nodes[0]).toMatchObject({ transport: 'ssh', status: 'success' });
    expect(remote.doc.nodes[0]?.response?.payload.output_data.said).toBe('hi');

    const [registered, tested] = await registeredAndTested('greet', join(pluginDir, 'greet.sh'));
    expect(tested).toBe(registered);
  });

  it('refuses an existing plugin, a built-in name and an invalid name', async () => {
    expect((await sandbox.run(['plugin', 'new', 'greet', '--dir', pluginDir])).stderr).toMatch(
      /error INVALID_ARGUMENT: .*already exists/,
    );
    expect((await sandbox.run(['plugin', 'new', 'noop', '--dir', pluginDir])).stderr).toMatch(
      /error INVALID_ARGUMENT: "noop" is a built-in action/,
    );
    const bad = await sandbox.run(['plugin', 'new', 'Bad_Name', '--dir', pluginDir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/error INVALID_ACTION_NAME/);
  });
});

describe('a plugin written as docs/writing-plugins.md shows', () => {
  it('runs over SSH (the library ships inside it) and the test kit checks the bytes that ship', async () => {
    const guide = readFileSync(join(REPO, 'docs', 'writing-plugins.md'), 'utf8');
    const block = (language: string, after: string): string => {
      const start = guide.indexOf(`\`\`\`${language}\n`, guide.indexOf(after));
      const end = guide.indexOf('\n```', start);
      return `${guide.slice(start + language.length + 4, end)}\n`;
    };
    writeFileSync(join(pluginDir, 'hello.sh'), block('bash', '`hello.sh`:'), { mode: 0o755 });
    writeFileSync(join(pluginDir, 'hello.manifest.json'), block('json', '`hello.manifest.json`:'));

    const remote = await runJson(['run', 'hello', '--node', 'remote-node', '-p', 'times=2']);
    expect(remote.doc.nodes[0]?.error ?? null, remote.result.stderr).toBeNull();
    expect(remote.doc.nodes[0]?.response?.payload.output_data.greetings).toEqual([
      'hello, world',
      'hello, world',
    ]);
    const [registered, tested] = await registeredAndTested('hello', join(pluginDir, 'hello.sh'));
    expect(tested).toBe(registered);
  });

  it('fails over SSH with its own failure document: the deferred library functions load from the shipped file', async () => {
    // bpcs_fail and the failure documents sit after the plugin's end in the assembled file; the
    // node reads them back from the cached copy the transport checked (sha256) and ran.
    mkdirSync(pluginDir, { recursive: true });
    writeFileSync(
      join(pluginDir, 'refuses.sh'),
      [
        '#!/usr/bin/env bash',
        'set -euo pipefail',
        '# shellcheck source=/dev/null',
        'source "$RUNE_BASH_LIB/bpcs.sh" # @rune-include bpcs.sh',
        'bpcs_init refuses 0.1.0',
        'cd /',
        'bpcs_fail 3 PLUGIN_PRECONDITION_FAILED "refused on purpose"',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    // The manifest `rune plugin new` scaffolds (its one parameter has a default).
    writeFileSync(join(pluginDir, 'refuses.manifest.json'), manifestTemplate('refuses'));
    const remote = await runJson(['run', 'refuses', '--node', 'remote-node']);
    expect(remote.result.code).not.toBe(0);
    expect(remote.doc.nodes[0], remote.result.stdout).toMatchObject({ transport: 'ssh' });
    expect(remote.doc.nodes[0]?.error?.code, remote.result.stderr).toBe(
      'PLUGIN_PRECONDITION_FAILED',
    );
    expect(remote.doc.nodes[0]?.error?.message).toContain('refused on purpose');
  });
});

describe('preflight and privilege through rune run', () => {
  it('a missing required command fails the node with PLUGIN_PRECONDITION_FAILED naming it; the plugin never starts', async () => {
    const marker = join(sandbox.root, 'needs-tool-started');
    writeFileSync(
      join(pluginDir, 'needs-tool.sh'),
      `#!/bin/sh\ntouch ${JSON.stringify(marker)}\necho '{}'\n`,
      { mode: 0o755 },
    );
    writeFileSync(
      join(pluginDir, 'needs-tool.manifest.json'),
      JSON.stringify({
        schema_version: 'mrs_v1',
        name: 'needs-tool',
        version: '1.0.0',
        description: 'needs a tool nobody has',
        parameters: { type: 'object', properties: {} },
        tags: [],
        requirements: { commands: ['sh', 'rune-no-such-tool'], privilege: 'user' },
        timeout_ms: 5000,
        idempotent: true,
        supports_dry_run: false,
        dangerous: false,
        accepts: ['rcs_v1'],
      }),
    );
    const { result, doc } = await runJson(['run', 'needs-tool', '--node', 'localhost']);
    expect(result.code).not.toBe(0);
    expect(doc.nodes[0]?.error?.code).toBe('PLUGIN_PRECONDITION_FAILED');
    expect(doc.nodes[0]?.error?.message).toContain('rune-no-such-tool');
    expect(existsSync(marker), 'the plugin must not have started').toBe(false);
  });

  it('privilege: root plans the run as root and says the manifest chose it (plan and audit)', async () => {
    const dry = await sandbox.run([
      'run',
      'restart-docker',
      '--node',
      'localhost',
      '--dry-run',
      '-o',
      'json',
    ]);
    const plan = (JSON.parse(dry.stdout) as { plan: Record<string, unknown> }).plan;
    expect(plan).toMatchObject({ run_as: 'root', run_as_source: 'manifest' });
    const audit = await sandbox.run(['audit', '-o', 'json', '--limit', '1']);
    const record = (
      JSON.parse(audit.stdout) as { records: { metadata: Record<string, unknown> }[] }
    ).records[0]!;
    expect(record.metadata).toMatchObject({ run_as: 'root', run_as_source: 'manifest' });
  });
});
