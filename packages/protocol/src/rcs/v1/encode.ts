/**
 * The canonical encoding of an RCS v1 request (specs/rcs-v1.md, "Canonical encoding"): the bytes
 * RUNE writes to a plugin's stdin. Plain compact JSON that any JSON parser reads, with the
 * members in one fixed order, so a receiver may recognise the envelope by its shape and parse
 * only `input_parameters` (the Bash library does, and falls back to its general parser for
 * anything else). The order comes from here, not from the object's own key order, so a request
 * that went through a plan file or a database row still encodes the same way.
 */
import type { RcsRequest } from './schema.js';

/**
 * Encodes `request` canonically: compact `JSON.stringify` text (its string escaping), members in
 * the order of the RCS field table, no trailing newline. Does not validate: pass a request that
 * `validateRcsRequest` accepted.
 */
export function encodeRcsRequest(request: RcsRequest): string {
  const { message_metadata: meta, routing, payload } = request;
  return JSON.stringify({
    message_metadata: {
      message_id: meta.message_id,
      trace_id: meta.trace_id,
      timestamp: meta.timestamp,
      sender: {
        component: meta.sender.component,
        version: meta.sender.version,
        host: meta.sender.host,
      },
    },
    routing: {
      action: routing.action,
      node: routing.node,
      transport: routing.transport,
      deploy_mode: routing.deploy_mode,
    },
    payload: {
      schema_version: payload.schema_version,
      data: {
        input_parameters: payload.data.input_parameters,
        options: {
          dry_run: payload.data.options.dry_run,
          timeout_ms: payload.data.options.timeout_ms,
        },
      },
    },
  });
}
