import { describe, expect, it } from 'vitest';
import { createRcsRequest } from './build.js';
import { validateRcsRequest } from './parse.js';

const input = {
  messageId: '6f1c2b8e-3d4a-4b5c-9d6e-7f8091a2b3c4',
  traceId: '0af7651916cd43dd8448eb211c80319c',
  timestamp: new Date('2026-01-02T03:04:05.000Z'),
  sender: { component: 'rune-core', version: '1.2.3', host: 'control' },
  action: 'check-disk',
  node: 'web-1',
  transport: 'ssh',
  deployMode: 'ship' as const,
  parameters: { path: '/', nested: { list: [1, 2] } },
  dryRun: true,
  timeoutMs: 5000,
};

describe('createRcsRequest', () => {
  it('builds a valid RCS v1 request from its inputs', () => {
    const request = createRcsRequest(input);
    expect(validateRcsRequest(request).ok).toBe(true);
    expect(request).toEqual({
      message_metadata: {
        message_id: input.messageId,
        trace_id: input.traceId,
        timestamp: '2026-01-02T03:04:05.000Z',
        sender: input.sender,
      },
      routing: { action: 'check-disk', node: 'web-1', transport: 'ssh', deploy_mode: 'ship' },
      payload: {
        schema_version: 'rcs_v1',
        data: {
          input_parameters: { path: '/', nested: { list: [1, 2] } },
          options: { dry_run: true, timeout_ms: 5000 },
        },
      },
    });
  });

  it('copies the parameters, so a later change to the input does not reach the request', () => {
    const parameters = { nested: { list: [1] } };
    const request = createRcsRequest({ ...input, parameters });
    parameters.nested.list.push(2);
    expect(request.payload.data.input_parameters).toEqual({ nested: { list: [1] } });
  });
});
