/**
 * The three sinks records are shipped to: syslog (RFC 5424 over UDP, or TCP with RFC 6587
 * octet-counting framing), an HTTP endpoint in Splunk HEC format, and JSON lines on stdout for a
 * log collector (Vector, Filebeat, Fluent Bit) that reads the service's output.
 *
 * A delivery resolves once the records are handed over: for HEC when the endpoint answered 2xx,
 * for TCP and stdout when the bytes were written, for UDP when the datagrams were sent (UDP has
 * no acknowledgement: a receiver that is down loses them; prefer TCP or HEC where that matters).
 * Every message carries the record's `record_id`, the de-duplication key of at-least-once
 * delivery (see spool.ts).
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { RuneError } from '@rune/protocol';
import { isLoopbackHost } from '../config/server-config.js';
import type { ShippedKind, SpooledRecord } from './spool.js';

/** A destination of shipped records. */
export interface ShippingSink {
  /** The sink's configured name (its cursor's key). */
  readonly name: string;
  /** The kinds of record it receives. */
  readonly kinds: readonly ShippedKind[];
  /** Delivers `records` in order; rejects when they were not all handed over. */
  deliver(records: readonly SpooledRecord[], signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

const source = { component: 'rune-server' } as const;

const sinkError = (name: string, message: string, cause?: unknown) =>
  new RuneError('SHIPPING_SINK_FAILED', `sink ${name}: ${message}`, {
    source,
    retryable: true,
    ...(cause === undefined ? {} : { cause }),
    details: { sink: name },
  });

/** Rejects when `signal` aborts before `promise` settles. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal, onAbort: () => Error): Promise<T> {
  if (signal.aborted) return Promise.reject(onAbort());
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => reject(onAbort());
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(error);
      },
    );
  });
}

/** The time a record is about: the audit record's, the run's end, else when it was spooled. */
function recordTime(record: SpooledRecord): string {
  const body = record.body as { timestamp?: unknown; finished_at?: unknown };
  if (typeof body.timestamp === 'string') return body.timestamp;
  if (typeof body.finished_at === 'string') return body.finished_at;
  return record.created_at;
}

/** Whether a record reports something that went wrong (syslog severity warning, not info). */
function isFailure(record: SpooledRecord): boolean {
  const status = (record.body as { status?: unknown }).status;
  return (
    typeof status === 'string' && !['succeeded', 'success', 'started', 'planned'].includes(status)
  );
}

const SD_ID = 'rune@32473';
const escapeSd = (value: string): string => value.replace(/["\\\]]/g, (char) => `\\${char}`);
const HOST =
  hostname()
    .replace(/[^\x21-\x7e]/g, '')
    .slice(0, 255) || '-';
const UDP_MAX_BYTES = 65_000;

/** One RFC 5424 message: `<PRI>1 TIMESTAMP HOST rune PID MSGID [SD] BOM JSON`. */
export function syslogMessage(record: SpooledRecord, facility: number, maxBytes?: number): Buffer {
  const severity = isFailure(record) ? 4 : 6;
  const header = `<${facility * 8 + severity}>1 ${recordTime(record)} ${HOST} rune ${process.pid} ${record.kind} [${SD_ID} record_id="${escapeSd(record.record_id)}" seq="${record.seq}"] `;
  const bom = Buffer.from([0xef, 0xbb, 0xbf]);
  let message = Buffer.concat([Buffer.from(header), bom, Buffer.from(JSON.stringify(record.body))]);
  if (maxBytes !== undefined && message.length > maxBytes) {
    // Too big for one datagram: say so in a message that fits rather than send a torn JSON.
    const stub = { record_id: record.record_id, kind: record.kind, truncated: true };
    message = Buffer.concat([Buffer.from(header), bom, Buffer.from(JSON.stringify(stub))]);
  }
  return message;
}

/** Options of {@link createSyslogSink}. */
export interface SyslogSinkOptions {
  name: string;
  kinds: readonly ShippedKind[];
  host: string;
  port: number;
  protocol: 'udp' | 'tcp';
  /** RFC 5424 facility (default 16, local0). */
  facility?: number;
}

/** A syslog sink (RFC 5424; TCP frames with octet counting, RFC 6587). */
export function createSyslogSink(options: SyslogSinkOptions): ShippingSink {
  const facility = options.facility ?? 16;
  let tcp: Socket | undefined;
  let udp: UdpSocket | undefined;

  const openTcp = (signal: AbortSignal): Promise<Socket> => {
    if (tcp !== undefined && !tcp.destroyed) return Promise.resolve(tcp);
    const socket = connect({ host: options.host, port: options.port });
    socket.setNoDelay(true);
    // A receiver that drops the connection is found at the next write; nothing else is read.
    socket.on('error', () => socket.destroy());
    socket.on('data', () => {});
    return abortable(
      new Promise<Socket>((resolve, reject) => {
        socket.once('connect', () => {
          tcp = socket;
          resolve(socket);
        });
        socket.once('error', (error) => reject(sinkError(options.name, 'cannot connect', error)));
      }),
      signal,
      () => {
        socket.destroy();
        return sinkError(options.name, 'connecting timed out');
      },
    );
  };

  return {
    name: options.name,
    kinds: options.kinds,
    async deliver(records, signal) {
      if (options.protocol === 'udp') {
        udp ??= createSocket(options.host.includes(':') ? 'udp6' : 'udp4');
        const socket = udp;
        for (const record of records) {
          const message = syslogMessage(record, facility, UDP_MAX_BYTES);
          await abortable(
            new Promise<void>((resolve, reject) =>
              socket.send(message, options.port, options.host, (error) =>
                error ? reject(sinkError(options.name, 'send failed', error)) : resolve(),
              ),
            ),
            signal,
            () => sinkError(options.name, 'sending timed out'),
          );
        }
        return;
      }
      const socket = await openTcp(signal);
      const frames = Buffer.concat(
        records.flatMap((record) => {
          const message = syslogMessage(record, facility);
          return [Buffer.from(`${message.length} `), message];
        }),
      );
      try {
        await abortable(
          new Promise<void>((resolve, reject) =>
            socket.write(frames, (error) =>
              error ? reject(sinkError(options.name, 'write failed', error)) : resolve(),
            ),
          ),
          signal,
          () => sinkError(options.name, 'writing timed out'),
        );
      } catch (error) {
        socket.destroy();
        tcp = undefined;
        throw error;
      }
    },
    async close() {
      tcp?.destroy();
      udp?.close();
      tcp = undefined;
      udp = undefined;
    },
  };
}

/** Options of {@link createSplunkHecSink}. */
export interface SplunkHecSinkOptions {
  name: string;
  kinds: readonly ShippedKind[];
  /** Base URL, e.g. `https://splunk.example.net:8088` (http only to a loopback host). */
  url: string;
  token: string;
  index?: string;
  /** Default `rune:<kind>`. */
  sourcetype?: string;
}

/** Checks a HEC base URL: https, or http to loopback only (the token travels in a header). */
export function checkHecUrl(url: string, key: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new RuneError('INVALID_CONFIG', `${key}: not a URL`, { cause: error, details: { key } });
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && isLoopbackHost(host))) {
    throw new RuneError(
      'INVALID_CONFIG',
      `${key}: the HEC token would cross the network in clear; use https (http only to a loopback address)`,
      { details: { key } },
    );
  }
  return parsed;
}

/** A sink posting to Splunk's HTTP Event Collector (`/services/collector/event`). */
export function createSplunkHecSink(options: SplunkHecSinkOptions): ShippingSink {
  const endpoint = new URL('/services/collector/event', checkHecUrl(options.url, 'url'));
  return {
    name: options.name,
    kinds: options.kinds,
    async deliver(records, signal) {
      const body = records
        .map((record) =>
          JSON.stringify({
            time: Date.parse(recordTime(record)) / 1000,
            host: HOST,
            source: 'rune',
            sourcetype: options.sourcetype ?? `rune:${record.kind}`,
            ...(options.index === undefined ? {} : { index: options.index }),
            fields: { record_id: record.record_id, kind: record.kind },
            event: { record_id: record.record_id, kind: record.kind, record: record.body },
          }),
        )
        .join('\n');
      let response: Response;
      try {
        response = await fetch(endpoint, {
          method: 'POST',
          headers: { authorization: `Splunk ${options.token}`, 'content-type': 'application/json' },
          body,
          signal,
        });
      } catch (error) {
        throw sinkError(options.name, signal.aborted ? 'timed out' : 'request failed', error);
      }
      const text = await response.text().catch(() => '');
      if (!response.ok) {
        throw sinkError(options.name, `HTTP ${response.status} ${text.slice(0, 200)}`);
      }
    },
    async close() {},
  };
}

/** Options of {@link createStdoutSink}. */
export interface StdoutSinkOptions {
  name: string;
  kinds: readonly ShippedKind[];
  /** Default `process.stdout`. */
  stream?: NodeJS.WritableStream;
}

/** JSON lines on stdout: `{"record_id", "kind", "seq", "record"}` per line. */
export function createStdoutSink(options: StdoutSinkOptions): ShippingSink {
  const stream = options.stream ?? process.stdout;
  return {
    name: options.name,
    kinds: options.kinds,
    async deliver(records, signal) {
      const lines = records
        .map((record) =>
          JSON.stringify({
            record_id: record.record_id,
            kind: record.kind,
            seq: record.seq,
            record: record.body,
          }),
        )
        .join('\n');
      await abortable(
        new Promise<void>((resolve, reject) =>
          stream.write(`${lines}\n`, (error) =>
            error ? reject(sinkError(options.name, 'write failed', error)) : resolve(),
          ),
        ),
        signal,
        () => sinkError(options.name, 'writing timed out'),
      );
    },
    async close() {},
  };
}
