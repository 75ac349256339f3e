import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { INSTANCE_ID_PATTERN } from '@rune/transport-ssm';
import { describe, expect, it, vi } from 'vitest';
import type { CliIo } from './cli-io.js';
import { buildCli, main } from './main.js';

function captureIo(): CliIo & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    out: (text: string) => {
      io.stdout += text;
    },
    err: (text: string) => {
      io.stderr += text;
    },
    env: { RUNE_NO_STATIC_HELP: '1', HOME: '/nonexistent/rune-main-test' } as Record<
      string,
      string | undefined
    >,
    color: false,
    colorErr: false,
  };
  return io;
}

describe('the yargs program', () => {
  it('does not render and cache the help text before running a command (start-up time)', async () => {
    const io = captureIo();
    let code: number | undefined;
    const cli = await buildCli(['config', 'show', '-o', 'json'], io, (exit) => {
      code = exit;
    });
    const usage = (
      cli as unknown as {
        getInternalMethods(): { getUsageInstance(): { hasCachedHelpMessage(): boolean } };
      }
    )
      .getInternalMethods()
      .getUsageInstance();
    await cli.parseAsync();
    expect(code).toBe(0);
    expect(JSON.parse(io.stdout)).toBeTypeOf('object');
    expect(usage.hasCachedHelpMessage()).toBe(false);
  });

  it('still prints command help and usage errors', async () => {
    // yargs prints help with console.log.
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      expect(await main(['run', '--help'], captureIo())).toBe(0);
      const printed = log.mock.calls.map((call) => call.join(' ')).join('\n');
      expect(printed).toContain('rune run [action]');
      expect(printed).toContain('--dry-run');
    } finally {
      log.mockRestore();
    }
    const usage = captureIo();
    expect(await main(['run', 'noop', '--no-such-flag'], usage)).toBe(2);
    expect(usage.stderr).toContain('INVALID_ARGUMENT');
  });

  it('rune run --help and rune serve --help name the OTEL_* variables and docs/observability.md', async () => {
    const doc = readFileSync(
      fileURLToPath(new URL('../../../docs/observability.md', import.meta.url)),
      'utf8',
    );
    for (const command of ['run', 'serve']) {
      const log = vi.spyOn(console, 'log').mockImplementation(() => {});
      try {
        const base = captureIo();
        const io = { ...base, env: { ...base.env, RUNE_HELP_NO_WRAP: '1' } };
        expect(await main([command, '--help'], io)).toBe(0);
        const printed = log.mock.calls.map((call) => call.join(' ')).join('\n');
        expect(printed).toContain('docs/observability.md');
        const named = [...new Set(printed.match(/\bOTEL_[A-Z_]+/g) ?? [])];
        expect(named).toEqual(
          expect.arrayContaining([
            'OTEL_EXPORTER_OTLP_ENDPOINT',
            'OTEL_SDK_DISABLED',
            'OTEL_TRACES_EXPORTER',
          ]),
        );
        // Every variable the help names is one the page documents.
        for (const name of named) expect(doc).toContain(`\`${name}`);
      } finally {
        log.mockRestore();
      }
    }
  });

  it('help examples run as written: valid SSM instance ids, --yes for dangerous actions', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const base = captureIo();
      // One line per example (as for the man page), so a flag is never wrapped away.
      const io = { ...base, env: { ...base.env, RUNE_HELP_NO_WRAP: '1' } };
      expect(await main(['run', '--help'], io)).toBe(0);
      const printed = log.mock.calls.map((call) => call.join(' ')).join('\n');
      const examples = printed.split('\n').filter((line) => /^\s*(?:.*\| )?rune run /.test(line));
      expect(examples.length).toBeGreaterThan(5);
      for (const line of examples) {
        if (/restart-(docker|nomad)/.test(line)) expect(line).toMatch(/ --yes\b/);
        if (line.includes('--use-ssm')) {
          const id = / -n (\S+)/.exec(line)?.[1] ?? '';
          expect(id).toMatch(INSTANCE_ID_PATTERN);
        }
      }
    } finally {
      log.mockRestore();
    }
  });
});
