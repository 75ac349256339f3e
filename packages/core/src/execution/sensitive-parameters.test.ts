import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ERROR_CATALOG, RuneError } from '@rune/protocol';
import {
  TRANSPORT_SPECIFICATION_VERSION,
  type Transport,
  type TransportCapabilities,
} from '@rune/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load-config.js';
import { type PlanInput, planRun } from '../planning/plan-run.js';
import { discoverPlugins, type PluginRegistry } from '../plugins/plugin-registry.js';
import {
  assertSensitiveParametersAllowed,
  sensitiveParameterRefusal,
} from './sensitive-parameters.js';
import { createTransportRegistry } from './transport-registry.js';

let dir: string;
let registry: PluginRegistry;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rune-sensitive-'));
  writeFileSync(join(dir, 'login.sh'), '#!/bin/sh\n');
  chmodSync(join(dir, 'login.sh'), 0o755);
  writeFileSync(
    join(dir, 'login.manifest.json'),
    JSON.stringify({
      schema_version: 'mrs_v1',
      name: 'login',
      version: '1.0.0',
      description: 'takes a password',
      parameters: {
        type: 'object',
        properties: {
          user: { type: 'string' },
          password: { type: 'string', sensitive: true },
          realm: { type: 'string', sensitive: true, default: 'public-default' },
        },
      },
      tags: [],
      requirements: { commands: [], privilege: 'user' },
      timeout_ms: 4000,
      idempotent: true,
      supports_dry_run: false,
      dangerous: false,
      accepts: ['rcs_v1'],
    }),
  );
  registry = discoverPlugins({ sources: [{ kind: 'user', dir }] });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = loadConfig({ env: {}, home: '/h', cwd: '/w', readFile: () => undefined }).config;
const plan = (request: Partial<PlanInput>) =>
  planRun(
    { action: 'login', targets: [{ node: { name: 'web1' }, transport: 'ssm' }], ...request },
    { registry, config, sender: { component: 'test', version: '1', host: 'h' } },
  );

const transport = (name: string, capabilities: Partial<TransportCapabilities> = {}): Transport => ({
  specificationVersion: TRANSPORT_SPECIFICATION_VERSION,
  name,
  capabilities: {
    deployModes: ['ship'],
    artifacts: false,
    runAs: false,
    maxConcurrentExecsPerNode: 1,
    ...capabilities,
  },
  exec: async () => {
    throw new Error('must not run');
  },
  close: async () => {},
});

describe('supplied sensitive parameters', () => {
  it('lists the sensitive parameters the caller supplied, from --param and from params', () => {
    expect(plan({ paramArgs: ['password=hunter2'] }).supplied_sensitive_parameters).toEqual([
      'password',
    ]);
    expect(
      plan({ params: { password: 'x', realm: 'corp' } }).supplied_sensitive_parameters,
    ).toEqual(['password', 'realm']);
  });

  it('does not count non-sensitive parameters or sensitive ones filled from a manifest default', () => {
    const result = plan({ paramArgs: ['user=alice'] });
    expect(result.parameters).toEqual({ user: 'alice', realm: 'public-default' });
    expect(result.sensitive_parameters).toEqual(['password', 'realm']);
    expect(result.supplied_sensitive_parameters).toEqual([]);
  });
});

describe('sensitiveParameterRefusal', () => {
  it('refuses a supplied sensitive parameter on a transport that embeds the request', () => {
    const refusal = sensitiveParameterRefusal(
      plan({ paramArgs: ['password=hunter2'] }),
      transport('ssm', { embedsRequestInCommand: true }),
      ['web1'],
    );
    expect(refusal).toBeInstanceOf(RuneError);
    expect(refusal?.code).toBe('SENSITIVE_PARAMETER_REFUSED');
    expect(refusal?.category).toBe('policy');
    expect(refusal?.exitCode).toBe(4);
    expect(refusal?.message).toContain('password');
    expect(refusal?.message).not.toContain('hunter2');
    expect(refusal?.details).toEqual({
      parameters: ['password'],
      transport: 'ssm',
      nodes: ['web1'],
    });
    expect(refusal?.toJSON().source).toEqual({
      component: 'rune-core',
      action: 'login',
      node: 'web1',
    });
    expect(ERROR_CATALOG.SENSITIVE_PARAMETER_REFUSED.category).toBe('policy');
  });

  it('allows transports that keep the request private, and runs without sensitive values', () => {
    const withSecret = plan({ paramArgs: ['password=hunter2'] });
    expect(sensitiveParameterRefusal(withSecret, transport('ssh'))).toBeUndefined();
    expect(
      sensitiveParameterRefusal(withSecret, transport('x', { embedsRequestInCommand: false })),
    ).toBeUndefined();
    expect(
      sensitiveParameterRefusal(
        plan({ paramArgs: ['user=alice'] }),
        transport('ssm', { embedsRequestInCommand: true }),
      ),
    ).toBeUndefined();
  });
});

describe('assertSensitiveParametersAllowed', () => {
  it('refuses the whole run when any node uses an embedding transport', async () => {
    const transports = createTransportRegistry({
      ssh: transport('ssh'),
      ssm: transport('ssm', { embedsRequestInCommand: true }),
    });
    const mixed = plan({
      targets: [
        { node: { name: 'web1' }, transport: 'ssh' },
        { node: { name: 'i-0123456789abcdef0' }, transport: 'ssm' },
      ],
      paramArgs: ['password=hunter2'],
    });
    await expect(assertSensitiveParametersAllowed(mixed, transports)).rejects.toMatchObject({
      code: 'SENSITIVE_PARAMETER_REFUSED',
      details: { transport: 'ssm', nodes: ['i-0123456789abcdef0'] },
    });
    await expect(
      assertSensitiveParametersAllowed({ ...mixed, nodes: [mixed.nodes[0]!] }, transports),
    ).resolves.toBeUndefined();
  });

  it('does not create transports when nothing sensitive is supplied; leaves broken ones to the execution step', async () => {
    let created = 0;
    const transports = createTransportRegistry({
      ssm: () => {
        created++;
        return transport('ssm', { embedsRequestInCommand: true });
      },
      broken: () => {
        throw new Error('cannot load');
      },
    });
    await assertSensitiveParametersAllowed(plan({ paramArgs: ['user=a'] }), transports);
    expect(created).toBe(0);
    await expect(
      assertSensitiveParametersAllowed(
        plan({
          targets: [{ node: { name: 'web1' }, transport: 'broken' }],
          paramArgs: ['password=x'],
        }),
        transports,
      ),
    ).resolves.toBeUndefined();
  });
});
