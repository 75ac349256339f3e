import { describe, expect, it } from 'vitest';
import {
  createRuneIdGenerator,
  startRuneSpan,
  tracingConfigWarnings,
  tracingRequested,
} from './tracing.js';

describe('tracingRequested', () => {
  it('is off by default and follows the standard OTEL_* variables', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'otlp' })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'zipkin, console' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' })).toBe(true);
    expect(
      tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' }),
    ).toBe(true);
    expect(
      tracingRequested({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x' }),
    ).toBe(false);
    expect(tracingRequested({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' })).toBe(
      false,
    );
  });
});

describe('tracingConfigWarnings', () => {
  it('says nothing for the supported settings or with tracing off', () => {
    expect(tracingConfigWarnings({})).toEqual([]);
    expect(
      tracingConfigWarnings({
        OTEL_TRACES_EXPORTER: 'otlp,console',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      }),
    ).toEqual([]);
    expect(
      tracingConfigWarnings({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'zipkin' }),
    ).toEqual([]);
    // A protocol without tracing asked for is not RUNE's business.
    expect(tracingConfigWarnings({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toEqual([]);
  });

  it('names an exporter RUNE lacks, and whether tracing is then off', () => {
    const [alone] = tracingConfigWarnings({ OTEL_TRACES_EXPORTER: 'zipkin' });
    expect(alone).toMatch(/zipkin.*only otlp, console, none.*tracing is off/);
    const [mixed] = tracingConfigWarnings({ OTEL_TRACES_EXPORTER: 'jaeger, otlp' });
    expect(mixed).toMatch(/jaeger.*ignored$/);
  });

  it('refuses gRPC and protobuf by name, the traces variable before the general one', () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4317' };
    const [grpc] = tracingConfigWarnings({ ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' });
    expect(grpc).toMatch(/^OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported.*4318/);
    expect(
      tracingConfigWarnings({
        ...endpoint,
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      }),
    ).toEqual([
      'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf is not supported: RUNE sends OTLP/HTTP as JSON (http/json), which an OTLP/HTTP receiver accepts',
    ]);
  });
});

describe('createRuneIdGenerator', () => {
  it('falls back to the SDK generator when no RUNE trace id is pending', () => {
    const generator = createRuneIdGenerator({
      generateTraceId: () => 'f'.repeat(32),
      generateSpanId: () => 'e'.repeat(16),
    });
    expect(generator.generateTraceId()).toBe('f'.repeat(32));
    expect(generator.generateSpanId()).toBe('e'.repeat(16));
  });

  it('costs a non-recording span and leaves nothing pending when no SDK is registered', () => {
    const { span } = startRuneSpan('rune.run', { traceId: 'a'.repeat(32) });
    expect(span.isRecording()).toBe(false);
    const generator = createRuneIdGenerator({
      generateTraceId: () => 'f'.repeat(32),
      generateSpanId: () => 'e'.repeat(16),
    });
    expect(generator.generateTraceId()).toBe('f'.repeat(32));
  });
});
