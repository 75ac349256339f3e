/**
 * A plugin file changed between planning and execution never runs. Two layers, each tested on its
 * own: the mediator re-hashes the file before any exec (proved with a transport that checks
 * nothing), and the local transport runs the bytes the mediator hashed, never the file by path
 * (local-transport.integration.test.ts covers the window after the mediator's read).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from '@rune/transport';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
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
let original: Buffer;
const audit = createMemoryAuditSink();
const recording = createRecordingTransport();

const pluginFile = (): string => join(fx.pluginDir, 'ok.sh');

beforeAll(() => {
  fx = createFixtureEnv();
  original = readFileSync(pluginFile());
  rune = createRune({
    env: fx.env,
    home: fx.home,
    cwd: fx.root,
    auditSink: audit,
    pluginSources: [{ kind: 'user', dir: fx.pluginDir }],
    transports: {
      local: () => createLocalTransport({ env: fx.env, killGraceMs: 300 }),
      recording,
    },
  });
});
afterEach(() => {
  writeFileSync(pluginFile(), original, { mode: 0o755 });
  recording.requests.length = 0;
});
afterAll(async () => {
  await rune.close();
  fx.cleanup();
});

const plan = (transport: string) =>
  rune.plan({ action: 'ok', selections: ['localhost'], transport, confirmDangerous: true });

describe('plugin integrity between plan and exec', () => {
  it('the mediator refuses a plugin whose bytes changed since planning, before any transport runs it', async () => {
    const planned = await plan('recording');
    writeFileSync(pluginFile(), `${original.toString('utf8')}\necho changed\n`, { mode: 0o755 });
    const outcome = await rune.execute(planned);
    const node = outcome.nodes[0]!;
    expect(node.error?.code).toBe('PLUGIN_INTEGRITY_FAILED');
    expect(node.error?.details).toMatchObject({ expected: planned.plugin.sha256 });
    expect(node.exit_code).toBe(1);
    expect(recording.requests, 'the transport must never be asked to run it').toHaveLength(0);
  });

  it('hands the transport exactly the planned bytes', async () => {
    const planned = await plan('recording');
    await rune.execute(planned);
    const sent = recording.requests[0]!.plugin;
    expect(sent.sha256).toBe(planned.plugin.sha256);
    expect(sha256Hex(sent.content)).toBe(planned.plugin.sha256);
    expect(Buffer.from(sent.content).equals(original)).toBe(true);
  });

  it('a registry file swapped after plan and before execute never runs on the local transport', async () => {
    const ran = join(fx.root, 'swapped-plugin-ran');
    const planned = await plan('local');
    writeFileSync(pluginFile(), `#!/usr/bin/env bash\ntouch '${ran}'\n`, { mode: 0o755 });
    const outcome = await rune.execute(planned);
    expect(outcome.nodes[0]?.error?.code).toBe('PLUGIN_INTEGRITY_FAILED');
    expect(existsSync(ran), 'the swapped content must never run').toBe(false);
  });
});
