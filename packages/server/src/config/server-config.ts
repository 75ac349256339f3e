/**
 * The `[server]` section resolved into what the server needs, with the listener rules applied
 * once: loopback by default; any other address only with TLS, or with `behind_tls_proxy = true`
 * and the proxy's addresses in `trusted_proxies` (whose X-Forwarded-* headers are then believed,
 * and nobody else's).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { LoadedConfig } from '@rune/core';
import { MAX_HEAP_GROWTH_PERCENT } from '@rune/core/memory';
import { RuneError } from '@rune/protocol';
import { runeStateDir } from '@rune/transport';
import { parseLongDuration } from './long-duration.js';
import { type ResolvedServerSection, serverSection } from './server-config-module.js';

/** What becomes of runs still queued when the server starts. */
export type OnRestart = 'start' | 'interrupt';

/** The effective server settings. */
export interface ServerSettings {
  host: string;
  port: number;
  storePath: string;
  queueSize: number;
  concurrency: number;
  retentionMs: number;
  shutdownGraceMs: number;
  onRestart: OnRestart;
  tls: { cert: Buffer; key: Buffer } | null;
  behindTlsProxy: boolean;
  trustedProxies: string[];
  corsOrigins: string[];
  rateLimitPerMinute: number;
  bodyLimitBytes: number;
  /** `[server] policy`: the RBAC policy file; undefined = the built-in roles. */
  policyPath: string | undefined;
  /** Single sign-on (`[server] oidc_*`); undefined when `oidc_issuer` is not set. */
  oidc: OidcSettings | undefined;
  /** Dashboard sessions: idle and absolute lifetimes. */
  sessionIdleMs: number;
  sessionMaxMs: number;
  /** `[server] workflows`: the directory of workflow files, or null (the workflow routes refuse). */
  workflowsDir: string | null;
  /** PostgreSQL mode: missed heartbeats for this long hand an instance's runs to the others. */
  leaseMs: number;
  /** `[server] idle_reclaim`: quiet time before the threads' garbage is collected; null: off. */
  idleReclaimMs: number | null;
  /** `[server] heap_growth` in percent; null: `"off"` (V8's own choice). */
  heapGrowthPercent: number | null;
}

const invalid = (key: string, message: string, details: Record<string, unknown> = {}) =>
  new RuneError('INVALID_CONFIG', `[server] ${key}: ${message}`, {
    details: { key: `server.${key}`, ...details },
  });

/** True for 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** Splits `host:port` / `[v6]:port`. Throws INVALID_CONFIG. */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:]+)\]|([^:\s[\]]+)):([0-9]{1,5})$/.exec(listen.trim());
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !Number.isInteger(port) || port > 65_535) {
    throw invalid('listen', 'must be host:port, e.g. 127.0.0.1:8421 or [::1]:8421', {
      value: listen.slice(0, 100),
    });
  }
  return { host, port };
}

function readPem(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new RuneError('INVALID_CONFIG', `[server] ${key}: cannot read ${path}`, {
      cause: error,
      details: { key: `server.${key}`, path },
    });
  }
}

/** The single sign-on settings of `[server]`. */
export interface OidcSettings {
  issuer: string;
  clientId: string;
  /** Environment variable holding the client secret. */
  clientSecretEnv: string;
  redirectUrl: string;
  groupsClaim: string;
  scopes: string;
}

function oidcSettings(section: ResolvedServerSection): OidcSettings | undefined {
  if (section.oidc_issuer === undefined) return undefined;
  if (section.oidc_client_id === undefined || section.oidc_redirect_url === undefined) {
    throw invalid(
      section.oidc_client_id === undefined ? 'oidc_client_id' : 'oidc_redirect_url',
      'single sign-on (oidc_issuer) needs oidc_client_id and oidc_redirect_url',
    );
  }
  const issuer = new URL(section.oidc_issuer);
  if (issuer.protocol !== 'https:' && !isLoopbackHost(issuer.hostname)) {
    throw invalid('oidc_issuer', 'must be https (plain http only for a provider on loopback)');
  }
  return {
    issuer: section.oidc_issuer,
    clientId: section.oidc_client_id,
    clientSecretEnv: section.oidc_client_secret_env ?? 'RUNE_OIDC_CLIENT_SECRET',
    redirectUrl: section.oidc_redirect_url,
    groupsClaim: section.oidc_groups_claim ?? 'groups',
    scopes: section.oidc_scopes ?? 'openid email profile groups',
  };
}

