/**
 * The done-criterion of the plugin test kit: every built-in plugin (plugins/builtin, assembled by
 * plugins/build.mjs, with its cases file) passes `rune-plugin-test`.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { testPlugins } from '../src/index.js';

const builtin = fileURLToPath(new URL('../../../plugins/builtin', import.meta.url));

describe('rune-plugin-test plugins/builtin', () => {
  it('passes every built-in plugin', { timeout: 300_000 }, async () => {
    const report = await testPlugins([builtin]);
    const failures = report.plugins.flatMap((plugin) =>
      plugin.checks
        .filter((check) => check.status === 'fail')
        .map((check) => ({ plugin: plugin.name, ...check })),
    );
    expect(failures, JSON.stringify(failures, null, 2)).toEqual([]);
    expect(report.plugins.map((plugin) => plugin.name).sort()).toEqual(
      expect.arrayContaining([
        'check-disk',
        'gather-logs',
        'noop',
        'restart-docker',
        'restart-nomad',
      ]),
    );
    expect(report.plugins.every((plugin) => plugin.assembled)).toBe(true);
    expect(report.ok).toBe(true);
  });
});
