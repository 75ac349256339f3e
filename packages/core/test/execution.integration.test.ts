import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RuneError } from '@rune/protocol';
import { TRANSPORT_SPECIFICATION_VERSION, type Transport } from '@rune/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createLocalTransport,
  createMemoryAuditSink,
  createRune,
  type Rune,
} from '../src/index.js';
import { createFixtureEnv, type FixtureEnv } from './fixture-env.js';

let fx: FixtureEnv;
let rune: Rune;
const audit = createMemoryAuditSink();

/** A transport double: capabilities and behaviour chosen per test. */
function fakeTransport(
  overrides: Partial<Omit<Transport, 'capabilities'>> & {
    capabilities?: Partial<Transport['capabilities']>;
  },
): Transport {
  return {
    specificationVersion: TRANSPORT_SPECIFICATION_VERSION,
    name: 'fake',
    exec: async () => {
      throw new Error('not used');
    },
    close: async () => {},
    ...overrides,
    capabilities: {
      deployModes: ['ship'],
      artifacts: false,
      runAs: false,
      maxConcurrentExecsPerNode: 1,
      ...overrides.capabilities,
    },
  };
}

beforeAll(() => {
  fx = createFixtureEnv();
  rune = createRune({
    env: fx.env,
    home: fx.home,
    cwd: fx.root,
    auditSink: audit,
    pluginSources: [{ kind: 'user', dir: fx.pluginDir }],
    configOverrides: { core: { artifact_dir: join(fx.root, 'artifacts') } },
  });
});
afterAll(async () => {
  await rune.close();
  fx.cleanup();
});

const runOn = async (transport: string, extra: Record<string, unknown> = {}) => {
  const report = await rune.run({
    action: 'ok',
    selections: ['localhost'],
    transport,
    confirmDangerous: true,
    ...extra,
  });
  return report.outcome!.nodes[0]!;
};

