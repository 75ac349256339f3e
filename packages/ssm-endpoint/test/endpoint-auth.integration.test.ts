/**
 * The local SSM endpoint runs commands as the user it runs as, so it must answer only the holder
 * of its per-start secret: SigV4 verified for every request (SSM JSON and the S3 stand-in), and
 * request bodies bounded before they are buffered. Real @aws-sdk/client-ssm and client-s3, raw
 * sockets for what an SDK would never send.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  DescribeInstanceInformationCommand,
  SendCommandCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SSM_ENDPOINT_MAX_BODY_BYTES, startSsmEndpoint } from '../src/index.js';
import { type Harness, INSTANCE, startHarness } from './helpers.js';

let harness: Harness;
let scratch: string;
beforeAll(async () => {
  harness = await startHarness({ pendingMs: 10 });
  scratch = mkdtempSync(join(tmpdir(), 'rune-ssm-auth-'));
});
afterAll(async () => {
  await harness.close();
  rmSync(scratch, { recursive: true, force: true });
});

const clientWith = (credentials: { accessKeyId: string; secretAccessKey: string }): SSMClient =>
  new SSMClient({
    endpoint: harness.endpoint.url,
    region: 'us-east-1',
    credentials,
    maxAttempts: 1,
  });

const errorName = (promise: Promise<unknown>): Promise<string> =>
  promise.then(
    () => 'resolved',
    (error: unknown) =>
      `${(error as Error).name} ${(error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode}`,
  );

const sendCommand = (marker: string): SendCommandCommand =>
  new SendCommandCommand({
    DocumentName: 'AWS-RunShellScript',
    InstanceIds: [INSTANCE],
    Parameters: { commands: [`touch ${marker}`] },
  });

/** Sends raw bytes on one connection; resolves with what came back and how much was written. */
function rawExchange(
  head: string,
  bodyChunk: Buffer,
  maxBytes: number,
  chunked = false,
): Promise<{ response: string; written: number; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(harness.endpoint.port, '127.0.0.1');
    let response = '';
    let written = 0;
    let done = false;
    const finish = (closedByServer: boolean): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ response, written, closedByServer });
    };
    socket.on('data', (data) => {
      response += data.toString('latin1');
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // The server closing mid-upload surfaces as EPIPE / ECONNRESET on our side.
      if (error.code === 'EPIPE' || error.code === 'ECONNRESET') finish(true);
      else reject(error);
    });
    socket.on('connect', () => {
      socket.write(head);
      const pump = (): void => {
        while (!done && written < maxBytes) {
          const piece = chunked
            ? Buffer.concat([
                Buffer.from(`${bodyChunk.byteLength.toString(16)}\r\n`),
                bodyChunk,
                Buffer.from('\r\n'),
              ])
            : bodyChunk;
          written += bodyChunk.byteLength;
          if (!socket.write(piece)) {
            socket.once('drain', pump);
            return;
          }
        }
        if (!done) finish(false);
      };
      pump();
    });
  });
}

