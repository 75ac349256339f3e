/**
 * Several `rune serve` instances on one real PostgreSQL, with the real sshd fleet: takeover after
 * `kill -9` within the lease with no node run twice (counted on the node: the `mark` plugin
 * appends one line per execution), SSE of a run followed on another instance, idempotent retries
 * landing on different instances, concurrent submissions for one busy node from different
 * instances (never overlapping on the node), strict FIFO per node, a PostgreSQL restart mid-run,
 * the drain of one instance while the others serve, and record shipping from one instance per sink
 * at a time (a real loopback HEC receiver) with its hand-over after `kill -9`.
 *
 * Every test can run alone (`-t`): the shared set-up is three instances, the fleet and the
 * database; a test that kills or drains an instance starts its own, and the audit tests make the
 * records they check.
 *
 * The instances are the built CLI (`npx -y pnpm@10.34.9 build` first), so `kill -9` is real. A
 * build older than the source fails the set-up: the set-up migrates the database with the
 * source's migrations, and the built instances refuse a schema newer than theirs.
 * Readiness is the plugin's own marker line on the node or the store's state, never a sleep.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isProcessAlive } from '@rune/transport/testing';
import { type SshdFleet, startSshdFleet } from '@rune/transport-ssh/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, openRunStore } from '../src/index.js';
import { HEC_TOKEN, startHec } from '../src/testing/index.js';
import { amPayload } from './alert-server.js';
import { createTestHome, fleetInventory, serveListening, type TestHome, until } from './harness.js';
import { postgresAvailable, startPostgres, type TestPostgres } from './postgres.js';

type Json = Record<string, unknown>;
const CLI = new URL('../../../apps/cli/bin/rune.js', import.meta.url).pathname;
/** The lease of the tests' instances: takeover must happen within it. */
const LEASE_MS = 6_000;
const AM_TOKEN = 'ha-alertmanager-token-0123456789';

