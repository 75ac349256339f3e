/**
 * The request travels inside the SSM command, where ListCommands and CloudTrail show it: core
 * refuses a run that supplies a sensitive parameter on this transport before any API call, and
 * audits the refusal. Real @aws-sdk/client-ssm, the local SSM endpoint, a real bash plugin.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryAuditSink, createRune, type Rune } from '@rune/core';
import { RuneError } from '@rune/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, INSTANCE, startHarness } from './helpers.js';

const SECRET = 'correct-horse-battery-staple';
let harness: Harness;
let pluginDir: string;
let rune: Rune;
const audit = createMemoryAuditSink();

const PLUGIN = `#!/usr/bin/env bash
input=$(cat)
trace=$(printf '%s' "$input" | grep -o '"trace_id":"[0-9a-f]*"' | head -n1 | cut -d'"' -f4)
ts=$(date -u +%Y-%m-%dT%H:%M:%SZ)
printf '{"message_metadata":{"trace_id":"%s","timestamp":"%s"},"payload":{"schema_version":"bpcs_v1","result":"success","summary":"logged in","output_data":{}},"error":null}\\n' "$trace" "$ts"
`;

beforeAll(async () => {
  harness = await startHarness({ pendingMs: 10 });
  pluginDir = mkdtempSync(join(tmpdir(), 'rune-ssm-sensitive-'));
  writeFileSync(join(pluginDir, 'login.sh'), PLUGIN);
  chmodSync(join(pluginDir, 'login.sh'), 0o755);
  writeFileSync(
    join(pluginDir, 'login.manifest.json'),
    JSON.stringify({
      schema_version: 'mrs_v1',
      name: 'login',
      version: '1.0.0',
      description: 'takes a password',
      parameters: {
        type: 'object',
        properties: {
          user: { type: 'string' },
          password: { type: 'string', sensitive: true },
        },
      },
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
    auditSink: audit,
    pluginSources: [{ kind: 'user', dir: pluginDir }],
    transports: { ssm: () => harness.transport() },
  });
});
afterAll(async () => {
  await rune?.close();
  await harness?.close();
  rmSync(pluginDir, { recursive: true, force: true });
});

describe('SSM and sensitive parameters', () => {
  it('refuses a supplied sensitive parameter before any SSM API call, and audits it', async () => {
    const calls = harness.endpoint.requests.length;
    const error = await rune
      .run({
        action: 'login',
        selections: [INSTANCE],
        transport: 'ssm',
        paramArgs: ['user=alice', `password=${SECRET}`],
      })
      .catch((caught: unknown) => caught);
    expect(RuneError.is(error) && error.code).toBe('SENSITIVE_PARAMETER_REFUSED');
    expect(harness.endpoint.requests.length).toBe(calls);
    const record = audit.records.at(-1);
    expect(record).toMatchObject({
      event: 'refusal',
      transport: 'ssm',
      error_code: 'SENSITIVE_PARAMETER_REFUSED',
      params: null,
    });
    expect(JSON.stringify(audit.records)).not.toContain(SECRET);
  });

  it('runs the same action without the sensitive parameter, embedding the request', async () => {
    const report = await rune.run({
      action: 'login',
      selections: [INSTANCE],
      transport: 'ssm',
      paramArgs: ['user=alice'],
    });
    const node = report.outcome?.nodes[0];
    expect(node?.error).toBeNull();
    expect(node?.status).toBe('success');
    expect(node?.metadata.embeds_request).toBe(true);
    expect(harness.endpoint.requests.some((call) => call.operation === 'SendCommand')).toBe(true);
  });
});
