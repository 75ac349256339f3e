import { RuneError } from '@rune/protocol';
import { describe, expect, it } from 'vitest';
import { readNodeSettings } from './node-settings.js';

const node = (settings: Record<string, unknown>) => ({ name: 'web1', settings });

function invalid(settings: Record<string, unknown>): RuneError {
  try {
    readNodeSettings(node(settings));
  } catch (error) {
    if (RuneError.is(error)) return error;
    throw error;
  }
  throw new Error('expected INVALID_CONFIG');
}

describe('readNodeSettings', () => {
  it('reads identity files (one or a list, both keys), jump hosts, known_hosts and the mode', () => {
    expect(
      readNodeSettings(
        node({
          identity_file: '~/.ssh/a',
          identity_files: ['~/.ssh/b', '~/.ssh/c'],
          proxy_jump: 'bastion',
          known_hosts_file: '~/kh',
          host_key_checking: 'accept-new',
          unrelated: 1,
        }),
      ),
    ).toEqual({
      identityFiles: ['~/.ssh/a', '~/.ssh/b', '~/.ssh/c'],
      proxyJump: 'bastion',
      knownHostsFile: '~/kh',
      hostKeyChecking: 'accept-new',
    });
    expect(readNodeSettings({ name: 'bare' })).toEqual({});
  });

  it('a malformed value is INVALID_CONFIG naming the node and the key', () => {
    for (const [settings, key] of [
      [{ identity_files: [1] }, 'settings.identity_files'],
      [{ proxy_jump: 22 }, 'settings.proxy_jump'],
      [{ known_hosts_file: ['x'] }, 'settings.known_hosts_file'],
      [{ host_key_checking: 'yes' }, 'settings.host_key_checking'],
    ] as const) {
      const error = invalid(settings);
      expect(error.code).toBe('INVALID_CONFIG');
      expect(error.message).toContain(`node web1: ${key}`);
      expect(error.source).toMatchObject({ component: 'transport-ssh', node: 'web1' });
    }
  });
});
