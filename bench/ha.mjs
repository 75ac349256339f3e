#!/usr/bin/env node
// RUNE several-instances benchmark (never part of the test suite). See bench/README.md, "HA".
//
//   node bench/ha.mjs [--seconds 10] [--clients 32] [--noop-runs 300] [--trials 10] [--lease 5s]
//                     [--before DIR] [--sizes 1,2,3] [--cpu-prof DIR]
//                     [--failover-only]
//
// Starts a real PostgreSQL (@rune/server/testing) and 1, 2 and 3 `rune serve` processes (the built
// CLI) on it, all on 127.0.0.1, then measures, one after the other:
//   dry-run   --clients closed-loop clients, round-robin over the instances, POST dry runs of noop
//             for --seconds: accepted runs/s
//   noop      --noop-runs real noop runs on localhost (local transport) submitted round-robin by
//             --clients clients; runs/s = runs / (time until the last one ended)
//   failover  --trials times: a `hold` run executing on instance A, `kill -9` A, time until
//             instance B reports the run interrupted (kill -> takeover), with [server] lease
//   shipping  --trials times: two instances shipping to a loopback HEC receiver, `kill -9` the
//             holder of the sink's lease, time until the receiver gets a batch from the other
//             (kill -> first delivery after it), with the same lease
// For the dry-run and noop phases it also accounts where the CPU went (the machine is shared, so
// runs/s alone cannot show scaling): CPU ms per run of each instance (utime + stime of the
// process and its waited-for children, the plugins, from /proc) and of PostgreSQL (the
// postmaster and every backend), and samples pg_stat_activity every 20 ms for the store's
// connections that are active and how many of them wait on a lock (wait_event_type Lock).
// It also counts the audit records each phase appended and the transactions that inserted them
// (distinct `xmin` of the new rows of `audit_records`): records per transaction is the mean batch.
// --before DIR: another build of the repository (DIR holds a copy of apps/ and packages/ with
// their dist/ and a node_modules link, e.g. built from main) whose instances are measured in the
// same run, each size first with DIR's CLI, then with this one, on one PostgreSQL and one audit
// chain (verified at the end with `rune audit verify --store`, so old and new records together) —
// unless the two builds' schemas differ (this build has a migration DIR's lacks, which DIR's
// instances would refuse): then each build gets a database of its own in the one PostgreSQL,
// and each chain is verified.
// --sizes: the instance counts measured (default 1,2,3).
// --warmup SECONDS: dry runs for that long on the new instances before the measured phases (not
// accounted), so that the phases measure warm processes (JIT, first-use compiles) — without it,
// each of 3 instances warms up on a third of the requests, and that shows as CPU per run.
// --idle SECONDS: before the phases, the instances' CPU while idle for that long (heartbeats,
// sweeps, timers), reported as idle_cpu_ms_per_s per instance.
// --cpu-prof DIR: the first instance of this build at the largest size runs with node
// --cpu-prof, its profile written to DIR when it stops (open it in Chrome DevTools or read its
// self times with bench/cpu-profile-top.mjs).
// Every request goes to loopback only; every loop is bounded in count and time; every process
// started here is stopped at the end, also on failure.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createToken, openRunStore } from '@rune/server';
import { HEC_TOKEN, startHec, startPostgres } from '@rune/server/testing';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    clients: { type: 'string', default: '32' },
    'noop-runs': { type: 'string', default: '300' },
    trials: { type: 'string', default: '10' },
    lease: { type: 'string', default: '5s' },
    before: { type: 'string' },
    sizes: { type: 'string', default: '1,2,3' },
    warmup: { type: 'string', default: '0' },
    idle: { type: 'string', default: '0' },
    'cpu-prof': { type: 'string' },
    // The failover trials alone (no throughput phases).
    'failover-only': { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const clients = Number(values.clients);
const noopRuns = Number(values['noop-runs']);
const trials = Number(values.trials);
const sizes = values.sizes.split(',').map(Number);

const REPO = new URL('..', import.meta.url).pathname;
// The server's own PostgreSQL client, for the phase's LISTEN counter.
const pgClient = createRequire(join(REPO, 'packages/server/package.json'))('pg');
const CLI = join(REPO, 'apps/cli/bin/rune.js');
const BUILDS = [
  ...(values.before === undefined
    ? []
    : [{ name: 'before', cli: join(values.before, 'apps/cli/bin/rune.js') }]),
  { name: values.before === undefined ? 'this' : 'after', cli: CLI },
];
const PLUGINS = join(REPO, 'packages/server/test/fixtures/plugins');
const children = new Set();
const home = mkdtempSync(join(tmpdir(), 'rune-bench-ha-'));
const markers = join(home, 'markers');
mkdirSync(markers);
const pg = await startPostgres();

const cleanup = async () => {
  for (const child of children) child.kill('SIGKILL');
  // The `hold` plugins of the failover trials: their pids are in the marker files.
  for (const name of readdirSync(markers)) {
    for (const pid of readFileSync(join(markers, name), 'utf8').trim().split(' ').map(Number)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  await pg.stop();
  rmSync(home, { recursive: true, force: true });
};
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

const env = {
  HOME: home,
  XDG_CONFIG_HOME: join(home, 'config'),
  XDG_STATE_HOME: join(home, 'state'),
  XDG_DATA_HOME: join(home, 'data'),
  XDG_CACHE_HOME: join(home, 'cache'),
  PATH: process.env.PATH,
};
const configFile = join(home, 'rune.toml');
writeFileSync(
  configFile,
  `[plugins]\nplugin_dir = ${JSON.stringify(PLUGINS)}\n\n[server]\nlisten = "127.0.0.1:0"\nstore = ${JSON.stringify(pg.url)}\nlease = "${values.lease}"\nrate_limit = 1000000\nqueue_size = 100000\nconcurrency = 16\nshutdown_grace = "2s"\n`,
);
/** The migrations a build's server knows: builds whose lists differ cannot share a database. */
async function migrationsOf(cli) {
  const file = join(cli, '../../../../packages/server/dist/store/migrations.js');
  return (await import(file)).MIGRATION_NAMES;
}
const separate =
  BUILDS.length > 1 &&
  (await migrationsOf(BUILDS[0].cli)).join() !== (await migrationsOf(BUILDS.at(-1).cli)).join();
for (const [index, build] of BUILDS.entries()) {
  build.url =
    separate && index < BUILDS.length - 1 ? await pg.createDatabase(`rune_${build.name}`) : pg.url;
  build.config = join(home, `rune-${build.name}.toml`);
  writeFileSync(
    build.config,
    readFileSync(configFile, 'utf8').replace(JSON.stringify(pg.url), JSON.stringify(build.url)),
  );
  // DIR's database keeps DIR's schema (its instances refuse a newer one): every store opened
  // here on it migrates only as far as DIR's migrations go.
  build.open =
    separate && index < BUILDS.length - 1
      ? { migrateTo: (await migrationsOf(build.cli)).length }
      : {};
  const store = await openRunStore(build.url, build.open);
  const { token } = await createToken(store, { name: 'bench', role: 'operator', expires: '1d' });
  await store.close();
  build.headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
}
let headers = BUILDS.at(-1).headers;

function serve(cli = CLI, config = configFile, extraEnv = {}, nodeFlags = []) {
  const child = spawn(process.execPath, [...nodeFlags, cli, 'serve', '--config', config], {
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  exited.then(() => children.delete(child));
  let stderr = '';
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (match !== null) resolve({ child, url: match[1], exited });
    });
    child.once('exit', (code) => reject(new Error(`rune serve exited ${code}: ${stderr}`)));
  });
}

async function stop(instance) {
  instance.child.kill('SIGTERM');
  await instance.exited;
}

/** The low 32 bits of the server's advisory lock keys ("RUNERUNS", "RUNEAUDT"). */
const ADVISORY = new Map([
  [0x52554e53, 'run numbering'],
  [0x41554454, 'audit append'],
]);
const TICK_MS = 10; // USER_HZ = 100 on Linux: /proc times are in 1/100 s
/** utime + stime (+ cutime + cstime: waited-for children, the plugins) of `pid`, in ms. */
function cpuMs(pid, withChildren = true) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
    const own = Number(fields[11]) + Number(fields[12]);
    const children = withChildren ? Number(fields[13]) + Number(fields[14]) : 0;
    return (own + children) * TICK_MS;
  } catch {
    return 0;
  }
}
/** ms the threads of `pid` spent runnable on a run queue, waiting for a core (schedstat). */
function runQueueMs(pid) {
  let total = 0;
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[1]);
      } catch {
        // gone
      }
    }
  } catch {
    // gone
  }
  return total / 1e6;
}
/** The same for the main thread (the event loop) alone. */
function mainWaitMs(pid) {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e6;
  } catch {
    return 0;
  }
}
/** CPU ms of PostgreSQL: the postmaster, its exited children, and every live backend. */
function postgresCpuMs() {
  const postmaster = Number(
    readFileSync(join(pg.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0],
  );
  let total = cpuMs(postmaster);
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === postmaster) total += cpuMs(Number(name));
    } catch {
      // gone
    }
  }
  return total;
}

