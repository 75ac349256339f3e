/**
 * Parsing and validating workflow documents: the ladder of validation/parse.ts, then the rules a
 * JSON Schema cannot express — unique ids, references to steps that exist, no cycles, every step
 * reachable, `failed_in` naming a step that always runs before, defaults of the declared type, the
 * `${{ … }}` form of computed values. The graph functions are exported because the engine walks
 * the same graph the validator checked.
 */
import {
  type ParseOptions,
  type ParseResult,
  parseVersioned,
  type SchemaViolation,
  schemaViolations,
  type VersionedDocument,
  validateSchema,
  validateVersioned,
} from '../../validation/parse.js';
import {
  MAX_WORKFLOW_STEPS,
  RESERVED_STEP_IDS,
  WORKFLOW_RUN_V1,
  WORKFLOW_V1,
  type WorkflowActionStep,
  type WorkflowBranchStep,
  type WorkflowDefinition,
  WorkflowDefinitionSchema,
  type WorkflowInput,
  type WorkflowRunRecord,
  WorkflowRunRecordSchema,
  type WorkflowStep,
  type WorkflowStepLine,
  WorkflowStepLineSchema,
} from './schema.js';

/** Workflow definition versions this implementation understands. */
export const SUPPORTED_WORKFLOW_VERSIONS: readonly string[] = [WORKFLOW_V1];
/** Workflow run record versions this implementation understands. */
export const SUPPORTED_WORKFLOW_RUN_VERSIONS: readonly string[] = [WORKFLOW_RUN_V1];

/** Maximum size of a workflow definition: 256 KiB. */
export const MAX_WORKFLOW_BYTES = 256 * 1024;

const definition: VersionedDocument<typeof WorkflowDefinitionSchema> = {
  label: 'workflow definition',
  schema: WorkflowDefinitionSchema,
  versionPath: ['schema_version'],
  supported: SUPPORTED_WORKFLOW_VERSIONS,
};
const runRecord: VersionedDocument<typeof WorkflowRunRecordSchema> = {
  label: 'workflow run record',
  schema: WorkflowRunRecordSchema,
  versionPath: ['schema_version'],
  supported: SUPPORTED_WORKFLOW_RUN_VERSIONS,
};

/** The text of a computed value: `${{ expr }}` as the whole string. */
const COMPUTED = /^\$\{\{([\s\S]*)\}\}$/;

/**
 * The CEL expression of a computed value (`"${{ inputs.nodes }}"` → `inputs.nodes`), or
 * undefined for a literal string. A string that holds `${{` anywhere else is neither and is
 * refused by the rules ({@link listWorkflowRuleViolations}).
 */
export function computedExpression(value: string): string | undefined {
  const match = COMPUTED.exec(value.trim());
  if (match === null) return undefined;
  const inner = (match[1] ?? '').trim();
  return inner === '' ? undefined : inner;
}

/** Whether a step is an action step (has `action`). */
export function isWorkflowActionStep(step: WorkflowStep): step is WorkflowActionStep {
  return 'action' in step;
}

/** What follows a top-level step: the index of the next step, or -1 for the end. */
export interface WorkflowEdges {
  /** After success (or a false `when`): `next`, else the following step. */
  success: number;
  /** After failure: the `on_failure` step, the success edge for continue, -1 for abort. */
  failure: number;
}

/** The edges of top-level step `index` (references already checked to exist). */
export function workflowEdges(workflow: WorkflowDefinition, index: number): WorkflowEdges {
  const ids = workflow.steps.map((step) => step.id);
  const target = (word: string | undefined, otherwise: number): number => {
    if (word === undefined) return otherwise;
    if (word === 'end') return -1;
    return ids.indexOf(word);
  };
  const step = workflow.steps[index];
  const following = index + 1 < workflow.steps.length ? index + 1 : -1;
  if (step === undefined) return { success: -1, failure: -1 };
  const success = target(step.next, following);
  const onFailure = 'on_failure' in step ? step.on_failure : undefined;
  let failure = -1;
  if (onFailure === 'continue') failure = success;
  else if (onFailure !== undefined && onFailure !== 'abort') failure = target(onFailure, -1);
  return { success, failure };
}

