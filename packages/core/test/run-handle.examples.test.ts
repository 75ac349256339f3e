/**
 * Runs the examples of docs/core-api.md against real plugins (local transport) and checks that
 * the doc quotes them verbatim, so the guide's code cannot drift from the tested code.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Rune } from '../src/index.js';
import { runAndWatch, startFromBody, stopOnFirstFailure } from './examples/run-handle.examples.js';
import { createFleetProbe, type FleetProbe, probeRequest } from './fleet-probe.js';

const read = (path: string): string => readFileSync(new URL(path, import.meta.url), 'utf8');

let fleet: FleetProbe;
let rune: Rune;

beforeAll(() => {
  fleet = createFleetProbe();
  ({ rune } = fleet);
});
afterAll(() => fleet.close());

const probe = probeRequest;

describe('docs/core-api.md: the run handle examples', () => {
  it('runAndWatch prints every event and returns the outcome', async () => {
    const lines: string[] = [];
    const outcome = await runAndWatch(rune, probe(['ok01', 'fail01']), (line) => lines.push(line));
    expect(outcome.status).toBe('partial');
    expect(lines[0]).toBe(`run ${outcome.id} (trace ${outcome.summary.trace_id}): 2 node(s)`);
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^#\d+ ok01 started$/),
        expect.stringMatching(/^#\d+ ok01 success$/),
        expect.stringMatching(/^#\d+ fail01 failure$/),
      ]),
    );
    expect(lines.at(-1)).toBe('#6 partial, exit 1');
    expect(process.listenerCount('SIGINT')).toBe(0);
  });

  it('stopOnFirstFailure cancels the rest of the run', async () => {
    const outcome = await stopOnFirstFailure(
      rune,
      probe(['fail01', 'slow01', 'ok01', 'ok02'], { concurrency: 1 }),
    );
    expect(outcome.status).toBe('cancelled');
    expect(outcome.summary.exit_code).toBe(130);
    expect(outcome.nodes[0]?.error?.code).toBe('PLUGIN_FAILED');
    // Whatever had started when the cancel arrived was killed; the rest never started.
    expect(outcome.nodes.slice(1).map((node) => node.error?.code)).toEqual([
      'RUN_CANCELLED',
      'RUN_CANCELLED',
      'RUN_CANCELLED',
    ]);
  });

  it('startFromBody turns selector strings and a typed timeout into a running handle', async () => {
    const handle = await startFromBody(rune, {
      action: 'fleet-probe',
      nodes: ['ok01,ok02', 'ok01'],
      transport: 'local',
      timeout: '60s',
      confirm: true,
    });
    expect(handle.plan.timeout_ms).toBe(60_000);
    const outcome = await handle.result;
    expect(outcome.nodes.map((node) => [node.node, node.status])).toEqual([
      ['ok01', 'success'],
      ['ok02', 'success'],
    ]);
  });

  it('docs/core-api.md quotes the examples verbatim', () => {
    const source = read('./examples/run-handle.examples.ts');
    const region = /\/\/ #region run-handle\n([\s\S]*?)\/\/ #endregion run-handle\n/.exec(source);
    expect(region, 'the #region run-handle markers').not.toBeNull();
    const guide = read('../../../docs/core-api.md');
    expect(
      guide.includes(`\`\`\`ts\n${region?.[1] ?? ''}\`\`\``),
      'copy the #region run-handle of test/examples/run-handle.examples.ts into docs/core-api.md',
    ).toBe(true);
  });
});
