/**
 * Loading the OpenTelemetry SDK, only when the `OTEL_*` variables ask for traces
 * (`tracingRequested` in @rune/core). Nothing here is imported at start-up otherwise: the SDK,
 * the OTLP exporter and the resource detectors are dynamic imports, so a server or a `rune run`
 * with tracing off loads none of them (bench/startup.mjs shows it).
 *
 * The SDK reads the standard variables itself: `OTEL_EXPORTER_OTLP_*` (endpoint, headers,
 * timeout), `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_BSP_*`, `OTEL_SERVICE_NAME`,
 * `OTEL_RESOURCE_ATTRIBUTES`. RUNE adds one thing: its IdGenerator (`createRuneIdGenerator`), so a
 * run's root span carries RUNE's trace id.
 */
// Type-only imports: `rune run` loads this module by itself, and importing @rune/core's index
// here would load all of core a second time (the CLI bundles its own copy).
import type { createRuneIdGenerator, tracingRequested } from '@rune/core';

/** A registered SDK. */
export interface TracingHandle {
  /** Flushes what is buffered to the exporter. */
  flush(): Promise<void>;
  /** Flushes, shuts the exporter down and unregisters the provider (idempotent). */
  shutdown(): Promise<void>;
}

/** Options of {@link startTracing}. */
export interface StartTracingOptions {
  /** Where the `OTEL_*` variables are read to decide (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
  /** `tracingRequested` of the caller's @rune/core. */
  requested: typeof tracingRequested;
  /** `createRuneIdGenerator` of the caller's @rune/core (the copy whose spans it starts). */
  idGenerator: typeof createRuneIdGenerator;
  /** `service.name` when `OTEL_SERVICE_NAME` is unset (default `rune`). */
  serviceName?: string;
  /** `service.version`. */
  serviceVersion?: string;
}

/**
 * Registers the OpenTelemetry SDK globally when the environment asks for traces; resolves
 * `undefined` (having loaded nothing) when it does not. Rejects with the SDK's own error when it
 * cannot start; callers wrap it (`RuneError.from`).
 */
export async function startTracing(
  options: StartTracingOptions,
): Promise<TracingHandle | undefined> {
  const env = options.env ?? process.env;
  if (!options.requested(env)) return undefined;
  {
    const [api, sdk, resources, otlp] = await Promise.all([
      import('@opentelemetry/api'),
      import('@opentelemetry/sdk-trace-node'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/exporter-trace-otlp-http'),
    ]);
    const exporters = (env.OTEL_TRACES_EXPORTER ?? 'otlp')
      .split(',')
      .map((name) => name.trim().toLowerCase());
    const spanProcessors = [];
    if (exporters.includes('otlp')) {
      spanProcessors.push(new sdk.BatchSpanProcessor(new otlp.OTLPTraceExporter()));
    }
    if (exporters.includes('console')) {
      spanProcessors.push(new sdk.SimpleSpanProcessor(new sdk.ConsoleSpanExporter()));
    }
    const detected = resources.detectResources({ detectors: [resources.envDetector] });
    const resource = resources
      .resourceFromAttributes({
        'service.name': options.serviceName ?? 'rune',
        ...(options.serviceVersion === undefined
          ? {}
          : { 'service.version': options.serviceVersion }),
      })
      .merge(detected);
    const provider = new sdk.NodeTracerProvider({
      resource,
      idGenerator: options.idGenerator(new sdk.RandomIdGenerator()),
      spanProcessors,
    });
    provider.register();
    let stopped: Promise<void> | undefined;
    return {
      flush: () => provider.forceFlush(),
      shutdown() {
        stopped ??= (async () => {
          await provider.shutdown().catch(() => undefined);
          api.trace.disable();
          api.context.disable();
          api.propagation.disable();
        })();
        return stopped;
      },
    };
  }
}
