/**
 * The SSM transport's phases through the transport contract's `phaseSpan` hook, with the real
 * @aws-sdk/client-ssm against the local SSM endpoint (which really runs the wrapper with sh):
 * connect (the agent check), upload (SendCommand), exec (the invocation polled to its end), fetch
 * (the full output from S3), in that order, each with its attributes; a failing phase rejects
 * through the hook with the EPS error and later phases do not start.
 */

import { RuneError } from '@rune/protocol';
import type { TransportPhase, TransportPhaseAttributes, TransportPhaseHook } from '@rune/transport';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, INSTANCE, plugin, request, startHarness, text } from './helpers.js';

interface Phase {
  phase: TransportPhase;
  attributes: Record<string, string | number | boolean>;
  ended: boolean;
  error?: string;
}

/** A hook that records each phase the way core's tracing hook wraps it in a span. */
function recordingHook(): { hook: TransportPhaseHook; phases: Phase[] } {
  const phases: Phase[] = [];
  const hook: TransportPhaseHook = async (phase, step) => {
    const entry: Phase = { phase, attributes: {}, ended: false };
    phases.push(entry);
    try {
      return await step({
        setAttributes: (attributes: TransportPhaseAttributes) => {
          Object.assign(entry.attributes, attributes);
        },
      });
    } catch (error) {
      entry.error = RuneError.is(error) ? error.code : String(error);
      throw error;
    } finally {
      entry.ended = true;
    }
  };
  return { hook, phases };
}

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness({ pendingMs: 10 });
});
afterAll(async () => {
  await harness.close();
});
afterEach(() => {
  harness.endpoint.setPingStatus(INSTANCE, 'Online');
});

describe('SSM phase spans', () => {
  it('reports connect, upload, exec and (with S3 output) fetch, with their attributes', async () => {
    const { hook, phases } = recordingHook();
    const result = await harness
      .transport({ outputS3Bucket: 'rune-output', outputS3Prefix: 'runs/' })
      .exec(request(INSTANCE, plugin('#!/bin/sh\nseq 1 20000\n'), { phaseSpan: hook }));
    expect(result.exitCode).toBe(0);
    expect(text(result.stdout).split('\n').length).toBe(20001);
    expect(phases.map((entry) => entry.phase)).toEqual(['connect', 'upload', 'exec', 'fetch']);
    expect(phases.every((entry) => entry.ended && entry.error === undefined)).toBe(true);
    const [connect, upload, exec, fetch] = phases;
    expect(connect?.attributes).toEqual({ 'rune.ssm.instance_id': INSTANCE });
    expect(upload?.attributes).toMatchObject({ 'rune.ssm.plugin_inline': true });
    expect(upload?.attributes['rune.ssm.command_bytes']).toBeGreaterThan(100);
    const commandId = upload?.attributes['rune.ssm.command_id'];
    expect(commandId).toEqual(expect.any(String));
    expect(exec?.attributes).toMatchObject({
      'rune.ssm.command_id': commandId,
      'rune.ssm.status': 'Success',
    });
    expect(exec?.attributes['rune.ssm.polls']).toBeGreaterThanOrEqual(1);
    expect(fetch?.attributes).toEqual({ 'rune.ssm.output_source': 's3' });
  });

  it('no fetch when the output came whole through the API', async () => {
    const { hook, phases } = recordingHook();
    const result = await harness
      .transport()
      .exec(request(INSTANCE, plugin('#!/bin/sh\necho small\n'), { phaseSpan: hook }));
    expect(text(result.stdout)).toBe('small\n');
    expect(phases.map((entry) => entry.phase)).toEqual(['connect', 'upload', 'exec']);
  });

  it('an offline agent fails the connect phase with its EPS code; nothing is sent', async () => {
    harness.endpoint.setPingStatus(INSTANCE, 'ConnectionLost');
    const { hook, phases } = recordingHook();
    await expect(
      harness.transport().exec(request(INSTANCE, plugin('#!/bin/sh\ntrue\n'), { phaseSpan: hook })),
    ).rejects.toMatchObject({ code: 'INSTANCE_OFFLINE' });
    expect(phases).toEqual([
      {
        phase: 'connect',
        attributes: { 'rune.ssm.instance_id': INSTANCE },
        ended: true,
        error: 'INSTANCE_OFFLINE',
      },
    ]);
  });

  it('without a hook the transport runs the same steps directly', async () => {
    const result = await harness
      .transport()
      .exec(request(INSTANCE, plugin('#!/bin/sh\necho ok\n')));
    expect(text(result.stdout)).toBe('ok\n');
  });
});
