/**
 * The rules of run documents that JSON Schema cannot express: members that must agree with each
 * other (a summary with its nodes, a plan with its requests, a status with the exit code), the
 * redaction of sensitive parameters, and the order of an event stream. Each rule reports a JSON
 * pointer to the member that breaks it; specs/run-v1.md ("Rules beyond the schema") lists them in
 * this order. The functions take documents that already satisfy their schema.
 */
import { escapeJsonPointerToken } from '../../mrs/v1/parameters.js';
import type { SchemaViolation } from '../../validation/parse.js';
import {
  type NodeRunStatus,
  REDACTED_VALUE,
  type RunEvent,
  type RunNodeResult,
  type RunPlan,
  type RunResultDocument,
  type RunStatus,
  type RunSummary,
  TERMINAL_RUN_STATUSES,
} from './schema.js';

const pointer = (base: string, ...tokens: (string | number)[]): string =>
  `${base}${tokens.map((token) => `/${escapeJsonPointerToken(String(token))}`).join('')}`;

/** Plan rules: unique nodes, requests that match the plan, redacted sensitive values. */
export function listPlanRuleViolations(plan: RunPlan, base = ''): SchemaViolation[] {
  const violations: SchemaViolation[] = [];
  const push = (at: string, message: string): void => {
    violations.push({ pointer: at, message });
  };
  const sensitive = new Set(plan.sensitive_parameters);
  const checkRedacted = (parameters: Record<string, unknown>, at: string): void => {
    for (const name of plan.sensitive_parameters) {
      if (Object.hasOwn(parameters, name) && parameters[name] !== REDACTED_VALUE) {
        push(pointer(at, name), `sensitive parameter "${name}" must be "${REDACTED_VALUE}"`);
      }
    }
  };
  checkRedacted(plan.parameters, pointer(base, 'parameters'));
  plan.supplied_sensitive_parameters.forEach((name, index) => {
    if (!sensitive.has(name)) {
      push(
        pointer(base, 'supplied_sensitive_parameters', index),
        `"${name}" is not listed in sensitive_parameters`,
      );
    }
  });
  const seen = new Set<string>();
  plan.nodes.forEach((node, index) => {
    const at = pointer(base, 'nodes', index);
    if (seen.has(node.target.name)) {
      push(pointer(at, 'target', 'name'), `node "${node.target.name}" appears twice in the plan`);
    }
    seen.add(node.target.name);
    const request = node.request;
    if (request.message_metadata.trace_id !== plan.trace_id) {
      push(
        pointer(at, 'request', 'message_metadata', 'trace_id'),
        'must equal the trace_id of the plan',
      );
    }
    const routing = pointer(at, 'request', 'routing');
    if (request.routing.action !== plan.action) {
      push(pointer(routing, 'action'), 'must equal the action of the plan');
    }
    if (request.routing.node !== node.target.name) {
      push(pointer(routing, 'node'), 'must equal target.name');
    }
    if (request.routing.transport !== node.transport) {
      push(pointer(routing, 'transport'), 'must equal the transport of the node');
    }
    if (request.routing.deploy_mode !== plan.deploy_mode) {
      push(pointer(routing, 'deploy_mode'), 'must equal the deploy_mode of the plan');
    }
    if ((node.remote_path === null) !== (plan.deploy_mode === 'ship')) {
      push(
        pointer(at, 'remote_path'),
        plan.deploy_mode === 'ship'
          ? 'must be null for deploy mode ship'
          : 'is required for deploy mode preinstalled',
      );
    }
    checkRedacted(
      request.payload.data.input_parameters,
      pointer(at, 'request', 'payload', 'data', 'input_parameters'),
    );
  });
  return violations;
}

const SUCCEEDED: readonly NodeRunStatus[] = ['success', 'partial'];

