/**
 * `rune approve <run> [--reject] [--comment TEXT] --server URL`: one four-eyes vote on a run held
 * in `awaiting_approval` by a `rune serve` (token from RUNE_TOKEN). Prints the approval state.
 */
import type { CliIo } from '../cli-io.js';
import { formatJson } from '../render/json.js';
import { terminalSafe } from '../render/terminal-text.js';
import { type CommonArgs, guarded } from './command-context.js';
import { api, serverToken } from './run-remote.js';

/** The flags of `rune approve`. */
export interface ApproveArgs extends CommonArgs {
  run?: string;
  reject?: boolean;
  comment?: string;
  server?: string;
  binding?: string;
}

/** Runs `rune approve`; returns the exit code. */
export function approveCommand(args: ApproveArgs, io: CliIo): Promise<number> {
  return guarded(io, args, async () => {
    const token = serverToken(io, 'rune approve');
    const base = String(args.server ?? '');
    const id = encodeURIComponent(String(args.run ?? ''));
    const verb = args.reject === true ? 'reject' : 'approve';
    const response = await api(base, token, `/v1/runs/${id}/${verb}`, {
      method: 'POST',
      body: JSON.stringify({
        ...(args.comment === undefined ? {} : { comment: args.comment }),
        ...(args.binding === undefined ? {} : { binding_sha256: args.binding }),
      }),
    });
    const view = (await response.json()) as {
      state: string;
      approvals: number;
      quorum: number;
      binding: { action: string; nodes: string[] };
    };
    if (args.output === 'json' || args.output === 'jsonl') {
      io.out(args.output === 'json' ? formatJson(view) : `${JSON.stringify(view)}\n`);
    } else {
      io.out(
        `${terminalSafe(String(args.run))}: ${terminalSafe(view.state)} (${view.approvals}/${view.quorum} approvals) — ${terminalSafe(view.binding.action)} on ${terminalSafe(view.binding.nodes.join(', '))}\n`,
      );
    }
    return 0;
  });
}