/** `[server] idle_reclaim`: a duration, or `"off"` (null). */
function idleReclaimMs(value: string): number | null {
  if (value === 'off') return null;
  try {
    return parseLongDuration(value, 'server.idle_reclaim', 'INVALID_CONFIG');
  } catch {
    throw invalid('idle_reclaim', 'must be a duration such as 10s or 5m, or "off"', {
      value: value.slice(0, 40),
    });
  }
}

/** `[server] heap_growth`: `"<1-300>%"`, or `"off"` (null). */
function heapGrowthPercent(value: string): number | null {
  if (value === 'off') return null;
  const match = /^(\d{1,3})%$/.exec(value);
  const percent = match === null ? Number.NaN : Number(match[1]);
  if (!(percent >= 1 && percent <= MAX_HEAP_GROWTH_PERCENT)) {
    throw invalid(
      'heap_growth',
      `must be a percentage from 1% to ${MAX_HEAP_GROWTH_PERCENT}% such as "30%", or "off"`,
      { value: value.slice(0, 40) },
    );
  }
  return percent;
}

/** Resolves `[server]` of a loaded configuration. Throws INVALID_CONFIG naming the key. */
export function resolveServerSettings(loaded: LoadedConfig): ServerSettings {
  const section = serverSection(loaded);
  const { host, port } = parseListen(section.listen ?? '127.0.0.1:8421');
  const certFile = section.tls_cert_file;
  const keyFile = section.tls_key_file;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw invalid(
      certFile === undefined ? 'tls_cert_file' : 'tls_key_file',
      'TLS needs both tls_cert_file and tls_key_file',
    );
  }
  const tls =
    certFile === undefined || keyFile === undefined
      ? null
      : { cert: readPem(certFile, 'tls_cert_file'), key: readPem(keyFile, 'tls_key_file') };
  const behindTlsProxy = section.behind_tls_proxy === true;
  const trustedProxies = section.trusted_proxies ?? [];
  if (behindTlsProxy && trustedProxies.length === 0) {
    throw invalid(
      'trusted_proxies',
      'behind_tls_proxy = true needs the address of the TLS proxy in trusted_proxies',
    );
  }
  if (!isLoopbackHost(host) && tls === null && !behindTlsProxy) {
    throw invalid(
      'listen',
      `refusing to listen on ${host} without TLS: tokens would cross the network in clear. Set tls_cert_file and tls_key_file, or behind_tls_proxy = true with the proxy in trusted_proxies`,
      { value: host },
    );
  }
  return {
    host,
    port,
    storePath: section.store ?? join(runeStateDir(loaded.dirs), 'server.sqlite'),
    queueSize: section.queue_size ?? 1000,
    concurrency: section.concurrency ?? 8,
    retentionMs: parseLongDuration(
      section.retention ?? '90d',
      'server.retention',
      'INVALID_CONFIG',
    ),
    shutdownGraceMs: parseLongDuration(
      section.shutdown_grace ?? '30s',
      'server.shutdown_grace',
      'INVALID_CONFIG',
    ),
    onRestart: section.on_restart ?? 'start',
    tls,
    behindTlsProxy,
    trustedProxies,
    corsOrigins: section.cors_origins ?? [],
    rateLimitPerMinute: section.rate_limit ?? 600,
    bodyLimitBytes: section.body_limit_bytes ?? 1_048_576,
    policyPath: section.policy,
    oidc: oidcSettings(section),
    sessionIdleMs: parseLongDuration(
      section.session_idle ?? '30m',
      'server.session_idle',
      'INVALID_CONFIG',
    ),
    sessionMaxMs: parseLongDuration(
      section.session_lifetime ?? '12h',
      'server.session_lifetime',
      'INVALID_CONFIG',
    ),
    workflowsDir: section.workflows ?? null,
    leaseMs: parseLongDuration(section.lease ?? '15s', 'server.lease', 'INVALID_CONFIG'),
    idleReclaimMs: idleReclaimMs(section.idle_reclaim),
    heapGrowthPercent: heapGrowthPercent(section.heap_growth),
  };
}
