import type { ConfigSectionModule, TransportModule } from '@rune/transport';
import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { catchRuneError } from '../testing/catch-rune-error.js';
import { describeConfig, loadConfig, transportConfigContext } from './load-config.js';

const home = '/home/op';

/** Transport modules shaped like the SSH and SSM ones (core cannot depend on those packages). */
const fromConfig = (): never => {
  throw new Error('not built in this test');
};
const sshLike: TransportModule = {
  name: 'ssh',
  configSchema: Type.Object(
    {
      port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_535 })),
      ssh_config_file: Type.Optional(Type.String({ minLength: 1 })),
      remote_cache_dir: Type.Optional(Type.String({ minLength: 1 })),
    },
    { additionalProperties: false },
  ),
  configDefaults: {
    port: 22,
    ssh_config_file: '~/.ssh/config',
    remote_cache_dir: '~/.cache/rune/plugins',
  },
  fromConfig,
};
const ssmLike: TransportModule = {
  name: 'ssm',
  configSchema: Type.Object(
    { instances: Type.Optional(Type.Record(Type.String(), Type.String({ pattern: '^i-' }))) },
    { additionalProperties: false },
  ),
  configDefaults: { instances: {} },
  fromConfig,
};
const transportModules = [sshLike, ssmLike];
const files = (map: Record<string, string>) => (path: string) => map[path];

describe('loadConfig', () => {
  it('gives defaults with their source and XDG-derived paths', () => {
    const loaded = loadConfig({
      env: {},
      home,
      cwd: '/work',
      readFile: files({}),
      transportModules,
    });
    expect(loaded.config.core.default_transport).toBe('ssh');
    expect(loaded.config.execution.concurrency).toBe(50);
    expect(loaded.config.core.audit_log).toBe('/home/op/.local/state/rune/audit.jsonl');
    // A transport section gets no defaults filled in: its module documents them, the transport
    // applies them; control-node paths resolve through the context, remote paths stay as written.
    expect(loaded.transportSections.ssh).toBeUndefined();
    const rows = describeConfig(loaded);
    expect(rows.find((row) => row.key === 'ssh.ssh_config_file')).toEqual({
      key: 'ssh.ssh_config_file',
      value: '~/.ssh/config',
      source: 'default',
    });
    expect(transportConfigContext(loaded).resolveLocalPath('~/.ssh/config')).toBe(
      '/home/op/.ssh/config',
    );
    expect(rows.find((row) => row.key === 'ssh.remote_cache_dir')?.value).toBe(
      '~/.cache/rune/plugins',
    );
    expect(loaded.sources['execution.concurrency']).toBe('default');
    expect(loaded.files).toEqual([]);
  });

  it('merges files in order, then env, then flags, remembering sources', () => {
    const loaded = loadConfig({
      env: { XDG_CONFIG_HOME: '/xdg', RUNE_CONFIG: '~/extra.toml', RUNE_SSH_PORT: '2222' },
      home,
      cwd: '/work',
      systemConfigPath: '/etc/rune/config.toml',
      readFile: files({
        '/etc/rune/config.toml': '[core]\noutput = "json"\ntimeout_ms = 1000\n',
        '/xdg/rune/config.toml':
          '[core]\ntimeout_ms = 2000\n[ssm.instances]\nweb1 = "i-0123456789abcdef0"\n',
        '/work/rune.toml': '[plugins]\nplugin_dir = "plugins"\n',
        '/home/op/extra.toml': '[execution]\nconcurrency = 3\n',
      }),
      overrides: { core: { output: 'jsonl' } },
      transportModules,
    });
    expect(loaded.config.core.timeout_ms).toBe(2000);
    expect(loaded.sources['core.timeout_ms']).toBe('/xdg/rune/config.toml');
    expect(loaded.config.core.output).toBe('jsonl');
    expect(loaded.sources['core.output']).toBe('flag');
    expect(loaded.config.plugins.plugin_dir).toBe('/work/plugins');
    expect(loaded.config.execution.concurrency).toBe(3);
    expect(loaded.sources['execution.concurrency']).toBe('/home/op/extra.toml');
    expect(loaded.transportSections.ssh?.port).toBe(2222);
    expect(loaded.sources['ssh.port']).toBe('env:RUNE_SSH_PORT');
    expect(loaded.transportSections.ssm?.instances).toEqual({ web1: 'i-0123456789abcdef0' });
    expect(loaded.files).toHaveLength(4);
    const rows = describeConfig(loaded);
    expect(rows.find((row) => row.key === 'core.inventory')?.source).toBe('unset');
  });

  it('rejects an unknown key naming the file and key path', () => {
    const error = catchRuneError(() =>
      loadConfig({
        env: {},
        home,
        cwd: '/work',
        readFile: files({ '/work/rune.toml': '[core]\nbogus = 1\n' }),
      }),
    );
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toContain('/work/rune.toml');
    expect(error.message).toContain('core.bogus');
  });

  it('rejects an unknown section and a wrong type', () => {
    const error = catchRuneError(() =>
      loadConfig({
        env: {},
        home,
        cwd: '/work',
        readFile: files({
          '/work/rune.toml': '[nope]\nx = 1\n[execution]\nconcurrency = "many"\n',
        }),
      }),
    );
    expect(error.code).toBe('INVALID_CONFIG');
    const keys = ((error.details?.violations as { key: string }[] | undefined) ?? []).map(
      (v) => v.key,
    );
    expect(keys).toContain('nope');
    expect(keys).toContain('execution.concurrency');
  });

  it('rejects invalid TOML with line and column', () => {
    const error = catchRuneError(() =>
      loadConfig({
        env: {},
        home,
        cwd: '/work',
        readFile: files({ '/work/rune.toml': '[core\noutput = ' }),
      }),
    );
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toMatch(/rune\.toml: not valid TOML at line \d+/);
  });

  it('rejects a missing --config file and a bad env value', () => {
    expect(
      catchRuneError(() =>
        loadConfig({ env: {}, home, cwd: '/w', configFile: '/nope.toml', readFile: files({}) }),
      ).code,
    ).toBe('INVALID_CONFIG');
    const error = catchRuneError(() =>
      loadConfig({
        env: { RUNE_EXECUTION_CONCURRENCY: 'x' },
        home,
        cwd: '/w',
        readFile: files({}),
      }),
    );
    expect(error.message).toContain('RUNE_EXECUTION_CONCURRENCY');
  });

  it('rejects flags of the wrong type', () => {
    const error = catchRuneError(() =>
      loadConfig({
        env: {},
        home,
        cwd: '/w',
        readFile: files({}),
        overrides: { core: { timeout_ms: -5 } },
      }),
    );
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toContain('core.timeout_ms');
  });
});

