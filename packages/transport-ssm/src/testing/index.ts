/**
 * @rune/transport-ssm/testing — a local AWS SSM endpoint that really executes Run Command
 * commands on this machine, for integration tests and try-outs without AWS.
 */

export {
  LOCAL_SSM_CREDENTIALS,
  type SsmEndpoint,
  type SsmEndpointFaults,
  type SsmEndpointInstanceOptions,
  type SsmEndpointOptions,
  type SsmEndpointRequest,
  type SsmPingStatus,
  startSsmEndpoint,
} from './ssm-endpoint.js';
