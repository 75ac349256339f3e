/**
 * The audit trail through the built `rune` binary: a SIGKILLed run leaves its intent (shown as
 * an attempt without outcome, and the log still verifies); a forged record or a cut-off end is
 * caught with the exported public key and an anchored head; an outcome that cannot be written
 * keeps the results (exit 70); a run whose intent cannot be written sends nothing. Each test
 * writes the plugins and files it checks. Build first (`npx -y pnpm@10.34.9 build`).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CLI_BIN, type CliSandbox, cliIsBuilt, createCliSandbox } from './cli-harness.js';

let sandbox: CliSandbox;
beforeAll(() => {
  if (!cliIsBuilt()) throw new Error('the CLI is not built: run `npx -y pnpm@10.34.9 build`');
});
beforeEach(() => {
  sandbox = createCliSandbox();
});
afterEach(() => sandbox.cleanup());

const BPCS_OK =
  'printf \'{"message_metadata":{"trace_id":"%s","timestamp":"2026-01-01T00:00:00Z"},"payload":{"schema_version":"bpcs_v1","result":"success","summary":"done","output_data":{}},"error":null}\\n\' "$trace"';

function writePlugin(name: string, body: string): void {
  writeFileSync(
    join(sandbox.pluginDir, `${name}.sh`),
    [
      '#!/usr/bin/env bash',
      'input=$(cat)',
      'trace=$(printf "%s" "$input" | grep -o "\\"trace_id\\":\\"[0-9a-f]*\\"" | head -n1 | cut -d"\\"" -f4)',
      body,
      BPCS_OK,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
}

interface Record {
  event: string;
  seq: number;
  hash: string;
  prev_hash: string;
  sig?: string;
  status: string;
  node: string | null;
  run_id?: string;
  [key: string]: unknown;
}

const readRecords = (): Record[] =>
  readFileSync(sandbox.auditLog, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record);

/** The canonical JSON RUNE hashes (keys sorted, no whitespace), written out independently. */
function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  return `{${Object.entries(value)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([key, item]) => `${JSON.stringify(key)}:${canonical(item)}`)
    .join(',')}}`;
}

/** What a forger with write access but no key does: re-link and re-hash from `from` on. */
function forge(records: Record[], from: number): string {
  for (let index = from; index < records.length; index++) {
    const record = records[index]!;
    if (index > 0) record.prev_hash = records[index - 1]!.hash;
    const { hash: _hash, sig: _sig, ...rest } = record;
    record.hash = createHash('sha256').update(canonical(rest)).digest('hex');
  }
  return `${records.map((record) => JSON.stringify(record)).join('\n')}\n`;
}

