import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryAuditSink, createRune, describeConfig, loadConfig } from '@rune/core';
import { afterAll, describe, expect, it } from 'vitest';
import { workdirTransportModule } from '../src/config.js';

const home = mkdtempSync(join(tmpdir(), 'rune-workdir-config-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

const load = (toml: string) =>
  loadConfig({
    env: {},
    home,
    cwd: home,
    readFile: (path) => (path === join(home, 'rune.toml') ? toml : undefined),
    transportModules: [workdirTransportModule],
  });

describe('the [workdir] config module', () => {
  it('is validated by core with its own schema: an unknown key names the file, line, column and key', () => {
    expect(() => load('[workdir]\nroot = "/x"\n')).toThrow(
      /rune\.toml:2:1: workdir\.root: unknown key/,
    );
    expect(describeConfig(load(''))).toContainEqual({
      key: 'workdir.shell',
      value: '/bin/sh',
      source: 'default',
    });
  });

  it('builds the transport from the section as written, and core runs through it', async () => {
    const rootDir = join(home, 'nodes');
    mkdirSync(join(rootDir, 'node-a'), { recursive: true });
    const rune = createRune({
      config: load('[workdir]\nroot_dir = "nodes"\n'),
      env: {},
      home,
      auditSink: createMemoryAuditSink(),
    });
    try {
      const report = await rune.run({
        action: 'noop',
        selections: ['node-a'],
        transport: 'workdir',
      });
      expect(report.outcome?.nodes.map((node) => [node.node, node.transport, node.status])).toEqual(
        [['node-a', 'workdir', 'success']],
      );
    } finally {
      await rune.close();
    }
  });
});
