/**
 * A minimal path-style S3 `GetObject` / `HeadObject` on the endpoint's own port, holding the full
 * output of commands that named an `OutputS3BucketName`, under the key layout the SSM agent uses
 * for AWS-RunShellScript. Objects live in memory for the endpoint's lifetime.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { InvocationState } from './endpoint-state.js';
import type { SigV4Refusal } from './sigv4-verifier.js';

/** One stream of an invocation's output. */
export type OutputStream = 'stdout' | 'stderr';

/** S3's XML error names for the SigV4 refusals. */
const S3_REFUSALS: Record<SigV4Refusal['type'], string> = {
  MissingAuthenticationTokenException: 'AccessDenied',
  UnrecognizedClientException: 'InvalidAccessKeyId',
  InvalidSignatureException: 'SignatureDoesNotMatch',
};

const xmlText = (text: string): string => text.replace(/[<>&]/g, '');

/** The key the agent writes one stream of an invocation to (without the bucket). */
export function outputKey(invocation: InvocationState, stream: OutputStream): string {
  const prefix = invocation.command.prefix.replace(/^\/+|\/+$/g, '');
  const key = `${invocation.command.commandId}/${invocation.instanceId}/awsrunShellScript/0.awsrunshellscript/${stream}`;
  return prefix === '' ? key : `${prefix}/${key}`;
}

/** 403 with the S3 XML error for a refused signature (no body for HEAD). */
export function sendS3Refusal(
  request: IncomingMessage,
  response: ServerResponse,
  refusal: SigV4Refusal,
): void {
  const requestId = randomUUID();
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${S3_REFUSALS[refusal.type]}</Code><Message>${xmlText(refusal.message)}</Message><RequestId>${requestId}</RequestId></Error>`;
  response.writeHead(403, { 'content-type': 'application/xml', 'x-amz-request-id': requestId });
  response.end(request.method === 'HEAD' ? undefined : xml);
}

/** The object store behind the S3 stand-in. */
export class S3StandIn {
  private readonly objects = new Map<string, Buffer>();

  /** @param baseUrl the endpoint's URL once it listens (object URLs are built from it). */
  constructor(private readonly baseUrl: () => string) {}

  /** Keeps the output of a finished invocation, as the agent uploads it (no object for an empty stream). */
  store(invocation: InvocationState): void {
    const { bucket } = invocation.command;
    if (bucket === '') return;
    const stdout = Buffer.concat(invocation.stdout);
    const stderr = Buffer.concat(invocation.stderr);
    if (stdout.byteLength > 0)
      this.objects.set(`${bucket}/${outputKey(invocation, 'stdout')}`, stdout);
    if (stderr.byteLength > 0)
      this.objects.set(`${bucket}/${outputKey(invocation, 'stderr')}`, stderr);
  }

  /** `StandardOutputUrl` / `StandardErrorUrl` of an invocation: empty without a bucket. */
  url(invocation: InvocationState, stream: OutputStream): string {
    if (invocation.command.bucket === '') return '';
    return `${this.baseUrl()}/${invocation.command.bucket}/${outputKey(invocation, stream)}`;
  }

  /** Answers a signed GET or HEAD of `/<bucket>/<key>`. */
  handle(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const path = decodeURIComponent(url.pathname.replace(/^\/+/, ''));
    const object = this.objects.get(path);
    const requestId = randomUUID();
    if (object === undefined) {
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>${xmlText(path)}</Key><RequestId>${requestId}</RequestId></Error>`;
      response.writeHead(404, {
        'content-type': 'application/xml',
        'x-amz-request-id': requestId,
      });
      response.end(request.method === 'HEAD' ? undefined : xml);
      return;
    }
    response.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': object.byteLength,
      'last-modified': new Date().toUTCString(),
      etag: `"${randomUUID().replaceAll('-', '')}"`,
      'x-amz-request-id': requestId,
    });
    response.end(request.method === 'HEAD' ? undefined : object);
  }
}
