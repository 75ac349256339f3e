// Benchmark probe, never loaded by RUNE itself: `NODE_OPTIONS="--require bench/lib/heap-probe.cjs"`
// with RUNE_HEAP_PROBE=<dir>. Node loads --require modules in every thread (main and workers),
// so each thread polls <dir>/trigger every 200 ms (an unref'd timer) and, when its mtime changes,
// writes <dir>/<threadId>.json: v8.getHeapStatistics(), the heap spaces, its resource limits and
// a name (main, store, audit, or the worker's script). bench/serve-rss.mjs --breakdown reads them.
'use strict';
const { RUNE_HEAP_PROBE: dir } = process.env;
if (dir) {
  const fs = require('node:fs');
  const path = require('node:path');
  const v8 = require('node:v8');
  const wt = require('node:worker_threads');
  const trigger = path.join(dir, 'trigger');
  const nameOf = () => {
    if (wt.isMainThread) return 'main';
    const data = wt.workerData;
    if (data && typeof data === 'object') {
      if ('lockToken' in data) return 'audit';
      if ('path' in data) return 'store';
    }
    return `worker-${wt.threadId}`;
  };
  let seen = 0;
  const timer = setInterval(() => {
    let mtime;
    try {
      mtime = fs.statSync(trigger).mtimeMs;
    } catch {
      return;
    }
    if (mtime === seen) return;
    seen = mtime;
    const out = {
      thread: nameOf(),
      threadId: wt.threadId,
      heap: v8.getHeapStatistics(),
      spaces: Object.fromEntries(
        v8
          .getHeapSpaceStatistics()
          .map((s) => [
            s.space_name,
            { size: s.space_size, used: s.space_used_size, physical: s.physical_space_size },
          ]),
      ),
      resourceLimits: wt.resourceLimits,
      written: Date.now(),
    };
    fs.writeFileSync(path.join(dir, `${wt.threadId}.json`), JSON.stringify(out));
  }, 200);
  timer.unref();
}
