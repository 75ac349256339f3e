/**
 * Record shipping against real receivers on 127.0.0.1: a syslog TCP listener (RFC 6587 octet
 * counting), a syslog UDP socket, a Splunk HEC-format HTTP server, and the stdout sink's stream.
 *
 * - Outage and recovery: the HEC endpoint is down while runs complete; when it comes back it
 *   receives every record exactly once; a restart of the server re-sends nothing.
 * - Sensitive parameters stay redacted in every shipped record.
 * - A sink that never answers never slows runs: they all complete while it holds every request.
 *
 * No fixed sleeps: `shipper.runOnce()` does a pass on demand, and waits are bounded polls.
 */
import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createRuneServer, createToken } from '../src/index.js';
import { HEC_TOKEN, startHec } from '../src/testing/index.js';
import {
  createTestHome,
  startTestServer,
  type TestHome,
  type TestServer,
  waitForRun,
} from './harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A syslog TCP receiver parsing octet-counted frames. */
async function startSyslogTcp() {
  const messages: string[] = [];
  const server: TcpServer = createTcpServer((socket) => {
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const space = pending.indexOf(0x20);
        if (space < 0) break;
        const length = Number(pending.subarray(0, space).toString());
        if (pending.length < space + 1 + length) break;
        messages.push(pending.subarray(space + 1, space + 1 + length).toString('utf8'));
        pending = pending.subarray(space + 1 + length);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    messages,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
    server,
  };
}

async function startSyslogUdp() {
  const messages: string[] = [];
  const socket = createSocket('udp4');
  socket.on('message', (message) => messages.push(message.toString('utf8')));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    port: socket.address().port,
    messages,
    stop: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Waits until a sink has received as many records as the spool holds (re-read each time: it may
 * grow meanwhile) and returns the spool's records at that moment.
 */
async function caughtUp(
  t: TestServer,
  sink: string,
  received: () => number | Promise<number>,
): Promise<string[]> {
  let spool: string[] = [];
  await until(`${sink} to catch up with the spool`, async () => {
    const count = await received();
    spool = await spooledIds(t);
    return count >= spool.length;
  });
  return spool;
}

function shippingToml(sinks: string[], extra = ''): string {
  return `\n[server.shipping]\ninterval = "200ms"\n${extra}${sinks.map((sink) => `\n[[server.shipping.sinks]]\n${sink}`).join('')}\n`;
}

/** Every record id in the spool, by kind. */
async function spooledIds(t: TestServer): Promise<string[]> {
  const rows = await t.server.store.db
    .selectFrom('shipping_outbox')
    .select('record_id')
    .orderBy('seq')
    .execute();
  return rows.map((row) => row.record_id);
}

describe('record shipping', () => {
  let home: TestHome;

  it('loses nothing while a sink is down, sends nothing twice after recovery and restart, and keeps secrets redacted', async () => {
    const hecProbe = await startHec();
    const hecPort = hecProbe.port;
    await hecProbe.stop(); // down: connection refused on its port
    const tcp = await startSyslogTcp();
    cleanups.push(() => tcp.stop());
    const udp = await startSyslogUdp();
    cleanups.push(() => udp.stop());
    home = createTestHome(
      shippingToml(
        [
          `name = "splunk"\ntype = "splunk-hec"\nurl = "http://127.0.0.1:${hecPort}"\ntoken_env = "TEST_HEC_TOKEN"\nindex = "rune"`,
          `name = "siem"\ntype = "syslog"\naddress = "127.0.0.1:${tcp.port}"\nprotocol = "tcp"`,
          `name = "siem-udp"\ntype = "syslog"\naddress = "127.0.0.1:${udp.port}"\nprotocol = "udp"\nrecords = ["run"]`,
          `name = "collector"\ntype = "stdout"`,
        ],
        'timeout = "2s"\n',
      ),
    );
    cleanups.push(() => home.remove());
    home.env.TEST_HEC_TOKEN = HEC_TOKEN;
    const stdout = new PassThrough();
    let stdoutText = '';
    stdout.on('data', (chunk: Buffer) => {
      stdoutText += chunk.toString('utf8');
    });
    let t = await startTestServer(home, {}, { shippingStdout: stdout });
    let closed = false;
    cleanups.push(async () => {
      if (!closed) await t.close();
    });

    const secret = `s3cr3t-${Date.now()}`;
    const ids: string[] = [];
    for (const params of [{ message: 'a' }, { message: 'b' }]) {
      const response = await t.request('/v1/runs', {
        json: { action: 'noop', targets: ['localhost'], params },
      });
      ids.push(((await response.json()) as { id: string }).id);
    }
    const held = await t.request('/v1/runs', {
      json: { action: 'hold', targets: ['localhost'], params: { hold_ms: 1, secret } },
    });
    ids.push(((await held.json()) as { id: string }).id);
    for (const id of ids) expect((await waitForRun(t, id)).status).toBe('succeeded');

    // While HEC is down, the other sinks carry on and HEC's records wait in the spool.
    await t.server.shipper?.runOnce();
    const spooled = await spooledIds(t);
    for (const id of ids) expect(spooled).toContain(`run:${id}`);
    expect(spooled.filter((id) => id.startsWith('audit:')).length).toBeGreaterThanOrEqual(6);
    // A sink is compared with the spool as it is when the sink caught up: the audit log may gain
    // a record after the runs ended (the spool then holds it too), and every sink gets it.
    const tcpIds = () => tcp.messages.map((message) => /record_id="([^"]+)"/.exec(message)?.[1]);
    const tcpSpool = await caughtUp(t, 'syslog TCP', () => tcp.messages.length);
    expect(tcpIds()).toEqual(tcpSpool);
    expect(tcpSpool.slice(0, spooled.length)).toEqual(spooled);
    expect(tcp.messages[0]).toMatch(/^<1[34]\d>1 \S+ \S+ rune \d+ (audit|run) \[rune@32473 /);
    await until('syslog UDP to get the runs', () => udp.messages.length === ids.length);
    await caughtUp(t, 'stdout', () => stdoutText.split('\n').filter(Boolean).length);
    const cursor = await t.server.store.db
      .selectFrom('shipping_cursors')
      .selectAll()
      .where('sink', '=', 'splunk')
      .executeTakeFirst();
    expect(cursor?.last_seq ?? 0).toBe(0);

    // HEC comes back on the same port: everything arrives, once, in spool order.
    const hec = await startHec(hecPort);
    cleanups.push(() => hec.stop());
    const hecSpool = await caughtUp(t, 'HEC', async () => {
      await t.server.shipper?.runOnce();
      return hec.events.length;
    });
    expect(hec.events.map((event) => event.event.record_id)).toEqual(hecSpool);
    expect(hecSpool.slice(0, spooled.length)).toEqual(spooled);
    expect(hec.events[0]).toMatchObject({ source: 'rune', index: 'rune' });

    // Sensitive values: redacted in every record every sink got.
    const everything = [
      JSON.stringify(hec.events),
      tcp.messages.join('\n'),
      udp.messages.join('\n'),
      stdoutText,
    ].join('\n');
    expect(everything).not.toContain(secret);
    expect(everything).toContain('[REDACTED]');

    // A restart re-sends nothing: the cursors were committed with each delivery.
    await t.close();
    closed = true;
    const before = { hec: hec.events.length, tcp: tcp.messages.length, out: stdoutText.length };
    const restarted = await createRuneServer({
      configFile: home.configFile,
      env: home.env,
      port: 0,
      shippingStdout: stdout,
    });
    closed = false;
    const url = await restarted.listen();
    const token = (
      await createToken(restarted.store, { name: 'ops2', role: 'operator', expires: '1d' })
    ).token;
    t = {
      ...t,
      server: restarted,
      url,
      operator: token,
      close: () => restarted.close(),
      request: (path, init = {}) =>
        fetch(`${url}${path}`, {
          method: init.json === undefined ? 'GET' : 'POST',
          headers: {
            authorization: `Bearer ${token}`,
            ...(init.json === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(init.json === undefined ? {} : { body: JSON.stringify(init.json) }),
        }),
    };
    await t.server.shipper?.runOnce();
    await t.server.shipper?.runOnce();
    expect(hec.events.length).toBe(before.hec);
    expect(tcp.messages.length).toBe(before.tcp);
    expect(stdoutText.length).toBe(before.out);

    // ...and ships what is new after it.
    const after = await t.request('/v1/runs', {
      json: { action: 'noop', targets: ['localhost'] },
    });
    const afterId = ((await after.json()) as { id: string }).id;
    expect((await waitForRun(t, afterId)).status).toBe('succeeded');
    await until('the new run at HEC', async () => {
      await t.server.shipper?.runOnce();
      return hec.events.some((event) => event.event.record_id === `run:${afterId}`);
    });
    const all = hec.events.map((event) => event.event.record_id);
    expect(new Set(all).size).toBe(all.length);
    expect(all).toEqual(await spooledIds(t));
  });

  it('a sink that never answers does not slow runs', async () => {
    const hec = await startHec(0, { hang: true });
    cleanups.push(() => hec.stop());
    home = createTestHome(
      shippingToml(
        [
          `name = "stuck"\ntype = "splunk-hec"\nurl = "http://127.0.0.1:${hec.port}"\ntoken_env = "TEST_HEC_TOKEN"`,
        ],
        'timeout = "3s"\n',
      ),
    );
    cleanups.push(() => home.remove());
    home.env.TEST_HEC_TOKEN = HEC_TOKEN;
    const t = await startTestServer(home);
    cleanups.push(() => t.close());
    const first = await t.request('/v1/runs', {
      json: { action: 'noop', targets: ['localhost'] },
    });
    expect((await waitForRun(t, ((await first.json()) as { id: string }).id)).status).toBe(
      'succeeded',
    );
    // The sink now holds a delivery it never answers...
    await until('the stuck sink to be called', () => hec.requests() >= 1);
    // ...and runs keep completing all the same.
    for (let index = 0; index < 5; index++) {
      const response = await t.request('/v1/runs', {
        json: { action: 'noop', targets: ['localhost'], params: { message: `n${index}` } },
      });
      const { id } = (await response.json()) as { id: string };
      expect((await waitForRun(t, id)).status).toBe('succeeded');
    }
    const cursor = await t.server.store.db
      .selectFrom('shipping_cursors')
      .selectAll()
      .where('sink', '=', 'stuck')
      .executeTakeFirst();
    expect(cursor?.last_seq ?? 0).toBe(0);
    expect(hec.events.length).toBe(0);
  });
});