describe('mediator', () => {
  it('fetches declared artifacts, verifies sha256 and stores them privately', async () => {
    const remoteDir = join(fx.root, 'remote-artifacts');
    rune.transports.register('local-artifacts', () =>
      createLocalTransport({ env: { ...fx.env, RUNE_FIXTURE_ARTIFACT_DIR: remoteDir } }),
    );
    const report = await rune.run({
      action: 'artifact',
      selections: ['localhost'],
      transport: 'local-artifacts',
      confirmDangerous: true,
      fetchArtifacts: true,
    });
    const node = report.outcome!.nodes[0]!;
    expect(node.status).toBe('success');
    const artifact = node.artifacts[0]!;
    expect(artifact.status).toBe('fetched');
    expect(artifact.local_path).toBe(
      join(fx.root, 'artifacts', report.plan.trace_id, 'localhost', 'logs.txt'),
    );
    expect(readFileSync(artifact.local_path!, 'utf8')).toBe('collected logs\n');
    expect(statSync(artifact.local_path!).mode & 0o777).toBe(0o600);
    // Verified, so the node-side copy is gone (removeArtifact of the local transport).
    expect(artifact.removal).toEqual({ status: 'removed', error: null });
    expect(existsSync(join(remoteDir, 'logs.txt'))).toBe(false);
  });

  it('records a failed removal on the artifact without failing the node', async () => {
    const remoteDir = join(fx.root, 'remote-artifacts-stuck');
    rune.transports.register('local-stuck', () => {
      const local = createLocalTransport({
        env: { ...fx.env, RUNE_FIXTURE_ARTIFACT_DIR: remoteDir },
      });
      // The real local transport, except that the node refuses the removal.
      return {
        ...local,
        exec: local.exec.bind(local),
        fetchArtifact: local.fetchArtifact?.bind(local),
        close: local.close.bind(local),
        removeArtifact: async () => {
          throw new RuneError('ARTIFACT_REMOVE_FAILED', 'rm: Operation not permitted');
        },
      } as Transport;
    });
    const report = await rune.run({
      action: 'artifact',
      selections: ['localhost'],
      transport: 'local-stuck',
      confirmDangerous: true,
      fetchArtifacts: true,
    });
    const node = report.outcome!.nodes[0]!;
    expect(node.status).toBe('success');
    expect(node.error).toBeNull();
    const artifact = node.artifacts[0]!;
    expect(artifact.status).toBe('fetched');
    expect(artifact.removal?.status).toBe('failed');
    expect(artifact.removal?.error?.message).toContain('Operation not permitted');
    expect(artifact.removal?.error?.details).toMatchObject({ phase: 'remove' });
    expect(existsSync(join(remoteDir, 'logs.txt'))).toBe(true);
  });

  it('the local removeArtifact removes only a regular file and never follows a link', async () => {
    const local = createLocalTransport({ env: fx.env });
    const dir = join(fx.root, 'remove-artifact');
    mkdirSync(dir, { recursive: true });
    const node = { name: 'localhost' };
    const signal = new AbortController().signal;
    const target = join(dir, 'target');
    writeFileSync(target, 'keep');
    symlinkSync(target, join(dir, 'link'));
    await expect(local.removeArtifact!(node, join(dir, 'link'), signal)).rejects.toMatchObject({
      code: 'ARTIFACT_REMOVE_FAILED',
    });
    expect(readFileSync(target, 'utf8')).toBe('keep');
    await expect(local.removeArtifact!(node, dir, signal)).rejects.toMatchObject({
      code: 'ARTIFACT_REMOVE_FAILED',
    });
    await local.removeArtifact!(node, target, signal);
    expect(existsSync(target)).toBe(false);
    // Already gone is done.
    await local.removeArtifact!(node, target, signal);
    await local.close();
  });

  it('fails the node with ARTIFACT_FETCH_FAILED on a sha256 mismatch, keeping the response', async () => {
    const remoteDir = join(fx.root, 'remote-artifacts-bad');
    rune.transports.register('local-bad', () =>
      createLocalTransport({
        env: { ...fx.env, RUNE_FIXTURE_ARTIFACT_DIR: remoteDir, RUNE_FIXTURE_BAD_SHA: '1' },
      }),
    );
    const report = await rune.run({
      action: 'artifact',
      selections: ['localhost'],
      transport: 'local-bad',
      confirmDangerous: true,
      fetchArtifacts: true,
    });
    const node = report.outcome!.nodes[0]!;
    expect(node.status).toBe('failure');
    expect(node.error?.code).toBe('ARTIFACT_FETCH_FAILED');
    expect(node.exit_code).toBe(3);
    expect(node.response?.payload.result).toBe('success');
    expect(node.artifacts[0]?.status).toBe('failed');
    expect(existsSync(join(fx.root, 'artifacts', report.plan.trace_id))).toBe(false);
  });

  it('does not fetch artifacts unless asked', async () => {
    rune.transports.register('local-nofetch', () =>
      createLocalTransport({ env: { ...fx.env, RUNE_FIXTURE_ARTIFACT_DIR: join(fx.root, 'nf') } }),
    );
    const report = await rune.run({
      action: 'artifact',
      selections: ['localhost'],
      transport: 'local-nofetch',
      confirmDangerous: true,
    });
    expect(report.outcome!.nodes[0]!.artifacts[0]?.status).toBe('not-fetched');
  });

  it('checks transport capabilities before exec', async () => {
    let called = false;
    const exec = async () => {
      called = true;
      throw new Error('must not run');
    };
    rune.transports.register('tiny', fakeTransport({ exec, capabilities: { maxStdinBytes: 10 } }));
    expect((await runOn('tiny')).error?.code).toBe('PAYLOAD_TOO_LARGE');
    rune.transports.register(
      'no-ship',
      fakeTransport({ exec, capabilities: { deployModes: ['preinstalled'] } }),
    );
    expect((await runOn('no-ship')).error?.code).toBe('UNSUPPORTED_FEATURE');
    expect(called).toBe(false);
  });

  it('keeps a transport RuneError code with context; anything else is INTERNAL_ERROR', async () => {
    rune.transports.register(
      'refusing',
      fakeTransport({
        exec: async () => {
          throw new RuneError('CONNECTION_REFUSED', 'nothing listening on port 22');
        },
      }),
    );
    const refused = await runOn('refusing');
    expect(refused.error).toMatchObject({
      code: 'CONNECTION_REFUSED',
      source: { node: 'localhost', action: 'ok' },
    });
    expect(refused.exit_code).toBe(3);
    rune.transports.register(
      'buggy',
      fakeTransport({
        exec: async () => {
          throw new TypeError('undefined is not a function');
        },
      }),
    );
    const buggy = await runOn('buggy');
    expect(buggy.error?.code).toBe('INTERNAL_ERROR');
    expect(buggy.exit_code).toBe(70);
    expect(buggy.error?.trace_id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('aggregates several nodes to the most severe exit code and audits each node', async () => {
    rune.transports.register(
      'mixed',
      fakeTransport({
        exec: async (request) => {
          if (request.node.name === 'b') throw new RuneError('CONNECTION_REFUSED', 'refused');
          if (request.node.name === 'c') {
            return {
              termination: 'timeout',
              exitCode: null,
              signal: null,
              stdout: new Uint8Array(),
              stdoutTruncated: false,
              stderr: new Uint8Array(),
              stderrTruncated: false,
              timings: { connectMs: 0, execMs: 1, totalMs: 1 },
            };
          }
          throw new RuneError('AUTH_FAILED', 'no');
        },
      }),
    );
    const before = audit.records.length;
    const report = await rune.run({
      action: 'ok',
      selections: ['a', 'b', 'c'],
      transport: 'mixed',
      confirmDangerous: true,
    });
    expect(report.outcome!.nodes.map((node) => node.error?.code)).toEqual([
      'AUTH_FAILED',
      'CONNECTION_REFUSED',
      'PLUGIN_TIMEOUT',
    ]);
    expect(report.outcome!.summary.exit_code).toBe(5);
    expect(
      audit.records
        .slice(before)
        .filter((record) => record.event === 'run')
        .map((record) => record.node)
        .sort(),
    ).toEqual(['a', 'b', 'c']);
    expect(audit.records[before]).toMatchObject({ event: 'intent', nodes: ['a', 'b', 'c'] });
  });
});