/**
 * For each top-level step, the indexes of the steps that run before it on every path from the
 * first step (dominators, the step itself excluded). A step may read `steps.<id>` of any step it
 * can follow, but `failed_in` needs one that always ran. Assumes an acyclic graph.
 */
export function workflowDominators(workflow: WorkflowDefinition): Set<number>[] {
  const count = workflow.steps.length;
  const predecessors: number[][] = Array.from({ length: count }, () => []);
  for (let index = 0; index < count; index++) {
    const { success, failure } = workflowEdges(workflow, index);
    for (const to of new Set([success, failure])) if (to >= 0) predecessors[to]?.push(index);
  }
  const all = new Set(Array.from({ length: count }, (_, index) => index));
  const dominators: Set<number>[] = Array.from({ length: count }, (_, index) =>
    index === 0 ? new Set([0]) : new Set(all),
  );
  // Acyclic and forward-only after the cycle check, so one pass in document order suffices.
  for (let index = 1; index < count; index++) {
    const from = predecessors[index] ?? [];
    let meet: Set<number> | undefined;
    for (const predecessor of from) {
      const theirs = dominators[predecessor] ?? new Set<number>();
      meet = meet === undefined ? new Set(theirs) : new Set([...meet].filter((i) => theirs.has(i)));
    }
    dominators[index] = new Set([...(meet ?? []), index]);
  }
  return dominators.map((set, index) => {
    const copy = new Set(set);
    copy.delete(index);
    return copy;
  });
}

/** For each top-level step, the indexes of the steps that can run before it on some path. */
export function workflowPredecessors(workflow: WorkflowDefinition): Set<number>[] {
  const count = workflow.steps.length;
  const before: Set<number>[] = Array.from({ length: count }, () => new Set<number>());
  for (let index = 0; index < count; index++) {
    const { success, failure } = workflowEdges(workflow, index);
    for (const to of new Set([success, failure])) {
      if (to > index) {
        const target = before[to];
        if (target === undefined) continue;
        target.add(index);
        for (const earlier of before[index] ?? []) target.add(earlier);
      }
    }
  }
  return before;
}

/** Whether `value` has input type `input.type`. */
export function fitsWorkflowInput(input: WorkflowInput, value: unknown): boolean {
  switch (input.type) {
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' && Number.isSafeInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'array':
      return Array.isArray(value) && value.every((item) => typeof item === 'string');
  }
}

function checkComputedStrings(value: unknown, pointer: string, out: SchemaViolation[]): void {
  if (typeof value === 'string') {
    if (value.includes('${{') && computedExpression(value) === undefined) {
      out.push({
        pointer,
        message:
          'a computed value must be the whole string "${{ expression }}" (join text inside CEL: "${{ \'a\' + x }}")',
      });
    }
  } else if (Array.isArray(value)) {
    value.forEach((item, index) => {
      checkComputedStrings(item, `${pointer}/${index}`, out);
    });
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      checkComputedStrings(
        item,
        `${pointer}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`,
        out,
      );
    }
  }
}

/**
 * The workflow rules beyond its JSON Schema (specs/workflow-v1.md, "Rules beyond the schema"),
 * each located by a JSON pointer.
 */
