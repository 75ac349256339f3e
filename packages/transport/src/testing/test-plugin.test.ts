import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../sha256-hex.js';
import { createConformancePlugins, expectedLines } from './conformance-plugins.js';
import { createTestPlugin, DEFAULT_TEST_PLUGIN_ACTION } from './test-plugin.js';
import {
  describeByteDifference,
  describeTransportConformance,
  TRANSPORT_CONFORMANCE_REQUIREMENTS,
} from './transport-conformance.js';

describe('createTestPlugin', () => {
  it('wraps a script with its sha256 and defaults', () => {
    const plugin = createTestPlugin('#!/bin/sh\nexit 0\n', { remotePath: '/opt/p.sh' });
    expect(plugin.action).toBe(DEFAULT_TEST_PLUGIN_ACTION);
    expect(plugin.version).toBe('1.0.0');
    expect(new TextDecoder().decode(plugin.content)).toBe('#!/bin/sh\nexit 0\n');
    expect(plugin.sha256).toBe(createHash('sha256').update(plugin.content).digest('hex'));
    expect(plugin.remotePath).toBe('/opt/p.sh');
  });
  it('adds a bash shebang when the script has none', () => {
    const plugin = createTestPlugin('exit 3\n', { action: 'x-probe' });
    expect(new TextDecoder().decode(plugin.content)).toBe('#!/usr/bin/env bash\nexit 3\n');
    expect(plugin.action).toBe('x-probe');
    expect(sha256Hex('abc')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
});

describe('conformance helpers', () => {
  it('builds one probe per script with distinct digests and valid action names', () => {
    const plugins = Object.values(createConformancePlugins());
    expect(new Set(plugins.map((plugin) => plugin.sha256)).size).toBe(plugins.length);
    for (const plugin of plugins) expect(plugin.action).toMatch(/^[a-z0-9][a-z0-9-]{0,63}$/);
  });
  it('computes the lines probe output', () => {
    expect(expectedLines('out', 2)).toBe('out-000001\nout-000002\n');
  });
  it('explains byte differences', () => {
    expect(describeByteDifference(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBeNull();
    expect(describeByteDifference(new Uint8Array([1, 3]), new Uint8Array([1, 2]))).toMatch(
      /byte 1/,
    );
    expect(describeByteDifference(new Uint8Array([1]), new Uint8Array([1, 2]))).toMatch(
      /length 1, expected 2/,
    );
  });
  it('refuses a knownFailures id that is no requirement, before registering anything', () => {
    expect(() =>
      describeTransportConformance(
        'nothing',
        () => {
          throw new Error('never set up');
        },
        { knownFailures: ['R99'] },
      ),
    ).toThrow(/no conformance requirement R99/);
  });
  it('lists R01..R22 in order', () => {
    expect(TRANSPORT_CONFORMANCE_REQUIREMENTS.map((entry) => entry.id)).toEqual(
      Array.from({ length: 22 }, (_, index) => `R${String(index + 1).padStart(2, '0')}`),
    );
  });
});
