/**
 * @rune/ssm-endpoint — a local AWS SSM endpoint that really executes Run Command commands on this
 * machine, for integration tests and try-outs without AWS (bin: `rune-ssm-endpoint`). This file
 * is the complete public surface of the package: `startSsmEndpoint`, its types and `VERSION`.
 */

export type { SsmEndpointFaults, SsmPingStatus } from './endpoint-state.js';
export { createEndpointCredentials, type SigV4Credentials } from './sigv4-verifier.js';
export type { SsmEndpointInstanceOptions, SsmEndpointRequest } from './ssm-api.js';
export {
  DEFAULT_SSM_ENDPOINT_MAX_BODY_BYTES,
  type SsmEndpoint,
  type SsmEndpointOptions,
  startSsmEndpoint,
} from './ssm-endpoint.js';
export { VERSION } from './version.js';