async function waitForFile(path: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} did not appear`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('rune audit', () => {
  it('a SIGKILLed run leaves its intent: shown without outcome, and the log verifies', async () => {
    const started = join(sandbox.root, 'started');
    const release = join(sandbox.root, 'release');
    // The plugin says it runs (its pid), then waits until the test releases it.
    writePlugin(
      'wait-release',
      `echo $$ > "${started}.tmp" && mv "${started}.tmp" "${started}"\nwhile [ ! -e "${release}" ]; do sleep 0.05; done`,
    );
    const child = spawn(
      process.execPath,
      [CLI_BIN, 'run', 'wait-release', '-n', 'localhost', '--yes', '-o', 'json'],
      { env: sandbox.env, cwd: sandbox.root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    let pluginPid: number | undefined;
    try {
      await waitForFile(started);
      pluginPid = Number(readFileSync(started, 'utf8').trim());
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
    } finally {
      writeFileSync(release, '');
      if (pluginPid !== undefined) {
        try {
          process.kill(pluginPid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    const records = readRecords();
    expect(records.map((record) => record.event)).toEqual(['intent']);
    expect(records[0]).toMatchObject({ action: 'wait-release', nodes: ['localhost'], seq: 1 });

    const json = await sandbox.run(['audit', '-o', 'json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).runs_without_outcome).toMatchObject([
      { run_id: records[0]?.run_id, status: 'no-outcome', nodes: ['localhost'], outcomes: 0 },
    ]);
    const pretty = await sandbox.run(['audit']);
    expect(pretty.stdout).toContain('no-outcome');
    expect(pretty.stdout).toContain('rune was killed?');
    const verify = await sandbox.run(['audit', 'verify']);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain('1 record(s), hash chain intact, 1 signed');
  });

  it('forged or cut records fail verify with the exported public key and an anchored head', async () => {
    for (let run = 0; run < 3; run++) {
      const result = await sandbox.run(['run', 'noop', '-n', 'localhost', '-o', 'json']);
      expect(result.code, result.stderr).toBe(0);
    }
    const publicKey = join(sandbox.root, 'audit.pub');
    const key = await sandbox.run(['audit', 'key']);
    expect(key.stdout).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    writeFileSync(publicKey, key.stdout);
    const head = await sandbox.run(['audit', 'head', '-o', 'json']);
    const anchor = join(sandbox.root, 'head.json');
    writeFileSync(anchor, head.stdout);
    const { seq, hash } = JSON.parse(head.stdout) as { seq: number; hash: string };
    expect(seq).toBe(6); // three intents, three outcomes
    // An auditor: the public key and the anchor, no private key anywhere in reach.
    const auditor = { XDG_CONFIG_HOME: join(sandbox.root, 'auditor-config') };
    const verifyArgs = ['audit', 'verify', '--public-key', publicKey, '--anchor', anchor];
    const good = await sandbox.run([...verifyArgs, '-o', 'json'], { env: auditor });
    expect(good.code, good.stdout + good.stderr).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({
      ok: true,
      records: 6,
      signed: 6,
      anchored: true,
    });

    const original = readFileSync(sandbox.auditLog, 'utf8');
    // Edit a record's status and recompute the plain hash chain: the signature gives it away.
    const records = readRecords();
    records[3]!.status = 'failure';
    writeFileSync(sandbox.auditLog, forge(records, 3));
    const forged = await sandbox.run([...verifyArgs, '-o', 'json'], { env: auditor });
    expect(forged.code).toBe(70);
    const error = JSON.parse(forged.stdout).error;
    expect(error.code).toBe('AUDIT_CHAIN_BROKEN');
    expect(error.details.line).toBe(4);
    expect(error.message).toContain('signature');

    // Remove the last record: only the anchored head can tell.
    writeFileSync(sandbox.auditLog, `${original.trim().split('\n').slice(0, -1).join('\n')}\n`);
    const plain = await sandbox.run(['audit', 'verify', '--public-key', publicKey], {
      env: auditor,
    });
    expect(plain.code, plain.stderr).toBe(0);
    const cut = await sandbox.run([...verifyArgs, '-o', 'json'], { env: auditor });
    expect(cut.code).toBe(70);
    expect(JSON.parse(cut.stdout).error.code).toBe('AUDIT_CHAIN_BROKEN');
    const byHash = await sandbox.run(['audit', 'verify', '--expect-head', hash, '-o', 'json']);
    expect(byHash.code).toBe(70);
    expect(JSON.parse(byHash.stdout).error.message).toContain('removed from its end');
  });

  it('an outcome that cannot be written: results printed, AUDIT_WRITE_FAILED, exit 70', async () => {
    const lock = `${sandbox.auditLog}.lock`;
    // The plugin leaves the audit lock held by a live process (this test).
    const holder = JSON.stringify({
      pid: process.pid,
      host: hostname() || 'localhost',
      token: 'x',
    });
    writePlugin('grab-lock', `printf '%s' '${holder}' > "${lock}"`);
    const env = { RUNE_AUDIT_LOCK_TIMEOUT_MS: '200' };
    const result = await sandbox.run(
      ['run', 'grab-lock', '-n', 'localhost', '--yes', '-o', 'json'],
      {
        env,
      },
    );
    const document = JSON.parse(result.stdout);
    expect(result.code).toBe(70);
    expect(document.exit_code).toBe(70);
    expect(document.nodes[0]).toMatchObject({ status: 'success', node: 'localhost' });
    expect(document.summary).toMatchObject({ succeeded: 1 });
    expect(document.error.code).toBe('AUDIT_WRITE_FAILED');
    expect(document.audit).toMatchObject({ outcomes_missing: ['localhost'] });
    rmSync(lock);
    const pretty = await sandbox.run(['run', 'grab-lock', '-n', 'localhost', '--yes'], { env });
    expect(pretty.code).toBe(70);
    expect(pretty.stdout).toContain('success');
    expect(pretty.stderr).toContain('AUDIT_WRITE_FAILED');
    rmSync(lock);
    const listed = JSON.parse((await sandbox.run(['audit', '-o', 'json'])).stdout);
    expect(listed.runs_without_outcome).toHaveLength(2);
  });

  it('a run whose intent cannot be written sends nothing (held lock; unwritable log)', async () => {
    const marker = join(sandbox.root, 'plugin-ran');
    writePlugin('mark', `touch "${marker}"`);
    const lock = `${sandbox.auditLog}.lock`;
    mkdirSync(dirname(lock), { recursive: true, mode: 0o700 });
    writeFileSync(
      lock,
      JSON.stringify({ pid: process.pid, host: hostname() || 'localhost', token: 'x' }),
    );
    const held = await sandbox.run(['run', 'mark', '-n', 'localhost', '--yes', '-o', 'json'], {
      env: { RUNE_AUDIT_LOCK_TIMEOUT_MS: '200' },
    });
    expect(held.code).toBe(70);
    const error = JSON.parse(held.stdout).error;
    expect(error.code).toBe('AUDIT_WRITE_FAILED');
    expect(error.message).toContain(lock);
    expect(existsSync(marker)).toBe(false);
    rmSync(lock);

    const blocker = join(sandbox.root, 'blocker');
    writeFileSync(blocker, '');
    const unwritable = await sandbox.run(
      ['run', 'mark', '-n', 'localhost', '--yes', '-o', 'json'],
      {
        env: { RUNE_CORE_AUDIT_LOG: join(blocker, 'audit.jsonl') },
      },
    );
    expect(unwritable.code).toBe(70);
    expect(JSON.parse(unwritable.stdout).error.code).toBe('AUDIT_WRITE_FAILED');
    expect(existsSync(marker)).toBe(false);
  });
});
