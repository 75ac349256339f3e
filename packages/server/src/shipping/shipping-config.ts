/**
 * `[server.shipping]` resolved into sinks: each `[[server.shipping.sinks]]` entry becomes a
 * sink, checked at start-up (a bad address, a HEC URL in clear over the network or a missing
 * token is INVALID_CONFIG naming the key, before the server listens).
 */
import { type LoadedConfig, parseDuration } from '@rune/core';
import { RuneError } from '@rune/protocol';
import { parseListen } from '../config/server-config.js';
import { serverSection } from '../config/server-config-module.js';
import {
  createSplunkHecSink,
  createStdoutSink,
  createSyslogSink,
  type ShippingSink,
} from './sinks.js';
import type { ShipFrom, ShippedKind } from './spool.js';

/** The resolved shipping settings. */
export interface ShippingSettings {
  sinks: ShippingSink[];
  intervalMs: number;
  timeoutMs: number;
  batchSize: number;
  shipFrom: ShipFrom;
  retentionMs: number;
}

/** Options of {@link resolveShipping}. */
export interface ResolveShippingOptions {
  env: Readonly<Record<string, string | undefined>>;
  /** Where the stdout sink writes (tests); default `process.stdout`. */
  stdout?: NodeJS.WritableStream;
}

const invalid = (key: string, message: string) =>
  new RuneError('INVALID_CONFIG', `[server.shipping] ${key}: ${message}`, {
    details: { key: `server.shipping.${key}` },
  });

const durationMs = (value: string | undefined, fallback: number, key: string): number => {
  if (value === undefined) return fallback;
  try {
    return parseDuration(value, `server.shipping.${key}`);
  } catch (error) {
    throw RuneError.from(error, 'INVALID_CONFIG').withContext({
      details: { key: `server.shipping.${key}` },
    });
  }
};

/** Resolves `[server.shipping]`; undefined when no sink is configured. */
export function resolveShipping(
  loaded: LoadedConfig,
  options: ResolveShippingOptions,
): ShippingSettings | undefined {
  const section = serverSection(loaded).shipping;
  const entries = section?.sinks ?? [];
  if (section === undefined || entries.length === 0) return undefined;
  const names = new Set<string>();
  const sinks = entries.map((entry, index): ShippingSink => {
    const key = (member: string) => `sinks[${index}].${member}`;
    if (names.has(entry.name)) throw invalid(key('name'), `two sinks are named ${entry.name}`);
    names.add(entry.name);
    const kinds: ShippedKind[] = [...new Set<ShippedKind>(entry.records ?? ['audit', 'run'])];
    if (kinds.length === 0) throw invalid(key('records'), 'names no record kind');
    switch (entry.type) {
      case 'syslog': {
        if (entry.address === undefined) throw invalid(key('address'), 'syslog needs host:port');
        const { host, port } = parseListen(entry.address);
        return createSyslogSink({
          name: entry.name,
          kinds,
          host,
          port,
          protocol: entry.protocol ?? 'udp',
          ...(entry.facility === undefined ? {} : { facility: entry.facility }),
        });
      }
      case 'splunk-hec': {
        if (entry.url === undefined) throw invalid(key('url'), 'splunk-hec needs the HEC URL');
        const tokenEnv = entry.token_env ?? 'RUNE_SPLUNK_HEC_TOKEN';
        const token = options.env[tokenEnv];
        if (token === undefined || token === '') {
          throw invalid(key('token_env'), `the HEC token variable ${tokenEnv} is not set`);
        }
        try {
          return createSplunkHecSink({
            name: entry.name,
            kinds,
            url: entry.url,
            token,
            ...(entry.index === undefined ? {} : { index: entry.index }),
            ...(entry.sourcetype === undefined ? {} : { sourcetype: entry.sourcetype }),
          });
        } catch (error) {
          throw invalid(key('url'), RuneError.from(error).message);
        }
      }
      case 'stdout':
        return createStdoutSink({
          name: entry.name,
          kinds,
          ...(options.stdout === undefined ? {} : { stream: options.stdout }),
        });
    }
    throw invalid(key('type'), 'unknown sink type');
  });
  return {
    sinks,
    intervalMs: durationMs(section.interval, 1000, 'interval'),
    timeoutMs: durationMs(section.timeout, 10_000, 'timeout'),
    batchSize: section.batch_size ?? 100,
    shipFrom: section.ship_from ?? 'now',
    retentionMs: durationMs(section.retention, 24 * 60 * 60 * 1000, 'retention'),
  };
}
