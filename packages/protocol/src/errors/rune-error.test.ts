import { describe, expect, it } from 'vitest';
import { ERROR_CATALOG, ERROR_CODES } from '../eps/v1/catalog.js';
import { parseEpsError, validateEpsError } from '../eps/v1/parse.js';
import { RuneError, UNTRACED_TRACE_ID } from './rune-error.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('RuneError', () => {
  it('takes category, retryability and exit code from the catalog', () => {
    const error = new RuneError('CONNECT_TIMEOUT', 'no answer');
    expect(error.category).toBe('transport');
    expect(error.retryable).toBe(true);
    expect(error.exitCode).toBe(3);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('RuneError');
    expect(new RuneError('CONNECT_TIMEOUT', 'x', { retryable: false }).retryable).toBe(false);
  });

  it.each(ERROR_CODES)('%s serializes to a valid EPS error', (code) => {
    const json = new RuneError(code, 'something happened', {
      source: { component: 'rune-core', node: 'web01', action: 'noop' },
      traceId: TRACE,
      details: { n: 1 },
    }).toJSON();
    expect(validateEpsError(json).ok).toBe(true);
    expect(parseEpsError(JSON.stringify(json)).ok).toBe(true);
  });

  it('serializes to valid EPS even from degenerate input', () => {
    const json = new RuneError('INTERNAL_ERROR', '', {
      source: { component: '', node: 'n'.repeat(300), action: '' },
      traceId: 'NOT-A-TRACE',
      timestamp: new Date(Number.NaN),
    }).toJSON();
    const result = validateEpsError(json);
    expect(result.ok ? 'ok' : result.error.message).toBe('ok');
    expect(json.message).toBe(ERROR_CATALOG.INTERNAL_ERROR.description);
    expect(json.trace_id).toBe(UNTRACED_TRACE_ID);
    expect(json.source.node).toHaveLength(255);
    expect(validateEpsError(new RuneError('INTERNAL_ERROR', 'm'.repeat(10_000)).toJSON()).ok).toBe(
      true,
    );
  });

  it('never serializes the cause', () => {
    const cause = new Error('secret internals');
    const json = JSON.stringify(new RuneError('AUTH_FAILED', 'denied', { cause }));
    expect(json).not.toContain('secret internals');
    expect(new RuneError('AUTH_FAILED', 'denied', { cause }).cause).toBe(cause);
  });

  it('withContext adds context and keeps everything else', () => {
    const cause = new Error('x');
    const timestamp = new Date('2026-01-01T00:00:00Z');
    const original = new RuneError('PLUGIN_FAILED', 'failed', {
      cause,
      retryable: true,
      details: { a: 1 },
      timestamp,
      source: { component: 'plugin:noop' },
    });
    const copy = original.withContext({
      node: 'web01',
      action: 'noop',
      traceId: TRACE,
      details: { b: 2 },
    });
    expect(copy).not.toBe(original);
    expect(copy.source).toEqual({ component: 'plugin:noop', node: 'web01', action: 'noop' });
    expect(copy.details).toEqual({ a: 1, b: 2 });
    expect(copy.traceId).toBe(TRACE);
    expect(copy.retryable).toBe(true);
    expect(copy.cause).toBe(cause);
    expect(copy.timestamp).toBe(timestamp);
    expect(copy.code).toBe('PLUGIN_FAILED');
    expect(original.source).toEqual({ component: 'plugin:noop' });
    expect(original.withContext({ component: 'rune-core' }).source.component).toBe('rune-core');
  });

  it('is() recognises instances, also from another module copy', () => {
    const foreign = Object.assign(new Error('x'), { name: 'RuneError', code: 'INTERNAL_ERROR' });
    expect(RuneError.is(new RuneError('INTERNAL_ERROR', 'x'))).toBe(true);
    expect(RuneError.is(foreign)).toBe(true);
    expect(RuneError.is(new Error('x'))).toBe(false);
    expect(RuneError.is('RuneError')).toBe(false);
  });

  it('from() passes RuneErrors through and wraps anything else', () => {
    const error = new RuneError('AUTH_FAILED', 'x');
    expect(RuneError.from(error)).toBe(error);
    const wrapped = RuneError.from(new TypeError('boom'));
    expect(wrapped.code).toBe('INTERNAL_ERROR');
    expect(wrapped.message).toBe('boom');
    expect(wrapped.cause).toBeInstanceOf(TypeError);
    expect(RuneError.from('text', 'CONNECTION_LOST').code).toBe('CONNECTION_LOST');
    expect(RuneError.from(undefined).message).toBe('undefined');
    expect(RuneError.from(new Error('')).message).toBe('unexpected error');
  });

  it('from() applies its options to wrapped values only', () => {
    const options = { source: { component: 'rune-cli' }, traceId: 'a'.repeat(32) };
    const wrapped = RuneError.from(new TypeError('boom'), 'INTERNAL_ERROR', options);
    expect(wrapped.source).toEqual({ component: 'rune-cli' });
    expect(wrapped.traceId).toBe('a'.repeat(32));
    expect(wrapped.cause).toBeInstanceOf(TypeError);
    const original = new RuneError('AUTH_FAILED', 'x', { source: { component: 'transport-ssh' } });
    const passed = RuneError.from(original, 'INTERNAL_ERROR', options);
    expect(passed).toBe(original);
    expect(passed.source).toEqual({ component: 'transport-ssh' });
    expect(passed.traceId).toBeUndefined();
  });
});