describe('loadConfig with transport modules', () => {
  const load = (toml: string, modules: readonly TransportModule[] = transportModules) =>
    loadConfig({
      env: {},
      home,
      cwd: '/work',
      readFile: files({ '/work/rune.toml': toml }),
      transportModules: modules,
    });

  it('validates a transport section with its module: an unknown key names the file and key', () => {
    const error = catchRuneError(() => load('[ssh]\nprot = 22\n'));
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toContain('/work/rune.toml');
    expect(error.message).toContain('ssh.prot');
    expect(error.details).toMatchObject({ file: '/work/rune.toml', key: 'ssh.prot' });
    expect(catchRuneError(() => load('[ssh]\nport = "22"\n')).message).toContain('ssh.port');
  });

  it('rejects the section of a transport it was not given, and any key in [local]', () => {
    expect(catchRuneError(() => load('[ssh]\nport = 22\n', [])).message).toContain('ssh');
    expect(catchRuneError(() => load('[local]\nx = 1\n')).message).toContain('local.x');
  });

  it('hands a transport its section as written: set keys only, a default value still set', () => {
    const loaded = load('[ssh]\nport = 22\n');
    expect(loaded.transportSections.ssh).toEqual({ port: 22 });
    expect(loaded.sources['ssh.port']).toBe('/work/rune.toml');
    expect(describeConfig(loaded).find((row) => row.key === 'ssh.port')).toEqual({
      key: 'ssh.port',
      value: 22,
      source: '/work/rune.toml',
    });
  });
});

