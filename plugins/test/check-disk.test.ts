/** check-disk with the real df and with a scripted df shim. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createWorkspace,
  errorCode,
  makeRequest,
  type PluginWorkspace,
  runAndEvaluate,
} from './harness.js';
import { addDf } from './shims.js';

let ws: PluginWorkspace;
let a: string;
let b: string;
beforeAll(() => {
  ws = createWorkspace();
  a = join(ws.root, 'mount-a');
  b = join(ws.root, 'mount-b');
  mkdirSync(a);
  mkdirSync(b);
});
afterAll(() => ws.dispose());

function dfShim(table: string) {
  const shims = ws.shims();
  addDf(shims);
  shims.set('df', table);
  return shims;
}

describe('check-disk', () => {
  it('measures / with the real df (default parameters)', () => {
    const request = makeRequest('check-disk', { warning_percent: 100, critical_percent: 100 });
    const { evaluation, response } = runAndEvaluate(ws, 'check-disk', request, {
      extraPath: [ws.toolDir('df')],
    });
    expect(evaluation.ok || errorCode(evaluation) === 'PLUGIN_FAILED').toBe(true);
    const mounts = (response.payload.output_data as { mounts: Record<string, unknown>[] }).mounts;
    expect(mounts).toHaveLength(1);
    expect(mounts[0]).toMatchObject({ path: '/', mount_point: '/' });
    expect(mounts[0]?.size_kb).toEqual(expect.any(Number));
    expect(mounts[0]?.used_percent).toEqual(expect.any(Number));
  });

  it('is success when everything is below warning (space and inodes)', () => {
    const shims = dfShim(`${a} 10 5\n${b} 79 20\n`);
    const request = makeRequest('check-disk', { mounts: [a, b] });
    const { run, evaluation, response } = runAndEvaluate(ws, 'check-disk', request, { shims });
    expect(evaluation.ok, run.stderr).toBe(true);
    expect(response.payload.result).toBe('success');
    const data = response.payload.output_data as { mounts: Record<string, unknown>[] };
    expect(data.mounts).toEqual([
      expect.objectContaining({
        path: a,
        used_percent: 10,
        status: 'ok',
        inodes: { total: 1000, used: 50, free: 950, used_percent: 5 },
      }),
      expect.objectContaining({ path: b, used_percent: 79, status: 'ok' }),
    ]);
  });

  it('is partial with a warning at or above warning_percent', () => {
    const shims = dfShim(`${a} 85 5\n${b} 10 5\n`);
    const request = makeRequest('check-disk', { mounts: [a, b] });
    const { run, evaluation, response } = runAndEvaluate(ws, 'check-disk', request, {
      shims,
      withoutJq: true,
    });
    expect(run.exitCode).toBe(0);
    expect(evaluation.ok).toBe(true);
    expect(response.payload.result).toBe('partial');
    expect((response.payload.output_data as { warnings: string[] }).warnings).toEqual([
      `${a} is at 85% (warning at 80%)`,
    ]);
  });

  it('counts inode usage against the thresholds too', () => {
    const shims = dfShim(`${a} 10 95\n`);
    const request = makeRequest('check-disk', { mounts: [a] });
    const { run, evaluation } = runAndEvaluate(ws, 'check-disk', request, { shims });
    expect(run.exitCode).toBe(1);
    expect(errorCode(evaluation)).toBe('PLUGIN_FAILED');
    const noInodes = runAndEvaluate(
      ws,
      'check-disk',
      makeRequest('check-disk', { mounts: [a], include_inodes: false }),
      { shims },
    );
    expect(noInodes.response.payload.result).toBe('success');
  });

  it('is a failure (exit 1, PLUGIN_FAILED) at or above critical_percent', () => {
    const shims = dfShim(`${a} 97 5\n${b} 85 5\n`);
    const request = makeRequest('check-disk', {
      mounts: [a, b],
      warning_percent: 70,
      critical_percent: 95,
    });
    const { run, evaluation, response } = runAndEvaluate(ws, 'check-disk', request, { shims });
    expect(run.exitCode).toBe(1);
    expect(errorCode(evaluation)).toBe('PLUGIN_FAILED');
    expect(response.error?.message).toContain(`${a} (97%)`);
    expect(response.error?.details).toEqual({ critical: [`${a} (97%)`] });
    // The full report travels with the failure.
    expect((response.payload.output_data as { mounts: unknown[] }).mounts).toHaveLength(2);
  });

  it('is invalid input (exit 2) for a path that does not exist', () => {
    const shims = dfShim(`${a} 10 5\n`);
    const missing = join(ws.root, 'no-such-mount');
    const { run, evaluation, response } = runAndEvaluate(
      ws,
      'check-disk',
      makeRequest('check-disk', { mounts: [a, missing] }),
      { shims },
    );
    expect(run.exitCode).toBe(2);
    expect(errorCode(evaluation)).toBe('PLUGIN_INVALID_INPUT');
    expect(response.error?.details).toEqual({ path: missing });
  });

  it.each([
    [{ mounts: 'not-an-array' }],
    [{ mounts: ['relative/path'] }],
    [{ mounts: [] }],
    [{ warning_percent: 95, critical_percent: 90 }],
    [{ warning_percent: 0 }],
    [{ critical_percent: '90' }],
    [{ include_inodes: 'yes' }],
  ])('rejects %j with exit 2', (parameters) => {
    const { run, evaluation } = runAndEvaluate(
      ws,
      'check-disk',
      makeRequest('check-disk', parameters),
    );
    expect(run.exitCode).toBe(2);
    expect(errorCode(evaluation)).toBe('PLUGIN_INVALID_INPUT');
  });

  it('is partial when df does not answer for a mount (bounded by timeout)', {
    timeout: 40_000,
  }, () => {
    const shims = dfShim(`${a} 10 5\n`);
    shims.set('hang_path', b);
    const { run, evaluation, response } = runAndEvaluate(
      ws,
      'check-disk',
      makeRequest('check-disk', { mounts: [a, b], include_inodes: false }),
      { shims, timeoutMs: 30_000 },
    );
    expect(evaluation.ok, run.stderr).toBe(true);
    expect(response.payload.result).toBe('partial');
    const mounts = (response.payload.output_data as { mounts: { status: string }[] }).mounts;
    expect(mounts.map((mount) => mount.status)).toEqual(['ok', 'error']);
  });

  it('dry run lists what it would check and runs no df', () => {
    const shims = dfShim('');
    const { evaluation, response } = runAndEvaluate(
      ws,
      'check-disk',
      makeRequest('check-disk', { mounts: [a] }, { dryRun: true }),
      { shims },
    );
    expect(evaluation.ok).toBe(true);
    expect(response.payload.output_data).toMatchObject({ dry_run: true, would_check: [a] });
    expect(shims.calls()).toEqual([]);
  });

  it('is a precondition failure (exit 3) without df', () => {
    // df is not among the sandbox base tools: without a shim or toolDir('df') it is absent.
    const { run, evaluation } = runAndEvaluate(ws, 'check-disk', makeRequest('check-disk'));
    expect(run.exitCode).toBe(3);
    expect(errorCode(evaluation)).toBe('PLUGIN_PRECONDITION_FAILED');
  });
});