/** Node-result rules: status, error, exit code and response agree; containment is honest. */
export function listNodeResultRuleViolations(result: RunNodeResult, base = ''): SchemaViolation[] {
  const violations: SchemaViolation[] = [];
  const push = (at: string, message: string): void => {
    violations.push({ pointer: at, message });
  };
  const succeeded = SUCCEEDED.includes(result.status);
  if (succeeded) {
    if (result.error !== null)
      push(pointer(base, 'error'), `must be null for status ${result.status}`);
    if (result.exit_code !== 0)
      push(pointer(base, 'exit_code'), `must be 0 for status ${result.status}`);
    if (result.response === null) {
      push(pointer(base, 'response'), `a ${result.status} node carries the plugin result`);
    } else if (result.response.payload.result !== result.status) {
      push(
        pointer(base, 'response', 'payload', 'result'),
        `must be "${result.status}" for status ${result.status}`,
      );
    }
  } else {
    if (result.error === null)
      push(pointer(base, 'error'), `is required for status ${result.status}`);
    if (result.exit_code === 0)
      push(pointer(base, 'exit_code'), `must not be 0 for status ${result.status}`);
  }
  if (result.status === 'skipped') {
    if (result.started_at !== null)
      push(pointer(base, 'started_at'), 'must be null: a skipped node never started');
    if (result.termination !== null)
      push(pointer(base, 'termination'), 'must be null: a skipped node never ran');
  }
  const response = result.response;
  if (response !== null) {
    // The BPCS pairing rule holds for an embedded result exactly as on the plugin's stdout.
    if (response.payload.result === 'failure' && response.error === null) {
      push(pointer(base, 'response', 'error'), 'result "failure" requires an EPS error object');
    }
    if (response.payload.result === 'success' && response.error !== null) {
      push(pointer(base, 'response', 'error'), 'result "success" requires error to be null');
    }
  }
  const containment = result.containment;
  if (containment !== undefined && containment !== null) {
    if (containment.method === 'none' && containment.complete) {
      push(pointer(base, 'containment', 'complete'), 'must be false for method none');
    }
    if (!containment.complete && containment.detail === undefined) {
      push(pointer(base, 'containment', 'detail'), 'is required when complete is false');
    }
  }
  return violations;
}

/** Summary rules: the counts add up; the exit code is 0 exactly when no node failed or was skipped. */
export function listSummaryRuleViolations(summary: RunSummary, base = ''): SchemaViolation[] {
  const violations: SchemaViolation[] = [];
  const { total, succeeded, partial, failed, skipped } = summary;
  if (succeeded + partial + failed + skipped !== total) {
    violations.push({
      pointer: pointer(base, 'total'),
      message: 'must equal succeeded + partial + failed + skipped',
    });
  }
  // Every node succeeded: exit 0, or 70 when an outcome could not be audited (the document's
  // error is then AUDIT_WRITE_FAILED; see listStatusRuleViolations).
  const allSucceeded = failed + skipped === 0;
  if (
    allSucceeded ? summary.exit_code !== 0 && summary.exit_code !== 70 : summary.exit_code === 0
  ) {
    violations.push({
      pointer: pointer(base, 'exit_code'),
      message: allSucceeded
        ? 'must be 0 when every node succeeded (70 only when an outcome could not be audited)'
        : 'must not be 0 when a node failed or was skipped',
    });
  }
  return violations;
}

/** The status members shared by a run-result document and a run-end event. */
interface RunOutcomeFields {
  status?: RunStatus | undefined;
  exit_code: number | null;
  summary: RunSummary | null;
  error: unknown;
}

const isTerminal = (status: RunStatus): boolean =>
  (TERMINAL_RUN_STATUSES as readonly RunStatus[]).includes(status);

/** Status rules (specs/run-v1.md, "Run status"). */
function listStatusRuleViolations(fields: RunOutcomeFields, base: string): SchemaViolation[] {
  const violations: SchemaViolation[] = [];
  const push = (at: string, message: string): void => {
    violations.push({ pointer: at, message });
  };
  const { status, exit_code: exitCode, summary } = fields;
  if (exitCode === null && (status === undefined || isTerminal(status))) {
    push(pointer(base, 'exit_code'), 'may be null only while the run is queued or running');
  }
  if (fields.error !== null && exitCode === 0) {
    push(pointer(base, 'exit_code'), 'must not be 0 when the run has an error');
  }
  if (
    summary !== null &&
    summary.exit_code === 70 &&
    summary.failed + summary.skipped === 0 &&
    (fields.error as { code?: unknown } | null)?.code !== 'AUDIT_WRITE_FAILED'
  ) {
    push(
      pointer(base, 'summary', 'exit_code'),
      'is 70 with every node succeeded only when the error is AUDIT_WRITE_FAILED',
    );
  }
  if (status === undefined) return violations;
  const at = pointer(base, 'status');
  const succeeded = summary === null ? 0 : summary.succeeded + summary.partial;
  const unsucceeded = summary === null ? 0 : summary.failed + summary.skipped;
  switch (status) {
    case 'queued':
    case 'awaiting_approval':
    case 'running':
      if (exitCode !== null) push(at, `a ${status} run has no exit_code yet (null)`);
      if (summary !== null) push(at, `a ${status} run has no summary yet (null)`);
      break;
    case 'succeeded':
      if (exitCode !== 0 || fields.error !== null) push(at, 'requires exit_code 0 and no error');
      break;
    case 'failed':
      if (exitCode === 0) push(at, 'requires a non-zero exit_code');
      if (succeeded > 0) push(at, 'a run in which some node succeeded is partial, not failed');
      break;
    case 'partial':
      if (exitCode === 0) push(at, 'requires a non-zero exit_code');
      if (summary === null || succeeded === 0 || unsucceeded === 0) {
        push(at, 'requires a summary in which some nodes succeeded and some did not');
      }
      break;
    case 'cancelled':
      if (exitCode === 0) push(at, 'requires a non-zero exit_code');
      break;
    case 'interrupted':
      break;
  }
  return violations;
}

