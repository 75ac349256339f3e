/**
 * `rune workflow run NAME --server URL`: the workflow of that name in the server's `[server]
 * workflows` directory runs on a `rune serve` (`POST /v1/workflows/{name}/runs`; the local file is
 * never sent), the token comes from `RUNE_TOKEN` as for `rune run --server`, and the output —
 * pretty, json or jsonl — is rendered from the server's record (`GET /v1/workflows/runs/{id}`,
 * followed until the workflow ended) with the renderers of a local workflow run: one step line
 * as each step ends, then the record. Ctrl-C asks the server to cancel the workflow
 * (`POST /v1/workflows/runs/{id}/cancel`, sent once the start was answered when it came before)
 * and follows it to its end; a second Ctrl-C quits (remote-interrupt.ts).
 */
import { basename } from 'node:path';
import {
  ACTION_NAME_PATTERN,
  RuneError,
  type WorkflowRunRecord,
  type WorkflowStepRecord,
} from '@rune/protocol';
import type { CliIo } from '../cli-io.js';
import { createWorkflowOutput } from '../render/workflow-output.js';
import { handleRemoteInterrupts } from './remote-interrupt.js';
import { api, awaitingApprovalNotice, serverToken } from './run-remote.js';
import type { WorkflowRunArgs } from './workflow.js';

const source = { component: 'rune-cli' } as const;
/** How often the record of a running workflow is read again. */
const POLL_MS = 250;

/** The flags of a remote workflow run. */
export interface RemoteWorkflowRunArgs extends WorkflowRunArgs {
  server: string;
}

/** The workflow name `file` stands for on the server: `name`, or `name.yaml` (any directory). */
export function serverWorkflowName(file: string): string {
  const name = basename(file).replace(/\.(ya?ml|json)$/i, '');
  if (!new RegExp(ACTION_NAME_PATTERN).test(name)) {
    throw new RuneError(
      'INVALID_ARGUMENT',
      `with --server, name a workflow of the server's [server] workflows directory (lowercase letters, digits, dashes), not "${file.slice(0, 100)}"`,
      { source },
    );
  }
  return name;
}

/** The steps that ended, in the order a local run reports them (branches before their group). */
function endedSteps(record: WorkflowRunRecord): WorkflowStepRecord[] {
  return record.steps
    .map((step, index) => ({ step, index }))
    .filter(({ step }) => step.ended_at !== null)
    .sort(
      (a, b) =>
        Date.parse(a.step.ended_at ?? '') - Date.parse(b.step.ended_at ?? '') ||
        (a.step.group === null ? 1 : 0) - (b.step.group === null ? 1 : 0) ||
        a.index - b.index,
    )
    .map(({ step }) => step);
}

/** The endpoint that cancels workflow run `id`. */
const cancelPath = (id: string): string => `/v1/workflows/runs/${id}/cancel`;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `rune workflow run --server`; returns the workflow's exit code. */
export async function workflowRunRemoteCommand(
  args: RemoteWorkflowRunArgs,
  io: CliIo,
): Promise<number> {
  const output = args.output ?? 'pretty';
  const view = createWorkflowOutput(io, output);
  const base = args.server;
  const interrupts = handleRemoteInterrupts(io, {
    what: 'workflow run',
    base,
    cancelPath,
    onFirst: (pending) => view.interrupted(pending),
  });
  try {
    const token = serverToken(io, '--server');
    if (args.inventory !== undefined) {
      throw new RuneError(
        'INVALID_ARGUMENT',
        '--inventory is not available with --server (the server resolves every step against its own inventory)',
        { source },
      );
    }
    const name = serverWorkflowName(args.file);
    const dryRun = args.dryRun === true;
    const response = await api(base, token, `/v1/workflows/${name}/runs`, {
      method: 'POST',
      body: JSON.stringify({
        input_args: (args.input ?? []).map(String),
        confirm: args.yes === true,
        dry_run: dryRun,
      }),
    });
    if (dryRun) {
      const record = (await response.json()) as WorkflowRunRecord;
      view.started(
        { workflowRunId: record.workflow_run_id, traceId: record.trace_id },
        record.workflow,
        true,
      );
      for (const step of record.steps) view.step(step);
      return view.finished(record);
    }
    const accepted = (await response.json()) as { workflow_run_id: string; trace_id: string };
    const id = accepted.workflow_run_id;
    view.started({ workflowRunId: id, traceId: accepted.trace_id }, name, false);
    // A Ctrl-C before this answer is sent now: the workflow already runs on the server.
    interrupts.known(id, () => api(base, token, cancelPath(id), { method: 'POST' }));
    const reported = new Set<string>();
    const held = new Set<string>();
    for (;;) {
      const record = (await (
        await api(base, token, `/v1/workflows/runs/${id}`)
      ).json()) as WorkflowRunRecord;
      // A step's run held for its approval step: say so rather than sit silent (as `rune run
      // --server` does for a held run), once per run.
      for (const step of record.steps) {
        for (const attempt of step.attempts) {
          if (attempt.status !== 'awaiting_approval' || held.has(attempt.run_id)) continue;
          held.add(attempt.run_id);
          io.err(`step ${step.id}: ${awaitingApprovalNotice(attempt.run_id, base)}`);
        }
      }
      for (const step of endedSteps(record)) {
        if (reported.has(step.id)) continue;
        reported.add(step.id);
        view.step(step);
      }
      if (record.status !== 'running') {
        await interrupts.settled();
        if (output === 'pretty') io.err(`workflow run ${id} on ${base}\n`);
        return view.finished(record);
      }
      await sleep(POLL_MS);
    }
  } catch (caught) {
    const error = RuneError.from(caught, 'INTERNAL_ERROR', { source });
    return view.error(error.toJSON(), error.exitCode);
  } finally {
    interrupts.dispose();
  }
}
