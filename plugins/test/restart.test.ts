/** restart-docker and restart-nomad against systemctl/docker/nomad PATH shims. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createWorkspace,
  errorCode,
  makeRequest,
  type PluginWorkspace,
  runAndEvaluate,
  type ShimDir,
} from './harness.js';
import { addDocker, addNomad, addSystemctl } from './shims.js';

let ws: PluginWorkspace;
beforeAll(() => {
  ws = createWorkspace();
});
afterAll(() => ws.dispose());

const CASES = [
  { plugin: 'restart-docker', unit: 'docker.service', tool: 'docker', addTool: addDocker },
  { plugin: 'restart-nomad', unit: 'nomad.service', tool: 'nomad', addTool: addNomad },
] as const;

describe.each(CASES)('$plugin', ({ plugin, unit, tool, addTool }) => {
  function setup(): ShimDir {
    const shims = ws.shims();
    addSystemctl(shims);
    addTool(shims);
    return shims;
  }

  it('restarts the unit, waits until it answers and reports before/after', () => {
    const shims = setup();
    const request = makeRequest(plugin, { wait_timeout_s: 5 });
    const { run, evaluation, response } = runAndEvaluate(ws, plugin, request, { shims });
    expect(evaluation.ok, run.stderr).toBe(true);
    expect(run.exitCode).toBe(0);
    expect(response.payload.result).toBe('success');
    const data = response.payload.output_data as Record<string, unknown>;
    expect(data).toMatchObject({
      unit,
      dry_run: false,
      restarted: true,
      pid_changed: true,
      before: { load_state: 'loaded', active_state: 'active', main_pid: 1111 },
      after: { active_state: 'active', main_pid: 2222 },
      health: { ok: true },
    });
    expect((data.after as { version: string }).version).toMatch(/^(24\.0\.7|v1\.7\.2)$/);
    expect(shims.calls()).toContain(`systemctl restart ${unit}`);
  });

  it('dry run reports the plan and never calls systemctl restart', () => {
    const shims = setup();
    const request = makeRequest(plugin, {}, { dryRun: true });
    const { evaluation, response } = runAndEvaluate(ws, plugin, request, { shims });
    expect(evaluation.ok).toBe(true);
    expect(response.payload.output_data).toMatchObject({
      dry_run: true,
      restarted: false,
      before: { active_state: 'active' },
    });
    expect((response.payload.output_data as { would_run: string[] }).would_run[0]).toBe(
      `systemctl restart ${unit}`,
    );
    const calls = shims.calls();
    expect(calls.some((call) => call.startsWith('systemctl show'))).toBe(true);
    expect(calls.filter((call) => call.includes('restart'))).toEqual([]);
  });

  it('times out with exit 5 when the unit never becomes active (bounded wait)', () => {
    const shims = setup();
    shims.set('active_after', 'activating');
    const request = makeRequest(plugin, { wait_timeout_s: 1 });
    const { run, evaluation, response } = runAndEvaluate(ws, plugin, request, { shims });
    expect(run.exitCode).toBe(5);
    expect(errorCode(evaluation)).toBe('PLUGIN_OPERATION_TIMEOUT');
    expect(response.error?.retryable).toBe(true);
    expect(response.error?.message).toContain('did not become active within 1s');
    expect(run.durationMs).toBeLessThan(8000);
  });

  it(`times out with exit 5 when the unit is active but ${tool} does not answer`, () => {
    const shims = setup();
    shims.set('docker_info_exit', '1');
    shims.set('nomad_node_exit', '1');
    const request = makeRequest(plugin, { wait_timeout_s: 1 });
    const { run, evaluation, response } = runAndEvaluate(ws, plugin, request, { shims });
    expect(run.exitCode).toBe(5);
    expect(errorCode(evaluation)).toBe('PLUGIN_OPERATION_TIMEOUT');
    expect(response.error?.message).toContain('did not answer');
    expect(response.payload.output_data).toMatchObject({ health: { ok: false } });
  });

  it('kills a systemctl restart that hangs and answers exit 5', () => {
    const shims = setup();
    shims.set('restart_sleep', '30');
    const request = makeRequest(plugin, { wait_timeout_s: 1 });
    const { run, evaluation } = runAndEvaluate(ws, plugin, request, { shims });
    expect(run.exitCode).toBe(5);
    expect(errorCode(evaluation)).toBe('PLUGIN_OPERATION_TIMEOUT');
    expect(run.durationMs).toBeLessThan(8000);
  });

  it('fails with exit 1 when the restart fails, and exit 4 when access is denied', () => {
    const shims = setup();
    shims.set('restart_exit', '1');
    shims.set('restart_stderr', `Job for ${unit} failed because the control process exited.`);
    const request = makeRequest(plugin, { wait_timeout_s: 2 });
    const failed = runAndEvaluate(ws, plugin, request, { shims });
    expect(failed.run.exitCode).toBe(1);
    expect(errorCode(failed.evaluation)).toBe('PLUGIN_FAILED');
    expect(failed.response.error?.message).toContain('control process exited');

    const denied = setup();
    denied.set('restart_exit', '1');
    denied.set('restart_stderr', 'Failed to restart: Access denied');
    const run2 = runAndEvaluate(ws, plugin, makeRequest(plugin, {}), { shims: denied });
    expect(run2.run.exitCode).toBe(4);
    expect(errorCode(run2.evaluation)).toBe('PLUGIN_PERMISSION_DENIED');
  });

  it('fails with exit 1 when the unit enters the failed state', () => {
    const shims = setup();
    shims.set('active_after', 'failed');
    const { run, evaluation } = runAndEvaluate(
      ws,
      plugin,
      makeRequest(plugin, { wait_timeout_s: 3 }),
      {
        shims,
      },
    );
    expect(run.exitCode).toBe(1);
    expect(errorCode(evaluation)).toBe('PLUGIN_FAILED');
  });

  it('is a precondition failure (exit 3) when the unit is not installed', () => {
    const shims = setup();
    shims.set('load_state', 'not-found');
    const { run, evaluation, response } = runAndEvaluate(ws, plugin, makeRequest(plugin), {
      shims,
    });
    expect(run.exitCode).toBe(3);
    expect(errorCode(evaluation)).toBe('PLUGIN_PRECONDITION_FAILED');
    expect(response.error?.message).toContain(`${unit} is not installed`);
    expect(shims.calls().filter((call) => call.includes('restart'))).toEqual([]);
  });

  it(`is a precondition failure (exit 3) naming ${tool} when it is missing`, () => {
    const shims = ws.shims();
    addSystemctl(shims);
    const { run, evaluation, response } = runAndEvaluate(ws, plugin, makeRequest(plugin), {
      shims,
    });
    expect(run.exitCode).toBe(3);
    expect(errorCode(evaluation)).toBe('PLUGIN_PRECONDITION_FAILED');
    expect(response.error?.details).toEqual({ missing_commands: [tool] });
  });

  it('is a precondition failure (exit 3) naming systemctl when it is missing', () => {
    const shims = ws.shims();
    addTool(shims);
    const { run, response } = runAndEvaluate(ws, plugin, makeRequest(plugin), { shims });
    expect(run.exitCode).toBe(3);
    expect(response.error?.details).toEqual({ missing_commands: ['systemctl'] });
  });

  it.each([
    [{ wait_timeout_s: 'soon' }],
    [{ wait_timeout_s: 0 }],
    [{ wait_timeout_s: 601 }],
    [{ unit: 'sshd.service' }],
  ])('rejects invalid parameters %j with exit 2 and restarts nothing', (parameters) => {
    const shims = setup();
    const { run, evaluation } = runAndEvaluate(ws, plugin, makeRequest(plugin, parameters), {
      shims,
    });
    expect(run.exitCode).toBe(2);
    expect(errorCode(evaluation)).toBe('PLUGIN_INVALID_INPUT');
    expect(shims.calls()).toEqual([]);
  });

  it('caps the wait at the run timeout minus 5 s and says so', () => {
    const shims = setup();
    const request = makeRequest(plugin, { wait_timeout_s: 600 }, { timeoutMs: 8000 });
    const { evaluation, response } = runAndEvaluate(ws, plugin, request, { shims });
    expect(evaluation.ok).toBe(true);
    expect(response.payload.result).toBe('success');
    expect(response.payload.output_data).toMatchObject({ wait_timeout_s: 3 });
    expect((response.payload.output_data as { warnings: string[] }).warnings[0]).toContain(
      'waiting at most 3 s',
    );
  });
});

describe('restart-nomad on a server-only agent', () => {
  it('accepts nomad agent-info when node status -self fails', () => {
    const shims = ws.shims();
    addSystemctl(shims);
    addNomad(shims);
    shims.set('nomad_node_exit', '1');
    shims.set('nomad_agent_exit', '0');
    const { evaluation, response } = runAndEvaluate(
      ws,
      'restart-nomad',
      makeRequest('restart-nomad', { wait_timeout_s: 3 }),
      { shims, withoutJq: true },
    );
    expect(evaluation.ok).toBe(true);
    expect(response.payload.output_data).toMatchObject({
      health: { ok: true, detail: 'nomad agent-info answered (server-only agent)' },
      after: { version: 'v1.7.2' },
    });
  });
});