const countBy = (nodes: readonly RunNodeResult[], status: NodeRunStatus): number =>
  nodes.filter((node) => node.status === status).length;

/**
 * Run-result rules; `nodes` is undefined for the JSONL summary line, which carries none. The plan,
 * summary and node rules apply to the embedded documents at their pointers.
 */
export function listRunResultRuleViolations(
  document: Omit<RunResultDocument, 'nodes'> & { nodes?: RunNodeResult[] },
  base = '',
): SchemaViolation[] {
  const violations: SchemaViolation[] = [];
  const push = (at: string, message: string): void => {
    violations.push({ pointer: at, message });
  };
  const { summary, plan, nodes } = document;
  if (summary !== null) {
    violations.push(...listSummaryRuleViolations(summary, pointer(base, 'summary')));
    if (summary.trace_id !== document.trace_id) {
      push(pointer(base, 'summary', 'trace_id'), 'must equal the trace_id of the document');
    }
    if (summary.action !== document.action) {
      push(pointer(base, 'summary', 'action'), 'must equal the action of the document');
    }
    if (summary.exit_code !== document.exit_code) {
      push(pointer(base, 'summary', 'exit_code'), 'must equal the exit_code of the document');
    }
  }
  if (plan !== null) {
    violations.push(...listPlanRuleViolations(plan, pointer(base, 'plan')));
    if (plan.trace_id !== document.trace_id) {
      push(pointer(base, 'plan', 'trace_id'), 'must equal the trace_id of the document');
    }
    if (plan.action !== document.action) {
      push(pointer(base, 'plan', 'action'), 'must equal the action of the document');
    }
  }
  if (nodes !== undefined) {
    const seen = new Set<string>();
    nodes.forEach((node, index) => {
      const at = pointer(base, 'nodes', index);
      violations.push(...listNodeResultRuleViolations(node, at));
      if (seen.has(node.node)) push(pointer(at, 'node'), `node "${node.node}" appears twice`);
      seen.add(node.node);
    });
    if (summary !== null) {
      if (nodes.length !== summary.total) {
        push(pointer(base, 'nodes'), `must hold summary.total (${summary.total}) results`);
      } else {
        // One violation for the whole tally: a node counted in the wrong column breaks two.
        const counted = {
          succeeded: countBy(nodes, 'success'),
          partial: countBy(nodes, 'partial'),
          failed: countBy(nodes, 'failure'),
          skipped: countBy(nodes, 'skipped'),
        };
        const wrong = (Object.keys(counted) as (keyof typeof counted)[]).filter(
          (member) => summary[member] !== counted[member],
        );
        if (wrong.length > 0) {
          push(
            pointer(base, 'summary'),
            `counts must match the node statuses: ${wrong.map((member) => `${member} ${counted[member]}, not ${summary[member]}`).join('; ')}`,
          );
        }
      }
    }
    if (
      (document.status === 'queued' || document.status === 'awaiting_approval') &&
      nodes.length > 0
    ) {
      push(pointer(base, 'nodes'), 'a queued run has no node results');
    }
  }
  violations.push(...listStatusRuleViolations(document, base));
  return violations;
}

