import { describe, expect, it } from 'vitest';
import { catchRuneError } from '../testing/catch-rune-error.js';
import {
  assertValidNodeName,
  DEFAULT_TRANSPORT,
  isThisMachine,
  LOCAL_TRANSPORT,
  transportFor,
  usesLocalTransport,
} from './targets.js';

describe('the local rule', () => {
  it('routes local names without a port to the local transport', () => {
    for (const name of ['localhost', 'local', '127.0.0.1', '::1']) {
      expect(usesLocalTransport({ name }, 'ad-hoc'), name).toBe(true);
      expect(usesLocalTransport({ name }, 'inventory'), name).toBe(true);
    }
    expect(usesLocalTransport({ name: 'localhost', port: 2222 }, 'ad-hoc')).toBe(false);
    expect(usesLocalTransport({ name: 'web01' }, 'ad-hoc')).toBe(false);
  });

  it('reads an inventory address, but not the address of an ad-hoc user@host', () => {
    expect(usesLocalTransport({ name: 'box', address: 'localhost' }, 'inventory')).toBe(true);
    expect(usesLocalTransport({ name: 'box', address: '127.0.0.1', port: 22 }, 'inventory')).toBe(
      false,
    );
    // `ops@localhost` names an SSH login to this machine.
    expect(
      usesLocalTransport({ name: 'ops@localhost', address: 'localhost', user: 'ops' }, 'ad-hoc'),
    ).toBe(false);
  });

  it('is what the local transport checks, plus the host name', () => {
    expect(isThisMachine({ name: 'localhost' })).toBe(true);
    expect(isThisMachine({ name: 'box', address: '::1' })).toBe(true);
    expect(isThisMachine({ name: 'control' }, 'control')).toBe(true);
    expect(isThisMachine({ name: 'web01' }, 'control')).toBe(false);
  });
});

describe('transportFor', () => {
  it('takes the request, then the inventory, then the local rule, then the default', () => {
    const local = { name: 'localhost' };
    const remote = { name: 'web01' };
    expect(transportFor(local, 'ad-hoc', { requested: 'ssh' })).toBe('ssh');
    expect(transportFor(remote, 'inventory', { requested: 'ssm', inventory: 'ssh' })).toBe('ssm');
    expect(transportFor(local, 'inventory', { inventory: 'ssh' })).toBe('ssh');
    expect(transportFor(local, 'ad-hoc', { defaultTransport: 'ssm' })).toBe(LOCAL_TRANSPORT);
    expect(transportFor(remote, 'ad-hoc', { defaultTransport: 'ssm' })).toBe('ssm');
    expect(transportFor(remote, 'ad-hoc', {})).toBe(DEFAULT_TRANSPORT);
  });
});

describe('assertValidNodeName', () => {
  it('refuses names that could be options, paths or several words', () => {
    for (const bad of ['-oProxyCommand=x', 'a b', 'a/b', '..', '.', '', 'a\u0007b']) {
      expect(catchRuneError(() => assertValidNodeName(bad)).code, JSON.stringify(bad)).toBe(
        'INVALID_TARGET',
      );
    }
    expect(() => assertValidNodeName('web-01.example.com')).not.toThrow();
  });
});
