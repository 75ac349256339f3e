import { configFileSchema, loadConfig } from '@rune/core';
import { serverConfigModule } from '@rune/server/config';
import { describe, expect, it } from 'vitest';
import { CLI_CONFIG_MODULES, CLI_TRANSPORT_MODULES } from '../transports.js';
import { STARTER_CONFIG_TOML, sectionTemplate } from './config-template.js';

const FILE = '/nonexistent/rune-starter/config.toml';

function load(text: string) {
  return loadConfig({
    env: {},
    home: '/nonexistent/home',
    cwd: '/nonexistent/cwd',
    systemConfigPath: '/nonexistent/system.toml',
    configFile: FILE,
    readFile: (path) => (path === FILE ? text : undefined),
    transportModules: CLI_TRANSPORT_MODULES,
    configModules: CLI_CONFIG_MODULES,
  });
}

/** `# key = value` lines: the keys the starter file shows. */
const KEY_LINE = /^# ([a-z0-9_]+) = (.+)$/;

function shownKeys(text: string): string[] {
  const keys: string[] = [];
  let section = '';
  for (const line of text.split('\n')) {
    const header = /^\[([a-z_]+)\]$/.exec(line);
    if (header !== null) section = header[1] as string;
    const key = KEY_LINE.exec(line);
    if (key !== null) keys.push(`${section}.${key[1]}`);
  }
  return keys;
}

function schemaKeys(): string[] {
  const sections = configFileSchema([...CLI_TRANSPORT_MODULES, ...CLI_CONFIG_MODULES])
    .properties as unknown as Record<string, { properties: Record<string, unknown> }>;
  return Object.entries(sections).flatMap(([section, schema]) =>
    Object.keys(schema.properties).map((key) => `${section}.${key}`),
  );
}

describe('the starter config of `rune config init`', () => {
  it("lists [server] from @rune/server's config module: core's schema has no [server]", () => {
    expect(Object.keys(configFileSchema([]).properties)).not.toContain('server');
    expect(STARTER_CONFIG_TOML).toContain(`[server]\n${serverConfigModule.configTemplate}`);
  });

  it('generates the lines of a module without its own text from its schema and defaults', () => {
    const { configTemplate: _text, ...bare } = serverConfigModule;
    const lines = sectionTemplate(bare);
    expect(lines).toContain('# Runs that may wait in the queue.\n# queue_size = 1000\n');
    expect(lines).toContain('# trusted_proxies = []\n');
    expect(lines).toContain('# listen = "127.0.0.1:8421"\n');
    // No default, no line: `policy` has none.
    expect(lines).not.toContain('# policy =');
  });

  it('loads without errors and changes no value', () => {
    const loaded = load(STARTER_CONFIG_TOML);
    expect(loaded.files).toEqual([FILE]);
    expect(Object.values(loaded.sources).every((source) => source === 'default')).toBe(true);
  });

  it('shows only real keys: with every line uncommented it is still a valid config', () => {
    const uncommented = STARTER_CONFIG_TOML.split('\n')
      .map((line) => (KEY_LINE.test(line) ? line.slice(2) : line))
      .join('\n');
    const loaded = load(uncommented);
    const fromFile = Object.entries(loaded.sources)
      .filter(([, source]) => source === FILE)
      .map(([key]) => key)
      .filter((key) => !key.startsWith('ssm.instances.') && !key.startsWith('server.shipping.'));
    expect(fromFile.sort()).toEqual(shownKeys(STARTER_CONFIG_TOML).sort());
  });

  it('shows every key of the config schema, each once', () => {
    const shown = shownKeys(STARTER_CONFIG_TOML);
    expect(new Set(shown).size).toBe(shown.length);
    expect([...shown].sort()).toEqual(schemaKeys().sort());
  });
});
