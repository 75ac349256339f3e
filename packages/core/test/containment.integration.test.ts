/**
 * Containment travels from the transport into the node result and the audit record: what was
 * killed when the run ended, and whether the transport could make sure nothing is left.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isProcessAlive } from '@rune/transport/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createLocalTransport,
  createMemoryAuditSink,
  createRune,
  type Rune,
} from '../src/index.js';
import { createRecordingTransport } from '../src/testing/index.js';
import { createFixtureEnv, type FixtureEnv } from './fixture-env.js';

let fx: FixtureEnv;
let rune: Rune;
const audit = createMemoryAuditSink();
const incomplete = {
  method: 'process-group' as const,
  killed: 0,
  complete: false,
  detail: '/proc is not readable on this machine',
};

beforeAll(() => {
  fx = createFixtureEnv();
  // ok.sh's valid result, plus a setsid child left behind holding stdout open.
  const ok = readFileSync(join(fx.pluginDir, 'ok.sh'), 'utf8');
  writeFileSync(
    join(fx.pluginDir, 'leaver.sh'),
    ok.replace(
      'echo "ok stderr line" >&2',
      'setsid sleep 300 &\nprintf "%s" "$!" > "$RUNE_FIXTURE_PIDFILE"',
    ),
    { mode: 0o755 },
  );
  rune = createRune({
    env: fx.env,
    home: fx.home,
    cwd: fx.root,
    auditSink: audit,
    pluginSources: [{ kind: 'user', dir: fx.pluginDir }],
    transports: {
      local: () =>
        createLocalTransport({
          env: { ...fx.env, RUNE_FIXTURE_PIDFILE: join(fx.root, 'leaver.pid') },
        }),
      incomplete: createRecordingTransport({
        respond: () => ({
          termination: 'exit',
          exitCode: 0,
          signal: null,
          stdout: new Uint8Array(),
          stdoutTruncated: false,
          stderr: new Uint8Array(),
          stderrTruncated: false,
          timings: { connectMs: 0, execMs: 0, totalMs: 0 },
          containment: incomplete,
        }),
      }),
    },
  });
});
afterAll(async () => {
  await rune.close();
  fx.cleanup();
});

describe('containment in results and audit', () => {
  it('a leftover child is killed, counted in the node result and recorded in the audit metadata', async () => {
    const before = audit.records.length;
    const report = await rune.run({
      action: 'leaver',
      selections: ['localhost'],
      confirmDangerous: true,
    });
    const node = report.outcome!.nodes[0]!;
    expect(node.status).toBe('success');
    expect(node.termination).toBe('exit');
    expect(node.containment).toEqual({ method: 'run-marker', killed: 1, complete: true });
    const pid = Number(readFileSync(join(fx.root, 'leaver.pid'), 'utf8'));
    expect(isProcessAlive(pid)).toBe(false);
    const record = audit.records.slice(before).find((entry) => entry.node === 'localhost');
    expect(record?.metadata).toMatchObject({ containment: node.containment });
  });

  it('incomplete containment reported by a transport reaches the result and the audit record', async () => {
    const before = audit.records.length;
    const report = await rune.run({
      action: 'ok',
      selections: ['somewhere'],
      transport: 'incomplete',
      confirmDangerous: true,
    });
    const node = report.outcome!.nodes[0]!;
    expect(node.containment).toEqual(incomplete);
    const record = audit.records.slice(before).find((entry) => entry.node === 'somewhere');
    expect(record?.metadata).toMatchObject({ containment: incomplete });
  });
});
