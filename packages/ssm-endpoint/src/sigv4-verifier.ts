/**
 * Verification of AWS Signature Version 4 for the local SSM endpoint.
 *
 * There is no server-side SigV4 verifier among the AWS/Smithy packages, but the signer the SDK
 * itself uses (`@smithy/signature-v4`) is deterministic: given the same method, path, query,
 * signed headers, body, date, region, service and secret, it produces the same signature. So the
 * endpoint re-signs exactly what it received — only the headers the client listed in
 * `SignedHeaders`, the body bytes it read, the client's `x-amz-date` — with the secret it
 * generated at start, and compares the two signatures in constant time. Nothing of the canonical
 * request is re-implemented here; only the `Authorization` header is parsed.
 */
import {
  createHash,
  createHmac,
  type Hash,
  type Hmac,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';

/** What the signer hands a hash: a string or any binary view. */
type SourceData = string | ArrayBuffer | ArrayBufferView;

function toBytes(data: SourceData): string | Uint8Array {
  if (typeof data === 'string') return data;
  if (ArrayBuffer.isView(data))
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

/** The access key pair the endpoint accepts. */
export interface SigV4Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * A fresh random access key pair, shaped like AWS's (20-character id, 40-character secret): the
 * endpoint's default, so no other local user can guess the pair it answers.
 */
export function createEndpointCredentials(): SigV4Credentials {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const id = Array.from(randomBytes(16), (byte) => alphabet[byte % 32]).join('');
  return {
    accessKeyId: `RUNE${id}`,
    secretAccessKey: randomBytes(30).toString('base64').replaceAll('+', 'a').replaceAll('/', 'b'),
  };
}

/** A request as the endpoint received it. */
export interface ReceivedRequest {
  method: string;
  /** The raw request target (`/path?query`), as on the request line. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Uint8Array;
}

/** Why a request was refused; `type` is the AWS error name the endpoint answers with. */
export interface SigV4Refusal {
  type:
    | 'MissingAuthenticationTokenException'
    | 'UnrecognizedClientException'
    | 'InvalidSignatureException';
  message: string;
}

/** How far the client's clock may be from ours, as AWS allows (15 minutes). */
export const SIGV4_MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

/** The SHA-256 / HMAC-SHA-256 constructor the signer expects, on node:crypto. */
class NodeSha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(secret));
  }
  update(data: SourceData): void {
    this.hash.update(toBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

/** The access key id an `Authorization` header names, or undefined when it is not SigV4. */
export function accessKeyOf(headers: IncomingHttpHeaders): string | undefined {
  const match = AUTHORIZATION.exec(String(headers.authorization ?? ''));
  return match?.[1];
}

/**
 * Checks the `Authorization` header of a request without its body: present, well-formed, and
 * naming `credentials.accessKeyId`. Lets the endpoint refuse a stranger before reading a body.
 */
export function checkAccessKey(
  headers: IncomingHttpHeaders,
  credentials: SigV4Credentials,
): SigV4Refusal | undefined {
  const header = headers.authorization;
  if (header === undefined || header === '') {
    return {
      type: 'MissingAuthenticationTokenException',
      message: 'Request is missing Authentication Token',
    };
  }
  const keyId = accessKeyOf(headers);
  if (keyId === undefined) {
    return {
      type: 'InvalidSignatureException',
      message: 'Authorization header is not an AWS4-HMAC-SHA256 signature.',
    };
  }
  if (!equalStrings(keyId, credentials.accessKeyId)) {
    return {
      type: 'UnrecognizedClientException',
      message: 'The security token included in the request is invalid.',
    };
  }
  return undefined;
}

/**
 * Verifies the SigV4 signature of a fully read request; resolves to undefined when it is valid
 * for `credentials`, else to the refusal to answer with.
 */
export async function verifySigV4(
  request: ReceivedRequest,
  credentials: SigV4Credentials,
  now: number = Date.now(),
): Promise<SigV4Refusal | undefined> {
  const refused = checkAccessKey(request.headers, credentials);
  if (refused !== undefined) return refused;
  const invalid = (message: string): SigV4Refusal => ({
    type: 'InvalidSignatureException',
    message,
  });
  const match = AUTHORIZATION.exec(String(request.headers.authorization));
  if (match === null) return invalid('Authorization header is not an AWS4-HMAC-SHA256 signature.');
  const [, , scopeDate, region = '', service = '', signedList = '', signature = ''] = match;
  const signedHeaders = signedList.split(';');
  if (!signedHeaders.includes('host') || !signedHeaders.includes('x-amz-date')) {
    return invalid('The signature must cover the host and x-amz-date headers.');
  }
  const amzDate = String(request.headers['x-amz-date'] ?? '');
  const date = AMZ_DATE.exec(amzDate);
  if (date === null) return invalid('x-amz-date is missing or not in ISO 8601 basic format.');
  const signingDate = new Date(
    Date.UTC(
      Number(date[1]),
      Number(date[2]) - 1,
      Number(date[3]),
      Number(date[4]),
      Number(date[5]),
      Number(date[6]),
    ),
  );
  if (amzDate.slice(0, 8) !== scopeDate) {
    return invalid('The credential scope date does not match x-amz-date.');
  }
  if (Math.abs(now - signingDate.getTime()) > SIGV4_MAX_CLOCK_SKEW_MS) {
    return invalid(`Signature expired: ${amzDate} is more than 15 minutes from the server time.`);
  }
  const bodyHash = createHash('sha256').update(request.body).digest('hex');
  const declared = request.headers['x-amz-content-sha256'];
  if (declared !== undefined) {
    // The signer trusts this header instead of hashing the body: make it tell the truth.
    const honest =
      declared === bodyHash || (declared === UNSIGNED_PAYLOAD && request.body.byteLength === 0);
    if (!honest) return invalid('x-amz-content-sha256 does not match the request body.');
  }

  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = request.headers[name];
    if (value === undefined) return invalid(`Signed header ${name} is missing from the request.`);
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const target = new URL(request.url, 'http://endpoint.invalid');
  const query: Record<string, string | string[]> = {};
  for (const key of new Set(target.searchParams.keys())) {
    const values = target.searchParams.getAll(key);
    query[key] = values.length === 1 ? (values[0] ?? '') : values;
  }
  const signer = new SignatureV4({
    credentials,
    region,
    service,
    sha256: NodeSha256,
    // S3 signs the path as sent; every other service URI-escapes it once more.
    uriEscapePath: service !== 's3',
    applyChecksum: false,
  });
  const resigned = await signer.sign(
    {
      method: request.method,
      protocol: 'http:',
      hostname: String(request.headers.host ?? '').replace(/:\d+$/, ''),
      path: service === 's3' ? target.pathname : decodeURIComponent(target.pathname),
      query,
      headers,
      body: request.body,
    },
    {
      signingDate,
      signingRegion: region,
      signingService: service,
      signableHeaders: new Set(signedHeaders),
    },
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(String(resigned.headers.authorization ?? ''));
  if (expected?.[1] === undefined || !equalStrings(expected[1], signature)) {
    return invalid(
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
    );
  }
  return undefined;
}

function equalStrings(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.byteLength === right.byteLength && timingSafeEqual(left, right);
}
