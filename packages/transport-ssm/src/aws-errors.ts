/**
 * Translation of AWS SDK and network errors into EPS codes. The SDK error travels as `cause`;
 * `details` keep the AWS error name, HTTP status and request id for the audit trail.
 */
import { type ErrorCode, RuneError } from '@rune/protocol';

const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'ThrottledException',
  'SlowDown',
]);

const AUTH = new Set([
  'MissingAuthenticationTokenException',
  'AccessDeniedException',
  'AccessDenied',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'CredentialsProviderError',
]);

const NETWORK: Record<string, ErrorCode> = {
  ECONNREFUSED: 'CONNECTION_REFUSED',
  ENOTFOUND: 'DNS_LOOKUP_FAILED',
  EAI_AGAIN: 'DNS_LOOKUP_FAILED',
  ETIMEDOUT: 'CONNECT_TIMEOUT',
  EHOSTUNREACH: 'HOST_UNREACHABLE',
  ENETUNREACH: 'HOST_UNREACHABLE',
  ECONNRESET: 'CONNECTION_LOST',
};

interface AwsLikeError {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  cause?: unknown;
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

/** The AWS error name (`__type` on the wire), or undefined for non-AWS errors. */
export function awsErrorName(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const name = (error as AwsLikeError).name;
  return typeof name === 'string' ? name : undefined;
}

function networkCode(error: unknown, depth = 0): string | undefined {
  if (typeof error !== 'object' || error === null || depth > 4) return undefined;
  const code = (error as AwsLikeError).code;
  if (typeof code === 'string' && code in NETWORK) return code;
  return networkCode((error as AwsLikeError).cause, depth + 1);
}

/** True for throttling errors (after the SDK's own retries gave up). */
export function isThrottlingError(error: unknown): boolean {
  const name = awsErrorName(error);
  return name !== undefined && THROTTLING.has(name);
}

/** Context for {@link toRuneError}. */
export interface AwsErrorContext {
  operation: string;
  node?: string;
  instanceId?: string;
  traceId?: string;
  /**
   * The RUNE configuration file an operator should edit for a missing setting (the transport's
   * `configFile` option); errors about a missing region name it with the key to set.
   */
  configFile?: string;
}

/**
 * Where to set the region, for the "no region" error: the INVALID_CONFIG hint says "fix the file
 * and key named above", so the message must name a file and a key, not only AWS_REGION.
 */
function regionAdvice(configFile: string | undefined): string {
  const file = configFile ?? 'your RUNE config file (~/.config/rune/config.toml or ./rune.toml)';
  return `No AWS region for SSM: set region = "<aws-region>" in the [ssm] section of ${file}, or export AWS_REGION`;
}

/** Maps anything the SDK threw during `operation` to a RuneError with a precise code. */
export function toRuneError(error: unknown, context: AwsErrorContext): RuneError {
  if (RuneError.is(error)) return error;
  const name = awsErrorName(error) ?? 'Error';
  const message =
    typeof (error as AwsLikeError | undefined)?.message === 'string'
      ? ((error as AwsLikeError).message as string)
      : String(error);
  const metadata = (error as AwsLikeError | undefined)?.$metadata;
  const details: Record<string, unknown> = { operation: context.operation, aws_error: name };
  if (context.instanceId !== undefined) details.instance_id = context.instanceId;
  if (metadata?.httpStatusCode !== undefined) details.http_status = metadata.httpStatusCode;
  if (metadata?.requestId !== undefined) details.request_id = metadata.requestId;
  const network = networkCode(error);
  let code: ErrorCode = 'TRANSPORT_API_ERROR';
  let text = `SSM ${context.operation} failed: ${name}: ${message}`;
  if (THROTTLING.has(name)) {
    code = 'THROTTLED';
    text = `SSM ${context.operation} was throttled beyond the retry budget (raise [ssm] max_attempts or lower concurrency)`;
  } else if (name === 'InvalidInstanceId') {
    code = 'INSTANCE_UNKNOWN';
    text = `SSM does not accept instance ${context.instanceId ?? '?'}: ${message}`;
  } else if (AUTH.has(name)) {
    code = 'AUTH_FAILED';
    text = `AWS refused the credentials or permissions for ${context.operation}: ${message}`;
  } else if (
    (name === 'InvalidParameters' || name === 'ValidationException') &&
    /(length|size|too large|too long|exceed)/i.test(message)
  ) {
    code = 'PAYLOAD_TOO_LARGE';
    text = `SSM rejected the command as too large: ${message}`;
  } else if (/region is missing/i.test(message)) {
    code = 'INVALID_CONFIG';
    text = regionAdvice(context.configFile);
    details.config_file = context.configFile ?? null;
    details.config_key = 'ssm.region';
  } else if (network !== undefined) {
    code = NETWORK[network]!;
    details.network_error = network;
    text = `cannot reach the SSM API (${network}) during ${context.operation}: ${message}`;
  }
  return new RuneError(code, text, {
    cause: error,
    details,
    source: { component: 'transport-ssm', ...(context.node ? { node: context.node } : {}) },
    ...(context.traceId ? { traceId: context.traceId } : {}),
  });
}
