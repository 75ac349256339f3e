import { describe, expect, it } from 'vitest';
import { createRuneIdGenerator, startRuneSpan, tracingRequested } from './tracing.js';

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
