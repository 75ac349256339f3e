/** Shared set-up of the integration tests: the local endpoint, a real SSMClient and a transport. */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { SSMClient } from '@aws-sdk/client-ssm';
import { type SsmEndpoint, type SsmEndpointOptions, startSsmEndpoint } from '@rune/ssm-endpoint';
import type { Transport, TransportExecRequest, TransportPlugin } from '@rune/transport';
import { createSsmTransport, type SsmTransportOptions } from '../src/index.js';

export const INSTANCE = 'i-0123456789abcdef0';
export const OTHER_INSTANCE = 'i-0fedcba987654321f';

export interface Harness {
  endpoint: SsmEndpoint;
  client: SSMClient;
  s3: S3Client;
  cacheDir: string;
  transport(options?: SsmTransportOptions): Transport;
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
  const cacheDir = mkdtempSync(join(tmpdir(), 'rune-ssm-cache-'));
  const transports: Transport[] = [];
  return {
    endpoint,
    client,
    s3,
    cacheDir,
    transport(extra: SsmTransportOptions = {}): Transport {
      const transport = createSsmTransport({
        client,
        s3Client: s3,
        remoteCacheDir: cacheDir,
        pollIntervalMs: 20,
        maxPollIntervalMs: 100,
        timeoutGraceMs: 1000,
        ...extra,
      });
      transports.push(transport);
      return transport;
    },
    async close(): Promise<void> {
      for (const transport of transports) await transport.close();
      client.destroy();
      s3.destroy();
      await endpoint.close();
      rmSync(cacheDir, { recursive: true, force: true });
    },
  };
}

export function plugin(script: string, action = 'test-plugin'): TransportPlugin {
  const content = new TextEncoder().encode(script);
  return {
    action,
    version: '1.0.0',
    sha256: createHash('sha256').update(content).digest('hex'),
    content,
  };
}

export function request(
  node: string,
  pluginToRun: TransportPlugin,
  overrides: Partial<TransportExecRequest> = {},
): TransportExecRequest {
  return {
    node: { name: node },
    plugin: pluginToRun,
    deployMode: 'ship',
    stdin: new TextEncoder().encode('{"hello":"world"}'),
    timeoutMs: 20_000,
    limits: { maxStdoutBytes: 1024 * 1024, maxStderrBytes: 64 * 1024 },
    signal: new AbortController().signal,
    traceId: randomBytes(16).toString('hex'),
    ...overrides,
  };
}

export const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
