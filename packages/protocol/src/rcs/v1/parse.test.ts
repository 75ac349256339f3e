import { describe, expect, it } from 'vitest';
import { isRcsRequest, negotiateRcsVersion, parseRcsRequest, validateRcsRequest } from './parse.js';
import type { RcsRequest } from './schema.js';

const request: RcsRequest = {
  message_metadata: {
    message_id: '3f2b8c1e-9a4d-4e7b-8c21-5d6f7a8b9c0d',
    trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
    timestamp: '2026-11-22T01:50:32.123Z',
    sender: { component: 'rune-cli', version: '0.1.0', host: 'ops-1' },
  },
  routing: { action: 'noop', node: 'localhost', transport: 'local', deploy_mode: 'ship' },
  payload: {
    schema_version: 'rcs_v1',
    data: { input_parameters: {}, options: { dry_run: false, timeout_ms: 1000 } },
  },
};

describe('RCS requests', () => {
  it('accepts a valid request in every input form', () => {
    expect(isRcsRequest(request)).toBe(true);
    expect(validateRcsRequest(request)).toEqual({ ok: true, value: request });
    expect(parseRcsRequest(JSON.stringify(request))).toEqual({ ok: true, value: request });
  });

  it('returns no partial object on failure', () => {
    const result = parseRcsRequest(
      JSON.stringify({ ...request, routing: { ...request.routing, action: '../x' } }),
    );
    expect(result).not.toHaveProperty('value');
    expect(result.ok).toBe(false);
  });

  it('names the error source and trace id it is given', () => {
    const result = parseRcsRequest('nope', {
      source: { component: 'plugin:noop' },
      traceId: request.message_metadata.trace_id,
    });
    expect(result.ok ? undefined : result.error.toJSON()).toMatchObject({
      code: 'MALFORMED_JSON',
      source: { component: 'plugin:noop' },
      trace_id: request.message_metadata.trace_id,
    });
  });

  it('refuses an unknown schema_version naming the supported ones', () => {
    const result = validateRcsRequest({
      ...request,
      payload: { ...request.payload, schema_version: 'rcs_v7' },
    });
    expect(result.ok ? undefined : result.error.details).toEqual({
      received: 'rcs_v7',
      supported: ['rcs_v1'],
      pointer: '/payload/schema_version',
    });
  });

  it('negotiates the version to send a plugin', () => {
    expect(negotiateRcsVersion(['rcs_v2', 'rcs_v1'])).toEqual({ ok: true, value: 'rcs_v1' });
    const none = negotiateRcsVersion(['rcs_v2']);
    expect(none.ok ? 'ok' : none.error.code).toBe('UNSUPPORTED_SCHEMA_VERSION');
  });
});
