/**
 * Every error the API answers with, as `{ "error": <EPS v1 error> }` and the status of
 * `http-status.ts`. Fastify's own errors (body parsing, content type, size, schema validation,
 * unknown routes) are translated to EPS codes here; anything unexpected becomes INTERNAL_ERROR
 * with its trace id — never a stack trace, never the original message of a foreign error.
 */
import { RuneError } from '@rune/protocol';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { httpStatusFor } from './http-status.js';

const source = { component: 'rune-server' } as const;

interface ValidationIssue {
  instancePath?: string;
  message?: string;
}

/** The EPS error for anything a request handler or Fastify threw. */
export function toRuneError(error: unknown): RuneError {
  if (RuneError.is(error)) {
    return error.source.component === 'rune'
      ? error.withContext({ component: source.component })
      : error;
  }
  const fastify = error as Partial<FastifyError> & { validation?: ValidationIssue[] };
  const code = typeof fastify.code === 'string' ? fastify.code : '';
  if (Array.isArray(fastify.validation)) {
    const violations = fastify.validation.slice(0, 20).map((issue) => ({
      pointer: issue.instancePath ?? '',
      message: issue.message ?? 'invalid',
    }));
    const where = fastify.validationContext ?? 'request';
    return new RuneError(
      'INVALID_ARGUMENT',
      `the ${where} does not match the API schema: ${violations
        .slice(0, 3)
        .map((v) => `${v.pointer || '/'} ${v.message}`)
        .join('; ')}`,
      { source, details: { location: where, violations } },
    );
  }
  switch (code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new RuneError(
        'UNSUPPORTED_MEDIA_TYPE',
        'request bodies must be application/json (UTF-8)',
        { source },
      );
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new RuneError('REQUEST_TOO_LARGE', 'the request body exceeds the body limit', {
        source,
      });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new RuneError('MALFORMED_JSON', 'the request body is empty', { source });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new RuneError('MALFORMED_JSON', 'the request body is not valid JSON', { source });
    default:
      break;
  }
  if (error instanceof SyntaxError || fastify.statusCode === 400) {
    // JSON.parse errors (secure-json-parse) and other 400s of the body parser.
    return new RuneError('MALFORMED_JSON', 'the request body is not valid JSON', { source });
  }
  if (fastify.statusCode === 413) {
    return new RuneError('REQUEST_TOO_LARGE', 'the request body exceeds the body limit', {
      source,
    });
  }
  if (fastify.statusCode === 415) {
    return new RuneError('UNSUPPORTED_MEDIA_TYPE', 'request bodies must be application/json', {
      source,
    });
  }
  // A foreign error's message may name files or internals: the client gets the trace id only.
  return new RuneError(
    'INTERNAL_ERROR',
    'unexpected error in the server; the server log has it under this trace id',
    { source, cause: error },
  );
}

/** Sends an EPS error with its status. */
export function sendError(reply: FastifyReply, error: RuneError): FastifyReply {
  const body = { error: error.toJSON() };
  if (error.code === 'AUTH_TOKEN_MISSING' || error.code.startsWith('AUTH_TOKEN_')) {
    if (error.code !== 'AUTH_TOKEN_IN_URL') reply.header('www-authenticate', 'Bearer realm="rune"');
  }
  return reply.code(httpStatusFor(error.code)).type('application/json; charset=utf-8').send(body);
}

/** Fastify's error handler: translate, give it a trace id, report internal ones, send. */
export function createErrorHandler(
  newTraceId: () => string,
  onInternalError: (error: RuneError) => void,
): (error: unknown, request: FastifyRequest, reply: FastifyReply) => FastifyReply {
  return (error, _request, reply) => {
    let runeError = toRuneError(error);
    if (runeError.traceId === undefined)
      runeError = runeError.withContext({ traceId: newTraceId() });
    if (runeError.category === 'internal') onInternalError(runeError);
    return sendError(reply, runeError);
  };
}
