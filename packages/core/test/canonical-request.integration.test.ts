/**
 * What core writes to a plugin's stdin is the canonical RCS encoding (specs/rcs-v1.md), and the
 * Bash library recognises it: a real plugin built on bpcs.sh (assembled by the registry, run by
 * the real local transport) reports the exact bytes it read and whether the library's fast path
 * accepts them. If core sent anything else, every Bash plugin would silently pay for the general
 * parser on every run.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeRcsRequest } from '@rune/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalTransport, createRune, type Rune } from '../src/index.js';
import { createFixtureEnv, type FixtureEnv } from './fixture-env.js';

let fx: FixtureEnv;
let rune: Rune;

const PLUGIN = `#!/usr/bin/env bash
set -euo pipefail
source "$RUNE_LIB/bpcs.sh" # @rune-include bpcs.sh
bpcs_init stdin-echo 1.0.0
bpcs_out str stdin "$BPCS_INPUT"
fast=false
_bpcs_parse_canonical "$BPCS_INPUT" && fast=true
bpcs_out bool fast "$fast"
bpcs_success
`;

beforeAll(() => {
  fx = createFixtureEnv();
  writeFileSync(join(fx.pluginDir, 'stdin-echo.sh'), PLUGIN, { mode: 0o755 });
  rune = createRune({
    env: fx.env,
    home: fx.home,
    cwd: fx.root,
    pluginSources: [{ kind: 'user', dir: fx.pluginDir }],
    transports: { local: () => createLocalTransport({ env: fx.env }) },
  });
});
afterAll(async () => {
  await rune.close();
  fx.cleanup();
});

describe('the request core sends', () => {
  it('is the canonical encoding, and the Bash library takes its fast path', async () => {
    const plan = await rune.plan({
      action: 'stdin-echo',
      selections: ['localhost'],
      paramArgs: ['text=she said "hi" \\ and left', 'count=3'],
      confirmDangerous: true,
    });
    const report = await rune.run({
      action: 'stdin-echo',
      selections: ['localhost'],
      paramArgs: ['text=she said "hi" \\ and left', 'count=3'],
      // A plugin without a manifest counts as dangerous.
      confirmDangerous: true,
    });
    const node = report.outcome?.nodes[0];
    expect(node?.status, JSON.stringify(node?.error)).toBe('success');
    const data = node?.response?.payload.output_data as { stdin: string; fast: boolean };
    expect(data.fast).toBe(true);
    const sent = JSON.parse(data.stdin);
    expect(data.stdin).toBe(encodeRcsRequest(sent));
    expect(sent.payload.data.input_parameters).toEqual(
      plan.nodes[0]?.request.payload.data.input_parameters,
    );
  });
});
