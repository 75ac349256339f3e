import { afterEach, describe, expect, it, vi } from 'vitest';
import { defaultRuneKnownHostsFile } from './ssh-options.js';

describe('defaultRuneKnownHostsFile', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it("lives in RUNE's state dir, as core computes it", () => {
    vi.stubEnv('XDG_STATE_HOME', '/var/tmp/state');
    expect(defaultRuneKnownHostsFile()).toBe('/var/tmp/state/rune/known_hosts');
    vi.stubEnv('XDG_STATE_HOME', '');
    vi.stubEnv('HOME', '/home/someone');
    expect(defaultRuneKnownHostsFile()).toBe('/home/someone/.local/state/rune/known_hosts');
  });
});
