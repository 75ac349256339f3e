/**
 * The checks of a workflow that need core: every action is registered, literal parameters fit
 * the action's manifest, every expression compiles and reads only declared inputs, known step
 * members and steps that can have run before it. Findings are located by JSON pointer; the loader
 * turns them into line:column.
 */

import type { MrsManifest } from '@rune/protocol';
import {
  checkParameterValue,
  computedExpression,
  isWorkflowActionStep,
  RuneError,
  STEP_RESULT_FIELDS,
  type WorkflowActionStep,
  type WorkflowBranchStep,
  type WorkflowDefinition,
  workflowPredecessors,
} from '@rune/protocol';
import { type CompiledExpression, compileExpression } from './expressions.js';

/** One finding of {@link checkWorkflow}. */
export interface WorkflowFinding {
  pointer: string;
  code: string;
  message: string;
}

/**
 * Where a workflow's actions are looked up: a `PluginRegistry`, or anything that resolves an
 * action to its manifest (a server's launcher) and throws a RuneError for an unknown one.
 */
export interface WorkflowActionRegistry {
  resolve(action: string): { manifest: MrsManifest };
}

/** The members of `workflow` an expression may read. */
export const WORKFLOW_CONTEXT_FIELDS = ['run_id', 'trace_id', 'name'] as const;

/** Where an expression sits, for reference checks. */
interface Scope {
  /** Step ids it may read (steps that can have run before). */
  readable: ReadonlySet<string>;
  /** Why other ids are not readable, by id. */
  unreadable: ReadonlyMap<string, string>;
}

function compileAt(
  source: string,
  pointer: string,
  definition: WorkflowDefinition,
  scope: Scope,
  findings: WorkflowFinding[],
): CompiledExpression | undefined {
  let compiled: CompiledExpression;
  try {
    compiled = compileExpression(source);
  } catch (error) {
    const rune = RuneError.from(error, 'WORKFLOW_EXPRESSION_ERROR');
    findings.push({ pointer, code: rune.code, message: rune.message });
    return undefined;
  }
  const inputs = definition.inputs ?? {};
  for (const reference of compiled.references) {
    if (reference.name === undefined) continue;
    if (reference.root === 'inputs' && !Object.hasOwn(inputs, reference.name)) {
      findings.push({
        pointer,
        code: 'WORKFLOW_INVALID',
        message: `inputs.${reference.name} is not a declared input`,
      });
    } else if (reference.root === 'workflow') {
      if (!(WORKFLOW_CONTEXT_FIELDS as readonly string[]).includes(reference.name)) {
        findings.push({
          pointer,
          code: 'WORKFLOW_INVALID',
          message: `workflow.${reference.name} does not exist (${WORKFLOW_CONTEXT_FIELDS.join(', ')})`,
        });
      }
    } else if (reference.root === 'steps') {
      if (!scope.readable.has(reference.name)) {
        findings.push({
          pointer,
          code: 'WORKFLOW_INVALID',
          message: `steps.${reference.name}: ${scope.unreadable.get(reference.name) ?? 'no such step'}`,
        });
      } else if (
        reference.member !== undefined &&
        !(STEP_RESULT_FIELDS as readonly string[]).includes(reference.member)
      ) {
        findings.push({
          pointer,
          code: 'WORKFLOW_INVALID',
          message: `steps.${reference.name}.${reference.member} is not a step result member (${STEP_RESULT_FIELDS.join(', ')})`,
        });
      }
    }
  }
  return compiled;
}

function checkComputed(
  value: unknown,
  pointer: string,
  definition: WorkflowDefinition,
  scope: Scope,
  findings: WorkflowFinding[],
): void {
  if (typeof value !== 'string') return;
  const source = computedExpression(value);
  if (source !== undefined) compileAt(source, pointer, definition, scope, findings);
}