describe('loadConfig with config section modules (a package owning a section core knows nothing of)', () => {
  /** Shaped like @rune/server's `[server]` module (core cannot depend on that package). */
  const serviceLike: ConfigSectionModule = {
    name: 'service',
    configSchema: Type.Object(
      {
        listen: Type.Optional(Type.String({ minLength: 1 })),
        store: Type.Optional(Type.String({ minLength: 1 })),
        policy: Type.Optional(Type.String({ minLength: 1 })),
        queue_size: Type.Optional(Type.Integer({ minimum: 1 })),
        sinks: Type.Optional(
          Type.Array(Type.Object({ name: Type.String() }, { additionalProperties: false })),
        ),
      },
      { additionalProperties: false },
    ),
    configDefaults: { listen: '127.0.0.1:8421', queue_size: 1000 },
    localPathKeys: ['store', 'policy'],
  };
  const configModules = [serviceLike];
  const load = (
    toml: string,
    options: { env?: Record<string, string>; modules?: readonly ConfigSectionModule[] } = {},
  ) =>
    loadConfig({
      env: options.env ?? {},
      home,
      cwd: '/work',
      readFile: files({ '/work/rune.toml': toml }),
      transportModules,
      configModules: options.modules ?? configModules,
    });

  it('refuses an unknown key with file:line:column, the key and a "did you mean"', () => {
    const error = catchRuneError(() =>
      load('[core]\noutput = "json"\n\n[service]\nlisten = "127.0.0.1:1"\n  qeue_size = 5\n'),
    );
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toBe(
      '/work/rune.toml:6:3: service.qeue_size: unknown key; did you mean service.queue_size?',
    );
    expect(error.details).toMatchObject({
      file: '/work/rune.toml',
      line: 6,
      column: 3,
      key: 'service.qeue_size',
    });
  });

  it('locates wrong types, dotted keys, unknown sections and entries of inline arrays', () => {
    expect(catchRuneError(() => load('[service]\nqueue_size = 0\n')).message).toMatch(
      /^\/work\/rune\.toml:2:1: service\.queue_size: /,
    );
    expect(catchRuneError(() => load('service.queue_size = "x"\n')).message).toMatch(
      /^\/work\/rune\.toml:1:1: service\.queue_size: /,
    );
    expect(catchRuneError(() => load('[core]\n[servce]\nlisten = "x"\n')).message).toBe(
      '/work/rune.toml:2:2: servce: unknown key; did you mean service?',
    );
    expect(
      catchRuneError(() => load('[service]\nsinks = [{ name = "a", nmae = "b" }]\n')).message,
    ).toMatch(
      /^\/work\/rune\.toml:2:1: service\.sinks\.0\.nmae: unknown key; did you mean service\.sinks\.0\.name\?/,
    );
    // A core key too: the same generic check.
    expect(catchRuneError(() => load('[execution]\nconcurency = 3\n')).message).toBe(
      '/work/rune.toml:2:1: execution.concurency: unknown key; did you mean execution.concurrency?',
    );
  });

  it('refuses the section when its module is not given', () => {
    const error = catchRuneError(() => load('[service]\nlisten = "x"\n', { modules: [] }));
    expect(error.message).toBe('/work/rune.toml:1:2: service: unknown key');
  });

  it('hands the section on as written, with its path keys expanded and URLs left alone', () => {
    const loaded = load('[service]\nstore = "postgres://db/rune"\npolicy = "~/policy.yaml"\n', {
      env: { RUNE_SERVICE_QUEUE_SIZE: '7' },
    });
    expect(loaded.sections.service).toEqual({
      store: 'postgres://db/rune',
      policy: '/home/op/policy.yaml',
      queue_size: 7,
    });
    expect(loaded.transportSections.service).toBeUndefined();
    expect((loaded.config as unknown as Record<string, unknown>).service).toBeUndefined();
    expect(loaded.sources['service.queue_size']).toBe('env:RUNE_SERVICE_QUEUE_SIZE');
    const rows = describeConfig(loaded);
    expect(rows.find((row) => row.key === 'service.listen')).toEqual({
      key: 'service.listen',
      value: '127.0.0.1:8421',
      source: 'default',
    });
    expect(rows.find((row) => row.key === 'service.policy')?.source).toBe('/work/rune.toml');
    const relative = load('[service]\nstore = "state/rune.sqlite"\n');
    expect(relative.sections.service?.store).toBe('/work/state/rune.sqlite');
  });

  it('refuses a module that claims a section core or a transport owns', () => {
    for (const name of ['core', 'ssh']) {
      const error = catchRuneError(() => load('', { modules: [{ ...serviceLike, name }] }));
      expect(error.message).toContain(`two config sections are named [${name}]`);
    }
  });
});