export function listWorkflowRuleViolations(workflow: WorkflowDefinition): SchemaViolation[] {
  const violations: SchemaViolation[] = [];
  const topIds = workflow.steps.map((step) => step.id);
  const seen = new Map<string, string>();
  const actionPointers = new Map<string, string>();
  let total = 0;

  for (const [name, input] of Object.entries(workflow.inputs ?? {})) {
    const at = `/inputs/${name}`;
    if (input.default !== undefined && !fitsWorkflowInput(input, input.default)) {
      violations.push({
        pointer: `${at}/default`,
        message: `default is not of type ${input.type}`,
      });
    }
    if (input.default !== undefined && input.required === true) {
      violations.push({ pointer: `${at}/required`, message: 'a required input has no default' });
    }
  }

  const checkId = (id: string, pointer: string): void => {
    total++;
    if ((RESERVED_STEP_IDS as readonly string[]).includes(id)) {
      violations.push({ pointer, message: `"${id}" is reserved for on_failure and next` });
    }
    const first = seen.get(id);
    if (first !== undefined) {
      violations.push({ pointer, message: `step id "${id}" is already used at ${first}` });
    } else seen.set(id, pointer);
  };
  const checkAction = (step: WorkflowActionStep | WorkflowBranchStep, at: string): void => {
    actionPointers.set(step.id, at);
    if ((step.nodes === undefined) === (step.failed_in === undefined)) {
      violations.push({
        pointer: at,
        message: 'an action step needs exactly one of nodes or failed_in',
      });
    }
    checkComputedStrings(step.nodes, `${at}/nodes`, violations);
    checkComputedStrings(step.params, `${at}/params`, violations);
  };
  workflow.steps.forEach((step, index) => {
    const at = `/steps/${index}`;
    checkId(step.id, `${at}/id`);
    if ('parallel' in step) {
      step.parallel.forEach((branch, branchIndex) => {
        checkId(branch.id, `${at}/parallel/${branchIndex}/id`);
        checkAction(branch, `${at}/parallel/${branchIndex}`);
      });
    } else if (isWorkflowActionStep(step)) checkAction(step, at);
    for (const member of ['next', 'on_failure'] as const) {
      const word = (step as { next?: string; on_failure?: string })[member];
      if (word === undefined) continue;
      const allowed = member === 'next' ? ['end'] : ['abort', 'continue'];
      if (!allowed.includes(word) && !topIds.includes(word)) {
        violations.push({
          pointer: `${at}/${member}`,
          message: `"${word}" is not a top-level step id (nor ${allowed.join(' or ')})`,
        });
      }
    }
  });
  if (total > MAX_WORKFLOW_STEPS) {
    violations.push({
      pointer: '/steps',
      message: `${total} steps with parallel branches; the limit is ${MAX_WORKFLOW_STEPS}`,
    });
  }
  if (violations.length > 0) return violations;

  // Graph rules: a transition may only go forward (any backward edge closes a cycle).
  workflow.steps.forEach((step, index) => {
    const { success, failure } = workflowEdges(workflow, index);
    const check = (to: number, member: string, word: string | undefined): void => {
      if (to >= 0 && to <= index && word !== undefined) {
        violations.push({
          pointer: `/steps/${index}/${member}`,
          message: `goto "${word}" forms a cycle: workflows run forward only (steps are bounded)`,
        });
      }
    };
    check(success, 'next', step.next);
    check(failure, 'on_failure', 'on_failure' in step ? step.on_failure : undefined);
  });
  if (violations.length > 0) return violations;

  const reachable = new Set<number>([0]);
  for (let index = 0; index < workflow.steps.length; index++) {
    if (!reachable.has(index)) continue;
    const { success, failure } = workflowEdges(workflow, index);
    if (success >= 0) reachable.add(success);
    if (failure >= 0) reachable.add(failure);
  }
  workflow.steps.forEach((step, index) => {
    if (!reachable.has(index)) {
      violations.push({
        pointer: `/steps/${index}`,
        message: `step "${step.id}" is unreachable: no path from the first step leads to it`,
      });
    }
  });
  if (violations.length > 0) return violations;

  const dominators = workflowDominators(workflow);
  const topIndexOf = (id: string): number =>
    workflow.steps.findIndex(
      (step) => step.id === id || ('parallel' in step && step.parallel.some((b) => b.id === id)),
    );
  workflow.steps.forEach((step, index) => {
    const actions = 'parallel' in step ? step.parallel : isWorkflowActionStep(step) ? [step] : [];
    for (const action of actions) {
      if (action.failed_in === undefined) continue;
      const pointer = `${actionPointers.get(action.id) ?? `/steps/${index}`}/failed_in`;
      const source = topIndexOf(action.failed_in);
      if (source < 0 || !actionPointers.has(action.failed_in)) {
        violations.push({ pointer, message: `"${action.failed_in}" is not an action step` });
      } else if (!(dominators[index]?.has(source) ?? false)) {
        violations.push({
          pointer,
          message: `"${action.failed_in}" does not always run before "${action.id}"`,
        });
      }
    }
  });
  return violations;
}

function withRules(
  parsed: ParseResult<WorkflowDefinition>,
  options: ParseOptions,
): ParseResult<WorkflowDefinition> {
  if (!parsed.ok) return parsed;
  const violations = listWorkflowRuleViolations(parsed.value);
  return violations.length === 0 ? parsed : schemaViolations(definition.label, violations, options);
}