describe('local SSM endpoint: only the holder of its per-start secret is answered', () => {
  it('generates a fresh key pair per start and accepts a given one', async () => {
    const other = await startSsmEndpoint({ instances: [INSTANCE] });
    const given = await startSsmEndpoint({
      credentials: { accessKeyId: 'AKIDEXAMPLEEXAMPLE00', secretAccessKey: 'x'.repeat(40) },
    });
    try {
      expect(other.credentials.accessKeyId).toMatch(/^RUNE[A-Z2-7]{16}$/);
      expect(other.credentials.secretAccessKey.length).toBeGreaterThanOrEqual(40);
      expect(other.credentials).not.toEqual(harness.endpoint.credentials);
      expect(given.credentials.accessKeyId).toBe('AKIDEXAMPLEEXAMPLE00');
    } finally {
      await other.close();
      await given.close();
    }
  });

  it('answers a correctly signed request', async () => {
    const answer = await harness.client.send(new DescribeInstanceInformationCommand({}));
    expect(answer.InstanceInformationList?.length).toBeGreaterThan(0);
  });

  it('refuses an unsigned request with 403 MissingAuthenticationTokenException', async () => {
    const before = harness.endpoint.requests.length;
    const response = await fetch(harness.endpoint.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'AmazonSSM.SendCommand',
      },
      body: JSON.stringify({
        DocumentName: 'AWS-RunShellScript',
        InstanceIds: [INSTANCE],
        Parameters: { commands: [`touch ${join(scratch, 'unsigned')}`] },
      }),
    });
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ __type: 'MissingAuthenticationTokenException' });
    expect(harness.endpoint.requests.length).toBe(before);
    expect(existsSync(join(scratch, 'unsigned'))).toBe(false);
  });

  // What the SSM transport makes of this answer (AUTH_FAILED) is asserted in
  // packages/transport-ssm/test/ssm-transport.integration.test.ts.
  it('refuses another access key: UnrecognizedClientException (403)', async () => {
    const stranger = clientWith({ accessKeyId: 'AKIDSTRANGER00000000', secretAccessKey: 'guess' });
    const marker = join(scratch, 'stranger');
    expect(await errorName(stranger.send(sendCommand(marker)))).toBe(
      'UnrecognizedClientException 403',
    );
    stranger.destroy();
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses the right key id with a wrong secret: InvalidSignatureException (403), nothing runs', async () => {
    const before = harness.endpoint.requests.length;
    const forger = clientWith({
      accessKeyId: harness.endpoint.credentials.accessKeyId,
      secretAccessKey: 'not-the-secret',
    });
    const marker = join(scratch, 'forged');
    expect(await errorName(forger.send(sendCommand(marker)))).toBe('InvalidSignatureException 403');
    forger.destroy();
    expect(harness.endpoint.requests.length).toBe(before);
    expect(existsSync(marker)).toBe(false);
  });

  it('the signature covers the body: a body changed after signing is refused', async () => {
    const tampering = clientWith(harness.endpoint.credentials);
    const marker = join(scratch, 'tampered');
    tampering.middlewareStack.add(
      (next) => async (args) => {
        const http = args.request as { body?: unknown; headers: Record<string, string> };
        const body = http.body;
        const original =
          typeof body === 'string' ? body : Buffer.from(body as Uint8Array).toString('utf8');
        expect(original).toContain('touch ');
        http.body = original.replace('touch ', 'touch  ');
        http.headers['content-length'] = String(Buffer.byteLength(http.body as string));
        return next(args);
      },
      // The deserialize step wraps the send, i.e. runs after the signing middleware.
      { step: 'deserialize', name: 'tamperAfterSigning' },
    );
    expect(await errorName(tampering.send(sendCommand(marker)))).toBe(
      'InvalidSignatureException 403',
    );
    tampering.destroy();
    expect(existsSync(marker)).toBe(false);
  });

  it('the S3 stand-in checks signatures too (AccessDenied / SignatureDoesNotMatch)', async () => {
    const unsigned = await fetch(`${harness.endpoint.url}/rune-output/some/key`);
    expect(unsigned.status).toBe(403);
    expect(await unsigned.text()).toContain('<Code>AccessDenied</Code>');
    const forger = new S3Client({
      endpoint: harness.endpoint.url,
      region: 'us-east-1',
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: {
        accessKeyId: harness.endpoint.credentials.accessKeyId,
        secretAccessKey: 'not-the-secret',
      },
    });
    expect(
      await errorName(forger.send(new GetObjectCommand({ Bucket: 'rune-output', Key: 'k' }))),
    ).toBe('SignatureDoesNotMatch 403');
    forger.destroy();
    // The right key reaches the object store (no such key here, but past the signature check).
    expect(
      await errorName(harness.s3.send(new GetObjectCommand({ Bucket: 'rune-output', Key: 'k' }))),
    ).toBe('NoSuchKey 404');
  });
});

describe('local SSM endpoint: request bodies are bounded', () => {
  const oversized = 200 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 0x61);

  it('a declared 200 MB body is answered 413 and the connection closed before it is sent', async () => {
    const head = [
      'POST / HTTP/1.1',
      `Host: 127.0.0.1:${harness.endpoint.port}`,
      'Content-Type: application/x-amz-json-1.1',
      'X-Amz-Target: AmazonSSM.SendCommand',
      `Content-Length: ${oversized}`,
      '',
      '',
    ].join('\r\n');
    const { response, written, closedByServer } = await rawExchange(head, chunk, oversized);
    expect(response).toMatch(/^HTTP\/1\.1 413 /);
    expect(closedByServer).toBe(true);
    // Closed long before the body was through: at most what the socket buffers took.
    expect(written).toBeLessThan(oversized / 4);
  });

  it('a chunked body without a length is cut at the bound: 413, connection closed', async () => {
    const head = [
      'POST / HTTP/1.1',
      `Host: 127.0.0.1:${harness.endpoint.port}`,
      'Content-Type: application/x-amz-json-1.1',
      'X-Amz-Target: AmazonSSM.SendCommand',
      'Transfer-Encoding: chunked',
      // The right key id (not a secret) gets a stranger past the cheap check to the body read.
      `Authorization: AWS4-HMAC-SHA256 Credential=${harness.endpoint.credentials.accessKeyId}/20260101/us-east-1/ssm/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`,
      '',
      '',
    ].join('\r\n');
    const { response, written, closedByServer } = await rawExchange(head, chunk, oversized, true);
    expect(response).toMatch(/^HTTP\/1\.1 413 /);
    expect(closedByServer).toBe(true);
    expect(written).toBeGreaterThan(DEFAULT_SSM_ENDPOINT_MAX_BODY_BYTES);
    expect(written).toBeLessThan(oversized / 4);
  });
});
