/**
 * @rune/transport-ssm/testing — the complete public surface for tests: a local AWS SSM endpoint
 * that really executes Run Command commands on this machine, for integration tests and try-outs
 * without AWS.
 */

export type { SigV4Credentials } from './sigv4-verifier.js';
export {
  createEndpointCredentials,
  DEFAULT_SSM_ENDPOINT_MAX_BODY_BYTES,
  type SsmEndpoint,
  type SsmEndpointFaults,
  type SsmEndpointInstanceOptions,
  type SsmEndpointOptions,
  type SsmEndpointRequest,
  type SsmPingStatus,
  startSsmEndpoint,
} from './ssm-endpoint.js';
