/**
 * The audit trail through the real facade, the real local transport and real bash plugins:
 * the intent record is durable before the plugin starts, a run whose intent cannot be written
 * sends nothing, an outcome that cannot be written keeps the results and reports
 * AUDIT_WRITE_FAILED, and a 20 MB parameter value stays out of the log. Every test writes the
 * plugins and files it checks.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { RuneError } from '@rune/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AUDIT_RECORD_MAX_BYTES } from '../src/audit/audit-bounds.js';
import {
  type AuditRecord,
  createLocalTransport,
  createRune,
  findRunsWithoutOutcome,
  type RuneOptions,
  readAuditLog,
  readAuditPublicKey,
  verifyAuditLog,
} from '../src/index.js';
import { createFixtureEnv, type FixtureEnv } from './fixture-env.js';

let fx: FixtureEnv;
beforeEach(() => {
  fx = createFixtureEnv();
});
afterEach(() => fx.cleanup());

const BPCS_OK =
  'printf \'{"message_metadata":{"trace_id":"%s","timestamp":"2026-01-01T00:00:00Z"},"payload":{"schema_version":"bpcs_v1","result":"success","summary":"done","output_data":{}},"error":null}\\n\' "$trace"';

/** Writes an executable plugin `name` whose body runs before it answers success. */
function writePlugin(name: string, body: string): void {
  const path = join(fx.pluginDir, `${name}.sh`);
  writeFileSync(
    path,
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

function rune(extra: Partial<RuneOptions> = {}, pluginEnv: Record<string, string> = {}) {
  return createRune({
    env: fx.env,
    home: fx.home,
    cwd: fx.root,
    pluginSources: [{ kind: 'user', dir: fx.pluginDir }],
    transports: { local: () => createLocalTransport({ env: { ...fx.env, ...pluginEnv } }) },
    ...extra,
  });
}

/** The host name the facade writes into its lock files. */
const hostName = (): string => hostname() || 'localhost';

async function rejection(promise: Promise<unknown>): Promise<RuneError> {
  try {
    await promise;
  } catch (error) {
    if (RuneError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a RuneError');
}

describe('write-ahead audit', () => {
  it('the intent record is durable before the plugin starts, the outcome after it ends', async () => {
    const seen = join(fx.root, 'log-as-the-plugin-saw-it.jsonl');
    writePlugin('peek', `cp "$RUNE_AUDIT_LOG" "${seen}"`);
    const instance = rune({}, { RUNE_AUDIT_LOG: fx.auditLog });
    try {
      const report = await instance.run({
        action: 'peek',
        selections: ['localhost'],
        confirmDangerous: true,
      });
      expect(report.outcome?.nodes[0]?.status).toBe('success');
      const before = readFileSync(seen, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as AuditRecord);
      expect(before).toHaveLength(1);
      expect(before[0]).toMatchObject({
        event: 'intent',
        status: 'started',
        nodes: ['localhost'],
        run_id: report.outcome?.audit.run_id,
        trace_id: report.plan.trace_id,
        plugin: { sha256: report.plan.plugin.sha256, version: report.plan.plugin.version },
      });
      // While the plugin ran, the log showed the attempt without an outcome.
      expect(findRunsWithoutOutcome(before)).toMatchObject([{ nodes: ['localhost'] }]);
      const after = readAuditLog(fx.auditLog);
      expect(after.map((record) => record.event)).toEqual(['intent', 'run']);
      expect(after[1]).toMatchObject({
        run_id: after[0]?.run_id,
        node: 'localhost',
        status: 'success',
      });
      expect(findRunsWithoutOutcome(after)).toEqual([]);
      expect(report.outcome?.audit).toMatchObject({
        outcomes_recorded: 1,
        error: null,
        intent: { seq: 1 },
      });
      expect(
        verifyAuditLog(fx.auditLog, { publicKey: readAuditPublicKey(fx.auditKey) }),
      ).toMatchObject({ ok: true, signed: 2 });
    } finally {
      await instance.close();
    }
  });

  it('a held lock: AUDIT_WRITE_FAILED naming the lock, nothing sent (the marker is absent)', async () => {
    const marker = join(fx.root, 'plugin-ran');
    writePlugin('mark', `touch "${marker}"`);
    // Held by a live process (this one).
    const lock = `${fx.auditLog}.lock`;
    mkdirSync(dirname(fx.auditLog), { recursive: true, mode: 0o700 });
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostName(), token: 't' }));
    const instance = rune({ configOverrides: { audit: { lock_timeout_ms: 200 } } });
    try {
      const error = await rejection(
        instance.run({ action: 'mark', selections: ['localhost'], confirmDangerous: true }),
      );
      expect(error.code).toBe('AUDIT_WRITE_FAILED');
      expect(error.exitCode).toBe(70);
      expect(error.message).toContain(lock);
      expect(error.message).toContain('nothing was sent');
      expect(existsSync(marker)).toBe(false);
    } finally {
      await instance.close();
    }
  });

  it('an unwritable log path: AUDIT_WRITE_FAILED, nothing sent', async () => {
    const marker = join(fx.root, 'plugin-ran');
    writePlugin('mark', `touch "${marker}"`);
    const blocker = join(fx.root, 'not-a-dir');
    writeFileSync(blocker, 'x');
    const instance = rune({
      configOverrides: { core: { audit_log: join(blocker, 'audit.jsonl') } },
    });
    try {
      const error = await rejection(
        instance.run({ action: 'mark', selections: ['localhost'], confirmDangerous: true }),
      );
      expect(error.code).toBe('AUDIT_WRITE_FAILED');
      expect(existsSync(marker)).toBe(false);
    } finally {
      await instance.close();
    }
  });

  it('an outcome that cannot be written keeps the results and reports AUDIT_WRITE_FAILED', async () => {
    // The plugin takes the audit lock on behalf of a live process (this test) and leaves it:
    // the intent was written, the outcome cannot be.
    const lock = `${fx.auditLog}.lock`;
    const holder = JSON.stringify({ pid: process.pid, host: hostName(), token: 'plugin' });
    writePlugin('grab-lock', `printf '%s' '${holder}' > "${lock}"`);
    const instance = rune({ configOverrides: { audit: { lock_timeout_ms: 200 } } });
    try {
      const report = await instance.run({
        action: 'grab-lock',
        selections: ['localhost'],
        confirmDangerous: true,
      });
      const outcome = report.outcome!;
      expect(outcome.nodes[0]).toMatchObject({ status: 'success', exit_code: 0 });
      expect(outcome.nodes[0]?.response?.payload.summary).toBe('done');
      expect(outcome.audit.error?.code).toBe('AUDIT_WRITE_FAILED');
      expect(outcome.audit.error?.message).toContain('the plugin ran');
      expect(outcome.audit.outcomes_missing).toEqual(['localhost']);
      expect(outcome.summary.exit_code).toBe(70);
      const records = readAuditLog(fx.auditLog);
      expect(records.map((record) => record.event)).toEqual(['intent']);
      expect(findRunsWithoutOutcome(records)).toMatchObject([
        { run_id: outcome.audit.run_id, nodes: ['localhost'], status: 'no-outcome' },
      ]);
    } finally {
      await instance.close();
    }
  });

  it('a 20 MB parameter value: the run works, the records stay under the bound', async () => {
    const huge = 'v'.repeat(20 * 1024 * 1024);
    const instance = rune();
    try {
      const report = await instance.run({
        action: 'params',
        selections: ['localhost'],
        params: { name: huge },
      });
      expect(report.outcome?.nodes[0]?.status).toBe('success');
      const records = readAuditLog(fx.auditLog);
      expect(records.map((record) => record.event)).toEqual(['intent', 'run']);
      for (const line of readFileSync(fx.auditLog, 'utf8').trim().split('\n')) {
        expect(Buffer.byteLength(line) + 1).toBeLessThanOrEqual(AUDIT_RECORD_MAX_BYTES);
      }
      expect(records[0]?.params?.name).toMatchObject({ truncated: true, bytes: huge.length + 2 });
      expect(statSync(fx.auditLog).size).toBeLessThan(2 * AUDIT_RECORD_MAX_BYTES);
    } finally {
      await instance.close();
    }
  });

  it('dry runs and refusals keep one record each', async () => {
    const instance = rune();
    try {
      await instance.run({
        action: 'params',
        selections: ['localhost'],
        params: { name: 'x' },
        dryRun: true,
      });
      await rejection(instance.plan({ action: 'no-such-action', selections: ['localhost'] }));
      expect(readAuditLog(fx.auditLog).map((record) => record.event)).toEqual([
        'dry-run',
        'refusal',
      ]);
    } finally {
      await instance.close();
    }
  });
});
