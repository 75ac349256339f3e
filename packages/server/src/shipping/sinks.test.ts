import { describe, expect, it } from 'vitest';
import { checkHecUrl, syslogMessage } from './sinks.js';

const record = {
  seq: 7,
  record_id: 'run:0190a8e5-"]\\x',
  kind: 'run' as const,
  body: { status: 'failed', finished_at: '2026-12-01T10:00:00.000Z', big: 'x'.repeat(70_000) },
  created_at: '2026-12-01T10:00:01.000Z',
};

describe('syslogMessage', () => {
  it('is RFC 5424 with an escaped structured-data id and a BOM before the JSON', () => {
    const message = syslogMessage(record, 16).toString('utf8');
    // local0 (16) * 8 + warning (4) = 132 for a failed run.
    expect(message).toMatch(
      /^<132>1 2026-12-01T10:00:00\.000Z \S+ rune \d+ run \[rune@32473 record_id="run:0190a8e5-\\"\\]\\\\x" seq="7"\] \uFEFF\{/,
    );
  });

  it('replaces a body too big for a datagram by a stub that says so', () => {
    const message = syslogMessage(record, 16, 65_000);
    expect(message.length).toBeLessThan(65_000);
    expect(message.toString('utf8')).toContain('"truncated":true');
  });
});

describe('checkHecUrl', () => {
  it('refuses to send the HEC token in clear over the network', () => {
    expect(() => checkHecUrl('http://splunk.example.net:8088', 'url')).toThrow(/in clear/);
    expect(checkHecUrl('https://splunk.example.net:8088', 'url').protocol).toBe('https:');
    expect(checkHecUrl('http://127.0.0.1:8088', 'url').hostname).toBe('127.0.0.1');
    expect(checkHecUrl('http://[::1]:8088', 'url').protocol).toBe('http:');
  });
});
