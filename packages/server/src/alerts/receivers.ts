/**
 * The three receivers: how each proves who sent a request, and how its payload becomes
 * {@link NormalizedAlert}s.
 *
 * - Alertmanager (webhook payload version 4) authenticates the way its `http_config` can: a
 *   bearer token (`authorization.credentials`) or basic auth.
 * - PagerDuty V3 webhooks sign the raw body: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]`, an
 *   HMAC-SHA256 with the subscription's secret; during a rotation any configured secret may match.
 * - The generic receiver takes `X-Rune-Timestamp` (Unix seconds) and `X-Rune-Signature:
 *   sha256=<hex>`, an HMAC-SHA256 over `<timestamp>.<raw body>`; a timestamp outside the replay
 *   window is refused, so a captured request cannot be replayed later.
 *
 * Every comparison of a secret or a MAC is constant-time over equal-length digests.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { RuneError } from '@rune/protocol';
import type { NormalizedAlert, ResolvedReceiver } from './rules.js';

const source = { component: 'rune-server' } as const;
const MAX_ALERTS = 1000;
const MAX_LABELS = 64;
const MAX_VALUE = 4096;

/** The request headers a receiver looks at (lower-case names). */
export type HookHeaders = Readonly<Record<string, string | string[] | undefined>>;

const header = (headers: HookHeaders, name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
};

/** Constant-time equality of two strings (compares their SHA-256, so lengths never leak). */
export function secretEquals(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Constant-time check of a hex MAC against the expected digest. */
function macEquals(hex: string, expected: Buffer): boolean {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return false;
  return timingSafeEqual(Buffer.from(hex, 'hex'), expected);
}

const hmac = (secret: string, ...parts: Array<string | Buffer>): Buffer => {
  const mac = createHmac('sha256', secret);
  for (const part of parts) mac.update(part);
  return mac.digest();
};

/**
 * Checks that the request comes from `receiver`. Throws WEBHOOK_AUTH_FAILED,
 * WEBHOOK_SIGNATURE_INVALID or WEBHOOK_REPLAYED.
 */
export function authenticateHook(
  receiver: ResolvedReceiver,
  headers: HookHeaders,
  rawBody: Buffer,
  nowMs: number,
): void {
  if (receiver.kind === 'alertmanager') {
    const authorization = header(headers, 'authorization') ?? '';
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization)?.[1];
    // Evaluate both configured methods whatever was sent, so timing says nothing about which.
    let ok = false;
    if (receiver.bearerToken !== undefined) {
      ok = secretEquals(bearer ?? '', receiver.bearerToken) && bearer !== undefined;
    }
    if (receiver.basicAuth !== undefined) {
      const expected = `${receiver.basicAuth.username}:${receiver.basicAuth.password}`;
      const given = basic === undefined ? '' : Buffer.from(basic, 'base64').toString('utf8');
      ok = (secretEquals(given, expected) && basic !== undefined) || ok;
    }
    if (!ok) {
      throw new RuneError(
        'WEBHOOK_AUTH_FAILED',
        `receiver ${receiver.name} needs its credentials (Alertmanager http_config: authorization or basic_auth)`,
        { source, details: { receiver: receiver.name } },
      );
    }
    return;
  }
  if (receiver.kind === 'pagerduty') {
    const signatures = (header(headers, 'x-pagerduty-signature') ?? '')
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part.startsWith('v1='))
      .map((part) => part.slice(3))
      .slice(0, 16);
    let ok = false;
    for (const secret of receiver.secrets) {
      const expected = hmac(secret, rawBody);
      for (const signature of signatures) ok = macEquals(signature, expected) || ok;
    }
    if (!ok) {
      throw new RuneError(
        'WEBHOOK_SIGNATURE_INVALID',
        `receiver ${receiver.name}: X-PagerDuty-Signature is missing or matches none of the configured secrets`,
        { source, details: { receiver: receiver.name, signatures: signatures.length } },
      );
    }
    return;
  }
  const timestamp = header(headers, 'x-rune-timestamp') ?? '';
  const signature = /^sha256=([0-9a-fA-F]{64})$/.exec(
    header(headers, 'x-rune-signature') ?? '',
  )?.[1];
  let ok = false;
  if (signature !== undefined && /^\d{1,12}$/.test(timestamp)) {
    for (const secret of receiver.secrets) {
      ok = macEquals(signature, hmac(secret, timestamp, '.', rawBody)) || ok;
    }
  }
  if (!ok) {
    throw new RuneError(
      'WEBHOOK_SIGNATURE_INVALID',
      `receiver ${receiver.name}: X-Rune-Signature must be sha256=<hex HMAC-SHA256 of "<X-Rune-Timestamp>.<body>"> with a configured secret`,
      { source, details: { receiver: receiver.name } },
    );
  }
  // Checked after the MAC: an attacker learns nothing about the window from a forged request.
  const skew = Math.abs(nowMs - Number(timestamp) * 1000);
  if (skew > receiver.replayWindowMs) {
    throw new RuneError(
      'WEBHOOK_REPLAYED',
      `receiver ${receiver.name}: X-Rune-Timestamp is ${Math.round(skew / 1000)} s away from this server's clock (window ${Math.round(receiver.replayWindowMs / 1000)} s); a replayed or delayed request is refused`,
      {
        source,
        details: { receiver: receiver.name, skew_ms: skew, window_ms: receiver.replayWindowMs },
      },
    );
  }
}

