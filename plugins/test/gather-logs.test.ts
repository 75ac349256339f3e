/** gather-logs with journalctl/dmesg/df shims and a scripted /var/log fallback dir. */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createWorkspace,
  errorCode,
  makeRequest,
  type PluginWorkspace,
  runAndEvaluate,
  type ShimDir,
} from './harness.js';
import { addDf, addDmesg, addJournalctl } from './shims.js';

let ws: PluginWorkspace;
let logDir: string;
beforeAll(() => {
  ws = createWorkspace();
  logDir = join(ws.root, 'var-log');
  mkdirSync(logDir);
  const syslog = [
    'Nov 22 01:00:00 host systemd[1]: Started Docker Application Container Engine.',
    'Nov 22 01:00:01 host kernel: eth0 link up',
    'Nov 22 01:00:02 host dockerd[42]: container "web" exited $(touch /tmp/x)',
    'Nov 22 01:00:03 host cron[7]: job ran',
  ];
  writeFileSync(join(logDir, 'syslog'), `${syslog.join('\n')}\n`);
});
afterAll(() => ws.dispose());

interface Section {
  lines: string[];
  line_count: number;
  truncated: boolean;
  omitted_lines: number;
}

function setup(journal?: string | Buffer): ShimDir {
  const shims = ws.shims();
  addDmesg(shims);
  addDf(shims);
  shims.set('df', '');
  shims.set('dmesg', '[    0.000000] Linux version 6.1\n[    1.000000] usb 1-1: new device\n');
  if (journal !== undefined) {
    addJournalctl(shims);
    shims.set('journal', journal);
  }
  return shims;
}

