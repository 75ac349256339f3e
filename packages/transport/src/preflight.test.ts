import { spawnSync } from 'node:child_process';
import { RuneError } from '@rune/protocol';
import { describe, expect, it } from 'vitest';
import { PREFLIGHT_FUNCTION_SH, preflightFailure, validatePreflightCommands } from './preflight.js';

function preflight(...commands: string[]): { status: number | null; stdout: string } {
  const result = spawnSync(
    'sh',
    ['-c', `${PREFLIGHT_FUNCTION_SH}rune_preflight "$@"`, 'sh', ...commands],
    {
      encoding: 'utf8',
    },
  );
  return { status: result.status, stdout: result.stdout };
}

describe('rune_preflight', () => {
  it('passes when every command exists', () => {
    expect(preflight('sh', 'cat')).toEqual({ status: 0, stdout: '' });
  });

  it('prints every missing command, one per line, and returns 1', () => {
    expect(preflight('sh', 'rune-no-such-a', 'cat', 'rune-no-such-b')).toEqual({
      status: 1,
      stdout: 'rune-no-such-a\nrune-no-such-b\n',
    });
  });

  it('treats a hostile name as a name, never as shell code', () => {
    const result = preflight('x;touch /tmp/rune-preflight-pwned');
    expect(result.status).toBe(1);
    expect(spawnSync('test', ['-e', '/tmp/rune-preflight-pwned']).status).toBe(1);
  });
});

describe('validatePreflightCommands', () => {
  it('refuses names outside the manifest grammar before they are sent anywhere', () => {
    expect(() => validatePreflightCommands(['ok', 'bad name'])).toThrow(RuneError);
    expect(validatePreflightCommands(['docker', 'docker', 'systemctl'])).toEqual([
      'docker',
      'systemctl',
    ]);
  });

  it('names every missing command in PLUGIN_PRECONDITION_FAILED', () => {
    const error = preflightFailure(['docker', 'jq'], { node: 'web1', transport: 'ssh' });
    expect(error.code).toBe('PLUGIN_PRECONDITION_FAILED');
    expect(error.message).toContain('docker, jq');
    expect(error.details).toMatchObject({ missing_commands: ['docker', 'jq'] });
  });
});

describe('PREFLIGHT_FUNCTION_SH', () => {
  it('holds no single quote (it is embedded in single-quoted sh -c scripts)', () => {
    expect(PREFLIGHT_FUNCTION_SH).not.toContain("'");
  });
});