interface Instance {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

const children = new Set<ChildProcess>();
/** Every instance started, for the log dump (RUNE_HA_LOG=file) when debugging a failure. */
const started: Instance[] = [];

/** A `rune serve` child process on the shared store; resolves once it listens. */
function serve(home: TestHome, configFile = home.configFile): Promise<Instance> {
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--config', configFile, '--listen', '127.0.0.1:0'],
    { env: home.env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.add(child);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  const { url, stderr } = serveListening(child);
  return url.then((listening) => {
    const instance = { child, url: listening, stderr, exited };
    started.push(instance);
    return instance;
  });
}

async function kill9(instance: Instance): Promise<void> {
  instance.child.kill('SIGKILL');
  await instance.exited;
}

/** The executions of `trace` on `node`, as the node recorded them. */
function executions(dir: string, trace: string, node: string): { start: number; end?: number }[] {
  const file = join(dir, `${trace}-${node}.runs`);
  if (!existsSync(file)) return [];
  const runs: { start: number; end?: number }[] = [];
  for (const line of readFileSync(file, 'utf8').trim().split('\n')) {
    const [kind, ns] = line.split(' ');
    if (kind === 'start') runs.push({ start: Number(ns) });
    else if (kind === 'end' && runs.length > 0) (runs.at(-1) as { end?: number }).end = Number(ns);
  }
  return runs;
}

describe.skipIf(!postgresAvailable)('several instances on one PostgreSQL', () => {
  let fleet: SshdFleet;
  let pg: TestPostgres;
  let home: TestHome;
  let token: string;
  let leadToken: string;
  let markers: string;
  const instances: Instance[] = [];

  const call = async (
    instance: Instance,
    path: string,
    json?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Json }> => {
    const response = await fetch(`${instance.url}${path}`, {
      method: json === undefined ? 'GET' : 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        ...(json === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(json === undefined ? {} : { body: JSON.stringify(json) }),
    });
    return { status: response.status, body: (await response.json()) as Json };
  };
  const mark = (node: string, holdMs: number, extra: Json = {}) => ({
    action: 'mark',
    targets: [node],
    params: { hold_ms: holdMs, marker_dir: markers },
    ...extra,
  });
  const waitEnd = async (instance: Instance, id: string): Promise<Json> =>
    until(
      `run ${id} to end`,
      async () => {
        const { body } = await call(instance, `/v1/runs/${id}?wait=10s`);
        return ['queued', 'running', 'awaiting_approval'].includes(body.status as string)
          ? undefined
          : body;
      },
      60_000,
    );

  beforeAll(async () => {
    fleet = await startSshdFleet(2);
    pg = await startPostgres();
    home = createTestHome();
    const inventory = fleetInventory(home, fleet);
    const config = readFileSync(home.configFile, 'utf8')
      .replace('[core]\n', `[core]\ninventory = ${JSON.stringify(inventory)}\n`)
      .replace(/^store = .*$/m, `store = ${JSON.stringify(pg.url)}\nlease = "${LEASE_MS / 1000}s"`);
    writeFileSync(
      home.configFile,
      `${config}\n[ssh]\nidentity_files = [${JSON.stringify(fleet.clientKey.privateKeyFile)}]\nknown_hosts_files = [${JSON.stringify(fleet.knownHostsFile)}]\nuse_ssh_config = false\nuse_agent = false\nremote_cache_dir = ${JSON.stringify(fleet.hosts[0]?.remoteCacheDir)}\n`,
    );
    markers = join(home.dir, 'markers');
    mkdirSync(markers);
    // Operators may do everything, except that check-disk waits for a lead's approval.
    const policy = join(home.dir, 'policy.yaml');
    writeFileSync(
      policy,
      `version: rune-policy/v1
roles:
  operator:
    rules:
      - { id: ops-all, verbs: [view, dry-run, run, cancel], actions: ["*"], nodes: ["@all"] }
      - id: ops-check-disk-approved
        verbs: [run]
        actions: [check-disk]
        nodes: ["@all"]
        require_approval: true
  lead:
    rules:
      - { id: leads-approve, verbs: [view, approve], actions: ["*"], nodes: ["@all"] }
  alert-responder:
    rules:
      - { id: alerts-mark, verbs: [view, run], actions: [mark], nodes: ["@all"] }
bindings:
  - { subjects: ["service:alerts"], roles: [alert-responder] }
`,
    );
    // One Alertmanager receiver: the same notification sent to two instances is one run.
    const amToken = join(home.dir, 'am.token');
    writeFileSync(amToken, `${AM_TOKEN}\n`, { mode: 0o600 });
    const rules = join(home.dir, 'alert-rules.yaml');
    writeFileSync(
      rules,
      `schema_version: rune-alert-rules/v1
receivers:
  am: { kind: alertmanager, bearer_token: "file:${amToken}" }
rules:
  - name: mark-node
    match: { labels: { alertname: MarkNode } }
    action: mark
    params: { hold_ms: 300, marker_dir: ${JSON.stringify(markers)} }
    throttle: { group_by: fingerprint }
`,
    );
    writeFileSync(
      home.configFile,
      readFileSync(home.configFile, 'utf8').replace(
        '[server]\n',
        `[server]\npolicy = ${JSON.stringify(policy)}\nalert_rules = ${JSON.stringify(rules)}\n`,
      ),
    );
    const store = await openRunStore(pg.url);
    token = (await createToken(store, { name: 'pager', role: 'operator', expires: '1h' })).token;
    leadToken = (
      await createToken(store, {
        name: 'lead',
        role: 'lead',
        expires: '1h',
        knownRoles: ['operator', 'lead'],
      })
    ).token;
    await store.close();
    for (let index = 0; index < 3; index++) instances.push(await serve(home));
  }, 120_000);

  afterAll(async () => {
    const logFile = process.env.RUNE_HA_LOG;
    if (logFile !== undefined) {
      writeFileSync(
        logFile,
        started.map((instance) => `== ${instance.url}\n${instance.stderr()}`).join('\n'),
      );
    }
    for (const child of children) child.kill('SIGKILL');
    await Promise.all(instances.map((instance) => instance.exited));
    await pg?.stop();
    await fleet?.stop();
    home?.remove();
  });

  it('rune db migrate: a fresh database is migrated, again is a no-op, a newer schema is refused untouched', async () => {
    const url = await pg.createDatabase('migrate_me');
    const migrate = () => {
      const result = spawnSync(
        process.execPath,
        [CLI, 'db', 'migrate', '--config', home.configFile, '--store', url, '-o', 'json'],
        {
          env: home.env,
          encoding: 'utf8',
        },
      );
      return { status: result.status, out: result.stdout };
    };
    const first = migrate();
    expect(first.status).toBe(0);
    const report = JSON.parse(first.out) as { applied: string[]; schema: string[]; engine: string };
    expect(report.engine).toBe('postgres');
    expect(report.applied).toEqual(report.schema);
    expect(report.schema).toContain('0005_cluster');
    const again = migrate();
    expect(JSON.parse(again.out)).toMatchObject({ applied: [] });
    const store = await openRunStore(url);
    await sql`insert into kysely_migration (name, timestamp) values ('9999_future', '2030-01-01')`.execute(
      store.db,
    );
    await store.close();
    const refused = migrate();
    expect(refused.status).toBe(2);
    expect(refused.out).toContain('INVALID_CONFIG');
    expect(refused.out).toContain('9999_future');
  }, 60_000);

  it('an SSE client of one instance follows a run executing on another', async () => {
    const [a, b] = instances as [Instance, Instance];
    const accepted = await call(a, '/v1/runs', mark('node2', 800));
    expect(accepted.status).toBe(202);
    const response = await fetch(`${b.url}/v1/runs/${accepted.body.id as string}/events`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    const text = await response.text();
    const types = [...text.matchAll(/^event: (.+)$/gm)].map((match) => match[1]);
    expect(types[0]).toBe('run-start');
    expect(types).toContain('node-end');
    expect(types.at(-1)).toBe('run-end');
    expect(text).toMatch(/"status":"succeeded"/);
  }, 60_000);

  it('a run accepted on one instance and approved on another starts there and succeeds', async () => {
    const [a, b, c] = instances as [Instance, Instance, Instance];
    const accepted = await call(a, '/v1/runs', { action: 'check-disk', targets: ['node1'] });
    expect(accepted.status).toBe(202);
    expect(accepted.body.status).toBe('awaiting_approval');
    const id = accepted.body.id as string;
    const self = await call(c, `/v1/runs/${id}/approve`, { comment: 'mine' });
    expect((self.body.error as Json).code).toBe('APPROVAL_SELF_FORBIDDEN');
    const vote = await call(
      b,
      `/v1/runs/${id}/approve`,
      { comment: 'checked' },
      {
        authorization: `Bearer ${leadToken}`,
      },
    );
    expect(vote.status, JSON.stringify(vote.body)).toBeLessThan(300);
    const ended = await waitEnd(c, id);
    expect(ended.status).toBe('succeeded');
  }, 90_000);

  it('an idempotent retry landing on another instance returns the same run; another body is refused', async () => {
    const [a, b, c] = instances as [Instance, Instance, Instance];
    const body = { action: 'noop', targets: ['node1'] };
    const key = { 'idempotency-key': 'retry-across-instances' };
    // The first attempt and its retries arrive at three instances at once.
    const answers = await Promise.all(
      [a, b, c].map((instance) => call(instance, '/v1/runs', body, key)),
    );
    const ids = new Set(answers.map((answer) => answer.body.id));
    expect(ids.size).toBe(1);
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 200, 202].sort());
    const later = await call(c, '/v1/runs', body, key);
    expect(later.body.id).toBe(answers[0]?.body.id);
    const other = await call(b, '/v1/runs', { ...body, params: { x: 1 } }, key);
    expect(other.status).toBe(409);
    expect((other.body.error as Json).code).toBe('IDEMPOTENCY_KEY_REUSED');
  }, 60_000);

  it('concurrent submissions for one busy node from different instances never overlap on the node; refuse sees a run elsewhere', async () => {
    const [a, b, c] = instances as [Instance, Instance, Instance];
    const accepted = await Promise.all(
      [a, b, c, a, b, c].map((instance) => call(instance, '/v1/runs', mark('node1', 300))),
    );
    expect(accepted.every((answer) => answer.status === 202)).toBe(true);
    const ended = await Promise.all(accepted.map((answer) => waitEnd(a, answer.body.id as string)));
    expect(ended.map((run) => run.status)).toEqual(Array(6).fill('succeeded'));
    const spans = accepted
      .flatMap((answer) => executions(markers, answer.body.trace_id as string, 'node1'))
      .sort((x, y) => x.start - y.start);
    expect(spans).toHaveLength(6);
    for (let index = 1; index < spans.length; index++) {
      expect(spans[index]?.start).toBeGreaterThanOrEqual(
        spans[index - 1]?.end ?? Number.POSITIVE_INFINITY,
      );
    }

    const holding = await call(a, '/v1/runs', mark('node1', 5_000));
    await until('the holder to start on node1', async () =>
      executions(markers, holding.body.trace_id as string, 'node1').length > 0 ? true : undefined,
    );
    const refused = await call(b, '/v1/runs', mark('node1', 1, { options: { if_busy: 'refuse' } }));
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({
      code: 'NODE_BUSY',
      details: { nodes: ['node1'], run_ids: [holding.body.id] },
    });
    await call(c, `/v1/runs/${holding.body.id as string}/cancel`, {});
    // The cancel was forwarded to the owner (a) and ended the run there.
    expect((await waitEnd(c, holding.body.id as string)).status).toBe('cancelled');
  }, 120_000);

  it('FIFO across instances: runs queued for a busy node start in submission order, whichever instance accepted them', async () => {
    const [a, b, c] = instances as [Instance, Instance, Instance];
    const holder = await call(a, '/v1/runs', mark('node2', 1_500));
    await until('the holder to start on node2', async () =>
      executions(markers, holder.body.trace_id as string, 'node2').length > 0 ? true : undefined,
    );
    // One after the other, so that the submission order is known; the holder's instance (a)
    // accepts some of them, and it would start its own first if the order were per instance.
    const order: Json[] = [];
    for (const instance of [b, a, c, a, b, c]) {
      const accepted = await call(instance, '/v1/runs', mark('node2', 100));
      expect(accepted.status).toBe(202);
      order.push(accepted.body);
    }
    for (const run of order) expect((await waitEnd(a, run.id as string)).status).toBe('succeeded');
    const starts = order.map(
      (run) => executions(markers, run.trace_id as string, 'node2')[0]?.start ?? Number.NaN,
    );
    expect(starts.every((start) => Number.isFinite(start))).toBe(true);
    expect([...starts].sort((x, y) => x - y)).toEqual(starts);
  }, 120_000);

  it('FIFO is strict: a later run whose nodes are all free waits behind an earlier run blocked on another node, on other instances', async () => {
    const [a, b, c] = instances as [Instance, Instance, Instance];
    const holder = await call(a, '/v1/runs', mark('node1', 2_000));
    await until('the holder to start on node1', async () =>
      executions(markers, holder.body.trace_id as string, 'node1').length > 0 ? true : undefined,
    );
    // Earlier: both nodes, blocked by node1. Later: node2 alone, which is free all along.
    const both = await call(b, '/v1/runs', {
      ...mark('node1', 300),
      targets: ['node1', 'node2'],
    });
    expect(both.status).toBe(202);
    const later = await call(c, '/v1/runs', mark('node2', 1));
    expect(later.status).toBe(202);
    for (const run of [holder, both, later]) {
      expect((await waitEnd(a, run.body.id as string)).status).toBe('succeeded');
    }
    const held = executions(markers, holder.body.trace_id as string, 'node1')[0];
    const first = executions(markers, both.body.trace_id as string, 'node2')[0];
    const second = executions(markers, later.body.trace_id as string, 'node2')[0];
    // The later run did not pass: it started on node2 only after the earlier one left node2,
    // which it could enter only once the holder had left node1.
    expect(first?.start).toBeGreaterThanOrEqual(held?.end ?? Number.POSITIVE_INFINITY);
    expect(second?.start).toBeGreaterThanOrEqual(first?.end ?? Number.POSITIVE_INFINITY);
  }, 120_000);

  it('if_busy "refuse" sees a run queued on another instance, and a run accepted by another instance at the same moment', async () => {
    const [a, b] = instances as [Instance, Instance];
    // An instance with one slot: its second run waits queued while its node is free.
    const oneSlot = join(home.dir, 'one-slot.toml');
    writeFileSync(
      oneSlot,
      readFileSync(home.configFile, 'utf8').replace('[server]\n', '[server]\nconcurrency = 1\n'),
    );
    const d = await serve(home, oneSlot);
    try {
      const slot = await call(d, '/v1/runs', mark('node1', 60_000));
      await until('the slot holder to start on node1', async () =>
        executions(markers, slot.body.trace_id as string, 'node1').length > 0 ? true : undefined,
      );
      const waiting = await call(d, '/v1/runs', mark('node2', 1));
      expect(waiting.body.status).toBe('queued');
      const refused = await call(
        a,
        '/v1/runs',
        mark('node2', 1, { options: { if_busy: 'refuse' } }),
      );
      expect(refused.status, JSON.stringify(refused.body)).toBe(409);
      expect(refused.body.error).toMatchObject({
        code: 'NODE_BUSY',
        details: { nodes: ['node2'], run_ids: [waiting.body.id] },
      });
      // A run queued elsewhere keeps its place: one accepted on b waits behind it (FIFO).
      const behind = await call(b, '/v1/runs', mark('node2', 1));
      expect(behind.status).toBe(202);
      await call(a, `/v1/runs/${slot.body.id as string}/cancel`, {});
      expect((await waitEnd(a, waiting.body.id as string)).status).toBe('succeeded');
      expect((await waitEnd(a, behind.body.id as string)).status).toBe('succeeded');
      const first = executions(markers, waiting.body.trace_id as string, 'node2')[0];
      const second = executions(markers, behind.body.trace_id as string, 'node2')[0];
      expect(second?.start).toBeGreaterThanOrEqual(first?.end ?? Number.POSITIVE_INFINITY);
    } finally {
      d.child.kill('SIGTERM');
      await d.exited;
    }
    // Two refusing submissions for a free node at once on two instances: exactly one is accepted.
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all(
        [a, b].map((instance) =>
          call(instance, '/v1/runs', mark('node2', 200, { options: { if_busy: 'refuse' } })),
        ),
      );
      expect(answers.map((answer) => answer.status).sort()).toEqual([202, 409]);
      const winner = answers.find((answer) => answer.status === 202) as { body: Json };
      expect((await waitEnd(a, winner.body.id as string)).status).toBe('succeeded');
    }
  }, 120_000);

  it('the same Alertmanager notification sent to two instances is one run', async () => {
    const [a, b] = instances as [Instance, Instance];
    const notification = amPayload(
      [
        {
          labels: { alertname: 'MarkNode', instance: 'node1' },
          startsAt: new Date().toISOString(),
          fingerprint: `ha-${Date.now()}`,
        },
      ],
      '{}:{alertname="MarkNode"}',
    );
    // Alertmanager in HA pairs (or behind a balancer) delivers one notification to several
    // instances at once.
    const delivered = await Promise.all(
      [a, b].map(async (instance) => {
        const response = await fetch(`${instance.url}/v1/hooks/alertmanager/am`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${AM_TOKEN}` },
          body: JSON.stringify(notification),
        });
        expect(response.status).toBe(202);
        return { instance, ids: ((await response.json()) as { alert_ids: string[] }).alert_ids };
      }),
    );
    const decided = await Promise.all(
      delivered.map(({ instance, ids }) =>
        until(`alert ${ids[0]} to be decided`, async () => {
          const { body } = await call(instance, `/v1/alerts/${ids[0] as string}`);
          return body.outcome === 'received' ? undefined : body;
        }),
      ),
    );
    expect(decided.map((alert) => alert.outcome).sort()).toEqual(['deduplicated', 'ran']);
    const runId = decided[0]?.run_id as string;
    expect(decided[1]?.run_id).toBe(runId);
    const run = await waitEnd(b, runId);
    expect(run.status).toBe('succeeded');
    expect(executions(markers, run.trace_id as string, 'node1')).toHaveLength(1);
    const runs = await call(a, '/v1/runs?source=alert&limit=100');
    expect((runs.body.runs as Json[]).filter((listed) => listed.id === runId)).toHaveLength(1);
    expect((runs.body.runs as Json[]).length).toBe(1);
  }, 120_000);

  it('rune_store_size_bytes on PostgreSQL: the tables of the store schema, not 0', async () => {
    const [a] = instances as [Instance];
    const response = await fetch(`${a.url}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const text = await response.text();
    const reported = Number(/^rune_store_size_bytes (\d+)$/m.exec(text)?.[1]);
    const store = await openRunStore(pg.url);
    try {
      const sizes = await sql<{ runs: number; events: number; database: number }>`
        select pg_total_relation_size('runs')::bigint as runs,
               pg_total_relation_size('run_events')::bigint as events,
               pg_database_size(current_database())::bigint as database`.execute(store.db);
      const row = sizes.rows[0] as { runs: number; events: number; database: number };
      expect(reported).toBeGreaterThanOrEqual(Number(row.runs) + Number(row.events));
      expect(reported).toBeLessThan(Number(row.database));
    } finally {
      await store.close();
    }
  }, 60_000);

  it('PostgreSQL restarts mid-run: the instances reconnect, the run ends recorded, nothing acknowledged is lost', async () => {
    const [a, b] = instances as [Instance, Instance];
    const running = await call(a, '/v1/runs', mark('node2', 2_500));
    const queuedBehind = await call(b, '/v1/runs', mark('node2', 1));
    await until('the run to start on node2', async () =>
      executions(markers, running.body.trace_id as string, 'node2').length > 0 ? true : undefined,
    );
    const logged = instances.map((instance) => instance.stderr().length);
    await pg.restart();
    const first = await waitEnd(b, running.body.id as string);
    const behind = await waitEnd(a, queuedBehind.body.id as string);
    // A restart shorter than half the lease (as seen by the instance: from its last heartbeat)
    // is ridden out. On a loaded machine the restart can take longer; then the instance that
    // runs the node must stop it before anyone may take it over (the next test), and says so.
    const isolated = instances.some((instance, index) =>
      instance
        .stderr()
        .slice(logged[index])
        .includes("cancelling this instance's runs before another instance takes them over"),
    );
    if (isolated) {
      expect(['succeeded', 'cancelled']).toContain(first.status);
      expect(['succeeded', 'cancelled']).toContain(behind.status);
      expect(
        executions(markers, running.body.trace_id as string, 'node2').length,
      ).toBeLessThanOrEqual(1);
      expect(
        executions(markers, queuedBehind.body.trace_id as string, 'node2').length,
      ).toBeLessThanOrEqual(1);
    } else {
      expect(first.status).toBe('succeeded');
      expect(behind.status).toBe('succeeded');
      expect(executions(markers, running.body.trace_id as string, 'node2')).toHaveLength(1);
      expect(executions(markers, queuedBehind.body.trace_id as string, 'node2')).toHaveLength(1);
      const events = await call(b, `/v1/runs/${running.body.id as string}`);
      expect((events.body.nodes as Json[])[0]?.status).toBe('success');
    }
    for (const instance of instances) expect(instance.child.exitCode).toBeNull();
  }, 120_000);

  it('the database away for longer than half the lease: the instance stops its run on the node before anyone may take it over', async () => {
    const owner = instances[1] as Instance;
    const accepted = await call(owner, '/v1/runs', {
      action: 'hold',
      targets: ['node2'],
      params: { hold_ms: 60_000, marker_dir: markers },
    });
    const pids = await until('the hold plugin to start on node2', async () => {
      const file = join(markers, `${accepted.body.trace_id as string}-node2`);
      const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
      return /^\d+ \d+\n$/.test(text) ? text.trim().split(' ').map(Number) : undefined;
    });
    await pg.stopServer();
    const stoppedAt = Date.now();
    try {
      // Gone from the node before 3/4 of the lease, when another instance could declare it dead.
      await until(
        'the plugin to be killed',
        async () => (pids.every((pid) => !isProcessAlive(pid)) ? true : undefined),
        LEASE_MS,
      );
      expect(Date.now() - stoppedAt).toBeLessThan((LEASE_MS * 3) / 4);
    } finally {
      await pg.start();
    }
    // Its end, retried while the database was away, is recorded once it is back.
    const ended = await waitEnd(owner, accepted.body.id as string);
    expect(ended.status).toBe('cancelled');
    for (const instance of instances) expect(instance.child.exitCode).toBeNull();
  }, 120_000);

  it('kill -9 of one instance mid-run: takeover within the lease, its queued run runs once elsewhere, no node runs twice', async () => {
    // A victim of its own: the instances the other tests use stay up, whichever run alone.
    const victim = await serve(home);
    const survivor = instances[0] as Instance;
    const inflight = await call(
      victim,
      '/v1/runs',
      mark('node1', 60_000, { options: { timeout: '8s' } }),
    );
    await until('the in-flight run to start on node1', async () =>
      executions(markers, inflight.body.trace_id as string, 'node1').length > 0 ? true : undefined,
    );
    // Queued on the victim behind node1.
    const queued = await call(victim, '/v1/runs', mark('node1', 1));
    expect(queued.body.status).toBe('queued');
    const killedAt = Date.now();
    await kill9(victim);

    const interrupted = await until('the takeover', async () => {
      const { body } = await call(survivor, `/v1/runs/${inflight.body.id as string}`);
      return body.status === 'interrupted' ? body : undefined;
    });
    const failoverMs = Date.now() - killedAt;
    expect(failoverMs).toBeLessThan(LEASE_MS + 1_000);
    expect((interrupted.nodes as Json[])[0]).toMatchObject({
      node: 'node1',
      status: 'failure',
      error: { code: 'RUN_INTERRUPTED' },
    });
    expect((await waitEnd(survivor, queued.body.id as string)).status).toBe('succeeded');
    // From the node's side: each request executed exactly once.
    expect(executions(markers, inflight.body.trace_id as string, 'node1')).toHaveLength(1);
    expect(executions(markers, queued.body.trace_id as string, 'node1')).toHaveLength(1);
    // One audit chain in the database, written by every instance, agreeing with the store.
    const verify = await call(survivor, '/v1/audit/verify');
    expect(verify.body).toMatchObject({ ok: true });
    const audit = await call(survivor, `/v1/audit?run_id=${inflight.body.id as string}`);
    expect(
      (audit.body.records as Json[])
        // The policy's allow decision is a record of its own (RBAC); this checks the run's.
        .filter((record) => record.event !== 'policy')
        .map((record) => [record.event, record.node, record.error_code ?? null]),
    ).toEqual([
      ['intent', null, null],
      ['run', 'node1', 'RUN_INTERRUPTED'],
    ]);
  }, 120_000);

  it('drain of one instance: its running run finishes, its queued run moves to another instance, it exits 0', async () => {
    const draining = await serve(home);
    const other = instances[0] as Instance;
    const running = await call(draining, '/v1/runs', mark('node2', 1_500));
    const queued = await call(draining, '/v1/runs', mark('node2', 1));
    await until('the run to start on node2', async () =>
      executions(markers, running.body.trace_id as string, 'node2').length > 0 ? true : undefined,
    );
    draining.child.kill('SIGTERM');
    expect(await draining.exited).toBe(0);
    expect((await waitEnd(other, running.body.id as string)).status).toBe('succeeded');
    expect((await waitEnd(other, queued.body.id as string)).status).toBe('succeeded');
    expect(executions(markers, queued.body.trace_id as string, 'node2')).toHaveLength(1);
    const ready = await fetch(`${other.url}/readyz`);
    expect(ready.status).toBe(200);
  }, 120_000);

  it('shipping with two instances: one delivers to a sink at a time; after kill -9 of it the other takes over once its lease expires, nothing lost', async () => {
    const hec = await startHec();
    const shipping = join(home.dir, 'shipping.toml');
    writeFileSync(
      shipping,
      `${readFileSync(home.configFile, 'utf8')}\n[server.shipping]\ninterval = "100ms"\ntimeout = "3s"\nbatch_size = 5\n\n[[server.shipping.sinks]]\nname = "siem"\ntype = "splunk-hec"\nurl = ${JSON.stringify(hec.url)}\n`,
    );
    const shipHome = { ...home, env: { ...home.env, RUNE_SPLUNK_HEC_TOKEN: HEC_TOKEN } };
    const shippers = [await serve(shipHome, shipping), await serve(shipHome, shipping)];
    const store = await openRunStore(pg.url);
    const lease = () =>
      store.db
        .selectFrom('shipping_leases')
        .selectAll()
        .where('sink', '=', 'siem')
        .executeTakeFirst();
    const holderOf = async (): Promise<Instance | undefined> => {
      const row = await lease();
      return shippers.find((shipper) => row?.holder.includes(`-${shipper.child.pid}-`) === true);
    };
    /** The ids an instance ships for `runs`: each run's document and its audit records. */
    const expectedFor = async (runs: Json[]): Promise<string[]> => {
      const traces = new Set(runs.map((run) => run.trace_id));
      const chain = await store.db
        .selectFrom('audit_records')
        .select(['hash', 'record_json'])
        .orderBy('seq')
        .execute();
      return [
        ...chain
          .filter((row) => traces.has((JSON.parse(row.record_json) as Json).trace_id))
          .map((row) => `audit:${row.hash}`),
        ...runs.map((run) => `run:${run.id as string}`),
      ];
    };
    const received = (): string[] => hec.events.map((event) => event.fields.record_id);
    const submit = async (instance: Instance, count: number): Promise<Json[]> => {
      const runs: Json[] = [];
      for (let n = 0; n < count; n++) {
        const accepted = await call(instance, '/v1/runs', {
          action: 'noop',
          targets: ['node1'],
          params: { message: `ship ${n}` },
        });
        expect(accepted.status).toBe(202);
        runs.push(accepted.body);
      }
      for (const run of runs)
        expect((await waitEnd(instance, run.id as string)).status).toBe('succeeded');
      return runs;
    };
    try {
      // Both alive, a slow receiver (a delivery stays in flight): every record arrives once.
      hec.delayMs = 200;
      const first = await submit(shippers[0] as Instance, 3);
      first.push(...(await submit(shippers[1] as Instance, 3)));
      const expected = await expectedFor(first);
      await until('the first records to arrive', async () =>
        expected.every((id) => received().includes(id)) ? true : undefined,
      );
      const counts = new Map<string, number>();
      for (const id of received()) counts.set(id, (counts.get(id) ?? 0) + 1);
      expect([...counts].filter(([, count]) => count > 1)).toEqual([]);
      const victim = await until('a holder of the sink', holderOf);

      // The receiver takes the holder's next batch and never answers; the holder dies.
      hec.delayMs = 0;
      hec.mode = 'hold';
      const survivor = shippers.find((shipper) => shipper !== victim) as Instance;
      const inFlight = hec.nextBatch();
      const second = await submit(survivor, 4);
      const held = await inFlight;
      const killedAt = Date.now();
      await kill9(victim);
      hec.mode = 'answer';
      const expectedAfter = await expectedFor(second);
      await until('the records after the kill to arrive', async () =>
        expectedAfter.every((id) => received().includes(id)) ? true : undefined,
      );
      const takenOver = hec.batches.find((batch) => batch.at > killedAt) as { at: number };
      expect(takenOver.at - killedAt).toBeLessThan(LEASE_MS + 1_500);
      expect(await holderOf()).toBe(survivor);
      // At-least-once: only what the dead holder had in flight (never acknowledged) came twice.
      const unanswered = hec.batches.filter((batch) => !batch.answered && batch.at <= killedAt);
      expect(unanswered).toContain(held);
      const again = new Map<string, number>();
      for (const id of received()) again.set(id, (again.get(id) ?? 0) + 1);
      for (const [id, count] of again) {
        const inFlightCopies = unanswered.filter((batch) => batch.ids.includes(id)).length;
        expect(count - 1, `${id} received ${count} times`).toBeLessThanOrEqual(inFlightCopies);
      }
      // A clean stop gives the sink up at once (no lease to wait for).
      survivor.child.kill('SIGTERM');
      expect(await survivor.exited).toBe(0);
      expect(Number((await lease())?.expires_ms)).toBe(0);
    } finally {
      for (const shipper of shippers) shipper.child.kill('SIGKILL');
      await Promise.all(shippers.map((shipper) => shipper.exited));
      await store.close();
      await hec.stop();
    }
  }, 180_000);

  it('rune audit --store lists the one chain of every instance with the filters and output of the file listing', async () => {
    const listStore = (
      store: string,
      ...flags: string[]
    ): { status: number | null; stdout: string } => {
      const result = spawnSync(
        process.execPath,
        [CLI, 'audit', '--config', home.configFile, '--store', store, ...flags],
        { env: home.env, encoding: 'utf8' },
      );
      return { status: result.status, stdout: result.stdout };
    };
    const list = (...flags: string[]) => listStore(pg.url, ...flags);
    // Records of its own (a run on each node, from two instances), whatever ran before.
    const [a, b] = instances as [Instance, Instance];
    const made = [
      await call(a, '/v1/runs', { action: 'noop', targets: ['node1'] }),
      await call(b, '/v1/runs', mark('node2', 1)),
    ];
    for (const run of made) await waitEnd(a, run.body.id as string);
    const reader = await openRunStore(pg.url);
    const chain = (
      await reader.db.selectFrom('audit_records').select('record_json').orderBy('seq').execute()
    ).map((row) => JSON.parse(row.record_json) as Json);
    await reader.close();
    const all = list('-o', 'json');
    expect(all.status).toBe(0);
    const listed = JSON.parse(all.stdout) as { records: Json[]; runs_without_outcome: Json[] };
    expect(listed.records).toEqual(chain);
    const trace = made[1]?.body.trace_id as string;
    const oneRun = JSON.parse(list('--trace', trace, '--action', 'mark', '-o', 'json').stdout) as {
      records: Json[];
    };
    expect(oneRun.records).toEqual(
      chain.filter((record) => record.trace_id === trace && record.action === 'mark'),
    );
    expect(oneRun.records.map((record) => record.event)).toContain('intent');
    const lastThree = list('--since', '1h', '--limit', '3', '-o', 'jsonl');
    expect(
      lastThree.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line)),
    ).toEqual(chain.slice(-3));
    const text = list('--node', 'node2', '--limit', '2');
    expect(text.status).toBe(0);
    expect(text.stdout.trim().split('\n')).toHaveLength(2);
    expect(text.stdout).toContain('node2');
    const notPostgres = listStore(join(home.dir, 'x.sqlite'), '-o', 'json');
    expect(notPostgres.status).toBe(2);
    expect(notPostgres.stdout).toContain('INVALID_ARGUMENT');
    const unreachable = listStore('postgres://nobody@127.0.0.1:1/none', '-o', 'json');
    expect(unreachable.status).toBe(2);
    expect(unreachable.stdout).toContain('INVALID_CONFIG');
    expect(unreachable.stdout).not.toContain('    at ');
  }, 180_000);

  it('rune audit verify --store checks the one chain of every instance, and finds an altered record', async () => {
    const verify = (): { status: number | null; stdout: string } => {
      const result = spawnSync(
        process.execPath,
        [CLI, 'audit', 'verify', '--config', home.configFile, '--store', pg.url, '-o', 'json'],
        { env: home.env, encoding: 'utf8' },
      );
      return { status: result.status, stdout: result.stdout };
    };
    // Records of its own, from two instances (the tampering below needs a noop record).
    const [a, b] = instances as [Instance, Instance];
    for (const instance of [a, b]) {
      const accepted = await call(instance, '/v1/runs', { action: 'noop', targets: ['node1'] });
      await waitEnd(instance, accepted.body.id as string);
    }
    const counter = await openRunStore(pg.url);
    const rows = await counter.db
      .selectFrom('audit_records')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    await counter.close();
    const intact = verify();
    expect(intact.status).toBe(0);
    const verdict = JSON.parse(intact.stdout) as Json;
    expect(verdict).toMatchObject({ ok: true });
    expect(verdict.records as number).toBeGreaterThanOrEqual(Number(rows.n));
    expect(verdict.records as number).toBeGreaterThanOrEqual(4);
    expect(verdict.signed).toBe(verdict.records);
    // Nothing went to the local file: the chain lives in the shared store.
    expect(existsSync(home.auditLog)).toBe(false);

    const store = await openRunStore(pg.url);
    try {
      await sql`update audit_records set record_json = replace(record_json, '"noop"', '"nope"') where seq = (select min(seq) from audit_records where record_json like '%"noop"%')`.execute(
        store.db,
      );
    } finally {
      await store.close();
    }
    const altered = verify();
    expect(altered.status).not.toBe(0);
    expect(altered.stdout).toContain('AUDIT_CHAIN_BROKEN');
  }, 60_000);
});
