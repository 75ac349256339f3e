/**
 * A plugin edited under a running `rune serve` (real server, real HTTP, the local transport and
 * a real bash plugin in the user's plugin directory): core's registry notices the changed file
 * (a stat check before each plan), so the approval step plans the request with the plugin's new
 * sha256 and an approval bound to the old one is refused with APPROVAL_MISMATCH — no restart.
 */
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createToken } from '../src/index.js';
import {
  createTestHome,
  FIXTURE_PLUGINS,
  startTestServer,
  type TestHome,
  type TestServer,
  waitForRun,
} from './harness.js';

type Json = Record<string, unknown>;

let home: TestHome;
let t: TestServer;
let admin: string;
let pluginFile: string;

beforeAll(async () => {
  home = createTestHome();
  // The user's plugin directory ($XDG_DATA_HOME/rune/plugins): a copy of the `mark` fixture as
  // `tweak`, so the test can edit it.
  const dir = join(home.env.XDG_DATA_HOME as string, 'rune', 'plugins');
  mkdirSync(dir, { recursive: true });
  pluginFile = join(dir, 'tweak.sh');
  copyFileSync(join(FIXTURE_PLUGINS, 'mark.sh'), pluginFile);
  chmodSync(pluginFile, 0o755);
  const manifest = JSON.parse(readFileSync(join(FIXTURE_PLUGINS, 'mark.manifest.json'), 'utf8'));
  writeFileSync(
    join(dir, 'tweak.manifest.json'),
    JSON.stringify({ ...manifest, name: 'tweak', entrypoint: 'tweak.sh' }),
  );
  t = await startTestServer(home);
  admin = (await createToken(t.server.store, { name: 'lead', role: 'admin', expires: '1d' })).token;
});
afterAll(async () => {
  await t?.close();
  home?.remove();
});

const hold = async (): Promise<string> => {
  const { run } = await t.server.manager.submit(
    { action: 'tweak', targets: ['localhost'] },
    {
      principal: 'token:ops',
      source: 'api',
      subject: { principal: 'token:ops', subjects: ['token:ops'], roles: ['operator'] },
    },
    { requireApproval: { reason: 'four eyes for tweak' } },
  );
  expect(run.status).toBe('awaiting_approval');
  return run.id;
};

const approve = async (id: string): Promise<{ status: number; body: Json }> => {
  const response = await t.request(`/v1/runs/${id}/approve`, { token: admin, json: {} });
  return { status: response.status, body: (await response.json()) as Json };
};

it('an approval bound to the old plugin sha256 is refused once the plugin file changed', async () => {
  // Control: unchanged, the approval starts the run.
  const unchanged = await hold();
  expect(await approve(unchanged)).toMatchObject({ status: 200, body: { state: 'approved' } });
  expect((await waitForRun(t, unchanged)).status).toBe('succeeded');

  const id = await hold();
  const bound = ((await (await t.request(`/v1/runs/${id}/approval`)).json()) as Json)
    .binding_sha256;
  expect(typeof bound).toBe('string');
  // Edited in place, as an operator fixing a plugin on the control node would.
  writeFileSync(pluginFile, `${readFileSync(pluginFile, 'utf8')}# edited while held\n`);

  const refused = await approve(id);
  expect(refused.status).toBe(409);
  expect((refused.body.error as Json).code).toBe('APPROVAL_MISMATCH');
  expect((refused.body.error as Json).message).toMatch(/plugin_sha256/);
  const document = (await (await t.request(`/v1/runs/${id}`)).json()) as Json;
  expect(document.status).toBe('failed');
  expect((document.error as Json).code).toBe('APPROVAL_MISMATCH');

  // A new request plans with the edited plugin and can be approved and run.
  const fresh = await hold();
  expect(await approve(fresh)).toMatchObject({ status: 200, body: { state: 'approved' } });
  expect((await waitForRun(t, fresh)).status).toBe('succeeded');
});
