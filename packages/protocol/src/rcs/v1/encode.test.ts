import { describe, expect, it } from 'vitest';
import { createRcsRequest } from './build.js';
import { encodeRcsRequest } from './encode.js';
import type { RcsRequest } from './schema.js';

const request = createRcsRequest({
  messageId: '6f1c2b8e-3d4a-4b5c-9d6e-7f8091a2b3c4',
  traceId: '0af7651916cd43dd8448eb211c80319c',
  timestamp: '2026-01-02T03:04:05.000Z',
  sender: { component: 'rune-core', version: '1.2.3', host: 'control' },
  action: 'check-disk',
  node: 'web-1',
  transport: 'ssh',
  deployMode: 'ship',
  parameters: { path: '/', quote: 'a"b\\c\n' },
  dryRun: false,
  timeoutMs: 5000,
});

const CANONICAL =
  '{"message_metadata":{"message_id":"6f1c2b8e-3d4a-4b5c-9d6e-7f8091a2b3c4","trace_id":"0af7651916cd43dd8448eb211c80319c","timestamp":"2026-01-02T03:04:05.000Z","sender":{"component":"rune-core","version":"1.2.3","host":"control"}},' +
  '"routing":{"action":"check-disk","node":"web-1","transport":"ssh","deploy_mode":"ship"},' +
  '"payload":{"schema_version":"rcs_v1","data":{"input_parameters":{"path":"/","quote":"a\\"b\\\\c\\n"},"options":{"dry_run":false,"timeout_ms":5000}}}}';

describe('encodeRcsRequest', () => {
  it('writes the canonical encoding of specs/rcs-v1.md byte for byte', () => {
    expect(encodeRcsRequest(request)).toBe(CANONICAL);
    expect(JSON.parse(encodeRcsRequest(request))).toEqual(request);
  });

  it("takes the member order from the spec, not from the object's own key order", () => {
    // A request read back from a plan file or a store may come with its keys in any order.
    const shuffled = {
      payload: {
        data: {
          options: { timeout_ms: 5000, dry_run: false },
          input_parameters: request.payload.data.input_parameters,
        },
        schema_version: 'rcs_v1',
      },
      routing: { deploy_mode: 'ship', transport: 'ssh', node: 'web-1', action: 'check-disk' },
      message_metadata: {
        sender: { host: 'control', version: '1.2.3', component: 'rune-core' },
        timestamp: '2026-01-02T03:04:05.000Z',
        trace_id: '0af7651916cd43dd8448eb211c80319c',
        message_id: '6f1c2b8e-3d4a-4b5c-9d6e-7f8091a2b3c4',
      },
    } as RcsRequest;
    expect(encodeRcsRequest(shuffled)).toBe(CANONICAL);
  });
});
