#!/usr/bin/env node
// Audit append benchmark (never part of the test suite). See bench/README.md, "rune serve".
//
//   node bench/audit-append.mjs [--baseline DIR] [--seconds 5] [--rate 200] [--busy 0.4]
//
// One file audit sink (signed, a fresh log in a temporary directory) takes --rate appends per
// second for --seconds while this thread's event loop is kept busy --busy of the time (1 ms
// slices of CPU: what 200 requests per second cost rune serve's main thread), so every
// event-loop turn an append needs waits like it would in the server. Prints, per sink, the
// append latency (p50/p99), the batches, and what one batch costs this thread: its
// thread-pool requests (file system) and signatures, counted with async_hooks in a separate
// pass. --baseline DIR: the same against another build's @rune/core (DIR holds packages/ with
// their dist/), side by side in one run.
import { createHook } from 'node:async_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

// @rune/core is not a dependency of the repository root: the built package, as bench/audit-seal.mjs.
const root = new URL('..', import.meta.url).pathname;
const current = await import(pathToFileURL(join(root, 'packages/core/dist/index.js')).href);

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    seconds: { type: 'string', default: '5' },
    rate: { type: 'string', default: '200' },
    busy: { type: 'string', default: '0.4' },
  },
});
const seconds = Number(values.seconds);
const rate = Number(values.rate);
const busy = Number(values.busy);

const entry = (index) => ({
  event: 'dry-run',
  operator: 'token:bench',
  action: 'noop',
  plugin: null,
  node: `node-${index}`,
  transport: 'local',
  status: 'planned',
  error_code: null,
  error_message: null,
  duration_ms: null,
  trace_id: 'a'.repeat(32),
  params: { n: index },
  metadata: {},
});

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

/** Keeps the event loop busy `busy` of the time in 1 ms slices until `until` (ms). */
function keepBusy(until) {
  return new Promise((resolve) => {
    const slice = () => {
      const now = performance.now();
      if (now >= until) return resolve();
      while (performance.now() - now < 1);
      setTimeout(slice, (1 - busy) / busy);
    };
    slice();
  });
}

async function measure(name, core, writer) {
  const dir = mkdtempSync(join(tmpdir(), 'rune-bench-audit-'));
  const sink = core.createFileAuditSink({
    path: join(dir, 'audit.jsonl'),
    host: 'bench',
    keyFile: join(dir, 'key.pem'),
    ...(writer === undefined ? {} : { writer }),
  });
  await sink.append(entry(0));
  // Pass 1: what one batch costs this thread (async_hooks slows promises: not timed).
  const counts = {};
  const hook = createHook({
    init(_id, type) {
      if (/^(FSREQ|FILEHANDLE|SIGNREQUEST)/.test(type)) counts[type] = (counts[type] ?? 0) + 1;
    },
  });
  hook.enable();
  for (let round = 0; round < 20; round++) {
    await Promise.all([sink.append(entry(round)), sink.append(entry(round))]);
  }
  hook.disable();
  // Pass 2: latency under a busy event loop.
  const latencies = [];
  const end = performance.now() + seconds * 1000;
  const busyDone = keepBusy(end);
  const appends = [];
  let index = 0;
  await new Promise((resolve) => {
    const tick = () => {
      const due = Math.floor(((performance.now() - (end - seconds * 1000)) / 1000) * rate);
      while (index < due) {
        const started = performance.now();
        index++;
        appends.push(
          sink.append(entry(index)).then(() => latencies.push(performance.now() - started)),
        );
      }
      if (performance.now() < end) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  await Promise.all(appends);
  await busyDone;
  await sink.close?.();
  rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  const threadPool = Object.entries(counts)
    .filter(([type]) => type !== 'SIGNREQUEST')
    .reduce((sum, [, count]) => sum + count, 0);
  return {
    sink: name,
    appends: latencies.length,
    'p50 ms': Number(percentile(latencies, 0.5).toFixed(2)),
    'p99 ms': Number(percentile(latencies, 0.99).toFixed(2)),
    'thread-pool requests / batch': threadPool / 20,
    'signatures on this thread / batch': (counts.SIGNREQUEST ?? 0) / 20,
  };
}

const rows = [];
if (values.baseline !== undefined) {
  const baseline = await import(
    pathToFileURL(join(values.baseline, 'packages/core/dist/index.js')).href
  );
  rows.push(await measure('baseline (inline)', baseline, undefined));
}
rows.push(await measure('inline (CLI)', current, undefined));
rows.push(await measure('writer thread (rune serve)', current, 'thread'));
const load = (await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
console.log(`\nbusy ${busy}, ${rate} appends/s for ${seconds} s, load ${load}\n`);
console.log(`| ${Object.keys(rows[0]).join(' | ')} |`);
console.log(
  `|${Object.keys(rows[0])
    .map(() => ' --- |')
    .join('')}`,
);
for (const row of rows) console.log(`| ${Object.values(row).join(' | ')} |`);
