/**
 * The one builder of the RCS v1 request envelope, used by core's planning and by the plugin test
 * kit, so both send plugins the same document. It fills in the fixed parts (schema_version, the
 * nesting of metadata, routing and options) and copies the parameters; the caller supplies the
 * ids and time (no randomness or clock here: this package does no I/O), and validates the result
 * with `validateRcsRequest` where the values come from outside.
 */
import type { DeployMode } from '../../common/primitives.js';
import { RCS_V1, type RcsRequest, type RcsSender } from './schema.js';

/** What {@link createRcsRequest} needs: everything that varies between requests. */
export interface RcsRequestInput {
  /** RCS `message_id` (a UUID). */
  messageId: string;
  /** The run's trace id (32 lowercase hex). */
  traceId: string;
  /** When the request was built; an RFC 3339 string or a Date. */
  timestamp: string | Date;
  sender: RcsSender;
  action: string;
  node: string;
  transport: string;
  deployMode: DeployMode;
  /** Resolved input parameters; copied (structured clone), so the request owns its values. */
  parameters: Readonly<Record<string, unknown>>;
  dryRun: boolean;
  timeoutMs: number;
}

/** Builds an RCS v1 request. Not validated: pass it to `validateRcsRequest` when unsure. */
export function createRcsRequest(input: RcsRequestInput): RcsRequest {
  return {
    message_metadata: {
      message_id: input.messageId,
      trace_id: input.traceId,
      timestamp:
        typeof input.timestamp === 'string' ? input.timestamp : input.timestamp.toISOString(),
      sender: input.sender,
    },
    routing: {
      action: input.action,
      node: input.node,
      transport: input.transport,
      deploy_mode: input.deployMode,
    },
    payload: {
      schema_version: RCS_V1,
      data: {
        input_parameters: structuredClone({ ...input.parameters }),
        options: { dry_run: input.dryRun, timeout_ms: input.timeoutMs },
      },
    },
  };
}
