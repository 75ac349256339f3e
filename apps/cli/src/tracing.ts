/**
 * Traces of `rune run`: when the standard `OTEL_*` variables ask for them, the OpenTelemetry
 * SDK is loaded (from `@rune/server/telemetry`, outside the CLI bundle) before the run and
 * flushed after it. Otherwise nothing is loaded: core's spans go to the API's no-op tracer.
 */
import { createRuneIdGenerator, tracingConfigWarnings, tracingRequested } from '@rune/core';
import { CLI_VERSION } from './version.js';

/** What `rune run` holds while tracing. */
export interface CliTracing {
  shutdown(): Promise<void>;
}

/**
 * Starts tracing when `env` asks for it; what RUNE cannot do as the variables ask (an unsupported
 * exporter or protocol) and a failure to start are reported and ignored.
 */
export async function startCliTracing(
  env: Readonly<Record<string, string | undefined>>,
  warn: (message: string) => void,
): Promise<CliTracing | undefined> {
  for (const warning of tracingConfigWarnings(env)) warn(warning);
  if (!tracingRequested(env)) return undefined;
  try {
    const { startTracing } = await import('@rune/server/telemetry');
    return await startTracing({
      env,
      requested: tracingRequested,
      idGenerator: createRuneIdGenerator,
      serviceName: 'rune',
      serviceVersion: CLI_VERSION,
    });
  } catch (error) {
    warn(`tracing is off: ${(error as Error).message}`);
    return undefined;
  }
}
