/**
 * `[server]` is owned by @rune/server's config module: core's loader validates it generically
 * (file:line:column, "did you mean"), and docs/server.md's key table lists every key of the
 * module's schema with the default the server applies (this test keeps them from drifting).
 */
import { readFileSync } from 'node:fs';
import { CORE_CONFIG_SECTIONS, loadConfig } from '@rune/core';
import { RuneError } from '@rune/protocol';
import { describe, expect, it } from 'vitest';
import {
  resolveServerSettings,
  SERVER_CONFIG_DEFAULTS,
  ServerSectionSchema,
  serverConfigModule,
  serverSection,
} from '../src/index.js';

const DOC = readFileSync(new URL('../../../docs/server.md', import.meta.url), 'utf8');

/** `| \`key\` | default | meaning |` rows of the `[server]` table. */
function documentedRows(): Map<string, string> {
  const section = DOC.slice(DOC.indexOf('## Configuration: `[server]`'));
  const rows = new Map<string, string>();
  for (const line of section.split('\n')) {
    const match = /^\| `([a-z_]+)` +\| (.+?) +\|/.exec(line);
    if (match !== null) rows.set(match[1] as string, match[2] as string);
    if (rows.size > 0 && !line.startsWith('|')) break;
  }
  return rows;
}

const load = (text: string, env: Record<string, string> = {}) =>
  loadConfig({
    env,
    home: '/nonexistent/home',
    cwd: '/srv/rune',
    systemConfigPath: '/nonexistent/system.toml',
    configFile: '/etc/rune/rune.toml',
    readFile: (path) => (path === '/etc/rune/rune.toml' ? text : undefined),
    configModules: [serverConfigModule],
  });

const errorOf = (body: () => unknown): RuneError => {
  try {
    body();
  } catch (error) {
    if (RuneError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a RuneError');
};

describe('the [server] config module', () => {
  it('core has no [server]: without the module a [server] section is an unknown key', () => {
    expect(CORE_CONFIG_SECTIONS).not.toContain('server');
    const error = errorOf(() =>
      loadConfig({
        env: {},
        configFile: '/etc/rune/rune.toml',
        systemConfigPath: '/nonexistent/system.toml',
        readFile: (path) =>
          path === '/etc/rune/rune.toml' ? '[server]\nlisten = "x"\n' : undefined,
      }),
    );
    expect(error.message).toBe('/etc/rune/rune.toml:1:2: server: unknown key');
  });

  it('refuses an unknown [server] key with file:line:column and a "did you mean"', () => {
    const error = errorOf(() => load('[server]\nlisten = "127.0.0.1:0"\nquee_size = 5\n'));
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toBe(
      '/etc/rune/rune.toml:3:1: server.quee_size: unknown key; did you mean server.queue_size?',
    );
    const nested = errorOf(() =>
      load(
        '[server.shipping]\nbatch_sise = 5\n[[server.shipping.sinks]]\nname = "a"\ntype = "stdout"\n',
      ),
    );
    expect(nested.message).toBe(
      '/etc/rune/rune.toml:2:1: server.shipping.batch_sise: unknown key; did you mean server.shipping.batch_size?',
    );
    expect(errorOf(() => load('[server]\nrate_limit = 0\n')).message).toMatch(
      /^\/etc\/rune\/rune\.toml:2:1: server\.rate_limit: /,
    );
  });

  it('hands the server its section with paths expanded, a database URL as written, and defaults', () => {
    const loaded = load(
      '[server]\npolicy = "policy.yaml"\nalert_rules = "~/rules.yaml"\nstore = "postgresql://db/rune"\n',
      { RUNE_SERVER_QUEUE_SIZE: '12' },
    );
    const section = serverSection(loaded);
    expect(section).toMatchObject({
      policy: '/srv/rune/policy.yaml',
      alert_rules: '/nonexistent/home/rules.yaml',
      store: 'postgresql://db/rune',
      queue_size: 12,
      listen: '127.0.0.1:8421',
    });
    expect(resolveServerSettings(loaded)).toMatchObject({
      storePath: 'postgresql://db/rune',
      queueSize: 12,
      policyPath: '/srv/rune/policy.yaml',
    });
    expect(loaded.sources['server.queue_size']).toBe('env:RUNE_SERVER_QUEUE_SIZE');
  });

  it('idle_reclaim: a duration (default 10s), "off" turns it off, anything else is INVALID_CONFIG', () => {
    expect(resolveServerSettings(load('')).idleReclaimMs).toBe(10_000);
    expect(resolveServerSettings(load('[server]\nidle_reclaim = "2m"\n')).idleReclaimMs).toBe(
      120_000,
    );
    expect(resolveServerSettings(load('[server]\nidle_reclaim = "off"\n')).idleReclaimMs).toBe(
      null,
    );
    const error = errorOf(() => resolveServerSettings(load('[server]\nidle_reclaim = "soon"\n')));
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toBe(
      '[server] idle_reclaim: must be a duration such as 10s or 5m, or "off"',
    );
    expect(error.details).toMatchObject({ key: 'server.idle_reclaim', value: 'soon' });
  });

  it('heap_growth: a percentage from 1% to 300% (default 30%), "off" gives it back to V8, anything else is INVALID_CONFIG', () => {
    expect(resolveServerSettings(load('')).heapGrowthPercent).toBe(30);
    expect(resolveServerSettings(load('[server]\nheap_growth = "100%"\n')).heapGrowthPercent).toBe(
      100,
    );
    expect(resolveServerSettings(load('[server]\nheap_growth = "off"\n')).heapGrowthPercent).toBe(
      null,
    );
    for (const value of ['0%', '301%', '30', '1.5%', 'lots']) {
      const error = errorOf(() =>
        resolveServerSettings(load(`[server]\nheap_growth = "${value}"\n`)),
      );
      expect(error.code).toBe('INVALID_CONFIG');
      expect(error.message).toBe(
        '[server] heap_growth: must be a percentage from 1% to 300% such as "30%", or "off"',
      );
      expect(error.details).toMatchObject({ key: 'server.heap_growth', value });
    }
  });

  it('docs/server.md lists every key of the schema with the default the server applies', () => {
    const rows = documentedRows();
    const keys = Object.keys(ServerSectionSchema.properties);
    expect([...rows.keys()].sort()).toEqual([...keys].sort());
    for (const [key, value] of Object.entries(SERVER_CONFIG_DEFAULTS)) {
      const literal = Array.isArray(value) ? '[]' : JSON.stringify(value);
      expect(rows.get(key), key).toBe(`\`${literal}\``);
    }
  });
});
