import { TIMEOUT_GRACE_MS, timeoutStages } from '@rune/transport';
import { describe, expect, it } from 'vitest';
import { createRecordingTransport } from '../testing/recording-transport.js';
import { guardedExec } from './guarded-exec.js';

const request = {
  node: { name: 'n1' },
  plugin: { action: 'noop', version: '1.0.0', sha256: '0'.repeat(64), content: new Uint8Array() },
  deployMode: 'ship' as const,
  stdin: new Uint8Array(),
  timeoutMs: 20,
  limits: { maxStdoutBytes: 1024, maxStderrBytes: 1024 },
  traceId: '0'.repeat(32),
};

describe('the timeout rule', () => {
  it('has one grace: the hard stop one grace after the timeout, the execution step six after', () => {
    expect(timeoutStages(1000)).toEqual({
      stopMs: 1000,
      hardStopMs: 1000 + TIMEOUT_GRACE_MS,
      abandonMs: 1000 + 6 * TIMEOUT_GRACE_MS,
    });
    // The execution step's default was 30 s before the rule existed; it still is.
    expect(timeoutStages(1).abandonMs - 1).toBe(30_000);
  });
});

describe('guardedExec (stage 4)', () => {
  it('gives up on a transport that never returns, aborts its exec and says containment is unconfirmed', async () => {
    let execSignal: AbortSignal | undefined;
    const transport = createRecordingTransport({
      respond: (sent) => {
        execSignal = sent.signal;
        return new Promise(() => {});
      },
    });
    const outcome = await guardedExec(transport, request, new AbortController().signal, 30);
    expect(outcome.kind).toBe('abandoned');
    if (outcome.kind !== 'abandoned') return;
    expect(outcome.error.code).toBe('PLUGIN_TIMEOUT');
    expect(outcome.error.details).toEqual({ timeout_ms: 20, transport_grace_ms: 30 });
    expect(outcome.containment.complete).toBe(false);
    expect(execSignal?.aborted).toBe(true);
  });

  it('forwards the run signal to the exec', async () => {
    const run = new AbortController();
    const transport = createRecordingTransport({
      respond: (sent) =>
        new Promise((resolve) => {
          sent.signal.addEventListener('abort', () =>
            resolve({
              termination: 'cancelled',
              exitCode: null,
              signal: null,
              stdout: new Uint8Array(),
              stdoutTruncated: false,
              stderr: new Uint8Array(),
              stderrTruncated: false,
              timings: { connectMs: 0, execMs: 0, totalMs: 0 },
              metadata: {},
            }),
          );
          run.abort();
        }),
    });
    const outcome = await guardedExec(transport, request, run.signal);
    expect(outcome.kind).toBe('returned');
    if (outcome.kind === 'returned') expect(outcome.raw.termination).toBe('cancelled');
  });
});
