/**
 * rune serve's audit writer thread and `rune` CLI processes on one audit log: a real server (its
 * file sink on the writer thread) answers dry runs while CLI processes (the built CLI, the
 * in-process writer) run dry runs against the same `[core] audit_log` and key; `rune audit
 * verify` then checks the one chain they wrote together. Runs the built CLI
 * (`npx -y pnpm@10.34.9 build` first).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestHome, startTestServer, type TestHome, type TestServer } from './harness.js';

const CLI = new URL('../../../apps/cli/bin/rune.js', import.meta.url).pathname;
const run = promisify(execFile);

const homes: TestHome[] = [];
const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close().catch(() => undefined)));
  for (const home of homes.splice(0)) home.remove();
});

describe('the audit log shared by rune serve and rune', () => {
  it('records of the server and of CLI processes written at the same time form one chain that `rune audit verify` accepts', async () => {
    const home = createTestHome();
    homes.push(home);
    const t = await startTestServer(home);
    servers.push(t);
    const cli = (...args: string[]) =>
      run(process.execPath, [CLI, ...args, '--config', home.configFile], {
        env: home.env,
        timeout: 60_000,
      });
    const submit = async () => {
      const response = await t.request('/v1/runs', {
        json: { action: 'noop', targets: ['localhost'], options: { dry_run: true } },
      });
      expect(response.status).toBe(202);
    };
    // Four CLI processes and 40 server submissions, all under way together.
    await Promise.all([
      ...Array.from({ length: 4 }, () => cli('run', 'noop', '--node', 'localhost', '--dry-run')),
      ...Array.from({ length: 40 }, () => submit()),
    ]);
    const records = readFileSync(home.auditLog, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string; operator: string });
    const fromServer = records.filter((record) => record.operator === 'token:ops');
    const fromCli = records.filter(
      (record) => record.event === 'dry-run' && record.operator !== 'token:ops',
    );
    // Each server dry run: its policy decision and its dry-run record.
    expect(fromServer.filter((record) => record.event === 'dry-run')).toHaveLength(40);
    expect(fromCli).toHaveLength(4);
    const verified = await cli('audit', 'verify', '-o', 'json');
    const verdict = JSON.parse(verified.stdout) as { ok: boolean; records: number; signed: number };
    expect(verdict).toMatchObject({ ok: true, records: records.length, signed: records.length });
  });
});
