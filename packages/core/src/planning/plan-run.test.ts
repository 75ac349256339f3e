import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRcsRequest, RuneError } from '@rune/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load-config.js';
import { selectTargets } from '../inventory/select-targets.js';
import { discoverPlugins, type PluginRegistry } from '../plugins/plugin-registry.js';
import { type PlanInput, planRun, redactPlan } from './plan-run.js';

let dir: string;
let registry: PluginRegistry;
const sender = { component: 'rune-cli', version: '0.1.0', host: 'control' };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rune-plan-'));
  writeFileSync(join(dir, 'tool.sh'), '#!/bin/sh\n');
  chmodSync(join(dir, 'tool.sh'), 0o755);
  writeFileSync(
    join(dir, 'tool.manifest.json'),
    JSON.stringify({
      schema_version: 'mrs_v1',
      name: 'tool',
      version: '2.0.0',
      description: 'test tool',
      parameters: {
        type: 'object',
        properties: {
          level: { type: 'integer', default: 1 },
          token: { type: 'string', sensitive: true },
          ratio: { type: 'number' },
          on: { type: 'boolean' },
          tags: { type: 'array', items: { type: 'integer' } },
        },
      },
      tags: [],
      requirements: { commands: [], privilege: 'user' },
      timeout_ms: 4000,
      idempotent: true,
      supports_dry_run: true,
      dangerous: false,
      accepts: ['rcs_v1'],
    }),
  );
  writeFileSync(join(dir, 'rooted.sh'), '#!/bin/sh\n');
  chmodSync(join(dir, 'rooted.sh'), 0o755);
  writeFileSync(
    join(dir, 'rooted.manifest.json'),
    JSON.stringify({
      schema_version: 'mrs_v1',
      name: 'rooted',
      version: '1.0.0',
      description: 'needs root',
      parameters: { type: 'object', properties: {} },
      tags: [],
      requirements: { commands: ['systemctl', 'docker'], privilege: 'root' },
      timeout_ms: 4000,
      idempotent: true,
      supports_dry_run: true,
      dangerous: false,
      accepts: ['rcs_v1'],
    }),
  );
  registry = discoverPlugins({ sources: [{ kind: 'user', dir }] });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (toml = '') =>
  loadConfig({
    env: {},
    home: '/h',
    cwd: '/w',
    readFile: (p) => (p === '/w/rune.toml' ? toml : undefined),
  }).config;

/** Plans `nodes` (selected as `rune.plan()` selects them) with the rest of `request`. */
const plan = (
  {
    nodes = ['web1'],
    transport,
    ...request
  }: Partial<PlanInput> & { nodes?: string[]; transport?: string },
  toml = '',
) => {
  const resolved = config(toml);
  const targets = selectTargets(nodes, {
    defaultTransport: resolved.core.default_transport,
    ...(transport === undefined ? {} : { transport }),
  });
  return planRun(
    { action: 'tool', targets, ...request },
    { registry, config: resolved, sender, now: () => new Date('2026-01-01T00:00:00Z') },
  );
};

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (RuneError.is(error)) return error.code;
    throw error;
  }
  return 'none';
}

