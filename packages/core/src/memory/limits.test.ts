/**
 * The heap limits of limits.ts, in real Node processes of their own (V8 flags are process-wide):
 * setHeapGrowth() set after start-up does bound how far an old generation grows under a stream of
 * promoted garbage, and its argument is checked. Runs the compiled module
 * (dist/memory/reclaim.js): build @rune/core first.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MAX_HEAP_GROWTH_PERCENT, setHeapGrowth, WORKER_RESOURCE_LIMITS } from './reclaim.js';

const compiled = fileURLToPath(new URL('../../dist/memory/reclaim.js', import.meta.url));

/**
 * ~45 MB that stays (30 000 objects of ~1 KB, and the last 20 000 "requests" of ~0.7 KB, each
 * living long enough to be promoted, then dying in the old generation); the old space's largest
 * committed size, in MB.
 */
const CHILD = `
import { getHeapSpaceStatistics } from 'node:v8';
const { setHeapGrowth } = await import(process.argv[1]);
setHeapGrowth(process.argv[2] === 'off' ? null : Number(process.argv[2]));
const old = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space').space_size;
const live = Array.from({ length: 30000 }, (_, i) => ({ i, s: String(i).padEnd(1000, 'x') }));
const recent = new Array(20000);
let peak = 0;
for (let n = 0; n < 600000; n++) {
  recent[n % recent.length] = { n, body: String(n).padEnd(600, 'y'), parts: [n, n + 1, { n }] };
  if (n % 1000 === 0) peak = Math.max(peak, old());
}
process.stdout.write(String(live.length > 0 ? Math.round(peak / 1048576) : 0));
`;

const peakOldMb = (growth: string): number =>
  Number(
    execFileSync(process.execPath, ['--input-type=module', '-e', CHILD, compiled, growth], {
      encoding: 'utf8',
    }),
  );

describe('heap limits', () => {
  it('setHeapGrowth(30) after start-up keeps the old generation near what is live; V8 alone lets it grow to ~3x', () => {
    const bounded = peakOldMb('30');
    const unbounded = peakOldMb('off');
    // ~45 MB live: 30% more and V8's minimum step, with room for what is not yet swept.
    expect(bounded).toBeLessThan(80);
    expect(bounded).toBeLessThan(unbounded * 0.75);
  });

  it('setHeapGrowth takes 1-300 (percent) or null; the workers get a young generation of 8 MB', () => {
    for (const bad of [0, -5, 1.5, MAX_HEAP_GROWTH_PERCENT + 1, Number.NaN]) {
      expect(() => setHeapGrowth(bad)).toThrow(RangeError);
    }
    expect(WORKER_RESOURCE_LIMITS).toEqual({ maxYoungGenerationSizeMb: 8 });
    expect(Object.isFrozen(WORKER_RESOURCE_LIMITS)).toBe(true);
  });
});
