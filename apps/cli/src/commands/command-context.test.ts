import { RuneError } from '@rune/protocol';
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../cli-io.js';
import { reportError } from './command-context.js';

function captureIo(): CliIo & { stdout: string[] } {
  const stdout: string[] = [];
  return {
    stdout,
    out: (text) => stdout.push(text),
    err: () => undefined,
    env: {},
    color: false,
    colorErr: false,
  };
}

describe('reportError', () => {
  it('reports a foreign error as INTERNAL_ERROR from rune-cli, exit 70', () => {
    const io = captureIo();
    expect(reportError(io, { output: 'json' }, new TypeError('boom'))).toBe(70);
    const { error } = JSON.parse(io.stdout.join(''));
    expect(error).toMatchObject({
      code: 'INTERNAL_ERROR',
      category: 'internal',
      message: 'boom',
      source: { component: 'rune-cli' },
    });
  });

  it('reports a RuneError as it is', () => {
    const io = captureIo();
    const refused = new RuneError('AUTH_FAILED', 'no', { source: { component: 'transport-ssh' } });
    expect(reportError(io, { output: 'json' }, refused)).toBe(refused.exitCode);
    expect(JSON.parse(io.stdout.join('')).error).toMatchObject({
      code: 'AUTH_FAILED',
      source: { component: 'transport-ssh' },
    });
  });
});
