import { readFileSync } from 'node:fs';
import { TRANSPORT_SPECIFICATION_VERSION } from '@rune/transport';
import { describe, expect, it } from 'vitest';
import { createSshTransport, VERSION } from './index.js';

describe('package surface', () => {
  it('VERSION equals package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(VERSION).toBe(pkg.version);
  });

  it('creates a transport without connecting, and rejects bad options as INVALID_CONFIG', async () => {
    const transport = createSshTransport();
    expect(transport.specificationVersion).toBe(TRANSPORT_SPECIFICATION_VERSION);
    expect(transport.name).toBe('ssh');
    expect(transport.capabilities).toMatchObject({
      deployModes: ['ship', 'preinstalled'],
      artifacts: true,
      runAs: true,
    });
    await transport.close();
    expect(() => createSshTransport({ remoteCacheDir: '/tmp/../etc' })).toThrow(/remoteCacheDir/);
    expect(() => createSshTransport({ remoteCacheDir: '$HOME/x' })).toThrow(/remoteCacheDir/);
    expect(() => createSshTransport({ maxSessionsPerConnection: 0 })).toThrow(
      /maxSessionsPerConnection/,
    );
    expect(() => createSshTransport({ hostKeyChecking: 'yes' as never })).toThrow(
      /hostKeyChecking/,
    );
  });
});
