/**
 * The endpoint's HTTP side: who may talk to it and how much they may send, before anything of
 * the SSM API or the S3 stand-in sees a request.
 *
 * The endpoint runs commands as the user it runs as, so every request passes, in this order:
 * a loopback peer (else 403); a declared body within `maxBodyBytes` (else 413 and the connection
 * closed unread); an `Authorization` header naming the endpoint's access key (else 403, before
 * any of the body is read); a body that stays within the bound while it is read (chunked bodies
 * included); a valid SigV4 signature over exactly what was received (else 403). Then GET/HEAD go
 * to the S3 stand-in and `POST /` with `x-amz-target: AmazonSSM.<Operation>` to the SSM API,
 * whose answers are AWS JSON 1.1 (errors `{"__type", "message"}`).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ApiError } from './endpoint-state.js';
import { sendS3Refusal } from './s3-stand-in.js';
import {
  checkAccessKey,
  type SigV4Credentials,
  type SigV4Refusal,
  verifySigV4,
} from './sigv4-verifier.js';

/** What the HTTP side hands requests to, once they passed every check. */
export interface EndpointHttpOptions {
  /** The only access key pair whose signatures are accepted. */
  credentials: SigV4Credentials;
  /** Largest request body read, in bytes. */
  maxBodyBytes: number;
  log: (line: string) => void;
  /** Answers one SSM API call or throws {@link ApiError}. */
  ssm: (operation: string, body: Record<string, unknown>) => unknown;
  /** Answers a signed GET or HEAD (the S3 stand-in). */
  s3: (request: IncomingMessage, response: ServerResponse) => void;
}

/** Thrown while reading a body that exceeds the bound. */
class BodyTooLargeError extends Error {}

/** True for the loopback names and addresses the endpoint accepts (to listen on, and as peers). */
export const isLoopback = (host: string): boolean =>
  host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);

/** Creates the (not yet listening) HTTP server of the endpoint. */
export function createEndpointServer(options: EndpointHttpOptions): Server {
  return createServer((request, response) => {
    handle(options, request, response).catch((error: unknown) => {
      sendError(response, new ApiError('InternalServerError', String(error), 500));
    });
  });
}

async function handle(
  options: EndpointHttpOptions,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const remote = request.socket.remoteAddress ?? '';
  if (!isLoopback(remote.replace(/^::ffff:/, ''))) {
    response.writeHead(403).end();
    return;
  }
  const s3 = request.method === 'GET' || request.method === 'HEAD';
  // Kept now: a request stream destroyed by an aborted read lets go of its socket.
  const socket = request.socket;
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > options.maxBodyBytes) {
    refuseBody(options, socket, response);
    return;
  }
  // A stranger is refused before anything of its body is read.
  const stranger = checkAccessKey(request.headers, options.credentials);
  if (stranger !== undefined) {
    refuse(options, request, response, stranger, s3);
    return;
  }
  let raw: Buffer;
  try {
    raw = await readBody(request, options.maxBodyBytes);
  } catch (error) {
    if (!(error instanceof BodyTooLargeError)) throw error;
    refuseBody(options, socket, response);
    return;
  }
  const refusal = await verifySigV4(
    {
      method: request.method ?? '',
      url: request.url ?? '/',
      headers: request.headers,
      body: raw,
    },
    options.credentials,
  );
  if (refusal !== undefined) {
    refuse(options, request, response, refusal, s3);
    return;
  }
  if (s3) {
    options.s3(request, response);
    return;
  }
  const target = String(request.headers['x-amz-target'] ?? '');
  if (request.method !== 'POST' || !target.startsWith('AmazonSSM.')) {
    sendError(response, new ApiError('UnknownOperationException', `unknown target ${target}`));
    return;
  }
  const operation = target.slice('AmazonSSM.'.length);
  let body: Record<string, unknown>;
  try {
    body =
      raw.byteLength === 0 ? {} : (JSON.parse(raw.toString('utf8')) as Record<string, unknown>);
  } catch {
    sendError(response, new ApiError('SerializationException', 'body is not JSON'));
    return;
  }
  try {
    const result = options.ssm(operation, body);
    const payload = Buffer.from(JSON.stringify(result), 'utf8');
    response.writeHead(200, {
      'content-type': 'application/x-amz-json-1.1',
      'content-length': payload.byteLength,
      'x-amzn-requestid': randomUUID(),
    });
    response.end(payload);
  } catch (error) {
    sendError(
      response,
      error instanceof ApiError ? error : new ApiError('InternalServerError', String(error), 500),
    );
  }
}

/** Reads the body, failing as soon as it grows beyond the bound (chunked bodies included). */
async function readBody(request: IncomingMessage, maxBodyBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).byteLength;
    if (size > maxBodyBytes) throw new BodyTooLargeError();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** 413 and the connection closed: the rest of the body is never read. */
function refuseBody(options: EndpointHttpOptions, socket: Socket, response: ServerResponse): void {
  options.log(`refused a body over ${options.maxBodyBytes} bytes`);
  const payload = Buffer.from(
    JSON.stringify({
      __type: 'RequestEntityTooLargeException',
      message: `The request body exceeds ${options.maxBodyBytes} bytes.`,
    }),
    'utf8',
  );
  response.shouldKeepAlive = false;
  response.writeHead(413, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': payload.byteLength,
    connection: 'close',
  });
  response.end(payload, () => socket.destroy());
}

/** 403 with the AWS error the SDK expects (JSON for SSM, XML for the S3 stand-in). */
function refuse(
  options: EndpointHttpOptions,
  request: IncomingMessage,
  response: ServerResponse,
  refusal: SigV4Refusal,
  s3: boolean,
): void {
  options.log(`refused ${request.method} ${request.url}: ${refusal.type}`);
  if (s3) {
    sendS3Refusal(request, response, refusal);
    return;
  }
  sendError(response, new ApiError(refusal.type, refusal.message, 403));
}

function sendError(response: ServerResponse, error: ApiError): void {
  const payload = Buffer.from(
    JSON.stringify({ __type: error.type, message: error.message }),
    'utf8',
  );
  response.writeHead(error.status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': payload.byteLength,
    'x-amzn-requestid': randomUUID(),
  });
  response.end(payload);
}
