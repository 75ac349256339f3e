/**
 * A Rune on the local transport with the fleet-probe plugin installed, whose runs write their pids
 * to `pidDir`: the set-up of the fleet, run-handle and doc-example tests.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createLocalTransport, createRune, type PlanRequest, type Rune } from '../src/index.js';
import { createFixtureEnv, type FixtureEnv } from './fixture-env.js';

const PROBE = new URL('./fixtures/fleet/fleet-probe.sh', import.meta.url).pathname;

/** The fixture: its environment, the Rune, the pid directory, and one call to tear it down. */
export interface FleetProbe {
  fx: FixtureEnv;
  rune: Rune;
  pidDir: string;
  close(): Promise<void>;
}

/** Creates the fixture (call in `beforeAll`, close in `afterAll`). */
export function createFleetProbe(): FleetProbe {
  const fx = createFixtureEnv();
  const pidDir = join(fx.root, 'pids');
  mkdirSync(pidDir);
  copyFileSync(PROBE, join(fx.pluginDir, 'fleet-probe.sh'));
  const rune = createRune({
    env: fx.env,
    home: fx.home,
    cwd: fx.root,
    pluginSources: [{ kind: 'user', dir: fx.pluginDir }],
    transports: {
      local: () =>
        createLocalTransport({
          env: { ...fx.env, RUNE_FLEET_PIDDIR: pidDir },
          killGraceMs: 300,
          isLocalNode: () => true,
        }),
    },
  });
  return {
    fx,
    rune,
    pidDir,
    async close() {
      await rune.close();
      fx.cleanup();
    },
  };
}

/** A fleet-probe request for local nodes named `nodes`. */
export const probeRequest = (nodes: string[], extra: Partial<PlanRequest> = {}): PlanRequest => ({
  action: 'fleet-probe',
  selections: nodes,
  transport: 'local',
  timeout: 60_000,
  confirmDangerous: true,
  ...extra,
});
