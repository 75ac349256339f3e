/** Shared set-up of the endpoint's integration tests: the endpoint and real SSM and S3 clients. */
import { S3Client } from '@aws-sdk/client-s3';
import { SSMClient } from '@aws-sdk/client-ssm';
import { type SsmEndpoint, type SsmEndpointOptions, startSsmEndpoint } from '../src/index.js';

export const INSTANCE = 'i-0123456789abcdef0';
export const OTHER_INSTANCE = 'i-0fedcba987654321f';

export interface Harness {
  endpoint: SsmEndpoint;
  client: SSMClient;
  s3: S3Client;
  close(): Promise<void>;
}

export async function startHarness(
  options: SsmEndpointOptions = {},
  maxAttempts = 3,
): Promise<Harness> {
  const endpoint = await startSsmEndpoint({ instances: [INSTANCE, OTHER_INSTANCE], ...options });
  const client = new SSMClient({
    endpoint: endpoint.url,
    region: 'us-east-1',
    credentials: endpoint.credentials,
    maxAttempts,
    retryMode: 'adaptive',
  });
  const s3 = new S3Client({
    endpoint: endpoint.url,
    region: 'us-east-1',
    credentials: endpoint.credentials,
    forcePathStyle: true,
  });
  return {
    endpoint,
    client,
    s3,
    async close(): Promise<void> {
      client.destroy();
      s3.destroy();
      await endpoint.close();
    },
  };
}
