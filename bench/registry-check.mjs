#!/usr/bin/env node
/**
 * What noticing a changed plugin costs a long-lived process (`rune serve`), side by side in one
 * run: `node bench/registry-check.mjs [--iterations N]` (after a build). Rows, per plan:
 * - `stat check`: `pluginRegistryIsCurrent(registry, action)` — what core does before each plan
 *   (stat of the plugin directories and of the action's plugin, manifest and included libraries);
 * - `re-hash one plugin`: reading and assembling the action's plugin and hashing it (the
 *   alternative "re-hash on plan");
 * - `rediscover`: `discoverPlugins()` over the built-in directory (what a changed file costs once).
 * Never part of the tests: timings depend on the machine and its load (`uptime`).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { builtinPluginDir, discoverPlugins, pluginRegistryIsCurrent } = await import(
  pathToFileURL(join(root, 'packages/core/dist/index.js')).href
);

const flag = process.argv.indexOf('--iterations');
const iterations = flag === -1 ? 20_000 : Number(process.argv[flag + 1]);
const sources = [{ kind: 'builtin', dir: builtinPluginDir() }];
const registry = discoverPlugins({ sources });
const action = 'check-disk';
const plugin = registry.resolve(action);

function measure(name, count, body) {
  for (let i = 0; i < Math.min(count, 200); i++) body();
  const start = performance.now();
  for (let i = 0; i < count; i++) body();
  const perCallUs = ((performance.now() - start) * 1000) / count;
  return { name, iterations: count, per_call_us: Math.round(perCallUs * 10) / 10 };
}

const rows = [
  measure('stat check', iterations, () => {
    if (!pluginRegistryIsCurrent(registry, action)) throw new Error('changed during the bench');
  }),
  measure('re-hash one plugin', iterations, () => {
    const bytes = [plugin.path, ...plugin.includes.map((include) => include.path)].map((path) =>
      readFileSync(path),
    );
    createHash('sha256').update(Buffer.concat(bytes)).digest('hex');
  }),
  measure('rediscover', Math.max(20, Math.round(iterations / 200)), () =>
    discoverPlugins({ sources }),
  ),
];
process.stdout.write(
  `${JSON.stringify({ action, plugins: registry.actions().length, includes: plugin.includes.length, rows }, null, 2)}\n`,
);