function checkActionStep(
  step: WorkflowActionStep | WorkflowBranchStep,
  at: string,
  definition: WorkflowDefinition,
  scope: Scope,
  registry: WorkflowActionRegistry,
  findings: WorkflowFinding[],
): void {
  if (step.when !== undefined) {
    const compiled = compileAt(step.when, `${at}/when`, definition, scope, findings);
    if (compiled !== undefined && compiled.type !== 'bool' && compiled.type !== 'dyn') {
      findings.push({
        pointer: `${at}/when`,
        code: 'WORKFLOW_INVALID',
        message: `a condition must be a bool, this is ${compiled.type}`,
      });
    }
  }
  const nodes =
    step.nodes === undefined ? [] : Array.isArray(step.nodes) ? step.nodes : [step.nodes];
  nodes.forEach((node, index) => {
    const pointer = Array.isArray(step.nodes) ? `${at}/nodes/${index}` : `${at}/nodes`;
    checkComputed(node, pointer, definition, scope, findings);
  });
  let manifest: MrsManifest | undefined;
  try {
    manifest = registry.resolve(step.action).manifest;
  } catch (error) {
    const rune = RuneError.from(error, 'UNKNOWN_ACTION');
    findings.push({ pointer: `${at}/action`, code: rune.code, message: rune.message });
  }
  const params = step.params ?? {};
  for (const [name, value] of Object.entries(params)) {
    const pointer = `${at}/params/${name.replaceAll('~', '~0').replaceAll('/', '~1')}`;
    if (typeof value === 'string' && computedExpression(value) !== undefined) {
      checkComputed(value, pointer, definition, scope, findings);
      if (
        manifest !== undefined &&
        manifest.parameters.additionalProperties !== true &&
        !Object.hasOwn(manifest.parameters.properties, name)
      ) {
        findings.push({
          pointer,
          code: 'INVALID_PARAMETERS',
          message: `${step.action} has no parameter "${name}"`,
        });
      }
      continue;
    }
    if (manifest === undefined) continue;
    const parameter = manifest.parameters.properties[name];
    if (parameter === undefined || !Object.hasOwn(manifest.parameters.properties, name)) {
      if (manifest.parameters.additionalProperties === true) continue;
      const known = Object.keys(manifest.parameters.properties);
      findings.push({
        pointer,
        code: 'INVALID_PARAMETERS',
        message: `${step.action} has no parameter "${name}"${known.length > 0 ? ` (it has: ${known.join(', ')})` : ''}`,
      });
      continue;
    }
    for (const violation of checkParameterValue(parameter, value, pointer)) {
      findings.push({
        pointer: violation.pointer,
        code: 'INVALID_PARAMETERS',
        message: `${step.action}.${name}: ${violation.message}`,
      });
    }
  }
  if (manifest !== undefined) {
    for (const name of manifest.parameters.required ?? []) {
      if (
        !Object.hasOwn(params, name) &&
        manifest.parameters.properties[name]?.default === undefined
      ) {
        findings.push({
          pointer: `${at}/params`,
          code: 'INVALID_PARAMETERS',
          message: `${step.action} requires parameter "${name}"`,
        });
      }
    }
  }
}

/**
 * Checks a schema-valid workflow against the registry and compiles its expressions. Returns the
 * findings (empty: the workflow is good to run).
 */
export function checkWorkflow(
  definition: WorkflowDefinition,
  registry: WorkflowActionRegistry,
): WorkflowFinding[] {
  const findings: WorkflowFinding[] = [];
  const before = workflowPredecessors(definition);
  const idsOf = (index: number): string[] => {
    const step = definition.steps[index];
    if (step === undefined) return [];
    return 'parallel' in step ? [step.id, ...step.parallel.map((branch) => branch.id)] : [step.id];
  };
  const allIds = definition.steps.flatMap((_, index) => idsOf(index));
  const scopeFor = (index: number, self: string[]): Scope => {
    const readable = new Set([...(before[index] ?? [])].flatMap(idsOf));
    const unreadable = new Map<string, string>();
    for (const id of allIds) {
      if (readable.has(id)) continue;
      unreadable.set(
        id,
        self.includes(id)
          ? 'a step cannot read its own result (or a branch of its own group)'
          : 'this step never runs before the one that reads it',
      );
    }
    return { readable, unreadable };
  };
  definition.steps.forEach((step, index) => {
    const at = `/steps/${index}`;
    const scope = scopeFor(index, idsOf(index));
    if ('parallel' in step) {
      if (step.when !== undefined) {
        compileAt(step.when, `${at}/when`, definition, scope, findings);
      }
      step.parallel.forEach((branch, branchIndex) => {
        checkActionStep(
          branch,
          `${at}/parallel/${branchIndex}`,
          definition,
          scope,
          registry,
          findings,
        );
      });
    } else if (isWorkflowActionStep(step)) {
      checkActionStep(step, at, definition, scope, registry, findings);
    } else if (step.when !== undefined) {
      compileAt(step.when, `${at}/when`, definition, scope, findings);
    }
  });
  const everything: Scope = { readable: new Set(allIds), unreadable: new Map() };
  for (const [name, source] of Object.entries(definition.outputs ?? {})) {
    compileAt(source, `/outputs/${name}`, definition, everything, findings);
  }
  return findings;
}
