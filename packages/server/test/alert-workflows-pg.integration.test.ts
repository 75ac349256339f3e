/**
 * One alert episode is one workflow run across instances: two `rune serve` instances on one real
 * PostgreSQL store (started by the test on loopback) get the same Alertmanager notification at
 * the same moment. Each records and decides it; the claim in `alert_workflow_runs` (a unique key,
 * migration 0012_workflow_approvals) lets exactly one of them start the workflow, the other is
 * `deduplicated` with the winner's workflow run. Without the key both start one (tried).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuneServer, createToken, type RuneServer } from '../src/index.js';
import { amPayload, postAm } from './alert-server.js';
import { createTestHome, type TestHome } from './harness.js';
import { postgresAvailable, startPostgres, type TestPostgres } from './postgres.js';

const AM_TOKEN = 'pg-alert-workflow-token-0123456789';

describe.skipIf(!postgresAvailable)('alert-started workflows on PostgreSQL', () => {
  let pg: TestPostgres | undefined;
  let home: TestHome | undefined;
  const servers: { server: RuneServer; url: string }[] = [];
  let token = '';

  beforeAll(async () => {
    pg = await startPostgres();
    const url = await pg.createDatabase('alert_workflows');
    home = createTestHome();
    writeFileSync(join(home.dir, 'inventory.yaml'), 'nodes:\n  web1: { address: localhost }\n');
    writeFileSync(join(home.dir, 'am.token'), `${AM_TOKEN}\n`, { mode: 0o600 });
    const workflows = join(home.dir, 'workflows');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(workflows);
    writeFileSync(
      join(workflows, 'note.yaml'),
      [
        'schema_version: workflow_v1',
        'name: note',
        'inputs:',
        '  nodes: { type: array, required: true }',
        'steps:',
        '  - id: note',
        '    action: noop',
        '    nodes: ${{ inputs.nodes }}',
        '',
      ].join('\n'),
    );
    const rules = join(home.dir, 'alert-rules.yaml');
    writeFileSync(
      rules,
      `schema_version: rune-alert-rules/v1
receivers:
  am: { kind: alertmanager, bearer_token: "file:${join(home.dir, 'am.token')}" }
rules:
  - name: note
    match: { labels: { alertname: Note } }
    workflow: note
    throttle: { group_by: fingerprint }
`,
    );
    writeFileSync(
      home.configFile,
      readFileSync(home.configFile, 'utf8')
        .replace(/^store = .*$/m, `store = ${JSON.stringify(url)}`)
        .replace(
          '[core]\n',
          `[core]\ninventory = ${JSON.stringify(join(home.dir, 'inventory.yaml'))}\n`,
        )
        .replace(
          '[server]\n',
          `[server]\nalert_rules = ${JSON.stringify(rules)}\nworkflows = ${JSON.stringify(workflows)}\n`,
        ),
    );
    for (let index = 0; index < 2; index++) {
      const server = await createRuneServer({
        configFile: home.configFile,
        env: home.env,
        port: 0,
      });
      servers.push({ server, url: await server.listen() });
    }
    token = (
      await createToken(servers[0]?.server.store as RuneServer['store'], {
        name: 'reader',
        role: 'viewer',
        expires: '1h',
      })
    ).token;
  }, 120_000);

  afterAll(async () => {
    for (const { server } of servers) await server.close().catch(() => undefined);
    await pg?.stop();
    home?.remove();
  });

  const post = (url: string, fingerprint: string, startsAt: string) =>
    postAm(
      { url },
      amPayload(
        [{ labels: { alertname: 'Note', instance: 'web1:9100' }, startsAt, fingerprint }],
        `{}:{alertname="Note",fp="${fingerprint}"}`,
      ),
      'am',
      `Bearer ${AM_TOKEN}`,
    );

  const decided = async (url: string, id: string): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const alert = (await (
        await fetch(`${url}/v1/alerts/${id}`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as Record<string, unknown>;
      if (alert.outcome !== 'received') return alert;
      if (Date.now() > deadline) throw new Error(`alert ${id} was never decided`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  it('the same notification to two instances at once is one workflow run', async () => {
    const fingerprints = ['pg-wf-1', 'pg-wf-2', 'pg-wf-3', 'pg-wf-4', 'pg-wf-5'];
    const startsAt = new Date().toISOString();
    const [a, b] = servers as [(typeof servers)[0], (typeof servers)[0]];
    const accepted = await Promise.all(
      fingerprints.flatMap((fingerprint) => [
        post(a.url, fingerprint, startsAt),
        post(b.url, fingerprint, startsAt),
      ]),
    );
    const ids = await Promise.all(
      accepted.map(async (response) => {
        expect(response.status).toBe(202);
        return ((await response.json()) as { alert_ids: string[] }).alert_ids[0] as string;
      }),
    );
    const outcomes = await Promise.all(ids.map((id) => decided(a.url, id)));
    const db = a.server.store.db;
    for (const [index] of fingerprints.entries()) {
      const pair = [outcomes[2 * index], outcomes[2 * index + 1]].map((alert) => alert?.outcome);
      expect(pair.sort()).toEqual(['deduplicated', 'ran']);
    }
    // One claim and one workflow run per episode; every workflow run was claimed.
    const claims = await db.selectFrom('alert_workflow_runs').selectAll().execute();
    expect(claims).toHaveLength(fingerprints.length);
    // Readiness: an alert is marked `ran` when its workflow run is claimed; the workflow submits
    // its step's run after that. Once every workflow run has ended, no more runs can come.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const rows = await db.selectFrom('workflow_runs').select('status').execute();
      if (rows.length >= claims.length && rows.every((row) => row.status !== 'running')) break;
      if (Date.now() > deadline)
        throw new Error(`workflow runs never ended: ${JSON.stringify(rows)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const workflowRuns = await db.selectFrom('workflow_runs').select('id').execute();
    expect(workflowRuns.map((row) => row.id).sort()).toEqual(
      claims.map((claim) => claim.workflow_run_id).sort(),
    );
    const runs = await db
      .selectFrom('runs')
      .select('id')
      .where('source', '=', 'workflow')
      .execute();
    expect(runs).toHaveLength(fingerprints.length);
  }, 120_000);
});
