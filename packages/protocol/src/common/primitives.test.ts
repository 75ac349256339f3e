import { describe, expect, it } from 'vitest';
import {
  ACTION_NAME_PATTERN,
  isActionName,
  isTraceId,
  SEMVER_PATTERN,
  TIMESTAMP_PATTERN,
  TRACE_ID_PATTERN,
  UUID_PATTERN,
} from './primitives.js';

describe('primitives', () => {
  it.each(['noop', 'gather-logs', '0', 'a'.repeat(64), 'restart-docker-2'])(
    '%j is an action name',
    (name) => {
      expect(isActionName(name)).toBe(true);
    },
  );
  it.each(['', '../x', 'A B', 'a'.repeat(65), '-x', 'Upper', 'a_b', 'x/y', 'x\n', ' x', 7, null])(
    '%j is not an action name',
    (name) => {
      expect(isActionName(name)).toBe(false);
    },
  );
  it('recognises trace ids', () => {
    expect(isTraceId('4bf92f3577b34da6a3ce929d0e0e4736')).toBe(true);
    expect(isTraceId('0'.repeat(32))).toBe(false);
    expect(isTraceId('4BF92F3577B34DA6A3CE929D0E0E4736')).toBe(false);
    expect(isTraceId('4bf92f35')).toBe(false);
    expect(isTraceId(`${'0'.repeat(31)}1`)).toBe(true);
  });
  it('uses no look-around, so every regex engine (RE2 included) can compile the patterns', () => {
    for (const pattern of [
      ACTION_NAME_PATTERN,
      TRACE_ID_PATTERN,
      SEMVER_PATTERN,
      TIMESTAMP_PATTERN,
      UUID_PATTERN,
    ]) {
      expect(pattern).not.toMatch(/\(\?[=!<]/);
    }
  });
  it('matches semver 2.0.0', () => {
    const semver = new RegExp(SEMVER_PATTERN);
    for (const good of ['0.0.0', '1.2.3', '2.0.0-rc.1', '1.0.0-alpha+001', '1.0.0+20130313144700'])
      expect(semver.test(good)).toBe(true);
    for (const bad of ['1.0', '01.2.3', '1.2.3-', '1.2.3-01', 'v1.2.3', '1.2.3.4', ''])
      expect(semver.test(bad)).toBe(false);
  });
  it('matches RFC 3339 timestamps', () => {
    const timestamp = new RegExp(TIMESTAMP_PATTERN);
    expect(timestamp.test(new Date().toISOString())).toBe(true);
    expect(timestamp.test('2026-11-22T03:50:32+02:00')).toBe(true);
    expect(timestamp.test('2026-11-22 03:50:32Z')).toBe(false);
    expect(timestamp.test('2026-11-22T03:50:32')).toBe(false);
  });
});
