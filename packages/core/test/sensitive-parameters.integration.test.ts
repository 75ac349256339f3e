/**
 * Sensitive parameters and transports that embed the request in their command (SSM): the run is
 * refused before anything is contacted, audited, and never leaks the value. The same run over a
 * transport that keeps the request private (local, SSH) goes ahead.
 */
import { RuneError } from '@rune/protocol';
import { TRANSPORT_SPECIFICATION_VERSION, type Transport } from '@rune/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMemoryAuditSink,
  createRune,
  createTransportRegistry,
  executePlan,
  planRun,
  type Rune,
} from '../src/index.js';
import { createFixtureEnv, type FixtureEnv } from './fixture-env.js';

const SECRET = 'correct-horse-battery-staple';
let fx: FixtureEnv;
let rune: Rune;
let execCalls = 0;
const audit = createMemoryAuditSink();

/** Stands in for SSM: declares that it embeds the request in its command. */
const embedding: Transport = {
  specificationVersion: TRANSPORT_SPECIFICATION_VERSION,
  name: 'embedding',
  capabilities: {
    deployModes: ['ship', 'preinstalled'],
    artifacts: false,
    runAs: false,
    maxConcurrentExecsPerNode: 1,
    embedsRequestInCommand: true,
  },
  exec: async () => {
    execCalls++;
    throw new RuneError('CONNECTION_REFUSED', 'must never be contacted');
  },
  close: async () => {},
};

beforeAll(() => {
  fx = createFixtureEnv();
  rune = createRune({
    env: fx.env,
    home: fx.home,
    cwd: fx.root,
    auditSink: audit,
    pluginSources: [{ kind: 'user', dir: fx.pluginDir }],
    transports: { embedding },
  });
});
afterAll(async () => {
  await rune.close();
  fx.cleanup();
});

describe('sensitive parameters on a transport that embeds the request', () => {
  it('refuses the run before contacting the node, with one refusal audit record', async () => {
    // Counted from here: another test's exec must not decide this one (order-independent).
    const callsBefore = execCalls;
    const before = audit.records.length;
    const error = await rune
      .run({
        action: 'params',
        selections: ['i-0123456789abcdef0'],
        transport: 'embedding',
        paramArgs: ['name=web', `secret=${SECRET}`],
      })
      .catch((caught: unknown) => caught);
    expect(RuneError.is(error)).toBe(true);
    const refusal = error as RuneError;
    expect(refusal.code).toBe('SENSITIVE_PARAMETER_REFUSED');
    expect(refusal.exitCode).toBe(4);
    expect(refusal.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(JSON.stringify(refusal.toJSON())).not.toContain(SECRET);
    expect(execCalls - callsBefore).toBe(0);

    const records = audit.records.slice(before);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      event: 'refusal',
      action: 'params',
      node: null,
      nodes: ['i-0123456789abcdef0'],
      transport: 'embedding',
      status: 'refused',
      error_code: 'SENSITIVE_PARAMETER_REFUSED',
      trace_id: refusal.traceId,
      params: null,
    });
    expect(JSON.stringify(records)).not.toContain(SECRET);
  });

  it('refuses a dry run too (it tells the operator the real run would be refused)', async () => {
    // Counted from here: another test's exec must not decide this one (order-independent).
    const callsBefore = execCalls;
    await expect(
      rune.run({
        action: 'params',
        selections: ['n1'],
        transport: 'embedding',
        params: { name: 'web', secret: SECRET },
        dryRun: true,
      }),
    ).rejects.toMatchObject({ code: 'SENSITIVE_PARAMETER_REFUSED' });
    expect(execCalls - callsBefore).toBe(0);
  });

  it('the mediator refuses it again per node for callers of executePlan', async () => {
    // Counted from here: another test's exec must not decide this one (order-independent).
    const callsBefore = execCalls;
    const plan = planRun(
      {
        action: 'params',
        targets: [
          { node: { name: 'n1' }, transport: 'embedding' },
          { node: { name: 'n2' }, transport: 'embedding' },
        ],
        paramArgs: ['name=web', `secret=${SECRET}`],
      },
      {
        registry: rune.registry(),
        config: rune.config.config,
        sender: { component: 'test', version: '1', host: 'h' },
      },
    );
    const outcome = await executePlan(plan, {
      transports: createTransportRegistry({ embedding }),
    });
    expect(outcome.nodes.map((node) => node.error?.code)).toEqual([
      'SENSITIVE_PARAMETER_REFUSED',
      'SENSITIVE_PARAMETER_REFUSED',
    ]);
    expect(outcome.nodes[0]?.error?.source).toMatchObject({ node: 'n1', action: 'params' });
    expect(outcome.summary.exit_code).toBe(4);
    expect(execCalls - callsBefore).toBe(0);
  });

  it('runs without the sensitive value, and runs with it over a private transport', async () => {
    // Counted from here: another test's exec must not decide this one (order-independent).
    const callsBefore = execCalls;
    await expect(
      rune.run({
        action: 'params',
        selections: ['n1'],
        transport: 'embedding',
        paramArgs: ['name=web'],
      }),
    ).resolves.toMatchObject({ outcome: { nodes: [{ error: { code: 'CONNECTION_REFUSED' } }] } });
    expect(execCalls - callsBefore).toBe(1);

    const local = await rune.run({
      action: 'params',
      selections: ['localhost'],
      paramArgs: ['name=web', `secret=${SECRET}`],
    });
    expect(local.outcome?.nodes[0]?.status).toBe('success');
    expect(JSON.stringify(audit.records)).not.toContain(SECRET);
  });
});
