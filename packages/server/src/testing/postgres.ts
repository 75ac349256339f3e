/**
 * Test and benchmark harness: a real PostgreSQL 15 (Debian package `postgresql`) in a temporary directory on a
 * free loopback port. PostgreSQL refuses to run as root, and CI runs as root, so the cluster
 * belongs to an unprivileged system user (`runepg`, created once, idempotently) and every server
 * process is started through `setpriv` (which execs: the pid we hold is the postmaster's, so
 * `kill()` and `stop()` reach it). Authentication is `trust` on 127.0.0.1 only.
 *
 * Every test that starts one must `await pg.stop()` in a `finally`/`afterAll`; `stop()` also
 * removes the directory. A process exit handler kills a cluster a crashed test left behind.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** Where Debian installs PostgreSQL 15. */
export const PG_BIN = '/usr/lib/postgresql/15/bin';
/** The unprivileged owner of test clusters when the tests run as root. */
export const PG_TEST_USER = 'runepg';

/** True when the PostgreSQL binaries are installed (tests skip with a clear reason otherwise). */
export const postgresAvailable = existsSync(join(PG_BIN, 'initdb'));

/** A running test cluster. */
export interface TestPostgres {
  /** `postgres://runepg@127.0.0.1:PORT/rune` (a fresh database). */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Creates another empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server (fast shutdown) and starts it again on the same port and data. */
  restart(): Promise<void>;
  /** Stops the server, keeping the data (`start()` brings it back). */
  stopServer(): Promise<void>;
  /** Starts a stopped server again. */
  start(): Promise<void>;
  /** Stops the server and removes the directory. Idempotent. */
  stop(): Promise<void>;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for a server started by a test or a bench). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const isRoot = (): boolean => process.getuid?.() === 0;

/** Creates the `runepg` system user when missing (root only). */
function ensureUser(): { uid: number; gid: number } | undefined {
  if (!isRoot()) return undefined;
  const lookup = (): string | undefined => {
    try {
      return execFileSync('id', ['-u', PG_TEST_USER], { encoding: 'utf8', stdio: 'pipe' }).trim();
    } catch {
      return undefined;
    }
  };
  if (lookup() === undefined) {
    try {
      execFileSync(
        'useradd',
        ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', PG_TEST_USER],
        {
          stdio: 'ignore',
        },
      );
    } catch {
      // Another test process created it at the same moment: checked below.
    }
  }
  const uid = Number(lookup());
  const gid = Number(execFileSync('id', ['-g', PG_TEST_USER], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

function asUser(command: string, args: string[]): [string, string[]] {
  if (!isRoot()) return [command, args];
  return [
    'setpriv',
    [`--reuid=${PG_TEST_USER}`, `--regid=${PG_TEST_USER}`, '--init-groups', command, ...args],
  ];
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

async function waitReady(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`postgres exited during start-up:\n${log()}`);
    }
    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user: PG_TEST_USER,
      database: 'postgres',
    });
    try {
      await client.connect();
      await client.query('select 1');
      await client.end();
      return;
    } catch {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) throw new Error(`postgres did not become ready:\n${log()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** initdb + postgres on a free port; resolves when it accepts connections. */
export async function startPostgres(): Promise<TestPostgres> {
  const owner = ensureUser();
  const dir = mkdtempSync(join(tmpdir(), 'rune-pg-'));
  chmodSync(dir, 0o700);
  if (owner !== undefined) chownSync(dir, owner.uid, owner.gid);
  const data = join(dir, 'data');
  const [initCommand, initArgs] = asUser(join(PG_BIN, 'initdb'), [
    '-D',
    data,
    '-U',
    PG_TEST_USER,
    '--auth=trust',
    '--no-sync',
    '-E',
    'UTF8',
  ]);
  execFileSync(initCommand, initArgs, { stdio: 'pipe' });
  const port = await freePort();
  let child: ChildProcess | undefined;
  let output = '';

  const startServer = async (): Promise<void> => {
    output = '';
    const [command, args] = asUser(join(PG_BIN, 'postgres'), [
      '-D',
      data,
      '-k',
      dir,
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-c',
      'fsync=off',
      '-c',
      'max_connections=200',
    ]);
    const started = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    started.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    started.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    live.add(started);
    started.once('exit', () => live.delete(started));
    child = started;
    await waitReady(port, started, () => output);
  };

  const stopServer = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    // SIGINT: fast shutdown (clients are disconnected, what was committed stays).
    running.kill('SIGINT');
    const timer = setTimeout(() => running.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  const admin = async <T>(run: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user: PG_TEST_USER,
      database: 'postgres',
    });
    await client.connect();
    try {
      return await run(client);
    } finally {
      await client.end();
    }
  };
  const urlOf = (name: string): string => `postgres://${PG_TEST_USER}@127.0.0.1:${port}/${name}`;

  try {
    await startServer();
    await admin((client) => client.query('create database rune'));
  } catch (error) {
    await stopServer();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  let stopped = false;
  return {
    url: urlOf('rune'),
    port,
    dir,
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
      await admin((client) => client.query(`create database ${name}`));
      return urlOf(name);
    },
    async restart() {
      await stopServer();
      await startServer();
    },
    stopServer,
    start: startServer,
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopServer();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