describe('planRun', () => {
  it('builds one valid RCS request per node with a shared trace id', () => {
    const result = plan({ nodes: ['web1', 'web2', 'web1', 'localhost'] });
    expect(result.nodes.map((node) => node.target.name)).toEqual(['web1', 'web2', 'localhost']);
    expect(result.nodes.map((node) => node.transport)).toEqual(['ssh', 'ssh', 'local']);
    const ids = new Set(result.nodes.map((node) => node.request.message_metadata.message_id));
    expect(ids.size).toBe(3);
    for (const node of result.nodes) {
      expect(isRcsRequest(node.request)).toBe(true);
      expect(node.request.message_metadata.trace_id).toBe(result.trace_id);
      expect(node.request.message_metadata.sender).toEqual(sender);
    }
    expect(result.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(result.parameters).toEqual({ level: 1 });
  });

  it('takes the timeout from the flag, then config, then the manifest', () => {
    expect(plan({}).timeout_ms).toBe(4000);
    expect(plan({}).timeout_source).toBe('manifest');
    expect(plan({}, '[core]\ntimeout_ms = 9000\n').timeout_ms).toBe(9000);
    expect(plan({ timeoutMs: 100 }, '[core]\ntimeout_ms = 9000\n')).toMatchObject({
      timeout_ms: 100,
      timeout_source: 'flag',
    });
    expect(codeOf(() => plan({ timeoutMs: 0 }))).toBe('INVALID_ARGUMENT');
  });

  it('coerces --param strings only as the schema allows', () => {
    const result = plan({
      paramArgs: ['level=3', 'ratio=0.5', 'on=true', 'tags=1,2', 'token=abc'],
    });
    expect(result.parameters).toEqual({
      level: 3,
      ratio: 0.5,
      on: true,
      tags: [1, 2],
      token: 'abc',
    });
    expect(plan({ paramArgs: ['tags=[3,4]'] }).parameters.tags).toEqual([3, 4]);
    expect(codeOf(() => plan({ paramArgs: ['level=3.5'] }))).toBe('INVALID_PARAMETERS');
    expect(codeOf(() => plan({ paramArgs: ['tags=1,x'] }))).toBe('INVALID_PARAMETERS');
    expect(codeOf(() => plan({ paramArgs: ['noequals'] }))).toBe('INVALID_PARAMETERS');
    expect(codeOf(() => plan({ params: { level: '3' } }))).toBe('INVALID_PARAMETERS');
  });

  it('redacts sensitive parameters for display only', () => {
    const result = plan({ paramArgs: ['token=s3cr3t'] });
    const shown = redactPlan(result);
    expect(JSON.stringify(shown)).not.toContain('s3cr3t');
    expect(shown.nodes[0]?.request.payload.data.input_parameters.token).toBe('[REDACTED]');
    expect(result.nodes[0]?.request.payload.data.input_parameters.token).toBe('s3cr3t');
  });

  it("maps preinstalled paths and explicit transports (instance ids are the SSM transport's)", () => {
    const result = plan(
      { transport: 'ssm', deployMode: 'preinstalled' },
      '[remote_plugins]\nbase_dir = "/srv/rune/"\n',
    );
    // [ssm.instances] belongs to the SSM transport's section (see transport-ssm config.test.ts).
    expect(result.nodes[0]?.target.instanceId).toBeUndefined();
    expect(result.nodes[0]?.remote_path).toBe('/srv/rune/tool.sh');
    expect(result.nodes[0]?.transport).toBe('ssm');
  });

  it('refuses bad targets with trace context', () => {
    for (const bad of ['-oProxyCommand=x', 'a b', 'a/b', '..', '']) {
      expect(
        codeOf(() => plan({ nodes: [bad] })),
        bad,
      ).toBe(bad === '' ? 'INVALID_TARGET' : 'INVALID_TARGET');
    }
    expect(codeOf(() => plan({ nodes: [] }))).toBe('NO_TARGETS');
  });
});

describe('privilege: root and preflight', () => {
  it('runs a manifest that requires root as root, and says the manifest chose it', () => {
    const planned = plan({ action: 'rooted' });
    expect(planned.run_as).toBe('root');
    expect(planned.run_as_source).toBe('manifest');
    expect(planned.nodes[0]!.target.runAs).toBe('root');
    expect(planned.nodes[0]!.would_run).toContain('as root (sudo -n, the manifest requires root)');
    expect(planned.preflight_commands).toEqual(['systemctl', 'docker']);
  });

  it('lets an explicit run_as win over the manifest (flag, config, inventory node)', () => {
    expect(plan({ action: 'rooted', runAs: 'ops' })).toMatchObject({
      run_as: 'ops',
      run_as_source: 'flag',
    });
    expect(plan({ action: 'rooted' }, '[execution]\nrun_as = "svc"\n')).toMatchObject({
      run_as: 'svc',
      run_as_source: 'config',
    });
    const node = plan({
      action: 'rooted',
      targets: [{ node: { name: 'web1', runAs: 'deploy' }, transport: 'ssh' }],
    }).nodes[0]!;
    expect(node.target.runAs).toBe('deploy');
    expect(node.would_run).not.toContain('the manifest requires root');
  });

  it('leaves a user-privilege plugin as the login user, with no preflight', () => {
    expect(plan({})).toMatchObject({ run_as: null, run_as_source: null, preflight_commands: [] });
  });
});
