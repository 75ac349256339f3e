/**
 * `withRuneSpan()` (the helper for webhooks and workflow steps) with a real SDK registered:
 * a root span takes RUNE's trace id through `createRuneIdGenerator`, nested steps are its
 * children, and a rejection is recorded with its EPS code and rethrown.
 */
import { context, trace } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  NodeTracerProvider,
  RandomIdGenerator,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-node';
import { createRuneIdGenerator, withRuneSpan } from '@rune/core';
import { RuneError } from '@rune/protocol';
import { afterAll, describe, expect, it } from 'vitest';

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({
  idGenerator: createRuneIdGenerator(new RandomIdGenerator()),
  spanProcessors: [new SimpleSpanProcessor(exporter)],
});
// register() installs the AsyncLocalStorage context manager, as startTracing() does.
provider.register();
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
});

describe('withRuneSpan', () => {
  it('puts a workflow and its steps in the run trace, with parent links and EPS codes', async () => {
    const traceId = 'c0ffee0000000000000000000000beef';
    await expect(
      withRuneSpan('rune.workflow', { traceId }, async () => {
        await withRuneSpan(
          'rune.workflow.step',
          { traceId, attributes: { 'rune.action': 'noop' } },
          async () => 1,
        );
        await withRuneSpan('rune.workflow.step', { traceId }, async () => {
          throw new RuneError('PLUGIN_TIMEOUT', 'too slow');
        });
      }),
    ).rejects.toThrow('too slow');
    const spans = exporter.getFinishedSpans();
    const root = spans.find((span) => span.name === 'rune.workflow');
    const steps = spans.filter((span) => span.name === 'rune.workflow.step');
    expect(root?.spanContext().traceId).toBe(traceId);
    expect(root?.parentSpanContext).toBeUndefined();
    expect(steps).toHaveLength(2);
    for (const step of steps) {
      expect(step.spanContext().traceId).toBe(traceId);
      expect(step.parentSpanContext?.spanId).toBe(root?.spanContext().spanId);
    }
    expect(steps[0]?.attributes['rune.action']).toBe('noop');
    expect(steps[1]?.attributes['rune.error.code']).toBe('PLUGIN_TIMEOUT');
    expect(root?.attributes['rune.error.code']).toBe('PLUGIN_TIMEOUT');
  });
});
