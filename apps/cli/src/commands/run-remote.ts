/**
 * `rune run ... --server URL`: the same request, submitted to a `rune serve` instead of run here,
 * so operators share one store, one queue and one audit trail. The token comes from `RUNE_TOKEN`.
 * Parameters given with `-p key=value` are typed with the action's parameter schema, fetched from
 * the server (`GET /v1/actions/{name}`); the output — pretty, json or jsonl — is rendered from
 * the run's event stream (SSE) with the renderers of a local run, and the exit code is the run's.
 * Ctrl-C cancels the run on the server (`POST /v1/runs/{id}/cancel`, sent once the request was
 * answered when it came before) and follows it to its end; a second Ctrl-C quits
 * (remote-interrupt.ts).
 */
import { coerceParameter, type NodeRunResult, readParamsSource } from '@rune/core';
import {
  type EpsError,
  type MrsParameter,
  type RunEvent,
  RuneError,
  type RunSummary,
} from '@rune/protocol';
import type { CliIo } from '../cli-io.js';
import { formatErrorPretty } from '../render/errors.js';
import { formatJson, runResultDocument } from '../render/json.js';
import { formatNodeLine, formatSummaryLine } from '../render/jsonl.js';
import { formatNodePretty, formatSummaryPretty } from '../render/pretty.js';
import { handleRemoteInterrupts } from './remote-interrupt.js';
import type { RunArgs } from './run.js';

const source = { component: 'rune-cli' } as const;

/** The flags of a remote run: those of `rune run` plus the server. */
export interface RemoteRunArgs extends RunArgs {
  server: string;
}

/**
 * The API token of a command that talks to a `rune serve`: `RUNE_TOKEN` (never a flag, so it
 * stays out of shell history and `ps`). `subject` names what needs it in the error.
 */
export function serverToken(io: CliIo, subject: string): string {
  const token = io.env.RUNE_TOKEN;
  if (token === undefined || token === '') {
    throw new RuneError(
      'AUTH_TOKEN_MISSING',
      `${subject} needs an API token in RUNE_TOKEN (\`rune token create\` on the server)`,
      { source },
    );
  }
  return token;
}

/** The stderr line of a command that waits for a run held for approval on the server. */
export function awaitingApprovalNotice(runId: string, base: string): string {
  return `run ${runId} awaits approval by another principal (rune approve ${runId} --server ${base}); waiting\n`;
}

/** One API call to a `rune serve`; an EPS error body becomes that RuneError. */
export async function api(
  base: string,
  token: string,
  path: string,
  init: RequestInit = {},
): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(new URL(path, base), {
      ...init,
      headers: {
        authorization: `Bearer ${token}`,
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
    });
  } catch (error) {
    throw new RuneError('CONNECTION_REFUSED', `cannot reach the RUNE server at ${base}`, {
      cause: error,
      source,
    });
  }
  if (response.ok) return response;
  const body = (await response.json().catch(() => ({}))) as { error?: EpsError };
  const eps = body.error;
  if (eps !== undefined && typeof eps.code === 'string') {
    throw new RuneError(eps.code as RuneError['code'], eps.message, {
      source: eps.source,
      ...(eps.details === undefined ? {} : { details: eps.details }),
      traceId: eps.trace_id,
    });
  }
  throw new RuneError('TRANSPORT_API_ERROR', `the RUNE server answered HTTP ${response.status}`, {
    source,
  });
}

/** The endpoint that cancels run `id`. */
const runCancelPath = (id: string): string => `/v1/runs/${id}/cancel`;

/** The events of a run, read from its SSE stream until run-end (resuming once if cut). */
async function* followEvents(base: string, token: string, id: string): AsyncGenerator<RunEvent> {
  let last = 0;
  for (let attempt = 0; attempt < 5; attempt++) {
    const response = await api(base, token, `/v1/runs/${id}/events?after=${last}`);
    const decoder = new TextDecoder();
    let buffer = '';
    const reader = response.body?.getReader();
    if (reader === undefined) return;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (data !== undefined) {
          const event = JSON.parse(data) as RunEvent;
          last = event.seq;
          yield event;
          if (event.type === 'run-end') return;
        }
        end = buffer.indexOf('\n\n');
      }
    }
    const run = (await (await api(base, token, `/v1/runs/${id}`)).json()) as { status: string };
    if (!['queued', 'running'].includes(run.status)) return;
  }
}

