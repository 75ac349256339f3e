/**
 * The server's structured log: with `log_format = "json"` (or `rune serve --log-format json`)
 * Fastify's own logger, pino, writes one JSON object per line on stderr — every request with
 * its `trace_id` (the request id is the trace id, see request-trace.ts), and the server's own
 * lines (warnings, recovery) through the same logger. The human format stays the default: one
 * plain line per request through the `log` callback.
 *
 * What a line never holds, in either format: a query string, a header, a body or a parameter.
 */
import { type FastifyServerOptions, LogController } from 'fastify';
import { type Logger, pino } from 'pino';

/** The two log formats of `rune serve`. */
export type ServerLogFormat = 'human' | 'json';

/** Creates the JSON logger (stderr unless `destination` is given, e.g. in tests). */
export function createJsonLogger(destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level: 'info',
      base: { service: 'rune-server' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? process.stderr,
  );
}

/** Fastify options for the format: the pino instance and the request id labelled `trace_id`. */
export function serverLoggerOptions(
  format: ServerLogFormat | undefined,
  logger?: Logger,
): Pick<FastifyServerOptions, 'logger' | 'logController'> & { loggerInstance?: Logger } {
  if (format !== 'json' || logger === undefined) return { logger: false };
  return {
    loggerInstance: logger,
    // Fastify's own "incoming request" lines would log the URL with its query string.
    logController: new LogController({
      requestIdLogLabel: 'trace_id',
      disableRequestLogging: true,
    }),
  };
}