describe('gather-logs', () => {
  it('collects system facts, journal lines for units/since, and dmesg', () => {
    const shims = setup(
      '2026-11-22T01:00:00+0000 host dockerd[1]: up\n2026-11-22T01:00:01+0000 host dockerd[1]: ready\n',
    );
    const request = makeRequest('gather-logs', {
      units: ['docker.service', 'containerd'],
      since: '-1h',
      lines: 50,
    });
    const { run, evaluation, response } = runAndEvaluate(ws, 'gather-logs', request, { shims });
    expect(evaluation.ok ? 'ok' : JSON.stringify(evaluation.error.toJSON()), run.stderr).toBe('ok');
    expect(response.payload.result).toBe('success');
    const data = response.payload.output_data as Record<string, Record<string, unknown>>;
    expect(data.system).toMatchObject({
      hostname: expect.any(String),
      kernel: expect.stringContaining('Linux'),
      uptime_s: expect.any(Number),
      memory: { total_kb: expect.any(Number) },
    });
    expect(data.system?.load).toHaveLength(3);
    expect(data.journal).toMatchObject({ source: 'journalctl' });
    const excerpt = data.journal?.excerpt as Section;
    expect(excerpt).toEqual({
      lines: [
        '2026-11-22T01:00:00+0000 host dockerd[1]: up',
        '2026-11-22T01:00:01+0000 host dockerd[1]: ready',
      ],
      line_count: 2,
      truncated: false,
      omitted_lines: 0,
    });
    expect((data.dmesg?.excerpt as Section | undefined)?.lines).toHaveLength(2);
    const journalCall = shims.calls().find((call) => call.startsWith('journalctl'));
    expect(journalCall).toBe(
      'journalctl --no-pager --quiet -o short-iso -n 50 -u docker.service -u containerd --since -1h',
    );
  });

  it('marks an oversized journal truncated and keeps the newest lines', () => {
    const line = 'x'.repeat(3000);
    const journal = Array.from({ length: 200 }, (_, i) => `${i} ${line}`).join('\n');
    const shims = setup(`${journal}\n`);
    const { response } = runAndEvaluate(
      ws,
      'gather-logs',
      makeRequest('gather-logs', { lines: 5000 }),
      { shims },
    );
    const excerpt = (response.payload.output_data as { journal: { excerpt: Section } }).journal
      .excerpt;
    expect(excerpt.truncated).toBe(true);
    expect(excerpt.omitted_lines).toBeGreaterThan(0);
    expect(excerpt.line_count + excerpt.omitted_lines).toBe(200);
    expect(excerpt.lines.at(-1)?.startsWith('199 ')).toBe(true);
    expect(excerpt.lines[0]?.endsWith('[line truncated]')).toBe(true);
    expect(excerpt.lines[0]?.length).toBeLessThan(2100);
  });

  it('escapes hostile and invalid UTF-8 journal content into valid JSON', () => {
    const journal = Buffer.concat([
      Buffer.from('quote " backslash \\ tab\t $(touch /tmp/rune-gather-pwned) é😀\n'),
      Buffer.from([0x62, 0x61, 0x64, 0x20, 0xff, 0xfe, 0xc3, 0x0a]),
      Buffer.from('\u001b[31mred\u001b[0m\n'),
    ]);
    const shims = setup(journal);
    const { run, evaluation, response } = runAndEvaluate(
      ws,
      'gather-logs',
      makeRequest('gather-logs'),
      { shims, withoutJq: true },
    );
    expect(evaluation.ok, run.stderr).toBe(true);
    const lines = (response.payload.output_data as { journal: { excerpt: Section } }).journal
      .excerpt.lines;
    expect(lines).toEqual([
      'quote " backslash \\ tab\t $(touch /tmp/rune-gather-pwned) é😀',
      'bad \ufffd\ufffd\ufffd',
      '\u001b[31mred\u001b[0m',
    ]);
  });

  it('falls back to syslog files (filtered by unit) when journalctl is absent', () => {
    const shims = setup();
    const { run, evaluation, response } = runAndEvaluate(
      ws,
      'gather-logs',
      makeRequest('gather-logs', { units: ['docker.service'] }),
      { shims, env: { RUNE_GATHER_LOGS_LOG_DIR: logDir } },
    );
    expect(evaluation.ok, run.stderr).toBe(true);
    const journal = (response.payload.output_data as { journal: Record<string, unknown> }).journal;
    expect(journal).toMatchObject({ source: 'files', since_applied: false });
    const files = journal.files as { path: string; excerpt: Section }[];
    expect(files).toHaveLength(1);
    expect(files[0]?.path).toBe(join(logDir, 'syslog'));
    expect(files[0]?.excerpt.lines).toEqual([
      'Nov 22 01:00:02 host dockerd[42]: container "web" exited $(touch /tmp/x)',
    ]);
  });

  it('is partial with warnings when journalctl and dmesg fail', () => {
    const shims = setup('');
    shims.set('journal_exit', '1');
    shims.set('journal_stderr', 'Failed to parse timestamp: yesterdayish');
    shims.set('dmesg_exit', '1');
    const { run, evaluation, response } = runAndEvaluate(
      ws,
      'gather-logs',
      makeRequest('gather-logs', { since: 'yesterdayish' }),
      { shims, env: { RUNE_GATHER_LOGS_LOG_DIR: logDir } },
    );
    expect(run.exitCode).toBe(0);
    expect(evaluation.ok).toBe(true);
    expect(response.payload.result).toBe('partial');
    const warnings = (response.payload.output_data as { warnings: string[] }).warnings;
    expect(warnings[0]).toContain('Failed to parse timestamp');
    expect(warnings.some((warning) => warning.startsWith('dmesg failed'))).toBe(true);
    expect((response.payload.output_data as { journal: { source: string } }).journal.source).toBe(
      'files',
    );
  });

  it('writes a tar.gz archive in a private dir and reports it as an artifact', () => {
    const shims = setup('line one\nline two\n');
    const { run, evaluation, response } = runAndEvaluate(
      ws,
      'gather-logs',
      makeRequest('gather-logs', { archive: true, lines: 10 }),
      { shims },
    );
    expect(evaluation.ok, run.stderr).toBe(true);
    const artifacts = response.payload.artifacts ?? [];
    expect(artifacts).toHaveLength(1);
    const artifact = artifacts[0]!;
    expect(artifact.path.startsWith(`${ws.root}/rune-gather-logs.`)).toBe(true);
    const bytes = readFileSync(artifact.path);
    expect(artifact.size).toBe(bytes.length);
    expect(artifact.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(statSync(join(artifact.path, '..')).mode & 0o777).toBe(0o700);
    expect(statSync(artifact.path).mode & 0o077).toBe(0);
    const listing = spawnSync('tar', ['-tzf', artifact.path], { encoding: 'utf8' }).stdout;
    expect(listing).toContain('journal.log');
    expect(listing).toContain('system.json');
    expect(listing).toContain('dmesg.log');
  });

  it('dry run reports the plan and reads nothing', () => {
    const shims = setup('never read\n');
    const { evaluation, response } = runAndEvaluate(
      ws,
      'gather-logs',
      makeRequest('gather-logs', { units: ['nomad'], archive: true }, { dryRun: true }),
      { shims },
    );
    expect(evaluation.ok).toBe(true);
    expect(response.payload.output_data).toMatchObject({
      dry_run: true,
      would_collect: { journal_source: 'journalctl', units: ['nomad'], lines: 200, archive: true },
    });
    expect(shims.calls()).toEqual([]);
  });

  it.each([
    [{ units: ['-help'] }],
    [{ units: ['a b'] }],
    [{ units: 'docker' }],
    [{ since: '$(id)' }],
    [{ lines: 0 }],
    [{ lines: 5001 }],
    [{ archive: 'yes' }],
    [{ verbose: true }],
  ])('rejects %j with exit 2 before running anything', (parameters) => {
    const shims = setup('x\n');
    const { run, evaluation } = runAndEvaluate(
      ws,
      'gather-logs',
      makeRequest('gather-logs', parameters),
      {
        shims,
      },
    );
    expect(run.exitCode).toBe(2);
    expect(errorCode(evaluation)).toBe('PLUGIN_INVALID_INPUT');
    expect(shims.calls()).toEqual([]);
  });
});