const malformed = (receiver: string, message: string, pointer = ''): RuneError =>
  new RuneError('INVALID_ARGUMENT', `receiver ${receiver}: ${message}`, {
    source,
    details: { receiver, pointer },
  });

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A string map of at most MAX_LABELS entries of bounded size (labels, annotations). */
function stringMap(value: unknown, receiver: string, pointer: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isRecord(value))
    throw malformed(receiver, `${pointer} must be an object of strings`, pointer);
  const entries = Object.entries(value);
  if (entries.length > MAX_LABELS)
    throw malformed(receiver, `${pointer} has more than ${MAX_LABELS} entries`, pointer);
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, item] of entries) {
    if (typeof item !== 'string' || key.length > 256 || item.length > MAX_VALUE) {
      throw malformed(
        receiver,
        `${pointer}/${key.slice(0, 64)} must be a string of at most ${MAX_VALUE} characters`,
        `${pointer}/${key.slice(0, 64)}`,
      );
    }
    out[key] = item;
  }
  return { ...out };
}

const isoOrUndefined = (value: unknown): string | undefined => {
  if (typeof value !== 'string') return undefined;
  const time = Date.parse(value);
  // Alertmanager's zero time (0001-01-01) means "not set".
  return Number.isNaN(time) || time <= 0 ? undefined : new Date(time).toISOString();
};

const labelsFingerprint = (labels: Record<string, string>): string =>
  createHash('sha256')
    .update(
      JSON.stringify(
        Object.keys(labels)
          .sort()
          .map((key) => [key, labels[key]]),
      ),
    )
    .digest('hex')
    .slice(0, 16);

/** The alerts of a receiver's payload. Throws INVALID_ARGUMENT for a malformed payload. */
export function normalizePayload(receiver: ResolvedReceiver, body: unknown): NormalizedAlert[] {
  const name = receiver.name;
  if (!isRecord(body)) throw malformed(name, 'the body must be a JSON object');
  if (receiver.kind === 'pagerduty') {
    const event = body.event;
    if (!isRecord(event) || typeof event.event_type !== 'string' || !isRecord(event.data)) {
      throw malformed(name, 'a PagerDuty V3 webhook has event.event_type and event.data', '/event');
    }
    const data = event.data;
    const type = event.event_type;
    if (type !== 'incident.triggered' && type !== 'incident.resolved') return [];
    const id = typeof data.id === 'string' ? data.id : undefined;
    if (id === undefined || id.length > 256)
      throw malformed(name, 'event.data.id must be the incident id', '/event/data/id');
    const summary = (value: unknown): string | undefined =>
      isRecord(value) && typeof value.summary === 'string'
        ? value.summary.slice(0, MAX_VALUE)
        : undefined;
    const labels: Record<string, string> = {
      alertname: 'pagerduty',
      incident_id: id,
      event_type: type,
    };
    const put = (key: string, value: string | undefined) => {
      if (value !== undefined) labels[key] = value;
    };
    put('title', typeof data.title === 'string' ? data.title.slice(0, MAX_VALUE) : undefined);
    put('service', summary(data.service));
    put('priority', summary(data.priority));
    put('urgency', typeof data.urgency === 'string' ? data.urgency.slice(0, 64) : undefined);
    const startsAt = isoOrUndefined(data.created_at) ?? isoOrUndefined(event.occurred_at);
    return [
      {
        status: type === 'incident.resolved' ? 'resolved' : 'firing',
        labels,
        annotations: {},
        fingerprint: id,
        ...(startsAt === undefined ? {} : { startsAt }),
      },
    ];
  }
  const alerts = body.alerts;
  if (!Array.isArray(alerts)) throw malformed(name, 'the body needs an "alerts" array', '/alerts');
  if (alerts.length > MAX_ALERTS)
    throw malformed(name, `at most ${MAX_ALERTS} alerts per request`, '/alerts');
  if (receiver.kind === 'alertmanager' && body.version !== '4') {
    throw malformed(
      name,
      'only Alertmanager webhook payload version "4" is understood',
      '/version',
    );
  }
  return alerts.map((alert, index): NormalizedAlert => {
    const at = `/alerts/${index}`;
    if (!isRecord(alert)) throw malformed(name, `${at} must be an object`, at);
    const status = alert.status;
    if (status !== 'firing' && status !== 'resolved') {
      throw malformed(name, `${at}/status must be "firing" or "resolved"`, `${at}/status`);
    }
    const labels = stringMap(alert.labels, name, `${at}/labels`);
    const annotations = stringMap(alert.annotations, name, `${at}/annotations`);
    const given = alert.fingerprint;
    if (
      given !== undefined &&
      (typeof given !== 'string' || given.length === 0 || given.length > 256)
    ) {
      throw malformed(name, `${at}/fingerprint must be a string`, `${at}/fingerprint`);
    }
    const startsAt = isoOrUndefined(alert.startsAt ?? alert.starts_at);
    return {
      status,
      labels,
      annotations,
      fingerprint: typeof given === 'string' ? given : labelsFingerprint(labels),
      ...(startsAt === undefined ? {} : { startsAt }),
    };
  });
}