/** Parses a workflow definition from JSON text or bytes, including the rules beyond its schema. */
export function parseWorkflowDefinition(
  input: string | Uint8Array,
  options: ParseOptions = {},
): ParseResult<WorkflowDefinition> {
  const limited = { maxBytes: MAX_WORKFLOW_BYTES, ...options };
  return withRules(parseVersioned(definition, input, limited), limited);
}

/** Validates an already parsed workflow definition (e.g. from YAML), rules included. */
export function validateWorkflowDefinition(
  value: unknown,
  options: ParseOptions = {},
): ParseResult<WorkflowDefinition> {
  return withRules(validateVersioned(definition, value, options), options);
}

function runRecordRules(record: WorkflowRunRecord): SchemaViolation[] {
  const violations: SchemaViolation[] = [];
  if (record.status !== 'running' && (record.status === 'succeeded') !== (record.exit_code === 0)) {
    violations.push({
      pointer: '/exit_code',
      message: 'once ended, exit_code is 0 exactly when the workflow run succeeded',
    });
  }
  if (record.status === 'running' ? record.ended_at !== null : record.ended_at === null) {
    violations.push({ pointer: '/ended_at', message: 'ended_at is null exactly while running' });
  }
  const ids = new Set<string>();
  record.steps.forEach((step, index) => {
    if (ids.has(step.id)) {
      violations.push({ pointer: `/steps/${index}/id`, message: `step "${step.id}" twice` });
    }
    ids.add(step.id);
    if (step.status === 'awaiting_approval' && record.status !== 'running') {
      violations.push({
        pointer: `/steps/${index}/status`,
        message: 'a step awaits approval only while its workflow run is running',
      });
    }
    step.attempts.forEach((attempt, at) => {
      const pointer = `/steps/${index}/attempts/${at}`;
      // Not ended yet: running, or held for an approval.
      const going = attempt.status === 'running' || attempt.status === 'awaiting_approval';
      if (going && record.status !== 'running') {
        violations.push({
          pointer: `${pointer}/status`,
          message: `a run is ${attempt.status} only while its workflow run is running`,
        });
      }
      if (
        attempt.ended_at !== undefined &&
        (going ? attempt.ended_at !== null : attempt.ended_at === null)
      ) {
        violations.push({
          pointer: `${pointer}/ended_at`,
          message: 'an attempt’s ended_at is null exactly while it runs or awaits approval',
        });
      }
    });
  });
  return violations;
}

/** Parses a workflow run record from JSON text or bytes. */
export function parseWorkflowRunRecord(
  input: string | Uint8Array,
  options: ParseOptions = {},
): ParseResult<WorkflowRunRecord> {
  const parsed = parseVersioned(runRecord, input, { maxBytes: 16 * 1024 * 1024, ...options });
  if (!parsed.ok) return parsed;
  const violations = runRecordRules(parsed.value);
  return violations.length === 0 ? parsed : schemaViolations(runRecord.label, violations, options);
}

/** Validates an already parsed workflow run record. */
export function validateWorkflowRunRecord(
  value: unknown,
  options: ParseOptions = {},
): ParseResult<WorkflowRunRecord> {
  const parsed = validateVersioned(runRecord, value, options);
  if (!parsed.ok) return parsed;
  const violations = runRecordRules(parsed.value);
  return violations.length === 0 ? parsed : schemaViolations(runRecord.label, violations, options);
}

/** Parses one step line of `rune workflow run --output jsonl`. */
export function parseWorkflowStepLine(
  input: string | Uint8Array,
  options: ParseOptions = {},
): ParseResult<WorkflowStepLine> {
  const parsed = parseVersioned(
    { ...runRecord, label: 'workflow step line', schema: WorkflowStepLineSchema },
    input,
    { maxBytes: 4 * 1024 * 1024, ...options },
  );
  return parsed;
}

/** Validates an already parsed step line. */
export function validateWorkflowStepLine(
  value: unknown,
  options: ParseOptions = {},
): ParseResult<WorkflowStepLine> {
  return validateSchema(WorkflowStepLineSchema, value, 'workflow step line', options);
}