/** Runs `rune run --server`; returns the exit code. */
export async function runRemoteCommand(args: RemoteRunArgs, io: CliIo): Promise<number> {
  const output = args.output ?? 'pretty';
  const verbose = args.verbose === true;
  const interrupts = handleRemoteInterrupts(io, {
    what: 'run',
    base: args.server,
    cancelPath: runCancelPath,
    onFirst: (pending) =>
      io.err(
        pending
          ? '\ncancelling: the run is cancelled as soon as the server answers its request (Ctrl-C again to exit at once)\n'
          : '\ncancelling: no new nodes start, running ones are stopped (Ctrl-C again to exit at once)\n',
      ),
  });
  try {
    const token = serverToken(io, '--server');
    if (args.rerun !== undefined || args.outputDir !== undefined) {
      throw new RuneError(
        'INVALID_ARGUMENT',
        '--rerun and --output-dir are not available with --server (the server keeps the runs and their results: GET /v1/runs/{id})',
        { source },
      );
    }
    const action = args.action;
    if (action === undefined) {
      throw new RuneError('INVALID_ARGUMENT', 'name an action: rune run <action> --server URL', {
        source,
      });
    }
    if (args.nodesFile !== undefined || args.transport !== undefined || args.useSsm === true) {
      throw new RuneError(
        'INVALID_ARGUMENT',
        '--nodes-file, --transport and --use-ssm are not available with --server (the server decides the transport)',
        { source },
      );
    }
    const base = args.server;
    const params: Record<string, unknown> =
      args.params === undefined ? {} : { ...readParamsSource(args.params) };
    if ((args.param ?? []).length > 0) {
      const manifest = (await (
        await api(base, token, `/v1/actions/${encodeURIComponent(action)}`)
      ).json()) as {
        parameters_schema: { properties?: Record<string, MrsParameter> };
      };
      for (const pair of (args.param ?? []).map(String)) {
        const index = pair.indexOf('=');
        if (index <= 0) {
          throw new RuneError('INVALID_PARAMETERS', '--param must be key=value', { source });
        }
        const key = pair.slice(0, index);
        params[key] = coerceParameter(
          pair.slice(index + 1),
          manifest.parameters_schema.properties?.[key],
        );
      }
    }
    const options: Record<string, unknown> = {};
    if (args.dryRun === true) options.dry_run = true;
    if (args.timeout !== undefined) options.timeout = String(args.timeout);
    if (args.concurrency !== undefined) options.concurrency = Number(args.concurrency);
    if (args.canary !== undefined) options.canary = Number(args.canary);
    if (args.maxFailures !== undefined) options.max_failures = String(args.maxFailures);
    if (args.deadline !== undefined) options.deadline = String(args.deadline);
    if (args.yes === true) options.confirm = true;
    // Ctrl-C while the parameter schema was read: nothing was submitted, so nothing is.
    if (interrupts.requested) {
      throw new RuneError(
        'RUN_CANCELLED',
        'interrupted before the run was submitted: nothing was sent to the server',
        { source },
      );
    }
    const accepted = (await (
      await api(base, token, '/v1/runs', {
        method: 'POST',
        body: JSON.stringify({
          action,
          targets: (args.node ?? []).map(String),
          params,
          options,
        }),
      })
    ).json()) as { id: string; trace_id: string; status?: string };
    // A Ctrl-C before this answer is sent now: the run is already queued on the server.
    interrupts.known(accepted.id, () =>
      api(base, token, runCancelPath(accepted.id), { method: 'POST' }),
    );
    // RBAC four-eyes: the run starts only once others approve it; say so instead of sitting silent.
    if (accepted.status === 'awaiting_approval') {
      io.err(awaitingApprovalNotice(accepted.id, base));
    }
    const nodes: NodeRunResult[] = [];
    let summary: RunSummary | null = null;
    let exitCode = 0;
    let runError: EpsError | null = null;
    if (args.dryRun !== true) {
      for await (const event of followEvents(base, token, accepted.id)) {
        if (event.type === 'node-end') {
          const result = event.result as NodeRunResult;
          nodes.push(result);
          if (output === 'jsonl') io.out(formatNodeLine(result, accepted.trace_id));
          else if (output === 'pretty')
            io.out(formatNodePretty(result, { color: io.color, verbose, nameWidth: 20 }));
        } else if (event.type === 'run-end') {
          summary = event.summary;
          exitCode = event.exit_code;
          runError = event.error;
        }
      }
    }
    const run = (await (await api(base, token, `/v1/runs/${accepted.id}`)).json()) as {
      exit_code: number | null;
      plan: unknown;
    };
    await interrupts.settled();
    if (args.dryRun === true) exitCode = run.exit_code ?? 0;
    if (output === 'pretty') {
      if (summary !== null) io.out(formatSummaryPretty(summary, io.color));
      if (runError !== null && runError.code !== 'RUN_CANCELLED')
        io.err(formatErrorPretty(runError, io.colorErr));
      io.err(`run ${accepted.id} on ${base}\n`);
    } else {
      const document = runResultDocument({
        exit_code: exitCode,
        trace_id: accepted.trace_id,
        action,
        dry_run: args.dryRun === true,
        summary,
        nodes,
        error: runError,
        ...(args.dryRun === true ? { plan: run.plan as never } : {}),
      });
      io.out(output === 'json' ? formatJson(document) : formatSummaryLine(document));
    }
    return exitCode;
  } catch (error) {
    const runeError = RuneError.from(error, 'INTERNAL_ERROR', { source });
    const eps = runeError.toJSON();
    if (output === 'json' || output === 'jsonl') {
      const document = runResultDocument({
        exit_code: runeError.exitCode,
        error: eps,
        action: args.action ?? null,
      });
      io.out(output === 'json' ? formatJson(document) : formatSummaryLine(document));
    } else {
      io.err(formatErrorPretty(eps, io.colorErr));
    }
    return runeError.exitCode;
  } finally {
    interrupts.dispose();
  }
}