/** Runs `phase` while accounting CPU per process and sampling the store's lock waits. */
async function accounted(instances, phase, build) {
  const monitor = await openRunStore(build.url, build.open);
  const lastSeq = async () =>
    Number(
      (
        await monitor.db
          .selectFrom('audit_records')
          .select('seq')
          .orderBy('seq', 'desc')
          .limit(1)
          .executeTakeFirst()
      )?.seq ?? 0,
    );
  const seqBefore = await lastSeq();
  // Transactions committed in the database (all connections), and the notifications of the
  // cluster channel one listener receives: every instance receives each of them.
  const committed = async () => {
    // Backends flush their statistics at most once a second.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const row = await monitor.db
      .selectFrom('pg_stat_database')
      .select('xact_commit')
      .where('datname', '=', new URL(build.url).pathname.slice(1))
      .executeTakeFirst();
    return Number(row?.xact_commit ?? 0);
  };
  const commitsBefore = await committed();
  const listener = new pgClient.Client({ connectionString: build.url });
  let notifications = 0;
  listener.on('notification', () => notifications++);
  await listener.connect();
  await listener.query('LISTEN rune_runs');
  const before = instances.map((instance) => cpuMs(instance.child.pid));
  const waitedBefore = instances.map((instance) => runQueueMs(instance.child.pid));
  const mainBefore = instances.map((instance) => mainWaitMs(instance.child.pid));
  const pgBefore = postgresCpuMs();
  const samples = { count: 0, active: 0, lockWaits: 0, events: {}, advisory: {}, held: {} };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const rows = await monitor.db
        .selectFrom('pg_stat_activity')
        .select(['wait_event_type', 'wait_event'])
        .where('application_name', '=', 'rune-serve')
        .where('state', '=', 'active')
        .execute()
        .catch(() => []);
      // Which advisory lock the waiters wait for: a bigint key is classid (high 32 bits) and
      // objid (low 32 bits) in pg_locks.
      // A granted one is held: the share of samples in which a lock is held is its utilisation.
      const locks = await monitor.db
        .selectFrom('pg_locks')
        .select(['objid', 'granted'])
        .where('locktype', '=', 'advisory')
        .execute()
        .catch(() => []);
      const held = new Set();
      for (const lock of locks) {
        const name = ADVISORY.get(Number(lock.objid)) ?? `advisory ${lock.objid}`;
        if (lock.granted) held.add(name);
        else samples.advisory[name] = (samples.advisory[name] ?? 0) + 1;
      }
      // The counter row of run_numbering (0016): a transaction that updated it keeps its
      // RowExclusiveLock on the table until COMMIT; so do those waiting for the row's lock.
      const numbering = await monitor.db
        .selectFrom('pg_locks')
        .innerJoin('pg_class', 'pg_class.oid', 'pg_locks.relation')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('pg_locks.locktype', '=', 'relation')
        .where('pg_locks.granted', '=', true)
        .where('pg_class.relname', '=', 'run_numbering')
        .executeTakeFirst()
        .then((row) => Number(row?.n ?? 0))
        .catch(() => 0);
      if (numbering > 0) {
        held.add('run numbering (row)');
        if (numbering > 1) {
          samples.advisory['run numbering (row)'] =
            (samples.advisory['run numbering (row)'] ?? 0) + numbering - 1;
        }
      }
      for (const name of held) samples.held[name] = (samples.held[name] ?? 0) + 1;
      samples.count++;
      samples.active += rows.length;
      for (const row of rows) {
        if (row.wait_event_type !== 'Lock') continue;
        samples.lockWaits++;
        samples.events[row.wait_event] = (samples.events[row.wait_event] ?? 0) + 1;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const started = Date.now();
  const result = await phase();
  const wallMs = Date.now() - started;
  sampling = false;
  await sampler;
  await listener.end();
  // Less the sampler's own three queries a sample (each one a transaction).
  const commits = (await committed()) - commitsBefore - 3 * samples.count;
  // Which transactions inserted this phase's audit records (xmin): the batches.
  const inserted = await monitor.db
    .selectFrom('audit_records')
    .select((eb) => eb.ref('xmin').as('tx'))
    .where('seq', '>', seqBefore)
    .execute();
  await monitor.close();
  const auditRecords = inserted.length;
  const auditTransactions = new Set(inserted.map((row) => String(row.tx))).size;
  const runs = result.runs;
  const perInstance = instances.map((instance, index) => cpuMs(instance.child.pid) - before[index]);
  const waited = instances.map(
    (instance, index) => runQueueMs(instance.child.pid) - waitedBefore[index],
  );
  const rune = perInstance.reduce((sum, ms) => sum + ms, 0);
  const postgres = postgresCpuMs() - pgBefore;
  return {
    ...result,
    cpu: {
      wall_ms: wallMs,
      instance_cpu_ms: perInstance,
      instance_share: perInstance.map((ms) => Number((ms / Math.max(1, rune)).toFixed(2))),
      // Time the instances' threads were ready to run but waited for a core (schedstat): CPU
      // the machine's other load took from them.
      instance_runqueue_wait_ms_per_run: Number(
        (waited.reduce((sum, ms) => sum + ms, 0) / Math.max(1, runs)).toFixed(2),
      ),
      // Of the wall time, the share the main thread of an instance waited for a core (mean).
      main_thread_runqueue_share: Number(
        (
          instances
            .map((instance, index) => (mainWaitMs(instance.child.pid) - mainBefore[index]) / wallMs)
            .reduce((sum, share) => sum + share, 0) / instances.length
        ).toFixed(2),
      ),
      rune_cpu_ms_per_run: Number((rune / Math.max(1, runs)).toFixed(2)),
      postgres_cpu_ms_per_run: Number((postgres / Math.max(1, runs)).toFixed(2)),
      // CPU the measured processes got per wall second (2.0 = both cores of this machine).
      cores_used: Number(((rune + postgres) / wallMs).toFixed(2)),
    },
    audit: {
      records: auditRecords,
      transactions: auditTransactions,
      records_per_transaction: Number((auditRecords / Math.max(1, auditTransactions)).toFixed(2)),
    },
    store: {
      // Per run: database transactions committed (the sampler's excluded) and cluster
      // notifications sent (each delivered to every instance).
      transactions_per_run: Number((commits / Math.max(1, runs)).toFixed(2)),
      notifications_per_run: Number((notifications / Math.max(1, runs)).toFixed(2)),
      samples: samples.count,
      mean_active_queries: Number((samples.active / Math.max(1, samples.count)).toFixed(2)),
      mean_waiting_on_lock: Number((samples.lockWaits / Math.max(1, samples.count)).toFixed(3)),
      lock_wait_share: Number((samples.lockWaits / Math.max(1, samples.active)).toFixed(3)),
      lock_events: samples.events,
      // Waiters per advisory lock (and on the run_numbering row), summed over the samples.
      advisory_waiters: samples.advisory,
      // Share of the samples in which each advisory lock was held by someone.
      advisory_held_share: Object.fromEntries(
        Object.entries(samples.held).map(([name, count]) => [
          name,
          Number((count / Math.max(1, samples.count)).toFixed(3)),
        ]),
      ),
    },
  };
}

const post = async (url, body) => {
  const response = await fetch(`${url}/v1/runs`, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
};
const get = async (url, path) => (await fetch(`${url}${path}`, { headers })).json();

async function dryRuns(instances, forSeconds = seconds) {
  const until = Date.now() + forSeconds * 1000;
  let accepted = 0;
  let errors = 0;
  let next = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < until) {
        const instance = instances[next++ % instances.length];
        const answer = await post(instance.url, {
          action: 'noop',
          targets: ['localhost'],
          options: { dry_run: true },
        });
        if (answer.status === 202) accepted++;
        else errors++;
      }
    }),
  );
  return { runs_per_s: accepted / ((Date.now() - started) / 1000), errors, runs: accepted };
}

