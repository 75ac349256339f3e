import { existsSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSshTransport } from '../src/index.js';
import { type SshdFleet, startSshdFleet } from '../src/testing/index.js';
import { isAlive, plugin, request, text } from './helpers.js';

let fleet: SshdFleet;
beforeAll(async () => {
  fleet = await startSshdFleet(4);
});
afterAll(async () => {
  await fleet?.stop();
});

it('runs on several hosts at once with paced handshakes, one connection per host', async () => {
  const transport = createSshTransport({
    identityFiles: [fleet.clientKey.privateKeyFile],
    knownHostsFiles: [fleet.knownHostsFile],
    runeKnownHostsFile: `${fleet.hosts[0]?.dir}/rune_known_hosts`,
    remoteCacheDir: fleet.hosts[0]?.remoteCacheDir,
    useSshConfig: false,
    useAgent: false,
    maxConcurrentHandshakes: 2,
  });
  try {
    const hostname = plugin('cat', 'fleet-echo');
    const results = await Promise.all(
      fleet.hosts.flatMap((host) =>
        [1, 2].map((run) =>
          transport.exec(
            request(host.node(), hostname, { stdin: Buffer.from(`${host.address}#${run}`) }),
          ),
        ),
      ),
    );
    expect(results.map((result) => text(result.stdout))).toEqual(
      fleet.hosts.flatMap((host) => [`${host.address}#1`, `${host.address}#2`]),
    );
    expect(new Set(results.map((result) => result.metadata?.connection_id)).size).toBe(
      fleet.hosts.length,
    );
  } finally {
    await transport.close();
  }
});

it('stop() removes every server, process and temp dir', async () => {
  const host = fleet.hosts[0];
  if (host === undefined) throw new Error('no host');
  await host.stop();
  expect(isAlive(host.pid)).toBe(false);
  expect(existsSync(host.dir)).toBe(false);
  await host.stop();
});
