// rune-warm: two actions in one process through the @rune/core API; the second one reuses the
// SSH connections of the first. Prints one JSON line measuring the second action only:
// { ok, wallMs, cpuMs, first: { ok, wallMs, cpuMs } }.
//
// usage: node warm.mjs <inventory.yaml> <config.toml>
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const core = await import(pathToFileURL(join(root, 'packages/core/dist/index.js')).href);
const ssh = await import(pathToFileURL(join(root, 'packages/transport-ssh/dist/index.js')).href);
const sshConfig = await import(
  pathToFileURL(join(root, 'packages/transport-ssh/dist/config.js')).href
);
const [inventoryFile, configFile] = process.argv.slice(2);

const inventory = await core.loadInventory(inventoryFile);
const defaults = inventory.nodes[0]?.settings ?? {};
// The same SSH settings the CLI derives from the bench config (default handshake pacing).
const config = core.loadConfig({ configFile, transportModules: [sshConfig.sshTransportModule] });
const remoteCacheDir = config.transportSections.ssh?.remote_cache_dir;
const rune = core.createRune({
  config,
  transports: {
    ssh: () =>
      ssh.createSshTransport({
        useAgent: false,
        useSshConfig: false,
        identityFiles: [defaults.identity_file],
        knownHostsFiles: [defaults.known_hosts_file],
        ...(remoteCacheDir === undefined ? {} : { remoteCacheDir }),
      }),
  },
});
const total = inventory.nodes.length;

async function measure() {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const report = await rune.run({
    action: 'noop',
    selections: ['@all'],
    inventory,
    concurrency: total,
  });
  const used = process.cpuUsage(cpu);
  const summary = report.outcome?.summary;
  if (summary?.succeeded !== total) {
    const failed = report.outcome?.nodes.find((n) => n.status !== 'success');
    process.stderr.write(`warm: ${JSON.stringify(failed?.error ?? summary)}\n`);
  }
  return {
    ok: summary?.succeeded === total,
    wallMs: performance.now() - started,
    cpuMs: (used.user + used.system) / 1000,
  };
}

try {
  const first = await measure();
  const second = await measure();
  process.stdout.write(`${JSON.stringify({ ...second, first })}\n`);
} finally {
  await rune.close();
}