async function noops(instances) {
  const ids = [];
  const kinds = new Set();
  let next = 0;
  let errors = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < noopRuns) {
        const instance = instances[next++ % instances.length];
        const answer = await post(instance.url, { action: 'noop', targets: ['localhost'] });
        if (answer.status === 202) ids.push(answer.body.id);
        else {
          errors++;
          kinds.add(`submit ${answer.status} ${answer.body.error?.code}`);
        }
      }
    }),
  );
  const deadline = Date.now() + 300_000;
  for (const id of ids) {
    for (;;) {
      const run = await get(instances[0].url, `/v1/runs/${id}?wait=30s`);
      if (!['queued', 'running'].includes(run.status)) {
        if (run.status !== 'succeeded') {
          errors++;
          kinds.add(`${run.status} ${run.error?.code ?? run.nodes?.[0]?.error?.code}`);
        }
        break;
      }
      if (Date.now() > deadline) throw new Error('noop runs did not end');
    }
  }
  return {
    runs_per_s: ids.length / ((Date.now() - started) / 1000),
    errors,
    runs: ids.length,
    ...(kinds.size === 0 ? {} : { error_kinds: [...kinds] }),
  };
}

/** The 1-minute load average (the machine is shared: every row says how busy it was). */
function loadAverage() {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/** `rune audit verify --store`: the one chain every build's instances appended to. */
async function verifyChain(url = pg.url) {
  const child = spawn(
    process.execPath,
    [CLI, 'audit', 'verify', '--config', configFile, '--store', url, '-o', 'json'],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (chunk) => {
    out += chunk;
  });
  const code = await new Promise((resolve) => child.once('exit', resolve));
  try {
    const verdict = JSON.parse(out);
    return { exit: code, ok: verdict.ok, records: verdict.records ?? verdict.count };
  } catch {
    return { exit: code, output: out.slice(0, 500) };
  }
}

async function failover() {
  const times = [];
  let a = await serve();
  const b = await serve();
  try {
    for (let trial = 0; trial < trials; trial++) {
      const accepted = await post(a.url, {
        action: 'hold',
        targets: ['localhost'],
        params: { hold_ms: 30_000, marker_dir: markers },
        options: { timeout: '40s' },
      });
      const id = accepted.body.id;
      const marker = join(markers, `${accepted.body.trace_id}-localhost`);
      const deadline = Date.now() + 30_000;
      for (;;) {
        let text = '';
        try {
          text = readFileSync(marker, 'utf8');
        } catch {
          // not yet
        }
        if (/^\d+ \d+\n$/.test(text)) break;
        if (Date.now() > deadline) throw new Error('the hold run never started');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const killed = Date.now();
      a.child.kill('SIGKILL');
      await a.exited;
      for (;;) {
        const run = await get(b.url, `/v1/runs/${id}`);
        if (run.status === 'interrupted') break;
        if (Date.now() - killed > 120_000) throw new Error('no takeover');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      times.push(Date.now() - killed);
      process.stderr.write(`failover trial ${trial + 1}: ${times.at(-1)} ms\n`);
      a = await serve();
    }
  } finally {
    await stop(a);
    await stop(b);
  }
  return trialSummary(times);
}

/** The trials of a failover measurement: min, median and max of the times, and each one. */
function trialSummary(times) {
  const sorted = [...times].sort((x, y) => x - y);
  return {
    lease: values.lease,
    trials: times.length,
    min_ms: sorted[0],
    median_ms: sorted[Math.floor(sorted.length / 2)],
    max_ms: sorted.at(-1),
    all_ms: times,
  };
}

async function shippingFailover() {
  const hec = await startHec();
  const shippingConfig = join(home, 'shipping.toml');
  writeFileSync(
    shippingConfig,
    `${readFileSync(configFile, 'utf8')}\n[server.shipping]\ninterval = "100ms"\ntimeout = "1s"\n\n[[server.shipping.sinks]]\nname = "hec"\ntype = "splunk-hec"\nurl = ${JSON.stringify(hec.url)}\n`,
  );
  const start = () => serve(CLI, shippingConfig, { RUNE_SPLUNK_HEC_TOKEN: HEC_TOKEN });
  const reader = await openRunStore(pg.url);
  const times = [];
  const pair = [await start(), await start()];
  const delivered = async (id, within) => {
    const deadline = Date.now() + within;
    while (!hec.events.some((event) => event.fields.record_id === `run:${id}`)) {
      if (Date.now() > deadline) throw new Error(`run ${id} was never shipped`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  const run = async (instance) => {
    const accepted = await post(instance.url, { action: 'noop', targets: ['localhost'] });
    return accepted.body.id;
  };
  try {
    for (let trial = 0; trial < trials; trial++) {
      // The sink is being delivered to: a run's record arrives.
      await delivered(await run(pair[0]), 60_000);
      const row = await reader.db
        .selectFrom('shipping_leases')
        .select('holder')
        .where('sink', '=', 'hec')
        .executeTakeFirstOrThrow();
      const index = pair.findIndex((instance) => row.holder.includes(`-${instance.child.pid}-`));
      if (index < 0) throw new Error(`no instance holds the sink (${row.holder})`);
      const survivor = pair[1 - index];
      const batches = hec.batches.length;
      const killed = Date.now();
      pair[index].child.kill('SIGKILL');
      await pair[index].exited;
      const id = await run(survivor);
      await delivered(id, 120_000);
      const first = hec.batches.slice(batches).find((batch) => batch.at >= killed);
      times.push((first?.at ?? Date.now()) - killed);
      process.stderr.write(`shipping failover trial ${trial + 1}: ${times.at(-1)} ms\n`);
      pair[index] = await start();
    }
  } finally {
    for (const instance of pair) await stop(instance);
    await reader.close();
    await hec.stop();
  }
  return trialSummary(times);
}

const results = { throughput: [], failover: null, shipping_failover: null, audit_verify: null };
try {
  for (const n of values['failover-only'] ? [] : sizes) {
    for (const build of BUILDS) {
      const instances = [];
      headers = build.headers;
      const profiled =
        values['cpu-prof'] !== undefined && build === BUILDS.at(-1) && n === Math.max(...sizes);
      for (let i = 0; i < n; i++) {
        const flags =
          profiled && i === 0 ? ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof']] : [];
        instances.push(await serve(build.cli, build.config, {}, flags));
      }
      if (Number(values.warmup) > 0) await dryRuns(instances, Number(values.warmup));
      let idleCpu;
      if (Number(values.idle) > 0) {
        const before = instances.map((instance) => cpuMs(instance.child.pid));
        await new Promise((resolve) => setTimeout(resolve, Number(values.idle) * 1000));
        idleCpu = instances.map((instance, index) =>
          Number(((cpuMs(instance.child.pid) - before[index]) / Number(values.idle)).toFixed(1)),
        );
      }
      const dry = await accounted(instances, () => dryRuns(instances), build);
      const noop = await accounted(instances, () => noops(instances), build);
      results.throughput.push({
        build: build.name,
        instances: n,
        load: loadAverage(),
        ...(idleCpu === undefined ? {} : { idle_cpu_ms_per_s: idleCpu }),
        dry_run: dry,
        noop,
      });
      process.stderr.write(
        `${build.name}, ${n} instance(s): dry ${dry.runs_per_s.toFixed(1)} runs/s (rune ${dry.cpu.rune_cpu_ms_per_run} + pg ${dry.cpu.postgres_cpu_ms_per_run} CPU ms/run, shares ${dry.cpu.instance_share}, lock-wait share ${dry.store.lock_wait_share}, audit ${dry.audit.records_per_transaction} records/tx), noop ${noop.runs_per_s.toFixed(1)} runs/s (rune ${noop.cpu.rune_cpu_ms_per_run} + pg ${noop.cpu.postgres_cpu_ms_per_run} CPU ms/run, shares ${noop.cpu.instance_share}, lock-wait share ${noop.store.lock_wait_share}, audit ${noop.audit.records_per_transaction} records/tx), load ${loadAverage()}\n`,
      );
      for (const instance of instances) await stop(instance);
    }
  }
  headers = BUILDS.at(-1).headers;
  if (trials > 0) results.failover = await failover();
  results.audit_verify = separate
    ? Object.fromEntries(
        await Promise.all(BUILDS.map(async (build) => [build.name, await verifyChain(build.url)])),
      )
    : await verifyChain();
  if (trials > 0) results.shipping_failover = await shippingFailover();
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} finally {
  await cleanup();
}
