/**
 * Rendering of `rune workflow run` and `rune workflow validate`: pretty (one line per step as it
 * ends, then the totals), json (the workflow run record, once) and jsonl (a step line as each
 * step ends, the record last). Running is elsewhere: this module only turns records into text,
 * with the same error rendering and terminal-safety as `rune run`.
 */
import {
  type EpsError,
  WORKFLOW_RUN_V1,
  type WorkflowRunRecord,
  type WorkflowStepLine,
  type WorkflowStepRecord,
} from '@rune/protocol';
import pc from 'picocolors';
import type { CliIo } from '../cli-io.js';
import { formatErrorPretty } from './errors.js';
import { formatJson } from './json.js';
import { formatDuration } from './pretty.js';
import { terminalSafe } from './terminal-text.js';

/** Output formats of the workflow commands (those of `rune run`). */
export type WorkflowOutputFormat = 'pretty' | 'json' | 'jsonl';

/** A finding of `rune workflow validate`, as core reports it. */
export interface WorkflowFindingLine {
  line: number;
  column: number;
  code: string;
  message: string;
}

const MARK: Record<WorkflowStepRecord['status'], string> = {
  pending: '·',
  running: '…',
  awaiting_approval: '∥',
  succeeded: '✓',
  partial: '!',
  failed: '✗',
  skipped: '-',
  cancelled: '✗',
};

function colorFor(status: WorkflowStepRecord['status'], color: boolean): (text: string) => string {
  if (!color) return (text) => text;
  if (status === 'succeeded') return pc.green;
  if (status === 'partial') return pc.yellow;
  if (status === 'failed' || status === 'cancelled') return pc.red;
  return pc.dim;
}

/** One pretty line for a step (and its error line, when it has one). */
export function formatStepPretty(step: WorkflowStepRecord, color: boolean): string {
  const paint = colorFor(step.status, color);
  const indent = step.group === null ? '' : '  ';
  const duration =
    step.started_at !== null && step.ended_at !== null
      ? ` ${formatDuration(Date.parse(step.ended_at) - Date.parse(step.started_at))}`
      : '';
  const what = step.action ?? step.kind;
  const where = step.targets.length > 0 ? ` on ${step.targets.join(', ')}` : '';
  const failed = step.failed_nodes.length > 0 ? ` (failed: ${step.failed_nodes.join(', ')})` : '';
  const retries = step.attempts.length > 1 ? ` after ${step.attempts.length} runs` : '';
  const reason = step.reason === null ? '' : ` — ${step.reason}`;
  const lines = [
    `${indent}${paint(`${MARK[step.status]} ${terminalSafe(step.id)}`)} ${what} ${paint(step.status)}${terminalSafe(`${where}${failed}${retries}${duration}${reason}`)}`,
  ];
  if (step.error !== null && step.status !== 'skipped') {
    lines.push(`${indent}    ${terminalSafe(`${step.error.code}: ${step.error.message}`)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The renderer of one `rune workflow run`. */
export interface WorkflowOutput {
  started(
    identity: { workflowRunId: string; traceId: string },
    name: string,
    dryRun: boolean,
  ): void;
  step(step: WorkflowStepRecord): void;
  /**
   * Ctrl-C was pressed; `pending` (a run on a server): before the server answered the start, so
   * the cancel is sent once it has.
   */
  interrupted(pending?: boolean): void;
  finished(record: WorkflowRunRecord): number;
  /** A refusal before the workflow started (or a crash): the EPS error, in the format asked for. */
  error(error: EpsError, exitCode: number): number;
}

/** Creates the renderer for `output`. */
export function createWorkflowOutput(io: CliIo, output: WorkflowOutputFormat): WorkflowOutput {
  let identity = { workflowRunId: '', traceId: '' };
  return {
    started(ids, name, dryRun) {
      identity = ids;
      if (output === 'pretty') {
        io.err(
          `${terminalSafe(`${dryRun ? 'dry run of' : 'workflow'} ${name} (run ${ids.workflowRunId}, trace ${ids.traceId})`)}\n`,
        );
      }
    },
    step(step) {
      if (output === 'pretty') io.out(formatStepPretty(step, io.color));
      else if (output === 'jsonl') {
        const line: WorkflowStepLine = {
          schema_version: WORKFLOW_RUN_V1,
          type: 'workflow-step',
          workflow_run_id: identity.workflowRunId,
          trace_id: identity.traceId,
          step,
        };
        io.out(`${JSON.stringify(line)}\n`);
      }
    },
    interrupted(pending) {
      if (output !== 'pretty') return;
      io.err(
        pending === true
          ? 'interrupted: the workflow is cancelled as soon as the server answers its start (Ctrl-C again to quit at once)\n'
          : 'interrupted: stopping the current step (Ctrl-C again to quit at once)\n',
      );
    },
    finished(record) {
      if (output === 'json') io.out(formatJson(record));
      else if (output === 'jsonl') io.out(`${JSON.stringify(record)}\n`);
      else {
        const count = (status: WorkflowStepRecord['status']): number =>
          record.steps.filter((step) => step.status === status).length;
        const totals = record.dry_run
          ? `${record.steps.length} step(s) planned`
          : `${count('succeeded')} succeeded, ${count('partial')} partial, ${count('failed')} failed, ${count('skipped')} skipped${count('cancelled') > 0 ? `, ${count('cancelled')} cancelled` : ''}`;
        const paint = !io.color
          ? (text: string) => text
          : record.status === 'succeeded'
            ? pc.green
            : pc.red;
        io.out(
          `${paint(`workflow ${terminalSafe(record.workflow)} ${record.status}`)}: ${totals}\n`,
        );
        for (const [name, value] of Object.entries(record.outputs)) {
          io.out(`${terminalSafe(`  ${name} = ${JSON.stringify(value)}`)}\n`);
        }
        if (record.error !== null && record.status !== 'succeeded') {
          io.err(formatErrorPretty(record.error, io.colorErr));
        }
      }
      return record.exit_code;
    },
    error(error, exitCode) {
      if (output === 'pretty') io.err(formatErrorPretty(error, io.colorErr));
      else io.out(output === 'json' ? formatJson({ error }) : `${JSON.stringify({ error })}\n`);
      return exitCode;
    },
  };
}

/** `rune workflow validate` output: each finding as `file:line:column: CODE message`. */
export function formatFindings(file: string, findings: readonly WorkflowFindingLine[]): string {
  return findings
    .map(
      (finding) =>
        `${terminalSafe(`${file}:${finding.line}:${finding.column}: ${finding.code} ${finding.message}`)}\n`,
    )
    .join('');
}
