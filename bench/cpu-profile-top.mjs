#!/usr/bin/env node
// Reads a V8 .cpuprofile (node --cpu-prof; bench/ha.mjs --cpu-prof DIR) and prints where the
// samples went: self time by module (a package of node_modules, a file of RUNE's dist, node's
// internals, GC, idle) and the top functions by self time. Never part of the test suite.
//
//   node bench/cpu-profile-top.mjs PROFILE.cpuprofile [--top 30]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '30' } },
});
const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map();
for (const [index, id] of profile.samples.entries()) {
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
}
/** A short name of where a function lives. */
function moduleOf(url, name) {
  if (url === '') return name.startsWith('(') ? name : '(native)';
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pnpm !== null) return pnpm[1];
  const ours = /(packages|apps)\/([^/]+)\/dist\/(.*)$/.exec(url);
  if (ours !== null) return `${ours[2]}/${ours[3]}`;
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//, '');
}
const modules = new Map();
const functions = new Map();
let total = 0;
for (const [id, us] of self) {
  const node = byId.get(id);
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName === '' ? '(anonymous)' : functionName;
  const where = moduleOf(url, name);
  modules.set(where, (modules.get(where) ?? 0) + us);
  const key = `${name} ${where}:${lineNumber + 1}`;
  functions.set(key, (functions.get(key) ?? 0) + us);
  total += us;
}
const top = Number(values.top);
const print = (title, map) => {
  process.stdout.write(`\n${title}\n`);
  for (const [key, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(
      `${(us / 1000).toFixed(0).padStart(8)} ms ${((100 * us) / total).toFixed(1).padStart(5)} %  ${key}\n`,
    );
  }
};
process.stdout.write(`total sampled ${(total / 1000).toFixed(0)} ms\n`);
print('self time by module', modules);
print('self time by function', functions);