/** Rules of one event on its own (the stream rules are in {@link listRunEventStreamViolations}). */
export function listRunEventRuleViolations(event: RunEvent, base = ''): SchemaViolation[] {
  switch (event.type) {
    case 'run-start': {
      const violations = listPlanRuleViolations(event.plan, pointer(base, 'plan'));
      if (event.plan.trace_id !== event.trace_id) {
        violations.push({
          pointer: pointer(base, 'plan', 'trace_id'),
          message: 'must equal the trace_id of the event',
        });
      }
      if (event.seq !== 1) {
        violations.push({ pointer: pointer(base, 'seq'), message: 'run-start is always seq 1' });
      }
      return violations;
    }
    case 'node-start':
      return [];
    case 'node-end':
      return listNodeResultRuleViolations(event.result, pointer(base, 'result'));
    case 'run-end': {
      const violations: SchemaViolation[] = [];
      if (event.summary !== null) {
        violations.push(...listSummaryRuleViolations(event.summary, pointer(base, 'summary')));
        if (event.summary.trace_id !== event.trace_id) {
          violations.push({
            pointer: pointer(base, 'summary', 'trace_id'),
            message: 'must equal the trace_id of the event',
          });
        }
        if (event.summary.exit_code !== event.exit_code) {
          violations.push({
            pointer: pointer(base, 'summary', 'exit_code'),
            message: 'must equal the exit_code of the event',
          });
        }
      }
      violations.push(...listStatusRuleViolations(event, base));
      return violations;
    }
  }
}

/**
 * Rules of a stream of one run's events, each already valid on its own: it opens with run-start
 * (seq 1); seq strictly increases; every event has the run's run_id and trace_id; nothing follows
 * run-end; node events name a node of the plan with its message_id, each node starts at most
 * once and ends at most once, never ends before it starts, and ends without starting only when
 * skipped; run-end totals cover the whole plan.
 */
export function listRunEventStreamViolations(events: readonly RunEvent[]): SchemaViolation[] {
  const violations: SchemaViolation[] = [];
  const push = (at: string, message: string): void => {
    violations.push({ pointer: at, message });
  };
  const first = events[0];
  if (first === undefined) return [{ pointer: '', message: 'a stream holds at least one event' }];
  if (first.type !== 'run-start') {
    push('/0/type', 'the first event of a run is run-start');
    return violations;
  }
  const plan = new Map(
    first.plan.nodes.map((node) => [node.target.name, node.request.message_metadata.message_id]),
  );
  const started = new Set<string>();
  const ended = new Set<string>();
  let previous: RunEvent = first;
  let closed = false;
  events.forEach((event, index) => {
    const at = `/${index}`;
    if (index > 0) {
      if (event.seq <= previous.seq) push(`${at}/seq`, `must be greater than ${previous.seq}`);
      if (event.run_id !== first.run_id) push(`${at}/run_id`, 'must equal the run_id of run-start');
      if (event.trace_id !== first.trace_id) {
        push(`${at}/trace_id`, 'must equal the trace_id of run-start');
      }
      if (closed) push(`${at}/type`, 'no event follows run-end');
      if (event.type === 'run-start') push(`${at}/type`, 'a run starts once');
    }
    previous = event;
    switch (event.type) {
      case 'run-start':
        break;
      case 'node-start': {
        const messageId = plan.get(event.node);
        if (messageId === undefined)
          push(`${at}/node`, `"${event.node}" is not a node of the plan`);
        else if (event.message_id !== messageId) {
          push(`${at}/message_id`, 'must equal the message_id of the planned request');
        }
        if (started.has(event.node)) push(`${at}/node`, `"${event.node}" already started`);
        if (ended.has(event.node)) push(`${at}/node`, `"${event.node}" already ended`);
        started.add(event.node);
        break;
      }
      case 'node-end': {
        const name = event.result.node;
        const messageId = plan.get(name);
        if (messageId === undefined)
          push(`${at}/result/node`, `"${name}" is not a node of the plan`);
        else if (event.result.message_id !== messageId) {
          push(`${at}/result/message_id`, 'must equal the message_id of the planned request');
        }
        if (ended.has(name)) push(`${at}/result/node`, `"${name}" already ended`);
        else if (started.has(name) === (event.result.status === 'skipped')) {
          push(
            `${at}/result/status`,
            started.has(name)
              ? 'a node that started is never skipped'
              : 'only a skipped node ends without a node-start',
          );
        }
        ended.add(name);
        break;
      }
      case 'run-end':
        closed = true;
        if (event.summary !== null && event.summary.total !== plan.size) {
          push(`${at}/summary/total`, `must equal the number of planned nodes (${plan.size})`);
        }
        break;
    }
  });
  return violations;
}
